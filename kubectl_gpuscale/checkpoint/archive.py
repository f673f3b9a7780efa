"""Offline inspection of a kubelet checkpoint archive (like checkpointctl's show), stdlib only.

The archive is an uncompressed tar written by CRI-O or containerd: ``config.dump``,
``spec.dump``, ``checkpoint/`` (CRIU images, ``pages-*.img``), ``rootfs-diff.tar``, ...
Only metadata is read (``config.dump``, ``spec.dump``, the CRIU inventory and dump log
are searched for the CUDA plugin); memory pages are sized, never read or printed.
"""

from __future__ import annotations

import json
import posixpath
import re
import stat
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kubectl_gpuscale import shapes
from kubectl_gpuscale.checkpoint.facts import MAX_METADATA_BYTES
from kubectl_gpuscale.errors import InputError, NotFoundError

MAX_ARCHIVE_MEMBERS = 20_000
"""Members an archive may hold (a real checkpoint has tens to a few hundred)."""
MAX_JSON_DEPTH = 64
"""How deeply config.dump / spec.dump may nest (real ones: under 10)."""

_TEXT = shapes.Shape("scalar", nullable=True)
CONFIG_DUMP = shapes.mapping(
    {
        k: _TEXT
        for k in (
            "id",
            "name",
            "rootfsImage",
            "rootfsImageName",
            "rootfsImageRef",
            "runtime",
            "createdTime",
            "checkpointedTime",
        )
    }
)
"""The fields of config.dump that inspection reads (CRI-O and containerd's ContainerConfig)."""
SPEC_DUMP = shapes.mapping(
    {
        "annotations": shapes.mapping(values=_TEXT, nullable=True),
        "process": shapes.mapping(
            {"env": shapes.list_of(shapes.Shape("scalar"), nullable=True)}, nullable=True
        ),
        "linux": shapes.mapping(
            {"devices": shapes.list_of(shapes.mapping({"path": shapes.STR}), nullable=True)}, nullable=True
        ),
    }
)
"""The fields of spec.dump (the OCI runtime spec) that inspection reads."""

REQUIRED = ("config.dump", "spec.dump")
_NAME_RE = re.compile(
    r"^checkpoint-(?P<pod>[a-z0-9.-]+)_(?P<rest>[a-z0-9-]+)-"
    r"(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\.tar$"
)


class ArchiveError(InputError):
    """The file is not a usable checkpoint archive (truncated, malformed, unsafe)."""


@dataclass(frozen=True)
class ArchiveName:
    """What a kubelet archive file name says: ``checkpoint-<pod>_<ns>-<container>-<RFC3339>.tar``."""

    file: str
    pod: str
    namespace: str
    container: str
    time: str


def parse_archive_name(name: str, namespaces: set[str] | None = None) -> ArchiveName | None:
    """Parse a kubelet archive name; None when it is not one.

    ``<ns>-<container>`` is ambiguous (both may hold dashes): a split whose namespace is in
    `namespaces` wins, else the first dash splits.
    """
    base = posixpath.basename(name)
    match = _NAME_RE.match(base)
    if not match:
        return None
    rest = match["rest"]
    splits = [(rest[:i], rest[i + 1 :]) for i, ch in enumerate(rest) if ch == "-" and 0 < i < len(rest) - 1]
    if not splits:
        return None
    chosen = next((s for s in splits if namespaces and s[0] in namespaces), splits[0])
    return ArchiveName(base, match["pod"], chosen[0], chosen[1], match["time"])


