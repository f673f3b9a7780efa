"""managedFields bookkeeping for the test API server: who owns which field after an Update or an Apply,
and the conflict an Apply meets (server-side apply; lists atomic, no merge keys).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.support import kube_semantics as sem
from tests.support.api_base import ApiError, Route, now_rfc3339


def managed(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The managedFields entries of ``obj``."""
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def set_managed(
    obj: dict[str, Any],
    manager: str,
    operation: str,
    api_version: str,
    *,
    sub: str,
    paths: set[sem.FieldPath],
) -> None:
    """Make ``paths`` the fields of (manager, operation, subresource), replacing its entry."""
    entries = [
        e
        for e in managed(obj)
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource", "") == sub
        )
    ]
    if paths:
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": now_rfc3339(),
            "fieldsType": "FieldsV1",
            "fieldsV1": sem.fields_v1(paths),
        }
        if sub:
            entry["subresource"] = sub
        entries.append(entry)
    obj["metadata"]["managedFields"] = entries


def record_update(
    old: Mapping[str, Any], new: dict[str, Any], manager: str, api_version: str, sub: str
) -> None:
    """Give the fields an Update changed to its manager; others lose them; vanished fields drop out."""
    changed = sem.changed_paths(old, new)
    entries = []
    mine: set[sem.FieldPath] = set()
    for entry in managed(old):
        paths = sem.paths_of_fields_v1(entry.get("fieldsV1") or {})
        paths = {p for p in paths if sem.get_path(new, p)[0]}
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
            manager,
            "Update",
            sub,
        ):
            mine = paths
            continue
        paths -= changed
        if paths:
            entries.append({**entry, "fieldsV1": sem.fields_v1(paths)})
    new["metadata"]["managedFields"] = entries
    set_managed(new, manager, "Update", api_version, sub=sub, paths=mine | changed)


def apply_conflict(route: Route, conflicts: list[tuple[dict[str, Any], sem.FieldPath]]) -> ApiError:
    """The 409 FieldManagerConflict the real server answers, one cause per conflicting field."""
    causes, lines = [], []
    for entry, path in conflicts:
        who = f'"{entry.get("manager")}"'
        if entry.get("subresource"):
            who += f' with subresource "{entry["subresource"]}"'
        if entry.get("operation") == "Update":
            who += f" using {entry.get('apiVersion')}"
        causes.append(
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {who}",
                "field": sem.path_string(path),
            }
        )
        lines.append(f"conflict with {who}: {sem.path_string(path)}")
    noun = "conflict" if len(conflicts) == 1 else "conflicts"
    message = f"Apply failed with {len(conflicts)} {noun}: " + "\n".join(lines)
    return ApiError(
        409,
        "Conflict",
        message,
        {"name": route.name or "", "group": route.rt.group, "kind": route.rt.plural, "causes": causes},
    )


def same_ignoring_times(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two versions of an object differ only in managedFields timestamps (a no-op write)."""

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        for entry in (out.get("metadata") or {}).get("managedFields") or []:
            entry.pop("time", None)
        return out

    return strip(old) == strip(new)
