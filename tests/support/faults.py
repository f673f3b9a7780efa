"""Failure injection for the test API server: the ways a real write goes wrong, before or after it lands.

A `Fault` matches requests by method and path (a substring of the URL path, e.g.
``/horizontalpodautoscalers/vllm``) and, by default, only real writes (``dryRun=All`` requests
pass untouched). What it does, on the first ``times`` matching requests (None: every one):

- ``status=403|409|500|...``: answer that error with a `Status` body; the request is not served,
  nothing is stored (a denied write, a conflict, an internal error before the commit);
- ``before=callable``: run it first, then serve the request as usual. Used for the writes another
  controller makes between a client's read and its write (the HPA controller updating status):
  the request's resourceVersion is then stale and the server's own check answers 409;
- ``delay=SECONDS``: hold the answer that long. With ``commit=True`` (default) the request is
  served first, so the object is stored and the client, whose timeout is shorter, never hears it:
  a timeout after the server committed (etcd slow, an overloaded API server);
- ``drop=True``: close the connection without any answer. With ``commit=True`` the request was
  served first: a load balancer or the network cutting the connection after the write landed.
  With ``commit=False`` the request is dropped unserved (the same symptom, nothing stored).

The server calls `Faults.take` for every request and `Fault.before_serving` /
`Fault.after_serving` around it (a two-line hook in `tests.support.apiserver`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class _Request(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def body(self) -> bytes: ...

    def param(self, name: str) -> str | None: ...


@dataclass
class Fault:
    """One injected failure; see the module docstring. ``hits`` counts the requests it acted on."""

    method: str
    path: str
    status: int | None = None
    message: str = ""
    before: Callable[[], None] | None = None
    delay: float = 0.0
    drop: bool = False
    commit: bool = True
    times: int | None = 1
    dry_run: bool = False
    hits: int = 0

    def matches(self, req: _Request) -> bool:
        """Whether this fault applies to the request (method, path substring, dry run) and is not used up."""
        if self.times is not None and self.hits >= self.times:
            return False
        if req.method != self.method.upper() or self.path not in req.path:
            return False
        dry = req.param("dryRun") is not None or b'"dryRun"' in (req.body or b"")
        return self.dry_run or not dry

    def status_body(self) -> dict[str, Any]:
        """The `Status` object the injected error answers with."""
        code = self.status or 500
        reason = _REASONS.get(code, "InternalError")
        message = self.message or f"injected {code} {reason} (test fault)"
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {},
            "code": code,
        }

    def before_serving(self, connection: socket.socket) -> bool:
        """Run before the request is served; True when the request must not be served at all.

        A ``status`` fault answers nothing here (the caller sends `status_body`); a ``drop`` or
        ``delay`` fault without ``commit`` acts now, unserved.
        """
        if self.before is not None:
            self.before()
        if self.status is not None:
            return True
        if not self.commit and (self.drop or self.delay):
            self._stall(connection)
            return True
        return False

    def after_serving(self, connection: socket.socket) -> bool:
        """Run after the request was served (committed); True when the answer must not be sent."""
        if self.commit and (self.drop or self.delay):
            return self._stall(connection)
        return False

    def _stall(self, connection: socket.socket) -> bool:
        if self.delay:
            time.sleep(self.delay)
        if self.drop:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            return True
        return False


class Faults:
    """The faults armed on one test API server (`ApiServer.faults`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, method: str, path: str, **kw: Any) -> Fault:
        """Arm a fault (see `Fault`); returns it, so a test can read ``hits``."""
        fault = Fault(method, path, **kw)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, req: _Request) -> Fault | None:
        """The first armed fault matching the request, counted as used; None for a normal request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(req):
                    fault.hits += 1
                    return fault
        return None
