"""Pure tests for the PromQL builders and the Prometheus URL settings (no server)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.prom import promql
from kubectl_gpuscale.prom.settings import ENV_TOKEN, ENV_URL, normalize_url, resolve_token, resolve_url


@pytest.mark.parametrize(
    "name, variants",
    [
        ("vllm:num_requests_waiting", ("vllm:num_requests_waiting", "vllm_num_requests_waiting")),
        ("trtllm:request_success_total", ("trtllm:request_success_total", "trtllm_request_success_total")),
        ("tgi_queue_size", ("tgi_queue_size",)),
        ("DCGM_FI_DEV_GPU_UTIL", ("DCGM_FI_DEV_GPU_UTIL",)),
    ],
)
def test_name_variants(name: str, variants: tuple[str, ...]) -> None:
    assert promql.name_variants(name) == variants


@pytest.mark.parametrize("name", ["vllm:num_requests_waiting", "sglang:num_queue_reqs", "a:b:c"])
def test_name_regex_matches_exactly_both_forms(name: str) -> None:
    pattern = re.compile(promql.name_regex(name))
    assert pattern.fullmatch(name)
    assert pattern.fullmatch(name.replace(":", "_"))
    assert not pattern.fullmatch(name + "_total")
    assert not pattern.fullmatch(name.replace(":", "x", 1))


def test_name_matcher_forms() -> None:
    assert promql.name_matcher("vllm:num_requests_waiting") == '{__name__=~"vllm[:_]num_requests_waiting"}'
    assert (
        promql.name_matcher("vllm:num_requests_waiting", {"namespace": "ml", "pod": ("=~", "a|b")})
        == '{__name__=~"vllm[:_]num_requests_waiting", namespace="ml", pod=~"a|b"}'
    )
    assert promql.name_matcher("tgi_queue_size", {"namespace": "ml"}) == 'tgi_queue_size{namespace="ml"}'
    assert promql.selector("tgi_queue_size") == "tgi_queue_size"


def test_names_matcher_is_sorted_and_deduplicated() -> None:
    got = promql.names_matcher(
        ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"], {"job": "x"}
    )
    assert got == '{__name__=~"vllm[:_]gpu_cache_usage_perc|vllm[:_]kv_cache_usage_perc", job="x"}'
    with pytest.raises(InputError):
        promql.names_matcher([])


@pytest.mark.parametrize("bad", ["", "1abc", "vllm num", "sum(x)", 'x{a="b"}', "vllm-queue"])
def test_invalid_metric_names_are_input_errors(bad: str) -> None:
    assert not promql.is_metric_name(bad)
    with pytest.raises(InputError) as err:
        promql.name_matcher(bad)
    assert err.value.exit_code == 2


def test_quote_and_regex_escape() -> None:
    assert promql.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert promql.regex_escape("llama.v2-0") == "llama\\.v2-0"
    assert promql.regex_union(["b.x", "a", "b.x"]) == "a|b\\.x"
    assert re.fullmatch(promql.regex_union(["llama.a", "llama.b"]), "llama.a")
    assert not re.fullmatch(promql.regex_union(["llama.a"]), "llamaxa")


def test_label_matchers_reject_bad_input() -> None:
    with pytest.raises(InputError):
        promql.label_matchers({"bad-label": "x"})
    with pytest.raises(InputError):
        promql.label_matchers({"pod": ("==", "x")})
    assert promql.label_matchers({"a": ("!~", "x.*")}) == ['a!~"x.*"']


def test_namespace_scope() -> None:
    assert promql.namespace_scope(None) == {"pod": ("!=", "")}
    assert promql.namespace_scope(["ml"]) == {"namespace": "ml", "pod": ("!=", "")}
    assert promql.namespace_scope(["b", "a", "a"], promql.EXPORTED_POD_LABELS) == {
        "exported_namespace": ("=~", "a|b"),
        "exported_pod": ("!=", ""),
    }


def test_by_pod_builders() -> None:
    assert (
        promql.gauge_by_pod("vllm:num_requests_waiting", ["ml"])
        == 'sum by (namespace, pod) ({__name__=~"vllm[:_]num_requests_waiting", namespace="ml", pod!=""})'
    )
    assert (
        promql.gauge_by_pod("DCGM_FI_DEV_GPU_UTIL", None, promql.EXPORTED_POD_LABELS, "max")
        == 'max by (exported_namespace, exported_pod) (DCGM_FI_DEV_GPU_UTIL{exported_pod!=""})'
    )
    assert (
        promql.rate_by_pod("vllm:generation_tokens_total", "1m")
        == 'sum by (namespace, pod) (rate({__name__=~"vllm[:_]generation_tokens_total", pod!=""}[1m]))'
    )
    assert (
        promql.quantile_by_pod("vllm:time_to_first_token_seconds", 0.95)
        == "histogram_quantile(0.95, sum by (namespace, pod, le) "
        '(rate({__name__=~"vllm[:_]time_to_first_token_seconds_bucket", pod!=""}[2m])))'
    )
    with pytest.raises(InputError):
        promql.quantile_by_pod("x", 1.5)
    with pytest.raises(InputError):
        promql.by_pod("x", aggregate="median")
    assert promql.EXPORTED_POD_LABELS.exported and not promql.POD_LABELS.exported


def test_url_precedence_flag_env_config() -> None:
    env = {ENV_URL: "http://from-env:9090/"}
    assert resolve_url("http://flag:9090", configured="http://cfg:9090", env=env).url == "http://flag:9090"
    got = resolve_url(None, configured="http://cfg:9090", env=env)
    assert (got.url, got.source) == ("http://from-env:9090", f"${ENV_URL}")
    got = resolve_url(None, configured="https://cfg:9090/prom/", env={})
    assert (got.url, got.source) == ("https://cfg:9090/prom", "the install config")
    with pytest.raises(InputError) as err:
        resolve_url(None, env={})
    assert "--prometheus" in err.value.line()


@pytest.mark.parametrize("bad", ["prometheus:9090", "ftp://x", "http://", "http://x:9090/?q=1"])
def test_bad_urls_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError):
        normalize_url(bad)


def test_token_precedence() -> None:
    assert resolve_token("t1", env={ENV_TOKEN: "t2"}) == "t1"
    assert resolve_token(None, env={ENV_TOKEN: "t2"}) == "t2"
    assert resolve_token(None, env={}) is None


def test_pure_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, kubectl_gpuscale.prom, kubectl_gpuscale.prom.promql, kubectl_gpuscale.prom.settings;"
        "bad = [m for m in ('prometheus_api_client', 'requests', 'kubernetes', 'click', 'textual') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
