"""The reasons the HPA and KEDA controllers give for a decision, as a code plus numbers.

The Python controllers (sim/policies.py) and their compiled twins (`hpa_decide`, `keda_decide` in
sim/_jit.py) both record a reason as `(code, x, y)`; this module turns it into the text that scale
events carry and `top` shows, so the text is written once. No numba here: the policies import it.
sim/_jit.py keeps its own copy of the codes (`*_REASON_*`): numba's cache is keyed on that file
alone, so a code it read from here could change without recompiling; tests/test_sim_twins.py checks
the two agree.
"""

from __future__ import annotations

NONE = 0
HPA_METRIC = 1  # x: the metric's value (%)
KEDA_ACTIVATED = 2
KEDA_FALLBACK_SCALING = 3  # x: the replicas KEDA <= 2.16's doFallbackScaling set
KEDA_COOLDOWN = 4
KEDA_MIN_REPLICAS = 5
KEDA_UNAVAILABLE = 6
KEDA_FALLBACK = 7  # x: the replicas the fallback metric asks for
KEDA_METRIC = 8  # x: the metric's value, y: the cron floor (0: none)


def hpa_reason(metric: str, target: float, x: float) -> str:
    """An HPA's reason: the metric's value against its target."""
    return f"{metric} {x:.0f}% / target {target:.0f}%"


def keda_reason(code: int, x: float, y: float, *, metric: str, threshold: float, cooldown: int) -> str:
    """A KEDA ScaledObject's reason for the decision `code` with its numbers `x`, `y`."""
    if code == KEDA_ACTIVATED:
        return "activated"
    if code == KEDA_FALLBACK_SCALING:
        return f"fallback to {int(x)} (KEDA <= 2.16)"
    if code == KEDA_COOLDOWN:
        return f"cooldown {cooldown}s elapsed"
    if code == KEDA_MIN_REPLICAS:
        return "minReplicaCount"
    if code == KEDA_UNAVAILABLE:
        return f"{metric} unavailable"
    if code == KEDA_FALLBACK:
        return f"fallback to {int(x)}"
    if code == KEDA_METRIC:
        floor = int(y)
        return f"{metric}={x:.1f} / threshold {threshold:g}" + (f", cron floor {floor}" if floor else "")
    return ""
