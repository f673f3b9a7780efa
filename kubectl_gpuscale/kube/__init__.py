"""The cluster gateway: the only module that imports `kubernetes`.

Objects are plain dicts straight from the API server's JSON (no typed models:
they validate every response and cost 10x on large lists). Every HTTP or
connection failure becomes a typed `GpuscaleError` with what to do about it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.errors import (
    ConflictError,
    ForbiddenError,
    GpuscaleError,
    InputError,
    InvalidError,
    NotFoundError,
    UnreachableError,
)
from kubectl_gpuscale.kube.resources import Resource, known

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DEFAULT_FIELD_MANAGER = "kubectl-gpuscale"
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds a non-watch, non-stream request may take unless --request-timeout says (0: none)."""

Objects = list[dict[str, Any]]
Versions = list[str]
"""A list of Kubernetes objects as plain dicts."""

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class CommandFailedError(GpuscaleError):
    """A command run in a pod (`Cluster.exec_stream`) failed.

    `command_exit` is its exit code, None when it could not run at all.
    """

    def __init__(self, what: str, why: str = "", fix: str = "", *, command_exit: int | None = None) -> None:
        super().__init__(what, why, fix)
        self.command_exit = command_exit


class ExpiredError(GpuscaleError):
    """410 Gone: a resourceVersion or continue token older than the server keeps (list again)."""


