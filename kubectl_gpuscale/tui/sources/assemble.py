"""Turn one round of raw lists (and per-pod metrics) into the dashboard's `Snapshot`.

Pure and fast: one pass over each list, dict lookups to join them, so a cluster
of 500 workloads and 5,000 pods rebuilds well inside the 100 ms budget.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.autoscale.hpa import quantity
from kubectl_gpuscale.names import KEDA_PAUSED, KEDA_PAUSED_REPLICAS, namespace_of
from kubectl_gpuscale.tui.model import Pod, ScalingEvent, Snapshot, Trigger, Workload

Obj = Mapping[str, Any]
PodKey = tuple[str, str]

KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"
SCALING_REASONS = (
    "SuccessfulRescale",
    "KEDAScaleTargetActivated",
    "KEDAScaleTargetDeactivated",
    "KEDAScalerFailed",
    "ScaledObjectReady",
    "FailedGetExternalMetric",
    "FailedComputeMetricsReplicas",
    "ScalingReplicaSet",
    "FailedScheduling",
    "TriggeredScaleUp",
    "NotTriggerScaleUp",
    "BackOff",
    "Unhealthy",
    "Pulling",
    "Pulled",
    "Killing",
    "Preempted",
    "FailedGetResourceMetric",
)


@dataclass
class ClusterLists:
    """The raw lists of one refresh (None: the kind is not served by this cluster)."""

    deployments: list[dict[str, Any]] = field(default_factory=list)
    statefulsets: list[dict[str, Any]] = field(default_factory=list)
    hpas: list[dict[str, Any]] = field(default_factory=list)
    scaledobjects: list[dict[str, Any]] | None = None
    httpscaledobjects: list[dict[str, Any]] | None = None
    knative_services: list[dict[str, Any]] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PodMetrics:
    """Per-pod metric values keyed by (namespace, pod); a missing key means no series."""

    queue: dict[PodKey, float] = field(default_factory=dict)
    running: dict[PodKey, float] = field(default_factory=dict)
    kv_cache: dict[PodKey, float] = field(default_factory=dict)
    gpu_util: dict[PodKey, float] = field(default_factory=dict)
    ttft_p95: dict[PodKey, float] = field(default_factory=dict)
    available: bool = False


@dataclass(frozen=True)
class _PodFacts:
    """What a pod's object says, parsed once per resourceVersion."""

    name: str
    owner: tuple[str, str, str] | None
    phase: str
    ready: bool
    node: str
    restarts: int
    started: float | None
    starting_phase: str | None


