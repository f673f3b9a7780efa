"""The cold-start timeline: phases, failure, advice, and the JSON schema `simulate --cold-start` reads.

Pure data: frozen dataclasses, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

# Phase names, in the order a start goes through them. These strings are the JSON contract.
PHASES: tuple[str, ...] = (
    "scheduling",  # waiting for a node: creation -> PodScheduled (incl. cluster-autoscaler scale-up)
    "image_pull",  # Pulling -> Pulled (0 when the image was already present on the node)
    "container_start",  # Pulled -> container started (sandbox, init containers, runtime start)
    "engine_init",  # process start -> weights start (imports, config, distributed init)
    "weight_download",  # fetching weights from the hub / object store
    "weight_load",  # reading weights into GPU memory
    "torch_compile",  # torch.compile / inductor (cache hit or miss)
    "kv_cache",  # memory profiling and KV cache allocation
    "cuda_graphs",  # CUDA graph capture
    "server_start",  # engine ready -> HTTP server listening (API-server warmup, routes)
    "readiness_lag",  # server listening -> pod Ready (probe timing)
)

TITLES: dict[str, str] = {
    "scheduling": "waiting for a node",
    "image_pull": "image pull",
    "container_start": "container start",
    "engine_init": "engine init",
    "weight_download": "weight download",
    "weight_load": "weight load",
    "torch_compile": "torch.compile",
    "kv_cache": "KV cache profile+alloc",
    "cuda_graphs": "CUDA graph capture",
    "server_start": "server start",
    "readiness_lag": "readiness lag",
}


@dataclass(frozen=True)
class Phase:
    """One phase of a start.

    `start` is seconds from the timeline's origin (None when only the duration is known);
    `source` says where the duration came from: logged (the engine printed it), window (two
    timestamps), event, condition, or progress (a tqdm bar's elapsed time). `open` is True
    when the phase began but its end is not in the input (the log stops inside it).
    """

    name: str
    seconds: float
    start: float | None = None
    source: str = "window"
    open: bool = False
    detail: tuple[tuple[str, Any], ...] = ()

    @property
    def info(self) -> dict[str, Any]:
        """The detail as a dict (GB, GB/s, cache hit/miss, tokens, max concurrency...)."""
        return dict(self.detail)


@dataclass(frozen=True, kw_only=True)
class Failure:
    """Why a start failed: the phase it failed in, a headline, and the evidence line."""

    phase: str
    headline: str
    evidence: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Advice:
    """One recommendation with its estimated saving for this pod."""

    phase: str
    saving_seconds: float
    action: str
    why: str


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """A cold start broken into phases. `origin` is the absolute time of offset 0, when known."""

    phases: tuple[Phase, ...]
    total_seconds: float
    engine: str | None = None
    engine_version: str | None = None
    status: str = "unknown"  # ready | listening | failed | incomplete | unknown
    failure: Failure | None = None
    origin: datetime | None = None
    anchored: bool = False  # True when year-less log times were anchored to real dates
    pod: str | None = None
    notes: tuple[str, ...] = ()
    advice: tuple[Advice, ...] = ()
    summary: tuple[tuple[str, Any], ...] = field(default=())

    def phase(self, name: str) -> Phase | None:
        """The phase called `name`, or None."""
        for p in self.phases:
            if p.name == name:
                return p
        return None

    def seconds(self, name: str) -> float | None:
        """Duration of phase `name`, or None when absent."""
        p = self.phase(name)
        return None if p is None else p.seconds

    def longest(self) -> Phase | None:
        """The phase that took longest."""
        return max(self.phases, key=lambda p: p.seconds, default=None)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def phase_to_dict(p: Phase, total: float) -> dict[str, Any]:
    """One phase as JSON."""
    return {
        "name": p.name,
        "start": _round(p.start),
        "seconds": _round(p.seconds),
        "share": _round(p.seconds / total, 4) if total > 0 else None,
        "source": p.source,
        "open": p.open,
        "detail": {k: v for k, v in p.detail},
    }


def timeline_to_dict(t: Timeline) -> dict[str, Any]:
    """The `coldstart -o json` document for one start (see docs/coldstart.md for the schema)."""
    attributed = sum(p.seconds for p in t.phases)
    return {
        "kind": "ColdStart",
        "schemaVersion": SCHEMA_VERSION,
        "pod": t.pod,
        "engine": t.engine,
        "engineVersion": t.engine_version,
        "status": t.status,
        "failure": None
        if t.failure is None
        else {
            "phase": t.failure.phase,
            "headline": t.failure.headline,
            "evidence": t.failure.evidence,
            "fix": t.failure.fix,
        },
        "origin": t.origin.isoformat() if t.origin and t.anchored else None,
        "totalSeconds": _round(t.total_seconds),
        "unattributedSeconds": _round(max(0.0, t.total_seconds - attributed)),
        "phases": [phase_to_dict(p, t.total_seconds) for p in t.phases],
        "summary": {k: v for k, v in t.summary},
        "advice": [
            {"phase": a.phase, "savingSeconds": _round(a.saving_seconds, 1), "action": a.action, "why": a.why}
            for a in t.advice
        ],
        "notes": list(t.notes),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(timelines: list[Timeline], workload: str | None = None) -> dict[str, Any]:
    """The `coldstart deploy/NAME -o json` document: p50/p95 per phase over several pods' starts."""
    phases: list[dict[str, Any]] = []
    for name in PHASES:
        values = [p.seconds for t in timelines for p in t.phases if p.name == name]
        if values:
            phases.append(
                {
                    "name": name,
                    "samples": len(values),
                    "p50Seconds": _round(percentile(values, 50)),
                    "p95Seconds": _round(percentile(values, 95)),
                    "maxSeconds": _round(max(values)),
                }
            )
    totals = [t.total_seconds for t in timelines if t.total_seconds > 0]
    return {
        "kind": "ColdStartSummary",
        "schemaVersion": SCHEMA_VERSION,
        "workload": workload,
        "pods": len(timelines),
        "failed": sum(1 for t in timelines if t.status == "failed"),
        "totalSeconds": {"p50": _round(percentile(totals, 50)), "p95": _round(percentile(totals, 95))}
        if totals
        else None,
        "phases": phases,
        "items": [timeline_to_dict(t) for t in timelines],
    }