@dataclass
class Response:
    """A raw answer from the API server."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


class Cluster:
    """One connection to a Kubernetes API server.

    Build it with `Cluster.connect`; every method returns plain dicts.
    """

    def __init__(self, api_client: Any, *, default_namespace: str = "default", context: str | None = None,
                 request_timeout: float | None = None, field_manager: str = DEFAULT_FIELD_MANAGER) -> None:
        self._api = api_client
        self.default_namespace = default_namespace
        self.context = context
        self.request_timeout = request_timeout
        self.field_manager = field_manager
        self._discovered: dict[str, Objects | None] = {}

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def connect(cls, *, kubeconfig: str | None = None, context: str | None = None,
                request_timeout: float | None = None, insecure_skip_tls_verify: bool = False,
                field_manager: str = DEFAULT_FIELD_MANAGER) -> Cluster:
        """Connect from a kubeconfig (``KUBECONFIG`` lists honoured), without touching global state.

        Falls back to the in-cluster service account only when no kubeconfig or
        context was asked for and no kubeconfig file exists.

        Raises:
            InputError: the kubeconfig is missing, unreadable or has no such context.
        """
        import yaml
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        configuration.retries = False
        config_file = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        files = [p for p in config_file.split(os.pathsep) if p]
        have_file = any(os.path.exists(os.path.expanduser(p)) for p in files)
        namespace = "default"
        if kubeconfig and not os.path.exists(kubeconfig):
            raise InputError(f"cannot read kubeconfig {kubeconfig}", "no such file",
                             "check the --kubeconfig path")
        if not have_file and not kubeconfig and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise InputError("cannot load the in-cluster config", str(exc),
                                 "pass --kubeconfig or set KUBECONFIG") from None
            try:
                with open(IN_CLUSTER_NAMESPACE_FILE) as fh:
                    namespace = fh.read().strip() or "default"
            except OSError:
                pass
        else:
            if not have_file:
                raise InputError("no kubeconfig found", f"{config_file} does not exist",
                                 "pass --kubeconfig, set KUBECONFIG, or run inside a cluster")
            try:
                config.load_kube_config(config_file=config_file, context=context,
                                        client_configuration=configuration, persist_config=False)
                contexts, current = config.list_kube_config_contexts(config_file=config_file)
            except ConfigException as exc:
                raise InputError(f"cannot use kubeconfig {config_file}", str(exc).splitlines()[0],
                                 "check --context and the file (kubectl config get-contexts)") from None
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read kubeconfig {config_file}", str(exc).splitlines()[0],
                                 "check the file is valid YAML") from None
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                at = f" (line {mark.line + 1})" if mark is not None else ""
                raise InputError(f"cannot read kubeconfig {config_file}", f"it is not valid YAML{at}",
                                 "fix the file, or pass another with --kubeconfig") from None
            except (TypeError, AttributeError, KeyError, IndexError):
                raise InputError(f"cannot read kubeconfig {config_file}", "it is not a kubeconfig (clusters, "
                                 "contexts and users of the wrong shape)",
                                 "check it with `kubectl config view`") from None
            chosen = next((c for c in contexts if c.get("name") == context), current) if context else current
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
            context = (chosen or {}).get("name", context)
        if insecure_skip_tls_verify:
            import urllib3

            configuration.verify_ssl = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # asked for: no per-request noise
        return cls(client.ApiClient(configuration), default_namespace=namespace, context=context,
                   request_timeout=request_timeout, field_manager=field_manager)

    # ---- raw requests ---------------------------------------------------------------------------

    @property
    def default_timeout(self) -> float | None:
        """Seconds a request may take: `--request-timeout`, else `DEFAULT_REQUEST_TIMEOUT`; None for ``0``."""
        if self.request_timeout is None:
            return DEFAULT_REQUEST_TIMEOUT
        return self.request_timeout or None

    def request(self, method: str, path: str, *, query: Sequence[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str | None = None, accept: str = "application/json",
                timeout: float | None = None, stream: bool = False, what: str | None = None) -> Response:
        """Send one request; a non-2xx answer raises the matching `GpuscaleError`.

        It must answer within `timeout`, else `default_timeout` (30 s unless `--request-timeout` says).
        """
        raw = self._send(method, path, query=query, body=body, content_type=content_type, accept=accept,
                         timeout=timeout or self.default_timeout, what=what)
        data = raw.read()
        response = Response(raw.status, data or b"", dict(raw.headers or {}))
        if response.status >= 400:
            raise self._error(method, path, response, what)
        return response

    def stream(self, method: str, path: str, *, query: Sequence[tuple[str, Any]] | None = None,
               timeout: float | None = None, what: str | None = None,
               opened: Callable[[Any], None] | None = None) -> Iterator[bytes]:
        """Stream a response body in chunks (watches, logs, archives); `opened` gets the open urllib3
        response (another thread may `shutdown()` it to end the stream).

        Without `timeout` only connecting is bounded (by `default_timeout`): a stream's own liveness checks
        decide how long it may stay quiet.
        """
        connect_only = (self.default_timeout, None) if self.default_timeout else None
        raw = self._send(method, path, query=query, body=None, content_type=None, accept="*/*",
                         timeout=timeout or connect_only, what=what)
        if raw.status >= 400:
            response = Response(raw.status, raw.read() or b"", dict(raw.headers or {}))
            raise self._error(method, path, response, what)
        if opened is not None:
            opened(raw.response)
        try:
            yield from raw.response.stream(64 * 1024)
        finally:
            raw.response.release_conn()

    def _send(self, method: str, path: str, *, query: Sequence[tuple[str, Any]] | None, body: Any,
              content_type: str | None, accept: str, timeout: Any, what: str | None) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        params = [(k, v) for k, v in (query or []) if v is not None]
        method_, url, header_params, body_, _ = self._api.param_serialize(
            method, path, query_params=params or None, header_params=headers, body=body,
            auth_settings=["BearerToken"])
        try:
            return self._api.call_api(method_, url, header_params=header_params, body=body_,
                                      _request_timeout=timeout)
        except ApiException as exc:
            reason = str(exc.reason or "")
            if "SSL" in reason or "CERTIFICATE" in reason.upper():
                raise UnreachableError(f"cannot reach the API server at {self.host}",
                                       f"TLS verification failed ({reason.splitlines()[-1][:160]})",
                                       "fix the cluster CA in the kubeconfig, or pass "
                                       "--insecure-skip-tls-verify for a test cluster") from None
            raise UnreachableError(f"cannot reach the API server at {self.host}", reason[:200],
                                   "check the cluster is up and the kubeconfig context") from None
        except urllib3.exceptions.SSLError as exc:
            raise UnreachableError(f"cannot reach the API server at {self.host}", f"TLS failure ({exc})",
                                   "fix the cluster CA in the kubeconfig, or pass --insecure-skip-tls-verify "
                                   "for a test cluster") from None
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            # urllib3's NewConnectionError (connection refused, no route) subclasses its ConnectTimeoutError
            if not isinstance(exc, urllib3.exceptions.NewConnectionError):
                limit = timeout[0] if isinstance(timeout, tuple) else timeout
                raise UnreachableError(f"{what or method + ' ' + path} timed out",
                                       f"no answer from {self.host}" + (f" within {limit:g}s" if limit else ""),
                                       "raise --request-timeout (0 for none) or check the API server's "
                                       "health") from None
            raise UnreachableError(f"cannot reach the API server at {self.host}", _connect_failure(exc),
                                   "check the cluster is up and the kubeconfig context "
                                   "(kubectl cluster-info)") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = getattr(exc, "reason", None) or exc
            text = str(cause)
            if "refused" in text.lower():
                text = "connection refused"
            raise UnreachableError(f"cannot reach the API server at {self.host}", text[:200],
                                   "check the cluster is up and the kubeconfig context "
                                   "(kubectl cluster-info)") from None

    def _error(self, method: str, path: str, response: Response, what: str | None) -> GpuscaleError:
        try:
            status = response.json() or {}
        except ValueError:
            status = {}
        if not isinstance(status, dict):
            status = {}
        message = str(status.get("message") or response.body[:200].decode("utf-8", "replace")).strip()
        action = what or f"{_VERBS.get(method, method.lower())} {path}"
        code = response.status
        if "admission webhook" in message and "denied the request" in message:
            return InvalidError(f"cannot {action}", f"rejected: {message}", "fix the object and try again")
        if code == 403:
            verb, resource, namespace = _verb_resource(method, path)
            ns_flag = f" -n {namespace}" if namespace else ""
            return ForbiddenError(f"cannot {action}", f"forbidden: {message}",
                                  f"ask for '{verb}' on '{resource}'; check with: "
                                  f"kubectl auth can-i {_can_i_args(verb, resource)}{ns_flag}")
        if code == 401:
            return ForbiddenError(f"cannot {action}", "unauthorized: the credentials were rejected",
                                  "refresh the kubeconfig credentials")
        if code == 404:
            return NotFoundError(f"cannot {action}", message or "not found",
                                 "check the name and namespace (-n), and that the API is installed")
        if code == 409:
            managers = _conflicting_managers(status)
            fix = ("re-run with --force-conflicts to take ownership" if managers
                   else "re-read the object and try again")
            return ConflictError(f"cannot {action}", f"conflict: {message}", fix, managers=managers)
        if code == 422 or (code == 400 and "admission webhook" in message):
            return InvalidError(f"cannot {action}", f"rejected: {message}", "fix the object and try again")
        if code == 400:
            return InvalidError(f"cannot {action}", f"bad request: {message}", "fix the object and try again")
        if code == 410:
            return ExpiredError(f"cannot {action}", f"expired: {message}", "list again")
        if code == 504 or code == 408:
            return UnreachableError(f"{action} timed out", message, "raise --request-timeout")
        return GpuscaleError(f"cannot {action}", f"HTTP {code}: {message}", "see the API server's logs")

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
        raise NotFoundError(f"cannot find the resource for {kind} ({api_version})",
                            "the cluster does not serve it", "install the CRD or check the apiVersion")

    def _resource_of(self, obj: Mapping[str, Any]) -> Resource:
        return self.resource(obj.get("apiVersion", ""), obj.get("kind", ""))

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One object. Raises `NotFoundError` when it does not exist."""
        res = self.resource(api_version, kind)
        ns = namespace or self.default_namespace
        obj: dict[str, Any] = self.request(
            "GET", res.path(ns, name), what=f"get {kind} {_qual(ns if res.namespaced else None, name)}").json()
        return obj

    def get_or_none(self, api_version: str, kind: str, name: str, namespace: str | None = None
                    ) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return self.get(api_version, kind, name, namespace)
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> Objects:
        """All objects of a kind, in one namespace or (namespace=None) all; items get kind/apiVersion."""
        res = self.resource(api_version, kind)
        query = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        data = self.request("GET", res.path(namespace if res.namespaced else None), query=query,
                            what=f"list {res.plural} {where}").json()
        items: Objects = data.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def list_optional(self, api_version: str, kind: str, namespace: str | None = None, **kw: Any
                      ) -> Objects | None:
        """Like `list`, but None when the cluster does not serve the kind (a CRD not installed)."""
        if known(api_version, kind) is None or "/" in api_version and "." in api_version.split("/")[0]:
            if not self.serves(api_version, kind):
                return None
        try:
            return self.list(api_version, kind, namespace, **kw)
        except NotFoundError:
            return None

    def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (409 `ConflictError` when it exists)."""
        res = self._resource_of(obj)
        ns = _ns_of(obj, self.default_namespace) if res.namespaced else None
        out: dict[str, Any] = self.request("POST", res.path(ns), body=dict(obj), query=_write_query(dry_run),
                                           what=f"create {obj.get('kind')} {_qual(ns, _name_of(obj))}").json()
        return out

    def replace(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Replace an object; its resourceVersion, when set, must be current (else `ConflictError`)."""
        res = self._resource_of(obj)
        ns = _ns_of(obj, self.default_namespace) if res.namespaced else None
        name = _name_of(obj)
        out: dict[str, Any] = self.request("PUT", res.path(ns, name), body=dict(obj), query=_write_query(dry_run),
                                           what=f"replace {obj.get('kind')} {_qual(ns, name)}").json()
        return out

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False,
              field_manager: str | None = None) -> dict[str, Any]:
        """Server-side apply with our field manager; conflicts raise `ConflictError` unless `force`."""
        res = self._resource_of(obj)
        ns = _ns_of(obj, self.default_namespace) if res.namespaced else None
        name = _name_of(obj)
        query = [("fieldManager", field_manager or self.field_manager), ("force", "true" if force else None),
                 *_write_query(dry_run)]
        out: dict[str, Any] = self.request("PATCH", res.path(ns, name), body=dict(obj), query=query,
                                           content_type="application/apply-patch+yaml",
                                           what=f"apply {obj.get('kind')} {_qual(ns, name)}").json()
        return out

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Any, *,
              patch_type: str = "merge", dry_run: bool = False, subresource: str | None = None) -> dict[str, Any]:
        """Merge patch (dict), JSON patch (list of ops, patch_type='json') or strategic merge patch."""
        content_types = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                         "strategic": "application/strategic-merge-patch+json"}
        res = self.resource(api_version, kind)
        ns = (namespace or self.default_namespace) if res.namespaced else None
        out: dict[str, Any] = self.request(
            "PATCH", res.path(ns, name, subresource), body=patch, content_type=content_types[patch_type],
            query=[("fieldManager", self.field_manager), *_write_query(dry_run)],
            what=f"patch {kind} {_qual(ns, name)}").json()
        return out

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, dry_run: bool = False) -> dict[str, Any] | None:
        """Delete an object (propagationPolicy Orphan|Background|Foreground); None when already gone."""
        res = self.resource(api_version, kind)
        ns = (namespace or self.default_namespace) if res.namespaced else None
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            out: dict[str, Any] = self.request("DELETE", res.path(ns, name), body=body,
                                               what=f"delete {kind} {_qual(ns, name)}").json()
            return out
        except NotFoundError:
            return None

    # ---- scale, logs, events, node proxy ------------------------------------------------------------

    def get_scale(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The scale subresource (`autoscaling/v1 Scale`) of a workload."""
        res = self.resource(api_version, kind)
        ns = namespace or self.default_namespace
        out: dict[str, Any] = self.request("GET", res.path(ns, name, "scale"),
                                           what=f"get the scale of {kind} {ns}/{name}").json()
        return out

    def scale(self, api_version: str, kind: str, name: str, namespace: str | None, replicas: int, *,
              dry_run: bool = False) -> dict[str, Any]:
        """Set a workload's replicas through its scale subresource."""
        if replicas < 0:
            raise InputError(f"cannot scale {kind} {name} to {replicas}", "replicas must be >= 0")
        return self.patch(api_version, kind, name, namespace, {"spec": {"replicas": replicas}},
                          subresource="scale", dry_run=dry_run)

    def pod_logs(self, name: str, namespace: str | None = None, *, container: str | None = None,
                 previous: bool = False, tail_lines: int | None = None, timestamps: bool = False) -> str:
        """A pod's container log (the previous container's with `previous`)."""
        ns = namespace or self.default_namespace
        query = [("container", container), ("previous", "true" if previous else None),
                 ("tailLines", tail_lines), ("timestamps", "true" if timestamps else None)]
        which = "previous " if previous else ""
        response = self.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}/log", query=query, accept="*/*",
                                what=f"read the {which}log of pod {ns}/{name}")
        return response.body.decode("utf-8", "replace")

    def events_for(self, kind: str, name: str, namespace: str | None = None, uid: str | None = None
                   ) -> Objects:
        """Core events about one object, oldest first."""
        ns = namespace or self.default_namespace
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        events = self.list("v1", "Event", ns, field_selector=selector)
        return sorted(events, key=_event_time)

    def node_proxy(self, method: str, node: str, path: str, *, query: Sequence[tuple[str, Any]] | None = None,
                   timeout: float | None = None) -> Response:
        """A request to a node's kubelet through the API server (``/api/v1/nodes/N/proxy/...``)."""
        return self.request(method, f"/api/v1/nodes/{node}/proxy/{path.lstrip('/')}", query=query,
                            timeout=timeout, accept="*/*", what=f"{method} {path} on node {node} (kubelet proxy)")

    def service_answer(self, namespace: str, service: str, port: int | str, path: str = "",
                       timeout: float | None = 10.0) -> tuple[int, bool]:
        """GET a Service through the API server's service proxy: (HTTP status, whether the service answered).

        The service answered when the body is not the API server's own `Status` error (no such
        service, no ready endpoints, forbidden): a 404 from the service itself still counts.
        """
        raw = self._send("GET", f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}",
                         query=None, body=None, content_type=None, accept="*/*", timeout=timeout,
                         what=f"probe service {namespace}/{service}:{port}")
        body = raw.read() or b""
        try:
            parsed = json.loads(body) if body[:1] == b"{" else None
        except ValueError:
            parsed = None
        from_api_server = isinstance(parsed, dict) and parsed.get("kind") == "Status" and raw.status >= 400
        return int(raw.status), not from_api_server

    def exec_stream(self, name: str, namespace: str | None, command: Sequence[str], *,
                    container: str | None = None, timeout: float | None = None,
                    idle_timeout: float = 300) -> Iterator[bytes]:
        """Run `command` (an argv list, no shell) in a pod and yield its stdout as raw bytes chunks.

        Binary-safe (websocket channel frames, like ``kubectl cp``). Frames are read one at a time
        and each stdout frame is yielded at once, so memory stays at one frame however large the
        output. A non-zero exit or an error on the error channel raises `GpuscaleError` with its
        stderr; a stream that stalls for `idle_timeout` seconds, runs past `timeout`, or breaks
        before the command's end raises `UnreachableError`.
        """
        import time as _time

        from kubernetes.stream import ws_client
        from websocket import ABNF, WebSocketException, WebSocketTimeoutException

        ns = namespace or self.default_namespace
        what = f"exec {command[0] if command else ''} in pod {ns}/{name}"
        query: list[tuple[str, Any]] = [("command", part) for part in command]
        query += [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
        if container:
            query.append(("container", container))
        _, url, headers, _, _ = self._api.param_serialize(
            "GET", f"/api/v1/namespaces/{ns}/pods/{name}/exec", query_params=query,
            header_params={"Accept": "*/*"}, auth_settings=["BearerToken"])
        try:
            sock = ws_client.create_websocket(self._api.configuration, ws_client.get_websocket_url(url), headers)
        except Exception as exc:  # websocket handshake: 403/404/400 arrive as handshake failures
            raise _exec_handshake_error(exc, what, ns) from None
        deadline = _time.monotonic() + timeout if timeout else None
        stderr = b""
        error = b""
        try:
            while True:
                wait = idle_timeout if deadline is None else min(idle_timeout, max(0.01, deadline - _time.monotonic()))
                sock.settimeout(wait)
                try:
                    opcode, frame = sock.recv_data_frame(True)
                except WebSocketTimeoutException:
                    why = (f"no end within {timeout}s" if deadline and _time.monotonic() >= deadline
                           else f"no data for {idle_timeout:.0f}s")
                    raise UnreachableError(f"{what} timed out", why, "raise the timeout or check the node") from None
                except (WebSocketException, OSError) as exc:
                    raise UnreachableError(f"{what} broke off", f"the connection ended before the command did: "
                                           f"{type(exc).__name__}: {str(exc)[:160]}", "run it again") from None
                if opcode == ABNF.OPCODE_CLOSE:
                    break
                if opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT) or not frame.data:
                    continue
                data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode()
                channel, payload = data[0], data[1:]
                if channel == ws_client.STDOUT_CHANNEL:
                    if payload:
                        yield payload
                elif channel == ws_client.STDERR_CHANNEL:
                    stderr = (stderr + payload)[:4096]
                elif channel == ws_client.ERROR_CHANNEL:
                    error += payload
        finally:
            sock.close(timeout=1)
        if error:
            try:
                status = json.loads(error)
            except ValueError:
                status = {"status": "Failure", "message": error.decode("utf-8", "replace")}
            if status.get("status") != "Success":
                why = str(status.get("message") or "the command failed")
                detail = stderr.decode("utf-8", "replace").strip()
                causes = (status.get("details") or {}).get("causes") or []
                codes = [str(c.get("message")) for c in causes if isinstance(c, dict) and c.get("reason") == "ExitCode"]
                raise CommandFailedError(f"cannot {what}", f"{why}{': ' + detail[:300] if detail else ''}",
                                         "check the pod's container and the path",
                                         command_exit=int(codes[0]) if codes and codes[0].isdigit() else None)

    def can_i(self, verb: str, resource: str, *, group: str = "", namespace: str | None = None,
              subresource: str | None = None, name: str | None = None) -> bool:
        """Ask the API server whether the current user may do `verb` on `resource` (SelfSubjectAccessReview)."""
        attrs = {k: v for k, v in {"verb": verb, "resource": resource, "group": group, "namespace": namespace,
                                   "subresource": subresource, "name": name}.items() if v}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attrs}}
        answer = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review,
                              what="ask the API server for access (SelfSubjectAccessReview)").json()
        return bool((answer.get("status") or {}).get("allowed"))

    def watch(self, api_version: str, kind: str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              timeout_seconds: int | None = None) -> Iterator[dict[str, Any]]:
        """Watch events (``{"type": ADDED|MODIFIED|DELETED, "object": {...}}``) until the server ends the stream."""
        res = self.resource(api_version, kind)
        query = [("watch", "true"), ("resourceVersion", resource_version), ("labelSelector", label_selector),
                 ("timeoutSeconds", timeout_seconds)]
        buffer = b""
        for chunk in self.stream("GET", res.path(namespace if res.namespaced else None), query=query,
                                 what=f"watch {res.plural}"):
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
                self._discovered[api_version] = self.request("GET", path, what=f"discover {api_version}"
                                                             ).json().get("resources") or []
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
                return cond.get("status") == "True"
        return False

    def server_version(self) -> dict[str, Any]:
        """The API server's `/version` document."""
        out: dict[str, Any] = self.request("GET", "/version", what="read the server version").json()
        return out


