"""install / status / uninstall through the real kubernetes client against the test API server.

Manifests come from a `--manifests` dir the tests write (nothing downloads); a small
"controller" thread plays the kube-controller-manager and marks Deployments and the
APIService Available, as a real cluster would once the pods run.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE, FIELD_MANAGER
from tests.support.apiserver import ApiServer
from tests.support.keda_chart import seed_keda_chart

KEDA_MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: keda}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledobjects.keda.sh}
spec:
  group: keda.sh
  scope: Namespaced
  names: {kind: ScaledObject, plural: scaledobjects, singular: scaledobject, listKind: ScaledObjectList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: keda-operator, namespace: keda}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-operator, namespace: keda, labels: {app.kubernetes.io/version: "VERSION"}}
spec:
  selector: {matchLabels: {app: keda-operator}}
  template:
    metadata: {labels: {app: keda-operator}}
    spec:
      containers: [{name: keda-operator, image: "ghcr.io/kedacore/keda:VERSION"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  selector: {matchLabels: {app: keda-metrics-apiserver}}
  template:
    metadata: {labels: {app: keda-metrics-apiserver}}
    spec:
      containers: [{name: server, image: "ghcr.io/kedacore/keda-metrics-apiserver:VERSION"}]
---
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  selector: {app: keda-metrics-apiserver}
  ports: [{name: https, port: 443, targetPort: 6443}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {name: keda-metrics-apiserver, namespace: keda}
"""


def write_keda(directory: Path, version: str = "2.20.2") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"keda-{version}.yaml").write_text(KEDA_MANIFEST.replace("VERSION", version))
    return directory


class Controllers:
    """Marks Deployments and APIServices Available, like the real controllers once pods run."""

    def __init__(self, server: ApiServer) -> None:
        from kubectl_gpuscale.kube import Cluster

        self.server = server
        self.cluster = Cluster.connect(kubeconfig=server.kubeconfig)  # type: ignore[attr-defined]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        available = {"conditions": [{"type": "Available", "status": "True", "reason": "Ready"}]}
        while not self.stop.wait(0.05):
            try:
                for d in self.server.objects("apps/v1", "Deployment"):
                    status = d.get("status") or {}
                    lagging = status.get("observedGeneration", 0) < d["metadata"].get("generation", 1)
                    if lagging or not any(
                        c.get("type") == "Available" for c in status.get("conditions") or []
                    ):
                        m = d["metadata"]
                        self.cluster.patch(
                            "apps/v1",
                            "Deployment",
                            m["name"],
                            m["namespace"],
                            {"status": {**available, "observedGeneration": m.get("generation", 1)}},
                            subresource="status",
                        )
                for a in self.server.objects("apiregistration.k8s.io/v1", "APIService"):
                    if not (a.get("status") or {}).get("conditions"):
                        self.cluster.patch(
                            "apiregistration.k8s.io/v1",
                            "APIService",
                            a["metadata"]["name"],
                            None,
                            {"status": available},
                            subresource="status",
                        )
            except Exception:  # an object may vanish between list and patch
                continue

    def __enter__(self) -> Controllers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def gpuscale(server: ApiServer, *args: str) -> Ran:
    """Run the CLI against `server`; a GpuscaleError becomes its exit code and one stderr line, as main() does."""
    return _run_main([*args, "--kubeconfig", server.kubeconfig])  # type: ignore[attr-defined]


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, out, err


def _run_main(argv: list[str]) -> Ran:
    runner = CliRunner()
    result = runner.invoke(cli, argv)
    if isinstance(result.exception, SystemExit) or result.exception is None:
        return Ran(result.exit_code, result.stdout, result.stderr)
    from kubectl_gpuscale.errors import GpuscaleError

    if isinstance(result.exception, GpuscaleError):
        return Ran(
            result.exception.exit_code, result.stdout, result.stderr + f"error: {result.exception.line()}"
        )
    raise result.exception


