"""Which objects `install` created, and which ones `uninstall` may therefore delete.

Every object `install` creates carries the managed-by label, the component label and an
install id (label), plus the version (annotation). An object that existed before is
"adopted": applied without those marks, recorded apart, never deleted.

`uninstall` trusts neither the install record (a ConfigMap anyone with edit rights can
change) nor a name: each recorded object must lie inside what the component's release can
contain (`outside_catalogue`) and the live object must carry this install's marks
(`not_created_by`). Pure: plain dicts in, reasons out.
"""

from __future__ import annotations

import copy
import fnmatch
import uuid
from collections.abc import Mapping
from typing import Any

from kubectl_gpuscale.install.catalog import Component
from kubectl_gpuscale.names import (
    COMPONENT_LABEL,
    INSTALL_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MANAGED_LABELS,
    VERSION_ANNOTATION,
)

# The API group each cluster-scoped kind a release may hold lives in.
CLUSTER_KIND_GROUPS: dict[str, str] = {
    "Namespace": "",
    "CustomResourceDefinition": "apiextensions.k8s.io",
    "ClusterRole": "rbac.authorization.k8s.io",
    "ClusterRoleBinding": "rbac.authorization.k8s.io",
    "APIService": "apiregistration.k8s.io",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io",
    "MutatingWebhookConfiguration": "admissionregistration.k8s.io",
}


def new_install_id() -> str:
    """A fresh install id (a valid label value)."""
    return uuid.uuid4().hex[:16]


def ownership_labels(component: str, install_id: str) -> dict[str, str]:
    """The labels on every object an install of `component` creates."""
    return {**MANAGED_LABELS, COMPONENT_LABEL: component, INSTALL_ID_LABEL: install_id}


def stamp(obj: Mapping[str, Any], component: str, version: str, install_id: str) -> dict[str, Any]:
    """A copy of `obj` carrying this install's labels and version annotation."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **ownership_labels(component, install_id)}
    meta["annotations"] = {**(meta.get("annotations") or {}), VERSION_ANNOTATION: version}
    return out


def unstamp(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` without any of our ownership marks (how an adopted object is applied)."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    labels = {
        k: v
        for k, v in (meta.get("labels") or {}).items()
        if k not in (COMPONENT_LABEL, INSTALL_ID_LABEL) and not (k == MANAGED_BY_LABEL and v == MANAGED_BY)
    }
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != VERSION_ANNOTATION}
    for key, value in (("labels", labels), ("annotations", annotations)):
        if value:
            meta[key] = value
        else:
            meta.pop(key, None)
    return out


def adopt(obj: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """How an object that existed before is applied: without our marks, except the ones it already
    carries (another component's install created it). Server-side apply drops fields a manager stops
    sending, so leaving those out would strip the creator's labels."""
    out = unstamp(obj)
    live_meta = live.get("metadata") or {}
    kept_labels = {
        k: v
        for k, v in (live_meta.get("labels") or {}).items()
        if k in (COMPONENT_LABEL, INSTALL_ID_LABEL) or (k == MANAGED_BY_LABEL and v == MANAGED_BY)
    }
    kept_annotations = {
        k: v for k, v in (live_meta.get("annotations") or {}).items() if k == VERSION_ANNOTATION
    }
    meta = out["metadata"]
    if kept_labels:
        meta["labels"] = {**(meta.get("labels") or {}), **kept_labels}
    if kept_annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **kept_annotations}
    return out


def not_created_by(live: Mapping[str, Any], component: str, install_id: str | None) -> str | None:
    """Why the live object was not created by this install of `component` (None: it was)."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    wanted = ownership_labels(component, install_id or "")
    if not install_id:
        return "the install record has no install id (written by an older kubectl-gpuscale)"
    for key, value in wanted.items():
        if labels.get(key) != value:
            have = f"{labels[key]!r}" if key in labels else "absent"
            return f"label {key} is {have}, not {value!r}"
    return None


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def outside_catalogue(component: Component, ref: Any) -> str | None:
    """Why a recorded object cannot belong to `component`'s release (None: it can).

    Namespaced objects must be in one of the component's namespaces (or match one of its
    `scope.elsewhere` rules); cluster-scoped ones must match a `scope.cluster` rule
    (kind and name pattern), and a Namespace must be one of the component's own.
    """
    fields = ("apiVersion", "kind", "name")
    if (
        not isinstance(ref, Mapping)
        or not all(isinstance(ref.get(k), str) and ref.get(k) for k in fields)
        or not isinstance(ref.get("namespace", ""), str)
    ):
        return "the entry is not an object reference (apiVersion, kind, name)"
    kind, name, namespace = ref["kind"], ref["name"], ref.get("namespace") or ""
    scope = component.scope
    if kind in CLUSTER_KIND_GROUPS and _group(ref["apiVersion"]) != CLUSTER_KIND_GROUPS[kind]:
        return f"{kind} is not in API group {ref['apiVersion']}"
    if kind == "Namespace":
        if namespace or name not in scope.namespaces:
            return (
                f"the {component.title} release creates only the namespace(s) {', '.join(scope.namespaces)}"
            )
        return None
    if namespace:
        if namespace in scope.namespaces:
            return None
        if any(
            kind == k and namespace == ns and fnmatch.fnmatchcase(name, pattern)
            for k, ns, pattern in scope.elsewhere
        ):
            return None
        return (
            f"namespace {namespace} is outside the {component.title} release ({', '.join(scope.namespaces)})"
        )
    if any(kind == k and fnmatch.fnmatchcase(name, pattern) for k, pattern in scope.cluster):
        return None
    allowed = sorted({f"{k} {p}" for k, p in scope.cluster if k == kind})
    return f"the {component.title} release holds no cluster-scoped {kind} of that name" + (
        f" (only {', '.join(allowed)})" if allowed else ""
    )