def validate_archive_basename(name: str) -> str:
    """The bare file name of an archive on the node; refuses paths outside the checkpoint directory."""
    base = posixpath.basename(name.rstrip("/"))
    parent = posixpath.dirname(name.rstrip("/"))
    if parent not in ("", "/var/lib/kubelet/checkpoints") or not base or base in (".", ".."):
        raise InputError(
            f"cannot use archive {name!r}",
            "it must be a file in /var/lib/kubelet/checkpoints",
            "pass the path `checkpoint pod` printed, or a name from `checkpoint list`",
        )
    if not re.fullmatch(r"checkpoint-[A-Za-z0-9._:+-]+\.tar", base):
        raise InputError(
            f"cannot use archive {name!r}",
            "not a kubelet checkpoint archive name",
            "names look like checkpoint-<pod>_<ns>-<container>-<time>.tar; see `checkpoint list`",
        )
    return base


@dataclass(frozen=True)
class ArchiveInfo:
    """What an archive holds, as checkpointctl's show/inspect reports it."""

    file: str
    container: str
    image: str
    id: str
    runtime: str
    engine: str
    pod: str
    namespace: str
    created: str
    checkpointed: str
    total_size: int
    checkpoint_size: int
    memory_pages_size: int
    amd_gpu_memory_pages_size: int
    root_fs_diff_size: int
    devshm_size: int
    gpu_devices: tuple[str, ...]
    cuda_plugin: str  # "yes" | "no" | "unknown"
    files: int

    def as_dict(self) -> dict[str, Any]:
        """checkpointctl-like JSON keys."""
        data = asdict(self)
        return {
            "file": data["file"],
            "container_name": self.container,
            "image": self.image,
            "id": self.id,
            "runtime": self.runtime,
            "engine": self.engine,
            "created": self.created,
            "checkpointed": self.checkpointed,
            "checkpoint_size": {
                "total_size": self.total_size,
                "checkpoint_size": self.checkpoint_size,
                "memory_pages_size": self.memory_pages_size,
                "amd_gpu_memory_pages_size": self.amd_gpu_memory_pages_size,
                "root_fs_diff_size": self.root_fs_diff_size,
                "devshm_size": self.devshm_size,
            },
            "metadata": {"pod_name": self.pod, "kubernetes_namespace": self.namespace},
            "gpu": {"devices": list(self.gpu_devices), "cuda_plugin": self.cuda_plugin},
            "files": self.files,
        }


def _safe_member_name(name: str) -> str:
    """A member's normalised name; raises on absolute paths and ``..`` traversal."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise ArchiveError(
            "unsafe checkpoint archive",
            f"member {name!r} has an absolute path",
            "do not use this archive; it was not written by a container runtime",
        )
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/":
        raise ArchiveError(
            "unsafe checkpoint archive",
            f"member {name!r} escapes the archive (path traversal)",
            "do not use this archive; it was not written by a container runtime",
        )
    return "" if norm == "." else norm


def _check_link(member: tarfile.TarInfo, norm: str) -> None:
    if not (member.issym() or member.islnk()):
        return
    target = member.linkname
    joined = (
        posixpath.normpath(posixpath.join(posixpath.dirname(norm), target))
        if member.issym()
        else posixpath.normpath(target)
    )
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise ArchiveError(
            "unsafe checkpoint archive",
            f"link {norm!r} points outside the archive ({target!r})",
            "do not use this archive; it was not written by a container runtime",
        )


def _metadata_member(by_name: dict[str, tarfile.TarInfo], name: str, path: str) -> tarfile.TarInfo | None:
    """The member `name` when it is a regular file; a link or special file in its place is refused.

    Following a link would size and read its target (a 20 KiB archive can hard-link ``config.dump`` to a
    sparse 8 GiB member); container runtimes write metadata as regular files, so links are refused.
    """
    member = by_name.get(name)
    if member is None or member.isfile():
        return member
    what = "a link" if member.issym() or member.islnk() else "not a regular file"
    raise ArchiveError(
        f"cannot inspect {path}",
        f"{name} is {what}; container runtimes write it as a regular file",
        "do not use this archive; it was not written by a container runtime",
    )


def _depth(data: Any) -> int:
    """How deeply `data` nests (iteratively: any depth)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_metadata_json(raw: bytes | str, label: str, path: str) -> dict[str, Any]:
    """A JSON object from archive metadata, refusing invalid JSON, non-objects and nesting beyond `MAX_JSON_DEPTH`."""
    try:
        data = json.loads(raw)
    except RecursionError:
        data = None
        deep = True
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} is not valid JSON ({exc.__class__.__name__})",
            "the archive is damaged; take a new checkpoint",
        ) from None
    else:
        deep = _depth(data) > MAX_JSON_DEPTH
    if deep:
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} nests deeper than {MAX_JSON_DEPTH} levels",
            "the archive is damaged or hostile; take a new checkpoint",
        )
    if not isinstance(data, dict):
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} is not a JSON object",
            "the archive is damaged; take a new checkpoint",
        )
    return data


