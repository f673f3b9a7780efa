"""A HorizontalPodAutoscaler read into one shape, whatever its apiVersion (v1, v2beta1, v2beta2, v2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.errors import InputError

HPA_KIND = "HorizontalPodAutoscaler"
HPA_DEFAULT_CPU = 80
HPA_DEFAULT_SCALE_DOWN_WINDOW = 300

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``504m``, ``4``, ``"30000"``, ``1Gi``) as a float. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def number_text(value: float) -> str:
    """A threshold as KEDA wants it: a string, without a trailing ``.0``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class MetricSpec:
    """One HPA metric. `type` is Resource, ContainerResource, Pods, Object or External."""

    type: str
    name: str
    target_type: str
    target: float | None
    selector: Mapping[str, str] = field(default_factory=dict)
    described: Mapping[str, str] = field(default_factory=dict)
    container: str | None = None

    def describe(self) -> str:
        """Short text, e.g. ``cpu 80%`` or ``Pods vllm:num_requests_waiting avg 10``."""
        if self.type in ("Resource", "ContainerResource"):
            unit = "%" if self.target_type == "Utilization" else ""
            value = number_text(self.target) if self.target is not None else "?"
            return f"{self.name} {value}{unit}"
        kind = {"AverageValue": "avg", "Value": "value", "Utilization": "util"}.get(self.target_type, "")
        value = number_text(self.target) if self.target is not None else "?"
        return f"{self.type} {self.name} {kind} {value}".strip()


@dataclass(frozen=True)
class HPA:
    """An HPA in the autoscaling/v2 shape."""

    name: str
    namespace: str | None
    target_api_version: str
    target_kind: str
    target_name: str
    min_replicas: int | None
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Mapping[str, Any] | None
    raw: Mapping[str, Any]
    current_replicas: int | None = None

    @property
    def ref(self) -> str:
        """``ns/name`` or ``name``."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def _target(metric_block: Mapping[str, Any], legacy: bool) -> tuple[str, float | None]:
    if legacy:
        for key, kind in (
            ("targetAverageUtilization", "Utilization"),
            ("targetAverageValue", "AverageValue"),
            ("targetValue", "Value"),
        ):
            if key in metric_block:
                return kind, quantity(metric_block[key])
        return "AverageValue", None
    target = metric_block.get("target") or {}
    kind = str(target.get("type") or "")
    for key, implied in (
        ("averageUtilization", "Utilization"),
        ("averageValue", "AverageValue"),
        ("value", "Value"),
    ):
        if key in target and (kind == implied or (kind == "Utilization" and key == "averageValue")):
            return kind or implied, quantity(target[key])
    for key, implied in (
        ("averageUtilization", "Utilization"),
        ("averageValue", "AverageValue"),
        ("value", "Value"),
    ):
        if key in target:
            return kind or implied, quantity(target[key])
    return kind or "AverageValue", None


def _metric(entry: Mapping[str, Any], legacy: bool, where: str) -> MetricSpec:
    mtype = str(entry.get("type") or "")
    key = {
        "Resource": "resource",
        "ContainerResource": "containerResource",
        "Pods": "pods",
        "Object": "object",
        "External": "external",
    }.get(mtype)
    if key is None or not isinstance(entry.get(key), Mapping):
        raise InputError(
            f"cannot read {where}",
            f"metric type {mtype or '<none>'} is not one the HPA API knows",
            "use Resource, ContainerResource, Pods, Object or External",
        )
    block: Mapping[str, Any] = entry[key]
    try:
        target_type, target = _target(block, legacy)
    except ValueError as exc:
        raise InputError(f"cannot read {where}", str(exc), "fix the metric target") from None
    if mtype in ("Resource", "ContainerResource"):
        return MetricSpec(
            mtype, str(block.get("name") or ""), target_type, target, container=block.get("container")
        )
    if legacy:
        name = str(block.get("metricName") or "")
        selector = (block.get("metricSelector") or block.get("selector") or {}).get("matchLabels") or {}
    else:
        metric = block.get("metric") or {}
        name = str(metric.get("name") or "")
        selector = (metric.get("selector") or {}).get("matchLabels") or {}
    described = block.get("describedObject") or block.get("target") if mtype == "Object" else {}
    described = {k: str(v) for k, v in (described or {}).items() if k in ("apiVersion", "kind", "name")}
    if not name:
        raise InputError(f"cannot read {where}", f"the {mtype} metric has no name", "fix the metric")
    return MetricSpec(
        mtype, name, target_type, target, {str(k): str(v) for k, v in selector.items()}, described
    )


def parse_hpa(obj: Mapping[str, Any], where: str = "") -> HPA:
    """Read an HPA of any served apiVersion. Raises `InputError` naming it when it cannot be converted."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    prefix = f"{meta['namespace']}/" if meta.get("namespace") else ""
    label = f"HPA {prefix}{name}" + (f" ({where})" if where else "")
    if not name:
        raise InputError(f"cannot read {label}", "it has no metadata.name", "fix the manifest")
    if not _DNS.match(name) or len(name) > 253:
        raise InputError(
            f"cannot read {label}",
            f"{name!r} is not a valid Kubernetes name",
            "substitute the placeholders (kustomize/sed) before migrating",
        )
    api_version = str(obj.get("apiVersion") or "")
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise _malformed(label, "spec", "a mapping")
    ref = spec.get("scaleTargetRef") or {}
    if not isinstance(ref, Mapping):
        raise _malformed(label, "spec.scaleTargetRef", "a mapping")
    if not ref.get("name") or not ref.get("kind"):
        raise InputError(
            f"cannot read {label}",
            "it has no scaleTargetRef (a kustomize patch, not a whole HPA?)",
            "pass the rendered HPA (kustomize build) instead",
        )
    min_replicas, max_replicas = _replica_bounds(spec, label)
    metrics = _metrics(spec, api_version, label)
    status = obj.get("status") or {}
    current = status.get("currentReplicas") if isinstance(status, Mapping) else None
    return HPA(
        name,
        meta.get("namespace"),
        str(ref.get("apiVersion") or "apps/v1"),
        str(ref["kind"]),
        str(ref["name"]),
        min_replicas,
        max_replicas,
        tuple(metrics),
        _behavior(spec.get("behavior"), label),
        obj,
        current if isinstance(current, int) and not isinstance(current, bool) else None,
    )


