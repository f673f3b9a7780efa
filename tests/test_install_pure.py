"""install: catalog, plan, helm argv, GPU defaults, manifest handling, downloader, prepull builder,
readiness verdicts, the config ConfigMap. No cluster; the downloader talks to a local HTTP server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gpuscale import config
from kubectl_gpuscale.errors import GpuscaleError, NotFoundError
from kubectl_gpuscale.install import catalog, defaults, manifests, plan, prepull, readiness
from kubectl_gpuscale.install.helm import KubeTarget, install_argv, uninstall_argv
from tests.support.paths import SAMPLES
from tests.support.schemas import assert_valid

# ---- catalog ------------------------------------------------------------------------------------------


def test_catalog_urls_carry_the_pinned_version_and_keda_names_differ_by_method() -> None:
    for c in catalog.COMPONENTS.values():
        for art in c.artifacts():
            assert c.version in art.url and c.version in art.file, art
            assert art.url.startswith("https://")
    assert catalog.KEDA.workload_names("helm")[1] == ("Deployment", "keda", "keda-operator-metrics-apiserver")
    assert catalog.KEDA.workload_names("manifests")[1] == ("Deployment", "keda", "keda-metrics-apiserver")
    assert catalog.KEDA.workload_names("helm")[2][2] == "keda-admission-webhooks"
    assert catalog.KEDA.workload_names("manifests")[2][2] == "keda-admission"
    assert [a.file for a in catalog.KEDA.artifacts("2.19.0")] == ["keda-2.19.0.yaml"]
    assert catalog.KEDA.artifacts("2.19.0")[0].url.endswith("/v2.19.0/keda-2.19.0.yaml")
    knative_urls = [a.url for a in catalog.KNATIVE.artifacts()]
    assert knative_urls[0].endswith("/knative-v1.23.0/serving-crds.yaml")
    assert "net-kourier" in knative_urls[2]
    assert catalog.DCGM.helm and catalog.DCGM.helm.chart_version("4.5.3-4.8.2") == "4.8.2"


# ---- plan and helm argv ----------------------------------------------------------------------------------


def test_expand_all_orders_dependencies_first_and_rejects_unknown() -> None:
    assert plan.expand(["dcgm", "all"]) == ["keda", "keda-http", "knative", "dcgm"]
    assert plan.expand(["prepull", "keda-http", "keda"]) == ["keda", "keda-http", "prepull"]
    with pytest.raises(plan.PlanError, match="unknown component 'kedda'"):
        plan.expand(["kedda"])


def test_method_auto_uses_helm_only_when_available_and_knative_never() -> None:
    assert plan.choose_method(catalog.KEDA, "auto", True) == "helm"
    assert plan.choose_method(catalog.KEDA, "auto", False) == "manifests"
    assert plan.choose_method(catalog.KNATIVE, "helm", True) == "manifests"
    assert plan.choose_method(catalog.PREPULL, "auto", True) == "generated"


def test_helm_argv_is_an_exact_list() -> None:
    target = KubeTarget(kubeconfig="/tmp/kc", context="prod")
    argv = install_argv(
        catalog.KEDA, "2.19.0", target=target, values_file="/tmp/v.yaml", dry_run="server", timeout_s=120
    )
    assert argv == [
        "helm",
        "upgrade",
        "--install",
        "keda",
        "keda",
        "--repo",
        "https://kedacore.github.io/charts",
        "--version",
        "2.19.0",
        "--namespace",
        "keda",
        "--create-namespace",
        "--values",
        "/tmp/v.yaml",
        "--dry-run=server",
        "--timeout",
        "120s",
        "--kubeconfig",
        "/tmp/kc",
        "--kube-context",
        "prod",
    ]
    assert install_argv(catalog.DCGM, "4.5.3-4.8.2")[4:10] == [
        "dcgm-exporter",
        "--repo",
        "https://nvidia.github.io/dcgm-exporter/helm-charts",
        "--version",
        "4.8.2",
        "--namespace",
    ]
    assert uninstall_argv(catalog.KEDA_HTTP) == ["helm", "uninstall", "http-add-on", "--namespace", "keda"]


def test_plan_with_helm_carries_values_and_version_override() -> None:
    p = plan.build(["keda-http"], helm_available=True, versions={"keda-http": "0.14.1"}, cold_start_s=900)
    (cp,) = p.components
    assert cp.method == "helm" and cp.version == "0.14.1"
    assert cp.helm_argv[cp.helm_argv.index("--version") + 1] == "0.14.1"
    assert cp.helm_values == {"interceptor": {"readinessTimeout": "960s", "responseHeaderTimeout": "900s"}}
    text = "\n".join(p.lines())
    assert "0.14.1 (pinned 0.15.0) via helm" in text
    assert "interceptor.readinessTimeout = 960s (upstream" in text


def test_plan_manifests_lists_files_and_settings_with_reasons() -> None:
    p = plan.build(["knative"], method="manifests", manifests_dir="/air/gap")
    (cp,) = p.components
    assert [a.file for a in cp.artifacts] == [
        "serving-crds-1.23.0.yaml",
        "serving-core-1.23.0.yaml",
        "kourier-1.23.0.yaml",
    ]
    assert any("from /air/gap" in s for s in cp.steps)
    keys = {s.key: s for s in cp.settings}
    assert keys["config-deployment.progress-deadline"].value == "1200s"
    assert keys["config-network.ingress-class"].value == catalog.KOURIER_INGRESS_CLASS
    assert all(s.why for s in cp.settings)
    d = p.to_dict()
    assert d["components"][0]["manifests"][0]["url"].endswith("serving-crds.yaml")


def test_set_overrides_a_default_and_unknown_keys_are_rejected() -> None:
    p = plan.build(["knative"], overrides={"config-autoscaler.scale-to-zero-grace-period": "90s"})
    value = {s.key: s.value for s in p.components[0].settings}["config-autoscaler.scale-to-zero-grace-period"]
    assert value == "90s"
    with pytest.raises(plan.PlanError, match="unknown --set key"):
        plan.build(["keda"], overrides={"config-autoscaler.scale-to-zero-grace-period": "90s"})


def test_gpu_defaults_follow_the_cold_start_and_never_go_below_upstream() -> None:
    short = {s.key: s.value for s in defaults.gpu_settings("knative", cold_start_s=60)}
    long = {s.key: s.value for s in defaults.gpu_settings("knative", cold_start_s=900)}
    assert short["config-deployment.progress-deadline"] == "600s"
    assert long["config-deployment.progress-deadline"] == "1800s"
    assert short["config-defaults.revision-timeout-seconds"] == "300"
    assert long["config-defaults.max-revision-timeout-seconds"] == "1020"
    dcgm_off = defaults.helm_values(defaults.gpu_settings("dcgm", service_monitor=False))
    dcgm_on = defaults.helm_values(defaults.gpu_settings("dcgm", service_monitor=True))
    assert dcgm_off["serviceMonitor"] == {"enabled": False, "honorLabels": True}
    assert dcgm_on["serviceMonitor"]["enabled"] is True  # type: ignore[index]
    assert dcgm_off["extraEnv"] == [{"name": "DCGM_EXPORTER_INTERVAL", "value": "5000"}]


# ---- manifests ------------------------------------------------------------------------------------------

KNATIVE_CORE = """
apiVersion: v1
kind: Namespace
metadata: {name: knative-serving}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-deployment, namespace: knative-serving}
data: {_example: "..."}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: activator, namespace: knative-serving}
spec:
  selector: {matchLabels: {app: activator}}
  template:
    metadata: {labels: {app: activator}}
    spec:
      terminationGracePeriodSeconds: 600
      containers: [{name: activator, image: gcr.io/knative-releases/activator:v1.23.0}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: config.webhook.serving.knative.dev}
