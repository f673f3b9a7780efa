"""Scan inference-engine startup logs (vLLM V0/V1, SGLang, TGI) into timestamped marks.

Pure: takes lines, returns a `LogScan`; each engine's line patterns live in coldstart/engines/. Tolerates ANSI colours, process prefixes
(`(VllmWorker rank=N pid=P)`, `(EngineCore_DP0 pid=P)`, `(Worker_TP1_EP1 pid=P)`...),
outer collector timestamps (kubectl --timestamps, CI, Loki, CRI log files), `kubectl logs
--prefix`, syslog (RFC 3164 and 5424) and journald prefixes, JSON-per-line exports (Docker
json-file, Loki, CloudWatch, journalctl -o json), TUI box borders, custom logging formats,
tqdm bars and unknown lines. Engine lines behind any other prefix (an orchestrator's own
`07:29:01 [INFO] [job] ...`) are found wherever they start in the line, and the prefix shape is
then peeled off the log's other lines too. Line formats: reference/engines.md §3.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from kubectl_gpuscale.coldstart.engines import PATTERNS
from kubectl_gpuscale.coldstart.marks import LogScan, M, Mark

__all__ = ["YEARLESS", "LogScan", "Mark", "scan", "split_line"]

YEARLESS = 2000  # placeholder year (a leap year, so 02-29 parses) for logs whose timestamps carry no year

_ANSI = re.compile(r"(?:\x1b|#033)?\[[0-9;]*m")
# Optional groups in the per-line patterns are written `(?:X|)`, which matches what `(?:X)?` does:
# re runs an empty alternative faster than a repeated group.
_OUTER = re.compile(r"^\[?(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d+)|)(Z|[+-]\d\d:?\d\d)\]?\s+")
_JOURNALD = re.compile(r"^\S{2,12} {1,2}\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)? \S+ [^\s\[:]+(?:\[\d+\])?: ")
_HOST_PROGRAM = re.compile(r"^[\w.-]+ [^\s\[:]+\[\d+\]: ")  # after an ISO stamp: journalctl -o short-iso
_SYSLOG5424 = re.compile(r"^<\d{1,3}>1 (\S+) \S+ \S+ \S+ \S+ (?:-|(?:\[[^\]]*\])+) ?")
_CRI = re.compile(r"^(?:stdout|stderr) [PF] ")  # a CRI log file (/var/log/pods) after its RFC3339Nano stamp
_KUBECTL_PREFIX = re.compile(r"^\[pod/[^\]\s]+\] ")  # kubectl logs --prefix
# `kubectl logs --prefix`, then `--timestamps` if given (groups as `_OUTER`'s)
_KUBECTL_STAMP = re.compile(_KUBECTL_PREFIX.pattern + "(?:" + _OUTER.pattern[1:] + "|)")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?$")
# An engine's own line start inside a line no known wrapper explains: found near a clock (hh:mm:ss),
# which costs one cheap search on lines without one (tqdm bars, tracebacks, plain text).
_CLOCK = re.compile(r"\d\d:\d\d:\d\d")
_ENGINE_HEADER = re.compile(
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) (?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d"
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Z]+\d+)*\] "
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\s+(?:DEBUG|INFO|WARN|ERROR|TRACE)\s"
)
_PROC_AT = re.compile(r"\(\w[\w\-]*(?: rank=\d+)?(?: pid=\d+)?(?:, ip=[\d.]+)?\) ?")
DIRECT_LINES = 32  # engine lines at the start of their line before a log is taken as unprefixed
MAX_PREFIX = 256  # a longer foreign prefix is read on its own line but not learned as the log's shape
_LEVEL_WORDS = r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL)"
_JSON_MESSAGE_KEYS = ("log", "message", "msg", "line", "MESSAGE", "textPayload")
_JSON_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_JSON_TIME_KEYS = ("time", "timestamp", "@timestamp", "ts", "__REALTIME_TIMESTAMP", "date")
_PROC = re.compile(r"^\((\w[\w\-]*)(?: rank=(\d+)|)(?: pid=\d+|)(?:, ip=[\d.]+|)\)\s*")
_VLLM_HEAD = (
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<stamp>(?:\d{4}-|)\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+|)) "
    r"\[?[\w./<>-]+:\d+\] ?"
)
_VLLM = re.compile("^" + _VLLM_HEAD)
# The common case in one match: a plain vLLM line, with or without its process prefix (no ANSI, no \r).
_VLLM_LINE = re.compile(
    r"(?:\((?P<process>\w[\w\-]*)(?: rank=(?P<rank>\d+)|)(?: pid=\d+|)(?:, ip=[\d.]+|)\) ?|)" + _VLLM_HEAD
)
# The same on a line of ASCII only (most lines), where ASCII classes match what Unicode ones do, faster.


def _ascii_classes(pattern: str) -> str:
    r"""`pattern` with `\w` and `\d` spelt as explicit ASCII ranges: under re.ASCII they match the same
    characters, and re tests an explicit set with one bitmap lookup where a class costs a category test."""
    out, inside, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            escape = pattern[i : i + 2]
            spelt = {"\\w": "0-9A-Z_a-z", "\\d": "0-9"}.get(escape)
            out.append(escape if spelt is None else spelt if inside else f"[{spelt}]")
            i += 2
            continue
        if c == "[" and not inside:
            inside = True
        elif c == "]" and inside and out[-1] != "[":
            inside = False
        out.append(c)
        i += 1
    return "".join(out)


_VLLM_ASCII = re.compile(_ascii_classes(_VLLM_LINE.pattern), re.ASCII)
_PROCESS, _RANK, _LEVEL, _STAMP = (_VLLM_LINE.groupindex[g] for g in ("process", "rank", "level", "stamp"))
_FAST_FIRST = "(DIWEC"  # a line starting otherwise is never a plain vLLM line
_PLAIN_FIRST = frozenset("(DIWEC[0123456789")  # what `_plain` may read
_SGLANG = re.compile(r"^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+)|)((?: [A-Z]+\d+)*)\] ")
_TGI = re.compile(r"^(?:DEBUG|INFO|WARN|ERROR|TRACE)\s+(?:[\w-]+: )*text_generation_launcher: ")
_FOREIGN = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d+) - \w+ - ")  # FlashInfer's logger
_MONTHS = frozenset(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
_TGI_RANK = re.compile(r"\brank=(\d+)")


def _vllm_line(line: str) -> re.Match[str] | None:
    """`_VLLM_LINE` matched at the line's start, with ASCII classes on a line of ASCII (faster, the same)."""
    return (_VLLM_ASCII if line.isascii() else _VLLM_LINE).match(line)


