"""The scale-down-delay window of sim/kpa.py `Decider` against knative/serving's own definition.

pkg/autoscaler/aggregation/max/window.go `TimeWindow.Record` / `Current` (a bucket per tick
interval keeps the largest value recorded in it; Current is the largest over the buckets inside
the duration), used by pkg/autoscaler/scaling/autoscaler.go `Scale` as `delayWindow`. The
reference below is that definition written out directly; the Decider keeps a running maximum.
"""

from __future__ import annotations

import random

import numpy as np

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


def test_scanned_ticks_see_the_same_window() -> None:
    """What the KPA's scan uses: `delayed_over` (nothing recorded) and `record` (a run of ticks at once)
    give what `_delayed` gives tick by tick, from any state the window was left in."""
    rng = random.Random(11)
    for delay in (2.0, 10.0, 60.0, 300.0):
        one = Decider(DeciderSpec(1.0, scale_down_delay=delay), 0)
        bulk = Decider(DeciderSpec(1.0, scale_down_delay=delay), 0)
        bucket = 0
        for _ in range(300):
            bucket += rng.choice((1, 1, 1, 5, 400))
            n = rng.choice((1, 3, 40, 400))
            buckets = np.arange(bucket, bucket + n)
            values = np.array([rng.choice((0, 1, 1, 2, 3, 6)) for _ in range(n)], dtype=np.float64)
            ahead = bulk.delayed_over(buckets, values)
            expected = [
                one._delayed(float(b * d.KNATIVE_TICK_S), int(v))
                for b, v in zip(buckets, values, strict=True)
            ]
            assert ahead.tolist() == expected, delay
            bulk.record(buckets, values)
            assert list(bulk._delay) == list(one._delay), delay
            bucket += n
