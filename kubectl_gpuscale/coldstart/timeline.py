"""Assemble a cold-start `Timeline` from log marks, pod timestamps and events. Pure: no I/O.

The engine side walks the phases in order (engine init, download, load, torch.compile, KV cache,
CUDA graphs, server start); where engines log a phase differently, the engines' own rules
(coldstart/engines/) are tried in the order below and the first that applies decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kubectl_gpuscale.coldstart.advice import advise
from kubectl_gpuscale.coldstart.engines import sglang, tgi, vllm
from kubectl_gpuscale.coldstart.engines.base import (
    Assembly,
    Rule,
    Span,
    first_rule,
    first_ts,
    last_ts,
    max_by_rank,
    secs,
    value,
)
from kubectl_gpuscale.coldstart.events import Event, PodFacts, Pull, events_of, parse_pull, pod_facts
from kubectl_gpuscale.coldstart.logs import LogScan, Mark, scan
from kubectl_gpuscale.coldstart.marks import M
from kubectl_gpuscale.coldstart.model import PHASES, TITLES, Failure, Phase, Timeline


@dataclass
class _Engine:
    phases: list[Span]
    summary: dict[str, Any]
    failure: Failure | None
    listening: datetime | None
    ready: datetime | None
    process_start: datetime | None
    earliest: datetime | None = None  # e.g. the start of 'Model loading' when it began before the weights


def _progress_download(s: LogScan, a: Assembly) -> Span | None:
    """The download from tqdm byte bars: one bar per file, its last update."""
    files: dict[str, Mark] = {}
    for b in s.get(M.BAR):
        if b.values.get("bytes"):
            files[b.values["label"]] = b
    size = sum(b.values["bytes"] for b in files.values()) / 1e9
    seconds = max(b.values["elapsed"] for b in files.values())
    return Span(
        "weight_download",
        seconds,
        a.weights_start,
        "progress",
        open=not all(b.values["done"] for b in files.values()),
        detail={
            "files": len(files),
            "gb": round(size, 2),
            "gbPerSecond": round(size / seconds, 3) if seconds else None,
        },
    )


PROGRESS_DOWNLOAD: Rule = (lambda s: any(b.values.get("bytes") for b in s.get(M.BAR)), _progress_download)
DOWNLOAD_RULES: tuple[Rule, ...] = (vllm.DOWNLOAD, PROGRESS_DOWNLOAD, tgi.DOWNLOAD)
LOAD_RULES: tuple[Rule, ...] = (
    vllm.LOAD_LOGGED,
    vllm.LOAD_MODEL_LOADING,
    sglang.LOAD_END,
    sglang.LOAD_OPEN,
    tgi.LOAD_SHARD_READY,
    vllm.LOAD_WEIGHTS_GB,
)
_HEAD = (M.HEAD, M.VERSION, M.DIST)
_KV_MARKS = (
    M.GRAPH_MEM,
    M.KV_MEM,
    M.KV_TOKENS,
    M.GPU_BLOCKS,
    M.MAX_CONCURRENCY,
    M.PROFILING_LOGGED,
    M.SG_KV,
    M.SG_POOL_END,
    M.SG_CAPACITY,
    M.TGI_WARMUP,
    M.TGI_TOKENS,
)


def _engine_init(s: LogScan, a: Assembly, process_start: datetime) -> None:
    """Process start -> the weights' start (or the download's, or the first other mark)."""
    later = [x for x in (a.weights_start, a.download.start if a.download else None) if x is not None]
    end = min(later) if later else None
    if end is None:
        other = [
            m.ts
            for k, ms in s.marks.items()
            if k not in (*_HEAD, M.BAR, M.FAILURE)
            for m in ms
            if m.ts is not None
        ]
        end = min(other) if other else None
    detail: dict[str, Any] = {}
    dist = s.get(M.DIST)
    if len(dist) >= 2:
        detail["distributedInitSeconds"] = secs(first_ts(dist), last_ts(dist))
    if end is None:
        a.add(
            Span("engine_init", secs(process_start, s.last_ts) or 0.0, process_start, "window", True, detail)
        )
    else:
        a.add(
            Span(
                "engine_init",
                max(0.0, secs(process_start, end) or 0.0),
                process_start,
                "window",
                False,
                detail,
            )
        )


def _weight_load(s: LogScan, a: Assembly) -> None:
    vllm.weights_size(s, a)
    load = first_rule(LOAD_RULES, s, a)
    gb = a.weights_gb
    if load is not None:
        if gb:
            load.detail["gb"] = round(gb, 2)
            if load.seconds > 0:
                load.detail["gbPerSecond"] = round(gb / load.seconds, 3)
        a.add(load)
    if gb and "weightsGB" not in a.summary:
        a.summary["weightsGB"] = round(gb, 2)
    if s.has(M.DOWNLOAD_SKIPPED):
        a.summary["weightDownload"] = "skipped (weights already local)"


def _kv_detail(s: LogScan) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    tokens = (
        max_by_rank(s.get(M.KV_TOKENS)) or max_by_rank(s.get(M.SG_KV)) or max_by_rank(s.get(M.TGI_TOKENS))
    )
    if tokens:
        detail["tokens"] = int(tokens[0])
    blocks = max_by_rank(s.get(M.GPU_BLOCKS))
    if blocks:
        detail["gpuBlocks"] = int(blocks[0])
    conc = max_by_rank(s.get(M.MAX_CONCURRENCY), 1)
    if conc:
        detail["maxConcurrency"] = conc[0]
        detail["maxConcurrencyAtTokens"] = int(value(conc[1], 0) or 0)
    kv_mem = s.get(M.KV_MEM)
    if kv_mem:
        detail["gib"] = min(value(m) or 0.0 for m in kv_mem)
    sgkv = s.get(M.SG_KV)
    if sgkv and sgkv[0].values["groups"][1] is not None:
        detail["gb"] = round((value(sgkv[0], 1) or 0) + (value(sgkv[0], 2) or 0), 2)
    cap = s.get(M.SG_CAPACITY)
    if cap:
        detail["maxRunningRequests"] = int(value(cap[0], 1) or 0)
    return detail


def _graph_logged(s: LogScan) -> tuple[float, Mark] | None:
    return max_by_rank(s.get(M.GRAPH_END)) or max_by_rank(s.get(M.GRAPH_END_PRECISE))


def _kv_cache(s: LogScan, a: Assembly) -> None:
    """Memory profiling and KV cache allocation: from the boundary to the last KV mark when possible."""
    kv_marks = [m for n in _KV_MARKS for m in s.get(n)]
    if not kv_marks:
        return
    end = last_ts(kv_marks)
    detail = _kv_detail(s)
    prof = max_by_rank(s.get(M.PROFILING_LOGGED))
    if prof:
        detail["profilingSeconds"] = prof[0]
    init = max_by_rank(s.get(M.INIT_ENGINE))
    graph_logged = _graph_logged(s)
    start = a.boundary if a.boundary is not None and end is not None and a.boundary <= end else None
    if start is not None and end is not None:
        kv = Span("kv_cache", (end - start).total_seconds(), start, "window", detail=detail)
    elif prof:
        kv = Span(
            "kv_cache",
            prof[0],
            (prof[1].ts - timedelta(seconds=prof[0])) if prof[1].ts else None,
            "logged",
            detail=detail,
        )
    elif init and s.engine == "vllm":
        rest = (
            init[0] - (a.compile.seconds if a.compile else 0.0) - (graph_logged[0] if graph_logged else 0.0)
        )
        kv = Span("kv_cache", max(0.0, rest), None, "logged", detail=detail)
        kv.detail["note"] = "init engine time minus compile and graph capture"
    else:
        first = first_ts(kv_marks)
        kv = Span("kv_cache", secs(first, end) or 0.0, first, "window", detail=detail)
    a.add(kv)
    if end is not None:
        a.reach(end)


def _cuda_graphs(s: LogScan, a: Assembly) -> None:
    """CUDA graph capture: the logged time, else the capture progress bars, else begin -> end of log."""
    if s.has(M.EAGER):
        a.summary["cudaGraphs"] = "disabled (--enforce-eager)"
    begin = first_ts(s.get(M.GRAPH_BEGIN))
    graph_logged = _graph_logged(s)
    graph: Span | None = None
    if graph_logged:
        logged, mark = graph_logged
        precise = mark.name == M.GRAPH_END_PRECISE or "." in str(mark.values["groups"][0])
        start = begin or a.boundary
        if not precise and start is not None and mark.ts is not None and mark.ts >= start:
            graph = Span("cuda_graphs", (mark.ts - start).total_seconds(), start, "window")
            graph.detail["loggedSeconds"] = logged
        else:
            graph = Span(
                "cuda_graphs", logged, (mark.ts - timedelta(seconds=logged)) if mark.ts else None, "logged"
            )
        graph_gib = value(mark, 1)
        if graph_gib is not None:
            graph.detail["gib"] = graph_gib
    elif begin is not None or any("aptur" in b.values["label"] for b in s.get(M.BAR)):
        latest: dict[str, Mark] = {}  # the last update of each progress bar
        for b in s.get(M.BAR):
            if "aptur" in b.values["label"]:
                latest[b.values["label"].split("(bs=")[0].split("(avail")[0]] = b
        start = begin or a.boundary
        if latest:
            seconds = sum(b.values["elapsed"] for b in latest.values())
            done = all(b.values["done"] for b in latest.values())
            graph = Span(
                "cuda_graphs", seconds, start, "progress", open=not done, detail={"bars": len(latest)}
            )
        else:
            graph = Span("cuda_graphs", secs(start, s.last_ts) or 0.0, start, "window", open=True)
    if graph is not None:
        device = sglang.graph_device(s)
        if device and device != "cuda":
            graph.detail["device"] = device
        a.add(graph)


def _server_start(s: LogScan, a: Assembly, listening: datetime | None) -> None:
    """Engine ready (API warmup start, init engine end, or the boundary) -> listening."""
    init = max_by_rank(s.get(M.INIT_ENGINE))
    if init:
        a.summary["initEngineSeconds"] = init[0]
    for m in s.get(M.LISTENING):
        a.summary["listeningOn"] = str(m.values["groups"][0]) if m.values["groups"] else None
        break
    if listening is None:
        return
    warm = [m.ts - timedelta(seconds=value(m) or 0.0) for m in s.get(M.API_WARMUP) if m.ts is not None]
    engine_ready = min(warm) if warm else (init[1].ts if init else None) or a.boundary
    if engine_ready is not None and engine_ready <= listening:
        detail: dict[str, Any] = {}
        if warm:
            detail["apiWarmupSeconds"] = round(sum(value(m) or 0.0 for m in s.get(M.API_WARMUP)), 2)
        a.add(
            Span(
                "server_start",
                (listening - engine_ready).total_seconds(),
                engine_ready,
                "window",
                detail=detail,
            )
        )


def _engine_phases(s: LogScan) -> _Engine:
    """The engine's phases on the log clock, in start order."""
    a = Assembly()
    a.weights_start = first_ts(s.get(M.WEIGHTS_START) or s.get(M.TGI_DL_START) or s.get(M.TGI_WEIGHTS_START))
    process_start = s.first_ts if s.has(*_HEAD) else None
    download = a.download = first_rule(DOWNLOAD_RULES, s, a)
    if download is not None:
        if s.has(M.DOWNLOAD_SKIPPED):
            download.detail["cache"] = "hit (weights already on the host)"
        if process_start is not None and download.start is not None and a.weights_start is None:
            a.weights_start = download.start
    if process_start is not None:
        _engine_init(s, a, process_start)
    if download is not None:
        a.add(download)
    _weight_load(s, a)
    vllm.torch_compile(s, a)
    _kv_cache(s, a)
    _cuda_graphs(s, a)
    listening = first_ts(s.get(M.LISTENING))
    ready = first_ts(s.get(M.READY)) or first_ts(s.get(M.APP_STARTED))  # engine says it serves
    _server_start(s, a, listening)
    return _Engine(
        a.phases,
        a.summary,
        _failure(s, a.phases),
        listening,
        ready,
        process_start,
        vllm.model_loading_began(s),
    )


