"""A test Kubernetes API server: a real HTTP server on 127.0.0.1 speaking the Kubernetes REST API.

The real `kubernetes` client and the real `kubectl` binary talk to it through a
kubeconfig. It keeps objects in memory (plain dicts) and follows the API
conventions the tool depends on:

- discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``), ``/version``,
  a minimal ``/openapi/v3`` so ``kubectl apply`` can validate;
- get/list/watch with label and field selectors, all-namespace lists; ``limit``/``continue``
  pagination, watch bookmarks, 410 Expired after `compact`, `cut_watches` (see `tests.support.listwatch`);
- create (``generateName``, 409 AlreadyExists), replace (409 on a stale
  resourceVersion), delete with ``propagationPolicy`` and ownerReference
  garbage collection, ``deletecollection``;
- merge patch, JSON patch (RFC 6902), strategic merge patch (treated as a
  merge patch: no ``$patch`` directives, lists replaced) and server-side apply
  (``managedFields`` per field manager, 409 FieldManagerConflict unless
  ``force=true``, create on apply);
- ``dryRun=All`` on every write; ``Status`` error bodies like the real server;
- subresources: ``status``, ``scale`` (Deployment, StatefulSet, ReplicaSet and
  CRDs declaring it), pod ``log``, node ``proxy`` (kubelet checkpoint and
  configured answers);
- pod ``exec`` over a websocket (RFC 6455 handshake, ``v5``/``v4.channel.k8s.io``,
  64 KiB binary channel frames, a channel-3 Status with the exit code; see
  `tests.support.exec_ws`): answers come from per-pod handlers (`ApiServer.set_exec`,
  `file_exec_handler` for ``cat``/``stat``/``sha256sum``), calls are recorded (`ApiServer.execs`);
  the pod must be Running, ``create pods/exec`` is authorized; no stdin, no tty;
- CustomResourceDefinitions registered at run time (Established at once);
- SelfSubjectAccessReview and a deny list that also makes requests 403;
- a bearer token check, a record of every request, and requests and bytes sent per verb and
  resource (`ApiServer.traffic`, see `tests.support.traffic`);
- injected failures before or after a commit (``server.faults``, see `tests.support.faults`).

Simplifications (documented, deliberate): no controllers run (status is what
tests seed or write); lists in server-side apply are atomic (no merge keys);
one storage per (group, plural) shared by all versions without conversion;
namespaces need not exist before objects are created in them; a Namespace
deletion removes its objects at once; garbage collection is synchronous.

Use it through the pytest fixtures in `tests.support.kube_fixtures`, or directly::

    with ApiServer() as server:
        server.seed(yaml_text)
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import bisect
import copy
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.support import exec_ws
from tests.support import kube_semantics as sem
from tests.support.admission_knative import KnativeAdmission
from tests.support.exec_ws import ExecHandler, file_exec_handler
from tests.support.faults import Faults
from tests.support.kube_types import BUILTIN_TYPES, OPTIONAL_TYPES, ResourceType, crd_types
from tests.support.listwatch import PageError, Pager, WatchBroken, WatchControl
from tests.support.pod_update import pod_update_errors
from tests.support.traffic import CountingWriter, Traffic, classify

DEFAULT_TOKEN = "gpuscale-test-token"
DEFAULT_USER = "test-user"
DEFAULT_VERSION = "1.33.2"
KUBELET_CLIENT_FORBIDDEN = ("Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, "
                            "subresource(s)=[checkpoint])")
DEFAULT_CRIU_ERROR = ("rpc error: code = Unknown desc = failed to checkpoint container {container}: "
                      "running \"criu\" failed: exit status 1: Error (criu/cr-dump.c:2093): "
                      "Dumping FAILED.")
CHECKPOINT_DIR = "/var/lib/kubelet/checkpoints"
_WATCH_HISTORY = 20000
_DEFAULT_WATCH_SECONDS = 1800


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with seconds (``2026-03-13T21:43:06Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encoded(body: bytes | str | Mapping[str, Any] | list[Any], content_type: str | None) -> tuple[bytes, str]:
    """A configured proxy answer as bytes and its content type (JSON for mappings and lists)."""
    if isinstance(body, (Mapping, list)):
        return json.dumps(body).encode(), content_type or "application/json"
    return (body.encode() if isinstance(body, str) else body), content_type or "text/plain; charset=utf-8"


class ApiError(Exception):
    """An error answered as a `Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details is not None else None

    def status(self) -> dict[str, Any]:
        """The ``Status`` object the real server sends."""
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


class RawAnswer(Exception):
    """A non-Status answer (plain text from the kubelet, say) raised from deep in a handler."""

    def __init__(self, code: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(code)
        self.code = code
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    accept: str
    user_agent: str
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The request body parsed as JSON (or YAML for apply patches)."""
        return _parse_body(self.body)


@dataclass(frozen=True)
class CheckpointCall:
    """A kubelet checkpoint request that reached the (simulated) node."""

    node: str
    namespace: str
    pod: str
    container: str
    timeout: str | None
    answer_code: int


@dataclass(frozen=True)
class ExecCall:
    """A pod exec that reached the (simulated) container."""

    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]
    protocol: str
    exit_code: int | None  # None: the command could not run (no handler, or the handler raised)
    stdout_bytes: int


@dataclass(frozen=True)
class _ExecSession:
    """A validated exec request waiting for its websocket upgrade."""

    namespace: str
    pod: str
    container: str
    command: list[str]
    handler: ExecHandler | None


@dataclass
class _Route:
    """A request resolved against the resource table."""

    rt: ResourceType
    version: str
    namespace: str | None
    name: str | None
    sub: str | None
    rest: list[str] = field(default_factory=list)


@dataclass
class AdmissionRequest:
    """What a validating admission hook sees: a create or update of one object (main resource only).

    ``server`` answers lookups (`ApiServer.objects`, `ApiServer.get_object`) under the lock the
    write holds. A hook rejects by raising `ApiError` (see `tests.support.admission.deny`).
    """

    operation: str  # CREATE | UPDATE
    group: str
    kind: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    dry_run: bool
    server: ApiServer


AdmissionHook = Callable[[AdmissionRequest], None]


def _parse_body(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        try:
            return yaml.safe_load(data.decode("utf-8"))
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding body: {exc}") from None


def _random_suffix(n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(n))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    def setup(self) -> None:
        """Count every byte written back (`ApiServer.traffic`)."""
        super().setup()
        self.wfile = CountingWriter(self.wfile, self.server.api.traffic)  # type: ignore[assignment]

    def _dispatch(self) -> None:
        self.server.api._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer


class ApiServer:
    """An in-memory Kubernetes API server on 127.0.0.1 (random free port), run in a background thread.

    Args:
        token: the bearer token of the kubeconfig; a request with another token gets 401 (None: no check).
        anonymous: whether a request without any Authorization header is served. kubectl (client-go)
            does not send bearer tokens over plain http, so this is on by default; the Python client
            does send it, which tests can check with ``anonymous=False``.
        user: the user name Forbidden messages and access reviews mention.
        version: the ``gitVersion`` served at ``/version`` (without the ``v``).
        optional_groups: add-on groups served (default all of keda.sh, http.keda.sh,
            serving.knative.dev, external.metrics.k8s.io); switch with `enable_group`/`disable_group`.
        tls: serve HTTPS with a self-signed certificate (made with the openssl binary); `ca_file` is its CA.
    """

    def __init__(self, *, token: str | None = DEFAULT_TOKEN, anonymous: bool = True, user: str = DEFAULT_USER,
                 version: str = DEFAULT_VERSION, optional_groups: Iterable[str] | None = None,
                 tls: bool = False) -> None:
        self.token = token
        self.anonymous = anonymous
        self.user = user
        self.version = version
        self.tls = tls
        self.ca_file: str | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._group_order: list[str] = []
        self._crd_types: dict[str, tuple[ResourceType, ...]] = {}
        self._optional_on: set[str] = set(OPTIONAL_TYPES if optional_groups is None else optional_groups)
        for rt in BUILTIN_TYPES:
            self._register(rt)
        for types in OPTIONAL_TYPES.values():
            for rt in types:
                self._register(rt)
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 1000
        self._history: list[tuple[int, str, tuple[str, str], dict[str, Any]]] = []
        self._history_floor = self._rv
        self._requests: list[RecordedRequest] = []
        self.traffic = Traffic()
        self.pager = Pager()
        self.watches = WatchControl()
        self._denied: list[tuple[str, str, str | None, str | None]] = []
        self._logs: dict[tuple[str, str, str | None, bool], str] = {}
        self._checkpoint: dict[str | None, tuple[str, str | None]] = {None: ("ok", None)}
        self._proxy: dict[tuple[str, str, str], tuple[int, bytes, str]] = {}
        self._service_proxy: dict[tuple[str, str, str, str], tuple[int, bytes, str]] = {}
        self._checkpoints: list[CheckpointCall] = []
        self._exec_handlers: dict[tuple[str, str | None], ExecHandler] = {}
        self._execs: list[ExecCall] = []
        self.faults = Faults()  # injected failures, before or after a commit (tests.support.faults)
        self._stopping = False
        # Validating admission, run in order on every create/update through the REST API (not `seed`);
        # Knative's Service webhook is always there, KEDA's is added per version by the fixtures.
        self.admission: list[AdmissionHook] = [KnativeAdmission(self)]
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server URL (``http://127.0.0.1:PORT`` or https with `tls`)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        """Bind a free port and serve in a daemon thread."""
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.api = self
        if self.tls:
            import ssl

            self._tmpdir = tempfile.mkdtemp(prefix="apiserver-tls-")
            cert, key = self._make_cert(self._tmpdir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
            self.ca_file = cert
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"apiserver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End watches, stop serving and close the socket."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _make_cert(directory: str) -> tuple[str, str]:
        cert, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        return cert, key

    def kubeconfig_dict(self, *, context: str = "test", namespace: str | None = "default",
                        cluster: str = "test-cluster", user: str = "test-user", token: str | None = None,
                        insecure: bool = False) -> dict[str, Any]:
        """A kubeconfig document (one cluster, user and context) pointing at this server."""
        cluster_entry: dict[str, Any] = {"server": self.url}
        if self.tls and insecure:
            cluster_entry["insecure-skip-tls-verify"] = True
        context_entry: dict[str, Any] = {"cluster": cluster, "user": user}
        if namespace:
            context_entry["namespace"] = namespace
        return {"apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": cluster, "cluster": cluster_entry}],
                "users": [{"name": user, "user": {"token": token or self.token or "unused"}}],
                "contexts": [{"name": context, "context": context_entry}],
                "current-context": context}

    def write_kubeconfig(self, path: str | os.PathLike[str], **kw: Any) -> str:
        """Write `kubeconfig_dict` (same keyword arguments) to ``path``; returns the path."""
        Path(path).write_text(yaml.safe_dump(self.kubeconfig_dict(**kw), sort_keys=False))
        return str(path)

    # ---- test configuration -------------------------------------------------------------------------

    def enable_group(self, group: str) -> None:
        """Serve an optional add-on group (keda.sh, http.keda.sh, serving.knative.dev, external.metrics.k8s.io)."""
        if group not in OPTIONAL_TYPES:
            raise ValueError(f"{group} is not an optional group: {sorted(OPTIONAL_TYPES)}")
        with self._lock:
            self._optional_on.add(group)

    def disable_group(self, group: str) -> None:
        """Stop serving an optional add-on group (as on a cluster without it)."""
        if group not in OPTIONAL_TYPES:
            raise ValueError(f"{group} is not an optional group: {sorted(OPTIONAL_TYPES)}")
        with self._lock:
            self._optional_on.discard(group)

    def deny(self, verb: str, resource: str, *, namespace: str | None = None) -> None:
        """Forbid ``verb`` (or ``*``) on ``resource`` (``deployments.apps``, ``nodes/proxy``, ``pods``).

        Matching requests get 403 and SelfSubjectAccessReviews answer allowed=false.
        ``namespace`` limits the rule to one namespace.
        """
        name, _, sub = resource.partition("/")
        plural, _, group = name.partition(".")
        with self._lock:
            self._denied.append((verb, plural + (f"/{sub}" if sub else ""), group, namespace))

    def allow_all(self) -> None:
        """Drop every deny rule."""
        with self._lock:
            self._denied.clear()

    def set_log(self, namespace: str, pod: str, text: str, *, container: str | None = None,
                previous: bool = False) -> None:
        """The text the pod ``log`` subresource returns (``previous=True``: the previous container's log).

        ``container=None`` stands for the pod's only container.
        """
        with self._lock:
            self._logs[(namespace, pod, container, previous)] = text

    def set_checkpoint(self, mode: str = "ok", *, message: str | None = None, node: str | None = None) -> None:
        """How the kubelet answers ``POST .../nodes/N/proxy/checkpoint/...`` (on ``node``, or every node).

        Modes: ``ok`` (200 with the archive path; 404 when the pod or container is unknown),
        ``forbidden`` (403, the kube-apiserver-kubelet-client message), ``notfound`` (404, the
        ContainerCheckpoint gate off), ``error`` (500 with a CRIU error, or ``message``).
        """
        if mode not in ("ok", "forbidden", "notfound", "error"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        with self._lock:
            self._checkpoint[node] = (mode, message)

    def set_node_proxy(self, node: str, path: str, body: bytes | str | Mapping[str, Any] | list[Any], *,
                       status: int = 200, content_type: str | None = None, method: str = "GET") -> None:
        """A configured kubelet answer for ``METHOD /api/v1/nodes/{node}/proxy/{path}``."""
        data, ctype = _encoded(body, content_type)
        with self._lock:
            self._proxy[(node, method.upper(), path.strip("/"))] = (status, data, ctype)

    def set_service_proxy(self, namespace: str, service: str, path: str,
                          body: bytes | str | Mapping[str, Any] | list[Any], *, status: int = 200,
                          content_type: str | None = None, method: str = "GET") -> None:
        """What a Service's pods answer to ``METHOD /api/v1/namespaces/{ns}/services/{svc}[:port]/proxy/{path}``.

        Without an answer the server says what the real one says for a Service with no ready
        endpoints: 503 ``no endpoints available for service``.
        """
        data, ctype = _encoded(body, content_type)
        with self._lock:
            self._service_proxy[(namespace, service, method.upper(), path.strip("/"))] = (status, data, ctype)

    def set_exec(self, namespace: str, pod: str | None, handler: ExecHandler) -> None:
        """How ``exec`` in a pod answers: ``handler(argv, container) -> (stdout, stderr, exit code)``.

        ``pod=None`` covers every pod of the namespace (helper pods have generated names); an exact
        pod entry wins. Without a handler the exec fails with an InternalError status on channel 3.
        `file_exec_handler` serves files for ``cat PATH``, ``stat -c %s PATH`` and ``sha256sum PATH``.
        """
        with self._lock:
            self._exec_handlers[(namespace, pod)] = handler

    @property
    def execs(self) -> list[ExecCall]:
        """The exec calls that reached a container, oldest first."""
        with self._lock:
            return list(self._execs)

    @property
    def checkpoints(self) -> list[CheckpointCall]:
        """The checkpoint requests that reached a node, oldest first."""
        with self._lock:
            return list(self._checkpoints)

    # ---- request record ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since start (or `reset_requests`), oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def requests_to(self, method: str | None = None, path: str | None = None, *,
                    prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests filtered by method, exact path or path prefix."""
        return [r for r in self.requests if (method is None or r.method == method.upper())
                and (path is None or r.path == path) and (prefix is None or r.path.startswith(prefix))]

    # ---- data access for tests ----------------------------------------------------------------------

    def seed(self, *sources: Any) -> list[dict[str, Any]]:
        """Store objects as they are (status kept), from YAML text, files, dicts or lists of them.

        Multi-document YAML and ``List`` kinds are expanded; CustomResourceDefinitions are stored
        first, so their custom resources can come in the same call. Returns the stored objects.

        Raises:
            ValueError: an object of a kind the server does not serve, or without a name.
        """
        objects = list(_expand(sources))
        objects.sort(key=lambda o: o.get("kind") != "CustomResourceDefinition")
        stored = []
        with self._lock:
            for obj in objects:
                stored.append(self._seed_one(obj))
        return stored

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a kind (all namespaces when ``namespace`` is None), sorted by namespace/name."""
        rt, version = self._type_for(api_version, kind)
        with self._lock:
            items = [o for (ns, _), o in sorted(self._store.get(rt.key, {}).items())
                     if namespace is None or ns == namespace]
            return [self._present(rt, version, o) for o in items]

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None
                   ) -> dict[str, Any] | None:
        """One stored object (namespace defaults to ``default`` for namespaced kinds), or None."""
        rt, version = self._type_for(api_version, kind)
        ns = (namespace or "default") if rt.namespaced else ""
        with self._lock:
            obj = self._store.get(rt.key, {}).get((ns, name))
            return self._present(rt, version, obj) if obj else None

    def add_event(self, involved: Mapping[str, Any], reason: str, message: str, *, type: str = "Normal",  # noqa: A002
                  component: str = "kubelet", timestamp: str | None = None, count: int = 1,
                  field_path: str | None = None) -> dict[str, Any]:
        """Store a core v1 Event about ``involved`` (an object with apiVersion/kind/metadata)."""
        meta = involved.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        stamp = timestamp or now_rfc3339()
        ref = {"apiVersion": involved.get("apiVersion", "v1"), "kind": involved.get("kind", "Pod"),
               "name": meta.get("name"), "namespace": ns}
        if meta.get("uid"):
            ref["uid"] = meta["uid"]
        if field_path:
            ref["fieldPath"] = field_path
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}", "namespace": ns,
                              "creationTimestamp": stamp},
                 "involvedObject": ref, "reason": reason, "message": message, "type": type,
                 "source": {"component": component}, "firstTimestamp": stamp, "lastTimestamp": stamp,
                 "count": count, "reportingComponent": component}
        return self.seed(event)[0]

    def compact(self) -> int:
        """Forget the watch history up to now (like an etcd compaction): a watch from an older
        resourceVersion, or a continue token from an older list, gets 410 Expired. Returns the floor."""
        with self._changed:
            self._history_floor = self._rv
            self._history = []
            return self._history_floor

    def cut_watches(self, mode: str = "expire") -> None:
        """End every open watch: ``"expire"`` sends an in-stream ERROR 410 (the watch cache fell behind,
        the client must list again); ``"break"`` drops the connection mid-stream (the client should
        watch again from its last resourceVersion)."""
        with self._changed:
            self.watches.cut(mode)
            self._changed.notify_all()

    # ---- internals: types -------------------------------------------------------------------------

    def _register(self, rt: ResourceType) -> None:
        for version in rt.versions:
            self._types[(rt.api_version(version), rt.plural)] = rt
        if rt.group and rt.group not in self._group_order:
            self._group_order.append(rt.group)

    def _group_served(self, group: str) -> bool:
        return group not in OPTIONAL_TYPES or group in self._optional_on

    def _served_types(self, api_version: str) -> list[ResourceType]:
        group = api_version.split("/")[0] if "/" in api_version else ""
        if not self._group_served(group):
            return []
        seen, out = set(), []
        for (gv, _), rt in self._types.items():
            if gv == api_version and rt.key not in seen:
                seen.add(rt.key)
                out.append(rt)
        return out

    def _type_for(self, api_version: str, kind: str) -> tuple[ResourceType, str]:
        version = api_version.split("/")[-1]
        for rt in self._served_types(api_version):
            if rt.kind == kind:
                return rt, version
        raise ValueError(f"the test API server does not serve {kind} in {api_version} "
                         "(seed its CustomResourceDefinition first, or enable its group)")

    def _group_versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for group in self._group_order:
            if not self._group_served(group):
                continue
            versions: list[str] = []
            for rt in self._types.values():
                if rt.group == group:
                    for v in rt.versions:
                        if v not in versions:
                            versions.append(v)
            if versions:
                out[group] = versions
        return out

    # ---- internals: storage -----------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, kind: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        rv = int(obj["metadata"]["resourceVersion"]) if kind != "DELETED" else self._next_rv()
        if kind == "DELETED":
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(rv)
        self._history.append((rv, kind, rt.key, obj))
        if len(self._history) > _WATCH_HISTORY:
            dropped = self._history[: len(self._history) - _WATCH_HISTORY]
            self._history = self._history[len(dropped):]
            self._history_floor = dropped[-1][0]
        self._changed.notify_all()

    def _put(self, rt: ResourceType, obj: dict[str, Any], event: str) -> dict[str, Any]:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        self._store.setdefault(rt.key, {})[(meta.get("namespace", "") if rt.namespaced else "", meta["name"])] = obj
        self._emit(event, rt, copy.deepcopy(obj))
        return obj

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._store.get(rt.key, {}).pop((meta.get("namespace", "") if rt.namespaced else "", meta["name"]), None)
        self._emit("DELETED", rt, obj)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._unregister_crd(obj)
        if rt.key == ("", "namespaces"):
            for key, objs in list(self._store.items()):
                for (ns, _), dependent in list(objs.items()):
                    if ns == meta["name"]:
                        dep_rt = next(t for t in self._types.values() if t.key == key)
                        self._remove(dep_rt, dependent)

    def _find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._store.get(rt.key, {}).get((namespace or "" if rt.namespaced else "", name))

    def _present(self, rt: ResourceType, version: str, obj: Mapping[str, Any], *, in_list: bool = False
                 ) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        if in_list and not rt.custom:
            out.pop("apiVersion", None)
            out.pop("kind", None)
            return out
        out["apiVersion"] = rt.api_version(version)
        out["kind"] = rt.kind
        return {"apiVersion": out.pop("apiVersion"), "kind": out.pop("kind"), **out}

    def _seed_one(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        rt, version = self._type_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
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
        existed = self._find(rt, meta.get("namespace"), meta["name"]) is not None
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        self._put(rt, obj, "MODIFIED" if existed else "ADDED")
        return self._present(rt, version, obj)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        try:
            types = crd_types(crd)
        except ValueError as exc:
            name = (crd.get("metadata") or {}).get("name", "")
            raise ApiError(422, "Invalid", f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: {exc}',
                           {"name": name, "group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition"}
                           ) from None
        for rt in types:
            for existing in list(self._types.values()):
                if existing.key == rt.key and not existing.custom:
                    break
            else:
                for key in [k for k, v in self._types.items() if v.key == rt.key]:
                    del self._types[key]
                self._register(rt)
        self._crd_types[crd["metadata"]["name"]] = types
        spec = crd.get("spec") or {}
        stamp = now_rfc3339()
        crd["status"] = {
            "acceptedNames": dict(spec.get("names") or {}),
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": stamp},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": stamp},
            ],
        }

    def _unregister_crd(self, crd: Mapping[str, Any]) -> None:
        for rt in self._crd_types.pop(crd["metadata"]["name"], ()):
            for key in [k for k, v in self._types.items() if v is rt]:
                del self._types[key]
            for obj in list(self._store.get(rt.key, {}).values()):
                self._remove(rt, obj)
            self._store.pop(rt.key, None)
            for optional in OPTIONAL_TYPES.get(rt.group, ()):
                if optional.key == rt.key:
                    self._register(optional)

    # ---- internals: HTTP ---------------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        record = RecordedRequest(h.command, path, query, h.headers.get("Content-Type", ""),
                                 h.headers.get("Accept", ""), h.headers.get("User-Agent", ""), body)
        with self._lock:
            self._requests.append(record)
        key = classify(h.command, path, query)
        self.traffic.count_request(key)
        if isinstance(h.wfile, CountingWriter):
            h.wfile.key = key
        try:
            authorization = h.headers.get("Authorization")
            if self.token is not None and authorization != f"Bearer {self.token}" and not (
                    authorization is None and self.anonymous):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            fault = self.faults.take(record)
            if fault is not None and fault.before_serving(h.connection):
                if fault.status is None:
                    h.close_connection = True
                    return
                self._send(h, fault.status, json.dumps(fault.status_body()).encode(), "application/json")
                return
            code, answer = self._route(record)
            if fault is not None and fault.after_serving(h.connection):
                h.close_connection = True
                return
            if isinstance(answer, _ExecSession):
                self._websocket_exec(h, answer)
                return
            if isinstance(answer, Iterator):
                self._send_stream(h, answer)
                return
            self._send(h, code, json.dumps(answer).encode(), "application/json")
        except ApiError as err:
            self._send(h, err.code, json.dumps(err.status()).encode(), "application/json")
        except RawAnswer as raw:
            self._send(h, raw.code, raw.body, raw.content_type)
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # pragma: no cover - a bug in this server: answer 500 with the cause
            bug = ApiError(500, "InternalError", f"test API server bug: {type(exc).__name__}: {exc}")
            self._send(h, 500, json.dumps(bug.status()).encode(), "application/json")

    @staticmethod
    def _send(h: _Handler, code: int, body: bytes, content_type: str) -> None:
        try:
            h.send_response(code)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _send_stream(h: _Handler, chunks: Iterator[bytes]) -> None:
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for chunk in chunks:
                h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True

    def _route(self, req: RecordedRequest) -> tuple[int, Any]:
        path = req.path.rstrip("/") or "/"
        if path == "/version":
            major, minor = self.version.split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": f"v{self.version}",
                         "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                         "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"}
        if path in ("/healthz", "/readyz", "/livez"):
            raise RawAnswer(200, "ok")
        if path.startswith("/openapi/"):
            return 200, self._openapi(path)
        segments = [s for s in path.split("/") if s]
        if not segments or segments[0] not in ("api", "apis"):
            raise RawAnswer(404, "404 page not found")
        with self._lock:
            if segments == ["api"]:
                return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]}
            if segments == ["apis"]:
                return 200, {"kind": "APIGroupList", "apiVersion": "v1",
                             "groups": [self._api_group(g, vs) for g, vs in self._group_versions().items()]}
            if segments[0] == "apis" and len(segments) == 2:
                versions = self._group_versions().get(segments[1])
                if not versions:
                    raise self._not_served()
                return 200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(segments[1], versions)}
            if segments[0] == "api":
                api_version, rest = segments[1], segments[2:]
            else:
                api_version, rest = f"{segments[1]}/{segments[2]}", segments[3:]
            types = self._served_types(api_version)
            if not types:
                raise self._not_served()
            version = api_version.split("/")[-1]
            if not rest:
                if req.method != "GET":
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                                   "requested resource")
                return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
                             "resources": [e for rt in types for e in rt.discovery(version)]}
            route = self._resolve(types, version, rest)
        return self._serve(req, route)

    @staticmethod
    def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    @staticmethod
    def _not_served() -> ApiError:
        return ApiError(404, "NotFound", "the server could not find the requested resource", {})

    @staticmethod
    def _resolve(types: list[ResourceType], version: str, rest: list[str]) -> _Route:
        by_plural = {rt.plural: rt for rt in types}
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in by_plural and by_plural[rest[2]].namespaced:
            rt = by_plural[rest[2]]
            tail = rest[3:]
            namespace: str | None = rest[1]
        elif rest[0] in by_plural:
            rt, tail, namespace = by_plural[rest[0]], rest[1:], None
        else:
            raise ApiServer._not_served()
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if sub and sub != "proxy" and len(tail) > 2:
            raise ApiServer._not_served()
        return _Route(rt, version, namespace, name, sub, tail[2:])

    # ---- authorization ------------------------------------------------------------------------------

    def _is_denied(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        for rule_verb, rule_resource, rule_group, rule_ns in self._denied:
            if rule_verb not in ("*", verb) or rule_resource not in ("*", resource):
                continue
            if rule_group and rule_group != group:
                continue
            if rule_ns and rule_ns != namespace:
                continue
            return True
        return False

    def _authorize(self, verb: str, route: _Route) -> None:
        rt = route.rt
        resource = rt.plural + (f"/{route.sub}" if route.sub else "")
        with self._lock:
            denied = self._is_denied(verb, rt.group, resource, route.namespace)
        if not denied:
            return
        subject = f'{rt.qualified()} "{route.name}"' if route.name else rt.qualified()
        scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
        raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                       f'"{resource}" in API group "{rt.group}" {scope}',
                       {"name": route.name or "", "group": rt.group, "kind": rt.plural})

    # ---- REST verbs ---------------------------------------------------------------------------------

    def _serve(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        method, rt = req.method, route.rt
        if route.sub == "proxy" and rt.key == ("", "nodes"):
            self._authorize({"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                             "DELETE": "delete"}.get(method, "get"), route)
            return self._node_proxy(req, route)
        if route.sub == "proxy" and rt.key == ("", "services"):
            self._authorize("get", route)
            return self._service_proxy_call(req, route)
        if route.sub and route.sub not in self._subresources(rt):
            raise self._not_served()
        if route.sub == "exec" and rt.key == ("", "pods"):
            if method not in ("GET", "POST"):
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource")
            self._authorize("create", route)
            return 101, self._exec_session(req, route)
        if route.name is None:
            verb = {"GET": "watch" if req.param("watch") in ("true", "1") else "list", "POST": "create",
                    "DELETE": "deletecollection"}.get(method)
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        base_verb = "list" if verb == "watch" else verb
        if verb is None or (not route.sub and base_verb not in rt.verbs):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                           {"group": rt.group, "kind": rt.plural})
        if route.sub == "log" and method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        self._authorize(verb, route)
        if verb == "watch":
            return 200, self._watch(req, route)
        if verb == "list":
            return 200, self._list(req, route)
        if verb == "create":
            return self._create(req, route)
        if verb == "deletecollection":
            return 200, self._delete_collection(req, route)
        if route.sub == "log":
            return self._log(req, route)
        if route.sub == "scale":
            return self._scale(req, route, verb)
        if verb == "get":
            with self._lock:
                obj = self._must_find(route)
                return 200, self._present(rt, route.version, obj)
        if verb == "update":
            return self._replace(req, route)
        if verb == "patch":
            return self._patch(req, route)
        return self._delete(req, route)

    @staticmethod
    def _subresources(rt: ResourceType) -> set[str]:
        subs = {name for name, _, _ in rt.extra_subresources}
        if rt.status:
            subs.add("status")
        if rt.scale:
            subs.add("scale")
        return subs

    def _must_find(self, route: _Route) -> dict[str, Any]:
        assert route.name is not None
        obj = self._find(route.rt, route.namespace, route.name)
        if obj is None:
            raise ApiError(404, "NotFound", f'{route.rt.qualified()} "{route.name}" not found',
                           {"name": route.name, "group": route.rt.group, "kind": route.rt.plural})
        return obj

    def _matching(self, req: RecordedRequest, route: _Route, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if route.rt.namespaced and route.namespace and meta.get("namespace") != route.namespace:
            return False
        try:
            return (sem.label_selector_matches(req.param("labelSelector"), meta.get("labels"))
                    and sem.field_selector_matches(req.param("fieldSelector"), obj, route.rt.kind))
        except sem.SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None

    def _list(self, req: RecordedRequest, route: _Route) -> dict[str, Any]:
        rt = route.rt
        token = req.param("continue")
        try:
            limit = self.pager.limit_of(req.param("limit"))
            with self._lock:
                if token:
                    items, offset, rv = self.pager.resume(token, self._history_floor)
                    snapshot: int | None = self.pager.snapshot_of(token)
                else:
                    items = [self._present(rt, route.version, o, in_list=True)
                             for _, o in sorted(self._store.get(rt.key, {}).items()) if self._matching(req, route, o)]
                    offset, rv, snapshot = 0, self._rv, None
            page, meta = self.pager.cut(items, offset, rv, limit, snapshot)
        except PageError as exc:
            raise ApiError(exc.code, exc.reason, exc.message) from None
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version(route.version), "metadata": meta,
                "items": page}

    def _watch(self, req: RecordedRequest, route: _Route) -> Iterator[bytes]:
        rt = route.rt
        try:
            seconds = float(req.param("timeoutSeconds") or _DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds") from None
        since = req.param("resourceVersion") or ""
        initial: list[bytes] = []
        with self._lock:
            self._matching(req, route, {})  # validate the selectors before the stream starts
            if since in ("", "0"):
                initial = [self._event_line("ADDED", rt, route.version, o)
                           for _, o in sorted(self._store.get(rt.key, {}).items()) if self._matching(req, route, o)]
                last = self._rv
            else:
                try:
                    last = int(since)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version {since!r}") from None
                if last < self._history_floor:
                    expired = ApiError(410, "Expired", f"too old resource version: {last} ({self._history_floor})")
                    initial = [json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n"]
                    last = -1
        return self._watch_stream(req, route, initial, last, time.monotonic() + seconds)

    def _watch_stream(self, req: RecordedRequest, route: _Route, initial: list[bytes], last: int,
                      deadline: float) -> Iterator[bytes]:
        yield from initial
        if last < 0:
            return
        epoch = self.watches.epoch
        bookmarks = req.param("allowWatchBookmarks") in ("true", "1")
        last_bookmark = time.monotonic()
        while True:
            with self._changed:
                if self._stopping:
                    return
                if self.watches.epoch != epoch:
                    if self.watches.mode == "break":
                        raise WatchBroken("the test API server broke the watch")
                    expired = ApiError(410, "Expired", f"too old resource version: {last} ({self._history_floor})")
                    line, epoch = json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n", -1
                    events = []
                else:
                    start = bisect.bisect_right(self._history, last, key=lambda entry: entry[0])
                    events = [(rv, kind, obj) for rv, kind, key, obj in self._history[start:]
                              if key == route.rt.key and self._matching(req, route, obj)]
                if epoch < 0:
                    pass
                elif not events:
                    newest = self._history[-1][0] if self._history else last
                    last = max(last, newest)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    if bookmarks and time.monotonic() - last_bookmark >= self.watches.bookmark_seconds:
                        last_bookmark = time.monotonic()
                        line = self.watches.bookmark(route.rt.kind, route.rt.api_version(route.version), last)
                    else:
                        self._changed.wait(timeout=min(remaining, 0.5, self.watches.bookmark_seconds))
                        continue
                else:
                    last = max(last, self._history[-1][0])
                    line = b"".join(self._event_line(kind, route.rt, route.version, obj) for _, kind, obj in events)
            yield line
            if epoch < 0:
                return

    def _event_line(self, kind: str, rt: ResourceType, version: str, obj: Mapping[str, Any]) -> bytes:
        return json.dumps({"type": kind, "object": self._present(rt, version, obj)}).encode() + b"\n"

    # ---- writes ---------------------------------------------------------------------------------------

    @staticmethod
    def _dry_run(req: RecordedRequest, options: Mapping[str, Any] | None = None) -> bool:
        values = req.query.get("dryRun") or list((options or {}).get("dryRun") or [])
        for value in values:
            if value != "All":
                raise ApiError(400, "BadRequest", f'Invalid dryRun value "{value}": must be "All"')
        return bool(values)

    def _manager(self, req: RecordedRequest) -> str:
        return req.param("fieldManager") or req.user_agent.split("/")[0] or "unknown"

    def _body_object(self, req: RecordedRequest, route: _Route) -> dict[str, Any]:
        obj = _parse_body(req.body)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        api_version = route.rt.api_version(route.version)
        expected_kind = "Scale" if route.sub == "scale" else route.rt.kind
        if obj.get("kind") and obj["kind"] != expected_kind:
            raise ApiError(400, "BadRequest", f'the kind in the data ({obj["kind"]}) does not match the expected '
                           f"kind ({expected_kind})")
        if route.sub != "scale" and obj.get("apiVersion") and obj["apiVersion"] not in (
                route.rt.api_version(v) for v in route.rt.versions):
            raise ApiError(400, "BadRequest", f'the API version in the data ({obj["apiVersion"]}) does not match '
                           f"the expected API version ({api_version})")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if route.rt.namespaced:
            if meta.get("namespace") and route.namespace and meta["namespace"] != route.namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                               "namespace sent on the request")
            if not route.namespace:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            meta["namespace"] = route.namespace
        else:
            meta.pop("namespace", None)
        if route.name is not None and meta.get("name") and meta["name"] != route.name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta['name']}) does not match the name "
                           f"on the URL ({route.name})")
        return obj

    def _invalid(self, route: _Route, name: str, field_path: str, message: str) -> ApiError:
        group = f".{route.rt.group}" if route.rt.group else ""
        return ApiError(422, "Invalid", f'{route.rt.kind}{group} "{name}" is invalid: {field_path}: {message}',
                        {"name": name, "group": route.rt.group, "kind": route.rt.kind,
                         "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field_path}]})

    def _create(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        rt = route.rt
        if rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews") and req.body.startswith(
                sem.PROTOBUF_MAGIC):
            return 201, self._access_review(sem.decode_access_review(req.body), route)
        if req.content_type.startswith("application/vnd.kubernetes.protobuf"):
            raise ApiError(415, "UnsupportedMediaType", "the test API server reads JSON and YAML bodies only")
        obj = self._body_object(req, route)
        dry = self._dry_run(req)
        if rt.key == ("authorization.k8s.io", "selfsubjectaccessreviews"):
            return 201, self._access_review(obj, route)
        meta = obj["metadata"]
        obj["apiVersion"], obj["kind"] = rt.api_version(route.version), rt.kind
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{_random_suffix()}"
            if not meta.get("name"):
                raise self._invalid(route, "", "metadata.name", "Required value: name or generateName is required")
            if self._find(rt, meta.get("namespace"), meta["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified()} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": rt.group, "kind": rt.plural})
            self._initialise(rt, obj)
            self._set_managed(obj, self._manager(req), "Update", obj["apiVersion"], "", sem.leaf_paths(obj))
            return self._store_new(rt, route, obj, dry)

    def _store_new(self, rt: ResourceType, route: _Route, obj: dict[str, Any], dry: bool) -> tuple[int, Any]:
        """Store a new object (a create, or an apply that creates): CRDs validated and registered; 201."""
        if rt.kind == "CustomResourceDefinition":
            self._validate_crd(route, obj)
        self._admit(route, "CREATE", obj, None, dry)
        if dry:
            return 201, self._present(rt, route.version, obj)
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        self._put(rt, obj, "ADDED")
        return 201, self._present(rt, route.version, obj)

    def _admit(self, route: _Route, operation: str, obj: dict[str, Any], old: dict[str, Any] | None,
               dry: bool) -> None:
        """Run the admission hooks on the object as it will be stored (apiVersion and kind set)."""
        if not self.admission:
            return
        presented = self._present(route.rt, route.version, obj)
        before = None if old is None else self._present(route.rt, route.version, old)
        for hook in self.admission:
            hook(AdmissionRequest(operation, route.rt.group, route.rt.kind, presented, before, dry, self))

    def _validate_crd(self, route: _Route, obj: Mapping[str, Any]) -> None:
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

    @staticmethod
    def _managed(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list((obj.get("metadata") or {}).get("managedFields") or [])

    def _set_managed(self, obj: dict[str, Any], manager: str, operation: str, api_version: str, sub: str,
                     paths: set[sem.FieldPath]) -> None:
        entries = [e for e in self._managed(obj)
                   if not (e.get("manager") == manager and e.get("operation") == operation
                           and e.get("subresource", "") == sub)]
        if paths:
            entry: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version,
                                     "time": now_rfc3339(), "fieldsType": "FieldsV1",
                                     "fieldsV1": sem.fields_v1(paths)}
            if sub:
                entry["subresource"] = sub
            entries.append(entry)
        obj["metadata"]["managedFields"] = entries

    def _record_update(self, old: Mapping[str, Any], new: dict[str, Any], manager: str, api_version: str,
                       sub: str) -> None:
        """Give the fields an Update changed to its manager; others lose them; vanished fields drop out."""
        changed = sem.changed_paths(old, new)
        entries = []
        mine: set[sem.FieldPath] = set()
        for entry in self._managed(old):
            paths = sem.paths_of_fields_v1(entry.get("fieldsV1") or {})
            paths = {p for p in paths if sem.get_path(new, p)[0]}
            if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (manager, "Update", sub):
                mine = paths
                continue
            paths -= changed
            if paths:
                entries.append({**entry, "fieldsV1": sem.fields_v1(paths)})
        new["metadata"]["managedFields"] = entries
        self._set_managed(new, manager, "Update", api_version, sub, mine | changed)

    def _commit(self, route: _Route, old: dict[str, Any], new: dict[str, Any], *, dry: bool) -> dict[str, Any]:
        """Store an updated object: identity kept, status/main split per subresource, generation, watch event."""
        rt = route.rt
        old_meta, meta = old["metadata"], new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        new["apiVersion"], new["kind"] = old.get("apiVersion", rt.api_version(route.version)), rt.kind
        if route.sub == "status":
            kept = copy.deepcopy(old)
            kept["status"] = new.get("status")
            if kept["status"] is None:
                kept.pop("status")
            kept["metadata"]["managedFields"] = meta.get("managedFields", [])
            new = kept
        elif rt.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
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
        if _same_ignoring_times(old, new):
            return self._present(rt, route.version, old)  # a no-op write keeps the resourceVersion
        if dry:
            return self._present(rt, route.version, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rt, new)
            return self._present(rt, route.version, new)
        if rt.kind == "CustomResourceDefinition" and route.sub != "status":
            self._register_crd(new)
        self._put(rt, new, "MODIFIED")
        return self._present(rt, route.version, new)

    @staticmethod
    def _check_rv(route: _Route, current: Mapping[str, Any], sent: Any) -> None:
        if sent and str(sent) != current["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {route.rt.qualified()} '
                           f'"{route.name}": the object has been modified; please apply your changes to the '
                           "latest version and try again",
                           {"name": route.name or "", "group": route.rt.group, "kind": route.rt.plural})

    def _replace(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        obj = self._body_object(req, route)
        dry = self._dry_run(req)
        with self._lock:
            old = self._must_find(route)
            self._check_rv(route, old, obj["metadata"].get("resourceVersion"))
            obj["metadata"]["managedFields"] = self._managed(old)
            new = copy.deepcopy(obj)
            new["metadata"]["managedFields"] = self._managed(old)
            self._carry_split(route, old, new)
            self._record_update(old, new, self._manager(req), old.get("apiVersion", ""), route.sub or "")
            return 200, self._commit(route, old, new, dry=dry)

    @staticmethod
    def _carry_split(route: _Route, old: Mapping[str, Any], new: dict[str, Any]) -> None:
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

    def _patched(self, req: RecordedRequest, route: _Route, current: Mapping[str, Any]) -> dict[str, Any]:
        ctype = req.content_type.split(";")[0].strip()
        patch = _parse_body(req.body)
        try:
            if ctype == "application/json-patch+json":
                result = sem.json_patch(current, patch)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "the patch is not a JSON object")
                result = sem.merge_patch(current, patch)
            else:
                raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - '
                               'accepted media types include: application/json-patch+json, '
                               'application/merge-patch+json, application/apply-patch+yaml, '
                               'application/strategic-merge-patch+json')
        except sem.PatchError as exc:
            if exc.code == 400:
                raise ApiError(400, "BadRequest", str(exc)) from None
            raise ApiError(422, "Invalid", str(exc), {"name": route.name or "", "group": route.rt.group,
                                                      "kind": route.rt.kind}) from None
        if not isinstance(result, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        return result

    def _patch(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        dry = self._dry_run(req)
        if req.content_type.split(";")[0].strip() == "application/apply-patch+yaml":
            return self._apply(req, route, dry)
        with self._lock:
            old = self._must_find(route)
            new = self._patched(req, route, old)
            self._check_rv(route, old, (new.get("metadata") or {}).get("resourceVersion"))
            new.setdefault("metadata", {})["managedFields"] = self._managed(old)
            self._carry_split(route, old, new)
            self._record_update(old, new, self._manager(req), old.get("apiVersion", ""), route.sub or "")
            return 200, self._commit(route, old, new, dry=dry)

    # ---- server-side apply ------------------------------------------------------------------------------

    def _apply(self, req: RecordedRequest, route: _Route, dry: bool) -> tuple[int, Any]:
        rt = route.rt
        manager = req.param("fieldManager")
        if not manager:
            raise ApiError(400, "BadRequest", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           "is required for apply patch")
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
        with self._lock:
            current = self._find(rt, route.namespace, route.name or "")
            if current is None:
                if sub:
                    self._must_find(route)  # raises NotFound: subresources cannot create
                obj = copy.deepcopy(applied)
                obj["apiVersion"] = rt.api_version(route.version)
                self._initialise(rt, obj)
                self._set_managed(obj, manager, "Apply", obj["apiVersion"], "", paths)
                return self._store_new(rt, route, obj, dry)
            self._check_rv(route, current, applied["metadata"].get("resourceVersion"))
            owned_before: set[sem.FieldPath] = set()
            others: list[tuple[dict[str, Any], set[sem.FieldPath]]] = []
            for entry in self._managed(current):
                entry_paths = sem.paths_of_fields_v1(entry.get("fieldsV1") or {})
                if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
                        manager, "Apply", sub):
                    owned_before = entry_paths
                else:
                    others.append((entry, entry_paths))
            conflicts = []
            for entry, entry_paths in others:
                for path in sorted(paths & entry_paths):
                    found, value = sem.get_path(current, path)
                    if not found or value != sem.get_path(applied, path)[1]:
                        conflicts.append((entry, path))
            if conflicts and not force:
                raise self._apply_conflict(route, conflicts)
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
            self._set_managed(new, manager, "Apply", rt.api_version(route.version), sub, paths)
            return 200, self._commit(route, current, new, dry=dry)

    def _apply_conflict(self, route: _Route, conflicts: list[tuple[dict[str, Any], sem.FieldPath]]) -> ApiError:
        causes, lines = [], []
        for entry, path in conflicts:
            who = f'"{entry.get("manager")}"'
            if entry.get("subresource"):
                who += f' with subresource "{entry["subresource"]}"'
            if entry.get("operation") == "Update":
                who += f' using {entry.get("apiVersion")}'
            causes.append({"reason": "FieldManagerConflict", "message": f"conflict with {who}",
                           "field": sem.path_string(path)})
            lines.append(f"conflict with {who}: {sem.path_string(path)}")
        noun = "conflict" if len(conflicts) == 1 else "conflicts"
        message = f"Apply failed with {len(conflicts)} {noun}: " + "\n".join(lines)
        return ApiError(409, "Conflict", message, {"name": route.name or "", "group": route.rt.group,
                                                    "kind": route.rt.plural, "causes": causes})

    # ---- delete and garbage collection ------------------------------------------------------------------

    def _delete_options(self, req: RecordedRequest) -> dict[str, Any]:
        options = _parse_body(req.body) or {}
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
            raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                           f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"')
        options["propagationPolicy"] = policy or "Background"
        return options

    def _delete(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        options = self._delete_options(req)
        dry = self._dry_run(req, options)
        with self._lock:
            obj = self._must_find(route)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {route.rt.qualified()} '
                               f'"{route.name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in '
                               f'object meta: {obj["metadata"].get("uid")}',
                               {"name": route.name or "", "group": route.rt.group, "kind": route.rt.plural})
            self._check_rv(route, obj, pre.get("resourceVersion"))
            if dry:
                return 200, self._present(route.rt, route.version, obj)
            return 200, self._delete_object(route.rt, route.version, obj, options["propagationPolicy"])

    def _delete_object(self, rt: ResourceType, version: str, obj: dict[str, Any], policy: str) -> dict[str, Any]:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                self._put(rt, obj, "MODIFIED")
            return self._present(rt, version, obj)
        self._collect_dependents(meta.get("uid"), policy)
        self._remove(rt, obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": meta["name"], "group": rt.group, "kind": rt.plural, "uid": meta.get("uid")}}

    def _collect_dependents(self, uid: str | None, policy: str) -> None:
        """Orphan: drop the ownerReference from dependents. Background/Foreground: delete them (recursively)
        unless another owner that still exists remains."""
        if not uid:
            return
        live_uids = {o["metadata"].get("uid") for objs in self._store.values() for o in objs.values()}
        live_uids.discard(uid)
        for key, objs in list(self._store.items()):
            dep_rt = next(t for t in self._types.values() if t.key == key)
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
                    self._put(dep_rt, updated, "MODIFIED")
                else:
                    self._delete_object(dep_rt, dep_rt.versions[0], dependent, "Background")

    def _delete_collection(self, req: RecordedRequest, route: _Route) -> dict[str, Any]:
        options = self._delete_options(req)
        dry = self._dry_run(req, options)
        with self._lock:
            victims = [o for o in self._store.get(route.rt.key, {}).values() if self._matching(req, route, o)]
            items = [self._present(route.rt, route.version, o, in_list=True) for o in victims]
            if not dry:
                for obj in victims:
                    self._delete_object(route.rt, route.version, obj, options["propagationPolicy"])
            return {"kind": f"{route.rt.kind}List", "apiVersion": route.rt.api_version(route.version),
                    "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    # ---- subresources -------------------------------------------------------------------------------

    def _scale_of(self, route: _Route, obj: Mapping[str, Any]) -> dict[str, Any]:
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
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
                "spec": {"replicas": sem.get_path(obj, spec_path)[1] or 0}, "status": status}

    def _scale(self, req: RecordedRequest, route: _Route, verb: str) -> tuple[int, Any]:
        dry = self._dry_run(req)
        with self._lock:
            obj = self._must_find(route)
            current = self._scale_of(route, obj)
            if verb == "get":
                return 200, current
            if verb == "update":
                wanted = self._body_object(req, route)
            elif req.content_type.split(";")[0].strip() == "application/apply-patch+yaml":
                wanted = sem.merge_patch(current, _parse_body(req.body) or {})
            else:
                wanted = self._patched(req, route, current)
            self._check_rv(route, obj, (wanted.get("metadata") or {}).get("resourceVersion")
                           if verb == "update" else None)
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid '
                               f"value: {replicas!r}: must be greater than or equal to 0",
                               {"name": route.name or "", "group": "autoscaling", "kind": "Scale"})
            assert route.rt.scale is not None
            new = copy.deepcopy(obj)
            node = new
            spec_path = [p for p in route.rt.scale.spec_replicas.split(".") if p]
            for part in spec_path[:-1]:
                node = node.setdefault(part, {})
            node[spec_path[-1]] = replicas
            main = _Route(route.rt, route.version, route.namespace, route.name, None)
            self._record_update(obj, new, self._manager(req), obj.get("apiVersion", ""), "scale")
            self._commit(main, obj, new, dry=dry)
            stored = new if dry else self._must_find(route)
            return 200, self._scale_of(route, stored)

    def _log(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        with self._lock:
            pod = self._must_find(route)
            spec = pod.get("spec") or {}
            containers = [c.get("name") for c in spec.get("containers") or []]
            others = [c.get("name") for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers")
                                                                                   or [])]
            container = req.param("container")
            if not container:
                if len(containers) != 1:
                    raise ApiError(400, "BadRequest", f"a container name must be specified for pod {route.name}, "
                                   f"choose one of: [{' '.join(str(c) for c in containers)}]")
                container = containers[0]
            elif container not in containers + others:
                raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
            previous = req.param("previous") in ("true", "1")
            key_ns = route.namespace or ""
            text = self._logs.get((key_ns, route.name or "", container, previous))
            if text is None and len(containers) == 1 and container == containers[0]:
                text = self._logs.get((key_ns, route.name or "", None, previous))
        if text is None:
            if previous:
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod '
                               f'"{route.name}" not found')
            text = ""
        tail = req.param("tailLines")
        if tail is not None:
            try:
                count = int(tail)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid tailLines {tail!r}") from None
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-count:]) if count > 0 else ""
        limit = req.param("limitBytes")
        if limit is not None and limit.isdigit():
            text = text.encode()[: int(limit)].decode("utf-8", "ignore")
        raise RawAnswer(200, text)

    def _exec_session(self, req: RecordedRequest, route: _Route) -> _ExecSession:
        """Validate an exec request like the API server and kubelet do, before any upgrade."""
        command = req.query.get("command") or []
        if not command:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        if not any(req.param(s) in ("true", "1") for s in ("stdin", "stdout", "stderr")):
            raise ApiError(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
        with self._lock:
            pod = self._must_find(route)
            containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
            container = req.param("container")
            if not container:
                if len(containers) != 1:
                    raise ApiError(400, "BadRequest", f"a container name must be specified for pod {route.name}, "
                                   f"choose one of: [{' '.join(containers)}]")
                container = containers[0]
            elif container not in containers:
                raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                raise ApiError(400, "BadRequest", f"cannot exec into a container in a completed pod; current phase "
                               f"is {phase}")
            if phase != "Running":
                raise ApiError(404, "NotFound", f'unable to upgrade connection: container not found ("{container}")')
            namespace, name = route.namespace or "default", route.name or ""
            handler = self._exec_handlers.get((namespace, name)) or self._exec_handlers.get((namespace, None))
        return _ExecSession(namespace, name, container, list(command), handler)

    def _websocket_exec(self, h: _Handler, session: _ExecSession) -> None:
        """Upgrade to a websocket, run the handler, stream its output in channel frames, then close."""
        if "websocket" not in h.headers.get("Upgrade", "").lower() or \
                "upgrade" not in h.headers.get("Connection", "").lower():
            raise ApiError(400, "BadRequest", "Upgrade request required")
        key = h.headers.get("Sec-WebSocket-Key")
        if not key:
            raise ApiError(400, "BadRequest", "missing Sec-WebSocket-Key")
        offered = ",".join(h.headers.get_all("Sec-WebSocket-Protocol") or [])
        protocol = exec_ws.choose_protocol(offered)
        if protocol is None:
            raise ApiError(400, "BadRequest", f"requested protocol(s) are not supported: [{offered}]; supports "
                           f"[{' '.join(exec_ws.PROTOCOLS)}]")
        stdout, stderr, code = b"", b"", None
        if session.handler is None:
            status = exec_ws.internal_error(f"the test API server has no exec handler for pod {session.namespace}/"
                                            f"{session.pod} (ApiServer.set_exec)")
        else:
            try:
                stdout, stderr, code = session.handler(list(session.command), session.container)
                status = exec_ws.exit_status(code, session.command)
            except Exception as exc:  # a bug in the test's handler: say so on the error channel
                status = exec_ws.internal_error(f"exec handler raised {type(exc).__name__}: {exc}")
        with self._lock:
            self._execs.append(ExecCall(session.namespace, session.pod, session.container, tuple(session.command),
                                        protocol, code, exec_ws.known_length(stdout)))
        h.close_connection = True
        try:
            h.send_response(101, "Switching Protocols")
            h.send_header("Upgrade", "websocket")
            h.send_header("Connection", "Upgrade")
            h.send_header("Sec-WebSocket-Accept", exec_ws.accept_key(key))
            h.send_header("Sec-WebSocket-Protocol", protocol)
            h.end_headers()
            h.wfile.flush()
            for chunk in exec_ws.chunks(stdout):  # a handler may stream (an iterator of chunks, sent as made)
                exec_ws.send_channel(h.wfile, exec_ws.STDOUT, chunk)
                h.wfile.flush()
            exec_ws.send_channel(h.wfile, exec_ws.STDERR, stderr)
            exec_ws.send_status(h.wfile, status)
            h.connection.settimeout(10)
            exec_ws.drain_until_close(h.rfile)
        except (OSError, ValueError):  # the client went away (or sent garbage): nothing more to say
            return

    def _node_proxy(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        node = route.name or ""
        with self._lock:
            self._must_find(_Route(route.rt, route.version, None, node, None))
            rest = [p for p in route.rest if p]
            if req.method == "POST" and len(rest) == 4 and rest[0] == "checkpoint":
                return self._checkpoint_call(req, node, rest[1], rest[2], rest[3])
            answer = self._proxy.get((node, req.method, "/".join(rest)))
        if answer is None:
            raise RawAnswer(404, "404 page not found\n")
        raise RawAnswer(answer[0], answer[1], answer[2])

    def _service_proxy_call(self, req: RecordedRequest, route: _Route) -> tuple[int, Any]:
        service = (route.name or "").split(":", 1)[0]
        namespace = route.namespace or "default"
        with self._lock:
            self._must_find(_Route(route.rt, route.version, namespace, service, None))
            answer = self._service_proxy.get((namespace, service, req.method, "/".join(p for p in route.rest if p)))
            if answer is None:
                answer = self._service_proxy.get((namespace, service, req.method, "*"))
        if answer is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{service}"',
                           {"name": service, "kind": "services"})
        raise RawAnswer(answer[0], answer[1], answer[2])

    def _checkpoint_call(self, req: RecordedRequest, node: str, namespace: str, pod: str, container: str
                         ) -> tuple[int, Any]:
        mode, message = self._checkpoint.get(node) or self._checkpoint[None]
        timeout = req.param("timeout")
        code, body = 200, b""
        if mode == "forbidden":
            code, body = 403, KUBELET_CLIENT_FORBIDDEN.encode()
        elif mode == "notfound":
            code, body = 404, b"404 page not found\n"
        elif timeout is not None and not timeout.lstrip("-").isdigit():
            code, body = 404, b"cannot parse value of timeout parameter\n"
        else:
            obj = self._store.get(("", "pods"), {}).get((namespace, pod))
            names = [c.get("name") for c in ((obj or {}).get("spec") or {}).get("containers") or []]
            if obj is None:
                code, body = 404, b"pod does not exist\n"
            elif container not in names:
                code, body = 404, f"container {container} does not exist\n".encode()
            elif mode == "error":
                detail = message or DEFAULT_CRIU_ERROR.format(container=container)
                code, body = 500, f"checkpointing of {namespace}/{pod}/{container} failed ({detail})".encode()
        self._checkpoints.append(CheckpointCall(node, namespace, pod, container, timeout, code))
        if code != 200:
            raise RawAnswer(code, body)
        archive = f"{CHECKPOINT_DIR}/checkpoint-{pod}_{namespace}-{container}-{now_rfc3339()}.tar"
        return 200, {"items": [archive]}

    def _access_review(self, review: dict[str, Any], route: _Route) -> dict[str, Any]:
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = str(attrs.get("resource", "")) + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
        with self._lock:
            denied = self._is_denied(str(attrs.get("verb", "")), str(attrs.get("group", "")), resource,
                                     attrs.get("namespace"))
        review["apiVersion"], review["kind"] = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
        review.setdefault("metadata", {})["creationTimestamp"] = None
        review["status"] = ({"allowed": False} if denied  # like an RBAC "no": no explicit deny, no reason
                            else {"allowed": True, "reason": "allowed by the test API server"})
        return review

    # ---- OpenAPI ------------------------------------------------------------------------------------

    def _openapi(self, path: str) -> dict[str, Any]:
        """A minimal OpenAPI v3: the index, and per group/version a permissive schema per kind and a PATCH
        path declaring ``fieldValidation`` (so kubectl validates server-side instead of downloading v2)."""
        with self._lock:
            gvs = ["v1"] + [f"{g}/{v}" for g, vs in self._group_versions().items() for v in vs]
            if path.rstrip("/") in ("/openapi/v3",):
                return {"paths": {("api/v1" if gv == "v1" else f"apis/{gv}"): {
                    "serverRelativeURL": f"/openapi/v3/{'api/v1' if gv == 'v1' else 'apis/' + gv}?hash={self._rv}"}
                    for gv in gvs}}
            suffix = path[len("/openapi/v3/"):].strip("/") if path.startswith("/openapi/v3/") else ""
            gv = "v1" if suffix == "api/v1" else suffix[len("apis/"):] if suffix.startswith("apis/") else ""
            types = self._served_types(gv) if gv else []
            if not types:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            schemas: dict[str, Any] = {}
            paths: dict[str, Any] = {}
            version = gv.split("/")[-1]
            field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                                "uniqueItems": True}
            for rt in types:
                gvk = {"group": rt.group, "version": version, "kind": rt.kind}
                scope = "/namespaces/{namespace}" if rt.namespaced else ""
                paths[f"/{suffix}{scope}/{rt.plural}/{{name}}"] = {"patch": {
                    "operationId": f"patch{rt.kind}", "x-kubernetes-group-version-kind": gvk,
                    "x-kubernetes-action": "patch", "parameters": [field_validation],
                    "responses": {"200": {"description": "OK"}}}}
                schemas[f"io.gpuscale.test.{rt.group or 'core'}.{version}.{rt.kind}"] = {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "x-kubernetes-group-version-kind": [{"group": rt.group, "kind": rt.kind, "version": version}],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{self.version}"},
                    "paths": paths, "components": {"schemas": schemas}}


def _same_ignoring_times(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two versions of an object differ only in managedFields timestamps (a no-op write)."""
    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        for entry in (out.get("metadata") or {}).get("managedFields") or []:
            entry.pop("time", None)
        return out

    return strip(old) == strip(new)


def _expand(sources: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Objects from YAML text, paths, dicts and lists (``List`` kinds and multi-doc YAML expanded)."""
    for source in sources:
        if source is None:
            continue
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and os.path.isfile(source)):
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


__all__ = ["ApiError", "ApiServer", "CheckpointCall", "DEFAULT_TOKEN", "ExecCall", "ExecHandler", "KUBELET_CLIENT_FORBIDDEN",
           "RecordedRequest", "file_exec_handler", "now_rfc3339"]
