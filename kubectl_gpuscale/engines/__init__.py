"""Inference-engine facts, in one place: the catalogue of engines (`engines.catalogue`), detection
of the engine in a pod template (`engines.detection`), version- and GPU-dependent facts
(`engines.versions`) and GPU identification (`engines.gpus`). Log-line patterns live in
`coldstart/engines/`, not here.

This face only re-exports. Pure: plain data in, frozen dataclasses out. Sources: reference/engines.md.
"""

from __future__ import annotations

from kubectl_gpuscale.engines import gpus, versions
from kubectl_gpuscale.engines.catalogue import (
    DCGM_GPU_UTIL,
    DCGM_POD_LABELS,
    ENGINES,
    NIM,
    OLLAMA,
    SGLANG,
    TGI,
    TRITON,
    TRITON_TRTLLM,
    TRTLLM,
    VLLM,
    Engine,
    Metric,
    engine_for_metric,
)
from kubectl_gpuscale.engines.detection import (
    ACCELERATOR_PATTERNS,
    Detection,
    accelerators,
    detect,
    flag_value,
    pod_template,
)

__all__ = [
    "ACCELERATOR_PATTERNS",
    "DCGM_GPU_UTIL",
    "DCGM_POD_LABELS",
    "ENGINES",
    "NIM",
    "OLLAMA",
    "SGLANG",
    "TGI",
    "TRITON",
    "TRITON_TRTLLM",
    "TRTLLM",
    "VLLM",
    "Detection",
    "Engine",
    "Metric",
    "accelerators",
    "detect",
    "engine_for_metric",
    "flag_value",
    "gpus",
    "pod_template",
    "versions",
]
