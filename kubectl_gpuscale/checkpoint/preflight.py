"""Preflight checks before a checkpoint or a restore: kubelet, runtime, GPU driver, permission.

Pure: takes the Pod and Node objects (plain dicts) and answers findings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.checkpoint import facts
from kubectl_gpuscale.errors import InputError


@dataclass(frozen=True)
class Finding:
    """One preflight result: level ok|warn|error, the check's name, and what it found."""

    level: str
    check: str
    message: str


@dataclass(frozen=True)
class Runtime:
    """A node's container runtime as node status reports it (``containerd://2.1.3``)."""

    name: str
    version: tuple[int, ...]
    raw: str

    @property
    def version_text(self) -> str:
        """The version as dotted text."""
        return ".".join(str(p) for p in self.version)


def parse_version(text: str) -> tuple[int, ...]:
    """``v1.30.2-eks-abc`` -> (1, 30, 2); () when there is no number."""
    match = re.search(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text or "")
    if not match:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


def parse_runtime(raw: str) -> Runtime:
    """Parse ``status.nodeInfo.containerRuntimeVersion``."""
    name, _, version = (raw or "").partition("://")
    return Runtime(name.strip().lower(), parse_version(version), raw or "")


def gpu_count(pod: Mapping[str, Any], container: str | None = None) -> int:
    """GPUs a pod's container (or all containers) asks for (limits, else requests)."""
    total = 0
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        if container and ctr.get("name") != container:
            continue
        resources = ctr.get("resources") or {}
        for key in facts.GPU_RESOURCES:
            value = (resources.get("limits") or {}).get(key) or (resources.get("requests") or {}).get(key)
            if value:
                with contextlib.suppress(ValueError):
                    total += int(str(value))
    return total


def pick_container(pod: Mapping[str, Any], container: str | None) -> str:
    """The container to act on: -c, the default-container annotation, or the only container."""
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = (pod.get("metadata") or {}).get("name", "")
    if container:
        if container not in names:
            raise InputError(
                f"pod {pod_name} has no container {container!r}",
                f"its containers are {', '.join(names) or 'none'}",
                "pick one with -c",
            )
        return container
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container"
    )
    if default in names:
        return str(default)
    if len(names) == 1:
        return str(names[0])
    raise InputError(
        f"pod {pod_name} has {len(names)} containers", f"they are {', '.join(names)}", "pick one with -c"
    )


