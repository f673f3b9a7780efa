"""`tune`'s history and calibration on the real Prometheus holding a week backfilled from a known model.

The metrics are what the simulator's run (tests/support/backfill.py) would have shown on each pod's
/metrics every 15 s, loaded with `promtool tsdb create-blocks-from openmetrics`. Names as vLLM exposes
them: vllm/v1/metrics/loggers.py (`vllm:request_success_total`, `vllm:prompt_tokens_total`,
`vllm:generation_tokens_total`, `vllm:time_to_first_token_seconds`, `vllm:num_requests_running` /
`_waiting`); the underscore forms are what prometheus_client's OpenMetrics output writes
(prometheus/client_python#1177, DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.prom import Prometheus
from kubectl_gpuscale.prom.history import MAX_POINTS_PER_SERIES, MissingSeriesError, fetch_history
from kubectl_gpuscale.sim.policies import parse_policies
from kubectl_gpuscale.tune.calibrate import LARGE_REPLICA_HOURS_ERROR, LARGE_TTFT_ERROR, calibrate, replay
from kubectl_gpuscale.tune.history import History
from tests.support.backfill import Backfilled, Truth


@pytest.fixture(scope="module")
def week(backfilled_prometheus: Callable[..., Backfilled]) -> Backfilled:
    return backfilled_prometheus()


@pytest.fixture
def prom(week: Backfilled) -> Iterator[Prometheus]:
    gateway = Prometheus.connect(week.url, timeout=60)
    try:
        yield gateway
    finally:
        gateway.close()


def fetch(prom: Prometheus, truth: Truth) -> History:
    return fetch_history(
        prom,
        namespace=truth.namespace,
        pods=truth.pods,
        engine="vllm",
        since=truth.end - truth.start,
        end=truth.end,
        workload=truth.workload,
    )


ASKED: list[float] = []
"""Points per series of each range query the module's week fetch asked for."""


@pytest.fixture(scope="module")
def history(week: Backfilled) -> History:
    with Prometheus.connect(week.url, timeout=60) as gateway:
        original = gateway.query_range

        def spy(promql: str, start: Any, end: Any, step: Any) -> list[Any]:
            ASKED.append((end - start) / step + 1)
            return original(promql, start, end, step)

        gateway.query_range = spy  # type: ignore[method-assign]
        return fetch(gateway, week.truth["ml"])


