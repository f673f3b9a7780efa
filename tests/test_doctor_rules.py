"""doctor rules on files: each rule fires on a real sample (or a broken variant derived from one here)
and stays quiet on the fixed form. Applying a finding's own safe patch must make it go away."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.doctor import RULES, run
from kubectl_gpuscale.doctor.model import Finding
from kubectl_gpuscale.doctor.rules import aggregated, metric_names
from kubectl_gpuscale.doctor.snapshot import duration_seconds
from kubectl_gpuscale.install.prepull import build_daemonset
from kubectl_gpuscale.manifests import load
from kubectl_gpuscale.names import KEDA_HTTP_SKIP_SCALEDOBJECT, KEDA_TRANSFER_OWNERSHIP
from tests.support.paths import MANIFESTS
from tests.support.schemas import assert_valid


def sample(name: str) -> list[dict[str, Any]]:
    """The objects of a real sample manifest (fresh copies)."""
    return [copy.deepcopy(item.obj) for item in load([str(MANIFESTS / f"{name}.yaml")])]


def one(name: str, kind: str | None = None) -> dict[str, Any]:
    objs = [o for o in sample(name) if kind is None or o["kind"] == kind]
    assert len(objs) == 1, [o["kind"] for o in objs]
    return objs[0]


def fired(findings: Iterable[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def lint(*objects: Mapping[str, Any], cold_start: int | None = None) -> list[Finding]:
    return run(list(objects), cold_start=cold_start, from_files=True)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (independent of the code under test)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def apply_fixes(objects: list[dict[str, Any]], findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """The objects with every finding's safe patch applied (merge) or added (apply)."""
    out = [copy.deepcopy(o) for o in objects]
    for f in findings:
        p = f.patch
        if p is None:
            continue
        if p.type == "apply":
            out.append(dict(p.body))
            continue
        for i, o in enumerate(out):
            if (
                o["kind"] == p.kind
                and o["metadata"]["name"] == p.name
                and (o["metadata"].get("namespace") or "default") == p.namespace
            ):
                out[i] = merge_patch(o, p.body)
    return out


@pytest.fixture
def gemma() -> list[dict[str, Any]]:
    """Real pair: vLLM Gemma Deployment (1 GPU) + its queue-depth HPA (scale-down window 30 s)."""
    return [one("deploy_k8s-examples_1"), one("hpa_k8s-examples_1")]


def test_rule_catalog_is_stable_and_complete() -> None:
    ids = [r.id for r in RULES]
    assert ids == [f"GS{i:03d}" for i in range(1, len(ids) + 1)]
    assert len({r.slug for r in RULES}) == len(RULES)
    assert all(r.severity in ("error", "warning", "info") and r.why and r.fix for r in RULES)


# ---- GS001 -------------------------------------------------------------------------------------


def test_gs001_cpu_hpa_on_real_ollama_sample() -> None:
    findings = lint(one("deploy_ollama-app_1"), one("hpa_ollama-app_1"))
    (f,) = fired(findings, "GS001")
    assert f.kind == "HorizontalPodAutoscaler" and f.name == "ollama-hpa" and f.severity == "error"
    assert f.field == "spec.metrics[0]" and f.value.startswith("cpu")
    assert "migrate-hpa ollama-hpa -n default" in f.fix


def test_gs001_cpu_variant_of_gpu_hpa_fires_and_queue_hpa_does_not(gemma: list[dict[str, Any]]) -> None:
    assert not fired(lint(*gemma), "GS001")
    cpu = copy.deepcopy(gemma[1])
    cpu["spec"]["metrics"] = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    (f,) = fired(lint(gemma[0], cpu), "GS001")
    assert f.value == "cpu 60%" and "1x nvidia.com/gpu" in f.message


def test_gs001_ignores_cpu_hpa_on_a_plain_web_deployment(gemma: list[dict[str, Any]]) -> None:
    web = copy.deepcopy(gemma[0])
    web["spec"]["template"]["spec"]["containers"] = [{"name": "web", "image": "nginx:1.27"}]
    cpu = copy.deepcopy(gemma[1])
    cpu["spec"]["metrics"] = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    assert not fired(lint(web, cpu), "GS001")


