"""`kubectl gpuscale coldstart`: offline files and the cluster path through the real client and test API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_gpuscale.cli.root import cli
from tests.support.kube_fixtures import TestApiServer
from tests.support.paths import LOGS
from tests.test_coldstart_parse import COMPILE_MISS, EVENTS, POD

MISS_LOG = LOGS / "vllm_v1-0.11.x_enginecoreDP0-compile-miss_5.log"
FAIL_LOG = LOGS / "vllm_v1-2026_tp4-fail-oom-graph-capture_26.log"


def run(*args: str, input: str | None = None) -> Any:  # noqa: A002 - mirrors CliRunner
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_offline_table_is_a_waterfall_with_advice() -> None:
    result = run("coldstart", "-f", str(MISS_LOG))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "torch.compile" in out and "19.7s" in out and "█" in out
    assert "SHARE" in out and "VLLM_CACHE_ROOT" in out


def test_offline_json_schema_and_stdin(tmp_path: Path) -> None:
    result = run("coldstart", "-f", "-", "-o", "json", input=MISS_LOG.read_text(encoding="utf-8"))
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["kind"] == "ColdStart" and doc["schemaVersion"] == 1
    names = {p["name"]: p for p in doc["phases"]}
    assert names["torch_compile"]["seconds"] == pytest.approx(19.69)
    assert names["torch_compile"]["detail"]["cache"] == "miss"
    assert doc["totalSeconds"] > 0


def test_offline_with_pod_and_events_files(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(POD))
    (tmp_path / "events.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": EVENTS}))
    result = run(
        "coldstart",
        "-f",
        str(MISS_LOG),
        "--pod",
        str(tmp_path / "pod.yaml"),
        "--events",
        str(tmp_path / "events.json"),
        "-o",
        "yaml",
    )
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["pod"] == "ml/vllm-0" and doc["totalSeconds"] == pytest.approx(300.0)
    assert doc["advice"][0]["phase"] == "image_pull"


def test_failed_start_exits_1_with_the_cause() -> None:
    result = run("coldstart", "-f", str(FAIL_LOG))
    assert result.exit_code == 1
    assert "start failed during CUDA graph capture" in result.output


def test_usage_errors() -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "kubectl-gpuscale"
    proc = subprocess.run(
        [str(exe), "coldstart", "-f", "/nonexistent/vllm.log"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: cannot read log /nonexistent/vllm.log: no such file; check the path"
    nothing = CliRunner().invoke(cli, ["coldstart"])
    assert nothing.exit_code == 1 and "nothing to diagnose" in str(nothing.exception)


def test_subprocess_plugin_pipes_json(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "kubectl-gpuscale"
    proc = subprocess.run(
        [str(exe), "coldstart", "-f", str(MISS_LOG), "-o", "json"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"] == "vllm"


# --------------------------------------------------------------------------------------- cluster mode
def _pod(name: str, created: str, started: str, ready: str, restarts: int = 0) -> dict[str, Any]:
    pod = json.loads(json.dumps(POD))
    pod["metadata"].update(name=name, uid=f"uid-{name}", creationTimestamp=created, labels={"app": "vllm"})
    for cond in pod["status"]["conditions"]:
        cond["lastTransitionTime"] = ready if cond["type"] in ("Ready", "ContainersReady") else created
    status = pod["status"]["containerStatuses"][0]
    status["state"] = {"running": {"startedAt": started}}
    status["restartCount"] = restarts
    if restarts:
        status["lastState"] = {
            "terminated": {"reason": "Error", "exitCode": 1, "startedAt": created, "finishedAt": started}
        }
    return pod


def _utc_log(lines: list[str], first_utc: str) -> str:
    """The log as the kubelet returns it with timestamps=true: the engine's local times plus UTC stamps."""
    from datetime import datetime, timedelta

    from kubectl_gpuscale.coldstart.logs import split_line

    base = datetime.fromisoformat(first_utc.replace("Z", ""))
    first = next(split_line(x).ts for x in lines if split_line(x).ts)
    out = []
    for line in lines:
        ts = split_line(line).ts
        stamp = base + ((ts - first) if ts and first else timedelta(0))
        out.append(stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z " + line)
    return "\n".join(out) + "\n"


def test_cluster_pod_and_deployment(apiserver: TestApiServer) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "vllm"}},
            "template": {
                "metadata": {"labels": {"app": "vllm"}},
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.2"}]},
            },
        },
    }
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}
    a = _pod("vllm-a", "2025-11-24T19:40:00Z", "2025-11-24T19:43:20Z", "2025-11-24T19:45:00Z")
    b = _pod("vllm-b", "2025-11-24T20:00:00Z", "2025-11-24T20:01:00Z", "2025-11-24T20:03:00Z", restarts=1)
    apiserver.seed(ns, deploy, a, b)
    for ev in EVENTS:
        apiserver.add_event(a, ev["reason"], ev["message"], timestamp=ev["firstTimestamp"], count=ev["count"])
    apiserver.add_event(
        b,
        "Pulled",
        'Container image "vllm/vllm-openai:v0.11.2" already present on machine',
        timestamp="2025-11-24T20:00:50Z",
    )
    apiserver.set_log("ml", "vllm-a", _utc_log(COMPILE_MISS, "2025-11-24T19:43:54Z"))
    apiserver.set_log("ml", "vllm-b", _utc_log(COMPILE_MISS, "2025-11-24T20:01:34Z"))
    apiserver.set_log("ml", "vllm-b", FAIL_LOG.read_text(encoding="utf-8"), previous=True)
    kc = ["--kubeconfig", apiserver.kubeconfig, "-n", "ml"]

    one = run("coldstart", "vllm-a", *kc, "-o", "json")
    assert one.exit_code == 0, one.output
    doc = json.loads(one.stdout)
    assert (
        doc["pod"] == "ml/vllm-a" and doc["status"] == "ready" and doc["totalSeconds"] == pytest.approx(300.0)
    )
    phases = {p["name"]: p for p in doc["phases"]}
    assert phases["image_pull"]["seconds"] == pytest.approx(183.0)
    assert phases["scheduling"]["detail"]["failedScheduling"] == 3
    assert phases["engine_init"]["seconds"] == pytest.approx(6.8, abs=0.01)  # UTC stamps, no zone guessing
    assert phases["torch_compile"]["seconds"] == pytest.approx(19.69)
    log_requests = apiserver.requests_to("GET", prefix="/api/v1/namespaces/ml/pods/vllm-a/log")
    assert log_requests and log_requests[0].param("timestamps") == "true"

    table = run("coldstart", "pod/vllm-a", *kc)
    assert table.exit_code == 0 and "image pull" in table.output and "pre-pull" in table.output

    many = run("coldstart", "deploy/vllm", *kc, "-o", "json")
    assert many.exit_code == 0, many.output
    summary = json.loads(many.stdout)
    assert summary["kind"] == "ColdStartSummary" and summary["pods"] == 2
    assert [i["pod"] for i in summary["items"]] == ["ml/vllm-b", "ml/vllm-a"]  # newest first
    b_doc = summary["items"][0]
    assert b_doc["failure"]["headline"].startswith("previous attempt: start failed during CUDA graph capture")
    rows = {p["name"]: p for p in summary["phases"]}
    assert rows["torch_compile"]["samples"] == 2 and rows["torch_compile"]["p95Seconds"] == pytest.approx(
        19.69
    )
    assert rows["image_pull"]["p50Seconds"] == pytest.approx(91.5)  # 183 s and 0 s (cached)
    assert apiserver.requests_to("GET", prefix="/api/v1/namespaces/ml/pods/vllm-b/log")

    text = run("coldstart", "deploy/vllm", *kc, "--last", "1")
    assert text.exit_code == 0 and "1 pods" in text.output and "vllm-b" in text.output

    gone = CliRunner().invoke(cli, ["coldstart", "deploy/nope", *kc])
    assert gone.exit_code == 1 and "nope" in str(gone.exception)


def test_a_damaged_progress_bar_is_read_as_text_not_an_internal_error() -> None:
    """tqdm's bar cut or garbled on its way (`1/1.2.3G`, `[::<`): the figures do not parse, so the line
    is no bar; the start is still read (before: "internal error: ValueError", exit 1)."""
    log = MISS_LOG.read_text(encoding="utf-8")
    for bar in ("Loading safetensors: 5%|#| 1/1.2.3G [00:01<00:00]", "Loading: 5%|#| 1/1 [::<00:00]"):
        result = run("coldstart", "-f", "-", input=log + bar + "\n")
        assert result.exit_code == 0, result.output
        assert "torch.compile" in result.output
