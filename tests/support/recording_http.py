"""A tiny HTTP server on 127.0.0.1 that records every request's headers: the stand-in for a URL an
attacker put in a ConfigMap, to see which credentials gpuscale would hand it.

It answers the few Prometheus HTTP API paths a connection starts with (build info, an instant
query, label values), each with an empty but well-formed result, so the client carries on
and keeps sending requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWERS: dict[str, Any] = {
    "/api/v1/status/buildinfo": {"version": "2.42.0", "revision": "recorder"},
    "/api/v1/query": {"resultType": "vector", "result": []},
    "/api/v1/query_range": {"resultType": "matrix", "result": []},
    "/api/v1/labels": [],
    "/api/v1/label/__name__/values": [],
}


@dataclass(frozen=True)
class Seen:
    """One request: method, path (no query) and headers (names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]


class Recorder:
    """The running server: its base `url` and the requests it `seen`."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                with recorder._lock:
                    recorder.seen.append(
                        Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()})
                    )
                data = ANSWERS.get(path)
                status = 200 if data is not None else 404
                body = json.dumps(
                    {"status": "success", "data": data}
                    if data is not None
                    else {"status": "error", "errorType": "not_found", "error": "not found"}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def authorizations(self) -> list[str | None]:
        """The Authorization header of each request, oldest first (None: not sent)."""
        with self._lock:
            return [s.headers.get("authorization") for s in self.seen]


@contextmanager
def recording_server() -> Iterator[Recorder]:
    """Start a `Recorder`; stopped on exit."""
    recorder = Recorder()
    recorder._thread.start()
    try:
        yield recorder
    finally:
        recorder._server.shutdown()
        recorder._server.server_close()
        recorder._thread.join(5)
