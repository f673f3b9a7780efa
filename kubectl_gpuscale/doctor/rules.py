"""The doctor's rules: each a stable ID, a slug, a severity, the evidence and the fix (and, where it
is safe, a patch). Pure over plain dicts; the live Prometheus checks use an injected gateway
(anything with the `PromSource` methods), never an import of prometheus_api_client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.autoscale.convert import UNKNOWN_COLD_START
from kubectl_gpuscale.autoscale.hpa import HPA_DEFAULT_SCALE_DOWN_WINDOW, HPA_KIND, parse_hpa, quantity
from kubectl_gpuscale.autoscale.probes import PROBE_DEFAULT_PERIOD, probe_budget
from kubectl_gpuscale.autoscale.querycheck import (
    NameForms,
    PromSource,
    check_query,
    metric_names,
    renamed,
)
from kubectl_gpuscale.doctor.model import Finding, Patch, Rule, sort_key
from kubectl_gpuscale.doctor.snapshot import (
    Snapshot,
    Workload,
    build,
    duration_seconds,
    hso_creates_scaled_object,
    http_push_covered,
    meta,
    name_of,
    ns_of,
    spec_of,
    to_int,
)
from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.facts import Targets
from kubectl_gpuscale.facts.keda import effective_interceptor_env, fallback_covers, interceptor_timeout_keys
from kubectl_gpuscale.install.defaults import gpu_settings
from kubectl_gpuscale.names import FIELD_MANAGER
from kubectl_gpuscale.prom.promql import EXPORTED_POD_LABELS, POD_LABELS

# Managers that write spec.replicas from Git or a chart: each sync resets what the autoscaler set.
GITOPS_MANAGERS = (
    "argocd-controller",
    "argocd-application-controller",
    "argocd",
    "kustomize-controller",
    "helm-controller",
    "helm",
    "flux",
    "fleet-agent",
    "rancher",
)
# Managers that legitimately write replicas (through /scale) for an autoscaler.
AUTOSCALER_MANAGERS = (
    "kube-controller-manager",
    "keda",
    "keda-operator",
    FIELD_MANAGER,
    "knative",
    "autoscaler",
    "kubectl-scale",
)
# Drain: KServe's LLM pattern is a 15 s preStop and a 60 s grace period (kserve PR 5485/5496);
# vLLM's --shutdown-timeout (vllm PR 43208) waits for in-flight requests.
DRAIN_FLOOR_SECONDS = 60
PRESTOP_SLEEP_SECONDS = 15
SHUTDOWN_FLAGS = ("--shutdown-timeout",)
K8S_DEFAULT_GRACE = 30
K8S_DEFAULT_PROGRESS_DEADLINE = 600  # Deployment spec.progressDeadlineSeconds
AGGREGATIONS = ("sum", "avg", "max", "min", "count", "scalar", "group")


def _ks() -> dict[str, str]:
    return {s.key: s.upstream for s in gpu_settings("knative")}


RULES: tuple[Rule, ...] = (
    Rule(
        "GS001",
        "cpu-hpa-on-gpu",
        "error",
        "CPU or memory autoscaling on a GPU inference workload",
        "An LLM engine serving a full batch runs at a few % CPU while its GPU is saturated: a CPU or memory "
        "target never fires (or fires on tokenisation noise), so the workload does not scale with load.",
        "Scale on the engine's queue depth (and KV cache): `kubectl gpuscale migrate-hpa NAME` converts the "
        "HPA into a KEDA ScaledObject that adopts it with no gap.",
    ),
    Rule(
        "GS002",
        "competing-autoscalers",
        "error",
        "Two autoscalers set the replicas of one workload",
        "Each controller computes its own desired count and writes it; the replicas flap between their answers "
        "(an HPA plus a ScaledObject, two HPAs, or an HTTPScaledObject that creates its own ScaledObject).",
        "Keep one: let the ScaledObject adopt the HPA (annotation scaledobject.keda.sh/transfer-hpa-ownership "
        "plus advanced.horizontalPodAutoscalerConfig.name), delete the extra HPA, or annotate the "
        'HTTPScaledObject httpscaledobject.keda.sh/skip-scaledobject-creation: "true".',
    ),
    Rule(
        "GS003",
        "replicas-owned-by-gitops",
        "warning",
        "A GitOps tool or operator owns spec.replicas",
        "When Argo CD, Flux or Helm applies a manifest that sets spec.replicas, every sync resets the count the "
        "autoscaler chose: a GPU replica is killed and cold-started again.",
        "Drop spec.replicas from the manifest (or chart values) of autoscaled workloads; in Argo CD add "
        "ignoreDifferences on /spec/replicas (with RespectIgnoreDifferences=true).",
    ),
    Rule(
        "GS004",
        "query-no-series",
        "error",
        "A ScaledObject query returns no series",
        "With ignoreNullValues at its default (true) an empty result counts as 0: the workload scales down "
        "to its minimum at peak load. The usual causes: a renamed metric (vLLM gpu_cache_usage_perc -> "
        "kv_cache_usage_perc), the colon name stored with underscores, a wrong label.",
        'Use the name Prometheus holds (`{__name__=~"vllm[:_]num_requests_waiting"}` matches both forms), '
        'and set ignoreNullValues "false" with a fallback.',
    ),
    Rule(
        "GS005",
        "query-not-aggregated",
        "error",
        "A ScaledObject query returns several series",
        "KEDA's Prometheus scaler needs exactly one element: with several series it errors, or reads only "
        "the first one (one pod's queue instead of the workload's).",
        "Wrap the query in sum(...) (or max/avg) without `by`, restricted to the workload's pods.",
    ),
    Rule(
        "GS006",
        "renamed-metric",
        "warning",
        "A query uses a metric name the engine renamed",
        "vLLM renamed vllm:gpu_cache_usage_perc to vllm:kv_cache_usage_perc in 0.9.2 (the old name is hidden in "
        "0.11 and removed in 0.12): a query must use the name its engine version exports (read from the "
        "workload's image tag), else the trigger silently reads nothing.",
        "Query the name the engine version exports, or both when the tag names no version: "
        '`{__name__=~"vllm[:_](kv|gpu)_cache_usage_perc"}`.',
    ),
    Rule(
        "GS007",
        "metric-name-form",
        "info",
        "Which form of an engine metric Prometheus holds",
        "prometheus_client's OpenMetrics output writes colon names with underscores, so a server may hold "
        "vllm:num_requests_waiting or vllm_num_requests_waiting; a query must use the form it holds.",
        "Nothing to do when the query matches the form found; otherwise match both forms.",
    ),
    Rule(
        "GS008",
        "ignore-null-values",
        "warning",
        "ignoreNullValues left at true without a fallback",
        "KEDA turns an empty query result into 0 when ignoreNullValues is true (the default): a missing metric "
        "scales the workload down instead of holding it.",
        'Set ignoreNullValues: "false" on each prometheus trigger and a spec.fallback (failureThreshold 3, '
        "replicas = the usual floor), so a failing query holds replicas.",
    ),
    Rule(
        "GS009",
        "scale-down-before-cold-start",
        "warning",
        "Scale-down stabilization shorter than the cold start",
        "Removing a replica that takes minutes to come back, because load dipped for less than that, pays "
        "the cold start again on the next burst (scale-down flapping).",
        "Set behavior.scaleDown.stabilizationWindowSeconds to at least the cold start.",
    ),
    Rule(
        "GS010",
        "zero-without-buffer",
        "error",
        "Scale to zero without a request-buffering layer",
        "At zero replicas a plain Service has no endpoint: requests fail until a pod is ready minutes later, "
        "and a queue metric read from the pods does not exist at zero, so nothing wakes the workload.",
        "Keep minReplicaCount 1, or put the KEDA HTTP add-on (HTTPScaledObject) or Knative in front.",
    ),
    Rule(
        "GS011",
        "knative-timeout-below-cold-start",
        "error",
        "Knative deadline or timeout below the cold start",
        "Knative marks a revision Failed when it is not Ready within progress-deadline (600s by default), and "
        "a request that woke it waits behind the activator up to the revision timeout (300s by default).",
        "Raise serving.knative.dev/progress-deadline to twice the cold start and timeoutSeconds above it "
        "(max-revision-timeout-seconds in config-defaults caps it; `kubectl gpuscale install knative` "
        "sets both).",
    ),
    Rule(
        "GS012",
        "http-addon-timeout-below-cold-start",
        "error",
        "KEDA HTTP add-on timeout below the cold start",
        "The interceptor holds a request while the workload wakes from zero only for its condition-wait / "
        "readiness timeout (20s before 0.14): a GPU cold start is minutes, so the request gets a 502/504.",
        "Set spec.timeouts.conditionWait above the cold start and responseHeader above the generation time "
        "(or the interceptor's wait: KEDA_CONDITION_WAIT_TIMEOUT before 0.14, KEDA_HTTP_READINESS_TIMEOUT from "
        "0.14 unless the deprecated one is still set; `kubectl gpuscale install keda-http` sets the right one).",
    ),
    Rule(
        "GS013",
        "startup-probe-too-short",
        "error",
        "startupProbe gives up before the model is loaded",
        "The kubelet restarts a container whose startupProbe fails failureThreshold times: a budget below the "
        "cold start is a restart loop that never serves.",
        "Make initialDelaySeconds + periodSeconds x failureThreshold exceed the cold start.",
    ),
    Rule(
        "GS014",
        "liveness-kills-loading",
        "error",
        "A liveness probe kills pods still loading",
        "Without a startupProbe the livenessProbe runs from the start: while weights load and CUDA graphs are "
        "captured /health fails, and the kubelet restarts the container before it ever serves.",
        "Add a startupProbe (same endpoint) whose budget exceeds the cold start; liveness starts after it.",
    ),
    Rule(
        "GS015",
        "readiness-budget-below-cold-start",
        "warning",
        "Readiness probe budget below the cold start",
        "With no startupProbe, a readiness probe whose budget ends before the model is loaded reports the pod "
        "Unhealthy every period (warning events, alerts) and is the only signal of a stuck start.",
        "Add a startupProbe covering the cold start, or raise the readiness initialDelaySeconds/failureThreshold.",
    ),
    Rule(
        "GS016",
        "rollout-deadline-below-cold-start",
        "warning",
        "Deployment progressDeadlineSeconds below the cold start",
        "A rollout whose new pods are not available within progressDeadlineSeconds (600 by default) is "
        "reported failed (ProgressDeadlineExceeded) and GitOps tools mark the app degraded.",
        "Set spec.progressDeadlineSeconds to at least twice the cold start.",
    ),
    Rule(
        "GS017",
        "grace-shorter-than-drain",
        "warning",
        "terminationGracePeriodSeconds shorter than the drain",
        "On scale-down the pod gets SIGTERM and is killed after the grace period (30s by default): in-flight "
        "generations longer than that are cut off.",
        "terminationGracePeriodSeconds >= preStop sleep + the engine's shutdown timeout (vLLM "
        "--shutdown-timeout), at least 60s.",
    ),
    Rule(
        "GS018",
        "no-prestop",
        "warning",
        "No preStop hook on an autoscaled inference container",
        "Endpoints are removed asynchronously: without a short preStop sleep the engine stops accepting while "
        "the load balancer still sends it requests, which fail.",
        "Add lifecycle.preStop (sleep 15 s: `sleep: {seconds: 15}` or exec `sleep 15`) to the engine container.",
    ),
    Rule(
        "GS019",
        "rwo-pvc-multi-replica",
        "error",
        "ReadWriteOnce volume on a workload that scales past 1",
        "A ReadWriteOnce claim attaches to one node: replicas scheduled elsewhere stay ContainerCreating "
        "(Multi-Attach error), so scale-up adds no capacity.",
        "Use a ReadOnlyMany/ReadWriteMany volume for model weights, a StatefulSet volumeClaimTemplate, or a "
        "node-local cache.",
    ),
    Rule(
        "GS020",
        "image-not-prepulled",
        "warning",
        "Inference image not pre-pulled on GPU nodes",
        "A new GPU node pulls a 10-20 GB image before the engine starts: minutes added to every scale-up "
        "onto a fresh node.",
        "Pre-pull the image with a DaemonSet on GPU nodes: `kubectl gpuscale install prepull`.",
    ),
    Rule(
        "GS021",
        "gpu-capacity",
        "warning",
        "Max replicas need more GPUs than the nodes have",
        "maxReplicas x GPUs per pod above the allocatable GPUs leaves scaled-up pods Pending; the autoscaler "
        "believes it has capacity it cannot get.",
        "Lower maxReplicas to what fits, or make sure a node autoscaler can add GPU nodes.",
    ),
    Rule(
        "GS022",
        "no-pdb",
        "warning",
        "No PodDisruptionBudget protecting the warm replica",
        "A node drain or upgrade may evict every replica at once; the next request waits for a full cold start.",
        "Add a PodDisruptionBudget with minAvailable: 1 selecting the workload's pods.",
    ),
    Rule(
        "GS023",
        "dcgm-pod-label",
        "error",
        "DCGM query uses the wrong pod label",
        "Scraped through a ServiceMonitor with honorLabels false, DCGM's pod/namespace labels become "
        "exported_pod/exported_namespace (pod names the exporter): a query on `pod` matches nothing, or "
        "the reverse.",
        "Use the label Prometheus holds, or set honorLabels: true on the DCGM ServiceMonitor.",
    ),
    Rule(
        "GS024",
        "not-checked-live",
        "info",
        "A query could not be checked against Prometheus",
        "The live checks (GS004, GS005, GS023) need Prometheus to answer.",
        "Pass --prometheus URL (a port-forward works) and check the error shown.",
    ),
    Rule(
        "GS025",
        "engine-metrics-off",
        "error",
        "A trigger scales on engine metrics the engine does not export",
        "vLLM started with --disable-log-stats creates no stat logger, so /metrics carries no vllm:* series "
        "(vllm/v1/engine/async_llm.py); SGLang exports its metrics only with --enable-metrics. A queue or "
        "KV-cache trigger on such an engine reads a series that never exists: with ignoreNullValues at its "
        "default the workload sits at its minimum whatever the load.",
        "Remove --disable-log-stats (or add --enable-metrics for SGLang) in the engine's container args; the "
        "stats cost little. Otherwise scale on a metric that exists (a gateway's queue, `migrate-hpa --query`).",
    ),
)
BY_ID: dict[str, Rule] = {r.id: r for r in RULES}


def _finding(
    rule_id: str,
    obj: Mapping[str, Any],
    field: str,
    value: Any,
    message: str,
    *,
    severity: str | None = None,
    patch: Patch | None = None,
    fix: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Finding:
    rule = BY_ID[rule_id]
    kind = str(obj.get("kind") or "")
    return Finding(
        rule=rule.id,
        slug=rule.slug,
        severity=severity or rule.severity,
        title=rule.title,
        kind=kind,
        namespace=ns_of(obj),
        name=name_of(obj),
        field=field,
        value="" if value is None else str(value),
        message=message,
        fix=fix or rule.fix,
        patch=patch,
        extra=dict(extra or {}),
    )


def _merge(obj: Mapping[str, Any], body: Mapping[str, Any]) -> Patch:
    return Patch(
        "merge", str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""), name_of(obj), ns_of(obj), body
    )


def _what(w: Workload) -> str:
    engine = w.detection.engine.display if w.detection.engine else "GPU workload"
    return engine + (f", {w.detection.accelerator_text}" if w.detection.accelerators else "")


def _scalers(w: Workload) -> str:
    return ", ".join(f"{s.kind}/{s.name}" for s in w.scalers) or "an autoscaler"


def _max_text(w: Workload) -> str:
    return str(w.max_replicas) if any(s.max_replicas is not None for s in w.scalers) else "unbounded"


def _gpu_scaled(snap: Snapshot) -> Iterator[Workload]:
    for w in snap.workloads:
        if w.gpu_inference and w.autoscaled:
            yield w


# ---- scaling ---------------------------------------------------------------------------------


def cpu_hpa(snap: Snapshot) -> Iterator[Finding]:
    """GS001: an HPA (or a ScaledObject cpu/memory trigger) on a GPU inference workload."""
    for w in snap.workloads:
        if not w.gpu_inference:
            continue
        for s in w.scalers:
            if s.kind == HPA_KIND:
                try:
                    hpa = parse_hpa(s.obj)
                except GpuscaleError:
                    continue
                for i, m in enumerate(hpa.metrics):
                    if m.type in ("Resource", "ContainerResource") and m.name in ("cpu", "memory"):
                        yield _finding(
                            "GS001",
                            s.obj,
                            f"spec.metrics[{i}]",
                            m.describe(),
                            f"{w.ref()} ({_what(w)}) scales on {m.describe()}",
                            fix=BY_ID["GS001"].fix.replace("NAME", f"{hpa.name} -n {w.namespace}"),
                        )
            elif s.kind == "ScaledObject":
                for i, t in enumerate(spec_of(s.obj).get("triggers") or []):
                    if isinstance(t, Mapping) and t.get("type") in ("cpu", "memory"):
                        yield _finding(
                            "GS001",
                            s.obj,
                            f"spec.triggers[{i}].type",
                            t.get("type"),
                            f"{w.ref()} scales on a {t.get('type')} trigger",
                        )


def competing(snap: Snapshot) -> Iterator[Finding]:
    """GS002: more than one controller sets the workload's replicas."""
    for w in snap.workloads:
        controllers: list[str] = []
        for s in w.scalers:
            if s.kind in (HPA_KIND, "ScaledObject"):
                controllers.append(f"{s.kind}/{s.name}")
            elif s.kind == "HTTPScaledObject" and hso_creates_scaled_object(s.obj):
                controllers.append(f"the ScaledObject HTTPScaledObject/{s.name} creates")
            elif s.kind == "Knative":
                controllers.append("the Knative autoscaler")
        if len(controllers) < 2:
            continue
        described = ", ".join(controllers)
        yield _finding(
            "GS002",
            w.obj,
            "spec.replicas",
            described,
            f"{len(controllers)} controllers set the replicas: {described}",
            extra={"controllers": controllers},
        )


