"""Assemble a cold-start `Timeline` from log marks, pod timestamps and events. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from kubectl_gpuscale.coldstart.advice import advise
from kubectl_gpuscale.coldstart.events import Event, PodFacts, events_of, parse_pull, pod_facts
from kubectl_gpuscale.coldstart.logs import LogScan, Mark, scan
from kubectl_gpuscale.coldstart.model import PHASES, TITLES, Failure, Phase, Timeline

GIB = 1024 ** 3 / 1e9  # GiB in GB


@dataclass
class _P:
    """A phase while being assembled: absolute start/end on one clock."""

    name: str
    seconds: float
    start: datetime | None = None
    source: str = "window"
    open: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> datetime | None:
        return None if self.start is None else self.start + timedelta(seconds=self.seconds)


def _f(mark: Mark, i: int = 0) -> float | None:
    g = mark.values["groups"][i]
    return None if g is None else float(str(g).replace(",", ""))


def _max_by_rank(marks: list[Mark], i: int = 0) -> tuple[float, Mark] | None:
    """The largest value among ranks (every rank logs its own line): (value, the mark that said it)."""
    best: tuple[float, Mark] | None = None
    for m in marks:
        v = _f(m, i)
        if v is not None and (best is None or v > best[0]):
            best = (v, m)
    return best


def _last_ts(marks: list[Mark]) -> datetime | None:
    stamps = [m.ts for m in marks if m.ts is not None]
    return max(stamps) if stamps else None


def _first_ts(marks: list[Mark]) -> datetime | None:
    stamps = [m.ts for m in marks if m.ts is not None]
    return min(stamps) if stamps else None


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds()


@dataclass
class _Engine:
    phases: list[_P]
    summary: dict[str, Any]
    failure: Failure | None
    listening: datetime | None
    ready: datetime | None
    process_start: datetime | None
    earliest: datetime | None = None  # e.g. the start of 'Model loading' when it began before the weights


def _engine_phases(s: LogScan) -> _Engine:  # noqa: C901 - one linear walk through the phases
    phases: list[_P] = []
    summary: dict[str, Any] = {}
    boundary: datetime | None = None  # end of the latest phase so far (log clock)

    def add(p: _P) -> None:
        nonlocal boundary
        phases.append(p)
        if p.end is not None and not p.open:
            boundary = p.end if boundary is None else max(boundary, p.end)

    # --- engine init: process start -> weights start
    weights_start = _first_ts(s.get("weights_start") or s.get("tgi_dl_start") or s.get("weights_start_tgi"))
    head = s.has("head", "version", "dist")
    process_start = s.first_ts if head else None
    # --- weight download
    download: _P | None = None
    if s.has("download_logged"):
        best = _max_by_rank(s.get("download_logged"))
        assert best
        end = best[1].ts
        download = _P("weight_download", best[0], end - timedelta(seconds=best[0]) if end else None, "logged")
    elif any(b.values.get("bytes") for b in s.get("bar")):
        bars = [b for b in s.get("bar") if b.values.get("bytes")]
        files: dict[str, Mark] = {}
        for b in bars:
            files[b.values["label"]] = b
        size = sum(b.values["bytes"] for b in files.values()) / 1e9
        secs = max(b.values["elapsed"] for b in files.values())
        download = _P("weight_download", secs, weights_start, "progress",
                      open=not all(b.values["done"] for b in files.values()),
                      detail={"files": len(files), "gb": round(size, 2),
                              "gbPerSecond": round(size / secs, 3) if secs else None})
    elif s.has("tgi_dl_start"):
        start = _first_ts(s.get("tgi_dl_start"))
        if s.has("tgi_dl_done"):
            download = _P("weight_download", _secs(start, _first_ts(s.get("tgi_dl_done"))) or 0.0, start, "window")
        elif s.has("tgi_dl_file"):
            dl_files = s.get("tgi_dl_file")
            dl_secs = 0.0
            for m in dl_files:
                dl_secs += (_f(m, 0) or 0.0) * 3600 + (_f(m, 1) or 0.0) * 60 + (_f(m, 2) or 0.0)
            download = _P("weight_download", dl_secs, start, "logged", open=True, detail={"files": len(dl_files)})
        else:
            download = _P("weight_download", _secs(start, s.last_ts) or 0.0, start, "window", open=True)
    if download is not None:
        if s.has("download_skipped"):
            download.detail["cache"] = "hit (weights already on the host)"
        if process_start is not None and download.start is not None and weights_start is None:
            weights_start = download.start
    if process_start is not None:
        later = [x for x in (weights_start, download.start if download else None) if x is not None]
        end = min(later) if later else None
        if end is None:
            other = [m.ts for k, ms in s.marks.items() if k not in ("head", "version", "dist", "bar", "failure")
                     for m in ms if m.ts is not None]
            end = min(other) if other else None
        detail: dict[str, Any] = {}
        dist = s.get("dist")
        if len(dist) >= 2:
            detail["distributedInitSeconds"] = _secs(_first_ts(dist), _last_ts(dist))
        if end is None:
            add(_P("engine_init", _secs(process_start, s.last_ts) or 0.0, process_start, "window", True, detail))
        else:
            add(_P("engine_init", max(0.0, _secs(process_start, end) or 0.0), process_start, "window", False, detail))
    if download is not None:
        add(download)
    # --- weight load
    load: _P | None = None
    gb: float | None = None
    ml = _max_by_rank(s.get("model_loading"), 2)
    if ml:
        unit = ml[1].values["groups"][1]
        gb = (_f(ml[1], 0) or 0.0) * (GIB if unit == "GiB" else 1.0)
        summary["modelLoadingSeconds"] = ml[0]
    wg = _max_by_rank(s.get("weights_gb"))
    if wg:
        gb = wg[0] * (GIB if wg[1].values["groups"][1] == "GiB" else 1.0)
    if s.has("load_logged"):
        best = _max_by_rank(s.get("load_logged"))
        assert best
        end = best[1].ts
        load = _P("weight_load", best[0], end - timedelta(seconds=best[0]) if end else None, "logged")
    elif ml:
        secs = ml[0] - (download.seconds if download and download.source == "logged" else 0.0)
        end = ml[1].ts
        load = _P("weight_load", secs, end - timedelta(seconds=secs) if end else None, "logged",
                  detail={"includesDownload": not s.has("download_logged")})
        if download is None and not s.has("download_logged"):
            load.detail["note"] = "'Model loading took' includes any download and model construction"
    elif s.has("sg_load_end"):
        end_marks = s.get("sg_load_end")
        end = _last_ts(end_marks)
        mem = _max_by_rank(end_marks, 1)
        gb = mem[0] if mem else None
        logged = _max_by_rank(end_marks, 0)
        begin = _first_ts(s.get("weights_start"))
        if logged:
            load = _P("weight_load", logged[0], end - timedelta(seconds=logged[0]) if end else None, "logged")
        elif begin is not None and end is not None:
            load = _P("weight_load", (end - begin).total_seconds(), begin)
        elif end is not None:
            boundary = end if boundary is None else max(boundary, end)
    elif s.has("weights_start") and s.engine == "sglang":
        begin = _first_ts(s.get("weights_start"))
        load = _P("weight_load", _secs(begin, s.last_ts) or 0.0, begin, "window", open=True)
    elif s.has("tgi_shard_ready"):
        best = _max_by_rank(s.get("tgi_shard_ready"))
        assert best
        end = best[1].ts
        load = _P("weight_load", best[0], end - timedelta(seconds=best[0]) if end else None, "logged",
                  detail={"shards": len({m.rank for m in s.get("tgi_shard_ready")}),
                          "note": "TGI 'Shard ready' covers model construction and weight load"})
    elif wg:
        start = _first_ts(s.get("weights_start"))
        end = _last_ts(s.get("weights_gb"))
        if start is not None and end is not None:
            load = _P("weight_load", (end - start).total_seconds(), start)
        elif end is not None:
            boundary = end if boundary is None else max(boundary, end)
    if load is not None:
        if gb:
            load.detail["gb"] = round(gb, 2)
            if load.seconds > 0:
                load.detail["gbPerSecond"] = round(gb / load.seconds, 3)
        add(load)
    if gb and "weightsGB" not in summary:
        summary["weightsGB"] = round(gb, 2)
    if s.has("download_skipped"):
        summary["weightDownload"] = "skipped (weights already local)"
    # --- torch.compile (per rank: the logged total, else dynamo + compile; then the max over ranks)
    compile_p: _P | None = None
    if s.has("compile_total", "dynamo", "compile_miss", "compile_hit"):
        per_rank: dict[str, float] = {}
        end_by_rank: dict[str, datetime | None] = {}
        totals = {m.rank: m for m in s.get("compile_total")}
        for rank, m in totals.items():
            per_rank[rank] = _f(m) or 0.0
            end_by_rank[rank] = m.ts
        for name in ("dynamo", "compile_miss"):
            for m in s.get(name):
                if m.rank not in totals:
                    per_rank[m.rank] = per_rank.get(m.rank, 0.0) + (_f(m) or 0.0)
                    end_by_rank[m.rank] = m.ts
        rank = max(per_rank, key=lambda r: per_rank[r])
        secs = per_rank[rank]
        end = end_by_rank.get(rank)
        finished = bool(totals)
        cache = "miss" if s.has("compile_miss", "aot_saved") else "hit" if s.has("compile_hit") else "unknown"
        detail = {"cache": cache, "ranks": len(per_rank)}
        dyn = _max_by_rank(s.get("dynamo"))
        if dyn:
            detail["dynamoSeconds"] = dyn[0]
        miss = _max_by_rank(s.get("compile_miss"))
        if miss:
            detail["inductorSeconds"] = miss[0]
        hit = _max_by_rank(s.get("compile_hit"))
        if hit:
            detail["cacheLoadSeconds"] = hit[0]
        dirs = s.get("compile_dir")
        if dirs:
            detail["cacheDir"] = str(dirs[0].values["groups"][0])
        if s.has("aot_saved"):
            detail["aot"] = "saved"
        compile_p = _P("torch_compile", secs, end - timedelta(seconds=secs) if end else None, "logged",
                       open=not finished and not s.has("kv_mem", "kv_tokens", "profiling_logged", "listening"),
                       detail=detail)
        add(compile_p)
    elif s.has("compile_nocache"):
        summary["torchCompileCache"] = "disabled"
    # --- KV cache: memory profiling and allocation
    kv_names = ("graph_mem", "kv_mem", "kv_tokens", "gpu_blocks", "max_concurrency", "profiling_logged",
                "sg_kv", "sg_pool_end", "sg_capacity", "tgi_warmup", "tgi_tokens")
    kv_marks = [m for n in kv_names for m in s.get(n)]
    graph_logged = _max_by_rank(s.get("graph_end")) or _max_by_rank(s.get("graph_end_precise"))
    if kv_marks:
        end = _last_ts(kv_marks)
        detail = {}
        tokens = _max_by_rank(s.get("kv_tokens")) or _max_by_rank(s.get("sg_kv")) or _max_by_rank(s.get("tgi_tokens"))
        if tokens:
            detail["tokens"] = int(tokens[0])
        blocks = _max_by_rank(s.get("gpu_blocks"))
        if blocks:
            detail["gpuBlocks"] = int(blocks[0])
        conc = _max_by_rank(s.get("max_concurrency"), 1)
        if conc:
            detail["maxConcurrency"] = conc[0]
            detail["maxConcurrencyAtTokens"] = int(_f(conc[1], 0) or 0)
        kv_mem = s.get("kv_mem")
        if kv_mem:
            detail["gib"] = min(_f(m) or 0.0 for m in kv_mem)
        sgkv = s.get("sg_kv")
        if sgkv and sgkv[0].values["groups"][1] is not None:
            detail["gb"] = round((_f(sgkv[0], 1) or 0) + (_f(sgkv[0], 2) or 0), 2)
        cap = s.get("sg_capacity")
        if cap:
            detail["maxRunningRequests"] = int(_f(cap[0], 1) or 0)
        prof = _max_by_rank(s.get("profiling_logged"))
        if prof:
            detail["profilingSeconds"] = prof[0]
        init = _max_by_rank(s.get("init_engine"))
        start = boundary if boundary is not None and end is not None and boundary <= end else None
        if start is not None and end is not None:
            kv = _P("kv_cache", (end - start).total_seconds(), start, "window", detail=detail)
        elif prof:
            kv = _P("kv_cache", prof[0], (prof[1].ts - timedelta(seconds=prof[0])) if prof[1].ts else None,
                    "logged", detail=detail)
        elif init and s.engine == "vllm":
            rest = init[0] - (compile_p.seconds if compile_p else 0.0) - (graph_logged[0] if graph_logged else 0.0)
            kv = _P("kv_cache", max(0.0, rest), None, "logged", detail=detail)
            kv.detail["note"] = "init engine time minus compile and graph capture"
        else:
            first = _first_ts(kv_marks)
            kv = _P("kv_cache", _secs(first, end) or 0.0, first, "window", detail=detail)
        add(kv)
        if end is not None:
            boundary = end if boundary is None else max(boundary, end)
    # --- CUDA graph capture
    if s.has("eager"):
        summary["cudaGraphs"] = "disabled (--enforce-eager)"
    begin = _first_ts(s.get("graph_begin"))
    device = None
    for m in s.get("graph_begin"):
        if s.engine == "sglang" and m.values["groups"]:
            device = str(m.values["groups"][0]).lower()
    graph: _P | None = None
    if graph_logged:
        value, mark = graph_logged
        precise = mark.name == "graph_end_precise" or "." in str(mark.values["groups"][0])
        start = begin or boundary
        if not precise and start is not None and mark.ts is not None and mark.ts >= start:
            graph = _P("cuda_graphs", (mark.ts - start).total_seconds(), start, "window")
            graph.detail["loggedSeconds"] = value
        else:
            graph = _P("cuda_graphs", value, (mark.ts - timedelta(seconds=value)) if mark.ts else None, "logged")
        graph_gib = _f(mark, 1)
        if graph_gib is not None:
            graph.detail["gib"] = graph_gib
    elif begin is not None or any("aptur" in b.values["label"] for b in s.get("bar")):
        bars = [b for b in s.get("bar") if "aptur" in b.values["label"]]
        latest: dict[str, Mark] = {}  # the last update of each progress bar
        for b in bars:
            latest[b.values["label"].split("(bs=")[0].split("(avail")[0]] = b
        start = begin or boundary
        if latest:
            secs = sum(b.values["elapsed"] for b in latest.values())
            done = all(b.values["done"] for b in latest.values())
            graph = _P("cuda_graphs", secs, start, "progress", open=not done, detail={"bars": len(latest)})
        else:
            graph = _P("cuda_graphs", _secs(start, s.last_ts) or 0.0, start, "window", open=True)
    if graph is not None:
        if device and device != "cuda":
            graph.detail["device"] = device
        add(graph)
    init = _max_by_rank(s.get("init_engine"))
    if init:
        summary["initEngineSeconds"] = init[0]
    # --- server start: engine ready -> listening
    listening = _first_ts(s.get("listening"))
    ready = _first_ts(s.get("ready")) or _first_ts(s.get("app_started"))  # engine says it serves
    for m in s.get("listening"):
        summary["listeningOn"] = str(m.values["groups"][0]) if m.values["groups"] else None
        break
    if listening is not None:
        warm = [m.ts - timedelta(seconds=_f(m) or 0.0) for m in s.get("api_warmup") if m.ts is not None]
        engine_ready = min(warm) if warm else (init[1].ts if init else None) or boundary
        if engine_ready is not None and engine_ready <= listening:
            detail = {}
            if warm:
                detail["apiWarmupSeconds"] = round(sum(_f(m) or 0.0 for m in s.get("api_warmup")), 2)
            add(_P("server_start", (listening - engine_ready).total_seconds(), engine_ready, "window", detail=detail))
    failure = _failure(s, phases)
    earliest = None
    if ml and ml[1].ts is not None:
        earliest = ml[1].ts - timedelta(seconds=ml[0])
    return _Engine(phases, summary, failure, listening, ready, process_start, earliest)


_FIX = {
    "kv_cache": "raise --gpu-memory-utilization, lower --max-model-len / --max-num-seqs, use an FP8 KV cache "
                "(--kv-cache-dtype fp8) or more GPUs (tensor parallel)",
    "cuda_graphs": "lower --gpu-memory-utilization (CUDA graph memory is outside the profiled budget before "
                   "v0.19; VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 counts it), capture fewer sizes "
                   "(--max-num-seqs, cudagraph_capture_sizes) or --enforce-eager",
    "weight_load": "the model does not fit: more GPUs (tensor parallel), a quantized checkpoint, or a larger GPU",
}


def _failure(s: LogScan, phases: list[_P]) -> Failure | None:
    fails = list(s.get("failure"))
    for m in s.get("kv_mem"):
        v = _f(m)
        if v is not None and v < 0:
            fails.append(Mark("failure", m.ts, m.rank, m.index,
                              {"headline": f"negative KV cache memory ({v} GiB): weights and activations "
                                           "exceed the GPU memory budget", "phase": "kv_cache"}, m.text))
    if not fails:
        return None
    order = ("no GPU memory", "negative KV", "max model length", "CUDA out of memory", "out of memory",
             "exception during CUDA graph", "")
    fails.sort(key=lambda m: next(i for i, o in enumerate(order) if o in m.values["headline"]))
    top = fails[0]
    phase = top.values["phase"]
    if not phase:
        if any(m.values["phase"] == "cuda_graphs" for m in fails) or s.has("graph_begin") and not s.has(
                "graph_end", "graph_end_precise"):
            phase = "cuda_graphs"
        else:
            opened = [p for p in phases if p.open] or phases
            phase = opened[-1].name if opened else "unknown"
    headline = top.values["headline"]
    where = f" on {top.rank}" if top.rank else ""
    title = TITLES.get(phase, phase.replace("_", " "))
    return Failure(phase, f"start failed during {title}: {headline}{where}", top.text.strip()[:300],
                   _FIX.get(phase, ""))


# ------------------------------------------------------------------------------------------ kubernetes side
def _pod_phases(facts: PodFacts | None, events: list[Event]) -> tuple[list[_P], dict[str, Any], datetime | None]:
    """Phases before the process starts, on the UTC clock; and the container start time."""
    phases: list[_P] = []
    summary: dict[str, Any] = {}
    by_reason: dict[str, list[Event]] = {}
    for e in events:
        by_reason.setdefault(e.reason, []).append(e)
    created = facts.created if facts else None
    scheduled = (facts.scheduled if facts else None) or next(
        (e.first for e in by_reason.get("Scheduled", []) if e.first), None)
    if created is not None and scheduled is not None:
        detail: dict[str, Any] = {}
        failed = sum(e.count for e in by_reason.get("FailedScheduling", []))
        if failed:
            detail["failedScheduling"] = failed
            detail["lastReason"] = by_reason["FailedScheduling"][-1].message[:200]
        if by_reason.get("TriggeredScaleUp"):
            detail["scaleUp"] = by_reason["TriggeredScaleUp"][-1].message[:200]
        if facts and facts.node:
            detail["node"] = facts.node
        phases.append(_P("scheduling", max(0.0, (scheduled - created).total_seconds()), created, "condition", False,
                         detail))
    pulls = [p for p in (parse_pull(e) for e in by_reason.get("Pulled", [])) if p]
    pulling = by_reason.get("Pulling", [])
    pull_end: datetime | None = None
    if pulls:
        main = max(pulls, key=lambda p: (p.wait_seconds or p.pull_seconds or 0.0))
        detail = {"image": main.image, "cached": main.cached}
        if main.cached:
            secs = 0.0
            start = main.at
        else:
            secs = main.wait_seconds or main.pull_seconds or 0.0
            start = next((e.first for e in pulling if main.image in e.message), None)
            if main.at is not None:
                start = main.at - timedelta(seconds=secs)
            if main.pull_seconds is not None:
                detail["pullSeconds"] = round(main.pull_seconds, 3)
            if main.wait_seconds is not None:
                detail["waitingSeconds"] = round(main.wait_seconds - (main.pull_seconds or 0.0), 3)
            if main.size_bytes:
                detail["gb"] = round(main.size_bytes / 1e9, 2)
                if main.pull_seconds:
                    detail["gbPerSecond"] = round(main.size_bytes / 1e9 / main.pull_seconds, 3)
        phases.append(_P("image_pull", secs, start, "event", False, detail))
        pull_end = main.at
    elif pulling and pulling[0].first is not None:
        phases.append(_P("image_pull", 0.0, pulling[0].first, "event", True, {"image": pulling[0].message[:120]}))
    backoff = sum(e.count for e in by_reason.get("BackOff", []) if "pull" in e.message.lower())
    if backoff:
        summary["imagePullBackOff"] = backoff
    started = (facts.started if facts else None) or next(
        (e.first for e in by_reason.get("Started", []) if e.first), None)
    begin = pull_end or scheduled
    if started is not None and begin is not None and started >= begin:
        detail = {}
        if facts and facts.restarts:
            detail["restarts"] = facts.restarts
            detail["note"] = "includes earlier failed attempts and crash back-off"
        phases.append(_P("container_start", (started - begin).total_seconds(), begin, "event", False, detail))
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
            summary["lastTermination"] = {k: term.get(k) for k in ("reason", "exitCode", "finishedAt") if k in term}
    return phases, summary, started


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
        candidates = [first.replace(year=y) for y in (started.year - 1, started.year, started.year + 1)
                      if not (first.month == 2 and first.day == 29 and y % 4)]
        first = min(candidates, key=lambda c: abs((c - started).total_seconds()))
    raw = (first - started).total_seconds()
    quarter = round(raw / 900.0) * 900.0  # log times are local time: the zone offset is a multiple of 15 min
    offset = (first - s.first_ts) - timedelta(seconds=quarter)
    note = None
    if quarter:
        note = f"log times are local time; shifted by {-quarter / 3600:+.2f} h to match the pod's UTC timestamps"
    return offset, True, note


def build(lines: Iterable[str] = (), *, pod: Mapping[str, Any] | None = None,
          events: Iterable[Mapping[str, Any]] = (), previous: Iterable[str] = (),
          container: str | None = None) -> Timeline:
    """The cold-start timeline of one pod from its log lines, pod JSON and events.

    Args:
        lines: the container's log (current container).
        pod: the Pod object (conditions, container states, creationTimestamp), optional.
        events: core events about the pod, optional.
        previous: the previous container's log (a failed attempt), optional.
        container: which container of the pod the log belongs to (default the first).
    """
    s = scan(lines)
    return build_from_scan(s, pod=pod, events=events, previous=scan(previous) if previous else None,
                           container=container)


def build_from_scan(s: LogScan, *, pod: Mapping[str, Any] | None = None,
                    events: Iterable[Mapping[str, Any]] = (), previous: LogScan | None = None,
                    container: str | None = None) -> Timeline:
    """Like `build`, from an already scanned log."""
    facts = pod_facts(pod, container) if pod else None
    evs = events_of(events)
    engine = _engine_phases(s)
    pod_ph, pod_summary, started = _pod_phases(facts, evs)
    offset, anchored, note = _offset(s, started)
    notes: list[str] = [note] if note else []
    if not anchored and s.yearless and s.first_ts is not None:
        notes.append("log timestamps carry no year and no zone; times are relative to the log")
    engine_ph = [replace(p, start=p.start + offset if p.start is not None else None) for p in engine.phases]
    for p in engine_ph:
        if p.name == "engine_init" and started is not None and p.start is not None:
            end = p.start + timedelta(seconds=p.seconds)
            if started <= end:
                p.start = started
                p.seconds = (end - started).total_seconds()
    if started is not None and anchored and not any(p.name == "engine_init" for p in engine_ph):
        # the log is this container's own: its process started with the container
        nexts = [p.start for p in engine_ph if p.start is not None]
        if engine.earliest is not None:
            nexts.append(engine.earliest + offset)
        if nexts and min(nexts) >= started:
            engine_ph.insert(0, _P("engine_init", (min(nexts) - started).total_seconds(), started))
    phases = pod_ph + engine_ph
    listening = engine.listening + offset if engine.listening else None
    ready_log = engine.ready + offset if engine.ready else None
    ready = facts.ready if facts else None
    if ready is not None and anchored:
        since = listening or ready_log or max((p.end for p in phases if p.end is not None), default=None)
        if since is not None and ready >= since:
            detail = {}
            if "probeFailures" in pod_summary:
                detail["probeFailures"] = pod_summary["probeFailures"]
            phases.append(_P("readiness_lag", (ready - since).total_seconds(), since, "condition", False, detail))
    status = "unknown"
    failure = engine.failure
    if failure is None and previous is not None:
        prev = _engine_phases(previous)
        if prev.failure is not None:
            failure = replace(prev.failure, headline="previous attempt: " + prev.failure.headline)
    if engine.failure is not None:
        status = "failed"
    elif ready is not None or engine.ready is not None:
        status = "ready"
    elif engine.listening is not None:
        status = "listening"
    elif facts is not None and facts.waiting_reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
        status = "failed"
        if failure is None:
            failure = Failure("image_pull" if "Image" in facts.waiting_reason else "engine_init",
                              f"pod is in {facts.waiting_reason}")
    elif any(p.open for p in phases):
        status = "incomplete"
    starts = [p.start for p in phases if p.start is not None]
    if engine.earliest is not None:
        starts.append(engine.earliest + offset)
    ends = [p.end for p in phases if p.end is not None]
    for extra in (listening, ready_log, ready, s.last_ts + offset if s.last_ts else None):
        if extra is not None:
            ends.append(extra)
    origin: datetime | None = None
    if facts and facts.created:
        origin = facts.created
    elif starts:
        origin = min(starts)
    elif s.first_ts is not None:
        origin = s.first_ts + offset
    if origin is not None and ends:
        end_at = ready if (ready is not None and anchored) else max(ends)
        total = max(0.0, (end_at - origin).total_seconds())
    else:
        total = 0.0
    total = max(total, sum(p.seconds for p in phases if p.start is None) + sum(
        p.seconds for p in phases if p.start is not None and origin is not None and p.start < origin))
    order = {n: i for i, n in enumerate(PHASES)}
    phases.sort(key=lambda p: order.get(p.name, 99))
    final = tuple(
        Phase(p.name, round(p.seconds, 3),
              round((p.start - origin).total_seconds(), 3) if p.start is not None and origin is not None else None,
              p.source, p.open, tuple(p.detail.items()))
        for p in phases)
    summary = {**pod_summary, **engine.summary}
    name = f"{facts.namespace}/{facts.name}" if facts and facts.name else None
    timeline = Timeline(final, round(total, 3), s.engine, s.version, status, failure, origin, anchored or (
        not s.yearless and s.first_ts is not None), name, tuple(notes), (), tuple(summary.items()))
    return replace(timeline, advice=tuple(advise(timeline)))
