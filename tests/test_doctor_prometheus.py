"""doctor's live query checks against the real Prometheus (tests/support/prometheus.py): no series
(colon name stored with underscores, renamed KV-cache metric), several series (no sum), a good query
(value now vs threshold), DCGM pod vs exported_pod, and Prometheus down."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gpuscale.doctor import run
from kubectl_gpuscale.doctor.model import Finding
from kubectl_gpuscale.manifests import load
from kubectl_gpuscale.prom import Prometheus
from kubectl_gpuscale.prom.promql import EXPORTED_POD_LABELS, POD_LABELS
from tests.support.paths import MANIFESTS
from tests.support.prometheus import PrometheusServer


def _so(query: str, threshold: str = "5") -> dict[str, Any]:
    """The real production-stack ScaledObject with its query replaced."""
    (item,) = load([str(MANIFESTS / "scaledobject_production-stack_1.yaml")])
    so = copy.deepcopy(item.obj)
    so["spec"]["triggers"][0]["metadata"].update({"query": query, "threshold": threshold})
    return so


def _live(prometheus: Prometheus, query: str, threshold: str = "5") -> list[Finding]:
    return run([_so(query, threshold)], prometheus)


def _rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def test_colon_query_when_prometheus_holds_the_underscore_form(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    stored = prometheus_server.stored_names()
    query = 'sum(vllm:num_requests_waiting{namespace="ml"})'
    findings = _live(prometheus, query)
    if (
        "vllm:num_requests_waiting" in stored
        and prometheus_server.api("/api/v1/query", {"query": query})["result"]
    ):
        pytest.fail(
            "the fixture stores the colon form for namespace ml; this test expects the OpenMetrics rename"
        )
    assert "vllm_num_requests_waiting" in stored
    (no_series,) = _rule(findings, "GS004")
    assert no_series.severity == "error" and no_series.extra["series"] == 0
    assert "Prometheus holds vllm_num_requests_waiting, not vllm:num_requests_waiting" in no_series.message
    (form,) = [f for f in _rule(findings, "GS007") if f.extra.get("metric") == "vllm:num_requests_waiting"]
    assert "vllm_num_requests_waiting" in form.value and "underscore form" in form.message
    assert not _rule(findings, "GS005")  # the live answer replaces the static guess


def test_renamed_kv_cache_metric_returns_nothing(prometheus: Prometheus) -> None:
    findings = _live(prometheus, 'sum({__name__=~"vllm[:_]gpu_cache_usage_perc", namespace="ml"})', "0.8")
    (f,) = _rule(findings, "GS004")
    assert "Prometheus holds vllm_kv_cache_usage_perc (the current name)" in f.message
    assert "vllm_gpu_cache_usage_perc exists but not with these labels" in f.message  # the V0 pod, elsewhere
    assert _rule(findings, "GS006")  # and the static rename rule says the same


def test_several_series_without_sum(prometheus: Prometheus, prometheus_server: PrometheusServer) -> None:
    pods = [p for p in prometheus_server.fleet if p.namespace == "ml" and p.engine == "vllm-v1"]
    findings = _live(prometheus, '{__name__=~"vllm[:_]num_requests_waiting", namespace="ml"}')
    (f,) = _rule(findings, "GS005")
    assert f.severity == "error" and f.extra["series"] == len(pods) == 2
    assert sorted(f.extra["values"]) == sorted(p.values["waiting"] for p in pods)
    assert not _rule(findings, "GS004")


def test_good_query_reports_value_against_threshold(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    expected = sum(
        p.values["waiting"] for p in prometheus_server.fleet if p.namespace == "ml" and p.engine == "vllm-v1"
    )
    findings = _live(prometheus, 'sum({__name__=~"vllm[:_]num_requests_waiting", namespace="ml"})', "5")
    assert not _rule(findings, "GS004") and not _rule(findings, "GS005")
    (value,) = [f for f in _rule(findings, "GS007") if "value" in f.extra]
    assert value.extra["value"] == expected and value.extra["threshold"] == 5.0
    assert f"{expected:g} now vs threshold 5" in value.message


def test_colon_form_held_by_real_sample_pages(prometheus: Prometheus) -> None:
    # the real /metrics pages are served in text format 0.0.4: the colon name is stored as written
    findings = _live(prometheus, 'sum(vllm:cpu_cache_usage_perc{namespace="samples"})', "0.5")
    assert not _rule(findings, "GS004")
    (form,) = [f for f in _rule(findings, "GS007") if f.extra.get("metric") == "vllm:cpu_cache_usage_perc"]
    assert "vllm:cpu_cache_usage_perc" in form.extra["held"] and "colon form" in form.message


def test_dcgm_query_on_pod_where_prometheus_holds_exported_pod(prometheus: Prometheus) -> None:
    assert prometheus.pod_labels("DCGM_FI_DEV_GPU_UTIL") == EXPORTED_POD_LABELS
    wrong = _live(prometheus, 'avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml", pod=~"llama-.*"})', "80")
    (f,) = _rule(wrong, "GS023")
    assert f.value == "pod" and f.extra["held"] == "exported_pod"
    right = _live(
        prometheus, 'avg(DCGM_FI_DEV_GPU_UTIL{exported_namespace="ml", exported_pod=~"llama-.*"})', "80"
    )
    assert not _rule(right, "GS023") and not _rule(right, "GS004")


class _PodOnly:
    """A Prometheus whose DCGM series carry `pod` (honorLabels true): the reverse mistake."""

    def query(self, promql: str) -> list[Any]:
        return []

    def name_forms(self, name: str) -> list[str]:
        return [name]

    def pod_labels(self, metric: str) -> Any:
        return POD_LABELS


def test_dcgm_query_on_exported_pod_where_only_pod_exists() -> None:
    findings = run([_so('avg(DCGM_FI_DEV_GPU_UTIL{exported_pod=~"llama-.*"})')], _PodOnly())
    (f,) = _rule(findings, "GS023")
    assert f.value == "exported_pod"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubectl-gpuscale"), "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cli_checks_file_queries_live(prometheus_server: PrometheusServer, tmp_path: Path) -> None:
    path = tmp_path / "so.yaml"
    path.write_text(yaml.safe_dump(_so('{__name__=~"vllm[:_]num_requests_waiting", namespace="ml"}')))
    result = _cli("-f", str(path), "--prometheus", prometheus_server.url, "-o", "json")
    assert result.returncode == 1, result.stderr
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert "GS005" in rules
    by_env = _cli("-f", str(path), "-o", "json", env={"GPUSCALE_PROMETHEUS_URL": prometheus_server.url})
    assert json.loads(by_env.stdout)["findings"] == json.loads(result.stdout)["findings"]


def test_cli_prometheus_down(tmp_path: Path) -> None:
    path = tmp_path / "so.yaml"
    path.write_text(yaml.safe_dump(_so("sum(vllm:num_requests_waiting)")))
    explicit = _cli("-f", str(path), "--prometheus", "http://127.0.0.1:9", "--request-timeout", "2s")
    assert explicit.returncode == 1 and explicit.stderr.startswith("error: ") and explicit.stdout == ""
    assert "Traceback" not in explicit.stderr
    from_env = _cli(
        "-f",
        str(path),
        "-o",
        "json",
        "--request-timeout",
        "2s",
        env={"GPUSCALE_PROMETHEUS_URL": "http://127.0.0.1:9"},
    )
    assert "static checks only" in from_env.stderr
    assert from_env.returncode == 0 and {f["rule"] for f in json.loads(from_env.stdout)["findings"]} >= {
        "GS008"
    }
