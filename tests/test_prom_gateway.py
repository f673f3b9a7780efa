"""The Prometheus gateway against the real Prometheus server scraping real exporters.

Expected values come from the fleet the exporters serve (`populate_fleet`) and from asking the
server directly (plain urllib), never from what we assume Prometheus stored.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from kubectl_gpuscale.errors import ForbiddenError, InputError, NotFoundError, UnreachableError
from kubectl_gpuscale.prom import Prometheus, promql
from tests.support.prometheus import PrometheusServer, free_port

pytestmark = pytest.mark.real_part


def expected(server: PrometheusServer, engines: set[str], key: str) -> dict[tuple[str, str], float]:
    return {(p.namespace, p.pod): float(p.values[key]) for p in server.fleet if p.engine in engines}


# ---- queries ----------------------------------------------------------------------------------


def test_query_returns_plain_samples(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    samples = prometheus.query(promql.name_matcher("tgi_queue_size"))
    got = {(s.labels["namespace"], s.labels["pod"]): s.value for s in samples}
    assert got == expected(prometheus_server, {"tgi"}, "queue")
    assert all(s.labels["job"] == "engines" and s.timestamp > 0 for s in samples)
    scalar = prometheus.query("scalar(count(up))")
    assert len(scalar) == 1 and scalar[0].labels == {}
    assert scalar[0].value == len(prometheus_server.api("/api/v1/targets")["activeTargets"])


def test_query_by_pod_vllm_v0_and_v1_in_one_query(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    got = prometheus.query_by_pod("vllm:num_requests_waiting")
    assert got == expected(prometheus_server, {"vllm-v1", "vllm-v0"}, "waiting")
    assert prometheus.query_by_pod("vllm:num_requests_waiting", ["legacy"]) == expected(
        prometheus_server, {"vllm-v0"}, "waiting"
    )
    assert prometheus.query_by_pod("vllm:num_requests_running", ["ml", "legacy", "nowhere"]) == expected(
        prometheus_server, {"vllm-v1", "vllm-v0"}, "running"
    )


def test_query_by_pod_sglang_and_tgi(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    assert prometheus.query_by_pod("sglang:num_queue_reqs") == expected(
        prometheus_server, {"sglang"}, "queue"
    )
    assert prometheus.query_by_pod("sglang:token_usage", ["chat"]) == expected(
        prometheus_server, {"sglang"}, "token_usage"
    )
    assert prometheus.query_by_pod("tgi_batch_current_size") == expected(prometheus_server, {"tgi"}, "batch")


def test_builders_are_valid_promql_on_the_real_server(prometheus: Prometheus) -> None:
    rates = prometheus.query_by_pod(promql.rate_by_pod("vllm:generation_tokens_total", "1m", ["ml"]))
    assert set(rates) <= {("ml", "llama-7d9f-a"), ("ml", "llama-7d9f-b")}
    assert all(v == 0.0 for v in rates.values())  # the counter is constant
    # The fleet's TTFT observations are (0.08, 0.2, 0.3, 1.2): p50 lies in the 0.1..0.25 bucket, but
    # a rate over a constant histogram is 0 everywhere, so the quantile is NaN and left out.
    ttft = prometheus.query_by_pod(promql.quantile_by_pod("vllm:time_to_first_token_seconds", 0.5, "1m"))
    assert ttft == {}
    raw = prometheus.query(
        "histogram_quantile(0.5, sum by (namespace, pod, le) "
        '({__name__=~"vllm[:_]time_to_first_token_seconds_bucket", namespace="ml"}))'
    )
    assert {s.labels["pod"] for s in raw} == {"llama-7d9f-a", "llama-7d9f-b"}
    assert all(0.1 <= s.value <= 0.25 for s in raw)


def test_query_range(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    now = time.time()
    series = prometheus.query_range(promql.gauge_by_pod("tgi_queue_size"), now - 30, now, "1s")
    assert len(series) == 1
    assert series[0].labels == {"namespace": "tgi", "pod": "falcon-5d7c-a"}
    assert series[0].points and {v for _, v in series[0].points} == {4.0}


def test_a_changed_value_shows_up(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    assert prometheus_server.engines is not None
    labels = {"namespace": "scratch", "pod": "changing-pod", "model_name": "m", "engine": "0"}
    prometheus_server.engines.set("vllm:num_requests_waiting", 11, labels)
    try:
        deadline = time.monotonic() + 15
        while prometheus.query_by_pod("vllm:num_requests_waiting", ["scratch"]) != {
            ("scratch", "changing-pod"): 11.0
        }:
            assert time.monotonic() < deadline, prometheus_server.log_tail()
            time.sleep(0.3)
    finally:
        prometheus_server.engines.remove("vllm:num_requests_waiting", labels)


# ---- names: the colon problem and renames ----------------------------------------------------


def test_resolve_name_finds_what_the_server_really_stored(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    stored = prometheus_server.stored_names()
    for name in ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "vllm:kv_cache_usage_perc"):
        resolved = prometheus.resolve_name([name])
        forms = [f for f in promql.name_variants(name) if f in stored]
        assert forms, f"the server holds no form of {name}"
        assert resolved == forms[0]
    # prometheus_client's OpenMetrics output (which Prometheus negotiates) drops the colon, so the
    # exporter's pods are held under the underscore name: querying the colon name alone misses them.
    if "vllm:num_requests_waiting" not in stored:
        assert prometheus.resolve_name(["vllm:num_requests_waiting"]) == "vllm_num_requests_waiting"
        assert prometheus.query("vllm:num_requests_waiting") == []
    assert prometheus.query_by_pod("vllm:num_requests_waiting")  # the matcher finds them either way


def test_both_forms_held_at_once(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    stored = prometheus_server.stored_names()
    name = "vllm:generation_tokens_total"
    forms = prometheus.name_forms(name)
    assert forms == [f for f in promql.name_variants(name) if f in stored]
    # Real sample pages (text format) keep the colon; the prometheus_client exporter may not.
    assert "vllm:generation_tokens_total" in forms
    pods = set(prometheus.query_by_pod(name))
    series = [prometheus_server.api("/api/v1/series", {"match[]": form}) for form in forms]
    assert pods == {(s["namespace"], s["pod"]) for found in series for s in found}
    assert ("samples", "vllm-sample-1") in pods and ("ml", "llama-7d9f-a") in pods


def test_resolve_name_follows_the_kv_cache_rename(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    candidates = ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]
    stored = prometheus_server.stored_names()

    def held(name: str) -> str:
        return next(f for f in promql.name_variants(name) if f in stored)

    assert prometheus.resolve_name(candidates, {"namespace": "ml"}) == held("vllm:kv_cache_usage_perc")
    assert prometheus.resolve_name(candidates, {"namespace": "legacy"}) == held("vllm:gpu_cache_usage_perc")
    assert prometheus.resolve_name(candidates, {"namespace": "chat"}) is None
    assert prometheus.resolve_name(["vllm:not_a_metric", "vllm:gpu_cache_usage_perc"]) == held(
        "vllm:gpu_cache_usage_perc"
    )
    assert prometheus.resolve_names(
        {"kv": candidates, "queue": ["sglang:num_queue_reqs"], "none": ["nope_x"]}, {"namespace": "chat"}
    ) == {"kv": None, "queue": held("sglang:num_queue_reqs"), "none": None}


def test_metric_exists_is_exact(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    stored = prometheus_server.stored_names()
    assert prometheus.metric_exists("tgi_queue_size")
    assert prometheus.metric_exists("tgi_queue_size", {"namespace": "tgi"})
    assert not prometheus.metric_exists("tgi_queue_size", {"namespace": "ml"})
    assert prometheus.metric_exists("vllm:num_requests_waiting") == ("vllm:num_requests_waiting" in stored)
    assert set(prometheus.series_names('{job="samples"}')) == set(
        prometheus_server.api("/api/v1/label/__name__/values", {"match[]": '{job="samples"}'})
    )


# ---- DCGM pod labels --------------------------------------------------------------------------


def test_dcgm_pod_label_discovery(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    series = prometheus_server.api("/api/v1/series", {"match[]": 'DCGM_FI_DEV_GPU_UTIL{job="dcgm"}'})
    assert series and all("exported_pod" in s for s in series)  # what the server really stored
    assert prometheus.pod_labels("DCGM_FI_DEV_GPU_UTIL", {"job": "dcgm"}) == promql.EXPORTED_POD_LABELS
    assert prometheus.pod_labels("DCGM_FI_DEV_GPU_UTIL", {"job": "engines"}) == promql.POD_LABELS
    assert prometheus.pod_labels("DCGM_FI_DEV_GPU_UTIL") == promql.EXPORTED_POD_LABELS
    assert prometheus.pod_labels("tgi_queue_size") == promql.POD_LABELS
    assert prometheus.pod_labels("prometheus_build_info") is None

    util = prometheus.query_by_pod("DCGM_FI_DEV_GPU_UTIL", labels=promql.EXPORTED_POD_LABELS, aggregate="max")
    assert util == expected(prometheus_server, {"dcgm"}, "util")
    # With the plain labels, the same metric yields the exporter's own pod and the directly scraped one.
    plain = prometheus.query_by_pod("DCGM_FI_DEV_GPU_UTIL", aggregate="max")
    assert plain[("edge", "phi-44b1-a")] == 55.0
    assert ("gpu-operator", "nvidia-dcgm-exporter-6xk2p") in plain


# ---- server and errors ------------------------------------------------------------------------


def test_build_info(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    assert prometheus.build_info()["version"] == prometheus_server.api("/api/v1/status/buildinfo")["version"]


@pytest.mark.parametrize("bad", ["sum(", "rate(vllm_num_requests_waiting)", "vllm:num_requests_waiting{"])
def test_bad_promql_is_an_input_error_with_prometheus_text(prometheus: Prometheus, bad: str) -> None:
    with pytest.raises(InputError) as err:
        prometheus.query(bad)
    assert err.value.exit_code == 2
    assert bad in err.value.what
    assert "parse error" in err.value.why or "expected type range vector" in err.value.why
    assert "\n" not in err.value.line() and "HTTP Status Code" not in err.value.line()


def test_bad_match_selector_is_an_input_error(prometheus: Prometheus) -> None:
    with pytest.raises(InputError) as err:
        prometheus.series_names("{")
    assert "parse error" in err.value.why


def test_unreachable_server_is_a_clear_one_line_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    gateway = Prometheus.connect(url, timeout=2)
    started = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        gateway.query("up")
    assert time.monotonic() - started < 2
    line = err.value.line()
    assert url in line and "connection refused" in line and "port-forward" in line
    assert "\n" not in line and "Traceback" not in line and "HTTPConnectionPool" not in line
    with pytest.raises(UnreachableError):
        gateway.resolve_name(["vllm:num_requests_waiting"])


def test_unresolvable_host() -> None:
    with pytest.raises(UnreachableError) as err:
        Prometheus.connect("http://no-such-host.invalid:9090", timeout=2).build_info()
    assert "no-such-host.invalid" in err.value.what


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections in the backlog, never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(UnreachableError) as err:
            Prometheus.connect(url, timeout=0.5).query("up")
    assert "did not answer within 0.5s" in err.value.why


def test_https_to_a_plain_http_server(prometheus_server: PrometheusServer) -> None:
    url = prometheus_server.url.replace("http://", "https://")
    with pytest.raises(UnreachableError) as err:
        Prometheus.connect(url, timeout=2).query("up")
    assert "TLS" in err.value.why


def test_a_url_that_is_not_prometheus(prometheus_server: PrometheusServer) -> None:
    assert prometheus_server.engines is not None
    exporter = f"http://{prometheus_server.engines.target}"  # answers 200 with metrics text on any path
    with pytest.raises(UnreachableError) as err:
        Prometheus.connect(exporter, timeout=2).query("up")
    assert "not the Prometheus HTTP API" in err.value.why


class _Recorder(BaseHTTPRequestHandler):
    status = 200
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        body = b'{"status":"error","errorType":"unauthorized","error":"no"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "status": 401})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_auth_headers_and_401(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    gateway = Prometheus.connect(url, bearer_token="s3cret", headers={"X-Scope-OrgID": "team-a"}, timeout=2)
    with pytest.raises(ForbiddenError) as err:
        gateway.query("up")
    assert "401" in err.value.why and "GPUSCALE_PROMETHEUS_TOKEN" in err.value.fix
    assert handler.seen[-1]["Authorization"] == "Bearer s3cret"
    assert handler.seen[-1]["X-Scope-OrgID"] == "team-a"
    handler.status = 404
    with pytest.raises(NotFoundError):
        gateway.series_names()
    handler.status = 500
    with pytest.raises(UnreachableError):
        gateway.query("up")
