"""Engine detection: which engine runs in a pod template and how sure, which version (image tag),
which GPU and accelerators it asks for, and the concurrency that follows (`detect`); the pod template
of any workload kind (`pod_template`). Reads the records of `engines.catalogue`.

Pure: plain data in, frozen dataclasses out.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.engines import versions
from kubectl_gpuscale.engines.catalogue import ENGINES, Engine, Metric
from kubectl_gpuscale.engines.gpus import GpuInfo, requested_gpu


def _any_of(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# Each engine's patterns compiled once, as one alternation (detect runs per container per engine).
_IMAGE_RE = {e.key: _any_of(e.image_patterns) for e in ENGINES}
_COMMAND_RE = {e.key: _any_of(e.command_patterns) for e in ENGINES}

# Extended resources that mean "this pod runs on an accelerator".
ACCELERATOR_PATTERNS: tuple[str, ...] = (
    r"^nvidia\.com/(gpu|mig-.+)$",
    r"^amd\.com/gpu$",
    r"^gpu\.intel\.com/.+$",
    r"^google\.com/tpu$",
    r"^habana\.ai/gaudi$",
    r"^aws\.amazon\.com/neuron(core|device)?$",
    r"^cloud-tpus\.google\.com/.+$",
)
_ACCEL_RE = re.compile("|".join(ACCELERATOR_PATTERNS))


@dataclass(frozen=True)
class Detection:
    """What runs in a pod template: the engine (or None), how sure, and the facts read from the spec."""

    engine: Engine | None
    confidence: str
    container: str | None
    reasons: tuple[str, ...] = ()
    port: int | None = None
    metrics_port: int | None = None
    model: str | None = None
    max_concurrency: int | None = None
    accelerators: Mapping[str, str] = field(default_factory=dict)
    metrics_disabled: bool = False
    version: str | None = None
    gpu: GpuInfo | None = None
    default_concurrency: versions.Concurrency | None = None
    metrics_off_flag: str | None = None

    @property
    def concurrency(self) -> int | None:
        """The set concurrency, else the engine's default on this GPU and version (None when no engine)."""
        if self.max_concurrency is not None:
            return self.max_concurrency
        if self.default_concurrency is not None:
            return self.default_concurrency.value
        return self.engine.default_concurrency if self.engine else None

    @property
    def concurrency_why(self) -> str:
        """Where `concurrency` comes from, in words."""
        if self.engine is None:
            return "no engine detected"
        if self.max_concurrency is not None:
            return (
                f"{self.engine.concurrency_flags[0] if self.engine.concurrency_flags else 'env'} "
                f"{self.max_concurrency} in the container spec"
            )
        if self.default_concurrency is not None:
            return self.default_concurrency.why
        return f"{self.engine.display} default"

    @property
    def metrics_off_reason(self) -> str | None:
        """Why the engine exports none of its metrics (a flag present or missing), None when it does."""
        if self.engine is None or not self.metrics_disabled:
            return None
        if self.metrics_off_flag:
            return f"{self.engine.display} runs with {self.metrics_off_flag}, so it exports no engine metrics"
        return f"{self.engine.display} exports metrics only with {self.engine.metrics_needs_flag}"

    def metric(self, role: str) -> Metric | None:
        """The engine's metric for `role` ('queue', 'running', 'kv_cache') with the names its version exports."""
        if self.engine is None:
            return None
        metric: Metric | None = getattr(self.engine, role)
        if metric is not None and self.engine.key == "vllm" and role == "kv_cache":
            return Metric(versions.vllm_kv_cache_names(self.version), metric.kind, metric.labels, metric.note)
        return metric

    @property
    def gpus(self) -> int:
        """Accelerators per pod (sum over accelerator resources; 0 when none)."""
        total = 0
        for value in self.accelerators.values():
            try:
                total += int(float(str(value)))
            except ValueError:
                total += 1
        return total

    @property
    def accelerator_text(self) -> str:
        """E.g. ``2x nvidia.com/gpu``, or ``none``."""
        if not self.accelerators:
            return "none"
        return ", ".join(f"{v}x {k}" for k, v in self.accelerators.items())


