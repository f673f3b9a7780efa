"""The short-lived, read-only helper pod that lists and streams archives from a node.

Transport (see docs/checkpoint.md): `list` runs a fixed listing script and reads the pod's
log (names and sizes only, never archive bytes); `fetch` streams the archive over the pod's
``exec`` channel (binary websocket frames, what ``kubectl cp`` does): nothing is written to
container logs (log collectors would ship the process memory), the pod exposes no port, and
the node computes a sha256 that the client checks against what it received.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.checkpoint import facts
from kubectl_gpuscale.checkpoint.archive import ArchiveName, parse_archive_name
from kubectl_gpuscale.names import CHECKPOINT_HELPER_LABEL, CHECKPOINT_PURPOSE_ANNOTATION, MANAGED_LABELS

# A fixed script (no input is interpolated): one line per archive, then an end marker.
LIST_SCRIPT = (
    'for f in "$0"/checkpoint-*.tar; do [ -f "$f" ] && stat -c "%s %Y %n" "$f"; done; echo GPUSCALE-END'
)
END_MARKER = "GPUSCALE-END"
# coreutils/busybox `sha256sum FILE`: 64 lowercase hex digits, two spaces (or " *" in binary mode), the name.
_SHA256SUM_LINE = re.compile(r"\A([0-9a-f]{64}) [ *](.+)\n?\Z")


def helper_pod(
    node: str,
    namespace: str,
    *,
    purpose: str,
    command: list[str] | None = None,
    deadline: int = facts.HELPER_DEADLINE_SECONDS,
) -> dict[str, Any]:
    """A pod pinned to `node` with the checkpoint directory mounted read-only and nothing else.

    It runs as root (the archives are root 0600 in a root 0700 directory) but drops every
    capability, cannot escalate, has a read-only root filesystem, no service account token,
    no host namespaces, and deletes itself after `deadline` seconds at the latest.
    """
    suffix = secrets.token_hex(3)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"gpuscale-ckpt-{purpose}-{suffix}",
            "namespace": namespace,
            "labels": {**MANAGED_LABELS, CHECKPOINT_HELPER_LABEL: purpose},
            "annotations": {
                CHECKPOINT_PURPOSE_ANNOTATION: f"read-only access to {facts.CHECKPOINT_DIR} on {node}"
            },
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "securityContext": {
                "runAsUser": 0,
                "runAsGroup": 0,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "helper",
                    "image": facts.HELPER_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command or ["sleep", str(deadline)],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "1", "memory": "64Mi"},
                    },
                    "securityContext": {
                        "privileged": False,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [
                        {"name": "checkpoints", "mountPath": facts.HELPER_MOUNT, "readOnly": True}
                    ],
                }
            ],
            "volumes": [
                {"name": "checkpoints", "hostPath": {"path": facts.CHECKPOINT_DIR, "type": "Directory"}}
            ],
        },
    }


def list_pod(node: str, namespace: str) -> dict[str, Any]:
    """The helper pod that prints the archive listing and exits."""
    return helper_pod(
        node, namespace, purpose="list", command=["sh", "-c", LIST_SCRIPT, facts.HELPER_MOUNT], deadline=300
    )


@dataclass(frozen=True)
class ListedArchive:
    """One archive found on a node."""

    node: str
    file: str
    size: int
    mtime: int
    parsed: ArchiveName | None

    @property
    def path(self) -> str:
        """The path on the node."""
        return f"{facts.CHECKPOINT_DIR}/{self.file}"


def parse_listing(text: str, node: str, namespaces: set[str] | None = None) -> list[ListedArchive]:
    """Parse the listing script's output; raises ValueError when it is cut short (no end marker)."""
    lines = text.splitlines()
    if END_MARKER not in (line.strip() for line in lines):
        raise ValueError("the listing is incomplete (no end marker)")
    found: list[ListedArchive] = []
    for line in lines:
        parts = line.strip().split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        file = parts[2].rsplit("/", 1)[-1]
        found.append(
            ListedArchive(node, file, int(parts[0]), int(parts[1]), parse_archive_name(file, namespaces))
        )
    return sorted(found, key=lambda a: (a.mtime, a.file), reverse=True)


def parse_sha256sum(text: str, path: str) -> str:
    """The digest in ``sha256sum PATH``'s answer; ValueError unless it is exactly one line for `path`."""
    match = _SHA256SUM_LINE.match(text)
    if not match:
        shown = text.strip()[:80]
        raise ValueError(
            f"its answer {shown!r} is not '<64 hex digits>  {path}'" if shown else "its answer is empty"
        )
    if match.group(2) != path:
        raise ValueError(f"its answer names {match.group(2)[:80]!r}, not {path}")
    return match.group(1)


@dataclass(frozen=True)
class FetchLimits:
    """How long each step of a fetch may take, from the archive's size (seconds)."""

    size: int
    checksum: int
    transfer: int
    stall: int
    deadline: int
    capped: bool

    def describe(self) -> str:
        """One line for the plan."""
        mib = 1024 * 1024
        text = (
            f"time limits: checksum on the node {self.checksum}s "
            f"(at >= {facts.FETCH_CHECKSUM_BYTES_PER_SECOND // mib} MiB/s), "
            f"transfer {self.transfer}s ({self._transfer_basis()}, failing after {self.stall}s without data); "
            f"helper pod deadline {self.deadline}s"
        )
        return text + (" (capped)" if self.capped else "")

    def _transfer_basis(self) -> str:
        default = max(
            facts.FETCH_MIN_STEP_SECONDS, math.ceil(self.size / facts.FETCH_TRANSFER_BYTES_PER_SECOND)
        )
        if self.transfer != default:
            return "--timeout"
        return f"at >= {facts.FETCH_TRANSFER_BYTES_PER_SECOND // (1024 * 1024)} MiB/s"


def fetch_limits(size: int, elapsed: float = 0.0, *, transfer: int | None = None) -> FetchLimits:
    """Time limits for fetching `size` bytes, `elapsed` seconds after the helper pod was created.

    Each step gets at least `facts.FETCH_MIN_STEP_SECONDS` (`transfer` overrides the transfer's);
    the deadline covers both steps plus a margin and never exceeds the helper pod's initial
    `facts.FETCH_MAX_DEADLINE_SECONDS`.
    """
    checksum = max(facts.FETCH_MIN_STEP_SECONDS, math.ceil(size / facts.FETCH_CHECKSUM_BYTES_PER_SECOND))
    if transfer is None:
        transfer = max(facts.FETCH_MIN_STEP_SECONDS, math.ceil(size / facts.FETCH_TRANSFER_BYTES_PER_SECOND))
    wanted = math.ceil(elapsed) + checksum + transfer + facts.FETCH_DEADLINE_MARGIN_SECONDS
    deadline = min(wanted, facts.FETCH_MAX_DEADLINE_SECONDS)
    return FetchLimits(
        size,
        checksum,
        transfer,
        facts.FETCH_STALL_SECONDS,
        deadline,
        capped=wanted > facts.FETCH_MAX_DEADLINE_SECONDS,
    )