def driver_major(node: Mapping[str, Any]) -> int | None:
    """The NVIDIA driver major version from GPU feature discovery labels, if labelled."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key in facts.DRIVER_MAJOR_LABELS:
        if key in labels:
            found = parse_version(str(labels[key]))
            if found:
                return found[0]
    return None


def checkpoint_checks(
    pod: Mapping[str, Any], node: Mapping[str, Any], container: str, can_proxy: bool | None
) -> list[Finding]:
    """Everything that decides whether `checkpoint pod` can work, in order."""
    out: list[Finding] = []
    info = (node.get("status") or {}).get("nodeInfo") or {}
    kubelet = str(info.get("kubeletVersion", ""))
    kv = parse_version(kubelet)
    if not kv:
        out.append(Finding("warn", "kubelet", "the node does not report its kubelet version"))
    elif kv[:2] < facts.MIN_KUBELET:
        out.append(
            Finding(
                "error",
                "kubelet",
                f"kubelet {kubelet} < 1.30: the ContainerCheckpoint gate is off by "
                "default (alpha since 1.25); enable it or upgrade",
            )
        )
    else:
        out.append(Finding("ok", "kubelet", f"kubelet {kubelet} (ContainerCheckpoint beta, on by default)"))
    out.append(runtime_checkpoint_finding(parse_runtime(str(info.get("containerRuntimeVersion", "")))))
    gpus = gpu_count(pod, container)
    if gpus:
        major = driver_major(node)
        product = ((node.get("metadata") or {}).get("labels") or {}).get(facts.GPU_PRODUCT_LABEL, "GPU")
        if major is None:
            out.append(
                Finding(
                    "warn",
                    "gpu",
                    f"{gpus} {product}: driver version not labelled; needs >= "
                    f"{facts.MIN_NVIDIA_DRIVER} (>= {facts.RECOMMENDED_NVIDIA_DRIVER} "
                    f"recommended), CRIU >= {facts.MIN_CRIU} with the CUDA plugin and "
                    "cuda-checkpoint on the node",
                )
            )
        elif major < facts.MIN_NVIDIA_DRIVER:
            out.append(
                Finding(
                    "error",
                    "gpu",
                    f"NVIDIA driver {major} < {facts.MIN_NVIDIA_DRIVER}: cuda-checkpoint "
                    "cannot suspend CUDA state",
                )
            )
        else:
            level = "ok" if major >= facts.RECOMMENDED_NVIDIA_DRIVER else "warn"
            out.append(
                Finding(
                    level,
                    "gpu",
                    f"{gpus} {product}, driver {major}; also needs CRIU >= "
                    f"{facts.MIN_CRIU} with the CUDA plugin and cuda-checkpoint on the "
                    "node (not visible from the API)",
                )
            )
    if can_proxy is False:
        out.append(
            Finding(
                "error",
                "rbac",
                "you may not 'create nodes/proxy'; check with: "
                "kubectl auth can-i create nodes --subresource=proxy",
            )
        )
    elif can_proxy:
        out.append(Finding("ok", "rbac", "you may create nodes/proxy"))
    return out


def runtime_checkpoint_finding(rt: Runtime) -> Finding:
    """Whether the runtime implements CRI CheckpointContainer."""
    if rt.name == "cri-o":
        if rt.version[:2] < facts.CRIO_MIN_CHECKPOINT:
            return Finding("error", "runtime", f"CRI-O {rt.version_text} cannot checkpoint (needs >= 1.25)")
        extra = "" if rt.version[:2] >= (1, 30) else " (needs enable_criu_support=true before 1.30)"
        return Finding("ok", "runtime", f"CRI-O {rt.version_text} checkpoints{extra}")
    if rt.name == "containerd":
        if rt.version[:2] < facts.CONTAINERD_MIN_CHECKPOINT:
            return Finding(
                "error",
                "runtime",
                f"containerd {rt.version_text} does not implement CheckpointContainer "
                "(Unimplemented before 2.0)",
            )
        return Finding("ok", "runtime", f"containerd {rt.version_text} checkpoints")
    return Finding(
        "warn", "runtime", f"unknown runtime {rt.raw or '(not reported)'}: checkpoint may be unsupported"
    )


def restore_refusal(rt: Runtime) -> str | None:
    """Why a node's runtime cannot restore from a checkpoint image, or None when it can."""
    if rt.name == "cri-o":
        if rt.version[:2] < facts.CRIO_MIN_RESTORE:
            return f"CRI-O {rt.version_text} cannot restore from a checkpoint image (needs >= 1.26)"
        return None
    if rt.name == "containerd":
        if rt.version[:2] < facts.CONTAINERD_MIN_RESTORE:
            return (
                f"containerd {rt.version_text} cannot restore in Kubernetes (restore through CreateContainer "
                "arrived in 2.1)"
            )
        if rt.version[:2] >= facts.CONTAINERD_RESTORE_REMOVED:
            return (
                f"containerd {rt.version_text} removed restore in CreateContainer (2.4); its replacement is "
                "KEP-5823's RestorePod, not released yet"
            )
        return None
    return f"runtime {rt.raw or '(not reported)'} is not known to restore checkpoint images"


def restore_warnings(rt: Runtime) -> list[str]:
    """Caveats for a runtime that can restore."""
    if rt.name == "containerd" and rt.version[:2] >= facts.CONTAINERD_RESTORE_DEPRECATED:
        return [
            f"containerd {rt.version_text}: restore through CreateContainer is deprecated and removed in 2.4"
        ]
    return []