def _read_json(
    tar: tarfile.TarFile, member: tarfile.TarInfo, label: str, path: str, shape: shapes.Shape
) -> dict[str, Any]:
    if member.size > MAX_METADATA_BYTES:
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} is {member.size} bytes, too large for metadata (limit {MAX_METADATA_BYTES >> 20} MiB)",
            "check the archive is a container checkpoint",
        )
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} is not a regular file",
            "check the archive is a container checkpoint",
        )
    try:
        raw = handle.read(MAX_METADATA_BYTES + 1)
    except (EOFError, tarfile.ReadError, OSError):
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label} is truncated",
            "the archive is incomplete; fetch it again and compare the sha256",
        ) from None
    data = parse_metadata_json(raw, label, path)
    try:
        shapes.check(data, shape)
    except shapes.ShapeError as exc:
        raise ArchiveError(
            f"cannot inspect {path}",
            f"{label}: {exc.path} must be {exc.expected}, found {exc.found}",
            "the archive is damaged or was not written by a container runtime",
        ) from None
    return data


def _scan_text(
    tar: tarfile.TarInfo | None, archive: tarfile.TarFile, needle: bytes, limit: int
) -> bool | None:
    """Whether `needle` occurs in the first `limit` bytes of a regular member (read in 1 MiB chunks)."""
    if tar is None or not tar.isfile():
        return None
    handle = archive.extractfile(tar)
    if handle is None:
        return None
    tail = b""
    remaining = limit
    while remaining > 0:
        chunk = handle.read(min(1 << 20, remaining))
        if not chunk:
            return False
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle) :]
        remaining -= len(chunk)
    return False


def _engine_fields(spec: dict[str, Any], config: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """(engine, container, pod, namespace, created) from spec.dump annotations, per checkpointctl."""
    ann = spec.get("annotations") or {}
    manager = ann.get("io.container.manager")
    if manager == "cri-o":
        try:
            meta = parse_metadata_json(str(ann.get("io.kubernetes.cri-o.Metadata") or "{}"), "", "")
        except ArchiveError:
            meta = {}
        name = str(meta.get("name") or config.get("name") or "")
        return (
            "CRI-O",
            name,
            str(ann.get("io.kubernetes.pod.name", "")),
            str(ann.get("io.kubernetes.pod.namespace", "")),
            str(ann.get("io.kubernetes.cri-o.Created") or config.get("createdTime") or ""),
        )
    if manager == "libpod":
        return ("Podman", str(config.get("name", "")), "", "", str(config.get("createdTime", "")))
    return (
        "containerd",
        str(ann.get("io.kubernetes.cri.container-name") or config.get("name") or ""),
        str(ann.get("io.kubernetes.cri.sandbox-name", "")),
        str(ann.get("io.kubernetes.cri.sandbox-namespace", "")),
        str(config.get("createdTime", "")),
    )


def _gpu_devices(spec: dict[str, Any]) -> tuple[str, ...]:
    linux = spec.get("linux") or {}
    devices = [str(d.get("path", "")) for d in linux.get("devices") or [] if isinstance(d, dict)]
    gpus = sorted({d for d in devices if d.startswith(("/dev/nvidia", "/dev/dri", "/dev/kfd"))})
    if not gpus:
        env = (spec.get("process") or {}).get("env") or []
        for item in env:
            if (
                isinstance(item, str)
                and item.startswith("NVIDIA_VISIBLE_DEVICES=")
                and item.split("=", 1)[1] not in ("", "void", "none")
            ):
                gpus.append(item)
    return tuple(gpus)


class _CappedReads:
    """A file whose single reads are capped: tarfile reads a pax or GNU long-name header whole, at its claimed size."""

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self._raw = raw
        self._cap = cap

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._cap:
            raise tarfile.ReadError(f"a header claims {size} bytes")
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma"),
)


