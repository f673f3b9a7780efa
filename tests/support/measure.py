"""Run the CLI as a user does (`python -m kubectl_gpuscale ...` in a child process) and measure it.

For hostile inputs the answer itself matters less than that there is one, quickly: `run_measured`
kills the child after `timeout` seconds and reports its wall time and peak resident memory
(from `wait4`), so a hang or a blow-up is a test failure, not a stuck CI job. Linux carries the
forking process's peak across exec, so a child's figure is at least its launcher's RSS: an upper bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

BUDGET_SECONDS = 5.0
BUDGET_BYTES = 256 << 20


@dataclass(frozen=True)
class Measured:
    """One run: exit code (None when killed at the timeout), output, wall seconds, peak RSS bytes."""

    code: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int

    @property
    def within_budget(self) -> bool:
        """Answered within 5 s and 256 MiB."""
        return self.code is not None and self.seconds <= BUDGET_SECONDS and self.peak_bytes <= BUDGET_BYTES


def run_measured(args: list[str], *, timeout: float = 2 * BUDGET_SECONDS, stdin: str | None = None,
                 env: dict[str, str] | None = None) -> Measured:
    """Run ``kubectl-gpuscale ARGS`` in a child process; never waits longer than `timeout`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "kubectl_gpuscale", *args], stdout=out, stderr=err,
                                 stdin=inp, env={**os.environ, **(env or {})}, start_new_session=True)
        result: dict[str, Any] = {}

        def reap() -> None:
            _, status, usage = os.wait4(child.pid, 0)
            result["status"], result["usage"] = status, usage

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        waiter.join(timeout)
        seconds = time.monotonic() - started
        code: int | None
        if waiter.is_alive():
            os.killpg(child.pid, signal.SIGKILL)
            waiter.join()
            code = None
        else:
            code = os.waitstatus_to_exitcode(result["status"])
        child.returncode = code if code is not None else -9  # reaped above: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return Measured(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                        seconds, result["usage"].ru_maxrss * 1024)
