"""Per-replica capacity of an inference engine, and cold-start profiles.

The capacity model: a replica time-shares its GPU between prefill and decode, so its
sustainable throughput is ``mu = 1 / (prompt/prefill_tps + output/decode_tps)`` requests/s.
Beyond mu requests wait (the engine's ``num_requests_waiting``). Inter-token latency
grows linearly from ``itl_min`` (batch 1) to ``itl_sat`` (saturated batch); TTFT is the
wait plus the prefill time inflated by the prefill server's load, ``1 / (1 - rho_p)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.errors import InputError


@dataclass(frozen=True)
class EngineProfile:
    """Capacity of one replica of a model on a GPU type."""

    name: str
    description: str
    gpus_per_replica: int
    decode_tps: float  # aggregate output tokens/s at saturation
    prefill_tps: float  # prompt tokens/s
    itl_min_s: float  # inter-token latency at concurrency 1
    itl_sat_s: float  # inter-token latency at saturation
    max_num_seqs: int  # vLLM --max-num-seqs
    kv_cache_tokens: float  # tokens of KV cache per replica
    cpu_idle_pct: float = 3.0  # CPU use as % of the pod's CPU request, idle (guide: 5-8 % under load)
    cpu_busy_pct: float = 8.0
    source: str = ""

    def throughput(self, prompt_tokens: float, output_tokens: float) -> float:
        """Sustainable requests/s of one replica for this token mix."""
        return 1.0 / (prompt_tokens / self.prefill_tps + output_tokens / self.decode_tps)

    def prefill_seconds(self, prompt_tokens: float) -> float:
        """Unloaded prefill time of one request."""
        return prompt_tokens / self.prefill_tps


# Sources:
# - NVIDIA NIM LLM benchmarking, "Performance" (docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance):
#   Llama-3.1-8b-instruct NIM 1.8.0: concurrency 1 -> TTFT 10.26 ms, ITL 4.63 ms; concurrency 200 ->
#   ITL 12.65 ms, 13,348 output tokens/s; 250 -> 12,965 tokens/s. Llama-3.3-70b-instruct NIM 1.8.0 on
#   2 x H100 80G fp8 TP2, 5000 input / 500 output tokens: concurrency 1 -> TTFT 407 ms, ITL 18.6 ms;
#   saturation ~920 output tokens/s at ITL ~93 ms.
# - Prefill rates are derived: 2 x params FLOPs per prompt token at ~40 % of H100 dense BF16 (989 TFLOPS)
#   for 8B; for the 70B, 5000 tokens in 407 ms at concurrency 1 (the NIM row above) ~ 12,000 tokens/s.
# - KV cache: Llama-3 8B has 32 layers x 8 KV heads x 128 dims x 2 (K,V) x 2 bytes = 128 KiB/token; ~55 GB
#   free at gpu-memory-utilization 0.9 -> ~420k tokens. 70B: 80 layers -> 320 KiB/token, ~70 GB free on
#   2 x H100 with fp8 weights -> ~210k tokens.
# - max_num_seqs 256: vLLM's long-standing default for --max-num-seqs.
PRESETS: dict[str, EngineProfile] = {
    "llama-8b-h100": EngineProfile(
        "llama-8b-h100",
        "Llama 3.1 8B, BF16, vLLM/NIM on 1 x H100 80GB",
        1,
        decode_tps=12500.0,
        prefill_tps=25000.0,
        itl_min_s=0.0046,
        itl_sat_s=0.0127,
        max_num_seqs=256,
        kv_cache_tokens=420_000.0,
        source="docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance (Llama-3.1-8b-instruct, NIM 1.8.0)",
    ),
    "llama-70b-h100x2": EngineProfile(
        "llama-70b-h100x2",
        "Llama 3.3 70B, FP8, TP2 on 2 x H100 80GB",
        2,
        decode_tps=920.0,
        prefill_tps=12000.0,
        itl_min_s=0.0186,
        itl_sat_s=0.093,
        max_num_seqs=256,
        kv_cache_tokens=210_000.0,
        source="docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance (Llama-3.3-70b-instruct, NIM 1.8.0, TP2)",
    ),
}
ALIASES = {"8b": "llama-8b-h100", "70b": "llama-70b-h100x2"}


def engine_profile(name: str) -> EngineProfile:
    """A capacity preset by name (or alias `8b`/`70b`)."""
    key = ALIASES.get(name, name)
    if key not in PRESETS:
        raise InputError(
            f"unknown model profile {name!r}", fix=f"use one of {', '.join(list(PRESETS) + list(ALIASES))}"
        )
    return PRESETS[key]


@dataclass(frozen=True)
class ColdStartProfile:
    """How long a new replica takes to become ready, phase by phase."""

    name: str
    phases: tuple[tuple[str, float], ...]
    source: str = ""

    @property
    def total(self) -> float:
        """Seconds from pod creation to Ready."""
        return float(sum(s for _, s in self.phases))

    def phase_at(self, elapsed: float) -> tuple[str, float]:
        """The phase a pod is in `elapsed` seconds after creation, and the fraction of it done."""
        t = 0.0
        for name, seconds in self.phases:
            if elapsed < t + seconds:
                return name, (elapsed - t) / seconds if seconds > 0 else 1.0
            t += seconds
        return "ready", 1.0


_GUIDE = "gpu-autoscaling-guide.txt, cold-start table (H100, local NVMe)"
# The guide's rows: 8B weights ~8 s, graphs ~12 s, KV warm-up ~5 s (total warm ~25 s); 70B 45/30/10 (~85 s);
# uncached image pull 4-6 min (we take 5 min); CRIU restore < 5 s (we take 4.5 s).
COLDSTART_PRESETS: dict[str, ColdStartProfile] = {
    "8b-warm": ColdStartProfile(
        "8b-warm", (("weight_load", 8.0), ("cuda_graphs", 12.0), ("kv_cache", 5.0)), _GUIDE
    ),
    "70b-warm": ColdStartProfile(
        "70b-warm", (("weight_load", 45.0), ("cuda_graphs", 30.0), ("kv_cache", 10.0)), _GUIDE
    ),
    "8b-uncached": ColdStartProfile(
        "8b-uncached",
        (("image_pull", 300.0), ("weight_load", 8.0), ("cuda_graphs", 12.0), ("kv_cache", 5.0)),
        _GUIDE,
    ),
    "70b-uncached": ColdStartProfile(
        "70b-uncached",
        (("image_pull", 300.0), ("weight_load", 45.0), ("cuda_graphs", 30.0), ("kv_cache", 10.0)),
        _GUIDE,
    ),
    "criu": ColdStartProfile("criu", (("restore", 4.5),), _GUIDE + ", CRIU restore row"),
}


def coldstart_profile(name: str) -> ColdStartProfile:
    """A cold-start preset by name."""
    if name not in COLDSTART_PRESETS:
        raise InputError(
            f"unknown cold-start profile {name!r}",
            fix=f"use one of {', '.join(COLDSTART_PRESETS)} or a JSON file",
        )
    return COLDSTART_PRESETS[name]


def coldstart_from_json(text: str, source: str = "file") -> ColdStartProfile:
    """Read a cold-start profile from JSON.

    Accepts what `kubectl gpuscale coldstart -o json` writes (a ``ColdStart`` document with
    ``phases[].name/seconds`` and ``totalSeconds``; from a ``List``, the first item) and the
    plain form ``{"phases": [{"name": "image_pull", "seconds": 300}, ...]}``. When
    ``totalSeconds`` exceeds the phases' sum, the rest becomes an ``unattributed`` phase.
    """
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"cannot read cold-start profile {source}",
            f"not JSON: {exc.msg} at line {exc.lineno}",
            'give `coldstart -o json` output or {"phases": [{"name": ..., "seconds": ...}]}',
        ) from None
    if isinstance(doc, dict) and doc.get("kind") == "List":
        items = doc.get("items") or []
        doc = items[0] if items else {}
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list):
        raise InputError(
            f"cannot read cold-start profile {source}",
            'no "phases" list in it',
            'give `coldstart -o json` output or {"phases": [{"name": ..., "seconds": ...}]}',
        )
    phases: list[tuple[str, float]] = []
    for i, p in enumerate(doc["phases"]):
        try:
            name, seconds = str(p["name"]), float(p["seconds"])
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"cannot read cold-start profile {source}",
                f"phase {i} needs a name and a number of seconds",
                "fix the JSON",
            ) from None
        if seconds < 0:
            raise InputError(
                f"cannot read cold-start profile {source}",
                f"phase {name!r} has negative seconds",
                "fix the JSON",
            )
        phases.append((name, seconds))
    total = doc.get("totalSeconds")
    attributed = sum(s for _, s in phases)
    if isinstance(total, (int, float)) and total > attributed + 1e-6:
        phases.append(("unattributed", float(total) - attributed))
    if not phases or sum(s for _, s in phases) <= 0:
        raise InputError(
            f"cannot read cold-start profile {source}",
            "its phases add up to 0 s",
            "give a profile with a positive duration",
        )
    name = str(doc.get("pod") or source)
    return ColdStartProfile(name, tuple(phases), source)
