"""Pytest fixtures around the test API server (imported by tests/conftest.py).

- ``apiserver``: a fresh `ApiServer` per test, with ``.url``, ``.kubeconfig`` (a file:
  context ``test``, namespace ``default``, bearer token), ``.seed(...)`` and every
  `ApiServer` helper.
- ``cluster``: ``Cluster.connect(kubeconfig=apiserver.kubeconfig)``.
- ``kubectl``: run the real kubectl binary against the server (``kubectl("get", "deploy", "-n", "ml")``),
  with the virtualenv's ``bin`` first on PATH so ``kubectl gpuscale`` finds the plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import admission_keda
from tests.support.apiserver import ApiServer

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

VENV_BIN = Path(sys.executable).parent
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
"""The ``kubectl`` fixture: ``kubectl(*args, input=None, check=False, timeout=60)``."""


class TestApiServer(ApiServer):
    """An `ApiServer` that also knows the kubeconfig file written for it."""

    __test__ = False  # not a pytest test class
    kubeconfig: str
    keda_webhook: admission_keda.KedaWebhook


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[TestApiServer]:
    """A fresh test API server for one test, with a kubeconfig file at ``apiserver.kubeconfig``.

    KEDA's ScaledObject webhook of the pinned KEDA version guards every ScaledObject written
    through the API (``apiserver.keda_webhook``; set its ``version`` to test another).
    """
    from kubectl_gpuscale.install.catalog import KEDA

    server = TestApiServer()
    server.keda_webhook = admission_keda.install(server, KEDA.version)
    server.start()
    server.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """A test API server serving no add-on group (no KEDA, no Knative) until CRDs are applied, with
    private config and cache directories, no Prometheus URL and no helm on PATH unless a test puts one."""
    server = ApiServer(optional_groups=())
    server.start()
    server.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")  # type: ignore[attr-defined]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("GPUSCALE_PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-helm"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(apiserver: TestApiServer) -> Cluster:
    """A `kubectl_gpuscale.kube.Cluster` connected to ``apiserver`` through its kubeconfig."""
    from kubectl_gpuscale.kube import Cluster

    return Cluster.connect(kubeconfig=apiserver.kubeconfig)


def kubectl_env(kubeconfig: str, cache_dir: Path) -> dict[str, str]:
    """The environment for a kubectl subprocess: this kubeconfig, a private cache, the venv on PATH."""
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["KUBECACHEDIR"] = str(cache_dir)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


@pytest.fixture
def kubectl(kubectl_bin: str, apiserver: TestApiServer, tmp_path: Path) -> Kubectl:
    """Run the real kubectl against ``apiserver``: ``kubectl("get", "deploy", input=None, check=False)``.

    Returns the CompletedProcess (text mode). ``check=True`` raises with stderr on a non-zero exit.
    """
    env = kubectl_env(apiserver.kubeconfig, tmp_path / "kube-cache")

    def run(
        *args: str,
        input: str | None = None,  # noqa: A002 - mirrors subprocess
        check: bool = False,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_bin, *args], input=input, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    return run