def test_install_keda_from_manifests_is_ready_idempotent_and_recorded(
    bare: ApiServer, tmp_path: Path
) -> None:
    d = write_keda(tmp_path / "m")
    bare.seed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "prometheus-operated", "namespace": "monitoring"},
            "spec": {"ports": [{"name": "web", "port": 9090}]},
        }
    )
    with Controllers(bare):
        first = gpuscale(bare, "install", "keda", "--manifests", str(d), "--timeout", "20s")
        assert first.exit_code == 0, first.stderr
        assert "keda 2.20.2: 7 created, 0 configured, 0 unchanged; ready" in first.stdout
        assert "Plan:" in first.stderr and "KEDA 2.20.2 via manifests" in first.stderr
        assert "prometheus: http://prometheus-operated.monitoring.svc:9090" in first.stdout
        # server-side apply with our field manager
        applies = [
            r for r in bare.requests if r.method == "PATCH" and r.query.get("fieldManager") == [FIELD_MANAGER]
        ]
        assert applies
        second = gpuscale(bare, "install", "keda", "--manifests", str(d), "--timeout", "20s")
    assert second.exit_code == 0, second.stderr
    assert "0 created, 0 configured, 7 unchanged; ready" in second.stdout
    cm = bare.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    assert cm is not None
    record = json.loads(cm["data"]["component.keda"])
    assert record["version"] == "2.20.2" and record["method"] == "manifests"
    assert {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "keda-operator",
        "namespace": "keda",
    } in record["objects"]
    assert cm["data"]["prometheus-url"] == "http://prometheus-operated.monitoring.svc:9090"


def test_upgrade_with_version_override_changes_the_deployments(bare: ApiServer, tmp_path: Path) -> None:
    d = write_keda(tmp_path / "m", "2.19.0")
    write_keda(d, "2.20.2")
    with Controllers(bare):
        old = gpuscale(
            bare, "install", "keda", "--manifests", str(d), "--version", "2.19.0", "--timeout", "20s"
        )
        assert old.exit_code == 0, old.stderr
        new = gpuscale(bare, "install", "keda", "--manifests", str(d), "--timeout", "20s")
    assert new.exit_code == 0, new.stderr
    assert "KEDA 2.19.0 is installed: it will be changed to 2.20.2" in new.stderr
    assert "2 configured" in new.stdout
    op = bare.get_object("apps/v1", "Deployment", "keda-operator", "keda")
    assert op and op["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.20.2")


def test_dry_run_server_persists_nothing(bare: ApiServer, tmp_path: Path) -> None:
    d = write_keda(tmp_path / "m")
    out = gpuscale(bare, "install", "keda", "--manifests", str(d), "--dry-run=server", "-o", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["dryRun"] == "server" and len(data["results"][0]["created"]) == 7
    assert bare.objects("apps/v1", "Deployment") == []
    assert bare.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE) is None
    writes = [
        r
        for r in bare.requests
        if r.method in ("PATCH", "POST", "PUT", "DELETE") and "selfsubjectaccessreviews" not in r.path
    ]
    assert writes and all(r.query.get("dryRun") == ["All"] for r in writes)


