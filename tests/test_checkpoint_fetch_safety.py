"""`checkpoint fetch` against hostile local files, a lying or silent node, and signals (issue 13, item 6).

Through the real kubernetes client and the test API server (exec over a websocket, the helper
pod played Running by a thread); the signal tests run the CLI as a real subprocess.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gpuscale.checkpoint import facts, helper
from tests.support.apiserver import file_exec_handler
from tests.support.kube_fixtures import TestApiServer
from tests.test_checkpoint_cluster import ARCHIVE, NODE, POD, _helpers_run, run

REMOTE = f"{facts.HELPER_MOUNT}/{ARCHIVE}"


@pytest.fixture
def seeded(apiserver: TestApiServer) -> TestApiServer:
    apiserver.seed(NODE, POD)
    return apiserver


@pytest.fixture
def node_archive(tmp_path: Path) -> Path:
    """A realistic CRI-O archive (about 3 MiB) as it sits in the node's checkpoint directory."""
    from tests.checkpoint_archives import crio_files, write_archive

    (tmp_path / "node").mkdir()
    return write_archive(tmp_path / "node" / ARCHIVE, crio_files())


def _fetch(
    apiserver: TestApiServer, capsys: pytest.CaptureFixture[str], dest: Path, *extra: str
) -> tuple[int, str, str]:
    with _helpers_run(apiserver):
        return run(
            apiserver,
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
            *extra,
        )


def test_planted_symlink_at_the_partial_name_is_not_followed(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, node_archive: Path
) -> None:
    """Another local user plants `.NAME.part -> victim` in a shared download directory: the archive
    bytes (process memory) must not land in the victim, nor its mode change; the fetch still works."""
    seeded.set_exec("kube-system", None, file_exec_handler({REMOTE: node_archive}))
    out_dir = tmp_path / "shared"
    out_dir.mkdir()
    victim = tmp_path / "victim.conf"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o644)
    planted = out_dir / ".vllm.tar.part"
    planted.symlink_to(victim)
    code, _out, err = _fetch(seeded, capsys, out_dir / "vllm.tar")
    assert code == 0, err
    assert victim.read_bytes() == b"precious\n" and (victim.stat().st_mode & 0o777) == 0o644
    assert planted.is_symlink() and os.readlink(planted) == str(victim)
    fetched = out_dir / "vllm.tar"
    assert fetched.read_bytes() == node_archive.read_bytes() and not fetched.is_symlink()
    assert (fetched.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in out_dir.iterdir()) == [".vllm.tar.part", "vllm.tar"]


