"""Engine facts by version and GPU (issue 14, item 5), read from the upstream sources:

- vLLM's default ``--max-num-seqs`` for the API server: vllm-project/vllm vllm/engine/arg_utils.py
  `EngineArgs.get_batch_defaults` (1024 when ``device_memory >= 70 * GiB_bytes and "a100" not in
  device_name``, else 256; table test: tests/v1/engine/test_engine_args.py
  `test_defaults_with_usage_context`); 0.8.5 had the memory rule without the A100 exception (#17073),
  0.8.0-0.8.4 named H100/H200 (`_set_default_args_v1`), earlier releases defaulted to 256.
- SGLang's max_running_requests: sgl-project/sglang python/sglang/srt/model_executor/model_runner.py
  (`init_memory_pool`: ``max_num_reqs = min(max(int(max_total_num_tokens / context_len * 512), 2048), 4096)``;
  then ``min(max_total_num_tokens // 2, req_to_token_pool.size)``).
- trtllm-serve: NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_server.py (`MetricsCollector` when
  ``return_perf_metrics``; Prometheus text at /prometheus/metrics), metric names as mapped by
  kubernetes-sigs/gateway-api-inference-extension (trtllm_num_requests_waiting / _running,
  trtllm_kv_cache_utilization); tensorrt_llm/commands/serve.py ``--max_batch_size`` default.
- vLLM ``--disable-log-stats``: no stat logger, so no vllm:* series (vllm/v1/engine/async_llm.py).
- ``vllm:gpu_cache_usage_perc``: vllm/v1/metrics/loggers.py, deprecated 0.9.2, hidden 0.11, removed 0.12.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gpuscale import engines
from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.engines import gpus, versions
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.manifests import load
from tests.support.paths import MANIFESTS


def _lws_h100() -> dict[str, Any]:
    """The real GKE sample: vllm-openai:v0.8.5 on nvidia-h100-80gb (LeaderWorkerSet)."""
    for item in load([str(MANIFESTS / "deploy_gke-samples_1.yaml")]):
        if item.obj["kind"] == "LeaderWorkerSet":
            obj = copy.deepcopy(item.obj)
            obj["metadata"]["namespace"] = "ml"
            return obj
    raise AssertionError("no LeaderWorkerSet in deploy_gke-samples_1.yaml")


def _cpu_hpa(kind: str, name: str, api: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "scaleTargetRef": {"apiVersion": api, "kind": kind, "name": name},
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


def _pod(
    image: str,
    command: list[str],
    *,
    node_selector: dict[str, str] | None = None,
    resource: str = "nvidia.com/gpu",
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "llm"}},
            "template": {
                "metadata": {"labels": {"app": "llm"}},
                "spec": {
                    "nodeSelector": node_selector or {},
                    "containers": [
                        {
                            "name": "engine",
                            "image": image,
                            "command": command,
                            "resources": {"limits": {resource: "1"}},
                        }
                    ],
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("vllm/vllm-openai:v0.8.5", "0.8.5"),
        ("vllm/vllm-openai:v0.10.1.1", "0.10.1"),
        ("registry.local:5000/vllm/vllm-openai:0.11.0-cu128", "0.11.0"),
        ("lmsysorg/sglang:v0.5.5-cu126", "0.5.5"),
        ("vllm/vllm-openai:latest", None),
        ("vllm/vllm-openai", None),
        ("registry.local:5000/vllm", None),
        ("vllm/vllm-openai@sha256:0b51ec38fb965b44f6aa75d8d847c5f21bc062b7140e1d83444b39b67fc4a2ea", None),
    ],
)
def test_engine_version_from_the_image_tag(image: str, version: str | None) -> None:
    assert versions.image_version(image) == version


@pytest.mark.parametrize(
    ("version", "gpu", "seqs"),
    [
        # get_batch_defaults (>= 0.9.0): >= 70 GiB and not A100 -> 1024
        ("0.11.0", "NVIDIA-H100-80GB-HBM3", 1024),
        ("0.11.0", "NVIDIA-H200", 1024),
        ("0.11.0", "AMD-Instinct-MI300X", 1024),
        ("0.11.0", "NVIDIA-A100-SXM4-80GB", 256),
        ("0.11.0", "NVIDIA-L40S", 256),
        ("0.11.0", "NVIDIA-L4", 256),
        (None, "NVIDIA-B200", 1024),
        (None, "Tesla-T4", 256),
        # 0.8.5 (#17073): the memory rule without the A100 exception
        ("0.8.5", "NVIDIA-A100-SXM4-80GB", 1024),
        ("0.8.5", "NVIDIA-L40S", 256),
        # 0.8.0-0.8.4: H100/H200 by name
        ("0.8.4", "NVIDIA-H100-80GB-HBM3", 1024),
        ("0.8.4", "AMD-Instinct-MI300X", 256),
        # before 0.8: 256 everywhere
        ("0.7.3", "NVIDIA-H100-80GB-HBM3", 256),
        ("0.6.2", "NVIDIA-H200", 256),
    ],
)
def test_vllm_default_max_num_seqs_by_version_and_gpu(version: str | None, gpu: str, seqs: int) -> None:
    info = gpus.GpuInfo(gpu.lower(), gpus.memory_gib(gpu), "test")
    got = versions.vllm_max_num_seqs(version, info)
    assert got.value == seqs and str(seqs) in got.why


def test_vllm_on_a_gpu_it_does_not_pin_assumes_the_smaller_default_and_says_so() -> None:
    found = engines.detect(_pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m"]))
    assert found.gpu is None and found.concurrency == 256
    assert "does not pin" in found.concurrency_why and "--max-num-seqs" in found.concurrency_why


@pytest.mark.parametrize(
    ("selector", "resource", "seqs", "product"),
    [
        ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, "nvidia.com/gpu", 1024, "h100"),
        ({"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}, "nvidia.com/gpu", 256, "a100"),
        ({"karpenter.k8s.aws/instance-gpu-name": "h200"}, "nvidia.com/gpu", 1024, "h200"),
        ({"node.kubernetes.io/instance-type": "p5.48xlarge"}, "nvidia.com/gpu", 1024, "h100"),
        ({"eks.amazonaws.com/instance-family": "g6e"}, "nvidia.com/gpu", 256, "l40s"),
        ({"nvidia.com/gpu.memory": "81559"}, "nvidia.com/gpu", 1024, "MiB"),
        ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, "nvidia.com/mig-3g.40gb", 256, "MIG"),
    ],
)
def test_the_gpu_the_workload_requests_sets_the_vllm_default(
    selector: dict[str, str], resource: str, seqs: int, product: str
) -> None:
    found = engines.detect(
        _pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m"], node_selector=selector, resource=resource)
    )
    assert found.concurrency == seqs
    assert found.gpu is not None and product in found.gpu.text
    assert product in found.concurrency_why


def test_required_affinity_with_several_gpus_takes_the_smallest() -> None:
    pod = _pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m"])
    pod["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "nvidia.com/gpu.product",
                                "operator": "In",
                                "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    found = engines.detect(pod)
    assert found.concurrency == 256 and found.gpu is not None and "l4" in found.gpu.product


def test_real_h100_sample_gets_1024_and_the_threshold_and_knative_target_follow() -> None:
    """deploy_gke-samples_1.yaml: vllm-openai:v0.8.5 pinned to nvidia-h100-80gb: 1024, not 256 (4x)."""
    lws = _lws_h100()
    found = engines.detect(lws)
    assert found.version == "0.8.5" and found.concurrency == 1024
    hpa = _cpu_hpa("LeaderWorkerSet", "vllm", "leaderworkerset.x-k8s.io/v1")
    keda = conv.convert_all([hpa, lws], conv.Options())[0]
    assert keda.ok and keda.threshold == "52" == str(conv.default_target_queue(1024))
    assert any("ceil(1024 max concurrency / 20)" in n and "nvidia-h100-80gb" in n for n in keda.notes)
    knative = conv.convert_all([hpa, lws], conv.Options(to="knative"))[0]
    annotations = knative.objects[0]["spec"]["template"]["metadata"]["annotations"]
    # Knative clamps to container-concurrency-max-limit (1000 by default; knative/serving
    # pkg/apis/serving/v1/revision_validation.go): the engine's 1024 is served as 1000, and said.
    assert annotations["autoscaling.knative.dev/target"] == "1000"
    assert knative.objects[0]["spec"]["template"]["spec"]["containerConcurrency"] == 1000
    assert any(n.startswith("concurrency 1024:") and "0.8.5" in n for n in knative.notes)


def test_sglang_default_concurrency_is_derived_from_the_kv_pool_not_256() -> None:
    found = engines.detect(
        _pod(
            "lmsysorg/sglang:v0.5.5",
            ["python3", "-m", "sglang.launch_server", "--model-path", "m", "--enable-metrics"],
        )
    )
    assert found.engine is engines.SGLANG and found.concurrency == 2048
    assert "KV pool" in found.concurrency_why and "max_running_requests" in found.concurrency_why


def test_trtllm_serve_is_its_own_engine_with_its_own_metrics() -> None:
    found = engines.detect(
        _pod(
            "nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
            ["trtllm-serve", "meta-llama/Llama-3.1-8B-Instruct", "--max_batch_size", "128"],
        )
    )
    assert found.engine is engines.TRTLLM and found.confidence == "high"
    assert found.engine.queue is not None and found.engine.queue.names == ("trtllm_num_requests_waiting",)
    assert found.engine.running is not None and found.engine.running.names == ("trtllm_num_requests_running",)
    assert found.engine.kv_cache is not None and found.engine.kv_cache.names == (
        "trtllm_kv_cache_utilization",
    )
    assert found.engine.metrics_path == "/prometheus/metrics" and found.max_concurrency == 128
    assert engines.engine_for_metric("trtllm_num_requests_waiting") == (engines.TRTLLM, "queue")
    hpa = _cpu_hpa("Deployment", "llm", "apps/v1")
    result = conv.convert_all(
        [hpa, _pod("nvcr.io/nvidia/tensorrt-llm/release:1.0.0", ["trtllm-serve", "m"])], conv.Options()
    )[0]
    query = result.objects[0]["spec"]["triggers"][0]["metadata"]["query"]
    assert "trtllm_num_requests_waiting" in query and "nv_trt_llm" not in query
    assert result.threshold == str(conv.default_target_queue(versions.TRTLLM_MAX_BATCH_SIZE))
    assert any("return_perf_metrics" in n and "/prometheus/metrics" in n for n in result.notes)


def test_triton_with_the_trtllm_backend_keeps_the_nv_trt_llm_metrics() -> None:
    found = engines.detect(
        _pod(
            "nvcr.io/nvidia/tritonserver:24.05-trtllm-python-py3",
            ["tritonserver", "--model-repository=/models/tensorrt_llm"],
        )
    )
    assert found.engine is engines.TRITON_TRTLLM
    assert found.engine.queue is not None and found.engine.queue.names == ("nv_trt_llm_request_metrics",)


@pytest.mark.parametrize(
    ("version", "names"),
    [
        ("0.8.5", ("vllm:gpu_cache_usage_perc",)),
        ("0.9.1", ("vllm:gpu_cache_usage_perc",)),
        ("0.9.2", ("vllm:kv_cache_usage_perc",)),
        ("0.10.1", ("vllm:kv_cache_usage_perc",)),
        ("0.11.0", ("vllm:kv_cache_usage_perc",)),
        ("0.12.0", ("vllm:kv_cache_usage_perc",)),
        (None, ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
    ],
)
def test_vllm_kv_cache_metric_by_version(version: str | None, names: tuple[str, ...]) -> None:
    assert versions.vllm_kv_cache_names(version) == names
    image = f"vllm/vllm-openai:v{version}" if version else "vllm/vllm-openai:latest"
    hpa = _cpu_hpa("Deployment", "llm", "apps/v1")
    result = conv.convert_all([hpa, _pod(image, ["vllm", "serve", "m"])], conv.Options(kv_cache=0.8))[0]
    query = next(t for t in result.objects[0]["spec"]["triggers"] if t["name"] == "kv_cache")["metadata"][
        "query"
    ]
    for name in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"):
        assert (name.split(":")[1] in query) == (name in names), (name, query)


def test_disable_log_stats_refuses_a_queue_trigger_on_a_series_that_never_exists() -> None:
    deploy = _pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m", "--disable-log-stats"])
    found = engines.detect(deploy)
    assert found.metrics_disabled and found.metrics_off_flag == "--disable-log-stats"
    result = conv.convert_all([_cpu_hpa("Deployment", "llm", "apps/v1"), deploy], conv.Options())[0]
    assert result.action == "error" and isinstance(result.error, InputError)
    assert "--disable-log-stats" in result.why and "never exists" in result.why and result.objects == []


def test_disable_log_stats_with_other_hpa_metrics_falls_back_to_them_and_says_so() -> None:
    deploy = _pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m", "--disable-log-stats"])
    hpa = _cpu_hpa("Deployment", "llm", "apps/v1")
    hpa["spec"]["metrics"].append(
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "gateway_inflight_requests"},
                "target": {"type": "AverageValue", "averageValue": "8"},
            },
        }
    )
    result = conv.convert_all([hpa, deploy], conv.Options(kv_cache=0.8))[0]
    assert result.ok
    queries = [t["metadata"]["query"] for t in result.objects[0]["spec"]["triggers"]]
    assert queries and all("vllm" not in q for q in queries)
    assert any("no queue trigger" in n and "--disable-log-stats" in n for n in result.notes)
    assert any(n.startswith("--kv-cache ignored") for n in result.notes)


def test_disable_log_stats_through_the_command_line() -> None:
    """The user's path: the installed executable, one line on stderr, non-zero exit, nothing on stdout."""
    exe = Path(sys.executable).with_name("kubectl-gpuscale")
    text = yaml.safe_dump_all(
        [
            _cpu_hpa("Deployment", "llm", "apps/v1"),
            _pod("vllm/vllm-openai:v0.11.0", ["vllm", "serve", "m", "--disable-log-stats"]),
        ]
    )
    proc = subprocess.run(
        [str(exe), "migrate-hpa", "-f", "-", "-o", "yaml"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert "--disable-log-stats" in proc.stderr and "never exists" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
