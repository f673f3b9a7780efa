"""Checkpoint commands through the real kubernetes client against the test API server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kubectl_gpuscale.checkpoint import facts, helper
from kubectl_gpuscale.cli import main
from kubectl_gpuscale.kube import Cluster
from kubectl_gpuscale.names import CHECKPOINT_HELPER_LABEL
from tests.support.kube_fixtures import TestApiServer

NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "gpu-1",
        "labels": {
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/cuda.driver-version.major": "570",
        },
    },
    "status": {
        "nodeInfo": {"kubeletVersion": "v1.31.4", "containerRuntimeVersion": "cri-o://1.31.2"},
        "capacity": {"nvidia.com/gpu": "8"},
    },
}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "vllm-0", "namespace": "ml"},
    "spec": {
        "nodeName": "gpu-1",
        "containers": [
            {
                "name": "vllm",
                "image": "vllm/vllm-openai:v0.8.5",
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }
        ],
    },
    "status": {"phase": "Running"},
}


def run(apiserver: TestApiServer, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI as the console script does; (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as stop:
        main(["checkpoint", *args, "--kubeconfig", apiserver.kubeconfig])
    out = capsys.readouterr()
    return int(stop.value.code or 0), out.out, out.err


@pytest.fixture
def seeded(apiserver: TestApiServer) -> TestApiServer:
    apiserver.seed(NODE, POD)
    return apiserver


def test_checkpoint_ok_gpu_default_timeout(seeded: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 0, err
    assert out.startswith(f"{facts.CHECKPOINT_DIR}/checkpoint-vllm-0_ml-vllm-") and out.strip().endswith(
        ".tar"
    )
    call = seeded.checkpoints[-1]
    assert (call.node, call.namespace, call.pod, call.container, call.timeout) == (
        "gpu-1",
        "ml",
        "vllm-0",
        "vllm",
        "900",
    )
    assert "process memory" in err
    code, out, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml", "--timeout", "1800", "-o", "json")
    assert code == 0 and '"archive"' in out and seeded.checkpoints[-1].timeout == "1800"


def test_checkpoint_403_explains_kubelet_identity(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded.set_checkpoint("forbidden")
    code, out, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 1 and out == ""
    assert "kube-apiserver-kubelet-client" in err and "nodes/checkpoint" in err and "--print-rbac" in err


def test_checkpoint_404_feature_gate(seeded: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    seeded.set_checkpoint("notfound")
    code, _, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 1 and "ContainerCheckpoint" in err


def test_checkpoint_500_gpu_hints(seeded: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    seeded.set_checkpoint(
        "error",
        message="mnt: Mount 77 ./proc/driver/nvidia/gpus/0000:3b:00.0 has unreachable "
        "sharing. Try --enable-external-masters",
    )
    code, _, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 1 and "failed" in err and "/etc/criu/runc.conf" in err
    assert len(err.strip().splitlines()) == 2  # the security warning, then one error line


def test_preflight_blocks_without_nodes_proxy(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded.deny("create", "nodes/proxy")
    code, _, err = run(seeded, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 1 and "nodes/proxy" in err
    assert seeded.checkpoints == []
    code, out, _ = run(seeded, capsys, "pod", "vllm-0", "-n", "ml", "--preflight")
    assert code == 1 and "ERROR" in out and "kubelet" in out


def test_preflight_refuses_old_runtime(apiserver: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    node = {
        **NODE,
        "status": {
            "nodeInfo": {"kubeletVersion": "v1.31.0", "containerRuntimeVersion": "containerd://1.7.22"}
        },
    }
    apiserver.seed(node, POD)
    code, _, err = run(apiserver, capsys, "pod", "vllm-0", "-n", "ml")
    assert code == 1 and "containerd 1.7.22" in err and apiserver.checkpoints == []


def _complete_helper(apiserver: TestApiServer, namespace: str, log: str, stop: threading.Event) -> None:
    """Play the kubelet: when a list helper pod appears, give it a log and mark it Succeeded."""
    cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)
    while not stop.is_set():
        for pod in apiserver.objects("v1", "Pod", namespace):
            if (pod["metadata"].get("labels") or {}).get(CHECKPOINT_HELPER_LABEL) == "list" and (
                pod.get("status") or {}
            ).get("phase") != "Succeeded":
                apiserver.set_log(namespace, pod["metadata"]["name"], log)
                cluster.patch(
                    "v1",
                    "Pod",
                    pod["metadata"]["name"],
                    namespace,
                    {"status": {"phase": "Succeeded"}},
                    subresource="status",
                )
        time.sleep(0.05)


def test_list_through_helper_pod(seeded: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    log = (
        "4096000 1773438186 /checkpoints/checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar\n"
        f"{helper.END_MARKER}\n"
    )
    stop = threading.Event()
    thread = threading.Thread(target=_complete_helper, args=(seeded, "kube-system", log, stop), daemon=True)
    thread.start()
    try:
        code, out, err = run(seeded, capsys, "list", "-n", "kube-system", "-o", "json", "--wait", "20")
    finally:
        stop.set()
        thread.join()
    assert code == 0, err
    assert '"pod": "vllm-0"' in out and '"size": 4096000' in out and '"namespace": "ml"' in out
    assert seeded.objects("v1", "Pod", "kube-system") == []
    created = [r for r in seeded.requests if r.method == "POST" and r.path.endswith("/pods")]
    assert created and created[0].json()["spec"]["volumes"][0]["hostPath"]["path"] == facts.CHECKPOINT_DIR


def test_fetch_failure_removes_helper_and_partial(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    archive = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "out.tar"
    # The helper pod never starts (no kubelet): fetch gives up after --wait and removes the pod.
    code, _out, err = run(
        seeded,
        capsys,
        "fetch",
        archive,
        "--node",
        "gpu-1",
        "-n",
        "kube-system",
        "-o",
        str(dest),
        "--wait",
        "1",
    )
    assert code == 1 and "did not start" in err and "process memory" in err
    assert seeded.objects("v1", "Pod", "kube-system") == []
    assert list((tmp_path / "out").iterdir()) == []


@contextmanager
def _helpers_run(apiserver: TestApiServer, namespace: str = "kube-system") -> Iterator[list[str]]:
    """Play the kubelet: every pod created in `namespace` is marked Running; yields the names seen."""
    stop = threading.Event()
    seen: list[str] = []

    def make_running() -> None:
        cluster = Cluster.connect(kubeconfig=apiserver.kubeconfig)
        while not stop.is_set():
            for pod in apiserver.objects("v1", "Pod", namespace):
                if (pod.get("status") or {}).get("phase") != "Running":
                    seen.append(pod["metadata"]["name"])
                    cluster.patch(
                        "v1",
                        "Pod",
                        pod["metadata"]["name"],
                        namespace,
                        {"status": {"phase": "Running"}},
                        subresource="status",
                    )
            time.sleep(0.05)

    thread = threading.Thread(target=make_running, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def test_fetch_exec_failure_removes_helper(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    archive = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"
    (tmp_path / "out").mkdir()
    with _helpers_run(seeded):  # no exec handler: the helper's commands cannot run
        code, _, err = run(
            seeded,
            capsys,
            "fetch",
            archive,
            "--node",
            "gpu-1",
            "-n",
            "kube-system",
            "-o",
            str(tmp_path / "out" / "out.tar"),
            "--wait",
            "20",
        )
    assert code == 1 and "exec" in err
    assert seeded.objects("v1", "Pod", "kube-system") == []
    assert list((tmp_path / "out").iterdir()) == []


ARCHIVE = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"


@pytest.fixture
def node_archive(tmp_path: Path) -> Path:
    """A realistic CRI-O archive (about 3 MiB) as it sits in the node's checkpoint directory."""
    from tests.checkpoint_archives import crio_files, write_archive

    (tmp_path / "node").mkdir()
    return write_archive(tmp_path / "node" / ARCHIVE, crio_files())


