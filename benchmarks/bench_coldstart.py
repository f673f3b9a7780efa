"""Cold-start log parse budget: >= 200k lines/s, measured on the real sample logs replicated.

All sample logs (../shared/samples/logs/*.log) are concatenated and replicated to ~N lines, then
`coldstart.build` (scan + timeline) runs over them; the best of several runs is reported.
Run: .venv/bin/python benchmarks/bench_coldstart.py [--lines N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubectl_gpuscale.coldstart import build  # noqa: E402

BUDGET_LINES_PER_SECOND = 200_000
SHARED = Path(os.environ.get("GPUSCALE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def sample_lines() -> list[str]:
    """Every line of every sample log, in file order."""
    lines: list[str] = []
    for path in sorted((SHARED / "samples" / "logs").glob("*.log")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def measure(target: int = 200_000, runs: int = 5) -> tuple[int, float]:
    """(lines parsed, best lines/s)."""
    base = sample_lines()
    if not base:
        raise SystemExit(f"no sample logs under {SHARED}/samples/logs")
    lines = base * max(1, target // len(base))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        build(lines)
        best = min(best, time.perf_counter() - start)
    return len(lines), len(lines) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    count, rate = measure(args.lines, args.runs)
    verdict = "ok" if rate >= BUDGET_LINES_PER_SECOND else "OVER BUDGET"
    print(f"coldstart log parse: {rate:,.0f} lines/s on {count:,} real sample lines "
          f"(budget >= {BUDGET_LINES_PER_SECOND:,} lines/s) {verdict}")
    if rate < BUDGET_LINES_PER_SECOND:
        sys.exit(1)


if __name__ == "__main__":
    main()
