"""The REST verbs of the test API server on main resources and ``scale``/``status``: list, watch, get,
create, replace, patch (JSON, merge, strategic as merge, server-side apply), delete with garbage
collection, deletecollection; managedFields, admission hooks and ``dryRun=All`` on every write.
"""

from __future__ import annotations

import bisect
import copy
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tests.support import kube_semantics as sem
from tests.support.api_base import (
    AdmissionRequest,
    ApiError,
    RecordedRequest,
    Route,
    now_rfc3339,
    parse_body,
    random_suffix,
)
from tests.support.api_fields import apply_conflict, managed, record_update, same_ignoring_times, set_managed
from tests.support.api_store import Store
from tests.support.kube_types import ResourceType, crd_types
from tests.support.listwatch import PageError, WatchBroken
from tests.support.pod_update import pod_update_errors

if TYPE_CHECKING:
    from tests.support.api_router import Authorizer
    from tests.support.apiserver import ApiServer

_DEFAULT_WATCH_SECONDS = 1800


class Crud:
    """The verbs on objects, over the store; ``api`` gives the pager, watch knobs and admission hooks."""

    def __init__(self, store: Store, api: ApiServer, auth: Authorizer) -> None:
        self.store = store
        self.api = api
        self.auth = auth

    def get_request(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """The object at ``route`` as stored."""
        with self.store.lock:
            return 200, self.store.present(route.rt, route.version, self.store.must_find(route))

    def _matching(self, req: RecordedRequest, route: Route, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if route.rt.namespaced and route.namespace and meta.get("namespace") != route.namespace:
            return False
        try:
            return sem.label_selector_matches(
                req.param("labelSelector"), meta.get("labels")
            ) and sem.field_selector_matches(req.param("fieldSelector"), obj, route.rt.kind)
        except sem.SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None

    def list_objects(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A list with selectors and ``limit``/``continue`` pages (`tests.support.listwatch.Pager`)."""
        rt = route.rt
        token = req.param("continue")
        try:
            limit = self.api.pager.limit_of(req.param("limit"))
            with self.store.lock:
                if token:
                    items, offset, rv = self.api.pager.resume(token, self.store.history_floor)
                    snapshot: int | None = self.api.pager.snapshot_of(token)
                else:
                    items = [
                        self.store.present(rt, route.version, o, in_list=True)
                        for _, o in sorted(self.store.by_type.get(rt.key, {}).items())
                        if self._matching(req, route, o)
                    ]
                    offset, rv, snapshot = 0, self.store.rv, None
            page, meta = self.api.pager.cut(items, offset, rv, limit, snapshot)
        except PageError as exc:
            raise ApiError(exc.code, exc.reason, exc.message) from None
        return 200, {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version(route.version),
            "metadata": meta,
            "items": page,
        }

    def watch(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A watch stream: from now, or replayed from ``resourceVersion`` (410 once compacted)."""
        rt = route.rt
        try:
            seconds = float(req.param("timeoutSeconds") or _DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds") from None
        since = req.param("resourceVersion") or ""
        initial: list[bytes] = []
        with self.store.lock:
            self._matching(req, route, {})  # validate the selectors before the stream starts
            if since in ("", "0"):
                initial = [
                    self.store.event_line("ADDED", rt, route.version, o)
                    for _, o in sorted(self.store.by_type.get(rt.key, {}).items())
                    if self._matching(req, route, o)
                ]
                last = self.store.rv
            else:
                try:
                    last = int(since)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version {since!r}") from None
                if last < self.store.history_floor:
                    expired = ApiError(
                        410, "Expired", f"too old resource version: {last} ({self.store.history_floor})"
                    )
                    initial = [json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n"]
                    last = -1
        return 200, self._watch_stream(req, route, initial, last, time.monotonic() + seconds)

    def _watch_stream(
        self, req: RecordedRequest, route: Route, initial: list[bytes], last: int, deadline: float
    ) -> Iterator[bytes]:
        yield from initial
        if last < 0:
            return
        epoch = self.api.watches.epoch
        bookmarks = req.param("allowWatchBookmarks") in ("true", "1")
        last_bookmark = time.monotonic()
        while True:
            with self.store.changed:
                if self.store.stopping:
                    return
                if self.api.watches.epoch != epoch:
                    if self.api.watches.mode == "break":
                        raise WatchBroken("the test API server broke the watch")
                    expired = ApiError(
                        410, "Expired", f"too old resource version: {last} ({self.store.history_floor})"
                    )
                    line, epoch = (
                        json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n",
                        -1,
                    )
                    events = []
                else:
                    start = bisect.bisect_right(self.store.history, last, key=lambda entry: entry[0])
                    events = [
                        (rv, kind, obj)
                        for rv, kind, key, obj in self.store.history[start:]
                        if key == route.rt.key and self._matching(req, route, obj)
                    ]
                if epoch < 0:
                    pass
                elif not events:
                    newest = self.store.history[-1][0] if self.store.history else last
                    last = max(last, newest)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    if bookmarks and time.monotonic() - last_bookmark >= self.api.watches.bookmark_seconds:
                        last_bookmark = time.monotonic()
                        line = self.api.watches.bookmark(
                            route.rt.kind, route.rt.api_version(route.version), last
                        )
                    else:
                        self.store.changed.wait(
                            timeout=min(remaining, 0.5, self.api.watches.bookmark_seconds)
                        )
                        continue
                else:
                    last = max(last, self.store.history[-1][0])
                    line = b"".join(
                        self.store.event_line(kind, route.rt, route.version, obj) for _, kind, obj in events
                    )
            yield line
            if epoch < 0:
                return

    @staticmethod
    def _dry_run(req: RecordedRequest, options: Mapping[str, Any] | None = None) -> bool:
        values = req.query.get("dryRun") or list((options or {}).get("dryRun") or [])
        for value in values:
            if value != "All":
                raise ApiError(400, "BadRequest", f'Invalid dryRun value "{value}": must be "All"')
        return bool(values)

    def _manager(self, req: RecordedRequest) -> str:
        return req.param("fieldManager") or req.user_agent.split("/")[0] or "unknown"

    def _body_object(self, req: RecordedRequest, route: Route) -> dict[str, Any]:
        obj = parse_body(req.body)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        api_version = route.rt.api_version(route.version)
        expected_kind = "Scale" if route.sub == "scale" else route.rt.kind
        if obj.get("kind") and obj["kind"] != expected_kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({expected_kind})",
            )
        if (
            route.sub != "scale"
            and obj.get("apiVersion")
            and obj["apiVersion"] not in (route.rt.api_version(v) for v in route.rt.versions)
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj['apiVersion']}) does not match "
                f"the expected API version ({api_version})",
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if route.rt.namespaced:
            if meta.get("namespace") and route.namespace and meta["namespace"] != route.namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            if not route.namespace:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            meta["namespace"] = route.namespace
        else:
            meta.pop("namespace", None)
        if route.name is not None and meta.get("name") and meta["name"] != route.name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta['name']}) does not match the name on the URL ({route.name})",
            )
        return obj

    def _invalid(self, route: Route, name: str, field_path: str, message: str) -> ApiError:
        group = f".{route.rt.group}" if route.rt.group else ""
        return ApiError(
            422,
            "Invalid",
            f'{route.rt.kind}{group} "{name}" is invalid: {field_path}: {message}',
            {
                "name": name,
                "group": route.rt.group,
                "kind": route.rt.kind,
                "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field_path}],
            },
        )

    def create(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A create: ``generateName``, 409 AlreadyExists, admission, access reviews."""
        rt = route.rt
        if rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews") and req.body.startswith(
            sem.PROTOBUF_MAGIC
        ):
            return 201, self.auth.access_review(sem.decode_access_review(req.body), route)
        if req.content_type.startswith("application/vnd.kubernetes.protobuf"):
            raise ApiError(415, "UnsupportedMediaType", "the test API server reads JSON and YAML bodies only")
        obj = self._body_object(req, route)
        dry = self._dry_run(req)
        if rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews"):
            return 201, self.auth.access_review(obj, route)
        meta = obj["metadata"]
        obj["apiVersion"], obj["kind"] = rt.api_version(route.version), rt.kind
        with self.store.lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{random_suffix()}"
            if not meta.get("name"):
                raise self._invalid(
                    route, "", "metadata.name", "Required value: name or generateName is required"
                )
            if self.store.find(rt, meta.get("namespace"), meta["name"]) is not None:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{rt.qualified()} "{meta["name"]}" already exists',
                    {"name": meta["name"], "group": rt.group, "kind": rt.plural},
                )
            self._initialise(rt, obj)
            set_managed(
                obj, self._manager(req), "Update", obj["apiVersion"], sub="", paths=sem.leaf_paths(obj)
            )
            return self._store_new(rt, route, obj, dry)

    def _store_new(self, rt: ResourceType, route: Route, obj: dict[str, Any], dry: bool) -> tuple[int, Any]:
        """Store a new object (a create, or an apply that creates): CRDs validated and registered; 201."""
        if rt.kind == "CustomResourceDefinition":
            self._validate_crd(route, obj)
        self._admit(route, "CREATE", obj, None, dry)
        if dry:
            return 201, self.store.present(rt, route.version, obj)
        if rt.kind == "CustomResourceDefinition":
            self.store.register_crd(obj)
        self.store.put(rt, obj, "ADDED")
        return 201, self.store.present(rt, route.version, obj)

    def _admit(
        self, route: Route, operation: str, obj: dict[str, Any], old: dict[str, Any] | None, dry: bool
    ) -> None:
        """Run the admission hooks on the object as it will be stored (apiVersion and kind set)."""
        if not self.api.admission:
            return
        presented = self.store.present(route.rt, route.version, obj)
        before = None if old is None else self.store.present(route.rt, route.version, old)
        for hook in self.api.admission:
            hook(AdmissionRequest(operation, route.rt.group, route.rt.kind, presented, before, dry, self.api))

    def _validate_crd(self, route: Route, obj: Mapping[str, Any]) -> None:
        try:
            crd_types(obj)
        except ValueError as exc:
            raise self._invalid(route, obj["metadata"]["name"], "spec", str(exc)) from None

    def _initialise(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.status or rt.custom:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        meta.pop("deletionTimestamp", None)
        if rt.status:
            obj.pop("status", None)
        if rt.key == ("", "namespaces"):
            obj["status"] = {"phase": "Active"}

    def _commit(self, route: Route, old: dict[str, Any], new: dict[str, Any], *, dry: bool) -> dict[str, Any]:
        """Store an updated object: identity kept, status/main split per subresource, generation, watch event."""
        rt = route.rt
        old_meta, meta = old["metadata"], new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        new["apiVersion"], new["kind"] = old.get("apiVersion", rt.api_version(route.version)), rt.kind
        new = self._split_status(route, old, new)
        spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        meta = new["metadata"]
        if "generation" in old_meta:
            meta["generation"] = int(old_meta["generation"]) + (1 if spec_old != spec_new else 0)
        else:
            meta.pop("generation", None)
        if rt.kind == "CustomResourceDefinition" and route.sub != "status":
            self._validate_crd(route, new)
        if rt.key == ("", "pods") and route.sub != "status":
            for field_path, message in pod_update_errors(old, new):
                raise self._invalid(route, meta.get("name", ""), field_path, message)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if not route.sub:
            self._admit(route, "UPDATE", new, old, dry)
        if same_ignoring_times(old, new):
            return self.store.present(rt, route.version, old)  # a no-op write keeps the resourceVersion
        if dry:
            return self.store.present(rt, route.version, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.store.remove(rt, new)
            return self.store.present(rt, route.version, new)
        if rt.kind == "CustomResourceDefinition" and route.sub != "status":
            self.store.register_crd(new)
        self.store.put(rt, new, "MODIFIED")
        return self.store.present(rt, route.version, new)

    @staticmethod
    def _split_status(route: Route, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """The /status subresource writes only status; the main resource keeps the stored status."""
        if route.sub == "status":
            kept = copy.deepcopy(old)
            kept["status"] = new.get("status")
            if kept["status"] is None:
                kept.pop("status")
            kept["metadata"]["managedFields"] = new["metadata"].get("managedFields", [])
            return kept
        if route.rt.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        return new

    @staticmethod
    def _check_rv(route: Route, current: Mapping[str, Any], sent: Any) -> None:
        if sent and str(sent) != current["metadata"].get("resourceVersion"):
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {route.rt.qualified()} "
                f'"{route.name}": the object has been modified; please apply your changes to the '
                "latest version and try again",
                {"name": route.name or "", "group": route.rt.group, "kind": route.rt.plural},
            )

    def replace(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A replace (PUT): 409 on a stale resourceVersion."""
        obj = self._body_object(req, route)
        dry = self._dry_run(req)
        with self.store.lock:
            old = self.store.must_find(route)
            self._check_rv(route, old, obj["metadata"].get("resourceVersion"))
            obj["metadata"]["managedFields"] = managed(old)
            new = copy.deepcopy(obj)
            new["metadata"]["managedFields"] = managed(old)
            self._carry_split(route, old, new)
            record_update(old, new, self._manager(req), old.get("apiVersion", ""), route.sub or "")
            return 200, self._commit(route, old, new, dry=dry)

    @staticmethod
    def _carry_split(route: Route, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        """Before ownership is computed: a main-resource write keeps the old status, a status write the old rest."""
        if route.sub == "status":
            status = new.get("status")
            new.clear()
            new.update(copy.deepcopy(dict(old)))
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif route.rt.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)

    def _patched(self, req: RecordedRequest, route: Route, current: Mapping[str, Any]) -> dict[str, Any]:
        ctype = req.content_type.split(";")[0].strip()
        patch = parse_body(req.body)
        try:
            if ctype == "application/json-patch+json":
                result = sem.json_patch(current, patch)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "the patch is not a JSON object")
                result = sem.merge_patch(current, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - "
                    "accepted media types include: application/json-patch+json, "
                    "application/merge-patch+json, application/apply-patch+yaml, "
                    "application/strategic-merge-patch+json",
                )
        except sem.PatchError as exc:
            if exc.code == 400:
                raise ApiError(400, "BadRequest", str(exc)) from None
            raise ApiError(
                422,
                "Invalid",
                str(exc),
                {"name": route.name or "", "group": route.rt.group, "kind": route.rt.kind},
            ) from None
        if not isinstance(result, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        return result

    def patch(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A JSON, merge or strategic merge patch, or a server-side apply."""
        dry = self._dry_run(req)
        if req.content_type.split(";")[0].strip() == "application/apply-patch+yaml":
            return self._apply(req, route, dry)
        with self.store.lock:
            old = self.store.must_find(route)
            new = self._patched(req, route, old)
            self._check_rv(route, old, (new.get("metadata") or {}).get("resourceVersion"))
            new.setdefault("metadata", {})["managedFields"] = managed(old)
            self._carry_split(route, old, new)
            record_update(old, new, self._manager(req), old.get("apiVersion", ""), route.sub or "")
            return 200, self._commit(route, old, new, dry=dry)

    def _apply(self, req: RecordedRequest, route: Route, dry: bool) -> tuple[int, Any]:
        rt = route.rt
        manager = req.param("fieldManager")
        if not manager:
            raise ApiError(
                400,
                "BadRequest",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                "is required for apply patch",
            )
        force = req.param("force") in ("true", "1")
        applied = self._body_object(req, route)
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise ApiError(400, "BadRequest", "apiVersion and kind must be set in an apply patch")
        applied["metadata"].setdefault("name", route.name)
        sub = route.sub or ""
        if sub == "status":
            applied = {k: v for k, v in applied.items() if k in ("apiVersion", "kind", "metadata", "status")}
        elif rt.status:
            applied.pop("status", None)
        paths = sem.leaf_paths(applied)
        with self.store.lock:
            current = self.store.find(rt, route.namespace, route.name or "")
            if current is None:
                if sub:
                    self.store.must_find(route)  # raises NotFound: subresources cannot create
                obj = copy.deepcopy(applied)
                obj["apiVersion"] = rt.api_version(route.version)
                self._initialise(rt, obj)
                set_managed(obj, manager, "Apply", obj["apiVersion"], sub="", paths=paths)
                return self._store_new(rt, route, obj, dry)
            self._check_rv(route, current, applied["metadata"].get("resourceVersion"))
            owned_before, others = _split_managers(current, manager, sub)
            conflicts = _conflicts(current, applied, paths, others)
            if conflicts and not force:
                raise apply_conflict(route, conflicts)
            conflicting = {p for _, p in conflicts}
            new = copy.deepcopy(current)
            still_owned = set().union(*(p for _, p in others)) if others else set()
            for path in owned_before - paths:
                if path not in still_owned:
                    sem.remove_path(new, path)
            new = sem.deep_merge(new, {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")})
            entries = []
            for entry, entry_paths in others:
                kept = {p for p in entry_paths - conflicting if sem.get_path(new, p)[0]}
                if kept:
                    entries.append({**entry, "fieldsV1": sem.fields_v1(kept)})
            new["metadata"]["managedFields"] = entries
            set_managed(new, manager, "Apply", rt.api_version(route.version), sub=sub, paths=paths)
            return 200, self._commit(route, current, new, dry=dry)

    def _delete_options(self, req: RecordedRequest) -> dict[str, Any]:
        options = parse_body(req.body) or {}
        if not isinstance(options, dict):
            raise ApiError(400, "BadRequest", "DeleteOptions must be an object")
        if req.param("propagationPolicy"):
            options["propagationPolicy"] = req.param("propagationPolicy")
        if req.param("orphanDependents") in ("true", "false"):
            options["orphanDependents"] = req.param("orphanDependents") == "true"
        policy = options.get("propagationPolicy")
        if policy is None and "orphanDependents" in options:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError(
                422,
                "Invalid",
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
            )
        options["propagationPolicy"] = policy or "Background"
        return options

    def delete(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """A delete with preconditions, propagationPolicy and finalizers."""
        options = self._delete_options(req)
        dry = self._dry_run(req, options)
        with self.store.lock:
            obj = self.store.must_find(route)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Operation cannot be fulfilled on {route.rt.qualified()} "
                    f'"{route.name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in '
                    f"object meta: {obj['metadata'].get('uid')}",
                    {"name": route.name or "", "group": route.rt.group, "kind": route.rt.plural},
                )
            self._check_rv(route, obj, pre.get("resourceVersion"))
            if dry:
                return 200, self.store.present(route.rt, route.version, obj)
            return 200, self._delete_object(route.rt, route.version, obj, options["propagationPolicy"])

    def _delete_object(
        self, rt: ResourceType, version: str, obj: dict[str, Any], policy: str
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                self.store.put(rt, obj, "MODIFIED")
            return self.store.present(rt, version, obj)
        self._collect_dependents(meta.get("uid"), policy)
        self.store.remove(rt, obj)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": meta["name"], "group": rt.group, "kind": rt.plural, "uid": meta.get("uid")},
        }

    def _collect_dependents(self, uid: str | None, policy: str) -> None:
        """Orphan: drop the ownerReference from dependents. Background/Foreground: delete them (recursively)
        unless another owner that still exists remains."""
        if not uid:
            return
        live_uids = {o["metadata"].get("uid") for objs in self.store.by_type.values() for o in objs.values()}
        live_uids.discard(uid)
        for key, objs in list(self.store.by_type.items()):
            dep_rt = next(t for t in self.store.types.values() if t.key == key)
            for dependent in list(objs.values()):
                refs = dependent["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                remaining = [r for r in refs if r.get("uid") != uid]
                if policy == "Orphan" or any(r.get("uid") in live_uids for r in remaining):
                    updated = copy.deepcopy(dependent)
                    if remaining:
                        updated["metadata"]["ownerReferences"] = remaining
                    else:
                        updated["metadata"].pop("ownerReferences", None)
                    self.store.put(dep_rt, updated, "MODIFIED")
                else:
                    self._delete_object(dep_rt, dep_rt.versions[0], dependent, "Background")

    def delete_collection(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """Delete every matching object (with garbage collection); the deleted as a list."""
        options = self._delete_options(req)
        dry = self._dry_run(req, options)
        with self.store.lock:
            victims = [
                o for o in self.store.by_type.get(route.rt.key, {}).values() if self._matching(req, route, o)
            ]
            items = [self.store.present(route.rt, route.version, o, in_list=True) for o in victims]
            if not dry:
                for obj in victims:
                    self._delete_object(route.rt, route.version, obj, options["propagationPolicy"])
            return 200, {
                "kind": f"{route.rt.kind}List",
                "apiVersion": route.rt.api_version(route.version),
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": items,
            }

    def _scale_of(self, route: Route, obj: Mapping[str, Any]) -> dict[str, Any]:
        paths = route.rt.scale
        assert paths is not None
        meta = obj["metadata"]
        spec_path = tuple(p for p in paths.spec_replicas.split(".") if p)
        status_path = tuple(p for p in paths.status_replicas.split(".") if p)
        if paths.label_selector is None:
            selector = sem.selector_string((obj.get("spec") or {}).get("selector"))
        else:
            selector = sem.get_path(obj, tuple(p for p in paths.label_selector.split(".") if p))[1] or ""
        status: dict[str, Any] = {"replicas": sem.get_path(obj, status_path)[1] or 0}
        if selector:
            status["selector"] = selector
        scale_meta = {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        }
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": sem.get_path(obj, spec_path)[1] or 0},
            "status": status,
        }

    def scale(self, req: RecordedRequest, route: Route, verb: str) -> tuple[int, Any]:
        """The ``scale`` subresource: get, update or patch the replicas."""
        dry = self._dry_run(req)
        with self.store.lock:
            obj = self.store.must_find(route)
            current = self._scale_of(route, obj)
            if verb == "get":
                return 200, current
            if verb == "update":
                wanted = self._body_object(req, route)
            elif req.content_type.split(";")[0].strip() == "application/apply-patch+yaml":
                wanted = sem.merge_patch(current, parse_body(req.body) or {})
            else:
                wanted = self._patched(req, route, current)
            self._check_rv(
                route,
                obj,
                (wanted.get("metadata") or {}).get("resourceVersion") if verb == "update" else None,
            )
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid '
                    f"value: {replicas!r}: must be greater than or equal to 0",
                    {"name": route.name or "", "group": "autoscaling", "kind": "Scale"},
                )
            assert route.rt.scale is not None
            new = copy.deepcopy(obj)
            node = new
            spec_path = [p for p in route.rt.scale.spec_replicas.split(".") if p]
            for part in spec_path[:-1]:
                node = node.setdefault(part, {})
            node[spec_path[-1]] = replicas
            main = Route(route.rt, route.version, route.namespace, route.name, None)
            record_update(obj, new, self._manager(req), obj.get("apiVersion", ""), "scale")
            self._commit(main, obj, new, dry=dry)
            stored = new if dry else self.store.must_find(route)
            return 200, self._scale_of(route, stored)


_Owned = list[tuple[dict[str, Any], set[sem.FieldPath]]]


def _split_managers(current: Mapping[str, Any], manager: str, sub: str) -> tuple[set[sem.FieldPath], _Owned]:
    """The fields this apply manager owned before, and every other manager's entry with its fields."""
    owned_before: set[sem.FieldPath] = set()
    others: _Owned = []
    for entry in managed(current):
        entry_paths = sem.paths_of_fields_v1(entry.get("fieldsV1") or {})
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
            manager,
            "Apply",
            sub,
        ):
            owned_before = entry_paths
        else:
            others.append((entry, entry_paths))
    return owned_before, others


def _conflicts(
    current: Mapping[str, Any], applied: Mapping[str, Any], paths: set[sem.FieldPath], others: _Owned
) -> list[tuple[dict[str, Any], sem.FieldPath]]:
    """(entry, path) where another manager owns a field the apply sets to a different value."""
    conflicts = []
    for entry, entry_paths in others:
        for path in sorted(paths & entry_paths):
            found, value = sem.get_path(current, path)
            if not found or value != sem.get_path(applied, path)[1]:
                conflicts.append((entry, path))
    return conflicts