def pod_template(workload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template of a Deployment/StatefulSet/ReplicaSet/LeaderWorkerSet/Knative Service, or None."""
    spec = workload.get("spec") or {}
    if not isinstance(spec, Mapping):
        return None
    template = spec.get("template")
    if isinstance(template, Mapping):
        return template
    lws = spec.get("leaderWorkerTemplate")
    if isinstance(lws, Mapping):
        for key in ("leaderTemplate", "workerTemplate"):
            found = lws.get(key)
            if isinstance(found, Mapping):
                return found
    return None


def _argv(container: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for key in ("command", "args"):
        value = container.get(key) or []
        if isinstance(value, str):
            value = [value]
        for item in value:
            text = str(item)
            if " " in text.strip() or "\n" in text:
                try:
                    words.extend(shlex.split(text, comments=False))
                except ValueError:
                    words.extend(text.split())
            else:
                words.append(text)
    return words


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and item.get("name"):
            out[str(item["name"])] = str(item.get("value", "")) if "value" in item else ""
    return out


def flag_value(argv: Sequence[str], flags: Sequence[str]) -> str | None:
    """The value of the first of `flags` (in `flags` order) found in argv, as ``--f v`` or ``--f=v``."""
    for flag in flags:
        for i, word in enumerate(argv):
            head, sep, value = word.partition("=")
            if head == flag:
                if sep:
                    return value
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    return argv[i + 1]
    return None


def _to_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def accelerators(container: Mapping[str, Any]) -> dict[str, str]:
    """Accelerator resources a container asks for (requests or limits), e.g. {'nvidia.com/gpu': '2'}."""
    res = container.get("resources") or {}
    found: dict[str, str] = {}
    if not isinstance(res, Mapping):
        return found
    for section in ("limits", "requests"):
        for name, value in (res.get(section) or {}).items():
            if _ACCEL_RE.match(str(name)) and str(value) not in ("0", ""):
                found.setdefault(str(name), str(value))
    return found


def _score(
    engine: Engine,
    container: Mapping[str, Any],
    image: str,
    line: str,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
) -> tuple[int, list[str]]:
    score, reasons = 0, []
    if _IMAGE_RE[engine.key].search(image):
        score += 3
        reasons.append(f"image {container.get('image')}")
    if _COMMAND_RE[engine.key].search(line):
        score += 3
        reasons.append("command line")
    if any(f in argv or any(w.startswith(f + "=") for w in argv) for f in engine.concurrency_flags):
        score += 1
        reasons.append(f"flag {engine.concurrency_flags[0]}")
    if engine.env_hints and any(name.startswith(engine.env_hints) for name in env):
        score += 1
        reasons.append("env")
    if score and engine.port in {
        p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, Mapping)
    }:
        score += 1
        reasons.append(f"port {engine.port}")
    return score, reasons


def _confidence(score: int) -> str:
    if score >= 5:
        return "high"
    if score >= 3:
        return "medium"
    return "low"


def _port(
    engine: Engine, container: Mapping[str, Any], argv: Sequence[str], env: Mapping[str, str]
) -> int | None:
    """The serving port: the engine's port flag, its env var, the first declared port, else its default."""
    port = _to_int(flag_value(argv, engine.port_flags)) if engine.port_flags else None
    for name in engine.port_env:
        if port is None and env.get(name, "").isdigit():
            port = int(env[name])
    if port is None:
        declared = [p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, Mapping)]
        port = next((p for p in declared if isinstance(p, int)), engine.port)
    return port


def _model(engine: Engine, argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The model served: the engine's model flag, `vllm serve MODEL`'s argument, else its env var."""
    model = flag_value(argv, engine.model_flags) if engine.model_flags else None
    if model is None and engine.key == "vllm" and "serve" in argv:
        i = argv.index("serve")
        if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            model = argv[i + 1]
    for name in engine.model_env:
        if model is None and env.get(name):
            model = env[name]
    return model


def _default_concurrency(
    engine: Engine, version: str | None, gpu: GpuInfo | None
) -> versions.Concurrency | None:
    """The engine's own concurrency default for this version and GPU (None where it has none we know)."""
    if engine.key == "vllm":
        return versions.vllm_max_num_seqs(version, gpu)
    if engine.key == "sglang":
        return versions.sglang_max_running_requests()
    if engine.key == "trtllm":
        return versions.trtllm_max_batch_size()
    return None


def detect(workload_or_template: Mapping[str, Any]) -> Detection:
    """Which engine runs in a workload (or pod template), with the facts read from its spec.

    Each container is scored per engine: image (3), command line (3), concurrency
    flag (1), engine env vars (1), the engine's default port (1). The best score
    wins; confidence is high (>= 5), medium (>= 3) or low. A workload with no
    match gets ``engine=None`` and confidence ``none``.
    """
    template = (
        pod_template(workload_or_template)
        if "template" in (workload_or_template.get("spec") or {})
        or "leaderWorkerTemplate" in (workload_or_template.get("spec") or {})
        else workload_or_template
    )
    pod_spec = (template or {}).get("spec") or {}
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, Mapping)]
    accel: dict[str, str] = {}
    for c in containers:
        accel.update(accelerators(c))
    best: tuple[int, Engine | None, Mapping[str, Any] | None, list[str], list[str], dict[str, str]] = (
        0,
        None,
        None,
        [],
        [],
        {},
    )
    for c in containers:
        argv, env = _argv(c), _env(c)
        image, line = str(c.get("image") or "").lower(), " ".join(argv)
        for candidate in ENGINES:
            score, reasons = _score(candidate, c, image, line, argv=argv, env=env)
            if score > best[0]:
                best = (score, candidate, c, reasons, argv, env)
    score, found, container, reasons, argv, env = best
    if found is None or container is None:
        return Detection(None, "none", containers[0].get("name") if containers else None, accelerators=accel)
    engine: Engine = found
    port = _port(engine, container, argv, env)
    model = _model(engine, argv, env)
    concurrency = _to_int(flag_value(argv, engine.concurrency_flags)) if engine.concurrency_flags else None
    for name in engine.concurrency_env:
        if concurrency is None and env.get(name, "").isdigit():
            concurrency = int(env[name])
    off = next(
        (f for f in engine.metrics_off_flags if f in argv or any(w.startswith(f + "=") for w in argv)), None
    )
    disabled = bool(engine.metrics_needs_flag and engine.metrics_needs_flag not in argv) or off is not None
    version = versions.image_version(str(container.get("image") or ""))
    gpu = requested_gpu(template or {}, accel)
    default = _default_concurrency(engine, version, gpu)
    return Detection(
        engine,
        _confidence(score),
        str(container.get("name") or ""),
        tuple(reasons),
        port,
        engine.metrics_port,
        model,
        concurrency,
        accel,
        disabled,
        version,
        gpu,
        default,
        off,
    )
