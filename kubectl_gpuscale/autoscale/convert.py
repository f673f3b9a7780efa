"""HPA -> KEDA: read each HPA with its workload, detect the engine, and build the objects that
replace it (a ScaledObject adopting the HPA; or a Knative Service), with a report row per HPA."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.autoscale import builders, promql
from kubectl_gpuscale.autoscale.hpa import (
    HPA,
    HPA_DEFAULT_SCALE_DOWN_WINDOW,
    HPA_KIND,
    MetricSpec,
    number_text,
    original_record,
    parse_hpa,
)
from kubectl_gpuscale.autoscale.probes import probe_budget, startup_budget
from kubectl_gpuscale.errors import GpuscaleError, InputError
from kubectl_gpuscale.facts import Targets, pinned_targets
from kubectl_gpuscale.facts import knative as kfacts
from kubectl_gpuscale.facts.keda import fallback_covers, fallback_plan, holds
from kubectl_gpuscale.names import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROMETHEUS_URL,
    ENGINE_ANNOTATION,
    HTTP_INTERCEPTOR,
    ORIGINAL_HPA,
    STABILIZATION_REASON,
    namespace_of,
)

QUEUE_FRACTION = 20  # default target queue per replica = ceil(max concurrency / 20), i.e. 5 %
UNKNOWN_COLD_START = 300
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "LeaderWorkerSet", "ReplicaSet")


@dataclass(frozen=True)
class Options:
    """How to convert. Defaults suit GPU inference; see docs/migrate-hpa.md."""

    prometheus: str = DEFAULT_PROMETHEUS_URL
    target_queue: float | None = None
    activation: float = 0
    kv_cache: float | None = None
    gpu_util: float | None = None
    query: str | None = None
    force: bool = False
    scale_to_zero: bool = False
    cold_start: int | None = None
    to: str = "keda"
    pdb: bool = False
    schedule: builders.Schedule | None = None
    polling: int = builders.GPU_POLLING
    cooldown: int = builders.GPU_COOLDOWN
    hosts: tuple[str, ...] = ()
    namespace: str | None = None
    from_cluster: bool = False
    knative_version: kfacts.Version | None = None
    # (kind, namespace, name) -> cold start measured on the workload's own pods, and its source.
    measured_cold_starts: Mapping[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)
    targets: Targets | None = None

    def target_versions(self) -> Targets:
        """The component versions to emit for (``--target-versions``, detected, else the pinned ones)."""
        return self.targets or pinned_targets()


@dataclass
class Conversion:
    """The outcome for one HPA: what would be written, or why not."""

    hpa: str
    target: str = ""
    engine: str = "-"
    gpu: str = "-"
    metric: str = "-"
    threshold: str = "-"
    replicas: str = "-"
    action: str = "migrate"
    why: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: GpuscaleError | None = None
    namespace: str | None = None
    name: str = ""

    @property
    def ok(self) -> bool:
        """True when objects were built."""
        return self.action == "migrate"

    def row(self) -> dict[str, Any]:
        """The report row as plain data (for -o json/yaml of the plan)."""
        return {
            "hpa": self.hpa,
            "target": self.target,
            "engine": self.engine,
            "gpu": self.gpu,
            "metric": self.metric,
            "threshold": self.threshold,
            "replicas": self.replicas,
            "action": self.action,
            "why": self.why,
            "notes": list(self.notes),
        }


def default_target_queue(concurrency: int) -> int:
    """Waiting requests per replica that trigger a scale-up: 5 % of the engine's max concurrency, >= 1."""
    return max(1, math.ceil(concurrency / QUEUE_FRACTION))


def _ns(obj: Mapping[str, Any], default: str | None) -> str | None:
    return (obj.get("metadata") or {}).get("namespace") or default


def index_workloads(
    objects: Iterable[Mapping[str, Any]], default_ns: str | None
) -> dict[tuple[str, str | None, str], Mapping[str, Any]]:
    """Workloads and Services keyed by (kind, namespace, name)."""
    out: dict[tuple[str, str | None, str], Mapping[str, Any]] = {}
    for obj in objects:
        kind = str(obj.get("kind") or "")
        if kind != HPA_KIND:
            out[(kind, _ns(obj, default_ns), str((obj.get("metadata") or {}).get("name") or ""))] = obj
    return out


