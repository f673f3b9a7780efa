"""SGLang: its startup lines and its weight-load rules ('Load weight begin/end'). Line formats:
reference/engines.md §3."""

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
    last_ts,
    max_by_rank,
    secs,
)
from kubectl_gpuscale.coldstart.marks import LogScan, M

PATTERNS: list[Pattern] = [
    ("Memory", re.compile(r"Memory pool end"), M.SG_POOL_END, "sglang"),
    ("Init", re.compile(r"Init torch distributed (begin|ends)"), M.DIST, "sglang"),
    ("Load", re.compile(r"Load weight begin"), M.WEIGHTS_START, "sglang"),
    (
        "Load",
        # two lookaheads, each scanning the line once (nested `.*` scans cost the square of its length)
        re.compile(r"Load weight end\.(?=(?:.*elapsed=" + _F + r" s|))(?=.*?mem usage=" + _F + " GB)"),
        M.SG_LOAD_END,
        "sglang",
    ),
    ("Found", re.compile(r"Found local HF snapshot .*skipping download"), M.DOWNLOAD_SKIPPED, "sglang"),
    (
        "KV",
        re.compile(
            r"KV Cache is allocated\..*#tokens: (\d+)(?:, K size: "
            + _F
            + r" GB, V size: "
            + _F
            + r" GB|, KV size: "
            + _F
            + " GB)?"
        ),
        M.SG_KV,
        "sglang",
    ),
    ("Capture", re.compile(r"Capture (?:[\w ]+ )?(\w+) graph begin", re.I), M.GRAPH_BEGIN, "sglang"),
    (
        "Capture",
        re.compile(
            r"Capture (?:[\w ]+ )?\w+ graph end\. (?:Time elapsed: |elapsed=)"
            + _F
            + r" s.*?mem usage="
            + _F
            + " GB",
            re.I,
        ),
        M.GRAPH_END_PRECISE,
        "sglang",
    ),
    (
        "max_total_num_tokens",
        re.compile(r"max_total_num_tokens=(\d+)(?!\d).*?max_running_requests=(\d+)"),
        M.SG_CAPACITY,
        "sglang",
    ),
    ("The", re.compile(r"The server is fired up and ready to roll"), M.READY, "sglang"),
]


def _load_end(s: LogScan, a: Assembly) -> Span | None:
    end_marks = s.get(M.SG_LOAD_END)
    end = last_ts(end_marks)
    mem = max_by_rank(end_marks, 1)
    a.weights_gb = mem[0] if mem else None
    logged = max_by_rank(end_marks, 0)
    begin = first_ts(s.get(M.WEIGHTS_START))
    if logged:
        return ended_at("weight_load", logged[0], end)
    if begin is not None and end is not None:
        return Span("weight_load", (end - begin).total_seconds(), begin)
    if end is not None:
        a.reach(end)
    return None


def _load_open(s: LogScan, a: Assembly) -> Span | None:
    begin = first_ts(s.get(M.WEIGHTS_START))
    return Span("weight_load", secs(begin, s.last_ts) or 0.0, begin, "window", open=True)


LOAD_END: Rule = (lambda s: s.has(M.SG_LOAD_END), _load_end)
LOAD_OPEN: Rule = (lambda s: s.has(M.WEIGHTS_START) and s.engine == "sglang", _load_open)


def graph_device(s: LogScan) -> str | None:
    """The device SGLang captures graphs for ('Capture cuda graph begin' -> cuda), None for other engines."""
    device = None
    for m in s.get(M.GRAPH_BEGIN):
        if s.engine == "sglang" and m.values["groups"]:
            device = str(m.values["groups"][0]).lower()
    return device
