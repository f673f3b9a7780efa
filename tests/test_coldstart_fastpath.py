"""The scan's inline hot path (coldstart/logs.py `_scan_lines`: a plain vLLM line read in one match,
its rank and time only when it is a mark, the first-word pattern dispatch inline, the failure check's
cheap filter) must find what reading every line through `_Stream.peel` finds: the same marks, ranks,
times, values and engine votes. The reference below is that slow path, kept deliberately plain."""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest

from kubectl_gpuscale.coldstart.engines import PATTERNS
from kubectl_gpuscale.coldstart.logs import (
    _FAILURES,
    _VLLM_ASCII,
    _VLLM_LINE,
    _bar,
    _scan_lines,
    _stamp,
    _Stream,
    scan,
    split_line,
)
from kubectl_gpuscale.coldstart.marks import M
from tests.support.wrapped_logs import WRAPPERS, sample_logs, wrap


def _reference(raw_lines: list[str]) -> tuple[list[tuple[Any, ...]], dict[str, int], object]:
    """Every line through `_Stream.peel`; every pattern of the line's first word tried in order."""
    stream, votes = _Stream(), dict[str, int]()
    found: list[tuple[Any, ...]] = []
    head, dated = None, False
    for index, raw in enumerate(raw_lines):
        if dated and " HTTP/1." in raw and '" ' in raw:
            continue
        msg, rank, engine, level, outer, inner, _ = stream.peel(raw)
        if not msg:
            continue
        if engine:
            votes[engine] = votes.get(engine, 0) + 1
        if not dated and (outer is not None or inner is not None):
            head = split_line(raw)
            dated = head.ts is not None
        word = msg.split(" ", 1)[0].split("=", 1)[0]
        hit = next(
            (
                (name, hint, m)
                for key, regex, name, hint in PATTERNS
                if key == word and (m := regex.match(msg))
            ),
            None,
        )
        bar = None if hit is not None else _bar(msg)
        may_fail = "rror" in msg or "failed" in msg or level == "ERROR" or "No available memory" in msg
        failure = (
            next(({"headline": h, "phase": p} for key, h, p in _FAILURES if key in msg), None)
            if may_fail or "capture_model" in msg
            else None
        )
        ts = _stamp(outer, engine, inner)
        if hit is not None:
            found.append((hit[0], ts, rank, index, hit[2].groups(), msg))
            if hit[1]:
                votes[hit[1]] = votes.get(hit[1], 0) + 2
        if bar is not None:
            found.append((M.BAR, ts, rank, index, bar, msg))
        if failure is not None:
            found.append((M.FAILURE, ts, rank, index, failure, msg))
    return sorted(found, key=lambda f: (f[3], str(f[0]))), votes, head


def _fast(raw_lines: list[str]) -> tuple[list[tuple[Any, ...]], dict[str, int], object]:
    (by_name, votes), head = _scan_lines(raw_lines)
    found = [
        (m.name, m.ts, m.rank, m.index, m.values.get("groups", m.values), m.text)
        for marks in by_name.values()
        for m in marks
    ]
    return sorted(found, key=lambda f: (f[3], str(f[0]))), votes, head


def _logs() -> dict[str, list[list[str]]]:
    bare = [path.read_text(encoding="utf-8").splitlines() for path in sample_logs()]
    return {"bare": bare} | {w: [wrap(lines, w) for lines in bare] for w in WRAPPERS}


@pytest.mark.parametrize("wrapper", ["bare", *WRAPPERS])
def test_the_hot_path_reads_every_sample_as_the_stream_does(wrapper: str) -> None:
    for lines in _logs()[wrapper]:
        assert _fast(lines) == _reference(lines)


DEBRIS = ["\r", " \x1b[0m", "\x1b[32m", " [0m", "  ", "#033[1m", "\u2502 ", "m(", '" HTTP/1.1" 200', "{"]
DEBRIS += ["[pod/a/b] ", "07:29:01 [INFO] [job] ", "2024-01-02T03:04:05Z ", "\u00e9", "(Worker pid=1) "]
DEBRIS += ["INFO:", "=", " ", "%|", "rror", "ERROR ", "capture_model", "Connectedness"]


def test_the_hot_path_reads_damaged_mixes_as_the_stream_does() -> None:
    """Lines of every engine and wrapper shuffled together, cut short and sprinkled with the debris
    that sends a line off the hot path (a carriage return, ANSI codes, a wrapper, a non-ASCII letter)
    or onto a pattern's first word with another engine's text."""
    rng = random.Random(16)
    pool = [line for logs in _logs().values() for lines in logs for line in lines]
    for _ in range(60):
        lines = rng.sample(pool, 120)
        for i, line in enumerate(lines):
            r = rng.random()
            if r < 0.1:
                lines[i] = line[: rng.randrange(len(line) + 1)]
            elif r < 0.3:
                k = rng.randrange(len(line) + 1)
                lines[i] = line[:k] + rng.choice(DEBRIS) + line[k:]
        assert _fast(lines) == _reference(lines)


def test_a_mark_dense_scan_leaves_no_young_objects_for_the_collector() -> None:
    """The marks a scan makes are long-lived: none may cost a young collection's walk after the scan
    (at 200k lines that walk was a tenth of the parse)."""
    lines = [line for path in sample_logs() for line in path.read_text(encoding="utf-8").splitlines()] * 10
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        s = scan(lines)
        young = gc.get_count()[0]
    finally:
        gc.callbacks.remove(count)
    assert s.marks and collections == [] and young < 700


def test_the_ascii_header_pattern_reads_every_ascii_line_as_the_unicode_one() -> None:
    """`_VLLM_ASCII` spells `\\w` and `\\d` as explicit ranges: on a line of ASCII it must match what
    `_VLLM_LINE` matches, span and groups, on every sample line behind every wrapper and cut short."""
    checked = 0
    for logs in _logs().values():
        for lines in logs:
            for line in lines:
                for raw in (line, line[line.find("INFO") :], line[: len(line) // 2], line[1:]):
                    if raw.isascii():
                        a, b = _VLLM_ASCII.match(raw), _VLLM_LINE.match(raw)
                        assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups())), raw
                        checked += a is not None
    assert checked > 1000