_FIX = {
    "kv_cache": "raise --gpu-memory-utilization, lower --max-model-len / --max-num-seqs, use an FP8 KV cache "
    "(--kv-cache-dtype fp8) or more GPUs (tensor parallel)",
    "cuda_graphs": "lower --gpu-memory-utilization (CUDA graph memory is outside the profiled budget before "
    "v0.19; VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 counts it), capture fewer sizes "
    "(--max-num-seqs, cudagraph_capture_sizes) or --enforce-eager",
    "weight_load": "the model does not fit: more GPUs (tensor parallel), a quantized checkpoint, or a larger GPU",
}


def _failure(s: LogScan, phases: list[Span]) -> Failure | None:
    fails = list(s.get(M.FAILURE))
    for m in s.get(M.KV_MEM):
        v = value(m)
        if v is not None and v < 0:
            fails.append(
                Mark(
                    M.FAILURE,
                    m.ts,
                    m.rank,
                    m.index,
                    {
                        "headline": f"negative KV cache memory ({v} GiB): weights and activations "
                        "exceed the GPU memory budget",
                        "phase": "kv_cache",
                    },
                    m.text,
                )
            )
    if not fails:
        return None
    order = (
        "no GPU memory",
        "negative KV",
        "max model length",
        "CUDA out of memory",
        "out of memory",
        "exception during CUDA graph",
        "",
    )
    fails.sort(key=lambda m: next(i for i, o in enumerate(order) if o in m.values["headline"]))
    top = fails[0]
    phase = top.values["phase"]
    if not phase:
        if any(m.values["phase"] == "cuda_graphs" for m in fails) or (
            s.has(M.GRAPH_BEGIN) and not s.has(M.GRAPH_END, M.GRAPH_END_PRECISE)
        ):
            phase = "cuda_graphs"
        else:
            opened = [p for p in phases if p.open] or phases
            phase = opened[-1].name if opened else "unknown"
    headline = top.values["headline"]
    where = f" on {top.rank}" if top.rank else ""
    title = TITLES.get(phase, phase.replace("_", " "))
    return Failure(
        phase=phase,
        headline=f"start failed during {title}: {headline}{where}",
        evidence=top.text.strip()[:300],
        fix=_FIX.get(phase, ""),
    )


