"""The engine rows of docs/compatibility.md: what gpuscale reads from each vLLM version (the facts
themselves live in `kubectl_gpuscale.engines.versions`, the one place for engine version facts)."""

from __future__ import annotations

from typing import Any

from kubectl_gpuscale.engines.gpus import GpuInfo
from kubectl_gpuscale.engines.versions import (
    sglang_max_running_requests,
    trtllm_max_batch_size,
    vllm_kv_cache_names,
    vllm_max_num_seqs,
)

VLLM_VERSIONS = ("0.7.3", "0.8.0", "0.8.5", "0.9.0", "0.9.2", "0.10.2", "0.11.0", "0.12.0")
GPUS = (
    GpuInfo("nvidia-l4", 24, "table"),
    GpuInfo("nvidia-a100-sxm4-80gb", 80, "table"),
    GpuInfo("nvidia-h100-80gb-hbm3", 80, "table"),
)


def compatibility_section() -> Any:
    """vLLM 0.7-0.12 (and SGLang, trtllm-serve): the concurrency behind thresholds and Knative targets,
    and the KV-cache gauge queried (a `facts.matrix.Section`)."""
    from kubectl_gpuscale.facts.matrix import Section

    rows = [
        [
            v,
            *[str(vllm_max_num_seqs(v, g).value) for g in GPUS],
            ", ".join(f"`{n}`" for n in vllm_kv_cache_names(v)),
        ]
        for v in VLLM_VERSIONS
    ]
    return Section(
        40,
        "Inference engines",
        "The engine's default concurrency for the GPU the workload pins sets the queue "
        "threshold (`ceil(concurrency / 20)`) and the Knative target; the engine version comes from the image "
        f"tag. SGLang: {sglang_max_running_requests().value} ({sglang_max_running_requests().why}). "
        f"trtllm-serve: {trtllm_max_batch_size().value} ({trtllm_max_batch_size().why}).",
        ["vLLM", *[f"--max-num-seqs default on {g.product}" for g in GPUS], "KV-cache gauge queried"],
        rows,
        [
            "vllm `vllm/engine/arg_utils.py` `get_batch_defaults` (#17885, 0.9.0; #17073, 0.8.5); "
            "`vllm/v1/metrics/loggers.py` (kv_cache_usage_perc from 0.9.2, gpu_cache_usage_perc hidden in 0.11, "
            "removed in 0.12, #29330)."
        ],
    )
