"""The Kubernetes HPA v2 algorithm, as kube-controller-manager implements it.

Follows pkg/controller/podautoscaler: replica_calculator.go (GetResourceReplicas with the
tolerance and the treatment of not-ready pods; GetExternalPerPodMetricReplicas for
AverageValue targets) and horizontal.go (stabilizeRecommendationWithBehaviors,
convertDesiredReplicasWithBehaviorRate, calculateScaleUp/DownLimitWithScalingRules).
Pure: no clock, the caller passes the time in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kubectl_gpuscale.sim import defaults as d


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
    select: str = "Max"          # Max | Min | Disabled


def default_scale_up() -> ScalingRules:
    """autoscaling/v2 default scaleUp: no window, max(100 %, 4 pods) per 15 s."""
    return ScalingRules(d.HPA_SCALE_UP_STABILIZATION_S,
                        tuple(ScalingPolicy(t, v, p) for t, v, p in d.HPA_SCALE_UP_POLICIES), d.HPA_SELECT_POLICY)


def default_scale_down() -> ScalingRules:
    """autoscaling/v2 default scaleDown: 300 s window, 100 % per 15 s."""
    return ScalingRules(d.HPA_SCALE_DOWN_STABILIZATION_S,
                        tuple(ScalingPolicy(t, v, p) for t, v, p in d.HPA_SCALE_DOWN_POLICIES), d.HPA_SELECT_POLICY)


@dataclass(frozen=True)
class Behavior:
    """`spec.behavior` of an autoscaling/v2 HPA."""

    scale_up: ScalingRules = field(default_factory=default_scale_up)
    scale_down: ScalingRules = field(default_factory=default_scale_down)


def resource_replicas(current: int, ready: int, unready: int, usage: float, target: float,
                      tolerance: float = d.HPA_TOLERANCE) -> int:
    """Replicas for a Resource Utilization metric (GetResourceReplicas).

    `usage` is the average utilisation (%) of the ready pods; `unready` pods have no usable
    sample (not Ready yet, or inside the CPU initialisation period). On a scale-up they count
    as 0 % usage; otherwise they are ignored. Returns `current` when there are no samples.
    """
    if ready <= 0:
        return current
    ratio = usage / target
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if not scale_up_with_unready:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return int(math.ceil(ratio * ready))
    new_ratio = usage * ready / (target * (ready + unready))
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = int(math.ceil(new_ratio * (ready + unready)))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def external_replicas(status_replicas: int, total: float, target_per_pod: float,
                      tolerance: float = d.HPA_TOLERANCE) -> int:
    """Replicas for an External metric with an AverageValue target (what KEDA's triggers use)."""
    if status_replicas <= 0:
        return int(math.ceil(total / target_per_pod))
    ratio = total / (target_per_pod * status_replicas)
    if abs(1.0 - ratio) > tolerance:
        return int(math.ceil(total / target_per_pod))
    return status_replicas


def _change_in_period(period: int, events: list[tuple[float, int]], now: float) -> int:
    cutoff = now - period
    return sum(change for t, change in events if t > cutoff)


def scale_up_limit(current: int, up_events: list[tuple[float, int]], down_events: list[tuple[float, int]],
                   rules: ScalingRules, now: float) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    if rules.select == "Disabled":
        return current
    pick = min if rules.select == "Min" else max
    result: int | None = None
    for p in rules.policies:
        start = current - _change_in_period(p.period, up_events, now) + _change_in_period(p.period, down_events, now)
        proposed = start + p.value if p.type == "Pods" else int(math.ceil(start * (1 + p.value / 100.0)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def scale_down_limit(current: int, up_events: list[tuple[float, int]], down_events: list[tuple[float, int]],
                     rules: ScalingRules, now: float) -> int:
    """calculateScaleDownLimitWithBehaviors."""
    if rules.select == "Disabled":
        return current
    pick = max if rules.select == "Min" else min
    result: int | None = None
    for p in rules.policies:
        start = current - _change_in_period(p.period, up_events, now) + _change_in_period(p.period, down_events, now)
        proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100.0))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


class HpaState:
    """The per-HPA memory kube-controller-manager keeps: recommendations and scale events."""

    def __init__(self, min_replicas: int, max_replicas: int, behavior: Behavior | None = None) -> None:
        self.min = min_replicas
        self.max = max_replicas
        self.behavior = behavior or Behavior()
        self.recommendations: list[tuple[float, int]] = []
        self.up_events: list[tuple[float, int]] = []
        self.down_events: list[tuple[float, int]] = []
        self._horizon_s: int | None = None

    def _horizon(self) -> int:
        if self._horizon_s is None:
            b = self.behavior
            periods = [p.period for p in b.scale_up.policies + b.scale_down.policies]
            self._horizon_s = max([b.scale_up.stabilization, b.scale_down.stabilization, *periods, 0])
        return self._horizon_s

    def stabilize(self, now: float, current: int, desired: int) -> int:
        """stabilizeRecommendationWithBehaviors: clamp to the windows' min-up/max-down, record."""
        up_cut = now - self.behavior.scale_up.stabilization
        down_cut = now - self.behavior.scale_down.stabilization
        up_rec = desired
        down_rec = desired
        for t, rec in self.recommendations:
            if t > up_cut:
                up_rec = min(up_rec, rec)
            if t > down_cut:
                down_rec = max(down_rec, rec)
        recommendation = current
        if recommendation < up_rec:
            recommendation = up_rec
        if recommendation > down_rec:
            recommendation = down_rec
        horizon = now - self._horizon()
        self.recommendations = [(t, r) for t, r in self.recommendations if t > horizon]
        self.recommendations.append((now, desired))
        return recommendation

    def rate_limit(self, now: float, current: int, desired: int) -> int:
        """convertDesiredReplicasWithBehaviorRate, including the min/max clamp."""
        if desired > current:
            limit = max(current, scale_up_limit(current, self.up_events, self.down_events,
                                                self.behavior.scale_up, now))
            return min(desired, self.max, limit)
        if desired < current:
            limit = min(current, scale_down_limit(current, self.up_events, self.down_events,
                                                  self.behavior.scale_down, now))
            return max(desired, self.min, limit)
        return desired

    def reconcile(self, now: float, current: int, metric_desired: int) -> int:
        """One sync: the replicas the HPA sets, given its metrics' desired count."""
        if current == 0 and self.min != 0:
            return 0  # scaling is disabled at 0 (KEDA owns 0 <-> 1)
        if current > self.max:
            desired = self.max
        elif current < self.min:
            desired = self.min
        else:
            stabilized = self.stabilize(now, current, metric_desired)
            desired = self.rate_limit(now, current, stabilized)
        if desired != current:
            self.record_event(now, current, desired)
        return desired

    def record_event(self, now: float, current: int, desired: int) -> None:
        """Remember a scale event for the rate limits."""
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
        cut = times[-1] - self._horizon()
        self.recommendations = [(t, r) for t, r in self.recommendations if t > cut]
        self.recommendations.extend((float(t), int(r)) for t, r in zip(times, recommendations, strict=True))

    def note_steady(self, now: float, current: int) -> None:
        """Record that syncs up to `now` recommended `current` (what skipped steady syncs would record)."""
        horizon = now - self._horizon()
        self.recommendations = [(t, r) for t, r in self.recommendations if t > horizon]
        self.recommendations.append((now, current))
