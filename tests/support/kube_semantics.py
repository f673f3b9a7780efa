"""Pure Kubernetes API semantics for the test API server.

Label and field selectors, merge patch (RFC 7386), JSON patch (RFC 6902) and
the field sets that server-side apply tracks in ``managedFields``. No I/O,
no server: `tests.support.apiserver` builds on these.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

FieldPath = tuple[str, ...]


class PatchError(Exception):
    """A patch that cannot be applied (the server answers 422 Invalid, or 400 for a malformed patch)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


class SelectorError(ValueError):
    """A label or field selector that does not parse (the server answers 400 BadRequest)."""


# ---- label selectors --------------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split a selector on commas that are not inside ``( )``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def label_selector_matches(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a label selector string (=, ==, !=, in, notin, exists, !exists).

    Raises:
        SelectorError: the selector does not parse.
    """
    if not selector:
        return True
    labels = labels or {}
    for term in _split_terms(selector):
        match = _SET_TERM.match(term)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and key in labels and labels[key] in values:
                return False
            continue
        match = _EQ_TERM.match(term)
        if match:
            key, op, value = match.groups()
            if op in ("=", "==") and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
            continue
        match = _EXISTS_TERM.match(term)
        if match:
            negate, key = match.groups()
            if bool(negate) == (key in labels):
                return False
            continue
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    return True


def selector_string(label_selector: Mapping[str, Any] | None) -> str:
    """A ``metav1.LabelSelector`` (matchLabels/matchExpressions) as the string form the Scale status uses."""
    if not label_selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# ---- field selectors ------------------------------------------------------------------------------------

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
}


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source" and obj.get("kind", "Event") == "Event":
        return str((obj.get("source") or {}).get("component") or "")
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_selector_matches(selector: str | None, obj: Mapping[str, Any], kind: str) -> bool:
    """Whether an object satisfies a field selector (``a=b``, ``a==b``, ``a!=b``, comma-joined).

    Only the fields the real API server supports for ``kind`` are accepted.

    Raises:
        SelectorError: the selector does not parse or names an unsupported field.
    """
    if not selector:
        return True
    allowed = COMMON_FIELDS + FIELDS_BY_KIND.get(kind, ())
    for term in selector.split(","):
        if not term.strip():
            continue
        match = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not match:
            raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise SelectorError(f"field label not supported: {path}")
        actual = _field_value(obj, path)
        if (op == "!=") == (actual == value):
            return False
    return True


# ---- merge patch (RFC 7386) -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch; returns a new value (``null`` deletes a key, lists are replaced)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- JSON patch (RFC 6902) --------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", 400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise PatchError(f'doc is missing path: "{path}": missing value')
            doc = doc[part]
        elif isinstance(doc, list):
            doc = doc[_index(doc, part, path, allow_end=False)]
        else:
            raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _index(doc: list[Any], part: str, path: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(doc)
    if not part.isdigit():
        raise PatchError(f'invalid array index {part!r} in "{path}"')
    index = int(part)
    if index > len(doc) or (index == len(doc) and not allow_end):
        raise PatchError(f'array index out of bounds in "{path}"')
    return index


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document", 400)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f'doc is missing path: "{path}": missing value')


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, test, move, copy); returns a new document.

    Raises:
        PatchError: a failed ``test`` or a missing path (422), or a malformed patch (400).
    """
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", 400)
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, Mapping) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}", 400)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'missing value for {kind} operation on "{path}"', 400)
        doc = _operation(doc, kind, path, op)
    return doc


def _operation(doc: Any, kind: Any, path: Any, op: Mapping[str, Any]) -> Any:
    """One JSON patch operation (its op and path checked) applied to `doc`."""
    if kind == "add":
        return _add(doc, path, op["value"])
    if kind == "remove":
        return _remove(doc, path)[0]
    if kind == "replace":
        _walk(doc, _pointer(path), path)
        if _pointer(path):
            doc, _ = _remove(doc, path)
        return _add(doc, path, op["value"])
    if kind == "test":
        if _walk(doc, _pointer(path), path) != op["value"]:
            raise PatchError(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        source = op.get("from")
        if source is None:
            raise PatchError(f"missing from for {kind} operation", 400)
        if kind == "move":
            doc, value = _remove(doc, source)
        else:
            value = copy.deepcopy(_walk(doc, _pointer(source), source))
        return _add(doc, path, value)
    raise PatchError(f"unexpected kind of operation: {kind}", 400)


# ---- field sets (server-side apply) ------------------------------------------------------------------------

IGNORED_PATHS: frozenset[FieldPath] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "managedFields"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "selfLink"),
    }
)


