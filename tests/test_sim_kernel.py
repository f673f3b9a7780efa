"""The compiled kernel (sim/kernel.py, sim/_jit.py) against the Python reference path (core.PolicyRun).

Both simulate the same model; results must agree to the 4 decimals `PolicyResult.to_dict` keeps, with the
same scale events (time, old, new, reason text), pods and live state. The scenarios are drawn at random
(patterns, rates, engines, cold starts, client timeouts, KPA options, the activator's buffering), a few
dozen hours in all, so the test stays within seconds once numba's cache is warm.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim import kernel
from kubectl_gpuscale.sim.core import PolicyRun
from kubectl_gpuscale.sim.policies import AlwaysOn

pytestmark = pytest.mark.skipif(kernel.load() is None, reason="numba cannot be imported")

KPA_OPTIONS = (
    "",
    ":min=1",
    ":max=0",
    ":target=3:max=0",
    ":delay=30s",
    ":min=1:delay=60s",
    ":window=20s:panic-window=20",
    ":grace=5s",
    ":retention=90s",
    ":initial=3",
    ":initial=3:reachable=false:delay=30s",
    ":initial-scale=2:activation-scale=2",
    ":activation-scale=3:max=8",
    ":metric=rps:target=5:max=10",
    ":progress-deadline=5s:window=6s",
    ":panic-threshold=150:max-up-rate=2",
)
PATTERNS = ("spiky", "step", "diurnal", "dev", "business-hours", "constant")


def _simulation(
    policies: str, traffic: sim.Pattern | sim.Trace, seconds: int, kernel_on: bool | None, **kw: object
) -> sim.Simulation:
    return sim.Simulation(
        traffic,
        sim.engine_profile(str(kw.pop("engine", "8b"))),
        sim.coldstart_profile(str(kw.pop("coldstart", "8b-warm"))),
        [sim.build_controller(p) for p in sim.parse_policies(policies)],
        seconds,
        seed=int(kw.pop("seed", 1)),
        timeout=float(kw.pop("timeout", 120.0)),
        kernel=kernel_on,
    )


def _events(s: sim.Simulation) -> list[list[tuple[int, int, int, str]]]:
    return [[(e.time, e.old, e.new, e.reason) for e in r.events] for r in s.runs]


def _scenarios(count: int) -> list[tuple[str, str, float, int, dict[str, object]]]:
    rng = random.Random(17)
    out = []
    for _ in range(count):
        name = rng.choice(PATTERNS)
        rps = {"dev": rng.choice([200.0, 2000.0, 20000.0])}.get(name, rng.choice([2.0, 15.0, 45.0, 90.0]))
        policies = ",".join(
            ["always-on" + rng.choice(["", ":n=2"])] + [f"knative{rng.choice(KPA_OPTIONS)}" for _ in range(3)]
        )
        kw: dict[str, object] = {
            "engine": rng.choice(["8b", "70b"]),
            "coldstart": rng.choice(["8b-warm", "70b-uncached", "criu"]),
            "timeout": rng.choice([10.0, 60.0, 120.0]),
            "seed": rng.randrange(1000),
        }
        seconds = rng.choice([3 * 3600, 9 * 3600, 86400]) if name in ("dev", "business-hours") else 3 * 3600
        out.append((policies, name, rps, seconds, kw))
    return out


@pytest.mark.parametrize(("policies", "name", "rps", "seconds", "kw"), _scenarios(14))
def test_kernel_equals_the_python_path(policies, name, rps, seconds, kw):
    compiled = _simulation(policies, sim.pattern(name, rps), seconds, True, **dict(kw))
    python = _simulation(policies, sim.pattern(name, rps), seconds, False, **dict(kw))
    assert not any(isinstance(r, PolicyRun) for r in compiled.runs)
    assert [r.to_dict() for r in compiled.run()] == [r.to_dict() for r in python.run()]
    assert _events(compiled) == _events(python)
    for a, b in zip(compiled.series(), python.series(), strict=True):
        np.testing.assert_allclose(a.pods, b.pods, rtol=1e-12)
        np.testing.assert_allclose(a.waiting, b.waiting, rtol=1e-6, atol=1e-6)


def test_held_requests_and_the_activation_timeout_on_a_sparse_trace():
    """The activator holds requests at zero, releases them FIFO to the first pod, and times out those
    older than the client timeout (kpa/scaler.go's activation timeout included)."""
    times = np.array([600.0 * k + j for k in range(6) for j in range(3)])
    counts = np.bincount(times.astype(int), minlength=3600).astype(np.float64)
    trace = sim.Trace(counts, 512.0, 256.0, int(counts.sum()))
    for policy in ("knative:progress-deadline=5s:window=6s", "knative", "knative:min=1:grace=5s"):
        compiled = _simulation(policy, trace, 3600, True, timeout=10.0)
        python = _simulation(policy, trace, 3600, False, timeout=10.0)
        assert [r.to_dict() for r in compiled.run()] == [r.to_dict() for r in python.run()], policy
        assert _events(compiled) == _events(python), policy


def test_stepping_equals_one_run_and_live_states_match_the_python_path():
    policies = "always-on,knative:max=0,knative:min=1:delay=30s"
    whole = _simulation(policies, sim.pattern("spiky", 60.0), 4 * 3600, True)
    whole.run()
    stepped = _simulation(policies, sim.pattern("spiky", 60.0), 4 * 3600, True)
    python = _simulation(policies, sim.pattern("spiky", 60.0), 4 * 3600, False)
    rng = random.Random(3)
    while not stepped.done:
        dt = rng.choice([1, 2, 7, 60, 137, 900])
        mine, theirs = stepped.advance(dt), python.advance(dt)
        for a, b in zip(mine, theirs, strict=True):
            assert (a.desired, a.ready, a.pods, a.events, a.ttft_p95) == (
                b.desired,
                b.ready,
                b.pods,
                b.events,
                b.ttft_p95,
            )
            for x, y in ((a.waiting, b.waiting), (a.running, b.running), (a.gpu_util_pct, b.gpu_util_pct)):
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9)
    assert [r.to_dict() for r in stepped.results()] == [r.to_dict() for r in whole.results()]
    assert max(r.max_replicas for r in whole.results()) > 8  # the pod table grew (NEED_PODS) on the way


