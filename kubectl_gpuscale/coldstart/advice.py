"""What to do about a slow start: recommendations ranked by estimated saving, with this pod's numbers."""

from __future__ import annotations

from collections.abc import Callable

from kubectl_gpuscale.coldstart.model import Advice, Phase, Timeline

NVME_GBPS = 3.0  # local NVMe sequential read, GB/s (guide: 3-4 GB/s)
MIN_SAVING_SECONDS = 2.0


def _s(x: float) -> str:
    return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def _scheduling(p: Phase) -> Advice | None:
    if p.seconds < 30:
        return None
    why = f"the pod waited {_s(p.seconds)} for a node"
    if p.info.get("scaleUp"):
        why += " while the cluster autoscaler added one"
    return Advice(
        p.name,
        p.seconds * 0.9,
        "keep warm GPU capacity: a low-priority placeholder (balloon) "
        "Deployment on GPU nodes, or a node pool minimum above zero",
        why,
    )


def _image_pull(p: Phase) -> Advice | None:
    d, secs = p.info, p.seconds
    if d.get("cached") or secs < MIN_SAVING_SECONDS:
        return None
    why = f"image pull took {_s(secs)}"
    if d.get("gb"):
        why += f" for {d['gb']} GB"
        if d.get("gbPerSecond"):
            why += f" at {d['gbPerSecond']} GB/s"
    return Advice(
        p.name,
        secs,
        "pre-pull the image on GPU nodes: `kubectl gpuscale install prepull` "
        "(a DaemonSet), or a node image with it baked in",
        why,
    )


def _weight_download(p: Phase) -> Advice | None:
    if p.seconds < MIN_SAVING_SECONDS or "hit" in str(p.info.get("cache", "")):
        return None
    return Advice(
        p.name,
        p.seconds,
        "keep weights on the node: local NVMe / hostPath or a PVC cache mounted "
        "at HF_HOME (or --download-dir), or stream them (--load-format runai_streamer)",
        f"every start downloaded weights for {_s(p.seconds)}",
    )


def _weight_load(p: Phase) -> Advice | None:
    secs = p.seconds
    if secs < MIN_SAVING_SECONDS:
        return None
    gb = p.info.get("gb")
    if gb:
        target = gb / NVME_GBPS
        saving = max(0.0, secs - target)
        why = (
            f"{gb} GB loaded in {_s(secs)} ({gb / secs:.2f} GB/s); local NVMe at ~{NVME_GBPS:g} GB/s "
            f"would take ~{_s(target)}"
        )
    else:
        saving = secs * 0.5
        why = f"weight load took {_s(secs)}"
    if saving < MIN_SAVING_SECONDS:
        return None
    return Advice(
        p.name,
        saving,
        "put weights on local NVMe / hostPath instead of network storage; "
        "FP8 weights halve the bytes; --load-format runai_streamer overlaps read and copy",
        why,
    )


def _torch_compile(p: Phase) -> Advice | None:
    d, secs = p.info, p.seconds
    if secs < MIN_SAVING_SECONDS:
        return None
    if d.get("cache") == "miss":
        saving = secs - float(d.get("dynamoSeconds", 0.0))
        return Advice(
            p.name,
            saving,
            "persist the torch.compile cache: mount a PVC at VLLM_CACHE_ROOT "
            "(torch_compile_cache/ survives restarts when vLLM version, flags and model stay "
            "the same)",
            f"torch.compile missed its cache and took {_s(secs)}",
        )
    return Advice(
        p.name,
        secs,
        "--enforce-eager skips torch.compile and CUDA graphs (faster start, "
        "slower decode); or checkpoint/restore the warmed container",
        f"torch.compile took {_s(secs)} even with cache {d.get('cache', 'unknown')}",
    )


def _cuda_graphs(p: Phase) -> Advice | None:
    if p.seconds < MIN_SAVING_SECONDS:
        return None
    return Advice(
        p.name,
        p.seconds * 0.5,
        "capture fewer sizes (lower --max-num-seqs or "
        "compilation-config cudagraph_capture_sizes), or checkpoint/restore "
        "(`kubectl gpuscale checkpoint`); CUDA graphs are re-captured on every start - "
        "there is no CUDA graph cache directory to persist",
        f"CUDA graph capture took {_s(p.seconds)}",
    )


def _readiness_lag(p: Phase) -> Advice | None:
    if p.seconds < 5:
        return None
    why = f"Ready came {_s(p.seconds)} after the server listened"
    if p.info.get("probeFailures"):
        why += f" ({p.info['probeFailures']} probe failures)"
    return Advice(
        p.name,
        p.seconds - 2.0,
        "tune the probes: a startupProbe on /health with periodSeconds 2-5 "
        "and a high failureThreshold instead of a long initialDelaySeconds",
        why,
    )


_BY_PHASE: dict[str, Callable[[Phase], Advice | None]] = {
    "scheduling": _scheduling,
    "image_pull": _image_pull,
    "weight_download": _weight_download,
    "weight_load": _weight_load,
    "torch_compile": _torch_compile,
    "cuda_graphs": _cuda_graphs,
    "readiness_lag": _readiness_lag,
}
_ENGINE_PHASES = (
    "engine_init",
    "weight_download",
    "weight_load",
    "torch_compile",
    "kv_cache",
    "cuda_graphs",
    "server_start",
)


def advise(t: Timeline) -> list[Advice]:
    """Recommendations for this timeline, biggest estimated saving first."""
    out = [a for a in (_BY_PHASE[p.name](p) for p in t.phases if p.name in _BY_PHASE) if a is not None]
    engine_total = sum(p.seconds for p in t.phases if p.name in _ENGINE_PHASES)
    if engine_total >= 60:
        out.append(
            Advice(
                "all",
                engine_total * 0.8,
                "skip the engine start altogether: vLLM sleep mode "
                "(--enable-sleep-mode) for idle replicas, or CRIU checkpoint/restore of a warm container "
                "(`kubectl gpuscale checkpoint`)",
                f"the engine itself needed {_s(engine_total)}",
            )
        )
    out.sort(key=lambda a: -a.saving_seconds)
    return out
