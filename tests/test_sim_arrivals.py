"""Arrivals compute a pattern's per-second rates once per class of days (`Pattern.day_class`).

The shortcut is exact only if every day of a class has the same rates second for second; a pattern whose
rates changed with the day (a weekly cycle, a period that does not divide a day) would silently get
another day's traffic, so every pattern's classes are checked against its own `rate` over two weeks.
"""

from __future__ import annotations

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim.traffic import DAY, PATTERNS, Arrivals


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_days_of_a_class_have_the_same_rates(name: str) -> None:
    pattern = sim.pattern(name)
    first: dict[int, np.ndarray] = {}
    for day in range(15):
        rate = pattern.rate(np.arange(day * DAY, (day + 1) * DAY, dtype=np.int64))
        kind = pattern.day_class(day)
        if kind in first:
            assert rate.tobytes() == first[kind].tobytes(), f"day {day} of class {kind}"
        else:
            first[kind] = rate
            assert all(rate.tobytes() != other.tobytes() for other in first.values() if other is not rate)


@pytest.mark.parametrize("name", ["business-hours", "spiky", "step"])
def test_arrivals_draw_each_day_from_its_own_rates(name: str) -> None:
    pattern = sim.pattern(name)
    arrivals = Arrivals(pattern, seed=4)
    for day in (0, 1, 5, 6, 7):
        t = np.arange(day * DAY, (day + 1) * DAY, dtype=np.int64)
        expected = np.random.default_rng([4, day]).poisson(pattern.rate(t)).astype(np.float64)
        assert arrivals.window(day * DAY, (day + 1) * DAY).tobytes() == expected.tobytes()
