"""The resource types the test API server serves: built-in groups, optional add-on groups, CRDs.

`ResourceType` carries what discovery advertises (kind, plural, namespaced,
verbs, shortNames, subresources) and what the server needs to handle the
``scale`` subresource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps its replicas for the ``scale`` subresource (CRD ``subresources.scale``)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None  # None: build it from .spec.selector (Deployment/StatefulSet)


@dataclass(frozen=True)
class ResourceType:
    """One REST resource of one group, served in one or more versions (shared storage)."""

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status: bool = False
    scale: ScalePaths | None = None
    extra_subresources: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (name, kind, verbs)
    categories: tuple[str, ...] = ()
    custom: bool = False  # a CustomResource: list items keep kind/apiVersion
    singular: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Storage key (group, plural)."""
        return (self.group, self.plural)

    def qualified(self) -> str:
        """``deployments.apps`` (``pods`` for core), as Status messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        """``apps/v1`` or ``v1``."""
        return f"{self.group}/{version}" if self.group else version

    def discovery(self, version: str) -> list[dict[str, Any]]:
        """The APIResource entries for this type (and its subresources) in one version."""
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        out = [main]
        if self.status:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.scale:
            out.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        for name, kind, verbs in self.extra_subresources:
            out.append(
                {
                    "name": f"{self.plural}/{name}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": kind,
                    "verbs": list(verbs),
                }
            )
        return out


def _t(group: str, versions: str, kind: str, plural: str, **kw: Any) -> ResourceType:
    return ResourceType(group, tuple(versions.split(",")), kind, plural, **kw)


_WORKLOAD_SCALE = ScalePaths()
_RO = ("get", "list", "watch")

CORE_TYPES: tuple[ResourceType, ...] = (
    _t(
        "",
        "v1",
        "Pod",
        "pods",
        short_names=("po",),
        status=True,
        categories=("all",),
        extra_subresources=(
            ("log", "Pod", ("get",)),
            ("exec", "PodExecOptions", ("create", "get")),
            ("eviction", "Eviction", ("create",)),
        ),
    ),
    _t("", "v1", "Service", "services", short_names=("svc",), status=True, categories=("all",)),
    _t("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _t("", "v1", "Secret", "secrets"),
    _t("", "v1", "Event", "events", short_names=("ev",)),
    _t(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _t(
        "",
        "v1",
        "Node",
        "nodes",
        namespaced=False,
        short_names=("no",),
        status=True,
        extra_subresources=(("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),),
    ),
    _t("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _t("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), status=True),
    _t("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short_names=("pv",), status=True),
    _t("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    _t("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), status=True),
    _t("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
)

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    *CORE_TYPES,
    _t(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        status=True,
        scale=_WORKLOAD_SCALE,
        categories=("all",),
    ),
    _t(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        status=True,
        scale=_WORKLOAD_SCALE,
        categories=("all",),
    ),
    _t(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        status=True,
        scale=_WORKLOAD_SCALE,
        categories=("all",),
    ),
    _t("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), status=True, categories=("all",)),
    _t("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _t("batch", "v1", "Job", "jobs", status=True, categories=("all",)),
    _t("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), status=True, categories=("all",)),
    _t(
        "autoscaling",
        "v2,v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        status=True,
        categories=("all",),
    ),
    _t("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), status=True),
    _t("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False, short_names=("pc",)),
    _t("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", namespaced=False),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        status=True,
        categories=("api-extensions",),
    ),
    _t(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        namespaced=False,
        status=True,
        categories=("api-extensions",),
    ),
    _t(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
    ),
    _t(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=("create",),
    ),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _t("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _t("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    _t("coordination.k8s.io", "v1", "Lease", "leases"),
    _t("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), status=True),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
    ),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        namespaced=False,
    ),
)

# Add-on groups a test can switch off (a cluster without KEDA, without Knative, ...).
OPTIONAL_TYPES: dict[str, tuple[ResourceType, ...]] = {
    "keda.sh": (
        _t(
            "keda.sh",
            "v1alpha1",
            "ScaledObject",
            "scaledobjects",
            short_names=("so",),
            status=True,
            custom=True,
            categories=("keda", "all"),
        ),
        _t(
            "keda.sh",
            "v1alpha1",
            "ScaledJob",
            "scaledjobs",
            short_names=("sj",),
            status=True,
            custom=True,
            categories=("keda", "all"),
        ),
        _t(
            "keda.sh",
            "v1alpha1",
            "TriggerAuthentication",
            "triggerauthentications",
            short_names=("ta", "triggerauth"),
            status=True,
            custom=True,
            categories=("keda", "all"),
        ),
        _t(
            "keda.sh",
            "v1alpha1",
            "ClusterTriggerAuthentication",
            "clustertriggerauthentications",
            namespaced=False,
            short_names=("cta", "clustertriggerauth"),
            status=True,
            custom=True,
            categories=("keda", "all"),
        ),
    ),
    "http.keda.sh": (
        _t(
            "http.keda.sh",
            "v1alpha1",
            "HTTPScaledObject",
            "httpscaledobjects",
            short_names=("httpso",),
            status=True,
            custom=True,
        ),
    ),
    "serving.knative.dev": (
        _t(
            "serving.knative.dev",
            "v1",
            "Service",
            "services",
            short_names=("kservice", "ksvc"),
            status=True,
            custom=True,
            categories=("all", "knative", "serving"),
        ),
        _t(
            "serving.knative.dev",
            "v1",
            "Configuration",
            "configurations",
            short_names=("config", "cfg"),
            status=True,
            custom=True,
            categories=("all", "knative", "serving"),
        ),
        _t(
            "serving.knative.dev",
            "v1",
            "Revision",
            "revisions",
            short_names=("rev",),
            status=True,
            custom=True,
            categories=("all", "knative", "serving"),
        ),
        _t(
            "serving.knative.dev",
            "v1",
            "Route",
            "routes",
            short_names=("rt",),
            status=True,
            custom=True,
            categories=("all", "knative", "serving"),
        ),
    ),
    "external.metrics.k8s.io": (
        _t(
            "external.metrics.k8s.io", "v1beta1", "ExternalMetricValueList", "externalmetrics", verbs=("get",)
        ),
    ),
}


def crd_types(crd: Mapping[str, Any]) -> tuple[ResourceType, ...]:
    """The resource type a CustomResourceDefinition declares (one per distinct subresource layout).

    Raises:
        ValueError: the CRD lacks spec.group, spec.names.plural/kind or served versions.
    """
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not group or not plural or not kind or not versions:
        raise ValueError("spec.group, spec.names.plural, spec.names.kind and a served version are required")
    storage_first = sorted(versions, key=lambda v: not v.get("storage", False))
    subresources = storage_first[0].get("subresources") or {}
    scale_spec = subresources.get("scale")
    scale = None
    if scale_spec is not None:
        scale = ScalePaths(
            scale_spec.get("specReplicasPath", ".spec.replicas"),
            scale_spec.get("statusReplicasPath", ".status.replicas"),
            scale_spec.get("labelSelectorPath") or "",
        )
    return (
        ResourceType(
            group,
            tuple(v["name"] for v in versions),
            kind,
            plural,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status="status" in subresources,
            scale=scale,
            custom=True,
            singular=names.get("singular") or kind.lower(),
        ),
    )
