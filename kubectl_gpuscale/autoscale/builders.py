"""Builders for the objects migrate-hpa emits: KEDA ScaledObject and triggers, HTTPScaledObject,
Knative Service, PodDisruptionBudget. Plain dicts in, plain dicts out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.facts import Targets, pinned_targets
from kubectl_gpuscale.facts.keda import fallback_covers, fallback_plan

KEDA_API = "keda.sh/v1alpha1"
HTTP_API = "http.keda.sh/v1alpha1"
KNATIVE_API = "serving.knative.dev/v1"

# KEDA facts (DESIGN §4, reference/keda_knative.md §1-3)
KEDA_DEFAULT_POLLING = 30
KEDA_DEFAULT_COOLDOWN = 300
TRANSFER_OWNERSHIP = "scaledobject.keda.sh/transfer-hpa-ownership"
PAUSED = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
HTTP_SKIP_SO = "httpscaledobject.keda.sh/skip-scaledobject-creation"
HTTP_EXTERNAL_SCALER = "keda-add-ons-http-external-scaler.keda:9090"
HTTP_INTERCEPTOR = "keda-add-ons-http-interceptor-proxy.keda:8080"

# Our defaults for GPU workloads (documented in docs/migrate-hpa.md and --help)
GPU_POLLING = 15          # the HPA itself re-reads metrics every 15 s; polling faster buys nothing
GPU_COOLDOWN = 600        # scale-to-zero only: keep a warm replica 10 min after the last request
FALLBACK_FAILURES = 3     # 3 failed polls (45 s) before holding the fallback replica count

# Our annotations and labels
PREFIX = "gpuscale.kubectl.dev/"
ORIGINAL_HPA = PREFIX + "original-hpa"
ENGINE_ANNOTATION = PREFIX + "engine"
STABILIZATION_REASON = PREFIX + "scale-down-stabilization"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-gpuscale"}

# Knative facts (upstream defaults: config-defaults, config-deployment)
KNATIVE_REVISION_TIMEOUT = 300            # config-defaults revision-timeout-seconds
KNATIVE_MAX_REVISION_TIMEOUT = 600        # config-defaults max-revision-timeout-seconds
KNATIVE_PROGRESS_DEADLINE = 600           # config-deployment progress-deadline
KNATIVE_POD_SPEC_FEATURES = {
    "nodeSelector": "kubernetes.podspec-nodeselector", "tolerations": "kubernetes.podspec-tolerations",
    "affinity": "kubernetes.podspec-affinity", "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "initContainers": "kubernetes.podspec-init-containers",
}


@dataclass(frozen=True)
class Schedule:
    """A business-hours floor: KEDA cron trigger fields."""

    timezone: str
    start: str
    end: str
    replicas: int


def prometheus_trigger(name: str, server: str, query: str, threshold: str, *, activation: str | None = "0",
                       metric_type: str | None = None) -> dict[str, Any]:
    """A prometheus trigger that errors (no silent 0) on an empty result; no `metricName`."""
    metadata = {"serverAddress": server, "query": query, "threshold": threshold}
    if activation is not None:
        metadata["activationThreshold"] = activation
    metadata["ignoreNullValues"] = "false"
    trigger: dict[str, Any] = {"type": "prometheus", "name": name, "metadata": metadata}
    if metric_type and metric_type != "AverageValue":
        trigger["metricType"] = metric_type
    return trigger


def cron_trigger(schedule: Schedule) -> dict[str, Any]:
    """A KEDA cron trigger holding `replicas` between start and end."""
    return {"type": "cron", "name": "business_hours",
            "metadata": {"timezone": schedule.timezone, "start": schedule.start, "end": schedule.end,
                         "desiredReplicas": str(schedule.replicas)}}


def http_push_trigger(http_name: str) -> dict[str, Any]:
    """The external-push trigger that lets the HTTP add-on wake a workload scaled to zero."""
    return {"type": "external-push", "name": "http_requests",
            "metadata": {"httpScaledObject": http_name, "scalerAddress": HTTP_EXTERNAL_SCALER}}


def scaled_object(*, name: str, namespace: str | None, target: Mapping[str, str], min_replicas: int,
                  max_replicas: int, triggers: Sequence[Mapping[str, Any]], adopt_hpa: str | None,
                  behavior: Mapping[str, Any] | None, fallback_replicas: int | None,
                  annotations: Mapping[str, str], polling: int = GPU_POLLING,
                  cooldown: int = GPU_COOLDOWN, targets: Targets | None = None) -> dict[str, Any]:
    """A ScaledObject; with `adopt_hpa` it takes over that HPA (annotation + advanced.horizontalPodAutoscalerConfig.name).

    The fallback follows `kubectl_gpuscale.facts.keda.fallback_plan` for the target KEDA
    (``targets``, default the pinned install versions).
    """
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_BY)
    notes = dict(annotations)
    if adopt_hpa:
        notes[TRANSFER_OWNERSHIP] = "true"
    meta["annotations"] = notes
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": target["apiVersion"], "kind": target["kind"], "name": target["name"]},
        "pollingInterval": polling, "cooldownPeriod": cooldown,
        "minReplicaCount": min_replicas, "maxReplicaCount": max_replicas,
    }
    emitted = [dict(t) for t in triggers]
    targets = targets or pinned_targets()
    if fallback_replicas is not None and any(t.get("type") == "prometheus" for t in triggers) \
            and fallback_covers(emitted, targets.keda):
        fallback = fallback_spec(fallback_replicas, min_replicas, targets)
        if fallback is not None:
            spec["fallback"] = fallback
            emitted = [with_metric_type(t) for t in emitted]
    hpa_config: dict[str, Any] = {}
    if adopt_hpa:
        hpa_config["name"] = adopt_hpa
    if behavior:
        hpa_config["behavior"] = dict(behavior)
    if hpa_config:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": hpa_config}
    spec["triggers"] = emitted
    return {"apiVersion": KEDA_API, "kind": "ScaledObject", "metadata": meta, "spec": spec}


def fallback_spec(replicas: int, min_replicas: int, targets: Targets) -> dict[str, Any] | None:
    """spec.fallback for the target KEDA, or None where a fallback would flap a workload at zero."""
    plan = fallback_plan(targets, min_replicas)
    if not plan.emit:
        return None
    fallback: dict[str, Any] = {"failureThreshold": FALLBACK_FAILURES, "replicas": replicas}
    if plan.behavior:
        fallback["behavior"] = plan.behavior
    return fallback


def with_metric_type(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """The trigger with its metricType written out (AverageValue when implicit); cpu/memory untouched.

    KEDA 2.17.0's webhook rejects a fallback whose triggers leave metricType implicit
    (kedacore/keda#6696); an explicit AverageValue means the same in every version.
    """
    out = dict(trigger)
    if out.get("type") not in ("cpu", "memory") and not out.get("metricType"):
        out["metricType"] = "AverageValue"
    return out


def http_scaled_object(*, name: str, namespace: str | None, target: Mapping[str, str], service: str,
                       port: int, min_replicas: int, max_replicas: int, concurrency: int, hosts: Sequence[str],
                       cold_start: int, cooldown: int = GPU_COOLDOWN) -> dict[str, Any]:
    """An HTTPScaledObject routing and buffering requests while the workload wakes from zero.

    It creates no ScaledObject of its own (our ScaledObject carries an external-push trigger), so
    the existing HPA is adopted once, by one owner. Timeouts exceed the cold start.
    """
    meta: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY), "annotations": {HTTP_SKIP_SO: "true"}}
    if namespace:
        meta["namespace"] = namespace
    wait = max(cold_start * 2, 120)
    return {"apiVersion": HTTP_API, "kind": "HTTPScaledObject", "metadata": meta, "spec": {
        "hosts": list(hosts),
        "scaleTargetRef": {"apiVersion": target["apiVersion"], "kind": target["kind"], "name": target["name"],
                           "service": service, "port": port},
        "replicas": {"min": min_replicas, "max": max_replicas},
        "scalingMetric": {"concurrency": {"targetValue": concurrency}},
        "scaledownPeriod": cooldown,
        "timeouts": {"conditionWait": f"{wait}s", "responseHeader": f"{max(wait, 300)}s"},
    }}


def knative_service(*, name: str, namespace: str | None, template: Mapping[str, Any], min_scale: int,
                    max_scale: int, concurrency: int, cold_start: int, retention: str = "10m"
                    ) -> tuple[dict[str, Any], list[str]]:
    """A Knative Service for the workload's pod template, and the config-features flags it needs."""
    pod = dict(template.get("spec") or {})
    features = sorted(flag for field_name, flag in KNATIVE_POD_SPEC_FEATURES.items() if pod.get(field_name))
    volumes = pod.get("volumes") or []
    if any(isinstance(v, Mapping) and "persistentVolumeClaim" in v for v in volumes):
        features.append("kubernetes.podspec-persistent-volume-claim")
    if any(isinstance(v, Mapping) and "hostPath" in v for v in volumes):
        features.append("kubernetes.podspec-volumes-hostpath")
    containers = []
    for container in pod.get("containers") or []:
        c = {k: v for k, v in container.items() if k not in ("startupProbe",)}
        ports = [p for p in c.get("ports") or [] if isinstance(p, Mapping)]
        if ports:
            c["ports"] = [{k: v for k, v in ports[0].items() if k in ("containerPort", "protocol")}]
        containers.append(c)
    if len(containers) > 1:
        # Knative serves one port: keep the first declared one on the first container only.
        for c in containers[1:]:
            c.pop("ports", None)
        features.append("multi-container")
    pod["containers"] = containers
    timeout = min(max(cold_start * 2, 300), KNATIVE_MAX_REVISION_TIMEOUT)
    pod["timeoutSeconds"] = timeout
    pod["containerConcurrency"] = concurrency
    for key in ("replicas", "restartPolicy", "terminationGracePeriodSeconds"):
        pod.pop(key, None)
    annotations = {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": str(concurrency),
        "autoscaling.knative.dev/min-scale": str(min_scale),
        "autoscaling.knative.dev/max-scale": str(max_scale),
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": retention,
        "autoscaling.knative.dev/scale-down-delay": f"{min(cold_start, 3600)}s",
        "serving.knative.dev/progress-deadline": f"{max(cold_start * 2, 600)}s",
    }
    tmeta: dict[str, Any] = {"annotations": annotations}
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        tmeta["labels"] = dict(labels)
    meta: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace:
        meta["namespace"] = namespace
    service = {"apiVersion": KNATIVE_API, "kind": "Service", "metadata": meta,
               "spec": {"template": {"metadata": tmeta, "spec": pod}}}
    return service, features


def pod_disruption_budget(*, name: str, namespace: str | None, match_labels: Mapping[str, str]) -> dict[str, Any]:
    """A PDB keeping one warm replica through voluntary disruptions (node drains, upgrades)."""
    meta: dict[str, Any] = {"name": f"{name}-warm", "labels": dict(MANAGED_BY)}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(match_labels)}}}
