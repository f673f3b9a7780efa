"""Scaling policies: always-on N, CPU HPA, KEDA (on top of the HPA), Knative KPA.

Each policy is a controller with a tick `period` (s). At each tick the simulation calls
`decide(view, i, now, spec)` with the chunk's per-second observations (`view`, index `i` is
the last second before the tick) and gets the new spec replicas. For speed the simulation
first calls `scan(view, ticks, spec)`, a vectorised test that returns the index of the
first tick at which `decide` could change anything (or len(ticks)); ticks before it are
steady and are summarised by `skip(view, ticks, spec)`. `scan` may be conservative (return
early) but must never skip a tick that would act: tests run every policy both ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim import reasons
from kubectl_gpuscale.sim.hpa import (
    Behavior,
    HpaState,
    ScalingPolicy,
    ScalingRules,
    external_replicas,
    plain_metric_replicas,
    resource_replicas,
    tolerances_for,
)
from kubectl_gpuscale.sim.keda import (
    FALLBACK_BEHAVIORS,
    Fallback,
    ScaledObjectSpec,
    metrics_with_fallback,
    request_scale,
)
from kubectl_gpuscale.sim.kpa import EPS, Decider, DeciderSpec, ScalerConfig, scaler_scale
from kubectl_gpuscale.units import duration_seconds

if TYPE_CHECKING:
    from kubectl_gpuscale.sim.core import ChunkView
    from kubectl_gpuscale.sim.kernel import KernelTwin


class Controller:
    """Base class: a policy's controller."""

    kind = "base"
    period = 15
    buffering = False  # requests are held (activator/interceptor) while there are 0 replicas
    initial = 1
    initial_ready = True  # the initial pods are Ready at time 0 (False: they cold-start, a new revision)
    history = 0  # seconds of past concurrency the controller's windows read
    history_source = "conc"  # the series those windows average: "conc", or "arrivals" for an RPS metric
    settle = 8  # ticks decided one by one after a flagged tick that changed nothing (saves rescans)

    def __init__(self, name: str) -> None:
        self.name = name
        self.reason = ""

    def scan(self, view: ChunkView, ticks: np.ndarray, spec: int) -> int:
        """Index of the first tick that needs `decide` (conservative: 0 always works)."""
        return 0

    def skip(self, view: ChunkView, ticks: np.ndarray, spec: int) -> None:
        """Account for steady ticks that were not decided one by one."""

    def decide(self, view: ChunkView, i: int, now: int, spec: int) -> int:
        """New spec replicas at tick `now`; `i` indexes the view's last observed second."""
        return spec

    def kernel_twin(self) -> KernelTwin | None:
        """The compiled counterpart (sim/kernel.py), or None: this controller runs on the Python path."""
        return None

    def kernel_reason(self, code: int, values: tuple[float, float, float]) -> str:
        """The text of a scale event the compiled twin reported as reason `code` with `values`."""
        return self.reason


class AlwaysOn(Controller):
    """N replicas, never scaled."""

    kind = "always-on"
    period = 3600

    def __init__(self, name: str, replicas: int = 1) -> None:
        super().__init__(name)
        self.initial = replicas

    def scan(self, view: ChunkView, ticks: np.ndarray, spec: int) -> int:
        return len(ticks)

    def kernel_twin(self) -> KernelTwin | None:
        from kubectl_gpuscale.sim.kernel import KernelTwin, loaded

        return KernelTwin(loaded().KIND_ALWAYS_ON)