def test_symlink_at_the_destination_is_refused_without_overwrite(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dangling symlink is an existing name too (Path.exists() follows it and says no)."""
    dest = tmp_path / "vllm.tar"
    dest.symlink_to(tmp_path / "elsewhere.tar")
    code, _, err = run(
        seeded, capsys, "fetch", ARCHIVE, "--node", "gpu-1", "-n", "kube-system", "-o", str(dest)
    )
    assert code == 2 and f"cannot write {dest}: the file exists" in err
    assert not (tmp_path / "elsewhere.tar").exists() and seeded.objects("v1", "Pod", "kube-system") == []


@pytest.mark.parametrize(
    ("answer", "exit_code", "why"),
    [
        (b"", 0, "its answer is empty"),
        (b"\n", 0, "its answer is empty"),
        (b"deadbeef  " + REMOTE.encode() + b"\n", 0, "is not '<64 hex digits>"),
        (b"sha256sum: applet not found\n", 0, "is not '<64 hex digits>"),
        (b"a" * 64 + b"  /checkpoints/other.tar\n", 0, "names '/checkpoints/other.tar'"),
        (b"", 127, "sha256sum failed in the helper pod"),
    ],
    ids=["empty", "blank-line", "short-digest", "not-a-digest", "other-file", "missing-binary"],
)
def test_missing_or_malformed_checksum_fails_the_fetch(
    seeded: TestApiServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    node_archive: Path,
    answer: bytes,
    exit_code: int,
    why: str,
) -> None:
    """No verified sha256, no file and no "sha256 ..." line; the archive is not even transferred."""
    serve = file_exec_handler({REMOTE: node_archive})

    def lying_checksum(argv: list[str], container: str) -> tuple[bytes, bytes, int]:
        if argv[0] == "sha256sum":
            return answer, b"sh: sha256sum: not found\n" if exit_code else b"", exit_code
        return serve(argv, container)  # type: ignore[return-value]

    seeded.set_exec("kube-system", None, lying_checksum)
    (tmp_path / "out").mkdir()
    code, out, err = _fetch(seeded, capsys, tmp_path / "out" / "vllm.tar")
    assert code == 1 and out == ""
    assert f"error: cannot verify {ARCHIVE} on node gpu-1: " in err and why in err, err
    assert "fetched" not in err and not re.search(r"sha256 [0-9a-f]{16}", err)
    assert list((tmp_path / "out").iterdir()) == []
    assert [c.command[0] for c in seeded.execs] == ["stat", "sha256sum"]
    assert seeded.objects("v1", "Pod", "kube-system") == []


def test_checksum_step_waits_longer_than_the_stall_limit(
    seeded: TestApiServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    node_archive: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sha256sum prints nothing until it has read the whole archive (about 50 min for 100 GB at
    32 MiB/s): the stall limit of the transfer must not apply to it. Scaled down: stall 1 s,
    sha256sum silent for 2.5 s. The plan states the limits and the helper pod's deadline is lowered."""
    monkeypatch.setattr(facts, "FETCH_STALL_SECONDS", 1)
    serve = file_exec_handler({REMOTE: node_archive})

    def slow_checksum(argv: list[str], container: str) -> tuple[Any, bytes, int]:
        out, err, code = serve(argv, container)
        if argv[0] != "sha256sum":
            return out, err, code

        def later() -> Iterator[bytes]:
            time.sleep(2.5)
            yield out  # type: ignore[misc]

        return later(), err, code

    seeded.set_exec("kube-system", None, slow_checksum)
    (tmp_path / "out").mkdir()
    code, _, err = _fetch(seeded, capsys, tmp_path / "out" / "vllm.tar")
    assert code == 0, err
    size = node_archive.stat().st_size
    limits = helper.fetch_limits(size)
    assert (
        f"{ARCHIVE}: 3.0 MiB ({size} bytes); time limits: checksum on the node 300s (at >= 32 MiB/s), transfer 300s "
        "(at >= 4 MiB/s, failing after 1s without data); helper pod deadline" in err
    )
    assert "plan: helper pod kube-system/gpuscale-ckpt-fetch-" in err and "on node gpu-1" in err
    created = [r.json() for r in seeded.requests_to("POST", "/api/v1/namespaces/kube-system/pods")]
    assert created[0]["spec"]["activeDeadlineSeconds"] == facts.FETCH_MAX_DEADLINE_SECONDS
    lowered = [
        r.json()
        for r in seeded.requests
        if r.method == "PATCH"
        and r.path.startswith("/api/v1/namespaces/kube-system/pods/")
        and not r.path.endswith("/status")
    ]
    assert len(lowered) == 1
    deadline = lowered[0]["spec"]["activeDeadlineSeconds"]
    assert limits.deadline <= deadline <= limits.deadline + 30 and deadline < facts.FETCH_MAX_DEADLINE_SECONDS


def test_fetch_limits_scale_with_the_archive() -> None:
    gib = 1024**3
    small = helper.fetch_limits(3 * 1024 * 1024)
    assert (small.checksum, small.transfer, small.deadline, small.capped) == (300, 300, 720, False)
    big = helper.fetch_limits(100 * gib, elapsed=12.2)
    assert (big.checksum, big.transfer) == (3200, 25600)
    assert big.deadline == 13 + 3200 + 25600 + 120 and not big.capped
    huge = helper.fetch_limits(1024 * gib)
    assert huge.capped and huge.deadline == facts.FETCH_MAX_DEADLINE_SECONDS
    assert "(capped)" in huge.describe()


def test_test_server_lets_a_pod_deadline_only_decrease(seeded: TestApiServer) -> None:
    """kubernetes/kubernetes pkg/apis/core/validation/validation.go ValidatePodUpdate: the rule
    fetch relies on when it lowers its helper pod's deadline."""
    from kubectl_gpuscale.errors import InvalidError
    from kubectl_gpuscale.kube import Cluster

    cluster = Cluster.connect(kubeconfig=seeded.kubeconfig)
    pod = helper.helper_pod("gpu-1", "kube-system", purpose="fetch", deadline=600)
    cluster.create(pod)
    name = pod["metadata"]["name"]
    lowered = cluster.patch("v1", "Pod", name, "kube-system", {"spec": {"activeDeadlineSeconds": 300}})
    assert lowered["spec"]["activeDeadlineSeconds"] == 300
    with pytest.raises(InvalidError, match="must be less than or equal to previous value"):
        cluster.patch("v1", "Pod", name, "kube-system", {"spec": {"activeDeadlineSeconds": 301}})


# ---- signals: a real subprocess of the CLI -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_mid_transfer_deletes_helper_and_partial(
    seeded: TestApiServer, tmp_path: Path, signum: int
) -> None:
    """CI cancelling the job (SIGTERM), a closed terminal (SIGHUP) and Ctrl-C all leave nothing:
    the root helper pod with the node's checkpoints mounted is deleted and no partial file stays."""
    size = 256 * 1024 * 1024
    stop_streaming = time.monotonic() + 60
    serve_small = file_exec_handler({REMOTE: b"x"})

    def slow_archive(argv: list[str], container: str) -> tuple[Any, bytes, int]:
        if argv[:3] == ["stat", "-c", "%s"]:
            return f"{size}\n".encode(), b"", 0
        if argv[0] == "sha256sum":
            return f"{hashlib.sha256(b'').hexdigest()}  {REMOTE}\n".encode(), b"", 0
        if argv[0] == "cat":

            def trickle() -> Iterator[bytes]:
                while time.monotonic() < stop_streaming:
                    yield b"\0" * 65536
                    time.sleep(0.02)

            return trickle(), b"", 0
        return serve_small(argv, container)  # type: ignore[return-value]

    seeded.set_exec("kube-system", None, slow_archive)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "GPUSCALE_DEBUG": ""}
    with _helpers_run(seeded) as helpers:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubectl_gpuscale",
                "checkpoint",
                "fetch",
                ARCHIVE,
                "--node",
                "gpu-1",
                "-n",
                "kube-system",
                "-o",
                str(out_dir / "vllm.tar"),
                "--wait",
                "30",
                "--kubeconfig",
                seeded.kubeconfig,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and proc.poll() is None:
                parts = list(out_dir.glob(".vllm.tar.*.part"))
                if parts and parts[0].stat().st_size > 1024 * 1024:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert seeded.objects("v1", "Pod", "kube-system"), "the helper pod runs during the transfer"
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = err.decode()
    name = helpers[0]
    assert proc.returncode == 128 + signum, text
    assert out == b""
    assert (
        f"error: fetch of {ARCHIVE} from node gpu-1 interrupted by {signal.Signals(signum).name}: "
        f"helper pod kube-system/{name} deleted; partial file removed; run fetch again"
    ) in text
    assert "Traceback" not in text
    assert seeded.objects("v1", "Pod", "kube-system") == []
    assert [r.path for r in seeded.requests if r.method == "DELETE"] == [
        f"/api/v1/namespaces/kube-system/pods/{name}"
    ]
    assert list(out_dir.iterdir()) == []


