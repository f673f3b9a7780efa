"""Map the API server's answers to typed `GpuscaleError`s (what failed, why, what to do).

A `Status` body (403, 404, 409, 410, 422, ...) becomes the matching error, a 403 with the
`kubectl auth can-i` line that checks it; a refused exec upgrade likewise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import (
    ConflictError,
    ForbiddenError,
    GpuscaleError,
    InvalidError,
    NotFoundError,
    UnreachableError,
)

if TYPE_CHECKING:
    from kubectl_gpuscale.kube.transport import Response

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


def status_error(method: str, path: str, response: Response, what: str | None) -> GpuscaleError:
    """The `GpuscaleError` for a non-2xx answer: its Status message, what was being done, and what to do."""
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
        return ForbiddenError(
            f"cannot {action}",
            f"forbidden: {message}",
            f"ask for '{verb}' on '{resource}'; check with: "
            f"kubectl auth can-i {_can_i_args(verb, resource)}{ns_flag}",
        )
    if code == 401:
        return ForbiddenError(
            f"cannot {action}",
            "unauthorized: the credentials were rejected",
            "refresh the kubeconfig credentials",
        )
    if code == 404:
        return NotFoundError(
            f"cannot {action}",
            message or "not found",
            "check the name and namespace (-n), and that the API is installed",
        )
    if code == 409:
        managers = _conflicting_managers(status)
        fix = (
            "re-run with --force-conflicts to take ownership"
            if managers
            else "re-read the object and try again"
        )
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


def _can_i_args(verb: str, resource: str) -> str:
    """``create nodes/proxy`` as kubectl wants it: ``create nodes --subresource=proxy`` (TYPE/NAME means a name)."""
    base, _, sub = resource.partition("/")
    return f"{verb} {base}" + (f" --subresource={sub}" if sub else "")


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
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "FieldManagerConflict":
            match = re.search(r'conflict with "([^"]+)"', str(cause.get("message", "")))
            if match and match.group(1) not in managers:
                managers.append(match.group(1))
    return tuple(managers)


def exec_handshake_error(exc: Exception, what: str, namespace: str) -> GpuscaleError:
    """The error for a refused exec upgrade (the API server answers a Status body instead of 101)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "resp_body", None) or b""
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace").strip() if isinstance(body, bytes) else str(body)
    text = message or str(exc)
    if status == 403 or (status is None and "403" in text):
        return ForbiddenError(
            f"cannot {what}",
            f"forbidden: {text[:200]}",
            f"ask for 'create' on 'pods/exec'; check with: kubectl auth can-i create "
            f"pods --subresource=exec -n {namespace}",
        )
    if status == 404 or (status is None and "404" in text):
        return NotFoundError(
            f"cannot {what}", f"not found: {text[:200]}", "check the pod exists and is running"
        )
    if status == 400:
        return GpuscaleError(f"cannot {what}", text[:200], "check the pod is running and the container name")
    return UnreachableError(
        f"cannot {what}",
        text[:200],
        "check the API server allows exec (websocket upgrade) and the pod is running",
    )
