"""Run the CLI as a user does (`python -m kubectl_gpuscale ...` in a child process) and measure it.

For hostile inputs the answer itself matters less than that there is one, quickly: `run_measured`
kills the child after `timeout` seconds and reports its wall time and peak resident memory
(from `wait4`), so a hang or a blow-up is a test failure, not a stuck CI job.

Linux carries a process's peak RSS across fork and exec, so a child forked straight from pytest would
report at least pytest's own RSS. A tiny launcher (`_LAUNCHER`, a bare interpreter) forks the CLI
instead and reports the CLI's `wait4` peak on stderr, so the figure is the CLI's own.
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
_MARK = "__gpuscale_peak_rss_kib="
_LAUNCHER = f"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "kubectl_gpuscale", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\n{_MARK}%d\\n" % usage.ru_maxrss)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


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


def run_measured(
    args: list[str],
    *,
    timeout: float = 2 * BUDGET_SECONDS,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run ``kubectl-gpuscale ARGS`` in a child process; never waits longer than `timeout`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, *args],
            stdout=out,
            stderr=err,
            stdin=inp,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
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
        stderr = err.read().decode(errors="replace")
        peak = result["usage"].ru_maxrss * 1024
        if _MARK in stderr:
            stderr, _, mark = stderr.rpartition(_MARK)
            stderr = stderr[:-1] if stderr.endswith("\n") else stderr
            peak = int(mark.strip()) * 1024
        return Measured(code, out.read().decode(errors="replace"), stderr, seconds, peak)