def _replica_bounds(spec: Mapping[str, Any], label: str) -> tuple[int | None, int]:
    """(minReplicas or None, maxReplicas), integers in the range the HPA API accepts."""
    if "maxReplicas" not in spec:
        raise InputError(f"cannot read {label}", "it has no maxReplicas", "fix the manifest")
    try:
        if isinstance(spec["maxReplicas"], bool) or isinstance(spec.get("minReplicas"), bool):
            raise TypeError("a boolean")
        max_replicas = int(spec["maxReplicas"])
        min_replicas = int(spec["minReplicas"]) if spec.get("minReplicas") is not None else None
    except (TypeError, ValueError):
        raise InputError(
            f"cannot read {label}", "minReplicas/maxReplicas are not integers", "render the template first"
        ) from None
    if max_replicas < 1 or (min_replicas is not None and min_replicas < 0):
        raise InputError(
            f"cannot read {label}",
            f"maxReplicas {max_replicas} / minReplicas {min_replicas} out of "
            "range (the HPA API needs maxReplicas >= 1, minReplicas >= 0)",
            "fix the manifest",
        )
    return min_replicas, max_replicas


def _metrics(spec: Mapping[str, Any], api_version: str, label: str) -> list[MetricSpec]:
    """The metrics it scales on: autoscaling/v1's CPU target, or each entry of v2's spec.metrics."""
    if api_version.endswith("/v1"):
        cpu = spec.get("targetCPUUtilizationPercentage", HPA_DEFAULT_CPU)
        return [MetricSpec("Resource", "cpu", "Utilization", quantity(cpu))]
    legacy = api_version.endswith("v2beta1")
    raw_metrics = spec.get("metrics")
    if not raw_metrics:
        raise InputError(
            f"cannot read {label}",
            "it has no metrics",
            "add the metric it scales on, or pass --query for the new trigger",
        )
    if not isinstance(raw_metrics, list):
        raise _malformed(label, "spec.metrics", "a list")
    metrics: list[MetricSpec] = []
    for i, entry in enumerate(raw_metrics):
        if not isinstance(entry, Mapping):
            raise InputError(f"cannot read {label}", f"metric {i} is not a mapping", "fix the manifest")
        try:
            metrics.append(_metric(entry, legacy, f"{label} metric {i}"))
        except (AttributeError, TypeError):
            raise _malformed(
                label, f"spec.metrics[{i}]", "an HPA metric (a field has the wrong type)"
            ) from None
    return metrics