class HpaController(Controller):
    """A plain autoscaling/v2 HPA on a per-pod metric: CPU (a Resource Utilization target) or GPU
    (DCGM `GPU_UTIL` through a metrics adapter: a Pods metric with an AverageValue target).

    Pods that are not Ready are, for CPU, unready samples (inside the CPU initialisation period:
    0 % on a scale-up, ignored otherwise); for the GPU metric they have no series yet (missing:
    0 on a scale-up, the target on a scale-down, and no direction flip). `behavior` None is an
    HPA without `spec.behavior` (kubernetes' older normalization path).
    """

    kind = "hpa"
    period = d.HPA_SYNC_PERIOD_S

    def __init__(
        self,
        name: str,
        metric: str = "cpu",
        target: float = 70.0,
        min_replicas: int = 1,
        max_replicas: int = 5,
        behavior: Behavior | None = None,
        tolerance: float = d.HPA_TOLERANCE,
        kubernetes_version: tuple[int, int] = d.KUBERNETES_VERSION,
    ) -> None:
        super().__init__(name)
        self.metric = metric
        self.target = target
        self.tolerances = tolerances_for(kubernetes_version, tolerance)
        self.hpa = HpaState(min_replicas, max_replicas, behavior)
        self.initial = max(1, min_replicas)

    def _usage(self, view: ChunkView) -> np.ndarray:
        return view.cpu if self.metric == "cpu" else view.gpu

    def _recommend(self, spec: int, ready: int, not_ready: int, usage: float) -> int:
        if self.metric == "cpu":
            return resource_replicas(spec, ready, not_ready, usage, self.target, self.tolerances)
        return plain_metric_replicas(spec, ready, 0, not_ready, usage, self.target, self.tolerances)

    def scan(self, view: ChunkView, ticks: np.ndarray, spec: int) -> int:
        if spec == 0 or spec < self.hpa.min or spec > self.hpa.max:
            return 0
        idx = ticks - 1 - view.t0
        usage = self._usage(view)[idx]
        ready = view.ready[idx]
        not_ready = view.pods - ready
        if self.metric == "cpu":  # the integer utilisation of GetResourceUtilizationRatio
            ratio = np.floor_divide(np.round(usage * 10.0), 10.0) / round(self.target)
        else:  # GetMetricUsageRatio on milli-values
            ratio = np.round(usage * 1000.0) / (round(self.target * 1000.0))
        rec = np.where(self.tolerances.within_array(ratio), spec, np.ceil(ratio * ready))
        rec = np.clip(rec, self.hpa.min, self.hpa.max)
        act = (rec != spec) | ((not_ready > 0) & (ratio > 1.0)) | (ready <= 0)
        if self.metric != "cpu":
            act |= not_ready > 0
        if self.hpa.behavior is None and spec < self.hpa.max:
            # no spec.behavior: a higher recommendation still in the window scales up by itself
            held_up = max((t for t, r in self.hpa.recommendations if r > spec), default=-1e18)
            act |= ticks - self.hpa.down_window <= held_up
        hits = np.flatnonzero(act)
        return int(hits[0]) if hits.size else len(ticks)

    def skip(self, view: ChunkView, ticks: np.ndarray, spec: int) -> None:
        if len(ticks):
            self.hpa.note_steady(float(ticks[-1]), spec)

    def decide(self, view: ChunkView, i: int, now: int, spec: int) -> int:
        ready = int(view.ready[i])
        rec = self._recommend(spec, ready, view.pods - ready, float(self._usage(view)[i]))
        new = self.hpa.reconcile(float(now), spec, rec)
        self.reason = self.reason_text(reasons.HPA_METRIC, float(self._usage(view)[i]), 0)
        return new

    def reason_text(self, code: int, x: float, y: float) -> str:
        """The text of a reason `(code, x, y)` (sim/reasons.py) this controller gave."""
        return reasons.hpa_reason(self.metric, self.target, x) if code == reasons.HPA_METRIC else ""

    def kernel_reason(self, code: int, values: tuple[float, float, float]) -> str:
        return self.reason_text(code, values[0], values[1])

    def kernel_twin(self) -> KernelTwin | None:
        """The HPA's parameters and fresh state for `_jit.hpa_decide` (None once this controller has synced)."""
        from kubectl_gpuscale.sim import twins  # only when simulating
        from kubectl_gpuscale.sim.kernel import KernelTwin, loaded

        if self.hpa.seen:
            return None
        params = twins.hpa_params(self.hpa, self.tolerances, self.metric, self.target)
        return KernelTwin(loaded().KIND_HPA, params, twins.hpa_state(params))


