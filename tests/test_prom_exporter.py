"""The test exporters serve what the tests set, in both exposition formats Prometheus may ask for."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.support.exporter import Exporter, ReplayServer, vllm_v1
from tests.support.paths import METRICS

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exp = Exporter().start()
    try:
        yield exp
    finally:
        exp.stop()


def fetch(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def samples(text: str, openmetrics: bool) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = parse_openmetrics(text) if openmetrics else parse_text(text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_values_set_are_served(exporter: Exporter, accept: str | None) -> None:
    vllm_v1(
        exporter, "ml", "p1", waiting=4, running=2, kv_cache=0.5, generation_tokens=10, ttft=(0.08, 0.3, 7)
    )
    content_type, text = fetch(exporter.url, accept)
    assert ("openmetrics" in content_type) == bool(accept)
    got = samples(text, bool(accept))
    labels = (
        ("engine", "0"),
        ("model_name", "meta-llama/Llama-3.1-8B-Instruct"),
        ("namespace", "ml"),
        ("pod", "p1"),
    )
    by_base = {name.replace(":", "_"): value for (name, lbls), value in got.items() if lbls == labels}
    assert by_base["vllm_num_requests_waiting"] == 4
    assert by_base["vllm_kv_cache_usage_perc"] == 0.5
    assert by_base["vllm_generation_tokens_total"] == 10
    assert by_base["vllm_time_to_first_token_seconds_count"] == 3
    assert by_base["vllm_time_to_first_token_seconds_sum"] == pytest.approx(7.38)
    buckets = {
        dict(lbls)["le"]: v for (name, lbls), v in got.items() if name.endswith("first_token_seconds_bucket")
    }
    assert buckets["0.1"] == 1 and buckets["0.5"] == 2 and buckets["5.0"] == 2 and buckets["+Inf"] == 3
    if accept is None:  # the classic text format keeps the colon
        assert ("vllm:num_requests_waiting", labels) in got


def test_set_and_remove_change_the_page(exporter: Exporter) -> None:
    exporter.set("tgi_queue_size", 1, {"pod": "a"})
    exporter.set("tgi_queue_size", 2, {"pod": "b"})
    exporter.remove("tgi_queue_size", {"pod": "a"})
    got = samples(fetch(exporter.url)[1], False)
    assert got == {("tgi_queue_size", (("pod", "b"),)): 2.0}
    with pytest.raises(ValueError):
        exporter.set("tgi_queue_size", 1, {"pod": "b"}, kind="counter")


def test_replay_serves_the_real_page_verbatim() -> None:
    page = METRICS / "metrics_1.txt"
    if not page.exists():
        pytest.skip(f"{page} missing")
    server = ReplayServer(page)
    try:
        content_type, text = fetch(f"http://{server.target}/metrics", OPENMETRICS)
    finally:
        server.stop()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert text == page.read_text()