# ------------------------------------------------------------------------------------------ kubernetes side
def _scheduling(
    facts: PodFacts | None, by_reason: dict[str, list[Event]]
) -> tuple[Span | None, datetime | None]:
    """Creation -> PodScheduled (with failed attempts and cluster-autoscaler scale-up), and when it was scheduled."""
    created = facts.created if facts else None
    scheduled = (facts.scheduled if facts else None) or next(
        (e.first for e in by_reason.get("Scheduled", []) if e.first), None
    )
    if created is None or scheduled is None:
        return None, scheduled
    detail: dict[str, Any] = {}
    failed = sum(e.count for e in by_reason.get("FailedScheduling", []))
    if failed:
        detail["failedScheduling"] = failed
        detail["lastReason"] = by_reason["FailedScheduling"][-1].message[:200]
    if by_reason.get("TriggeredScaleUp"):
        detail["scaleUp"] = by_reason["TriggeredScaleUp"][-1].message[:200]
    if facts and facts.node:
        detail["node"] = facts.node
    return Span(
        "scheduling", max(0.0, (scheduled - created).total_seconds()), created, "condition", False, detail
    ), scheduled


def _pull_detail(pull: Pull) -> dict[str, Any]:
    """What a finished (not cached) pull says: pull and waiting time, size, speed."""
    detail: dict[str, Any] = {"image": pull.image, "cached": pull.cached}
    if pull.pull_seconds is not None:
        detail["pullSeconds"] = round(pull.pull_seconds, 3)
    if pull.wait_seconds is not None:
        detail["waitingSeconds"] = round(pull.wait_seconds - (pull.pull_seconds or 0.0), 3)
    if pull.size_bytes:
        detail["gb"] = round(pull.size_bytes / 1e9, 2)
        if pull.pull_seconds:
            detail["gbPerSecond"] = round(pull.size_bytes / 1e9 / pull.pull_seconds, 3)
    return detail


