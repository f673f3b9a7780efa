"""Hostile inputs: small files checked in here, bombs built at test time by the functions below.

Each builder writes one input of issue 15 and returns its path. `tests/test_hostile_*.py` feed them
to the CLI; `benchmarks/bench_hostile.py` times them against the 5 s / 256 MiB budget.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import tarfile
from pathlib import Path

from tests.checkpoint_archives import crio_files, write_archive

HERE = Path(__file__).parent
SPARSE_SIZE = 8 << 30


def _gnu_sparse_header(name: str, real_size: int, stored: int) -> bytes:
    """A GNU old-format sparse header: `stored` bytes of data at offset 0 of a `real_size` file (tar(5))."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = stored
    info.mode = 0o600
    buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT)[:512])
    buf[386:398] = tarfile.itn(0, 12, tarfile.GNU_FORMAT)
    buf[398:410] = tarfile.itn(stored, 12, tarfile.GNU_FORMAT)
    buf[482] = 0
    buf[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    buf[148:156] = b"        "
    buf[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(buf))[0]
    return bytes(buf)


def sparse_hardlink_archive(path: Path) -> Path:
    """A ~40 KiB archive: a sparse 8 GiB checkpoint/pages-1.img, and config.dump hard-linked to it."""
    files = crio_files(pages=4096)
    del files["config.dump"], files["checkpoint/pages-1.img"]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        sparse = _gnu_sparse_header("checkpoint/pages-1.img", SPARSE_SIZE, 512) + b"{" + b"\0" * 511
        assert tar.fileobj is not None
        tar.fileobj.write(sparse)
        tar.offset += len(sparse)
        link = tarfile.TarInfo("config.dump")
        link.type = tarfile.LNKTYPE
        link.linkname = "checkpoint/pages-1.img"
        tar.addfile(link)
    return path


def symlink_metadata_archive(path: Path) -> Path:
    """spec.dump as a symlink to the (large) memory pages."""
    files = crio_files(pages=64 * 1024)
    del files["spec.dump"]
    link = tarfile.TarInfo("spec.dump")
    link.type = tarfile.SYMTYPE
    link.linkname = "checkpoint/pages-1.img"
    return write_archive(path, files, extra=[link])


def _tar_of_many_members(members: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in crio_files(pages=4096).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        blank = tarfile.TarInfo("checkpoint/x")
        for i in range(members):
            blank.name = f"checkpoint/f{i}"
            tar.addfile(blank)
    return out.getvalue()


def compressed_bomb(path: Path, codec: str, gib: int = 8) -> Path:
    """A checkpoint tar whose pages member holds `gib` GiB of zeros, compressed (bz2 or xz) to a few KiB.

    Written as concatenated streams (both formats allow them): one compressed 8 MiB block of zeros repeated.
    """

    def compress(data: bytes) -> bytes:
        return bz2.compress(data, 9) if codec == "bz2" else lzma.compress(data, preset=1)

    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in crio_files(pages=4096).items():
            if name != "checkpoint/pages-1.img":
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        pages = tarfile.TarInfo("checkpoint/pages-1.img")
        pages.size = gib << 30
        assert tar.fileobj is not None
        tar.fileobj.write(pages.tobuf(format=tarfile.GNU_FORMAT))
        tar.offset = 0  # the member's data follows as separate streams
    chunk = compress(b"\0" * (8 << 20))
    with path.open("wb") as out:
        out.write(
            compress(head.getvalue()[: head.getvalue().rfind(pages.tobuf(format=tarfile.GNU_FORMAT)) + 512])
        )
        for _ in range((gib << 30) // (8 << 20)):
            out.write(chunk)
        out.write(compress(b"\0" * 10240))
    return path


def many_members_archive(path: Path, members: int = 30_000) -> Path:
    """An uncompressed tar with more members than any checkpoint (15 MiB of headers)."""
    path.write_bytes(_tar_of_many_members(members))
    return path


def deep_json_archive(path: Path, depth: int = 200_000, member: str = "config.dump") -> Path:
    """config.dump nested `depth` lists deep (400 KB)."""
    files = crio_files(pages=4096)
    files[member] = b"[" * depth + b"]" * depth
    return write_archive(path, files)


def metadata_archive(path: Path, member: str, data: object) -> Path:
    """A checkpoint whose `member` (config.dump / spec.dump) holds `data` as JSON."""
    files = crio_files(pages=4096)
    files[member] = json.dumps(data).encode()
    return write_archive(path, files)


def pax_header_bomb(path: Path, size: int = 1 << 30) -> Path:
    """A pax extended header claiming `size` bytes, in a sparse file of that size (a few KiB on disk).

    tarfile reads a pax header's body whole (`TarInfo._proc_pax`), so listing members read 1 GiB into memory.
    """
    files = crio_files(pages=4096)
    write_archive(path, files)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = size
    with path.open("r+b") as out:
        out.seek(0)
        out.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        out.truncate(512 + size + 10240)
    return path


def fifo(path: Path) -> Path:
    """A named pipe nobody writes to: opening it for reading blocks for ever."""
    os.mkfifo(path)
    return path


def alias_bomb(levels: int = 10, fan: int = 9) -> str:
    """A ~900-byte HPA whose labels hold a YAML "billion laughs": fan**levels strings when expanded."""
    lines = [
        "apiVersion: autoscaling/v2",
        "kind: HorizontalPodAutoscaler",
        "metadata:",
        "  name: bomb",
        "  namespace: ml",
        "  labels:",
        '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for level in range(1, levels):
        lines.append(f"    a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * fan) + "]")
    lines += [
        "spec:",
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: vllm}",
        "  minReplicas: 1",
        "  maxReplicas: 4",
        "  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]",
    ]
    return "\n".join(lines) + "\n"
