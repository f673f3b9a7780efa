"""The live source: each kind listed once, then watched; a fixed handful of PromQL queries per refresh.

The first refresh lists every kind (Deployments, StatefulSets, HPAs, ScaledObjects,
HTTPScaledObjects, Knative Services, Pods, Events) page by page, in the worker thread. From the
second refresh on, one watch per kind keeps a cache current (`kubectl_gpuscale.kube.watch`), and
a refresh only reads the caches and runs at most `MAX_QUERIES` PromQL queries, each grouped by
namespace and pod for every workload at once. `top --once` makes one refresh: lists only.

Failures degrade per kind: a kind that cannot be listed or watched keeps its last objects and adds
its reason to `Snapshot.problems`; the other kinds keep updating.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError
from kubectl_gpuscale.names import KEDA_PAUSED_REPLICAS
from kubectl_gpuscale.prom import promql
from kubectl_gpuscale.tui.model import ColdStartPhase, Finding, Snapshot
from kubectl_gpuscale.tui.sources.assemble import (
    SCALING_REASONS,
    Assembler,
    ClusterLists,
    PodMetrics,
)

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster, Objects
    from kubectl_gpuscale.kube.watch import KindCache, Scope
    from kubectl_gpuscale.prom.gateway import Prometheus

MAX_QUERIES = 10
ROLES = ("queue", "running", "kv_cache")
DOCTOR_SECONDS = 300.0
"""The doctor's rules run on the first refresh and every 5 minutes after it: they list more kinds
(PVCs, PDBs, DaemonSets, Nodes; the watched kinds come from the caches), once per run."""

KINDS: tuple[tuple[str, str, str, bool], ...] = (
    ("deployments", "apps/v1", "Deployment", True),
    ("statefulsets", "apps/v1", "StatefulSet", True),
    ("hpas", "autoscaling/v2", "HorizontalPodAutoscaler", False),
    ("scaledobjects", "keda.sh/v1alpha1", "ScaledObject", False),
    ("httpscaledobjects", "http.keda.sh/v1alpha1", "HTTPScaledObject", False),
    ("knative_services", "serving.knative.dev/v1", "Service", False),
    ("pods", "v1", "Pod", True),
    ("events", "v1", "Event", False),
)
"""(field of `ClusterLists`, apiVersion, kind, required): a required kind that was never listed fails the
refresh; any other failure is one line in the snapshot's problems, for that kind only."""
CUSTOM_KINDS = ("scaledobjects", "httpscaledobjects", "knative_services")
"""Listed only when the cluster serves them (their CRDs are installed)."""
EVENT_NOISE_KINDS = (
    "Node",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Endpoints",
    "EndpointSlice",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Lease",
    "Namespace",
)
EVENTS_FIELD_SELECTOR = ",".join(f"involvedObject.kind!={kind}" for kind in EVENT_NOISE_KINDS)
"""Core events are filtered on the server to the kinds the dashboard can show: field selectors allow only
equality and inequality joined by AND (no "in"), so the kinds no scaling event is about are excluded."""


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
                out.append(
                    (role, promql.by_pod(promql.names_matcher(metric.names, matchers)), promql.POD_LABELS)
                )
            else:
                plain.update(metric.names)
        if plain:
            selector = promql.names_matcher(sorted(plain), promql.namespace_scope(namespaces))
            out.append(
                (
                    role,
                    promql.by_pod(selector, aggregate="max" if role == "kv_cache" else "sum"),
                    promql.POD_LABELS,
                )
            )
    for pod_labels in (promql.POD_LABELS, promql.EXPORTED_POD_LABELS):
        out.append(
            (
                "gpu_util",
                promql.gauge_by_pod(engines.DCGM_GPU_UTIL, namespaces, pod_labels, "avg"),
                pod_labels,
            )
        )
    return out


