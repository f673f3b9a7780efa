"""Load Kubernetes objects from files, directories or stdin, with clear errors for bad input.

Multi-document YAML, JSON, and `List` objects (any kind ending in ``List``) are
flattened into one sequence of objects, each remembering where it came from.
Unrendered Helm (``{{ }}``) and Terraform (``${...}``, ``%{ }``) templates are
refused with a message saying to render them first; a YAML syntax error names
the file, the line and the parser's reason. `dump_yaml` writes objects back.

Both are fast on large inputs and give exactly what `yaml.safe_load_all` /
libyaml's `yaml.dump` give. Reading builds objects straight from libyaml's
events (PyYAML's composer and constructor cost a Python call or three per
node); a stream with anchors, aliases, explicit tags or merge keys is read by
PyYAML instead. Writing goes through `yaml_emit` for plain objects, else
through libyaml with direct node building and a memoised tag resolver. The
cyclic garbage collector is paused meanwhile: the objects are trees (freed by
reference counting), and its full passes would rescan everything built so far
each time. See benchmarks/bench_migrate.py.
"""

from __future__ import annotations

import gc
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.inputs import read_text
from kubectl_gpuscale.shapes import check_object

YAML_SUFFIXES = (".yaml", ".yml", ".json")
MAX_ALIAS_NODES = 10_000
"""How many nodes YAML aliases may add to a stream (see docs/troubleshooting.md)."""

_TF_VALUE_HEAD = re.compile(r"""(?::|^\s*-)\s*(["']?)\$\{""")  # `key: ${`, `- "${`
_CLOSE_BRACE = re.compile(r"\}")
_TF_VALUE_TAIL = re.compile(r"\s*(?:#.*)?$")  # what may follow a placeholder that is the whole value


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


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
if TYPE_CHECKING:  # CSafeDumper shares SafeDumper's SafeRepresenter and Resolver, all `_Dumper` builds on
    _BaseDumper = yaml.SafeDumper
else:
    _BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _MemoResolve:
    """Memoise the implicit tag of each plain scalar: PyYAML's resolver runs a regex scan per call, from C, per node.

    A scalar's tag depends only on its text unless path resolvers are registered (none are for the safe classes).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tags: dict[tuple[str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:  # type: ignore[attr-defined]
            resolved: str = super().resolve(kind, value, implicit)  # type: ignore[misc]
            return resolved
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag


class _Dumper(_MemoResolve, _BaseDumper):
    """A safe block-style dumper keeping key order, writing multi-line strings as `|` blocks.

    Strings, dicts and lists become nodes directly (a dict or list met twice is written twice, not as
    an anchor and alias, as kubectl prints objects); the tag resolver is memoised.
    """

    def represent_data(self, data: Any) -> yaml.Node:
        kind = type(data)
        if kind is str:
            return yaml.ScalarNode(_STR, data, style="|" if "\n" in data else None)
        if kind is dict:
            return yaml.MappingNode(
                _MAP,
                [(self.represent_data(k), self.represent_data(v)) for k, v in data.items()],
                flow_style=False,
            )
        if kind is list:
            return yaml.SequenceNode(_SEQ, [self.represent_data(item) for item in data], flow_style=False)
        node: yaml.Node = super().represent_data(data)
        return node


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Unusual(Exception):
    """The stream uses something `_plain_documents` leaves to PyYAML."""


_NO_KEY = object()


class _Filling:
    """The containers being filled while `_plain_documents` reads events, and the document's root."""

    __slots__ = ("keys", "open_", "root")

    def __init__(self) -> None:
        self.open_: list[Any] = []  # the containers being filled, innermost last
        self.keys: list[Any] = []  # for each: the mapping's pending key, or _NO_KEY
        self.root: Any = None

    def place(self, value: Any) -> None:
        """Put `value` where the next value goes: the root, the open sequence, or the open mapping's key or value."""
        open_ = self.open_
        if not open_:
            self.root = value
        elif type(open_[-1]) is list:
            open_[-1].append(value)
        elif self.keys[-1] is _NO_KEY:
            if type(value) in (dict, list):
                raise _Unusual("a mapping or sequence as a key")
            self.keys[-1] = value
        else:
            open_[-1][self.keys[-1]] = value
            self.keys[-1] = _NO_KEY


def _plain_documents(text: str) -> list[Any]:
    """The documents, built from libyaml's parser events: mappings, sequences and implicitly typed scalars.

    Raises `_Unusual` on an anchor, alias, explicit tag, merge key or non-scalar key; a YAML syntax
    error is the parser's own, as from `yaml.load_all`.
    """
    parser = _BaseLoader(text)  # also a SafeConstructor: its scalar constructors are reused below
    typed: dict[str, Any] = {}  # plain scalar text -> its (immutable) value
    documents: list[Any] = []
    filling = _Filling()
    place, open_, keys = filling.place, filling.open_, filling.keys
    try:
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual("an anchor or tag")
                value = event.value
                if event.implicit[0]:  # plain: typed by the resolver (quoted and block scalars are strings)
                    value = typed[value] if value in typed else typed.setdefault(value, _typed(parser, value))
                place(value)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual("an anchor or tag")
                container: Any = {} if kind is yaml.MappingStartEvent else []
                place(container)
                open_.append(container)
                keys.append(_NO_KEY)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                open_.pop()
                keys.pop()
            elif kind is yaml.DocumentEndEvent:
                documents.append(filling.root)
                filling.root = None
            elif kind is yaml.StreamEndEvent:
                return documents
            elif kind is yaml.AliasEvent:
                raise _Unusual("an alias")
    finally:
        parser.dispose()