def _open_regular(p: Path, file: str) -> BinaryIO:
    """Open `p` for reading only when it is a regular file: a FIFO, device or directory is refused before opening."""
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"cannot inspect {file}", "no such file", "check the path") from None
    except OSError as exc:
        raise InputError(f"cannot inspect {file}", exc.strerror or str(exc), "check the path") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"cannot inspect {file}", "it is a directory", "pass the .tar archive")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise InputError(
            f"cannot inspect {file}",
            f"it is {kind}, not a regular file",
            "save the archive to a file first (`checkpoint fetch`) and pass its path",
        )
    try:
        handle = open(p, "rb")  # noqa: SIM115 - closed by the caller
    except PermissionError:
        raise InputError(
            f"cannot inspect {file}",
            "permission denied",
            "archives are 0600 root-owned on the node; fetch it with `checkpoint fetch` "
            "or read it as its owner",
        ) from None
    except OSError as exc:
        raise InputError(f"cannot inspect {file}", exc.strerror or str(exc), "check the path") from None
    head = handle.read(6)
    handle.seek(0)
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            handle.close()
            raise ArchiveError(
                f"cannot inspect {file}",
                f"it is {name}-compressed; kubelet checkpoints are uncompressed tar",
                "decompress it first if you trust it, or fetch the original",
            )
    return handle


def _members(tar: tarfile.TarFile, file: str) -> list[tarfile.TarInfo]:
    """The archive's members, at most `MAX_ARCHIVE_MEMBERS`."""
    members: list[tarfile.TarInfo] = []
    try:
        while (member := tar.next()) is not None:
            members.append(member)
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise ArchiveError(
                    f"cannot inspect {file}",
                    f"it has more than {MAX_ARCHIVE_MEMBERS:,} members",
                    "this is not a container checkpoint",
                )
    except (tarfile.ReadError, EOFError, OSError) as exc:
        raise ArchiveError(
            f"cannot inspect {file}",
            f"the archive is truncated or corrupt ({exc})",
            "fetch it again and compare the sha256",
        ) from None
    return members


