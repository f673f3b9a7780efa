"""Where each kind lives in the REST API: group/version, plural, namespaced.

Pure data (no kubernetes import). Kinds not listed here are found through
discovery by `Cluster.resource`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """A REST resource: ``/apis/{group}/{version}/namespaces/{ns}/{plural}``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group ('' for core)."""
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.api_version}" if "/" in self.api_version else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


KNOWN: tuple[Resource, ...] = (
    Resource("v1", "Pod", "pods"),
    Resource("v1", "Service", "services"),
    Resource("v1", "ConfigMap", "configmaps"),
    Resource("v1", "Secret", "secrets"),
    Resource("v1", "Event", "events"),
    Resource("v1", "Namespace", "namespaces", namespaced=False),
    Resource("v1", "Node", "nodes", namespaced=False),
    Resource("v1", "ServiceAccount", "serviceaccounts"),
    Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Resource("events.k8s.io/v1", "Event", "events"),
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("apps/v1", "DaemonSet", "daemonsets"),
    Resource("apps/v1", "ReplicaSet", "replicasets"),
    Resource("batch/v1", "Job", "jobs"),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
    ),
    Resource("apiregistration.k8s.io/v1", "APIService", "apiservices", namespaced=False),
    Resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    Resource("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    Resource("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Resource(
        "authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False
    ),
    Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
    Resource("keda.sh/v1alpha1", "ScaledJob", "scaledjobs"),
    Resource("keda.sh/v1alpha1", "TriggerAuthentication", "triggerauthentications"),
    Resource(
        "keda.sh/v1alpha1", "ClusterTriggerAuthentication", "clustertriggerauthentications", namespaced=False
    ),
    Resource("http.keda.sh/v1alpha1", "HTTPScaledObject", "httpscaledobjects"),
    Resource("serving.knative.dev/v1", "Service", "services"),
    Resource("serving.knative.dev/v1", "Revision", "revisions"),
    Resource("serving.knative.dev/v1", "Configuration", "configurations"),
    Resource("serving.knative.dev/v1", "Route", "routes"),
    Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
    Resource("monitoring.coreos.com/v1", "PodMonitor", "podmonitors"),
    Resource("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "leaderworkersets"),
)

_BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in KNOWN}

# kubectl-style short names and plurals for `TYPE/NAME` arguments (deploy/vllm, sts/x, hpa/y)
ALIASES: dict[str, tuple[str, str]] = {
    "deploy": ("apps/v1", "Deployment"),
    "deployment": ("apps/v1", "Deployment"),
    "deployments": ("apps/v1", "Deployment"),
    "sts": ("apps/v1", "StatefulSet"),
    "statefulset": ("apps/v1", "StatefulSet"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "po": ("v1", "Pod"),
    "pod": ("v1", "Pod"),
    "pods": ("v1", "Pod"),
    "hpa": ("autoscaling/v2", "HorizontalPodAutoscaler"),
    "horizontalpodautoscaler": ("autoscaling/v2", "HorizontalPodAutoscaler"),
    "so": ("keda.sh/v1alpha1", "ScaledObject"),
    "scaledobject": ("keda.sh/v1alpha1", "ScaledObject"),
    "ksvc": ("serving.knative.dev/v1", "Service"),
    "lws": ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    "leaderworkerset": ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
}


def known(api_version: str, kind: str) -> Resource | None:
    """The built-in `Resource` for a kind, or None when discovery must find it."""
    return _BY_KIND.get((api_version, kind))


def split_ref(ref: str, default_kind: tuple[str, str] = ("v1", "Pod")) -> tuple[str, str, str]:
    """Parse ``TYPE/NAME`` (``deploy/vllm``) or a bare ``NAME`` into (apiVersion, kind, name).

    Raises:
        ValueError: when TYPE is not a kind this tool knows.
    """
    if "/" not in ref:
        return default_kind[0], default_kind[1], ref
    kind_part, name = ref.split("/", 1)
    key = kind_part.lower().split(".")[0]
    if key not in ALIASES or not name:
        raise ValueError(f"unknown resource type {kind_part!r} in {ref!r}")
    api_version, kind = ALIASES[key]
    return api_version, kind, name