def test_a_week_comes_back_as_the_model_made_it(week: Backfilled, history: History) -> None:
    """Arrivals (total and per step), token means, replicas (kube-state-metrics), running/waiting and the
    TTFT histogram increments, read back through range queries, are the ground truth."""
    truth = week.truth["ml"]
    assert history.steps == truth.arrivals.shape[0] == 7 * 86400 // 15
    assert history.start == truth.start
    assert abs(history.requests - truth.requests) <= 0.01 * truth.requests
    np.testing.assert_array_equal(history.arrivals, truth.arrivals)
    assert history.prompt_tokens == pytest.approx(truth.prompt_tokens, rel=1e-9)
    assert history.output_tokens == pytest.approx(truth.output_tokens, rel=1e-9)
    np.testing.assert_array_equal(history.replicas, truth.replicas)
    assert history.sources["replicas"] == "kube_deployment_status_replicas_available"
    np.testing.assert_allclose(history.running, truth.running, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(history.waiting, truth.waiting, rtol=1e-4, atol=1e-3)
    assert history.ttft_buckets == truth.ttft_buckets
    np.testing.assert_array_equal(history.ttft_counts, truth.ttft_counts)
    assert history.sources["arrivals"] == "vllm:request_success_total"


def test_a_counter_reset_is_counted_not_lost(week: Backfilled, prom: Prometheus, history: History) -> None:
    """Pod slot 0 restarts in place at day 3.5 (same pod name, counters back to 0): the raw series drops,
    and the history's total still matches (a reset counts its new value, as rate() does)."""
    truth = week.truth["ml"]
    assert truth.restarts == 1
    restart = truth.start + 3.5 * 86400
    before = prom.query("sum(vllm:request_success_total{namespace='ml'})", at=restart - 15)[0].value
    after = prom.query("sum(vllm:request_success_total{namespace='ml'})", at=restart + 15)[0].value
    assert after < before  # the stored counter really drops
    i = int(3.5 * 86400 // 15)
    np.testing.assert_array_equal(history.arrivals[i - 4 : i + 4], truth.arrivals[i - 4 : i + 4])
    assert history.requests == truth.requests


def test_range_queries_stay_under_the_points_limit(
    week: Backfilled, prom: Prometheus, history: History
) -> None:
    """A week at 15 s is 40,321 points: Prometheus refuses one query for it (promql/engine.go:
    `exceeded maximum resolution of 11,000 points per timeseries`), so fetch_history splits it."""
    truth = week.truth["ml"]
    from kubectl_gpuscale.errors import InputError

    with pytest.raises(InputError, match="11,000 points"):
        prom.query_range("vllm:num_requests_running", truth.start, truth.end, 15)
    assert ASKED and max(ASKED) <= MAX_POINTS_PER_SERIES
    assert sum(ASKED) >= 6 * (history.steps + 1)  # six signals, each over the whole week


@pytest.mark.parametrize("namespace", ["ml-underscore", "ml-mixed"])
def test_both_metric_name_forms(week: Backfilled, prom: Prometheus, namespace: str) -> None:
    """All pods on `vllm_x` (OpenMetrics negotiation), or half on each form: the same history."""
    truth = week.truth[namespace]
    held = prom.series_names(
        f"{{__name__=~'vllm.request_success_total', namespace='{namespace}'}}", lookback=None
    )
    assert "vllm_request_success_total" in held
    assert ("vllm:request_success_total" in held) == (namespace == "ml-mixed")
    got = fetch(prom, truth)
    np.testing.assert_array_equal(got.arrivals, truth.arrivals)
    np.testing.assert_array_equal(got.ttft_counts, truth.ttft_counts)
    np.testing.assert_allclose(got.running, truth.running, rtol=1e-4, atol=1e-3)
    assert got.prompt_tokens == pytest.approx(512.0)


@pytest.mark.parametrize("engine", ["sglang", "tgi"])
def test_sglang_and_tgi_counters(week: Backfilled, prom: Prometheus, engine: str) -> None:
    """SGLang's `sglang:num_requests_total` and token counters (python/sglang/srt/metrics/collector.py) with
    its TTFT histogram; TGI's `tgi_request_success` and token histograms' `_sum` (router/src/server.rs), no
    TTFT histogram at all (an empty one in the history)."""
    truth = week.truth[engine]
    got = fetch_history(
        prom,
        namespace=truth.namespace,
        pods=truth.pods,
        engine=engine,
        since=truth.end - truth.start,
        end=truth.end,
        workload=truth.workload,
    )
    np.testing.assert_array_equal(got.arrivals, truth.arrivals)
    assert (got.prompt_tokens, got.output_tokens) == (512.0, 256.0)
    np.testing.assert_allclose(got.running, truth.running, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(got.replicas, truth.replicas)
    if engine == "sglang":
        np.testing.assert_array_equal(got.ttft_counts, truth.ttft_counts)
        assert got.sources["arrivals"] == "sglang:num_requests_total"
    else:
        assert got.ttft_buckets == () and got.ttft_counts.shape == (got.steps, 0)
        assert got.sources["prompt"] == "tgi_request_input_length_sum"


def test_a_missing_metric_is_one_clear_error(week: Backfilled, prom: Prometheus) -> None:
    """`ml-relabelled` lost vllm:request_success_total (a metric_relabel_configs drop): the error names the
    series, says both forms were checked, why, and what to do."""
    truth = week.truth["ml-relabelled"]
    with pytest.raises(MissingSeriesError) as caught:
        fetch(prom, truth)
    error = caught.value
    assert error.series == ("vllm:request_success_total",)
    line = error.line()
    assert line.startswith(
        "no vllm:request_success_total in Prometheus for pods matching 'vllm-.*' in namespace "
        "ml-relabelled over the last 6h (checked both the ':' and '_' forms)"
    )
    assert "but not these: a metric_relabel_configs rule renamed or dropped them" in line
    assert "\n" not in line


def test_engine_metrics_off_is_said(week: Backfilled, prom: Prometheus) -> None:
    """The pods are scraped (process_cpu_seconds_total) but export no vllm:* series: vLLM with
    --disable-log-stats creates no stat logger (vllm/v1/engine/async_llm.py, vllm/v1/metrics/loggers.py)."""
    truth = week.truth["ml-metrics-off"]
    with pytest.raises(MissingSeriesError) as caught:
        fetch(prom, truth)
    assert caught.value.series == (
        "vllm:request_success_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:time_to_first_token_seconds_bucket",
    )
    assert (
        "the pods are scraped (1 metric name) but export no vLLM metrics: engine metrics are off "
        "(--disable-log-stats) or the engine is not vLLM; turn the engine's metrics on and scrape its "
        "/metrics, or pass --engine"
    ) in caught.value.line()


def test_a_wrong_namespace_says_so(week: Backfilled, prom: Prometheus) -> None:
    truth = week.truth["ml"]
    with pytest.raises(MissingSeriesError) as caught:
        fetch_history(prom, namespace="nope", pods=truth.pods, engine="vllm", since="1h", end=truth.end)
    assert "Prometheus holds no series at all for these pods: the namespace or the pod regex is wrong" in str(
        caught.value
    )
    assert "kubectl get pods -n nope" in str(caught.value)


def test_replicas_fall_back_to_the_pods_reporting(week: Backfilled, prom: Prometheus) -> None:
    """Without a workload name (no kube-state-metrics lookup): the number of pods reporting; a pod that
    went away stays visible for Prometheus' 5-minute lookback, so the count may lag a scale-down."""
    truth = week.truth["ml-underscore"]
    got = fetch_history(
        prom,
        namespace=truth.namespace,
        pods=truth.pods,
        engine="vllm",
        since=truth.end - truth.start,
        end=truth.end,
    )
    assert got.sources["replicas"] == "count of pods reporting vllm_num_requests_running"
    assert np.all(got.replicas >= truth.replicas)
    assert np.mean(got.replicas == truth.replicas) > 0.8


def test_the_replay_of_the_known_model_is_close(week: Backfilled, history: History) -> None:
    """Calibrated on the week and replayed with the policy that made it, the model reproduces what was
    observed: TTFT p95 (both through vLLM's buckets) and Ready replica-hours within 5 % (measured: 3.5 % and
    0.3 %: 40.5 ms against 39.1 ms, 262.3 against 261.5 replica-hours)."""
    truth = week.truth["ml"]
    spec = truth.workload_spec
    calibration = calibrate(history, sim.engine_profile(spec.engine))
    assert calibration.source == "fitted"
    result = replay(
        history, calibration, sim.coldstart_profile(spec.coldstart), parse_policies(spec.policy)[0], seed=7
    )
    assert result.ttft_p95_error is not None and result.replica_hours_error is not None
    assert result.ttft_p95_error < 0.05, result.to_dict()
    assert result.replica_hours_error < 0.05, result.to_dict()
    assert not result.large
    assert result.ttft_p95_error < LARGE_TTFT_ERROR and result.replica_hours_error < LARGE_REPLICA_HOURS_ERROR
    doc = result.to_dict()
    assert {"observedTtftP95", "predictedTtftP95", "observedReplicaHours", "predictedReplicaHours"} <= set(
        doc
    )


def test_the_calibration_recovers_the_preset_it_was_made_with(history: History) -> None:
    """The week was generated by the 8b preset: the fitted inter-token latency line is the preset's, within
    20 % (measured: 5.0 / 12.3 ms against 4.6 / 12.7 ms); the prefill rate, read through 20 ms-wide
    buckets, within 15 % (measured 22,391 against 25,000 tokens/s); the capacity is the preset's, the week
    having seldom queued."""
    preset = sim.engine_profile("8b")
    got = calibrate(history, preset).profile
    assert got.itl_min_s == pytest.approx(preset.itl_min_s, rel=0.2)
    assert got.itl_sat_s == pytest.approx(preset.itl_sat_s, rel=0.2)
    assert got.prefill_tps == pytest.approx(preset.prefill_tps, rel=0.15)
    assert got.decode_tps == preset.decode_tps
