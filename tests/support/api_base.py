"""The vocabulary of the test API server (`tests.support.apiserver`): errors, requests, routes, calls.

Shared by the store (`tests.support.api_store`), the router (`tests.support.api_router`) and the
handlers (`tests.support.api_crud`, `tests.support.api_subresources`, `tests.support.api_discovery`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import yaml

from tests.support.exec_ws import ExecHandler
from tests.support.kube_types import ResourceType

if TYPE_CHECKING:
    from tests.support.apiserver import ApiServer

DEFAULT_TOKEN = "gpuscale-test-token"
DEFAULT_USER = "test-user"
DEFAULT_VERSION = "1.33.2"
KUBELET_CLIENT_FORBIDDEN = (
    "Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[checkpoint])"
)
DEFAULT_CRIU_ERROR = (
    "rpc error: code = Unknown desc = failed to checkpoint container {container}: "
    'running "criu" failed: exit status 1: Error (criu/cr-dump.c:2093): '
    "Dumping FAILED."
)
CHECKPOINT_DIR = "/var/lib/kubelet/checkpoints"


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with seconds (``2026-03-13T21:43:06Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def encoded(body: bytes | str | Mapping[str, Any] | list[Any], content_type: str | None) -> tuple[bytes, str]:
    """A configured proxy answer as bytes and its content type (JSON for mappings and lists)."""
    if isinstance(body, (Mapping, list)):
        return json.dumps(body).encode(), content_type or "application/json"
    return (body.encode() if isinstance(body, str) else body), content_type or "text/plain; charset=utf-8"


class ApiError(Exception):
    """An error answered as a `Status` body."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details is not None else None

    def status(self) -> dict[str, Any]:
        """The ``Status`` object the real server sends."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
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
        return parse_body(self.body)


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
class ExecSession:
    """A validated exec request waiting for its websocket upgrade."""

    namespace: str
    pod: str
    container: str
    command: list[str]
    handler: ExecHandler | None


@dataclass
class Route:
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


def parse_body(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        try:
            return yaml.safe_load(data.decode("utf-8"))
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding body: {exc}") from None


def random_suffix(n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(n))


def not_served() -> ApiError:
    """The 404 the real server answers for a path no resource serves."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})