def _fraction(digits: str | None) -> int:
    """Microseconds from a fractional-seconds field: 6+ digits are µs, fewer are (possibly unpadded) ms."""
    if not digits:
        return 0
    if len(digits) >= 6:
        return int(digits[:6])
    return int(digits) * 1000


@lru_cache(maxsize=4096)
def _clock(date: str, hms: str, frac: str | None) -> datetime:
    """A naive datetime from 'YYYY-MM-DD', 'HH:MM:SS' and a fractional-seconds field (C-speed ISO parsing)."""
    ts = datetime.fromisoformat(f"{date}T{hms}")
    return ts.replace(microsecond=_fraction(frac)) if frac else ts


@lru_cache(maxsize=4096)
def _zoned(date: str, hms: str, frac: str | None, zone: str | None) -> datetime:
    """A naive UTC datetime from an ISO 8601 stamp's parts; the fraction is decimal (Go's RFC3339Nano
    trims trailing zeros, so ``.12Z`` is 120 ms), a missing zone is UTC."""
    ts = _zoned_second(date, hms, zone)
    return ts + timedelta(microseconds=int(frac[:6].ljust(6, "0"))) if frac else ts


@lru_cache(maxsize=4096)
def _zoned_second(date: str, hms: str, zone: str | None) -> datetime:
    """`_zoned` to the second: many lines share it (a fraction of their own is added)."""
    ts = datetime.fromisoformat(f"{date}T{hms}")
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        ts -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]))
    return ts


@lru_cache(maxsize=4096)
def _vllm_clock(stamp: str) -> datetime | None:
    """The naive datetime of a vLLM stamp ('[YYYY-]MM-DD HH:MM:SS[.fff]'; no year: YEARLESS), None
    when it names an impossible date or time."""
    date, _, clock = stamp.partition(" ")
    try:
        return _clock(date if len(date) > 5 else f"{YEARLESS}-{date}", clock[:8], clock[9:] or None)
    except ValueError:
        return None


def _yearless(vllm: re.Match[str]) -> bool:
    """True when a vLLM line's stamp carries no year (vLLM's default `%m-%d %H:%M:%S`)."""
    return vllm.group("stamp").index(" ") == 5


def _outer_time(m: re.Match[str]) -> datetime:
    return _zoned(*m.group(1, 2, 3, 4))


