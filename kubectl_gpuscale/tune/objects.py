"""The recommendation as migrate-hpa options, and the parameters migrate-hpa does not set written
into the objects its builders made (replica bounds, scale-down stabilization, Knative target and delay).
Pure: plain dicts in, plain dicts out."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_gpuscale.autoscale.builders import Schedule
from kubectl_gpuscale.autoscale.convert import Options
from kubectl_gpuscale.tune.search import Candidate

KNATIVE = "autoscaling.knative.dev/"
CRON_DAYS = {(0, 1, 2, 3, 4): "1-5", (0, 1, 2, 3, 4, 5, 6): "*"}


def migrate_options(candidate: Candidate, *, cold_start: int | None = None) -> Options:
    """The conversion options (`migrate.MigrateRequest.options`) that build the candidate's objects."""
    p = candidate.params
    if candidate.policy == "knative":
        return Options(to="knative", cold_start=cold_start)
    out: dict[str, Any] = {
        "to": "keda",
        "scale_to_zero": candidate.policy == "keda-zero",
        "target_queue": float(p["threshold"]),
        "activation": float(p["activation"]),
        "polling": int(p["pollingSeconds"]),
        "cooldown": int(p["cooldownSeconds"]),
        "cold_start": cold_start,
    }
    if candidate.floor is not None:
        f = candidate.floor
        days = CRON_DAYS.get(f.days, ",".join(str((d + 1) % 7) for d in f.days))
        end = f"59 23 * * {days}" if f.end >= 24 else f"0 {f.end} * * {days}"  # 24:00 is the same day's end
        out["schedule"] = Schedule("UTC", f"0 {f.start} * * {days}", end, f.replicas)
    return Options(**out)


def shaped(objects: Sequence[Mapping[str, Any]], candidate: Candidate) -> list[dict[str, Any]]:
    """Copies of the objects with the candidate's replica bounds, stabilization, target and delay."""
    p = candidate.params
    out = []
    for original in objects:
        obj = copy.deepcopy(dict(original))
        kind = obj.get("kind")
        spec = obj.setdefault("spec", {})
        if kind == "ScaledObject":
            spec["minReplicaCount"] = int(p["minReplicas"])
            spec["maxReplicaCount"] = int(p["maxReplicas"])
            hpa = spec.setdefault("advanced", {}).setdefault("horizontalPodAutoscalerConfig", {})
            down = hpa.setdefault("behavior", {}).setdefault("scaleDown", {})
            down["stabilizationWindowSeconds"] = int(p["scaleDownStabilizationSeconds"])
        elif kind == "HTTPScaledObject":
            spec.setdefault("replicas", {})["max"] = int(p["maxReplicas"])
            spec["scalingMetric"] = {"concurrency": {"targetValue": int(p["threshold"])}}
            spec["scaledownPeriod"] = int(p["cooldownSeconds"])
        elif kind == "Service" and str(obj.get("apiVersion", "")).startswith("serving.knative.dev/"):
            notes = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("annotations", {})
            notes[KNATIVE + "target"] = str(p["target"])
            notes[KNATIVE + "min-scale"] = str(p["minScale"])
            notes[KNATIVE + "max-scale"] = str(p["maxScale"])
            notes[KNATIVE + "scale-down-delay"] = f"{int(p['scaleDownDelaySeconds'])}s"
        out.append(obj)
    return out
