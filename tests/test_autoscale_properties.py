"""Property tests (hypothesis) on the converter: for generated autoscaling/v2 HPAs (random min/max,
CPU/memory/Pods/Object/External metrics, behavior blocks, names, namespaces) paired with generated
vLLM/SGLang/TGI/unknown workloads (images, args, GPU requests), convert_one/convert_all never raise
(a bad input becomes a GpuscaleError on the Conversion) and every emitted object is valid against
the real CRD schemas with the invariants KEDA and a rollback rely on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.names import KEDA_TRANSFER_OWNERSHIP, ORIGINAL_HPA
from tests.support.admission_knative import KnativeConfig, validate_service
from tests.support.schemas import assert_valid

NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
QUANTITIES = st.one_of(
    st.integers(0, 500), st.sampled_from(["500m", "1", "2.5", "10", "0.8", "80", "1k", "abc"])
)
METRIC_NAMES = st.sampled_from(
    [
        "vllm:num_requests_waiting",
        "vllm_num_requests_waiting",
        "vllm:gpu_cache_usage_perc",
        "vllm:kv_cache_usage_perc",
        "vllm:num_requests_running",
        "sglang:num_queue_reqs",
        "tgi_queue_size",
        "http_requests_per_second",
        "nv_inference_pending_request_count",
        "prometheus.googleapis.com|vllm:num_requests_running|gauge",
        "prometheus.googleapis.com|tgi_request_count|counter",
        "custom.googleapis.com|x|gauge",
        "",
    ]
)
IMAGES = st.sampled_from(
    [
        "vllm/vllm-openai:v0.11.0",
        "vllm/vllm-openai:v0.6.3",
        "lmsysorg/sglang:v0.4.6-cu124",
        "ghcr.io/huggingface/text-generation-inference:3.0.1",
        "nvcr.io/nvidia/tritonserver:24.08-trtllm-python-py3",
        "ollama/ollama:0.6.5",
        "nginx:1.27",
        "registry.example.com/team/model-server:1",
    ]
)
ARGS = st.lists(
    st.sampled_from(
        [
            "--model",
            "meta-llama/Llama-3.1-8B-Instruct",
            "--max-num-seqs",
            "64",
            "512",
            "--port",
            "8000",
            "--max-concurrent-requests",
            "128",
            "--disable-log-stats",
            "--tensor-parallel-size",
            "2",
            "--enable-metrics",
        ]
    ),
    max_size=6,
)
GPU_COUNTS = st.sampled_from([1, 2, 8, "1", "4", "500m", "1Gi"])
GPUS = st.one_of(
    st.fixed_dictionaries(
        {"nvidia.com/gpu": GPU_COUNTS}, optional={"cpu": st.just("8"), "memory": st.just("64Gi")}
    ),
    st.fixed_dictionaries({"amd.com/gpu": GPU_COUNTS}),
    st.sampled_from([None, {"cpu": "4", "memory": "16Gi"}]),
)


@st.composite
def _target(draw: st.DrawFn, kinds: tuple[str, ...]) -> dict[str, Any]:
    kind = draw(st.sampled_from(kinds))
    key = {"Utilization": "averageUtilization", "AverageValue": "averageValue", "Value": "value"}[kind]
    value = draw(st.integers(1, 100)) if kind == "Utilization" else draw(QUANTITIES)
    return {"type": kind, key: value}


@st.composite
def _metric(draw: st.DrawFn) -> dict[str, Any]:
    mtype = draw(st.sampled_from(["Resource", "Pods", "Object", "External", "ContainerResource"]))
    if mtype in ("Resource", "ContainerResource"):
        block: dict[str, Any] = {
            "name": draw(st.sampled_from(["cpu", "memory"])),
            "target": draw(_target(("Utilization", "AverageValue"))),
        }
        if mtype == "ContainerResource":
            block["container"] = draw(NAMES)
        return {"type": mtype, "resource" if mtype == "Resource" else "containerResource": block}
    metric: dict[str, Any] = {"name": draw(METRIC_NAMES)}
    if draw(st.booleans()):
        metric["selector"] = {
            "matchLabels": draw(
                st.dictionaries(st.sampled_from(["model_name", "service", "queue"]), NAMES, max_size=2)
            )
        }
    if mtype == "Pods":
        return {"type": "Pods", "pods": {"metric": metric, "target": draw(_target(("AverageValue",)))}}
    if mtype == "External":
        return {
            "type": "External",
            "external": {"metric": metric, "target": draw(_target(("AverageValue", "Value")))},
        }
    described = {
        "apiVersion": "v1",
        "kind": draw(st.sampled_from(["Service", "Namespace", "Ingress"])),
        "name": draw(NAMES),
    }
    return {
        "type": "Object",
        "object": {
            "metric": metric,
            "describedObject": described,
            "target": draw(_target(("AverageValue", "Value"))),
        },
    }


@st.composite
def _rules(draw: st.DrawFn) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if draw(st.booleans()):
        rules["stabilizationWindowSeconds"] = draw(st.integers(0, 3600))
    if draw(st.booleans()):
        rules["policies"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["Pods", "Percent"]),
                        "value": st.integers(1, 100),
                        "periodSeconds": st.integers(1, 1800),
                    }
                ),
                min_size=1,
                max_size=2,
            )
        )
    if draw(st.booleans()):
        rules["selectPolicy"] = draw(st.sampled_from(["Max", "Min", "Disabled"]))
    return rules


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[dict[str, Any]], conv.Options, str]:
    name, target = draw(NAMES), draw(NAMES)
    namespace = draw(st.one_of(st.none(), NAMES))
    kind = draw(st.sampled_from(["Deployment", "StatefulSet"]))
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
        "maxReplicas": draw(st.integers(1, 50)),
        "metrics": [] if draw(st.integers(0, 9)) == 9 else draw(st.lists(_metric(), min_size=1, max_size=4)),
    }
    min_replicas = draw(st.one_of(st.none(), st.integers(0, 20)))
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if draw(st.booleans()):
        spec["behavior"] = {
            k: draw(_rules()) for k in draw(st.sets(st.sampled_from(["scaleUp", "scaleDown"])))
        }
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": spec,
    }
    if draw(st.booleans()):
        hpa["status"] = {"currentReplicas": draw(st.integers(0, 60))}
    container: dict[str, Any] = {"name": "server", "image": draw(IMAGES), "args": draw(ARGS)}
    gpus = draw(GPUS)
    if gpus:
        container["resources"] = {draw(st.sampled_from(["limits", "requests"])): gpus}
    if draw(st.booleans()):
        container["readinessProbe"] = {
            "httpGet": {"path": "/health", "port": 8000},
            "initialDelaySeconds": draw(st.integers(0, 1200)),
        }
    labels = {"app": target}
    workload_meta: dict[str, Any] = {"name": target + "-x" if draw(st.integers(0, 9)) == 9 else target}
    if namespace:
        workload_meta["namespace"] = namespace
    workload = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": workload_meta,
        "spec": {
            "replicas": draw(st.integers(0, 10)),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    objects = [hpa, workload]
    if draw(st.booleans()):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": dict(workload_meta, name=target),
                "spec": {"selector": labels, "ports": [{"port": draw(st.sampled_from([80, 8000]))}]},
            }
        )
    options = conv.Options(
        target_queue=draw(st.one_of(st.none(), st.floats(0.1, 100))),
        activation=draw(st.sampled_from([0, 1, 2.5])),
        kv_cache=draw(st.one_of(st.none(), st.floats(0.05, 1))),
        gpu_util=draw(st.one_of(st.none(), st.floats(1, 100))),
        query=draw(st.sampled_from([None, None, None, 'sum(my_queue{namespace="ml"})'])),
        force=draw(st.booleans()),
        scale_to_zero=draw(st.booleans()),
        cold_start=draw(st.one_of(st.none(), st.integers(1, 3600))),
        to=draw(st.sampled_from(["keda", "keda", "knative"])),
        pdb=draw(st.booleans()),
        schedule=draw(
            st.sampled_from([None, builders.Schedule("Europe/Berlin", "0 8 * * 1-5", "0 18 * * 1-5", 2)])
        ),
        namespace=draw(st.sampled_from([None, "default", "ml"])),
    )
    return objects, options, name


def _check_scaled_object(so: dict[str, Any], hpa_name: str, options: conv.Options) -> None:
    spec = so["spec"]
    low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
    assert high >= low
    assert low >= 1 or (options.scale_to_zero and low == 0)
    assert so["metadata"]["annotations"][KEDA_TRANSFER_OWNERSHIP] == "true"
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == hpa_name
    original = json.loads(so["metadata"]["annotations"][ORIGINAL_HPA])
    assert original["metadata"]["name"] == hpa_name and original["kind"] == "HorizontalPodAutoscaler"
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        metadata = trigger["metadata"]
        assert "metricName" not in metadata
        assert all(isinstance(v, str) for v in metadata.values()), metadata
        if trigger["type"] == "prometheus":
            assert metadata["ignoreNullValues"] == "false" and float(metadata["threshold"]) > 0
    if any(t["type"] == "prometheus" for t in spec["triggers"]) and low > 0:
        assert 1 <= spec["fallback"]["replicas"] <= high
        assert all(t.get("metricType") for t in spec["triggers"] if t["type"] not in ("cpu", "memory"))
    if low == 0:
        assert "fallback" not in spec  # the pinned KEDA wakes a workload at zero to fallback.replicas


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_case())
def test_converter_never_crashes_and_emits_valid_objects(
    case: tuple[list[dict[str, Any]], conv.Options, str],
) -> None:
    objects, options, hpa_name = case
    index = conv.index_workloads(objects, options.namespace)
    one = conv.convert_one(objects[0], index, options)
    (result,) = conv.convert_all(objects, options)
    assert (one.action, one.why, len(one.objects)) == (result.action, result.why, len(result.objects))
    assert result.action in ("migrate", "skip", "error")
    event(f"{result.action} {options.to}")
    if result.action == "error":
        assert isinstance(result.error, GpuscaleError) and result.error.what and result.error.why
        assert not result.objects
        return
    if result.action == "skip":
        assert not result.objects and not options.force
        return
    assert result.objects
    for obj in result.objects:
        assert_valid(obj)
        if obj["kind"] == "ScaledObject":
            _check_scaled_object(obj, hpa_name, options)
        elif obj["kind"] == "Service":
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            low = int(annotations["autoscaling.knative.dev/min-scale"])
            assert int(annotations["autoscaling.knative.dev/max-scale"]) >= low
            assert low >= 1 or options.scale_to_zero
            named = [
                n.split(": ", 1)[1].split(" (")[0].split(", ")
                for n in result.notes
                if n.startswith("enable in knative-serving/config-features")
            ]
            flags = {f: "enabled" for group in named for f in group}
            assert validate_service(obj, KnativeConfig(features=flags)) == []  # Knative's webhook admits it
    kinds = [o["kind"] for o in result.objects]
    if options.to == "keda":
        assert kinds.count("ScaledObject") == 1
        assert ("HTTPScaledObject" in kinds) == options.scale_to_zero


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.sampled_from(["", "3", "abc", "{{ .Values.x }}"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "name",
                    "target",
                    "metric",
                    "pods",
                    "resource",
                    "value",
                    "averageValue",
                    "scaleDown",
                    "stabilizationWindowSeconds",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _case(),
    st.dictionaries(
        st.sampled_from(["minReplicas", "maxReplicas", "metrics", "behavior", "scaleTargetRef"]),
        JSON,
        min_size=1,
        max_size=2,
    ),
)
def test_malformed_hpa_fields_become_gpuscale_errors(
    case: tuple[list[dict[str, Any]], conv.Options, str], garbage: dict[str, Any]
) -> None:
    objects, options, hpa_name = case
    objects[0]["spec"].update(garbage)
    (result,) = conv.convert_all(objects, options)
    event(result.action)
    if result.action == "error":
        assert isinstance(result.error, GpuscaleError) and result.error.what and result.error.why
    for obj in result.objects:
        assert_valid(obj)
        if obj["kind"] == "ScaledObject":
            _check_scaled_object(obj, hpa_name, options)


def _llm() -> list[dict[str, Any]]:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "a", "namespace": "ml"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a"},
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "ml"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "resources": {"limits": {"nvidia.com/gpu": 1}},
                        }
                    ]
                },
            },
        },
    }
    return [hpa, deploy]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("behavior", {"scaleDown": None}, None),  # an explicit null is no rule, not a crash
        ("behavior", True, "spec.behavior is not a mapping"),
        ("behavior", {"scaleDown": {"stabilizationWindowSeconds": "5m"}}, "stabilizationWindowSeconds"),
        ("scaleTargetRef", True, "spec.scaleTargetRef is not a mapping"),
        ("metrics", 1, "spec.metrics is not a list"),
        ("metrics", [{"type": "Pods", "pods": {"metric": "x", "target": {}}}], "spec.metrics[0]"),
        ("maxReplicas", 0, "maxReplicas 0"),
        ("minReplicas", True, "not integers"),
    ],
)
def test_found_by_hypothesis(field: str, value: Any, why: str | None) -> None:
    objects = _llm()
    objects[0]["spec"][field] = value
    (result,) = conv.convert_all(objects, conv.Options())
    if why is None:
        assert (
            result.ok and result.objects[0]["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        )
        assert_valid(result.objects[0])
    else:
        assert result.action == "error" and why in result.why, result.why


def test_zero_target_is_not_carried_as_threshold() -> None:
    objects = _llm()
    objects[0]["spec"]["metrics"] = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "vllm:num_requests_waiting"},
                "target": {"type": "AverageValue", "averageValue": 0},
            },
        }
    ]
    (result,) = conv.convert_all(objects, conv.Options())
    assert result.ok and any("not above 0" in n for n in result.notes)
    assert float(result.objects[0]["spec"]["triggers"][0]["metadata"]["threshold"]) > 0
