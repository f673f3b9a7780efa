"""SIGTERM and SIGHUP handled like Ctrl-C, so cleanup in ``finally`` blocks runs for all three.

CI cancelling a job, ``timeout``, a closed terminal or ``kill`` send SIGTERM or SIGHUP; Python's
default for both ends the process at once, skipping every ``finally``. Inside `interrupts_as_ctrl_c`
they raise `Interrupted` (a ``KeyboardInterrupt``) instead, so code that already cleans up on
Ctrl-C cleans up on them too. Pure: standard library only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by `signum` (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGTERM``."""
        return signal.Signals(self.signum).name


def signal_of(exc: BaseException) -> int:
    """The signal behind an interrupt: `Interrupted.signum`, else SIGINT (a plain Ctrl-C)."""
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


@contextmanager
def interrupts_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Interrupted` in the main thread.

    After the first one, further SIGTERM/SIGHUP are ignored so the cleanup it starts is not cut
    short (a second Ctrl-C still interrupts). Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
