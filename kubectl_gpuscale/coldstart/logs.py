"""Scan inference-engine startup logs (vLLM V0/V1, SGLang, TGI) into timestamped marks.

Pure: takes lines, returns a `LogScan`. Tolerates ANSI colours, process prefixes
(`(VllmWorker rank=N pid=P)`, `(EngineCore_DP0 pid=P)`, `(Worker_TP1_EP1 pid=P)`...),
outer collector timestamps (kubectl --timestamps, CI, Loki), journald prefixes, TUI box
borders, custom logging formats, tqdm bars and unknown lines. Line formats: reference/engines.md §3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

YEARLESS = 2000  # placeholder year (a leap year, so 02-29 parses) for logs whose timestamps carry no year

_ANSI = re.compile(r"(?:\x1b|#033)?\[[0-9;]*m")
_OUTER = re.compile(
    r"^\[?(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)\]?\s+")
_JOURNALD = re.compile(r"^\S{2,12} {1,2}\d{1,2} \d\d:\d\d:\d\d \S+ [^\s\[:]+(?:\[\d+\])?: ")
_PROC = re.compile(r"^\((\w[\w\-]*)(?: rank=(\d+))?(?: pid=\d+)?(?:, ip=[\d.]+)?\)\s*")
_VLLM = re.compile(
    r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) (?:(\d{4})-)?(\d\d)-(\d\d) (\d\d:\d\d:\d\d)(?:[.,](\d+))? \[?[\w./<>-]+:\d+\] ?")
_SGLANG = re.compile(r"^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))?((?: [A-Z]+\d+)*)\] ")
_TGI = re.compile(r"^(?:DEBUG|INFO|WARN|ERROR|TRACE)\s+(?:[\w-]+: )*text_generation_launcher: ")
_FOREIGN = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d+) - \w+ - ")  # FlashInfer's logger
_TGI_RANK = re.compile(r"\brank=(\d+)")

# A cheap pre-filter: only lines containing one of these go through the full matcher.
_INTERESTING = re.compile(
    r"API server version|Starting to load model|Time spent downloading|eights took|Model loading took|"
    r"torch\.compile|Dynamo bytecode|Directly load|Compiling a graph|AOT compiled|Memory profiling|"
    r"KV cache|GPU blocks|Maximum concurrency|apturing|Graph capturing finished|init engine|"
    r"Cudagraph is disabled|Starting vLLM|Uvicorn running|Application startup complete|Initial profiling|"
    r"CUDA graph memory|Initializing a V|LLM engine \(v|detected platform|non-default args|warmup completed|"
    r"Error|ERROR|Traceback|out of memory|No available memory|failed to start|"
    r"Init torch distributed|Load weight|KV Cache is allocated|Memory pool end|graph begin|graph end|fired up|"
    r"max_total_num_tokens|skipping download|server_args|"
    r"Args \{|Sharding model|download|Download|Shard ready|Starting shard|Starting Webserver|Connected|"
    r"Setting max batch total tokens|Warming up model|Server started at|"
    r"[0-9]\]?[\s|]*[0-9.]+[kMG]?B?/[0-9.]+[kMG]?B? \[\d|\d+/\d+ \[\d")


@dataclass
class Mark:
    """One recognised line: what it means, when, on which rank, with its numbers."""

    name: str
    ts: datetime | None
    rank: str
    index: int
    values: dict[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass
class LogScan:
    """Everything the log says about a start: marks by name, clock facts, engine."""

    marks: dict[str, list[Mark]]
    engine: str | None
    version: str | None
    first_ts: datetime | None
    last_ts: datetime | None
    lines: int
    utc: bool            # timestamps came from an outer UTC collector (kubectl --timestamps, CI): absolute
    yearless: bool       # timestamps had no year (vLLM's %m-%d): anchor them with the pod's times

    def get(self, name: str) -> list[Mark]:
        """The marks called `name` (empty when none)."""
        return self.marks.get(name, [])

    def has(self, *names: str) -> bool:
        """True when any of `names` was seen."""
        return any(self.marks.get(n) for n in names)


def _fraction(digits: str | None) -> int:
    """Microseconds from a fractional-seconds field: 6+ digits are µs, fewer are (possibly unpadded) ms."""
    if not digits:
        return 0
    if len(digits) >= 6:
        return int(digits[:6])
    return int(digits) * 1000


def _clock(date: str, hms: str, frac: str | None) -> datetime:
    return datetime(int(date[0:4]), int(date[5:7]), int(date[8:10]), int(hms[0:2]), int(hms[3:5]),
                    int(hms[6:8]), _fraction(frac))


def _outer_time(m: re.Match[str]) -> datetime:
    ts = _clock(m.group(1), m.group(2), m.group(3))
    zone = m.group(4)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        ts -= sign * timedelta(hours=hh, minutes=mm)
    return ts  # naive UTC


@dataclass
class _Line:
    ts: datetime | None
    rank: str
    msg: str
    engine: str | None
    yearless: bool
    utc: bool


def split_line(raw: str) -> _Line:
    """Peel wrappers off one raw log line: (timestamp, rank/process, message, engine hint)."""
    line = raw.rstrip("\r\n")
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1] or line.replace("\r", "")
    if "[" in line and ("\x1b" in line or "#033" in line or "m(" in line or "[0m" in line or ";0m" in line):
        line = _ANSI.sub("", line)
    line = line.strip()
    if line.startswith("\u2502"):
        line = line.strip("\u2502 \t")
    outer: datetime | None = None
    m = _OUTER.match(line)
    if m:
        outer = _outer_time(m)
        line = line[m.end():]
    else:
        j = _JOURNALD.match(line)
        if j:
            line = line[j.end():]
    rank = ""
    p = _PROC.match(line)
    if p:
        rank = p.group(1) + (f"_rank{p.group(2)}" if p.group(2) else "")
        line = line[p.end():]
    v = _VLLM.match(line)
    if v:
        year, month, day, hms, frac = v.group(2), v.group(3), v.group(4), v.group(5), v.group(6)
        inner = datetime(int(year) if year else YEARLESS, int(month), int(day), int(hms[0:2]), int(hms[3:5]),
                         int(hms[6:8]), _fraction(frac))
        ts, utc = (outer, True) if outer else (inner, False)
        return _Line(ts, rank, line[v.end():], "vllm", year is None and outer is None, utc)
    s = _SGLANG.match(line)
    if s:
        inner = _clock(s.group(1), s.group(2), s.group(3))
        prefix = s.group(4).strip()
        return _Line(outer or inner, rank or prefix.replace(" ", "_"), line[s.end():], "sglang", False,
                     outer is not None)
    if outer is not None:
        t = _TGI.match(line)
        if t:
            msg = line[t.end():]
            r = _TGI_RANK.search(msg) if "rank=" in msg else None
            return _Line(outer, rank or (f"rank{r.group(1)}" if r else ""), msg, "tgi", False, True)
        return _Line(outer, rank, line, None, False, True)
    f = _FOREIGN.match(line)
    if f:
        return _Line(_clock(f.group(1), f.group(2), f.group(3)), rank, line[f.end():], None, False, False)
    return _Line(None, rank, line, None, False, False)


# ---------------------------------------------------------------------------------------------- patterns
# (substring that must be present, regex on the message, mark name, engine)
_F = r"([-\d.,]+)"
_PATTERNS: list[tuple[str, re.Pattern[str], str, str | None]] = [
    ("API server version", re.compile(r"vLLM API server version (\S+)"), "version", "vllm"),
    ("LLM engine (v", re.compile(r"LLM engine \(v([^)]+)\)"), "version", "vllm"),
    ("detected platform", re.compile(r"Automatically detected platform"), "head", "vllm"),
    ("non-default args", re.compile(r"non-default args"), "head", "vllm"),
    ("Starting to load model", re.compile(r"Starting to load model (\S+?)(?:\.\.\.)?$"), "weights_start", "vllm"),
    ("Time spent downloading", re.compile(r"Time spent downloading weights for \S+: " + _F + " seconds"),
     "download_logged", "vllm"),
    ("Loading weights took", re.compile(r"^Loading weights took " + _F + " seconds"), "load_logged", "vllm"),
    ("Model loading took", re.compile(r"Model loading took " + _F + r" (GiB|GB)(?: memory)? and " + _F + " seconds"),
     "model_loading", "vllm"),
    ("Loading model weights took", re.compile(r"Loading model weights took " + _F + r" (GiB|GB)"),
     "weights_gb", "vllm"),
    ("Using cache directory", re.compile(r"Using cache directory: (\S+) for vLLM's torch\.compile"),
     "compile_dir", "vllm"),
    ("torch.compile cache is disabled", re.compile(r"torch\.compile cache is disabled"), "compile_nocache", "vllm"),
    ("Dynamo bytecode", re.compile(r"Dynamo bytecode transform time: " + _F + " s"), "dynamo", "vllm"),
    ("Compiling a graph", re.compile(r"Compiling a graph for .* takes " + _F + " s"), "compile_miss", "vllm"),
    ("Directly load", re.compile(r"Directly load (?:the compiled graph|AOT)(?:.*took " + _F + " s)?"),
     "compile_hit", "vllm"),
    ("AOT compiled", re.compile(r"saved AOT compiled function"), "aot_saved", "vllm"),
    ("torch.compile t", re.compile(r"torch\.compile t(?:akes|ook) " + _F + " s in total"), "compile_total", "vllm"),
    ("Memory profiling takes", re.compile(r"Memory profiling takes " + _F + " seconds"), "profiling_logged", "vllm"),
    ("Memory profiling results", re.compile(r"Memory profiling results: duration=" + _F + " seconds"),
     "profiling_logged", "vllm"),
    ("Initial profiling", re.compile(r"Initial profiling/warmup run took " + _F + " s"), "profiling_logged", "vllm"),
    ("CUDA graph memory", re.compile(r"Estimated CUDA graph memory: " + _F + " GiB"), "graph_mem", "vllm"),
    ("Available KV cache memory", re.compile(r"Available KV cache memory: " + _F + " GiB"), "kv_mem", "vllm"),
    ("GPU KV cache size", re.compile(r"GPU KV cache size: " + _F + " tokens"), "kv_tokens", "vllm"),
    ("GPU blocks", re.compile(r"# GPU blocks: (\d+)"), "gpu_blocks", "vllm"),
    ("Maximum concurrency", re.compile(r"Maximum concurrency for " + _F + r" tokens per request: " + _F + "x"),
     "max_concurrency", "vllm"),
    ("Capturing", re.compile(r"^Capturing (?:the model for CUDA graphs|cudagraphs for decoding)"),
     "graph_begin", "vllm"),
    ("Graph capturing finished", re.compile(r"Graph capturing finished in " + _F + r" secs(?:, took " + _F + " GiB)?"),
     "graph_end", "vllm"),
    ("Cudagraph is disabled", re.compile(r"Cudagraph is disabled"), "eager", "vllm"),
    ("init engine", re.compile(r"init engine \(profile, create kv cache, warmup model\) took " + _F + r" s"),
     "init_engine", "vllm"),
    ("warmup completed", re.compile(r"[Ww]armup completed in " + _F + r"\s*s"), "api_warmup", "vllm"),
    ("Starting vLLM", re.compile(r"Starting vLLM (?:API )?server (?:\d+ )?on (\S+)"), "listening", "vllm"),
    ("Uvicorn running", re.compile(r"Uvicorn running on (\S+)"), "listening", None),
    ("Application startup complete", re.compile(r"Application startup complete"), "app_started", None),
    # SGLang
    ("server_args", re.compile(r"server_args="), "head", "sglang"),
    ("Init torch distributed", re.compile(r"Init torch distributed (begin|ends)"), "dist", "sglang"),
    ("Load weight begin", re.compile(r"Load weight begin"), "weights_start", "sglang"),
    ("Load weight end", re.compile(r"Load weight end\.(?:.*elapsed=" + _F + r" s)?.*?mem usage=" + _F + " GB"),
     "sg_load_end", "sglang"),
    ("skipping download", re.compile(r"skipping download"), "download_skipped", "sglang"),
    ("KV Cache is allocated", re.compile(r"KV Cache is allocated\..*#tokens: (\d+)(?:, K size: " + _F
                                         + r" GB, V size: " + _F + r" GB|, KV size: " + _F + " GB)?"),
     "sg_kv", "sglang"),
    ("Memory pool end", re.compile(r"Memory pool end"), "sg_pool_end", "sglang"),
    ("graph begin", re.compile(r"Capture (?:[\w ]+ )?(\w+) graph begin", re.I), "graph_begin", "sglang"),
    ("graph end", re.compile(r"Capture (?:[\w ]+ )?\w+ graph end\. (?:Time elapsed: |elapsed=)" + _F
                             + r" s.*?mem usage=" + _F + " GB", re.I), "graph_end_precise", "sglang"),
    ("max_total_num_tokens", re.compile(r"max_total_num_tokens=(\d+).*?max_running_requests=(\d+)"),
     "sg_capacity", "sglang"),
    ("fired up", re.compile(r"The server is fired up and ready to roll"), "ready", "sglang"),
    # TGI
    ("Args {", re.compile(r"^Args \{"), "head", "tgi"),
    ("Sharding model", re.compile(r"Sharding model on (\d+) processes"), "tgi_shards", "tgi"),
    ("download", re.compile(r"Starting (?:check and )?download process"), "tgi_dl_start", "tgi"),
    ("Skipping download", re.compile(r"Files are already present on the host"), "download_skipped", "tgi"),
    ("Downloaded", re.compile(r"Downloaded \S+ in (\d+):(\d\d):(\d\d(?:\.\d+)?)"), "tgi_dl_file", "tgi"),
    ("Successfully downloaded", re.compile(r"Successfully downloaded weights"), "tgi_dl_done", "tgi"),
    ("Starting shard", re.compile(r"Starting shard"), "weights_start_tgi", "tgi"),
    ("Shard ready", re.compile(r"Shard ready in " + _F + "s"), "tgi_shard_ready", "tgi"),
    ("Warming up model", re.compile(r"Warming up model"), "tgi_warmup", "tgi"),
    ("Setting max batch total tokens", re.compile(r"Setting max batch total tokens to (\d+)"), "tgi_tokens", "tgi"),
    ("Starting Webserver", re.compile(r"Starting Webserver"), "listening", "tgi"),
    ("Connected", re.compile(r"^Connected"), "ready", "tgi"),
]

_TQDM = re.compile(
    r"^(?P<label>[^|\r]*?):\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>[\d.]+)(?P<nu>[kMGT]?)B?/(?P<tot>[\d.]+)(?P<tu>[kMGT]?)B?"
    r"\s*\[(?P<el>[\d:]+)<")
_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

# Failure recognition: (substring, headline, phase or "" for "wherever the start stopped")
_FAILURES: list[tuple[str, str, str]] = [
    ("No available memory for the cache blocks", "no GPU memory left for the KV cache blocks", "kv_cache"),
    ("larger than the available KV cache memory", "max model length does not fit in the KV cache memory",
     "kv_cache"),
    ("OutOfMemoryError", "CUDA out of memory", ""),
    ("CUDA out of memory", "CUDA out of memory", ""),
    ("out of memory", "out of memory", ""),
    ("capture_model", "exception during CUDA graph capture (capture_model)", "cuda_graphs"),
    ("EngineCore failed to start", "engine core failed to start", ""),
    ("Engine core initialization failed", "engine core initialization failed", ""),
    ("Scheduler hit an exception", "SGLang scheduler hit an exception", ""),
    ("ShardCannotStart", "a TGI shard could not start", ""),
    ("DownloadError", "weight download failed", "weight_download"),
]


def _num(text: str | None) -> float | None:
    return None if text is None else float(text.replace(",", ""))


def _elapsed(text: str) -> float:
    parts = [int(x) for x in text.split(":")]
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return float(seconds)


def scan(lines: Iterable[str]) -> LogScan:
    """Scan log lines into marks. Unknown lines are skipped; nothing here does I/O."""
    marks: dict[str, list[Mark]] = {}
    votes: dict[str, int] = {}
    first: datetime | None = None
    utc = yearless = False
    last_index = -1
    last_raw = ""
    count = 0
    interesting = _INTERESTING.search
    raw_lines = lines if isinstance(lines, list) else list(lines)
    for index, raw in enumerate(raw_lines):
        if first is None and raw.strip():
            head = split_line(raw)
            if head.ts is not None:
                first, utc, yearless = head.ts, head.utc, head.yearless
        if not interesting(raw):
            continue
        parsed = split_line(raw)
        msg = parsed.msg
        if parsed.engine:
            votes[parsed.engine] = votes.get(parsed.engine, 0) + 1
        matched = False
        for key, regex, name, engine in _PATTERNS:
            if key in msg:
                m = regex.search(msg)
                if m:
                    marks.setdefault(name, []).append(
                        Mark(name, parsed.ts, parsed.rank, index, {"groups": m.groups()}, msg))
                    if engine:
                        votes[engine] = votes.get(engine, 0) + 2
                    matched = True
                    break
        if not matched and "[" in msg and "%|" in msg:
            t = _TQDM.search(msg)
            if t:
                total = float(t.group("tot")) * _UNITS[t.group("tu")]
                values = {"label": t.group("label").strip(), "elapsed": _elapsed(t.group("el")),
                          "done": t.group("n") == t.group("tot") and t.group("nu") == t.group("tu"),
                          "bytes": total if t.group("tu") else None}
                marks.setdefault("bar", []).append(Mark("bar", parsed.ts, parsed.rank, index, values, msg))
        if "ERROR" in raw or "Error" in msg or "error" in msg or "No available memory" in msg \
                or "failed" in msg or "capture_model" in msg:
            for key, headline, phase in _FAILURES:
                if key in msg:
                    marks.setdefault("failure", []).append(
                        Mark("failure", parsed.ts, parsed.rank, index, {"headline": headline, "phase": phase}, msg))
                    break
    for raw in reversed(raw_lines):
        if raw.strip():
            parsed = split_line(raw)
            if parsed.ts is not None and parsed.utc == utc and parsed.yearless == yearless:
                last_raw = raw
                break
    last = split_line(last_raw).ts if last_raw else None
    count = len(raw_lines)
    del last_index
    engine = max(votes, key=lambda k: votes[k]) if votes else None
    version = None
    for mk in marks.get("version", []):
        version = str(mk.values["groups"][0]).rstrip(".")
        break
    # a log spanning New Year with year-less stamps: later stamps that jump back get the next year
    if yearless and first is not None:
        for items in marks.values():
            for mk in items:
                if mk.ts is not None and (first - mk.ts).days > 180:
                    mk.ts = mk.ts.replace(year=mk.ts.year + 1)
        if last is not None and (first - last).days > 180:
            last = last.replace(year=last.year + 1)
    return LogScan(marks, engine, version, first, last, count, utc, yearless)


def to_utc(ts: datetime) -> datetime:
    """A naive UTC datetime as an aware one."""
    return ts.replace(tzinfo=timezone.utc)