def test_fetch_end_to_end(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, node_archive: Path
) -> None:
    import hashlib

    from tests.support.apiserver import file_exec_handler

    remote = f"{facts.HELPER_MOUNT}/{ARCHIVE}"
    seeded.set_exec("kube-system", None, file_exec_handler({remote: node_archive}))
    (tmp_path / "out").mkdir()
    with _helpers_run(seeded) as helpers:
        code, out, err = run(
            seeded,
            capsys,
            "fetch",
            f"{facts.CHECKPOINT_DIR}/{ARCHIVE}",
            "--node",
            "gpu-1",
            "-n",
            "kube-system",
            "-o",
            str(tmp_path / "out"),
            "--wait",
            "20",
        )
    assert code == 0, err
    dest = tmp_path / "out" / ARCHIVE
    assert out == f"{dest}\n"
    data = node_archive.read_bytes()
    assert len(data) > 3 * 1024 * 1024 and dest.read_bytes() == data
    assert (dest.stat().st_mode & 0o777) == 0o600
    assert list((tmp_path / "out").iterdir()) == [dest]  # no .part file left
    assert f"sha256 {hashlib.sha256(data).hexdigest()}" in err and "process memory" in err
    # One helper pod, pinned to the node, the archive read through its exec channel, then deleted.
    assert len(set(helpers)) == 1
    name = helpers[0]
    assert [(c.pod, c.container, c.command) for c in seeded.execs] == [
        (name, "helper", ("stat", "-c", "%s", remote)),
        (name, "helper", ("sha256sum", remote)),
        (name, "helper", ("cat", remote)),
    ]
    created = [
        r.json()
        for r in seeded.requests
        if r.method == "POST" and r.path == "/api/v1/namespaces/kube-system/pods"
    ]
    assert [p["spec"]["nodeName"] for p in created] == ["gpu-1"]
    assert [r.path for r in seeded.requests if r.method == "DELETE"] == [
        f"/api/v1/namespaces/kube-system/pods/{name}"
    ]
    assert seeded.objects("v1", "Pod", "kube-system") == []
    # The fetched file is the archive: inspect reads it.
    with pytest.raises(SystemExit) as stop:
        main(["checkpoint", "inspect", str(dest), "-o", "json"])
    inspected = capsys.readouterr()
    assert not stop.value.code, inspected.err
    report = json.loads(inspected.out)
    assert (report["container_name"], report["engine"], report["gpu"]["cuda_plugin"], report["files"]) == (
        "vllm",
        "CRI-O",
        "yes",
        13,
    )


