"""Pure checkpoint logic: archive inspection, names, preflight, diagnosis, helper pod and restore plan."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale.checkpoint import diagnose, facts, helper, preflight
from kubectl_gpuscale.checkpoint.archive import (
    ArchiveError,
    inspect_archive,
    parse_archive_name,
    validate_archive_basename,
)
from kubectl_gpuscale.checkpoint.restore import plan_restore
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.errors import InputError, NotFoundError
from tests.checkpoint_archives import containerd_files, crio_files, write_archive
from tests.support.schemas import assert_valid


def test_inspect_crio_gpu_archive(tmp_path: Path) -> None:
    files = crio_files(pages=3 * 1024 * 1024)
    path = write_archive(tmp_path / "a.tar", files)
    info = inspect_archive(path)
    assert (info.engine, info.container, info.pod, info.namespace) == ("CRI-O", "vllm", "vllm-0", "ml")
    assert info.image == "docker.io/vllm/vllm-openai:v0.8.5"
    assert info.id == json.loads(files["config.dump"])["id"][:12]
    assert info.checkpointed == "2026-03-13T21:43:06.654321Z"
    assert info.memory_pages_size == 3 * 1024 * 1024 + 4096
    assert info.checkpoint_size == sum(len(v) for k, v in files.items() if k.startswith("checkpoint/"))
    assert info.root_fs_diff_size == 10240 and info.devshm_size == 1024
    assert info.gpu_devices == ("/dev/nvidia0", "/dev/nvidiactl")
    assert info.cuda_plugin == "yes"
    assert info.total_size == path.stat().st_size


def test_inspect_containerd_archive_and_cuda_absent(tmp_path: Path) -> None:
    info = inspect_archive(write_archive(tmp_path / "b.tar", containerd_files()))
    assert (info.engine, info.container, info.pod, info.namespace) == (
        "containerd",
        "sglang",
        "sglang-7d9f",
        "llm",
    )
    assert info.runtime == "io.containerd.runc.v2"
    assert info.cuda_plugin == "no" and info.gpu_devices == ()
    gpu_no_plugin = inspect_archive(write_archive(tmp_path / "c.tar", crio_files(cuda=False)))
    assert gpu_no_plugin.cuda_plugin == "no" and gpu_no_plugin.gpu_devices


def test_inspect_cli_json_never_prints_memory_or_env(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "a.tar", crio_files())
    result = CliRunner().invoke(cli, ["checkpoint", "inspect", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["container_name"] == "vllm" and data["metadata"]["pod_name"] == "vllm-0"
    assert data["checkpoint_size"]["memory_pages_size"] > 3 * 1024 * 1024
    assert data["gpu"]["cuda_plugin"] == "yes"
    assert "SECRET-PROMPT" not in result.output and "hf_secret" not in result.output
    table = CliRunner().invoke(cli, ["checkpoint", "inspect", str(path)])
    assert table.exit_code == 0 and "vllm" in table.stdout and "CRI-O" in table.stdout


def test_inspect_warns_when_gpu_state_missing(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "a.tar", crio_files(cuda=False))
    result = CliRunner().invoke(cli, ["checkpoint", "inspect", str(path)])
    assert result.exit_code == 0
    assert "CUDA plugin did not take part" in result.stderr


@pytest.mark.parametrize("member", ["../../etc/cron.d/x", "/etc/passwd", "checkpoint/../../x"])
def test_inspect_rejects_path_traversal(tmp_path: Path, member: str) -> None:
    info = tarfile.TarInfo(member)
    info.size = 1
    path = write_archive(tmp_path / "evil.tar", crio_files(), extra=[info])
    with pytest.raises(ArchiveError, match="unsafe checkpoint archive"):
        inspect_archive(path)


def test_inspect_rejects_escaping_symlink(tmp_path: Path) -> None:
    link = tarfile.TarInfo("checkpoint/evil")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../etc/shadow"
    with pytest.raises(ArchiveError, match="points outside"):
        inspect_archive(write_archive(tmp_path / "l.tar", crio_files(), extra=[link]))


def test_inspect_truncated_archive(tmp_path: Path) -> None:
    good = write_archive(tmp_path / "a.tar", crio_files(pages=1024 * 1024))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=r"truncated|corrupt"):
        inspect_archive(cut)


def test_inspect_missing_and_malformed_metadata(tmp_path: Path) -> None:
    files = crio_files()
    del files["spec.dump"]
    with pytest.raises(ArchiveError, match=r"spec.dump missing"):
        inspect_archive(write_archive(tmp_path / "m.tar", files))
    files = crio_files()
    files["config.dump"] = b"{not json"
    with pytest.raises(ArchiveError, match=r"config.dump is not valid JSON"):
        inspect_archive(write_archive(tmp_path / "j.tar", files))
    no_criu = {k: v for k, v in crio_files().items() if not k.startswith("checkpoint/")}
    with pytest.raises(ArchiveError, match="no checkpoint/"):
        inspect_archive(write_archive(tmp_path / "n.tar", no_criu))
    (tmp_path / "text.tar").write_text("hello")
    with pytest.raises(ArchiveError, match="not a tar"):
        inspect_archive(tmp_path / "text.tar")
    with pytest.raises(NotFoundError):
        inspect_archive(tmp_path / "absent.tar")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_inspect_unreadable_file(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "a.tar", crio_files())
    path.chmod(0)
    result = CliRunner().invoke(cli, ["checkpoint", "inspect", str(path)])
    assert isinstance(result.exception, InputError) and "permission denied" in str(result.exception)


def test_archive_names() -> None:
    name = "checkpoint-checkpoint-test_default-checkpoint-test-2026-03-13T21:43:06Z.tar"
    parsed = parse_archive_name(name, {"default"})
    assert parsed and (parsed.pod, parsed.namespace, parsed.container) == (
        "checkpoint-test",
        "default",
        "checkpoint-test",
    )
    parsed = parse_archive_name("checkpoint-vllm-0_llm-prod-vllm-2026-03-13T21:43:06+02:00.tar", {"llm-prod"})
    assert parsed and (parsed.namespace, parsed.container, parsed.time) == (
        "llm-prod",
        "vllm",
        "2026-03-13T21:43:06+02:00",
    )
    assert parse_archive_name("random.tar") is None
    assert validate_archive_basename(f"{facts.CHECKPOINT_DIR}/{name}") == name
    for bad in (
        "/etc/shadow",
        "../checkpoint-x.tar",
        "/tmp/checkpoint-a_b-c-2026-01-01T00:00:00Z.tar",
        "x.tar",
    ):
        with pytest.raises(InputError):
            validate_archive_basename(bad)


def _node(kubelet: str = "v1.31.4", runtime: str = "cri-o://1.31.2", driver: str | None = "570") -> dict:
    labels = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    if driver:
        labels["nvidia.com/cuda.driver-version.major"] = driver
    return {
        "metadata": {"name": "gpu-1", "labels": labels},
        "status": {
            "nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime},
            "capacity": {"nvidia.com/gpu": "8"},
        },
    }


def _pod(gpus: int = 1) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vllm-0", "namespace": "ml", "labels": {"app": "vllm"}},
        "spec": {
            "nodeName": "gpu-1",
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.8.5",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {},
                    "volumeMounts": [
                        {"name": "models", "mountPath": "/models"},
                        {"name": "shm", "mountPath": "/dev/shm"},
                    ],
                }
            ],
            "volumes": [
                {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
                {"name": "shm", "emptyDir": {"medium": "Memory"}},
            ],
        },
    }


def test_preflight_levels() -> None:
    ok = preflight.checkpoint_checks(_pod(), _node(), "vllm", True)
    assert [f.level for f in ok] == ["ok", "ok", "ok", "ok"]
    old = preflight.checkpoint_checks(
        _pod(), _node(kubelet="v1.29.9", runtime="containerd://1.7.22", driver="535"), "vllm", False
    )
    assert [(f.check, f.level) for f in old] == [
        ("kubelet", "error"),
        ("runtime", "error"),
        ("gpu", "error"),
        ("rbac", "error"),
    ]
    unlabelled = preflight.checkpoint_checks(_pod(), _node(driver=None), "vllm", None)
    assert any(f.check == "gpu" and f.level == "warn" and "cuda-checkpoint" in f.message for f in unlabelled)
    assert not any(f.check == "gpu" for f in preflight.checkpoint_checks(_pod(0), _node(), "vllm", True))


@pytest.mark.parametrize(
    ("runtime", "refused"),
    [
        ("containerd://1.7.22", True),
        ("containerd://2.0.4", True),
        ("containerd://2.1.0", False),
        ("containerd://2.3.4", False),
        ("containerd://2.4.0-beta.1", True),
        ("cri-o://1.25.3", True),
        ("cri-o://1.26.0", False),
        ("docker://27.1", True),
    ],
)
def test_restore_refusal(runtime: str, refused: bool) -> None:
    assert (preflight.restore_refusal(preflight.parse_runtime(runtime)) is not None) is refused


def test_kubelet_403_and_rbac_fix_validate() -> None:
    msg = (
        "Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, "
        "subresource(s)=[checkpoint])"
    )
    assert diagnose.kubelet_forbidden_user(msg) == "kube-apiserver-kubelet-client"
    assert diagnose.kubelet_forbidden_user('nodes "gpu-1" is forbidden: User "bob" cannot create') is None
    objs = diagnose.rbac_fix("system:kube-apiserver")
    for obj in objs:
        assert_valid(obj)
    assert objs[0]["rules"] == [{"apiGroups": [""], "resources": ["nodes/checkpoint"], "verbs": ["create"]}]
    assert objs[1]["subjects"][0]["name"] == "system:kube-apiserver"


def test_print_rbac_yaml_applies_cleanly() -> None:
    result = CliRunner().invoke(cli, ["checkpoint", "pod", "vllm-0", "--print-rbac"])
    assert result.exit_code == 0
    doc = yaml.safe_load(result.stdout)
    assert doc["kind"] == "List" and "&id" not in result.stdout
    for obj in doc["items"]:
        assert_valid(obj)


def test_criu_hints() -> None:
    text = (
        "checkpointing of ml/vllm-0/vllm failed (rpc error: mnt: Mount 123 ./proc/driver/nvidia/gpus/0000 "
        "has unreachable sharing. Try --enable-external-masters)"
    )
    assert any("enable-external-masters" in h for h in diagnose.criu_hints(text))
    assert any("cuda-checkpoint" in h for h in diagnose.criu_hints("cuda_plugin: cuda-checkpoint not found"))
    assert any("/dev/shm" in h for h in diagnose.criu_hints("link_remap failed for /dev/shm/psm_1"))
    assert any("dump.log" in h for h in diagnose.criu_hints("something else entirely"))


def test_helper_pod_is_minimal_and_valid() -> None:
    pod = helper.list_pod("gpu-1", "kube-system")
    assert_valid(pod)
    spec = pod["spec"]
    ctr = spec["containers"][0]
    assert spec["nodeName"] == "gpu-1" and spec["automountServiceAccountToken"] is False
    assert ctr["volumeMounts"][0]["readOnly"] is True and ctr["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    assert (
        ctr["securityContext"]["readOnlyRootFilesystem"] is True and not ctr["securityContext"]["privileged"]
    )
    assert "hostNetwork" not in spec and "hostPID" not in spec
    assert spec["volumes"] == [
        {"name": "checkpoints", "hostPath": {"path": facts.CHECKPOINT_DIR, "type": "Directory"}}
    ]
    assert_valid(helper.helper_pod("gpu-1", "kube-system", purpose="fetch"))


def test_parse_listing() -> None:
    text = (
        "4096000 1773438186 /checkpoints/checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar\n"
        "2048 1773438000 /checkpoints/checkpoint-a_b-c-2026-03-13T21:40:00Z.tar\n"
        f"{helper.END_MARKER}\n"
    )
    rows = helper.parse_listing(text, "gpu-1", {"ml"})
    assert [r.size for r in rows] == [4096000, 2048]
    assert rows[0].parsed and rows[0].parsed.pod == "vllm-0" and rows[0].path.startswith(facts.CHECKPOINT_DIR)
    with pytest.raises(ValueError):
        helper.parse_listing(text.replace(helper.END_MARKER, ""), "gpu-1")


def test_restore_plan_objects_valid() -> None:
    plan = plan_restore(
        archive="checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar",
        source_node="gpu-1",
        target_node="gpu-1",
        target_runtime=preflight.parse_runtime("cri-o://1.31.2"),
        template=_pod(),
        container="vllm",
        namespace="ml",
        registry="registry.internal/ckpt",
        time="2026-03-13T21:43:06Z",
        registry_secret="push-creds",
    )
    assert plan.refusal is None
    assert plan.image == "registry.internal/ckpt/checkpoint-vllm-0-vllm:2026-03-13T214306Z"
    for obj in plan.objects:
        assert_valid(obj)
    env = {e["name"]: e["value"] for e in plan.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CRIO_KEY"] == facts.CRIO_CHECKPOINT_ANNOTATION
    assert env["CONTAINERD_KEY"] == facts.CONTAINERD_CHECKPOINT_ANNOTATION
    assert env["ARCHIVE"].startswith("checkpoint-vllm-0") and env["CONTAINER"] == "vllm"
    assert "$ARCHIVE" in plan.job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    pod = plan.pod
    assert (
        pod["spec"]["containers"][0]["name"] == "vllm" and pod["spec"]["containers"][0]["image"] == plan.image
    )
    assert pod["spec"]["volumes"] == _pod()["spec"]["volumes"]
    assert pod["spec"]["containers"][0]["volumeMounts"] == _pod()["spec"]["containers"][0]["volumeMounts"]
    assert pod["spec"]["nodeName"] == "gpu-1" and "app" not in pod["metadata"]["labels"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "push-creds"}]
    refused = plan_restore(
        archive="checkpoint-a_b-c-2026-03-13T21:43:06Z.tar",
        source_node="n",
        target_node="n",
        target_runtime=preflight.parse_runtime("containerd://2.4.0"),
        template=_pod(),
        container="vllm",
        namespace="ml",
        registry="r",
        time="t",
    )
    assert refused.refusal and "2.4" in refused.refusal