def _replicas_managers(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for entry in meta(obj).get("managedFields") or []:
        if not isinstance(entry, Mapping):
            continue
        fields = entry.get("fieldsV1") or {}
        if (
            isinstance(fields, Mapping)
            and "f:replicas" in (fields.get("f:spec") or {})
            and not entry.get("subresource")
        ):
            out.append((str(entry.get("manager") or ""), str(entry.get("operation") or "")))
    return out


def gitops_replicas(snap: Snapshot) -> Iterator[Finding]:
    """GS003: a GitOps tool / operator (managedFields) or the manifest itself (files) sets spec.replicas."""
    for w in snap.workloads:
        if not w.autoscaled or w.knative:
            continue
        if snap.from_files:
            if "replicas" in spec_of(w.obj):
                yield _finding(
                    "GS003",
                    w.obj,
                    "spec.replicas",
                    spec_of(w.obj).get("replicas"),
                    f"the manifest sets spec.replicas while {_scalers(w)} scales it: each apply/sync "
                    "resets what the autoscaler chose",
                )
            continue
        for manager, operation in _replicas_managers(w.obj):
            low = manager.lower()
            gitops = any(low == m or low.startswith(m) for m in GITOPS_MANAGERS)
            legit = any(low.startswith(m) for m in AUTOSCALER_MANAGERS)
            if gitops or (operation == "Apply" and not legit):
                who = "a GitOps tool" if gitops else "an operator"
                yield _finding(
                    "GS003",
                    w.obj,
                    "metadata.managedFields[spec.replicas]",
                    manager,
                    f"spec.replicas is owned by {manager} ({who}, {operation}) while {_scalers(w)} "
                    "scales it: each sync resets the count the autoscaler set",
                    extra={"manager": manager, "operation": operation},
                )


def _windows(snap: Snapshot) -> Iterator[tuple[Workload, Mapping[str, Any], str, int, dict[str, Any]]]:
    """(workload, scaler object, field path, effective window, merge-patch skeleton) per HPA/ScaledObject."""
    for w in snap.workloads:
        if not w.gpu_inference:
            continue
        for s in w.scalers:
            if s.kind == HPA_KIND:
                down = (spec_of(s.obj).get("behavior") or {}).get("scaleDown") or {}
                yield (
                    w,
                    s.obj,
                    "spec.behavior.scaleDown.stabilizationWindowSeconds",
                    to_int(down.get("stabilizationWindowSeconds"), HPA_DEFAULT_SCALE_DOWN_WINDOW) or 0,
                    {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": w.cold_start}}}},
                )
            elif s.kind == "ScaledObject":
                config = (spec_of(s.obj).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
                down = (config.get("behavior") or {}).get("scaleDown") or {}
                yield (
                    w,
                    s.obj,
                    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown."
                    "stabilizationWindowSeconds",
                    to_int(down.get("stabilizationWindowSeconds"), HPA_DEFAULT_SCALE_DOWN_WINDOW) or 0,
                    {
                        "spec": {
                            "advanced": {
                                "horizontalPodAutoscalerConfig": {
                                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": w.cold_start}}
                                }
                            }
                        }
                    },
                )


def scale_down_window(snap: Snapshot) -> Iterator[Finding]:
    """GS009: scale-down stabilization window < cold start."""
    for w, obj, field, window, body in _windows(snap):
        if window < w.cold_start:
            yield _finding(
                "GS009",
                obj,
                field,
                f"{window}s",
                f"{w.ref()} may lose a replica after {window}s of lower load; one takes "
                f"{w.cold_start}s to come back ({w.cold_source})",
                patch=_merge(obj, body),
                extra={"window": window, "cold_start": w.cold_start, "cold_start_source": w.cold_source},
            )


def zero_without_buffer(snap: Snapshot) -> Iterator[Finding]:
    """GS010: min replicas 0 with no HTTP add-on and no Knative in front."""
    for w in snap.workloads:
        if w.knative:
            continue
        buffered = any(s.kind == "HTTPScaledObject" for s in w.scalers)
        for s in w.scalers:
            if s.kind not in ("ScaledObject", HPA_KIND) or s.min_replicas != 0 or buffered:
                continue
            if s.kind == "ScaledObject" and http_push_covered(s.obj):
                continue
            field = "spec.minReplicaCount" if s.kind == "ScaledObject" else "spec.minReplicas"
            explicit = field.split(".")[-1] in spec_of(s.obj)
            body = {"spec": {field.split(".")[-1]: 1}}
            yield _finding(
                "GS010",
                s.obj,
                field,
                "0" if explicit else "0 (KEDA default)",
                f"{w.ref()} can scale to zero and nothing buffers requests while a replica starts "
                f"({w.cold_start}s)",
                patch=_merge(s.obj, body),
            )


# ---- Prometheus triggers ---------------------------------------------------------------------


def _prom_triggers(snap: Snapshot) -> Iterator[tuple[Mapping[str, Any], int, Mapping[str, Any]]]:
    for so in snap.scaled_objects:
        for i, t in enumerate(spec_of(so).get("triggers") or []):
            if (
                isinstance(t, Mapping)
                and t.get("type") == "prometheus"
                and isinstance(t.get("metadata"), Mapping)
            ):
                yield so, i, t["metadata"]


def aggregated(query: str) -> bool:
    """Whether the outermost expression is an aggregation to one element (sum(...) without by/without)."""
    text = " ".join(query.split())
    match = re.match(r"^\(*\s*(\w+)\s*(?:(by|without)\s*\([^)]*\)\s*)?\(", text)
    if not match or match.group(1).lower() not in AGGREGATIONS:
        return bool(re.fullmatch(r"[\d.eE+-]+", text))
    if match.group(2):
        return False
    depth, i = 0, match.end() - 1
    while i < len(text):
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth == 0:
            break
        i += 1
    rest = text[i + 1 :].strip()
    if re.match(r"^(by|without)\s*\(", rest):
        return False
    if not rest:
        return True
    return (
        aggregated(re.sub(r"^[-+*/%^]|^(==|!=|>=|<=|>|<)(\s*bool)?", "", rest).strip())
        if re.match(r"^([-+*/%^]|==|!=|>=|<=|>|<)", rest)
        else False
    )


def _threshold(meta_: Mapping[str, Any]) -> float | None:
    try:
        return quantity(meta_.get("threshold"))
    except (ValueError, TypeError):
        return None


def _version_mismatch(name: str, w: Workload | None) -> tuple[str, str] | None:
    """(name the workload's engine version exports, message) when `name` is an engine metric spelling that
    the version in the workload's image tag does not export; None when it does or the version is unknown."""
    found = engines.engine_for_metric(name)
    if w is None or found is None or found[0] is not w.detection.engine or not w.detection.version:
        return None
    engine, role = found
    metric = w.detection.metric(role)
    if metric is None or name.replace(":", "_") in {n.replace(":", "_") for n in metric.names}:
        return None
    return metric.names[0], (
        f"{engine.display} {w.detection.version} (the image tag of {w.ref()}) exports "
        f"{' / '.join(metric.names)}, not {name}: this query finds nothing"
    )


def static_queries(snap: Snapshot) -> Iterator[Finding]:
    """GS005 (static), GS006, GS008: what the query text and trigger metadata say without Prometheus."""
    yield from _query_texts(snap)
    yield from _null_values(snap)


def _query_texts(snap: Snapshot) -> Iterator[Finding]:
    """GS006 (a metric name another engine version or release renamed) and GS005 (no aggregation)."""
    target = {id(s.obj): w for w in snap.workloads for s in w.scalers if s.kind == "ScaledObject"}
    for so, i, md in _prom_triggers(snap):
        query = str(md.get("query") or "")
        base = f"spec.triggers[{i}].metadata"
        w = target.get(id(so))
        for name in metric_names(query):
            versioned = _version_mismatch(name, w)
            if versioned:
                yield _finding(
                    "GS006",
                    so,
                    f"{base}.query",
                    name,
                    versioned[1],
                    extra={
                        "current": versioned[0],
                        "query": query,
                        "engineVersion": w.detection.version if w else None,
                    },
                )
                continue
            old = renamed(name)
            if old and not (w is not None and w.detection.engine is old[0] and w.detection.version):
                engine, current, role = old
                yield _finding(
                    "GS006",
                    so,
                    f"{base}.query",
                    name,
                    f"the {engine.display} {role.replace('_', ' ')} metric {name} was renamed "
                    f"{current}; on a current engine this query finds nothing",
                    extra={"current": current, "query": query},
                )
        if query and not aggregated(query):
            yield _finding(
                "GS005",
                so,
                f"{base}.query",
                query.strip(),
                "the query is not wrapped in an aggregation (sum/max/avg without by): it returns one "
                "series per pod, and KEDA needs exactly one",
                severity="warning",
            )


def _null_values(snap: Snapshot) -> Iterator[Finding]:
    """GS008: prometheus triggers reading an empty result as 0 with no spec.fallback, with the patch."""
    for so in snap.scaled_objects:
        triggers = spec_of(so).get("triggers") or []
        loose = [
            i
            for i, t in enumerate(triggers)
            if isinstance(t, Mapping)
            and t.get("type") == "prometheus"
            and str((t.get("metadata") or {}).get("ignoreNullValues", "true")).lower() != "false"
        ]
        if not loose or spec_of(so).get("fallback"):
            continue
        fixed = []
        for i, t in enumerate(triggers):
            t2 = dict(t) if isinstance(t, Mapping) else t
            if i in loose:
                t2["metadata"] = {**t["metadata"], "ignoreNullValues": "false"}
            fixed.append(t2)
        minimum = to_int(spec_of(so).get("minReplicaCount"), 0) or 0
        fallback = builders.fallback_spec(max(1, minimum), minimum, snap.targets)
        body: dict[str, Any] = {"spec": {"triggers": fixed}}
        why = ""
        if fallback is not None and not fallback_covers(
            [t for t in fixed if isinstance(t, Mapping)], snap.targets.keda
        ):
            fallback = None
            why = (
                f"; no fallback in the patch: on KEDA {snap.targets.keda or '(version unknown)'} a fallback "
                f"acts only on AverageValue triggers (Value from 2.18)"
            )
        elif fallback is None:
            why = (
                f"; no fallback in the patch: KEDA {snap.targets.keda or '(version unknown)'} would wake this "
                f"workload from 0 replicas on every failing poll"
            )
        if fallback is not None:
            body["spec"]["fallback"] = fallback
            body["spec"]["triggers"] = [
                builders.with_metric_type(t) if isinstance(t, Mapping) else t for t in fixed
            ]
        for i in loose:
            value = (triggers[i].get("metadata") or {}).get("ignoreNullValues")
            yield _finding(
                "GS008",
                so,
                f"spec.triggers[{i}].metadata.ignoreNullValues",
                "true (default)" if value is None else value,
                "an empty query result reads as 0 and there is no spec.fallback: a missing metric "
                "scales the workload down" + why,
                patch=_merge(so, body),
            )


def live_queries(snap: Snapshot, prom: PromSource) -> Iterator[Finding]:
    """GS004, GS005, GS007, GS023, GS024: run each prometheus trigger's query against Prometheus."""
    forms = NameForms(prom)
    reported: set[str] = set()
    for so, i, md in _prom_triggers(snap):
        query = str(md.get("query") or "").strip()
        field = f"spec.triggers[{i}].metadata.query"
        if not query:
            continue
        check = check_query(prom, query, _threshold(md), forms)
        if check.error is not None:
            yield _finding(
                "GS024", so, field, query, f"{check.error.what}: {check.error.why}", extra={"query": query}
            )
            continue
        for name, found in check.held.items():
            if found and name not in reported and (":" in name or engines.engine_for_metric(name)):
                reported.add(name)
                form = (
                    "underscore"
                    if ":" not in found[0] and ":" in name
                    else "colon"
                    if ":" in found[0]
                    else "plain"
                )
                both = " (both forms: some pods expose each; match both)" if len(found) > 1 else ""
                yield _finding(
                    "GS007",
                    so,
                    field,
                    ", ".join(found),
                    f"Prometheus holds {', '.join(found)} ({form} form){both}",
                    extra={"metric": name, "held": found},
                )
        if not check.series:
            yield _finding(
                "GS004",
                so,
                field,
                query,
                f"the query returns no series now ({check.why_empty}); threshold {md.get('threshold')}",
                extra={
                    "query": query,
                    "series": 0,
                    "threshold": check.threshold,
                    "reasons": list(check.reasons),
                },
            )
        elif check.series > 1:
            yield _finding(
                "GS005",
                so,
                field,
                query,
                f"the query returns {check.series} series now (KEDA needs one); wrap it in sum(...)",
                extra={"query": query, "series": check.series, "values": check.values},
            )
        elif check.value is not None and check.threshold:
            yield _finding(
                "GS007",
                so,
                field,
                f"{check.value:g}",
                f"the query returns one series: {check.value:g} now vs threshold {check.threshold:g} "
                f"(about {check.wanted_replicas} replica(s) wanted)",
                extra={"query": query, "value": check.value, "threshold": check.threshold},
            )
        yield from _dcgm_labels(so, field, query, list(check.held), prom)


def _dcgm_labels(
    so: Mapping[str, Any], field: str, query: str, names: Sequence[str], prom: PromSource
) -> Iterator[Finding]:
    dcgm = [n for n in names if n.startswith("DCGM_")]
    if not dcgm:
        return
    uses_exported = bool(re.search(r"\bexported_pod\b", query))
    uses_pod = bool(re.search(r"(?<!exported_)\bpod\b", query))
    try:
        labels = prom.pod_labels(dcgm[0])
    except GpuscaleError as exc:
        yield _finding("GS024", so, field, query, f"{exc.what}: {exc.why}")
        return
    if labels is None:
        return
    if labels == EXPORTED_POD_LABELS and uses_pod and not uses_exported:
        yield _finding(
            "GS023",
            so,
            field,
            "pod",
            f"{dcgm[0]} carries the workload's pod as exported_pod (scraped with honorLabels false); "
            "`pod` names the DCGM exporter, so the query matches no workload pod",
            extra={"metric": dcgm[0], "held": EXPORTED_POD_LABELS.pod},
        )
    elif labels == POD_LABELS and uses_exported:
        yield _finding(
            "GS023",
            so,
            field,
            "exported_pod",
            f"{dcgm[0]} carries the pod as `pod` (honorLabels true or direct scrape); exported_pod "
            "does not exist, so the query matches nothing",
            extra={"metric": dcgm[0], "held": "pod"},
        )


# ---- timeouts --------------------------------------------------------------------------------


def engine_metrics_off(snap: Snapshot) -> Iterator[Finding]:
    """GS025: a ScaledObject trigger names the engine's metrics while the engine exports none."""
    for w in _gpu_scaled(snap):
        reason, engine = w.detection.metrics_off_reason, w.detection.engine
        if reason is None or engine is None:
            continue
        for scaler in w.scalers:
            if scaler.kind != "ScaledObject":
                continue
            for i, t in enumerate(spec_of(scaler.obj).get("triggers") or []):
                if not (isinstance(t, Mapping) and t.get("type") == "prometheus"):
                    continue
                query = str((t.get("metadata") or {}).get("query") or "")
                used = [
                    n
                    for n in metric_names(query)
                    if (found := engines.engine_for_metric(n)) and found[0] is engine
                ]
                if used:
                    yield _finding(
                        "GS025",
                        scaler.obj,
                        f"spec.triggers[{i}].metadata.query",
                        ", ".join(used),
                        f"{reason}: {w.ref()} never has {used[0]}, so this trigger reads nothing",
                        extra={
                            "workload": w.ref(),
                            "metrics": used,
                            "flag": w.detection.metrics_off_flag or engine.metrics_needs_flag,
                        },
                    )


def knative_timeouts(snap: Snapshot) -> Iterator[Finding]:
    """GS011: Knative progress-deadline / revision timeout below the cold start."""
    settings = _ks()
    cm_deploy = snap.config_maps.get(("knative-serving", "config-deployment"), {}).get("data") or {}
    cm_defaults = snap.config_maps.get(("knative-serving", "config-defaults"), {}).get("data") or {}
    default_deadline = (
        duration_seconds(cm_deploy.get("progress-deadline"))
        or duration_seconds(settings["config-deployment.progress-deadline"])
        or builders.KNATIVE_PROGRESS_DEADLINE
    )
    default_timeout = (
        duration_seconds(cm_defaults.get("revision-timeout-seconds"))
        or duration_seconds(settings["config-defaults.revision-timeout-seconds"])
        or builders.KNATIVE_REVISION_TIMEOUT
    )
    for w in snap.workloads:
        if not w.knative or not w.gpu_inference:
            continue
        annotations = meta(w.template).get("annotations") or {}
        raw = annotations.get("serving.knative.dev/progress-deadline")
        deadline = duration_seconds(raw) if raw is not None else default_deadline
        timeout = to_int(w.pod_spec.get("timeoutSeconds"))
        effective_timeout = timeout if timeout is not None else default_timeout
        wanted = builders.knative_service(
            name=w.name,
            namespace=w.namespace,
            template=w.template,
            min_scale=0,
            max_scale=1,
            concurrency=1,
            cold_start=w.cold_start,
        ).service
        want_meta = wanted["spec"]["template"]["metadata"]["annotations"]
        want_deadline = want_meta["serving.knative.dev/progress-deadline"]
        want_timeout = wanted["spec"]["template"]["spec"]["timeoutSeconds"]
        if deadline is not None and deadline < w.cold_start:
            yield _finding(
                "GS011",
                w.obj,
                "spec.template.metadata.annotations[serving.knative.dev/progress-deadline]",
                raw if raw is not None else f"{deadline:g}s (cluster default)",
                f"the revision is marked Failed if not Ready within {deadline:g}s; a replica takes "
                f"{w.cold_start}s ({w.cold_source})",
                patch=_merge(
                    w.obj,
                    {
                        "spec": {
                            "template": {
                                "metadata": {
                                    "annotations": {"serving.knative.dev/progress-deadline": want_deadline}
                                }
                            }
                        }
                    },
                ),
            )
        if effective_timeout < w.cold_start:
            yield _finding(
                "GS011",
                w.obj,
                "spec.template.spec.timeoutSeconds",
                timeout if timeout is not None else f"{effective_timeout:g} (cluster default)",
                f"a request that wakes the revision waits at most {effective_timeout:g}s; a replica "
                f"takes {w.cold_start}s",
                severity="warning",
                patch=_merge(w.obj, {"spec": {"template": {"spec": {"timeoutSeconds": want_timeout}}}}),
            )


def http_addon_timeouts(snap: Snapshot) -> Iterator[Finding]:
    """GS012: HTTPScaledObject (or interceptor) timeouts below the cold start.

    The interceptor's own wait is read from the variable its version uses (facts.keda
    interceptor_timeout_keys / effective_interceptor_env): KEDA_CONDITION_WAIT_TIMEOUT before 0.14
    (20s when unset, the chart's value), KEDA_HTTP_READINESS_TIMEOUT from 0.14 unless the deprecated
    variable is still set, which then wins.
    """
    version = snap.targets.keda_http
    env_name = ""
    interceptor_wait: float | None = None
    for (_ns, name), dep in snap.deployments.items():
        if name == "keda-add-ons-http-interceptor":
            env: dict[str, str] = {}
            for c in (spec_of(dep).get("template") or {}).get("spec", {}).get("containers") or []:
                env.update(
                    {
                        str(e.get("name")): str(e.get("value"))
                        for e in c.get("env") or []
                        if e.get("value") is not None
                    }
                )
            used, _ = effective_interceptor_env(env, version)
            keys = interceptor_timeout_keys(version)
            if used:
                env_name, interceptor_wait = used, duration_seconds(env[used])
            elif not keys.deprecated:
                env_name = f"{keys.readiness_env} (unset: {keys.upstream_readiness})"
                interceptor_wait = duration_seconds(keys.upstream_readiness)
    for hso in snap.http_scaled_objects:
        ref = spec_of(hso).get("scaleTargetRef") or {}
        w = snap.workload(str(ref.get("kind") or "Deployment"), ns_of(hso), str(ref.get("name") or ""))
        cold = w.cold_start if w else (snap.cold_start or UNKNOWN_COLD_START)
        timeouts = spec_of(hso).get("timeouts") or {}
        wait = duration_seconds(timeouts.get("conditionWait"))
        source = "spec.timeouts.conditionWait"
        if wait is None and interceptor_wait:
            wait, source = (
                interceptor_wait,
                f"interceptor env {env_name} (HTTP add-on {version or 'unknown'})",
            )
        if wait is None or wait >= cold:
            continue
        target = {
            "apiVersion": str(ref.get("apiVersion") or "apps/v1"),
            "kind": str(ref.get("kind") or "Deployment"),
            "name": str(ref.get("name") or ""),
        }
        wanted = builders.http_scaled_object(
            name=name_of(hso),
            namespace=ns_of(hso),
            target=target,
            service="x",
            port=80,
            min_replicas=0,
            max_replicas=1,
            concurrency=1,
            hosts=(),
            cold_start=cold,
        )
        yield _finding(
            "GS012",
            hso,
            source,
            timeouts.get("conditionWait") or f"{wait:g}s",
            f"a request at zero replicas waits {wait:g}s for a replica that needs {cold}s",
            patch=_merge(hso, {"spec": {"timeouts": wanted["spec"]["timeouts"]}}),
        )


# ---- probes and lifecycle --------------------------------------------------------------------


def probes(snap: Snapshot) -> Iterator[Finding]:
    """GS013, GS014, GS015, GS016."""
    for w in snap.workloads:
        if not w.gpu_inference:
            continue
        c = w.main_container()
        if c is None:
            continue
        cname = c.get("name")
        base = f"spec.template.spec.containers[{cname}]"
        startup, liveness, readiness = (
            c.get(k) if isinstance(c.get(k), Mapping) else None
            for k in ("startupProbe", "livenessProbe", "readinessProbe")
        )
        cold = w.cold_start
        judge, judge_source = w.unprobed_cold_start or (cold, w.cold_source)
        if startup and probe_budget(startup) < judge:
            period = to_int(startup.get("periodSeconds"), PROBE_DEFAULT_PERIOD) or PROBE_DEFAULT_PERIOD
            need = math.ceil((judge - (to_int(startup.get("initialDelaySeconds"), 0) or 0)) / period) + 1
            yield _finding(
                "GS013",
                w.obj,
                f"{base}.startupProbe",
                f"{probe_budget(startup)}s",
                f"the startupProbe fails after {probe_budget(startup)}s; the container needs {judge}s "
                f"({judge_source})",
                fix=f"Set startupProbe.failureThreshold to {need} (period {period}s).",
            )
        if liveness and not startup and probe_budget(liveness) < cold:
            yield _finding(
                "GS014",
                w.obj,
                f"{base}.livenessProbe",
                f"{probe_budget(liveness)}s",
                f"with no startupProbe the livenessProbe restarts the container after "
                f"{probe_budget(liveness)}s; loading takes {cold}s ({w.cold_source})",
            )
        if readiness and not startup and probe_budget(readiness) < cold:
            yield _finding(
                "GS015",
                w.obj,
                f"{base}.readinessProbe",
                f"{probe_budget(readiness)}s",
                f"the readinessProbe fails after {probe_budget(readiness)}s while loading takes "
                f"{cold}s; no startupProbe covers the start",
            )
        if w.kind == "Deployment":
            deadline = (
                to_int(spec_of(w.obj).get("progressDeadlineSeconds"), K8S_DEFAULT_PROGRESS_DEADLINE) or 0
            )
            if deadline < cold:
                yield _finding(
                    "GS016",
                    w.obj,
                    "spec.progressDeadlineSeconds",
                    deadline,
                    f"a rollout is reported failed after {deadline}s; a replica takes {cold}s",
                    patch=_merge(
                        w.obj,
                        {"spec": {"progressDeadlineSeconds": max(K8S_DEFAULT_PROGRESS_DEADLINE, 2 * cold)}},
                    ),
                )


def _prestop_seconds(c: Mapping[str, Any]) -> int | None:
    hook = (c.get("lifecycle") or {}).get("preStop") or {}
    if not hook:
        return None
    if isinstance(hook.get("sleep"), Mapping):
        return to_int(hook["sleep"].get("seconds"), 0) or 0
    command = " ".join(str(x) for x in ((hook.get("exec") or {}).get("command") or []))
    match = re.search(r"\bsleep\s+(\d+)", command)
    return int(match.group(1)) if match else 0


def drain(snap: Snapshot) -> Iterator[Finding]:
    """GS017, GS018 on autoscaled GPU inference workloads (Knative sets its own grace period)."""
    for w in _gpu_scaled(snap):
        if w.knative:
            continue
        c = w.main_container()
        if c is None:
            continue
        prestop = _prestop_seconds(c)
        if prestop is None:
            yield _finding(
                "GS018",
                w.obj,
                f"spec.template.spec.containers[{c.get('name')}].lifecycle.preStop",
                "<none>",
                f"scaled down by {_scalers(w)} with no preStop on container {c.get('name')}",
            )
        argv = [str(x) for k in ("command", "args") for x in (c.get(k) or [])]
        shutdown = to_int(engines.flag_value(argv, SHUTDOWN_FLAGS), 0) or 0
        needed = max(
            DRAIN_FLOOR_SECONDS, (prestop if prestop is not None else PRESTOP_SLEEP_SECONDS) + shutdown
        )
        grace = to_int(w.pod_spec.get("terminationGracePeriodSeconds"), K8S_DEFAULT_GRACE)
        grace = K8S_DEFAULT_GRACE if grace is None else grace
        if grace < needed:
            yield _finding(
                "GS017",
                w.obj,
                "spec.template.spec.terminationGracePeriodSeconds",
                grace if "terminationGracePeriodSeconds" in w.pod_spec else f"{grace} (default)",
                f"in-flight generations get {grace}s after SIGTERM; the drain needs {needed}s "
                f"(preStop {prestop or 0}s + shutdown timeout {shutdown}s, floor {DRAIN_FLOOR_SECONDS}s)",
                patch=_merge(
                    w.obj, {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": needed}}}}
                ),
            )


# ---- capacity and placement ------------------------------------------------------------------


def rwo_volumes(snap: Snapshot) -> Iterator[Finding]:
    """GS019: a ReadWriteOnce(Pod) claim on a workload whose max replicas > 1."""
    for w in snap.workloads:
        if w.max_replicas <= 1 or w.kind == "StatefulSet":
            continue
        for v in w.pod_spec.get("volumes") or []:
            claim = (
                (v.get("persistentVolumeClaim") or {}).get("claimName") if isinstance(v, Mapping) else None
            )
            pvc = snap.pvcs.get((w.namespace, str(claim))) if claim else None
            if not pvc:
                continue
            modes = list(spec_of(pvc).get("accessModes") or [])
            if modes and all(m in ("ReadWriteOnce", "ReadWriteOncePod") for m in modes):
                yield _finding(
                    "GS019",
                    w.obj,
                    f"spec.template.spec.volumes[{v.get('name')}]",
                    f"{claim} ({', '.join(modes)})",
                    f"scales to {w.max_replicas} replicas but mounts {', '.join(modes)} claim {claim}",
                    extra={"claim": claim, "accessModes": modes},
                )


def prepull(snap: Snapshot) -> Iterator[Finding]:
    """GS020: an autoscaled GPU workload's image carried by no DaemonSet."""
    carried = {
        str(c.get("image"))
        for ds in snap.daemonsets
        for key in ("initContainers", "containers")
        for c in ((spec_of(ds).get("template") or {}).get("spec") or {}).get(key) or []
        if isinstance(c, Mapping)
    }
    for w in _gpu_scaled(snap):
        if w.max_replicas <= 1 and w.min_replicas >= 1:
            continue
        c = w.main_container()
        image = str(c.get("image") or "") if c else ""
        if image and image not in carried:
            yield _finding(
                "GS020",
                w.obj,
                f"spec.template.spec.containers[{c.get('name') if c else ''}].image",
                image,
                f"scales out (max {_max_text(w)}) but no DaemonSet pre-pulls the image on GPU nodes",
                fix=BY_ID["GS020"].fix + f" (or --image {image})",
            )


def capacity(snap: Snapshot) -> Iterator[Finding]:
    """GS021: max replicas x accelerators per pod above the nodes' allocatable accelerators."""
    if not snap.nodes:
        return
    totals: dict[str, float] = {}
    for node in snap.nodes:
        for res, value in ((node.get("status") or {}).get("allocatable") or {}).items():
            if engines.accelerators({"resources": {"limits": {res: value}}}):
                try:
                    totals[res] = totals.get(res, 0) + quantity(value)
                except ValueError:
                    continue
    for w in snap.workloads:
        if not w.autoscaled:
            continue
        for res, per_pod in w.detection.accelerators.items():
            try:
                need = w.max_replicas * quantity(per_pod)
            except ValueError:
                continue
            have = totals.get(res, 0)
            if need > have:
                yield _finding(
                    "GS021",
                    w.obj,
                    f"resources.limits[{res}]",
                    f"{w.max_replicas} x {per_pod}",
                    f"may scale to {w.max_replicas} replicas x {per_pod} {res} = {need:g}; "
                    f"the {len(snap.nodes)} node(s) have {have:g} allocatable",
                    extra={"needed": need, "allocatable": have, "resource": res},
                )


def _selects(pdb: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = spec_of(pdb).get("selector") or {}
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return False
    if any(labels.get(k) != str(v) for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def pdb(snap: Snapshot) -> Iterator[Finding]:
    """GS022: an autoscaled GPU inference workload keeping >= 1 warm replica with no PDB selecting its pods."""
    for w in _gpu_scaled(snap):
        if w.knative or w.min_replicas < 1:
            continue
        if any(ns_of(p) == w.namespace and _selects(p, w.pod_labels) for p in snap.pdbs):
            continue
        match = (spec_of(w.obj).get("selector") or {}).get("matchLabels") or w.pod_labels
        patch = None
        if match:
            body = builders.pod_disruption_budget(name=w.name, namespace=w.namespace, match_labels=match)
            patch = Patch(
                "apply", body["apiVersion"], body["kind"], body["metadata"]["name"], w.namespace, body
            )
        yield _finding(
            "GS022",
            w.obj,
            "PodDisruptionBudget",
            "<none>",
            f"keeps {w.min_replicas} warm replica(s) and no PodDisruptionBudget selects its pods "
            f"({', '.join(f'{k}={v}' for k, v in w.pod_labels.items())})",
            patch=patch,
        )


STATIC_CHECKS: tuple[Callable[[Snapshot], Iterator[Finding]], ...] = (
    cpu_hpa,
    competing,
    gitops_replicas,
    scale_down_window,
    zero_without_buffer,
    static_queries,
    knative_timeouts,
    http_addon_timeouts,
    probes,
    drain,
    rwo_volumes,
    prepull,
    capacity,
    pdb,
    engine_metrics_off,
)


def run(
    objects: Sequence[Mapping[str, Any]],
    prometheus: PromSource | None = None,
    cold_start: int | None = None,
    *,
    from_files: bool = False,
    measured_cold_starts: Mapping[tuple[str, str, str], tuple[int, str]] | None = None,
    targets: Targets | None = None,
) -> list[Finding]:
    """Every rule over the objects (plain dicts): findings, errors first.

    ``prometheus`` (a `kubectl_gpuscale.prom.Prometheus` or anything with ``query``, ``name_forms``
    and ``pod_labels``) adds the live checks of each ScaledObject query; ``cold_start`` (seconds)
    overrides every workload's estimate; ``from_files`` says the objects are manifests, not live
    objects (GS003 then reads spec.replicas instead of managedFields).
    """
    snap = build(
        objects, cold_start, from_files=from_files, measured_cold_starts=measured_cold_starts, targets=targets
    )
    findings: list[Finding] = []
    for check in STATIC_CHECKS:
        findings.extend(check(snap))
    if prometheus is not None:
        live = list(live_queries(snap, prometheus))
        checked = {(f.namespace, f.name, f.field) for f in live if f.rule != "GS024"}
        # The static no-aggregation guess yields to the live answer for the same query.
        findings = [
            f for f in findings if not (f.rule == "GS005" and (f.namespace, f.name, f.field) in checked)
        ]
        findings.extend(live)
    return sorted(findings, key=sort_key)
