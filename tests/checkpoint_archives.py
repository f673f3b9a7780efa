"""Build synthetic checkpoint archives with the real layout (reference/checkpoint.md §3)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

CRIO_ID = "3f9a1c0d5e7b" + "0" * 52


def _add(tar: tarfile.TarFile, name: str, data: bytes, *, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def crio_files(*, pages: int = 3 * 1024 * 1024, gpu: bool = True, cuda: bool = True) -> dict[str, bytes]:
    """The files CRI-O writes for container `vllm` of pod ml/vllm-0."""
    config = {
        "id": CRIO_ID,
        "name": "k8s_vllm_vllm-0_ml_0b1c_0",
        "rootfsImage": "docker.io/vllm/vllm-openai:v0.8.5",
        "rootfsImageRef": "sha256:" + "ab" * 32,
        "rootfsImageName": "docker.io/vllm/vllm-openai:v0.8.5",
        "runtime": "runc",
        "createdTime": "2026-03-13T21:40:01.123456Z",
        "checkpointedTime": "2026-03-13T21:43:06.654321Z",
    }
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "env": ["PATH=/usr/bin", "HF_TOKEN=hf_secret_do_not_print"]
            + (["NVIDIA_VISIBLE_DEVICES=GPU-1234"] if gpu else [])
        },
        "annotations": {
            "io.container.manager": "cri-o",
            "io.kubernetes.cri-o.Metadata": json.dumps({"name": "vllm", "attempt": 0}),
            "io.kubernetes.pod.name": "vllm-0",
            "io.kubernetes.pod.namespace": "ml",
            "io.kubernetes.cri-o.Created": "2026-03-13T21:40:01.123456Z",
            "io.kubernetes.cri-o.IP.0": "10.244.1.7",
        },
        "linux": {
            "devices": [
                {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
                {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255},
            ]
            if gpu
            else []
        },
    }
    log = b"(00.000010) Version: 4.1\n(00.000020) Running on node\n"
    if cuda:
        log += b"(00.001000) cuda_plugin: initialized\n(00.002000) cuda_plugin: checkpointing pid 1\n"
    inventory = b"\x54\x4f\x23\x58" + (b"\x0acuda_plugin" if cuda else b"\x08\x02")
    return {
        "config.dump": json.dumps(config).encode(),
        "spec.dump": json.dumps(spec).encode(),
        "bind.mounts": b"[]",
        "stats-dump": b"\x00" * 64,
        "dump.log": log,
        "checkpoint/inventory.img": inventory,
        "checkpoint/core-1.img": b"\x01" * 2048,
        "checkpoint/mm-1.img": b"\x02" * 1024,
        "checkpoint/pagemap-1.img": b"\x03" * 512,
        "checkpoint/pages-1.img": b"SECRET-PROMPT" + b"\x00" * (pages - 13),
        "checkpoint/pages-2.img": b"\x00" * 4096,
        "rootfs-diff.tar": b"\x00" * 10240,
        "devshm-checkpoint.tar": b"\x00" * 1024,
    }


def containerd_files() -> dict[str, bytes]:
    """The files containerd 2.x writes for container `sglang` of pod llm/sglang-7d9f."""
    config = {
        "id": "c0ffee" * 10 + "abcd",
        "name": "sglang",
        "rootfsImageName": "lmsysorg/sglang:v0.4.6",
        "rootfsImageRef": "sha256:" + "cd" * 32,
        "runtime": "io.containerd.runc.v2",
        "createdTime": "2026-04-01T08:00:00Z",
        "checkpointedTime": "2026-04-01T09:30:00Z",
    }
    spec = {
        "annotations": {
            "io.kubernetes.cri.container-name": "sglang",
            "io.kubernetes.cri.sandbox-name": "sglang-7d9f",
            "io.kubernetes.cri.sandbox-namespace": "llm",
        }
    }
    return {
        "config.dump": json.dumps(config).encode(),
        "spec.dump": json.dumps(spec).encode(),
        "status": b"{}",
        "container.log": b"",
        "checkpoint/inventory.img": b"\x54\x4f\x23\x58\x08\x02",
        "checkpoint/pages-1.img": b"\x00" * 8192,
        "rootfs-diff.tar": b"\x00" * 2048,
    }


def write_archive(path: Path, files: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None) -> Path:
    """Write `files` (plus raw `extra` members) as an uncompressed tar at `path`, mode 0600."""
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            _add(tar, name, data)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    path.chmod(0o600)
    return path
