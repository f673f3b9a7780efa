"""KEDA's ScaledObject validating webhook (``vscaledobject.kb.io``), per KEDA version, for the test API server.

Ported from kedacore/keda ``apis/keda/v1alpha1/scaledobject_webhook.go`` (validateWorkload and its
verify* functions), ``scaledobject_types.go`` (CheckReplicaCountBoundsAreValid, CheckFallbackValid)
and ``scaletriggers_types.go`` (ValidateTriggers); its table tests are ported in
tests/test_admission_keda.py. Which rules a version enforces:

- verifyHpas (one autoscaler per workload; transfer-hpa-ownership from 2.11, kedacore/keda#4537),
  verifyScaledObjects, verifyCPUMemoryScalers, verifyTriggers: every supported version (>= 2.11).
- verifyFallback rejects from 2.17.0 (before it only logged; kedacore/keda#5962 was never merged).
  2.17.0 counts only an explicit ``metricType: AverageValue`` (kedacore/keda#6696); 2.17.1 reads an
  empty metricType as AverageValue (kedacore/keda#6702); 2.18 accepts Value too (kedacore/keda#6655).
- verifyReplicaCount rejects from 2.20.0 (kedacore/keda#7562; before it only logged).
- verifyName (63-character names) from 2.20.0.

Use: ``server.admission.append(KedaWebhook("2.20.2"))``; the ``apiserver`` fixture installs one at
the pinned KEDA version as ``apiserver.keda_webhook`` (set ``.version`` to test another).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.admission import deny
from tests.support.apiserver import AdmissionRequest, ApiError

WEBHOOK = "vscaledobject.kb.io"
TRANSFER = "scaledobject.keda.sh/transfer-hpa-ownership"
HPA_VALIDATION = "validations.keda.sh/hpa-ownership"
MAX_NAME = 63
DEFAULT_HPA_MIN = 1
DEFAULT_HPA_MAX = 100


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lstrip("v").split("-")[0].split(".")]
    return ([*parts, 0, 0, 0])[0], ([*parts, 0, 0, 0])[1], ([*parts, 0, 0, 0])[2]


def _quantity(value: Any) -> float:
    from kubectl_gpuscale.autoscale.hpa import quantity

    try:
        return float(quantity(value))
    except (TypeError, ValueError):
        return 0.0


def gvk_string(api_version: str | None, kind: str | None) -> str:
    """ParseGVKR's GVKString (apis/keda/v1alpha1/gvkr.go): ``group/version.Kind``, defaults apps/v1 Deployment."""
    api = api_version or "apps/v1"
    group, _, version = api.rpartition("/")
    return f"{group}/{version}.{kind or 'Deployment'}"


