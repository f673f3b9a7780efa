"""Pod ``log`` and ``exec``, node ``proxy`` (the kubelet, with checkpoint) and Service ``proxy`` for the
test API server, with the answers tests configure (`ApiServer.set_log`, `set_exec`, `set_checkpoint`,
`set_node_proxy`, `set_service_proxy`) and the record of the calls that reached a node or container.
"""

from __future__ import annotations

from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support import exec_ws
from tests.support.api_base import (
    CHECKPOINT_DIR,
    DEFAULT_CRIU_ERROR,
    KUBELET_CLIENT_FORBIDDEN,
    ApiError,
    CheckpointCall,
    ExecCall,
    ExecSession,
    RawAnswer,
    RecordedRequest,
    Route,
    now_rfc3339,
)
from tests.support.api_store import Store
from tests.support.exec_ws import ExecHandler


def _container(
    req: RecordedRequest, route: Route, containers: list[str], others: list[str] | None = None
) -> str:
    """The ``container`` parameter checked against the pod's (``others``: also valid), or its only container."""
    container = req.param("container")
    if not container:
        if len(containers) != 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {route.name}, "
                f"choose one of: [{' '.join(containers)}]",
            )
        return containers[0]
    if container not in containers + (others or []):
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
    return container


class Subresources:
    """The answers of kubelets and containers, as configured, over the store's pods and nodes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.logs: dict[tuple[str, str, str | None, bool], str] = {}
        self.checkpoint: dict[str | None, tuple[str, str | None]] = {None: ("ok", None)}
        self.proxy: dict[tuple[str, str, str], tuple[int, bytes, str]] = {}
        self.service_proxy: dict[tuple[str, str, str, str], tuple[int, bytes, str]] = {}
        self.checkpoints: list[CheckpointCall] = []
        self.exec_handlers: dict[tuple[str, str | None], ExecHandler] = {}
        self.execs: list[ExecCall] = []

    def log(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """The pod ``log`` subresource: container choice, ``previous``, ``tailLines``, ``limitBytes``."""
        with self.store.lock:
            pod = self.store.must_find(route)
            spec = pod.get("spec") or {}
            containers = [str(c.get("name")) for c in spec.get("containers") or []]
            others = [
                str(c.get("name"))
                for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or [])
            ]
            container = _container(req, route, containers, others)
            previous = req.param("previous") in ("true", "1")
            key_ns = route.namespace or ""
            text = self.logs.get((key_ns, route.name or "", container, previous))
            if text is None and len(containers) == 1 and container == containers[0]:
                text = self.logs.get((key_ns, route.name or "", None, previous))
        if text is None:
            if previous:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{route.name}" not found',
                )
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

    def exec_session(self, req: RecordedRequest, route: Route) -> ExecSession:
        """Validate an exec request like the API server and kubelet do, before any upgrade."""
        command = req.query.get("command") or []
        if not command:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        if not any(req.param(s) in ("true", "1") for s in ("stdin", "stdout", "stderr")):
            raise ApiError(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
        with self.store.lock:
            pod = self.store.must_find(route)
            containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
            container = _container(req, route, containers)
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                raise ApiError(
                    400,
                    "BadRequest",
                    f"cannot exec into a container in a completed pod; current phase is {phase}",
                )
            if phase != "Running":
                raise ApiError(
                    404, "NotFound", f'unable to upgrade connection: container not found ("{container}")'
                )
            namespace, name = route.namespace or "default", route.name or ""
            handler = self.exec_handlers.get((namespace, name)) or self.exec_handlers.get((namespace, None))
        return ExecSession(namespace, name, container, list(command), handler)

    def websocket_exec(self, h: BaseHTTPRequestHandler, session: ExecSession) -> None:
        """Upgrade to a websocket, run the handler, stream its output in channel frames, then close."""
        if (
            "websocket" not in h.headers.get("Upgrade", "").lower()
            or "upgrade" not in h.headers.get("Connection", "").lower()
        ):
            raise ApiError(400, "BadRequest", "Upgrade request required")
        key = h.headers.get("Sec-WebSocket-Key")
        if not key:
            raise ApiError(400, "BadRequest", "missing Sec-WebSocket-Key")
        offered = ",".join(h.headers.get_all("Sec-WebSocket-Protocol") or [])
        protocol = exec_ws.choose_protocol(offered)
        if protocol is None:
            raise ApiError(
                400,
                "BadRequest",
                f"requested protocol(s) are not supported: [{offered}]; supports "
                f"[{' '.join(exec_ws.PROTOCOLS)}]",
            )
        stdout: bytes | Iterable[bytes] = b""
        stderr, code = b"", None
        if session.handler is None:
            status = exec_ws.internal_error(
                f"the test API server has no exec handler for pod {session.namespace}/"
                f"{session.pod} (ApiServer.set_exec)"
            )
        else:
            try:
                stdout, stderr, code = session.handler(list(session.command), session.container)
                status = exec_ws.exit_status(code, session.command)
            except Exception as exc:  # a bug in the test's handler: say so on the error channel
                status = exec_ws.internal_error(f"exec handler raised {type(exc).__name__}: {exc}")
        with self.store.lock:
            self.execs.append(
                ExecCall(
                    session.namespace,
                    session.pod,
                    session.container,
                    tuple(session.command),
                    protocol,
                    code,
                    exec_ws.known_length(stdout),
                )
            )
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

    def node_proxy(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """``/api/v1/nodes/N/proxy/...``: the kubelet checkpoint call or a configured answer."""
        node = route.name or ""
        with self.store.lock:
            self.store.must_find(Route(route.rt, route.version, None, node, None))
            rest = [p for p in route.rest if p]
            if req.method == "POST" and len(rest) == 4 and rest[0] == "checkpoint":
                return self._checkpoint_call(req, node, rest[1], rest[2], rest[3])
            answer = self.proxy.get((node, req.method, "/".join(rest)))
        if answer is None:
            raise RawAnswer(404, "404 page not found\n")
        raise RawAnswer(answer[0], answer[1], answer[2])

    def service_proxy_call(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        """``.../services/S[:port]/proxy/...``: a configured answer, or 503 without one."""
        service = (route.name or "").split(":", 1)[0]
        namespace = route.namespace or "default"
        with self.store.lock:
            self.store.must_find(Route(route.rt, route.version, namespace, service, None))
            answer = self.service_proxy.get(
                (namespace, service, req.method, "/".join(p for p in route.rest if p))
            )
            if answer is None:
                answer = self.service_proxy.get((namespace, service, req.method, "*"))
        if answer is None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f'no endpoints available for service "{service}"',
                {"name": service, "kind": "services"},
            )
        raise RawAnswer(answer[0], answer[1], answer[2])

    def _checkpoint_call(
        self, req: RecordedRequest, node: str, namespace: str, pod: str, container: str
    ) -> tuple[int, Any]:
        mode, message = self.checkpoint.get(node) or self.checkpoint[None]
        timeout = req.param("timeout")
        code, body = 200, b""
        if mode == "forbidden":
            code, body = 403, KUBELET_CLIENT_FORBIDDEN.encode()
        elif mode == "notfound":
            code, body = 404, b"404 page not found\n"
        elif timeout is not None and not timeout.lstrip("-").isdigit():
            code, body = 404, b"cannot parse value of timeout parameter\n"
        else:
            obj = self.store.by_type.get(("", "pods"), {}).get((namespace, pod))
            names = [c.get("name") for c in ((obj or {}).get("spec") or {}).get("containers") or []]
            if obj is None:
                code, body = 404, b"pod does not exist\n"
            elif container not in names:
                code, body = 404, f"container {container} does not exist\n".encode()
            elif mode == "error":
                detail = message or DEFAULT_CRIU_ERROR.format(container=container)
                code, body = 500, f"checkpointing of {namespace}/{pod}/{container} failed ({detail})".encode()
        self.checkpoints.append(CheckpointCall(node, namespace, pod, container, timeout, code))
        if code != 200:
            raise RawAnswer(code, body)
        archive = f"{CHECKPOINT_DIR}/checkpoint-{pod}_{namespace}-{container}-{now_rfc3339()}.tar"
        return 200, {"items": [archive]}
