"""The object store of the test API server: served types, objects, resourceVersions and watch fan-out.

One lock guards it all (`Store.lock`, with `Store.changed` notified on every event); the handlers
take it around each read-modify-write. Every write gets the next resourceVersion and appends an
event to a bounded history that open watches read from (`compact` forgets it: 410 Expired).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.api_base import ApiError, Route, now_rfc3339
from tests.support.kube_types import BUILTIN_TYPES, OPTIONAL_TYPES, ResourceType, crd_types

_WATCH_HISTORY = 20000


class Store:
    """Objects per (group, plural) keyed by (namespace, name), the served types, and the event history."""

    def __init__(self, optional_groups: Iterable[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.types: dict[tuple[str, str], ResourceType] = {}
        self._group_order: list[str] = []
        self._crd_types: dict[str, tuple[ResourceType, ...]] = {}
        self.optional_on: set[str] = set(OPTIONAL_TYPES if optional_groups is None else optional_groups)
        for rt in BUILTIN_TYPES:
            self.register(rt)
        for types in OPTIONAL_TYPES.values():
            for rt in types:
                self.register(rt)
        self.by_type: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.rv = 1000
        self.history: list[tuple[int, str, tuple[str, str], dict[str, Any]]] = []
        self.history_floor = self.rv
        self.stopping = False

    def seed(self, sources: Iterable[Any]) -> list[dict[str, Any]]:
        """Store objects as they are (see `ApiServer.seed`); CRDs first. Returns the stored objects."""
        objects = list(_expand(sources))
        objects.sort(key=lambda o: o.get("kind") != "CustomResourceDefinition")
        with self.lock:
            return [self.seed_one(obj) for obj in objects]

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a kind (all namespaces when ``namespace`` is None), sorted by namespace/name."""
        rt, version = self.type_for(api_version, kind)
        with self.lock:
            items = [
                o
                for (ns, _), o in sorted(self.by_type.get(rt.key, {}).items())
                if namespace is None or ns == namespace
            ]
            return [self.present(rt, version, o) for o in items]

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One stored object (namespace defaults to ``default`` for namespaced kinds), or None."""
        rt, version = self.type_for(api_version, kind)
        ns = (namespace or "default") if rt.namespaced else ""
        with self.lock:
            obj = self.by_type.get(rt.key, {}).get((ns, name))
            return self.present(rt, version, obj) if obj else None

    def compact(self) -> int:
        """Forget the watch history up to now (an etcd compaction); returns the new floor."""
        with self.changed:
            self.history_floor = self.rv
            self.history = []
            return self.history_floor

    def register(self, rt: ResourceType) -> None:
        """Serve ``rt`` at each of its versions."""
        for version in rt.versions:
            self.types[(rt.api_version(version), rt.plural)] = rt
        if rt.group and rt.group not in self._group_order:
            self._group_order.append(rt.group)

    def group_served(self, group: str) -> bool:
        """Whether ``group`` is served (built-in, or an enabled add-on group)."""
        return group not in OPTIONAL_TYPES or group in self.optional_on

    def served_types(self, api_version: str) -> list[ResourceType]:
        """The types served at ``api_version``, one per (group, plural)."""
        group = api_version.split("/")[0] if "/" in api_version else ""
        if not self.group_served(group):
            return []
        seen, out = set(), []
        for (gv, _), rt in self.types.items():
            if gv == api_version and rt.key not in seen:
                seen.add(rt.key)
                out.append(rt)
        return out

    def type_for(self, api_version: str, kind: str) -> tuple[ResourceType, str]:
        """The served type of ``kind`` at ``api_version`` and the version; ValueError when not served."""
        version = api_version.split("/")[-1]
        for rt in self.served_types(api_version):
            if rt.kind == kind:
                return rt, version
        raise ValueError(
            f"the test API server does not serve {kind} in {api_version} "
            "(seed its CustomResourceDefinition first, or enable its group)"
        )

    def group_versions(self) -> dict[str, list[str]]:
        """The served API groups (not core) and their versions, in registration order."""
        out: dict[str, list[str]] = {}
        for group in self._group_order:
            if not self.group_served(group):
                continue
            versions: list[str] = []
            for rt in self.types.values():
                if rt.group == group:
                    for v in rt.versions:
                        if v not in versions:
                            versions.append(v)
            if versions:
                out[group] = versions
        return out

    def next_rv(self) -> int:
        """Take the next resourceVersion."""
        self.rv += 1
        return self.rv

    def emit(self, kind: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Append a watch event to the bounded history and wake the watches (DELETED gets a new version)."""
        rv = int(obj["metadata"]["resourceVersion"]) if kind != "DELETED" else self.next_rv()
        if kind == "DELETED":
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(rv)
        self.history.append((rv, kind, rt.key, obj))
        if len(self.history) > _WATCH_HISTORY:
            dropped = self.history[: len(self.history) - _WATCH_HISTORY]
            self.history = self.history[len(dropped) :]
            self.history_floor = dropped[-1][0]
        self.changed.notify_all()

    def put(self, rt: ResourceType, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Store ``obj`` with a new resourceVersion and emit ``event`` (ADDED or MODIFIED)."""
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.next_rv())
        self.by_type.setdefault(rt.key, {})[
            (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        ] = obj
        self.emit(event, rt, copy.deepcopy(obj))
        return obj

    def remove(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Drop ``obj`` and emit DELETED; a CRD takes its types along, a Namespace its objects."""
        meta = obj["metadata"]
        self.by_type.get(rt.key, {}).pop(
            (meta.get("namespace", "") if rt.namespaced else "", meta["name"]), None
        )
        self.emit("DELETED", rt, obj)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.unregister_crd(obj)
        if rt.key == ("", "namespaces"):
            for key, objs in list(self.by_type.items()):
                for (ns, _), dependent in list(objs.items()):
                    if ns == meta["name"]:
                        dep_rt = next(t for t in self.types.values() if t.key == key)
                        self.remove(dep_rt, dependent)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object, or None (``namespace`` ignored for cluster-scoped types)."""
        return self.by_type.get(rt.key, {}).get((namespace or "" if rt.namespaced else "", name))

    def present(
        self, rt: ResourceType, version: str, obj: Mapping[str, Any], *, in_list: bool = False
    ) -> dict[str, Any]:
        """A copy as served at ``version`` (apiVersion and kind first; built-in list items without them)."""
        out = copy.deepcopy(dict(obj))
        if in_list and not rt.custom:
            out.pop("apiVersion", None)
            out.pop("kind", None)
            return out
        out["apiVersion"] = rt.api_version(version)
        out["kind"] = rt.kind
        return {"apiVersion": out.pop("apiVersion"), "kind": out.pop("kind"), **out}

    def seed_one(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store one object as given (identity filled in, status kept), bypassing admission."""
        obj = copy.deepcopy(obj)
        rt, version = self.type_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError(f"cannot seed a {rt.kind} without metadata.name")
        if rt.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        if rt.status or rt.custom:
            meta.setdefault("generation", 1)
        obj["apiVersion"] = rt.api_version(version)
        existed = self.find(rt, meta.get("namespace"), meta["name"]) is not None
        if rt.kind == "CustomResourceDefinition":
            self.register_crd(obj)
        self.put(rt, obj, "MODIFIED" if existed else "ADDED")
        return self.present(rt, version, obj)

    def register_crd(self, crd: dict[str, Any]) -> None:
        """Serve a CRD's types (unless built in) and mark it Established; 422 when it is invalid."""
        try:
            types = crd_types(crd)
        except ValueError as exc:
            name = (crd.get("metadata") or {}).get("name", "")
            raise ApiError(
                422,
                "Invalid",
                f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: {exc}',
                {"name": name, "group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition"},
            ) from None
        for rt in types:
            for existing in list(self.types.values()):
                if existing.key == rt.key and not existing.custom:
                    break
            else:
                for key in [k for k, v in self.types.items() if v.key == rt.key]:
                    del self.types[key]
                self.register(rt)
        self._crd_types[crd["metadata"]["name"]] = types
        spec = crd.get("spec") or {}
        stamp = now_rfc3339()
        crd["status"] = {
            "acceptedNames": dict(spec.get("names") or {}),
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": stamp,
                },
            ],
        }

    def unregister_crd(self, crd: Mapping[str, Any]) -> None:
        """Stop serving a deleted CRD's types, dropping their objects; a shadowed add-on type comes back."""
        for rt in self._crd_types.pop(crd["metadata"]["name"], ()):
            for key in [k for k, v in self.types.items() if v is rt]:
                del self.types[key]
            for obj in list(self.by_type.get(rt.key, {}).values()):
                self.remove(rt, obj)
            self.by_type.pop(rt.key, None)
            for optional in OPTIONAL_TYPES.get(rt.group, ()):
                if optional.key == rt.key:
                    self.register(optional)

    def must_find(self, route: Route) -> dict[str, Any]:
        """The object at ``route``, or the real server's 404."""
        assert route.name is not None
        obj = self.find(route.rt, route.namespace, route.name)
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{route.rt.qualified()} "{route.name}" not found',
                {"name": route.name, "group": route.rt.group, "kind": route.rt.plural},
            )
        return obj

    def event_line(self, kind: str, rt: ResourceType, version: str, obj: Mapping[str, Any]) -> bytes:
        """One watch event as a JSON line."""
        return json.dumps({"type": kind, "object": self.present(rt, version, obj)}).encode() + b"\n"


def _expand(sources: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Objects from YAML text, paths, dicts and lists (``List`` kinds and multi-doc YAML expanded)."""
    for source in sources:
        if source is None:
            continue
        if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and os.path.isfile(source)
        ):
            yield from _expand(list(yaml.safe_load_all(Path(source).read_text())))
        elif isinstance(source, str):
            yield from _expand(list(yaml.safe_load_all(source)))
        elif isinstance(source, Mapping):
            if str(source.get("kind", "")).endswith("List") and isinstance(source.get("items"), list):
                yield from _expand(source["items"])
            else:
                yield dict(source)
        elif isinstance(source, (list, tuple)):
            yield from _expand(source)
        else:
            raise TypeError(f"cannot seed from {type(source).__name__}")
