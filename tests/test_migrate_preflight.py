"""migrate-hpa --apply's query preflight against the real Prometheus (tests/support/prometheus.py)
and the test API server: one series (value vs threshold), none (a workload with no pods scraped; a
renamed metric), several (no sum; through the shared check doctor uses too), Prometheus down, no URL."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubectl_gpuscale.autoscale.apply import query_preflight
from kubectl_gpuscale.autoscale.querycheck import check_query
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.prom import Prometheus
from tests.support.keda_sim import keda_operator
from tests.support.kube_fixtures import TestApiServer
from tests.support.prometheus import PrometheusServer

NS = "ml"
KEDA = keda_operator()
WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration",
    "metadata": {"name": "keda-admission"},
    "webhooks": [],
}


def _vllm(name: str) -> list[dict[str, Any]]:
    """A vLLM Deployment on one GPU and its CPU HPA (pods would be NAME-<hash>-<id>)."""
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    return [deploy, hpa]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Prometheus from the environment or a local config file of the person running the tests."""
    monkeypatch.delenv("GPUSCALE_PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _seed(apiserver: TestApiServer, *names: str) -> None:
    apiserver.enable_group("keda.sh")
    apiserver.seed(*[obj for name in names for obj in _vllm(name)], KEDA, WEBHOOK)


def _run(apiserver: TestApiServer, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, *args], env=env
    )


def _warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def _waiting(prometheus_server: PrometheusServer, namespace: str, prefix: str) -> float:
    return float(
        sum(
            p.values["waiting"]
            for p in prometheus_server.fleet
            if p.namespace == namespace and p.pod.startswith(prefix) and "waiting" in p.values
        )
    )


def test_one_series_shows_value_against_threshold(
    apiserver: TestApiServer, prometheus_server: PrometheusServer, clean_env: None
) -> None:
    _seed(apiserver, "llama")
    result = _run(apiserver, "llama", "--apply", "--prometheus", prometheus_server.url)
    assert result.exit_code == 0, result.output
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "llama", NS)
    assert so is not None
    threshold = float(so["spec"]["triggers"][0]["metadata"]["threshold"])
    value = _waiting(prometheus_server, NS, "llama-")
    assert value > 0
    assert not _warnings(result), result.stderr
    expected = f"trigger queue: one series, {value:g} now vs threshold {threshold:g} per replica"
    assert f"preflight: ScaledObject {NS}/llama {expected}" in result.stderr
    assert f"Prometheus at {prometheus_server.url} (--prometheus)" in result.stderr


def test_url_from_environment_and_no_series_for_unscraped_pods(
    apiserver: TestApiServer, prometheus_server: PrometheusServer, clean_env: None
) -> None:
    # "mistral" has no pods in Prometheus: its scoped query returns nothing although the metric exists.
    _seed(apiserver, "llama", "mistral")
    result = _run(apiserver, "--all", "--apply", env={"GPUSCALE_PROMETHEUS_URL": prometheus_server.url})
    assert result.exit_code == 0, result.output
    assert (
        apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "mistral", NS) is not None
    )  # only a warning
    (warning,) = _warnings(result)
    assert warning.startswith(
        f"warning: ScaledObject {NS}/mistral trigger queue: the query returns no series now ("
    )
    assert "exists but no series match the query's labels" in warning
    assert "vllm_num_requests_waiting" in warning  # the form the engines job stores
    assert "KEDA holds 2 replica(s) (fallback)" in warning and "pass --query" in warning
    assert f"preflight: ScaledObject {NS}/llama trigger queue: one series" in result.stderr
    assert "($GPUSCALE_PROMETHEUS_URL)" in result.stderr
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "llama", NS)
    assert prometheus_server.url not in so["spec"]["triggers"][0]["metadata"]["serverAddress"]


