"""Traffic: named patterns (a rate in requests/s as a function of time) and trace replay.

Arrivals are Poisson counts per second, drawn one simulated day at a time from an RNG
seeded with (seed, day): the same seed gives the same arrivals whatever the step sizes.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from kubectl_gpuscale.errors import InputError

DAY = 86400


@dataclass(frozen=True)
class Pattern:
    """A traffic pattern: `rate(seconds)` gives requests/s for an array of seconds since start.

    The simulation starts on a Monday at 00:00 (so 9-to-5 and weekends line up).
    """

    name: str
    description: str
    rps: float = 1.0  # the pattern's scale: peak or constant rate
    prompt_tokens: float = 512.0
    output_tokens: float = 256.0

    def rate(self, t: np.ndarray) -> np.ndarray:
        """Requests per second at each second in `t` (an integer or float array of seconds)."""
        sod = t % DAY

        def weekday() -> np.ndarray:
            return (t // DAY) % 7 < 5

        if self.name == "constant":
            return np.full(t.shape, self.rps)
        if self.name == "business-hours":
            # 9:00-17:00 on weekdays at `rps`, a 2 % trickle otherwise
            on = (sod >= 9 * 3600) & (sod < 17 * 3600) & weekday()
            return np.where(on, self.rps, self.rps * 0.02)
        if self.name == "business-hours-daily":
            on = (sod >= 9 * 3600) & (sod < 17 * 3600)
            return np.where(on, self.rps, 0.0)
        if self.name == "dev":
            # `rps` here is requests per day, spread over 9:00-18:00 on weekdays
            on = (sod >= 9 * 3600) & (sod < 18 * 3600) & weekday()
            return np.where(on, self.rps / (9 * 3600.0) * 7 / 5, 0.0)
        hour = sod / 3600.0
        if self.name == "diurnal":
            # a sine between 10 % and 100 % of `rps`, peaking at 14:00
            return self.rps * (0.55 + 0.45 * np.cos(2 * math.pi * (hour - 14.0) / 24.0))
        if self.name == "spiky":
            # 30 % of `rps` as a base; a 10-minute spike to `rps` every 3 hours
            in_spike = (t % (3 * 3600)) < 600
            return np.where(in_spike, self.rps, 0.3 * self.rps)
        if self.name == "step":
            # 10 % of `rps` for the first 10 minutes, then `rps`: a load step for panic tests
            return np.where(t < 600, 0.1 * self.rps, self.rps)
        raise InputError(f"unknown traffic pattern {self.name!r}", fix=f"use one of {', '.join(PATTERNS)}")

    def day_class(self, day: int) -> int:
        """Days of one class have the same `rate` second for second (the rates depend on the time of day,
        and for some patterns on whether it is a weekday, or on the first day): `Arrivals` computes a
        class's rates once."""
        if self.name in ("business-hours", "dev"):
            return 1 if day % 7 < 5 else 0
        if self.name == "step":
            return min(day, 1)
        return 0  # the others depend on the second of the day only (spiky's 3-hour period divides a day)


PATTERNS: dict[str, tuple[str, float]] = {
    "constant": ("constant rate, all day every day (default 50 req/s)", 50.0),
    "business-hours": ("9:00-17:00 on weekdays, a 2 % trickle otherwise (default peak 20 req/s)", 20.0),
    "business-hours-daily": ("9:00-17:00 every day, nothing otherwise (the guide's 8 h/day burst)", 20.0),
    "dev": ("a dev endpoint: ~N requests per day on weekdays 9:00-18:00 (default 100/day)", 100.0),
    "diurnal": ("a daily sine from 10 % to 100 % of the peak at 14:00 (default peak 30 req/s)", 30.0),
    "spiky": ("30 % base with a 10-minute spike to the peak every 3 hours (default peak 30 req/s)", 30.0),
    "step": ("10 % of the peak for 10 minutes, then the peak (default 30 req/s)", 30.0),
}


def pattern(
    name: str, rps: float | None = None, prompt_tokens: float = 512.0, output_tokens: float = 256.0
) -> Pattern:
    """A named pattern; `rps` overrides its default scale (for `dev`: requests per day)."""
    if name not in PATTERNS:
        raise InputError(f"unknown traffic pattern {name!r}", fix=f"use one of {', '.join(PATTERNS)}")
    description, default = PATTERNS[name]
    return Pattern(name, description, default if rps is None else rps, prompt_tokens, output_tokens)


@dataclass
class Trace:
    """A replayed trace: arrival counts per second and the mean token counts."""

    counts: np.ndarray
    prompt_tokens: float
    output_tokens: float
    requests: int
    name: str = "trace"
    description: str = field(default="replayed trace")

    @property
    def duration(self) -> int:
        """Seconds the trace spans (at least 1)."""
        return max(1, int(self.counts.shape[0]))