class LiveSource:
    """The dashboard's view of a real cluster and its Prometheus."""

    def __init__(
        self,
        connect: Callable[[], Cluster],
        prometheus: Callable[[], Prometheus | None] | None,
        *,
        namespace: str | None,
        selector: str | None = None,
        name: str = "live",
        context_factory: Callable[[str], Cluster] | None = None,
        watch: bool = True,
        namespace_from_context: bool = False,
    ) -> None:
        self._connect = connect
        self.namespace_from_context = namespace_from_context
        """Take the context's namespace at the first connect (no -n and no -A were given)."""
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
        self._doctor_at: float | None = None
        self.watch = watch
        """Keep the kinds current with watches (the dashboard); False lists every kind on every refresh."""
        self.caches: dict[str, KindCache] | None = None

    @classmethod
    def from_flags(
        cls,
        connect: Callable[[str | None], Cluster],
        *,
        context: str | None,
        namespace: str | None,
        all_namespaces: bool,
        selector: str | None,
        prometheus_url: str | None,
        request_timeout: float | None = None,
    ) -> LiveSource:
        """Build from the kubectl flags' values; `connect(context)` reads that kubeconfig context into a Cluster.

        The kubeconfig is read now (a missing or bad one is a one-line error before the dashboard starts);
        the first request is sent by the first refresh, in the worker. Without -n or -A the namespace is the
        context's. Prometheus is resolved (flag > env > install record) in the worker too."""
        from kubectl_gpuscale.prom import resolve

        def connect_prometheus() -> Prometheus | None:
            """Resolve (flag > env > install record) and connect, in the worker: the record is a request."""
            try:
                url = resolve.resolve(prometheus_url, cluster, context=context)
            except GpuscaleError as exc:
                if exc.what == resolve.NO_URL:
                    return None
                raise
            return resolve.connect(url, timeout=request_timeout)

        cluster = connect(
            context
        )  # reads the kubeconfig only (no request): a bad one fails before the UI starts
        return cls(
            lambda: cluster,
            connect_prometheus,
            namespace=None if all_namespaces else namespace,
            selector=selector,
            name=f"context {context or 'current'}",
            context_factory=connect,
            namespace_from_context=namespace is None and not all_namespaces,
        )

    # ---- Source -----------------------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Read every kind (lists the first time, the watched caches after), query the metrics, and
        assemble a snapshot; degrade on failures, per kind."""
        problems: list[str] = []
        try:
            cluster = self._cluster_or_connect()
            lists = self._lists(cluster, problems) if self.watch else self._list_all(cluster, problems)
        except GpuscaleError as exc:
            problems.append(f"cluster: {exc.line()}")
            return self._degraded(problems)
        metrics = self._metrics(problems)
        if self._doctor_at is None or time.monotonic() - self._doctor_at >= DOCTOR_SECONDS:
            self._doctor_at = time.monotonic()
            self._findings = self._doctor(cluster, problems)
        self._refreshes += 1
        snapshot = replace(
            self._assembler.assemble(lists, metrics, source=self.name, problems=problems),
            findings=self._findings,
        )
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
        workload = next(
            (
                w
                for w in (self._last.workloads if self._last else ())
                if w.namespace == namespace and w.name == name
            ),
            None,
        )
        if workload is None or workload.scaler != "KEDA":
            return f"{namespace}/{name} has no ScaledObject"
        value = None if replicas is None else str(replicas)
        updated = cluster.patch(
            "keda.sh/v1alpha1",
            "ScaledObject",
            workload.scaler_name,
            namespace,
            {"metadata": {"annotations": {KEDA_PAUSED_REPLICAS: value}}},
        )
        if self.caches and "scaledobjects" in self.caches:
            self.caches["scaledobjects"].upsert(updated)  # the next refresh shows it, before its watch event
        return (
            f"resumed ScaledObject {namespace}/{workload.scaler_name}"
            if value is None
            else f"paused ScaledObject {namespace}/{workload.scaler_name} at {replicas} replicas"
        )

    def set_namespace(self, namespace: str | None) -> None:
        """Restrict the lists, watches and queries to one namespace (None: all)."""
        self.namespace = namespace
        self.close()

    def close(self) -> None:
        """Stop the watches; the next refresh lists again (for the current namespace and context)."""
        for cache in (self.caches or {}).values():
            cache.stop()
        self.caches = None

    def checkpoint(self, namespace: str, pod: str) -> str:
        """Checkpoint the pod's default container through the kubelet API, after the preflight."""
        from kubectl_gpuscale.checkpoint.service import checkpoint_pod

        result = checkpoint_pod(self._cluster_or_connect(), pod, namespace)
        return (
            f"checkpointed {namespace}/{pod}/{result.container} in {result.seconds:.0f}s: {result.archive} "
            f"on node {result.node} (it holds the process memory: treat it like a Secret)"
        )

    def set_context(self, context: str) -> str:
        """Reconnect to another kubeconfig context; the next refresh reads that cluster."""
        if self._context_factory is None:
            return "this source cannot switch contexts"
        cluster = self._context_factory(context)
        self.close()
        self._cluster, self._connect = cluster, lambda: cluster
        self._served.clear()
        self._assembler = Assembler()
        self._refreshes = 0
        self._doctor_at = None
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
        headline = (
            f"{timeline.status}; longest: {TITLES.get(longest.name, longest.name)}"
            if longest
            else timeline.status
        )
        return phases, headline

    # ---- internals --------------------------------------------------------------------------------

    def _cluster_or_connect(self) -> Cluster:
        if self._cluster is None:
            self._cluster = self._connect()
            if self.namespace_from_context:
                self.namespace = self._cluster.default_namespace
        return self._cluster

    def _served_kind(self, cluster: Cluster, api_version: str, kind: str) -> bool:
        key = f"{api_version}/{kind}"
        if key not in self._served:
            self._served[key] = cluster.serves(api_version, kind)
        return self._served[key]

    def _scope(self, field: str, api_version: str, kind: str) -> Scope:
        from kubectl_gpuscale.kube.watch import Scope

        return Scope(
            api_version,
            kind,
            self.namespace,
            label_selector=self.selector if field in ("deployments", "statefulsets") else None,
            field_selector=EVENTS_FIELD_SELECTOR if field == "events" else None,
        )

    def _served_kinds(self, cluster: Cluster) -> list[tuple[str, str, str, bool]]:
        return [k for k in KINDS if k[0] not in CUSTOM_KINDS or self._served_kind(cluster, k[1], k[2])]

    def _list_all(self, cluster: Cluster, problems: list[str]) -> ClusterLists:
        """Every kind listed now, page by page (no watch): what each refresh cost before watches."""
        from kubectl_gpuscale.kube.watch import list_pages

        lists = ClusterLists()
        for field, api_version, kind, required in self._served_kinds(cluster):
            try:
                items, _ = list_pages(cluster, self._scope(field, api_version, kind))
            except GpuscaleError as exc:
                if required:
                    raise
                problems.append(self._kind_problem(cluster, api_version, kind, exc))
                items = []
            setattr(lists, field, items)
        return lists

    def _lists(self, cluster: Cluster, problems: list[str]) -> ClusterLists:
        """The kinds from their caches: listed in this (worker) thread the first time, watched after."""
        from kubectl_gpuscale.kube.watch import KindCache

        first = self.caches is None
        if self.caches is None:
            self.caches = {}
            for field, api_version, kind, _ in self._served_kinds(cluster):
                keep = _scaling_event if field == "events" else None
                self.caches[field] = KindCache(cluster, self._scope(field, api_version, kind), keep=keep)
        lists = ClusterLists()
        required = {k[0] for k in KINDS if k[3]}
        for field, cache in self.caches.items():
            if first:
                with contextlib.suppress(GpuscaleError):
                    cache.sync()
            else:
                cache.start()  # from the second refresh on: `top --once` never opens a watch
            error = cache.error
            if error is not None and field in required and not cache.synced:
                self.close()
                raise error
            if error is not None:
                api_version, kind = next((k[1], k[2]) for k in KINDS if k[0] == field)
                problems.append(
                    self._kind_problem(cluster, api_version, kind, error)
                    + (" (showing the last values)" if cache.synced else "")
                )
            setattr(lists, field, cache.items())
        return lists

    def _kind_problem(self, cluster: Cluster, api_version: str, kind: str, error: GpuscaleError) -> str:
        """One banner line for a kind that cannot be listed or watched; a 403 names the `can-i` check."""
        try:
            plural = cluster.resource(api_version, kind).plural
        except GpuscaleError:
            plural = kind.lower() + "s"
        plural += f".{api_version.split('/')[0]}" if "/" in api_version else ""
        if isinstance(error, ForbiddenError):
            scope = f" -n {self.namespace}" if self.namespace else " -A"
            return f"{plural}: forbidden, `kubectl auth can-i list {plural}{scope}`"
        return f"{plural}: {error.line()}"

    def _metrics(self, problems: list[str]) -> PodMetrics:
        try:
            if self._prometheus is None and self._prometheus_factory is not None:
                self._prometheus = self._prometheus_factory()
                if self._prometheus is None:
                    self._prometheus_factory = None  # none is known: do not ask again every refresh
            if self._prometheus is None:
                problems.append(
                    "no Prometheus configured: queue, KV cache, GPU and TTFT columns are empty "
                    "(pass --prometheus URL or set GPUSCALE_PROMETHEUS_URL)"
                )
                return PodMetrics()
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
                    target[key] = (
                        max(target.get(key, value), value)
                        if role == "kv_cache"
                        else target.get(key, 0.0) + value
                    )
            metrics.gpu_util.update(exported_gpu)
            self._last_metrics = metrics
            return metrics
        except GpuscaleError as exc:
            problems.append(f"Prometheus: {exc.line()} (showing the last values)")
            return self._last_metrics

    def _doctor(self, cluster: Cluster, problems: list[str]) -> tuple[Finding, ...]:
        from kubectl_gpuscale.doctor.service import diagnose, gather_cluster

        try:
            reader = _CachedCluster(cluster, self.caches or {}) if self.caches else cluster
            found = diagnose(gather_cluster(reader, self.namespace, selector=self.selector))  # type: ignore[arg-type]
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


