"""Issue 14 items 3 and 4: the Knative Services migrate-hpa builds pass Knative's own admission rules
(tests/support/admission_knative.py) and keep the cold-start protection the operator wrote; the cold
start comes from a startupProbe budget or the engine, never from a readiness delay."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.autoscale.convert import Options, convert_all
from kubectl_gpuscale.cli.root import cli
from kubectl_gpuscale.doctor.rules import run as lint
from kubectl_gpuscale.errors import GpuscaleError
from kubectl_gpuscale.facts import knative as kf
from kubectl_gpuscale.names import STABILIZATION_REASON
from tests.support import vllm_chart
from tests.support.admission_knative import KnativeAdmission, KnativeConfig, validate_service
from tests.support.kube_fixtures import TestApiServer
from tests.support.schemas import assert_valid

NS = "ml"


def deployment(container: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    """A vLLM GPU Deployment (one container) with extra container and pod fields."""
    c = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.11.0",
        "args": ["--model", "m", "--max-num-seqs", "64"],
        "ports": [{"name": "http", "containerPort": 8000}],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        **(container or {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "llm"}},
            "template": {"metadata": {"labels": {"app": "llm"}}, "spec": {"containers": [c], **pod}},
        },
    }


def hpa(target: str = "llm") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "vllm:num_requests_waiting"},
                        "target": {"type": "AverageValue", "averageValue": "5"},
                    },
                }
            ],
        },
    }


def to_knative(*objs: dict[str, Any], **opts: Any) -> Any:
    (conversion,) = convert_all(list(objs), Options(to="knative", **opts))
    assert conversion.ok, conversion.why
    return conversion


def admitted(
    ksvc: dict[str, Any], flags: tuple[str, ...] | list[str] = (), version: kf.Version = kf.PINNED
) -> list[str]:
    """Knative's webhook errors for `ksvc` in a cluster whose config-features enable `flags`."""
    return validate_service(ksvc, KnativeConfig(version=version, features={f: "enabled" for f in flags}))


PRESTOP = {"lifecycle": {"preStop": {"sleep": {"seconds": 15}}}}
STARTUP = {
    "startupProbe": {
        "httpGet": {"path": "/health", "port": 8000},
        "periodSeconds": 10,
        "failureThreshold": 90,
    },
    "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10},
}


def test_prestop_lifecycle_is_dropped_and_the_service_admitted() -> None:
    """fieldmask.go ContainerMask sets Lifecycle = nil: the preStop GS018 recommends on a Deployment makes
    the copied Service "must not set the field(s): ...lifecycle". The builder drops it and says why."""
    conv = to_knative(hpa(), deployment(PRESTOP))
    ksvc = conv.objects[0]
    assert "lifecycle" not in ksvc["spec"]["template"]["spec"]["containers"][0]
    assert any("containers[vllm].lifecycle dropped" in n and "ContainerMask" in n for n in conv.notes)
    assert admitted(ksvc) == []
    assert_valid(ksvc)


def test_startup_and_liveness_are_both_kept_on_knative_1_15_and_later() -> None:
    """Knative >= 1.15 accepts startupProbe (knative/serving PR #15309): startup + liveness stay as the
    operator wrote them, so liveness starts only once the model is loaded (no GS014)."""
    conv = to_knative(hpa(), deployment(STARTUP))
    ksvc = conv.objects[0]
    container = ksvc["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"] == STARTUP["startupProbe"]
    assert container["livenessProbe"] == STARTUP["livenessProbe"]
    assert admitted(ksvc) == []
    assert not [f for f in lint([ksvc]) if f.rule == "GS014"]


def test_before_1_15_the_startup_budget_moves_into_the_liveness_delay() -> None:
    """Knative 1.14 rejects startupProbe: dropped (said), and liveness waits out the startup budget
    (0 + 10 x 90 = 900 s) instead of killing the loading pod."""
    conv = to_knative(hpa(), deployment(STARTUP), knative_version=(1, 14))
    ksvc = conv.objects[0]
    container = ksvc["spec"]["template"]["spec"]["containers"][0]
    assert "startupProbe" not in container and container["livenessProbe"]["initialDelaySeconds"] == 900
    assert any("startupProbe dropped" in n and "1.14" in n for n in conv.notes)
    assert admitted(ksvc, version=(1, 14)) == []


