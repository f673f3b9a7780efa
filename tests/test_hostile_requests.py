"""Requests against a stalled or partly forbidden API server (issue 15).

A request that is not a watch or a stream must answer within `DEFAULT_REQUEST_TIMEOUT` (30 s, like
`kubectl --request-timeout` but with a default; `0` means none), so `status` and `top --once` against
a server that accepts and never answers end with one clear line. A forbidden optional kind (events,
HPAs, scalers) degrades its part of `top` with the `kubectl auth can-i` line, while the rest updates.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubectl_gpuscale.errors import UnreachableError
from kubectl_gpuscale.tui.sources.live import LiveSource
from tests.support.kube_fixtures import TestApiServer
from tests.support.measure import run_measured
from tests.support.stalled import kubeconfig_for, stalled_server
from tests.test_tui_live import _seed_llama


@pytest.mark.parametrize("command", [["status"], ["top", "--once"]])
def test_stalled_server_answers_with_a_timeout(tmp_path: Path, command: list[str]) -> None:
    """The server accepts and never answers (was: hung for ever)."""
    with stalled_server() as port:
        kubeconfig = kubeconfig_for(port, tmp_path / "kubeconfig")
        result = run_measured(
            [*command, "--kubeconfig", str(kubeconfig), "--request-timeout", "1s"], timeout=20
        )
    assert result.code == 1, (result.code, result.stderr)
    assert result.seconds < 15
    assert (
        "timed out" in result.stderr and "within 1s" in result.stderr and "--request-timeout" in result.stderr
    )
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_the_default_timeout_applies_without_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_gpuscale import kube
    from kubectl_gpuscale.kube import Cluster, transport

    assert kube.DEFAULT_REQUEST_TIMEOUT == 30.0
    monkeypatch.setattr(transport, "DEFAULT_REQUEST_TIMEOUT", 0.5)
    with stalled_server() as port:
        cluster = Cluster.connect(kubeconfig=str(kubeconfig_for(port, tmp_path / "kubeconfig")))
        assert cluster.default_timeout == 0.5
        started = time.monotonic()
        with pytest.raises(UnreachableError, match="timed out"):
            cluster.list("apps/v1", "Deployment", "ml")
        assert time.monotonic() - started < 5


def test_zero_means_no_timeout(tmp_path: Path) -> None:
    from kubectl_gpuscale.kube import Cluster

    with stalled_server() as port:
        config = str(kubeconfig_for(port, tmp_path / "kubeconfig"))
        assert Cluster.connect(kubeconfig=config, request_timeout=0.0).default_timeout is None
        assert Cluster.connect(kubeconfig=config, request_timeout=2.0).default_timeout == 2.0


@pytest.mark.parametrize("value", ["nan", "1e400", "inf", "-1s", "soon"])
def test_request_timeout_must_be_a_finite_duration(value: str) -> None:
    result = run_measured(["status", f"--request-timeout={value}"])
    assert result.code == 2 and "Invalid value for '--request-timeout'" in result.stderr, result.stderr


def test_forbidden_events_degrade_only_the_events(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster

    _seed_llama(apiserver)
    apiserver.deny("list", "events")
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    snapshot = source.refresh()
    assert [w.name for w in snapshot.workloads] == ["llama"]
    assert "events: forbidden, `kubectl auth can-i list events -n ml`" in snapshot.problems


def test_forbidden_hpas_name_the_group(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster

    _seed_llama(apiserver)
    apiserver.deny("list", "horizontalpodautoscalers.autoscaling")
    snapshot = LiveSource(
        lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml"
    ).refresh()
    assert [w.name for w in snapshot.workloads] == ["llama"]
    assert any("can-i list horizontalpodautoscalers.autoscaling -n ml" in p for p in snapshot.problems)


def test_top_once_exits_0_with_a_warning_when_only_events_are_forbidden(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    apiserver.deny("list", "events")
    result = run_measured(["top", "--once", "--kubeconfig", apiserver.kubeconfig, "-n", "ml"], timeout=30)
    assert result.code == 0, result.stderr
    assert "llama" in result.stdout
    assert "warning: events: forbidden, `kubectl auth can-i list events -n ml`" in result.stderr


def test_top_once_fails_when_pods_are_forbidden(apiserver: TestApiServer) -> None:
    _seed_llama(apiserver)
    apiserver.deny("list", "pods")
    result = run_measured(["top", "--once", "--kubeconfig", apiserver.kubeconfig, "-n", "ml"], timeout=30)
    assert result.code == 1 and "forbidden" in result.stderr, result.stderr


async def test_dashboard_events_panel_says_why_it_is_empty(apiserver: TestApiServer) -> None:
    """The real live source against the test API server with `list events` denied, in the real app."""
    from textual.widgets import RichLog

    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.tui.app import TopApp

    _seed_llama(apiserver)
    apiserver.deny("list", "events")
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = "".join(strip.text for strip in app.query_one("#events", RichLog).lines)
        assert "events: forbidden, `kubectl auth can-i list events -n ml`" in text
        assert app.snapshot is not None and [w.name for w in app.snapshot.workloads] == ["llama"]
