"""migrate-hpa over every real HPA manifest in shared/samples/manifests, paired with its workload
(INDEX.md). Plain YAML converts (or is refused with a reason) and every emitted object validates
against the real CRD / OpenAPI schema; templates and malformed files give one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_gpuscale.autoscale.convert import Options, convert_all
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.manifests import load
from tests.support.paths import MANIFESTS
from tests.support.schemas import assert_valid

# INDEX.md "HPA -> target pairing"; None: the target is not in the corpus.
PAIRS: dict[str, str | None] = {
    "hpa_k8s-examples_1": "deploy_k8s-examples_1",
    "hpa_k8s-examples_2": "deploy_k8s-examples_1",
    "hpa_gcp-accel-platforms_1": "deploy_gcp-accel-platforms_1",
    "hpa_gcp-accel-platforms_2": "deploy_gcp-accel-platforms_1",
    "hpa_gcp-accel-platforms_3": "deploy_gcp-accel-platforms_2",
    "hpa_gcp-accel-platforms_4": "deploy_gcp-accel-platforms_2",
    "hpa_gke-samples_1": "deploy_gke-samples_1",
    "hpa_gke-samples_2": "deploy_gke-samples_2",
    "hpa_gke-samples_3": "deploy_gke-samples_3",
    "hpa_gke-samples_4": "deploy_gke-samples_4",
    "hpa_production-stack_1": "deploy_production-stack_1",
    "hpa_production-stack_2": None,
    "hpa_llmd-wva_1": "deploy_llmd-wva_1",
    "hpa_llmd-wva_2": None,
    "hpa_llmd-wva_3": None,
    "hpa_triton_1": "deploy_triton_1",
    "hpa_triton_2": "deploy_triton_2",
    "hpa_triton_3": "deploy_triton_2",
    "hpa_opea-genaiinfra_1": "deploy_opea-genaiinfra_1",
    "hpa_opea-genaiinfra_2": "deploy_opea-genaiinfra_2",
    "hpa_opea-genaiinfra_3": None,
    "hpa_ollama-helm_1": "deploy_ollama-helm_1",
    "hpa_ai-on-gke_1": "deploy_ai-on-gke_1",
    "hpa_ai-on-gke_2": "deploy_ai-on-gke_1",
    "hpa_ai-on-gke_3": "deploy_ai-on-gke_3",
    "hpa_nim-deploy_1": "deploy_nim-deploy_1",
    "hpa_aibrix_1": "deploy_aibrix_1",
    "hpa_suse-ai-stack_1": None,
    "hpa_suse-ai-stack_2": None,
    "hpa_ollama-app_1": "deploy_ollama-app_1",
    "hpa_ollama-app_2": "deploy_ollama-app_1",
}

# What each plain-YAML pair must give: migrate (with the first trigger's metric), skip, or an error fragment.
EXPECTED: dict[str, tuple[str, str]] = {
    "hpa_k8s-examples_1": ("migrate", "vllm:num_requests_waiting"),
    "hpa_k8s-examples_2": ("migrate", "vllm:num_requests_waiting"),
    "hpa_gcp-accel-platforms_1": ("error", "not a valid Kubernetes name"),
    "hpa_gcp-accel-platforms_2": ("error", "not a valid Kubernetes name"),
    "hpa_gcp-accel-platforms_3": ("skip", "no accelerator request"),
    "hpa_gcp-accel-platforms_4": ("error", "no scaleTargetRef"),
    "hpa_gke-samples_1": ("migrate", "vllm:num_requests_waiting"),
    "hpa_gke-samples_2": ("migrate", "ts_queue_latency_microseconds"),
    "hpa_gke-samples_4": ("migrate", "tgi_queue_size"),
    "hpa_llmd-wva_1": ("migrate", "wva_desired_replicas"),
    "hpa_opea-genaiinfra_1": ("migrate", "tgi_queue_size"),
    "hpa_aibrix_1": ("skip", "no accelerator request"),
    "hpa_ollama-app_1": ("skip", "no accelerator request"),
    "hpa_ollama-app_2": ("skip", "no accelerator request"),
    "hpa_suse-ai-stack_1": ("error", "not in the input"),
}


def _files(hpa: str) -> list[str]:
    target = PAIRS[hpa]
    return [str(MANIFESTS / f"{hpa}.yaml")] + ([str(MANIFESTS / f"{target}.yaml")] if target else [])


def _loads(paths: list[str]) -> bool:
    try:
        load(paths)
    except InputError:
        return False
    return True


def test_every_hpa_sample_is_covered() -> None:
    on_disk = {p.stem for p in Path(MANIFESTS).glob("hpa_*.yaml")}
    assert on_disk == set(PAIRS)
    plain = {h for h in PAIRS if _loads([str(MANIFESTS / f"{h}.yaml")])}
    assert plain - {"hpa_opea-genaiinfra_1"} <= set(EXPECTED) | {"hpa_production-stack_1"}


@pytest.mark.parametrize("hpa", sorted(PAIRS))
def test_sample(hpa: str) -> None:
    paths = _files(hpa)
    if not _loads(paths):
        with pytest.raises(InputError) as info:
            load(paths)
        line = info.value.line()
        assert "\n" not in line and ("template" in line or "cannot parse" in line)
        assert ".yaml:" in line  # names file:line
        return
    objects = [item.obj for item in load(paths)]
    results = convert_all(objects, Options(kv_cache=0.8, gpu_util=80, pdb=True))
    assert len(results) == 1
    result = results[0]
    action, detail = EXPECTED[hpa]
    assert result.action == action, result.why
    if action == "migrate":
        assert result.metric.startswith(detail)
        assert result.objects
        for obj in result.objects:
            assert_valid(obj)
        so = result.objects[0]
        assert so["kind"] == "ScaledObject"
        assert so["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"
        assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == result.name
        for trigger in so["spec"]["triggers"]:
            assert "metricName" not in trigger["metadata"]
            assert trigger["metadata"]["ignoreNullValues"] == "false"
            assert trigger["metadata"]["query"].startswith("sum(")
        assert so["spec"]["fallback"]["replicas"] >= 1
    else:
        assert detail in result.why


def test_reference_scaledobject_semantics_match() -> None:
    """The upstream llm-d pair: HPA on wva_desired_replicas and its hand-written ScaledObject agree."""
    objects = [i.obj for i in load(_files("hpa_llmd-wva_1"))]
    ours = convert_all(objects, Options())[0].objects[0]
    reference = load([str(MANIFESTS / "scaledobject_llmd-wva_1.yaml")])[0].obj
    ref_trigger = reference["spec"]["triggers"][0]
    our_trigger = ours["spec"]["triggers"][0]
    assert our_trigger["metadata"]["threshold"] == ref_trigger["metadata"]["threshold"]
    assert "wva_desired_replicas" in our_trigger["metadata"]["query"]
    assert 'variant_name="vllme-deployment-va"' in our_trigger["metadata"]["query"]
    assert ours["spec"]["scaleTargetRef"]["name"] == reference["spec"]["scaleTargetRef"]["name"]
    assert ours["spec"]["maxReplicaCount"] == reference["spec"]["maxReplicaCount"]


@pytest.mark.parametrize("hpa", ["hpa_triton_1", "hpa_ai-on-gke_1", "hpa_suse-ai-stack_2", "hpa_llmd-wva_3"])
def test_bad_samples_through_the_real_executable(hpa: str) -> None:
    exe = Path(sys.executable).parent / "kubectl-gpuscale"
    proc = subprocess.run(
        [str(exe), "migrate-hpa", "-f", str(MANIFESTS / f"{hpa}.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