MAX_TRACE_SECONDS = 35 * 86400
"""Longest trace replayed: its per-second counts stay under ~50 MB (docs/troubleshooting.md)."""


def _timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


def parse_trace(text: str, source: str = "trace") -> Trace:
    """Parse a CSV trace: `timestamp,prompt_tokens,output_tokens` per request.

    Timestamps are seconds (epoch or relative, may be fractional) or ISO 8601; a header
    row is allowed. Raises InputError naming the first bad line.
    """
    times: list[float] = []
    prompts = 0.0
    outputs = 0.0
    reader = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(reader, start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if (
            lineno == 1
            and not _looks_numeric(row[0])
            and row[0].strip().lower() in ("timestamp", "time", "ts")
        ):
            continue
        if len(row) < 3:
            raise InputError(
                f"cannot read {source} line {lineno}",
                f"expected 3 columns (timestamp,prompt_tokens,output_tokens), got {len(row)}",
                "fix the CSV or see docs/simulate.md#trace-replay",
            )
        try:
            ts = _timestamp(row[0])
            p, o = float(row[1]), float(row[2])
        except ValueError as exc:
            raise InputError(
                f"cannot read {source} line {lineno}",
                f"{exc}",
                "timestamps are seconds or ISO 8601, token counts are numbers",
            ) from None
        if p < 0 or o < 0 or not (math.isfinite(p) and math.isfinite(o) and math.isfinite(ts)):
            raise InputError(
                f"cannot read {source} line {lineno}",
                "token counts must be finite non-negative numbers, timestamps finite",
                "fix the CSV",
            )
        times.append(ts)
        prompts += p
        outputs += o
    if not times:
        raise InputError(
            f"cannot replay {source}",
            "it holds no requests",
            "give a CSV with rows timestamp,prompt_tokens,output_tokens",
        )
    arr = np.asarray(times, dtype=np.float64)
    arr -= arr.min()
    if not np.isfinite(arr).all() or arr.max() >= MAX_TRACE_SECONDS:
        raise InputError(
            f"cannot replay {source}",
            f"it spans more than {MAX_TRACE_SECONDS // 86400} days (one count per second is kept)",
            "replay a shorter slice of the trace",
        )
    seconds = np.floor(arr).astype(np.int64)
    counts = np.bincount(seconds, minlength=int(seconds.max()) + 1).astype(np.float64)
    n = len(times)
    return Trace(
        counts,
        max(1.0, prompts / n),
        max(1.0, outputs / n),
        n,
        name=source,
        description=f"{n} requests over {counts.shape[0]} s from {source}",
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class Arrivals:
    """Per-second arrival counts for a pattern or a trace, generated a day at a time."""

    def __init__(self, source: Pattern | Trace, seed: int = 0) -> None:
        self.source = source
        self.seed = seed
        self._cache: dict[int, np.ndarray] = {}
        self._rates: dict[int, np.ndarray] = {}

    @property
    def prompt_tokens(self) -> float:
        return self.source.prompt_tokens

    @property
    def output_tokens(self) -> float:
        return self.source.output_tokens

    def _day_counts(self, day: int) -> np.ndarray:
        got = self._cache.get(day)
        if got is None:
            if isinstance(self.source, Trace):
                counts = self.source.counts
                lo = day * DAY
                out = np.zeros(DAY)
                if lo < counts.shape[0]:
                    part = counts[lo : lo + DAY]
                    out[: part.shape[0]] = part
                got = out
            else:
                rng = np.random.default_rng([self.seed, day])
                got = rng.poisson(self._day_rate(day)).astype(np.float64)
            if len(self._cache) >= 3:
                del self._cache[min(self._cache)]
            self._cache[day] = got
        return got

    def _day_rate(self, day: int) -> np.ndarray:
        assert isinstance(self.source, Pattern)
        kind = self.source.day_class(day)
        rate = self._rates.get(kind)
        if rate is None:
            rate = self.source.rate(np.arange(day * DAY, (day + 1) * DAY, dtype=np.int64))
            self._rates[kind] = rate
        return rate

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Arrival counts for seconds [t0, t1)."""
        d0, d1 = t0 // DAY, (t1 - 1) // DAY
        if d0 == d1:
            c = self._day_counts(d0)
            return c[t0 - d0 * DAY : t1 - d0 * DAY]
        parts = []
        for d in range(d0, d1 + 1):
            c = self._day_counts(d)
            lo = max(t0, d * DAY) - d * DAY
            hi = min(t1, (d + 1) * DAY) - d * DAY
            parts.append(c[lo:hi].copy())
        return np.concatenate(parts)
