"""What the test API server answered: requests per (verb, resource) and bytes sent, for tests and benchmarks.

`ApiServer.traffic` is a `Traffic`; the server counts every request when it arrives and every byte it
writes back (headers, bodies, watch events), attributed to the request's verb and resource::

    server.traffic.reset()
    ...
    server.traffic.requests[("list", "pods")], server.traffic.bytes_sent[("watch", "pods")]
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

Key = tuple[str, str]
"""(verb, resource): ``("list", "pods")``, ``("watch", "deployments.apps")``, ``("get", "discovery")``."""

_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def classify(method: str, path: str, query: dict[str, list[str]]) -> Key:
    """The `kubectl auth can-i`-style verb and resource[.group][/subresource] of one request."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        rest, group = parts[2:], ""
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest, group = parts[3:], parts[1]
    else:
        return _VERBS.get(method, method.lower()), "discovery" if parts[:1] in (["api"], ["apis"]) else path
    if not rest:
        return "get", "discovery"
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] + (f".{group}" if group else "") + (f"/{rest[2]}" if len(rest) >= 3 else "")
    verb = _VERBS.get(method, method.lower())
    if method == "GET" and len(rest) == 1:
        verb = "watch" if (query.get("watch") or [""])[0] in ("true", "1") else "list"
    elif method == "DELETE" and len(rest) == 1:
        verb = "deletecollection"
    return verb, resource


class Traffic:
    """Requests and bytes sent per (verb, resource), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[Key] = Counter()
        self.bytes_sent: Counter[Key] = Counter()

    def count_request(self, key: Key) -> None:
        """One more request for `key`."""
        with self._lock:
            self.requests[key] += 1

    def count_bytes(self, key: Key, n: int) -> None:
        """`n` more bytes written back for `key`."""
        with self._lock:
            self.bytes_sent[key] += n

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self.requests.clear()
            self.bytes_sent.clear()

    def total_bytes(self) -> int:
        """Every byte sent since the last `reset`."""
        with self._lock:
            return sum(self.bytes_sent.values())

    def count(self, verb: str, resource: str | None = None) -> int:
        """Requests with this verb (and resource, when given)."""
        with self._lock:
            return sum(n for (v, r), n in self.requests.items() if v == verb and resource in (None, r))


class CountingWriter:
    """Wraps a handler's ``wfile``: every write is counted against the current request's key."""

    def __init__(self, raw: Any, traffic: Traffic) -> None:
        self._raw = raw
        self._traffic = traffic
        self.key: Key = ("get", "unknown")

    def write(self, data: bytes) -> int:
        """Count, then write (counted first, so a client that has the answer sees it counted)."""
        self._traffic.count_bytes(self.key, len(data))
        written = self._raw.write(data)
        return int(written if written is not None else len(data))

    def flush(self) -> None:
        """Flush the wrapped writer."""
        self._raw.flush()

    def close(self) -> None:
        """Close the wrapped writer."""
        self._raw.close()

    @property
    def closed(self) -> bool:
        """Whether the wrapped writer is closed."""
        return bool(self._raw.closed)