class PythonOnly(AlwaysOn):
    """An always-on controller without a compiled twin."""

    def kernel_twin(self) -> None:
        return None


def test_policies_without_a_compiled_twin_run_on_the_python_path_beside_the_kernel(monkeypatch):
    def mixed_run(kernel_on: bool) -> sim.Simulation:
        controllers = [sim.build_controller(p) for p in sim.parse_policies("keda,knative,cpu-hpa")]
        return sim.Simulation(
            sim.pattern("spiky", 30.0),
            sim.engine_profile("8b"),
            sim.coldstart_profile("8b-warm"),
            [*controllers, PythonOnly("python-only", 2)],
            3600,
            seed=1,
            kernel=kernel_on,
        )

    mixed = mixed_run(True)
    assert [type(r).__name__ for r in mixed.runs] == ["KernelRun", "KernelRun", "KernelRun", "PolicyRun"]
    python = mixed_run(False)
    assert [r.to_dict() for r in mixed.run()] == [r.to_dict() for r in python.run()]
    monkeypatch.setenv("GPUSCALE_SIM_KERNEL", "0")
    off = _simulation("knative", sim.pattern("spiky", 30.0), 60, None)
    assert isinstance(off.runs[0], PolicyRun)


def test_importing_the_simulator_does_not_import_numba():
    code = "import sys, kubectl_gpuscale.sim, kubectl_gpuscale.cli; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_policies_without_a_compiled_twin_do_not_import_numba():
    code = (
        "import sys; from kubectl_gpuscale import sim\n"
        "from kubectl_gpuscale.sim.policies import AlwaysOn, Controller\n"
        "class PythonOnly(AlwaysOn):\n"
        "    kernel_twin = Controller.kernel_twin\n"
        "sim.Simulation(sim.pattern('constant', 1.0), sim.engine_profile('8b'), sim.coldstart_profile('8b-warm'),"
        " [PythonOnly('python-only', 2)], 600).run()\n"
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