def test_dry_run_client_needs_no_cluster_and_prints_objects(tmp_path: Path) -> None:
    d = write_keda(tmp_path / "m")
    result = CliRunner().invoke(
        cli,
        [
            "install",
            "keda",
            "--manifests",
            str(d),
            "--dry-run=client",
            "-o",
            "yaml",
            "--kubeconfig",
            str(tmp_path / "does-not-exist"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    listed = yaml.safe_load(result.stdout)
    assert listed["kind"] == "List"
    assert [o["kind"] for o in listed["items"]][:2] == ["Namespace", "CustomResourceDefinition"]
    assert "Plan (dry run: client" in result.stderr


def test_preflight_forbidden_lists_every_missing_permission_and_touches_nothing(
    bare: ApiServer, tmp_path: Path
) -> None:
    d = write_keda(tmp_path / "m")
    bare.deny("*", "customresourcedefinitions.apiextensions.k8s.io")
    bare.deny("patch", "apiservices.apiregistration.k8s.io")
    out = gpuscale(bare, "install", "keda", "--manifests", str(d))
    assert out.exit_code == 1
    assert "preflight failed: missing permissions" in out.stderr
    assert "create customresourcedefinitions.apiextensions.k8s.io" in out.stderr
    assert "patch apiservices.apiregistration.k8s.io" in out.stderr
    assert "kubectl auth can-i" in out.stderr
    assert bare.objects("v1", "Namespace") == [] or all(
        n["metadata"]["name"] != "keda" for n in bare.objects("v1", "Namespace")
    )


def test_preflight_stops_on_prometheus_adapter_owning_external_metrics(
    bare: ApiServer, tmp_path: Path
) -> None:
    d = write_keda(tmp_path / "m")
    bare.seed(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"name": "prometheus-adapter", "namespace": "monitoring"},
            },
        }
    )
    out = gpuscale(bare, "install", "keda", "--manifests", str(d))
    assert out.exit_code == 1
    assert "monitoring/prometheus-adapter" in out.stderr and "only one external metrics adapter" in out.stderr
    assert bare.objects("apps/v1", "Deployment") == []


def test_preflight_checks_the_cluster_version_and_gpu_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    with ApiServer(optional_groups=(), version="1.28.4") as server:
        server.kubeconfig = server.write_kubeconfig(tmp_path / "kc")  # type: ignore[attr-defined]
        server.seed(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "cpu-1"},
                "status": {"allocatable": {"cpu": "8"}},
            }
        )
        d = write_keda(tmp_path / "m")
        (d / "dcgm-exporter-4.5.3-4.8.2.yaml").write_text(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
        )
        out = gpuscale(server, "install", "keda", "dcgm", "--manifests", str(d))
    assert out.exit_code == 1
    assert "KEDA 2.20.2 needs Kubernetes 1.30+, the cluster runs v1.28.4" in out.stderr
    assert "no node has allocatable nvidia.com/gpu" in out.stderr


def test_status_without_and_with_keda(bare: ApiServer, tmp_path: Path) -> None:
    empty = gpuscale(bare, "status", "-o", "json")
    assert empty.exit_code == 0, empty.stderr
    data = json.loads(empty.stdout)
    states = {c["component"]: c["state"] for c in data["components"]}
    assert states == {
        "keda": "NotInstalled",
        "keda-http": "NotInstalled",
        "knative": "NotInstalled",
        "dcgm": "NotInstalled",
    }
    assert data["prometheus"] is None
    with Controllers(bare):
        assert (
            gpuscale(
                bare,
                "install",
                "keda",
                "--manifests",
                str(write_keda(tmp_path / "m")),
                "--prometheus",
                "http://prom.example:9090",
                "--timeout",
                "20s",
            ).exit_code
            == 0
        )
    table = gpuscale(bare, "status")
    assert table.exit_code == 1  # the admission webhook Deployment of the fixture manifest is absent
    assert any(row.split()[:2] == ["keda", "NotReady"] for row in table.stdout.splitlines())
    keda = next(
        c
        for c in json.loads(gpuscale(bare, "status", "-o", "json").stdout)["components"]
        if c["component"] == "keda"
    )
    assert keda["version"] == "2.20.2" and keda["method"] == "manifests" and keda["recordedByGpuscale"]
    assert "deployment/keda-admission -n keda: not found" in keda["reason"]
    assert {"object": "deployment/keda-operator -n keda", "ready": True, "reason": "Available"} in keda[
        "checks"
    ]
    assert "Prometheus: http://prom.example:9090 (ConfigMap gpuscale-system/gpuscale-config)" in table.stdout
    assert "External metrics API: keda/keda-metrics-apiserver" in table.stdout


