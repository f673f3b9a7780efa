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

The parts: `tests.support.api_store` (objects, resourceVersions, watch history), `tests.support.api_router`
(HTTP, path parsing, authorization, the one method-to-verb table) and the handlers `tests.support.api_crud`
(verbs, patch, apply, delete, scale; managedFields in `tests.support.api_fields`),
`tests.support.api_subresources` (log, exec, proxy) and `tests.support.api_discovery`; their shared
vocabulary (ApiError, RecordedRequest, Route) is `tests.support.api_base`. This module is the front tests
use: ``server.store`` and ``server.router`` are the parts.

Use it through the pytest fixtures in `tests.support.kube_fixtures`, or directly::

    with ApiServer() as server:
        server.seed(yaml_text)
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support.admission_knative import KnativeAdmission
from tests.support.api_base import (
    DEFAULT_TOKEN,
    DEFAULT_USER,
    DEFAULT_VERSION,
    KUBELET_CLIENT_FORBIDDEN,
    AdmissionHook,
    AdmissionRequest,
    ApiError,
    CheckpointCall,
    ExecCall,
    RawAnswer,
    RecordedRequest,
    encoded,
    now_rfc3339,
)
from tests.support.api_router import Router, http_server
from tests.support.api_store import Store
from tests.support.exec_ws import ExecHandler, file_exec_handler
from tests.support.faults import Faults
from tests.support.kube_types import OPTIONAL_TYPES
from tests.support.listwatch import Pager, WatchControl
from tests.support.traffic import Traffic


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

    def __init__(
        self,
        *,
        token: str | None = DEFAULT_TOKEN,
        anonymous: bool = True,
        user: str = DEFAULT_USER,
        version: str = DEFAULT_VERSION,
        optional_groups: Iterable[str] | None = None,
        tls: bool = False,
    ) -> None:
        self.token = token
        self.anonymous = anonymous
        self.user = user
        self.version = version
        self.tls = tls
        self.ca_file: str | None = None
        self.store = Store(optional_groups)
        self.traffic = Traffic()
        self.pager = Pager()
        self.watches = WatchControl()
        self.faults = Faults()  # injected failures, before or after a commit (tests.support.faults)
        # Validating admission, run in order on every create/update through the REST API (not `seed`);
        # Knative's Service webhook is always there, KEDA's is added per version by the fixtures.
        self.admission: list[AdmissionHook] = [KnativeAdmission(self)]
        self.router = Router(self, self.store)
        self._httpd: ThreadingHTTPServer | None = None
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
        httpd = http_server(self.router)
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
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"apiserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """End watches, stop serving and close the socket."""
        with self.store.changed:
            self.store.stopping = True
            self.store.changed.notify_all()
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
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        return cert, key

    def kubeconfig_dict(
        self,
        *,
        context: str = "test",
        namespace: str | None = "default",
        cluster: str = "test-cluster",
        user: str = "test-user",
        token: str | None = None,
        insecure: bool = False,
    ) -> dict[str, Any]:
        """A kubeconfig document (one cluster, user and context) pointing at this server."""
        cluster_entry: dict[str, Any] = {"server": self.url}
        if self.tls and insecure:
            cluster_entry["insecure-skip-tls-verify"] = True
        context_entry: dict[str, Any] = {"cluster": cluster, "user": user}
        if namespace:
            context_entry["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": cluster, "cluster": cluster_entry}],
            "users": [{"name": user, "user": {"token": token or self.token or "unused"}}],
            "contexts": [{"name": context, "context": context_entry}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], **kw: Any) -> str:
        """Write `kubeconfig_dict` (same keyword arguments) to ``path``; returns the path."""
        Path(path).write_text(yaml.safe_dump(self.kubeconfig_dict(**kw), sort_keys=False))
        return str(path)

    # ---- test configuration -------------------------------------------------------------------------

    def enable_group(self, group: str) -> None:
        """Serve an optional add-on group (keda.sh, http.keda.sh, serving.knative.dev, external.metrics.k8s.io)."""
        if group not in OPTIONAL_TYPES:
            raise ValueError(f"{group} is not an optional group: {sorted(OPTIONAL_TYPES)}")
        with self.store.lock:
            self.store.optional_on.add(group)

    def disable_group(self, group: str) -> None:
        """Stop serving an optional add-on group (as on a cluster without it)."""
        if group not in OPTIONAL_TYPES:
            raise ValueError(f"{group} is not an optional group: {sorted(OPTIONAL_TYPES)}")
        with self.store.lock:
            self.store.optional_on.discard(group)

    def deny(self, verb: str, resource: str, *, namespace: str | None = None) -> None:
        """Forbid ``verb`` (or ``*``) on ``resource`` (``deployments.apps``, ``nodes/proxy``, ``pods``).

        Matching requests get 403 and SelfSubjectAccessReviews answer allowed=false.
        ``namespace`` limits the rule to one namespace.
        """
        name, _, sub = resource.partition("/")
        plural, _, group = name.partition(".")
        with self.store.lock:
            self.router.auth.denied.append((verb, plural + (f"/{sub}" if sub else ""), group, namespace))

    def allow_all(self) -> None:
        """Drop every deny rule."""
        with self.store.lock:
            self.router.auth.denied.clear()

    def set_log(
        self, namespace: str, pod: str, text: str, *, container: str | None = None, previous: bool = False
    ) -> None:
        """The text the pod ``log`` subresource returns (``previous=True``: the previous container's log).

        ``container=None`` stands for the pod's only container.
        """
        with self.store.lock:
            self.router.subresources.logs[(namespace, pod, container, previous)] = text

    def set_checkpoint(
        self, mode: str = "ok", *, message: str | None = None, node: str | None = None
    ) -> None:
        """How the kubelet answers ``POST .../nodes/N/proxy/checkpoint/...`` (on ``node``, or every node).

        Modes: ``ok`` (200 with the archive path; 404 when the pod or container is unknown),
        ``forbidden`` (403, the kube-apiserver-kubelet-client message), ``notfound`` (404, the
        ContainerCheckpoint gate off), ``error`` (500 with a CRIU error, or ``message``).
        """
        if mode not in ("ok", "forbidden", "notfound", "error"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        with self.store.lock:
            self.router.subresources.checkpoint[node] = (mode, message)

    def set_node_proxy(
        self,
        node: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | list[Any],
        *,
        status: int = 200,
        content_type: str | None = None,
        method: str = "GET",
    ) -> None:
        """A configured kubelet answer for ``METHOD /api/v1/nodes/{node}/proxy/{path}``."""
        data, ctype = encoded(body, content_type)
        with self.store.lock:
            self.router.subresources.proxy[(node, method.upper(), path.strip("/"))] = (status, data, ctype)

    def set_service_proxy(
        self,
        namespace: str,
        service: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | list[Any],
        *,
        status: int = 200,
        content_type: str | None = None,
        method: str = "GET",
    ) -> None:
        """What a Service's pods answer to ``METHOD /api/v1/namespaces/{ns}/services/{svc}[:port]/proxy/{path}``.

        Without an answer the server says what the real one says for a Service with no ready
        endpoints: 503 ``no endpoints available for service``.
        """
        data, ctype = encoded(body, content_type)
        with self.store.lock:
            self.router.subresources.service_proxy[(namespace, service, method.upper(), path.strip("/"))] = (
                status,
                data,
                ctype,
            )

    def set_exec(self, namespace: str, pod: str | None, handler: ExecHandler) -> None:
        """How ``exec`` in a pod answers: ``handler(argv, container) -> (stdout, stderr, exit code)``.

        ``pod=None`` covers every pod of the namespace (helper pods have generated names); an exact
        pod entry wins. Without a handler the exec fails with an InternalError status on channel 3.
        `file_exec_handler` serves files for ``cat PATH``, ``stat -c %s PATH`` and ``sha256sum PATH``.
        """
        with self.store.lock:
            self.router.subresources.exec_handlers[(namespace, pod)] = handler

    @property
    def execs(self) -> list[ExecCall]:
        """The exec calls that reached a container, oldest first."""
        with self.store.lock:
            return list(self.router.subresources.execs)

    @property
    def checkpoints(self) -> list[CheckpointCall]:
        """The checkpoint requests that reached a node, oldest first."""
        with self.store.lock:
            return list(self.router.subresources.checkpoints)

    # ---- request record ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since start (or `reset_requests`), oldest first."""
        with self.store.lock:
            return list(self.router.recorded)

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        with self.store.lock:
            self.router.recorded.clear()

    def requests_to(
        self, method: str | None = None, path: str | None = None, *, prefix: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by method, exact path or path prefix."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (prefix is None or r.path.startswith(prefix))
        ]

    # ---- data access for tests ----------------------------------------------------------------------

    def seed(self, *sources: Any) -> list[dict[str, Any]]:
        """Store objects as they are (status kept), from YAML text, files, dicts or lists of them.

        Multi-document YAML and ``List`` kinds are expanded; CustomResourceDefinitions are stored
        first, so their custom resources can come in the same call. Returns the stored objects.

        Raises:
            ValueError: an object of a kind the server does not serve, or without a name.
        """
        return self.store.seed(sources)

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a kind (all namespaces when ``namespace`` is None), sorted by namespace/name."""
        return self.store.objects(api_version, kind, namespace)

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One stored object (namespace defaults to ``default`` for namespaced kinds), or None."""
        return self.store.get_object(api_version, kind, name, namespace)

    def add_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        *,
        type: str = "Normal",  # noqa: A002
        component: str = "kubelet",
        timestamp: str | None = None,
        count: int = 1,
        field_path: str | None = None,
    ) -> dict[str, Any]:
        """Store a core v1 Event about ``involved`` (an object with apiVersion/kind/metadata)."""
        meta = involved.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        stamp = timestamp or now_rfc3339()
        ref = {
            "apiVersion": involved.get("apiVersion", "v1"),
            "kind": involved.get("kind", "Pod"),
            "name": meta.get("name"),
            "namespace": ns,
        }
        if meta.get("uid"):
            ref["uid"] = meta["uid"]
        if field_path:
            ref["fieldPath"] = field_path
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
                "namespace": ns,
                "creationTimestamp": stamp,
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": count,
            "reportingComponent": component,
        }
        return self.seed(event)[0]

    def compact(self) -> int:
        """Forget the watch history up to now (like an etcd compaction): a watch from an older
        resourceVersion, or a continue token from an older list, gets 410 Expired. Returns the floor."""
        return self.store.compact()

    def cut_watches(self, mode: str = "expire") -> None:
        """End every open watch: ``"expire"`` sends an in-stream ERROR 410 (the watch cache fell behind,
        the client must list again); ``"break"`` drops the connection mid-stream (the client should
        watch again from its last resourceVersion)."""
        with self.store.changed:
            self.watches.cut(mode)
            self.store.changed.notify_all()


__all__ = [
    "DEFAULT_TOKEN",
    "KUBELET_CLIENT_FORBIDDEN",
    "AdmissionHook",
    "AdmissionRequest",
    "ApiError",
    "ApiServer",
    "CheckpointCall",
    "ExecCall",
    "ExecHandler",
    "RawAnswer",
    "RecordedRequest",
    "file_exec_handler",
    "now_rfc3339",
]
