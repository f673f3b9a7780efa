"""The compiled twins of the HPA and KEDA controllers (sim/_jit.py hpa_decide / keda_decide, called as
the kernel's dispatcher `_jit.decide` calls them, with sim/twins.py's arrays) decide exactly as the
Python reference model (sim/policies.py HpaController / KedaController on sim/hpa.py and sim/keda.py,
which tests/test_sim_upstream_*.py check against the upstream tables).

Each case drives a Python controller and its twin with the same seeded random sync sequence (metric
values at and around the tolerance bounds and rounding halves, ready/unready pods, spec replicas
moved by others, outages, cron floors with offsets, behaviors, fallbacks, idle replicas, kubernetes
and KEDA versions) and requires the same replicas and controller state at every tick, and the same
reason text whenever the twin gives one (always when the replicas change; the Python controller's
reason is unchanged otherwise).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim import _jit, reasons, twins
from kubectl_gpuscale.sim.hpa import Behavior, ScalingPolicy, ScalingRules
from kubectl_gpuscale.sim.policies import CronFloor, HpaController, KedaController, Outage

TICKS = 600
VERSIONS = ((1, 30), (1, 33), (1, 35))


def random_rules(rng: np.random.Generator, up: bool) -> ScalingRules:
    policies = tuple(
        ScalingPolicy(
            str(rng.choice(["Pods", "Percent"])),
            int(rng.integers(1, 6)) if rng.random() < 0.5 else int(rng.choice([10, 50, 100, 200])),
            int(rng.choice([15, 30, 60, 120])),
        )
        for _ in range(int(rng.integers(0 if rng.random() < 0.1 else 1, 4)))
    )
    select = str(rng.choice(["Max", "Min", "Disabled"], p=[0.6, 0.3, 0.1]))
    window = int(rng.choice([0, 30, 60, 300])) if up else int(rng.choice([0, 60, 120, 300, 600]))
    return ScalingRules(window, policies, select)


def random_behavior(rng: np.random.Generator) -> Behavior | None:
    if rng.random() < 0.4:
        return None
    return Behavior(random_rules(rng, True), random_rules(rng, False))


def times(rng: np.random.Generator, period: int) -> list[int]:
    """Tick times on the controller's grid, mostly consecutive, with gaps of minutes to hours."""
    out, now = [], period * int(rng.integers(1, 2000))
    for _ in range(TICKS):
        out.append(now)
        jump = rng.random()
        steps = (
            1 if jump < 0.85 else int(rng.integers(2, 40)) if jump < 0.98 else int(rng.integers(100, 3000))
        )
        now += period * steps
    return out


def usage_near(rng: np.random.Generator, target: float, replicas: int) -> float:
    """A metric value on, around or far from the tolerance bounds, or on a rounding half."""
    kind = rng.random()
    if kind < 0.3:
        return float(target * rng.choice([0.9, 1.1, 1.0, 0.89, 1.11, 0.5, 2.0]))
    if kind < 0.45:
        return float(rng.integers(0, 2000)) / 10.0 + 0.05
    if kind < 0.6:
        return float(target * replicas * rng.choice([0.9, 1.0, 1.1]))
    if kind < 0.65:
        return 0.0
    return float(rng.uniform(0, 2.5 * target))


def hpa_case(seed: int) -> tuple[HpaController, np.random.Generator]:
    rng = np.random.default_rng(seed)
    metric = str(rng.choice(["cpu", "gpu"]))
    low = int(rng.integers(1, 4))
    ctl = HpaController(
        f"hpa-{seed}",
        metric,
        float(rng.choice([50.0, 70.0, 80.0, 62.5])),
        low,
        low + int(rng.integers(0, 8)),
        random_behavior(rng),
        float(rng.choice([0.1, 0.05, 0.2])),
        VERSIONS[int(rng.integers(0, len(VERSIONS)))],
    )
    return ctl, rng


class Ticks:
    """The kernel's side of a tick: the observation ring (the last second at `now - 1`) and the reason."""

    def __init__(self) -> None:
        self.ring = np.zeros((_jit.OBS_LEN, 64))
        self.reason = np.zeros(4)

    def decide(self, twin: tuple[int, np.ndarray, np.ndarray], now: int, spec: int, pods: int) -> int:
        self.reason[:] = 0.0
        kind, params, state = twin
        # the functions `_jit.decide` dispatches to (compiling the dispatcher too, with the KPA, costs ~4 s
        # more; the whole simulations below go through it)
        if kind == _jit.KIND_HPA:
            return int(_jit.hpa_decide(params, state, self.ring, 63, now, spec, pods, self.reason))
        return int(_jit.keda_decide(params, state, self.ring, 63, now, spec, self.reason))

    def observe(self, now: int, **values: float) -> None:
        for name, value in values.items():
            self.ring[getattr(_jit, f"OBS_{name.upper()}"), (now - 1) & 63] = value

    def check_reason(self, ctl: HpaController | KedaController, before: str, changed: bool) -> None:
        code, x, y, _ = self.reason
        if code:
            assert ctl.kernel_reason(int(code), (x, y, 0.0)) == ctl.reason
        else:
            assert not changed and ctl.reason == before


