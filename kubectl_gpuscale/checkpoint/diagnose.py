"""Explanations for what the kubelet checkpoint call answers, and the RBAC objects that fix the 403.

Pure: strings in, strings and plain dicts out.
"""

from __future__ import annotations

import re
from typing import Any

from kubectl_gpuscale.checkpoint import facts
from kubectl_gpuscale.names import MANAGED_LABELS

# two searches, not one `user=... .* subresource` pattern: that backtracks in the cube of a long body's length
_KUBELET_USER = re.compile(r"user=([^,()\s]+)")
_KUBELET_SUBRESOURCES = "subresource(s)=["


def kubelet_forbidden_user(message: str) -> str | None:
    """The API server's kubelet-client identity named in a kubelet 403, or None when it is not one.

    The kubelet answers ``Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes,
    subresource(s)=[checkpoint])`` when that identity lacks ``create nodes/checkpoint``.
    """
    text = message or ""
    user = _KUBELET_USER.search(text)
    if user and "checkpoint" in _subresources(text, user.end()):
        return user[1]
    if facts.KUBEADM_KUBELET_CLIENT in text:
        return facts.KUBEADM_KUBELET_CLIENT
    return None


def _subresources(text: str, pos: int) -> str:
    """The list in the first ``subresource(s)=[...]`` after `pos` ("" when none), found with two string
    searches: a regex retrying at every later unclosed ``subresource(s)=[`` reads a forged body quadratically."""
    start = text.find(_KUBELET_SUBRESOURCES, pos)
    if start < 0:
        return ""
    start += len(_KUBELET_SUBRESOURCES)
    end = text.find("]", start)
    return text[start:end] if end >= 0 else ""


def rbac_fix(user: str = facts.KUBEADM_KUBELET_CLIENT) -> list[dict[str, Any]]:
    """The ClusterRole granting ``create nodes/checkpoint`` and its binding to the API server's kubelet client."""
    labels = dict(MANAGED_LABELS)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": facts.RBAC_NAME, "labels": dict(labels)},
        "rules": [{"apiGroups": [""], "resources": ["nodes/checkpoint"], "verbs": ["create"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": facts.RBAC_NAME, "labels": dict(labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": facts.RBAC_NAME},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    return [role, binding]


def explain_404(message: str, container: str) -> tuple[str, str]:
    """(why, fix) for a 404 from the checkpoint endpoint."""
    text = (message or "").strip()
    if "does not exist" in text or ("not found" in text.lower() and ("pod" in text or "container" in text)):
        return (
            f"the kubelet does not know the target: {text[:200]}",
            f"check the pod is running on that node and has container {container!r}",
        )
    if "timeout" in text:
        return (f"the kubelet rejected the timeout: {text[:200]}", "pass --timeout as whole seconds")
    return (
        "the kubelet has no checkpoint endpoint: the ContainerCheckpoint feature gate is off "
        f"(or the target is unknown){': ' + text[:160] if text else ''}",
        "enable ContainerCheckpoint on the kubelet (default on since 1.30) and check the pod/container names",
    )


_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("unimplemented", "not implemented", "method checkpointcontainer not"),
        "the container runtime does not implement checkpointing (containerd 1.7, or CRI-O with CRIU support off): "
        "use CRI-O >= 1.30 or containerd >= 2.0",
    ),
    (
        ("unreachable sharing", "enable-external-masters", "external-masters"),
        "GPU mounts (/proc/driver/nvidia) need CRIU's external mount handling: add 'enable-external-masters' "
        "(and 'link-remap') to /etc/criu/runc.conf on the node",
    ),
    (
        ("cuda-checkpoint", "cuda_plugin", "cuda plugin", "cuda"),
        "CUDA state: install NVIDIA cuda-checkpoint in the runtime's PATH, CRIU >= 4.0 with cuda_plugin.so, "
        f"driver >= {facts.MIN_NVIDIA_DRIVER}; UVM, MIG and MPS are not supported",
    ),
    (
        ("/dev/shm", "link_remap", "link-remap", "ghost"),
        "shared memory files: mount an emptyDir (medium: Memory) at /dev/shm and add 'link-remap' / "
        "'ghost-limit' to /etc/criu/runc.conf",
    ),
    (
        ("criu: not found", "criu not found", "executable file not found", "no such file or directory: criu"),
        f"CRIU is missing on the node: install CRIU >= {facts.MIN_CRIU}",
    ),
    (
        ("timed out", "timeout", "deadline exceeded", "freez"),
        "the dump did not finish in time: raise --timeout (GPU memory goes through host RAM), and CRIU's freeze "
        "timeout if PAUSE_DEVICES aborts on a busy GPU",
    ),
    (
        ("nccl", "ipc"),
        "multi-GPU or IPC memory: cuda-checkpoint does not support CUDA IPC before driver 610 --launch-job; "
        "NCCL needs NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 NCCL_NVLS_ENABLE=0",
    ),
    (
        ("tcp", "established"),
        "open TCP connections: add 'tcp-established' to /etc/criu/runc.conf or drain traffic first",
    ),
)


def criu_hints(message: str) -> list[str]:
    """What to try for a 500 from the checkpoint endpoint (the runtime's / CRIU's error text)."""
    text = (message or "").lower()
    hints = [hint for needles, hint in _HINTS if any(n in text for n in needles)]
    if not hints:
        hints.append(
            "read the runtime's dump.log on the node (CRIU log under the container's work dir) "
            "and the CRI-O / containerd journal"
        )
    return hints