def test_fetch_checksum_mismatch_leaves_nothing(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, node_archive: Path
) -> None:
    from tests.support.apiserver import file_exec_handler

    serve = file_exec_handler({f"{facts.HELPER_MOUNT}/{ARCHIVE}": node_archive})

    def corrupting(argv: list[str], container: str) -> tuple[bytes, bytes, int]:
        out, err, code = serve(argv, container)
        if argv[0] == "cat":  # one bit flipped in transit, same length
            out = out[:1000] + bytes([out[1000] ^ 0x01]) + out[1001:]
        return out, err, code

    seeded.set_exec("kube-system", None, corrupting)
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "vllm.tar"
    with _helpers_run(seeded):
        code, out, err = run(
            seeded,
            capsys,
            "fetch",
            ARCHIVE,
            "--node",
            "gpu-1",
            "-n",
            "kube-system",
            "-o",
            str(dest),
            "--wait",
            "20",
        )
    assert code == 1 and out == ""
    assert f"error: fetch of {ARCHIVE} from node gpu-1 is corrupt" in err and "run fetch again" in err
    assert list((tmp_path / "out").iterdir()) == []
    assert seeded.objects("v1", "Pod", "kube-system") == []
    assert [c.command[0] for c in seeded.execs] == ["stat", "sha256sum", "cat"]