def _iso_time(text: str) -> datetime | None:
    """A naive UTC datetime from an RFC 3339 / ISO 8601 stamp (no zone read as UTC), else None."""
    m = _ISO.match(text.strip())
    if m is None:
        return None
    try:
        return _zoned(*m.group(1, 2, 3, 4))
    except ValueError:
        return None


def _epoch_time(value: float) -> datetime | None:
    """A naive UTC datetime from an epoch in s, ms, µs or ns (CloudWatch: ms; journald: µs)."""
    for scale in (1.0, 1e3, 1e6, 1e9):
        if value / scale < 1e11:
            try:
                return datetime(1970, 1, 1) + timedelta(seconds=value / scale)
            except OverflowError:
                return None
    return None


def _json_line(line: str) -> tuple[str, datetime | None] | None:
    """(message, time) of a JSON-per-line export record (Docker json-file, Loki, CloudWatch, journald)."""
    try:  # json.loads without its two Python layers: the C scanner, then json's own "Extra data" check
        doc, end = _JSON_SCAN(line, 0)
    except (StopIteration, ValueError, RecursionError):  # RecursionError: hostile nesting
        return None
    if end != len(line) and line[end:].strip(" \t\n\r"):  # json.decoder.WHITESPACE
        return None
    if not isinstance(doc, dict):
        return None
    msg = None
    for key in _JSON_MESSAGE_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            msg = value
            break
    fields = doc.get("fields")
    if msg is None and isinstance(fields, dict) and isinstance(fields.get("message"), str):
        msg = fields["message"]  # TGI --json-output (tracing's JSON format)
    if msg is None:
        return None
    ts: datetime | None = None
    for key in _JSON_TIME_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            ts = _epoch_time(float(value)) if value.isdigit() else _iso_time(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            ts = _epoch_time(float(value))
        if ts is not None:
            break
    return msg, ts


@dataclass
class _Line:
    ts: datetime | None
    rank: str
    msg: str
    engine: str | None
    yearless: bool
    utc: bool
    level: str = ""


_Outer = re.Match[str] | datetime
# A line with its wrappers peeled off, timestamps not yet converted (most lines never need them):
# (message, rank, engine hint, level, outer collector stamp, engine stamp match, foreign prefix found
# before the engine's own line start, "" when none).
_Peeled = tuple[str, str, str | None, str, _Outer | None, re.Match[str] | None, str]
_BLANK: _Peeled = ("", "", None, "", None, None, "")


def _peel(raw: str, nested: bool = False, search: bool = True) -> _Peeled:
    """Peel wrappers off one raw log line without converting its timestamps (see `split_line`).

    `search`: when no known wrapper explains the line, look for an engine's line start further in.
    """
    plain = _plain(raw) if raw[:1] in _PLAIN_FIRST and not raw.startswith("[pod/") else None
    return plain if plain is not None else _peel_wrapped(raw, nested, search)


def _peel_wrapped(raw: str, nested: bool, search: bool) -> _Peeled:
    """`_peel` of a line `_plain` cannot read."""
    line, outer = _clean(raw)
    if not line:
        return _BLANK
    if line[0] == "\u2502":
        line = line.strip("\u2502 \t")
    line, outer = _collector_stamps(*_unwrap(line, outer))
    tried = outer is not None and line[:1] in _FAST_FIRST
    if (
        tried
    ):  # the common case behind wrappers: a vLLM line, with or without its process prefix, in one match
        fast = _vllm_line(line)
        if fast is not None:
            return line[fast.end() :], _fast_rank(fast), "vllm", fast.group("level"), outer, fast, ""
    line, rank = _process(line) if line[:1] == "(" else (line, "")
    known = _engine_format(line, rank, outer, tried and not rank)
    if known is not None:
        return known
    if search and not nested and not rank:
        start = _engine_start(line)
        if start > 0:
            inner = _peel(line[start:], True)
            if inner[2] is not None:
                msg, rank, engine, level, own, stamp, _ = inner
                return msg, rank, engine, level, outer if outer is not None else own, stamp, line[:start]
    return line, rank, None, "", outer, None, ""


def _ansi_hint(line: str) -> bool:
    """True when the line may hold ANSI colour codes (raw or syslog-escaped as #033)."""
    return "\x1b" in line or "m(" in line or "[0m" in line or "#033[" in line


def _plain(raw: str) -> _Peeled | None:
    """A line as vLLM or SGLang wrote it, or a TGI or vLLM line behind one ISO stamp (TGI's own,
    `kubectl logs --timestamps`), read in one or two matches; None when it needs `_peel`'s full
    treatment (which reads a plain line the same way)."""
    c = raw[:1]
    if (c.isdigit() and raw[4:5] != "-") or "\r" in raw or "\x1b" in raw:  # a digit: only an ISO stamp
        return None
    if c in _FAST_FIRST:
        fast = _vllm_line(raw)
        if fast is None:
            return None
        return raw[fast.end() :].rstrip(), _fast_rank(fast), "vllm", fast.group("level"), None, fast, ""
    if c == "[":
        sg = _sglang_plain(raw)
        if sg is None:
            return None
        return _sglang_message(raw, sg), _sglang_rank(sg), "sglang", "", None, sg, ""
    if not c.isdigit() or raw[-1:].isspace() or _ansi_hint(raw):
        return None
    o = _OUTER.match(raw)
    if o is None or raw[o.end() : o.end() + 1] not in ("D", "I", "W", "E"):
        return None
    return _engine_format(raw[o.end() :], "", o, tgi_only=True)


def _sglang_plain(raw: str) -> re.Match[str] | None:
    """`_SGLANG` matched on a line `_plain` reads as SGLang wrote it (no carriage return, ANSI code,
    trailing space or `kubectl logs --prefix`), else None."""
    if "\r" in raw or "\x1b" in raw or raw.startswith("[pod/") or raw[-1:].isspace() or _ansi_hint(raw):
        return None
    return _SGLANG.match(raw)


def _sglang_message(raw: str, sg: re.Match[str]) -> str:
    msg = raw[sg.end() :]
    return msg[5:].lstrip() if msg.startswith("INFO:") else msg


def _sglang_rank(sg: re.Match[str]) -> str:
    """The rank an SGLang stamp names (`[... DP1 TP1]`: "DP1_TP1")."""
    return sg.group(4).strip().replace(" ", "_")


def _behind_kubectl(raw: str) -> _Peeled | None:
    """A line `_plain` reads behind `kubectl logs --prefix` (and `--timestamps`), read as `_peel` reads
    it (the kubectl stamp is the line's time), in two matches; None when it needs `_peel`."""
    k = _KUBECTL_STAMP.match(raw)
    if k is None or "\r" in raw or _ansi_hint(raw):
        return None
    inner = _plain(raw[k.end() :])
    if inner is None or k.group(1) is None:
        return inner
    msg, rank, engine, level, _, stamp, _ = inner
    return msg, rank, engine, level, k, stamp, ""


def _text_line(raw: str) -> _Peeled | None:
    """A line starting with a letter that `_plain` could not read and no wrapper or engine format
    explains (a progress bar, a traceback), read as `_peel` reads it when it does not search."""
    c = raw[:1]
    if (
        not (c.isascii() and c.isalpha())
        or raw[:3] in _MONTHS
        or raw.startswith("INFO:")
        or "\r" in raw
        or _ansi_hint(raw)
    ):
        return None
    return raw.rstrip(), "", None, "", None, None, ""


def _clean(raw: str) -> tuple[str, _Outer | None]:
    """The line out of its JSON record (with the record's time), carriage returns, ANSI colours and
    surrounding space."""
    line = raw
    outer: _Outer | None = None
    if line[:1] == "{":
        record = _json_line(line)
        if record is not None:
            line, outer = record
    if "\r" in line:
        line = line.rstrip("\r\n")
        line = line.rsplit("\r", 1)[-1] or line.replace("\r", "")
    if "\x1b" in line or "m(" in line or "[0m" in line or "#033[" in line:  # `_ansi_hint`, inline: every line
        line = _ANSI.sub("", line)
    return line.strip(), outer


def _unwrap(line: str, outer: _Outer | None) -> tuple[str, _Outer | None]:
    """The line without a `kubectl logs --prefix`, syslog RFC 5424 or journald/RFC 3164 header."""
    c = line[:1]
    if c == "[" and line.startswith("[pod/"):
        k = _KUBECTL_PREFIX.match(line)
        if k:
            return line[k.end() :], outer
    elif c == "<":
        r = _SYSLOG5424.match(line)
        if r:
            return line[r.end() :], outer or _iso_time(r.group(1))
    elif not c.isascii() or line[:3] in _MONTHS:
        j = _JOURNALD.match(line)
        if j:
            return line[j.end() :], outer
    return line, outer


def _collector_stamps(line: str, outer: _Outer | None) -> tuple[str, _Outer | None]:
    """The line without a collector's ISO stamp (and the CRI stream tag or journald host and program
    after it); the first stamp is the line's time, also before the engine's own ISO stamp (TGI)."""
    c = line[:1]
    if not (c.isdigit() or c == "["):
        return line, outer
    o = _OUTER.match(line)
    if not o:
        return line, outer
    outer = outer or o
    line = line[o.end() :]
    if line[:1].islower():
        w = _CRI.match(line) or _HOST_PROGRAM.match(line)
        if w:
            line = line[w.end() :]
    if line[:1].isdigit():
        o = _OUTER.match(line)
        if o:
            line = line[o.end() :]
    return line, outer


def _process(line: str) -> tuple[str, str]:
    """The line without vLLM's process prefix `(VllmWorker rank=N pid=P)`, and the rank it names."""
    p = _PROC.match(line) if line[:1] == "(" else None
    if p is None:
        return line, ""
    process, process_rank = p.group(1, 2)
    return line[p.end() :], f"{process}_rank{process_rank}" if process_rank else process


def _engine_format(
    line: str, rank: str, outer: _Outer | None, not_vllm: bool = False, *, tgi_only: bool = False
) -> _Peeled | None:
    """The line read as a vLLM, TGI, uvicorn, SGLang or FlashInfer line, if it is one (`not_vllm`: it
    is known not to be a vLLM line; `tgi_only`: a vLLM or TGI line only)."""
    c = line[:1]
    if c and c in "DIWEC":
        v = None if not_vllm else _VLLM.match(line)
        if v:
            return line[v.end() :], rank, "vllm", v.group("level"), outer, v, ""
        t = _TGI.match(line) if outer is not None else None
        if t:
            msg = line[t.end() :]
            r = _TGI_RANK.search(msg) if "rank=" in msg else None
            return (
                msg,
                rank or (f"rank{r.group(1)}" if r else ""),
                "tgi",
                line[: t.end()].split(None, 1)[0],
                outer,
                None,
                "",
            )
        if line.startswith("INFO:") and not tgi_only:
            return line[5:].lstrip(), rank, None, "INFO", outer, None, ""
    elif c == "[":
        sg = _SGLANG.match(line)
        if sg:
            msg = line[sg.end() :]
            if msg.startswith("INFO:"):
                msg = msg[5:].lstrip()
            return msg, rank or sg.group(4).strip().replace(" ", "_"), "sglang", "", outer, sg, ""
    elif c.isdigit() and outer is None:
        f = _FOREIGN.match(line)
        if f:
            return line[f.end() :], rank, None, "", None, f, ""
    return None


def _engine_start(line: str) -> int:
    """Where an engine's own line (with its process prefix) starts after position 0 of `line`, else -1."""
    clock = _CLOCK.search(line, 1)
    while clock is not None:
        header = _ENGINE_HEADER.search(line, max(1, clock.start() - 22), clock.end() + 24)
        if header is not None:
            start = header.start()
            k = line.rfind("(", 0, start)
            if k >= 1:
                proc = _PROC_AT.match(line, k)
                if proc is not None and proc.end() == start:
                    return k
            return start
        clock = _CLOCK.search(line, clock.end())
    return -1


def _prefix_shape(prefix: str) -> re.Pattern[str]:
    """A regex matching a foreign prefix of the same shape: any digits, any level word, any spacing at the end."""
    shape = re.sub(r"\d+", r"\\d+", re.escape(prefix.rstrip()))
    return re.compile("^" + re.sub(r"\b" + _LEVEL_WORDS + r"\b", _LEVEL_WORDS, shape) + r"\s*")


def _stamp(outer: _Outer | None, engine: str | None, inner: re.Match[str] | None) -> datetime | None:
    """The line's time from its peeled stamps: the outer collector's (UTC) wins over the engine's own.

    An impossible date or time (month 13, hour 25) is no time at all: the line is still read.
    """
    try:
        if outer is not None:
            return outer if isinstance(outer, datetime) else _outer_time(outer)
        if inner is None:
            return None
        if engine == "vllm":
            return _vllm_clock(inner.group("stamp"))
        return _clock(inner.group(1), inner.group(2), inner.group(3))  # SGLang and foreign stamps
    except ValueError:
        return None


def split_line(raw: str) -> _Line:
    """Peel wrappers off one raw log line: (timestamp, rank/process, message, engine hint)."""
    return _as_line(_peel(raw))


def _as_line(peeled: _Peeled) -> _Line:
    msg, rank, engine, level, outer, inner, _ = peeled
    yearless = engine == "vllm" and outer is None and inner is not None and _yearless(inner)
    return _Line(_stamp(outer, engine, inner), rank, msg, engine, yearless, outer is not None, level)


_BY_WORD: dict[str, list[tuple[re.Pattern[str], M, str | None]]] = {}
for _word, _regex, _name, _engine in PATTERNS:
    _BY_WORD.setdefault(_word, []).append((_regex, _name, _engine))

_TQDM = re.compile(
    r"^(?P<label>[^|\r]*?):\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>[\d.]+)(?P<nu>[kMGT]?)B?/(?P<tot>[\d.]+)(?P<tu>[kMGT]?)B?"
    r"\s*\[(?P<el>[\d:]+)<"
)
_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

# Failure recognition: (substring, headline, phase or "" for "wherever the start stopped")
_FAILURES: list[tuple[str, str, str]] = [
    ("No available memory for the cache blocks", "no GPU memory left for the KV cache blocks", "kv_cache"),
    (
        "larger than the available KV cache memory",
        "max model length does not fit in the KV cache memory",
        "kv_cache",
    ),
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


def _bar(msg: str) -> dict[str, Any] | None:
    """The values of a tqdm progress bar (download / load progress), if the message is one."""
    t = _TQDM.search(msg) if "%|" in msg else None
    if t is None:
        return None
    label, elapsed, n, nu, tot, tu = t.group("label", "el", "n", "nu", "tot", "tu")
    try:
        return {
            "label": label.strip(),
            "elapsed": _elapsed(elapsed),
            "done": n == tot and nu == tu,
            "bytes": float(tot) * _UNITS[tu] if tu else None,
        }
    except ValueError:  # a damaged bar ("1.2.3", "[::<"): no figures, no bar
        return None


def _failure(msg: str) -> dict[str, Any] | None:
    """{headline, phase} of a recognised start failure, if the message reports one (`_scan_lines`
    asks only for a message that may: "rror", "failed", an ERROR level...)."""
    for key, headline, phase in _FAILURES:
        if key in msg:
            return {"headline": headline, "phase": phase}
    return None


# a raw line's first character that sends `_peel` to a known wrapper or engine format before any search
_WRAPPER_FIRST = frozenset("({[<\u2502DIWEC")
_HEADER_FIRST = frozenset("(DIWEC[")  # a line `_plain` reads as vLLM or SGLang starts so


@dataclass
class _Stream:
    """What a scan learns about the log as a whole: the foreign prefix's shape, and how many engine
    lines started their line (after DIRECT_LINES of them and no prefix, lines are no longer searched)."""

    shape: re.Pattern[str] | None = None
    direct: int = 0

    def peel(self, raw: str, vllm_tried: bool = False) -> _Peeled:
        """`_peel` with what the stream learnt: a known prefix shape is sliced off before any search.

        `vllm_tried`: the line starts as a vLLM line may, has no carriage return or ANSI escape, and
        `_VLLM_LINE` did not match it, so `_plain` would return None.
        """
        if raw.startswith("[pod/"):
            plain = _behind_kubectl(raw)
        else:
            plain = _plain(raw) if raw[:1] in _PLAIN_FIRST and not vllm_tried else None
        if plain is not None:  # never a line the prefix shape would slice (see `_shaped`)
            self.direct += 1
            return plain
        if self.shape is not None:
            known = self._shaped(raw)
        else:  # after DIRECT_LINES, no search: a line of text is read as it is
            known = _text_line(raw) if self.direct >= DIRECT_LINES else None
        if known is not None:
            return known
        peeled = _peel_wrapped(raw, False, self.shape is not None or self.direct < DIRECT_LINES)
        msg, _, engine, _, outer, _, prefix = peeled
        if engine is not None and not prefix:
            self.direct += 1
        if prefix and len(prefix) <= MAX_PREFIX:
            same = self.shape.match(prefix) if self.shape is not None else None
            if same is None or same.end() != len(prefix):
                self.shape = _prefix_shape(prefix)
        elif engine is None and self.shape is not None and msg:
            wrapped = self.shape.match(msg)
            if wrapped and wrapped.end() < len(msg):
                msg, rank, engine, level, own, inner, _ = _peel(msg[wrapped.end() :], True)
                return msg, rank, engine, level, outer if outer is not None else own, inner, ""
        return peeled

    def _shaped(self, raw: str) -> _Peeled | None:
        """An engine line behind the learnt prefix shape, when `_peel`'s search would find it there too:
        no wrapper or engine format at the line's start, no clock inside the prefix, the engine's own
        line start (`_ENGINE_HEADER`, after its process prefix) right after it, nothing to clean."""
        assert self.shape is not None
        c = raw[:1]
        if (
            not c
            or c in _WRAPPER_FIRST
            or not c.isascii()
            or c.isspace()
            or raw[:3] in _MONTHS
            or "\r" in raw
            or (c.isdigit() and raw[4:5] == "-")
            or _ansi_hint(raw)
        ):
            return None
        w = self.shape.match(raw)
        if w is None or not 0 < w.end() < len(raw) or raw[-1:].isspace() or _CLOCK.search(raw, 1, w.end()):
            return None
        rest = raw[w.end() :]
        # a plain vLLM or SGLang line after the prefix starts with the engine's own line start
        inner = _plain(rest) if rest[:1] in _HEADER_FIRST and not rest.startswith("[pod/") else None
        if inner is None:
            if not _header_at(raw, w.end()):  # text behind the prefix, when no engine line is further in
                return _text_line(rest) if _engine_start(raw) < 0 else None
            inner = _peel(rest, True)
        if inner[2] is None or not inner[0]:
            return None
        msg, rank, engine, level, own, stamp, _ = inner
        return msg, rank, engine, level, own, stamp, raw[: w.end()]


def _header_at(line: str, pos: int) -> bool:
    """True when an engine's own line start (with its process prefix) is at `pos`."""
    if line[pos : pos + 1] == "(":
        proc = _PROC_AT.match(line, pos)
        if proc is None:
            return False
        pos = proc.end()
    return _ENGINE_HEADER.match(line, pos) is not None


def _fast_rank(fast: re.Match[str]) -> str:
    process, process_rank = fast.group(_PROCESS, _RANK)
    return (f"{process}_rank{process_rank}" if process_rank else process) if process else ""


def scan(lines: Iterable[str]) -> LogScan:
    """Scan log lines into marks. Unknown lines are skipped; nothing here does I/O.

    Every line is peeled (wrappers off, engine format noted); only the lines that say something
    (a startup pattern, a progress bar, a failure) get their timestamp converted and become marks.
    A plain vLLM line (most of a vLLM log) is read with one match; other lines go through `_Stream`.
    """
    raw_lines = lines if isinstance(lines, list) else list(lines)
    with _gc_paused():
        found, head = _scan_lines(raw_lines)
    return _finish(found, raw_lines, head)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a scan allocates its marks (none of them is garbage): the
    collector's passes over the growing heap cost a tenth of a mark-dense scan. After the scan the
    young objects (the marks) join the oldest generation untraversed (`gc.freeze` then `gc.unfreeze`),
    where the first young collection would have spent another tenth walking them; skipped when the
    process keeps objects frozen of its own (unfreezing would release them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


_Marks = tuple[dict[M, list[Mark]], dict[str, int]]  # marks by name, engine votes


def _scan_lines(raw_lines: list[str]) -> tuple[_Marks, _Line | None]:  # noqa: C901 - the per-line hot path, inline
    """The marks of every line (by name, and the engine votes: every engine line 1, a hinted pattern
    2 more), and the first line with a time (the log's clock: UTC? year-less?).

    One loop with the hot path inline: a plain vLLM line (most of a vLLM log) is read with one match,
    its rank and time only when it is a mark; other lines go through `_Stream`. Each message is tried
    only against the startup patterns filed under its first word.
    """
    stream = _Stream()
    by_name: dict[M, list[Mark]] = {}
    votes: dict[str, int] = {}
    head: _Line | None = None
    dated = False  # head has a time: HTTP access lines can be skipped unread
    by_word = _BY_WORD
    ascii_line, any_line = _VLLM_ASCII.match, _VLLM_LINE.match
    stamps: dict[str, datetime | None] = {}  # a vLLM stamp's time (many lines share one)
    vllm_lines = 0  # the plain vLLM lines' votes, added up at the end
    rank: str
    engine: str | None
    outer: _Outer | None
    inner: re.Match[str] | None
    for index, raw in enumerate(raw_lines):
        if dated and " HTTP/1." in raw and '" ' in raw:
            continue  # an HTTP access line (uvicorn, TGI's router): most of a serving pod's log, never a mark
        vllm_tried = raw[:1] in _FAST_FIRST and "\r" not in raw and "\x1b" not in raw
        fast = (ascii_line if raw.isascii() else any_line)(raw) if vllm_tried else None
        # `[YYYY-MM-DD ` starts a plain SGLang line (not `[pod/`, not a CI runner's `[...T...Z]`)
        sglang = _sglang_plain(raw) if fast is None and raw[:1] == "[" and raw[11:12] == " " else None
        if fast is not None:
            stream.direct += 1
            msg = raw[fast.end() :].rstrip()
            if not msg:
                continue
            if not vllm_lines:
                votes.setdefault("vllm", 0)  # the engines' first-seen order breaks a tie of votes
            vllm_lines += 1
            engine = "vllm"
        elif sglang is not None:  # what `_Stream.peel` reads, its rank only when a mark needs it
            stream.direct += 1
            msg = _sglang_message(raw, sglang)
            if not msg:
                continue
            votes["sglang"] = votes.get("sglang", 0) + 1
            engine, level, outer, inner = "sglang", "", None, sglang
        else:
            msg, rank, engine, level, outer, inner, _ = stream.peel(raw, vllm_tried)
            if not msg:
                continue
            if engine:
                votes[engine] = votes.get(engine, 0) + 1
        if not dated and (fast is not None or outer is not None or inner is not None):
            head = split_line(raw)
            dated = head.ts is not None
        space = msg.find(" ")
        word = msg if space < 0 else msg[:space]
        if "=" in word:
            word = word.split("=", 1)[0]
        hit: re.Match[str] | None = None
        for pattern in by_word.get(word, ()):
            hit = pattern[0].match(msg)
            if hit is not None:
                _, name, hinted = pattern
                break
        bar = None if hit is not None or "%|" not in msg else _bar(msg)
        failure = (
            _failure(msg)
            if "rror" in msg
            or "failed" in msg
            or "No available memory" in msg
            or "capture_model" in msg
            or (fast.group(_LEVEL) if fast is not None else level) == "ERROR"
            else None
        )
        if hit is None and bar is None and failure is None:
            continue
        if fast is not None:
            stamp = fast.group(_STAMP)
            ts = stamps[stamp] if stamp in stamps else stamps.setdefault(stamp, _vllm_clock(stamp))
            rank = _fast_rank(fast)
        else:
            if sglang is not None:
                rank = _sglang_rank(sglang)
            ts = _stamp(outer, engine, inner)
        if hit is not None:
            mark = Mark(name, ts, rank, index, {"groups": hit.groups()}, msg)
            marks = by_name.get(name)
            if marks is None:
                by_name[name] = [mark]
            else:
                marks.append(mark)
            if hinted:
                votes[hinted] = votes.get(hinted, 0) + 2
        if bar is not None:
            by_name.setdefault(M.BAR, []).append(Mark(M.BAR, ts, rank, index, bar, msg))
        if failure is not None:
            by_name.setdefault(M.FAILURE, []).append(Mark(M.FAILURE, ts, rank, index, failure, msg))
    if vllm_lines:
        votes["vllm"] += vllm_lines
    return (by_name, votes), head


def _last_time(raw_lines: list[str], utc: bool, yearless: bool) -> datetime | None:
    """The time of the log's last line stamped on the same clock as its first."""
    for raw in reversed(raw_lines):
        if raw[:1] != "{" and _CLOCK.search(raw) is None and not _ansi_hint(raw):
            continue  # every stamp read has a clock (hh:mm:ss) but a JSON record's epoch
        _, _, engine, _, outer, inner, _ = _peel(raw)
        if (outer is not None) != utc:
            continue
        if (engine == "vllm" and outer is None and inner is not None and _yearless(inner)) != yearless:
            continue
        ts = _stamp(outer, engine, inner)
        if ts is not None:
            return ts
    return None


def _finish(found: _Marks, raw_lines: list[str], head: _Line | None) -> LogScan:
    """The `LogScan` of the marks found: engine by vote, version, first and last times (year-less
    stamps of a log spanning New Year moved to the next year)."""
    marks, votes = found
    first, utc, yearless = (head.ts, head.utc, head.yearless) if head is not None else (None, False, False)
    last = _last_time(raw_lines, utc, yearless)
    engine_name = max(votes, key=lambda k: votes[k]) if votes else None
    version = None
    for mk in marks.get(M.VERSION, []):
        version = str(mk.values["groups"][0]).rstrip(".")
        break
    if yearless and first is not None:
        for items in marks.values():
            for mk in items:
                if mk.ts is not None and (first - mk.ts).days > 180:
                    mk.ts = mk.ts.replace(year=mk.ts.year + 1)
        if last is not None and (first - last).days > 180:
            last = last.replace(year=last.year + 1)
    return LogScan(marks, engine_name, version, first, last, len(raw_lines), utc, yearless)
