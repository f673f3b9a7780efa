"""`tune.calibrate` without a server: the fallback to the preset (said), Prometheus' histogram_quantile
arithmetic (prometheus/prometheus promql/quantile.go `bucketQuantile`: linear inside the bucket, the
first bucket from 0, the +Inf bucket answers the highest finite bound), and the replay's JSON keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.policies import parse_policies
from kubectl_gpuscale.tune.calibrate import calibrate, histogram_quantile, replay
from kubectl_gpuscale.tune.history import History

BOUNDS = (0.1, 0.5, 1.0, math.inf)


def flat(steps: int = 240, rate: float = 2.0, ttft: bool = False) -> History:
    """An hour of a steady trickle on one replica."""
    counts = np.zeros((steps, len(BOUNDS) if ttft else 0))
    if ttft:
        counts[:, 0] = rate * 15
    return History(
        namespace="ml",
        workload="deploy/vllm",
        engine="vllm",
        start=0.0,
        step=15.0,
        arrivals=np.full(steps, rate * 15),
        prompt_tokens=512.0,
        output_tokens=256.0,
        replicas=np.ones(steps),
        running=np.full(steps, 5.0),
        waiting=np.zeros(steps),
        ttft_buckets=BOUNDS if ttft else (),
        ttft_counts=counts,
    )


def test_histogram_quantile_is_prometheus_arithmetic() -> None:
    counts = np.array([10.0, 10.0, 0.0, 0.0])
    assert histogram_quantile(0.5, BOUNDS, counts) == pytest.approx(0.1)
    assert histogram_quantile(0.25, BOUNDS, counts) == pytest.approx(0.05)
    assert histogram_quantile(0.75, BOUNDS, counts) == pytest.approx(0.3)
    assert histogram_quantile(0.99, BOUNDS, np.array([0.0, 0.0, 1.0, 99.0])) == 1.0
    assert histogram_quantile(0.5, BOUNDS, np.zeros(4)) is None


def test_a_history_that_constrains_nothing_keeps_the_preset_and_says_why() -> None:
    preset = sim.engine_profile("8b")
    got = calibrate(flat(steps=20), preset)
    assert got.source == "preset" and got.profile == preset and got.fitted == ()
    text = " ".join(got.notes)
    assert "prefill: fewer than 1000 TTFTs" in text
    assert "the workload seldom saturated); preset decode throughput kept" in text
    assert "inter-token latency: fewer than 40 queue-free steps" in text
    assert calibrate(flat(), preset).to_dict()["source"] in ("fitted", "preset")


def test_an_even_load_scales_the_latency_line_and_says_so() -> None:
    got = calibrate(flat(), sim.engine_profile("8b"))
    assert "load too even to fit a slope" in " ".join(got.notes)
    # Little's law: 5 running at 2 req/s is 2.5 s per request
    e = got.profile
    rho = 2.0 / e.throughput(512, 256)
    latency = e.prefill_seconds(512) + 256 * (e.itl_min_s + (e.itl_sat_s - e.itl_min_s) * rho)
    assert latency == pytest.approx(2.5, rel=1e-6)


def test_the_replay_document_has_the_keys_tune_prints() -> None:
    history = flat(ttft=True)
    result = replay(
        history,
        calibrate(history, sim.engine_profile("8b")),
        sim.coldstart_profile("8b-warm"),
        parse_policies("always-on:n=1")[0],
        seed=1,
    )
    doc = result.to_dict()
    assert doc["observedReplicaHours"] == pytest.approx(1.0)
    assert doc["predictedReplicaHours"] == pytest.approx(1.0)
    assert doc["observedTtftP95"] == pytest.approx(0.095)
    assert {"observedTtftP50", "predictedTtftP50", "predictedTtftP95", "ttftP95Error", "large"} <= set(doc)


def test_an_empty_history_cannot_be_replayed() -> None:
    empty = flat()
    empty = History(**{**empty.__dict__, "arrivals": np.zeros(empty.steps)})
    with pytest.raises(InputError, match="it holds no requests"):
        replay(
            empty,
            calibrate(empty, sim.engine_profile("8b")),
            sim.coldstart_profile("8b-warm"),
            parse_policies("always-on:n=1")[0],
            seed=1,
        )


def test_a_history_without_ttft_round_trips() -> None:
    """TGI has no TTFT histogram: its history (no buckets) survives --save-history and loading."""
    history = flat()
    back = History.from_json(history.to_json())
    assert back.ttft_buckets == () and back.ttft_counts.shape == (history.steps, 0)
    np.testing.assert_array_equal(back.arrivals, history.arrivals)
