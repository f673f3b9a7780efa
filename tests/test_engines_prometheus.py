"""trtllm-serve's queue metric through the real Prometheus (issue 14, item 5).

trtllm-serve (NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_server.py, `MetricsCollector`) exports
``trtllm_num_requests_waiting`` / ``trtllm_num_requests_running`` / ``trtllm_kv_cache_utilization``,
not Triton's ``nv_trt_llm_request_metrics{request_type="waiting"}`` (the TensorRT-LLM backend's,
tensorrtllm_backend). The exporter here serves the trtllm-serve names for two pods of a Deployment
``trt``; the real Prometheus scrapes them; the ScaledObject query migrate-hpa writes for a
``trtllm-serve`` workload must return their sum, as one series. The query the catalog wrote before
(Triton's name) returns nothing for the same pods.
"""

from __future__ import annotations

from typing import Any

from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.autoscale.querycheck import check_query
from kubectl_gpuscale.prom import Prometheus
from tests.support.prometheus import PrometheusServer

NS = "trtllm-serve"
PODS = {"trt-7d9f8c6b5-k2x4q": 6.0, "trt-7d9f8c6b5-p9m3z": 3.0}


def _workload() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "trt", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "trt"}},
            "template": {
                "metadata": {"labels": {"app": "trt"}},
                "spec": {
                    "containers": [
                        {
                            "name": "trtllm",
                            "image": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
                            "command": ["trtllm-serve", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
        },
    }


def _hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "trt", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "trt"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }


def test_the_trtllm_serve_queue_query_finds_its_series_in_prometheus(
    prometheus: Prometheus, prometheus_server: PrometheusServer
) -> None:
    exporter = prometheus_server.engines
    labels = {
        pod: {"namespace": NS, "pod": pod, "model_name": "undefined", "engine_type": "undefined"}
        for pod in PODS
    }
    try:
        for pod, waiting in PODS.items():
            exporter.set("trtllm_num_requests_waiting", waiting, labels[pod])
            exporter.set("trtllm_num_requests_running", 8, labels[pod])
            exporter.set("trtllm_kv_cache_utilization", 0.5, labels[pod])
        prometheus_server.wait_for(
            f'count(trtllm_num_requests_waiting{{namespace="{NS}"}})',
            lambda r: bool(r) and r[0]["value"][1] == str(len(PODS)),
        )
        result = conv.convert_all([_hpa(), _workload()], conv.Options(kv_cache=0.8))[0]
        assert result.ok and result.engine == "trtllm (high)"
        triggers = {t["name"]: t["metadata"]["query"] for t in result.objects[0]["spec"]["triggers"]}
        queue = check_query(prometheus, triggers["queue"], 1)
        assert queue.error is None and queue.series == 1 and queue.value == sum(PODS.values())
        kv = check_query(prometheus, triggers["kv_cache"], 0.8)
        assert kv.series == 1 and kv.value == 0.5 * len(PODS)
        triton_name = check_query(
            prometheus, f'sum(nv_trt_llm_request_metrics{{namespace="{NS}", request_type="waiting"}})', 1
        )
        assert triton_name.series == 0
    finally:
        for pod in PODS:
            for name in (
                "trtllm_num_requests_waiting",
                "trtllm_num_requests_running",
                "trtllm_kv_cache_utilization",
            ):
                exporter.remove(name, labels[pod])
