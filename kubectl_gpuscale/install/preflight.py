"""Preflight: everything `install` checks before touching the cluster, all problems reported at once.

The API server is reachable and recent enough; the user may create and patch every kind the
install writes (SelfSubjectAccessReview); no other external metrics adapter owns
v1beta1.external.metrics.k8s.io; the same component is not installed another way; GPU nodes
exist for the exporter and the pre-pull DaemonSet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import ConflictError, ForbiddenError, GpuscaleError, NotFoundError
from kubectl_gpuscale.install.catalog import (
    COMPONENTS,
    EXTERNAL_METRICS_APISERVICE,
    GPU_RESOURCE,
    KEDA,
    KEDA_METRICS_SERVICES,
    PROMETHEUS_OPERATOR_CRD,
    Component,
)
from kubectl_gpuscale.kube.resources import known
from kubectl_gpuscale.names import CONFIG_NAMESPACE, MANAGED_BY_LABEL

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster


@dataclass(frozen=True)
class Installed:
    """A component found in the cluster."""

    version: str | None
    method: str  # helm | manifests | unknown
    workload: str


@dataclass
class Facts:
    """What preflight learned, for the plan and the installers."""

    server_version: str = ""
    gpu_nodes: list[str] = field(default_factory=list)
    gpu_nodes_unlabelled: list[str] = field(default_factory=list)
    prometheus_operator: bool = False
    installed: dict[str, Installed] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """One reason not to proceed."""

    kind: str  # forbidden | conflict | version | missing
    text: str
    fix: str = ""


def parse_version(info: Mapping[str, Any]) -> tuple[int, int] | None:
    """(major, minor) of a `/version` document (minor like "30+" tolerated)."""
    try:
        major = int(re.sub(r"\D", "", str(info.get("major", ""))))
        minor = int(re.sub(r"\D", "", str(info.get("minor", ""))))
        return major, minor
    except ValueError:
        match = re.match(r"v?(\d+)\.(\d+)", str(info.get("gitVersion", "")))
        return (int(match.group(1)), int(match.group(2))) if match else None


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None for a digest-only or untagged one)."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    return last.rsplit(":", 1)[1].lstrip("v")


def installed_version(obj: Mapping[str, Any], hint: str = "") -> str | None:
    """The version a workload runs: its main image's tag, or the app.kubernetes.io/version label."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for c in containers:
        if not hint or hint in str(c.get("image", "")):
            tag = image_tag(str(c.get("image", "")))
            if tag:
                return tag.split("-distroless")[0].split("-ubuntu")[0]
    label = ((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/version")
    return str(label).lstrip("v") if label else None


def _managed_by_helm(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == "Helm" or "meta.helm.sh/release-name" in (
        meta.get("annotations") or {}
    )


def find_installed(cluster: Cluster, component: Component) -> Installed | None:
    """The component's main workload in the cluster, under its Helm or its manifest name."""
    main = next((w for w in component.workloads if component.main_workload in w.names), None)
    if main is None:
        return None
    api = "apps/v1"
    for name in main.names:
        obj = cluster.get_or_none(api, main.kind, name, main.namespace)
        if obj is not None:
            method = "helm" if _managed_by_helm(obj) else "manifests"
            return Installed(installed_version(obj, component.image_hint), method, name)
    return None


def keda_method_from_names(cluster: Cluster) -> str | None:
    """helm | manifests, from which metrics-apiserver Deployment name exists."""
    for w in KEDA.workloads:
        if len(w.names) > 1:
            if cluster.get_or_none("apps/v1", w.kind, w.helm_name, w.namespace):
                return "helm"
            if cluster.get_or_none("apps/v1", w.kind, w.manifest_name, w.namespace):
                return "manifests"
    return None


def external_metrics_owner(cluster: Cluster) -> tuple[str, str] | None:
    """(namespace, service) behind v1beta1.external.metrics.k8s.io, or None when it is not registered."""
    svc = cluster.get_or_none("apiregistration.k8s.io/v1", "APIService", EXTERNAL_METRICS_APISERVICE)
    if svc is None:
        return None
    ref = (svc.get("spec") or {}).get("service") or {}
    return str(ref.get("namespace", "")), str(ref.get("name", ""))


def gpu_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Nodes with allocatable nvidia.com/gpu > 0."""
    out = []
    for node in nodes:
        value = ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
        try:
            if value is not None and int(str(value)) > 0:
                out.append(node)
        except ValueError:
            continue
    return out


def plural_of(
    obj: Mapping[str, Any], crds: Mapping[tuple[str, str], str], cluster: Cluster | None
) -> tuple[str, str]:
    """(group, plural) of an object's kind: built-in table, the CRDs being installed, then discovery."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group = api_version.split("/")[0] if "/" in api_version else ""
    res = known(api_version, kind)
    if res:
        return group, res.plural
    if (group, kind) in crds:
        return group, crds[(group, kind)]
    if cluster is not None:
        try:
            return group, cluster.resource(api_version, kind).plural
        except GpuscaleError:
            pass
    lower = kind.lower()
    return group, lower + ("es" if lower.endswith("s") else "s")


def required_access(
    objects: Sequence[Mapping[str, Any]], cluster: Cluster | None = None
) -> list[tuple[str, str, str, str | None]]:
    """(verb, group, resource, namespace) the apply of `objects` needs: create and patch on each kind."""
    crds = {
        (
            (o.get("spec") or {}).get("group", ""),
            ((o.get("spec") or {}).get("names") or {}).get("kind", ""),
        ): ((o.get("spec") or {}).get("names") or {}).get("plural", "")
        for o in objects
        if o.get("kind") == "CustomResourceDefinition"
    }
    seen: list[tuple[str, str, str, str | None]] = []
    for obj in objects:
        group, plural = plural_of(obj, crds, cluster)
        ns = (obj.get("metadata") or {}).get("namespace")
        for verb in ("create", "patch"):
            key = (verb, group, plural, ns)
            if key not in seen:
                seen.append(key)
    return seen


HELM_ACCESS: dict[str, tuple[tuple[str, str], ...]] = {
    # (group, resource) a chart creates, checked for `create` when the objects are not known up front
    "keda": (
        ("", "namespaces"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("apps", "deployments"),
        ("", "services"),
        ("", "serviceaccounts"),
        ("apiregistration.k8s.io", "apiservices"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ),
    "keda-http": (
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("apps", "deployments"),
        ("", "services"),
        ("rbac.authorization.k8s.io", "clusterroles"),
    ),
    "dcgm": (
        ("", "namespaces"),
        ("apps", "daemonsets"),
        ("", "services"),
        ("", "configmaps"),
        ("", "serviceaccounts"),
    ),
}


def check_access(cluster: Cluster, wanted: Iterable[tuple[str, str, str, str | None]]) -> list[Problem]:
    """One SelfSubjectAccessReview per (verb, resource, namespace); a Problem for each denied."""
    problems = []
    for verb, group, resource, ns in wanted:
        if not cluster.can_i(verb, resource, group=group, namespace=ns):
            full = resource + (f".{group}" if group else "")
            problems.append(
                Problem(
                    "forbidden",
                    f"{verb} {full}" + (f" in {ns}" if ns else ""),
                    f"kubectl auth can-i {verb} {full}" + (f" -n {ns}" if ns else ""),
                )
            )
    return problems


def run(
    cluster: Cluster,
    plan_components: Sequence[tuple[str, str, str]],
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    node_selector: Mapping[str, str] | None = None,
    check_permissions: bool = True,
) -> Facts:
    """Check everything; raise one error listing every problem, or return the facts.

    Args:
        plan_components: (component, method, target version) in install order.
        objects: component -> the objects its manifests (or generator) will apply.
    """
    info = cluster.server_version()  # UnreachableError: a clear line already
    server_version = str(info.get("gitVersion") or f"{info.get('major')}.{info.get('minor')}")
    names = [c for c, _, _ in plan_components]
    operator, warnings = _prometheus_operator(cluster)
    installed, conflicts, changes = _installed(cluster, plan_components)
    keda_problems = _keda_problems(cluster, names)
    gpus, unlabelled, gpu_problems = _gpu_nodes(cluster, names, node_selector)
    problems = [
        *_too_old(plan_components, parse_version(info), server_version),
        *conflicts,
        *keda_problems,
        *gpu_problems,
    ]
    if check_permissions:
        problems.extend(check_access(cluster, _wanted_access(cluster, plan_components, objects)))
    if problems:
        raise _error(problems)
    return Facts(
        server_version=server_version,
        gpu_nodes=gpus,
        gpu_nodes_unlabelled=unlabelled,
        prometheus_operator=operator,
        installed=installed,
        warnings=[*warnings, *changes],
    )


def _too_old(
    plan_components: Sequence[tuple[str, str, str]], have: tuple[int, int] | None, server_version: str
) -> list[Problem]:
    """The components the cluster's Kubernetes version is too old for."""
    problems = []
    for name, _method, version in plan_components:
        c = COMPONENTS[name]
        if c.min_kubernetes and have and have < c.min_kubernetes:
            need = ".".join(map(str, c.min_kubernetes))
            problems.append(
                Problem(
                    "version",
                    f"{c.title} {version} needs Kubernetes {need}+, the cluster runs {server_version}",
                    "upgrade the cluster or pin an older --version",
                )
            )
    return problems


def _prometheus_operator(cluster: Cluster) -> tuple[bool, list[str]]:
    """Whether the Prometheus Operator's CRD is there (ServiceMonitors can be made), and a warning if unknown."""
    try:
        return cluster.get_or_none(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", PROMETHEUS_OPERATOR_CRD
        ) is not None, []
    except ForbiddenError:
        return False, ["cannot read CRDs: assuming no Prometheus Operator (no ServiceMonitor)"]


def _installed(
    cluster: Cluster, plan_components: Sequence[tuple[str, str, str]]
) -> tuple[dict[str, Installed], list[Problem], list[str]]:
    """The planned components already installed, the problems that makes (a second copy), and the version changes."""
    installed: dict[str, Installed] = {}
    problems: list[Problem] = []
    changes: list[str] = []
    for name, method, version in plan_components:
        c = COMPONENTS[name]
        try:
            found = find_installed(cluster, c)
        except ForbiddenError as exc:
            problems.append(Problem("forbidden", f"read {c.title}'s Deployments", exc.fix))
            continue
        if name == "keda" and found:
            by_names = keda_method_from_names(cluster)
            if by_names and found.method != "helm":
                found = Installed(found.version, by_names, found.workload)
        if found is None:
            continue
        installed[name] = found
        if (
            method in ("helm", "manifests")
            and found.method in ("helm", "manifests")
            and found.method != method
        ):
            problems.append(
                Problem(
                    "conflict",
                    f"{c.title} {found.version or '(unknown version)'} is already installed with "
                    f"{found.method}; installing with {method} would run a second copy",
                    f"re-run with --method {found.method}, or uninstall it first",
                )
            )
        elif found.version and found.version != version:
            changes.append(f"{c.title} {found.version} is installed: it will be changed to {version}")
    return installed, problems, changes


def _keda_problems(cluster: Cluster, names: Sequence[str]) -> list[Problem]:
    """Another external metrics adapter in KEDA's way; the HTTP add-on without KEDA."""
    problems: list[Problem] = []
    if "keda" in names:
        try:
            owner = external_metrics_owner(cluster)
        except ForbiddenError as exc:
            problems.append(Problem("forbidden", "get apiservices.apiregistration.k8s.io", exc.fix))
            owner = None
        if owner and not (owner[0] == KEDA.namespace and owner[1] in KEDA_METRICS_SERVICES):
            problems.append(
                Problem(
                    "conflict",
                    f"APIService {EXTERNAL_METRICS_APISERVICE} is served by Service {owner[0]}/{owner[1]} "
                    "(prometheus-adapter?); only one external metrics adapter can serve it",
                    "remove that adapter's external metrics API (prometheus-adapter: rules.external) or keep it "
                    "and do not install KEDA",
                )
            )
    if "keda-http" in names and "keda" not in names:
        crd = cluster.get_or_none(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "scaledobjects.keda.sh"
        )
        if crd is None:
            problems.append(
                Problem(
                    "missing",
                    "the KEDA HTTP add-on needs KEDA, which is not installed",
                    "kubectl gpuscale install keda keda-http",
                )
            )
    return problems


def _gpu_nodes(
    cluster: Cluster, names: Sequence[str], node_selector: Mapping[str, str] | None
) -> tuple[list[str], list[str], list[Problem]]:
    """For components that run on GPU nodes: those nodes, the ones `node_selector` misses, and the problems."""
    if not any(COMPONENTS[n].needs_gpu_nodes for n in names):
        return [], [], []
    problems: list[Problem] = []
    try:
        nodes = cluster.list("v1", "Node")
    except ForbiddenError as exc:
        problems.append(Problem("forbidden", "list nodes", exc.fix))
        nodes = []
    gpus = gpu_nodes(nodes)
    if nodes and not gpus:
        wanting = ", ".join(n for n in names if COMPONENTS[n].needs_gpu_nodes)
        problems.append(
            Problem(
                "missing",
                f"no node has allocatable {GPU_RESOURCE} ({wanting} would run nowhere)",
                "install the NVIDIA device plugin or GPU Operator first",
            )
        )
    unlabelled = [
        str((n.get("metadata") or {}).get("name"))
        for n in gpus
        if any(
            ((n.get("metadata") or {}).get("labels") or {}).get(k) != v
            for k, v in (node_selector or {}).items()
        )
    ]
    return [str((n.get("metadata") or {}).get("name")) for n in gpus], unlabelled, problems


def _wanted_access(
    cluster: Cluster,
    plan_components: Sequence[tuple[str, str, str]],
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[tuple[str, str, str, str | None]]:
    """The (verb, group, resource, namespace) the install needs, each once, in order."""
    wanted: list[tuple[str, str, str, str | None]] = []
    for name, method, _ in plan_components:
        if method == "helm":
            ns = COMPONENTS[name].namespace
            for group, resource in HELM_ACCESS.get(name, ()):
                scoped = (
                    ns
                    if resource in ("deployments", "daemonsets", "services", "configmaps", "serviceaccounts")
                    else None
                )
                wanted.append(("create", group, resource, scoped))
        else:
            wanted.extend(w for w in required_access(objects.get(name, ()), cluster) if w not in wanted)
    wanted.append(("patch", "", "configmaps", CONFIG_NAMESPACE))
    return list(dict.fromkeys(wanted))


def _error(problems: list[Problem]) -> GpuscaleError:
    denied = [p for p in problems if p.kind == "forbidden"]
    if denied:
        checks = "; ".join(p.fix for p in denied[:3] if p.fix)
        return ForbiddenError(
            "preflight failed: missing permissions",
            "not allowed to " + ", ".join(p.text for p in denied),
            f"ask a cluster admin for these (check with: {checks})"
            if checks
            else "ask a cluster admin for these",
        )
    first = problems[0]
    why = "; ".join(p.text for p in problems)
    fix = "; ".join(dict.fromkeys(p.fix for p in problems if p.fix))
    if any(p.kind == "conflict" for p in problems):
        return ConflictError("preflight failed", why, fix)
    if first.kind == "missing":
        return NotFoundError("preflight failed", why, fix)
    return GpuscaleError("preflight failed", why, fix)
