"""The HPA model and the converter's rules, on small inputs built for each rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.autoscale.hpa import parse_hpa, quantity
from kubectl_gpuscale.errors import InputError
from tests.support.schemas import assert_valid


def _deploy(args: list[str], *, probes: dict[str, Any] | None = None, gpu: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "command": ["vllm", "serve"],
        "args": args,
        **(probes or {}),
    }
    if gpu:
        container["resources"] = {"limits": {"nvidia.com/gpu": "2"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "llm"}},
            "template": {"metadata": {"labels": {"app": "llm"}}, "spec": {"containers": [container]}},
        },
    }


def _hpa(api: str = "autoscaling/v2", **spec: Any) -> dict[str, Any]:
    base = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"},
        "minReplicas": 1,
        "maxReplicas": 6,
    }
    if api.endswith("/v1"):
        base["targetCPUUtilizationPercentage"] = 70
    else:
        base["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    base.update(spec)
    return {
        "apiVersion": api,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": base,
    }


def _one(objs: list[dict[str, Any]], **options: Any) -> conv.Conversion:
    return conv.convert_all(objs, conv.Options(**options))[0]


@pytest.mark.parametrize(("text", "value"), [("504m", 0.504), (4, 4.0), ("30000", 30000.0), ("1Ki", 1024.0)])
def test_quantity(text: Any, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


def test_v1_and_v2beta1_hpas_are_read() -> None:
    v1 = parse_hpa(_hpa("autoscaling/v1"))
    assert v1.metrics[0].name == "cpu" and v1.metrics[0].target == 70
    legacy = _hpa(
        "autoscaling/v2beta1",
        metrics=[{"type": "External", "external": {"metricName": "queue", "targetAverageValue": "5"}}],
    )
    parsed = parse_hpa(legacy)
    assert parsed.metrics[0].name == "queue" and parsed.metrics[0].target == 5


def test_hpa_without_metrics_is_an_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"ml/llm.*no metrics"):
        parse_hpa(_hpa(metrics=[]))


def test_default_threshold_from_max_num_seqs_and_stabilization_from_probe() -> None:
    deploy = _deploy(
        ["m", "--max-num-seqs=100"],
        probes={
            "startupProbe": {"initialDelaySeconds": 60, "periodSeconds": 10, "failureThreshold": 36},
            "readinessProbe": {"initialDelaySeconds": 5},
        },
    )
    result = _one([_hpa(), deploy])
    so = result.objects[0]
    assert so["spec"]["triggers"][0]["metadata"]["threshold"] == "5"
    assert (
        so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
            "stabilizationWindowSeconds"
        ]
        == 420
    )
    assert (
        "startupProbe budget"
        in so["metadata"]["annotations"]["gpuscale.kubectl.dev/scale-down-stabilization"]
    )
    assert so["spec"]["fallback"] == {
        "failureThreshold": 3,
        "replicas": 3,
        "behavior": "currentReplicasIfHigher",
    }
    assert any("cpu 80% dropped" in n for n in result.notes)
    assert_valid(so)


def test_vllm_default_concurrency_threshold() -> None:
    result = _one([_hpa(), _deploy(["m"])], target_queue=None)
    assert result.threshold == str(conv.default_target_queue(256)) == "13"


def test_longer_existing_stabilization_is_kept() -> None:
    hpa = _hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 900}})
    so = _one([hpa, _deploy(["m"])], cold_start=120).objects[0]
    assert (
        so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
            "stabilizationWindowSeconds"
        ]
        == 900
    )


def test_gpu_util_handles_both_label_schemes_and_gpus_per_pod() -> None:
    so = _one([_hpa(), _deploy(["m"])], gpu_util=75).objects[0]
    query = next(t for t in so["spec"]["triggers"] if t["name"] == "gpu_util")["metadata"]["query"]
    assert 'exported_pod=~"llm-' in query and 'pod=~"llm-' in query and query.endswith("/ 2")


def test_original_hpa_recorded_for_rollback() -> None:
    hpa = _hpa()
    hpa["metadata"]["labels"] = {"team": "ml"}
    so = _one([hpa, _deploy(["m"])]).objects[0]
    saved = json.loads(so["metadata"]["annotations"]["gpuscale.kubectl.dev/original-hpa"])
    assert saved["spec"] == hpa["spec"] and saved["metadata"]["labels"] == {"team": "ml"}


def test_min_zero_needs_scale_to_zero_and_a_service() -> None:
    result = _one([_hpa(minReplicas=0), _deploy(["m"])])
    assert result.objects[0]["spec"]["minReplicaCount"] == 1
    refused = _one([_hpa(), _deploy(["m"])], scale_to_zero=True)
    assert refused.action == "error" and "no Service" in refused.why
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {"selector": {"app": "llm"}, "ports": [{"port": 8000}]},
    }
    ok = _one([_hpa(), _deploy(["m"]), svc], scale_to_zero=True, cold_start=400)
    so, http = ok.objects
    assert so["spec"]["minReplicaCount"] == 0
    assert any(t["type"] == "external-push" for t in so["spec"]["triggers"])
    assert http["spec"]["timeouts"]["conditionWait"] == "800s"
    assert http["metadata"]["annotations"]["httpscaledobject.keda.sh/skip-scaledobject-creation"] == "true"
    assert_valid(so)
    assert_valid(http)


def test_no_gpu_is_skipped_unless_forced() -> None:
    assert _one([_hpa(), _deploy(["m"], gpu=False)]).action == "skip"
    assert _one([_hpa(), _deploy(["m"], gpu=False)], force=True).action == "migrate"


def test_colon_and_underscore_queue_names_match() -> None:
    query = _one([_hpa(), _deploy(["m"])]).objects[0]["spec"]["triggers"][0]["metadata"]["query"]
    assert query == (
        'sum({__name__=~"vllm[:_]num_requests_waiting", namespace="ml", pod=~"llm-[a-z0-9]+-[a-z0-9]+"})'
    )
