"""doctor against the test API server through the real kubernetes client: seeded from the real samples
and broken variants, run through the CLI; one list per kind; managedFields owners; --fix/--apply with
--dry-run; exit codes; SARIF shape; degraded reads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.doctor import service
from kubectl_gpuscale.kube import Cluster
from kubectl_gpuscale.manifests import load
from kubectl_gpuscale.names import FIELD_MANAGER
from tests.support.kube_fixtures import TestApiServer
from tests.support.paths import MANIFESTS

NS = "ml"


def _sample(*names: str) -> list[dict[str, Any]]:
    objs = [copy.deepcopy(i.obj) for n in names for i in load([str(MANIFESTS / f"{n}.yaml")])]
    for obj in objs:
        obj["metadata"]["namespace"] = NS
    return objs


def _gemma() -> tuple[dict[str, Any], dict[str, Any]]:
    dep, hpa = _sample("deploy_k8s-examples_1", "hpa_k8s-examples_1")
    return dep, hpa


def _doctor(apiserver: TestApiServer, *args: str) -> Any:
    return CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", NS, *args])


def _plugin(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed plugin executable, so errors go through main() (one line, exit code)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubectl-gpuscale"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _findings(result: Any) -> list[dict[str, Any]]:
    data = json.loads(result.stdout)
    assert data["kind"] == "DoctorReport"
    return data["findings"]


def _rules(findings: list[dict[str, Any]]) -> set[str]:
    return {f["rule"] for f in findings}


def test_cluster_cpu_hpa_and_two_controllers_exit_1(apiserver: TestApiServer) -> None:
    apiserver.enable_group("keda.sh")
    dep, hpa = _gemma()
    hpa["spec"]["metrics"] = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    (so,) = _sample("scaledobject_production-stack_1")
    so["spec"]["scaleTargetRef"]["name"] = dep["metadata"]["name"]
    apiserver.seed(dep, hpa, so)
    result = _doctor(apiserver, "-o", "json")
    assert result.exit_code == 1, result.output
    findings = _findings(result)
    by_rule = {f["rule"]: f for f in findings}
    assert by_rule["GS001"]["object"] == {
        "kind": "HorizontalPodAutoscaler",
        "namespace": NS,
        "name": "gemma-server-hpa",
    }
    assert "ScaledObject/vllm-scaledobject" in by_rule["GS002"]["value"]
    assert {"GS005", "GS008", "GS009"} <= _rules(findings)
    # one list per kind, however many objects
    lists = [
        r.path
        for r in apiserver.requests
        if r.method == "GET" and r.path.endswith("s") and "/namespaces/" + NS + "/" in r.path
    ]
    assert len(lists) == len(set(lists))


def test_cluster_clean_namespace_exits_0(apiserver: TestApiServer) -> None:
    dep, _ = _gemma()
    apiserver.seed(dep)  # not autoscaled, no probes: nothing at error severity
    result = _doctor(apiserver, "-o", "json")
    assert result.exit_code == 0, result.output
    assert all(f["severity"] != "error" for f in _findings(result))
    empty = _doctor(apiserver.__class__ and apiserver, "-o", "table", "-n", "empty")
    assert empty.exit_code == 0 and "No problems found." in empty.stderr


def test_cluster_without_keda_or_knative_crds_still_lints(apiserver: TestApiServer) -> None:
    dep, hpa = _gemma()
    apiserver.seed(dep, hpa)
    result = _doctor(apiserver, "-o", "json")
    assert result.exit_code == 0, result.output
    assert "GS009" in _rules(_findings(result))
    assert not [f for f in _findings(result) if f["object"]["kind"] == "ScaledObject"]


@pytest.mark.parametrize(
    "manager, operation, subresource, fires",
    [
        ("argocd-controller", "Apply", None, True),
        ("kustomize-controller", "Apply", None, True),
        ("helm", "Update", None, True),
        ("my-llm-operator", "Apply", None, True),
        ("kube-controller-manager", "Update", "scale", False),
        ("kubectl-client-side-apply", "Update", None, False),
    ],
)
def test_cluster_gs003_managed_fields_owner_of_replicas(
    apiserver: TestApiServer, manager: str, operation: str, subresource: str | None, fires: bool
) -> None:
    dep, hpa = _gemma()
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }
    if subresource:
        entry["subresource"] = subresource
    dep["metadata"]["managedFields"] = [entry]
    apiserver.seed(dep, hpa)
    findings = [f for f in _findings(_doctor(apiserver, "-o", "json")) if f["rule"] == "GS003"]
    if fires:
        assert [f["value"] for f in findings] == [manager]
        assert findings[0]["field"] == "metadata.managedFields[spec.replicas]"
    else:
        assert not findings


def test_cluster_fix_prints_argv_patch_lines_and_apply_objects(apiserver: TestApiServer) -> None:
    dep, hpa = _gemma()
    apiserver.seed(dep, hpa)
    result = _doctor(apiserver, "--fix")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        "kubectl patch horizontalpodautoscalers.autoscaling gemma-server-hpa -n ml --type merge -p "
        '\'{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":300}}}}\''
    ) in lines
    body = result.stdout.split("<<'EOF'\n", 1)[1].rsplit("EOF", 1)[0]
    (pdb,) = [d for d in yaml.safe_load_all(body) if d]
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["selector"]["matchLabels"] == {
        "app": "gemma-server"
    }
    assert not [r for r in apiserver.requests if r.method in ("PATCH", "POST", "PUT")]
    data = json.loads(_doctor(apiserver, "--fix", "-o", "json").stdout)
    merge = [p for p in data["patches"] if p["type"] == "merge"]
    assert all(p["argv"][:2] == ["kubectl", "patch"] and isinstance(p["argv"], list) for p in merge)


def test_cluster_apply_dry_runs_then_applies(apiserver: TestApiServer, cluster: Cluster) -> None:
    dep, hpa = _gemma()
    apiserver.seed(dep, hpa)

    def window() -> int:
        obj = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
        return int(obj["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"])

    client = _doctor(apiserver, "--apply", "--dry-run=client")
    assert client.exit_code == 0 and "kubectl patch" in client.stdout
    assert not [r for r in apiserver.requests if r.method in ("PATCH", "POST", "PUT")]
    server = _doctor(apiserver, "--apply", "--dry-run=server")
    assert server.exit_code == 0, server.output
    assert "(server dry run)" in server.stderr
    sent = [r for r in apiserver.requests if r.method == "PATCH"]
    assert sent and all(r.query.get("dryRun") == ["All"] for r in sent)
    assert window() == 30 and apiserver.objects("policy/v1", "PodDisruptionBudget", NS) == []

    applied = _doctor(apiserver, "--apply")
    assert applied.exit_code == 0, applied.output
    assert window() == 300
    policies = apiserver.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "gemma-server-hpa", NS)
    assert (
        policies["spec"]["behavior"]["scaleDown"]["policies"]
        == hpa["spec"]["behavior"]["scaleDown"]["policies"]
    )
    dep_now = apiserver.get_object("apps/v1", "Deployment", "vllm-gemma-deployment", NS)
    assert dep_now["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    assert dep_now["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.11.0"
    (pdb,) = apiserver.objects("policy/v1", "PodDisruptionBudget", NS)
    assert any(m["manager"] == FIELD_MANAGER for m in pdb["metadata"]["managedFields"])
    after = _rules(_findings(_doctor(apiserver, "-o", "json")))
    assert not {"GS009", "GS017", "GS022"} & after
    assert "GS018" in after  # no safe patch for a container list: still reported


def test_cluster_apply_refused_for_files(tmp_path: Path) -> None:
    result = _plugin("doctor", "-f", str(MANIFESTS / "hpa_k8s-examples_1.yaml"), "--apply")
    assert result.returncode == 2 and result.stderr.startswith("error: cannot --apply to files")
    assert "Traceback" not in result.stderr


def test_cluster_forbidden_nodes_degrade_to_a_note(apiserver: TestApiServer) -> None:
    dep, hpa = _gemma()
    apiserver.seed(
        dep,
        hpa,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "gpu-1"},
            "status": {"allocatable": {"nvidia.com/gpu": "2"}},
        },
    )
    assert "GS021" in _rules(_findings(_doctor(apiserver, "-o", "json")))
    apiserver.deny("list", "nodes")
    result = _doctor(apiserver, "-o", "json")
    assert result.exit_code == 0, result.output
    assert "skipped Node (cluster-wide)" in result.stderr
    assert "GS021" not in _rules(_findings(result))


def test_gather_cluster_reads_knative_and_interceptor_settings(
    apiserver: TestApiServer, cluster: Cluster
) -> None:
    apiserver.enable_group("serving.knative.dev")
    (ksvc,) = _sample("ksvc_gke-kueue-dws_1")
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-deployment", "namespace": "knative-serving"},
        "data": {"progress-deadline": "120s"},
    }
    apiserver.seed(ksvc, cm)
    gathered = service.gather_cluster(cluster, NS)
    findings = service.diagnose(gathered)
    (f,) = [f for f in findings if f.rule == "GS011" and "progress-deadline" in f.field]
    assert f.value == "120s (cluster default)" and f.kind == "Service"


def test_sarif_for_file_inputs(tmp_path: Path) -> None:
    files = [
        str(MANIFESTS / "deploy_k8s-examples_1.yaml"),
        str(MANIFESTS / "hpa_ollama-app_1.yaml"),
        str(MANIFESTS / "deploy_ollama-app_1.yaml"),
    ]
    args = ["doctor"] + [a for f in files for a in ("-f", f)] + ["-o", "sarif"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # GS001 on the Ollama CPU HPA
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] and res["ruleId"] in ids
        assert res["level"] in ("error", "warning", "note") and res["message"]["text"]
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file:///") and uri.endswith(".yaml")
    gs001 = [r for r in run["results"] if r["ruleId"] == "GS001"]
    assert gs001 and gs001[0]["level"] == "error"
    assert gs001[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "hpa_ollama-app_1.yaml"
    )


def test_files_directory_skips_templates_with_a_note(tmp_path: Path) -> None:
    for name in ("deploy_k8s-examples_1", "hpa_k8s-examples_1", "hpa_ai-on-gke_1", "values_triton_1"):
        (tmp_path / f"{name}.yaml").write_text((MANIFESTS / f"{name}.yaml").read_text())
    result = CliRunner().invoke(cli, ["doctor", "-f", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert "hpa_ai-on-gke_1.yaml" in result.stderr and "unrendered Terraform template" in result.stderr
    assert "GS009" in _rules(_findings(result))
    named = _plugin("doctor", "-f", str(tmp_path / "hpa_ai-on-gke_1.yaml"))
    assert named.returncode == 2 and "render it first" in named.stderr and named.stdout == ""


def test_cold_start_flag_validates() -> None:
    ok = CliRunner().invoke(
        cli,
        ["doctor", "-f", str(MANIFESTS / "ksvc_gke-kueue-dws_1.yaml"), "--cold-start", "15m", "-o", "json"],
    )
    assert ok.exit_code == 1, ok.output  # GS011 progress-deadline (600s < 900s) and GS014 are errors
    assert {"GS011", "GS014"} <= _rules(_findings(ok))
    bad = CliRunner().invoke(
        cli, ["doctor", "-f", str(MANIFESTS / "ksvc_gke-kueue-dws_1.yaml"), "--cold-start", "soon"]
    )
    assert bad.exit_code == 2 and "not a duration" in bad.output


def test_cluster_all_namespaces(apiserver: TestApiServer) -> None:
    dep, hpa = _gemma()
    other_dep, other_hpa = copy.deepcopy(dep), copy.deepcopy(hpa)
    for obj in (other_dep, other_hpa):
        obj["metadata"]["namespace"] = "staging"
    apiserver.seed(dep, hpa, other_dep, other_hpa)
    result = CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-A", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert {f["object"]["namespace"] for f in _findings(result) if f["rule"] == "GS009"} == {NS, "staging"}
    table = CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-A"])
    assert table.stdout.splitlines()[0].split()[:3] == ["SEVERITY", "RULE", "NAMESPACE"]
