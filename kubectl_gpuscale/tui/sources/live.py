"""The live source: one list per kind and a fixed handful of PromQL queries per refresh.

Whatever the cluster's size, a refresh costs one list of each kind (Deployments,
StatefulSets, HPAs, ScaledObjects, HTTPScaledObjects, Knative Services, Pods,
Events) and at most `MAX_QUERIES` PromQL queries, each grouped by namespace and
pod for every workload at once. Failures degrade: the last values stay on screen
and `Snapshot.problems` says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError, UnreachableError
from kubectl_gpuscale.prom import promql
from kubectl_gpuscale.tui.model import ColdStartPhase, Finding, Snapshot
from kubectl_gpuscale.tui.sources.assemble import (
    KEDA_PAUSED_REPLICAS,
    Assembler,
    ClusterLists,
    PodMetrics,
)

if TYPE_CHECKING:
    from kubectl_gpuscale.cli.options import KubeOptions
    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.prom.gateway import Prometheus

MAX_QUERIES = 10
ROLES = ("queue", "running", "kv_cache")
DOCTOR_EVERY = 30
"""The doctor's rules run on the first refresh and every 30th after it (about once a minute): they
read more kinds (PVCs, PDBs, DaemonSets, Nodes), which is too much for every refresh."""


def metric_queries(namespaces: list[str] | None) -> list[tuple[str, str, promql.PodLabels]]:
    """The PromQL of one refresh: (role, query, pod labels). Its length does not depend on the cluster's size."""
    out: list[tuple[str, str, promql.PodLabels]] = []
    for role in ROLES:
        plain: set[str] = set()
        for engine in engines.ENGINES:
            metric: engines.Metric | None = getattr(engine, role)
            if metric is None:
                continue
            if metric.labels:
                matchers = {**promql.namespace_scope(namespaces), **dict(metric.labels)}
                out.append((role, promql.by_pod(promql.names_matcher(metric.names, matchers)),
                            promql.POD_LABELS))
            else:
                plain.update(metric.names)
        if plain:
            selector = promql.names_matcher(sorted(plain), promql.namespace_scope(namespaces))
            out.append((role, promql.by_pod(selector, aggregate="max" if role == "kv_cache" else "sum"),
                        promql.POD_LABELS))
    for pod_labels in (promql.POD_LABELS, promql.EXPORTED_POD_LABELS):
        out.append(("gpu_util", promql.gauge_by_pod(engines.DCGM_GPU_UTIL, namespaces, pod_labels, "avg"),
                    pod_labels))
    return out


