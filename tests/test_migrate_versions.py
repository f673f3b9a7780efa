"""migrate-hpa for the KEDA the cluster runs (issue 14, items 1, 2, 8 and the --target-versions input), through
the real kubernetes client to the test API server, whose KEDA webhook is set to the same version.

Sources: kedacore/keda pkg/scaling/executor/scale_scaledobjects.go RequestScale (<= 2.16 falls back from 0
replicas at once), kedacore/keda#6696 (2.17.0's webhook: fallback needs an explicit AverageValue), PR #6464
(spec.fallback.behavior, 2.17).
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_gpuscale.autoscale import apply as service
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.facts import parse_version
from kubectl_gpuscale.facts.detect import detect_targets
from kubectl_gpuscale.facts.keda import fallback_plan
from kubectl_gpuscale.kube import Cluster
from tests.support.keda_sim import seed_gemma_hpa
from tests.support.kube_fixtures import TestApiServer
from tests.test_migrate_cluster import NS

SO_API = "keda.sh/v1alpha1"


def _keda(apiserver: TestApiServer, cluster: Cluster, version: str) -> None:
    deploy = cluster.get("apps/v1", "Deployment", "keda-operator", "keda")
    deploy["metadata"]["labels"]["app.kubernetes.io/version"] = version
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = f"ghcr.io/kedacore/keda:{version}"
    cluster.replace(deploy)
    apiserver.keda_webhook.version = version


def _run(apiserver: TestApiServer, *args: str) -> Any:
    return CliRunner().invoke(cli, ["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, *args])


def test_apply_on_detected_keda_2_17_0_passes_its_webhook(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)
    _keda(apiserver, cluster, "2.17.0")
    result = _run(apiserver, "gemma-server-hpa", "--apply")
    assert result.exit_code == 0, result.output
    assert "keda 2.17.0 (detected: keda/keda-operator label app.kubernetes.io/version)" in result.stderr
    so = apiserver.get_object(SO_API, "ScaledObject", "gemma-server-hpa", NS)
    assert so is not None
    assert {t["metricType"] for t in so["spec"]["triggers"]} == {"AverageValue"}
    assert so["spec"]["fallback"]["behavior"] == "currentReplicasIfHigher"


def test_preflight_refuses_what_the_2_17_0_webhook_rejects_before_any_write(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    seed_gemma_hpa(apiserver, NS)
    _keda(apiserver, cluster, "2.17.0")
    implicit = {
        "apiVersion": SO_API,
        "kind": "ScaledObject",
        "metadata": {"name": "x", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "fallback": {"failureThreshold": 3, "replicas": 1},
            "triggers": [{"type": "prometheus", "metadata": {}}],
        },
    }
    apiserver.reset_requests()
    with pytest.raises(GpuscaleError, match=r"KEDA 2.17.0's admission webhook rejects it"):
        service.preflight(cluster, [implicit])
    assert not apiserver.requests_to("PATCH") and not apiserver.requests_to("POST", prefix="/apis/keda.sh")


def test_scale_to_zero_on_detected_keda_2_16_has_no_fallback(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    seed_gemma_hpa(apiserver, NS)
    _keda(apiserver, cluster, "2.16.1")
    apiserver.enable_group("http.keda.sh")
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "gemma", "namespace": NS},
            "spec": {"selector": {"app": "gemma-server"}, "ports": [{"port": 8000}]},
        }
    )
    result = _run(apiserver, "gemma-server-hpa", "--scale-to-zero", "--apply")
    assert result.exit_code == 0, result.output
    so = apiserver.get_object(SO_API, "ScaledObject", "gemma-server-hpa", NS)
    assert so is not None and so["spec"]["minReplicaCount"] == 0 and "fallback" not in so["spec"]


def test_target_versions_win_over_detection(apiserver: TestApiServer, cluster: Cluster) -> None:
    seed_gemma_hpa(apiserver, NS)  # the operator says 2.20.2
    result = _run(apiserver, "gemma-server-hpa", "--target-versions", "keda=2.16.1", "-o", "json")
    assert result.exit_code == 0, result.output
    assert "keda 2.16.1 (--target-versions)" in result.stderr
    assert "currentReplicasIfHigher" not in result.stdout  # 2.16 has no fallback.behavior


def test_bad_target_versions_is_one_clear_usage_line(apiserver: TestApiServer) -> None:
    result = _run(apiserver, "gemma-server-hpa", "--target-versions", "keda=latest")
    assert result.exit_code == 2
    assert "'keda=latest'" not in result.stderr and "'latest' is not a version" in result.stderr


def _crd_without_fallback_behavior() -> dict[str, Any]:
    import yaml

    from tests.support.paths import SCHEMAS

    crd = yaml.safe_load((SCHEMAS / "keda" / "keda.sh_scaledobjects.yaml").read_text())
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        spec["fallback"]["properties"].pop("behavior")
    crd["metadata"].setdefault("labels", {})["app.kubernetes.io/version"] = "2.16.1"
    return crd


def test_the_served_crd_decides_fallback_behavior_and_names_the_version(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    """A served CRD without spec.fallback.behavior: even for a version that has it (2.20.2 given), no behavior
    is emitted, since the schema decides over the version number. With no keda-operator Deployment, the
    version comes from the CRD's app.kubernetes.io/version label."""
    apiserver.disable_group("keda.sh")
    apiserver.seed(_crd_without_fallback_behavior())
    targets = detect_targets(cluster, {"keda": parse_version("2.20.2")})
    assert targets.serves_field("keda", "spec.fallback.behavior") is False
    assert targets.serves_field("keda", "spec.fallback.replicas") is True
    assert fallback_plan(targets, 1).behavior is None
    alone = detect_targets(cluster)
    assert str(alone.keda) == "2.16.1" and "CRD scaledobjects.keda.sh label" in alone.sources["keda"]
    assert alone.kubernetes is not None and alone.sources["kubernetes"] == "detected: API server /version"