def _scaling_event(event: Mapping[str, Any]) -> bool:
    """Whether the events cache keeps this event (the events panel shows scaling reasons only)."""
    return event.get("reason") in SCALING_REASONS


class _CachedCluster:
    """A `Cluster` whose lists of the watched kinds (same scope, cache in sync) come from the caches,
    so the doctor lists only the kinds the dashboard does not watch."""

    def __init__(self, cluster: Cluster, caches: Mapping[str, KindCache]) -> None:
        self._cluster = cluster
        self._caches = caches

    def _cached(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
    ) -> Objects | None:
        for cache in self._caches.values():
            s = cache.scope
            if (
                (s.api_version, s.kind, s.namespace, s.label_selector, s.field_selector)
                == (api_version, kind, namespace, label_selector, field_selector)
                and cache.synced
                and cache.error is None
            ):
                return cache.items()
        return None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Objects:
        """`Cluster.list`, from a cache when one holds exactly this list."""
        found = self._cached(api_version, kind, namespace, label_selector, field_selector)
        if found is not None:
            return found
        return self._cluster.list(
            api_version, kind, namespace, label_selector=label_selector, field_selector=field_selector
        )

    def list_optional(
        self, api_version: str, kind: str, namespace: str | None = None, **kw: Any
    ) -> Objects | None:
        """`Cluster.list_optional`, from a cache when one holds exactly this list."""
        found = self._cached(api_version, kind, namespace, kw.get("label_selector"), kw.get("field_selector"))
        if found is not None:
            return found
        return self._cluster.list_optional(api_version, kind, namespace, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)