def hpa_name(so: Mapping[str, Any]) -> str:
    """getHpaName (scaledobject_webhook.go): advanced.horizontalPodAutoscalerConfig.name, else keda-hpa-<name>."""
    config = ((so.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    return str(config.get("name") or f"keda-hpa-{(so.get('metadata') or {}).get('name')}")


class KedaWebhook:
    """The ScaledObject webhook of one KEDA version; an `AdmissionHook`."""

    def __init__(self, version: str = "2.20.2") -> None:
        self.version = version

    def at_least(self, text: str) -> bool:
        """Whether the configured KEDA version is ``text`` or later."""
        return _version(self.version) >= _version(text)

    def __call__(self, req: AdmissionRequest) -> None:
        if req.group != "keda.sh" or req.kind != "ScaledObject":
            return
        if req.operation == "UPDATE" and req.old is not None and self._removing_finalizer(req.obj, req.old):
            return  # ValidateUpdate: isRemovingFinalizer skips validation
        for check in (
            self.verify_name,
            self.verify_replica_count,
            self.verify_fallback,
            self.verify_triggers,
            self.verify_scaled_objects,
            self.verify_hpas,
        ):
            message = check(req)
            if message:
                raise deny(WEBHOOK, message)
        self.verify_cpu_memory_scalers(req)

    @staticmethod
    def _removing_finalizer(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
        finalizers = len((new.get("metadata") or {}).get("finalizers") or [])
        old_finalizers = len((old.get("metadata") or {}).get("finalizers") or [])
        return finalizers < old_finalizers and new.get("spec") == old.get("spec")

    # -- scaledobject_webhook.go verifyName (v2.20.0+) ---------------------------------------------

    def verify_name(self, req: AdmissionRequest) -> str | None:
        """verifyName: the SO name and the derived HPA name are label values (<= 63 characters)."""
        if not self.at_least("2.20.0"):
            return None
        name = str(req.obj["metadata"].get("name") or "")
        if len(name) > MAX_NAME:
            return (
                f'scaledobject name "{name}" is {len(name)} characters long; must be no more than {MAX_NAME} '
                f'characters because it is used as the "scaledobject.keda.sh/name" label value'
            )
        hpa = hpa_name(req.obj)
        if len(hpa) > MAX_NAME:
            return (
                f'HPA name "{hpa}" derived from scaledobject is {len(hpa)} characters long; must be no more '
                f"than {MAX_NAME} characters; set spec.advanced.horizontalPodAutoscalerConfig.name to a shorter "
                f"name or shorten the scaledobject name"
            )
        return None

    # -- scaledobject_types.go CheckReplicaCountBoundsAreValid, via verifyReplicaCount (v2.20.0+) ----

    def verify_replica_count(self, req: AdmissionRequest) -> str | None:
        """verifyReplicaCount: min (GetHPAMinReplicas when set) <= max (default 100); idle < min."""
        if not self.at_least("2.20.0"):
            return None
        spec = req.obj.get("spec") or {}
        minimum = 0
        if spec.get("minReplicaCount") is not None:
            minimum = max(int(spec["minReplicaCount"]), 0) or DEFAULT_HPA_MIN
        maximum = int(spec["maxReplicaCount"]) if spec.get("maxReplicaCount") is not None else DEFAULT_HPA_MAX
        if minimum > maximum:
            return f"MinReplicaCount={minimum} must be less than MaxReplicaCount={maximum}"
        idle = spec.get("idleReplicaCount")
        if idle is not None and int(idle) >= minimum:
            return f"IdleReplicaCount={int(idle)} must be less than MinReplicaCount={minimum}"
        return None

    # -- scaledobject_types.go CheckFallbackValid, via verifyFallback (v2.17.0+) ---------------------

    def verify_fallback(self, req: AdmissionRequest) -> str | None:
        """verifyFallback: non-negative counts; a non cpu/memory trigger of an accepted metric type."""
        spec = req.obj.get("spec") or {}
        fallback = spec.get("fallback")
        if not fallback or not self.at_least("2.17.0"):
            return None
        threshold, replicas = int(fallback.get("failureThreshold") or 0), int(fallback.get("replicas") or 0)
        if threshold < 0 or replicas < 0:
            return (
                f"FailureThreshold={threshold} & Replicas={replicas} must both be greater than or equal to 0"
            )
        modifiers = (spec.get("advanced") or {}).get("scalingModifiers") or {}
        if any(modifiers.values()):
            if modifiers.get("metricType") == "Value":
                return (
                    "when using ScalingModifiers, ScaledObject.Spec.Advanced.ScalingModifiers.MetricType must "
                    "be AverageValue to have fallback enabled"
                )
            return None
        accepted = {"AverageValue", "Value"} if self.at_least("2.18.0") else {"AverageValue"}
        implicit = "AverageValue" if self.at_least("2.17.1") else ""
        for trigger in spec.get("triggers") or []:
            if trigger.get("type") in ("cpu", "memory"):
                continue
            if (trigger.get("metricType") or implicit) in accepted:
                return None
        return (
            "at least one trigger (that is not cpu or memory) has to have the `AverageValue` type for the "
            "fallback to be enabled"
        )

    # -- scaletriggers_types.go ValidateTriggers, via verifyTriggers --------------------------------

    @staticmethod
    def verify_triggers(req: AdmissionRequest) -> str | None:
        """ValidateTriggers: useCachedMetrics not on cpu/memory/cron; trigger names unique."""
        seen: set[str] = set()
        for trigger in (req.obj.get("spec") or {}).get("triggers") or []:
            if trigger.get("useCachedMetrics") and trigger.get("type") in ("cpu", "memory", "cron"):
                return f'property "useCachedMetrics" is not supported for "{trigger.get("type")}" scaler'
            name = trigger.get("name")
            if name:
                if name in seen:
                    return f'triggerName "{name}" is defined multiple times in the ScaledObject, but it must be unique'
                seen.add(name)
        return None

    # -- scaledobject_webhook.go verifyScaledObjects -----------------------------------------------

    @staticmethod
    def verify_scaled_objects(req: AdmissionRequest) -> str | None:
        """verifyScaledObjects: no other SO on the same workload (same GVK) or with the same HPA name."""
        meta = req.obj["metadata"]
        ref = (req.obj.get("spec") or {}).get("scaleTargetRef") or {}
        mine = gvk_string(ref.get("apiVersion"), ref.get("kind"))
        my_hpa = hpa_name(req.obj)
        for other in req.server.objects("keda.sh/v1alpha1", "ScaledObject", meta.get("namespace")):
            if other["metadata"]["name"] == meta.get("name"):
                continue
            oref = (other.get("spec") or {}).get("scaleTargetRef") or {}
            if gvk_string(oref.get("apiVersion"), oref.get("kind")) == mine and oref.get("name") == ref.get(
                "name"
            ):
                return (
                    f"the workload '{oref.get('name')}' of type '{mine}' is already managed by the ScaledObject "
                    f"'{other['metadata']['name']}'"
                )
            if hpa_name(other) == my_hpa:
                return (
                    f"the HPA '{my_hpa}' is already managed by the ScaledObject '{other['metadata']['name']}'"
                )
        return None

    # -- scaledobject_webhook.go verifyHpas -------------------------------------------------------

    def verify_hpas(self, req: AdmissionRequest) -> str | None:
        """verifyHpas: an HPA on the same workload blocks the SO unless owned by it, opted out
        (validations.keda.sh/hpa-ownership: "false"), or transferred (annotation + name, >= 2.11)."""
        meta = req.obj["metadata"]
        ref = (req.obj.get("spec") or {}).get("scaleTargetRef") or {}
        mine = gvk_string(ref.get("apiVersion"), ref.get("kind"))
        annotations = meta.get("annotations") or {}
        config = ((req.obj.get("spec") or {}).get("advanced") or {}).get(
            "horizontalPodAutoscalerConfig"
        ) or {}
        for hpa in req.server.objects("autoscaling/v2", "HorizontalPodAutoscaler", meta.get("namespace")):
            hmeta = hpa["metadata"]
            if (hmeta.get("annotations") or {}).get(HPA_VALIDATION) == "false":
                continue
            href = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if gvk_string(href.get("apiVersion"), href.get("kind")) != mine or href.get("name") != ref.get(
                "name"
            ):
                continue
            if any(
                o.get("kind") == "ScaledObject" and o.get("name") == meta.get("name")
                for o in hmeta.get("ownerReferences") or []
            ):
                continue
            if annotations.get(TRANSFER) == "true" and self.at_least("2.11.0"):
                if config.get("name") == hmeta["name"]:
                    continue
                return (
                    f"the existing hpa '{hmeta['name']}' for workload '{ref.get('name')}' of type '{mine}' must "
                    f"be specified by name in advanced settings to enable ownership transfer"
                )
            return f"the workload '{ref.get('name')}' of type '{mine}' is already managed by the hpa '{hmeta['name']}'"
        return None

    # -- scaledobject_webhook.go verifyCPUMemoryScalers -------------------------------------------

    def verify_cpu_memory_scalers(self, req: AdmissionRequest) -> None:
        """verifyCPUMemoryScalers (skipped on dry run): a cpu/memory trigger needs the resource's request or
        limit on the containers (containerName filters) or a container default in a LimitRange; with only
        cpu/memory triggers minReplicaCount must not be 0. Deployment and StatefulSet targets only; a
        missing target is the webhook's NotFound."""
        if req.dry_run:
            return
        spec = req.obj.get("spec") or {}
        triggers = spec.get("triggers") or []
        if not any(t.get("type") in ("cpu", "memory") for t in triggers):
            return
        ns = req.obj["metadata"].get("namespace")
        ref = spec.get("scaleTargetRef") or {}
        gvk = gvk_string(ref.get("apiVersion"), ref.get("kind"))
        if gvk not in ("apps/v1.Deployment", "apps/v1.StatefulSet"):
            return
        kind = gvk.rsplit(".", 1)[1]
        workload = req.server.get_object("apps/v1", kind, str(ref.get("name")), ns)
        if workload is None:
            raise deny(
                WEBHOOK, f'{kind.lower()}s.apps "{ref.get("name")}" not found', code=404, reason="NotFound"
            )
        containers = ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []
        for trigger in triggers:
            resource = trigger.get("type")
            if resource not in ("cpu", "memory"):
                continue
            wanted = (trigger.get("metadata") or {}).get("containerName")
            for c in containers:
                if wanted and c.get("name") != wanted:
                    continue
                res = c.get("resources") or {}
                values = [(res.get("requests") or {}).get(resource), (res.get("limits") or {}).get(resource)]
                if not any(
                    v is not None and _quantity(v) > 0 for v in values
                ) and not self._limit_range_default(req, ns, resource):
                    raise deny(
                        WEBHOOK,
                        f"the scaledobject has a {resource} trigger but the container "
                        f"{c.get('name')} doesn't have the {resource} request defined",
                    )
            only_resource = all(t.get("type") in ("cpu", "memory") for t in triggers)
            if only_resource and not spec.get("minReplicaCount"):
                raise deny(
                    WEBHOOK,
                    "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero "
                    "doesn't work in this case)",
                )

    @staticmethod
    def _limit_range_default(req: AdmissionRequest, ns: str | None, resource: str) -> bool:
        """isContainerResourceLimitSet: a LimitRange item of type Container with a default (request) > 0."""
        for lr in req.server.objects("v1", "LimitRange", ns):
            for item in (lr.get("spec") or {}).get("limits") or []:
                values = [
                    (item.get("defaultRequest") or {}).get(resource),
                    (item.get("default") or {}).get(resource),
                ]
                if item.get("type") == "Container" and any(
                    v is not None and _quantity(v) > 0 for v in values
                ):
                    return True
        return False


def install(server: Any, version: str = "2.20.2") -> KedaWebhook:
    """Add KEDA's ScaledObject webhook of ``version`` to a test API server; returns it."""
    hook = KedaWebhook(version)
    server.admission.append(hook)
    return hook


__all__ = ["WEBHOOK", "ApiError", "KedaWebhook", "gvk_string", "hpa_name", "install"]
