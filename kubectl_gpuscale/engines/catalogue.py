"""The engine catalogue: one record per inference engine (vLLM, SGLang, TGI, Triton, TensorRT-LLM,
NIM, Ollama): what it looks like in a pod spec (images, commands, env, ports), which Prometheus
metrics it exports (with the renames between versions), its default ports and its concurrency knob.

Pure data. Sources: reference/engines.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubectl_gpuscale.engines import versions


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric as the engine exposes it.

    `names` lists every exposed spelling over the engine's history, newest first
    (e.g. vLLM's KV cache gauge renamed in 0.9.2). `labels` are fixed label
    matchers that select the right series (TRT-LLM's ``request_type="waiting"``).
    """

    names: tuple[str, ...]
    kind: str = "gauge"
    labels: tuple[tuple[str, str], ...] = ()
    note: str = ""

    @property
    def name(self) -> str:
        """The current (newest) name."""
        return self.names[0]


@dataclass(frozen=True)
class Engine:
    """Facts about one inference engine."""

    key: str
    display: str
    image_patterns: tuple[str, ...]
    command_patterns: tuple[str, ...]
    env_hints: tuple[str, ...]
    port: int
    metrics_port: int | None
    port_flags: tuple[str, ...]
    port_env: tuple[str, ...]
    model_flags: tuple[str, ...]
    model_env: tuple[str, ...]
    concurrency_flags: tuple[str, ...]
    concurrency_env: tuple[str, ...]
    default_concurrency: int
    queue: Metric | None
    running: Metric | None
    kv_cache: Metric | None
    metrics_needs_flag: str | None = None
    cold_start_seconds: int = 300
    notes: tuple[str, ...] = ()
    metrics_path: str = "/metrics"
    metrics_off_flags: tuple[str, ...] = ()
    metrics_notes: tuple[str, ...] = ()  # what a trigger on its metrics needs that the pod spec cannot show


VLLM = Engine(
    key="vllm",
    display="vLLM",
    image_patterns=(r"(^|/)vllm[-/:]", r"vllm-openai", r"(^|/)vllm$", r"/vllm@"),
    command_patterns=(r"\bvllm\s+serve\b", r"vllm\.entrypoints\.(openai\.)?api_server"),
    env_hints=("VLLM_",),
    port=8000,
    metrics_port=None,
    port_flags=("--port",),
    port_env=(),
    model_flags=("--served-model-name", "--model"),
    model_env=(),
    concurrency_flags=("--max-num-seqs",),
    concurrency_env=(),
    default_concurrency=256,
    queue=Metric(("vllm:num_requests_waiting",), note="requests waiting for a batch slot"),
    running=Metric(("vllm:num_requests_running",)),
    kv_cache=Metric(
        ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        note="fraction 0-1; gpu_cache_usage_perc until 0.11, kv_cache_usage_perc since 0.9.2",
    ),
    cold_start_seconds=300,
    # --disable-log-stats: log_stats=False, so no stat logger (Prometheus included) is created:
    # /metrics carries no vllm:* series (vllm/v1/engine/async_llm.py, vllm/v1/metrics/loggers.py)
    metrics_off_flags=("--disable-log-stats",),
)

SGLANG = Engine(
    key="sglang",
    display="SGLang",
    image_patterns=(r"sglang",),
    command_patterns=(r"sglang\.launch_server", r"\bsglang\s+serve\b"),
    env_hints=("SGLANG_",),
    port=30000,
    metrics_port=None,
    port_flags=("--port",),
    port_env=(),
    model_flags=("--served-model-name", "--model-path", "--model"),
    model_env=(),
    concurrency_flags=("--max-running-requests",),
    concurrency_env=(),
    default_concurrency=256,
    queue=Metric(("sglang:num_queue_reqs",)),
    running=Metric(("sglang:num_running_reqs",)),
    kv_cache=Metric(("sglang:token_usage",), note="fraction 0-1"),
    metrics_needs_flag="--enable-metrics",
    cold_start_seconds=300,
)

TGI = Engine(
    key="tgi",
    display="TGI",
    image_patterns=(r"text-generation-inference", r"(^|/)tgi[:@-]"),
    command_patterns=(r"text-generation-launcher",),
    env_hints=("MAX_CONCURRENT_REQUESTS", "MAX_BATCH_TOTAL_TOKENS", "NUM_SHARD", "SHARDED"),
    port=80,
    metrics_port=9000,
    port_flags=("--port",),
    port_env=("PORT",),
    model_flags=("--model-id",),
    model_env=("MODEL_ID",),
    concurrency_flags=("--max-concurrent-requests",),
    concurrency_env=("MAX_CONCURRENT_REQUESTS",),
    default_concurrency=128,
    queue=Metric(("tgi_queue_size",)),
    running=Metric(("tgi_batch_current_size",)),
    kv_cache=None,
    cold_start_seconds=300,
    notes=("the Docker image sets PORT=80; the launcher's own default is 3000",),
)