def cold_start_estimate(
    workload: Mapping[str, Any],
    detection: engines.Detection,
    given: int | None,
    measured: tuple[int, str] | None = None,
    *,
    startup_probe: bool = True,
) -> tuple[int, str]:
    """Seconds a new replica needs before serving, and where the figure came from.

    In order: ``--cold-start``; measured from the workload's own pods (``measured``, from the
    coldstart service when a cluster is at hand); the startupProbe budget the operator wrote
    (initialDelaySeconds + periodSeconds x failureThreshold); the engine's typical cold start.
    A readiness or liveness delay is never taken for one: it says when probing starts, not when
    the model is loaded. ``startup_probe=False`` gives the estimate without the probe (to judge the
    probe itself).
    """
    if given is not None:
        return given, "--cold-start"
    if measured is not None:
        return measured
    template = engines.pod_template(workload) or {}
    written = startup_budget(template.get("spec") or {}) if startup_probe else None
    if written:
        return written[
            0
        ], f"startupProbe budget of {written[1]} (initialDelaySeconds + periodSeconds x failureThreshold)"
    if detection.engine:
        return detection.engine.cold_start_seconds, f"{detection.engine.display} typical cold start"
    return UNKNOWN_COLD_START, "default for GPU inference"


def _behavior(hpa: HPA, cold_start: int, source: str) -> tuple[dict[str, Any], str]:
    behavior = json.loads(json.dumps(hpa.behavior or {}))
    down = behavior.setdefault("scaleDown", {})
    current = down.get("stabilizationWindowSeconds")
    effective = HPA_DEFAULT_SCALE_DOWN_WINDOW if current is None else int(current)
    if effective >= cold_start:
        reason = f"kept {effective}s (>= cold start {cold_start}s from {source})"
        if current is None:
            down["stabilizationWindowSeconds"] = effective
    else:
        down["stabilizationWindowSeconds"] = cold_start
        reason = f"raised {effective}s -> {cold_start}s: a replica removed costs a {cold_start}s cold start ({source})"
    return behavior, reason


def _decode(name: str) -> tuple[str | None, str, str]:
    """(prometheus name or None, kind, why-not) from an HPA metric name (GMP `prometheus.googleapis.com|x|gauge`)."""
    if "|" not in name:
        return name, "gauge", ""
    parts = name.split("|")
    if parts[0] == "prometheus.googleapis.com" and len(parts) == 3:
        return parts[1], parts[2], ""
    return None, "", f"{name} is a Cloud Monitoring metric with no Prometheus equivalent"


@dataclass(frozen=True)
class _Trigger:
    trigger: dict[str, Any]
    metric: str
    threshold: str
    role: str = ""


def translate_metric(
    metric: MetricSpec, index: int, namespace: str, pod_re: str, server: str
) -> tuple[_Trigger | None, str]:
    """A prometheus trigger equivalent to one HPA custom metric, or (None, why it does not translate)."""
    if metric.type in ("Resource", "ContainerResource"):
        return None, f"{metric.describe()} dropped: CPU/memory do not follow GPU load"
    name, kind, why = _decode(metric.name)
    if name is None:
        return None, why
    if metric.target is None:
        return None, f"{metric.describe()} has no target value"
    if not metric.target > 0:
        return (
            None,
            f"{metric.describe()} dropped: its target is not above 0 (KEDA and the HPA need a positive one)",
        )
    known = engines.engine_for_metric(name)
    role = ""
    fixed: tuple[tuple[str, str], ...] = ()
    names: tuple[str, ...] = (name,)
    threshold = metric.target
    note = ""
    if known:
        engine, role = known
        spec: engines.Metric = getattr(engine, role)
        names, fixed = (
            spec.names
            if name.replace(":", "_") in {n.replace(":", "_") for n in spec.names}
            else (name, *spec.names),
            spec.labels,
        )
        if role == "kv_cache" and threshold > 1:
            note = (
                f"{metric.name} target {number_text(threshold)} read as percent -> {threshold / 100:g} "
                f"(the metric is a fraction 0-1)"
            )
            threshold = threshold / 100
    labels: list[tuple[str, str, str]] = []
    if metric.type == "Pods" or (metric.type == "Object" and metric.described.get("kind") != "Namespace"):
        labels = [("namespace", "=", namespace), ("pod", "=~", pod_re)]
    elif metric.type == "Object":
        labels = [("namespace", "=", metric.described.get("name") or namespace)]
    labels += [(k, "=", v) for k, v in fixed] + [(k, "=", v) for k, v in sorted(metric.selector.items())]
    sel = promql.selector(names, labels)
    inner = f"rate({sel}[2m])" if kind == "counter" else sel
    query = f"sum(max by (namespace, pod) ({inner}))" if role == "kv_cache" else f"sum({inner})"
    metric_type = "Value" if metric.target_type == "Value" else "AverageValue"
    trigger = builders.prometheus_trigger(
        f"hpa_metric_{index}", server, query, number_text(threshold), metric_type=metric_type
    )
    if metric.type == "Object" and metric.described.get("kind") not in (None, "Namespace"):
        note = (note + "; " if note else "") + (
            f"Object metric on {metric.described.get('kind')}/{metric.described.get('name')} translated as the "
            f"sum over the workload's pods (the adapter rule is not visible)"
        )
    return _Trigger(trigger, name, number_text(threshold), role), note