def _typed(constructor: Any, text: str) -> Any:
    tag = constructor.resolve(yaml.ScalarNode, text, (True, False))
    if tag == _STR:
        return text
    build = constructor.yaml_constructors.get(tag)
    if build is None:  # `<<` or `=` (merge and value keys)
        raise _Unusual(f"a {tag} scalar")
    try:
        return build(constructor, yaml.ScalarNode(tag, text))
    except Exception:  # e.g. a timestamp with a day out of range: let PyYAML raise its own error
        raise _Unusual(f"an invalid {tag}") from None


class AliasBombError(ValueError):
    """The stream's YAML aliases expand beyond `MAX_ALIAS_NODES` nodes."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        super().__init__(f"its YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes")


def _check_alias_budget(text: str) -> None:
    """Refuse a stream whose aliases would expand beyond `MAX_ALIAS_NODES` nodes (a "billion laughs").

    PyYAML keeps an aliased node shared, so loading is cheap; every walk or dump of the result expands it
    (a 900-byte bomb is gigabytes as JSON). kubectl's YAML reader refuses "excessive aliasing" for the same
    reason (sigs.k8s.io/yaml/goyaml.v3 decode.go, `allowedAliasRatio`); this budget counts the nodes the
    aliases add, each alias weighing its anchor's expanded size.
    """
    parser = _BaseLoader(text)
    sizes: dict[str, int] = {}
    open_: list[list[Any]] = []  # [anchor, expanded size so far] per open container
    added = 0
    try:
        while True:
            try:
                event = parser.get_event()
            except yaml.YAMLError:  # the load that follows reports it, as PyYAML words it
                return
            kind = type(event)
            if kind is yaml.StreamEndEvent:
                return
            if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                open_.append([event.anchor, 1])
                continue
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                anchor, size = open_.pop()
            elif kind is yaml.ScalarEvent:
                anchor, size = event.anchor, 1
            elif kind is yaml.AliasEvent:
                anchor, size = None, sizes.get(event.anchor, 1)
                added += size
                if added > MAX_ALIAS_NODES:
                    raise AliasBombError(added)
            else:
                continue
            if anchor is not None:
                sizes[anchor] = size
            if open_:
                open_[-1][1] += size
    finally:
        parser.dispose()


def _documents(text: str) -> list[Any]:
    """Every document in the YAML/JSON text, as `list(yaml.load_all(text, Loader=CSafeLoader))` gives them.

    Raises:
        AliasBombError: aliases expand beyond `MAX_ALIAS_NODES`.
    """
    with _gc_paused():
        try:
            return _plain_documents(text)
        except _Unusual:
            _check_alias_budget(text)
            return list(yaml.load_all(text, Loader=_BaseLoader))


def load_yaml(text: str, source: str) -> Any:
    """The one document in `text` (None when empty), read by `parse_documents`. Raises `InputError`."""
    documents = parse_documents(text, source)
    if len(documents) > 1:
        raise InputError(
            f"cannot parse {source}",
            f"it holds {len(documents)} YAML documents, not one",
            "keep one document",
        )
    return documents[0] if documents else None


def dump_yaml(data: Any) -> str:
    """`data` as block-style YAML (key order kept, multi-line strings as `|` blocks), like `kubectl get -o yaml`.

    Plain objects are written directly (`yaml_emit`, the same text 10x faster); the rest through PyYAML.
    """
    from kubectl_gpuscale import yaml_emit

    with _gc_paused():
        try:
            return yaml_emit.dump(data)
        except yaml_emit.Unsupported:
            text: str = yaml.dump(
                data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
            )
            return text


def template_kind(text: str) -> tuple[str, int] | None:
    """('Helm', line) or ('Terraform', line) when the text is an unrendered template, else None."""
    if "{{" not in text and "${" not in text and "%{" not in text:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if ("{{" not in line and "${" not in line and "%{" not in line) or line.lstrip().startswith("#"):
            continue
        if _helm(line):
            return "Helm", number
        if _terraform(line):
            return "Terraform", number
    return None


def _helm(line: str) -> bool:
    """A Helm action (``{{ ... }}``) in the line."""
    start = line.find("{{")
    return start >= 0 and line.find("}}", start + 2) >= 0


def _terraform(line: str) -> bool:
    """A Terraform placeholder as a whole value (``name: ${x}``, ``- "${x}"``, ``["${x}"]``) or a
    ``%{ if }`` directive in the line; ``${VAR}`` inside a longer string is left alone (shell scripts
    in container args use it).

    Read in linear time: a regex for it (``%\\{[^}]*\\}``, ``\\[.*["']\\$\\{[^}]*\\}["']``...) reads to
    the line's end again from every ``%{`` or ``${`` that no ``}`` closes, quadratic on forged input.
    """
    closes = [brace.start() for brace in _CLOSE_BRACE.finditer(line)]
    if not closes:
        return False

    def close_after(opening: int) -> int:
        """The first '}' after the ``${`` or ``%{`` at `opening`, -1 when none."""
        k = bisect_left(closes, opening + 2)
        return closes[k] if k < len(closes) else -1

    directive = line.find("%{")
    return (
        (directive >= 0 and close_after(directive) >= 0)
        or _whole_value(line, close_after)
        or _in_list(line, close_after)
    )


def _whole_value(line: str, close_after: Callable[[int], int]) -> bool:
    """``key: ${x}`` or ``- "${x}"``, a comment after it allowed; each tail after a '}' read once."""
    tails: dict[tuple[int, str], bool] = {}
    for head in _TF_VALUE_HEAD.finditer(line):
        end = close_after(head.end() - 2)
        if end < 0:
            return False
        quote = head.group(1)
        if (end, quote) not in tails:
            after = end + 1 + len(quote)
            tails[end, quote] = (
                line.startswith(quote, end + 1) and _TF_VALUE_TAIL.match(line, after) is not None
            )
        if tails[end, quote]:
            return True
    return False


def _in_list(line: str, close_after: Callable[[int], int]) -> bool:
    """A quoted placeholder after a '[': ``["${x}"]``."""
    bracket = line.find("[")
    opening = line.find("${", bracket + 2) if bracket >= 0 else -1
    while opening >= 0:
        if line[opening - 1] in "\"'":
            end = close_after(opening)
            if end >= 0 and line[end + 1 : end + 2] in ("'", '"'):
                return True
        opening = line.find("${", opening + 2)
    return False


def parse_text(text: str, source: str) -> list[Loaded]:
    """Parse YAML/JSON text into objects (Lists flattened). Raises `InputError` with file:line on bad input."""
    template = template_kind(text)
    if template:
        kind, line = template
        how = (
            "helm template RELEASE CHART -f values.yaml"
            if kind == "Helm"
            else "terraform apply / templatefile()"
        )
        raise InputError(
            f"cannot read {source}:{line}",
            f"it is an unrendered {kind} template",
            f"render it first ({how}) and pass the output",
        )
    documents = parse_documents(text, source)
    out: list[Loaded] = []
    for number, doc in enumerate(documents, 1):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise InputError(
                f"cannot read {source} (document {number})",
                f"expected a Kubernetes object, found a {type(doc).__name__}",
                "pass manifests (apiVersion/kind/metadata), not values files",
            )
        out.extend(_flatten(dict(doc), source, number))
    for loaded in out:
        check_object(loaded.obj, loaded.where)
    return out


def parse_documents(text: str, source: str) -> list[Any]:
    """Every YAML/JSON document in `text`, within the alias budget. Raises `InputError` with file:line.

    The package's one YAML reader (and `dump_yaml` its one writer): -f input, downloaded install
    manifests, the local settings file.
    """
    try:
        return _documents(text)
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
    except AliasBombError as exc:
        raise InputError(
            f"cannot read {source}", str(exc), "write the values out instead of using anchors and aliases"
        ) from None
    except RecursionError:
        raise InputError(
            f"cannot parse {source}", "it is nested too deeply", "flatten the document"
        ) from None
    except ValueError as exc:  # PyYAML's constructor lets e.g. a date out of range through (2024-02-30)
        raise InputError(f"cannot parse {source}", str(exc), "fix the value") from None


def _flatten(doc: dict[str, Any], source: str, number: int) -> Iterator[Loaded]:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if isinstance(item, Mapping):
                yield from _flatten(dict(item), source, number)
        return
    if not kind or not doc.get("apiVersion"):
        raise InputError(
            f"cannot read {source}" + (f" (document {number})" if number > 1 else ""),
            "the document has no apiVersion/kind",
            "pass Kubernetes manifests (a values.yaml or patch is not one)",
        )
    if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
        raise InputError(
            f"cannot read {source}" + (f" (document {number})" if number > 1 else ""),
            "apiVersion and kind must be strings",
            "fix the document's apiVersion and kind",
        )
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
            out.extend(
                parse_text(stdin.read() if stdin is not None else read_text("-", "manifests"), "<stdin>")
            )
            continue
        path = Path(raw)
        if not path.exists():
            raise InputError(f"cannot read {raw}", "no such file or directory", "check the -f path")
        for file in _files(path):
            out.extend(parse_text(read_text(str(file), "manifest"), str(file)))
    return out