class LiveSource:
    """The dashboard's view of a real cluster and its Prometheus."""

    def __init__(self, connect: Callable[[], Cluster], prometheus: Callable[[], Prometheus] | None, *,
                 namespace: str | None, selector: str | None = None, name: str = "live",
                 context_factory: Callable[[str], Cluster] | None = None) -> None:
        self._connect = connect
        self._context_factory = context_factory
        self._prometheus_factory = prometheus
        self._cluster: Cluster | None = None
        self._prometheus: Prometheus | None = None
        self.namespace = namespace
        self.selector = selector
        self.name = name
        self._served: dict[str, bool] = {}
        self._last: Snapshot | None = None
        self._last_metrics = PodMetrics()
        self._refreshes = 0
        self._assembler = Assembler()
        self._findings: tuple[Finding, ...] = ()

    @classmethod
    def from_options(cls, kube: KubeOptions, *, prometheus_url: str | None) -> LiveSource:
        """Build from the kubectl flags. The kubeconfig is read now (a missing or bad one is a one-line
        error before the dashboard starts); the first request is sent by the first refresh, in the worker."""
        from kubectl_gpuscale.prom.settings import PrometheusURL, resolve_url

        try:
            url: PrometheusURL | None = resolve_url(prometheus_url)
        except GpuscaleError:
            url = None

        def connect_prometheus() -> Prometheus:
            from kubectl_gpuscale.prom.gateway import Prometheus

            assert url is not None
            return Prometheus.open(url)

        namespace = None if kube.all_namespaces else kube.namespace
        def other_context(context: str) -> Cluster:
            return replace(kube, context=context).cluster()

        cluster = kube.cluster()  # reads the kubeconfig only (no request): a bad one fails before the UI starts
        source = cls(lambda: cluster, connect_prometheus if url else None, namespace=namespace,
                     selector=kube.selector, name=f"context {kube.context or 'current'}",
                     context_factory=other_context)
        source._explicit_namespace = kube.namespace is not None or kube.all_namespaces  # type: ignore[attr-defined]
        return source

    # ---- Source -----------------------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """List every kind once, query the metrics, and assemble a snapshot; degrade on failures."""
        problems: list[str] = []
        try:
            cluster = self._cluster_or_connect()
            lists = self._lists(cluster, problems)
        except GpuscaleError as exc:
            problems.append(f"cluster: {exc.line()}")
            return self._degraded(problems)
        metrics = self._metrics(problems)
        if self._refreshes % DOCTOR_EVERY == 0:
            self._findings = self._doctor(cluster, problems)
        self._refreshes += 1
        snapshot = replace(self._assembler.assemble(lists, metrics, source=self.name, problems=problems),
                           findings=self._findings)
        self._last = snapshot
        return snapshot

    def scale(self, namespace: str, name: str, replicas: int) -> str:
        """Scale a Deployment (or StatefulSet) through its scale subresource."""
        cluster = self._cluster_or_connect()
        kind = self._kind_of(namespace, name)
        cluster.scale("apps/v1", kind, name, namespace, replicas)
        return f"scaled {kind} {namespace}/{name} to {replicas}"

    def pause(self, namespace: str, name: str, replicas: int | None) -> str:
        """Pause the workload's ScaledObject at `replicas` (paused-replicas annotation); None resumes."""
        cluster = self._cluster_or_connect()
        workload = next((w for w in (self._last.workloads if self._last else ())
                         if w.namespace == namespace and w.name == name), None)
        if workload is None or workload.scaler != "KEDA":
            return f"{namespace}/{name} has no ScaledObject"
        value = None if replicas is None else str(replicas)
        cluster.patch("keda.sh/v1alpha1", "ScaledObject", workload.scaler_name, namespace,
                      {"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: value}}})
        return (f"resumed ScaledObject {namespace}/{workload.scaler_name}" if value is None
                else f"paused ScaledObject {namespace}/{workload.scaler_name} at {replicas} replicas")

    def set_namespace(self, namespace: str | None) -> None:
        """Restrict the lists and queries to one namespace (None: all)."""
        self.namespace = namespace

    def checkpoint(self, namespace: str, pod: str) -> str:
        """Checkpoint the pod's default container through the kubelet API, after the preflight."""
        from kubectl_gpuscale.checkpoint.service import checkpoint_pod

        result = checkpoint_pod(self._cluster_or_connect(), pod, namespace)
        return (f"checkpointed {namespace}/{pod}/{result.container} in {result.seconds:.0f}s: {result.archive} "
                f"on node {result.node} (it holds the process memory: treat it like a Secret)")

    def set_context(self, context: str) -> str:
        """Reconnect to another kubeconfig context; the next refresh reads that cluster."""
        if self._context_factory is None:
            return "this source cannot switch contexts"
        cluster = self._context_factory(context)
        self._cluster, self._connect = cluster, lambda: cluster
        self._served.clear()
        self._assembler = Assembler()
        self._refreshes = 0
        self.name = f"context {context}"
        return f"switched to context {context}"

    def cold_start(self, namespace: str, pod: str) -> tuple[tuple[ColdStartPhase, ...], str]:
        """The pod's cold start read like `kubectl gpuscale coldstart POD` does (events, logs, conditions)."""
        from kubectl_gpuscale.coldstart.model import TITLES
        from kubectl_gpuscale.coldstart.service import timeline_for_pod

        cluster = self._cluster_or_connect()
        timeline = timeline_for_pod(cluster, cluster.get("v1", "Pod", pod, namespace))
        phases = tuple(ColdStartPhase(TITLES.get(p.name, p.name), p.seconds) for p in timeline.phases)
        if timeline.failure is not None:
            return phases, f"failed: {timeline.failure.headline}"
        longest = timeline.longest()
        headline = f"{timeline.status}; longest: {TITLES.get(longest.name, longest.name)}" if longest else timeline.status
        return phases, headline

    # ---- internals --------------------------------------------------------------------------------

    def _cluster_or_connect(self) -> Cluster:
        if self._cluster is None:
            self._cluster = self._connect()
            if not getattr(self, "_explicit_namespace", True):
                self.namespace = self._cluster.default_namespace
        return self._cluster

    def _served_kind(self, cluster: Cluster, api_version: str, kind: str) -> bool:
        key = f"{api_version}/{kind}"
        if key not in self._served:
            self._served[key] = cluster.serves(api_version, kind)
        return self._served[key]

    def _lists(self, cluster: Cluster, problems: list[str]) -> ClusterLists:
        """List every kind. Workloads and pods are required; a forbidden or failing optional kind (HPAs,
        scalers, events) leaves its part empty and says why in `problems`, while the rest updates."""
        ns, sel = self.namespace, self.selector

        def degrade(api_version: str, kind: str, empty: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
            try:
                return cluster.list(api_version, kind, ns)
            except UnreachableError:
                raise
            except GpuscaleError as exc:
                plural = cluster.resource(api_version, kind).plural
                plural += f".{api_version.split('/')[0]}" if "/" in api_version else ""
                flag = f" -n {ns}" if ns else " -A"
                problems.append(f"{plural}: forbidden, `kubectl auth can-i list {plural}{flag}`"
                                if isinstance(exc, ForbiddenError) else f"{plural}: {exc.line()}")
                return empty

        def optional(api_version: str, kind: str) -> list[dict[str, Any]] | None:
            if not self._served_kind(cluster, api_version, kind):
                return None
            return degrade(api_version, kind, None)

        return ClusterLists(
            deployments=cluster.list("apps/v1", "Deployment", ns, label_selector=sel),
            statefulsets=cluster.list("apps/v1", "StatefulSet", ns, label_selector=sel),
            hpas=degrade("autoscaling/v2", "HorizontalPodAutoscaler", []) or [],
            scaledobjects=optional("keda.sh/v1alpha1", "ScaledObject"),
            httpscaledobjects=optional("http.keda.sh/v1alpha1", "HTTPScaledObject"),
            knative_services=optional("serving.knative.dev/v1", "Service"),
            pods=cluster.list("v1", "Pod", ns),
            events=degrade("v1", "Event", []) or [],
        )

    def _metrics(self, problems: list[str]) -> PodMetrics:
        if self._prometheus_factory is None:
            problems.append("no Prometheus configured: queue, KV cache, GPU and TTFT columns are empty "
                            "(pass --prometheus URL or set GPUSCALE_PROMETHEUS_URL)")
            return PodMetrics()
        try:
            if self._prometheus is None:
                self._prometheus = self._prometheus_factory()
            metrics = PodMetrics(available=True)
            namespaces = [self.namespace] if self.namespace else None
            exported_gpu: dict[tuple[str, str], float] = {}
            for role, query, labels in metric_queries(namespaces):
                values = self._prometheus.query_by_pod(query, labels=labels)
                if role == "gpu_util" and labels.exported:
                    exported_gpu = values
                    continue
                target: dict[tuple[str, str], float] = getattr(metrics, role)
                for key, value in values.items():
                    target[key] = max(target.get(key, value), value) if role == "kv_cache" else \
                        target.get(key, 0.0) + value
            metrics.gpu_util.update(exported_gpu)
            self._last_metrics = metrics
            return metrics
        except GpuscaleError as exc:
            problems.append(f"Prometheus: {exc.line()} (showing the last values)")
            return self._last_metrics

    def _doctor(self, cluster: Cluster, problems: list[str]) -> tuple[Finding, ...]:
        from kubectl_gpuscale.doctor.service import diagnose, gather_cluster

        try:
            found = diagnose(gather_cluster(cluster, self.namespace, selector=self.selector))
        except GpuscaleError as exc:
            problems.append(f"doctor: {exc.line()}")
            return self._findings
        return tuple(Finding(f.rule, f.severity, f.object, f.title) for f in found)

    def _degraded(self, problems: list[str]) -> Snapshot:
        if self._last is None:
            return Snapshot("--:--:--", self.name, problems=tuple(problems))
        return replace(self._last, problems=tuple(problems))

    def _kind_of(self, namespace: str, name: str) -> str:
        for w in self._last.workloads if self._last else ():
            if w.namespace == namespace and w.name == name:
                return w.kind
        return "Deployment"
