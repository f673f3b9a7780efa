"""vLLM (V0 and V1): its startup lines and the phases only vLLM logs (logged download and load
times, model size, torch.compile). Line formats: reference/engines.md §3."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from kubectl_gpuscale.coldstart.engines.base import (
    GIB,
    Assembly,
    Pattern,
    Rule,
    Span,
    ended_at,
    first_ts,
    last_ts,
    max_by_rank,
    value,
)
from kubectl_gpuscale.coldstart.engines.base import NUMBER as _F
from kubectl_gpuscale.coldstart.marks import LogScan, M

PATTERNS: list[Pattern] = [
    ("vLLM", re.compile(r"vLLM API server version (\S+)"), M.VERSION, "vllm"),
    ("Initializing", re.compile(r"Initializing an? (?:V[01] )?LLM engine \(v([^)]+)\)"), M.VERSION, "vllm"),
    ("Automatically", re.compile(r"Automatically detected platform"), M.HEAD, "vllm"),
    ("non-default", re.compile(r"non-default args"), M.HEAD, "vllm"),
    ("Starting", re.compile(r"Starting to load model (\S+?)(?:\.\.\.)?$"), M.WEIGHTS_START, "vllm"),
    ("Starting", re.compile(r"Starting vLLM (?:API )?server (?:\d+ )?on (\S+)"), M.LISTENING, "vllm"),
    (
        "Time",
        re.compile(r"Time spent downloading weights for \S+: " + _F + " seconds"),
        M.DOWNLOAD_LOGGED,
        "vllm",
    ),
    ("Loading", re.compile(r"Loading weights took " + _F + " seconds"), M.LOAD_LOGGED, "vllm"),
    ("Loading", re.compile(r"Loading model weights took " + _F + r" (GiB|GB)"), M.WEIGHTS_GB, "vllm"),
    (
        "Model",
        re.compile(r"Model loading took " + _F + r" (GiB|GB)(?: memory)? and " + _F + " seconds"),
        M.MODEL_LOADING,
        "vllm",
    ),
    ("Using", re.compile(r"Using cache directory: (\S+) for vLLM's torch\.compile"), M.COMPILE_DIR, "vllm"),
    ("vLLM's", re.compile(r"vLLM's torch\.compile cache is disabled"), M.COMPILE_NOCACHE, "vllm"),
    ("Dynamo", re.compile(r"Dynamo bytecode transform time: " + _F + " s"), M.DYNAMO, "vllm"),
    ("Compiling", re.compile(r"Compiling a graph for .* takes " + _F + " s"), M.COMPILE_MISS, "vllm"),
    (
        "Directly",
        re.compile(r"Directly load (?:the compiled graph|AOT)(?:.*took " + _F + " s)?"),
        M.COMPILE_HIT,
        "vllm",
    ),
    ("saved", re.compile(r"saved AOT compiled function"), M.AOT_SAVED, "vllm"),
    (
        "torch.compile",
        re.compile(r"torch\.compile t(?:akes|ook) " + _F + " s in total"),
        M.COMPILE_TOTAL,
        "vllm",
    ),
    ("Memory", re.compile(r"Memory profiling takes " + _F + " seconds"), M.PROFILING_LOGGED, "vllm"),
    (
        "Memory",
        re.compile(r"Memory profiling results: duration=" + _F + " seconds"),
        M.PROFILING_LOGGED,
        "vllm",
    ),
    ("Initial", re.compile(r"Initial profiling/warmup run took " + _F + " s"), M.PROFILING_LOGGED, "vllm"),
    ("Estimated", re.compile(r"Estimated CUDA graph memory: " + _F + " GiB"), M.GRAPH_MEM, "vllm"),
    ("Available", re.compile(r"Available KV cache memory: " + _F + " GiB"), M.KV_MEM, "vllm"),
    ("GPU", re.compile(r"GPU KV cache size: " + _F + " tokens"), M.KV_TOKENS, "vllm"),
    ("#", re.compile(r"# GPU blocks: (\d+)"), M.GPU_BLOCKS, "vllm"),
    (
        "Maximum",
        re.compile(r"Maximum concurrency for " + _F + r" tokens per request: " + _F + "x"),
        M.MAX_CONCURRENCY,
        "vllm",
    ),
    (
        "Capturing",
        re.compile(r"Capturing (?:the model for CUDA graphs|cudagraphs for decoding)"),
        M.GRAPH_BEGIN,
        "vllm",
    ),
    (
        "Graph",
        re.compile(r"Graph capturing finished in " + _F + r" secs(?:, took " + _F + " GiB)?"),
        M.GRAPH_END,
        "vllm",
    ),
    ("Cudagraph", re.compile(r"Cudagraph is disabled"), M.EAGER, "vllm"),
    (
        "init",
        re.compile(r"init engine \(profile, create kv cache, warmup model\) took " + _F + r" s"),
        M.INIT_ENGINE,
        "vllm",
    ),
    ("Multi-modal", re.compile(r"Multi-modal warmup completed in " + _F + r"\s*s"), M.API_WARMUP, "vllm"),
    (
        "Readonly",
        re.compile(r"Readonly multi-modal warmup completed in " + _F + r"\s*s"),
        M.API_WARMUP,
        "vllm",
    ),
]


def weights_size(s: LogScan, a: Assembly) -> None:
    """The weights' size in GB ('Model loading took', 'Loading model weights took') and the logged
    model-loading time into the summary."""
    ml = max_by_rank(s.get(M.MODEL_LOADING), 2)
    if ml:
        unit = ml[1].values["groups"][1]
        a.weights_gb = (value(ml[1], 0) or 0.0) * (GIB if unit == "GiB" else 1.0)
        a.summary["modelLoadingSeconds"] = ml[0]
    wg = max_by_rank(s.get(M.WEIGHTS_GB))
    if wg:
        a.weights_gb = wg[0] * (GIB if wg[1].values["groups"][1] == "GiB" else 1.0)


def model_loading_began(s: LogScan) -> datetime | None:
    """When 'Model loading took N s' says loading began (it may precede the weights' own start)."""
    ml = max_by_rank(s.get(M.MODEL_LOADING), 2)
    return ml[1].ts - timedelta(seconds=ml[0]) if ml and ml[1].ts is not None else None


def _download_logged(s: LogScan, a: Assembly) -> Span | None:
    best = max_by_rank(s.get(M.DOWNLOAD_LOGGED))
    assert best
    return ended_at("weight_download", best[0], best[1].ts)


def _load_logged(s: LogScan, a: Assembly) -> Span | None:
    best = max_by_rank(s.get(M.LOAD_LOGGED))
    assert best
    return ended_at("weight_load", best[0], best[1].ts)


def _load_from_model_loading(s: LogScan, a: Assembly) -> Span | None:
    ml = max_by_rank(s.get(M.MODEL_LOADING), 2)
    assert ml
    download = a.download
    seconds = ml[0] - (download.seconds if download and download.source == "logged" else 0.0)
    load = ended_at("weight_load", seconds, ml[1].ts, includesDownload=not s.has(M.DOWNLOAD_LOGGED))
    if download is None and not s.has(M.DOWNLOAD_LOGGED):
        load.detail["note"] = "'Model loading took' includes any download and model construction"
    return load


def _load_from_weights_gb(s: LogScan, a: Assembly) -> Span | None:
    start = first_ts(s.get(M.WEIGHTS_START))
    end = last_ts(s.get(M.WEIGHTS_GB))
    if start is not None and end is not None:
        return Span("weight_load", (end - start).total_seconds(), start)
    if end is not None:
        a.reach(end)
    return None


DOWNLOAD: Rule = (lambda s: s.has(M.DOWNLOAD_LOGGED), _download_logged)
LOAD_LOGGED: Rule = (lambda s: s.has(M.LOAD_LOGGED), _load_logged)
LOAD_MODEL_LOADING: Rule = (
    lambda s: max_by_rank(s.get(M.MODEL_LOADING), 2) is not None,
    _load_from_model_loading,
)
LOAD_WEIGHTS_GB: Rule = (lambda s: max_by_rank(s.get(M.WEIGHTS_GB)) is not None, _load_from_weights_gb)


def torch_compile(s: LogScan, a: Assembly) -> None:
    """The torch.compile phase: per rank the logged total, else dynamo + inductor; then the max over ranks."""
    if not s.has(M.COMPILE_TOTAL, M.DYNAMO, M.COMPILE_MISS, M.COMPILE_HIT):
        if s.has(M.COMPILE_NOCACHE):
            a.summary["torchCompileCache"] = "disabled"
        return
    per_rank: dict[str, float] = {}
    end_by_rank: dict[str, datetime | None] = {}
    totals = {m.rank: m for m in s.get(M.COMPILE_TOTAL)}
    for rank, m in totals.items():
        per_rank[rank] = value(m) or 0.0
        end_by_rank[rank] = m.ts
    for name in (M.DYNAMO, M.COMPILE_MISS):
        for m in s.get(name):
            if m.rank not in totals:
                per_rank[m.rank] = per_rank.get(m.rank, 0.0) + (value(m) or 0.0)
                end_by_rank[m.rank] = m.ts
    if not per_rank:  # only cache loads logged (a log's tail): no compile duration to show
        return
    rank = max(per_rank, key=lambda r: per_rank[r])
    cache = "miss" if s.has(M.COMPILE_MISS, M.AOT_SAVED) else "hit" if s.has(M.COMPILE_HIT) else "unknown"
    detail: dict[str, Any] = {"cache": cache, "ranks": len(per_rank)}
    for name, key in (
        (M.DYNAMO, "dynamoSeconds"),
        (M.COMPILE_MISS, "inductorSeconds"),
        (M.COMPILE_HIT, "cacheLoadSeconds"),
    ):
        best = max_by_rank(s.get(name))
        if best:
            detail[key] = best[0]
    dirs = s.get(M.COMPILE_DIR)
    if dirs:
        detail["cacheDir"] = str(dirs[0].values["groups"][0])
    if s.has(M.AOT_SAVED):
        detail["aot"] = "saved"
    compiled = ended_at("torch_compile", per_rank[rank], end_by_rank.get(rank), **detail)
    compiled.open = not totals and not s.has(M.KV_MEM, M.KV_TOKENS, M.PROFILING_LOGGED, M.LISTENING)
    a.compile = compiled
    a.add(compiled)