def inspect_archive(path: str | Path) -> ArchiveInfo:
    """Inspect one checkpoint archive without extracting it.

    Only an uncompressed tar of at most `MAX_ARCHIVE_MEMBERS` members is read; metadata files must be
    regular members of at most `MAX_METADATA_BYTES`, JSON nested at most `MAX_JSON_DEPTH` deep.

    Raises:
        NotFoundError: the file does not exist.
        InputError: it cannot be read (permissions, not a regular file), or is not a checkpoint archive
            (compressed, truncated, malformed, missing config.dump/spec.dump, unsafe member paths, links
            or oversized metadata, metadata of the wrong shape).
    """
    file = str(path)
    p = Path(path)
    raw = _open_regular(p, file)
    try:
        capped: Any = _CappedReads(raw, MAX_METADATA_BYTES)
        tar = tarfile.open(fileobj=capped, mode="r:")  # noqa: SIM115 - closed by the `with raw, tar:` below
    except (tarfile.ReadError, EOFError, OSError) as exc:
        raw.close()
        raise ArchiveError(
            f"cannot inspect {file}",
            f"not a tar archive or truncated ({exc})",
            "fetch it again and compare the sha256",
        ) from None
    with raw, tar:
        members = _members(tar, file)
        by_name: dict[str, tarfile.TarInfo] = {}
        for member in members:
            norm = _safe_member_name(member.name)
            _check_link(member, norm)
            if member.ischr() or member.isblk():
                raise ArchiveError(
                    "unsafe checkpoint archive",
                    f"member {norm!r} is a device node",
                    "do not use this archive; it was not written by a container runtime",
                )
            by_name[norm] = member
        if not members:
            raise ArchiveError(f"cannot inspect {file}", "the archive is empty", "take a new checkpoint")
        missing = [name for name in REQUIRED if name not in by_name]
        if missing:
            raise ArchiveError(
                f"cannot inspect {file}",
                f"not a container checkpoint: {', '.join(missing)} missing",
                "pass an archive written by `checkpoint pod` (the kubelet checkpoint API)",
            )
        if not any(n.startswith("checkpoint/") for n in by_name):
            raise ArchiveError(
                f"cannot inspect {file}",
                "not a container checkpoint: no checkpoint/ CRIU images",
                "pass an archive written by `checkpoint pod` (the kubelet checkpoint API)",
            )
        config_member = _metadata_member(by_name, "config.dump", file)
        spec_member = _metadata_member(by_name, "spec.dump", file)
        assert config_member is not None and spec_member is not None
        config = _read_json(tar, config_member, "config.dump", file, CONFIG_DUMP)
        spec = _read_json(tar, spec_member, "spec.dump", file, SPEC_DUMP)
        regular = {n: m for n, m in by_name.items() if m.isfile()}
        checkpoint_size = sum(m.size for n, m in regular.items() if n.startswith("checkpoint/"))
        pages = sum(
            m.size
            for n, m in regular.items()
            if n.startswith("checkpoint/") and posixpath.basename(n).startswith("pages-")
        )
        amd_pages = sum(
            m.size
            for n, m in regular.items()
            if n.startswith("checkpoint/") and posixpath.basename(n).startswith("amdgpu-pages-")
        )
        rootfs = regular["rootfs-diff.tar"].size if "rootfs-diff.tar" in regular else 0
        devshm = regular["devshm-checkpoint.tar"].size if "devshm-checkpoint.tar" in regular else 0
        try:
            in_inventory = _scan_text(
                _metadata_member(by_name, "checkpoint/inventory.img", file), tar, b"cuda_plugin", 1 << 20
            )
            log = _metadata_member(by_name, "dump.log", file) or _metadata_member(
                by_name, "checkpoint/dump.log", file
            )
            in_log = _scan_text(log, tar, b"cuda_plugin: ", 64 << 20)
        except (tarfile.ReadError, EOFError, OSError):
            raise ArchiveError(
                f"cannot inspect {file}", "the archive is truncated", "fetch it again and compare the sha256"
            ) from None
        cuda = (
            "yes"
            if in_inventory or in_log
            else "no"
            if (in_inventory is False or in_log is False)
            else "unknown"
        )
        engine, container, pod, namespace, created = _engine_fields(spec, config)
        return ArchiveInfo(
            file=file,
            container=container,
            image=str(config.get("rootfsImageName") or config.get("rootfsImage") or ""),
            id=str(config.get("id", ""))[:12],
            runtime=str(config.get("runtime", "")),
            engine=engine,
            pod=pod,
            namespace=namespace,
            created=created,
            checkpointed=str(config.get("checkpointedTime", "")),
            total_size=p.stat().st_size,
            checkpoint_size=checkpoint_size,
            memory_pages_size=pages,
            amd_gpu_memory_pages_size=amd_pages,
            root_fs_diff_size=rootfs,
            devshm_size=devshm,
            gpu_devices=_gpu_devices(spec),
            cuda_plugin=cuda,
            files=len(regular),
        )


def human_size(size: int) -> str:
    """Bytes as KiB/MiB/GiB with one decimal, like checkpointctl."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
