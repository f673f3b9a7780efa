"""Detect the target versions in a cluster: operator image tags and labels, the served CRD
schemas, the API server's /version. Talks only through the `Cluster` gateway passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.facts.versions import (
    COMPONENTS,
    CRDS,
    Targets,
    Version,
    crd_fields,
    find_version,
    pinned_targets,
)

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

GIVEN_SOURCE = "--target-versions"
# Labels that name a component's operator Deployment wherever it was installed.
OPERATOR_SELECTORS: dict[str, tuple[str, ...]] = {
    "keda": ("app.kubernetes.io/name=keda-operator", "app=keda-operator"),
    "keda-http": (
        "app.kubernetes.io/component=interceptor,app.kubernetes.io/part-of=keda-add-ons-http",
        "app.kubernetes.io/name=http-add-on,app.kubernetes.io/component=interceptor",
    ),
    "knative": ("app.kubernetes.io/name=knative-serving,app.kubernetes.io/component=controller",),
}


def workload_version(obj: Mapping[str, Any]) -> tuple[Version | None, str]:
    """(version, where it was read) from a Deployment: the version label, else its first image's tag."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key in ("app.kubernetes.io/version", "serving.knative.dev/release", "version"):
        found = find_version(str(labels.get(key) or ""))
        if found:
            return found, f"label {key}"
    for c in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        image = str(c.get("image") or "")
        tag = image.rsplit("@", 1)[0].rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        found = find_version(tag)
        if found:
            return found, "image tag"
    return None, ""


def _operator(cluster: Cluster, component: str) -> tuple[Version | None, str]:
    from kubectl_gpuscale.install.catalog import COMPONENTS as CATALOG

    entry = CATALOG[component]
    main = next((w for w in entry.workloads if entry.main_workload in w.names), None)
    if main is not None:
        for name in main.names:
            obj = cluster.get_or_none("apps/v1", main.kind, name, main.namespace)
            if obj is not None:
                version, where = workload_version(obj)
                if version:
                    return version, f"detected: {main.namespace}/{name} {where}"
    for selector in OPERATOR_SELECTORS.get(component, ()):
        for obj in cluster.list("apps/v1", "Deployment", None, label_selector=selector):
            version, where = workload_version(obj)
            if version:
                meta = obj.get("metadata") or {}
                return version, f"detected: {meta.get('namespace')}/{meta.get('name')} {where}"
    return None, ""


def detect_targets(cluster: Cluster, given: Mapping[str, Version] | None = None) -> Targets:
    """The target versions of a cluster: ``given`` ones win, the rest are detected.

    A component not found stays unknown (rules then take the cautious branch); the served CRD
    schemas are recorded so that feature detection wins over version numbers. Read failures
    (403, an add-on not installed) leave a component unknown rather than failing the command.
    """
    targets = Targets()
    if given:
        targets = targets.with_versions(dict(given), GIVEN_SOURCE)
    for component in ("keda", "keda-http", "knative"):
        if component not in targets.versions:
            try:
                version, where = _operator(cluster, component)
            except GpuscaleError:
                version, where = None, ""
            targets = (
                targets.with_versions({component: version}, where)
                if version
                else targets.with_source(component, "not found in the cluster")
            )
        crd = CRDS.get(component)
        if crd:
            try:
                obj = cluster.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)
            except GpuscaleError:
                obj = None
            if obj is not None:
                targets = targets.with_fields(component, crd_fields(obj))
                labelled = find_version(
                    str(
                        ((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/version")
                        or ""
                    )
                )
                if targets.get(component) is None and labelled:
                    targets = targets.with_versions(
                        {component: labelled}, f"detected: CRD {crd} label app.kubernetes.io/version"
                    )
    if "kubernetes" not in targets.versions:
        try:
            info = cluster.server_version()
            found = find_version(str(info.get("gitVersion") or f"{info.get('major')}.{info.get('minor')}"))
        except GpuscaleError:
            found = None
        if found:
            targets = targets.with_versions({"kubernetes": found}, "detected: API server /version")
    return targets


def offline_targets(given: Mapping[str, Version] | None = None) -> Targets:
    """Without a cluster: ``given`` versions over the pinned install versions (said so in the sources)."""
    targets = pinned_targets()
    if given:
        targets = targets.with_versions(dict(given), GIVEN_SOURCE)
    return targets


__all__ = ["COMPONENTS", "detect_targets", "offline_targets", "workload_version"]
