"""`status`: which components the cluster serves, their version and health, and the Prometheus in use.

Read-only. A group the server does not serve, or a read that is forbidden, makes that
component "unknown" with the reason, never an error for the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale import config
from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError
from kubectl_gpuscale.install import preflight, readiness
from kubectl_gpuscale.install.catalog import (
    COMPONENTS,
    EXTERNAL_METRICS_APISERVICE,
    KEDA_METRICS_SERVICES,
    Component,
)
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster


@dataclass
class ComponentStatus:
    """One row of `status`."""

    component: str
    title: str
    installed: bool | None  # None: unknown
    version: str | None = None
    method: str | None = None
    ready: bool | None = None
    reason: str = ""
    namespace: str = ""
    recorded: bool = False
    pinned: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        """Ready | NotReady | NotInstalled | Unknown."""
        if self.installed is None:
            return "Unknown"
        if not self.installed:
            return "NotInstalled"
        return "Ready" if self.ready else "NotReady"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "component": self.component,
            "title": self.title,
            "state": self.state,
            "installed": self.installed,
            "version": self.version,
            "pinned": self.pinned,
            "method": self.method,
            "ready": self.ready,
            "reason": self.reason,
            "namespace": self.namespace,
            "recordedByGpuscale": self.recorded,
            "checks": self.checks,
        }


@dataclass
class Status:
    """The whole report."""

    server: str
    components: list[ComponentStatus]
    prometheus: config.PrometheusRef | None
    external_metrics: str | None = None  # who serves v1beta1.external.metrics.k8s.io

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": "GpuscaleStatus",
            "server": self.server,
            "components": [c.to_dict() for c in self.components],
            "prometheus": {"url": self.prometheus.url, "source": self.prometheus.source}
            if self.prometheus
            else None,
            "externalMetricsAPI": self.external_metrics,
        }


def _component(cluster: Cluster, c: Component, record: config.InstallRecord | None) -> ComponentStatus:
    st = ComponentStatus(
        c.name, c.title, None, namespace=c.namespace, recorded=record is not None, pinned=c.version
    )
    try:
        found = preflight.find_installed(cluster, c)
        if c.name == "keda" and found:
            found = preflight.Installed(
                found.version, preflight.keda_method_from_names(cluster) or found.method, found.workload
            )
    except ForbiddenError as exc:
        st.reason = f"forbidden: {exc.why}"
        return st
    if found is None:
        st.installed = False
        crds_left = [
            crd
            for crd in c.crds
            if cluster.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)
        ]
        st.reason = f"{c.main_workload} not found in {c.namespace}" + (
            f"; its CRDs remain ({', '.join(crds_left)})" if crds_left else ""
        )
        return st
    st.installed = True
    st.version = found.version
    st.method = record.method if record else found.method
    method = "helm" if st.method == "helm" else "manifests"
    targets = [readiness.Target(kind, name, ns) for kind, ns, name in c.workload_names(method)]
    targets += [readiness.Target("CustomResourceDefinition", crd) for crd in c.crds]
    targets += [readiness.Target("APIService", svc) for svc in c.api_services]
    verdicts = readiness.check(cluster, targets)
    st.checks = [{"object": str(v.target), "ready": v.ready, "reason": v.reason} for v in verdicts]
    pending = [v for v in verdicts if not v.ready]
    st.ready = not pending
    st.reason = "; ".join(f"{v.target}: {v.reason}" for v in pending[:3]) if pending else "all checks pass"
    if found.version and found.version != c.version:
        st.reason += f" (pinned version is {c.version})"
    return st


def collect(cluster: Cluster, *, prometheus: str | None = None) -> Status:
    """Build the report. Raises only when the API server cannot be reached at all."""
    info = cluster.server_version()
    server = str(info.get("gitVersion") or "")
    data = config.read_cluster(cluster)
    recs = config.records(data or {})
    rows = []
    for c in COMPONENTS.values():
        try:
            row = _component(cluster, c, recs.get(c.name))
        except GpuscaleError as exc:
            if exc.__class__.__name__ == "UnreachableError":
                raise
            row = ComponentStatus(c.name, c.title, None, reason=exc.line(), namespace=c.namespace)
        if c.name == "prepull" and not row.installed:
            continue
        rows.append(row)
    if data is None:
        for row in rows:
            row.reason += f" (cannot read ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME}: forbidden)"
    external = None
    try:
        owner = preflight.external_metrics_owner(cluster)
        if owner:
            external = f"{owner[0]}/{owner[1]}"
            if not (owner[0] == "keda" and owner[1] in KEDA_METRICS_SERVICES):
                external += " (not KEDA: KEDA cannot serve external metrics here)"
    except ForbiddenError:
        external = f"unknown (forbidden to read APIService {EXTERNAL_METRICS_APISERVICE})"
    try:
        prom = config.prometheus_url(cluster, explicit=prometheus)
    except GpuscaleError:
        prom = None
    return Status(server, rows, prom, external)
