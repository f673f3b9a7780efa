"""The compatibility matrix of docs/compatibility.md, generated from the facts modules.

Each component facts module in this package may define ``compatibility_section() -> Section``;
`sections` collects them all (KEDA and the HTTP add-on from ``facts.keda`` here, Knative from
``facts.knative`` when it has one), so adding a component's rows needs no edit of this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kubectl_gpuscale.facts.keda import (
    FACTS,
    fallback_plan,
    holds,
    interceptor_timeout_keys,
    webhook_fallback_rejection,
)
from kubectl_gpuscale.facts.versions import Targets, Version, parse_version

KEDA_VERSIONS = (
    "2.11.0",
    "2.12.0",
    "2.13.0",
    "2.14.0",
    "2.15.0",
    "2.16.0",
    "2.17.0",
    "2.17.1",
    "2.18.0",
    "2.19.0",
    "2.20.0",
)
HTTP_VERSIONS = ("0.12.0", "0.13.0", "0.14.0", "0.15.0")


@dataclass(frozen=True)
class Section:
    """A titled table: what gpuscale emits for each version of one component, and the facts behind it."""

    order: int
    title: str
    intro: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    sources: Sequence[str] = ()


def _yes(flag: bool | None) -> str:
    return "yes" if flag else "no"


def _keda_row(text: str) -> list[str]:
    version = parse_version(text)
    targets = Targets(versions={"keda": version})
    at_one, at_zero = fallback_plan(targets, 1), fallback_plan(targets, 0)
    implicit = {
        "spec": {
            "fallback": {"failureThreshold": 3, "replicas": 1},
            "triggers": [{"type": "prometheus", "metadata": {}}],
        }
    }
    return [
        str(version),
        "yes" if holds("transfer-hpa-ownership", version) else "no (needs 2.11)",
        f"yes{', behavior ' + at_one.behavior if at_one.behavior else ''}",
        "yes"
        if at_zero.emit
        else (
            "no: falls back from 0 at once"
            if holds("fallback-immediate", version)
            else "no: wakes from 0 after failureThreshold"
        ),
        "AverageValue, written out" if at_one.explicit_metric_type else "implicit",
        "rejects" if webhook_fallback_rejection(implicit, version) else "accepts",
        _yes(holds("fallback-value-metric-type", version)),
    ]


def keda_section() -> Section:
    """KEDA 2.11-2.20: the ScaledObject migrate-hpa and doctor --fix write for each version."""
    return Section(
        10,
        "KEDA",
        "What `migrate-hpa` and `doctor --fix` write into a ScaledObject for each KEDA version "
        "(`--target-versions keda=X.Y.Z`, detected from the keda-operator Deployment, offline the pinned one).",
        [
            "KEDA",
            "adopts the HPA",
            "fallback (min >= 1)",
            "fallback with --scale-to-zero (min 0)",
            "trigger metricType",
            "webhook on a fallback with implicit metricType",
            "fallback on Value triggers",
        ],
        [_keda_row(v) for v in KEDA_VERSIONS],
        [
            f"`{f.key}` ({f.span()}): {f.summary}. Source: {f.source}."
            for f in FACTS.values()
            if f.component == "keda"
        ],
    )


def _http_row(text: str) -> list[str]:
    version: Version = parse_version(text)
    keys = interceptor_timeout_keys(version)
    return [
        str(version),
        f"`{keys.readiness_env}` (default {keys.upstream_readiness})",
        f"`{keys.response_header_env}` (default {keys.upstream_response_header})",
        f"`{keys.readiness_helm}`, `{keys.response_header_helm}`",
        ", ".join(f"`{d}` wins when set" for d in keys.deprecated) or "-",
    ]


def http_section() -> Section:
    """KEDA HTTP add-on 0.12-0.15: where `install` puts the interceptor timeouts and what GS012 reads."""
    return Section(
        20,
        "KEDA HTTP add-on",
        "Where `install keda-http` sets the interceptor's timeouts and which variable "
        "`doctor` (GS012) reads, for each HTTP add-on version. The HTTPScaledObject's `spec.timeouts` "
        "(conditionWait, responseHeader), which `migrate-hpa --scale-to-zero` writes, is the same CRD in every "
        "version listed.",
        ["HTTP add-on", "wait for a replica", "response header", "Helm values", "deprecated variables"],
        [_http_row(v) for v in HTTP_VERSIONS],
        [
            f"`{f.key}` ({f.span()}): {f.summary}. Source: {f.source}."
            for f in FACTS.values()
            if f.component == "keda-http"
        ],
    )


def compatibility_section() -> list[Section]:
    """This module's sections (KEDA and the HTTP add-on)."""
    return [keda_section(), http_section()]


def sections() -> list[Section]:
    """Every component's sections: each facts module's ``compatibility_section()``, in order."""
    found: list[Section] = []
    import kubectl_gpuscale.facts as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        hook: Callable[[], Section | list[Section]] | None = getattr(module, "compatibility_section", None)
        if hook is None:
            continue
        made = hook()
        found.extend(made if isinstance(made, list) else [made])
    return sorted(found, key=lambda s: s.order)


def render(parts: Sequence[Section]) -> str:
    """docs/compatibility.md as Markdown."""
    lines = [
        "# Compatibility by version",
        "",
        "<!-- Generated by scripts/gen_compatibility.py from kubectl_gpuscale/facts; do not edit by hand. -->",
        "",
        "gpuscale emits only what the target version accepts and does. Every row below is computed "
        "from the versioned facts module (`kubectl_gpuscale/facts/`), which every builder and doctor rule "
        "reads; where a field exists only in some versions, the served CRD schema decides over the version "
        "number. Pass `--target-versions keda=2.16.1,keda-http=0.13.0,knative=1.15.0,kubernetes=1.30` to "
        "`migrate-hpa`, `doctor` or `install`; with a cluster the versions are detected and printed on "
        "stderr, offline the pinned install versions are assumed.",
        "",
    ]
    for part in parts:
        lines += [
            f"## {part.title}",
            "",
            part.intro,
            "",
            "| " + " | ".join(part.header) + " |",
            "|" + "---|" * len(part.header),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in part.rows]
        if part.sources:
            lines += ["", "Facts and their upstream sources:", ""] + [f"- {s}" for s in part.sources]
        lines.append("")
    return "\n".join(lines)