def test_sigterm_during_list_deletes_the_helper_pod(seeded: TestApiServer, tmp_path: Path) -> None:
    """`list` starts a helper pod per node too: SIGTERM while it waits deletes it and exits 143."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "GPUSCALE_DEBUG": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubectl_gpuscale",
            "checkpoint",
            "list",
            "--node",
            "gpu-1",
            "-n",
            "kube-system",
            "--wait",
            "60",
            "--kubeconfig",
            seeded.kubeconfig,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seeded.objects("v1", "Pod", "kube-system"):
            time.sleep(0.05)
        assert seeded.objects("v1", "Pod", "kube-system"), proc.communicate(timeout=30)[1].decode()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert out == b"" and b"Traceback" not in err
    assert seeded.objects("v1", "Pod", "kube-system") == []


def test_fetch_without_patch_permission_warns_and_still_cleans_up(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, node_archive: Path
) -> None:
    """Lowering the deadline needs `patch pods`; without it the fetch goes on and says what that means."""
    seeded.deny("patch", "pods", namespace="kube-system")
    seeded.set_exec("kube-system", None, file_exec_handler({REMOTE: node_archive}))
    (tmp_path / "out").mkdir()
    code, _, err = _fetch(seeded, capsys, tmp_path / "out" / "vllm.tar")
    assert code == 0, err
    assert "warning: cannot lower helper pod kube-system/gpuscale-ckpt-fetch-" in err
    assert f"it is deleted when the fetch ends, else after {facts.FETCH_MAX_DEADLINE_SECONDS}s" in err
    assert (tmp_path / "out" / "vllm.tar").read_bytes() == node_archive.read_bytes()
    assert seeded.objects("v1", "Pod", "kube-system") == []


def test_transfer_over_its_time_limit_fails_and_leaves_nothing(
    seeded: TestApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--timeout bounds the transfer (data keeps flowing, so only the total catches a too-slow link)."""
    stop_at = time.monotonic() + 30

    def trickling(argv: list[str], container: str) -> tuple[Any, bytes, int]:
        if argv[0] == "stat":
            return b"1073741824\n", b"", 0
        if argv[0] == "sha256sum":
            return f"{'0' * 64}  {REMOTE}\n".encode(), b"", 0

        def trickle() -> Iterator[bytes]:
            while time.monotonic() < stop_at:
                yield b"\0" * 4096
                time.sleep(0.05)

        return trickle(), b"", 0

    seeded.set_exec("kube-system", None, trickling)
    (tmp_path / "out").mkdir()
    started = time.monotonic()
    code, out, err = _fetch(seeded, capsys, tmp_path / "out" / "vllm.tar", "--timeout", "2")
    assert code == 1 and out == "" and time.monotonic() - started < 20
    assert "transfer 2s (--timeout, failing after 300s without data)" in err
    assert "timed out: no end within 2s" in err
    assert list((tmp_path / "out").iterdir()) == [] and seeded.objects("v1", "Pod", "kube-system") == []
