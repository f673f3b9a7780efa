"""The scale-down-delay window of sim/kpa.py `Decider` against knative/serving's own definition.

pkg/autoscaler/aggregation/max/window.go `TimeWindow.Record` / `Current` (a bucket per tick
interval keeps the largest value recorded in it; Current is the largest over the buckets inside
the duration), used by pkg/autoscaler/scaling/autoscaler.go `Scale` as `delayWindow`. The
reference below is that definition written out directly; the Decider keeps a running maximum.
"""

from __future__ import annotations

import random

from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim.kpa import Decider, DeciderSpec


def _reference(delay: float, calls: list[tuple[float, int]]) -> list[int]:
    buckets: dict[int, int] = {}
    out = []
    for now, desired in calls:
        bucket = int(now // d.KNATIVE_TICK_S)
        buckets[bucket] = max(buckets.get(bucket, desired), desired)
        first = bucket - int(delay // d.KNATIVE_TICK_S) + 1
        out.append(max(v for b, v in buckets.items() if b >= first))
    return out


def test_running_max_equals_the_bucket_window() -> None:
    rng = random.Random(7)
    for delay in (2.0, 4.0, 30.0, 60.0, 300.0):
        now, calls = 0.0, []
        for _ in range(3000):
            now += rng.choice((0.5, 1.0, 2.0, 2.0, 2.0, 6.0, 40.0))
            calls.append((now, rng.choice((0, 0, 1, 2, 3, 5, 8))))
        decider = Decider(DeciderSpec(1.0, scale_down_delay=delay), 0)
        got = [decider._delayed(now, desired) for now, desired in calls]
        assert got == _reference(delay, calls), delay