def test_renamed_metric_in_query_names_the_current_one(
    apiserver: TestApiServer, prometheus_server: PrometheusServer, clean_env: None
) -> None:
    _seed(apiserver, "llama")
    old = 'sum({__name__=~"vllm[:_]gpu_cache_usage_perc", namespace="ml", pod=~"llama-.*"})'
    result = _run(
        apiserver,
        "llama",
        "--apply",
        "--dry-run=server",
        "--query",
        old,
        "--target-queue",
        "0.8",
        "--prometheus",
        prometheus_server.url,
    )
    assert result.exit_code == 0, result.output
    (warning,) = _warnings(result)
    assert "trigger query: the query returns no series now" in warning
    assert "Prometheus holds vllm_kv_cache_usage_perc (the current name)" in warning
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "llama", NS) is None  # server dry run


def test_prometheus_down_is_one_warning_and_the_migration_goes_on(
    apiserver: TestApiServer, clean_env: None
) -> None:
    _seed(apiserver, "llama", "mistral")
    result = _run(
        apiserver,
        "--all",
        "--apply",
        "--kv-cache",
        "0.8",
        "--prometheus",
        "http://127.0.0.1:9",
        "--request-timeout",
        "2s",
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and result.exception is None
    (warning,) = _warnings(result)
    assert warning.startswith(
        "warning: trigger queries not checked: cannot reach Prometheus at http://127.0.0.1:9"
    )
    assert "connection refused" in warning and "the migration goes on" in warning
    for name in ("llama", "mistral"):
        assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", name, NS) is not None


def test_no_prometheus_known_says_so(apiserver: TestApiServer, clean_env: None) -> None:
    _seed(apiserver, "llama")
    result = _run(apiserver, "llama", "--apply")
    assert result.exit_code == 0, result.output
    assert "preflight: trigger queries not checked: no Prometheus URL known" in result.stderr
    assert not _warnings(result)


# ---- the shared check (doctor's GS004/GS005 and this preflight) on the real Prometheus ----------


def test_shared_check_counts_series_without_sum(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    pods = [p for p in prometheus_server.fleet if p.namespace == NS and p.engine == "vllm-v1"]
    check = check_query(prometheus, '{__name__=~"vllm[:_]num_requests_waiting", namespace="ml"}', 5)
    assert check.error is None and check.series == len(pods) == 2 and check.value is None
    assert sorted(v for v in check.values if v is not None) == sorted(p.values["waiting"] for p in pods)
    summed = check_query(prometheus, 'sum({__name__=~"vllm[:_]num_requests_waiting", namespace="ml"})', 5)
    assert summed.series == 1 and summed.value == _waiting(prometheus_server, NS, "")
    assert summed.wanted_replicas == -(-int(summed.value) // 5)


def test_query_preflight_warns_on_several_series(prometheus: Prometheus) -> None:
    from kubectl_gpuscale.autoscale.builders import prometheus_trigger, scaled_object

    so = scaled_object(
        name="llama",
        namespace=NS,
        target={"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama"},
        min_replicas=1,
        max_replicas=4,
        adopt_hpa="llama",
        behavior={},
        fallback_replicas=2,
        annotations={},
        polling=15,
        cooldown=600,
        triggers=[
            prometheus_trigger(
                "queue", "http://x:9090", '{__name__=~"vllm[:_]num_requests_waiting", namespace="ml"}', "5"
            )
        ],
    )
    (finding,) = query_preflight(prometheus, [so])
    assert finding.level == "warning"
    assert finding.text == (
        f"ScaledObject {NS}/llama trigger queue: the query returns 2 series now (KEDA needs "
        "exactly one): wrap it in sum(...)"
    )
    rejected = copy.deepcopy(so)
    rejected["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm:num_requests_waiting{"
    (bad,) = query_preflight(prometheus, [rejected])
    assert (
        bad.level == "warning"
        and "Prometheus rejected the query" in bad.text
        and "fix the PromQL" in bad.text
    )
