"""Durations as people and Kubernetes write them: `90`, `30s`, `2m`, `1h30m`, `500ms`.

Pure; the one parser every command and model uses.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(text: str | float | int) -> float:
    """Seconds in a Go-style duration (`1h30m`, `45s`, `250ms`) or a plain number of seconds.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 2m, 1h30m or 500ms")
    return sum(float(n) * _SCALE[u] for n, u in parts)
