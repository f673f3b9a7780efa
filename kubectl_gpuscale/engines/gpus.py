"""Which GPU a pod template asks for, and how much memory it has: read from what the workload
itself pins (a MIG resource name, a nodeSelector or required node affinity on the GPU product,
GPU memory, cloud accelerator or instance-family label).

Engine defaults depend on it (vLLM's `--max-num-seqs`: 1024 on GPUs with >= 70 GiB that are not
A100, 256 elsewhere), so a workload that pins nothing gets ``None`` and the caller says it assumed.
Pure module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Device memory as torch reports it (total_memory / 2**30), by product-name fragment, most specific first.
_MEMORY_GIB: tuple[tuple[str, float], ...] = (
    ("gb300", 279.0),
    ("gb200", 186.0),
    ("b300", 268.0),
    ("b200", 178.0),
    ("b100", 178.0),
    ("h200", 139.8),
    ("h100-nvl", 93.1),
    ("h100", 79.2),
    ("h800", 79.2),
    ("h20", 95.0),
    ("gh200", 94.5),
    ("a100-80", 79.2),
    ("a100-sxm4-80", 79.2),
    ("a100-pcie-80", 79.2),
    ("a100", 39.4),
    ("a800", 79.2),
    ("l40s", 44.4),
    ("l40", 44.4),
    ("l20", 44.4),
    ("l4", 22.0),
    ("a10g", 22.0),
    ("a10", 22.0),
    ("a6000", 47.5),
    ("a40", 44.4),
    ("a30", 23.5),
    ("a16", 14.6),
    ("a2", 14.6),
    ("rtx-4090", 23.6),
    ("rtx-3090", 23.7),
    ("t4", 14.6),
    ("v100-32", 31.7),
    ("v100", 15.8),
    ("p100", 15.9),
    ("mi355x", 288.0),
    ("mi350x", 288.0),
    ("mi325x", 256.0),
    ("mi300x", 192.0),
    ("mi300a", 128.0),
    ("mi250x", 64.0),
    ("mi250", 64.0),
    ("mi210", 64.0),
    ("gaudi3", 128.0),
    ("gaudi2", 96.0),
)

# AWS instance families (EKS / Karpenter labels, instance types) -> the GPU they carry.
_AWS_FAMILIES: dict[str, str] = {
    "p5en": "h200",
    "p5e": "h200",
    "p5": "h100",
    "p4de": "a100-80gb",
    "p4d": "a100-40gb",
    "p6-b200": "b200",
    "g6e": "l40s",
    "g6": "l4",
    "g5": "a10g",
    "g4dn": "t4",
    "p3dn": "v100-32gb",
    "p3": "v100",
}
# GCP machine types (node.kubernetes.io/instance-type) -> the GPU they carry.
_GCP_MACHINES: dict[str, str] = {
    "a4-": "b200",
    "a3-ultragpu": "h200",
    "a3-": "h100",
    "a2-ultragpu": "a100-80gb",
    "a2-": "a100-40gb",
    "g2-": "l4",
}

_PRODUCT_LABELS = (
    "nvidia.com/gpu.product",  # NVIDIA GPU feature discovery, e.g. NVIDIA-H100-80GB-HBM3
    "cloud.google.com/gke-accelerator",  # GKE, e.g. nvidia-h100-80gb, nvidia-l4
    "karpenter.k8s.aws/instance-gpu-name",  # Karpenter on AWS, e.g. h100, a10g
    "machine.cluster.vke.volcengine.com/gpu-name",  # Volcengine VKE
    "amd.com/gpu.product-name",  # AMD GPU node labeller
    "beta.amd.com/gpu.product-name",
)
_MEMORY_LABELS = ("nvidia.com/gpu.memory",)  # GFD: MiB
_FAMILY_LABELS = ("eks.amazonaws.com/instance-family", "karpenter.k8s.aws/instance-family")
_INSTANCE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
_MIG = re.compile(r"^nvidia\.com/mig-(\d+)g\.(\d+)gb$")


@dataclass(frozen=True)
class GpuInfo:
    """A GPU a workload pins: its product text (lower case), memory in GiB when known, and where it was read."""

    product: str
    memory_gib: float | None
    source: str

    @property
    def text(self) -> str:
        """E.g. ``nvidia-h100-80gb (79 GiB)``."""
        return self.product + (f" ({self.memory_gib:.0f} GiB)" if self.memory_gib is not None else "")


def memory_gib(product: str) -> float | None:
    """The device memory (GiB) of a GPU product name in any vendor/cloud spelling, None when unknown."""
    name = product.lower().replace("_", "-").replace(" ", "-")
    sized = re.search(r"(\d{2,3})\s*gb", name)
    for fragment, gib in _MEMORY_GIB:
        if fragment in name:
            if fragment in ("a100", "v100") and sized:
                return round(int(sized.group(1)) * 1e9 / 2**30 * 0.99, 1)
            return gib
    return None


def _selected_values(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, value) pairs the pod requires of its node: nodeSelector and required node affinity (In)."""
    spec = template.get("spec") or {}
    if not isinstance(spec, Mapping):
        return
    for key, value in (spec.get("nodeSelector") or {}).items():
        yield str(key), str(value)
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchExpressions") or []:
            if (expr or {}).get("operator") == "In":
                for value in expr.get("values") or []:
                    yield str(expr.get("key")), str(value)


def _from_label(key: str, value: str) -> GpuInfo | None:
    where = f"nodeSelector/affinity {key}={value}"
    if key in _PRODUCT_LABELS:
        return GpuInfo(value.lower(), memory_gib(value), where)
    if key in _MEMORY_LABELS and value.isdigit():
        return GpuInfo(f"{int(value)} MiB GPU", int(value) / 1024, where)
    if key in _FAMILY_LABELS or key in _INSTANCE_LABELS:
        family = value.lower().split(".")[0]
        gpu = _AWS_FAMILIES.get(family) or next(
            (g for prefix, g in _GCP_MACHINES.items() if value.lower().startswith(prefix)), None
        )
        if gpu:
            return GpuInfo(gpu, memory_gib(gpu), where + f" (carries {gpu})")
    return None


def requested_gpu(template: Mapping[str, Any], accelerators: Mapping[str, str]) -> GpuInfo | None:
    """The GPU the pod template pins, or None when it leaves the choice to the scheduler.

    A MIG slice resource (``nvidia.com/mig-3g.40gb``) is itself the device the engine sees. When
    several candidates are allowed (affinity ``In`` with several products), the smallest is taken:
    the engine default must hold on every node the pod may land on.
    """
    for name in accelerators:
        mig = _MIG.match(name)
        if mig:
            return GpuInfo(
                f"MIG {mig.group(1)}g.{mig.group(2)}gb slice",
                float(mig.group(2)) * 1e9 / 2**30,
                f"resource {name}",
            )
    found = [g for key, value in _selected_values(template) if (g := _from_label(key, value)) is not None]
    if not found:
        return None
    known = [g for g in found if g.memory_gib is not None]
    if known:
        return min(known, key=lambda g: g.memory_gib or 0.0)
    return found[0]
