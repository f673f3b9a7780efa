"""What CPython can do at best per log line here: the floor under `bench_coldstart.py`'s figures.

The parse budget (>= 200k lines/s) leaves 5 µs per line for everything. This script times, on the
same input as bench_coldstart.py (the sample logs replicated to ~200k lines), the parts no reader
of these logs can skip, each alone, with no cyclic garbage collection:

- `splitlines()` and the timeline built from a finished scan;
- a semantics-free read: for every line one engine-header match (vLLM, then SGLang on a `[` line),
  its message's first word and the startup patterns filed under it, a tuple per mark; no times,
  ranks, failures, progress bars, votes, TGI or text lines, ANSI codes or carriage returns;
- behind each wrapper, the one call that takes the wrapper off (`kubectl logs --prefix
  --timestamps`: one match; a Docker json-file record: json's C scanner; an orchestrator's prefix:
  one match of its learnt shape).

The sum is a floor, not a plan: the real scan (`coldstart.logs.scan`, timed last) does all of it
and what the floor leaves out. Both are printed per line beside the 5 µs the budget allows.
Run: .venv/bin/python benchmarks/parse_floor.py [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_coldstart import (
    BUDGET_LINES_PER_SECOND,
    WRAPPERS,
    replicated,
    sample_lines,
    wrapped_lines,
)
from kubectl_gpuscale.coldstart import logs
from kubectl_gpuscale.coldstart.timeline import build_from_scan

PEELS: dict[str, Callable[[str], object]] = {  # each wrapper's one peeling call
    "kubectl-prefix-timestamps": logs._KUBECTL_STAMP.match,
    "docker-json": lambda line: logs._JSON_SCAN(line, 0),
    "orchestrator-prefix": logs._prefix_shape("07:29:01 [INFO] [inf-job] [INFERENCE LOG] ").match,
}


def semantics_free_read(lines: list[str]) -> list[tuple[object, ...]]:
    """One header match per line, first-word pattern dispatch, a tuple per mark (see the docstring)."""
    vllm, sglang, by_word = logs._VLLM_ASCII.match, logs._SGLANG.match, logs._BY_WORD
    marks: list[tuple[object, ...]] = []
    for index, raw in enumerate(lines):
        header = vllm(raw) or (sglang(raw) if raw[:1] == "[" else None)
        if header is None:
            continue
        msg = raw[header.end() :]
        space = msg.find(" ")
        for regex, name, _ in by_word.get(msg if space < 0 else msg[:space], ()):
            hit = regex.match(msg)
            if hit is not None:
                marks.append((name, index, hit))
                break
    return marks


def _peel_all(peel: Callable[[str], object], lines: list[str]) -> list[object]:
    return list(map(peel, lines))


def per_line(run: Callable[[], object], count: int, runs: int) -> float:
    """Best CPU µs per line of `runs` calls, the cyclic collector off."""
    best = float("inf")
    for _ in range(runs):
        gc.disable()
        try:
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    allowed = 1e6 / BUDGET_LINES_PER_SECOND
    text = replicated(sample_lines(), 200_000)
    bare = text.splitlines()
    scanned = logs.scan(bare)
    common = per_line(text.splitlines, len(bare), runs) + per_line(
        lambda: build_from_scan(scanned), len(bare), runs
    )
    read = per_line(lambda: semantics_free_read(bare), len(bare), runs)
    print(f"budget: {allowed:.2f} µs per line (>= {BUDGET_LINES_PER_SECOND:,} lines/s)")
    print(f"splitlines + timeline: {common:.2f} µs; semantics-free read of the bare lines: {read:.2f} µs")
    assert set(PEELS) == set(WRAPPERS), "one peeling call per wrapper bench_coldstart measures"
    for wrapper in ("bare", *WRAPPERS):
        lines = bare if wrapper == "bare" else replicated(wrapped_lines(wrapper), 200_000).splitlines()
        peeling = (
            0.0
            if wrapper == "bare"
            else per_line(partial(_peel_all, PEELS[wrapper], lines), len(lines), runs)
        )
        floor = common + read + peeling
        real = common + per_line(partial(logs.scan, lines), len(lines), runs)
        print(
            f"{wrapper}: peel {peeling:.2f} µs, floor {floor:.2f} µs ({1e6 / floor:,.0f} lines/s), "
            f"real {real:.2f} µs ({1e6 / real:,.0f} lines/s), real/floor {real / floor:.2f}x; "
            f"the budget needs real/floor <= {allowed / floor:.2f}x"
        )


if __name__ == "__main__":
    main()