# ---- GS002 -------------------------------------------------------------------------------------


def test_gs002_real_hpa_and_scaledobject_pair_fight() -> None:
    objs = [one("deploy_llmd-wva_1", "Deployment"), one("hpa_llmd-wva_1"), one("scaledobject_llmd-wva_1")]
    (f,) = fired(lint(*objs), "GS002")
    assert f.name == "vllme-deployment" and f.namespace == "llm-d-sim"
    assert (
        "HorizontalPodAutoscaler/vllme-deployment-hpa" in f.value
        and "ScaledObject/vllme-deployment-scaler" in f.value
    )


def test_gs002_adopted_hpa_is_one_controller() -> None:
    hpa, so = one("hpa_llmd-wva_1"), one("scaledobject_llmd-wva_1")
    hpa["metadata"]["name"] = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"]
    so["metadata"].setdefault("annotations", {})[KEDA_TRANSFER_OWNERSHIP] = "true"
    assert not fired(lint(one("deploy_llmd-wva_1", "Deployment"), hpa, so), "GS002")


def test_gs002_http_scaled_object_that_creates_its_own_scaled_object() -> None:
    dep, so = one("deploy_llmd-wva_1", "Deployment"), one("scaledobject_llmd-wva_1")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllme-deployment"}
    hso = builders.http_scaled_object(
        name="vllme",
        namespace="llm-d-sim",
        target=target,
        service="vllme-service",
        port=80,
        min_replicas=0,
        max_replicas=4,
        concurrency=8,
        hosts=("x",),
        cold_start=300,
    )
    assert not fired(lint(dep, so, hso), "GS002")  # skip-scaledobject-creation is set by our builder
    del hso["metadata"]["annotations"][KEDA_HTTP_SKIP_SCALEDOBJECT]
    (f,) = fired(lint(dep, so, hso), "GS002")
    assert "HTTPScaledObject/vllme" in f.value


# ---- GS003 (files: spec.replicas in the manifest; managedFields: see test_doctor_cluster) ---------


def test_gs003_manifest_sets_replicas_of_autoscaled_workload(gemma: list[dict[str, Any]]) -> None:
    (f,) = fired(lint(*gemma), "GS003")
    assert f.field == "spec.replicas" and f.value == "1"
    del gemma[0]["spec"]["replicas"]
    assert not fired(lint(*gemma), "GS003")
    assert not fired(lint(one("deploy_k8s-examples_1")), "GS003")  # not autoscaled: replicas are its to set


# ---- GS005 / GS006 / GS008 (static query checks) -------------------------------------------------


def test_gs005_static_bare_metric_query_on_real_sample() -> None:
    so = one("scaledobject_production-stack_1")
    (f,) = fired(lint(so), "GS005")
    assert f.severity == "warning" and f.value == "vllm:num_requests_waiting"
    so["spec"]["triggers"][0]["metadata"]["query"] = 'sum(vllm:num_requests_waiting{namespace="default"})'
    assert not fired(lint(so), "GS005")


@pytest.mark.parametrize(
    "query, ok",
    [
        ("vllm:num_requests_waiting", False),
        ('sum(vllm:num_requests_waiting{namespace="ml"})', True),
        ("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)", True),
        ("sum by (pod) (vllm:num_requests_waiting)", False),
        ("sum(vllm:num_requests_waiting) by (pod)", False),
        ("sum(a) / sum(b)", True),
        ("max(DCGM_FI_DEV_GPU_UTIL) * 2", True),
        ("avg(x) / y", False),
        ("rate(x[1m])", False),
    ],
)
def test_aggregation_detection(query: str, ok: bool) -> None:
    assert aggregated(query) is ok


