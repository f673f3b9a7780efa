"""Typed readers' shapes: the types of the fields the project reads, checked once at the edge.

Objects from files (manifests, a saved pod, events, archive metadata) can hold anything a YAML or JSON
parser accepts; the code behind the edge reads them as Kubernetes objects. `check` walks an object
against a `Shape` and raises `ShapeError` naming the first field of the wrong type
(``spec.template.spec.containers[0]: expected a mapping, found a null``). Only the fields the code
reads are described; every other field passes unchecked, and an absent field is always fine.

Pure: no kubernetes, click or rich.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.errors import InputError


class ShapeError(ValueError):
    """A value of the wrong type at `path` (dotted, with ``[i]`` for list items)."""

    def __init__(self, path: str, expected: str, found: Any) -> None:
        self.path = path or "(the object)"
        self.expected = expected
        self.found = describe(found)
        super().__init__(f"{self.path}: expected {expected}, found {self.found}")


def describe(value: Any) -> str:
    """A value's type as a user reads it: ``a string``, ``a list``, ``a null``."""
    if value is None:
        return "a null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Shape:
    """The expected type of a value.

    `kind`: ``str``, ``int``, ``number``, ``bool``, ``int-or-str``, ``scalar``, ``map`` or ``list``.
    A map lists its known `fields`; `values` types every value of a free-form map (labels).
    A list types its `items`. `nullable` lets a field hold null (the API's "unset").
    """

    kind: str
    fields: Mapping[str, Shape] = field(default_factory=dict)
    values: Shape | None = None
    items: Shape | None = None
    nullable: bool = False


STR = Shape("str")
INT = Shape("int")
NUMBER = Shape("number")
BOOL = Shape("bool")
INT_OR_STR = Shape("int-or-str")
SCALAR = Shape("scalar")
ANY_MAP = Shape("map")
QUANTITY = Shape("scalar")
"""A resource.Quantity: a string (``500m``) or a bare JSON number (``0.5``), as its UnmarshalJSON accepts."""

_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "a boolean",
    "int-or-str": "an integer or a string",
    "scalar": "a string, number or boolean",
    "map": "a mapping",
    "list": "a list",
}


def mapping(
    fields: Mapping[str, Shape] | None = None, *, values: Shape | None = None, nullable: bool = False
) -> Shape:
    """A mapping with these known fields (others unchecked), or whose every value has the `values` shape."""
    return Shape("map", dict(fields or {}), values=values, nullable=nullable)


def extend(shape: Shape, fields: Mapping[str, Shape]) -> Shape:
    """A mapping shape with more known fields."""
    return Shape("map", {**shape.fields, **fields}, values=shape.values, nullable=shape.nullable)


def list_of(item: Shape, *, nullable: bool = False) -> Shape:
    """A list whose every item has the `item` shape."""
    return Shape("list", items=item, nullable=nullable)


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int-or-str":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if kind == "scalar":
        return isinstance(value, (str, int, float, bool))
    if kind == "map":
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    raise ValueError(f"unknown shape kind {kind!r}")


def check(value: Any, shape: Shape, path: str = "") -> None:
    """Raise `ShapeError` at the first value not of its shape (iterative: any depth, no recursion limit)."""
    stack: list[tuple[Any, Shape, str]] = [(value, shape, path)]
    while stack:
        current, expected, where = stack.pop()
        if current is None and expected.nullable:
            continue
        if not _type_ok(expected.kind, current):
            raise ShapeError(where, _EXPECTED[expected.kind], current)
        if expected.kind == "map":
            for key, child in reversed(list(current.items())):
                if not isinstance(key, str):
                    raise ShapeError(f"{where}.{key}" if where else str(key), "a string key", key)
                sub = expected.fields.get(key) or expected.values
                if sub is not None:
                    stack.append((child, sub, f"{where}.{key}" if where else key))
        elif expected.kind == "list" and expected.items is not None:
            for index in range(len(current) - 1, -1, -1):
                stack.append((current[index], expected.items, f"{where}[{index}]"))


