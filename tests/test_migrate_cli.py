"""migrate-hpa's command line, offline: CliRunner and the real executable through stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from kubectl_gpuscale.cli.root import cli
from tests.support.paths import MANIFESTS
from tests.support.schemas import assert_valid

HPA = str(MANIFESTS / "hpa_k8s-examples_1.yaml")
DEPLOY = str(MANIFESTS / "deploy_k8s-examples_1.yaml")


def _run(*args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(cli, ["migrate-hpa", *args], input=input)


def test_table_and_plan() -> None:
    result = _run("-f", HPA, "-f", DEPLOY, "-n", "ml")
    assert result.exit_code == 0, result.output
    assert "ml/gemma-server-hpa" in result.output and "vllm (high)" in result.output
    assert "1x nvidia.com/gpu" in result.output and "migrate" in result.output
    assert "adopting HPA gemma-server-hpa" in result.output


def test_yaml_is_a_list_of_valid_objects() -> None:
    result = _run(
        "-f",
        HPA,
        "-f",
        DEPLOY,
        "-n",
        "ml",
        "-o",
        "yaml",
        "--pdb",
        "--kv-cache",
        "0.8",
        "--schedule",
        "timezone=Europe/Berlin;start=0 8 * * 1-5;end=0 18 * * 1-5;replicas=2",
    )
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert data["kind"] == "List"
    kinds = [o["kind"] for o in data["items"]]
    assert kinds == ["ScaledObject", "PodDisruptionBudget"]
    for obj in data["items"]:
        assert_valid(obj)
    triggers = {t["name"]: t for t in data["items"][0]["spec"]["triggers"]}
    assert triggers["business_hours"]["metadata"]["desiredReplicas"] == "2"
    assert "kv_cache_usage_perc" in triggers["kv_cache"]["metadata"]["query"]
    # the image is vllm-openai:v0.11.0, which hides gpu_cache_usage_perc (engines.versions.vllm_kv_cache_names)
    assert "gpu_cache_usage_perc" not in triggers["kv_cache"]["metadata"]["query"]


def test_directory_and_name_filter(tmp_path: Path) -> None:
    for src in (HPA, DEPLOY):
        (tmp_path / Path(src).name).write_text(Path(src).read_text())
    result = _run("-f", str(tmp_path), "gemma-server-hpa", "-o", "name")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "scaledobject.keda.sh/gemma-server-hpa"
    missing = _run("-f", str(tmp_path), "nope")
    assert missing.exit_code != 0 and "nope" in str(missing.exception)


def test_knative_validates() -> None:
    result = _run("-f", HPA, "-f", DEPLOY, "--to", "knative", "-o", "yaml")
    assert result.exit_code == 0, result.output
    ksvc = yaml.safe_load(result.stdout)["items"][0]
    assert_valid(ksvc)
    notes = ksvc["spec"]["template"]["metadata"]["annotations"]
    assert notes["autoscaling.knative.dev/target"] == "64"
    assert notes["autoscaling.knative.dev/max-scale"] == "5"


def test_unknown_engine_refused_without_query(tmp_path: Path) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "example/server:1",
                            "resources": {"limits": {"nvidia.com/gpu": 1}},
                        }
                    ]
                },
            },
        },
    }
    text = yaml.safe_dump_all([hpa, deploy])
    refused = _run("-f", "-", input=text)
    assert refused.exit_code != 0 and "pass --query" in str(refused.exception)
    ok = _run(
        "-f",
        "-",
        "--query",
        'sum(my_queue{namespace="default"})',
        "--target-queue",
        "3",
        "-o",
        "json",
        input=text,
    )
    assert ok.exit_code == 0, ok.output
    assert '"threshold": "3"' in ok.output


def test_usage_errors() -> None:
    assert _run().exit_code != 0
    bad = _run("-f", HPA, "-f", DEPLOY, "--schedule", "timezone=UTC;start=1;end=1;replicas=1")
    assert bad.exit_code == 2


def test_stdin_through_real_executable_pipes_into_kubectl_shape() -> None:
    exe = Path(sys.executable).parent / "kubectl-gpuscale"
    text = Path(HPA).read_text() + "\n---\n" + Path(DEPLOY).read_text()
    proc = subprocess.run(
        [str(exe), "migrate-hpa", "-f", "-", "-n", "ml", "-o", "json"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("{") and '"kind": "List"' in proc.stdout
    # stderr says only which versions the objects were built for (offline: the pinned ones)
    assert (
        proc.stderr.splitlines()
        == [line for line in proc.stderr.splitlines() if line.startswith("target versions: ")]
        and len(proc.stderr.splitlines()) == 1
    ), proc.stderr
    assert "offline" in proc.stderr
    help_proc = subprocess.run([str(exe), "migrate-hpa", "-h"], capture_output=True, text=True, timeout=60)
    assert "Examples:" in help_proc.stdout and "kubectl gpuscale migrate-hpa" in help_proc.stdout
