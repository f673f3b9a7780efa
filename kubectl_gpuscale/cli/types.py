"""Click types for numbers and durations from flags: finite and in range, checked once by click.

`click.FloatRange` lets ``nan`` through (every comparison with it is false) and ``inf`` or ``1e400``
through an open-ended range; these types refuse both with a usage error (exit 2).
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A finite float in the range (``nan``, ``inf`` and overflowing literals such as ``1e400`` refused)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def finite_float(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> FiniteFloat:
    """A `FiniteFloat` type: e.g. ``finite_float(0, low_open=True)`` for a positive rate."""
    return FiniteFloat(low, high, min_open=low_open, max_open=high_open)


MAX_DURATION_SECONDS = 366 * 86400.0


def duration_value(value: str | float, *, allow_zero: bool = True) -> float:
    """Seconds in a duration flag (``30s``, ``2m``, ``1h30m``, ``500ms`` or plain seconds).

    Raises:
        click.BadParameter: not a duration, negative, not finite or above a year.
    """
    from kubectl_gpuscale.units import duration_seconds

    try:
        seconds = duration_seconds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not math.isfinite(seconds):
        raise click.BadParameter(f"{value!r} is not a finite duration")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise click.BadParameter("must be positive" if not allow_zero else "must not be negative")
    if seconds > MAX_DURATION_SECONDS:
        raise click.BadParameter(f"{value!r} is longer than a year")
    return seconds


def request_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """`--request-timeout`: None when unset (the default applies), 0.0 for ``0`` (no timeout), else seconds."""
    if value is None or value == "":
        return None
    return duration_value(value)
