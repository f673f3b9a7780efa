"""Benchmark: `tune`'s search, 7 days of history at 15 s, >= 40 configurations x 2 variants
(DESIGN §5 budget: <= 30 s on the 2-core machine). Prints each figure beside the budget.

The history is a week of the simulator's business-hours pattern (peak 20 req/s) as Prometheus
would have sampled it; the calibration is the 8B preset. Figures: with one seed (the budget's
"x 2 variants") and with tune's default two seeds, each with 1 and 2 worker processes, and how
much of each run the cold-start cliff took. Run: .venv/bin/python benchmarks/bench_tune.py [--quick]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim.policies import PolicySpec
from kubectl_gpuscale.tune.search import TuneOptions, candidates, recommend
from tests.support.tune_history import pattern_history, preset_calibration

BUDGET_S = 30.0


def main() -> None:
    quick = "--quick" in sys.argv
    history = pattern_history("business-hours", 20.0, days=7, step=15.0)
    calibration = preset_calibration()
    cold = sim.coldstart_profile("8b-warm")
    baseline = PolicySpec("keda", {})
    n = len(candidates(history, calibration.profile, TuneOptions()))
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    )
    print(
        f"history: 7 days at 15 s ({history.steps} steps, {history.requests:,} requests); "
        f"{n} configurations + the baseline"
    )
    print(
        f"{'seeds':>5} {'workers':>7} {'sims':>5} {'wall s':>7} {'cpu s':>6} {'search s':>8} {'cliff s':>7} "
        f"{'budget':>7}  recommendation"
    )
    for seeds, workers in [((0,), 2)] if quick else [((0,), 1), ((0,), 2), ((0, 1), 2)]:
        marks: list[tuple[float, int]] = []

        def mark(done: int, total: int, marks: list[tuple[float, int]] = marks) -> None:
            marks.append((time.perf_counter(), done))

        options = TuneOptions(seeds=seeds, workers=workers)
        t0, c0 = time.perf_counter(), _cpu()
        result = recommend(history, calibration, cold, baseline, options, progress=mark)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        variants = 2 * len(seeds)
        jobs = variants * (2 * workers if workers > 1 else 1)  # the main search's simulations (tune.search)
        search_end = next((t for t, done in marks if done >= jobs), t0 + wall) - t0
        print(
            f"{len(seeds):>5} {workers:>7} {variants:>5} {wall:>7.1f} {cpu:>6.1f} {search_end:>8.1f} "
            f"{wall - search_end:>7.1f} {BUDGET_S:>7.0f}  {'OK  ' if wall <= BUDGET_S else 'OVER'} "
            f"{result.recommendation.candidate.label}"
        )


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
