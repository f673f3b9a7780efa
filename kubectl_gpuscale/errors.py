"""The errors every layer raises, each able to say what failed, why, and what to do.

The CLI prints them as one line on stderr and exits with `exit_code`; no layer
prints a traceback unless the user asked for `--debug`.
"""

from __future__ import annotations

import signal
from enum import IntEnum


class ExitStatus(IntEnum):
    """The process exit statuses: 0 ok, 1 failure (or an error-severity finding), 2 usage, 128 + n for signal n."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    HANGUP = 128 + signal.SIGHUP
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM

    @classmethod
    def for_signal(cls, signum: int) -> int:
        """The status of a process stopped by signal `signum` (the shell's 128 + n)."""
        code = 128 + signum
        return cls(code) if code in cls._value2member_map_ else code


class GpuscaleError(Exception):
    """A failure the user can act on.

    Args:
        what: what failed, e.g. ``cannot read HPA ml/vllm``.
        why: the cause, e.g. ``the API server answered 403 Forbidden``.
        fix: what to do about it, e.g. a ``kubectl auth can-i`` line.
    """

    exit_code: int = ExitStatus.FAILURE

    def __init__(self, what: str, why: str = "", fix: str = "") -> None:
        self.what = what
        self.why = why
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        """The one-line form: ``what: why; fix``."""
        text = self.what
        if self.why:
            text += f": {self.why}"
        if self.fix:
            text += f"; {self.fix}"
        return text


class InputError(GpuscaleError):
    """Bad input from the user (a flag, a file, a name): exit code 2."""

    exit_code = ExitStatus.USAGE


class NotFoundError(GpuscaleError):
    """An object, file or API that was asked for does not exist."""


class ForbiddenError(GpuscaleError):
    """The API server refused the request (403)."""


class ConflictError(GpuscaleError):
    """A write conflicted: stale resourceVersion, an existing object, or another field manager."""

    def __init__(self, what: str, why: str = "", fix: str = "", managers: tuple[str, ...] = ()) -> None:
        self.managers = managers
        super().__init__(what, why, fix)


class UnreachableError(GpuscaleError):
    """A server (Kubernetes API, Prometheus, kubelet) could not be reached: refused, TLS, timeout."""


class InvalidError(GpuscaleError):
    """The server rejected an object as invalid (422), or a webhook denied it."""
