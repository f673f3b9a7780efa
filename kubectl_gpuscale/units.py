"""Durations as people, Go and Kubernetes write them: `90`, `30s`, `2m`, `1h30m`, `500ms`, `1m2.5s`, `30d`.

Pure; the one duration parser every command, parser and model uses.
"""

from __future__ import annotations

import re
from typing import Any

# A part starts where no number goes on: `findall` would otherwise restart at every digit of a long
# number (quadratic). The whole text is checked first, so the parts found cover it.
_PART = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(ms|us|µs|μs|ns|s|m|h|d|w)")
_DURATION = re.compile(f"(?:{_PART.pattern})+")
_SCALE = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def duration_seconds(text: str | float | int) -> float:
    """Seconds in a Go-style duration (`1h30m`, `1m2.5s`, `250ms`, `30d`) or a plain number of seconds.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 2m, 1h30m or 500ms")
    return sum(float(n) * _SCALE[u] for n, u in _PART.findall(value))


def optional_duration(value: Any) -> float | None:
    """`duration_seconds` for values read from objects: None when absent, empty or not a duration."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return duration_seconds(value if isinstance(value, (int, float)) else str(value))
    except ValueError:
        return None