@dataclass(frozen=True)
class CronFloor:
    """A KEDA cron trigger: `replicas` from `start` to `end` (hours) on `days` (0=Mon).

    The hours are wall-clock time `t + offset` for simulation seconds `t`: 0 (the default) puts
    second 0 at a Monday 00:00; a replayed history sets the offset from its first timestamp.
    """

    start: float
    end: float
    replicas: int
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    offset: float = 0.0

    def active(self, t: np.ndarray) -> np.ndarray:
        """Whether the floor holds at each simulation second in `t`."""
        if self.offset:
            t = t + self.offset
        hour = (t % 86400) / 3600.0
        day = (t // 86400) % 7
        return (hour >= self.start) & (hour < self.end) & np.isin(day, self.days)

    def holds(self, now: int) -> bool:
        """`active` at one simulation second."""
        t = now + self.offset if self.offset else now
        hour = (t % 86400) / 3600.0
        return self.start <= hour < self.end and (t // 86400) % 7 in self.days


@dataclass(frozen=True)
class Outage:
    """The metric source fails (e.g. Prometheus down) from `start` to `end` seconds."""

    start: int
    end: int


class KedaController(Controller):
    """A KEDA ScaledObject: the operator (activation, cooldown to zero, fallback) plus the HPA it owns.

    The HPA syncs every 15 s on the trigger's AverageValue target (desired = ceil(value/threshold)),
    the operator polls every `polling` s for 0 <-> 1. `metric` is what the Prometheus query sums:
    `waiting` (vllm:num_requests_waiting), `running`, or `concurrency` (running+waiting; with `http`,
    the HTTP add-on's interceptor count, which also holds requests at zero).
    """

    kind = "keda"
    period = d.HPA_SYNC_PERIOD_S

    def __init__(
        self,
        name: str,
        metric: str = "waiting",
        threshold: float = 5.0,
        activation: float = d.KEDA_ACTIVATION_THRESHOLD,
        min_replicas: int = d.KEDA_MIN_REPLICAS,
        max_replicas: int = d.KEDA_MAX_REPLICAS,
        polling: int = d.KEDA_POLLING_INTERVAL_S,
        cooldown: int = d.KEDA_COOLDOWN_PERIOD_S,
        behavior: Behavior | None = None,
        http: bool = False,
        cron: tuple[CronFloor, ...] = (),
        outages: tuple[Outage, ...] = (),
        fallback_replicas: int | None = None,
        failure_threshold: int = d.KEDA_FALLBACK_FAILURE_THRESHOLD,
        fallback_behavior: str = "static",
        idle_replicas: int | None = None,
        initial_cooldown: int = d.KEDA_INITIAL_COOLDOWN_PERIOD_S,
        kubernetes_version: tuple[int, int] = d.KUBERNETES_VERSION,
        keda_version: tuple[int, int] = d.KEDA_VERSION,
    ) -> None:
        super().__init__(name)
        if fallback_behavior not in FALLBACK_BEHAVIORS:
            raise ValueError(
                f"fallback behavior {fallback_behavior!r} is not one of {', '.join(FALLBACK_BEHAVIORS)}"
            )
        if fallback_behavior != "static" and keda_version < d.KEDA_FALLBACK_BEHAVIOR_SINCE:
            raise ValueError(
                f"fallback.behavior {fallback_behavior!r} needs KEDA "
                f"{'.'.join(map(str, d.KEDA_FALLBACK_BEHAVIOR_SINCE))} or newer"
            )
        if idle_replicas is not None and not 0 <= idle_replicas < min_replicas:
            raise ValueError("idleReplicaCount must be less than minReplicaCount")
        self.metric = metric
        self.tolerances = tolerances_for(kubernetes_version)
        self.keda_version = keda_version
        self.threshold = threshold
        self.activation = activation
        self.min = min_replicas
        self.max = max_replicas
        self.polling = polling
        self.cooldown = cooldown
        self.http = http
        self.buffering = http
        self.cron = cron
        self.outages = outages
        fallback = (
            Fallback(fallback_replicas, failure_threshold, fallback_behavior) if fallback_replicas else None
        )
        self.so = ScaledObjectSpec(min_replicas, idle_replicas, cooldown, initial_cooldown, fallback)
        self.fallback_replicas = fallback_replicas
        self.failure_threshold = failure_threshold
        self.failures = 0
        self.hpa = HpaState(max(1, min_replicas), max_replicas, behavior)
        self.last_active: float | None = None
        self.initial = max(1, min_replicas) if min_replicas > 0 else 0
        self.period = math.gcd(d.HPA_SYNC_PERIOD_S, polling)

    def kernel_reason(self, code: int, values: tuple[float, float, float]) -> str:
        return self.reason_text(code, values[0], values[1])

    def kernel_twin(self) -> KernelTwin | None:
        """The ScaledObject's and its HPA's parameters and fresh state for `_jit.keda_decide` (None once this
        controller has decided)."""
        from kubectl_gpuscale.sim import twins  # only when simulating
        from kubectl_gpuscale.sim.kernel import KernelTwin, loaded

        if self.hpa.seen or self.failures or self.last_active is not None:
            return None
        params = twins.keda_params(self)
        return KernelTwin(loaded().KIND_KEDA, params, twins.keda_state(params))

    def reason_text(self, code: int, x: float, y: float) -> str:
        """The text of a reason `(code, x, y)` (sim/reasons.py) this controller gave."""
        return reasons.keda_reason(
            code, x, y, metric=self.metric, threshold=self.threshold, cooldown=self.cooldown
        )

    def _deadline(self) -> float:
        """The time after which an inactive poll scales to zero/idle (strictly after it)."""
        if self.last_active is None:
            return 0.0 + self.so.initial_cooldown
        return self.last_active + self.cooldown

    def _value(self, view: ChunkView) -> np.ndarray:
        if self.metric == "waiting":
            return view.waiting
        if self.metric == "running":
            return view.running
        return view.conc

    def _floor(self, ticks: np.ndarray) -> np.ndarray:
        floor = np.zeros(ticks.shape)
        for c in self.cron:
            floor = np.maximum(floor, np.where(c.active(ticks.astype(np.float64)), c.replicas, 0))
        return floor

    def _in_outage(self, ticks: np.ndarray) -> np.ndarray:
        out = np.zeros(ticks.shape, dtype=bool)
        for o in self.outages:
            out |= (ticks >= o.start) & (ticks < o.end)
        return out

    def _raw(self, value: np.ndarray, floor: np.ndarray, spec: int) -> np.ndarray:
        """What the HPA's metric asks for at each tick (before stabilization and limits)."""
        ratio = value / (self.threshold * spec)
        rec = np.where(self.tolerances.within_array(ratio), spec, np.ceil(value / self.threshold))
        wanted: np.ndarray = np.maximum(rec, floor)
        return wanted

    def _grid(self, view: ChunkView) -> dict[str, Any]:
        """Per-chunk arrays over its tick grid (the multiples of the period in (t0, t0 + n]), computed once."""
        g: dict[str, Any] | None = view.memo.get("keda")
        if g is None:
            first = (view.t0 // self.period + 1) * self.period
            ticks = np.arange(first, view.t0 + view.n + 1, self.period, dtype=np.int64)
            value = self._value(view)[ticks - 1 - view.t0]
            floor = self._floor(ticks)
            active = (value > self.activation) | (floor > 0)
            poll = (ticks % self.polling) == 0
            g = view.memo["keda"] = {
                "first": first,
                "tf": ticks.astype(np.float64),
                "value": value,
                "floor": floor,
                "active": active,
                "poll": poll,
                "poll_active": poll & active,
                "poll_idle": poll & ~active,
                "sync": (ticks % d.HPA_SYNC_PERIOD_S) == 0,
                "outage": self._in_outage(ticks),
                "by_spec": {},
            }
        return g

    def _grid_spec(
        self, g: dict[str, Any], spec: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw recommendation, syncs recommending >= spec, syncs that scale up, syncs that want to scale down)."""
        got: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = g["by_spec"].get(spec)
        if got is None:
            raw = self._raw(g["value"], g["floor"], spec)
            rec = np.minimum(np.maximum(raw, self.hpa.min), self.hpa.max)
            sync = g["sync"]
            got = g["by_spec"][spec] = (raw, sync & (raw >= spec), sync & (rec > spec), sync & (rec < spec))
        return got

    def _slice(self, g: dict[str, Any], ticks: np.ndarray) -> slice:
        j0 = (int(ticks[0]) - g["first"]) // self.period
        return slice(j0, j0 + len(ticks))

    def scan(self, view: ChunkView, ticks: np.ndarray, spec: int) -> int:
        if self.failures or not len(ticks):
            return 0
        n = len(ticks)
        g = self._grid(view)
        sl = self._slice(g, ticks)
        act = g["outage"][sl]
        if spec == 0:
            act = act | g["poll_active"][sl]
        else:
            if spec < self.hpa.min or spec > self.hpa.max:
                return 0
            _, ge, up, down = self._grid_spec(g, spec)
            act = act | up[sl]
            tf = g["tf"][sl]
            if spec > self.hpa.min:  # at the minimum no recommendation is below spec
                # a scale-down waits while the window holds a recommendation >= spec (recorded, or earlier here)
                window = self.hpa.down_window
                held = max((t for t, r in self.hpa.recommendations if r >= spec), default=-1e18)
                last_ge = np.maximum(np.maximum.accumulate(np.where(ge[sl], tf, -1e18)), held)
                act |= down[sl] & ~(last_ge > tf - window)
            if self.hpa.behavior is None and spec < self.hpa.max:
                # no spec.behavior: a higher recommendation still in the window scales up by itself
                held_up = max((t for t, r in self.hpa.recommendations if r > spec), default=-1e18)
                act |= g["sync"][sl] & (tf - self.hpa.down_window <= held_up)
            if self.min == 0 or self.so.idle_replicas is not None:
                last = np.maximum.accumulate(np.where(g["poll_active"][sl], tf, -1e18))
                deadline = np.where(last > -1e18, last + self.cooldown, self._deadline())
                act |= g["poll_idle"][sl] & (tf > deadline)
        k = int(act.argmax())
        return k if act[k] else n

    def skip(self, view: ChunkView, ticks: np.ndarray, spec: int) -> None:
        if not len(ticks):
            return
        g = self._grid(view)
        sl = self._slice(g, ticks)
        pa = g["poll_active"][sl]
        k = len(ticks) - 1 - int(pa[::-1].argmax())
        if pa[k]:
            self.last_active = max(
                self.last_active if self.last_active is not None else -1e18, float(ticks[k])
            )
        sync = g["sync"][sl]
        if spec > 0 and sync.any():
            # record what each skipped sync recommended, as reconcile would (only the horizon matters)
            st = ticks[sync]
            raw = self._grid_spec(g, spec)[0][sl][sync]
            keep = st > st[-1] - self.hpa.horizon()
            self.hpa.record_initial(float(st[0]), spec)
            self.hpa.record(st[keep].tolist(), raw[keep].astype(np.int64).tolist())

    def decide(self, view: ChunkView, i: int, now: int, spec: int) -> int:
        value = float(self._value(view)[i])
        floor = max([0] + [c.replicas for c in self.cron if c.holds(now)])
        failed = any(o.start <= now < o.end for o in self.outages)
        fetched = None if failed else value
        target = self.threshold
        if now % self.polling == 0:  # the operator's poll: one metric fetch, then RequestScale
            _, self.failures, _ = metrics_with_fallback(
                fetched, self.failures, self.so.fallback, target, spec
            )
            active = (not failed and value > self.activation) or floor > 0
            new, self.last_active = request_scale(
                self.so, spec, active, failed, self.last_active, 0.0, float(now), self.keda_version
            )
            if new != spec:
                code = (
                    reasons.KEDA_ACTIVATED
                    if new > spec and active
                    else reasons.KEDA_FALLBACK_SCALING
                    if failed
                    else reasons.KEDA_COOLDOWN
                    if new < spec
                    else reasons.KEDA_MIN_REPLICAS
                )
                self.reason = self.reason_text(code, new, 0)
                return new
        if now % d.HPA_SYNC_PERIOD_S == 0 and spec > 0:  # the HPA's sync: its own fetch
            got, self.failures, used = metrics_with_fallback(
                fetched, self.failures, self.so.fallback, target, spec
            )
            rec: int | None
            if got is None:
                rec = floor if floor > spec else None  # a failing metric blocks all but a scale-up
                self.reason = self.reason_text(reasons.KEDA_UNAVAILABLE, 0, 0)
            else:
                rec = max(external_replicas(spec, got, self.threshold, self.tolerances), floor)
                self.reason = (
                    self.reason_text(reasons.KEDA_FALLBACK, rec, 0)
                    if used
                    else self.reason_text(reasons.KEDA_METRIC, value, floor)
                )
            return self.hpa.reconcile(float(now), spec, rec)
        return spec


class KpaController(Controller):
    """Knative's KPA: the autoscaler's decider (sim/kpa.py Decider) every 2 s on the window means of
    concurrency, then the KPA reconciler's scaler (min/max, scale-to-zero state machine), with the
    activator holding requests at zero. `initial` pods are Ready at time 0 (an autoscaler that
    starts, or restarts, on a running revision: more than one starts it in panic mode)."""

    kind = "knative"
    period = d.KNATIVE_TICK_S
    buffering = True
    settle = 0  # scan is exact in stable mode: a state change without a new spec rescans at once

    def __init__(
        self,
        name: str,
        target: float = d.KNATIVE_CONTAINER_CONCURRENCY_TARGET,
        utilization: float = d.KNATIVE_TARGET_UTILIZATION,
        min_scale: int = 0,
        max_scale: int = 0,
        window: int = d.KNATIVE_STABLE_WINDOW_S,
        panic_pct: float = d.KNATIVE_PANIC_WINDOW_PERCENTAGE,
        panic_threshold_pct: float = d.KNATIVE_PANIC_THRESHOLD_PERCENTAGE,
        max_up_rate: float = d.KNATIVE_MAX_SCALE_UP_RATE,
        max_down_rate: float = d.KNATIVE_MAX_SCALE_DOWN_RATE,
        grace: int = d.KNATIVE_SCALE_TO_ZERO_GRACE_S,
        scale_down_delay: int = d.KNATIVE_SCALE_DOWN_DELAY_S,
        initial: int = 1,
        activation_scale: int = 1,
        reachable: bool = True,
        pod_retention: int = d.KNATIVE_POD_RETENTION_S,
        progress_deadline: int = d.KNATIVE_PROGRESS_DEADLINE_S,
        initial_scale: int = 0,
        metric: str = "concurrency",
    ) -> None:
        super().__init__(name)
        if metric not in ("concurrency", "rps"):
            raise ValueError(f"metric {metric!r} is not concurrency or rps")
        self.metric = metric
        self.history_source = "arrivals" if metric == "rps" else "conc"
        self.target_value = target * utilization
        self.min = min_scale
        self.max = max_scale
        self.window = window
        self.panic_window = max(d.KNATIVE_TICK_S, int(round(window * panic_pct / 100.0)))
        self.history = max(window, self.panic_window)
        self.panic_threshold = panic_threshold_pct / 100.0
        self.max_up = max_up_rate
        self.max_down = max_down_rate
        self.grace = grace
        self.delay = scale_down_delay
        self.activation_scale = activation_scale
        self.reachable = reachable
        self.initial = max(initial, min_scale)
        self.initial_scale = initial_scale
        self.initialized = True
        ready_at_start = self.initial
        if initial_scale > 0:  # a new revision: initial-scale pods cold-start at time 0
            self.initial, self.initial_ready, self.initialized, ready_at_start = (
                initial_scale,
                False,
                False,
                0,
            )
        self.decider = Decider(
            DeciderSpec(
                self.target_value,
                max_up_rate,
                max_down_rate,
                self.panic_threshold,
                window,
                scale_down_delay,
                activation_scale,
                reachable,
            ),
            ready_at_start,
        )
        self.scaler = ScalerConfig(
            min_scale,
            max_scale,
            max(1, initial_scale),
            window,
            grace,
            pod_retention,
            progress_deadline,
            "Reachable" if reachable else "Unreachable",
        )
        self.last_pod = max(grace, pod_retention)
        self.pa = ("active" if self.initial_ready else "activating") if self.initial > 0 else "inactive"
        self.pa_since = -1e9 if self.initial_ready else 0.0

    @property
    def panic_time(self) -> float | None:
        """When the decider last saw the panic threshold crossed (None: stable mode)."""
        return self.decider.panic_time

    @property
    def max_panic_pods(self) -> int:
        """The decider's high-water mark in panic mode."""
        return self.decider.max_panic_pods

    def _clamp(self, n: np.ndarray) -> np.ndarray:
        lo = self.min if self.reachable else 0
        hi = self.max if self.max > 0 else 1 << 30
        clamped: np.ndarray = np.minimum(np.maximum(n, lo), hi)
        return clamped

    def _desired(self, view: ChunkView, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stable desired, panic desired, over the panic threshold) at the view's indices `idx`."""
        ds, dp, over = self._desired_all(view)
        return ds[idx], dp[idx], over[idx]

    def _desired_all(self, view: ChunkView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """kpa.desired_counts at every second of the view, computed once per view (the chunk's physics is fixed)."""
        got = view.memo.get("kpa")
        if got is None:
            stable = view.window_mean_all(self.window)
            panic = view.window_mean_all(self.panic_window)
            ready = np.maximum(1.0, view.ready.astype(np.float64))
            max_up = np.ceil(self.max_up * ready)
            max_down = np.floor(ready / self.max_down) if self.reachable else np.zeros_like(ready)
            dspc = np.ceil(stable / self.target_value - EPS)
            dppc = np.ceil(panic / self.target_value - EPS)
            ds = np.minimum(np.maximum(dspc, max_down), max_up)
            dp = np.minimum(np.maximum(dppc, max_down), max_up)
            if self.activation_scale > 1:
                ds = np.where((dspc > 0) & (ds < self.activation_scale), self.activation_scale, ds)
                dp = np.where((dppc > 0) & (dp < self.activation_scale), self.activation_scale, dp)
            over = dppc / ready >= self.panic_threshold
            got = view.memo["kpa"] = (ds, dp, over, self._clamp(ds))
        return got[:3]

    def _at_ticks(
        self, view: ChunkView, ticks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(stable desired, panic desired, over the threshold, clamped stable desired) at `ticks` (every period)."""
        self._desired_all(view)
        i0 = int(ticks[0]) - 1 - view.t0
        sl = slice(i0, i0 + len(ticks) * self.period, self.period)
        ds, dp, over, want = view.memo["kpa"]
        return ds[sl], dp[sl], over[sl], want[sl]

    def scan(self, view: ChunkView, ticks: np.ndarray, spec: int) -> int:
        if not len(ticks):
            return 0
        if (
            (self.pa == "active" and spec == 0)
            or not self.initialized
            or (self.pa in ("inactive", "activating") and self.panic_time is not None)
        ):
            return 0
        if self.delay > 0 and (self.pa != "active" or self.panic_time is not None):
            return 0  # the scale-down-delay window is scanned in the active, stable state only
        ds, dp, over, want = self._at_ticks(view, ticks)
        if self.delay > 0:
            want = self._clamp(self.decider.delayed_over(ticks // self.period, ds))
        if self.pa == "activating":
            # waiting for the first pod (stable mode): decide acts when a pod is ready, on a surge, on a
            # non-zero desired count other than spec, or when the activation times out (kpa/scaler.go)
            timeout = self.pa_since + self.scaler.progress_deadline + d.KNATIVE_ACTIVATION_TIMEOUT_BUFFER_S
            act = (
                over
                | (view.ready[ticks - 1 - view.t0] > 0)
                | np.where(want != 0, want != spec, ticks >= timeout)
            )
        elif self.panic_time is not None:
            tf = ticks.astype(np.float64)
            # in panic: never scale down; leave panic when the stable window has passed without a surge
            ptime = np.maximum.accumulate(np.where(over, tf, self.panic_time))
            mpp = np.maximum.accumulate(np.maximum(np.maximum(ds, dp), self.max_panic_pods))
            want = self._clamp(mpp)
            act = (want != spec) | (~over & (ptime + self.window < tf))
        elif self.pa == "inactive":
            act = over | (want != 0)
            if spec > 0:
                act |= ticks >= self.pa_since + self.last_pod
        else:
            # Active with a desired count of 0 keeps 1 pod until Active for a stable window (then Inactive)
            act = over | np.where(
                want != 0, want != spec, (spec != 1) | (ticks >= self.pa_since + self.window)
            )
        # the activator pokes the autoscaler as soon as a request arrives at zero
        if spec == 0:
            act |= view.conc[ticks - 1 - view.t0] > 0
        k = int(act.argmax())
        return k if act[k] else len(ticks)

    def skip(self, view: ChunkView, ticks: np.ndarray, spec: int) -> None:
        if not len(ticks):
            return
        if self.panic_time is None:
            if self.delay > 0:  # the ticks scan passed over still enter the delay window
                self.decider.record(ticks // self.period, self._desired(view, ticks - 1 - view.t0)[0])
            return
        ds, dp, over = self._desired(view, ticks - 1 - view.t0)
        if over.any():
            self.decider.panic_time = float(ticks[np.flatnonzero(over)[-1]])
        self.decider.max_panic_pods = max(self.max_panic_pods, int(np.maximum(ds, dp).max()))

    def decide(self, view: ChunkView, i: int, now: int, spec: int) -> int:
        stable = view.window_mean_at(i, self.window)
        panic = view.window_mean_at(i, self.panic_window)
        ready = int(view.ready[i])
        desired = self.decider.scale(float(now), ready, stable, panic)
        if spec == 0 and view.conc[i] > 0:
            desired = max(desired, 1)
        if desired > 0 and self.pa == "inactive":
            self.pa, self.pa_since = ("active" if ready > 0 else "activating"), float(now)
        elif self.pa == "activating" and ready > 0:
            self.pa, self.pa_since = "active", float(now)
        if not self.initialized and ready >= self.initial_scale:
            self.initialized = True  # MarkScaleTargetInitialized: initial-scale no longer a floor
        new, apply = scaler_scale(
            self.scaler, spec, desired, self.pa, float(now) - self.pa_since, self.initialized
        )
        if new == 0 and not apply and self.pa == "active":
            self.pa, self.pa_since = "inactive", float(now)  # Active for a stable window: mark Inactive
        if not apply:
            return spec
        if spec == 0 and new > 0:
            self.pa, self.pa_since = "activating", float(now)
        mode = "panic" if self.panic_time is not None else "stable"
        self.reason = self._reason_text(new == 0, mode, stable)
        return new

    def _reason_text(self, zero: bool, mode: str, stable: float) -> str:
        if zero:
            return f"no traffic for {self.window}s + grace {self.last_pod}s"
        return f"{mode}: {self.metric} {stable:.1f} / target {self.target_value:g}"

    def kernel_reason(self, code: int, values: tuple[float, float, float]) -> str:
        from kubectl_gpuscale.sim.kernel import loaded

        k = loaded()
        mode = "panic" if code == k.KPA_REASON_PANIC else "stable"
        return self._reason_text(code == k.KPA_REASON_ZERO, mode, values[0])

    def kernel_twin(self) -> KernelTwin | None:
        """The KPA's parameters and fresh state for `_jit.kpa_decide` (the Decider, the scaler config and
        the PodAutoscaler's state machine), or None for a configuration the twin does not model."""
        from kubectl_gpuscale.sim import twins  # only when simulating
        from kubectl_gpuscale.sim.kernel import KernelTwin, loaded

        arrays = twins.kpa_arrays(self)
        return None if arrays is None else KernelTwin(loaded().KIND_KPA, *arrays)


@dataclass
class PolicySpec:
    """A parsed `--policy` item: name and key=value options."""

    name: str
    options: dict[str, str] = field(default_factory=dict)


def _version(text: str) -> tuple[int, int]:
    """`1.33` or `v2.16.1` -> (major, minor)."""
    parts = text.strip().lstrip("v").split(".")
    if len(parts) < 2:
        raise ValueError(f"{text!r} is not a version like 1.33")
    return int(parts[0]), int(parts[1])


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(str(v) for v in version)


def _seconds(text: str) -> int:
    """Whole seconds of a policy option's duration (`300`, `5m`, `1h30m`)."""
    return int(round(duration_seconds(text)))


POLICY_HELP = {
    "always-on": "N replicas all the time (always-on:n=2)",
    "cpu-hpa": "an autoscaling/v2 HPA on CPU 70 % (the broken default on GPU pods)",
    "gpu-hpa": "an HPA on DCGM GPU utilisation 80 % via an adapter",
    "keda": "KEDA on vllm:num_requests_waiting, threshold 5, min 1 (the guide's ScaledObject)",
    "keda-zero": "KEDA + HTTP add-on: min 0, interceptor buffering, cooldown 300 s",
    "knative": "Knative KPA, concurrency target 10, min-scale 0 (the guide's ksvc)",
}


def parse_policies(text: str) -> list[PolicySpec]:
    """Parse `name[:k=v[:k=v]...][,name...]`."""
    specs = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, *opts = item.split(":")
        options = {}
        for o in opts:
            if "=" not in o:
                if name == "always-on" and o.isdigit():
                    options["n"] = o
                    continue
                raise InputError(
                    f"bad policy option {o!r} in {item!r}",
                    "options are key=value",
                    "e.g. keda:min=0:max=8:threshold=5",
                )
            k, v = o.split("=", 1)
            options[k.strip()] = v.strip()
        specs.append(PolicySpec(name.strip(), options))
    if not specs:
        raise InputError("no policy given", fix=f"use one or more of {', '.join(POLICY_HELP)}")
    return specs


def build_controller(spec: PolicySpec) -> Controller:
    """A fresh controller for a parsed policy."""
    o = dict(spec.options)
    label = spec.name + "".join(f":{k}={v}" for k, v in spec.options.items())

    def take(key: str, default: str) -> str:
        return o.pop(key, default)

    try:
        ctl: Controller
        if spec.name == "always-on":
            ctl = AlwaysOn(label, int(take("n", "1")))
        elif spec.name in ("cpu-hpa", "gpu-hpa"):
            metric = "cpu" if spec.name == "cpu-hpa" else "gpu"
            ctl = HpaController(
                label,
                metric,
                float(take("target", "70" if metric == "cpu" else "80")),
                int(take("min", "1")),
                int(take("max", "5")),
                kubernetes_version=_version(take("k8s-version", _dotted(d.KUBERNETES_VERSION))),
            )
        elif spec.name in ("keda", "keda-zero"):
            zero = spec.name == "keda-zero"
            behavior = None
            if "down-window" in o or "down-pods" in o:
                behavior = Behavior(
                    scale_down=ScalingRules(
                        _seconds(take("down-window", "300")),
                        (
                            ScalingPolicy(
                                "Pods", int(take("down-pods", "1")), _seconds(take("down-period", "60"))
                            ),
                        ),
                    )
                )
            cron: tuple[CronFloor, ...] = ()
            if "cron" in o:  # cron=9-17x2 : 9:00-17:00 weekdays, 2 replicas
                hours, _, reps = take("cron", "").partition("x")
                start, _, end = hours.partition("-")
                cron = (CronFloor(float(start), float(end), int(reps or "1")),)
            outages: tuple[Outage, ...] = ()
            if "outage" in o:  # outage=3600-7200
                a, _, b = take("outage", "").partition("-")
                outages = (Outage(_seconds(a), _seconds(b)),)
            fb = take("fallback", "")
            idle = take("idle", "")
            ctl = KedaController(
                label,
                metric=take("metric", "concurrency" if zero else "waiting"),
                threshold=float(take("threshold", "10" if zero else "5")),
                activation=float(take("activation", "0")),
                min_replicas=int(take("min", "0" if zero else "1")),
                max_replicas=int(take("max", "8")),
                polling=_seconds(take("polling", "15")),
                cooldown=_seconds(take("cooldown", "300" if zero else "120")),
                behavior=behavior,
                http=take("http", "true" if zero else "false") == "true",
                cron=cron,
                outages=outages,
                fallback_replicas=int(fb) if fb else None,
                failure_threshold=int(take("failure-threshold", str(d.KEDA_FALLBACK_FAILURE_THRESHOLD))),
                fallback_behavior=take("fallback-behavior", "static"),
                idle_replicas=int(idle) if idle else None,
                initial_cooldown=_seconds(take("initial-cooldown", "0")),
                kubernetes_version=_version(take("k8s-version", _dotted(d.KUBERNETES_VERSION))),
                keda_version=_version(take("keda-version", _dotted(d.KEDA_VERSION))),
            )
        elif spec.name == "knative":
            kpa_metric = take("metric", "concurrency")
            default_target = d.KNATIVE_RPS_TARGET_DEFAULT if kpa_metric == "rps" else 10
            ctl = KpaController(
                label,
                target=float(take("target", str(default_target))),
                utilization=float(take("utilization", "70")) / 100.0,
                min_scale=int(take("min", "0")),
                max_scale=int(take("max", "5")),
                window=_seconds(take("window", "60")),
                panic_pct=float(take("panic-window", "10")),
                panic_threshold_pct=float(take("panic-threshold", "200")),
                max_up_rate=float(take("max-up-rate", "1000")),
                grace=_seconds(take("grace", "30")),
                scale_down_delay=_seconds(take("delay", "0")),
                initial=int(take("initial", "0")),
                activation_scale=int(take("activation-scale", "1")),
                reachable=take("reachable", "true") == "true",
                pod_retention=_seconds(take("retention", "0")),
                progress_deadline=_seconds(take("progress-deadline", str(d.KNATIVE_PROGRESS_DEADLINE_S))),
                initial_scale=int(take("initial-scale", "0")),
                metric=kpa_metric,
            )
        else:
            raise InputError(f"unknown policy {spec.name!r}", fix=f"use one of {', '.join(POLICY_HELP)}")
    except ValueError as exc:
        raise InputError(
            f"bad value in policy {label!r}",
            str(exc),
            "see docs/simulate.md#policies for each option's values (numbers, durations like 30s, "
            "versions like 1.33)",
        ) from None
    if o:
        raise InputError(
            f"unknown option(s) {', '.join(sorted(o))} for policy {spec.name!r}",
            fix="see docs/simulate.md#policies",
        )
    return ctl
