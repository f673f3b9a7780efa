"""An index over a snapshot of plain Kubernetes objects: workloads, who scales them, and the facts
the rules share (cold start, replicas range, pod template). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale import engines
from kubectl_gpuscale.autoscale.builders import HTTP_API, KEDA_API, KNATIVE_API
from kubectl_gpuscale.autoscale.convert import cold_start_estimate
from kubectl_gpuscale.autoscale.hpa import HPA_KIND
from kubectl_gpuscale.facts import Targets, pinned_targets
from kubectl_gpuscale.names import KEDA_HTTP_SKIP_SCALEDOBJECT, KEDA_TRANSFER_OWNERSHIP, namespace_of
from kubectl_gpuscale.units import optional_duration

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "LeaderWorkerSet")
KEDA_DEFAULT_MIN = 0
KEDA_DEFAULT_MAX = 100
HPA_DEFAULT_MIN = 1


def duration_seconds(value: Any) -> float | None:
    """A Go/Kubernetes duration (``600s``, ``10m``, ``1h30m``, ``500ms``) or a bare number of seconds; None
    when it cannot be read."""
    return optional_duration(value)


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata`` (or {})."""
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def ns_of(obj: Mapping[str, Any]) -> str:
    """The object's namespace; ``default`` when the manifest leaves it out (as kubectl would)."""
    return namespace_of(obj)


