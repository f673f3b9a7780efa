"""The test API server's failure injection (tests/support/faults.py) does what it claims, seen through the
real kubernetes client: an error answer stores nothing; commit-then-drop and commit-then-delay store
the object while the client sees no answer; dry runs and used-up faults pass untouched."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gpuscale.errors import GpuscaleError, UnreachableError
from kubectl_gpuscale.kube import Cluster
from tests.support.kube_fixtures import TestApiServer

CM_PATH = "/api/v1/namespaces/ml/configmaps"


def _cm(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ml"},
        "data": {"k": "v"},
    }


def test_status_fault_answers_and_stores_nothing(apiserver: TestApiServer, cluster: Cluster) -> None:
    fault = apiserver.faults.add("POST", CM_PATH, status=500, message="etcdserver: leader changed")
    with pytest.raises(GpuscaleError, match="HTTP 500: etcdserver: leader changed"):
        cluster.create(_cm("a"))
    assert apiserver.get_object("v1", "ConfigMap", "a", "ml") is None
    cluster.create(_cm("a"))  # used up (times=1): served normally
    assert fault.hits == 1 and apiserver.get_object("v1", "ConfigMap", "a", "ml") is not None


@pytest.mark.parametrize(
    ("fault", "stored"),
    [
        ({"drop": True}, True),
        ({"drop": True, "commit": False}, False),
        ({"delay": 1.5}, True),
        ({"delay": 1.5, "commit": False}, False),
    ],
)
def test_no_answer_with_and_without_commit(
    apiserver: TestApiServer, fault: dict[str, Any], stored: bool
) -> None:
    client = Cluster.connect(kubeconfig=apiserver.kubeconfig, request_timeout=0.5)
    apiserver.faults.add("POST", CM_PATH, **fault)
    with pytest.raises(UnreachableError):
        client.create(_cm("b"))
    assert (apiserver.get_object("v1", "ConfigMap", "b", "ml") is not None) is stored


def test_dry_run_and_other_paths_pass(apiserver: TestApiServer, cluster: Cluster) -> None:
    fault = apiserver.faults.add("POST", CM_PATH, status=403, times=None)
    cluster.create(_cm("c"), dry_run=True)
    cluster.create({**_cm("d"), "metadata": {"name": "d", "namespace": "other"}})
    assert fault.hits == 0
    apiserver.faults.clear()
    cluster.create(_cm("c"))
    assert apiserver.get_object("v1", "ConfigMap", "c", "ml") is not None


def test_before_runs_first_then_the_request_is_served(apiserver: TestApiServer, cluster: Cluster) -> None:
    """A concurrent writer moves the resourceVersion: the server's own check answers 409."""
    cluster.create(_cm("e"))
    current = cluster.get("v1", "ConfigMap", "e", "ml")
    apiserver.faults.add(
        "PUT",
        f"{CM_PATH}/e",
        before=lambda: cluster.patch("v1", "ConfigMap", "e", "ml", {"data": {"k": "other"}}),
    )
    current["data"] = {"k": "mine"}
    with pytest.raises(GpuscaleError, match="conflict"):
        cluster.replace(current)
    assert apiserver.get_object("v1", "ConfigMap", "e", "ml")["data"] == {"k": "other"}
