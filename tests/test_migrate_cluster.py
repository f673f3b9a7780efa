"""migrate-hpa against the test API server through the real kubernetes client: adoption, server dry
run, all-or-nothing on a mid-way failure, rollback with Orphan propagation, idempotence."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_gpuscale.autoscale import apply as service
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.kube import Cluster
from kubectl_gpuscale.names import FIELD_MANAGER, ORIGINAL_HPA
from tests.support.keda_sim import seed_gemma_hpa
from tests.support.kube_fixtures import TestApiServer

NS = "ml"


def _run(apiserver: TestApiServer, *args: str) -> Any:
    return CliRunner().invoke(cli, ["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, *args])


def _keda_adopts(apiserver: TestApiServer, cluster: Cluster) -> None:
    """What the KEDA operator does on adoption: own the HPA and rewrite its spec (no controller runs here)."""
    so = cluster.get("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    hpa = cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    hpa["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "name": so["metadata"]["name"],
            "uid": so["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    hpa["metadata"]["labels"] = {"scaledobject.keda.sh/name": "gemma-server-hpa"}
    hpa["spec"]["metrics"] = [
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "s0-prometheus",
                    "selector": {"matchLabels": {"scaledobject.keda.sh/name": "x"}},
                },
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }
    ]
    cluster.replace(hpa)


def test_apply_adopts_hpa_with_transfer_ownership(apiserver: TestApiServer, cluster: Cluster) -> None:
    before = seed_gemma_hpa(apiserver, NS)
    result = _run(apiserver, "gemma-server-hpa", "--apply")
    assert result.exit_code == 0, result.output
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    assert so is not None
    assert so["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "gemma-server-hpa"
    assert json.loads(so["metadata"]["annotations"][ORIGINAL_HPA])["spec"] == before["spec"]
    assert 'namespace="ml"' in so["spec"]["triggers"][0]["metadata"]["query"]
    # the HPA is never deleted or rewritten by us: KEDA takes it over in place
    after = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert after["spec"] == before["spec"]
    assert not apiserver.requests_to("DELETE", prefix="/apis/autoscaling")
    managers = {m["manager"] for m in so["metadata"].get("managedFields", [])}
    assert FIELD_MANAGER in managers
    patches = [r for r in apiserver.requests_to("PATCH", prefix="/apis/keda.sh") if r.param("dryRun") is None]
    assert patches and all(r.param("fieldManager") == FIELD_MANAGER for r in patches)


def test_dry_run_server_persists_nothing(apiserver: TestApiServer) -> None:
    seed_gemma_hpa(apiserver, NS)
    result = _run(apiserver, "gemma-server-hpa", "--apply", "--dry-run=server")
    assert result.exit_code == 0, result.output
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    sent = apiserver.requests_to("PATCH", prefix="/apis/keda.sh")
    assert sent and all(r.param("dryRun") == "All" for r in sent)


def test_server_rejection_writes_nothing(apiserver: TestApiServer, cluster: Cluster) -> None:
    """The server rejecting the second object (HTTPScaledObject) leaves the first unwritten, HPA untouched."""
    before = seed_gemma_hpa(apiserver, NS)
    apiserver.enable_group("http.keda.sh")
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "gemma", "namespace": NS},
            "spec": {"selector": {"app": "gemma-server"}, "ports": [{"port": 8000}]},
        }
    )
    cli_result = _run(apiserver, "gemma-server-hpa", "--scale-to-zero", "-o", "json")
    objects = json.loads(cli_result.stdout)["items"]
    assert [o["kind"] for o in objects] == ["ScaledObject", "HTTPScaledObject"]
    apiserver.deny("patch", "httpscaledobjects.http.keda.sh")
    with pytest.raises(GpuscaleError) as info:
        service.apply_all(cluster, objects)
    assert "forbidden" in info.value.line()
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    hpa = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert hpa is not None and hpa["spec"] == before["spec"]


def test_write_failure_after_adoption_restores_hpa(apiserver: TestApiServer, cluster: Cluster) -> None:
    before = seed_gemma_hpa(apiserver, NS)
    objects = json.loads(_run(apiserver, "gemma-server-hpa", "--pdb", "-o", "json").stdout)["items"]
    original_apply = cluster.apply
    calls = {"n": 0}

    def flaky_apply(obj: Any, **kw: Any) -> Any:
        if not kw.get("dry_run"):
            calls["n"] += 1
            if obj["kind"] == "PodDisruptionBudget":
                _keda_adopts(apiserver, cluster)  # KEDA adopted the HPA before the second write failed
                raise GpuscaleError("cannot apply PodDisruptionBudget", "injected failure")
        return original_apply(obj, **kw)

    cluster.apply = flaky_apply
    with pytest.raises(GpuscaleError) as info:
        service.apply_all(cluster, objects)
    assert "undone" in info.value.line()
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    hpa = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert hpa is not None, "the adopted HPA was garbage-collected"
    assert hpa["spec"] == before["spec"] and not hpa["metadata"].get("ownerReferences")


def test_rollback_restores_hpa_exactly_with_orphan(apiserver: TestApiServer, cluster: Cluster) -> None:
    before = seed_gemma_hpa(apiserver, NS)
    assert _run(apiserver, "gemma-server-hpa", "--apply").exit_code == 0
    _keda_adopts(apiserver, cluster)
    apiserver.reset_requests()
    result = _run(apiserver, "--rollback", "gemma-server-hpa")
    assert result.exit_code == 0, result.output
    deletes = apiserver.requests_to("DELETE", prefix="/apis/keda.sh")
    assert len(deletes) == 1
    body = deletes[0].json() or {}
    assert (body.get("propagationPolicy") or deletes[0].param("propagationPolicy")) == "Orphan"
    assert apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS) is None
    hpa = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert hpa is not None
    assert hpa["spec"] == before["spec"]
    assert not hpa["metadata"].get("ownerReferences")
    assert hpa["metadata"].get("labels") == before["metadata"].get("labels")


def test_plain_delete_would_garbage_collect_the_adopted_hpa(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    """Why rollback orphans: a normal delete of the ScaledObject takes the adopted HPA with it."""
    seed_gemma_hpa(apiserver, NS)
    assert _run(apiserver, "gemma-server-hpa", "--apply").exit_code == 0
    _keda_adopts(apiserver, cluster)
    cluster.delete(
        "keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS, propagation_policy="Background"
    )
    assert apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS) is None


def test_second_run_is_idempotent(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)
    assert _run(apiserver, "gemma-server-hpa", "--apply").exit_code == 0
    first = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    _keda_adopts(apiserver, cluster)
    assert _run(apiserver, "gemma-server-hpa", "--apply").exit_code == 0
    second = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "gemma-server-hpa", NS)
    assert second["spec"] == first["spec"]
    assert second["metadata"]["annotations"] == first["metadata"]["annotations"]


def test_preflight_refuses_without_keda(apiserver: TestApiServer) -> None:
    seed_gemma_hpa(apiserver, NS)
    apiserver.disable_group("keda.sh")
    result = _run(apiserver, "gemma-server-hpa", "--apply")
    assert result.exit_code != 0
    assert "KEDA is not installed" in str(result.exception)


def test_preflight_refuses_old_keda(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)
    deploy = cluster.get("apps/v1", "Deployment", "keda-operator", "keda")
    deploy["metadata"]["labels"]["app.kubernetes.io/version"] = "2.10.1"
    cluster.replace(deploy)
    with pytest.raises(GpuscaleError, match=r"2.10.1 cannot adopt"):
        service.preflight(
            cluster,
            [
                {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "metadata": {"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}},
                }
            ],
        )


def test_missing_target_names_the_hpa(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)
    cluster.delete("apps/v1", "Deployment", "vllm-gemma-deployment", NS)
    result = _run(apiserver, "gemma-server-hpa")
    assert result.exit_code != 0
    assert "gemma-server-hpa" in str(result.exception) and "not found in the cluster" in str(result.exception)