def test_vllm_chart_pvc_write_and_pod_flags_are_named_and_admitted_with_them() -> None:
    """The vLLM chart mounts a writable claim at /data, runs an init container, sets runtimeClassName and
    affinity: each needs a config-features flag (the PVC also kubernetes.podspec-persistent-volume-write,
    k8s_validation.go validateVolume). All are named; with them on the webhook admits the Service, with
    only the claim flag it rejects it as upstream does."""
    conv = to_knative(*vllm_chart.objects())
    ksvc = conv.objects[0]
    (note,) = [n for n in conv.notes if n.startswith("enable in knative-serving/config-features")]
    wanted = [
        "kubernetes.podspec-affinity",
        "kubernetes.podspec-init-containers",
        "kubernetes.podspec-persistent-volume-claim",
        "kubernetes.podspec-persistent-volume-write",
        "kubernetes.podspec-runtimeclassname",
    ]
    assert all(flag in note for flag in wanted)
    assert admitted(ksvc, wanted) == []
    errors = admitted(ksvc, [f for f in wanted if f != "kubernetes.podspec-persistent-volume-write"])
    assert errors == [
        "Persistent volume write support is disabled, but found persistent volume claim "
        "test-storage-claim that is not read-only"
    ]
    assert_valid(ksvc)


def test_read_only_claim_needs_no_write_flag() -> None:
    """Every mount read-only: the claim is marked readOnly, so the write flag is not needed (and the
    webhook's "volume is readOnly but volume mount is not" cannot happen)."""
    dep = deployment(
        {"volumeMounts": [{"name": "weights", "mountPath": "/models", "readOnly": True}]},
        volumes=[{"name": "weights", "persistentVolumeClaim": {"claimName": "w"}}],
    )
    conv = to_knative(hpa(), dep)
    ksvc = conv.objects[0]
    assert ksvc["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    assert admitted(ksvc, ["kubernetes.podspec-persistent-volume-claim"]) == []


def test_container_concurrency_5000_is_clamped_to_the_max_limit() -> None:
    """metadata_validation.go ValidateContainerConcurrency: 0..container-concurrency-max-limit (1000)."""
    conv = to_knative(hpa(), deployment({"args": ["--model", "m", "--max-num-seqs", "5000"]}))
    ksvc = conv.objects[0]
    assert ksvc["spec"]["template"]["spec"]["containerConcurrency"] == 1000
    assert ksvc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/target"] == "1000"
    assert any("containerConcurrency 5000 clamped to 1000" in n for n in conv.notes)
    assert admitted(ksvc) == []


def test_progress_deadline_covers_the_900s_startup_budget() -> None:
    """A startupProbe allowing 900 s (10 s x 90): the revision's progress deadline is at least that, even
    when --cold-start says 300 s (the 600 s default would fail the revision while it may still start)."""
    for opts in ({}, {"cold_start": 300}):
        ksvc = to_knative(hpa(), deployment(STARTUP), **opts).objects[0]
        deadline = ksvc["spec"]["template"]["metadata"]["annotations"][
            "serving.knative.dev/progress-deadline"
        ]
        assert int(deadline.rstrip("s")) >= 900, (opts, deadline)


def test_flag_gated_fields_missing_in_the_target_version_are_dropped_with_a_note() -> None:
    """hostNetwork has a flag only since 1.16 (knative/serving PR #15414): on 1.14 it is dropped, said."""
    dep = deployment(
        hostNetwork=True,
        dnsPolicy="ClusterFirstWithHostNet",
        schedulerName="gpu-sched",
        topologySpreadConstraints=[
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
        securityContext={"fsGroup": 1000},
        terminationGracePeriodSeconds=120,
        nodeName="gpu-1",
    )
    conv = to_knative(hpa(), dep, knative_version=(1, 14))
    spec = conv.objects[0]["spec"]["template"]["spec"]
    assert (
        "hostNetwork" not in spec and "nodeName" not in spec and "terminationGracePeriodSeconds" not in spec
    )
    assert any("spec.hostNetwork dropped" in n and "since 1.16" in n for n in conv.notes)
    assert any("spec.nodeName dropped" in n for n in conv.notes)
    (note,) = [n for n in conv.notes if n.startswith("enable in")]
    flags = [f for f in note.split(": ", 1)[1].split(" (")[0].split(", ")]
    assert set(flags) == {
        "kubernetes.podspec-dnspolicy",
        "kubernetes.podspec-schedulername",
        "kubernetes.podspec-topologyspreadconstraints",
        "kubernetes.podspec-securitycontext",
    }
    assert admitted(conv.objects[0], flags, version=(1, 14)) == []


def test_reserved_port_env_is_dropped() -> None:
    """k8s_validation.go validateEnvVar: PORT is reserved on the serving container (Knative sets it)."""
    conv = to_knative(
        hpa(),
        deployment({"env": [{"name": "PORT", "value": "8000"}, {"name": "HF_HOME", "value": "/cache"}]}),
    )
    ksvc = conv.objects[0]
    assert ksvc["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "HF_HOME", "value": "/cache"}
    ]
    assert admitted(ksvc) == []


# ---- item 4: the cold start ---------------------------------------------------------------------


def test_vllm_chart_cold_start_is_not_the_readiness_delay() -> None:
    """The chart's readiness initialDelaySeconds (5 s) is when probing starts: migrate records vLLM's
    typical cold start and says so, never "cold start 5s"."""
    (conv,) = convert_all(vllm_chart.objects(), Options())
    assert "cold start 300s from vLLM typical cold start" in conv.notes
    assert not any("cold start 5s" in n for n in conv.notes)
    reason = conv.objects[0]["metadata"]["annotations"][STABILIZATION_REASON]
    assert "readiness" not in reason and "5s" not in reason


def test_startup_budget_is_the_operators_statement() -> None:
    """initialDelaySeconds + periodSeconds x failureThreshold of the startupProbe (30 + 10 x 60 = 630 s)."""
    dep = deployment(
        {
            "startupProbe": {
                "httpGet": {"path": "/health", "port": 8000},
                "initialDelaySeconds": 30,
                "failureThreshold": 60,
            },
            "readinessProbe": {"initialDelaySeconds": 900},
        }
    )
    (conv,) = convert_all([hpa(), dep], Options())
    assert any(n.startswith("cold start 630s from startupProbe budget of vllm") for n in conv.notes)


def test_vllm_chart_doctor_flags_gs014(tmp_path: Path) -> None:
    """doctor -f on the rendered chart: the liveness probe (15 + 10 x 3 = 45 s, no startupProbe) kills the
    pod while vLLM loads (typical 300 s): GS014, an error, with the source of the cold start."""
    path = tmp_path / "chart.yaml"
    path.write_text(yaml.safe_dump_all(vllm_chart.objects()))
    result = CliRunner().invoke(cli, ["doctor", "-f", str(path), "-o", "json"])
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)
    findings = findings.get("findings", findings) if isinstance(findings, dict) else findings
    (gs014,) = [f for f in findings if f["rule"] == "GS014"]
    assert gs014["value"] == "45s" and "vLLM typical cold start" in gs014["message"]


# ---- through the test API server: every Knative Service migrate writes passes the webhook ---------


def _knative_cluster(apiserver: TestApiServer, features: dict[str, str]) -> None:
    apiserver.enable_group("serving.knative.dev")
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "knative-serving"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "config-features", "namespace": "knative-serving"},
            "data": features,
        },
        *vllm_chart.objects(),
    )


