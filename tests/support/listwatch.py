"""Paginated lists and watch-stream knobs for the test API server.

`Pager` serves ``limit``/``continue`` like the real API server: a list with ``limit`` answers at most
that many items, and ``metadata.continue`` (with ``remainingItemCount``) while more remain; every page
of one list is cut from the same snapshot, at the first page's resourceVersion (a consistent list);
a continue token older than the compaction floor answers 410 Expired.

`WatchControl` holds what tests change about open watch streams: the bookmark interval (bookmarks are
sent only to watches asking ``allowWatchBookmarks=true``), and `cut` to end every open stream, either
with an in-stream ``ERROR`` 410 (the watch cache fell behind) or by dropping the connection mid-stream
(a broken watch).

Upstream: the token and the 410 text follow k8s.io/apiserver/pkg/storage/continue.go (`EncodeContinue`,
`DecodeContinue`) and k8s.io/apiserver/pkg/storage/etcd3/store.go (`GetList`: "The provided continue
parameter is too old ..."); bookmarks follow k8s.io/apiserver/pkg/storage/cacher/cacher.go (a BOOKMARK
event carries only ``metadata.resourceVersion``).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from typing import Any

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start "
    "a new list without the continue parameter, or use the continue token in this response to "
    "retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)
_KEEP_SNAPSHOTS = 64


class PageError(Exception):
    """A bad or expired continue token: (HTTP code, reason, message)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class Pager:
    """Cuts lists into pages, each list's pages from one snapshot taken at its first page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._next_id = 0

    @staticmethod
    def limit_of(text: str | None) -> int:
        """The ``limit`` query parameter (0: no limit)."""
        if not text:
            return 0
        try:
            value = int(text)
        except ValueError:
            raise PageError(400, "BadRequest", f"invalid limit {text!r}") from None
        return max(0, value)

    def resume(self, token: str, floor: int) -> tuple[list[dict[str, Any]], int, int]:
        """The snapshot a continue token points into: (items, offset, resourceVersion)."""
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
            rv, snapshot, offset = int(data["rv"]), int(data["id"]), int(data["offset"])
        except (ValueError, KeyError, TypeError):
            raise PageError(
                400,
                "BadRequest",
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ) from None
        with self._lock:
            items = self._snapshots.get(snapshot)
        if rv < floor or items is None:
            raise PageError(410, "Expired", CONTINUE_TOO_OLD)
        return items, offset, rv

    def cut(
        self, items: list[dict[str, Any]], offset: int, rv: int, limit: int, snapshot: int | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page from `offset` and the list metadata (``continue`` while more remain)."""
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if not limit or offset + limit >= len(items):
            return items[offset:], meta
        if snapshot is None:
            with self._lock:
                snapshot, self._next_id = self._next_id, self._next_id + 1
                self._snapshots[snapshot] = items
                while len(self._snapshots) > _KEEP_SNAPSHOTS:
                    self._snapshots.popitem(last=False)
        end = offset + limit
        last = items[end - 1].get("metadata") or {}
        token = {
            "v": "meta.k8s.io/v1",
            "rv": rv,
            "start": f"{last.get('namespace', '')}/{last.get('name', '')}\x00",
            "id": snapshot,
            "offset": end,
        }
        meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
        meta["remainingItemCount"] = len(items) - end
        return items[offset:end], meta

    @staticmethod
    def snapshot_of(token: str) -> int:
        """The snapshot id inside a (valid) continue token."""
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return int(data["id"])


class WatchBroken(ConnectionAbortedError):
    """Raised inside a watch stream to drop its connection without the closing chunk."""


class WatchControl:
    """Knobs on open watch streams: bookmark interval and cuts (expire with 410, or break)."""

    def __init__(self, bookmark_seconds: float = 60.0) -> None:
        self.bookmark_seconds = bookmark_seconds
        self.epoch = 0
        self.mode = ""

    def cut(self, mode: str) -> None:
        """End every open watch: ``"expire"`` (in-stream ERROR 410) or ``"break"`` (connection dropped)."""
        if mode not in ("expire", "break"):
            raise ValueError(f"unknown cut mode {mode!r}")
        self.mode = mode
        self.epoch += 1

    @staticmethod
    def bookmark(kind: str, api_version: str, rv: int) -> bytes:
        """A BOOKMARK event line: only the type's kind/apiVersion and ``metadata.resourceVersion``."""
        return (
            json.dumps(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": kind,
                        "apiVersion": api_version,
                        "metadata": {"resourceVersion": str(rv)},
                    },
                }
            ).encode()
            + b"\n"
        )