def test_metric_names_skip_labels_functions_and_strings() -> None:
    names = metric_names(
        'sum(rate(vllm:request_success_total{model_name="m:x", pod=~"a.*"}[5m])) '
        "by (pod) / on(pod) vllm:num_requests_running"
    )
    assert names == ["vllm:request_success_total", "vllm:num_requests_running"]
    assert metric_names('sum({__name__=~"vllm[:_]num_requests_waiting"})') == ["vllm:num_requests_waiting"]


def test_gs006_renamed_kv_cache_metric() -> None:
    so = one("scaledobject_production-stack_1")
    so["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm:gpu_cache_usage_perc)"
    (f,) = fired(lint(so), "GS006")
    assert f.value == "vllm:gpu_cache_usage_perc" and "vllm:kv_cache_usage_perc" in f.message
    so["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm:kv_cache_usage_perc)"
    assert not fired(lint(so), "GS006")
    so["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm_gpu_cache_usage_perc)"  # underscore form too
    assert fired(lint(so), "GS006")


def test_gs008_ignore_null_values_default_on_real_sample_and_its_patch() -> None:
    so = one("scaledobject_production-stack_3")
    findings = fired(lint(so), "GS008")
    assert [f.field for f in findings] == [
        "spec.triggers[0].metadata.ignoreNullValues",
        "spec.triggers[1].metadata.ignoreNullValues",
    ]
    assert findings[0].value == "true (default)"
    # minReplicaCount 0 on the pinned KEDA (2.20, which wakes a workload at zero to fallback.replicas after
    # failureThreshold errors, kedacore/keda#7244): the patch sets ignoreNullValues only, and says why
    assert "no fallback in the patch" in findings[0].message
    fixed = apply_fixes([so], findings[:1])[0]
    assert "fallback" not in fixed["spec"]
    assert all(t["metadata"]["ignoreNullValues"] == "false" for t in fixed["spec"]["triggers"])
    assert [t["metadata"]["query"] for t in fixed["spec"]["triggers"]] == [
        t["metadata"]["query"] for t in so["spec"]["triggers"]
    ]  # the list is copied whole, not truncated
    assert not fired(lint(fixed), "GS008")
    assert_valid(fixed)


def test_gs008_quiet_when_a_fallback_exists() -> None:
    assert not fired(lint(one("scaledobject_llmd-wva_1")), "GS008")  # real sample with fallback


# ---- GS009 ---------------------------------------------------------------------------------------


def test_gs009_short_scale_down_window_and_patch(gemma: list[dict[str, Any]]) -> None:
    (f,) = fired(lint(*gemma), "GS009")
    assert f.value == "30s" and f.extra["cold_start"] == 300 and f.patch is not None
    fixed = apply_fixes(gemma, [f])
    assert fixed[1]["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert (
        fixed[1]["spec"]["behavior"]["scaleDown"]["policies"]
        == gemma[1]["spec"]["behavior"]["scaleDown"]["policies"]
    )
    assert not fired(lint(*fixed), "GS009")
    assert_valid(fixed[1])


def test_gs009_default_window_against_cold_start(gemma: list[dict[str, Any]]) -> None:
    del gemma[1]["spec"]["behavior"]
    assert not fired(lint(*gemma), "GS009")  # 300 s default vs vLLM's typical 300 s
    (f,) = fired(lint(*gemma, cold_start=600), "GS009")
    assert f.value == "300s" and f.extra["cold_start_source"] == "--cold-start"


def test_gs009_scaled_object_window() -> None:
    objs = [one("deploy_llmd-wva_1", "Deployment"), one("scaledobject_llmd-wva_1")]
    (f,) = fired(lint(*objs), "GS009")
    assert f.kind == "ScaledObject" and f.value == "0s"
    assert not fired(lint(*apply_fixes(objs, [f])), "GS009")


# ---- GS010 ---------------------------------------------------------------------------------------


def test_gs010_default_min_zero_without_buffer() -> None:
    objs = [one("deploy_llmd-wva_1", "Deployment"), one("scaledobject_llmd-wva_1")]
    (f,) = fired(lint(*objs), "GS010")
    assert f.value == "0 (KEDA default)" and f.field == "spec.minReplicaCount"
    fixed = apply_fixes(objs, [f])
    assert fixed[1]["spec"]["minReplicaCount"] == 1
    assert not fired(lint(*fixed), "GS010")


def test_gs010_http_add_on_buffers() -> None:
    objs = [one("deploy_llmd-wva_1", "Deployment"), one("scaledobject_llmd-wva_1")]
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllme-deployment"}
    hso = builders.http_scaled_object(
        name="vllme",
        namespace="llm-d-sim",
        target=target,
        service="s",
        port=80,
        min_replicas=0,
        max_replicas=4,
        concurrency=8,
        hosts=("x",),
        cold_start=300,
    )
    assert not fired(lint(*objs, hso), "GS010")


# ---- GS011 ---------------------------------------------------------------------------------------


def test_gs011_knative_deadline_and_timeout_below_cold_start() -> None:
    ksvc = one("ksvc_gke-kueue-dws_1")
    assert not fired(lint(ksvc), "GS011")  # 240 s start (probe delay) < 600 s deadline, 300 s timeout
    findings = fired(lint(ksvc, cold_start=900), "GS011")
    assert {f.field for f in findings} == {
        "spec.template.metadata.annotations[serving.knative.dev/progress-deadline]",
        "spec.template.spec.timeoutSeconds",
    }
    fixed = apply_fixes([ksvc], findings)[0]
    assert (
        fixed["spec"]["template"]["metadata"]["annotations"]["serving.knative.dev/progress-deadline"]
        == "1800s"
    )
    assert fixed["spec"]["template"]["spec"]["containers"] == ksvc["spec"]["template"]["spec"]["containers"]
    assert_valid(fixed)
    remaining = fired(lint(fixed, cold_start=900), "GS011")
    # the timeout is capped by max-revision-timeout-seconds (600): what remains says so
    assert [f.field for f in remaining] == ["spec.template.spec.timeoutSeconds"]


def test_gs011_explicit_short_progress_deadline() -> None:
    ksvc = one("ksvc_gke-kueue-dws_1")
    ksvc["spec"]["template"]["metadata"]["annotations"] = {"serving.knative.dev/progress-deadline": "2m"}
    (f,) = fired(lint(ksvc), "GS011")
    assert f.value == "2m" and f.severity == "error"


# ---- GS012 ---------------------------------------------------------------------------------------


def test_gs012_http_add_on_condition_wait() -> None:
    dep = one("deploy_llmd-wva_1", "Deployment")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllme-deployment"}
    hso = builders.http_scaled_object(
        name="vllme",
        namespace="llm-d-sim",
        target=target,
        service="s",
        port=80,
        min_replicas=0,
        max_replicas=4,
        concurrency=8,
        hosts=("x",),
        cold_start=300,
    )
    assert not fired(lint(dep, hso), "GS012")
    hso["spec"]["timeouts"]["conditionWait"] = "20s"
    (f,) = fired(lint(dep, hso), "GS012")
    assert f.value == "20s" and f.field == "spec.timeouts.conditionWait"
    assert not fired(lint(*apply_fixes([dep, hso], [f])), "GS012")


# ---- GS013 - GS016 (probes) ----------------------------------------------------------------------


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return objs[0]["spec"]["template"]["spec"]["containers"][0]


def test_gs013_startup_probe_budget(gemma: list[dict[str, Any]]) -> None:
    _container(gemma)["startupProbe"] = {
        "httpGet": {"path": "/health", "port": 8080},
        "periodSeconds": 10,
        "failureThreshold": 6,
    }
    (f,) = fired(lint(*gemma), "GS013")
    assert f.value == "60s" and "failureThreshold to 31" in f.fix
    _container(gemma)["startupProbe"]["failureThreshold"] = 31
    assert not fired(lint(*gemma), "GS013")


def test_gs014_liveness_without_startup(gemma: list[dict[str, Any]]) -> None:
    _container(gemma)["livenessProbe"] = {"httpGet": {"path": "/health", "port": 8080}}
    (f,) = fired(lint(*gemma), "GS014")
    assert f.value == "30s" and f.severity == "error"
    _container(gemma)["startupProbe"] = {"httpGet": {"path": "/health", "port": 8080}, "failureThreshold": 40}
    assert not fired(lint(*gemma), "GS014")


def test_gs014_real_knative_sample_judged_against_the_engine_not_its_readiness_delay() -> None:
    """The sample's readiness initialDelaySeconds (240 s) is when probing starts, not a cold start:
    with no startupProbe the figure is vLLM's typical cold start (300 s), which its liveness budget
    (240 + 5 x 3 = 255 s) does not cover. A cold start the operator gives (--cold-start) is judged instead."""
    (f,) = fired(lint(one("ksvc_gke-kueue-dws_1")), "GS014")
    assert f.value == "255s" and "vLLM typical cold start" in f.message
    assert not fired(lint(one("ksvc_gke-kueue-dws_1"), cold_start=200), "GS014")
    assert fired(lint(one("ksvc_gke-kueue-dws_1"), cold_start=600), "GS014")


def test_gs015_readiness_budget(gemma: list[dict[str, Any]]) -> None:
    _container(gemma)["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 5}
    (f,) = fired(lint(*gemma), "GS015")
    assert f.value == "15s"
    _container(gemma)["readinessProbe"]["failureThreshold"] = 60
    assert not fired(lint(*gemma), "GS015")


def test_gs016_progress_deadline(gemma: list[dict[str, Any]]) -> None:
    assert not fired(lint(*gemma), "GS016")
    (f,) = fired(lint(*gemma, cold_start=900), "GS016")
    assert f.value == "600"
    fixed = apply_fixes(gemma, [f])
    assert fixed[0]["spec"]["progressDeadlineSeconds"] == 1800
    assert not fired(lint(*fixed, cold_start=900), "GS016")


# ---- GS017 / GS018 (drain) -------------------------------------------------------------------------


def test_gs017_gs018_real_sample_has_default_grace_and_no_prestop(gemma: list[dict[str, Any]]) -> None:
    findings = lint(*gemma)
    (grace,) = fired(findings, "GS017")
    (prestop,) = fired(findings, "GS018")
    assert grace.value == "30 (default)" and prestop.value == "<none>"
    fixed = apply_fixes(gemma, [grace])
    assert fixed[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    assert (
        fixed[0]["spec"]["template"]["spec"]["containers"]
        == gemma[0]["spec"]["template"]["spec"]["containers"]
    )
    assert not fired(lint(*fixed), "GS017")
    assert_valid(fixed[0])


def test_gs017_shutdown_timeout_and_prestop_add_up(gemma: list[dict[str, Any]]) -> None:
    c = _container(gemma)
    c["lifecycle"] = {"preStop": {"sleep": {"seconds": 15}}}
    c["args"] = [*c["args"], "--shutdown-timeout", "120"]
    gemma[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 120
    findings = lint(*gemma)
    assert not fired(findings, "GS018")
    (f,) = fired(findings, "GS017")
    assert "needs 135s" in f.message
    gemma[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 135
    assert not fired(lint(*gemma), "GS017")


def test_drain_rules_skip_unscaled_workloads() -> None:
    findings = lint(one("deploy_k8s-examples_1"))
    assert not fired(findings, "GS017") and not fired(findings, "GS018")


# ---- GS019 - GS022 ---------------------------------------------------------------------------------


def _pvc(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models"},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "100Gi"}}},
    }


def test_gs019_rwo_claim_on_scaled_workload(gemma: list[dict[str, Any]]) -> None:
    gemma[0]["spec"]["template"]["spec"]["volumes"].append(
        {"name": "models", "persistentVolumeClaim": {"claimName": "models"}}
    )
    (f,) = fired(lint(*gemma, _pvc("ReadWriteOnce")), "GS019")
    assert f.value == "models (ReadWriteOnce)" and "5 replicas" in f.message
    assert not fired(lint(*gemma, _pvc("ReadOnlyMany")), "GS019")
    gemma[1]["spec"]["maxReplicas"] = 1
    assert not fired(lint(*gemma, _pvc("ReadWriteOnce")), "GS019")


def test_gs020_prepull_daemonset_from_install_clears_it(gemma: list[dict[str, Any]]) -> None:
    (f,) = fired(lint(*gemma), "GS020")
    assert f.value == "vllm/vllm-openai:v0.11.0"
    ds = build_daemonset([f.value])
    assert not fired(lint(*gemma, ds), "GS020")


def _node(name: str, gpus: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"allocatable": {"cpu": "32", "nvidia.com/gpu": gpus}},
    }


def test_gs021_capacity(gemma: list[dict[str, Any]]) -> None:
    assert not fired(lint(*gemma), "GS021")  # no nodes known (files): not checked
    (f,) = fired(lint(*gemma, _node("a", "2"), _node("b", "1")), "GS021")
    assert f.extra == {"needed": 5.0, "allocatable": 3.0, "resource": "nvidia.com/gpu"}
    assert not fired(lint(*gemma, _node("a", "4"), _node("b", "1")), "GS021")


def test_gs022_pdb_from_builder_clears_it(gemma: list[dict[str, Any]]) -> None:
    (f,) = fired(lint(*gemma), "GS022")
    assert f.patch is not None and f.patch.type == "apply"
    assert_valid(dict(f.patch.body))
    assert not fired(lint(*apply_fixes(gemma, [f])), "GS022")
    other = builders.pod_disruption_budget(name="x", namespace="default", match_labels={"app": "other"})
    assert fired(lint(*gemma, other), "GS022")


# ---- whole corpus -------------------------------------------------------------------------------------


def test_every_patch_on_the_sample_corpus_fixes_its_finding() -> None:
    objects: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        try:
            objects += [item.obj for item in load([str(path)])]
        except Exception:  # templates and values files are not manifests
            continue
    findings = run(objects, from_files=True)
    patched = [f for f in findings if f.patch is not None]
    assert patched, "the corpus has fixable findings"
    after = run(apply_fixes(objects, patched), from_files=True)
    left = {(f.rule, f.kind, f.namespace, f.name, f.field) for f in after if f.patch is not None}
    assert not left & {(f.rule, f.kind, f.namespace, f.name, f.field) for f in patched}


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("600s", 600),
        ("10m", 600),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("300", 300),
        ("ten", None),
        ("", None),
        ("5x", None),
    ],
)
def test_duration_seconds(text: str, seconds: float | None) -> None:
    assert duration_seconds(text) == seconds


def test_gs012_interceptor_wide_readiness_timeout() -> None:
    from kubectl_gpuscale.install.defaults import gpu_settings

    env_name = next(s.env for s in gpu_settings("keda-http") if s.key == "interceptor.readinessTimeout")
    assert env_name is not None
    dep = one("deploy_llmd-wva_1", "Deployment")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllme-deployment"}
    hso = builders.http_scaled_object(
        name="vllme",
        namespace="llm-d-sim",
        target=target,
        service="s",
        port=80,
        min_replicas=0,
        max_replicas=4,
        concurrency=8,
        hosts=("x",),
        cold_start=300,
    )
    del hso["spec"]["timeouts"]
    interceptor = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": env_name[0], "namespace": "keda"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "interceptor", "image": "x", "env": [{"name": env_name[1], "value": "20s"}]}
                    ]
                }
            }
        },
    }
    assert not fired(lint(dep, hso), "GS012")  # nothing says how long it waits: not guessed
    (f,) = fired(lint(dep, hso, interceptor), "GS012")
    assert f.field.startswith(f"interceptor env {env_name[1]} ") and f.value == "20s"
    assert not fired(lint(*apply_fixes([dep, hso, interceptor], [f])), "GS012")
