"""Cold-start diagnosis: phase model, log/event parsers, advice. Pure (no I/O); `top` and `doctor` reuse it."""

from __future__ import annotations

from kubectl_gpuscale.coldstart.model import PHASES, Advice, Failure, Phase, Timeline, timeline_to_dict
from kubectl_gpuscale.coldstart.timeline import build

__all__ = ["PHASES", "Advice", "Failure", "Phase", "Timeline", "build", "timeline_to_dict"]