def test_status_degrades_when_reads_are_forbidden_and_fails_clearly_when_unreachable(bare: ApiServer) -> None:
    bare.deny("get", "deployments.apps", namespace="knative-serving")
    out = gpuscale(bare, "status", "-o", "json")
    states = {c["component"]: c for c in json.loads(out.stdout)["components"]}
    assert states["knative"]["state"] == "Unknown" and "forbidden" in states["knative"]["reason"]
    assert states["keda"]["state"] == "NotInstalled"
    kubeconfig = bare.kubeconfig  # type: ignore[attr-defined]
    bare.stop()
    down = CliRunner().invoke(cli, ["status", "--kubeconfig", kubeconfig, "--request-timeout", "2s"])
    from kubectl_gpuscale.errors import UnreachableError

    assert isinstance(down.exception, UnreachableError) and "http://127.0.0.1:" in str(down.exception)


def test_uninstall_removes_only_what_was_recorded_and_warns_about_dependents(
    bare: ApiServer, tmp_path: Path
) -> None:
    with Controllers(bare):
        assert (
            gpuscale(
                bare, "install", "keda", "--manifests", str(write_keda(tmp_path / "m")), "--timeout", "20s"
            ).exit_code
            == 0
        )
    bare.enable_group("keda.sh")  # the test server serves the optional group only once enabled
    bare.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "not-ours", "namespace": "keda"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "llm", "namespace": "ml"},
            "spec": {"scaleTargetRef": {"name": "llm"}, "triggers": [{"type": "cpu", "metadata": {}}]},
        },
    )
    dry = gpuscale(bare, "uninstall", "keda", "--dry-run=server")
    assert dry.exit_code == 0, dry.stderr
    assert "ScaledObject ml/llm" in dry.stderr
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is not None
    done = gpuscale(bare, "uninstall", "keda", "--yes")
    assert done.exit_code == 0, done.stderr
    assert "deployment.apps/keda-operator -n keda deleted" in done.stdout
    assert bare.get_object("apps/v1", "Deployment", "keda-operator", "keda") is None
    assert (
        "keep namespace/keda (holds objects this install did not create: deployment.apps/not-ours -n keda)"
        in done.stderr
    )
    assert bare.get_object("apps/v1", "Deployment", "not-ours", "keda") is not None
    assert bare.get_object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "scaledobjects.keda.sh")
    cm = bare.get_object("v1", "ConfigMap", CONFIG_NAME, CONFIG_NAMESPACE)
    assert cm is not None and "component.keda" not in (cm.get("data") or {})
    again = gpuscale(bare, "uninstall", "keda", "--yes")
    assert again.exit_code == 1 and "no record of installing it" in again.stderr


FAKE_HELM = """#!{python}
import json, sys, os
with open(os.environ["HELM_RECORD"], "a") as fh:
    values = None
    if "--values" in sys.argv:
        values = open(sys.argv[sys.argv.index("--values") + 1]).read()
    fh.write(json.dumps({{"argv": sys.argv[1:], "values": values}}) + "\\n")
print("Release has been upgraded. Happy Helming!")
"""


def test_helm_path_runs_the_exact_argv_and_waits_for_helm_names(
    bare: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    helm = bindir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable))
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "helm.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HELM_RECORD", str(record))
    seed_keda_chart(bare, KEDA_MANIFEST)
    out = gpuscale(bare, "install", "keda-http", "keda", "--timeout", "5s", "--version", "keda-http=0.14.1")
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    kubeconfig = bare.kubeconfig  # type: ignore[attr-defined]
    assert calls[0]["argv"][:12] == [
        "upgrade",
        "--install",
        "keda",
        "keda",
        "--repo",
        "https://kedacore.github.io/charts",
        "--version",
        "2.20.2",
        "--namespace",
        "keda",
        "--create-namespace",
        "--values",
    ]
    assert calls[0]["argv"][-4:] == ["--timeout", "5s", "--kubeconfig", kubeconfig]
    assert calls[1]["argv"][2:4] == ["http-add-on", "keda-add-ons-http"]
    assert calls[1]["argv"][calls[1]["argv"].index("--version") + 1] == "0.14.1"
    assert yaml.safe_load(calls[1]["values"]) == {
        "interceptor": {"readinessTimeout": "660s", "responseHeaderTimeout": "600s"}
    }
    assert out.exit_code == 1 and "keda: done" in out.stderr
    # the add-on's Deployments were never created (helm is a stand-in): readiness says so by name
    assert "keda-add-ons-http-controller-manager" in out.stderr and "not ready after 5s" in out.stderr


