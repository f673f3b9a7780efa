"""The engine catalog: detection on the real sample workloads, metric names and renames."""

from __future__ import annotations

import pytest

from kubectl_gpuscale import engines
from kubectl_gpuscale.manifests import load
from tests.support.paths import MANIFESTS


def _workload(name: str) -> dict:
    for item in load([str(MANIFESTS / name)]):
        if item.obj["kind"] in ("Deployment", "StatefulSet", "LeaderWorkerSet"):
            return item.obj
    raise AssertionError(f"no workload in {name}")


@pytest.mark.parametrize(
    ("sample", "engine", "confidence", "port", "concurrency", "gpus"),
    [
        ("deploy_k8s-examples_1.yaml", "vllm", "high", 8080, 64, 1),
        ("deploy_aibrix_2.yaml", "vllm", "high", 8000, None, 1),
        ("deploy_gke-samples_1.yaml", "vllm", "high", 8080, None, 8),
        ("deploy_gcp-accel-platforms_2.yaml", "vllm", "high", 8000, None, 0),
        ("deploy_gke-samples_4.yaml", "tgi", "medium", 8000, None, 2),
        ("deploy_opea-genaiinfra_1.yaml", "tgi", "medium", 2080, None, 1),
        ("deploy_ollama-app_1.yaml", "ollama", "medium", 5000, None, 0),
    ],
)
def test_detect_real_workloads(
    sample: str, engine: str, confidence: str, port: int, concurrency: int | None, gpus: int
) -> None:
    found = engines.detect(_workload(sample))
    assert found.engine is not None and found.engine.key == engine
    assert found.confidence == confidence
    assert found.port == port
    assert found.max_concurrency == concurrency
    assert found.gpus == gpus


def test_vllm_model_from_served_model_name() -> None:
    found = engines.detect(_workload("deploy_aibrix_2.yaml"))
    assert found.model == "deepseek-llm-7b-chat"
    assert found.concurrency == engines.VLLM.default_concurrency


def test_unknown_engine_torchserve() -> None:
    found = engines.detect(_workload("deploy_gke-samples_2.yaml"))
    assert found.engine is None and found.confidence == "none"
    assert found.accelerators == {"nvidia.com/gpu": "1"}


def test_sglang_needs_enable_metrics_and_max_running_requests() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "s",
                    "image": "lmsysorg/sglang:v0.5.5",
                    "command": [
                        "python3",
                        "-m",
                        "sglang.launch_server",
                        "--model-path",
                        "m",
                        "--max-running-requests=48",
                    ],
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                }
            ]
        }
    }
    found = engines.detect(pod)
    assert found.engine is engines.SGLANG and found.confidence == "high"
    assert found.max_concurrency == 48 and found.metrics_disabled and found.port == 30000


def test_trtllm_beats_triton_for_trtllm_image() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "t",
                    "image": "nvcr.io/nvidia/tritonserver:24.05-trtllm-python-py3",
                    "command": ["tritonserver", "--model-repository=/models"],
                }
            ]
        }
    }
    found = engines.detect(pod)
    assert found.engine is engines.TRITON_TRTLLM
    assert found.engine.queue is not None


def test_tgi_concurrency_from_env_and_port_env() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "t",
                    "image": "ghcr.io/huggingface/text-generation-inference:3.0",
                    "env": [
                        {"name": "MAX_CONCURRENT_REQUESTS", "value": "32"},
                        {"name": "PORT", "value": "8080"},
                    ],
                }
            ]
        }
    }
    found = engines.detect(pod)
    assert found.engine is engines.TGI and found.max_concurrency == 32 and found.port == 8080


def test_vllm_kv_cache_rename_both_names_kept() -> None:
    assert engines.VLLM.kv_cache is not None
    assert engines.VLLM.kv_cache.names == ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


@pytest.mark.parametrize(
    ("name", "engine", "role"),
    [
        ("vllm:num_requests_waiting", "vllm", "queue"),
        ("vllm_num_requests_running", "vllm", "running"),
        ("gpu_cache_usage_perc", "vllm", "kv_cache"),
        ("tgi_queue_size", "tgi", "queue"),
        ("sglang:num_queue_reqs", "sglang", "queue"),
    ],
)
def test_engine_for_metric(name: str, engine: str, role: str) -> None:
    found = engines.engine_for_metric(name)
    assert found is not None and found[0].key == engine and found[1] == role


def test_engine_for_unknown_metric() -> None:
    assert engines.engine_for_metric("ts_queue_latency_microseconds") is None


def test_accelerator_resources() -> None:
    assert engines.accelerators({"resources": {"limits": {"amd.com/gpu": "2", "cpu": "4"}}}) == {
        "amd.com/gpu": "2"
    }
    assert engines.accelerators({"resources": {"limits": {"nvidia.com/mig-1g.5gb": 1}}}) == {
        "nvidia.com/mig-1g.5gb": "1"
    }
    assert engines.accelerators({"resources": {"requests": {"nvidia.com/gpu": "0"}}}) == {}
