"""Kubernetes probe arithmetic (pure): how long a probe lets a container take before it gives up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBE_DEFAULT_PERIOD = 10  # core/v1 Probe periodSeconds default
PROBE_DEFAULT_FAILURES = 3  # core/v1 Probe failureThreshold default


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def probe_budget(probe: Mapping[str, Any]) -> int:
    """Seconds before a probe gives up: initialDelaySeconds + periodSeconds x failureThreshold."""
    delay = _int(probe.get("initialDelaySeconds"), 0)
    period = _int(probe.get("periodSeconds"), PROBE_DEFAULT_PERIOD) or PROBE_DEFAULT_PERIOD
    failures = _int(probe.get("failureThreshold"), PROBE_DEFAULT_FAILURES) or PROBE_DEFAULT_FAILURES
    return max(0, delay) + period * failures


def startup_budget(pod_spec: Mapping[str, Any]) -> tuple[int, str] | None:
    """The largest startupProbe budget among the pod's containers and which container has it, or None."""
    best: tuple[int, str] | None = None
    for container in pod_spec.get("containers") or []:
        if not isinstance(container, Mapping):
            continue
        probe = container.get("startupProbe")
        if isinstance(probe, Mapping):
            budget = probe_budget(probe)
            if best is None or budget > best[0]:
                best = (budget, str(container.get("name") or "?"))
    return best
