"""Local backups of the HPAs migrate-hpa adopts: the user always holds a copy of what a rollback restores.

One JSON file per HPA, the same object the ScaledObject's original-hpa annotation saves (a plain
HorizontalPodAutoscaler: `kubectl create -f FILE` works too), under the user's state directory:
``$XDG_STATE_HOME/kubectl-gpuscale/backups/<context>/<namespace>/<name>-<UTC time>.json``
(default ``~/.local/state``). Directories 0700, files 0600, created exclusively, never through a
symlink.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubectl_gpuscale.errors import GpuscaleError, InputError
from kubectl_gpuscale.names import PROGRAM

MAX_BACKUP_BYTES = 4 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def backup_root() -> Path:
    """``$XDG_STATE_HOME/kubectl-gpuscale/backups`` (default ``~/.local/state/...``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / PROGRAM / "backups"


def _part(text: str | None, default: str) -> str:
    cleaned = _UNSAFE.sub("_", text or "").strip("._") or default
    return cleaned[:120]


def write_backup(hpa: Mapping[str, Any], *, context: str | None, now: datetime | None = None) -> Path:
    """Write one HPA backup (0600, exclusive create, no symlink followed) and return its path.

    When a backup of this HPA with the same content exists already (a re-run), its path is returned.

    Raises:
        GpuscaleError: the file cannot be written (the caller writes nothing to the cluster then).
    """
    meta = hpa.get("metadata") or {}
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    directory = backup_root() / _part(context, "default-context") / _part(meta.get("namespace"), "default")
    data = (json.dumps(hpa, indent=2, sort_keys=True) + "\n").encode()
    try:
        root = backup_root()
        root.parent.parent.mkdir(parents=True, exist_ok=True)
        for level in (root.parent, root, directory.parent, directory):
            level.mkdir(mode=0o700, exist_ok=True)
        same = _same_backup(directory, _part(meta.get("name"), "hpa"), data)
        if same is not None:
            return same
        for attempt in range(1, 100):
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = directory / f"{_part(meta.get('name'), 'hpa')}-{stamp}{suffix}.json"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            return path
        raise FileExistsError(f"{directory}: 99 backups of {meta.get('name')} in the same second")
    except OSError as exc:
        raise GpuscaleError(
            f"cannot write the backup of HPA {meta.get('namespace')}/{meta.get('name')}",
            f"{exc.strerror or exc} ({directory})",
            "nothing was written to the cluster; free the disk or set XDG_STATE_HOME to a writable directory",
        ) from None


def _same_backup(directory: Path, name: str, data: bytes) -> Path | None:
    """An existing regular backup of this HPA with exactly these bytes (a re-run writes no new file)."""
    for path in sorted(directory.glob(f"{name}-*.json"), reverse=True):
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size != len(data):
                continue
            if path.read_bytes() == data:
                return path
        except OSError:
            continue
    return None


def read_backup(path: str) -> dict[str, Any]:
    """Read a backup file written by `write_backup` (or any HPA as JSON or YAML); the rollback validates it.

    Raises:
        InputError: the file is missing, too large, or not one JSON/YAML object.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BACKUP_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"cannot read backup {path}", exc.strerror or str(exc), "check the --from-backup path"
        ) from None
    if len(data) > MAX_BACKUP_BYTES:
        raise InputError(
            f"cannot read backup {path}",
            f"larger than {MAX_BACKUP_BYTES // (1024 * 1024)} MiB (an HPA backup is a few KiB)",
            "pass the file --apply wrote",
        )
    from kubectl_gpuscale.manifests import parse_text

    objects = parse_text(data.decode("utf-8", "replace"), path)
    if len(objects) != 1:
        raise InputError(
            f"cannot read backup {path}",
            f"it holds {len(objects)} objects, not one HPA",
            "pass the file --apply wrote",
        )
    return dict(objects[0].obj)
