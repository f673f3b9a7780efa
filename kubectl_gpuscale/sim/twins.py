"""The parameter and state arrays of the HPA, KEDA and KPA controllers' compiled twins (sim/_jit.py
`hpa_decide`, `keda_decide`, `kpa_decide`; the layouts are the `HP_*`, `HS_*`, `KD_*`, `KDS_*`, `KP_*`,
`KS_*` constants there, read from the loaded kernel module, `kernel.loaded()`).

Imported only when a simulation runs on the kernel (never `_jit` itself: that would import numba in a
process that runs the ahead-of-time module).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim.hpa import Behavior, HpaState, ScalingRules, Tolerances
from kubectl_gpuscale.sim.keda import FALLBACK_BEHAVIORS
from kubectl_gpuscale.sim.kernel import loaded

if TYPE_CHECKING:
    from kubectl_gpuscale.sim.policies import CronFloor, KedaController, KpaController, Outage

j = loaded()
SELECT = {"Max": j.HPA_SELECT_MAX, "Min": j.HPA_SELECT_MIN, "Disabled": j.HPA_SELECT_DISABLED}
POLICY_TYPE = {"Pods": j.HPA_POLICY_PODS, "Percent": j.HPA_POLICY_PERCENT}
KEDA_SOURCE = {"waiting": j.OBS_WAITING, "running": j.OBS_RUNNING}  # anything else sums concurrency
LIMIT_REASONS = (
    "",
    "DesiredWithinRange",
    "ScaleUpLimit",
    "TooManyReplicas",
    "TooFewReplicas",
    "ScaleDownLimit",
)


def _rules(p: list[float], rules: ScalingRules) -> None:
    for pol in rules.policies:
        p += [POLICY_TYPE[pol.type], pol.value, pol.period]


def hpa_params(hpa: HpaState, tolerances: Tolerances, metric: str = "cpu", target: float = 0.0) -> np.ndarray:
    """An HPA's parameters: its HpaState's settings, the tolerances, the metric and target (HpaController)."""
    horizon = hpa.horizon()
    head = [0.0] * j.HP_POLICIES
    head[j.HP_MIN] = hpa.min
    head[j.HP_MAX] = hpa.max
    head[j.HP_BEHAVIOR] = 0 if hpa.behavior is None else 1
    head[j.HP_DOWNSCALE_WINDOW] = hpa.downscale_window
    head[j.HP_UP_FACTOR] = hpa.scale_up_limit_factor
    head[j.HP_UP_MINIMUM] = hpa.scale_up_limit_minimum
    head[j.HP_TOL_UP] = tolerances.up
    head[j.HP_TOL_DOWN] = tolerances.down
    head[j.HP_TOL_INCLUSIVE] = 1 if tolerances.inclusive else 0
    head[j.HP_HORIZON] = horizon
    head[j.HP_CAP] = math.ceil(horizon) + 3
    head[j.HP_METRIC] = j.HPA_METRIC_CPU if metric == "cpu" else j.HPA_METRIC_GPU
    head[j.HP_TARGET] = target
    b = hpa.behavior if hpa.behavior is not None else Behavior()  # the rules are read only with a behavior
    head[j.HP_UP_STAB] = b.scale_up.stabilization
    head[j.HP_UP_SELECT] = SELECT[b.scale_up.select]
    head[j.HP_UP_N] = len(b.scale_up.policies)
    head[j.HP_DOWN_STAB] = b.scale_down.stabilization
    head[j.HP_DOWN_SELECT] = SELECT[b.scale_down.select]
    head[j.HP_DOWN_N] = len(b.scale_down.policies)
    _rules(head, b.scale_up)
    _rules(head, b.scale_down)
    return np.array(head, dtype=np.float64)


def hpa_state(params: np.ndarray) -> np.ndarray:
    """A fresh HPA state for these parameters (nothing recorded: the first sync records the initial one)."""
    return np.zeros(j.HS_RINGS + 6 * int(params[j.HP_CAP]), dtype=np.float64)


def limit_reason(state: np.ndarray) -> str:
    """HpaState.reason (the ScalingLimited reason of the last sync) of an HPA state."""
    return LIMIT_REASONS[int(state[j.HS_LIMIT])]


def _schedule(cron: tuple[CronFloor, ...], outages: tuple[Outage, ...]) -> list[float]:
    out: list[float] = []
    for c in cron:
        out += [c.start, c.end, c.replicas, c.offset, sum(1 << day for day in set(c.days))]
    for o in outages:
        out += [o.start, o.end]
    return out


def keda_params(ctl: KedaController) -> np.ndarray:
    """A KEDA controller's parameters (the ScaledObject, its trigger, cron floors, outages, then its HPA)."""
    so = ctl.so
    fb = so.fallback
    head = [0.0] * j.KD_HEAD
    head[j.KD_THRESHOLD] = ctl.threshold
    head[j.KD_ACTIVATION] = ctl.activation
    head[j.KD_MIN] = so.min_replicas
    head[j.KD_POLLING] = ctl.polling
    head[j.KD_COOLDOWN] = so.cooldown
    head[j.KD_INITIAL_COOLDOWN] = so.initial_cooldown
    head[j.KD_IDLE] = -1 if so.idle_replicas is None else so.idle_replicas
    if fb is not None:
        head[j.KD_FALLBACK] = 1
        head[j.KD_FB_REPLICAS] = fb.replicas
        head[j.KD_FB_THRESHOLD] = fb.failure_threshold
        head[j.KD_FB_BEHAVIOR] = FALLBACK_BEHAVIORS.index(fb.behavior)
    head[j.KD_FALLBACK_SCALING] = 1 if ctl.keda_version < d.KEDA_NO_FALLBACK_SCALING_SINCE else 0
    head[j.KD_SYNC] = d.HPA_SYNC_PERIOD_S
    head[j.KD_SOURCE] = KEDA_SOURCE.get(ctl.metric, j.OBS_CONC)
    head[j.KD_CRONS] = len(ctl.cron)
    head[j.KD_OUTAGES] = len(ctl.outages)
    head += _schedule(ctl.cron, ctl.outages)
    head[j.KD_HPA] = len(head)
    return np.concatenate((np.array(head, dtype=np.float64), hpa_params(ctl.hpa, ctl.tolerances)))