# ------------------------------------------------------------------------------------ Kubernetes shapes
STR_MAP = mapping(values=SCALAR, nullable=True)
METADATA = mapping(
    {
        "name": STR,
        "namespace": STR,
        "generateName": STR,
        "uid": STR,
        "resourceVersion": STR,
        "labels": STR_MAP,
        "annotations": STR_MAP,
        "creationTimestamp": Shape("str", nullable=True),
        "ownerReferences": list_of(mapping({"kind": STR, "name": STR, "apiVersion": STR})),
    }
)
_PROBE = mapping(
    {
        n: INT
        for n in (
            "initialDelaySeconds",
            "periodSeconds",
            "timeoutSeconds",
            "failureThreshold",
            "successThreshold",
            "terminationGracePeriodSeconds",
        )
    }
    | {
        "httpGet": mapping({"path": STR, "port": INT_OR_STR, "scheme": STR}),
        "tcpSocket": mapping({"port": INT_OR_STR}),
        "grpc": mapping({"port": INT}),
        "exec": mapping({"command": list_of(STR)}),
    },
    nullable=True,
)
_QUANTITIES = mapping(values=QUANTITY, nullable=True)
CONTAINER = mapping(
    {
        "name": STR,
        "image": STR,
        "imagePullPolicy": STR,
        "workingDir": STR,
        "command": list_of(SCALAR, nullable=True),
        "args": list_of(SCALAR, nullable=True),
        "env": list_of(
            mapping({"name": STR, "value": Shape("scalar", nullable=True), "valueFrom": ANY_MAP}),
            nullable=True,
        ),
        "envFrom": list_of(ANY_MAP, nullable=True),
        "ports": list_of(mapping({"containerPort": INT, "name": STR, "protocol": STR}), nullable=True),
        "resources": mapping({"limits": _QUANTITIES, "requests": _QUANTITIES}, nullable=True),
        "volumeMounts": list_of(mapping({"name": STR, "mountPath": STR, "readOnly": BOOL}), nullable=True),
        "readinessProbe": _PROBE,
        "livenessProbe": _PROBE,
        "startupProbe": _PROBE,
    }
)
POD_SPEC = mapping(
    {
        "containers": list_of(CONTAINER),
        "initContainers": list_of(CONTAINER, nullable=True),
        "nodeName": STR,
        "nodeSelector": STR_MAP,
        "schedulerName": STR,
        "runtimeClassName": Shape("str", nullable=True),
        "priorityClassName": STR,
        "serviceAccountName": STR,
        "terminationGracePeriodSeconds": INT,
        "tolerations": list_of(
            mapping({"key": STR, "operator": STR, "value": STR, "effect": STR}), nullable=True
        ),
        "volumes": list_of(
            mapping(
                {
                    "name": STR,
                    "persistentVolumeClaim": mapping({"claimName": STR}),
                    "hostPath": mapping({"path": STR}),
                    "emptyDir": mapping(nullable=True),
                }
            ),
            nullable=True,
        ),
        "affinity": mapping(nullable=True),
        "imagePullSecrets": list_of(mapping({"name": STR}), nullable=True),
    }
)
POD_TEMPLATE = mapping({"metadata": METADATA, "spec": POD_SPEC})
_CONDITIONS = list_of(
    mapping(
        {
            "type": STR,
            "status": STR,
            "reason": STR,
            "message": STR,
            "lastTransitionTime": Shape("str", nullable=True),
        }
    ),
    nullable=True,
)
_CONTAINER_STATE = mapping(
    {
        "startedAt": Shape("str", nullable=True),
        "finishedAt": Shape("str", nullable=True),
        "reason": STR,
        "message": STR,
        "exitCode": INT,
    },
    nullable=True,
)
CONTAINER_STATUS = mapping(
    {
        "name": STR,
        "image": STR,
        "imageID": STR,
        "ready": BOOL,
        "started": BOOL,
        "restartCount": INT,
        "state": mapping(values=_CONTAINER_STATE, nullable=True),
        "lastState": mapping(values=_CONTAINER_STATE, nullable=True),
    }
)
POD = mapping(
    {
        "metadata": METADATA,
        "spec": POD_SPEC,
        "status": mapping(
            {
                "phase": STR,
                "reason": STR,
                "message": STR,
                "startTime": Shape("str", nullable=True),
                "podIP": STR,
                "hostIP": STR,
                "conditions": _CONDITIONS,
                "containerStatuses": list_of(CONTAINER_STATUS, nullable=True),
                "initContainerStatuses": list_of(CONTAINER_STATUS, nullable=True),
            },
            nullable=True,
        ),
    }
)
_SELECTOR = mapping(
    {
        "matchLabels": STR_MAP,
        "matchExpressions": list_of(
            mapping({"key": STR, "operator": STR, "values": list_of(STR, nullable=True)}), nullable=True
        ),
    },
    nullable=True,
)
WORKLOAD = mapping(
    {
        "metadata": METADATA,
        "spec": mapping(
            {
                "replicas": Shape("int", nullable=True),
                "selector": _SELECTOR,
                "template": POD_TEMPLATE,
                "serviceName": STR,
                "strategy": mapping(nullable=True),
            }
        ),
        "status": mapping(
            {
                "replicas": INT,
                "readyReplicas": INT,
                "availableReplicas": INT,
                "updatedReplicas": INT,
                "conditions": _CONDITIONS,
            },
            nullable=True,
        ),
    }
)
_TARGET_REF = mapping({"apiVersion": STR, "kind": STR, "name": STR})
_METRIC_TARGET = mapping(
    {"type": STR, "averageUtilization": INT, "averageValue": QUANTITY, "value": QUANTITY}
)
_HPA_POLICIES = list_of(mapping({"type": STR, "value": INT, "periodSeconds": INT}), nullable=True)
_HPA_RULES = mapping(
    {"stabilizationWindowSeconds": INT, "selectPolicy": STR, "policies": _HPA_POLICIES}, nullable=True
)
_HPA_BEHAVIOR = mapping({"scaleUp": _HPA_RULES, "scaleDown": _HPA_RULES}, nullable=True)
HPA = mapping(
    {
        "metadata": METADATA,
        "spec": mapping(
            {
                "scaleTargetRef": _TARGET_REF,
                "minReplicas": Shape("int", nullable=True),
                "maxReplicas": INT,
                "targetCPUUtilizationPercentage": INT,
                "metrics": list_of(
                    mapping(
                        {
                            "type": STR,
                            "resource": mapping(
                                {
                                    "name": STR,
                                    "target": _METRIC_TARGET,
                                    "targetAverageUtilization": INT,
                                    "targetAverageValue": QUANTITY,
                                }
                            ),
                            "containerResource": mapping(
                                {"name": STR, "container": STR, "target": _METRIC_TARGET}
                            ),
                            "pods": mapping(
                                {
                                    "metric": mapping({"name": STR, "selector": _SELECTOR}),
                                    "target": _METRIC_TARGET,
                                    "metricName": STR,
                                    "targetAverageValue": QUANTITY,
                                }
                            ),
                            "object": mapping(
                                {
                                    "metric": mapping({"name": STR, "selector": _SELECTOR}),
                                    "target": _METRIC_TARGET,
                                    "describedObject": _TARGET_REF,
                                }
                            ),
                            "external": mapping(
                                {
                                    "metric": mapping({"name": STR, "selector": _SELECTOR}),
                                    "target": _METRIC_TARGET,
                                }
                            ),
                        }
                    ),
                    nullable=True,
                ),
                "behavior": _HPA_BEHAVIOR,
            }
        ),
    }
)
SCALED_OBJECT = mapping(
    {
        "metadata": METADATA,
        "spec": mapping(
            {
                "scaleTargetRef": mapping(
                    {"apiVersion": STR, "kind": STR, "name": STR, "envSourceContainerName": STR}
                ),
                "pollingInterval": INT,
                "cooldownPeriod": INT,
                "initialCooldownPeriod": INT,
                "idleReplicaCount": INT,
                "minReplicaCount": INT,
                "maxReplicaCount": INT,
                "fallback": mapping(
                    {"failureThreshold": INT, "replicas": INT, "behavior": STR}, nullable=True
                ),
                "advanced": mapping(
                    {
                        "horizontalPodAutoscalerConfig": mapping(
                            {"name": STR, "behavior": _HPA_BEHAVIOR}, nullable=True
                        ),
                        "restoreToOriginalReplicaCount": BOOL,
                    },
                    nullable=True,
                ),
                "triggers": list_of(
                    mapping(
                        {
                            "type": STR,
                            "name": STR,
                            "metricType": STR,
                            "useCachedMetrics": BOOL,
                            "metadata": mapping(values=Shape("scalar", nullable=True)),
                            "authenticationRef": mapping({"name": STR, "kind": STR}),
                        }
                    )
                ),
            }
        ),
    }
)
HTTP_SCALED_OBJECT = mapping(
    {
        "metadata": METADATA,
        "spec": mapping(
            {
                "hosts": list_of(STR, nullable=True),
                "pathPrefixes": list_of(STR, nullable=True),
                "scaleTargetRef": mapping(
                    {"name": STR, "kind": STR, "apiVersion": STR, "service": STR, "port": INT}
                ),
                "replicas": mapping({"min": INT, "max": INT}, nullable=True),
                "scaledownPeriod": INT,
                "targetPendingRequests": INT,
            }
        ),
    }
)
KNATIVE_SERVICE = mapping(
    {
        "metadata": METADATA,
        "spec": mapping(
            {
                "template": mapping(
                    {
                        "metadata": METADATA,
                        "spec": extend(POD_SPEC, {"containerConcurrency": INT, "timeoutSeconds": INT}),
                    }
                ),
            }
        ),
    }
)
EVENT = mapping(
    {
        "metadata": METADATA,
        "involvedObject": mapping({"kind": STR, "name": STR, "namespace": STR, "uid": STR, "fieldPath": STR}),
        "reason": STR,
        "message": STR,
        "type": STR,
        "count": INT,
        "note": STR,
        "regarding": mapping({"kind": STR, "name": STR, "namespace": STR, "fieldPath": STR}),
        "firstTimestamp": Shape("str", nullable=True),
        "lastTimestamp": Shape("str", nullable=True),
        "eventTime": Shape("str", nullable=True),
        "series": mapping({"count": INT, "lastObservedTime": STR}, nullable=True),
    }
)
CONFIG_MAP = mapping({"metadata": METADATA, "data": mapping(values=STR, nullable=True)})
GENERIC = mapping({"metadata": METADATA})