@pytest.mark.parametrize("seed", range(12))
def test_hpa_twin_decides_as_the_python_controller(seed: int) -> None:
    ctl, rng = hpa_case(seed)
    params = twins.hpa_params(ctl.hpa, ctl.tolerances, ctl.metric, ctl.target)
    twin = (_jit.KIND_HPA, params, twins.hpa_state(params))
    kernel = Ticks()
    spec = ctl.initial
    for now in times(rng, ctl.period):
        if rng.random() < 0.05:  # someone else sets the replicas (in and out of [min, max], and 0)
            spec = int(rng.integers(0, ctl.hpa.max + 3))
        pods = spec + int(rng.integers(0, 2))
        ready = int(rng.integers(0, pods + 1)) if rng.random() < 0.3 else pods
        usage = usage_near(rng, ctl.target, 1)
        view = SimpleNamespace(
            ready=np.array([ready]), pods=pods, cpu=np.array([usage]), gpu=np.array([usage])
        )
        kernel.observe(now, ready=ready, cpu=usage, gpu=usage)
        before = ctl.reason
        expected = ctl.decide(view, 0, now, spec)  # type: ignore[arg-type]
        got = kernel.decide(twin, now, spec, pods)
        assert (now, got) == (now, expected)
        kernel.check_reason(ctl, before, got != spec)
        assert twins.limit_reason(twin[2]) == ctl.hpa.reason
        spec = expected


def keda_case(seed: int) -> tuple[KedaController, np.random.Generator]:
    rng = np.random.default_rng(1000 + seed)
    low = int(rng.choice([0, 0, 1, 2]))
    keda_version = ((2, 16), (2, 17), (2, 20))[int(rng.integers(0, 3))]
    fallback = int(rng.integers(1, 6)) if rng.random() < 0.6 else None
    behaviors = ["static"] + (["currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"] * 2)
    cron = tuple(
        CronFloor(
            float(rng.integers(0, 12)),
            float(rng.integers(12, 25)) - float(rng.choice([0.0, 0.5])),
            int(rng.integers(1, 5)),
            tuple(int(x) for x in rng.choice(7, size=int(rng.integers(1, 7)), replace=False)),
            float(rng.choice([0.0, 0.0, 3600.0 * 5.5, -7200.0, 86400.0 * 3 + 0.25])),
        )
        for _ in range(int(rng.integers(0, 3)))
    )
    outages = tuple(
        Outage(a, a + int(rng.integers(15, 3600)))
        for a in sorted(int(x) for x in rng.integers(0, 40000, size=int(rng.integers(0, 4))))
    )
    ctl = KedaController(
        f"keda-{seed}",
        threshold=float(rng.choice([1.0, 2.5, 5.0, 10.0])),
        activation=float(rng.choice([0.0, 1.0, 5.0])),
        min_replicas=low,
        max_replicas=low + int(rng.integers(1, 9)),
        polling=int(rng.choice([5, 10, 15, 30, 60])),
        cooldown=int(rng.choice([30, 120, 300])),
        behavior=random_behavior(rng),
        cron=cron,
        outages=outages,
        fallback_replicas=fallback,
        failure_threshold=int(rng.integers(0, 4)),
        fallback_behavior=str(rng.choice(behaviors)) if keda_version >= (2, 17) else "static",
        idle_replicas=0 if low > 0 and rng.random() < 0.5 else None,
        initial_cooldown=int(rng.choice([0, 60, 600])),
        kubernetes_version=VERSIONS[int(rng.integers(0, len(VERSIONS)))],
        keda_version=keda_version,
    )
    return ctl, rng


def assert_same_keda_state(ctl: KedaController, state: np.ndarray) -> None:
    assert state[_jit.KDS_FAILURES] == ctl.failures
    last = state[_jit.KDS_LAST_ACTIVE]
    assert (None if math.isnan(last) else last) == ctl.last_active
    assert twins.limit_reason(state[_jit.KDS_HPA :]) == ctl.hpa.reason


