"""`History` values generated from the simulator's traffic patterns (known ground truth), and a
`Calibration`-like stand-in taken from a capacity preset, for the tune tests and benchmark."""

from __future__ import annotations

import numpy as np

from kubectl_gpuscale import sim
from kubectl_gpuscale.tune.calibrate import Calibration
from kubectl_gpuscale.tune.history import History

MONDAY = 1_767_571_200.0  # 2026-01-05T00:00:00Z, a Monday
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, float("inf"))


def pattern_history(
    name: str,
    rps: float | None = None,
    *,
    days: float = 1.0,
    step: float = 15.0,
    start: float = MONDAY,
    seed: int = 7,
    workload: str = "vllm",
) -> History:
    """`days` of the named pattern's traffic from `start` as Prometheus would have seen it: Poisson counts
    per step (the pattern's clock, which starts on a Monday at 00:00, lined up with `start`'s UTC time)."""
    pattern = sim.pattern(name, rps)
    steps = int(days * 86400 // step)
    t = np.arange(steps) * step + step / 2 + (start - MONDAY) % (7 * 86400)
    rng = np.random.default_rng(seed)
    arrivals = rng.poisson(pattern.rate(t) * step).astype(float)
    nan = np.full(steps, np.nan)
    return History(
        namespace="ml",
        workload=workload,
        engine="vllm",
        start=start,
        step=step,
        arrivals=arrivals,
        prompt_tokens=pattern.prompt_tokens,
        output_tokens=pattern.output_tokens,
        replicas=nan.copy(),
        running=nan.copy(),
        waiting=nan.copy(),
        ttft_buckets=BUCKETS,
        ttft_counts=np.zeros((steps, len(BUCKETS))),
        sources={"arrivals": f"sim pattern {name}"},
    )


def preset_calibration(preset: str = "8b") -> Calibration:
    """What `tune.calibrate.calibrate` returns when the history does not constrain the model: the preset."""
    return Calibration(profile=sim.engine_profile(preset), preset=preset, source="preset")


def main(argv: list[str]) -> None:
    """`python -m tests.support.tune_history OUT.json PATTERN RPS DAYS STEP`: write a history file."""
    import json
    import sys

    out, name, rps, days, step = argv
    history = pattern_history(
        name, float(rps), days=float(days), step=float(step), workload="vllm-gemma-deployment"
    )
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(history.to_json(), fh, separators=(",", ":"))
    print(f"{out}: {history.steps} steps, {history.requests} requests", file=sys.stderr)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
