"""`tune.baseline.baseline_policy`: the workload's current autoscaler as a simulator policy, on real
manifests from ../shared/samples/manifests and on the shapes the API server returns.

Defaults read from upstream: KEDA ScaledObject minReplicaCount 0 / maxReplicaCount 100
(kedacore/keda apis/keda/v1alpha1/scaledobject_types.go); an autoscaling/v2 HPA with no metrics is
CPU 80 % (kubernetes pkg/apis/autoscaling/v2/defaults.go `SetDefaults_HorizontalPodAutoscaler`);
Knative's camelCase `autoscaling.knative.dev/maxScale` is still accepted (knative/serving
pkg/apis/autoscaling/register.go `MaxScaleAnnotation` aliases).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.policies import build_controller
from kubectl_gpuscale.tune.baseline import baseline_policy
from tests.support.paths import MANIFESTS


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def test_an_hpa_on_vllm_waiting_through_an_adapter_is_keda_arithmetic() -> None:
    """GKE's sample HPA: a Pods metric `vllm:num_requests_waiting`, AverageValue 5, 1-2 replicas."""
    spec = baseline_policy(load("hpa_gke-samples_1.yaml"))
    assert (spec.name, spec.options) == (
        "keda",
        {"min": "1", "max": "2", "metric": "waiting", "threshold": "5"},
    )
    build_controller(spec)


def test_a_cpu_hpa_keeps_min_max_and_target() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "vllm"},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
        },
    }
    spec = baseline_policy([{"kind": "Deployment", "spec": {"replicas": 3}}, hpa])
    assert (spec.name, spec.options) == ("cpu-hpa", {"min": "2", "max": "6", "target": "60"})
    assert build_controller(spec).name == "cpu-hpa:min=2:max=6:target=60"
    bare = {**hpa, "spec": {"maxReplicas": 4}}
    assert baseline_policy([bare]).options == {"min": "1", "max": "4", "target": "80"}


def test_a_scaled_object_on_the_queue() -> None:
    so = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "vllm"},
        "spec": {
            "minReplicaCount": 1,
            "maxReplicaCount": 8,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "query": 'sum({__name__=~"vllm[:_]num_requests_waiting", namespace="ml"})',
                        "threshold": "5",
                        "activationThreshold": "1",
                    },
                },
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": "UTC",
                        "start": "0 9 * * 1-5",
                        "end": "30 17 * * 1-5",
                        "desiredReplicas": "2",
                    },
                },
            ],
        },
    }
    spec = baseline_policy([so, {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "keda-hpa-vllm"}}])
    assert spec.name == "keda"
    assert spec.options == {
        "min": "1",
        "max": "8",
        "polling": "15",
        "cooldown": "300",
        "down-window": "600",
        "down-pods": "100",
        "down-period": "15",
        "cron": "9-17.5x2",
        "metric": "waiting",
        "threshold": "5",
        "activation": "1",
    }
    build_controller(spec)


@pytest.mark.parametrize(
    ("sample", "trigger"),
    [
        ("scaledobject_aws-eks-auto-mode_1.yaml", "aws-sqs-queue"),
        ("scaledobject_keda-kaito-scaler_1.yaml", "external"),
    ],
)
def test_an_unknown_trigger_is_a_clear_error(sample: str, trigger: str) -> None:
    with pytest.raises(InputError) as caught:
        baseline_policy(load(sample))
    line = caught.value.line()
    assert f"trigger type {trigger!r} is not one tune models" in line
    assert line.startswith("cannot simulate ScaledObject/")
    assert "pass --policies" in line


def test_a_knative_service_with_camel_case_annotations() -> None:
    spec = baseline_policy(load("ksvc_serverless-llm-gcp_1.yaml"))
    assert (spec.name, spec.options) == ("knative", {"max": "5", "target": "5"})
    build_controller(spec)


def test_an_hpa_on_memory_is_refused_with_the_reason() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "vllm"},
        "spec": {
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    with pytest.raises(
        InputError,
        match=r"cannot simulate HorizontalPodAutoscaler/vllm: its metrics \(Resource "
        r"memory\) are neither CPU utilisation nor DCGM GPU utilisation",
    ):
        baseline_policy([hpa])


def test_no_autoscaler_is_the_deployment_always_on() -> None:
    spec = baseline_policy([{"kind": "Deployment", "spec": {"replicas": 2}}])
    assert (spec.name, spec.options) == ("always-on", {"n": "2"})
    with pytest.raises(InputError, match="no workload or autoscaler"):
        baseline_policy([])