def name_of(obj: Mapping[str, Any]) -> str:
    """``metadata.name`` (or '')."""
    return str(meta(obj).get("name") or "")


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` (or {})."""
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def group_of(obj: Mapping[str, Any]) -> str:
    """The API group of an object ('' for core)."""
    api = str(obj.get("apiVersion") or "")
    return api.split("/")[0] if "/" in api else ""


def is_knative_service(obj: Mapping[str, Any]) -> bool:
    """A Knative Serving Service (not a core Service)."""
    return obj.get("kind") == "Service" and group_of(obj) == KNATIVE_API.split("/")[0]


def to_int(value: Any, default: int | None = None) -> int | None:
    """An int from an int or numeric string, else ``default``."""
    if isinstance(value, bool):
        return default
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


@dataclass
class Scaler:
    """One thing that sets a workload's replicas: an HPA, a ScaledObject, an HTTPScaledObject or Knative."""

    kind: str
    obj: Mapping[str, Any]
    min_replicas: int
    max_replicas: int | None

    @property
    def name(self) -> str:
        """The scaler's name."""
        return name_of(self.obj)


@dataclass
class Workload:
    """A workload with a pod template, its detection, cold start and the scalers that target it."""

    obj: Mapping[str, Any]
    detection: engines.Detection
    cold_start: int
    cold_source: str
    scalers: list[Scaler] = field(default_factory=list)
    # The estimate without the workload's own startupProbe: what the probe itself is judged against.
    unprobed_cold_start: tuple[int, str] | None = None

    @property
    def kind(self) -> str:
        """Deployment, StatefulSet, LeaderWorkerSet or Service (Knative)."""
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        """Its name."""
        return name_of(self.obj)

    @property
    def namespace(self) -> str:
        """Its namespace."""
        return ns_of(self.obj)

    @property
    def knative(self) -> bool:
        """Whether it is a Knative Service."""
        return is_knative_service(self.obj)

    @property
    def gpu_inference(self) -> bool:
        """Asks for an accelerator, or runs a recognised inference engine with some confidence."""
        d = self.detection
        return d.gpus > 0 or (d.engine is not None and d.confidence in ("high", "medium"))

    @property
    def template(self) -> Mapping[str, Any]:
        """The pod template (or {})."""
        return engines.pod_template(self.obj) or {}

    @property
    def pod_spec(self) -> Mapping[str, Any]:
        """The pod spec (or {})."""
        spec = self.template.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    @property
    def pod_labels(self) -> Mapping[str, str]:
        """The pod template's labels."""
        labels = meta(self.template).get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}

    def main_container(self) -> Mapping[str, Any] | None:
        """The engine's container, else the first one asking for an accelerator, else the first."""
        containers = [c for c in self.pod_spec.get("containers") or [] if isinstance(c, Mapping)]
        if not containers:
            return None
        if self.detection.container:
            for c in containers:
                if c.get("name") == self.detection.container:
                    return c
        for c in containers:
            if engines.accelerators(c):
                return c
        return containers[0]

    @property
    def autoscaled(self) -> bool:
        """Some autoscaler sets its replicas."""
        return bool(self.scalers)

    @property
    def min_replicas(self) -> int:
        """The lowest replica count any of its scalers may set (its fixed replicas when none)."""
        if self.scalers:
            return min(s.min_replicas for s in self.scalers)
        return to_int(spec_of(self.obj).get("replicas"), 1) or 0

    @property
    def max_replicas(self) -> int:
        """The highest replica count any of its scalers may set (its fixed replicas when none)."""
        values = [s.max_replicas for s in self.scalers if s.max_replicas is not None]
        if values:
            return max(values)
        return to_int(spec_of(self.obj).get("replicas"), 1) or 0

    def ref(self) -> str:
        """``Kind/name`` (the namespace is the finding's)."""
        return f"{self.kind}/{self.name}"


def owned_by(obj: Mapping[str, Any], kind: str) -> bool:
    """Whether an ownerReference of ``kind`` owns the object."""
    return any(
        isinstance(r, Mapping) and r.get("kind") == kind for r in meta(obj).get("ownerReferences") or []
    )


def adopted_hpa_name(so: Mapping[str, Any]) -> str | None:
    """The HPA a ScaledObject runs its scaling through: the adopted one, else KEDA's ``keda-hpa-<name>``."""
    config = (spec_of(so).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    return str(config.get("name") or f"keda-hpa-{name_of(so)}")


@dataclass
class Snapshot:
    """The objects, indexed once for every rule."""

    objects: Sequence[Mapping[str, Any]]
    cold_start: int | None = None
    workloads: list[Workload] = field(default_factory=list)
    hpas: list[Mapping[str, Any]] = field(default_factory=list)
    scaled_objects: list[Mapping[str, Any]] = field(default_factory=list)
    http_scaled_objects: list[Mapping[str, Any]] = field(default_factory=list)
    pvcs: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    pdbs: list[Mapping[str, Any]] = field(default_factory=list)
    daemonsets: list[Mapping[str, Any]] = field(default_factory=list)
    nodes: list[Mapping[str, Any]] = field(default_factory=list)
    config_maps: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    from_files: bool = False
    targets: Targets = field(default_factory=pinned_targets)
    _by_ref: dict[tuple[str, str, str], Workload] = field(default_factory=dict, repr=False)

    def workload(self, kind: str, namespace: str, name: str) -> Workload | None:
        """The workload a scaleTargetRef names (kind, namespace, name)."""
        if len(self._by_ref) != len(self.workloads):
            self._by_ref = {(w.kind, w.namespace, w.name): w for w in self.workloads}
        return self._by_ref.get((kind, namespace, name))


def _scaler_range(kind: str, obj: Mapping[str, Any]) -> tuple[int, int | None]:
    spec = spec_of(obj)
    if kind == HPA_KIND:
        return to_int(spec.get("minReplicas"), HPA_DEFAULT_MIN) or 0, to_int(spec.get("maxReplicas"))
    if kind == "ScaledObject":
        return (
            to_int(spec.get("minReplicaCount"), KEDA_DEFAULT_MIN) or 0,
            to_int(spec.get("maxReplicaCount"), KEDA_DEFAULT_MAX),
        )
    replicas = spec.get("replicas") or {}
    return to_int(replicas.get("min"), 0) or 0, to_int(replicas.get("max"))


def _target(scaler: Mapping[str, Any], default_kind: str) -> tuple[str, str, str]:
    ref = spec_of(scaler).get("scaleTargetRef") or {}
    return str(ref.get("kind") or default_kind), ns_of(scaler), str(ref.get("name") or "")


def build(
    objects: Iterable[Mapping[str, Any]],
    cold_start: int | None = None,
    *,
    from_files: bool = False,
    measured_cold_starts: Mapping[tuple[str, str, str], tuple[int, str]] | None = None,
    targets: Targets | None = None,
) -> Snapshot:
    """Index the objects: workloads with detection and cold start, and which scalers target each.

    ``measured_cold_starts`` maps (kind, namespace, name) to a cold start measured from the
    workload's own pods and its source text; it wins over the startupProbe budget and the engine's
    typical figure (``cold_start``, the --cold-start flag, wins over everything). ``targets`` are the
    component versions the rules judge against (default: the pinned ones).
    """
    snap = Snapshot(list(objects), cold_start, from_files=from_files, targets=targets or pinned_targets())
    for obj in snap.objects:
        _index(snap, obj, measured_cold_starts or {})
    _attach_scalers(snap)
    return snap


def _index(
    snap: Snapshot,
    obj: Mapping[str, Any],
    measured_cold_starts: Mapping[tuple[str, str, str], tuple[int, str]],
) -> None:
    """File one object under its kind in `snap` (a workload with its detection and cold start)."""
    kind, group = str(obj.get("kind") or ""), group_of(obj)
    key = (ns_of(obj), name_of(obj))
    if kind in WORKLOAD_KINDS or is_knative_service(obj):
        detection = engines.detect(obj)
        measured = measured_cold_starts.get((kind, ns_of(obj), name_of(obj)))
        seconds, source = cold_start_estimate(obj, detection, snap.cold_start, measured)
        unprobed = cold_start_estimate(obj, detection, snap.cold_start, measured, startup_probe=False)
        snap.workloads.append(Workload(obj, detection, int(seconds), source, unprobed_cold_start=unprobed))
        if kind == "Deployment":
            snap.deployments[key] = obj
    elif kind == HPA_KIND:
        snap.hpas.append(obj)
    elif kind == "ScaledObject" and group == KEDA_API.split("/")[0]:
        snap.scaled_objects.append(obj)
    elif kind == "HTTPScaledObject" and group == HTTP_API.split("/")[0]:
        snap.http_scaled_objects.append(obj)
    elif kind == "PersistentVolumeClaim":
        snap.pvcs[key] = obj
    elif kind == "PodDisruptionBudget":
        snap.pdbs.append(obj)
    elif kind == "DaemonSet":
        snap.daemonsets.append(obj)
    elif kind == "Node":
        snap.nodes.append(obj)
    elif kind == "ConfigMap":
        snap.config_maps[key] = obj


def _attach_scalers(snap: Snapshot) -> None:
    """Give each workload the scalers that target it (an HPA a ScaledObject runs is not a second one)."""
    for so in snap.scaled_objects:
        w = snap.workload(*_target(so, "Deployment"))
        if w:
            w.scalers.append(Scaler("ScaledObject", so, *_scaler_range("ScaledObject", so)))
    for hso in snap.http_scaled_objects:
        w = snap.workload(*_target(hso, "Deployment"))
        if w:
            w.scalers.append(Scaler("HTTPScaledObject", hso, *_scaler_range("HTTPScaledObject", hso)))
    for hpa in snap.hpas:
        target = _target(hpa, "Deployment")
        w = snap.workload(*target)
        if w and not _run_by_scaled_object(hpa, w):
            w.scalers.append(Scaler(HPA_KIND, hpa, *_scaler_range(HPA_KIND, hpa)))
    for w in snap.workloads:
        if w.knative:
            annotations = meta(w.template).get("annotations") or {}
            low = to_int(annotations.get("autoscaling.knative.dev/min-scale"), 0) or 0
            high = to_int(annotations.get("autoscaling.knative.dev/max-scale"), 0) or None
            w.scalers.append(Scaler("Knative", w.obj, low, high))


def _run_by_scaled_object(hpa: Mapping[str, Any], w: Workload) -> bool:
    """An HPA that a ScaledObject on the same workload created or adopted (one controller, not two)."""
    if owned_by(hpa, "ScaledObject"):
        return True
    for s in w.scalers:
        if s.kind == "ScaledObject" and adopted_hpa_name(s.obj) == name_of(hpa):
            annotations = meta(s.obj).get("annotations") or {}
            if str(annotations.get(KEDA_TRANSFER_OWNERSHIP, "")).lower() == "true" or name_of(hpa).startswith(
                "keda-hpa-"
            ):
                return True
    return False


def http_push_covered(so: Mapping[str, Any]) -> bool:
    """A ScaledObject woken by the HTTP add-on (an external-push trigger naming an HTTPScaledObject)."""
    return any(
        isinstance(t, Mapping)
        and t.get("type") == "external-push"
        and (t.get("metadata") or {}).get("httpScaledObject")
        for t in spec_of(so).get("triggers") or []
    )


def hso_creates_scaled_object(hso: Mapping[str, Any]) -> bool:
    """An HTTPScaledObject without the skip annotation creates a ScaledObject of its own."""
    return str((meta(hso).get("annotations") or {}).get(KEDA_HTTP_SKIP_SCALEDOBJECT, "")).lower() != "true"