def _migrate(apiserver: TestApiServer, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["migrate-hpa", "--kubeconfig", apiserver.kubeconfig, "-n", NS, "--to", "knative", *args]
    )


def test_migrate_to_knative_refuses_when_config_features_lacks_a_flag(apiserver: TestApiServer) -> None:
    """With the stock config-features (PVC write disabled) the webhook would reject the Service: migrate
    says which flags and how to enable them, in one line, and writes nothing."""
    _knative_cluster(
        apiserver,
        {
            "kubernetes.podspec-persistent-volume-claim": "enabled",
            "kubernetes.podspec-init-containers": "enabled",
            "kubernetes.podspec-runtimeclassname": "enabled",
            "kubernetes.podspec-affinity": "enabled",
        },
    )
    result = _migrate(apiserver, "--all", "--apply")
    assert isinstance(result.exception, GpuscaleError)
    line = result.exception.line()
    assert "\n" not in line and "leaves kubernetes.podspec-persistent-volume-write disabled" in line
    assert "patch configmap config-features" in line
    assert apiserver.objects("serving.knative.dev/v1", "Service", NS) == []


def test_migrate_to_knative_writes_a_service_the_webhook_admits(apiserver: TestApiServer) -> None:
    """With the flags the migration named enabled, the Service goes through the webhook emulation."""
    flags = [
        "kubernetes.podspec-affinity",
        "kubernetes.podspec-init-containers",
        "kubernetes.podspec-persistent-volume-claim",
        "kubernetes.podspec-persistent-volume-write",
        "kubernetes.podspec-runtimeclassname",
    ]
    _knative_cluster(apiserver, {f: "enabled" for f in flags})
    result = _migrate(apiserver, "--all", "--apply")
    assert result.exit_code == 0, result.output + result.stderr
    (ksvc,) = apiserver.objects("serving.knative.dev/v1", "Service", NS)
    hook = next(h for h in apiserver.admission if isinstance(h, KnativeAdmission))
    assert ("CREATE", f"{NS}/test-deployment-vllm") in hook.seen or any(v == "UPDATE" for v, _ in hook.seen)
    assert (
        ksvc["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        == "test-storage-claim"
    )


@pytest.mark.parametrize("version", [(1, 14), (1, 15), (1, 23)])
def test_every_real_sample_deployment_converts_to_an_admitted_service(version: kf.Version) -> None:
    """Across the covered Knative versions, the Services built from the real GPU Deployments in
    ../shared/samples pass the webhook with exactly the flags the conversion named."""
    from kubectl_gpuscale.manifests import load
    from tests.support.paths import MANIFESTS

    seen = 0
    for path in sorted(Path(MANIFESTS).glob("deploy_*.yaml")):
        try:
            items = [i.obj for i in load([str(path)])]
        except Exception:  # templates (Helm, Terraform) do not parse: not inputs for this test
            continue
        for obj in items:
            containers = (
                obj["spec"]["template"]["spec"]["containers"]
                if obj.get("kind") in ("Deployment", "StatefulSet")
                else []
            )
            if not containers or not all(c.get("image") for c in containers):
                continue  # not a workload, or a kustomize patch (INDEX.md: partial objects)
            build = builders.knative_service(
                name="s",
                namespace=NS,
                template=obj["spec"]["template"],
                min_scale=1,
                max_scale=2,
                concurrency=64,
                cold_start=300,
                version=version,
            )
            assert admitted(copy.deepcopy(build.service), build.flags, version) == [], path.name
            seen += 1
    assert seen >= 5


# ---- install: the flags a Service needs can be set; the GPU defaults include writable claims -------


def test_install_sets_the_write_flag_and_any_flag_migrate_names() -> None:
    """install knative turns on the claim and write flags together (a model cache is written); any other
    flag migrate-hpa may name is accepted by --set where the Knative version has it, refused otherwise."""
    from kubectl_gpuscale.install import plan

    base = {s.key: s.value for s in plan.build(["knative"]).components[0].settings}
    assert base["config-features.kubernetes.podspec-persistent-volume-claim"] == "enabled"
    assert base["config-features.kubernetes.podspec-persistent-volume-write"] == "enabled"
    assert "config-features.kubernetes.podspec-dnspolicy" not in base  # left alone unless asked
    key = "config-features.kubernetes.podspec-hostnetwork"
    p = plan.build(
        ["knative"], overrides={key: "enabled", "config-features.kubernetes.podspec-dnspolicy": "enabled"}
    )
    got = {s.key: s.value for s in p.components[0].settings}
    assert got[key] == "enabled" and got["config-features.kubernetes.podspec-dnspolicy"] == "enabled"
    with pytest.raises(plan.PlanError, match="unknown --set key"):
        plan.build(["knative"], versions={"knative": "1.14.2"}, overrides={key: "enabled"})


def test_doctor_fix_on_a_knative_service_passes_the_webhook(apiserver: TestApiServer) -> None:
    """doctor --apply patches a Knative Service (GS011: progress deadline below the 900 s startup budget);
    the merged object goes through the webhook emulation and is admitted."""
    apiserver.enable_group("serving.knative.dev")
    ksvc = to_knative(hpa(), deployment(STARTUP)).objects[0]
    ksvc["spec"]["template"]["metadata"]["annotations"]["serving.knative.dev/progress-deadline"] = "2m"
    apiserver.seed(ksvc)
    result = CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", NS, "--apply"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    stored = apiserver.get_object("serving.knative.dev/v1", "Service", "llm", NS)
    deadline = stored["spec"]["template"]["metadata"]["annotations"]["serving.knative.dev/progress-deadline"]
    assert int(deadline.rstrip("s")) >= 900
    hook = next(h for h in apiserver.admission if isinstance(h, KnativeAdmission))
    assert ("UPDATE", f"{NS}/llm") in hook.seen


# ---- with a cluster: measured on the workload's own pods -----------------------------------------


def _measured_cluster(apiserver: TestApiServer) -> None:
    """A vLLM Deployment whose pod started in 300 s (the real events and log of test_coldstart_cli), with a
    startupProbe giving up after 60 s and a CPU HPA."""
    from tests.test_coldstart_cli import COMPILE_MISS, EVENTS, _pod, _utc_log

    dep = deployment({"startupProbe": {"httpGet": {"path": "/health", "port": 8000}, "failureThreshold": 6}})
    dep["metadata"]["name"] = "vllm"
    dep["spec"]["selector"]["matchLabels"] = dep["spec"]["template"]["metadata"]["labels"] = {"app": "vllm"}
    pod = _pod("vllm-a", "2025-11-24T19:40:00Z", "2025-11-24T19:43:20Z", "2025-11-24T19:45:00Z")
    apiserver.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, dep, pod, hpa("vllm"))
    for ev in EVENTS:
        apiserver.add_event(
            pod, ev["reason"], ev["message"], timestamp=ev["firstTimestamp"], count=ev["count"]
        )
    apiserver.set_log(NS, "vllm-a", _utc_log(COMPILE_MISS, "2025-11-24T19:43:54Z"))


