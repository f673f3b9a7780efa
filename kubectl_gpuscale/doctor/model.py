"""The doctor's data: rules (stable IDs), findings with their evidence, and the safe patches.

Pure: plain data in frozen dataclasses; no kubernetes, prometheus_api_client or click import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Any

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Rule:
    """One check: a stable ID (``GS001``), a slug, its default severity, a title, why it matters, the fix."""

    id: str
    slug: str
    severity: str
    title: str
    why: str
    fix: str


@dataclass(frozen=True)
class Patch:
    """A safe change. ``merge``: a JSON merge patch on an existing object; ``apply``: a whole new object
    (server-side apply). Merge patches only touch maps and scalars (or a list copied whole)."""

    type: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: Mapping[str, Any]

    def resource(self) -> str:
        """``plural.group`` as kubectl names the resource (``scaledobjects.keda.sh``, ``deployments.apps``)."""
        from kubectl_gpuscale.kube.resources import known

        res = known(self.api_version, self.kind)
        plural = res.plural if res else self.kind.lower() + "s"
        group = self.api_version.split("/")[0] if "/" in self.api_version else ""
        return f"{plural}.{group}" if group else plural

    def argv(self) -> list[str]:
        """The kubectl command line for a merge patch, as an argv list (never a shell string)."""
        if self.type != "merge":
            raise ValueError("only merge patches have a kubectl patch line; apply the object instead")
        argv = ["kubectl", "patch", self.resource(), self.name]
        if self.namespace:
            argv += ["-n", self.namespace]
        return [*argv, "--type", "merge", "-p", json.dumps(self.body, separators=(",", ":"), sort_keys=True)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for -o json/yaml."""
        out: dict[str, Any] = {
            "type": self.type,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "body": dict(self.body),
        }
        if self.type == "merge":
            out["argv"] = self.argv()
        return out


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem found: which rule, on which object, the evidence (field and value), and the fix."""

    rule: str
    slug: str
    severity: str
    title: str
    kind: str
    namespace: str | None
    name: str
    field: str
    value: str
    message: str
    fix: str
    patch: Patch | None = None
    source: str | None = None
    extra: Mapping[str, Any] = dc_field(default_factory=dict)

    @property
    def object(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` for cluster-scoped or namespace-less objects)."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def with_source(self, source: str | None) -> Finding:
        """A copy that says which file (and document) the object was read from."""
        return replace(self, source=source)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for -o json/yaml."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "slug": self.slug,
            "severity": self.severity,
            "title": self.title,
            "object": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "field": self.field,
            "value": self.value,
            "message": self.message,
            "fix": self.fix,
        }
        if self.source:
            out["source"] = self.source
        if self.extra:
            out["evidence"] = dict(self.extra)
        if self.patch:
            out["patch"] = self.patch.to_dict()
        return out


def sort_key(finding: Finding) -> tuple[int, str, str, str, str]:
    """Errors first, then by rule, namespace, name and field."""
    return (
        SEVERITY_RANK.get(finding.severity, 9),
        finding.rule,
        finding.namespace or "",
        finding.name,
        finding.field,
    )
