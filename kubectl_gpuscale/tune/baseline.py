"""`baseline_policy`: the workload's current autoscaling as a simulator policy (`sim.policies.PolicySpec`).

Reads the objects as the cluster (or a -f file) holds them, plain dicts. Which one scales the
workload, first found wins: a KEDA ScaledObject (its HPA is KEDA's), an HTTPScaledObject, a
Knative Service, an HPA; none of them: the Deployment/StatefulSet's `spec.replicas`, always on.

- HPA (autoscaling/v2, or v1's targetCPUUtilizationPercentage): a CPU Utilization target ->
  `cpu-hpa:min:max:target`; a GPU-utilisation Pods/External metric (DCGM `DCGM_FI_DEV_GPU_UTIL`)
  -> `gpu-hpa`; a Pods/External metric on the engine's queue or running gauge (an adapter, e.g.
  `prometheus.googleapis.com|vllm:num_requests_waiting|gauge`) -> `keda` with that AverageValue as
  threshold and min >= 1 (the same arithmetic, no scale to zero). Any other metric: InputError.
- ScaledObject: a `prometheus` trigger on the engine's queue (`waiting`), running (`running`) or
  both (`concurrency`) -> `keda` (with several, as migrate-hpa writes when the HPA had its own metric,
  the queue trigger is modelled and the others are not: the simulator's KEDA scales on one metric) with threshold, activationThreshold, min/max, pollingInterval,
  cooldownPeriod and the HPA's scale-down stabilization window; `cron` triggers become floors
  (`cron=START-ENDxN`, weekday hours as written in `start`/`end`). Other trigger types: InputError.
- HTTPScaledObject: `keda-zero` (interceptor buffering) with the concurrency target and replicas.
- Knative Service: `knative` with the `autoscaling.knative.dev/*` annotations of its template.

Pure: plain data in, `PolicySpec` out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_gpuscale.engines.catalogue import DCGM_GPU_UTIL, ENGINES
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.policies import PolicySpec
from kubectl_gpuscale.units import duration_seconds

KNATIVE = "autoscaling.knative.dev/"
# the camelCase keys Knative still accepts (serving pkg/apis/autoscaling/register.go: MinScaleAnnotationKeyAlias...)
_KNATIVE_ALIASES = {
    "minScale": "min-scale",
    "maxScale": "max-scale",
    "initialScale": "initial-scale",
    "scaleDownDelay": "scale-down-delay",
}
_CRON_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+\S+\s+\S+\s+(\S+)\s*$")


def baseline_policy(objects: Sequence[Mapping[str, Any]]) -> PolicySpec:
    """The policy that scales the workload today (see the module docstring for the mapping).

    Raises:
        InputError: a metric or trigger the simulator cannot model, or no workload at all.
    """
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        if isinstance(obj, Mapping):
            by_kind.setdefault(str(obj.get("kind", "")), []).append(obj)
    if by_kind.get("ScaledObject"):
        return _scaled_object(by_kind["ScaledObject"][0])
    if by_kind.get("HTTPScaledObject"):
        return _http_scaled_object(by_kind["HTTPScaledObject"][0])
    services = [
        o
        for o in by_kind.get("Service", [])
        if str(o.get("apiVersion", "")).startswith("serving.knative.dev")
    ]
    if services:
        return _knative(services[0])
    if by_kind.get("HorizontalPodAutoscaler"):
        return _hpa(by_kind["HorizontalPodAutoscaler"][0])
    for kind in ("Deployment", "StatefulSet"):
        if by_kind.get(kind):
            replicas = (by_kind[kind][0].get("spec") or {}).get("replicas", 1)
            return PolicySpec("always-on", {"n": str(int(replicas))})
    raise InputError(
        "no workload or autoscaler among the objects",
        "tune needs the Deployment/StatefulSet and its HPA, ScaledObject or Knative Service",
        "pass the workload (deploy/NAME) or a file with its objects",
    )


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('name', '?')}"


def _int(value: Any, where: str) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a whole number", fix="fix the object") from None


def _number(value: Any, where: str) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a number", fix="fix the object") from None


def _hpa(hpa: Mapping[str, Any]) -> PolicySpec:
    spec = hpa.get("spec") or {}
    name = _name(hpa)
    options = {
        "min": _int(spec.get("minReplicas", 1), f"{name} minReplicas"),
        "max": _int(spec.get("maxReplicas", 1), f"{name} maxReplicas"),
    }
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        return PolicySpec(
            "cpu-hpa", {**options, "target": _number(spec["targetCPUUtilizationPercentage"], name)}
        )
    metrics = spec.get("metrics") or [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]  # autoscaling/v2 defaulting: CPU 80 %
    for metric in metrics:
        kind = metric.get("type")
        if kind == "Resource" and (metric.get("resource") or {}).get("name") == "cpu":
            target = metric["resource"].get("target") or {}
            if target.get("type") == "Utilization":
                return PolicySpec(
                    "cpu-hpa", {**options, "target": _number(target.get("averageUtilization"), name)}
                )
        if kind in ("Pods", "External"):
            body = metric.get("pods" if kind == "Pods" else "external") or {}
            metric_name = str((body.get("metric") or {}).get("name", ""))
            target = body.get("target") or {}
            value = target.get("averageValue", target.get("value"))
            if DCGM_GPU_UTIL.lower() in metric_name.lower() and value is not None:
                return PolicySpec("gpu-hpa", {**options, "target": _number(_quantity(value), name)})
            signal = _engine_signal(metric_name)
            if signal and value is not None:
                # an HPA on the engine's gauge through an adapter: AverageValue = sum / pods, as KEDA's trigger
                return PolicySpec(
                    "keda", {**options, "metric": signal, "threshold": _number(_quantity(value), name)}
                )
    described = ", ".join(f"{m.get('type')} {_metric_name(m)}" for m in metrics)
    raise InputError(
        f"cannot simulate {name}",
        f"its metrics ({described}) are neither CPU utilisation nor DCGM GPU utilisation",
        "pass --policies to compare against, or convert it with migrate-hpa first",
    )


def _metric_name(metric: Mapping[str, Any]) -> str:
    for key in ("resource", "pods", "external", "object", "containerResource"):
        body = metric.get(key)
        if isinstance(body, Mapping):
            return str(body.get("name") or (body.get("metric") or {}).get("name") or "?")
    return "?"


def _quantity(value: Any) -> float:
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def _engine_signal(query: str) -> str | None:
    """'waiting', 'running' or 'concurrency' from the engine gauges a PromQL query sums."""
    plain = query.replace("[:_]", "_").replace(":", "_")
    found = set()
    for engine in ENGINES:
        for role, metric in (("waiting", engine.queue), ("running", engine.running)):
            if metric and any(n.replace(":", "_") in plain for n in metric.names):
                found.add(role)
    if found == {"waiting", "running"}:
        return "concurrency"
    return found.pop() if len(found) == 1 else None


def _scaled_object(so: Mapping[str, Any]) -> PolicySpec:
    spec = so.get("spec") or {}
    name = _name(so)
    options: dict[str, str] = {
        "min": _int(spec.get("minReplicaCount", 0), f"{name} minReplicaCount"),
        "max": _int(spec.get("maxReplicaCount", 100), f"{name} maxReplicaCount"),
    }
    if "pollingInterval" in spec:
        options["polling"] = _int(spec["pollingInterval"], f"{name} pollingInterval")
    if "cooldownPeriod" in spec:
        options["cooldown"] = _int(spec["cooldownPeriod"], f"{name} cooldownPeriod")
    behavior = ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {}
    window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
    if window is not None:
        options["down-window"] = _int(window, f"{name} scaleDown.stabilizationWindowSeconds")
        options["down-pods"] = "100"
        options["down-period"] = "15"
    queries: list[Mapping[str, Any]] = []
    for trigger in spec.get("triggers") or []:
        kind = trigger.get("type")
        meta = trigger.get("metadata") or {}
        if kind == "prometheus":
            queries.append(meta)
        elif kind == "cron":
            options["cron"] = _cron(meta, name)
        else:
            raise InputError(
                f"cannot simulate {name}",
                f"trigger type {kind!r} is not one tune models (prometheus on "
                "the engine's queue or running requests, cron)",
                "pass --policies to search without a baseline, or replace the trigger",
            )
    if not queries:
        raise InputError(
            f"cannot simulate {name}",
            "it has no prometheus trigger on the engine's metrics",
            "add one (migrate-hpa writes it), or pass --policies",
        )
    # the simulator's KEDA scales on one metric: the queue trigger when there is one (migrate-hpa's first),
    # else the first trigger on an engine gauge; further triggers (KEDA takes the highest) are not modelled
    known = sorted(
        ((signal, q) for q in queries if (signal := _engine_signal(str(q.get("query", ""))))),
        key=lambda s_q: s_q[0] != "waiting",
    )
    if not known:
        main = queries[0]
        raise InputError(
            f"cannot simulate {name}",
            f"its query {main.get('query')!r} sums no engine queue or "
            "running gauge (e.g. vllm:num_requests_waiting)",
            "pass --policies",
        )
    signal, main = known[0]
    options["metric"] = signal
    options["threshold"] = _number(main.get("threshold"), f"{name} threshold")
    if "activationThreshold" in main:
        options["activation"] = _number(main["activationThreshold"], f"{name} activationThreshold")
    return PolicySpec("keda", options)


def _cron(meta: Mapping[str, Any], name: str) -> str:
    start, end = _CRON_RE.match(str(meta.get("start", ""))), _CRON_RE.match(str(meta.get("end", "")))
    if not start or not end:
        raise InputError(
            f"cannot simulate {name}",
            f"cron trigger start {meta.get('start')!r} / end {meta.get('end')!r} are not 'MIN HOUR * * DAYS'",
            "pass --policies",
        )
    hours = (int(start.group(2)) + int(start.group(1)) / 60.0, int(end.group(2)) + int(end.group(1)) / 60.0)
    return f"{hours[0]:g}-{hours[1]:g}x{_int(meta.get('desiredReplicas', 1), name + ' desiredReplicas')}"


def _http_scaled_object(hso: Mapping[str, Any]) -> PolicySpec:
    spec = hso.get("spec") or {}
    name = _name(hso)
    replicas = spec.get("replicas") or {}
    metric = spec.get("scalingMetric") or {}
    target = (metric.get("concurrency") or {}).get("targetValue") or spec.get("targetPendingRequests") or 100
    options = {
        "min": _int(replicas.get("min", 0), f"{name} replicas.min"),
        "max": _int(replicas.get("max", 100), f"{name} replicas.max"),
        "threshold": _number(target, f"{name} target"),
    }
    if "scaledownPeriod" in spec:
        options["cooldown"] = _int(spec["scaledownPeriod"], f"{name} scaledownPeriod")
    return PolicySpec("keda-zero", options)


def _knative(ksvc: Mapping[str, Any]) -> PolicySpec:
    name = _name(ksvc)
    template = (ksvc.get("spec") or {}).get("template") or {}
    notes = {
        _KNATIVE_ALIASES.get(k[len(KNATIVE) :], k[len(KNATIVE) :]): str(v)
        for k, v in ((template.get("metadata") or {}).get("annotations") or {}).items()
        if str(k).startswith(KNATIVE)
    }
    if notes.get("class", "kpa.autoscaling.knative.dev").split(".")[0] != "kpa":
        raise InputError(
            f"cannot simulate {name}",
            f"autoscaling class {notes['class']!r}: tune models the KPA",
            "pass --policies",
        )
    options: dict[str, str] = {}
    for key, option in (
        ("metric", "metric"),
        ("target", "target"),
        ("min-scale", "min"),
        ("max-scale", "max"),
        ("initial-scale", "initial-scale"),
        ("activation-scale", "activation-scale"),
    ):
        if key in notes:
            options[option] = notes[key]
    if "target-utilization-percentage" in notes:
        options["utilization"] = notes["target-utilization-percentage"]
    for key, option in (("window", "window"), ("scale-down-delay", "delay")):
        if key in notes:
            options[option] = str(int(duration_seconds(notes[key])))
    if "target" not in options:
        concurrency = (template.get("spec") or {}).get("containerConcurrency")
        options["target"] = str(int(concurrency)) if concurrency else "100"  # config-autoscaler default
    options.setdefault("max", "0")
    return PolicySpec("knative", options)