def _service_for(
    workload: Mapping[str, Any],
    ns: str | None,
    index: Mapping[tuple[str, str | None, str], Mapping[str, Any]],
) -> Mapping[str, Any] | None:
    labels = ((engines.pod_template(workload) or {}).get("metadata") or {}).get("labels") or {}
    for (kind, sns, _), obj in index.items():
        if kind != "Service" or sns != ns or str(obj.get("apiVersion", "")).startswith("serving.knative"):
            continue
        selector = (obj.get("spec") or {}).get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            return obj
    return None


Index = Mapping[tuple[str, str | None, str], Mapping[str, Any]]
Note = Callable[[str], None]


def convert_one(
    hpa_obj: Mapping[str, Any],
    index: Index,
    options: Options,
    *,
    where: str = "",
    original: Mapping[str, Any] | None = None,
) -> Conversion:
    """Convert one HPA. Never raises for bad input: the error lands in the returned `Conversion`.

    Each step returns its part; the row keeps what the steps before a failure found (target, engine, notes).
    """
    meta = hpa_obj.get("metadata") or {}
    label = f"{namespace_of(hpa_obj, options.namespace)}/{meta.get('name') or '?'}"
    result = Conversion(hpa=label, name=str(meta.get("name") or ""))
    note = result.notes.append
    try:
        hpa = parse_hpa(hpa_obj, where)
        result.namespace, given_ns = _namespace(hpa, options, note)
        ns = result.namespace
        result.target = f"{hpa.target_kind}/{hpa.target_name}"
        workload = _workload(hpa, ns, given_ns, index, options)
        detection = engines.detect(workload)
        result.engine = f"{detection.engine.key} ({detection.confidence})" if detection.engine else "unknown"
        result.gpu = detection.accelerator_text
        min_replicas = hpa.min_replicas if hpa.min_replicas is not None else 1
        result.replicas = f"{0 if options.scale_to_zero else max(1, min_replicas)}/{hpa.max_replicas}"
        if not detection.accelerators and not options.force:
            result.action, result.why = (
                "skip",
                "no accelerator request (not a GPU workload); --force to migrate anyway",
            )
            return result
        triggers = _triggers(hpa, ns, detection, options, note)
        first = triggers[0]
        result.metric = first.metric + (f" (+{len(triggers) - 1})" if len(triggers) > 1 else "")
        result.threshold = first.threshold
        measured = options.measured_cold_starts.get((hpa.target_kind, ns, hpa.target_name))
        cold_start, source = cold_start_estimate(workload, detection, options.cold_start, measured)
        note(f"cold start {cold_start}s from {source}")
        shape = _shape(hpa, workload, ns, cold_start=cold_start, source=source, options=options, note=note)
        annotations = _annotations(hpa, original, shape.reason, detection)
        if options.to == "knative":
            result.objects, result.metric, result.threshold = _knative(
                hpa, ns, workload, detection, shape=shape, options=options, note=note
            )
        else:
            result.objects = _keda(
                hpa,
                ns,
                given_ns,
                workload,
                detection,
                trigger_dicts=[t.trigger for t in triggers],
                shape=shape,
                annotations=annotations,
                index=index,
                options=options,
                note=note,
            )
    except GpuscaleError as exc:
        result.action, result.why, result.error, result.objects = "error", exc.line(), exc, []
    return result


