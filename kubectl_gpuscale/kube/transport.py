"""Requests to the API server: one call, one streamed body, one exec websocket.

Every connection failure becomes `UnreachableError` (with the timeout or TLS cause) and every
non-2xx answer the error `kube.errors.status_error` maps it to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.errors import UnreachableError
from kubectl_gpuscale.kube.errors import CommandFailedError, exec_handshake_error, status_error

DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds a non-watch, non-stream request may take unless --request-timeout says (0: none)."""


@dataclass
class Response:
    """A raw answer from the API server."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


class Transport:
    """The raw HTTP side of a `Cluster`: an API client, the request timeout, and the calls over them."""

    def __init__(self, api_client: Any, *, request_timeout: float | None = None) -> None:
        self._api = api_client
        self.request_timeout = request_timeout

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    @property
    def default_timeout(self) -> float | None:
        """Seconds a request may take: `--request-timeout`, else `DEFAULT_REQUEST_TIMEOUT`; None for ``0``."""
        if self.request_timeout is None:
            return DEFAULT_REQUEST_TIMEOUT
        return self.request_timeout or None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
        stream: bool = False,
        what: str | None = None,
    ) -> Response:
        """Send one request; a non-2xx answer raises the matching `GpuscaleError`.

        It must answer within `timeout`, else `default_timeout` (30 s unless `--request-timeout` says).
        """
        raw = self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            timeout=timeout or self.default_timeout,
            what=what,
        )
        data = raw.read()
        response = Response(raw.status, data or b"", dict(raw.headers or {}))
        if response.status >= 400:
            raise status_error(method, path, response, what)
        return response

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] | None = None,
        timeout: float | None = None,
        what: str | None = None,
        opened: Callable[[Any], None] | None = None,
    ) -> Iterator[bytes]:
        """Stream a response body in chunks (watches, logs, archives); `opened` gets the open urllib3
        response (another thread may `shutdown()` it to end the stream).

        Without `timeout` only connecting is bounded (by `default_timeout`): a stream's own liveness checks
        decide how long it may stay quiet.
        """
        connect_only = (self.default_timeout, None) if self.default_timeout else None
        raw = self._send(
            method,
            path,
            query=query,
            body=None,
            content_type=None,
            accept="*/*",
            timeout=timeout or connect_only,
            what=what,
        )
        if raw.status >= 400:
            response = Response(raw.status, raw.read() or b"", dict(raw.headers or {}))
            raise status_error(method, path, response, what)
        if opened is not None:
            opened(raw.response)
        try:
            yield from raw.response.stream(64 * 1024)
        finally:
            raw.response.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] | None,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: Any,
        what: str | None,
    ) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        params = [(k, v) for k, v in (query or []) if v is not None]
        method_, url, header_params, body_, _ = self._api.param_serialize(
            method,
            path,
            query_params=params or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            return self._api.call_api(
                method_, url, header_params=header_params, body=body_, _request_timeout=timeout
            )
        except ApiException as exc:
            reason = str(exc.reason or "")
            if "SSL" in reason or "CERTIFICATE" in reason.upper():
                raise UnreachableError(
                    f"cannot reach the API server at {self.host}",
                    f"TLS verification failed ({reason.splitlines()[-1][:160]})",
                    "fix the cluster CA in the kubeconfig, or pass "
                    "--insecure-skip-tls-verify for a test cluster",
                ) from None
            raise UnreachableError(
                f"cannot reach the API server at {self.host}",
                reason[:200],
                "check the cluster is up and the kubeconfig context",
            ) from None
        except urllib3.exceptions.SSLError as exc:
            raise UnreachableError(
                f"cannot reach the API server at {self.host}",
                f"TLS failure ({exc})",
                "fix the cluster CA in the kubeconfig, or pass --insecure-skip-tls-verify for a test cluster",
            ) from None
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            # urllib3's NewConnectionError (connection refused, no route) subclasses its ConnectTimeoutError
            if not isinstance(exc, urllib3.exceptions.NewConnectionError):
                limit = timeout[0] if isinstance(timeout, tuple) else timeout
                raise UnreachableError(
                    f"{what or method + ' ' + path} timed out",
                    f"no answer from {self.host}" + (f" within {limit:g}s" if limit else ""),
                    "raise --request-timeout (0 for none) or check the API server's health",
                ) from None
            raise UnreachableError(
                f"cannot reach the API server at {self.host}",
                _connect_failure(exc),
                "check the cluster is up and the kubeconfig context (kubectl cluster-info)",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = getattr(exc, "reason", None) or exc
            text = str(cause)
            if "refused" in text.lower():
                text = "connection refused"
            raise UnreachableError(
                f"cannot reach the API server at {self.host}",
                text[:200],
                "check the cluster is up and the kubeconfig context (kubectl cluster-info)",
            ) from None

    def _exec(
        self,
        path: str,
        query: Sequence[tuple[str, Any]],
        *,
        what: str,
        namespace: str,
        timeout: float | None,
        idle_timeout: float,
    ) -> Iterator[bytes]:
        """Open the exec websocket at `path` and yield stdout frames (see `Cluster.exec_stream`)."""
        import time as _time

        from kubernetes.stream import ws_client
        from websocket import ABNF, WebSocketException, WebSocketTimeoutException

        _, url, headers, _, _ = self._api.param_serialize(
            "GET",
            path,
            query_params=list(query),
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        try:
            sock = ws_client.create_websocket(
                self._api.configuration, ws_client.get_websocket_url(url), headers
            )
        except Exception as exc:  # websocket handshake: 403/404/400 arrive as handshake failures
            raise exec_handshake_error(exc, what, namespace) from None
        deadline = _time.monotonic() + timeout if timeout else None
        stderr = b""
        error = b""
        try:
            while True:
                wait = (
                    idle_timeout
                    if deadline is None
                    else min(idle_timeout, max(0.01, deadline - _time.monotonic()))
                )
                sock.settimeout(wait)
                try:
                    opcode, frame = sock.recv_data_frame(True)
                except WebSocketTimeoutException:
                    why = (
                        f"no end within {timeout}s"
                        if deadline and _time.monotonic() >= deadline
                        else f"no data for {idle_timeout:.0f}s"
                    )
                    raise UnreachableError(
                        f"{what} timed out", why, "raise the timeout or check the node"
                    ) from None
                except (WebSocketException, OSError) as exc:
                    raise UnreachableError(
                        f"{what} broke off",
                        f"the connection ended before the command did: "
                        f"{type(exc).__name__}: {str(exc)[:160]}",
                        "run it again",
                    ) from None
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
        failure = _exec_failure(error, stderr, what) if error else None
        if failure is not None:
            raise failure


def _exec_failure(error: bytes, stderr: bytes, what: str) -> CommandFailedError | None:
    """The error channel's Status as the command's failure (with its exit code), None on Success."""
    try:
        status = json.loads(error)
    except ValueError:
        status = {"status": "Failure", "message": error.decode("utf-8", "replace")}
    if status.get("status") == "Success":
        return None
    why = str(status.get("message") or "the command failed")
    detail = stderr.decode("utf-8", "replace").strip()
    causes = (status.get("details") or {}).get("causes") or []
    codes = [str(c.get("message")) for c in causes if isinstance(c, dict) and c.get("reason") == "ExitCode"]
    return CommandFailedError(
        f"cannot {what}",
        f"{why}{': ' + detail[:300] if detail else ''}",
        "check the pod's container and the path",
        command_exit=int(codes[0]) if codes and codes[0].isdigit() else None,
    )


def _connect_failure(exc: BaseException) -> str:
    """A short cause for a failed TCP connect ("connection refused", or the OS message)."""
    text = str(getattr(exc, "reason", None) or exc)
    return "connection refused" if "refused" in text.lower() else text[:200]
