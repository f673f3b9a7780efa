"""The component catalog: every pinned version, chart, release URL and digest `install` uses.

One place per fact: the plan, the installers, readiness, `status` and
`uninstall` read these entries and never spell a version, a URL or a
Deployment name themselves. Pure data (no kubernetes, no click).

Versions are the latest seen in ../shared/reference/keda_knative.md (Aug 2026).
Digests: `DIGESTS` holds the published sha256 of release files (none yet, see
there); a file with no pin is downloaded with a warning that prints its digest,
which is then recorded and checked on every reuse (`manifests.fetch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubectl_gpuscale.names import CONFIG_NAMESPACE

# The external metrics APIService; only one adapter per cluster may serve it.
EXTERNAL_METRICS_APISERVICE = "v1beta1.external.metrics.k8s.io"
GPU_RESOURCE = "nvidia.com/gpu"
PROMETHEUS_OPERATOR_CRD = "servicemonitors.monitoring.coreos.com"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
KOURIER_INGRESS_CLASS = "kourier.ingress.networking.knative.dev"

# (file name) -> sha256 of the upstream release file, each with its source beside it. Pin only a digest
# the project publishes (a checksums file on the release page, a Helm repository index `digest:`).
# Empty: none could be sourced for the pinned versions when this was written. The stored kedacore/charts
# docs/index.yaml ends at chart 2.9.3 (not 2.20.2 / http-add-on 0.15.0); no NVIDIA dcgm-exporter Helm
# index nor knative-v1.23.0 / net-kourier checksums were readable. Without a pin, every file's sha256
# is shown in the plan, kept in the install record and beside the cached copy, and re-checked on reuse.
DIGESTS: dict[str, str] = {}


@dataclass(frozen=True)
class Artifact:
    """One release manifest file: its name (in a --manifests dir and the cache), URL and pinned sha256."""

    file: str
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class HelmChart:
    """A Helm chart: repository URL, chart name, release name."""

    repo_url: str
    chart: str
    release: str
    # app version -> chart version ("suffix": the part after the last '-', as dcgm-exporter tags are
    # "<dcgm>-<exporter>" while its chart is versioned by the exporter alone).
    version_from: str = "same"

    def chart_version(self, version: str) -> str:
        """The chart version that ships `version`."""
        return version.rsplit("-", 1)[-1] if self.version_from == "suffix" else version


@dataclass(frozen=True)
class Workload:
    """A Deployment or DaemonSet a component runs; `names` lists its name under Helm and under the manifests."""

    kind: str
    namespace: str
    names: tuple[str, ...]

    @property
    def helm_name(self) -> str:
        """The name the Helm chart gives it."""
        return self.names[0]

    @property
    def manifest_name(self) -> str:
        """The name the release manifest gives it."""
        return self.names[-1]


@dataclass(frozen=True)
class Scope:
    """Where a component's release (manifests, chart, or what `install` generates) can put objects.

    `uninstall` deletes nothing outside it, whatever the install record says. `namespaces`:
    namespaced objects of any kind there (and these Namespace objects); `cluster`: (kind, name
    glob) of cluster-scoped objects; `elsewhere`: (kind, namespace, name glob) of namespaced
    objects outside `namespaces` (KEDA's RoleBinding in kube-system).
    """

    namespaces: tuple[str, ...]
    cluster: tuple[tuple[str, str], ...] = ()
    elsewhere: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Component:
    """One installable component."""

    name: str
    title: str
    version: str
    namespace: str
    helm: HelmChart | None
    # (file template, URL template); both may use {version}
    manifests: tuple[tuple[str, str], ...]
    workloads: tuple[Workload, ...]
    crds: tuple[str, ...] = ()
    api_services: tuple[str, ...] = ()
    # (namespace, service, port) that must answer HTTP through the service proxy (an ingress gateway)
    probes: tuple[tuple[str, str, int], ...] = ()
    min_kubernetes: tuple[int, int] | None = None
    requires: tuple[str, ...] = ()
    needs_gpu_nodes: bool = False
    image_hint: str = ""  # a substring of the main container image, to read the installed version
    main_workload: str = ""  # the workload whose image tag is the installed version
    notes: tuple[str, ...] = field(default=())
    scope: Scope = Scope(())

    def artifacts(self, version: str | None = None) -> tuple[Artifact, ...]:
        """The release files of `version` (default: the pin), with their recorded digests."""
        v = version or self.version
        out = []
        for file_t, url_t in self.manifests:
            file = file_t.format(version=v)
            out.append(Artifact(file, url_t.format(version=v), DIGESTS.get(file)))
        return tuple(out)

    def workload_names(self, method: str) -> tuple[tuple[str, str, str], ...]:
        """(kind, namespace, name) of each workload for an install `method` (helm | manifests)."""
        return tuple(
            (w.kind, w.namespace, w.helm_name if method == "helm" else w.manifest_name)
            for w in self.workloads
        )


KEDA = Component(
    name="keda",
    title="KEDA",
    version="2.20.2",
    namespace="keda",
    helm=HelmChart("https://kedacore.github.io/charts", "keda", "keda"),
    manifests=(
        (
            "keda-{version}.yaml",
            "https://github.com/kedacore/keda/releases/download/v{version}/keda-{version}.yaml",
        ),
    ),
    workloads=(
        Workload("Deployment", "keda", ("keda-operator",)),
        Workload("Deployment", "keda", ("keda-operator-metrics-apiserver", "keda-metrics-apiserver")),
        Workload("Deployment", "keda", ("keda-admission-webhooks", "keda-admission")),
    ),
    crds=(
        "scaledobjects.keda.sh",
        "scaledjobs.keda.sh",
        "triggerauthentications.keda.sh",
        "clustertriggerauthentications.keda.sh",
    ),
    api_services=(EXTERNAL_METRICS_APISERVICE,),
    min_kubernetes=(1, 30),
    image_hint="kedacore/keda",
    main_workload="keda-operator",
    # config/ of kedacore/keda (kustomize): CRDs *.keda.sh and *.eventing.keda.sh, ClusterRoles and
    # ClusterRoleBindings keda-* (and keda:edit, keda:view: config/rbac/aggregate_cluster_roles.yaml),
    # ValidatingWebhookConfiguration keda-admission, the external metrics
    # APIService, and RoleBinding keda-auth-reader in kube-system (config/metrics-server/role_binding.yaml).
    scope=Scope(
        ("keda",),
        cluster=(
            ("CustomResourceDefinition", "*.keda.sh"),
            ("ClusterRole", "keda-*"),
            ("ClusterRole", "keda:*"),
            ("ClusterRoleBinding", "keda-*"),
            ("ValidatingWebhookConfiguration", "keda-*"),
            ("APIService", EXTERNAL_METRICS_APISERVICE),
        ),
        elsewhere=(("RoleBinding", "kube-system", "keda-*"),),
    ),
)

KEDA_HTTP = Component(
    name="keda-http",
    title="KEDA HTTP add-on",
    version="0.15.0",
    namespace="keda",
    helm=HelmChart("https://kedacore.github.io/charts", "keda-add-ons-http", "http-add-on"),
    manifests=(
        (
            "keda-add-ons-http-{version}-crds.yaml",
            "https://github.com/kedacore/http-add-on/releases/download/v{version}/keda-add-ons-http-{version}-crds.yaml",
        ),
        (
            "keda-add-ons-http-{version}.yaml",
            "https://github.com/kedacore/http-add-on/releases/download/v{version}/keda-add-ons-http-{version}.yaml",
        ),
    ),
    workloads=(
        Workload("Deployment", "keda", ("keda-add-ons-http-controller-manager",)),
        Workload("Deployment", "keda", ("keda-add-ons-http-external-scaler",)),
        Workload("Deployment", "keda", ("keda-add-ons-http-interceptor",)),
    ),
    crds=("httpscaledobjects.http.keda.sh",),
    min_kubernetes=(1, 30),
    requires=("keda",),
    image_hint="kedacore/http-add-on-interceptor",
    main_workload="keda-add-ons-http-interceptor",
    # kedacore/http-add-on config/default/kustomization.yaml: namespace keda, namePrefix keda-add-ons-http-.
    scope=Scope(
        ("keda",),
        cluster=(
            ("CustomResourceDefinition", "*.http.keda.sh"),
            ("ClusterRole", "keda-add-ons-http-*"),
            ("ClusterRoleBinding", "keda-add-ons-http-*"),
        ),
    ),
)

KNATIVE = Component(
    name="knative",
    title="Knative Serving + Kourier",
    version="1.23.0",
    namespace="knative-serving",
    helm=None,  # Knative publishes no Helm chart for Serving: always the release manifests
    manifests=(
        (
            "serving-crds-{version}.yaml",
            "https://github.com/knative/serving/releases/download/knative-v{version}/serving-crds.yaml",
        ),
        (
            "serving-core-{version}.yaml",
            "https://github.com/knative/serving/releases/download/knative-v{version}/serving-core.yaml",
        ),
        (
            "kourier-{version}.yaml",
            "https://github.com/knative-extensions/net-kourier/releases/download/knative-v{version}/kourier.yaml",
        ),
    ),
    workloads=(
        Workload("Deployment", "knative-serving", ("activator",)),
        Workload("Deployment", "knative-serving", ("autoscaler",)),
        Workload("Deployment", "knative-serving", ("controller",)),
        Workload("Deployment", "knative-serving", ("webhook",)),
        Workload("Deployment", "knative-serving", ("net-kourier-controller",)),
        Workload("Deployment", "kourier-system", ("3scale-kourier-gateway",)),
    ),
    crds=(
        "services.serving.knative.dev",
        "revisions.serving.knative.dev",
        "configurations.serving.knative.dev",
        "routes.serving.knative.dev",
    ),
    probes=(("kourier-system", "kourier", 80),),  # Kourier's Envoy answers (404 for an unknown host)
    image_hint="knative-releases/knative.dev/serving/cmd/controller",
    main_workload="controller",
    # serving-crds/serving-core (CRDs *.knative.dev, ClusterRoles knative-serving-*, webhooks
    # *.knative.dev) and kourier.yaml (namespace kourier-system, ClusterRole/Binding net-kourier).
    scope=Scope(
        ("knative-serving", "kourier-system"),
        cluster=(
            ("CustomResourceDefinition", "*.knative.dev"),
            ("ClusterRole", "knative-serving-*"),
            ("ClusterRoleBinding", "knative-serving-*"),
            ("ClusterRole", "net-kourier*"),
            ("ClusterRoleBinding", "net-kourier*"),
            ("ValidatingWebhookConfiguration", "*.knative.dev"),
            ("MutatingWebhookConfiguration", "*.knative.dev"),
        ),
    ),
)

DCGM = Component(
    name="dcgm",
    title="NVIDIA DCGM exporter",
    version="4.5.3-4.8.2",
    namespace="gpu-monitoring",
    helm=HelmChart(
        "https://nvidia.github.io/dcgm-exporter/helm-charts",
        "dcgm-exporter",
        "dcgm-exporter",
        version_from="suffix",
    ),
    manifests=(
        (
            "dcgm-exporter-{version}.yaml",
            "https://raw.githubusercontent.com/NVIDIA/dcgm-exporter/{version}/dcgm-exporter.yaml",
        ),
    ),
    workloads=(Workload("DaemonSet", "gpu-monitoring", ("dcgm-exporter",)),),
    needs_gpu_nodes=True,
    image_hint="k8s/dcgm-exporter",
    main_workload="dcgm-exporter",
    scope=Scope(("gpu-monitoring",)),
)

PREPULL = Component(
    name="prepull",
    title="Inference image pre-pull",
    version="1",
    namespace=CONFIG_NAMESPACE,
    helm=None,
    manifests=(),  # generated: one DaemonSet, see prepull.py
    workloads=(Workload("DaemonSet", CONFIG_NAMESPACE, ("gpuscale-image-prepuller",)),),
    needs_gpu_nodes=True,
    main_workload="gpuscale-image-prepuller",
    scope=Scope((CONFIG_NAMESPACE,)),
)

COMPONENTS: dict[str, Component] = {c.name: c for c in (KEDA, KEDA_HTTP, KNATIVE, DCGM, PREPULL)}
# `install all` installs these, in this order (a dependency before what needs it)
ALL_ORDER: tuple[str, ...] = ("keda", "keda-http", "knative", "dcgm")

# Where each component's dependents live: (apiVersion, kind) of objects that stop working without it.
DEPENDENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "keda": (("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "ScaledJob")),
    "keda-http": (("http.keda.sh/v1alpha1", "HTTPScaledObject"),),
    "knative": (("serving.knative.dev/v1", "Service"),),
    "dcgm": (),
    "prepull": (),
}

# The metrics-apiserver Services KEDA registers behind the external metrics APIService (helm, manifest).
KEDA_METRICS_SERVICES: tuple[str, ...] = ("keda-operator-metrics-apiserver", "keda-metrics-apiserver")


def component(name: str) -> Component:
    """The catalog entry called `name`; KeyError lists the valid names."""
    try:
        return COMPONENTS[name]
    except KeyError:
        raise KeyError(f"unknown component {name!r}; one of {', '.join(COMPONENTS)}") from None
