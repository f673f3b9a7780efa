"""Kubernetes side of a cold start: pod conditions, container state timestamps and events.

Pure: takes the pod and its events as plain dicts (what `kubectl get -o json` prints).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubectl_gpuscale.units import duration_seconds

_PULLED = re.compile(
    r'Successfully pulled image "(?P<image>[^"]+)" in (?P<pull>[\d.hmsuµμn]+)'
    r"(?: \((?P<wait>[\d.hmsuµμn]+) including waiting\))?(?:\.? ?Image size: (?P<size>\d+) bytes)?"
)
_PRESENT = re.compile(r'Container image "(?P<image>[^"]+)" already present on machine')
_PULLING = re.compile(r'Pulling image "(?P<image>[^"]+)"')


def go_duration(text: str) -> float:
    """Seconds in a Go duration string: ``1m2.5s`` -> 62.5, ``500ms`` -> 0.5.

    Raises:
        ValueError: when the text is not a duration.
    """
    return duration_seconds(text)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2025-01-02T03:04:05Z``, with optional fraction/offset) as naive UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python < 3.11 accepts at most 6 fractional digits
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest)
        if digits:
            text = head + "." + digits.group(0)[:6].ljust(6, "0") + rest[digits.end() :]
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


@dataclass(frozen=True)
class Event:
    """One core event, reduced to what a timeline needs."""

    reason: str
    message: str
    first: datetime | None
    last: datetime | None
    count: int = 1


@dataclass(frozen=True)
class Pull:
    """An image pull read from a Pulled event."""

    image: str
    at: datetime | None  # when the Pulled event was recorded
    pull_seconds: float | None = None  # "in Xs"
    wait_seconds: float | None = None  # "(Ys including waiting)"
    size_bytes: int | None = None
    cached: bool = False  # "already present on machine"


def events_of(items: Iterable[Mapping[str, Any]]) -> list[Event]:
    """core/v1 or events.k8s.io/v1 events as `Event`s, oldest first."""
    out: list[Event] = []
    for e in items:
        first = parse_time(e.get("firstTimestamp") or e.get("deprecatedFirstTimestamp") or e.get("eventTime"))
        last = (
            parse_time(
                e.get("lastTimestamp")
                or e.get("deprecatedLastTimestamp")
                or (e.get("series") or {}).get("lastObservedTime")
                or e.get("eventTime")
            )
            or first
        )
        count = e.get("count") or e.get("deprecatedCount") or (e.get("series") or {}).get("count") or 1
        out.append(
            Event(
                str(e.get("reason") or ""),
                str(e.get("message") or e.get("note") or ""),
                first or last,
                last,
                int(count),
            )
        )
    return sorted(out, key=lambda ev: ev.first or datetime.min)


def parse_pull(event: Event) -> Pull | None:
    """The pull an event reports (Pulled with timing and size, or image already present), else None."""
    m = _PULLED.search(event.message)
    if m:
        wait = go_duration(m.group("wait")) if m.group("wait") else None
        size = int(m.group("size")) if m.group("size") else None
        return Pull(m.group("image"), event.last, go_duration(m.group("pull")), wait, size)
    m = _PRESENT.search(event.message)
    if m:
        return Pull(m.group("image"), event.last, cached=True)
    return None


@dataclass(frozen=True)
class PodFacts:
    """Timestamps and states of one pod, from its JSON."""

    name: str | None = None
    namespace: str | None = None
    created: datetime | None = None
    scheduled: datetime | None = None
    initialized: datetime | None = None
    containers_ready: datetime | None = None
    ready: datetime | None = None
    started: datetime | None = None  # the main container's current start
    restarts: int = 0
    last_termination: Mapping[str, Any] = field(default_factory=dict)
    waiting_reason: str | None = None
    node: str | None = None
    images: tuple[str, ...] = ()


def _condition(pod: Mapping[str, Any], kind: str) -> datetime | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and str(cond.get("status")) == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def pod_facts(pod: Mapping[str, Any], container: str | None = None) -> PodFacts:
    """Read a pod's creation, condition and container-state timestamps (the first or named container)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    chosen: Mapping[str, Any] = {}
    for cs in statuses:
        if container is None or cs.get("name") == container:
            chosen = cs
            break
    state = chosen.get("state") or {}
    started = parse_time(
        (state.get("running") or {}).get("startedAt") or (state.get("terminated") or {}).get("startedAt")
    )
    images = tuple(c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or [])
    return PodFacts(
        name=meta.get("name"),
        namespace=meta.get("namespace"),
        created=parse_time(meta.get("creationTimestamp")),
        scheduled=_condition(pod, "PodScheduled"),
        initialized=_condition(pod, "Initialized"),
        containers_ready=_condition(pod, "ContainersReady"),
        ready=_condition(pod, "Ready"),
        started=started,
        restarts=int(chosen.get("restartCount") or 0),
        last_termination=(chosen.get("lastState") or {}).get("terminated") or {},
        waiting_reason=(state.get("waiting") or {}).get("reason"),
        node=(pod.get("spec") or {}).get("nodeName"),
        images=images,
    )
