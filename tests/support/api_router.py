"""The HTTP side of the test API server: the request handler, path parsing, authorization and the one
table from HTTP method to Kubernetes verb that dispatches to the handlers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.api_base import ApiError, ExecSession, RawAnswer, RecordedRequest, Route, not_served
from tests.support.api_crud import Crud
from tests.support.api_discovery import Discovery
from tests.support.api_store import Store
from tests.support.api_subresources import Subresources
from tests.support.kube_types import ResourceType
from tests.support.traffic import CountingWriter, classify

if TYPE_CHECKING:
    from tests.support.apiserver import ApiServer

# HTTP method -> (verb on a collection, verb on a named object); None: 405. A watch is a GET on a
# collection with ``watch=true``; proxy requests take the named verb, else the collection's, else get.
VERBS: dict[str, tuple[str | None, str | None]] = {
    "GET": ("list", "get"),
    "POST": ("create", None),
    "PUT": (None, "update"),
    "PATCH": (None, "patch"),
    "DELETE": ("deletecollection", "delete"),
}
_NOT_ALLOWED = "the server does not allow this method on the requested resource"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    def setup(self) -> None:
        """Count every byte written back (`ApiServer.traffic`)."""
        super().setup()
        self.wfile = CountingWriter(self.wfile, self.server.router.api.traffic)  # type: ignore[assignment]

    def _dispatch(self) -> None:
        self.server.router.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    router: Router


def http_server(router: Router) -> ThreadingHTTPServer:
    """An HTTP server on a free port of 127.0.0.1 answering through ``router`` (not yet serving)."""
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.router = router
    return httpd


class Authorizer:
    """Deny rules (``ApiServer.deny``): 403 on matching requests, allowed=false in access reviews."""

    def __init__(self, store: Store, api: ApiServer) -> None:
        self.store = store
        self.api = api
        self.denied: list[tuple[str, str, str | None, str | None]] = []

    def is_denied(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """Whether a deny rule matches (call under the store lock)."""
        for rule_verb, rule_resource, rule_group, rule_ns in self.denied:
            if rule_verb not in ("*", verb) or rule_resource not in ("*", resource):
                continue
            if rule_group and rule_group != group:
                continue
            if rule_ns and rule_ns != namespace:
                continue
            return True
        return False

    def authorize(self, verb: str, route: Route) -> None:
        """Raise the real server's 403 when a deny rule matches the request."""
        rt = route.rt
        resource = rt.plural + (f"/{route.sub}" if route.sub else "")
        with self.store.lock:
            denied = self.is_denied(verb, rt.group, resource, route.namespace)
        if not denied:
            return
        subject = f'{rt.qualified()} "{route.name}"' if route.name else rt.qualified()
        scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
        raise ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{self.api.user}" cannot {verb} resource '
            f'"{resource}" in API group "{rt.group}" {scope}',
            {"name": route.name or "", "group": rt.group, "kind": rt.plural},
        )

    def access_review(self, review: dict[str, Any], route: Route) -> dict[str, Any]:
        """Answer a SelfSubjectAccessReview from the deny rules."""
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = str(attrs.get("resource", "")) + (
            f"/{attrs['subresource']}" if attrs.get("subresource") else ""
        )
        with self.store.lock:
            denied = self.is_denied(
                str(attrs.get("verb", "")), str(attrs.get("group", "")), resource, attrs.get("namespace")
            )
        review["apiVersion"], review["kind"] = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
        review.setdefault("metadata", {})["creationTimestamp"] = None
        review["status"] = (
            {"allowed": False}
            if denied  # like an RBAC "no": no explicit deny, no reason
            else {"allowed": True, "reason": "allowed by the test API server"}
        )
        return review