class Assembler:
    """Builds snapshots refresh after refresh, parsing each object again only when it changed.

    Engine detection and pod parsing are cached by (namespace, name, resourceVersion): between two
    refreshes of a large cluster most objects are unchanged, so a refresh costs dict lookups.
    """

    def __init__(self) -> None:
        self._detections: dict[tuple[str, str, str], engines.Detection] = {}
        self._pods: dict[tuple[str, str, str], _PodFacts] = {}

    def assemble(
        self,
        lists: ClusterLists,
        metrics: PodMetrics,
        *,
        source: str,
        now: datetime | None = None,
        problems: Sequence[str] = (),
        only_inference: bool = True,
    ) -> Snapshot:
        """Join workloads, their scalers, pods, events and metrics into a `Snapshot`."""
        now = now or datetime.now(timezone.utc)
        cached, self._pods = self._pods, {}
        pods_by_owner: dict[tuple[str, str, str], list[_PodFacts]] = defaultdict(list)
        for pod in lists.pods:
            key = _version_key(pod)
            facts = self._pods[key] = cached.get(key) or _pod_facts(pod)
            if facts.owner:
                pods_by_owner[facts.owner].append(facts)
        hpas_by_target = {
            (_ns(h), (h.get("spec") or {}).get("scaleTargetRef", {}).get("name")): h for h in lists.hpas
        }
        hpas_by_name = {(_ns(h), _name(h)): h for h in lists.hpas}
        sos_by_target = {
            (_ns(s), (s.get("spec") or {}).get("scaleTargetRef", {}).get("name")): s
            for s in lists.scaledobjects or ()
        }
        http_by_target = {(_ns(s), _http_target(s)): s for s in lists.httpscaledobjects or ()}
        ksvc_by_name = {(_ns(k), _name(k)): k for k in lists.knative_services or ()}
        detections: dict[tuple[str, str, str], engines.Detection] = {}

        workloads: list[Workload] = []
        for kind, items in (("Deployment", lists.deployments), ("StatefulSet", lists.statefulsets)):
            for obj in items:
                ns, name = _ns(obj), _name(obj)
                key = _version_key(obj)
                detection = detections[key] = self._detections.get(key) or engines.detect(obj)
                if only_inference and detection.engine is None and not detection.accelerators:
                    continue
                pods = pods_by_owner.get((kind, ns, name), [])
                ksvc_name = (obj.get("metadata", {}).get("labels") or {}).get(KNATIVE_SERVICE_LABEL)
                workloads.append(
                    _workload(
                        kind,
                        obj,
                        detection,
                        pods,
                        metrics,
                        now=now,
                        so=sos_by_target.get((ns, name)),
                        http=http_by_target.get((ns, name)),
                        hpa=hpas_by_target.get((ns, name)),
                        hpas_by_name=hpas_by_name,
                        ksvc=ksvc_by_name.get((ns, ksvc_name)) if ksvc_name else None,
                    )
                )
        self._detections = detections
        workloads.sort(key=lambda w: (w.namespace, w.name))
        events = tuple(
            _event(e) for e in sorted(lists.events, key=_event_time) if e.get("reason") in SCALING_REASONS
        )[-200:]
        namespaces = tuple(sorted({w.namespace for w in workloads}))
        return Snapshot(
            now.strftime("%H:%M:%S"), source, tuple(workloads), events, (), tuple(problems), namespaces
        )


def assemble(
    lists: ClusterLists,
    metrics: PodMetrics,
    *,
    source: str,
    now: datetime | None = None,
    problems: Sequence[str] = (),
    only_inference: bool = True,
) -> Snapshot:
    """One snapshot, without caches (see `Assembler` for refresh after refresh)."""
    return Assembler().assemble(
        lists, metrics, source=source, now=now, problems=problems, only_inference=only_inference
    )


def _version_key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (namespace_of(obj), str(meta.get("name") or ""), str(meta.get("resourceVersion") or id(obj)))