webhooks: []
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: images.caching.internal.knative.dev}
spec:
  group: caching.internal.knative.dev
  scope: Namespaced
  names: {kind: Image, plural: images}
  versions: [{name: v1alpha1, served: true, storage: true}]
---
apiVersion: caching.internal.knative.dev/v1alpha1
kind: Image
metadata: {name: queue-proxy}
spec: {image: gcr.io/knative-releases/queue:v1.23.0}
"""


def test_parse_order_namespaces_and_overlay() -> None:
    objs = manifests.set_namespaces(manifests.parse(KNATIVE_CORE), "knative-serving")
    image = next(o for o in objs if o["kind"] == "Image")
    assert image["metadata"]["namespace"] == "knative-serving"  # namespaced by the CRD in the same file
    webhook = next(o for o in objs if o["kind"] == "ValidatingWebhookConfiguration")
    assert "namespace" not in webhook["metadata"]
    ordered = [o["kind"] for o in manifests.order(objs)]
    assert ordered[:2] == ["Namespace", "CustomResourceDefinition"]
    assert ordered[-1] == "ValidatingWebhookConfiguration"
    settings = defaults.gpu_settings("knative", cold_start_s=900)
    out, left = manifests.overlay(objs, settings)
    cm = next(o for o in out if o["kind"] == "ConfigMap")
    assert cm["data"] == {"_example": "...", "progress-deadline": "1800s"}
    activator = next(o for o in out if o["kind"] == "Deployment")
    assert activator["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 1020
    assert objs[1]["data"] == {"_example": "..."}  # the input is not modified
    extra = manifests.configmaps_for(left, {"a": "b"})
    names = sorted(c["metadata"]["name"] for c in extra)
    assert names == ["config-autoscaler", "config-defaults", "config-features", "config-network"]
    for cm in extra:
        assert_valid(cm)
    features = next(c for c in extra if c["metadata"]["name"] == "config-features")
    assert features["data"]["kubernetes.podspec-tolerations"] == "enabled"


def test_overlay_sets_container_env_for_the_http_interceptor() -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "keda-add-ons-http-interceptor", "namespace": "keda"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "i",
                            "image": "x",
                            "env": [{"name": "KEDA_HTTP_READINESS_TIMEOUT", "value": "0s"}],
                        }
                    ]
                }
            }
        },
    }
    out, left = manifests.overlay([deploy], defaults.gpu_settings("keda-http", cold_start_s=600))
    env = {e["name"]: e["value"] for e in out[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"KEDA_HTTP_READINESS_TIMEOUT": "660s", "KEDA_HTTP_RESPONSE_HEADER_TIMEOUT": "600s"}
    assert left == []


def test_parse_rejects_non_objects() -> None:
    with pytest.raises(GpuscaleError, match="not a Kubernetes object"):
        manifests.parse("- a\n- b\n")


# ---- downloader ---------------------------------------------------------------------------------------


@pytest.fixture
def http_files() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"missing")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, hits
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_sha256_and_caches(
    http_files: tuple[str, dict[str, bytes], list[str]], tmp_path: Path
) -> None:
    base, files, hits = http_files
    body = b"apiVersion: v1\nkind: Namespace\nmetadata: {name: keda}\n"
    files["/keda.yaml"] = body
    art = catalog.Artifact("keda-9.9.9.yaml", f"{base}/keda.yaml", hashlib.sha256(body).hexdigest())
    got = manifests.fetch(art, cache=tmp_path)
    assert got.verified and got.source.startswith("download:") and got.text == body.decode()
    again = manifests.fetch(art, cache=tmp_path)
    assert again.source.startswith("cache:") and hits == ["/keda.yaml"]


def test_download_refuses_a_sha256_mismatch(
    http_files: tuple[str, dict[str, bytes], list[str]], tmp_path: Path
) -> None:
    base, files, _ = http_files
    files["/keda.yaml"] = b"tampered"
    art = catalog.Artifact("keda-9.9.9.yaml", f"{base}/keda.yaml", "0" * 64)
    with pytest.raises(GpuscaleError, match="sha256 mismatch") as info:
        manifests.fetch(art, cache=tmp_path)
    assert "refusing" in info.value.line()
    assert not (tmp_path / "keda-9.9.9.yaml").exists()


def test_download_without_pin_warns_with_the_digest_and_404_is_clear(
    http_files: tuple[str, dict[str, bytes], list[str]], tmp_path: Path
) -> None:
    base, files, _ = http_files
    files["/a.yaml"] = b"x: 1\n"
    warnings: list[str] = []
    manifests.fetch(catalog.Artifact("a.yaml", f"{base}/a.yaml"), cache=tmp_path, warn=warnings.append)
    assert warnings and hashlib.sha256(b"x: 1\n").hexdigest() in warnings[0]
    with pytest.raises(GpuscaleError, match="HTTP 404"):
        manifests.fetch(catalog.Artifact("b.yaml", f"{base}/b.yaml"), cache=tmp_path)


def test_manifests_dir_missing_file_names_the_url(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        manifests.fetch(catalog.KEDA.artifacts()[0], manifests_dir=tmp_path)
    assert "keda-2.20.2.yaml" in info.value.line() and "releases/download/v2.20.2" in info.value.line()


# ---- prepull -----------------------------------------------------------------------------------------


def test_prepull_daemonset_from_real_sample_workloads_validates() -> None:
    workloads = []
    for path in sorted((SAMPLES / "manifests").glob("deploy_*.yaml")):
        try:
            workloads.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
        except yaml.YAMLError:
            continue  # a few samples are Terraform templates, not YAML
    images = prepull.gpu_images(workloads)
    assert images and len(images) == len(set(images))
    ds = prepull.build_daemonset(images)
    assert_valid(ds)
    pod = ds["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["initContainers"]] == images
    assert len({c["name"] for c in pod["initContainers"]}) == len(images)
    assert pod["containers"][0]["image"] == catalog.PAUSE_IMAGE
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert (
        ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    )


def test_prepull_rejects_no_images_and_custom_selector() -> None:
    with pytest.raises(ValueError):
        prepull.build_daemonset([])
    ds = prepull.build_daemonset(["a/b:1", "c/b:2"], node_selector={}, pull_secrets=["regcred"])
    assert "nodeSelector" not in ds["spec"]["template"]["spec"]
    assert_valid(ds)


# ---- readiness -----------------------------------------------------------------------------------------


def test_readiness_verdicts() -> None:
    d = readiness.Target("Deployment", "keda-operator", "keda")
    assert not readiness.judge(d, None).ready
    avail = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }
    assert readiness.judge(d, avail).ready
    stale = {"metadata": {"generation": 3}, "status": {"observedGeneration": 2}}
    assert "not observed" in readiness.judge(d, stale).reason
    down = {
        "status": {
            "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]
        }
    }
    assert "MinimumReplicasUnavailable" in readiness.judge(d, down).reason
    crd = readiness.Target("CustomResourceDefinition", "scaledobjects.keda.sh")
    assert not readiness.judge(crd, {"status": {}}).ready
    ds = readiness.Target("DaemonSet", "dcgm-exporter", "gpu-monitoring")
    assert not readiness.judge(ds, {"status": {"desiredNumberScheduled": 2, "numberReady": 1}}).ready


def test_wait_times_out_naming_what_is_not_ready() -> None:
    class NoCluster:
        def get_or_none(self, *a: Any) -> None:
            return None

    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(GpuscaleError, match="not ready after 5s: deployment/x -n ns: not found"):
        readiness.wait(
            NoCluster(),
            [readiness.Target("Deployment", "x", "ns")],  # type: ignore[arg-type]
            timeout_s=5,
            clock=lambda: now[0],
            sleep=sleep,
        )


# ---- config --------------------------------------------------------------------------------------------


def test_config_objects_validate_and_records_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = config.InstallRecord(
        "keda",
        "2.20.2",
        "manifests",
        ({"apiVersion": "v1", "kind": "Namespace", "name": "keda"},),
        None,
        "keda",
    )
    cm = config.config_map(
        {config.COMPONENT_PREFIX + "keda": rec.to_json(), config.KEY_PROMETHEUS: "http://p:9090"}
    )
    assert_valid(cm)
    assert_valid(config.namespace_object())
    assert config.records(cm["data"]) == {"keda": rec}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(config.ENV_PROMETHEUS, raising=False)
    assert config.prometheus_url(None, context="c1") is None
    config.save_local("c1", {config.KEY_PROMETHEUS: "http://localhost:9090"})
    found = config.prometheus_url(None, context="c1")
    assert found and found.url == "http://localhost:9090" and "local file" in found.source
    assert config.prometheus_url(None, context="other") is None
    monkeypatch.setenv(config.ENV_PROMETHEUS, "http://env:9090/")
    assert config.prometheus_url(None, context="c1") == config.PrometheusRef(
        "http://env:9090", "$GPUSCALE_PROMETHEUS_URL"
    )
