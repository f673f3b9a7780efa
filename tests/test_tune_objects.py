"""The recommendation's objects: migrate-hpa's plan (its builders) for each policy tune searches, with the
searched parameters written in, valid against the real CRD schemas (KEDA, HTTP add-on, Knative)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_gpuscale import migrate
from kubectl_gpuscale.tune.objects import migrate_options, shaped
from kubectl_gpuscale.tune.search import Candidate, Floor
from tests.support.paths import MANIFESTS
from tests.support.schemas import assert_valid

SERVICE = """apiVersion: v1
kind: Service
metadata: {name: gemma-server, namespace: ml}
spec:
  selector: {app: gemma-server}
  ports: [{port: 8000, targetPort: 8080}]
"""
KEDA = {
    "threshold": 3,
    "activation": 0,
    "minReplicas": 2,
    "maxReplicas": 6,
    "scaleDownStabilizationSeconds": 120,
    "cooldownSeconds": 300,
    "pollingSeconds": 30,
}
CANDIDATES = {
    "keda": Candidate("keda", KEDA, Floor(9, 17, 2, (0, 1, 2, 3, 4))),
    "keda-zero": Candidate("keda-zero", {**KEDA, "threshold": 32, "minReplicas": 0, "cooldownSeconds": 1800}),
    "knative": Candidate(
        "knative", {"target": 64, "minScale": 1, "maxScale": 6, "scaleDownDelaySeconds": 300}
    ),
}


@pytest.mark.parametrize("policy", list(CANDIDATES))
def test_objects_for_each_policy_validate_and_carry_the_parameters(policy: str, tmp_path: Path) -> None:
    service = tmp_path / "svc.yaml"
    service.write_text(SERVICE, encoding="utf-8")
    candidate = CANDIDATES[policy]
    request = migrate.MigrateRequest(
        names=("gemma-server-hpa",),
        namespace="ml",
        files=(
            str(MANIFESTS / "hpa_k8s-examples_1.yaml"),
            str(MANIFESTS / "deploy_k8s-examples_1.yaml"),
            str(service),
        ),
        options=migrate_options(candidate, cold_start=60),
    )
    plan = migrate.plan(request, None)
    objects = shaped(plan.objects, candidate)
    assert objects
    for obj in objects:
        assert_valid(obj)
    kinds = {o["kind"]: o for o in objects}
    p = candidate.params
    if policy == "knative":
        notes = kinds["Service"]["spec"]["template"]["metadata"]["annotations"]
        assert (
            notes["autoscaling.knative.dev/target"],
            notes["autoscaling.knative.dev/min-scale"],
            notes["autoscaling.knative.dev/max-scale"],
            notes["autoscaling.knative.dev/scale-down-delay"],
        ) == ("64", "1", "6", "300s")
        return
    so = kinds["ScaledObject"]["spec"]
    assert (so["minReplicaCount"], so["maxReplicaCount"], so["pollingInterval"], so["cooldownPeriod"]) == (
        p["minReplicas"],
        p["maxReplicas"],
        p["pollingSeconds"],
        p["cooldownSeconds"],
    )
    assert (
        so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        == p["scaleDownStabilizationSeconds"]
    )
    assert float(so["triggers"][0]["metadata"]["threshold"]) == p["threshold"]
    if policy == "keda":
        cron = next(t for t in so["triggers"] if t["type"] == "cron")["metadata"]
        assert cron == {
            "timezone": "UTC",
            "start": "0 9 * * 1-5",
            "end": "0 17 * * 1-5",
            "desiredReplicas": "2",
        }
    else:
        http = kinds["HTTPScaledObject"]["spec"]
        assert http["scalingMetric"] == {"concurrency": {"targetValue": 32}}
        assert http["replicas"]["max"] == 6 and http["scaledownPeriod"] == 1800
        assert any(t["type"] == "external-push" for t in so["triggers"])


def test_cron_floor_ending_at_midnight_ends_the_same_day() -> None:
    """A floor to 24:00 must not end at 00:00 of its own day (before it starts): KEDA's cron trigger is
    active from the last start to the next end."""
    every_day = Candidate("keda", KEDA, Floor(18, 24, 1, (0, 1, 2, 3, 4, 5, 6)))
    schedule = migrate_options(every_day).schedule
    assert (schedule.start, schedule.end) == ("0 18 * * *", "59 23 * * *")
    weekend = migrate_options(Candidate("keda", KEDA, Floor(10, 16, 3, (5, 6)))).schedule
    assert (weekend.start, weekend.end, weekend.replicas) == ("0 10 * * 6,0", "0 16 * * 6,0", 3)