@dataclass(frozen=True)
class _Shape:
    """How the emitted objects scale: replicas, the HPA's behavior (with its stabilization reason), cold start."""

    min_count: int
    fallback: int
    behavior: dict[str, Any]
    reason: str
    cold_start: int
    target: dict[str, str]


def _namespace(hpa: HPA, options: Options, note: Note) -> tuple[str, str | None]:
    """The namespace to emit into, and the one the input gave (None: neither the HPA nor -n names one)."""
    given_ns = hpa.namespace or options.namespace
    if not given_ns:
        note(f"no namespace in the input: using '{DEFAULT_NAMESPACE}' (pass -n to choose)")
    return given_ns or DEFAULT_NAMESPACE, given_ns


def _workload(hpa: HPA, ns: str, given_ns: str | None, index: Index, options: Options) -> Mapping[str, Any]:
    """The HPA's scale target among the inputs; InputError when it is missing."""
    workload = index.get((hpa.target_kind, given_ns, hpa.target_name))
    if workload is None:
        raise InputError(
            f"cannot migrate HPA {ns}/{hpa.name}",
            f"its target {hpa.target_kind}/{hpa.target_name} "
            + ("was not found in the cluster" if options.from_cluster else "is not in the input"),
            "fix the HPA's scaleTargetRef"
            if options.from_cluster
            else "pass the workload's manifest too (-f hpa.yaml -f deploy.yaml)",
        )
    return workload


def _triggers(
    hpa: HPA, ns: str, detection: engines.Detection, options: Options, note: Note
) -> list[_Trigger]:
    """The triggers, first the one that leads: the engine's queue (or --query), then the HPA's own metrics
    translated, then --kv-cache and --gpu-util. InputError when nothing can be scaled on."""
    pod_re = promql.pod_regex(hpa.target_kind, hpa.target_name)
    triggers, carried_queue = _translated_triggers(hpa, ns, pod_re, detection, options, note=note)
    lead = _lead_trigger(
        hpa,
        ns,
        pod_re,
        detection,
        options,
        have_others=bool(triggers),
        carried_queue=carried_queue,
        note=note,
    )
    if lead is not None:
        triggers.insert(0, lead)
    return triggers + _extra_triggers(ns, pod_re, detection, options, note)


def _translated_triggers(
    hpa: HPA, ns: str, pod_re: str, detection: engines.Detection, options: Options, *, note: Note
) -> tuple[list[_Trigger], float | None]:
    """The HPA's own metrics translated, and the queue threshold the engine's queue trigger takes over."""
    metrics_off = detection.metrics_off_reason
    triggers: list[_Trigger] = []
    carried_queue: float | None = None
    for i, metric in enumerate(hpa.metrics):
        translated, why = translate_metric(metric, i, ns, pod_re, options.prometheus)
        if why:
            note(why)
        if translated is None:
            continue
        if metrics_off and translated.role:
            note(f"{translated.metric} dropped: {metrics_off}")
            continue
        if (
            translated.role == "queue"
            and detection.engine
            and options.query is None
            and translated.trigger.get("metricType") is None
        ):
            carried_queue = float(translated.threshold)
            continue  # the engine's queue trigger below covers it, with the HPA's threshold
        triggers.append(translated)
    return triggers, carried_queue