KIND_SHAPES: dict[str, Shape] = {
    "Deployment": WORKLOAD,
    "StatefulSet": WORKLOAD,
    "DaemonSet": WORKLOAD,
    "ReplicaSet": WORKLOAD,
    "Pod": POD,
    "HorizontalPodAutoscaler": HPA,
    "ScaledObject": SCALED_OBJECT,
    "HTTPScaledObject": HTTP_SCALED_OBJECT,
    "Service": mapping(
        {
            "metadata": METADATA,
            "spec": mapping(
                {
                    "selector": STR_MAP,
                    "ports": list_of(
                        mapping({"port": INT, "targetPort": INT_OR_STR, "name": STR}), nullable=True
                    ),
                }
            ),
        }
    ),
    "ConfigMap": CONFIG_MAP,
    "Event": EVENT,
}


def object_shape(obj: Mapping[str, Any]) -> Shape:
    """The shape objects of this object's kind must have (`GENERIC` for kinds no code reads deeply)."""
    kind = obj.get("kind")
    if kind == "Service" and str(obj.get("apiVersion", "")).startswith("serving.knative.dev"):
        return KNATIVE_SERVICE
    return KIND_SHAPES.get(kind, GENERIC) if isinstance(kind, str) else GENERIC


def object_label(obj: Any) -> str:
    """``Kind/name`` for messages, tolerant of any junk in the object."""
    if not isinstance(obj, Mapping):
        return "the object"
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) and isinstance(meta.get("name"), str) else "?"
    return f"{kind}/{name}"


def check_object(obj: Any, source: str, shape: Shape | None = None) -> None:
    """Check a Kubernetes object read from `source` against its kind's shape.

    Raises:
        InputError: naming the file, the object and the field of the wrong type.
    """
    try:
        check(obj, shape or (object_shape(obj) if isinstance(obj, Mapping) else GENERIC))
    except ShapeError as exc:
        raise InputError(
            f"cannot read {source}",
            f"{object_label(obj)}: {exc.path} must be {exc.expected}, found {exc.found}",
            "fix that field (`kubectl explain` shows its type)",
        ) from None
