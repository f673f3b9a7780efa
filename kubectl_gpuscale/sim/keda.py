"""KEDA's operator decisions for a ScaledObject, as kedacore/keda implements them.

- pkg/scaling/executor/scale_scaledobjects.go `RequestScale`, `scaleToZeroOrIdle`,
  `scaleFromZeroOrIdle`, `getIdleOrMinimumReplicaCount` (and, up to 2.16, `doFallbackScaling`);
- pkg/fallback/fallback.go `GetMetricsWithFallback`, `HasValidFallback`, `doFallback`.
Pure: no clock, the caller passes times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubectl_gpuscale.sim import defaults as d

FALLBACK_BEHAVIORS = ("static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower")


@dataclass(frozen=True)
class Fallback:
    """`spec.fallback`: replicas, failureThreshold and (newer CRDs) behavior."""

    replicas: int
    failure_threshold: int = d.KEDA_FALLBACK_FAILURE_THRESHOLD
    behavior: str = "static"

    def valid(self) -> bool:
        """HasValidFallback: both numbers non-negative."""
        return self.failure_threshold >= 0 and self.replicas >= 0


@dataclass(frozen=True)
class ScaledObjectSpec:
    """The parts of a ScaledObject's spec the operator's scale decision reads."""

    min_replicas: int = d.KEDA_MIN_REPLICAS
    idle_replicas: int | None = None
    cooldown: float = d.KEDA_COOLDOWN_PERIOD_S
    initial_cooldown: float = d.KEDA_INITIAL_COOLDOWN_PERIOD_S
    fallback: Fallback | None = None


def fallback_replicas(fallback: Fallback, current: int) -> int:
    """doFallback: the replicas a fallback asks for, by `fallback.behavior`."""
    if fallback.behavior == "currentReplicas":
        return current
    if fallback.behavior == "currentReplicasIfHigher":
        return max(current, fallback.replicas)
    if fallback.behavior == "currentReplicasIfLower":
        return min(current, fallback.replicas)
    return fallback.replicas


def metrics_with_fallback(
    value: float | None, failures: int, fallback: Fallback | None, target: float, current: int
) -> tuple[float | None, int, bool]:
    """GetMetricsWithFallback for one metric fetch: (value, or None for an error; failures after; fallback used).

    `value` None is a failed fetch. A success resets the failures; a failure counts one, and once
    the count is strictly above failureThreshold the HPA is handed `target x fallback replicas`.
    """
    if value is not None:
        return value, 0, False
    failures += 1
    if fallback is None or not fallback.valid() or failures <= fallback.failure_threshold:
        return None, failures, False
    return target * fallback_replicas(fallback, current), failures, True


def request_scale(
    so: ScaledObjectSpec,
    current: int,
    is_active: bool,
    is_error: bool,
    last_active: float | None,
    created: float,
    now: float,
    keda_version: tuple[int, int] = d.KEDA_VERSION,
) -> tuple[int, float | None]:
    """RequestScale after one poll: (spec replicas, lastActiveTime).

    Active: from zero (or from idle below min) to max(min, 1); otherwise lastActiveTime = now
    (unless another trigger errors). Inactive with a scaler error: from KEDA 2.17 on nothing
    changes, fallback or not (a fallback reaches the HPA through the metric); up to 2.16 a
    fallback's replicas were set at once by `doFallbackScaling`, from zero too, and with no
    fallback the error fell through to the scale-to-zero case. Otherwise, with min 0 or idle replicas set, scale to
    idle/min once `lastActive + cooldown` (or, never active, `creation + initialCooldown`) is
    strictly before now; below min with no idle count, back to min.
    """
    minimum = so.min_replicas
    if is_active:
        if (so.idle_replicas is not None and current < minimum) or current == 0:
            return max(minimum, 1), now
        if is_error:
            return current, last_active
        return current, now
    fb = so.fallback
    if is_error and fb is not None and fb.replicas != 0:
        if keda_version < d.KEDA_NO_FALLBACK_SCALING_SINCE:
            return fb.replicas, last_active
        return current, last_active
    if is_error and fb is None and keda_version >= d.KEDA_NO_FALLBACK_SCALING_SINCE:
        return current, last_active
    if (so.idle_replicas is not None and current > so.idle_replicas) or (current > 0 and minimum == 0):
        if last_active is None:
            expired = created + so.initial_cooldown < now
        else:
            expired = last_active + so.cooldown < now
        if expired:
            return (so.idle_replicas if so.idle_replicas is not None else minimum), last_active
        return current, last_active
    if current < minimum and so.idle_replicas is None:
        return minimum, last_active
    return current, last_active
