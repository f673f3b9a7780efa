"""doctor GS025: a ScaledObject scales on engine metrics that the engine, as started, never exports.

vLLM: ``--disable-log-stats`` sets ``log_stats=False`` and no stat logger (Prometheus included) is
created (vllm-project/vllm vllm/v1/engine/async_llm.py `AsyncLLM.__init__`, vllm/v1/metrics/loggers.py
`StatLoggerManager`), so /metrics carries no ``vllm:*`` series. SGLang: metrics only with
``--enable-metrics`` (sgl-project/sglang python/sglang/srt/server_args.py `enable_metrics`).
The workload and its ScaledObject are the real sample pair, converted by migrate-hpa.
"""

from __future__ import annotations

import copy
from typing import Any

from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.doctor.rules import run
from kubectl_gpuscale.manifests import load
from tests.support.paths import MANIFESTS


def _pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """deploy_k8s-examples_1 (vLLM, 1 GPU) and the ScaledObject migrate-hpa builds from its real HPA."""
    objs = [
        copy.deepcopy(i.obj)
        for name in ("deploy_k8s-examples_1", "hpa_k8s-examples_1")
        for i in load([str(MANIFESTS / f"{name}.yaml")])
    ]
    deploy = next(o for o in objs if o["kind"] == "Deployment")
    so = conv.convert_all(objs, conv.Options(namespace="default", kv_cache=0.8))[0].objects[0]
    return deploy, so


def _with_args(deploy: dict[str, Any], *extra: str) -> dict[str, Any]:
    out = copy.deepcopy(deploy)
    container = out["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*(container.get("args") or []), *extra]
    return out


def test_gs025_fires_on_each_trigger_reading_vllm_metrics_with_disable_log_stats() -> None:
    deploy, so = _pair()
    findings = [
        f for f in run([_with_args(deploy, "--disable-log-stats"), so], from_files=True) if f.rule == "GS025"
    ]
    reading = [
        f"spec.triggers[{i}].metadata.query"
        for i, t in enumerate(so["spec"]["triggers"])
        if "vllm" in t["metadata"].get("query", "")
    ]
    assert len(reading) >= 2 and [f.field for f in findings] == reading
    assert all(f.severity == "error" and "--disable-log-stats" in f.message for f in findings)
    assert "vllm:num_requests_waiting" in findings[0].value
    assert findings[0].extra["flag"] == "--disable-log-stats"


def test_gs025_quiet_when_the_engine_exports_its_metrics() -> None:
    deploy, so = _pair()
    assert not [f for f in run([deploy, so], from_files=True) if f.rule == "GS025"]


def _vllm(tag: str) -> dict[str, Any]:
    deploy, _ = _pair()
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = f"vllm/vllm-openai:{tag}"
    return deploy


def _kv_so(so: dict[str, Any], query: str) -> dict[str, Any]:
    out = copy.deepcopy(so)
    out["spec"]["triggers"] = [
        {
            "type": "prometheus",
            "name": "kv",
            "metadata": {
                "serverAddress": "http://prometheus:9090",
                "query": query,
                "threshold": "0.8",
                "ignoreNullValues": "false",
            },
        }
    ]
    return out


def test_gs006_judges_the_kv_gauge_name_by_the_engine_version_in_the_image_tag() -> None:
    """vllm/v1/metrics/loggers.py: gpu_cache_usage_perc until 0.9.1, kv_cache_usage_perc from 0.9.2 (old name
    deprecated there, hidden in 0.11, removed in 0.12, #29330)."""
    _, so = _pair()
    old = _kv_so(so, 'sum(vllm:gpu_cache_usage_perc{namespace="default"})')
    new = _kv_so(so, 'sum(vllm:kv_cache_usage_perc{namespace="default"})')

    def gs006(tag: str, scaled: dict[str, Any]) -> list[Any]:
        return [f for f in run([_vllm(tag), scaled], from_files=True) if f.rule == "GS006"]

    assert not gs006("v0.8.5", old)  # right for 0.8.5: no rename to report
    (f,) = gs006("v0.8.5", new)  # the new name does not exist yet in 0.8.5
    assert (
        "0.8.5" in f.message
        and "vllm:gpu_cache_usage_perc" in f.message
        and f.extra["current"] == "vllm:gpu_cache_usage_perc"
    )
    (f,) = gs006("v0.12.0", old)
    assert "0.12.0" in f.message and f.extra["current"] == "vllm:kv_cache_usage_perc"
    assert not gs006("v0.12.0", new)
    (f,) = gs006("latest", old)  # tag names no version: the rename is reported as before
    assert "renamed" in f.message
