"""Reading the text files commands take (manifests, a saved pod, events, traces, cold-start profiles, logs).

One reader for them all: ``-`` is stdin; a directory is refused; at most `MAX_TEXT_BYTES` are read
and devices are refused (so ``/dev/zero`` or a runaway pipe cannot exhaust memory); the bytes must be UTF-8 unless the caller
tolerates junk (container logs). Every failure is an `InputError` naming the file.

Pure: no click, rich or kubernetes.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO

from kubectl_gpuscale.errors import InputError

MAX_TEXT_BYTES = 64 << 20
"""Largest text input read (manifests, pods, events, traces, profiles); see docs/troubleshooting.md."""
MAX_LOG_BYTES = 1 << 30
"""Largest container log read with `coldstart -f`."""


def _read_capped(handle: BinaryIO, limit: int, what: str, path: str) -> bytes:
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"cannot read {what} {path}",
            f"it is larger than {limit:,} bytes",
            "pass a smaller file (see docs/troubleshooting.md for the limits)",
        )
    return data


def read_text(path: str, what: str, *, limit: int = MAX_TEXT_BYTES, lenient: bool = False) -> str:
    """The text of `path` (``-``: stdin), decoded as UTF-8.

    Args:
        path: the file, or ``-`` for stdin.
        what: what the file is, for messages (``trace``, ``pod``, ``cold-start profile``).
        limit: the most bytes read.
        lenient: replace undecodable bytes (container logs) instead of refusing the file.

    Raises:
        InputError: missing, a directory, unreadable, too large, or not UTF-8.
    """
    if path == "-":
        data = _read_capped(sys.stdin.buffer, limit, what, "<stdin>")
    else:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise InputError(f"cannot read {what} {path}", "no such file", "check the path") from None
        except OSError as exc:
            raise InputError(
                f"cannot read {what} {path}", exc.strerror or str(exc), "check the path"
            ) from None
        if stat.S_ISDIR(mode):
            raise InputError(f"cannot read {what} {path}", "it is a directory", "pass a file")
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and path not in ("/dev/stdin", "/dev/fd/0"):
            raise InputError(
                f"cannot read {what} {path}", "it is a device, not a file", "pass a file, or - for stdin"
            )
        try:
            with open(path, "rb") as handle:
                data = _read_capped(handle, limit, what, path)
        except OSError as exc:
            raise InputError(
                f"cannot read {what} {path}", exc.strerror or str(exc), "check the path"
            ) from None
    try:
        return data.decode("utf-8", errors="replace" if lenient else "strict")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"cannot read {what} {path}",
            f"it is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            "pass a UTF-8 text file (convert it with iconv)",
        ) from None
