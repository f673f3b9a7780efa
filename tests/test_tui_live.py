"""The live source through the real kubernetes client (test API server) and the real Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubectl_gpuscale.errors import UnreachableError
from kubectl_gpuscale.names import KEDA_PAUSED_REPLICAS
from kubectl_gpuscale.tui.model import Snapshot
from kubectl_gpuscale.tui.sources.live import MAX_QUERIES, LiveSource, metric_queries
from tests.support.kube_fixtures import TestApiServer
from tests.support.prometheus import PrometheusServer


def _vllm_deployment(ns: str, name: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--max-num-seqs", "64"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
        },
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def _pod(ns: str, deploy: str, suffix: str, ready: bool, template_hash: str = "7d9f") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deploy}-{template_hash}-{suffix}",
            "namespace": ns,
            "labels": {"app": deploy, "pod-template-hash": template_hash},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "controller": True,
                    "name": f"{deploy}-{template_hash}",
                    "uid": "rs-uid",
                }
            ],
        },
        "spec": {
            "nodeName": "gpu-node-1",
            "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}],
        },
        "status": {
            "phase": "Running",
            "startTime": "2026-11-27T10:00:00Z",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
        },
    }


def _scaled_object(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "threshold": "5",
                        "query": 'sum({__name__=~"vllm[:_]num_requests_waiting", namespace="ml"})',
                    },
                }
            ],
        },
    }


def _keda_hpa(ns: str, so: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        # KEDA owns the HPA it generates (controllers/keda/hpa.go SetControllerReference); its webhook
        # (verifyHpas) skips an HPA owned by the ScaledObject being written.
        "metadata": {
            "name": f"keda-hpa-{so}",
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "name": so,
                    "uid": f"uid-{so}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": so},
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "s0-prometheus"},
                        "target": {"type": "AverageValue", "averageValue": "5"},
                    },
                }
            ],
        },
        "status": {
            "desiredReplicas": 2,
            "currentMetrics": [
                {
                    "type": "External",
                    "external": {"metric": {"name": "s0-prometheus"}, "current": {"averageValue": value}},
                }
            ],
        },
    }


def _seed_llama(apiserver: TestApiServer) -> None:
    apiserver.seed(
        _vllm_deployment("ml", "llama", 2, 2),
        _pod("ml", "llama", "a", True),
        _pod("ml", "llama", "b", True),
        _scaled_object("ml", "llama"),
        _keda_hpa("ml", "llama", "8"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ml"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
                },
            },
        },
    )


def test_query_count_does_not_depend_on_size() -> None:
    assert len(metric_queries(None)) == len(metric_queries([f"ns{i}" for i in range(500)]))
    assert len(metric_queries(None)) <= MAX_QUERIES


def test_live_snapshot_joins_cluster_and_prometheus(
    apiserver: TestApiServer, prometheus_server: PrometheusServer
) -> None:
    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.prom.gateway import Prometheus

    _seed_llama(apiserver)
    source = LiveSource(
        lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig),
        lambda: Prometheus.connect(prometheus_server.url),
        namespace="ml",
    )
    apiserver.reset_requests()
    snapshot = source.refresh()
    assert snapshot.problems == ()
    (llama,) = snapshot.workloads  # nginx has no engine and no GPU: not an inference workload
    assert (llama.engine, llama.scaler, llama.ready, llama.desired) == ("vLLM", "KEDA", 2, 2)
    assert (llama.min_replicas, llama.max_replicas) == (1, 6)
    assert llama.triggers[0].value == 8 and llama.triggers[0].threshold == 5
    fleet = {p.pod: p.values for p in prometheus_server.fleet if p.engine == "vllm-v1"}
    assert llama.queue_waiting == pytest.approx(
        fleet["llama-7d9f-a"]["waiting"] + fleet["llama-7d9f-b"]["waiting"]
    )
    kv = (fleet["llama-7d9f-a"]["kv_cache"] + fleet["llama-7d9f-b"]["kv_cache"]) / 2 * 100
    assert llama.kv_cache_pct == pytest.approx(kv)
    gpu = {
        p.pod: p.values["util"] for p in prometheus_server.fleet if p.engine == "dcgm" and p.namespace == "ml"
    }
    assert llama.gpu_util_pct == pytest.approx(sum(gpu.values()) / len(gpu))  # read from exported_pod labels
    assert {p.name for p in llama.pods} == {"llama-7d9f-a", "llama-7d9f-b"}
    assert any(f.rule == "GS008" for f in snapshot.findings)  # the doctor ran on the first refresh
    apiserver.reset_requests()
    source.refresh()
    lists = [r for r in apiserver.requests if r.method == "GET" and "watch" not in r.query]
    per_path: dict[str, int] = {}
    for r in lists:
        per_path[r.path] = per_path.get(r.path, 0) + 1
    assert all(count == 1 for path, count in per_path.items() if "/namespaces/ml/" in path), per_path
    source.close()


def test_prometheus_down_degrades_and_keeps_cluster_data(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.prom.gateway import Prometheus

    _seed_llama(apiserver)
    source = LiveSource(
        lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig),
        lambda: Prometheus.connect("http://127.0.0.1:1", timeout=2),
        namespace="ml",
    )
    snapshot = source.refresh()
    assert len(snapshot.workloads) == 1 and snapshot.workloads[0].queue_waiting is None
    assert any(p.startswith("Prometheus:") and "127.0.0.1:1" in p for p in snapshot.problems)


def test_api_server_down_gives_a_problem_not_a_crash() -> None:
    from kubectl_gpuscale.kube import Cluster

    def connect() -> Cluster:
        raise UnreachableError("cannot reach the API server at https://127.0.0.1:1", "connection refused")

    snapshot = LiveSource(connect, None, namespace=None).refresh()
    assert isinstance(snapshot, Snapshot) and snapshot.workloads == ()
    assert snapshot.problems and "connection refused" in snapshot.problems[0]


def test_scale_and_pause_write_through_the_client(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster

    _seed_llama(apiserver)
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    source.refresh()
    source.scale("ml", "llama", 4)
    assert apiserver.get_object("apps/v1", "Deployment", "llama", "ml")["spec"]["replicas"] == 4
    source.pause("ml", "llama", 4)
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "llama", "ml")
    assert so["metadata"]["annotations"][KEDA_PAUSED_REPLICAS] == "4"
    assert source.refresh().workloads[0].paused
    source.pause("ml", "llama", None)
    so = apiserver.get_object("keda.sh/v1alpha1", "ScaledObject", "llama", "ml")
    assert KEDA_PAUSED_REPLICAS not in (so["metadata"].get("annotations") or {})
    source.close()


def test_live_waterfall_reads_the_pod_like_coldstart_does(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster
    from tests.support.paths import LOGS

    _seed_llama(apiserver)
    log = (LOGS / "vllm_v1-0.11.x_enginecoreDP0-compile-miss_5.log").read_text()
    apiserver.set_log("ml", "llama-7d9f-a", log)
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    phases, headline = source.cold_start("ml", "llama-7d9f-a")
    names = [p.name for p in phases]
    assert "torch.compile" in names and "CUDA graph capture" in names, names
    assert "longest" in headline or headline.startswith("failed")


def test_checkpoint_action_goes_through_the_kubelet_proxy(apiserver: TestApiServer) -> None:
    from kubectl_gpuscale.kube import Cluster

    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "gpu-node-1", "labels": {"nvidia.com/cuda.driver-version.major": "570"}},
        "status": {"nodeInfo": {"kubeletVersion": "v1.31.4", "containerRuntimeVersion": "cri-o://1.31.2"}},
    }
    _seed_llama(apiserver)
    apiserver.seed(node)
    source = LiveSource(lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig), None, namespace="ml")
    message = source.checkpoint("ml", "llama-7d9f-a")
    call = apiserver.checkpoints[-1]
    assert (call.node, call.namespace, call.pod, call.container) == (
        "gpu-node-1",
        "ml",
        "llama-7d9f-a",
        "vllm",
    )
    assert "treat it like a Secret" in message and ".tar" in message


def test_context_switch_reads_the_other_cluster(apiserver: TestApiServer, tmp_path: Path) -> None:
    from kubectl_gpuscale.kube import Cluster
    from tests.support.apiserver import ApiServer

    other = ApiServer()
    other.start()
    try:
        other.seed(_vllm_deployment("ml", "other-model", 1, 1))
        _seed_llama(apiserver)
        second = other.write_kubeconfig(tmp_path / "second", context="second")
        source = LiveSource(
            lambda: Cluster.connect(kubeconfig=apiserver.kubeconfig),
            None,
            namespace="ml",
            context_factory=lambda ctx: Cluster.connect(kubeconfig=second, context=ctx),
        )
        assert [w.name for w in source.refresh().workloads] == ["llama"]
        assert source.set_context("second") == "switched to context second"
        assert [w.name for w in source.refresh().workloads] == ["other-model"]
    finally:
        other.stop()


def test_top_once_on_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    plugin = str(Path(sys.executable).parent / "kubectl-gpuscale")
    result = subprocess.run(
        [plugin, "top", "--once", "--kubeconfig", str(kubeconfig)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert (
        result.stderr.count("\n") == 1
        and "connection refused" in result.stderr
        and "Traceback" not in result.stderr
    )
    missing = subprocess.run(
        [plugin, "top", "--kubeconfig", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "cannot read kubeconfig" in missing.stderr


@pytest.mark.parametrize(("flags", "listed"), [([], ["llama"]), (["-n", "other"], []), (["-A"], ["llama"])])
def test_top_without_n_reads_the_context_namespace(
    apiserver: TestApiServer, tmp_path: Path, flags: list[str], listed: list[str]
) -> None:
    """No -n and no -A: the context's namespace (kubectl's rule); -A lists every namespace (issue 16)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    _seed_llama(apiserver)
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace="ml")
    plugin = str(Path(sys.executable).parent / "kubectl-gpuscale")
    result = subprocess.run(
        [
            plugin,
            "top",
            "--once",
            "-o",
            "json",
            "--kubeconfig",
            kubeconfig,
            "--prometheus",
            "http://127.0.0.1:1",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    assert [w["name"] for w in snapshot["workloads"]] == listed
    paths = {r.path for r in apiserver.requests if r.method == "GET" and r.path.endswith("/deployments")}
    assert paths == (
        {"/apis/apps/v1/deployments"}
        if flags == ["-A"]
        else {f"/apis/apps/v1/namespaces/{flags[1] if flags else 'ml'}/deployments"}
    )
