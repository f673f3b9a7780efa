"""One Prometheus resolver (`kubectl_gpuscale.prom.resolve`): flag > env > install record > discovery,
used by doctor, migrate-hpa, status and top (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_gpuscale import config
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE
from kubectl_gpuscale.prom import resolve
from kubectl_gpuscale.prom.settings import ENV_TOKEN, ENV_URL
from tests.support.kube_fixtures import TestApiServer
from tests.support.measure import run_measured
from tests.support.prometheus import PrometheusServer
from tests.test_tui_live import _seed_llama


def _record(apiserver: TestApiServer, url: str) -> None:
    apiserver.seed(config.config_map({config.KEY_PROMETHEUS: url}))


def test_top_reads_the_prometheus_recorded_at_install(
    apiserver: TestApiServer, prometheus_server: PrometheusServer, tmp_path: Path
) -> None:
    """No flag, no $GPUSCALE_PROMETHEUS_URL: top uses the URL `install` wrote to the ConfigMap, as doctor
    does (was: top resolved the flag and the environment only, and showed empty metric columns)."""
    _seed_llama(apiserver)
    _record(apiserver, prometheus_server.url)
    result = run_measured(
        ["top", "--once", "-o", "json", "--kubeconfig", apiserver.kubeconfig, "-n", "ml"],
        env={ENV_URL: "", ENV_TOKEN: "", "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=30,
    )
    assert result.code == 0, result.stderr
    (llama,) = json.loads(result.stdout)["workloads"]
    assert llama["queue_waiting"] is not None
    assert "no Prometheus configured" not in result.stdout + result.stderr


def test_a_token_from_the_environment_never_goes_to_the_recorded_url(
    apiserver: TestApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_gpuscale.kube import Cluster

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    _record(apiserver, "http://recorded.monitoring.svc:9090")
    cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)
    env = {ENV_TOKEN: "s3cret"}
    got = resolve.resolve(None, cluster, env=env)
    assert (got.url, got.token, got.token_withheld) == ("http://recorded.monitoring.svc:9090", None, True)
    assert got.source == f"ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME}"
    given = resolve.resolve("http://flag:9090", cluster, env=env)
    assert (given.url, given.token) == ("http://flag:9090", "s3cret")
    assert resolve.resolve(None, cluster, env={**env, ENV_URL: "http://env:9090"}).token == "s3cret"


def test_discovery_comes_last_and_only_when_asked(
    apiserver: TestApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_gpuscale.kube import Cluster

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "prometheus-operated", "namespace": "monitoring"},
            "spec": {"ports": [{"name": "web", "port": 9090}]},
        }
    )
    cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)
    with pytest.raises(InputError) as exc:
        resolve.resolve(None, cluster, env={})
    assert exc.value.what == resolve.NO_URL
    found = resolve.resolve(None, cluster, discover=True, env={})
    assert found.url == "http://prometheus-operated.monitoring.svc:9090" and found.source.startswith(
        "discovered"
    )
    _record(apiserver, "http://recorded:9090")
    assert resolve.resolve(None, cluster, discover=True, env={}).url == "http://recorded:9090"


def test_a_bad_recorded_url_names_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config.save_local("c1", {config.KEY_PROMETHEUS: "ftp://nowhere"})
    with pytest.raises(InputError) as exc:
        resolve.resolve(None, None, context="c1", env={})
    assert exc.value.what.startswith("invalid Prometheus URL") and "local file" in exc.value.what