def _malformed(label: str, field: str, expected: str) -> InputError:
    return InputError(
        f"cannot read {label}",
        f"{field} is not {expected}",
        "fix the manifest (render templates first; kubectl explain hpa.spec)",
    )


_POLICY_TYPES = ("Pods", "Percent")
_SELECT_POLICIES = ("Max", "Min", "Disabled")


def _int_in(value: Any, low: int, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def _check_policies(policies: Any, label: str, field: str) -> None:
    """A direction's scaling policies: a list of {type: Pods|Percent, value > 0, periodSeconds 1-1800}."""
    if policies is None:
        return
    if not isinstance(policies, list):
        raise _malformed(label, f"{field}.policies", "a list")
    for i, policy in enumerate(policies):
        if not (
            isinstance(policy, Mapping)
            and policy.get("type") in _POLICY_TYPES
            and _int_in(policy.get("value"), 1)
            and _int_in(policy.get("periodSeconds"), 1, 1800)
        ):
            raise _malformed(
                label, f"{field}.policies[{i}]", "{type: Pods|Percent, value: > 0, periodSeconds: 1-1800}"
            )


def _behavior(raw: Any, label: str) -> Mapping[str, Any] | None:
    """The HPA's ``behavior`` checked against the API's rules (it is carried into the ScaledObject)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _malformed(label, "spec.behavior", "a mapping")
    out: dict[str, Any] = {}
    for direction, rules in raw.items():
        if direction not in ("scaleUp", "scaleDown"):
            raise _malformed(label, f"spec.behavior.{direction}", "a known field (scaleUp, scaleDown)")
        if rules is None:
            continue
        field = f"spec.behavior.{direction}"
        if not isinstance(rules, Mapping):
            raise _malformed(label, field, "a mapping")
        window = rules.get("stabilizationWindowSeconds")
        if window is not None and not _int_in(window, 0, 3600):
            raise _malformed(label, f"{field}.stabilizationWindowSeconds", "an integer 0-3600")
        if rules.get("selectPolicy") is not None and rules.get("selectPolicy") not in _SELECT_POLICIES:
            raise _malformed(label, f"{field}.selectPolicy", "Max, Min or Disabled")
        _check_policies(rules.get("policies"), label, field)
        out[direction] = {k: v for k, v in rules.items() if v is not None}
    return out


RESTORED_METADATA = ("name", "namespace", "labels", "annotations", "ownerReferences", "finalizers")
"""The metadata a rollback puts back: what users and other controllers own (KEDA's adoption replaces it all)."""


def original_record(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a rollback restores, exactly: apiVersion, kind, spec, and the metadata of `RESTORED_METADATA`.

    Labels and annotations are kept whole (kubectl's last-applied-configuration too, so a later
    `kubectl apply` still computes the right patch), with ownerReferences and finalizers: KEDA's
    adoption rewrites the HPA's metadata from the ScaledObject (kedacore/keda controllers/keda/hpa.go,
    newHPAForScaledObject / updateHPAIfNeeded), so this is the only copy left in the cluster.
    """
    meta = obj.get("metadata") or {}
    keep_meta: dict[str, Any] = {"name": meta.get("name")}
    for key in RESTORED_METADATA[1:]:
        if meta.get(key):
            keep_meta[key] = meta[key]
    return {
        "apiVersion": obj.get("apiVersion", "autoscaling/v2"),
        "kind": HPA_KIND,
        "metadata": keep_meta,
        "spec": obj.get("spec") or {},
    }