def leaf_paths(obj: Any, prefix: FieldPath = ()) -> set[FieldPath]:
    """The leaf field paths of an object: scalars, lists (atomic) and empty maps.

    Identity and server-set metadata (name, uid, resourceVersion, managedFields, ...) are left out.
    """
    if prefix in IGNORED_PATHS:
        return set()
    if isinstance(obj, Mapping) and obj:
        out: set[FieldPath] = set()
        for key, value in obj.items():
            out |= leaf_paths(value, (*prefix, str(key)))
        return out
    return {prefix} if prefix else set()


def get_path(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    """(found, value) at a field path."""
    for part in path:
        if not isinstance(obj, Mapping) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Delete the field at ``path`` (and the maps it leaves empty)."""
    parents: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
        while parents and node == {}:
            parent, key = parents.pop()
            parent.pop(key, None)
            node = parent


def changed_paths(old: Any, new: Any) -> set[FieldPath]:
    """Leaf paths of ``new`` whose value differs from ``old`` (added or changed)."""
    out: set[FieldPath] = set()
    for path in leaf_paths(new):
        found, value = get_path(old, path)
        if not found or value != get_path(new, path)[1]:
            out.add(path)
    return out


def fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A set of paths in the ``FieldsV1`` form of managedFields (``{"f:spec": {"f:replicas": {}}}``)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def paths_of_fields_v1(tree: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    """The leaf paths of a ``FieldsV1`` tree (inverse of `fields_v1`)."""
    out: set[FieldPath] = set()
    for key, sub in tree.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        out |= paths_of_fields_v1(sub, path) if sub else {path}
    return out


def path_string(path: FieldPath) -> str:
    """A field path as the API server prints it in conflicts (``.spec.replicas``)."""
    return "".join(f".{p}" for p in path)


def deep_merge(base: Any, overlay: Any) -> Any:
    """Merge ``overlay`` into ``base``: maps recursively, everything else (lists included) replaced."""
    if isinstance(base, Mapping) and isinstance(overlay, Mapping):
        out = copy.deepcopy(dict(base))
        for key, value in overlay.items():
            out[key] = deep_merge(out.get(key), value)
        return out
    return copy.deepcopy(overlay)


# ---- protobuf (kubectl sends some bodies, e.g. SelfSubjectAccessReview, as Kubernetes protobuf) ----------------

PROTOBUF_MAGIC = b"k8s\x00"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def proto_fields(data: bytes) -> dict[int, list[bytes | int]]:
    """The top-level fields of a protobuf message (length-delimited values as bytes, varints as int)."""
    out: dict[int, list[bytes | int]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _text(fields: dict[int, list[bytes | int]], number: int) -> str:
    value = (fields.get(number) or [b""])[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _message(fields: dict[int, list[bytes | int]], number: int) -> dict[int, list[bytes | int]]:
    value = (fields.get(number) or [b""])[0]
    return proto_fields(value) if isinstance(value, bytes) else {}


def decode_access_review(data: bytes) -> dict[str, Any]:
    """A protobuf-encoded SelfSubjectAccessReview (``k8s\\0`` envelope) as its JSON form.

    Raises:
        ValueError: not a Kubernetes protobuf envelope.
    """
    if not data.startswith(PROTOBUF_MAGIC):
        raise ValueError("not a Kubernetes protobuf body")
    envelope = proto_fields(data[len(PROTOBUF_MAGIC) :])
    type_meta = _message(envelope, 1)
    review = proto_fields(envelope.get(2, [b""])[0])  # type: ignore[arg-type]
    spec = _message(review, 2)
    attrs = _message(spec, 1)
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    resource = {name: _text(attrs, number) for number, name in names.items() if attrs.get(number)}
    body: dict[str, Any] = {
        "apiVersion": _text(type_meta, 1),
        "kind": _text(type_meta, 2),
        "metadata": {},
        "spec": {},
    }
    if resource:
        body["spec"]["resourceAttributes"] = resource
    non_resource = _message(spec, 2)
    if non_resource:
        body["spec"]["nonResourceAttributes"] = {
            "path": _text(non_resource, 1),
            "verb": _text(non_resource, 2),
        }
    return body
