"""What to do about a slow start: recommendations ranked by estimated saving, with this pod's numbers."""

from __future__ import annotations

from kubectl_gpuscale.coldstart.model import Advice, Timeline

NVME_GBPS = 3.0          # local NVMe sequential read, GB/s (guide: 3-4 GB/s)
MIN_SAVING_SECONDS = 2.0


def _s(x: float) -> str:
    return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def advise(t: Timeline) -> list[Advice]:
    """Recommendations for this timeline, biggest estimated saving first."""
    out: list[Advice] = []
    for p in t.phases:
        d = p.info
        secs = p.seconds
        if p.name == "scheduling" and secs >= 30:
            why = f"the pod waited {_s(secs)} for a node"
            if d.get("scaleUp"):
                why += " while the cluster autoscaler added one"
            out.append(Advice(p.name, secs * 0.9, "keep warm GPU capacity: a low-priority placeholder (balloon) "
                              "Deployment on GPU nodes, or a node pool minimum above zero", why))
        elif p.name == "image_pull" and not d.get("cached") and secs >= MIN_SAVING_SECONDS:
            why = f"image pull took {_s(secs)}"
            if d.get("gb"):
                why += f" for {d['gb']} GB"
                if d.get("gbPerSecond"):
                    why += f" at {d['gbPerSecond']} GB/s"
            out.append(Advice(p.name, secs, "pre-pull the image on GPU nodes: `kubectl gpuscale install prepull` "
                              "(a DaemonSet), or a node image with it baked in", why))
        elif p.name == "weight_download" and secs >= MIN_SAVING_SECONDS and "hit" not in str(d.get("cache", "")):
            out.append(Advice(p.name, secs, "keep weights on the node: local NVMe / hostPath or a PVC cache mounted "
                              "at HF_HOME (or --download-dir), or stream them (--load-format runai_streamer)",
                              f"every start downloaded weights for {_s(secs)}"))
        elif p.name == "weight_load" and secs >= MIN_SAVING_SECONDS:
            gb = d.get("gb")
            if gb:
                target = gb / NVME_GBPS
                saving = max(0.0, secs - target)
                why = f"{gb} GB loaded in {_s(secs)} ({gb / secs:.2f} GB/s); local NVMe at ~{NVME_GBPS:g} GB/s " \
                      f"would take ~{_s(target)}"
            else:
                saving = secs * 0.5
                why = f"weight load took {_s(secs)}"
            if saving >= MIN_SAVING_SECONDS:
                out.append(Advice(p.name, saving, "put weights on local NVMe / hostPath instead of network storage; "
                                  "FP8 weights halve the bytes; --load-format runai_streamer overlaps read and copy",
                                  why))
        elif p.name == "torch_compile" and secs >= MIN_SAVING_SECONDS:
            if d.get("cache") == "miss":
                saving = secs - float(d.get("dynamoSeconds", 0.0))
                out.append(Advice(p.name, saving, "persist the torch.compile cache: mount a PVC at VLLM_CACHE_ROOT "
                                  "(torch_compile_cache/ survives restarts when vLLM version, flags and model stay "
                                  "the same)", f"torch.compile missed its cache and took {_s(secs)}"))
            else:
                out.append(Advice(p.name, secs, "--enforce-eager skips torch.compile and CUDA graphs (faster start, "
                                  "slower decode); or checkpoint/restore the warmed container",
                                  f"torch.compile took {_s(secs)} even with cache {d.get('cache', 'unknown')}"))
        elif p.name == "cuda_graphs" and secs >= MIN_SAVING_SECONDS:
            out.append(Advice(p.name, secs * 0.5, "capture fewer sizes (lower --max-num-seqs or "
                              "compilation-config cudagraph_capture_sizes), or checkpoint/restore "
                              "(`kubectl gpuscale checkpoint`); CUDA graphs are re-captured on every start - "
                              "there is no CUDA graph cache directory to persist",
                              f"CUDA graph capture took {_s(secs)}"))
        elif p.name == "readiness_lag" and secs >= 5:
            saving = secs - 2.0
            why = f"Ready came {_s(secs)} after the server listened"
            if d.get("probeFailures"):
                why += f" ({d['probeFailures']} probe failures)"
            out.append(Advice(p.name, saving, "tune the probes: a startupProbe on /health with periodSeconds 2-5 "
                              "and a high failureThreshold instead of a long initialDelaySeconds", why))
    engine_total = sum(p.seconds for p in t.phases if p.name in (
        "engine_init", "weight_download", "weight_load", "torch_compile", "kv_cache", "cuda_graphs", "server_start"))
    if engine_total >= 60:
        out.append(Advice("all", engine_total * 0.8, "skip the engine start altogether: vLLM sleep mode "
                          "(--enable-sleep-mode) for idle replicas, or CRIU checkpoint/restore of a warm container "
                          "(`kubectl gpuscale checkpoint`)", f"the engine itself needed {_s(engine_total)}"))
    out.sort(key=lambda a: -a.saving_seconds)
    return out