def test_doctor_measures_the_cold_start_on_the_workloads_pods(apiserver: TestApiServer) -> None:
    """With a cluster the figure is measured on the workload's own pods (the coldstart service: events,
    conditions, log): 300 s here, so the 60 s startupProbe is flagged (GS013) and the source printed."""
    _measured_cluster(apiserver)
    result = CliRunner().invoke(cli, ["doctor", "--kubeconfig", apiserver.kubeconfig, "-n", NS, "-o", "json"])
    findings = json.loads(result.stdout)
    findings = findings.get("findings", findings) if isinstance(findings, dict) else findings
    (gs013,) = [f for f in findings if f["rule"] == "GS013"]
    assert "needs 300s (measured on 1 pod(s) of Deployment/vllm" in gs013["message"]
    assert "failureThreshold to 31" in gs013["fix"]


def test_migrate_from_the_cluster_records_the_measured_cold_start(apiserver: TestApiServer) -> None:
    """migrate-hpa reading the cluster says where its cold start came from: the pods, not the probe."""
    apiserver.enable_group("keda.sh")
    _measured_cluster(apiserver)
    result = CliRunner().invoke(cli, ["migrate-hpa", "vllm", "--kubeconfig", apiserver.kubeconfig, "-n", NS])
    assert result.exit_code == 0, result.output
    assert "cold start 300s from measured on 1 pod(s) of Deployment/vllm" in result.output