def keda_state(params: np.ndarray) -> np.ndarray:
    """A fresh KEDA state for these parameters (no failures, never active, its HPA's fresh state)."""
    s = np.zeros(j.KDS_HPA, dtype=np.float64)
    s[j.KDS_LAST_ACTIVE] = np.nan
    return np.concatenate((s, hpa_state(params[int(params[j.KD_HPA]) :])))


def kpa_arrays(ctl: KpaController) -> tuple[np.ndarray, np.ndarray] | None:
    """A KPA's parameters and fresh state (the `KP_*`, `KS_*` layouts), or None for a configuration the
    compiled twin does not model (the Python path runs it)."""
    spec, cfg = ctl.decider.spec, ctl.scaler
    if (
        cfg.stable_window != ctl.window
        or not cfg.enable_scale_to_zero
        or cfg.reachability not in ("Reachable", "Unreachable")
        or ctl.decider.spec.stable_window != ctl.window
    ):
        return None  # a configuration the compiled twin does not model: the Python path runs it
    p = np.zeros(j.KP_LEN)
    p[j.KP_TARGET] = spec.target
    p[j.KP_WINDOW] = ctl.window
    p[j.KP_PANIC_WINDOW] = ctl.panic_window
    p[j.KP_PANIC_THRESHOLD] = spec.panic_threshold
    p[j.KP_MAX_UP] = spec.max_scale_up_rate
    p[j.KP_MAX_DOWN] = spec.max_scale_down_rate
    p[j.KP_REACHABLE] = 1.0 if spec.reachable else 0.0
    p[j.KP_ACTIVATION_SCALE] = spec.activation_scale
    p[j.KP_DELAY] = spec.scale_down_delay
    p[j.KP_MIN] = cfg.min_scale
    p[j.KP_MAX] = cfg.max_scale
    p[j.KP_INITIAL_SCALE] = cfg.initial_scale
    p[j.KP_INITIAL_SCALE_RAW] = ctl.initial_scale
    p[j.KP_GRACE] = cfg.grace
    p[j.KP_RETENTION] = cfg.pod_retention
    p[j.KP_ACTIVATION_TIMEOUT] = cfg.progress_deadline + d.KNATIVE_ACTIVATION_TIMEOUT_BUFFER_S
    p[j.KP_SOURCE] = j.OBS_ARRIVALS if ctl.history_source == "arrivals" else j.OBS_CONC
    p[j.KP_TICK] = d.KNATIVE_TICK_S
    width = max(1, int(spec.scale_down_delay // d.KNATIVE_TICK_S))
    s = np.zeros(j.KS_FIXED + 2 * (width + 2))
    s[j.KS_PANIC] = 1.0 if ctl.decider.panic_time is not None else 0.0
    s[j.KS_PANIC_TIME] = ctl.decider.panic_time or 0.0
    s[j.KS_MAX_PANIC] = ctl.decider.max_panic_pods
    s[j.KS_PA] = {"activating": j.PA_ACTIVATING, "active": j.PA_ACTIVE, "inactive": j.PA_INACTIVE}[ctl.pa]
    s[j.KS_PA_SINCE] = ctl.pa_since
    s[j.KS_INITIALIZED] = 1.0 if ctl.initialized else 0.0
    for k, (bucket, count) in enumerate(ctl.decider._delay):
        s[j.KS_DELAY + 2 * k], s[j.KS_DELAY + 2 * k + 1] = bucket, count
    s[j.KS_DELAY_TAIL] = len(ctl.decider._delay)
    return p, s
