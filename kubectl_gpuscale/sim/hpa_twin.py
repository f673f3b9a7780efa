"""The compiled twin of sim/hpa.py (numba): HpaState's sync and the replica calculators.

The Python model in sim/hpa.py is the reference (the upstream table tests run on it); these
functions take numbers and float64 arrays only and must decide exactly as it does
(tests/test_sim_twins.py drives both with the same random syncs). An HPA is two arrays:

- parameters (`hpa_params`): min/max, the no-`spec.behavior` path's window and scale-up cap,
  the tolerances, the metric and target (HpaController), the behavior's windows, selectPolicy
  and policies;
- state (`hpa_state`): whether the initial recommendation is recorded, the ScalingLimited
  reason, the controller's reason `(code, x, y)` (sim/reasons.py), and three time-ordered ring
  buffers (recommendations, scale-up and scale-down events) holding what the windows and rate
  limits can still see: entries older than the horizon (the longest window or period) are
  dropped, so a ring of horizon + 3 entries never fills when syncs are whole seconds apart.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kubectl_gpuscale.sim.hpa import Behavior, HpaState, ScalingRules, Tolerances
from kubectl_gpuscale.sim.reasons import HPA_METRIC

# parameters
P_MIN = 0
P_MAX = 1
P_BEHAVIOR = 2  # 1: spec.behavior set
P_DOWNSCALE_WINDOW = 3
P_UP_FACTOR = 4
P_UP_MINIMUM = 5
P_TOL_UP = 6
P_TOL_DOWN = 7
P_TOL_INCLUSIVE = 8
P_HORIZON = 9
P_CAP = 10
P_METRIC = 11  # METRIC_RESOURCE or METRIC_PODS
P_TARGET = 12
P_UP_STAB = 13
P_UP_SELECT = 14
P_UP_N = 15
P_DOWN_STAB = 16
P_DOWN_SELECT = 17
P_DOWN_N = 18
P_POLICIES = 19  # (type, value, period) per scale-up policy, then per scale-down policy

METRIC_RESOURCE = 0  # CPU: a Resource metric, Utilization target (GetResourceReplicas)
METRIC_PODS = 1  # GPU via an adapter: a Pods metric, AverageValue target (calcPlainMetricReplicas)
SELECT = {"Max": 0, "Min": 1, "Disabled": 2}
SELECT_MIN = 1
SELECT_DISABLED = 2
POLICY_TYPE = {"Pods": 0, "Percent": 1}
POLICY_PODS = 0

# ScalingLimited reasons (HpaState.reason)
LIMIT_REASONS = (
    "",
    "DesiredWithinRange",
    "ScaleUpLimit",
    "TooManyReplicas",
    "TooFewReplicas",
    "ScaleDownLimit",
)
LIMIT_WITHIN = 1
LIMIT_SCALE_UP = 2
LIMIT_TOO_MANY = 3
LIMIT_TOO_FEW = 4
LIMIT_SCALE_DOWN = 5

# state
S_SEEN = 0
S_LIMIT = 1
S_REASON = 2
S_REASON_X = 3
S_REASON_Y = 4
S_HEAD = 5  # (head, count) of ring k at S_HEAD + 2k
S_RINGS = 11  # ring k: times at S_RINGS + 2k*cap, values at S_RINGS + (2k+1)*cap
RING_REC = 0
RING_UP = 1
RING_DOWN = 2


def _rules(p: list[float], rules: ScalingRules) -> None:
    for pol in rules.policies:
        p += [POLICY_TYPE[pol.type], pol.value, pol.period]


def hpa_params(
    hpa: HpaState, tolerances: Tolerances, metric: int = METRIC_RESOURCE, target: float = 0.0
) -> np.ndarray:
    """The parameter array of an HPA (its HpaState's settings, the tolerances, the metric and target)."""
    b = hpa.behavior
    horizon = hpa.horizon()
    head = [0.0] * P_POLICIES
    head[P_MIN] = hpa.min
    head[P_MAX] = hpa.max
    head[P_BEHAVIOR] = 0 if b is None else 1
    head[P_DOWNSCALE_WINDOW] = hpa.downscale_window
    head[P_UP_FACTOR] = hpa.scale_up_limit_factor
    head[P_UP_MINIMUM] = hpa.scale_up_limit_minimum
    head[P_TOL_UP] = tolerances.up
    head[P_TOL_DOWN] = tolerances.down
    head[P_TOL_INCLUSIVE] = 1 if tolerances.inclusive else 0
    head[P_HORIZON] = horizon
    head[P_CAP] = int(math.ceil(horizon)) + 3
    head[P_METRIC] = metric
    head[P_TARGET] = target
    b = b if b is not None else Behavior()  # the rules are read only with a behavior
    head[P_UP_STAB] = b.scale_up.stabilization
    head[P_UP_SELECT] = SELECT[b.scale_up.select]
    head[P_UP_N] = len(b.scale_up.policies)
    head[P_DOWN_STAB] = b.scale_down.stabilization
    head[P_DOWN_SELECT] = SELECT[b.scale_down.select]
    head[P_DOWN_N] = len(b.scale_down.policies)
    _rules(head, b.scale_up)
    _rules(head, b.scale_down)
    return np.array(head, dtype=np.float64)


def hpa_state(params: np.ndarray) -> np.ndarray:
    """A fresh state array for an HPA with these parameters (nothing recorded yet)."""
    return np.zeros(S_RINGS + 6 * int(params[P_CAP]), dtype=np.float64)


# ring buffers ------------------------------------------------------------------------------


@njit(cache=True)
def _push(s: np.ndarray, ring: int, cap: int, t: float, v: float) -> None:
    h = S_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    if n == cap:  # never with whole-second syncs (the capacity covers the horizon); keep the newest
        head = (head + 1) % cap
        n -= 1
    k = (head + n) % cap
    base = S_RINGS + 2 * ring * cap
    s[base + k] = t
    s[base + cap + k] = v
    s[h], s[h + 1] = head, n + 1


@njit(cache=True)
def _drop_before(s: np.ndarray, ring: int, cap: int, cutoff: float, inclusive: bool) -> None:
    """Drop the oldest entries older than `cutoff` (also those at it when `inclusive`)."""
    h = S_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    base = S_RINGS + 2 * ring * cap
    while n > 0:
        t = s[base + head]
        if t < cutoff or (inclusive and t == cutoff):
            head = (head + 1) % cap
            n -= 1
        else:
            break
    s[h], s[h + 1] = head, n


@njit(cache=True)
def _sum_after(s: np.ndarray, ring: int, cap: int, cutoff: float) -> int:
    """Sum of a ring's values recorded strictly after `cutoff` (_change_in_period)."""
    h = S_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    base = S_RINGS + 2 * ring * cap
    total = 0
    for j in range(n):
        k = (head + j) % cap
        if s[base + k] > cutoff:
            total += int(s[base + cap + k])
    return total


# replica calculators -----------------------------------------------------------------------


@njit(cache=True)
def within(p: np.ndarray, ratio: float) -> bool:
    """Tolerances.within."""
    if p[P_TOL_INCLUSIVE] != 0:
        return bool((1.0 - p[P_TOL_DOWN]) <= ratio <= (1.0 + p[P_TOL_UP]))
    return bool(abs(1.0 - ratio) <= p[P_TOL_UP])


@njit(cache=True)
def _corrected(p: np.ndarray, current: int, ratio: float, new_ratio: float, counted: int) -> int:
    """The end of GetResourceReplicas / calcPlainMetricReplicas once unready and missing pods are counted."""
    if within(p, new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = int(np.ceil(new_ratio * counted))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


@njit(cache=True)
def resource_replicas(
    p: np.ndarray, current: int, ready: int, not_counted: tuple[int, int], usage: float
) -> int:
    """hpa.resource_replicas: ready pods at `usage` % of equal requests, `not_counted` = (unready, missing)."""
    unready, missing = not_counted
    if ready <= 0:
        return current
    milli = int(round(usage * 10.0))
    target = int(round(p[P_TARGET]))
    total_usage = milli * ready
    total_requests = 1000 * ready
    ratio = ((total_usage * 100) // total_requests) / target
    up_with_unready = unready > 0 and ratio > 1.0
    if not up_with_unready and missing == 0:
        if within(p, ratio):
            return current
        return int(np.ceil(ratio * ready))
    counted = ready
    if missing > 0 and ratio != 1.0:
        fallback = max(100, target) if ratio < 1.0 else 0
        total_usage += missing * (1000 * fallback // 100)
        total_requests += 1000 * missing
        counted += missing
    if up_with_unready:
        total_requests += 1000 * unready
        counted += unready
    new_ratio = ((total_usage * 100) // total_requests) / target
    return _corrected(p, current, ratio, new_ratio, counted)


@njit(cache=True)
def plain_metric_replicas(
    p: np.ndarray, current: int, ready: int, not_counted: tuple[int, int], usage: float
) -> int:
    """hpa.plain_metric_replicas: a Pods metric whose ready pods average `usage`, `not_counted` = (unready, missing)."""
    unready, missing = not_counted
    if ready <= 0:
        return current
    milli = int(round(usage * 1000.0))
    target = int(round(p[P_TARGET] * 1000.0))
    ratio = ((milli * ready) // ready) / target
    up_with_unready = unready > 0 and ratio > 1.0
    if not up_with_unready and missing == 0:
        if within(p, ratio):
            return current
        return int(np.ceil(ratio * ready))
    total = milli * ready
    counted = ready
    if missing > 0 and ratio != 1.0:
        total += missing * (target if ratio < 1.0 else 0)
        counted += missing
    if up_with_unready:
        counted += unready
    new_ratio = (total // counted) / target
    return _corrected(p, current, ratio, new_ratio, counted)


@njit(cache=True)
def external_replicas(p: np.ndarray, status_replicas: int, total: float, target_per_pod: float) -> int:
    """hpa.external_replicas (GetExternalPerPodMetricReplicas)."""
    if status_replicas <= 0:
        return int(np.ceil(total / target_per_pod))
    ratio = total / (target_per_pod * status_replicas)
    if not within(p, ratio):
        return int(np.ceil(total / target_per_pod))
    return status_replicas


# stabilization and rate limits -------------------------------------------------------------


@njit(cache=True)
def _stabilize(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> int:
    """HpaState.stabilize: stabilizeRecommendation, or stabilizeRecommendationWithBehaviors."""
    cap = int(p[P_CAP])
    _drop_before(s, RING_REC, cap, now - p[P_HORIZON], False)
    head, n = int(s[S_HEAD]), int(s[S_HEAD + 1])
    base = S_RINGS
    if p[P_BEHAVIOR] == 0:
        highest = desired
        cutoff = now - p[P_DOWNSCALE_WINDOW]
        for j in range(n):
            k = (head + j) % cap
            if s[base + k] >= cutoff and s[base + cap + k] > highest:
                highest = int(s[base + cap + k])
        _push(s, RING_REC, cap, now, desired)
        return highest
    up_rec = desired
    down_rec = desired
    up_cut = now - p[P_UP_STAB]
    down_cut = now - p[P_DOWN_STAB]
    for j in range(n):
        k = (head + j) % cap
        t, rec = s[base + k], int(s[base + cap + k])
        if t > up_cut and rec < up_rec:
            up_rec = rec
        if t > down_cut and rec > down_rec:
            down_rec = rec
    recommendation = current
    if recommendation < up_rec:
        recommendation = up_rec
    if recommendation > down_rec:
        recommendation = down_rec
    _push(s, RING_REC, cap, now, desired)
    return recommendation


@njit(cache=True)
def _limit(p: np.ndarray, s: np.ndarray, now: float, current: int, up: bool) -> int:
    """calculateScaleUpLimitWithScalingRules (`up`) or calculateScaleDownLimitWithBehaviors."""
    select = p[P_UP_SELECT] if up else p[P_DOWN_SELECT]
    if select == SELECT_DISABLED:
        return current
    cap = int(p[P_CAP])
    first = P_POLICIES if up else P_POLICIES + 3 * int(p[P_UP_N])
    count = int(p[P_UP_N]) if up else int(p[P_DOWN_N])
    take_max = (select != SELECT_MIN) == up
    result = current
    for j in range(count):
        kind, value, period = p[first + 3 * j], p[first + 3 * j + 1], p[first + 3 * j + 2]
        cutoff = now - period
        start = current - _sum_after(s, RING_UP, cap, cutoff) + _sum_after(s, RING_DOWN, cap, cutoff)
        if up:
            proposed = (
                start + int(value) if kind == POLICY_PODS else int(np.ceil(start * (1 + value / 100.0)))
            )
        else:
            proposed = start - int(value) if kind == POLICY_PODS else int(start * (1 - value / 100.0))
        if j == 0:
            result = proposed
        elif take_max:
            result = max(result, proposed)
        else:
            result = min(result, proposed)
    return result


@njit(cache=True)
def _with_rules(p: np.ndarray, s: np.ndarray, current: int, desired: int) -> int:
    """convertDesiredReplicasWithRules (no spec.behavior)."""
    limit = int(max(p[P_UP_FACTOR] * current, p[P_UP_MINIMUM]))
    mn, mx = int(p[P_MIN]), int(p[P_MAX])
    if mx > limit:
        maximum, reason = limit, LIMIT_SCALE_UP
    else:
        maximum, reason = mx, LIMIT_TOO_MANY
    if desired < mn:
        s[S_LIMIT] = LIMIT_TOO_FEW
        return mn
    if desired > maximum:
        s[S_LIMIT] = reason
        return maximum
    s[S_LIMIT] = LIMIT_WITHIN
    return desired


@njit(cache=True)
def _with_behavior_rate(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> int:
    """convertDesiredReplicasWithBehaviorRate."""
    mn, mx = int(p[P_MIN]), int(p[P_MAX])
    if desired > current:
        limit = max(current, _limit(p, s, now, current, True))
        if mx > limit:
            maximum, reason = limit, LIMIT_SCALE_UP
        else:
            maximum, reason = mx, LIMIT_TOO_MANY
        if desired > maximum:
            s[S_LIMIT] = reason
            return maximum
    elif desired < current:
        limit = min(current, _limit(p, s, now, current, False))
        if mn < limit:
            minimum, reason = limit, LIMIT_SCALE_DOWN
        else:
            minimum, reason = mn, LIMIT_TOO_FEW
        if desired < minimum:
            s[S_LIMIT] = reason
            return minimum
    s[S_LIMIT] = LIMIT_WITHIN
    return desired


@njit(cache=True)
def _record_event(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> None:
    """HpaState.record_event (storeScaleEvent): only with a behavior."""
    if p[P_BEHAVIOR] == 0:
        return
    cap = int(p[P_CAP])
    cut = now - p[P_HORIZON]
    _drop_before(s, RING_UP, cap, cut, True)
    _drop_before(s, RING_DOWN, cap, cut, True)
    if desired > current:
        _push(s, RING_UP, cap, now, desired - current)
    elif desired < current:
        _push(s, RING_DOWN, cap, now, current - desired)


@njit(cache=True)
def reconcile(p: np.ndarray, s: np.ndarray, now: float, current: int, metric_desired: int) -> int:
    """HpaState.reconcile: one sync; `metric_desired` < 0 is None (no metric could be read)."""
    if s[S_SEEN] == 0:
        s[S_SEEN] = 1
        _push(s, RING_REC, int(p[P_CAP]), now, current)
    mn, mx = int(p[P_MIN]), int(p[P_MAX])
    if current == 0 and mn != 0:
        return 0
    if current > mx:
        desired = mx
    elif current < mn:
        desired = mn
    elif metric_desired < 0:
        return current
    else:
        stabilized = _stabilize(p, s, now, current, metric_desired)
        if p[P_BEHAVIOR] == 0:
            desired = _with_rules(p, s, current, stabilized)
        else:
            desired = _with_behavior_rate(p, s, now, current, stabilized)
    if desired != current:
        _record_event(p, s, now, current, desired)
    return desired


@njit(cache=True)
def hpa_decide(p: np.ndarray, s: np.ndarray, now: float, spec: int, obs: tuple[int, int, float]) -> int:
    """HpaController.decide at sync `now`: `obs` = (ready pods, pods, the ready pods' metric value)."""
    ready, pods, usage = obs
    if p[P_METRIC] == METRIC_RESOURCE:
        rec = resource_replicas(p, spec, ready, (pods - ready, 0), usage)
    else:
        rec = plain_metric_replicas(p, spec, ready, (0, pods - ready), usage)
    new = reconcile(p, s, now, spec, rec)
    s[S_REASON] = HPA_METRIC
    s[S_REASON_X] = usage
    s[S_REASON_Y] = 0.0
    return new


def limit_reason(state: np.ndarray) -> str:
    """HpaState.reason of a twin's state."""
    return LIMIT_REASONS[int(state[S_LIMIT])]
