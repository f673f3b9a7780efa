"""List once, then watch: paginated lists and a per-kind cache kept current by a watch stream.

What client-go's Reflector does (k8s.io/client-go/tools/cache/reflector.go, `ListAndWatch`), for one
kind in one scope:

- a paginated list (`list_pages`: ``limit``/``continue``, every page from one consistent snapshot; an
  expired continue token starts the list again once);
- then a watch from the list's resourceVersion with ``allowWatchBookmarks=true`` and a server-side
  ``timeoutSeconds`` drawn in [5, 10) minutes (client-go's ``minWatchTimeout``), so watches end and
  reopen spread out; a watch the server ends is reopened at once from the last resourceVersion seen
  (an event's or a bookmark's), without a list;
- 410 Gone (an in-stream ``ERROR`` event, or an answer to the watch request) lists again, once;
- a watch that breaks (connection dropped, read timeout, bad line) is reopened from the last
  resourceVersion after a backoff of 0.8 s doubling to 30 s (client-go's backoff manager), reset
  once a watch works again; a failing list (forbidden, unreachable) is retried the same way, with a
  longer ceiling for 403s.

Watches are not subject to a per-request timeout: the server ends them (``timeoutSeconds``) and the
client's read timeout (`WATCH_READ_TIMEOUT`) only bounds silence between two lines (bookmarks arrive
about once a minute), after which the watch is reopened from where it was.

Each `KindCache` runs its watch in its own daemon thread and keeps its own error: one kind failing
never stops another. Readers (`KindCache.items`) take a consistent copy under a lock and never wait
on I/O.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster, Objects

PAGE_SIZE = 500
"""Objects per list page (client-go's pager.PageSize)."""
WATCH_MIN_SECONDS = 300
"""Server-side watch timeout: drawn in [WATCH_MIN_SECONDS, 2 * WATCH_MIN_SECONDS)."""
WATCH_CONNECT_TIMEOUT = 10.0
WATCH_READ_TIMEOUT = 150.0
"""Longest silence on an open watch before it is reopened (bookmarks come about every minute)."""
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_MAX_FORBIDDEN = 0.8, 30.0, 300.0

Key = tuple[str, str]


@dataclass(frozen=True)
class Scope:
    """What one cache lists and watches: a kind, in a namespace (None: all), with selectors."""

    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None


def list_pages(cluster: Cluster, scope: Scope, *, page_size: int = PAGE_SIZE) -> tuple[Objects, str]:
    """Every object in `scope`, page by page: (items with kind/apiVersion set, the list's resourceVersion).

    All pages come from the snapshot of the first one (the server keeps it consistent); when the
    continue token expires (410) the list starts over once, then the error is raised.
    """
    from kubectl_gpuscale.kube import ExpiredError

    for attempt in (1, 2):
        try:
            return _list_once(cluster, scope, page_size)
        except ExpiredError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _list_once(cluster: Cluster, scope: Scope, page_size: int) -> tuple[Objects, str]:
    res = cluster.resource(scope.api_version, scope.kind)
    path = res.path(scope.namespace if res.namespaced else None)
    where = f"in namespace {scope.namespace}" if scope.namespace and res.namespaced else "in all namespaces"
    items: Objects = []
    token: str | None = None
    rv = ""
    while True:
        query = [
            ("labelSelector", scope.label_selector),
            ("fieldSelector", scope.field_selector),
            ("limit", page_size or None),
            ("continue", token),
        ]
        data = cluster.request("GET", path, query=query, what=f"list {res.plural} {where}").json() or {}
        page = data.get("items") or []
        for item in page:
            item.setdefault("apiVersion", scope.api_version)
            item.setdefault("kind", scope.kind)
        items.extend(page)
        meta = data.get("metadata") or {}
        rv = rv or str(meta.get("resourceVersion") or "")
        token = meta.get("continue") or None
        if not token:
            return items, rv


def watch_lines(
    cluster: Cluster,
    scope: Scope,
    resource_version: str,
    *,
    timeout_seconds: int,
    read_timeout: float = WATCH_READ_TIMEOUT,
    opened: Callable[[Any], None] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Watch events from `resource_version` (bookmarks asked for) until the server ends the stream;
    `opened` gets the open response (`shutdown()` on it ends the watch from another thread)."""
    res = cluster.resource(scope.api_version, scope.kind)
    query = [
        ("watch", "true"),
        ("resourceVersion", resource_version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", timeout_seconds),
        ("labelSelector", scope.label_selector),
        ("fieldSelector", scope.field_selector),
    ]
    buffer = b""
    for chunk in cluster.stream(
        "GET",
        res.path(scope.namespace if res.namespaced else None),
        query=query,
        timeout=(WATCH_CONNECT_TIMEOUT, read_timeout),  # type: ignore[arg-type]
        what=f"watch {res.plural}",
        opened=opened,
    ):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


class KindCache:
    """The objects of one `Scope`, listed once and kept current by a watch in a daemon thread.

    `sync` lists now, in the caller's thread (raises `GpuscaleError`); `start` runs the watch loop.
    `items` is a copy for readers; `error` is the last failed request (None again after the next
    successful list, event or bookmark). A watch that breaks mid-stream is not an error unless
    reopening it fails; `lists`, `watches`, `expired` and `broken` count what happened.
    """

    def __init__(
        self,
        cluster: Cluster,
        scope: Scope,
        *,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_MIN_SECONDS,
        read_timeout: float = WATCH_READ_TIMEOUT,
    ) -> None:
        self.cluster = cluster
        self.scope = scope
        self._keep = keep
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._items: dict[Key, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.resource_version = ""
        self.synced = False
        self.error: GpuscaleError | None = None
        self.lists = self.watches = self.expired = self.broken = 0
        self.last_break = ""
        self.version = 0
        """Bumped on every change to the items (readers can skip work when it did not move)."""

    # ---- readers -------------------------------------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        """The current objects (a new list; the objects themselves are shared: do not modify them)."""
        with self._lock:
            return list(self._items.values())

    def upsert(self, obj: dict[str, Any]) -> None:
        """Put an object this client just wrote (the server's answer) in the cache before its watch event."""
        if self._keep is None or self._keep(obj):
            with self._lock:
                self._items[_key(obj)] = obj
                self.version += 1

    # ---- list and watch ------------------------------------------------------------------------

    def sync(self) -> None:
        """List every page now and replace the cache; raises `GpuscaleError` (also kept in `error`)."""
        try:
            items, rv = list_pages(self.cluster, self.scope, page_size=self._page_size)
        except GpuscaleError as exc:
            self.error = exc
            raise
        fresh = {_key(o): o for o in items if self._keep is None or self._keep(o)}
        with self._lock:
            self._items = fresh
            self.resource_version = rv
            self.version += 1
        self.lists += 1
        self.synced = True
        self.error = None

    def start(self) -> None:
        """Run the watch loop in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"watch-{self.scope.kind}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the loop: the open watch is shut down now (its thread ends at once), no request follows."""
        self._stop.set()
        response, self._response = self._response, None
        if response is not None:
            with contextlib.suppress(Exception):  # already closed, or closing raced with the server's end
                getattr(response, "shutdown", response.close)()

    def _opened(self, response: Any) -> None:
        self._response = response
        if self._stop.is_set():
            self.stop()

    @property
    def running(self) -> bool:
        """Whether the watch loop's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        from kubectl_gpuscale.kube import ExpiredError

        delay = 0.0
        while not self._stop.is_set():
            try:
                if not self.synced:
                    self.sync()
                self._watch_once()
                delay = 0.0
            except ExpiredError:
                self.expired += 1
                self.synced = False
                delay = 0.0
            except GpuscaleError as exc:
                self.error = exc
                ceiling = BACKOFF_MAX_FORBIDDEN if isinstance(exc, ForbiddenError) else BACKOFF_MAX
                delay = min(ceiling, delay * 2 if delay else BACKOFF_FIRST)
            except Exception as exc:  # a dropped connection, a read timeout, a bad line: watch again later
                self.broken += 1
                self.last_break = f"{type(exc).__name__}: {str(exc)[:160]}"
                delay = min(BACKOFF_MAX, delay * 2 if delay else BACKOFF_FIRST)
            if delay:
                self._stop.wait(delay * (1 + random.random() * 0.1))

    def _watch_once(self) -> None:
        """One watch request, applied to the cache until it ends; raises on 410 and other errors."""
        from kubectl_gpuscale.kube import ExpiredError

        self.watches += 1
        seconds = self._watch_seconds + int(random.random() * self._watch_seconds)
        opened = time.monotonic()
        lines = watch_lines(
            self.cluster,
            self.scope,
            self.resource_version,
            timeout_seconds=seconds,
            read_timeout=self._read_timeout,
            opened=self._opened,
        )
        try:
            for event in lines:
                if self._stop.is_set():
                    return
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    code, message = obj.get("code"), str(obj.get("message") or "")
                    if code == 410:
                        raise ExpiredError(f"watch {self.scope.kind}", f"expired: {message}", "list again")
                    raise GpuscaleError(
                        f"watch {self.scope.kind} failed", f"HTTP {code}: {message}", "watch again"
                    )
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    obj.setdefault("apiVersion", self.scope.api_version)
                    obj.setdefault("kind", self.scope.kind)
                    with self._lock:
                        if kind == "DELETED" or (self._keep is not None and not self._keep(obj)):
                            self._items.pop(_key(obj), None)
                        else:
                            self._items[_key(obj)] = obj
                        self.version += 1
                if rv:
                    self.resource_version = rv
                self.error = None
        finally:
            self._response = None
            lines.close()  # gives the connection back (or drops it when the watch was cut short)
        if time.monotonic() - opened < 1.0 and self.error is None and not self._stop.is_set():
            self._stop.wait(BACKOFF_FIRST)  # a server ending watches at once must not be hammered


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
