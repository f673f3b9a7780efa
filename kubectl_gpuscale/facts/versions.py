"""Component versions: parsing, comparing, and the `Targets` a command emits for.

Pure: no cluster access. A `Targets` holds the version of each component (KEDA, the KEDA
HTTP add-on, Knative Serving, Kubernetes), where each came from (``--target-versions``,
detected in the cluster, or the pinned install version), and the fields the served CRD
schemas declare, so that feature detection can win over version numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

COMPONENTS: tuple[str, ...] = ("keda", "keda-http", "knative", "kubernetes")
# The CRD whose served schema answers "does this field exist" for each component.
CRDS: dict[str, str] = {
    "keda": "scaledobjects.keda.sh",
    "keda-http": "httpscaledobjects.http.keda.sh",
    "knative": "services.serving.knative.dev",
}
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.][0-9A-Za-z.+-]*)?$")
_PREFIXED = re.compile(r"(?:^|[^0-9.])v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class Version:
    """A release version, compared numerically (2.9 < 2.10); pre-release suffixes are ignored."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def at_least(self, other: str | Version) -> bool:
        """Whether this version is ``other`` or later."""
        return self >= as_version(other)


def parse_version(text: str) -> Version:
    """``2.17.0``, ``v2.17``, ``knative-v1.23.0``, ``v1.33.2-gke.100``: the numeric version.

    Raises:
        ValueError: no MAJOR.MINOR[.PATCH] in the text.
    """
    raw = str(text).strip()
    for prefix in ("knative-", "kedacore/"):
        raw = raw.removeprefix(prefix)
    match = _VERSION.match(raw)
    if not match:
        raise ValueError(f"{text!r} is not a version (MAJOR.MINOR[.PATCH], e.g. 2.17.1)")
    return Version(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def find_version(text: str) -> Version | None:
    """The first MAJOR.MINOR[.PATCH] found anywhere in ``text`` (an image tag, a label), or None."""
    match = _PREFIXED.search(str(text))
    if not match:
        return None
    return Version(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def as_version(value: str | Version) -> Version:
    """A `Version` from a string or a `Version`."""
    return value if isinstance(value, Version) else parse_version(value)


def parse_targets(text: str) -> dict[str, Version]:
    """``keda=2.16,keda-http=0.13`` -> {component: Version}.

    Raises:
        ValueError: a part that is not COMPONENT=VERSION, an unknown component, or a bad version.
    """
    out: dict[str, Version] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not value.strip():
            raise ValueError(f"{part!r} is not COMPONENT=VERSION (e.g. keda=2.16.1)")
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r} (one of {', '.join(COMPONENTS)})")
        out[name] = parse_version(value)
    return out


@dataclass(frozen=True)
class Targets:
    """The component versions a command emits for, with where each came from.

    ``fields`` maps a component to the dotted field paths its served CRD schema declares
    (e.g. ``spec.fallback.behavior``); a component absent from it has no known schema.
    """

    versions: Mapping[str, Version] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def get(self, component: str) -> Version | None:
        """The version of a component, or None when unknown."""
        return self.versions.get(component)

    @property
    def keda(self) -> Version | None:
        """KEDA's version."""
        return self.get("keda")

    @property
    def keda_http(self) -> Version | None:
        """The KEDA HTTP add-on's version."""
        return self.get("keda-http")

    @property
    def knative(self) -> Version | None:
        """Knative Serving's version."""
        return self.get("knative")

    @property
    def kubernetes(self) -> Version | None:
        """The API server's version."""
        return self.get("kubernetes")

    def serves_field(self, component: str, path: str) -> bool | None:
        """Whether the component's served CRD schema has ``path``; None when the schema is unknown."""
        known = self.fields.get(component)
        return None if known is None else path in known

    def with_versions(self, versions: Mapping[str, Version], source: str) -> Targets:
        """These targets with some versions replaced, each recorded as coming from ``source``."""
        return replace(
            self,
            versions={**self.versions, **versions},
            sources={**self.sources, **{k: source for k in versions}},
        )

    def with_source(self, component: str, source: str) -> Targets:
        """These targets with where a component's version came from (or why it is unknown) recorded."""
        return replace(self, sources={**self.sources, component: source})

    def with_fields(self, component: str, paths: Iterable[str]) -> Targets:
        """These targets with a component's served CRD fields recorded."""
        return replace(self, fields={**self.fields, component: frozenset(paths)})

    def lines(self) -> list[str]:
        """The versions grouped by where they came from: ``keda 2.16.1, knative 1.23.0 (detected: ...)``."""
        groups: dict[str, list[str]] = {}
        for name in COMPONENTS:
            version = self.get(name)
            source = self.sources.get(name, "unknown")
            groups.setdefault(source, []).append(f"{name} {version}" if version else name)
        return [f"{', '.join(names)} ({source})" for source, names in groups.items()]


PINNED_SOURCE = "offline: the pinned install versions, assumed"


def pinned_targets() -> Targets:
    """The versions `kubectl gpuscale install` pins (KEDA, HTTP add-on, Knative): the offline assumption."""
    from kubectl_gpuscale.install.catalog import COMPONENTS as CATALOG

    versions = {name: parse_version(CATALOG[name].version) for name in ("keda", "keda-http", "knative")}
    return Targets(versions=versions, sources={k: PINNED_SOURCE for k in versions})


def schema_fields(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every dotted property path of an OpenAPI v3 schema (arrays step into ``items``)."""
    out: set[str] = set()
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(props, Mapping):
        for name, sub in props.items():
            path = f"{prefix}.{name}" if prefix else str(name)
            out.add(path)
            if isinstance(sub, Mapping):
                out |= schema_fields(sub, path)
                items = sub.get("items")
                if isinstance(items, Mapping):
                    out |= schema_fields(items, path)
    return out


def crd_fields(crd: Mapping[str, Any], version: str | None = None) -> set[str]:
    """The field paths a CustomResourceDefinition serves (its storage version, or ``version``)."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if (version and v.get("name") == version) or (not version and v.get("storage", True)):
            return schema_fields(((v.get("schema") or {}).get("openAPIV3Schema")) or {})
    return set()