def _workload(
    kind: str,
    obj: Obj,
    detection: engines.Detection,
    pods: list[_PodFacts],
    metrics: PodMetrics,
    *,
    now: datetime,
    so: Obj | None,
    http: Obj | None,
    hpa: Obj | None,
    hpas_by_name: Mapping[tuple[str, str], Obj],
    ksvc: Obj | None,
) -> Workload:
    ns, name = _ns(obj), _name(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    scaler, scaler_name, paused = "none", "", False
    triggers: tuple[Trigger, ...] = ()
    low: int | None = None
    high: int | None = None
    if so is not None:
        so_spec = so.get("spec") or {}
        keda_hpa = hpas_by_name.get((ns, _keda_hpa_name(so)))
        scaler, scaler_name = "KEDA", _name(so)
        low, high = int(so_spec.get("minReplicaCount", 0)), int(so_spec.get("maxReplicaCount", 100))
        triggers = _keda_triggers(so, keda_hpa)
        annotations = so.get("metadata", {}).get("annotations") or {}
        paused = KEDA_PAUSED_REPLICAS in annotations or annotations.get(KEDA_PAUSED) == "true"
    elif http is not None:
        scaler, scaler_name = "KEDA-HTTP", _name(http)
        replicas = (http.get("spec") or {}).get("replicas") or {}
        low, high = replicas.get("min"), replicas.get("max")
    elif ksvc is not None:
        annotations = (ksvc.get("spec") or {}).get("template", {}).get("metadata", {}).get(
            "annotations"
        ) or {}
        scaler, scaler_name = "Knative", _name(ksvc)
        low = int(annotations.get("autoscaling.knative.dev/min-scale", 0))
        high_text = annotations.get("autoscaling.knative.dev/max-scale")
        high = int(high_text) if high_text else None
    elif hpa is not None:
        hpa_spec = hpa.get("spec") or {}
        scaler, scaler_name = "HPA", _name(hpa)
        low, high = int(hpa_spec.get("minReplicas", 1)), int(hpa_spec.get("maxReplicas", 0))
        triggers = _hpa_triggers(hpa)
        desired = int((hpa.get("status") or {}).get("desiredReplicas", desired))
    expected = float(detection.engine.cold_start_seconds if detection.engine else 300)
    now_ts = now.timestamp()
    pod_rows = tuple(_pod(p, ns, expected, metrics, now_ts) for p in pods)
    keys = [(ns, p.name) for p in pods]
    engine = detection.engine
    return Workload(
        namespace=ns,
        name=name,
        kind=kind,
        engine=engine.display if engine else "",
        model=detection.model or "",
        scaler=scaler,
        scaler_name=scaler_name,
        ready=ready,
        desired=desired,
        min_replicas=low,
        max_replicas=high,
        triggers=triggers,
        queue_waiting=_total(metrics.queue, keys),
        queue_running=_total(metrics.running, keys),
        kv_cache_pct=_pct(_mean(metrics.kv_cache, keys)),
        gpu_util_pct=_mean(metrics.gpu_util, keys),
        ttft_p95_s=_max(metrics.ttft_p95, keys),
        paused=paused,
        pods=pod_rows,
    )


def _pod_facts(pod: Obj) -> _PodFacts:
    status = pod.get("status") or {}
    started = _time(status.get("startTime") or pod.get("metadata", {}).get("creationTimestamp"))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    starting = None
    if not ready and status.get("phase") in ("Pending", "Running"):
        starting = _starting_phase(status, conditions)
    return _PodFacts(
        name=_name(pod),
        owner=_owner(pod),
        phase=str(status.get("phase") or "Unknown"),
        ready=ready,
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        restarts=sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []),
        started=started.timestamp() if started else None,
        starting_phase=starting,
    )


def _pod(facts: _PodFacts, namespace: str, expected_start: float, metrics: PodMetrics, now: float) -> Pod:
    age = now - facts.started if facts.started else 0.0
    progress = max(0.0, min(0.99, age / expected_start)) if facts.starting_phase else None
    return Pod(
        name=facts.name,
        phase=facts.phase,
        ready=facts.ready,
        node=facts.node,
        age_seconds=age,
        restarts=facts.restarts,
        gpu_util=metrics.gpu_util.get((namespace, facts.name)),
        starting_phase=facts.starting_phase,
        start_progress=progress,
    )


def _starting_phase(status: Obj, conditions: Mapping[str, Obj]) -> str:
    if (conditions.get("PodScheduled") or {}).get("status") != "True":
        return "waiting for a node"
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in (
            "ContainerCreating",
            "PodInitializing",
            "ErrImagePull",
            "ImagePullBackOff",
        ):
            return (
                "image pull"
                if "Image" in waiting.get("reason", "") or not c.get("imageID")
                else "container start"
            )
        if waiting.get("reason") == "CrashLoopBackOff":
            return "crash loop"
    return "engine start"