def _image_pull(by_reason: dict[str, list[Event]]) -> tuple[Span | None, datetime | None]:
    """Pulling -> Pulled of the image that took longest (0 s when cached), and when it ended."""
    pulls = [p for p in (parse_pull(e) for e in by_reason.get("Pulled", [])) if p]
    pulling = by_reason.get("Pulling", [])
    if not pulls:
        if pulling and pulling[0].first is not None:
            return Span(
                "image_pull", 0.0, pulling[0].first, "event", True, {"image": pulling[0].message[:120]}
            ), None
        return None, None
    main = max(pulls, key=lambda p: p.wait_seconds or p.pull_seconds or 0.0)
    if main.cached:
        return Span(
            "image_pull", 0.0, main.at, "event", False, {"image": main.image, "cached": main.cached}
        ), main.at
    seconds = main.wait_seconds or main.pull_seconds or 0.0
    start = next((e.first for e in pulling if main.image in e.message), None)
    if main.at is not None:
        start = main.at - timedelta(seconds=seconds)
    return Span("image_pull", seconds, start, "event", False, _pull_detail(main)), main.at


def _container_start(
    facts: PodFacts | None, by_reason: dict[str, list[Event]], begin: datetime | None
) -> tuple[Span | None, datetime | None]:
    """Pulled (or scheduled) -> container started, and when it started."""
    started = (facts.started if facts else None) or next(
        (e.first for e in by_reason.get("Started", []) if e.first), None
    )
    if started is None or begin is None or started < begin:
        return None, started
    detail: dict[str, Any] = {}
    if facts and facts.restarts:
        detail["restarts"] = facts.restarts
        detail["note"] = "includes earlier failed attempts and crash back-off"
    return Span("container_start", (started - begin).total_seconds(), begin, "event", False, detail), started