TRTLLM = Engine(
    key="trtllm",
    display="trtllm-serve",
    image_patterns=(r"tensorrt[-_]?llm/release", r"(^|/)tensorrt[-_]?llm[:@]", r"(^|/)trtllm[-_]serve"),
    command_patterns=(r"\btrtllm-serve\b",),
    env_hints=("TRTLLM_", "TLLM_"),
    port=8000,
    metrics_port=None,
    port_flags=("--port",),
    port_env=(),
    model_flags=("--served_model_name", "--model"),
    model_env=(),
    concurrency_flags=("--max_batch_size", "--max-batch-size"),
    concurrency_env=(),
    default_concurrency=versions.TRTLLM_MAX_BATCH_SIZE,
    # tensorrt_llm/serve/openai_server.py: MetricsCollector gauges served at /prometheus/metrics
    # (its /metrics is a JSON iteration-stats array, not Prometheus text)
    queue=Metric(("trtllm_num_requests_waiting",), note="queued requests (iteration stats)"),
    running=Metric(("trtllm_num_requests_running",)),
    kv_cache=Metric(("trtllm_kv_cache_utilization",), note="fraction 0-1"),
    cold_start_seconds=420,
    metrics_path="/prometheus/metrics",
    metrics_notes=(
        "trtllm-serve exports trtllm_* only with `return_perf_metrics: true` (and `enable_iter_perf_stats: "
        "true` for the queue gauges) in its --extra_llm_api_options/--config YAML, at /prometheus/metrics "
        "(its /metrics is JSON): scrape that path",
    ),
)

TRITON_TRTLLM = Engine(
    key="triton-trtllm",
    display="Triton TensorRT-LLM backend",
    image_patterns=(r"tritonserver:.*trtllm",),
    command_patterns=(r"launch_triton_server\.py", r"\btritonserver\b"),
    env_hints=("TRTLLM_",),
    port=8000,
    metrics_port=8002,
    port_flags=("--http-port", "--http_port"),
    port_env=(),
    model_flags=("--model_repo", "--model-repository"),
    model_env=(),
    concurrency_flags=("--max_batch_size",),
    concurrency_env=(),
    default_concurrency=64,
    queue=Metric(("nv_trt_llm_request_metrics",), labels=(("request_type", "waiting"),)),
    running=Metric(("nv_trt_llm_request_metrics",), labels=(("request_type", "active"),)),
    kv_cache=Metric(("nv_trt_llm_kv_cache_block_metrics",), labels=(("kv_cache_block_type", "fraction"),)),
    cold_start_seconds=420,
)

TRITON = Engine(
    key="triton",
    display="Triton",
    image_patterns=(r"tritonserver",),
    command_patterns=(r"\btritonserver\b",),
    env_hints=(),
    port=8000,
    metrics_port=8002,
    port_flags=("--http-port",),
    port_env=(),
    model_flags=("--model-repository", "--model-store"),
    model_env=(),
    concurrency_flags=(),
    concurrency_env=(),
    default_concurrency=64,
    queue=Metric(("nv_inference_pending_request_count",), note="requests received but not yet executing"),
    running=None,
    kv_cache=None,
    cold_start_seconds=300,
)

NIM = Engine(
    key="nim",
    display="NIM",
    image_patterns=(r"nvcr\.io/nim/", r"(^|/)nim-llm"),
    command_patterns=(r"\bnim_llm\b", r"start_server\.sh"),
    env_hints=("NIM_",),
    port=8000,
    metrics_port=None,
    port_flags=(),
    port_env=("NIM_SERVER_PORT",),
    model_flags=(),
    model_env=("NIM_MODEL_NAME", "NIM_SERVED_MODEL_NAME"),
    concurrency_flags=(),
    concurrency_env=("NIM_MAX_NUM_SEQS",),
    default_concurrency=256,
    queue=Metric(
        ("vllm:num_requests_waiting", "num_requests_waiting"),
        note="NIM LLM wraps vLLM or TRT-LLM; unverified, check the series exist",
    ),
    running=Metric(("vllm:num_requests_running", "num_requests_running")),
    kv_cache=Metric(("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "gpu_cache_usage_perc")),
    cold_start_seconds=600,
)

OLLAMA = Engine(
    key="ollama",
    display="Ollama",
    image_patterns=(r"ollama",),
    command_patterns=(r"\bollama\s+serve\b",),
    env_hints=("OLLAMA_",),
    port=11434,
    metrics_port=None,
    port_flags=(),
    port_env=("OLLAMA_HOST",),
    model_flags=(),
    model_env=("OLLAMA_MODEL",),
    concurrency_flags=(),
    concurrency_env=("OLLAMA_NUM_PARALLEL",),
    default_concurrency=4,
    queue=None,
    running=None,
    kv_cache=None,
    cold_start_seconds=120,
    notes=("Ollama exports no Prometheus metrics: pass --query with a metric from a proxy or gateway",),
)

ENGINES: tuple[Engine, ...] = (VLLM, SGLANG, TGI, TRTLLM, TRITON_TRTLLM, TRITON, NIM, OLLAMA)
BY_KEY: dict[str, Engine] = {e.key: e for e in ENGINES}
"""Engines by their key (`vllm`, `sglang`, ...)."""


# DCGM exporter (GPU utilisation): label names depend on how it was scraped.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_POD_LABELS: tuple[tuple[str, str], ...] = (("namespace", "pod"), ("exported_namespace", "exported_pod"))


def engine_for_metric(name: str) -> tuple[Engine, str] | None:
    """The engine and role ('queue', 'running', 'kv_cache') of a metric name in any spelling (':' or '_')."""
    plain = name.replace(":", "_")
    for engine in ENGINES:
        for role in ("queue", "running", "kv_cache"):
            metric: Metric | None = getattr(engine, role)
            if metric and any(n.replace(":", "_") == plain or n.split(":")[-1] == name for n in metric.names):
                return engine, role
    return None
