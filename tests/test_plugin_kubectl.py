"""The real kubectl binary: against the test API server, and finding and running the plugin."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from kubectl_gpuscale import __version__
from tests.support.apiserver import ApiServer
from tests.support.kube_fixtures import VENV_BIN

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: vllm, namespace: ml, labels: {app: vllm}}
spec:
  replicas: 2
  selector: {matchLabels: {app: vllm}}
  template:
    metadata: {labels: {app: vllm}}
    spec: {containers: [{name: vllm, image: vllm/vllm-openai:v0.6.0}]}
"""


@pytest.fixture
def seeded(apiserver: ApiServer) -> ApiServer:
    apiserver.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}, DEPLOY)
    return apiserver


def test_api_resources_lists_builtin_and_addon_kinds(kubectl: Kubectl, apiserver: ApiServer) -> None:
    out = kubectl("api-resources", "-o", "name", check=True).stdout.split()
    for name in (
        "pods",
        "deployments.apps",
        "horizontalpodautoscalers.autoscaling",
        "scaledobjects.keda.sh",
        "httpscaledobjects.http.keda.sh",
        "services.serving.knative.dev",
        "customresourcedefinitions.apiextensions.k8s.io",
    ):
        assert name in out, name
    apiserver.disable_group("keda.sh")
    fresh = kubectl("api-resources", "-o", "name", "--cached=false", check=True).stdout.split()
    assert "scaledobjects.keda.sh" not in fresh


def test_get_deployments(kubectl: Kubectl, seeded: ApiServer) -> None:
    table = kubectl("get", "deploy", "-n", "ml", check=True).stdout
    assert table.splitlines()[0].split()[0] == "NAME" and "vllm" in table
    names = kubectl("get", "deploy", "-A", "-o", "name", check=True).stdout.split()
    assert names == ["deployment.apps/vllm"]
    obj = json.loads(kubectl("get", "deploy", "vllm", "-n", "ml", "-o", "json", check=True).stdout)
    assert obj["kind"] == "Deployment" and obj["spec"]["replicas"] == 2
    listed = kubectl("get", "deploy", "-n", "ml", "-l", "app=other", "-o", "name")
    assert listed.returncode == 0 and listed.stdout == ""
    missing = kubectl("get", "deploy", "absent", "-n", "ml")
    assert missing.returncode == 1 and 'deployments.apps "absent" not found' in missing.stderr


def test_apply_server_side_then_conflict_and_force(kubectl: Kubectl, seeded: ApiServer) -> None:
    manifest = DEPLOY.replace("replicas: 2", "replicas: 3")
    out = kubectl("apply", "--server-side", "--field-manager=ops", "-f", "-", input=manifest, check=True)
    assert "serverside-applied" in out.stdout
    stored = seeded.get_object("apps/v1", "Deployment", "vllm", "ml")
    assert stored is not None and stored["spec"]["replicas"] == 3
    assert "ops" in {m["manager"] for m in stored["metadata"]["managedFields"]}
    clash = kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "-",
        input=DEPLOY.replace("replicas: 2", "replicas: 5"),
    )
    assert (
        clash.returncode == 1 and 'conflict with "ops"' in clash.stderr and ".spec.replicas" in clash.stderr
    )
    kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        input=DEPLOY.replace("replicas: 2", "replicas: 5"),
        check=True,
    )
    stored = seeded.get_object("apps/v1", "Deployment", "vllm", "ml")
    assert stored is not None and stored["spec"]["replicas"] == 5
    dry = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        "-",
        "-o",
        "json",
        input=DEPLOY.replace("vllm", "dry"),
        check=True,
    )
    assert json.loads(dry.stdout)["metadata"]["name"] == "dry"
    assert seeded.get_object("apps/v1", "Deployment", "dry", "ml") is None


def test_scale_and_delete_through_kubectl(kubectl: Kubectl, seeded: ApiServer) -> None:
    kubectl("scale", "deploy/vllm", "-n", "ml", "--replicas=0", check=True)
    stored = seeded.get_object("apps/v1", "Deployment", "vllm", "ml")
    assert stored is not None and stored["spec"]["replicas"] == 0
    kubectl("delete", "deploy", "vllm", "-n", "ml", "--wait=false", check=True)
    assert seeded.get_object("apps/v1", "Deployment", "vllm", "ml") is None


def test_kubectl_logs_and_auth_can_i(kubectl: Kubectl, apiserver: ApiServer) -> None:
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ml"},
            "spec": {"containers": [{"name": "vllm", "image": "i"}]},
        }
    )
    apiserver.set_log("ml", "p", "INFO model loaded\n")
    assert kubectl("logs", "p", "-n", "ml", check=True).stdout == "INFO model loaded\n"
    apiserver.deny("create", "nodes/proxy")
    allowed = kubectl("auth", "can-i", "create", "nodes", "--subresource=proxy")
    assert allowed.returncode == 1 and allowed.stdout.strip() == "no"
    assert kubectl("auth", "can-i", "get", "pods", "-n", "ml").stdout.strip() == "yes"


# ---- the plugin as kubectl finds it ----------------------------------------------------------------------


def plugin_binary() -> str:
    path = VENV_BIN / "kubectl-gpuscale"
    if not path.exists():
        pytest.fail(f"{path} is missing: install the package into the virtualenv (pip install -e .)")
    return str(path)


def test_plugin_list_finds_kubectl_gpuscale(kubectl: Kubectl) -> None:
    binary = plugin_binary()
    out = kubectl("plugin", "list")
    assert binary in out.stdout, out.stdout + out.stderr


def test_kubectl_gpuscale_help_and_version(kubectl: Kubectl) -> None:
    plugin_binary()
    helped = kubectl("gpuscale", "--help", check=True)
    assert "Usage: kubectl gpuscale" in helped.stdout
    version = kubectl("gpuscale", "version", check=True)
    assert __version__ in version.stdout


def test_kubectl_gpuscale_unknown_command_exits_2(kubectl: Kubectl) -> None:
    plugin_binary()
    out = kubectl("gpuscale", "no-such-command")
    assert out.returncode == 2 and "Traceback" not in out.stderr