def _pod_summary(facts: PodFacts | None, by_reason: dict[str, list[Event]]) -> dict[str, Any]:
    """Pull back-off, probe failures, crash back-off, restarts and the last termination."""
    summary: dict[str, Any] = {}
    backoff = sum(e.count for e in by_reason.get("BackOff", []) if "pull" in e.message.lower())
    if backoff:
        summary["imagePullBackOff"] = backoff
    unhealthy = by_reason.get("Unhealthy", [])
    if unhealthy:
        summary["probeFailures"] = sum(e.count for e in unhealthy)
        summary["lastProbeFailure"] = unhealthy[-1].message[:200]
    crash = [e for e in by_reason.get("BackOff", []) if "restarting" in e.message.lower()]
    if crash:
        summary["crashBackOff"] = sum(e.count for e in crash)
    if facts and facts.restarts:
        summary["restarts"] = facts.restarts
        term = facts.last_termination
        if term:
            summary["lastTermination"] = {
                k: term.get(k) for k in ("reason", "exitCode", "finishedAt") if k in term
            }
    return summary


def _pod_phases(
    facts: PodFacts | None, events: list[Event]
) -> tuple[list[Span], dict[str, Any], datetime | None]:
    """Phases before the process starts, on the UTC clock; and the container start time."""
    by_reason: dict[str, list[Event]] = {}
    for e in events:
        by_reason.setdefault(e.reason, []).append(e)
    scheduling, scheduled = _scheduling(facts, by_reason)
    pull, pull_end = _image_pull(by_reason)
    container, started = _container_start(facts, by_reason, pull_end or scheduled)
    phases = [p for p in (scheduling, pull, container) if p is not None]
    return phases, _pod_summary(facts, by_reason), started


