"""What every engine module shares: the pattern record, the phase being assembled (`Span`), the
assembly state the phase rules read and extend, and small helpers over marks. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubectl_gpuscale.coldstart.marks import LogScan, M, Mark

GIB = 1024**3 / 1e9  # GiB in GB
NUMBER = r"([-\d.,]+)"  # a logged figure: digits, sign, decimal point and thousands commas

# (first word of the message, regex matched at the message start, mark, engine hint or None for any)
Pattern = tuple[str, re.Pattern[str], M, str | None]


@dataclass
class Span:
    """A phase while being assembled: absolute start/end on one clock."""

    name: str
    seconds: float
    start: datetime | None = None
    source: str = "window"
    open: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> datetime | None:
        """When the phase ended (None when its start is unknown)."""
        return None if self.start is None else self.start + timedelta(seconds=self.seconds)


def ended_at(name: str, seconds: float, end: datetime | None, **detail: Any) -> Span:
    """A logged phase of `seconds` that ended at `end` (a line printed when the phase was over)."""
    return Span(name, seconds, end - timedelta(seconds=seconds) if end else None, "logged", detail=detail)


@dataclass
class Assembly:
    """The engine's phases so far and what later rules read: the latest phase end on the log clock
    (`boundary`), the weights' start and size, the download and compile phases, the summary."""

    phases: list[Span] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    boundary: datetime | None = None
    weights_start: datetime | None = None
    download: Span | None = None
    weights_gb: float | None = None
    compile: Span | None = None

    def add(self, p: Span) -> None:
        """Append a phase; a closed phase with a known end moves the boundary."""
        self.phases.append(p)
        if p.end is not None and not p.open:
            self.reach(p.end)

    def reach(self, t: datetime) -> None:
        """The log got at least as far as `t`."""
        self.boundary = t if self.boundary is None else max(self.boundary, t)


# A phase rule: (applies to this scan?, the phase it makes, or None when the marks give no duration).
# Rules of one phase are tried in order; the first that applies decides, even with no phase.
Rule = tuple[Callable[[LogScan], bool], Callable[[LogScan, Assembly], Span | None]]


def first_rule(rules: Sequence[Rule], s: LogScan, a: Assembly) -> Span | None:
    """The phase made by the first rule that applies, else None."""
    for applies, make in rules:
        if applies(s):
            return make(s, a)
    return None


def value(mark: Mark, i: int = 0) -> float | None:
    """The i-th captured figure of a mark as a float (thousands commas dropped), None when absent."""
    g = mark.values["groups"][i]
    return None if g is None else float(str(g).replace(",", ""))


def max_by_rank(marks: list[Mark], i: int = 0) -> tuple[float, Mark] | None:
    """The largest value among ranks (every rank logs its own line): (value, the first mark that said it)."""
    best: tuple[float, Mark] | None = None
    seen: set[object] = set()  # ranks and replicated starts repeat one figure: each text is read once
    for m in marks:
        g = m.values["groups"][i]
        if g is None or g in seen:
            continue
        seen.add(g)
        v = float(str(g).replace(",", ""))
        if best is None or v > best[0]:
            best = (v, m)
    return best


def last_ts(marks: list[Mark]) -> datetime | None:
    """The latest timestamp among marks."""
    stamps = [m.ts for m in marks if m.ts is not None]
    return max(stamps) if stamps else None


def first_ts(marks: list[Mark]) -> datetime | None:
    """The earliest timestamp among marks."""
    stamps = [m.ts for m in marks if m.ts is not None]
    return min(stamps) if stamps else None


def secs(a: datetime | None, b: datetime | None) -> float | None:
    """Seconds from a to b, None when either is unknown."""
    return None if a is None or b is None else (b - a).total_seconds()
