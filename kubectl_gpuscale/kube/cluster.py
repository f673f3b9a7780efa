"""The Cluster verbs: get, list, create, apply, patch, delete, scale, logs, events, exec, discovery.

Objects are plain dicts straight from the API server's JSON (no typed models:
they validate every response and cost 10x on large lists).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubectl_gpuscale.errors import InputError, NotFoundError
from kubectl_gpuscale.kube.config import load_api_client
from kubectl_gpuscale.kube.resources import Resource, known
from kubectl_gpuscale.kube.transport import Response, Transport
from kubectl_gpuscale.names import FIELD_MANAGER

Objects = list[dict[str, Any]]
Versions = list[str]
"""A list of Kubernetes objects as plain dicts."""


class Cluster(Transport):
    """One connection to a Kubernetes API server.

    Build it with `Cluster.connect`; every method returns plain dicts.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        default_namespace: str = "default",
        context: str | None = None,
        request_timeout: float | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        super().__init__(api_client, request_timeout=request_timeout)
        self.default_namespace = default_namespace
        self.context = context
        self.field_manager = field_manager
        self._discovered: dict[str, Objects | None] = {}

    @classmethod
    def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        request_timeout: float | None = None,
        insecure_skip_tls_verify: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> Cluster:
        """Connect from a kubeconfig (``KUBECONFIG`` lists honoured), without touching global state.

        Falls back to the in-cluster service account only when no kubeconfig or
        context was asked for and no kubeconfig file exists.

        Raises:
            InputError: the kubeconfig is missing, unreadable or has no such context.
        """
        api_client, namespace, context = load_api_client(
            kubeconfig=kubeconfig, context=context, insecure_skip_tls_verify=insecure_skip_tls_verify
        )
        return cls(
            api_client,
            default_namespace=namespace,
            context=context,
            request_timeout=request_timeout,
            field_manager=field_manager,
        )

    def namespace_or_default(self, namespace: str | None) -> str:
        """The namespace a verb on one object acts in: `namespace`, else the context's (the kubeconfig's, or the
        service account's in a pod). Callers pass its answer: only `list` and `watch` read None (as all
        namespaces); every other verb on a namespaced kind refuses None (`_scoped`)."""
        return namespace or self.default_namespace

    # ---- resources --------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """Where a kind lives; unknown kinds are looked up through discovery."""
        found = known(api_version, kind)
        if found:
            return found
        entry: dict[str, Any]
        for entry in self.api_resources(api_version) or []:
            if entry.get("kind") == kind and "/" not in entry.get("name", ""):
                return Resource(api_version, kind, entry["name"], bool(entry.get("namespaced")))
        raise NotFoundError(
            f"cannot find the resource for {kind} ({api_version})",
            "the cluster does not serve it",
            "install the CRD or check the apiVersion",
        )

    def _resource_of(self, obj: Mapping[str, Any]) -> Resource:
        return self.resource(obj.get("apiVersion", ""), obj.get("kind", ""))

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One object (`namespace`: required for a namespaced kind). Raises `NotFoundError` when it does not exist."""
        res = self.resource(api_version, kind)
        ns = _scoped(res, namespace, "get")
        obj: dict[str, Any] = self.request(
            "GET", res.path(ns, name), what=f"get {kind} {_qual(ns, name)}"
        ).json()
        return obj

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return self.get(api_version, kind, name, namespace)
        except NotFoundError:
            return None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Objects:
        """All objects of a kind, in one namespace or (namespace=None) all; items get kind/apiVersion."""
        res = self.resource(api_version, kind)
        query = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        data = self.request(
            "GET",
            res.path(namespace if res.namespaced else None),
            query=query,
            what=f"list {res.plural} {where}",
        ).json()
        items: Objects = data.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def list_optional(
        self, api_version: str, kind: str, namespace: str | None = None, **kw: Any
    ) -> Objects | None:
        """Like `list`, but None when the cluster does not serve the kind (a CRD not installed)."""
        custom = known(api_version, kind) is None or ("/" in api_version and "." in api_version.split("/")[0])
        if custom and not self.serves(api_version, kind):
            return None
        try:
            return self.list(api_version, kind, namespace, **kw)
        except NotFoundError:
            return None

    def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (409 `ConflictError` when it exists); a namespaced one carries its namespace."""
        res = self._resource_of(obj)
        ns = _scoped(res, _ns_of(obj), "create")
        out: dict[str, Any] = self.request(
            "POST",
            res.path(ns),
            body=dict(obj),
            query=_write_query(dry_run),
            what=f"create {obj.get('kind')} {_qual(ns, _name_of(obj))}",
        ).json()
        return out

    def replace(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Replace an object; its resourceVersion, when set, must be current (else `ConflictError`)."""
        res = self._resource_of(obj)
        ns = _scoped(res, _ns_of(obj), "replace")
        name = _name_of(obj)
        out: dict[str, Any] = self.request(
            "PUT",
            res.path(ns, name),
            body=dict(obj),
            query=_write_query(dry_run),
            what=f"replace {obj.get('kind')} {_qual(ns, name)}",
        ).json()
        return out

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        force: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply with our field manager; conflicts raise `ConflictError` unless `force`."""
        res = self._resource_of(obj)
        ns = _scoped(res, _ns_of(obj), "apply")
        name = _name_of(obj)
        query = [
            ("fieldManager", field_manager or self.field_manager),
            ("force", "true" if force else None),
            *_write_query(dry_run),
        ]
        out: dict[str, Any] = self.request(
            "PATCH",
            res.path(ns, name),
            body=dict(obj),
            query=query,
            content_type="application/apply-patch+yaml",
            what=f"apply {obj.get('kind')} {_qual(ns, name)}",
        ).json()
        return out

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        patch_type: str = "merge",
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Merge patch (dict), JSON patch (list of ops, patch_type='json') or strategic merge patch."""
        content_types = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }
        res = self.resource(api_version, kind)
        ns = _scoped(res, namespace, "patch")
        out: dict[str, Any] = self.request(
            "PATCH",
            res.path(ns, name, subresource),
            body=patch,
            content_type=content_types[patch_type],
            query=[("fieldManager", self.field_manager), *_write_query(dry_run)],
            what=f"patch {kind} {_qual(ns, name)}",
        ).json()
        return out

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any] | None:
        """Delete an object (propagationPolicy Orphan|Background|Foreground); None when already gone."""
        res = self.resource(api_version, kind)
        ns = _scoped(res, namespace, "delete")
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            out: dict[str, Any] = self.request(
                "DELETE", res.path(ns, name), body=body, what=f"delete {kind} {_qual(ns, name)}"
            ).json()
            return out
        except NotFoundError:
            return None

    # ---- scale, logs, events, node proxy ------------------------------------------------------------

    def get_scale(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any]:
        """The scale subresource (`autoscaling/v1 Scale`) of a workload."""
        res = self.resource(api_version, kind)
        ns = _required(namespace, f"get the scale of {kind}")
        out: dict[str, Any] = self.request(
            "GET", res.path(ns, name, "scale"), what=f"get the scale of {kind} {ns}/{name}"
        ).json()
        return out

    def scale(
        self, api_version: str, kind: str, name: str, namespace: str, replicas: int, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Set a workload's replicas through its scale subresource."""
        if replicas < 0:
            raise InputError(f"cannot scale {kind} {name} to {replicas}", "replicas must be >= 0")
        return self.patch(
            api_version,
            kind,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            subresource="scale",
            dry_run=dry_run,
        )

    def pod_logs(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """A pod's container log (the previous container's with `previous`)."""
        ns = _required(namespace, "read the log of pod")
        query = [
            ("container", container),
            ("previous", "true" if previous else None),
            ("tailLines", tail_lines),
            ("timestamps", "true" if timestamps else None),
        ]
        which = "previous " if previous else ""
        response = self.request(
            "GET",
            f"/api/v1/namespaces/{ns}/pods/{name}/log",
            query=query,
            accept="*/*",
            what=f"read the {which}log of pod {ns}/{name}",
        )
        return response.body.decode("utf-8", "replace")

    def events_for(self, kind: str, name: str, namespace: str, uid: str | None = None) -> Objects:
        """Core events about one object, oldest first."""
        ns = _required(namespace, "list the events of")
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        events = self.list("v1", "Event", ns, field_selector=selector)
        return sorted(events, key=_event_time)

    def node_proxy(
        self,
        method: str,
        node: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """A request to a node's kubelet through the API server (``/api/v1/nodes/N/proxy/...``)."""
        return self.request(
            method,
            f"/api/v1/nodes/{node}/proxy/{path.lstrip('/')}",
            query=query,
            timeout=timeout,
            accept="*/*",
            what=f"{method} {path} on node {node} (kubelet proxy)",
        )

    def service_answer(
        self, namespace: str, service: str, port: int | str, path: str = "", timeout: float | None = 10.0
    ) -> tuple[int, bool]:
        """GET a Service through the API server's service proxy: (HTTP status, whether the service answered).

        The service answered when the body is not the API server's own `Status` error (no such
        service, no ready endpoints, forbidden): a 404 from the service itself still counts.
        """
        raw = self._send(
            "GET",
            f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}",
            query=None,
            body=None,
            content_type=None,
            accept="*/*",
            timeout=timeout,
            what=f"probe service {namespace}/{service}:{port}",
        )
        body = raw.read() or b""
        try:
            parsed = json.loads(body) if body[:1] == b"{" else None
        except ValueError:
            parsed = None
        from_api_server = isinstance(parsed, dict) and parsed.get("kind") == "Status" and raw.status >= 400
        return int(raw.status), not from_api_server

    def exec_stream(
        self,
        name: str,
        namespace: str,
        command: Sequence[str],
        *,
        container: str | None = None,
        timeout: float | None = None,
        idle_timeout: float = 300,
    ) -> Iterator[bytes]:
        """Run `command` (an argv list, no shell) in a pod and yield its stdout as raw bytes chunks.

        Binary-safe (websocket channel frames, like ``kubectl cp``). Frames are read one at a time
        and each stdout frame is yielded at once, so memory stays at one frame however large the
        output. A non-zero exit or an error on the error channel raises `GpuscaleError` with its
        stderr; a stream that stalls for `idle_timeout` seconds, runs past `timeout`, or breaks
        before the command's end raises `UnreachableError`.
        """
        ns = _required(namespace, "exec in pod")
        what = f"exec {command[0] if command else ''} in pod {ns}/{name}"
        query: list[tuple[str, Any]] = [("command", part) for part in command]
        query += [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
        if container:
            query.append(("container", container))
        yield from self._exec(
            f"/api/v1/namespaces/{ns}/pods/{name}/exec",
            query,
            what=what,
            namespace=ns,
            timeout=timeout,
            idle_timeout=idle_timeout,
        )

    def can_i(
        self,
        verb: str,
        resource: str,
        *,
        group: str = "",
        namespace: str | None = None,
        subresource: str | None = None,
        name: str | None = None,
    ) -> bool:
        """Ask the API server whether the current user may do `verb` on `resource` (SelfSubjectAccessReview)."""
        attrs = {
            k: v
            for k, v in {
                "verb": verb,
                "resource": resource,
                "group": group,
                "namespace": namespace,
                "subresource": subresource,
                "name": name,
            }.items()
            if v
        }
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        answer = self.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            what="ask the API server for access (SelfSubjectAccessReview)",
        ).json()
        return bool((answer.get("status") or {}).get("allowed"))

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Watch events (``{"type": ADDED|MODIFIED|DELETED, "object": {...}}``) until the server ends the stream."""
        res = self.resource(api_version, kind)
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("labelSelector", label_selector),
            ("timeoutSeconds", timeout_seconds),
        ]
        buffer = b""
        for chunk in self.stream(
            "GET", res.path(namespace if res.namespaced else None), query=query, what=f"watch {res.plural}"
        ):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)

    # ---- discovery --------------------------------------------------------------------------------

    def api_groups(self) -> dict[str, Versions]:
        """Every group the server serves, with its versions (core is '')."""
        groups: dict[str, Versions] = {"": ["v1"]}
        data = self.request("GET", "/apis", what="discover the API groups").json()
        for group in data.get("groups") or []:
            groups[group["name"]] = [v["version"] for v in group.get("versions") or []]
        return groups

    def api_resources(self, api_version: str) -> Objects | None:
        """The resources one group/version serves, or None when it is not served (cached)."""
        if api_version not in self._discovered:
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            try:
                self._discovered[api_version] = (
                    self.request("GET", path, what=f"discover {api_version}").json().get("resources") or []
                )
            except NotFoundError:
                self._discovered[api_version] = None
        return self._discovered[api_version]

    def serves(self, api_version: str, kind: str | None = None) -> bool:
        """Whether the server serves a group/version (and a kind in it)."""
        resources = self.api_resources(api_version)
        if resources is None:
            return False
        return kind is None or any(r.get("kind") == kind for r in resources)

    def api_service_available(self, name: str = "v1beta1.external.metrics.k8s.io") -> bool | None:
        """Whether an APIService reports Available=True; None when it does not exist."""
        svc = self.get_or_none("apiregistration.k8s.io/v1", "APIService", name)
        if svc is None:
            return None
        for cond in (svc.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Available":
                return bool(cond.get("status") == "True")
        return False

    def server_version(self) -> dict[str, Any]:
        """The API server's `/version` document."""
        out: dict[str, Any] = self.request("GET", "/version", what="read the server version").json()
        return out


def _qual(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _name_of(obj: Mapping[str, Any]) -> str:
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        raise InputError(
            f"cannot write {obj.get('kind', 'object')}", "metadata.name is missing", "give the object a name"
        )
    return str(name)


def _ns_of(obj: Mapping[str, Any]) -> str | None:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _required(namespace: str | None, verb: str) -> str:
    """`namespace`, which a verb on one object needs: None (all namespaces) is for `list` and `watch` only."""
    if not namespace:
        raise ValueError(
            f"{verb}: no namespace; pass cluster.namespace_or_default(...) "
            "(None means all namespaces, for list and watch only)"
        )
    return namespace


def _scoped(res: Resource, namespace: str | None, verb: str) -> str | None:
    """The namespace a verb on one `res` object acts in: required for a namespaced kind, None for the others."""
    return _required(namespace, f"{verb} {res.kind}") if res.namespaced else None


def _write_query(dry_run: bool) -> list[tuple[str, Any]]:
    return [("dryRun", "All")] if dry_run else []


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("eventTime")
        or event.get("firstTimestamp")
        or event.get("lastTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
