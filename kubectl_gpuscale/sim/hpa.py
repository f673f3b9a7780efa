"""The Kubernetes HPA v2 algorithm, as kube-controller-manager implements it.

Follows kubernetes pkg/controller/podautoscaler:
- replica_calculator.go: `Tolerances.isWithin`, `GetResourceReplicas` (integer utilization,
  unready pods at 0 % on a scale-up, pods with no metric at max(100 %, target) on a scale-down,
  no direction flip), `calcPlainMetricReplicas` (Pods metrics: missing pods at the target),
  `GetExternalPerPodMetricReplicas` (AverageValue targets, what KEDA's triggers use);
- horizontal.go: `recordInitialRecommendation`, the no-`spec.behavior` path
  (`normalizeDesiredReplicas` = `stabilizeRecommendation` + `convertDesiredReplicasWithRules`
  with `scaleUpLimitFactor` 2 / `scaleUpLimitMinimum` 4) and the behavior path
  (`stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
  `calculateScaleUp/DownLimitWithScalingRules`).
Pure: no clock, the caller passes the time in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kubectl_gpuscale.sim import defaults as d


@dataclass(frozen=True)
class Tolerances:
    """The usage-ratio dead band around 1.0 inside which the HPA keeps the current replicas.

    `inclusive` is kubernetes >= 1.33's `isWithin`: `1 - down <= ratio <= 1 + up`. Before 1.33
    the test was `abs(1 - ratio) <= tolerance`, which differs at the bounds in floating point
    (a ratio of exactly 1.1 scales there and stays put from 1.33 on).
    """

    up: float = d.HPA_TOLERANCE
    down: float = d.HPA_TOLERANCE
    inclusive: bool = True

    def within(self, ratio: float) -> bool:
        """True when a ratio is too close to 1 to act on."""
        if self.inclusive:
            return (1.0 - self.down) <= ratio <= (1.0 + self.up)
        return abs(1.0 - ratio) <= self.up

    def within_array(self, ratio: np.ndarray) -> np.ndarray:
        """`within` over an array of ratios."""
        if self.inclusive:
            return ((1.0 - self.down) <= ratio) & (ratio <= (1.0 + self.up))
        return np.abs(1.0 - ratio) <= self.up


def tolerances_for(
    kubernetes_version: tuple[int, int] = d.KUBERNETES_VERSION,
    tolerance: float = d.HPA_TOLERANCE,
    up: float | None = None,
    down: float | None = None,
) -> Tolerances:
    """The tolerances a kube-controller-manager of `kubernetes_version` applies.

    `tolerance` is `--horizontal-pod-autoscaler-tolerance`; `up`/`down` are an HPA's
    `behavior.scaleUp/scaleDown.tolerance`, honoured only where the HPAConfigurableTolerance
    gate is on by default (beta, 1.35; alpha and off in 1.33-1.34: the API server drops the field).
    """
    inclusive = kubernetes_version >= d.HPA_INCLUSIVE_TOLERANCE_SINCE
    per_hpa = kubernetes_version >= d.HPA_CONFIGURABLE_TOLERANCE_SINCE
    return Tolerances(
        up if (per_hpa and up is not None) else tolerance,
        down if (per_hpa and down is not None) else tolerance,
        inclusive,
    )


def _tolerances(t: float | Tolerances) -> Tolerances:
    return t if isinstance(t, Tolerances) else Tolerances(t, t, True)


@dataclass(frozen=True)
class PodSample:
    """One pod as `groupPods` sorts it, with its request and metric (milli-units).

    `state`: "ready" (a usable sample), "unready" (Pending, or a CPU sample still inside the
    initialisation period), "missing" (Running but no metric), "ignored" (Failed or deleting).
    """

    request: int
    usage: int | None = None
    state: str = "ready"


@dataclass(frozen=True)
class ScalingPolicy:
    """One `behavior.scaleUp/scaleDown.policies[]` entry: type Pods|Percent, value, periodSeconds."""

    type: str
    value: int
    period: int


@dataclass(frozen=True)
class ScalingRules:
    """`behavior.scaleUp` or `behavior.scaleDown`."""

    stabilization: int
    policies: tuple[ScalingPolicy, ...]
    select: str = "Max"  # Max | Min | Disabled


def default_scale_up() -> ScalingRules:
    """autoscaling/v2 default scaleUp (GenerateHPAScaleUpRules): no window, max(100 %, 4 pods) per 15 s."""
    return ScalingRules(
        d.HPA_SCALE_UP_STABILIZATION_S,
        tuple(ScalingPolicy(t, v, p) for t, v, p in d.HPA_SCALE_UP_POLICIES),
        d.HPA_SELECT_POLICY,
    )


def default_scale_down() -> ScalingRules:
    """autoscaling/v2 default scaleDown (GenerateHPAScaleDownRules): 300 s window, 100 % per 15 s."""
    return ScalingRules(
        d.HPA_SCALE_DOWN_STABILIZATION_S,
        tuple(ScalingPolicy(t, v, p) for t, v, p in d.HPA_SCALE_DOWN_POLICIES),
        d.HPA_SELECT_POLICY,
    )


@dataclass(frozen=True)
class Behavior:
    """`spec.behavior` of an autoscaling/v2 HPA (as defaulted by the API server when it is set)."""

    scale_up: ScalingRules = field(default_factory=default_scale_up)
    scale_down: ScalingRules = field(default_factory=default_scale_down)


def resource_replicas_from_pods(
    current: int,
    pods: Sequence[PodSample],
    target_utilization: int,
    tolerances: float | Tolerances = d.HPA_TOLERANCE,
) -> int | None:
    """GetResourceReplicas on per-pod samples; None where upstream returns an error (no usable metric)."""
    tol = _tolerances(tolerances)
    ready = [p for p in pods if p.state == "ready" and p.usage is not None]
    unready = [p for p in pods if p.state == "unready"]
    missing = [p for p in pods if p.state == "missing" or (p.state == "ready" and p.usage is None)]
    if not ready:
        return None
    requests = sum(p.request for p in ready)
    if requests == 0:
        return None
    utilization = (sum(p.usage or 0 for p in ready) * 100) // requests  # int32 in upstream: truncates
    ratio = utilization / target_utilization
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * len(ready))
    total_usage = sum(p.usage or 0 for p in ready)
    total_requests = requests
    counted = len(ready)
    if missing and ratio != 1.0:
        fallback = max(100, target_utilization) if ratio < 1.0 else 0
        total_usage += sum(p.request * fallback // 100 for p in missing)
        total_requests += sum(p.request for p in missing)
        counted += len(missing)
    if scale_up_with_unready:
        total_requests += sum(p.request for p in unready)
        counted += len(unready)
    new_ratio = ((total_usage * 100) // total_requests) / target_utilization
    if tol.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def resource_replicas(
    current: int,
    ready: int,
    unready: int,
    usage: float,
    target: float,
    tolerance: float | Tolerances = d.HPA_TOLERANCE,
    missing: int = 0,
) -> int:
    """GetResourceReplicas for pods with equal requests: `usage` is the ready pods' average utilisation (%).

    `unready` pods are Pending or inside the CPU initialisation period (0 % on a scale-up, else
    ignored); `missing` pods are Running with no metric (0 % on a scale-up, max(100 %, target) on a
    scale-down). Returns `current` when no ready pod has a sample.
    """
    if ready <= 0:
        return current
    milli = int(round(usage * 10))  # utilisation in % of a 1000m request
    pods = (
        [PodSample(1000, milli)] * ready
        + [PodSample(1000, None, "unready")] * unready
        + [PodSample(1000, None, "missing")] * missing
    )
    got = resource_replicas_from_pods(current, pods, int(round(target)), tolerance)
    return current if got is None else got


def plain_metric_replicas_from_pods(
    current: int, pods: Sequence[PodSample], target: int, tolerances: float | Tolerances = d.HPA_TOLERANCE
) -> int | None:
    """calcPlainMetricReplicas (Pods metrics, AverageValue target): missing pods count at the target on a scale-down."""
    tol = _tolerances(tolerances)
    ready = [p for p in pods if p.state == "ready" and p.usage is not None]
    unready = [p for p in pods if p.state == "unready"]
    missing = [p for p in pods if p.state == "missing" or (p.state == "ready" and p.usage is None)]
    if not ready:
        return None
    ratio = (sum(p.usage or 0 for p in ready) // len(ready)) / target
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tol.within(ratio):
            return current
        return math.ceil(ratio * len(ready))
    values = [p.usage or 0 for p in ready]
    if missing and ratio != 1.0:
        values += [target if ratio < 1.0 else 0] * len(missing)
    if scale_up_with_unready:
        values += [0] * len(unready)
    new_ratio = (sum(values) // len(values)) / target
    if tol.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def plain_metric_replicas(
    current: int,
    ready: int,
    unready: int,
    missing: int,
    usage: float,
    target: float,
    tolerance: float | Tolerances = d.HPA_TOLERANCE,
) -> int:
    """calcPlainMetricReplicas for a Pods metric whose ready pods average `usage` (target: AverageValue)."""
    if ready <= 0:
        return current
    milli = int(round(usage * 1000))
    pods = (
        [PodSample(0, milli)] * ready
        + [PodSample(0, None, "unready")] * unready
        + [PodSample(0, None, "missing")] * missing
    )
    got = plain_metric_replicas_from_pods(current, pods, int(round(target * 1000)), tolerance)
    return current if got is None else got


def external_replicas(
    status_replicas: int, total: float, target_per_pod: float, tolerance: float | Tolerances = d.HPA_TOLERANCE
) -> int:
    """GetExternalPerPodMetricReplicas: an External metric with an AverageValue target (what KEDA's triggers use)."""
    if status_replicas <= 0:
        return int(math.ceil(total / target_per_pod))
    ratio = total / (target_per_pod * status_replicas)
    if not _tolerances(tolerance).within(ratio):
        return int(math.ceil(total / target_per_pod))
    return status_replicas


def external_value_replicas(
    current: int, ready: int, total: float, target: float, tolerance: float | Tolerances = d.HPA_TOLERANCE
) -> int:
    """GetExternalMetricReplicas (a Value target): `getUsageRatioReplicaCount` on the ready pods."""
    ratio = total / target
    if current == 0:
        return int(math.ceil(ratio))
    if _tolerances(tolerance).within(ratio):
        return current
    return int(math.ceil(ratio * ready))


def convert_desired_replicas_with_rules(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_limit_factor: float = d.HPA_SCALE_UP_LIMIT_FACTOR,
    scale_up_limit_minimum: float = d.HPA_SCALE_UP_LIMIT_MINIMUM,
) -> tuple[int, str]:
    """convertDesiredReplicasWithRules (no `spec.behavior`): (replicas, ScalingLimited reason)."""
    scale_up_limit = int(max(scale_up_limit_factor * current, scale_up_limit_minimum))
    if max_replicas > scale_up_limit:
        maximum, reason = scale_up_limit, "ScaleUpLimit"
    else:
        maximum, reason = max_replicas, "TooManyReplicas"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > maximum:
        return maximum, reason
    return desired, "DesiredWithinRange"


def stabilize_recommendation(
    recommendations: list[tuple[float, int]], now: float, desired: int, window: float
) -> int:
    """stabilizeRecommendation (no `spec.behavior`): the highest recommendation not older than `window`.

    Records `desired`, reusing the slot of the last expired entry as upstream does.
    """
    highest = desired
    cutoff = now - window
    old = -1
    for i, (t, rec) in enumerate(recommendations):
        if t < cutoff:
            old = i
        elif rec > highest:
            highest = rec
    if old >= 0:
        recommendations[old] = (now, desired)
    else:
        recommendations.append((now, desired))
    return highest


def stabilize_with_behaviors(
    recommendations: list[tuple[float, int]],
    now: float,
    current: int,
    desired: int,
    up_window: float,
    down_window: float,
) -> int:
    """stabilizeRecommendationWithBehaviors: min over the up window, max over the down window, clamped via current."""
    up_rec = desired
    down_rec = desired
    up_cut = now - up_window
    down_cut = now - down_window
    old = -1
    for i, (t, rec) in enumerate(recommendations):
        if t > up_cut and rec < up_rec:
            up_rec = rec
        if t > down_cut and rec > down_rec:
            down_rec = rec
        if t < up_cut and t < down_cut:
            old = i
    recommendation = current
    if recommendation < up_rec:
        recommendation = up_rec
    if recommendation > down_rec:
        recommendation = down_rec
    if old >= 0:
        recommendations[old] = (now, desired)
    else:
        recommendations.append((now, desired))
    return recommendation


def _change_in_period(period: int, events: list[tuple[float, int]], now: float) -> int:
    cutoff = now - period
    return sum(change for t, change in events if t > cutoff)


def scale_up_limit(
    current: int,
    up_events: list[tuple[float, int]],
    down_events: list[tuple[float, int]],
    rules: ScalingRules,
    now: float,
) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    if rules.select == "Disabled":
        return current
    pick = min if rules.select == "Min" else max
    result: int | None = None
    for p in rules.policies:
        start = (
            current
            - _change_in_period(p.period, up_events, now)
            + _change_in_period(p.period, down_events, now)
        )
        proposed = start + p.value if p.type == "Pods" else int(math.ceil(start * (1 + p.value / 100.0)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def scale_down_limit(
    current: int,
    up_events: list[tuple[float, int]],
    down_events: list[tuple[float, int]],
    rules: ScalingRules,
    now: float,
) -> int:
    """calculateScaleDownLimitWithBehaviors."""
    if rules.select == "Disabled":
        return current
    pick = max if rules.select == "Min" else min
    result: int | None = None
    for p in rules.policies:
        start = (
            current
            - _change_in_period(p.period, up_events, now)
            + _change_in_period(p.period, down_events, now)
        )
        proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100.0))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def convert_with_behavior_rate(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    up_events: list[tuple[float, int]],
    down_events: list[tuple[float, int]],
    now: float,
) -> tuple[int, str]:
    """convertDesiredReplicasWithBehaviorRate: (replicas, ScalingLimited reason)."""
    if desired > current:
        limit = max(current, scale_up_limit(current, up_events, down_events, behavior.scale_up, now))
        if max_replicas > limit:
            maximum, reason = limit, "ScaleUpLimit"
        else:
            maximum, reason = max_replicas, "TooManyReplicas"
        if desired > maximum:
            return maximum, reason
    elif desired < current:
        limit = min(current, scale_down_limit(current, up_events, down_events, behavior.scale_down, now))
        if min_replicas < limit:
            minimum, reason = limit, "ScaleDownLimit"
        else:
            minimum, reason = min_replicas, "TooFewReplicas"
        if desired < minimum:
            return minimum, reason
    return desired, "DesiredWithinRange"


class HpaState:
    """The per-HPA memory kube-controller-manager keeps: recommendations and scale events.

    `behavior` None is an HPA without `spec.behavior` (the API server leaves it nil, and KEDA
    creates its HPA so unless `advanced.horizontalPodAutoscalerConfig.behavior` is set): the
    older `normalizeDesiredReplicas` path, whose scale-up cap is max(factor x current, minimum)
    per sync and whose stabilization is the highest recommendation over `downscale_window`.
    """

    def __init__(
        self,
        min_replicas: int,
        max_replicas: int,
        behavior: Behavior | None = None,
        downscale_window: int = d.HPA_SCALE_DOWN_STABILIZATION_S,
        scale_up_limit_factor: float = d.HPA_SCALE_UP_LIMIT_FACTOR,
        scale_up_limit_minimum: float = d.HPA_SCALE_UP_LIMIT_MINIMUM,
    ) -> None:
        self.min = min_replicas
        self.max = max_replicas
        self.behavior = behavior
        self.downscale_window = downscale_window
        self.scale_up_limit_factor = scale_up_limit_factor
        self.scale_up_limit_minimum = scale_up_limit_minimum
        self.recommendations: list[tuple[float, int]] = []
        self.seen = False  # recordInitialRecommendation has run
        self.up_events: list[tuple[float, int]] = []
        self.down_events: list[tuple[float, int]] = []
        self.reason = ""
        self._horizon_s: int | None = None

    @property
    def down_window(self) -> int:
        """Seconds of recommendations that hold a scale-down."""
        return self.downscale_window if self.behavior is None else self.behavior.scale_down.stabilization

    def _horizon(self) -> int:
        if self._horizon_s is None:
            b = self.behavior
            if b is None:
                self._horizon_s = self.downscale_window
            else:
                periods = [p.period for p in b.scale_up.policies + b.scale_down.policies]
                self._horizon_s = max([b.scale_up.stabilization, b.scale_down.stabilization, *periods, 0])
        return self._horizon_s

    def record_initial(self, now: float, current: int) -> None:
        """recordInitialRecommendation: the first sync records the current replicas as a recommendation."""
        if not self.seen:
            self.seen = True
            self.recommendations.append((now, current))

    def _prune(self, now: float) -> None:
        horizon = now - self._horizon()
        if self.recommendations and self.recommendations[0][0] < horizon:
            self.recommendations = [(t, r) for t, r in self.recommendations if t >= horizon]

    def stabilize(self, now: float, current: int, desired: int) -> int:
        """The stabilized recommendation (and record `desired`), on this HPA's path."""
        self._prune(now)
        if self.behavior is None:
            return stabilize_recommendation(self.recommendations, now, desired, self.downscale_window)
        return stabilize_with_behaviors(
            self.recommendations,
            now,
            current,
            desired,
            self.behavior.scale_up.stabilization,
            self.behavior.scale_down.stabilization,
        )

    def rate_limit(self, now: float, current: int, desired: int) -> int:
        """The limits after stabilization, including min/max."""
        if self.behavior is None:
            got, self.reason = convert_desired_replicas_with_rules(
                current, desired, self.min, self.max, self.scale_up_limit_factor, self.scale_up_limit_minimum
            )
            return got
        got, self.reason = convert_with_behavior_rate(
            current, desired, self.min, self.max, self.behavior, self.up_events, self.down_events, now
        )
        return got

    def reconcile(self, now: float, current: int, metric_desired: int | None) -> int:
        """One sync: the replicas the HPA sets, given its metrics' desired count (None: no metric could be read)."""
        self.record_initial(now, current)
        if current == 0 and self.min != 0:
            return 0  # scaling is disabled at 0 (KEDA owns 0 <-> 1)
        if current > self.max:
            desired = self.max
        elif current < self.min:
            desired = self.min
        elif metric_desired is None:
            return current  # computeReplicasForMetrics failed: the HPA changes nothing
        else:
            stabilized = self.stabilize(now, current, metric_desired)
            desired = self.rate_limit(now, current, stabilized)
        if desired != current:
            self.record_event(now, current, desired)
        return desired

    def record_event(self, now: float, current: int, desired: int) -> None:
        """storeScaleEvent: remember a scale event for the rate limits (only with a behavior)."""
        if self.behavior is None:
            return
        horizon = now - self._horizon()
        self.up_events = [(t, c) for t, c in self.up_events if t > horizon]
        self.down_events = [(t, c) for t, c in self.down_events if t > horizon]
        if desired > current:
            self.up_events.append((now, desired - current))
        elif desired < current:
            self.down_events.append((now, current - desired))

    def horizon(self) -> int:
        """Seconds of history the windows and rate limits look at."""
        return self._horizon()

    def record(self, times: list[float], recommendations: list[int]) -> None:
        """Record the recommendations of syncs that changed nothing (what reconcile would record)."""
        if not times:
            return
        self.seen = True
        cut = times[-1] - self._horizon()
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= cut]
        self.recommendations.extend((float(t), int(r)) for t, r in zip(times, recommendations, strict=True))

    def note_steady(self, now: float, current: int) -> None:
        """Record that syncs up to `now` recommended `current` (what skipped steady syncs would record)."""
        self.seen = True
        horizon = now - self._horizon()
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= horizon]
        self.recommendations.append((now, current))
