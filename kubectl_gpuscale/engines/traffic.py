"""What each engine counts about its traffic: finished requests, prompt and generated tokens, and the
time-to-first-token histogram, as exposed on /metrics (the series `tune` reads its history from).

Pure data, one place per fact. Queue and running gauges are in `engines.catalogue` (`Engine.queue`,
`Engine.running`). Sources (reference/engines.md):

- vLLM (V0 `vllm/engine/metrics.py`, V1 `vllm/v1/metrics/loggers.py`, every release since 0.4):
  `vllm:request_success_total{finished_reason}`, `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`
  (the same exposed names in V0 and V1: prometheus_client adds `_total`), histogram
  `vllm:time_to_first_token_seconds` with V1's buckets `VLLM_TTFT_BUCKETS`.
- SGLang (`python/sglang/srt/metrics/collector.py` `TokenizerMetricsCollector`, with `--enable-metrics`,
  since 2024-11 #1981): `sglang:num_requests_total`, `sglang:prompt_tokens_total`,
  `sglang:generation_tokens_total`, histogram `sglang:time_to_first_token_seconds`.
- TGI (`router/src/server.rs`, `backends/v3/src/*.rs` @db931fcf, the Rust metrics exporter adds no
  `_total`): counter `tgi_request_success`; tokens only as histograms `tgi_request_input_length` and
  `tgi_request_generated_tokens` (their `_sum` series are the token counters); no TTFT histogram.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TrafficMetrics:
    """The counters (and TTFT histogram base name) one engine exposes about the requests it serves.

    `requests`, `prompt_tokens` and `output_tokens` are monotonic series (counters, or a histogram's
    `_sum`); `ttft` is a histogram's base name (`_bucket` is added), None when the engine has none.
    """

    engine: str
    requests: str
    prompt_tokens: str
    output_tokens: str
    ttft: str | None
    versions: str
    source: str


# vllm/v1/metrics/loggers.py `histogram_time_to_first_token` buckets (V1; V0 stopped at 10 s)
VLLM_TTFT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)

VLLM_TRAFFIC = TrafficMetrics(
    engine="vllm",
    requests="vllm:request_success_total",
    prompt_tokens="vllm:prompt_tokens_total",
    output_tokens="vllm:generation_tokens_total",
    ttft="vllm:time_to_first_token_seconds",
    versions="V0 and V1, every release since 0.4",
    source="vllm/engine/metrics.py (V0), vllm/v1/metrics/loggers.py (V1)",
)

SGLANG_TRAFFIC = TrafficMetrics(
    engine="sglang",
    requests="sglang:num_requests_total",
    prompt_tokens="sglang:prompt_tokens_total",
    output_tokens="sglang:generation_tokens_total",
    ttft="sglang:time_to_first_token_seconds",
    versions="since the metrics collector (2024-11, #1981); needs --enable-metrics",
    source="python/sglang/srt/metrics/collector.py TokenizerMetricsCollector",
)

TGI_TRAFFIC = TrafficMetrics(
    engine="tgi",
    requests="tgi_request_success",
    prompt_tokens="tgi_request_input_length_sum",
    output_tokens="tgi_request_generated_tokens_sum",
    ttft=None,
    versions="TGI 1.x-3.x (router metrics)",
    source="text-generation-inference router/src/server.rs, backends/v3/src/queue.rs @db931fcf",
)

# NIM LLM wraps vLLM (unverified, see the catalogue): its vLLM families.
TRAFFIC: dict[str, TrafficMetrics] = {
    "vllm": VLLM_TRAFFIC,
    "nim": VLLM_TRAFFIC,
    "sglang": SGLANG_TRAFFIC,
    "tgi": TGI_TRAFFIC,
}