def _can_i_args(verb: str, resource: str) -> str:
    """``create nodes/proxy`` as kubectl wants it: ``create nodes --subresource=proxy`` (TYPE/NAME means a name)."""
    base, _, sub = resource.partition("/")
    return f"{verb} {base}" + (f" --subresource={sub}" if sub else "")


def _connect_failure(exc: BaseException) -> str:
    """A short cause for a failed TCP connect ("connection refused", or the OS message)."""
    text = str(getattr(exc, "reason", None) or exc)
    return "connection refused" if "refused" in text.lower() else text[:200]


def _qual(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _name_of(obj: Mapping[str, Any]) -> str:
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        raise InputError(f"cannot write {obj.get('kind', 'object')}", "metadata.name is missing",
                         "give the object a name")
    return str(name)


def _ns_of(obj: Mapping[str, Any], default: str) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or default)


def _write_query(dry_run: bool) -> list[tuple[str, Any]]:
    return [("dryRun", "All")] if dry_run else []


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("eventTime") or event.get("firstTimestamp") or event.get("lastTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def _verb_resource(method: str, path: str) -> tuple[str, str, str | None]:
    """Map a REST call to the `kubectl auth can-i` verb, resource[.group][/subresource] and namespace."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    namespace = None
    if parts[:1] == ["api"]:
        rest, group = parts[2:], ""
    elif parts[:1] == ["apis"]:
        rest, group = parts[3:], parts[1] if len(parts) > 1 else ""
    else:
        return _VERBS.get(method, method.lower()), path, None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else "namespaces"
    has_name = len(rest) >= 2
    sub = rest[2] if len(rest) >= 3 else None
    verb = _VERBS.get(method, method.lower())
    if method == "GET" and not has_name:
        verb = "list"
    full = resource + (f".{group}" if group else "") + (f"/{sub}" if sub else "")
    return verb, full, namespace


def _conflicting_managers(status: Mapping[str, Any]) -> tuple[str, ...]:
    """The field managers named in a server-side apply conflict (`details.causes`)."""
    import re

    managers: list[str] = []
    for cause in ((status.get("details") or {}).get("causes") or []):
        if cause.get("reason") == "FieldManagerConflict":
            match = re.search(r'conflict with "([^"]+)"', str(cause.get("message", "")))
            if match and match.group(1) not in managers:
                managers.append(match.group(1))
    return tuple(managers)


def _exec_handshake_error(exc: Exception, what: str, namespace: str) -> GpuscaleError:
    """The error for a refused exec upgrade (the API server answers a Status body instead of 101)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "resp_body", None) or b""
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace").strip() if isinstance(body, bytes) else str(body)
    text = message or str(exc)
    if status == 403 or (status is None and "403" in text):
        return ForbiddenError(f"cannot {what}", f"forbidden: {text[:200]}",
                              f"ask for 'create' on 'pods/exec'; check with: kubectl auth can-i create "
                              f"pods --subresource=exec -n {namespace}")
    if status == 404 or (status is None and "404" in text):
        return NotFoundError(f"cannot {what}", f"not found: {text[:200]}", "check the pod exists and is running")
    if status == 400:
        return GpuscaleError(f"cannot {what}", text[:200], "check the pod is running and the container name")
    return UnreachableError(f"cannot {what}", text[:200],
                            "check the API server allows exec (websocket upgrade) and the pod is running")
