"""The `Cluster` gateway through the real kubernetes client, over HTTP, against the test API server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gpuscale.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    InvalidError,
    NotFoundError,
    UnreachableError,
)
from kubectl_gpuscale.kube import Cluster
from kubectl_gpuscale.names import FIELD_MANAGER
from tests.support.apiserver import KUBELET_CLIENT_FORBIDDEN, ApiServer
from tests.support.paths import MANIFESTS

HPA: dict[str, Any] = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "vllm", "namespace": "ml", "labels": {"app": "vllm"}},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"},
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


def deployment(name: str = "vllm", replicas: int = 2, namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai"}]},
            },
        },
        "status": {"replicas": replicas},
    }


def pod(name: str, *containers: str, namespace: str = "ml", node: str = "gpu-1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "i"} for c in containers]},
    }


# ---- connecting ---------------------------------------------------------------------------------------


def test_connect_uses_the_kubeconfig_context_and_sends_the_token(
    apiserver: ApiServer, cluster: Cluster
) -> None:
    apiserver.anonymous = False
    assert (
        cluster.host == apiserver.url and cluster.context == "test" and cluster.default_namespace == "default"
    )
    assert cluster.server_version()["gitVersion"] == f"v{apiserver.version}"
    apiserver.token = "rotated"
    with pytest.raises(ForbiddenError, match="unauthorized"):
        cluster.server_version()


def test_kubeconfig_list_with_the_context_in_the_second_file(
    apiserver: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [],
                "users": [],
                "contexts": [],
                "current-context": "",
            }
        )
    )
    second = apiserver.write_kubeconfig(tmp_path / "b.yaml", context="gpu", namespace="ml")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    cluster = Cluster.connect(context="gpu")
    assert cluster.context == "gpu" and cluster.default_namespace == "ml"
    apiserver.seed(deployment())
    found = cluster.get("apps/v1", "Deployment", "vllm", cluster.namespace_or_default(None))
    assert found["metadata"]["namespace"] == "ml"
    monkeypatch.setenv("KUBECONFIG", f"{first}{':'}{second}")
    assert Cluster.connect().context == "gpu"  # current-context from the second file


def test_context_flag_selects_that_contexts_namespace(apiserver: ApiServer, tmp_path: Path) -> None:
    config = apiserver.kubeconfig_dict(context="one", namespace="ns-one")
    other = apiserver.kubeconfig_dict(context="two", namespace="ns-two")
    config["contexts"] += other["contexts"]
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    assert Cluster.connect(kubeconfig=str(path)).default_namespace == "ns-one"
    assert Cluster.connect(kubeconfig=str(path), context="two").default_namespace == "ns-two"
    with pytest.raises(InputError, match="nope"):
        Cluster.connect(kubeconfig=str(path), context="nope")


def test_no_in_cluster_fallback_when_a_kubeconfig_is_given(
    apiserver: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)  # type: ignore[attr-defined]
    assert cluster.host == apiserver.url


def test_missing_kubeconfig_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="--kubeconfig"):
        Cluster.connect(kubeconfig=str(tmp_path / "absent"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match="no kubeconfig found"):
        Cluster.connect()


def test_connection_refused_is_unreachable_quickly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ApiServer()
    server.port = port
    cluster = Cluster.connect(kubeconfig=server.write_kubeconfig(tmp_path / "kc"))
    started = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        cluster.list("v1", "Pod", "ml")
    assert time.monotonic() - started < 2
    assert "connection refused" in str(err.value) and "kubectl cluster-info" in str(err.value)


def test_timeout_is_unreachable(apiserver: ApiServer, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        server = ApiServer()
        server.port = listener.getsockname()[1]
        cluster = Cluster.connect(kubeconfig=server.write_kubeconfig(tmp_path / "kc"), request_timeout=0.3)
        with pytest.raises(UnreachableError, match="timed out"):
            cluster.list("v1", "Pod", "ml")
    finally:
        listener.close()


@pytest.fixture
def tls_server() -> Any:
    import shutil

    if not shutil.which("openssl"):
        pytest.skip("the openssl binary is needed to make a self-signed certificate")
    with ApiServer(tls=True) as server:
        yield server


def test_tls_self_signed_fails_unless_insecure(tls_server: ApiServer, tmp_path: Path) -> None:
    path = tls_server.write_kubeconfig(tmp_path / "kc")
    with pytest.raises(UnreachableError) as err:
        Cluster.connect(kubeconfig=path).server_version()
    assert "TLS" in str(err.value) and "--insecure-skip-tls-verify" in str(err.value)
    assert Cluster.connect(kubeconfig=path, insecure_skip_tls_verify=True).server_version()["major"] == "1"
    config = tls_server.kubeconfig_dict()
    assert tls_server.ca_file
    config["clusters"][0]["cluster"]["certificate-authority"] = tls_server.ca_file
    (tmp_path / "ca.yaml").write_text(yaml.safe_dump(config))
    assert Cluster.connect(kubeconfig=str(tmp_path / "ca.yaml")).server_version()["major"] == "1"


# ---- reads ------------------------------------------------------------------------------------------------


def test_get_list_selectors_and_all_namespaces(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(deployment("a"), deployment("b"), deployment("c", namespace="other"))
    assert cluster.get("apps/v1", "Deployment", "a", "ml")["spec"]["replicas"] == 2
    assert cluster.get_or_none("apps/v1", "Deployment", "zzz", "ml") is None
    with pytest.raises(NotFoundError) as err:
        cluster.get("apps/v1", "Deployment", "zzz", "ml")
    assert 'deployments.apps "zzz" not found' in str(err.value)
    items = cluster.list("apps/v1", "Deployment", "ml", label_selector="app in (a,c)")
    assert [(i["kind"], i["metadata"]["name"]) for i in items] == [("Deployment", "a")]
    assert [i["metadata"]["name"] for i in cluster.list("apps/v1", "Deployment")] == ["a", "b", "c"]
    assert [
        i["metadata"]["name"]
        for i in cluster.list("apps/v1", "Deployment", None, field_selector="metadata.namespace=other")
    ] == ["c"]


def test_list_is_one_request_per_kind(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed([deployment(f"d{i}") for i in range(50)])
    apiserver.reset_requests()
    assert len(cluster.list("apps/v1", "Deployment")) == 50
    assert [r.path for r in apiserver.requests] == ["/apis/apps/v1/deployments"]


def test_list_optional_when_keda_is_absent(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "so", "namespace": "ml"},
        }
    )
    found = cluster.list_optional("keda.sh/v1alpha1", "ScaledObject", "ml")
    assert found is not None and [o["metadata"]["name"] for o in found] == ["so"]
    apiserver.disable_group("keda.sh")
    fresh = Cluster.connect(kubeconfig=apiserver.kubeconfig)  # type: ignore[attr-defined]
    assert fresh.list_optional("keda.sh/v1alpha1", "ScaledObject", "ml") is None
    assert fresh.serves("keda.sh/v1alpha1") is False


def test_discovery(apiserver: ApiServer, cluster: Cluster) -> None:
    groups = cluster.api_groups()
    assert groups["autoscaling"] == ["v2", "v1"] and "serving.knative.dev" in groups and groups[""] == ["v1"]
    assert cluster.serves("keda.sh/v1alpha1", "ScaledObject")
    assert cluster.serves("http.keda.sh/v1alpha1", "HTTPScaledObject")
    assert not cluster.serves("example.com/v1")
    assert cluster.api_service_available() is None
    apiserver.seed(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "status": {"conditions": [{"type": "Available", "status": "False"}]},
        }
    )
    assert cluster.api_service_available() is False


def test_custom_resource_found_through_discovery(apiserver: ApiServer, cluster: Cluster) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.gpu.example.com"},
        "spec": {
            "group": "gpu.example.com",
            "scope": "Cluster",
            "names": {"plural": "pools", "kind": "Pool"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    cluster.create(crd)
    made = cluster.create({"apiVersion": "gpu.example.com/v1", "kind": "Pool", "metadata": {"name": "a100"}})
    assert made["metadata"]["name"] == "a100" and "namespace" not in made["metadata"]
    assert [p["metadata"]["name"] for p in cluster.list("gpu.example.com/v1", "Pool")] == ["a100"]


def test_real_hpa_manifest_round_trip(apiserver: ApiServer, cluster: Cluster) -> None:
    sample = next(iter(sorted(MANIFESTS.glob("hpa_*.yaml"))), None) if MANIFESTS.exists() else None
    if sample is None:
        pytest.skip(f"no sample manifests under {MANIFESTS}")
    docs = [d for d in yaml.safe_load_all(sample.read_text()) if isinstance(d, dict) and d.get("kind")]
    served = [d for d in docs if cluster.serves(d["apiVersion"], d["kind"])]
    assert served, f"{sample.name} holds no kind the server serves"
    for doc in served:
        doc.setdefault("metadata", {}).setdefault("namespace", "ml")
        cluster.apply(doc)
    first = served[0]
    got = cluster.get(
        first["apiVersion"], first["kind"], first["metadata"]["name"], first["metadata"].get("namespace")
    )
    assert got.get("spec") == first.get("spec")


# ---- writes -------------------------------------------------------------------------------------------------


def test_create_replace_and_stale_conflict(cluster: Cluster) -> None:
    made = cluster.create(HPA)
    with pytest.raises(ConflictError, match="already exists"):
        cluster.create(HPA)
    made["spec"]["maxReplicas"] = 8
    replaced = cluster.replace(made)
    assert replaced["spec"]["maxReplicas"] == 8
    made["spec"]["maxReplicas"] = 9
    with pytest.raises(ConflictError) as err:
        cluster.replace(made)
    assert "the object has been modified" in str(err.value) and err.value.managers == ()
    assert "re-read the object" in str(err.value)


def test_apply_conflict_names_the_manager_and_force_takes_over(
    apiserver: ApiServer, cluster: Cluster
) -> None:
    cluster.apply(deployment(replicas=2), field_manager="helm")
    with pytest.raises(ConflictError) as err:
        cluster.apply(deployment(replicas=5))
    assert err.value.managers == ("helm",)
    assert "--force-conflicts" in str(err.value) and ".spec.replicas" in str(err.value)
    out = cluster.apply(deployment(replicas=5), force=True)
    assert out["spec"]["replicas"] == 5
    managers = {m["manager"] for m in out["metadata"]["managedFields"]}
    assert {"helm", FIELD_MANAGER} <= managers
    sent = apiserver.requests_to("PATCH")[-1]
    assert sent.param("fieldManager") == FIELD_MANAGER and sent.param("force") == "true"
    assert sent.content_type == "application/apply-patch+yaml"


def test_dry_run_writes_persist_nothing(apiserver: ApiServer, cluster: Cluster) -> None:
    assert cluster.create(HPA, dry_run=True)["metadata"]["name"] == "vllm"
    assert cluster.apply(HPA, dry_run=True)["spec"]["maxReplicas"] == 4
    assert apiserver.objects("autoscaling/v2", "HorizontalPodAutoscaler") == []
    cluster.create(HPA)
    cluster.patch(
        "autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml", {"spec": {"maxReplicas": 7}}, dry_run=True
    )
    cluster.delete("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml", dry_run=True)
    stored = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml")
    assert stored is not None and stored["spec"]["maxReplicas"] == 4
    posts = apiserver.requests_to("POST")
    assert posts[0].param("dryRun") == "All" and posts[1].param("dryRun") is None
    assert [r.param("dryRun") for r in apiserver.requests_to("PATCH")] == ["All", "All"]
    (delete,) = apiserver.requests_to("DELETE")
    assert delete.json()["dryRun"] == ["All"]


def test_patch_types(apiserver: ApiServer, cluster: Cluster) -> None:
    cluster.create(HPA)
    merged = cluster.patch(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "vllm",
        "ml",
        {"metadata": {"labels": {"app": None, "x": "y"}}},
    )
    assert merged["metadata"]["labels"] == {"x": "y"}
    ops = [
        {"op": "test", "path": "/spec/minReplicas", "value": 1},
        {"op": "replace", "path": "/spec/minReplicas", "value": 2},
    ]
    assert (
        cluster.patch("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml", ops, patch_type="json")[
            "spec"
        ]["minReplicas"]
        == 2
    )
    with pytest.raises(InvalidError, match="test failed"):
        cluster.patch("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml", ops, patch_type="json")
    strategic = cluster.patch(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "vllm",
        "ml",
        {"spec": {"maxReplicas": 6}},
        patch_type="strategic",
    )
    assert strategic["spec"]["maxReplicas"] == 6
    assert [r.content_type for r in apiserver.requests_to("PATCH")] == [
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
    ]


def test_hpa_rollback_orphan_keeps_the_adopted_hpa(apiserver: ApiServer, cluster: Cluster) -> None:
    so = cluster.create(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "vllm", "namespace": "ml"},
            "spec": {"scaleTargetRef": {"name": "vllm"}},
        }
    )
    owned = {
        **HPA,
        "metadata": {
            **HPA["metadata"],
            "ownerReferences": [
                {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "name": "vllm",
                    "uid": so["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    cluster.create(owned)
    cluster.delete("keda.sh/v1alpha1", "ScaledObject", "vllm", "ml", propagation_policy="Orphan")
    left = cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml")
    assert "ownerReferences" not in left["metadata"]
    so = cluster.create(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "vllm", "namespace": "ml"},
        }
    )
    cluster.patch(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "vllm",
        "ml",
        {
            "metadata": {
                "ownerReferences": [
                    {
                        "apiVersion": "keda.sh/v1alpha1",
                        "kind": "ScaledObject",
                        "name": "vllm",
                        "uid": so["metadata"]["uid"],
                    }
                ]
            }
        },
    )
    cluster.delete("keda.sh/v1alpha1", "ScaledObject", "vllm", "ml", propagation_policy="Background")
    assert cluster.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", "vllm", "ml") is None
    assert cluster.delete("keda.sh/v1alpha1", "ScaledObject", "vllm", "ml") is None  # already gone


def test_scale_subresource(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(deployment(replicas=3))
    scale = cluster.get_scale("apps/v1", "Deployment", "vllm", "ml")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=vllm"
    assert cluster.scale("apps/v1", "Deployment", "vllm", "ml", 0)["spec"]["replicas"] == 0
    stored = apiserver.get_object("apps/v1", "Deployment", "vllm", "ml")
    assert stored is not None and stored["spec"]["replicas"] == 0
    with pytest.raises(InputError):
        cluster.scale("apps/v1", "Deployment", "vllm", "ml", -1)


# ---- logs, events, node proxy, access ---------------------------------------------------------------------


def test_pod_logs_current_and_previous(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(pod("p", "vllm", "sidecar"))
    apiserver.set_log("ml", "p", "INFO loading weights\nINFO ready\n", container="vllm")
    apiserver.set_log("ml", "p", "CUDA out of memory\n", container="vllm", previous=True)
    assert cluster.pod_logs("p", "ml", container="vllm", tail_lines=1) == "INFO ready\n"
    assert cluster.pod_logs("p", "ml", container="vllm", previous=True) == "CUDA out of memory\n"
    with pytest.raises(InvalidError, match="a container name must be specified"):
        cluster.pod_logs("p", "ml")
    with pytest.raises(InvalidError, match='previous terminated container "sidecar"'):
        cluster.pod_logs("p", "ml", container="sidecar", previous=True)


def test_events_for_an_object_oldest_first(apiserver: ApiServer, cluster: Cluster) -> None:
    (p,) = apiserver.seed(pod("p", "vllm"))
    (other,) = apiserver.seed(pod("q", "vllm"))
    apiserver.add_event(p, "Pulled", "Successfully pulled image", timestamp="2026-01-01T00:02:00Z")
    apiserver.add_event(p, "Scheduled", "Successfully assigned", timestamp="2026-01-01T00:00:00Z")
    apiserver.add_event(other, "Scheduled", "other pod", timestamp="2026-01-01T00:00:00Z")
    events = cluster.events_for("Pod", "p", "ml", uid=p["metadata"]["uid"])
    assert [e["reason"] for e in events] == ["Scheduled", "Pulled"]
    sent = apiserver.requests_to("GET", "/api/v1/namespaces/ml/events")[-1]
    assert f"involvedObject.uid={p['metadata']['uid']}" in (sent.param("fieldSelector") or "")


def test_node_proxy_checkpoint_answers(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1"}}, pod("p", "vllm"))
    answer = cluster.node_proxy("POST", "gpu-1", "checkpoint/ml/p/vllm", query=[("timeout", 900)])
    assert answer.json()["items"][0].startswith("/var/lib/kubelet/checkpoints/checkpoint-p_ml-vllm-")
    assert apiserver.checkpoints[0].timeout == "900"
    apiserver.set_checkpoint("forbidden")
    with pytest.raises(ForbiddenError) as err:
        cluster.node_proxy("POST", "gpu-1", "checkpoint/ml/p/vllm")
    assert KUBELET_CLIENT_FORBIDDEN in str(err.value)
    apiserver.set_checkpoint("error")
    with pytest.raises(Exception, match=r"CRIU|criu"):
        cluster.node_proxy("POST", "gpu-1", "checkpoint/ml/p/vllm")
    apiserver.set_checkpoint("notfound")
    with pytest.raises(NotFoundError):
        cluster.node_proxy("POST", "gpu-1", "checkpoint/ml/p/vllm")


def test_forbidden_names_verb_resource_and_can_i_line(apiserver: ApiServer, cluster: Cluster) -> None:
    apiserver.seed(deployment())
    apiserver.deny("patch", "deployments.apps", namespace="ml")
    apiserver.deny("create", "nodes/proxy")
    apiserver.deny("patch", "deployments.apps/scale", namespace="ml")
    with pytest.raises(ForbiddenError) as err:
        cluster.patch("apps/v1", "Deployment", "vllm", "ml", {"spec": {"replicas": 1}})
    assert "kubectl auth can-i patch deployments.apps -n ml" in str(err.value)
    assert 'cannot patch resource "deployments"' in str(err.value)
    with pytest.raises(ForbiddenError) as err:
        cluster.scale("apps/v1", "Deployment", "vllm", "ml", 1)
    assert "kubectl auth can-i patch deployments.apps --subresource=scale -n ml" in str(err.value)
    with pytest.raises(ForbiddenError) as err:
        cluster.node_proxy("POST", "gpu-1", "checkpoint/ml/p/vllm")
    assert "kubectl auth can-i create nodes --subresource=proxy" in str(err.value)
    apiserver.deny("list", "pods")
    with pytest.raises(ForbiddenError) as err:
        cluster.list("v1", "Pod", "ml")
    assert "kubectl auth can-i list pods -n ml" in str(err.value)
    assert cluster.can_i("patch", "deployments", group="apps", namespace="ml") is False
    assert cluster.can_i("patch", "deployments", group="apps", namespace="other") is True
    assert cluster.can_i("create", "nodes", subresource="proxy") is False


def test_watch_streams_events(apiserver: ApiServer, cluster: Cluster) -> None:
    (first,) = apiserver.seed(deployment("a"))

    def later() -> None:
        time.sleep(0.2)
        apiserver.seed(deployment("b"))

    threading.Thread(target=later).start()
    events = list(
        cluster.watch(
            "apps/v1",
            "Deployment",
            "ml",
            resource_version=first["metadata"]["resourceVersion"],
            timeout_seconds=1,
        )
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


EXEC_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "helper", "namespace": "ml"},
    "spec": {"containers": [{"name": "sh", "image": "busybox"}]},
    "status": {"phase": "Running"},
}


def test_exec_stream_yields_exact_bytes_frame_by_frame(apiserver: ApiServer, cluster: Cluster) -> None:
    import hashlib
    import random

    from tests.support.apiserver import file_exec_handler

    apiserver.seed(EXEC_POD)
    every_byte = bytes(range(256))
    payload = every_byte * 64 + random.Random(7).randbytes(6 * 1024 * 1024) + every_byte[::-1]
    apiserver.set_exec("ml", "helper", file_exec_handler({"/ckpt/a.tar": payload, "/small": every_byte}))
    assert b"".join(cluster.exec_stream("helper", "ml", ["cat", "/small"])) == every_byte
    started = time.monotonic()
    chunks = list(cluster.exec_stream("helper", "ml", ["cat", "/ckpt/a.tar"], container="sh"))
    elapsed = time.monotonic() - started
    assert b"".join(chunks) == payload
    # One chunk per 64 KiB frame as it arrives: never the whole output buffered in memory.
    assert max(len(c) for c in chunks) <= 64 * 1024 and len(chunks) >= len(payload) // (64 * 1024)
    assert elapsed < 10, f"{len(payload)} bytes took {elapsed:.1f}s"
    call = apiserver.execs[-1]
    assert (call.container, call.command, call.stdout_bytes) == ("sh", ("cat", "/ckpt/a.tar"), len(payload))
    assert (
        b"".join(cluster.exec_stream("helper", "ml", ["sha256sum", "/small"])).split()[0].decode()
        == hashlib.sha256(every_byte).hexdigest()
    )


def test_exec_stream_errors(apiserver: ApiServer, cluster: Cluster) -> None:
    from kubectl_gpuscale.errors import GpuscaleError
    from kubectl_gpuscale.kube import CommandFailedError
    from tests.support.apiserver import file_exec_handler

    apiserver.seed(
        EXEC_POD,
        {**EXEC_POD, "metadata": {"name": "pending", "namespace": "ml"}, "status": {}},
        {**EXEC_POD, "metadata": {"name": "done", "namespace": "ml"}, "status": {"phase": "Succeeded"}},
    )
    with pytest.raises(CommandFailedError) as failed:  # no handler: the command could not run
        list(cluster.exec_stream("helper", "ml", ["cat", "/x"]))
    assert failed.value.command_exit is None and "set_exec" in failed.value.why
    apiserver.set_exec("ml", None, file_exec_handler({}))
    with pytest.raises(CommandFailedError) as failed:
        list(cluster.exec_stream("helper", "ml", ["cat", "/x"]))
    assert failed.value.command_exit == 1 and "exit code 1" in failed.value.why
    assert "cat: can't open '/x': No such file or directory" in failed.value.why
    with pytest.raises(NotFoundError, match="not found"):
        list(cluster.exec_stream("gone", "ml", ["ls"]))
    with pytest.raises(NotFoundError, match="container not found"):
        list(cluster.exec_stream("pending", "ml", ["ls"]))
    with pytest.raises(GpuscaleError, match="completed pod"):
        list(cluster.exec_stream("done", "ml", ["ls"]))
    with pytest.raises(GpuscaleError, match="container other is not valid"):
        list(cluster.exec_stream("helper", "ml", ["ls"], container="other"))
    apiserver.deny("create", "pods/exec")
    with pytest.raises(ForbiddenError) as forbidden:
        list(cluster.exec_stream("helper", "ml", ["ls"]))
    assert (
        'cannot create resource "pods/exec"' in forbidden.value.why
        and "--subresource=exec" in forbidden.value.fix
    )
    assert [c.pod for c in apiserver.execs] == ["helper", "helper"]