def _offset(s: LogScan, started: datetime | None) -> tuple[timedelta, bool, str | None]:
    """How to move log-clock times onto UTC: (offset, anchored?, note)."""
    if s.first_ts is None:
        return timedelta(0), False, None
    if s.utc:
        return timedelta(0), True, None
    if started is None:
        return timedelta(0), False, None
    first = s.first_ts
    if s.yearless:
        candidates = [
            first.replace(year=y)
            for y in (started.year - 1, started.year, started.year + 1)
            if not (first.month == 2 and first.day == 29 and y % 4)
        ]
        first = min(candidates, key=lambda c: abs((c - started).total_seconds()))
    raw = (first - started).total_seconds()
    quarter = round(raw / 900.0) * 900.0  # log times are local time: the zone offset is a multiple of 15 min
    offset = (first - s.first_ts) - timedelta(seconds=quarter)
    note = None
    if quarter:
        note = (
            f"log times are local time; shifted by {-quarter / 3600:+.2f} h to match the pod's UTC timestamps"
        )
    return offset, True, note


def build(
    lines: Iterable[str] = (),
    *,
    pod: Mapping[str, Any] | None = None,
    events: Iterable[Mapping[str, Any]] = (),
    previous: Iterable[str] = (),
    container: str | None = None,
) -> Timeline:
    """The cold-start timeline of one pod from its log lines, pod JSON and events.

    Args:
        lines: the container's log (current container).
        pod: the Pod object (conditions, container states, creationTimestamp), optional.
        events: core events about the pod, optional.
        previous: the previous container's log (a failed attempt), optional.
        container: which container of the pod the log belongs to (default the first).
    """
    s = scan(lines)
    return build_from_scan(
        s, pod=pod, events=events, previous=scan(previous) if previous else None, container=container
    )


def build_from_scan(
    s: LogScan,
    *,
    pod: Mapping[str, Any] | None = None,
    events: Iterable[Mapping[str, Any]] = (),
    previous: LogScan | None = None,
    container: str | None = None,
) -> Timeline:
    """Like `build`, from an already scanned log."""
    facts = pod_facts(pod, container) if pod else None
    engine = _engine_phases(s)
    pod_ph, pod_summary, started = _pod_phases(facts, events_of(events))
    offset, anchored, note = _offset(s, started)
    notes: list[str] = [note] if note else []
    if not anchored and s.yearless and s.first_ts is not None:
        notes.append("log timestamps carry no year and no zone; times are relative to the log")
    phases = pod_ph + _engine_on_pod_clock(engine, offset, started, anchored)
    listening = engine.listening + offset if engine.listening else None
    ready_log = engine.ready + offset if engine.ready else None
    ready = facts.ready if facts else None
    if ready is not None and anchored:
        lag = _readiness_lag(phases, ready, listening or ready_log, pod_summary)
        if lag is not None:
            phases.append(lag)
    status, failure = _status(engine, facts, previous, ready, phases)
    starts = [p.start for p in phases if p.start is not None]
    if engine.earliest is not None:
        starts.append(engine.earliest + offset)
    ends = [p.end for p in phases if p.end is not None]
    ends += [
        t for t in (listening, ready_log, ready, s.last_ts + offset if s.last_ts else None) if t is not None
    ]
    origin = (
        facts.created
        if facts and facts.created
        else min(starts)
        if starts
        else s.first_ts + offset
        if s.first_ts is not None
        else None
    )
    end_at = ready if (ready is not None and anchored) else max(ends, default=None)
    total = _total(phases, origin, end_at)
    summary = {**pod_summary, **engine.summary}
    name = f"{facts.namespace}/{facts.name}" if facts and facts.name else None
    timeline = Timeline(
        phases=_final_phases(phases, origin),
        total_seconds=round(total, 3),
        engine=s.engine,
        engine_version=s.version,
        status=status,
        failure=failure,
        origin=origin,
        anchored=anchored or (not s.yearless and s.first_ts is not None),
        pod=name,
        notes=tuple(notes),
        summary=tuple(summary.items()),
    )
    return replace(timeline, advice=tuple(advise(timeline)))