class Router:
    """Parses each request's path into a `Route` and hands it to the handler of its verb."""

    def __init__(self, api: ApiServer, store: Store) -> None:
        self.api = api
        self.store = store
        self.recorded: list[RecordedRequest] = []
        self.auth = Authorizer(store, api)
        self.crud = Crud(store, api, self.auth)
        self.subresources = Subresources(store)
        self.discovery = Discovery(store, api)
        self._by_verb: dict[str, Callable[[RecordedRequest, Route], tuple[int, Any]]] = {
            "list": self.crud.list_objects,
            "watch": self.crud.watch,
            "create": self.crud.create,
            "deletecollection": self.crud.delete_collection,
            "get": self.crud.get_request,
            "update": self.crud.replace,
            "patch": self.crud.patch,
            "delete": self.crud.delete,
        }

    def handle(self, h: _Handler) -> None:
        """Record, count, authenticate, apply a fault, route and answer one HTTP request."""
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        record = RecordedRequest(
            h.command,
            path,
            query,
            h.headers.get("Content-Type", ""),
            h.headers.get("Accept", ""),
            h.headers.get("User-Agent", ""),
            body,
        )
        with self.store.lock:
            self.recorded.append(record)
        key = classify(h.command, path, query)
        self.api.traffic.count_request(key)
        if isinstance(h.wfile, CountingWriter):
            h.wfile.key = key
        try:
            authorization = h.headers.get("Authorization")
            if (
                self.api.token is not None
                and authorization != f"Bearer {self.api.token}"
                and not (authorization is None and self.api.anonymous)
            ):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            fault = self.api.faults.take(record)
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
            if isinstance(answer, ExecSession):
                self.subresources.websocket_exec(h, answer)
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
            return 200, self.discovery.version()
        if path in ("/healthz", "/readyz", "/livez"):
            raise RawAnswer(200, "ok")
        if path.startswith("/openapi/"):
            return 200, self.discovery.openapi(path)
        segments = [s for s in path.split("/") if s]
        if not segments or segments[0] not in ("api", "apis"):
            raise RawAnswer(404, "404 page not found")
        if segments == ["api"]:
            return 200, self.discovery.core()
        if segments == ["apis"]:
            return 200, self.discovery.groups()
        if segments[0] == "apis" and len(segments) == 2:
            return 200, self.discovery.group(segments[1])
        if segments[0] == "api":
            api_version, rest = segments[1], segments[2:]
        else:
            api_version, rest = f"{segments[1]}/{segments[2]}", segments[3:]
        with self.store.lock:
            types = self.store.served_types(api_version)
        if not types:
            raise not_served()
        if not rest:
            if req.method != "GET":
                raise ApiError(405, "MethodNotAllowed", _NOT_ALLOWED)
            return 200, self.discovery.resources(api_version, types)
        return self._serve(req, self._resolve(types, api_version.split("/")[-1], rest))

    @staticmethod
    def _resolve(types: list[ResourceType], version: str, rest: list[str]) -> Route:
        by_plural = {rt.plural: rt for rt in types}
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and rest[2] in by_plural
            and by_plural[rest[2]].namespaced
        ):
            rt = by_plural[rest[2]]
            tail = rest[3:]
            namespace: str | None = rest[1]
        elif rest[0] in by_plural:
            rt, tail, namespace = by_plural[rest[0]], rest[1:], None
        else:
            raise not_served()
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if sub and sub != "proxy" and len(tail) > 2:
            raise not_served()
        return Route(rt, version, namespace, name, sub, tail[2:])

    def _serve(self, req: RecordedRequest, route: Route) -> tuple[int, Any]:
        method, rt = req.method, route.rt
        on_collection, on_named = VERBS.get(method, (None, None))
        if route.sub == "proxy" and rt.key == ("", "nodes"):
            self.auth.authorize(on_named or on_collection or "get", route)
            return self.subresources.node_proxy(req, route)
        if route.sub == "proxy" and rt.key == ("", "services"):
            self.auth.authorize("get", route)
            return self.subresources.service_proxy_call(req, route)
        if route.sub and route.sub not in self._subresources(rt):
            raise not_served()
        if route.sub == "exec" and rt.key == ("", "pods"):
            if method not in ("GET", "POST"):
                raise ApiError(405, "MethodNotAllowed", _NOT_ALLOWED)
            self.auth.authorize("create", route)
            return 101, self.subresources.exec_session(req, route)
        verb = on_named if route.name is not None else on_collection
        if verb == "list" and req.param("watch") in ("true", "1"):
            verb = "watch"
        base_verb = "list" if verb == "watch" else verb
        if verb is None or (not route.sub and base_verb not in rt.verbs):
            raise ApiError(405, "MethodNotAllowed", _NOT_ALLOWED, {"group": rt.group, "kind": rt.plural})
        if route.sub == "log" and method != "GET":
            raise ApiError(405, "MethodNotAllowed", _NOT_ALLOWED)
        self.auth.authorize(verb, route)
        if route.sub == "log":
            return self.subresources.log(req, route)
        if route.sub == "scale":
            return self.crud.scale(req, route, verb)
        return self._by_verb[verb](req, route)

    @staticmethod
    def _subresources(rt: ResourceType) -> set[str]:
        subs = {name for name, _, _ in rt.extra_subresources}
        if rt.status:
            subs.add("status")
        if rt.scale:
            subs.add("scale")
        return subs
