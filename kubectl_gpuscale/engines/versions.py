"""Engine facts that change with the engine's version (read from the image tag) and the GPU.

One place for: the engine version an image tag names, the engine's default concurrency on a GPU
(vLLM `--max-num-seqs`, SGLang `max_running_requests`, trtllm-serve `--max_batch_size`) with the
reason for the figure, and which KV-cache metric name a vLLM version exports. Sources are cited
on each function; reference/engines.md has the metric history. Pure module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubectl_gpuscale.engines.gpus import GpuInfo

_TAG_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")

VLLM_LARGE_GPU_GIB = 70  # vllm/engine/arg_utils.py get_batch_defaults: device_memory >= 70 * GiB_bytes
VLLM_SEQS_LARGE, VLLM_SEQS_SMALL = 1024, 256
SGLANG_RUNNING_FLOOR = (
    2048  # sglang model_runner: clamp(max_total_num_tokens / context_len * 512, 2048, 4096)
)
TRTLLM_MAX_BATCH_SIZE = (
    2048  # tensorrt_llm BuildConfig.max_batch_size, trtllm-serve's --max_batch_size default
)


def image_version(image: str | None) -> str | None:
    """The version an image tag names (``vllm/vllm-openai:v0.8.5`` -> ``0.8.5``), None for ``latest``,
    ``nightly``, a digest or no tag.

    >>> image_version("registry:5000/vllm/vllm-openai:v0.10.1.1-cu128")
    '0.10.1'
    """
    if not image or "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    m = _TAG_VERSION.match(last.split(":", 1)[1])
    if m is None:
        return None
    return ".".join(g for g in m.groups() if g is not None)


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """``"0.9.2"`` -> ``(0, 9, 2)``; a missing patch is 0; None when unknown."""
    if not version:
        return None
    m = _TAG_VERSION.match(version)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class Concurrency:
    """An engine's max concurrent requests per replica, and why this figure."""

    value: int
    why: str


def vllm_max_num_seqs(version: str | None, gpu: GpuInfo | None) -> Concurrency:
    """vLLM's default ``--max-num-seqs`` for the OpenAI API server on `gpu` at `version`.

    Upstream history (vllm/engine/arg_utils.py):
    - <= 0.7.x: 256 (the V0 engine default; V1 was opt-in);
    - 0.8.0-0.8.4 (`_set_default_args_v1`, V1 by default): 1024 on H100/H200 by device name, else 256;
    - 0.8.5 (#17073, 2025-04-23): 1024 when device memory >= 70 GiB, else 256;
    - >= 0.9.0 (#17885, 2025-05-09, `get_batch_defaults`): 1024 when device memory >= 70 GiB and the
      device is not an A100 (larger batches cost A100 throughput), else 256.
    An unknown version is read as current; an unknown GPU as < 70 GiB (the smaller figure: thresholds
    then err towards scaling up early).
    """
    v = version_tuple(version)
    at = f"vLLM {version}" if version else "vLLM (version unknown: read as current)"
    if v is not None and v < (0, 8, 0):
        return Concurrency(VLLM_SEQS_SMALL, f"{at} default --max-num-seqs (256 on every GPU before 0.8)")
    if gpu is None:
        return Concurrency(
            VLLM_SEQS_SMALL,
            f"{at} default --max-num-seqs on a GPU the workload does not pin "
            f"(assumed < {VLLM_LARGE_GPU_GIB} GiB; 1024 on larger GPUs): "
            f"pin --max-num-seqs or the GPU product",
        )
    name, gib = gpu.product.lower(), gpu.memory_gib
    if v is not None and v < (0, 8, 5):
        large = "h100" in name or "h200" in name
        rule = "1024 on H100/H200 by device name before 0.8.5, else 256"
    elif v is not None and v < (0, 9, 0):
        large = gib is not None and gib >= VLLM_LARGE_GPU_GIB
        rule = f"1024 when the GPU has >= {VLLM_LARGE_GPU_GIB} GiB in 0.8.5, else 256"
    else:
        large = gib is not None and gib >= VLLM_LARGE_GPU_GIB and "a100" not in name
        rule = f"1024 on GPUs with >= {VLLM_LARGE_GPU_GIB} GiB that are not A100, else 256"
    value = VLLM_SEQS_LARGE if large else VLLM_SEQS_SMALL
    return Concurrency(value, f"{at} default --max-num-seqs on {gpu.text} from {gpu.source} ({rule})")


def sglang_max_running_requests() -> Concurrency:
    """SGLang's max_running_requests when ``--max-running-requests`` is not set.

    sglang srt/model_executor/model_runner.py: the request pool holds
    ``clamp(max_total_num_tokens / context_len * 512, 2048, 4096)`` requests, and the limit is
    ``min(max_total_num_tokens // 2, that pool)``: derived from the KV pool the GPU leaves, never a
    fixed 256. The pool is only known at run time (the startup log's ``max_running_requests=``), so the
    floor, 2048, is the figure: every KV pool of >= 4096 tokens gives at least that.
    """
    return Concurrency(
        SGLANG_RUNNING_FLOOR,
        "SGLang derives max_running_requests from its KV pool: min(max_total_num_tokens // 2, "
        "clamp(max_total_num_tokens / context_len x 512, 2048, 4096)) >= 2048; the startup log "
        "prints the real figure (max_running_requests=): pin --max-running-requests",
    )


def trtllm_max_batch_size() -> Concurrency:
    """trtllm-serve's ``--max_batch_size`` default (tensorrt_llm/commands/serve.py: BuildConfig.max_batch_size)."""
    return Concurrency(
        TRTLLM_MAX_BATCH_SIZE, "trtllm-serve default --max_batch_size (BuildConfig.max_batch_size)"
    )


def vllm_kv_cache_names(version: str | None) -> tuple[str, ...]:
    """The vLLM KV-cache usage gauge(s) a version exports by default, newest first.

    vllm/v1/metrics/loggers.py: ``vllm:gpu_cache_usage_perc`` until 0.9.1; 0.9.2 adds
    ``vllm:kv_cache_usage_perc`` and deprecates the old name (both exported through 0.10.x); 0.11 hides
    the old one behind ``--show-hidden-metrics-for-version=0.10``; 0.12 removes it (#29330). Unknown
    version: both.
    """
    v = version_tuple(version)
    if v is None:
        return ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    if v < (0, 9, 2):
        return ("vllm:gpu_cache_usage_perc",)
    return ("vllm:kv_cache_usage_perc",)