def test_fetch_missing_archive_is_not_found(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.support.apiserver import file_exec_handler

    seeded.set_exec("kube-system", None, file_exec_handler({}))
    with _helpers_run(seeded):
        code, _, err = run(
            seeded,
            capsys,
            "fetch",
            ARCHIVE,
            "--node",
            "gpu-1",
            "-n",
            "kube-system",
            "-o",
            str(tmp_path / "x.tar"),
            "--wait",
            "20",
        )
    assert code == 1
    assert f"cannot fetch {ARCHIVE} from node gpu-1: the archive is not in {facts.CHECKPOINT_DIR}" in err
    assert "checkpoint list --node gpu-1" in err
    assert not (tmp_path / "x.tar").exists() and seeded.objects("v1", "Pod", "kube-system") == []


def test_fetch_refuses_paths_outside_checkpoint_dir(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(seeded, capsys, "fetch", "/etc/shadow", "--node", "gpu-1", "-o", str(tmp_path / "x"))
    assert code == 2 and "/var/lib/kubelet/checkpoints" in err
    assert not [r for r in seeded.requests if r.method == "POST"]


def test_restore_dry_run_client_and_refusal(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from tests.support.schemas import assert_valid

    archive = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"
    code, out, err = run(
        seeded,
        capsys,
        "restore",
        archive,
        "--node",
        "gpu-1",
        "-n",
        "ml",
        "--registry",
        "registry.internal/ckpt",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert [o["kind"] for o in doc["items"]] == ["Job", "Pod"]
    for obj in doc["items"]:
        assert_valid(obj)
    assert "step 1:" in err and "step 4:" in err
    assert not [r for r in seeded.requests if r.method == "POST" and "/namespaces/ml/" in r.path]
    old = {
        **NODE,
        "metadata": {"name": "old"},
        "status": {"nodeInfo": {"containerRuntimeVersion": "containerd://1.7.22"}},
    }
    seeded.seed(old)
    code, _, err = run(
        seeded,
        capsys,
        "restore",
        archive,
        "--node",
        "gpu-1",
        "--target-node",
        "old",
        "-n",
        "ml",
        "--registry",
        "r.internal/x",
        "--dry-run=client",
    )
    assert code == 1 and "containerd 1.7.22 cannot restore" in err


def test_restore_performs_job_then_pod(seeded: TestApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    archive = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"
    stop = threading.Event()

    def finish_job() -> None:
        cluster = Cluster.connect(kubeconfig=seeded.kubeconfig)
        while not stop.is_set():
            for job in seeded.objects("batch/v1", "Job", "ml"):
                if not (job.get("status") or {}).get("succeeded"):
                    cluster.patch(
                        "batch/v1",
                        "Job",
                        job["metadata"]["name"],
                        "ml",
                        {"status": {"succeeded": 1}},
                        subresource="status",
                    )
            time.sleep(0.05)

    thread = threading.Thread(target=finish_job, daemon=True)
    thread.start()
    try:
        from kubectl_gpuscale.checkpoint import service

        cluster = Cluster.connect(kubeconfig=seeded.kubeconfig)
        plan = service.plan_from_cluster(cluster, archive, "gpu-1", "ml", registry="registry.internal/ckpt")
        created = service.perform_restore(cluster, plan, wait=20, poll=0.1)
    finally:
        stop.set()
        thread.join()
    assert [o["kind"] for o in created] == ["Job", "Pod"]
    pod = seeded.get_object("v1", "Pod", "vllm-0-restored", "ml")
    assert pod and pod["spec"]["containers"][0]["image"] == plan.image and pod["spec"]["nodeName"] == "gpu-1"