def test_migrate_builds_for_the_knative_version_the_cluster_runs(apiserver: TestApiServer) -> None:
    """Knative 1.14 in the cluster (the webhook Deployment's tag): the Service is built for it (no
    startupProbe, the liveness delay covering the startup budget) and the 1.14 webhook admits it."""
    apiserver.enable_group("serving.knative.dev")
    webhook = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "webhook", "namespace": "knative-serving"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "webhook",
                            "image": "gcr.io/knative-releases/knative.dev/serving/cmd/webhook:v1.14.2",
                        }
                    ]
                }
            }
        },
    }
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        webhook,
        deployment(STARTUP),
        hpa(),
    )
    result = _migrate(apiserver, "llm", "--apply")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Knative 1.14 detected" in result.stderr
    stored = apiserver.get_object("serving.knative.dev/v1", "Service", "llm", NS)
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert "startupProbe" not in container and container["livenessProbe"]["initialDelaySeconds"] == 900


def test_downward_api_env_names_the_fieldref_flag() -> None:
    """validateEnvValueFrom: fieldRef/resourceFieldRef need kubernetes.podspec-fieldref (vLLM charts set
    POD_IP this way): named, and admitted with it."""
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    conv = to_knative(hpa(), deployment({"env": env}))
    (note,) = [n for n in conv.notes if n.startswith("enable in")]
    assert "kubernetes.podspec-fieldref" in note
    assert (
        admitted(conv.objects[0]) != [] and admitted(conv.objects[0], ["kubernetes.podspec-fieldref"]) == []
    )


def test_sidecar_probes_keep_and_name_multi_container_probing() -> None:
    """A sidecar's readiness probe is kept and multi-container-probing named (validateSidecarContainer);
    without the flag the webhook rejects it, with it admits it."""
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"].append(
        {"name": "proxy", "image": "envoyproxy/envoy:v1.31", "readinessProbe": {"tcpSocket": {"port": 9901}}}
    )
    conv = to_knative(hpa(), dep)
    (note,) = [n for n in conv.notes if n.startswith("enable in")]
    assert "multi-container-probing" in note
    assert admitted(conv.objects[0]) and admitted(conv.objects[0], ["multi-container-probing"]) == []