@pytest.mark.parametrize("seed", range(16))
def test_keda_twin_decides_as_the_python_controller(seed: int) -> None:
    ctl, rng = keda_case(seed)
    tick_times = times(rng, ctl.period)
    ctl.outages = tuple(Outage(tick_times[0] + o.start, tick_times[0] + o.end) for o in ctl.outages)
    params = twins.keda_params(ctl)
    twin = (_jit.KIND_KEDA, params, twins.keda_state(params))
    kernel = Ticks()
    spec = ctl.initial
    for now in tick_times:
        if rng.random() < 0.03:
            spec = int(rng.integers(0, ctl.max + 2))
        value = 0.0 if rng.random() < 0.25 else usage_near(rng, ctl.threshold, max(spec, 1))
        view = SimpleNamespace(waiting=np.array([value]), running=np.array([value]), conc=np.array([value]))
        kernel.observe(now, waiting=value, running=value + 1.0, conc=value + 2.0)
        before = ctl.reason
        expected = ctl.decide(view, 0, now, spec)  # type: ignore[arg-type]
        got = kernel.decide(twin, now, spec, spec)
        assert (now, got) == (now, expected)
        kernel.check_reason(ctl, before, got != spec)
        assert_same_keda_state(ctl, twin[2])
        spec = expected


def test_keda_twin_reads_its_trigger_metric() -> None:
    """metric=waiting|running|concurrency picks the observation row the Python controller's _value reads."""
    kernel = Ticks()
    kernel.observe(15, waiting=0.0, running=0.0, conc=0.0)
    for metric, row in (("waiting", "waiting"), ("running", "running"), ("concurrency", "conc")):
        ctl = KedaController("keda", metric=metric, min_replicas=1, threshold=5.0)
        params = twins.keda_params(ctl)
        kernel.observe(15, **{row: 50.0})
        assert kernel.decide((_jit.KIND_KEDA, params, twins.keda_state(params)), 15, 1, 1) == 4
        kernel.observe(15, **{row: 0.0})


def test_reason_codes_agree() -> None:
    """The compiled kernel's reason codes (constants of _jit.py, where numba's cache sees them) are sim/reasons.py's."""
    names = [n for n in dir(reasons) if n.isupper() and n != "NONE"]
    assert len(names) == 8
    for name in names:
        prefix, _, rest = name.partition("_")
        assert getattr(_jit, f"{prefix}_REASON_{rest}") == getattr(reasons, name)


def test_cron_floor_holds_at_the_offset_wall_clock() -> None:
    """KedaController.decide reads a cron floor at `t + offset`, as its scan (CronFloor.active) does."""
    floor = CronFloor(9.0, 17.0, 3, offset=8 * 3600.0)  # second 0 is Monday 08:00
    ctl = KedaController("keda", min_replicas=1, cron=(floor,))
    view = SimpleNamespace(waiting=np.array([0.0]))
    assert ctl.decide(view, 0, 3600, 1) == 3  # type: ignore[arg-type]  # Monday 09:00
    assert bool(floor.active(np.array([3600.0]))[0]) and floor.holds(3600)
    params = twins.keda_params(ctl)
    assert _jit.keda_cron_floor(params, 3600) == 3
    assert _jit.keda_cron_floor(params, 9 * 3600) == 0


HPA_KEDA_OPTIONS = (
    "cpu-hpa:min=1:max=6:target=5",
    "cpu-hpa:k8s-version=1.32:target=4:max=8",
    "gpu-hpa:max=6:target=60",
    "keda:cron=9-17x2:outage=2h-3h:fallback=3:failure-threshold=2",
    "keda:down-window=120:down-pods=2:down-period=30:metric=running:threshold=3",
    "keda-zero:idle=0:min=1:fallback=2:fallback-behavior=currentReplicasIfHigher:outage=1h-80m",
    "keda:keda-version=2.16:fallback=4:outage=4000-9000:polling=5:cooldown=60",
    "keda-zero:initial-cooldown=600:k8s-version=1.30:activation=2",
    "keda-zero:polling=30:cooldown=45",
)


@pytest.mark.parametrize(
    ("pattern", "rps", "engine", "timeout"),
    [("diurnal", None, "8b", 120.0), ("spiky", 45.0, "70b", 30.0), ("business-hours", None, "8b", 10.0)],
)
def test_simulations_with_the_twins_equal_the_python_path(pattern, rps, engine, timeout):
    """Whole simulations of HPA and KEDA policies on the compiled kernel equal the Python reference path:
    results, and every scale event with its reason text."""

    def run(kernel_on: bool) -> tuple[list[dict[str, object]], list[list[tuple[int, int, int, str]]]]:
        s = sim.Simulation(
            sim.pattern(pattern, rps),
            sim.engine_profile(engine),
            sim.coldstart_profile("8b-warm"),
            [sim.build_controller(p) for p in sim.parse_policies(",".join(HPA_KEDA_OPTIONS))],
            12 * 3600,
            seed=5,
            timeout=timeout,
            kernel=kernel_on,
        )
        assert {type(r).__name__ for r in s.runs} == {"KernelRun" if kernel_on else "PolicyRun"}
        results = [r.to_dict() for r in s.run()]
        return results, [[(e.time, e.old, e.new, e.reason) for e in r.events] for r in s.runs]

    compiled, python = run(True), run(False)
    assert compiled == python
    assert sum(r["scale_events"] for r in compiled[0]) > 0  # type: ignore[misc]
