"""Load Kubernetes objects from files, directories or stdin, with clear errors for bad input.

Multi-document YAML, JSON, and `List` objects (any kind ending in ``List``) are
flattened into one sequence of objects, each remembering where it came from.
Unrendered Helm (``{{ }}``) and Terraform (``${...}``, ``%{ }``) templates are
refused with a message saying to render them first; a YAML syntax error names
the file, the line and the parser's reason.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from kubectl_gpuscale.errors import InputError

YAML_SUFFIXES = (".yaml", ".yml", ".json")

_HELM = re.compile(r"\{\{-?\s*.*?-?\}\}")
# A Terraform placeholder as a whole value (`name: ${x}`, `- "${x}"`) or a `%{ if }` directive; `${VAR}`
# inside a longer string is left alone (shell scripts in container args use it).
_TF = re.compile(r"""%\{[^}]*\}|(:|^\s*-)\s*(["']?)\$\{[^}]*\}\2\s*(#.*)?$|\[.*["']\$\{[^}]*\}["']""")


@dataclass(frozen=True)
class Loaded:
    """One Kubernetes object and where it was read from (``file`` and document number, 1-based)."""

    obj: dict[str, Any]
    source: str
    document: int

    @property
    def where(self) -> str:
        """``file`` or ``file (document N)``."""
        return self.source if self.document <= 1 else f"{self.source} (document {self.document})"


def _loader() -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def template_kind(text: str) -> tuple[str, int] | None:
    """('Helm', line) or ('Terraform', line) when the text is an unrendered template, else None."""
    if "{{" not in text and "${" not in text and "%{" not in text:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if ("{{" not in line and "${" not in line and "%{" not in line) or line.lstrip().startswith("#"):
            continue
        if _HELM.search(line):
            return "Helm", number
        if _TF.search(line):
            return "Terraform", number
    return None


def parse_text(text: str, source: str) -> list[Loaded]:
    """Parse YAML/JSON text into objects (Lists flattened). Raises `InputError` with file:line on bad input."""
    template = template_kind(text)
    if template:
        kind, line = template
        how = "helm template RELEASE CHART -f values.yaml" if kind == "Helm" else "terraform apply / templatefile()"
        raise InputError(f"cannot read {source}:{line}",
                         f"it is an unrendered {kind} template",
                         f"render it first ({how}) and pass the output")
    try:
        documents = list(yaml.load_all(text, Loader=_loader()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        reason = " ".join(str(p) for p in (exc.problem, exc.context) if p) or "invalid YAML"
        if mark is not None:
            lines = text.splitlines()
            bad = lines[mark.line] if mark.line < len(lines) else ""
            if "\t" in bad[: len(bad) - len(bad.lstrip())]:
                reason += " (a tab in the indentation: YAML indents with spaces)"
        raise InputError(f"cannot parse {source}{at}", reason, "fix the YAML syntax") from None
    except yaml.YAMLError as exc:
        raise InputError(f"cannot parse {source}", str(exc).splitlines()[0], "fix the YAML syntax") from None
    out: list[Loaded] = []
    for number, doc in enumerate(documents, 1):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise InputError(f"cannot read {source} (document {number})",
                             f"expected a Kubernetes object, found a {type(doc).__name__}",
                             "pass manifests (apiVersion/kind/metadata), not values files")
        out.extend(_flatten(dict(doc), source, number))
    return out


def _flatten(doc: dict[str, Any], source: str, number: int) -> Iterator[Loaded]:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if isinstance(item, Mapping):
                yield from _flatten(dict(item), source, number)
        return
    if not kind or not doc.get("apiVersion"):
        raise InputError(f"cannot read {source}" + (f" (document {number})" if number > 1 else ""),
                         "the document has no apiVersion/kind",
                         "pass Kubernetes manifests (a values.yaml or patch is not one)")
    yield Loaded(doc, source, number)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in YAML_SUFFIXES)
    return [path]


def load(paths: Sequence[str], stdin: TextIO | None = None) -> list[Loaded]:
    """Objects from each path (a file, a directory walked for .yaml/.yml/.json, or ``-`` for stdin)."""
    out: list[Loaded] = []
    for raw in paths:
        if raw == "-":
            stream = stdin or sys.stdin
            out.extend(parse_text(stream.read(), "<stdin>"))
            continue
        path = Path(raw)
        if not path.exists():
            raise InputError(f"cannot read {raw}", "no such file or directory", "check the -f path")
        for file in _files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read {file}", str(exc), "pass a readable UTF-8 YAML file") from None
            out.extend(parse_text(text, str(file)))
    return out
