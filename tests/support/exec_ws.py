"""Pod ``exec`` over a websocket, as the API server (and the kubelet behind it) speaks it.

Used by `tests.support.apiserver`; kept apart so the protocol is readable on its own:

- RFC 6455 handshake: ``Sec-WebSocket-Accept`` = base64(sha1(key + GUID)); the answered
  subprotocol is the first one the client offers among ``v5.channel.k8s.io`` and
  ``v4.channel.k8s.io`` (the kubernetes Python client offers ``v5.channel.k8s.io,v4.channel.k8s.io``;
  kubectl offers v5).
- Server frames are unmasked binary frames whose first payload byte is the channel
  (1 stdout, 2 stderr, 3 error/status), at most `FRAME_DATA` data bytes each, then a close frame.
- The status on channel 3 is a ``Status``: ``{"metadata":{},"status":"Success"}``, or a Failure
  with ``reason: NonZeroExitCode`` and ``details.causes[0] = {reason: ExitCode, message: "<code>"}``.
- Client frames (masked) are read and ignored; stdin and tty are not supported.

An exec handler maps ``(argv, container)`` to ``(stdout, stderr, exit code)`` (stdout: bytes or an
iterator of chunks);
`file_exec_handler` serves files the way busybox ``cat``, ``stat -c %s`` and ``sha256sum`` do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from io import BufferedIOBase
from pathlib import Path
from typing import Any

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
FRAME_DATA = 64 * 1024
STDOUT, STDERR, ERROR = 1, 2, 3
OP_BINARY, OP_CLOSE = 0x2, 0x8

Output = bytes | Iterable[bytes]
"""A handler's stdout: bytes, or an iterator of chunks sent as each is made (a slow or endless stream)."""
ExecHandler = Callable[[list[str], str], tuple[Output, bytes, int]]


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def choose_protocol(offered: str | None) -> str | None:
    """The first offered channel subprotocol this server speaks (None: no common one)."""
    for name in (p.strip() for p in (offered or "").split(",")):
        if name in PROTOCOLS:
            return name
    return None


def frame_header(opcode: int, length: int) -> bytes:
    """A final, unmasked frame header (server to client) for a payload of `length` bytes."""
    first = 0x80 | opcode
    if length < 126:
        return bytes([first, length])
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The channel-3 Status for a finished command, as the kubelet sends it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
        f"exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error(message: str) -> dict[str, Any]:
    """The channel-3 Status when the command could not run at all."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def chunks(output: Output) -> Iterator[bytes]:
    """The chunks of a handler's stdout, in order."""
    if isinstance(output, (bytes, bytearray)):
        yield bytes(output)
    else:
        yield from output


def known_length(output: Output) -> int:
    """The byte length of a handler's stdout; -1 for a stream."""
    return len(output) if isinstance(output, (bytes, bytearray)) else -1


def send_channel(wfile: BufferedIOBase, channel: int, data: bytes) -> int:
    """Send `data` on `channel` in frames of at most `FRAME_DATA` data bytes; returns the frame count."""
    view = memoryview(data)
    frames = 0
    for start in range(0, len(view), FRAME_DATA):
        chunk = view[start : start + FRAME_DATA]
        wfile.write(frame_header(OP_BINARY, len(chunk) + 1) + bytes([channel]))
        wfile.write(chunk)
        frames += 1
    return frames


def send_status(wfile: BufferedIOBase, status: Mapping[str, Any]) -> None:
    """Send the channel-3 status, then a normal close frame (1000)."""
    body = bytes([ERROR]) + json.dumps(status).encode()
    wfile.write(frame_header(OP_BINARY, len(body)) + body)
    close = struct.pack("!H", 1000)
    wfile.write(frame_header(OP_CLOSE, len(close)) + close)
    wfile.flush()


def read_client_frame(rfile: BufferedIOBase) -> int | None:
    """Read one (masked) client frame and return its opcode; None at end of stream. The payload is ignored."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    if head[1] & 0x80:
        rfile.read(4)  # masking key
    remaining = length
    while remaining:
        got = rfile.read(min(remaining, 1 << 16))
        if not got:
            return None
        remaining -= len(got)
    return opcode


def drain_until_close(rfile: BufferedIOBase) -> None:
    """Read and ignore client frames until its close frame or the end of the stream."""
    while True:
        opcode = read_client_frame(rfile)
        if opcode is None or opcode == OP_CLOSE:
            return


def file_exec_handler(files: Mapping[str, bytes | Path]) -> ExecHandler:
    """An exec handler serving `files` (absolute path -> bytes, or a local file to read) like busybox.

    ``cat PATH`` writes the bytes, ``stat -c %s PATH`` the size, ``sha256sum PATH`` ``<hex>  PATH``;
    a missing path exits 1 with busybox's stderr, another command exits 127 (not found).
    """

    def read(path: str) -> bytes | None:
        source = files.get(path)
        if source is None:
            return None
        return source.read_bytes() if isinstance(source, Path) else bytes(source)

    def handle(argv: list[str], container: str) -> tuple[bytes, bytes, int]:
        if len(argv) == 2 and argv[0] == "cat":
            data = read(argv[1])
            if data is None:
                return b"", f"cat: can't open '{argv[1]}': No such file or directory\n".encode(), 1
            return data, b"", 0
        if len(argv) == 4 and argv[:3] == ["stat", "-c", "%s"]:
            data = read(argv[3])
            if data is None:
                return b"", f"stat: can't stat '{argv[3]}': No such file or directory\n".encode(), 1
            return f"{len(data)}\n".encode(), b"", 0
        if len(argv) == 2 and argv[0] == "sha256sum":
            data = read(argv[1])
            if data is None:
                return b"", f"sha256sum: {argv[1]}: No such file or directory\n".encode(), 1
            return f"{hashlib.sha256(data).hexdigest()}  {argv[1]}\n".encode(), b"", 0
        return b"", f"sh: {argv[0] if argv else ''}: not found\n".encode(), 127

    return handle