def _lead_trigger(
    hpa: HPA,
    ns: str,
    pod_re: str,
    detection: engines.Detection,
    options: Options,
    *,
    have_others: bool,
    carried_queue: float | None,
    note: Note,
) -> _Trigger | None:
    """The trigger that leads: --query, else the engine's queue; None when the HPA's own metrics lead.
    InputError when nothing can be scaled on."""
    metrics_off = detection.metrics_off_reason
    concurrency = detection.concurrency or 16
    queue_threshold = (
        options.target_queue
        if options.target_queue is not None
        else (carried_queue if carried_queue is not None else default_target_queue(concurrency))
    )
    why_threshold = (
        "--target-queue"
        if options.target_queue is not None
        else "the HPA's target"
        if carried_queue is not None
        else f"ceil({concurrency} max concurrency / {QUEUE_FRACTION}); "
        f"{concurrency}: {detection.concurrency_why}"
    )
    activation = number_text(options.activation)
    queue = detection.metric("queue")
    if options.query:
        return _Trigger(
            builders.prometheus_trigger(
                "query",
                options.prometheus,
                options.query,
                number_text(queue_threshold),
                activation=activation,
            ),
            "--query",
            number_text(queue_threshold),
            "queue",
        )
    if metrics_off and queue is not None and options.to != "knative":
        if not have_others:
            change = (
                f"remove {detection.metrics_off_flag} from"
                if detection.metrics_off_flag
                else f"add {detection.engine.metrics_needs_flag if detection.engine else ''} to"
            )
            raise InputError(
                f"cannot migrate HPA {ns}/{hpa.name}",
                f"{metrics_off}: a trigger on {queue.name} would read a series that never exists",
                f"{change} the container args, or pass --query 'sum(...)' with a metric that exists",
            )
        note(f"no queue trigger: {metrics_off}; scaling on the HPA's own metrics, translated")
        return None
    if queue is not None:
        scope = [("namespace", "=", ns), ("pod", "=~", pod_re)]
        sel = promql.selector(queue.names, scope + [(k, "=", v) for k, v in queue.labels])
        lead = _Trigger(
            builders.prometheus_trigger(
                "queue",
                options.prometheus,
                f"sum({sel})",
                number_text(queue_threshold),
                activation=activation,
            ),
            queue.name,
            number_text(queue_threshold),
            "queue",
        )
        note(f"queue threshold {number_text(queue_threshold)} from {why_threshold}")
        for text in detection.engine.metrics_notes if detection.engine else ():
            note(text)
        return lead
    if not have_others:
        what = (
            f"{detection.engine.display} exports no queue metric"
            if detection.engine
            else "unknown engine (no vLLM/SGLang/TGI/Triton/TRT-LLM/NIM/Ollama image or command)"
        )
        raise InputError(
            f"cannot migrate HPA {ns}/{hpa.name}", what, "pass --query 'sum(...)' with the metric to scale on"
        )
    if not detection.engine:
        note("unknown engine: scaling on the HPA's own metrics, translated")
    return None


def _extra_triggers(
    ns: str, pod_re: str, detection: engines.Detection, options: Options, note: Note
) -> list[_Trigger]:
    """The --kv-cache and --gpu-util triggers, when asked for and readable."""
    metrics_off = detection.metrics_off_reason
    triggers: list[_Trigger] = []
    if options.kv_cache is not None:
        kv = detection.metric("kv_cache")
        if kv is None:
            note("--kv-cache ignored: the engine exports no KV-cache gauge")
        elif metrics_off:
            note(f"--kv-cache ignored: {metrics_off}")
        else:
            scope = [("namespace", "=", ns), ("pod", "=~", pod_re)]
            sel = promql.selector(kv.names, scope + [(k, "=", v) for k, v in kv.labels])
            triggers.append(
                _Trigger(
                    builders.prometheus_trigger(
                        "kv_cache",
                        options.prometheus,
                        f"sum(max by (namespace, pod) ({sel}))",
                        number_text(options.kv_cache),
                    ),
                    kv.name,
                    number_text(options.kv_cache),
                    "kv_cache",
                )
            )
    if options.gpu_util is not None:
        parts = [
            promql.selector((engines.DCGM_GPU_UTIL,), [(n, "=", ns), (p, "=~", pod_re)])
            for n, p in engines.DCGM_POD_LABELS
        ]
        gpus = max(1, detection.gpus)
        query = f"sum({' or '.join(parts)}) / {gpus}"
        triggers.append(
            _Trigger(
                builders.prometheus_trigger(
                    "gpu_util", options.prometheus, query, number_text(options.gpu_util)
                ),
                engines.DCGM_GPU_UTIL,
                number_text(options.gpu_util),
                "gpu_util",
            )
        )
    return triggers


