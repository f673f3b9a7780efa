"""The dashboard's view model: what one refresh knows about the cluster, as frozen plain data.

Pure (no textual, kubernetes or prometheus import): sources build `Snapshot`s,
the app renders them, `top --once` prints them, tests compare them.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

STEADY = "steady"
SCALING_UP = "scaling up"
SCALING_DOWN = "scaling down"
COLD_STARTING = "cold starting"
FLAPPING = "flapping"
METRIC_MISSING = "metric missing"
AT_ZERO = "at zero"
PAUSED = "paused"


@dataclass(frozen=True)
class Trigger:
    """One scaling signal and where it stands: why the workload scaled, or why not."""

    name: str
    value: float | None
    threshold: float | None
    unit: str = ""

    @property
    def firing(self) -> bool:
        """True when the value is above its threshold (the autoscaler wants more replicas)."""
        return self.value is not None and self.threshold is not None and self.value > self.threshold

    def describe(self) -> str:
        """`queue 12/5` style text; `queue ?/5` when the metric is missing."""
        value = "?" if self.value is None else _num(self.value)
        threshold = "-" if self.threshold is None else _num(self.threshold)
        return f"{self.name} {value}/{threshold}{self.unit}"


@dataclass(frozen=True)
class ColdStartPhase:
    """One phase of a pod's start (name and seconds), as `coldstart` reports it."""

    name: str
    seconds: float


@dataclass(frozen=True)
class Pod:
    """A pod of a workload, with its cold-start progress while it starts."""

    name: str
    phase: str
    ready: bool
    node: str = ""
    age_seconds: float = 0.0
    restarts: int = 0
    gpu_util: float | None = None
    starting_phase: str | None = None
    start_progress: float | None = None
    phases: tuple[ColdStartPhase, ...] = ()


@dataclass(frozen=True)
class Workload:
    """One scaled inference workload and its autoscaler."""

    namespace: str
    name: str
    kind: str = "Deployment"
    engine: str = ""
    model: str = ""
    scaler: str = "none"
    scaler_name: str = ""
    ready: int = 0
    desired: int = 0
    min_replicas: int | None = None
    max_replicas: int | None = None
    triggers: tuple[Trigger, ...] = ()
    queue_waiting: float | None = None
    queue_running: float | None = None
    kv_cache_pct: float | None = None
    gpu_util_pct: float | None = None
    cpu_pct: float | None = None
    ttft_p95_s: float | None = None
    paused: bool = False
    state: str = STEADY
    pods: tuple[Pod, ...] = ()

    @property
    def key(self) -> str:
        """`namespace/name`: unique across the cluster."""
        return f"{self.namespace}/{self.name}"

    def why(self) -> str:
        """The triggers against their thresholds, one line."""
        return ", ".join(t.describe() for t in self.triggers) or "-"


@dataclass(frozen=True)
class ScalingEvent:
    """A line of the scaling events log."""

    time: str
    namespace: str
    name: str
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Finding:
    """A doctor finding shown in the dashboard."""

    rule: str
    severity: str
    target: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh knows. `problems` says what is degraded (Prometheus down, 403, ...)."""

    time: str
    source: str
    workloads: tuple[Workload, ...] = ()
    events: tuple[ScalingEvent, ...] = ()
    findings: tuple[Finding, ...] = ()
    problems: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (`top --once -o json`)."""
        return asdict(self)


class Source(Protocol):
    """Where the dashboard gets its data: a live cluster or the simulated demo cluster.

    `refresh` is blocking and runs in a worker thread, never on the UI thread.
    """

    name: str

    def refresh(self) -> Snapshot:
        """Read the current state."""
        ...

    def scale(self, namespace: str, name: str, replicas: int) -> str:
        """Set a workload's replicas; returns what was done."""
        ...

    def pause(self, namespace: str, name: str, replicas: int | None) -> str:
        """Pause autoscaling (KEDA paused-replicas); None resumes."""
        ...

    def set_namespace(self, namespace: str | None) -> None:
        """Restrict to one namespace (None: all)."""
        ...

    def cold_start(self, namespace: str, pod: str) -> tuple[tuple[ColdStartPhase, ...], str]:
        """A pod's cold-start phases and a headline (the failure, or the longest phase); blocking."""
        ...

    def checkpoint(self, namespace: str, pod: str) -> str:
        """Checkpoint a pod's container (kubelet checkpoint API); returns where the archive is."""
        ...

    def set_context(self, context: str) -> str:
        """Switch to another kubeconfig context; returns what was done."""
        ...


@dataclass
class History:
    """Rolling per-workload history of queue depth and replicas for the sparklines."""

    length: int = 120
    queue: dict[str, deque[float]] = field(default_factory=dict)
    replicas: dict[str, deque[float]] = field(default_factory=dict)
    desired: dict[str, deque[float]] = field(default_factory=dict)

    def record(self, workloads: Iterable[Workload]) -> None:
        """Append one point per workload."""
        for w in workloads:
            for series, value in (
                (self.queue, w.queue_waiting),
                (self.replicas, w.ready),
                (self.desired, w.desired),
            ):
                series.setdefault(w.key, deque(maxlen=self.length)).append(float(value or 0.0))

    def flapping(self, key: str, window: int = 20, changes: int = 4) -> bool:
        """True when desired replicas changed direction `changes` times in the last `window` points."""
        points = list(self.desired.get(key, ()))[-window:]
        turns, last_sign = 0, 0
        for a, b in itertools.pairwise(points):
            sign = (b > a) - (b < a)
            if sign and last_sign and sign != last_sign:
                turns += 1
            last_sign = sign or last_sign
        return turns >= changes


def classify(w: Workload, history: History | None = None) -> str:
    """The one-word state of a workload, from its replicas, pods, triggers and history."""
    if w.paused:
        return PAUSED
    if w.triggers and all(t.value is None for t in w.triggers):
        return METRIC_MISSING
    if any(p.starting_phase for p in w.pods) or (w.desired > w.ready and any(not p.ready for p in w.pods)):
        return COLD_STARTING
    if history is not None and history.flapping(w.key):
        return FLAPPING
    if w.desired > w.ready:
        return SCALING_UP
    if w.desired < w.ready:
        return SCALING_DOWN
    if w.desired == 0 and w.ready == 0:
        return AT_ZERO
    return STEADY


def filter_workloads(workloads: Sequence[Workload], text: str) -> list[Workload]:
    """Workloads whose namespace, name, engine, scaler or state contains `text` (case-insensitive)."""
    needle = text.strip().lower()
    if not needle:
        return list(workloads)
    return [
        w
        for w in workloads
        if any(needle in s.lower() for s in (w.namespace, w.name, w.engine, w.scaler, w.state, w.model))
    ]


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 or abs(value) >= 100 else f"{value:.2g}"