KNATIVE_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: services.serving.knative.dev}
spec:
  group: serving.knative.dev
  scope: Namespaced
  names: {kind: Service, plural: services, singular: service, listKind: ServiceList}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"""
KNATIVE_CORE = "\n---\n".join(
    [
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}"
        for ns in ("knative-serving", "kourier-system")
    ]
    + [
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {n}, namespace: knative-serving}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: {n}}}}}\n  template:\n    metadata: {{labels: {{app: {n}}}}}\n"
        f"    spec: {{containers: [{{name: {n}, image: 'gcr.io/knative-releases/knative.dev/serving/cmd/{n}:v1.23.0'}}]}}"
        for n in ("activator", "autoscaler", "controller", "webhook")
    ]
    + [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-deployment, namespace: knative-serving}\ndata: {}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-defaults, namespace: knative-serving}\ndata: {}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-features, namespace: knative-serving}\ndata: {}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-network, namespace: knative-serving}\ndata: {}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-autoscaler, namespace: knative-serving}\ndata: {}",
    ]
)
KOURIER = "\n---\n".join(
    [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: net-kourier-controller, namespace: knative-serving}\n"
        "spec:\n  selector: {matchLabels: {app: nkc}}\n  template:\n    metadata: {labels: {app: nkc}}\n"
        "    spec: {containers: [{name: c, image: 'gcr.io/knative-releases/kourier:v1.23.0'}]}",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: 3scale-kourier-gateway, namespace: kourier-system}\n"
        "spec:\n  selector: {matchLabels: {app: gw}}\n  template:\n    metadata: {labels: {app: gw}}\n"
        "    spec: {containers: [{name: envoy, image: 'docker.io/envoyproxy/envoy:v1.31'}]}",
        "apiVersion: v1\nkind: Service\nmetadata: {name: kourier, namespace: kourier-system}\n"
        "spec: {selector: {app: gw}, ports: [{name: http2, port: 80, targetPort: 8080}]}",
    ]
)


def test_install_knative_waits_until_kourier_answers(bare: ApiServer, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "serving-crds-1.23.0.yaml").write_text(KNATIVE_CRDS)
    (d / "serving-core-1.23.0.yaml").write_text(KNATIVE_CORE)
    (d / "kourier-1.23.0.yaml").write_text(KOURIER)
    with Controllers(bare):
        # Deployments Available but Envoy has no ready endpoint: the API server answers 503, not ready
        waiting = gpuscale(bare, "install", "knative", "--manifests", str(d), "--timeout", "3s")
        assert waiting.exit_code == 1
        assert "ServiceProbe" in waiting.stderr or "serviceprobe/kourier:80" in waiting.stderr.lower(), (
            waiting.stderr
        )
        assert "not answering" in waiting.stderr
        # Envoy answers (404 for an unknown host is an answer): ready
        bare.set_service_proxy("kourier-system", "kourier", "*", "", status=404)
        done = gpuscale(bare, "install", "knative", "--manifests", str(d), "--timeout", "20s")
    assert done.exit_code == 0, done.stderr
    assert "ready" in done.stdout
    network = bare.get_object("v1", "ConfigMap", "config-network", "knative-serving")
    assert network["data"]["ingress-class"] == "kourier.ingress.networking.knative.dev"
    deployment = bare.get_object("v1", "ConfigMap", "config-deployment", "knative-serving")
    assert int(deployment["data"]["progress-deadline"].rstrip("s")) >= 600  # above a GPU cold start
