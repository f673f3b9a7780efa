"""The versioned facts module and what migrate-hpa emits for each KEDA version (issue 14, items 1, 2, 8).

Upstream sources read for these tests (kedacore/keda):
- pkg/scaling/executor/scale_scaledobjects.go, RequestScale before v2.17: the case
  ``!isActive && isError && scaledObject.Spec.Fallback != nil && Fallback.Replicas != 0`` calls
  doFallbackScaling at once (no failureThreshold, from 0 replicas too); removed by #6520 (2.17.0).
- pkg/fallback/fallback.go GetMetricsWithFallback: the failureThreshold path through the HPA.
- apis/keda/v1alpha1/scaledobject_types.go CheckFallbackValid (2.17.1: an empty metricType counts
  as AverageValue); #6696 shows 2.17.0's webhook rejecting a fallback without metricType.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gpuscale.autoscale import convert as conv
from kubectl_gpuscale.facts import Targets, parse_targets, parse_version
from kubectl_gpuscale.facts.keda import FACTS, fallback_plan, webhook_fallback_rejection
from kubectl_gpuscale.facts.versions import crd_fields
from tests.support.paths import SHARED
from tests.support.schemas import assert_valid
from tests.test_autoscale_convert import _deploy, _hpa

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "llm", "namespace": "ml"},
    "spec": {"selector": {"app": "llm"}, "ports": [{"port": 8000}]},
}


def _targets(text: str) -> Targets:
    return Targets().with_versions(parse_targets(text), "--target-versions")


def _so(targets: Targets, **options: Any) -> dict[str, Any]:
    result = conv.convert_all([_hpa(), _deploy(["m"]), SERVICE], conv.Options(targets=targets, **options))[0]
    assert result.ok, result.why
    so = next(o for o in result.objects if o["kind"] == "ScaledObject")
    assert_valid(so)
    return so


def test_versions_parse_and_compare_numerically() -> None:
    assert parse_version("v2.9") < parse_version("2.10.0") < parse_version("knative-v2.10.1")
    assert str(parse_version("v1.33.2-gke.100")) == "1.33.2"
    assert parse_targets("keda=2.16.1, keda-http=0.13") == {
        "keda": parse_version("2.16.1"),
        "keda-http": parse_version("0.13.0"),
    }
    for bad in ("keda", "kafka=1.0", "keda=latest"):
        with pytest.raises(ValueError):
            parse_targets(bad)


def test_every_fact_names_its_upstream_source() -> None:
    for fact in FACTS.values():
        assert fact.source and (fact.since or fact.until), fact.key


@pytest.mark.parametrize("keda", ["2.11.0", "2.14.1", "2.16.1"])
def test_item1_no_fallback_on_scale_to_zero_for_keda_before_2_17(keda: str) -> None:
    """KEDA <= 2.16's RequestScale scales straight to fallback.replicas on a query error; at 0 replicas the
    pod-scoped query always errors, so a fallback wakes a replica every poll (a cold start per cycle)."""
    so = _so(_targets(f"keda={keda}"), scale_to_zero=True)
    assert so["spec"]["minReplicaCount"] == 0
    assert "fallback" not in so["spec"]


def test_item1_scale_to_zero_keeps_fallback_where_keda_stays_at_zero() -> None:
    """2.17 (#6520) and 2.18 wait for failureThreshold through the HPA and do not wake a ScaledObject at 0."""
    so = _so(_targets("keda=2.17.1"), scale_to_zero=True)
    assert so["spec"]["fallback"]["replicas"] >= 1


def test_item1_note_says_why_the_fallback_is_left_out() -> None:
    result = conv.convert_all(
        [_hpa(), _deploy(["m"]), SERVICE], conv.Options(targets=_targets("keda=2.16.1"), scale_to_zero=True)
    )[0]
    assert any("no fallback: KEDA 2.16.1" in n for n in result.notes)


def test_item1_min_one_keeps_its_fallback_on_old_keda() -> None:
    so = _so(_targets("keda=2.16.1"))
    assert so["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 3}


def test_item2_fallback_triggers_carry_an_explicit_metric_type() -> None:
    """KEDA 2.17.0's webhook counts only triggers with metricType written out (kedacore/keda#6696)."""
    so = _so(_targets("keda=2.17.0"), kv_cache=0.8)
    assert [t.get("metricType") for t in so["spec"]["triggers"]] == ["AverageValue", "AverageValue"]
    assert webhook_fallback_rejection(so, parse_version("2.17.0")) is None


def test_item2_the_2_17_0_webhook_rule_by_version() -> None:
    implicit = {
        "spec": {
            "fallback": {"failureThreshold": 3, "replicas": 2},
            "triggers": [{"type": "prometheus", "metadata": {}}],
        }
    }
    assert "AverageValue" in (webhook_fallback_rejection(implicit, parse_version("2.17.0")) or "")
    assert webhook_fallback_rejection(implicit, parse_version("2.17.1")) is None
    assert webhook_fallback_rejection(implicit, parse_version("2.16.1")) is None  # logged only before 2.17
    value = {
        "spec": {
            "fallback": {"failureThreshold": 3, "replicas": 2},
            "triggers": [{"type": "prometheus", "metricType": "Value", "metadata": {}}],
        }
    }
    assert webhook_fallback_rejection(value, parse_version("2.17.1"))
    assert webhook_fallback_rejection(value, parse_version("2.18.0")) is None


@pytest.mark.parametrize(
    ("keda", "behavior"),
    [("2.16.1", None), ("2.17.1", "currentReplicasIfHigher"), ("2.20.2", "currentReplicasIfHigher")],
)
def test_item8_fallback_behavior_by_version(keda: str, behavior: str | None) -> None:
    so = _so(_targets(f"keda={keda}"))
    assert so["spec"]["fallback"].get("behavior") == behavior


def test_item8_the_served_crd_schema_wins_over_the_version() -> None:
    """A 2.16 version label on a cluster whose CRD serves spec.fallback.behavior: the schema decides."""
    crd = yaml.safe_load(Path(SHARED, "schemas/keda/keda.sh_scaledobjects.yaml").read_text())
    fields = crd_fields(crd)
    assert "spec.fallback.behavior" in fields
    with_field = _targets("keda=2.16.1").with_fields("keda", fields)
    assert fallback_plan(with_field, 1).behavior == "currentReplicasIfHigher"
    without = _targets("keda=2.20.2").with_fields("keda", fields - {"spec.fallback.behavior"})
    assert fallback_plan(without, 1).behavior is None


def test_unknown_keda_version_is_cautious_at_zero() -> None:
    assert not fallback_plan(Targets(), 0).emit
    assert fallback_plan(Targets(), 1).emit


def test_value_only_triggers_get_no_fallback_before_2_18() -> None:
    """pkg/fallback/fallback.go isFallbackEnabled: AverageValue only (Value from 2.18, #6655); 2.17's webhook
    rejects a fallback with no AverageValue trigger, so none is emitted there."""
    hpa = _hpa(
        metrics=[
            {
                "type": "External",
                "external": {"metric": {"name": "my_queue"}, "target": {"type": "Value", "value": "4"}},
            }
        ]
    )
    deploy = _deploy(["m"])
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "example/server:1"
    deploy["spec"]["template"]["spec"]["containers"][0]["command"] = ["server"]
    for keda, emitted in (("2.17.1", False), ("2.18.0", True)):
        result = conv.convert_all([hpa, deploy], conv.Options(targets=_targets(f"keda={keda}"), force=True))[
            0
        ]
        assert result.ok, result.why
        so = result.objects[0]
        assert_valid(so)
        assert ("fallback" in so["spec"]) is emitted, keda
        assert webhook_fallback_rejection(so, parse_version(keda)) is None