def _shape(
    hpa: HPA,
    workload: Mapping[str, Any],
    ns: str,
    *,
    cold_start: int,
    source: str,
    options: Options,
    note: Note,
) -> _Shape:
    """Replicas (min, and the fallback KEDA holds when its metrics fail) and the HPA's behavior, kept."""
    behavior, reason = _behavior(hpa, cold_start, source)
    min_count = (
        0 if options.scale_to_zero else max(1, hpa.min_replicas if hpa.min_replicas is not None else 1)
    )
    if hpa.min_replicas == 0 and not options.scale_to_zero:
        note("HPA minReplicas 0 raised to 1 (pass --scale-to-zero with the HTTP add-on)")
    if min_count > hpa.max_replicas:
        raise InputError(
            f"cannot migrate HPA {ns}/{hpa.name}",
            f"minReplicas {min_count} > maxReplicas {hpa.max_replicas}",
            "fix the HPA",
        )
    spec_replicas = (workload.get("spec") or {}).get("replicas")
    current = hpa.current_replicas if hpa.current_replicas is not None else spec_replicas
    fallback = min(
        max(int(current) if current is not None else max(1, min_count), max(1, min_count)), hpa.max_replicas
    )
    target = {"apiVersion": hpa.target_api_version, "kind": hpa.target_kind, "name": hpa.target_name}
    return _Shape(min_count, fallback, behavior, reason, cold_start, target)


def _annotations(
    hpa: HPA, original: Mapping[str, Any] | None, reason: str, detection: engines.Detection
) -> dict[str, str]:
    """The saved HPA (for rollback), why scale-down waits as it does, and the engine found."""
    record = dict(original) if original is not None else original_record(hpa.raw)
    annotations = {
        ORIGINAL_HPA: json.dumps(record, separators=(",", ":"), sort_keys=True),
        STABILIZATION_REASON: reason,
    }
    if detection.engine:
        annotations[ENGINE_ANNOTATION] = f"{detection.engine.key} ({detection.confidence})"
    return annotations


def _knative(
    hpa: HPA,
    ns: str,
    workload: Mapping[str, Any],
    detection: engines.Detection,
    *,
    shape: _Shape,
    options: Options,
    note: Note,
) -> tuple[list[dict[str, Any]], str, str]:
    """The Knative Service (--to knative), with the metric and threshold the report shows."""
    concurrency = detection.concurrency or 16
    cold_start = shape.cold_start
    template = engines.pod_template(workload) or {}
    version = options.knative_version or kfacts.PINNED
    built = builders.knative_service(
        name=hpa.target_name,
        namespace=ns,
        template=template,
        min_scale=shape.min_count,
        max_scale=hpa.max_replicas,
        concurrency=concurrency,
        cold_start=cold_start,
        version=version,
    )
    served = built.service["spec"]["template"]["spec"]["containerConcurrency"]
    note(f"concurrency {concurrency}: {detection.concurrency_why}")
    if options.knative_version is None:
        note(f"Knative {kfacts.version_text(version)} assumed (the pinned install version)")
    if built.flags:
        note(
            "enable in knative-serving/config-features: "
            + ", ".join(built.flags)
            + " (`kubectl gpuscale install knative --set config-features.<flag>=enabled`)"
        )
    for text in (*built.dropped, *built.adjusted):
        note(text)
    for c in built.service["spec"]["template"]["spec"]["containers"]:
        live = c.get("livenessProbe")
        if isinstance(live, Mapping) and not c.get("startupProbe") and probe_budget(live) < cold_start:
            note(
                f"containers[{c.get('name')}].livenessProbe restarts the container after "
                f"{probe_budget(live)}s, before the {cold_start}s cold start: add a startupProbe "
                f"(Knative >= 1.15; doctor GS014)"
            )
    if cold_start * 2 > builders.KNATIVE_MAX_REVISION_TIMEOUT:
        note(
            f"timeoutSeconds capped at {builders.KNATIVE_MAX_REVISION_TIMEOUT}s "
            f"(max-revision-timeout-seconds); raise it in config-defaults for a "
            f"{cold_start}s cold start"
        )
    note(
        f"delete HPA {ns}/{hpa.name} and {hpa.target_kind}/{hpa.target_name} once the "
        f"Knative Service is Ready"
    )
    return [built.service], "concurrency (Knative KPA)", str(served)


