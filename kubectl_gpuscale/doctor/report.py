"""Renderings of the doctor's findings that are plain data: the JSON/YAML report, SARIF 2.1.0 and the
--fix listing (kubectl patch argv lines and appliable objects). Pure."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubectl_gpuscale import __version__
from kubectl_gpuscale.doctor.model import Finding, Patch
from kubectl_gpuscale.doctor.rules import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/kubectl-gpuscale/kubectl-gpuscale/blob/main/docs/doctor.md"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """Counts by severity."""
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


def report(findings: Sequence[Finding], skipped: Sequence[str] = ()) -> dict[str, Any]:
    """The -o json/yaml document."""
    data: dict[str, Any] = {
        "kind": "DoctorReport",
        "summary": summary(findings),
        "findings": [f.to_dict() for f in findings],
    }
    if skipped:
        data["skipped"] = list(skipped)
    return data


def _uri(source: str) -> str:
    path = source.split(" (document ")[0]
    if path in ("<stdin>", "-"):
        return "stdin"
    return Path(path).resolve().as_uri()


def sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, every rule in tool.driver.rules, one result per finding."""
    index = {r.id: i for i, r in enumerate(RULES)}
    rules = [
        {
            "id": r.id,
            "name": r.slug,
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.why},
            "help": {"text": r.fix},
            "helpUri": f"{INFORMATION_URI}#{r.id.lower()}-{r.slug}",
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {"tags": ["gpu", "autoscaling"]},
        }
        for r in RULES
    ]
    results = []
    for f in findings:
        location: dict[str, Any] = {
            "logicalLocations": [
                {"name": f.name, "fullyQualifiedName": f"{f.object}:{f.field}", "kind": "object"}
            ]
        }
        if f.source:
            location["physicalLocation"] = {"artifactLocation": {"uri": _uri(f.source)}}
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL.get(f.severity, "note"),
            "message": {"text": f"{f.object} {f.field} = {f.value}: {f.message}. Fix: {f.fix}"},
            "locations": [location],
            "properties": {"object": f.object, "field": f.field, "value": f.value},
        }
        if f.patch is not None:
            result["properties"]["patch"] = f.patch.to_dict()
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kubectl-gpuscale doctor",
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def fix_lines(items: Sequence[Patch]) -> tuple[list[str], list[dict[str, Any]]]:
    """For --fix: the kubectl patch command lines (argv joined with shell quoting, for display only)
    and the objects to apply (``kubectl apply --server-side -f -``)."""
    lines = [shlex.join(p.argv()) for p in items if p.type == "merge"]
    objects = [dict(p.body) for p in items if p.type == "apply"]
    return lines, objects