def _engine_on_pod_clock(
    engine: _Engine, offset: timedelta, started: datetime | None, anchored: bool
) -> list[Span]:
    """The engine's phases moved onto the pod's clock; engine init begins when the container started."""
    phases = [replace(p, start=p.start + offset if p.start is not None else None) for p in engine.phases]
    for p in phases:
        if p.name == "engine_init" and started is not None and p.start is not None:
            end = p.start + timedelta(seconds=p.seconds)
            if started <= end:
                p.start = started
                p.seconds = (end - started).total_seconds()
    if started is not None and anchored and not any(p.name == "engine_init" for p in phases):
        # the log is this container's own: its process started with the container
        nexts = [p.start for p in phases if p.start is not None]
        if engine.earliest is not None:
            nexts.append(engine.earliest + offset)
        if nexts and min(nexts) >= started:
            phases.insert(0, Span("engine_init", (min(nexts) - started).total_seconds(), started))
    return phases


def _readiness_lag(
    phases: list[Span], ready: datetime, since: datetime | None, pod_summary: dict[str, Any]
) -> Span | None:
    """Server listening (or the last phase's end) -> pod Ready."""
    since = since or max((p.end for p in phases if p.end is not None), default=None)
    if since is None or ready < since:
        return None
    detail = {}
    if "probeFailures" in pod_summary:
        detail["probeFailures"] = pod_summary["probeFailures"]
    return Span("readiness_lag", (ready - since).total_seconds(), since, "condition", False, detail)


def _status(
    engine: _Engine,
    facts: PodFacts | None,
    previous: LogScan | None,
    ready: datetime | None,
    phases: list[Span],
) -> tuple[str, Failure | None]:
    """ready | listening | failed | incomplete | unknown, and why it failed (this or the previous attempt)."""
    failure = engine.failure
    if failure is None and previous is not None:
        prev = _engine_phases(previous)
        if prev.failure is not None:
            failure = replace(prev.failure, headline="previous attempt: " + prev.failure.headline)
    if engine.failure is not None:
        return "failed", failure
    if ready is not None or engine.ready is not None:
        return "ready", failure
    if engine.listening is not None:
        return "listening", failure
    if facts is not None and facts.waiting_reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
        return "failed", failure or Failure(
            phase="image_pull" if "Image" in facts.waiting_reason else "engine_init",
            headline=f"pod is in {facts.waiting_reason}",
        )
    return ("incomplete" if any(p.open for p in phases) else "unknown"), failure


def _total(phases: list[Span], origin: datetime | None, end_at: datetime | None) -> float:
    """Seconds from the origin to the end, and never less than the phases with no place on the clock."""
    total = max(0.0, (end_at - origin).total_seconds()) if origin is not None and end_at is not None else 0.0
    return max(
        total,
        sum(p.seconds for p in phases if p.start is None)
        + sum(p.seconds for p in phases if p.start is not None and origin is not None and p.start < origin),
    )


def _final_phases(phases: list[Span], origin: datetime | None) -> tuple[Phase, ...]:
    """The phases in start order, offsets from the origin, rounded to the millisecond."""
    order = {n: i for i, n in enumerate(PHASES)}
    return tuple(
        Phase(
            p.name,
            round(p.seconds, 3),
            round((p.start - origin).total_seconds(), 3)
            if p.start is not None and origin is not None
            else None,
            p.source,
            p.open,
            tuple(p.detail.items()),
        )
        for p in sorted(phases, key=lambda p: order.get(p.name, 99))
    )