def _keda(
    hpa: HPA,
    ns: str,
    given_ns: str | None,
    workload: Mapping[str, Any],
    detection: engines.Detection,
    *,
    trigger_dicts: list[dict[str, Any]],
    shape: _Shape,
    annotations: Mapping[str, str],
    index: Index,
    options: Options,
    note: Note,
) -> list[dict[str, Any]]:
    """The ScaledObject, with the HTTPScaledObject (--scale-to-zero) and the PodDisruptionBudget (--pdb)."""
    concurrency = detection.concurrency or 16
    if options.schedule:
        trigger_dicts.append(builders.cron_trigger(options.schedule))
    http_obj = None
    if options.scale_to_zero:
        found = _service_for(workload, given_ns, index)
        if found is None:
            raise InputError(
                f"cannot migrate HPA {ns}/{hpa.name} with --scale-to-zero",
                f"no Service selects the pods of {hpa.target_kind}/{hpa.target_name}",
                "pass the Service too; the HTTP add-on routes requests through it",
            )
        service = found
        svc_ports = (service.get("spec") or {}).get("ports") or [{}]
        http_obj = builders.http_scaled_object(
            name=hpa.target_name,
            namespace=ns,
            target=shape.target,
            service=service["metadata"]["name"],
            port=int(svc_ports[0].get("port") or detection.port or 80),
            min_replicas=0,
            max_replicas=hpa.max_replicas,
            concurrency=concurrency,
            hosts=options.hosts or (f"{service['metadata']['name']}.{ns}",),
            cold_start=shape.cold_start,
            cooldown=options.cooldown,
        )
        trigger_dicts.append(builders.http_push_trigger(hpa.target_name))
        note(
            f"send traffic through {HTTP_INTERCEPTOR} (Host: "
            f"{http_obj['spec']['hosts'][0]}) so requests wait while a replica starts"
        )
    targets = options.target_versions()
    plan = fallback_plan(targets, shape.min_count)
    if not plan.emit:
        note(plan.why)
    elif not fallback_covers(trigger_dicts, targets.keda):
        note(
            f"no fallback: on KEDA {targets.keda or '(version unknown)'} a fallback acts only on "
            f"AverageValue triggers (Value from 2.18), and these triggers are all Value"
        )
    elif any(t.get("metricType") == "Value" for t in trigger_dicts) and not holds(
        "fallback-value-metric-type", targets.keda
    ):
        note(
            f"KEDA {targets.keda or 'unknown'}: the fallback ignores Value-type triggers "
            f"(Value needs KEDA >= 2.18)"
        )
    objects = [
        builders.scaled_object(
            name=hpa.name,
            namespace=ns,
            target=shape.target,
            min_replicas=shape.min_count,
            max_replicas=hpa.max_replicas,
            triggers=trigger_dicts,
            adopt_hpa=hpa.name,
            behavior=shape.behavior,
            fallback_replicas=shape.fallback,
            annotations=annotations,
            polling=options.polling,
            cooldown=options.cooldown,
            targets=targets,
        )
    ]
    if http_obj:
        objects.append(http_obj)
    if options.pdb:
        labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or (
            (engines.pod_template(workload) or {}).get("metadata") or {}
        ).get("labels")
        if labels:
            objects.append(
                builders.pod_disruption_budget(name=hpa.target_name, namespace=ns, match_labels=labels)
            )
        else:
            note("--pdb skipped: the workload has no selector labels")
    return objects


def convert_all(
    objects: Sequence[Mapping[str, Any]],
    options: Options,
    *,
    wheres: Sequence[str] = (),
    only: Sequence[str] = (),
    originals: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[Conversion]:
    """Convert every HPA among `objects` (or only those named), pairing each with its workload."""
    index = index_workloads(objects, options.namespace)
    out = []
    for i, obj in enumerate(objects):
        if obj.get("kind") != HPA_KIND:
            continue
        if only and (obj.get("metadata") or {}).get("name") not in only:
            continue
        meta = obj.get("metadata") or {}
        key = (namespace_of(obj, options.namespace), str(meta.get("name")))
        saved = (originals or {}).get(key)
        out.append(
            convert_one(obj, index, options, where=wheres[i] if i < len(wheres) else "", original=saved)
        )
    return out