def _keda_hpa_name(so: Obj) -> str:
    advanced = ((so.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    return str(advanced.get("name") or f"keda-hpa-{_name(so)}")


def _keda_triggers(so: Obj, hpa: Obj | None) -> tuple[Trigger, ...]:
    """Each KEDA trigger with its threshold, and its current value as the KEDA-managed HPA reports it."""
    current = {}
    for m in ((hpa or {}).get("status") or {}).get("currentMetrics") or []:
        ext = m.get("external") or {}
        metric_name = (ext.get("metric") or {}).get("name", "")
        match = re.match(r"s(\d+)-", metric_name)
        value = (ext.get("current") or {}).get("averageValue") or (ext.get("current") or {}).get("value")
        if match and value is not None:
            current[int(match.group(1))] = quantity(value)
    out = []
    for i, t in enumerate((so.get("spec") or {}).get("triggers") or []):
        meta = t.get("metadata") or {}
        threshold = (
            meta.get("threshold")
            or meta.get("targetValue")
            or meta.get("value")
            or meta.get("desiredReplicas")
        )
        out.append(Trigger(_trigger_label(t), current.get(i), quantity(threshold) if threshold else None))
    return tuple(out)


def _trigger_label(trigger: Obj) -> str:
    kind = str(trigger.get("type", "?"))
    name = trigger.get("name")
    if name:
        return str(name)
    query = str((trigger.get("metadata") or {}).get("query", ""))
    for word, label in (
        ("waiting", "queue"),
        ("queue", "queue"),
        ("cache_usage", "kv"),
        ("token_usage", "kv"),
        ("GPU_UTIL", "gpu"),
        ("running", "running"),
    ):
        if word in query:
            return label
    return kind


def _hpa_triggers(hpa: Obj) -> tuple[Trigger, ...]:
    currents = (hpa.get("status") or {}).get("currentMetrics") or []
    out = []
    for i, m in enumerate((hpa.get("spec") or {}).get("metrics") or []):
        mtype = m.get("type", "")
        body = m.get(mtype[:1].lower() + mtype[1:]) or {}
        now_body = (currents[i].get(mtype[:1].lower() + mtype[1:]) or {}) if i < len(currents) else {}
        target, current = body.get("target") or {}, now_body.get("current") or {}
        if mtype in ("Resource", "ContainerResource"):
            name = str(body.get("name", "?"))
            if "averageUtilization" in target:
                out.append(
                    Trigger(
                        name,
                        _float(current.get("averageUtilization")),
                        float(target["averageUtilization"]),
                        "%",
                    )
                )
            else:
                out.append(Trigger(name, _qty(current.get("averageValue")), _qty(target.get("averageValue"))))
            continue
        name = str((body.get("metric") or {}).get("name", mtype.lower()))
        value = current.get("averageValue") or current.get("value")
        threshold = target.get("averageValue") or target.get("value")
        out.append(Trigger(name, _qty(value), _qty(threshold)))
    return tuple(out)


def _qty(value: Any) -> float | None:
    try:
        return None if value is None else quantity(value)
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _owner(pod: Obj) -> tuple[str, str, str] | None:
    """The controlling Deployment or StatefulSet of a pod, found through its ownerReferences."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, owner = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ReplicaSet":
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            if template_hash and owner.endswith("-" + template_hash):
                return ("Deployment", _ns(pod), owner[: -len(template_hash) - 1])
            return ("Deployment", _ns(pod), owner.rsplit("-", 1)[0])
        if kind == "StatefulSet":
            return ("StatefulSet", _ns(pod), owner)
    return None


def _http_target(obj: Obj) -> str | None:
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    return ref.get("name") or ref.get("deployment")


def _event(e: Obj) -> ScalingEvent:
    involved = e.get("involvedObject") or e.get("regarding") or {}
    when = _time(_event_time(e))
    return ScalingEvent(
        when.strftime("%H:%M:%S") if when else "--:--:--",
        str(involved.get("namespace") or _ns(e)),
        str(involved.get("name", "")),
        str(e.get("reason", "")),
        str(e.get("message") or e.get("note") or "").strip(),
        warning=e.get("type") == "Warning",
    )


def _event_time(e: Obj) -> str:
    return str(
        e.get("lastTimestamp")
        or e.get("eventTime")
        or e.get("firstTimestamp")
        or (e.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _ns(obj: Obj) -> str:
    return namespace_of(obj)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _total(values: Mapping[PodKey, float], keys: Sequence[PodKey]) -> float | None:
    found = [values[k] for k in keys if k in values]
    return sum(found) if found else None


def _mean(values: Mapping[PodKey, float], keys: Sequence[PodKey]) -> float | None:
    found = [values[k] for k in keys if k in values]
    return sum(found) / len(found) if found else None


def _max(values: Mapping[PodKey, float], keys: Sequence[PodKey]) -> float | None:
    found = [values[k] for k in keys if k in values]
    return max(found) if found else None


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0
