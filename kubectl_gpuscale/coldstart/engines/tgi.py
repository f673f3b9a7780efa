"""Text Generation Inference (TGI): its launcher's startup lines and its download and shard rules.
Line formats: reference/engines.md §3."""

from __future__ import annotations

import re

from kubectl_gpuscale.coldstart.engines.base import NUMBER as _F
from kubectl_gpuscale.coldstart.engines.base import (
    Assembly,
    Pattern,
    Rule,
    Span,
    ended_at,
    first_ts,
    max_by_rank,
    secs,
    value,
)
from kubectl_gpuscale.coldstart.marks import LogScan, M

PATTERNS: list[Pattern] = [
    ("Starting", re.compile(r"Starting (?:check and )?download process"), M.TGI_DL_START, "tgi"),
    ("Starting", re.compile(r"Starting shard"), M.TGI_WEIGHTS_START, "tgi"),
    ("Starting", re.compile(r"Starting Webserver"), M.LISTENING, "tgi"),
    ("Args", re.compile(r"Args \{"), M.HEAD, "tgi"),
    ("Sharding", re.compile(r"Sharding model on (\d+) processes"), M.TGI_SHARDS, "tgi"),
    ("Files", re.compile(r"Files are already present on the host"), M.DOWNLOAD_SKIPPED, "tgi"),
    ("Downloaded", re.compile(r"Downloaded \S+ in (\d+):(\d\d):(\d\d(?:\.\d+)?)"), M.TGI_DL_FILE, "tgi"),
    ("Successfully", re.compile(r"Successfully downloaded weights"), M.TGI_DL_DONE, "tgi"),
    ("Shard", re.compile(r"Shard ready in " + _F + "s"), M.TGI_SHARD_READY, "tgi"),
    ("Warming", re.compile(r"Warming up model"), M.TGI_WARMUP, "tgi"),
    ("Setting", re.compile(r"Setting max batch total tokens to (\d+)"), M.TGI_TOKENS, "tgi"),
    ("Connected", re.compile(r"Connected"), M.READY, "tgi"),
]


def _download(s: LogScan, a: Assembly) -> Span | None:
    start = first_ts(s.get(M.TGI_DL_START))
    if s.has(M.TGI_DL_DONE):
        return Span("weight_download", secs(start, first_ts(s.get(M.TGI_DL_DONE))) or 0.0, start, "window")
    if s.has(M.TGI_DL_FILE):
        files = s.get(M.TGI_DL_FILE)
        seconds = 0.0
        for m in files:
            seconds += (value(m, 0) or 0.0) * 3600 + (value(m, 1) or 0.0) * 60 + (value(m, 2) or 0.0)
        return Span("weight_download", seconds, start, "logged", open=True, detail={"files": len(files)})
    return Span("weight_download", secs(start, s.last_ts) or 0.0, start, "window", open=True)


def _shard_ready(s: LogScan, a: Assembly) -> Span | None:
    best = max_by_rank(s.get(M.TGI_SHARD_READY))
    assert best
    return ended_at(
        "weight_load",
        best[0],
        best[1].ts,
        shards=len({m.rank for m in s.get(M.TGI_SHARD_READY)}),
        note="TGI 'Shard ready' covers model construction and weight load",
    )


DOWNLOAD: Rule = (lambda s: s.has(M.TGI_DL_START), _download)
LOAD_SHARD_READY: Rule = (lambda s: s.has(M.TGI_SHARD_READY), _shard_ready)
