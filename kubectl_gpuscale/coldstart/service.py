"""Read a pod's cold start from the cluster: the one place that calls the gateway for `coldstart`
(the CLI and the dashboard's waterfall both use it). The parsing itself is pure (timeline.py)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.coldstart.model import Timeline
from kubectl_gpuscale.coldstart.timeline import build
from kubectl_gpuscale.errors import GpuscaleError, InputError

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster


def default_container(pod: dict[str, Any], container: str | None) -> str | None:
    """The container to read: the one asked for (checked), else the annotated default, else the first."""
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if container:
        if names and container not in names:
            raise InputError(
                f"pod {pod['metadata'].get('name')} has no container {container!r}",
                f"its containers are {', '.join(str(n) for n in names)}",
                "pick one with -c",
            )
        return container
    annotated = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container"
    )
    return annotated or (names[0] if names else None)


def timeline_for_pod(cluster: Cluster, pod: dict[str, Any], container: str | None = None) -> Timeline:
    """A pod's cold-start timeline from the cluster: its events, its log, and its previous log after a restart."""

    meta = pod.get("metadata") or {}
    name, namespace = meta.get("name", ""), cluster.namespace_or_default(meta.get("namespace"))
    chosen = default_container(pod, container)
    events = cluster.events_for("Pod", name, namespace, meta.get("uid"))
    try:
        log = cluster.pod_logs(name, namespace, container=chosen, timestamps=True)
    except GpuscaleError:
        log = ""  # not started yet, or logs rotated away: the timeline still has the pod's phases
    previous = ""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if any(cs.get("name") == chosen and cs.get("restartCount") for cs in statuses):
        try:
            previous = cluster.pod_logs(name, namespace, container=chosen, previous=True, timestamps=True)
        except GpuscaleError:
            previous = ""
    return build(log.splitlines(), pod=pod, events=events, previous=previous.splitlines(), container=chosen)


def pods_of(
    cluster: Cluster, workload: dict[str, Any], namespace: str, extra: str | None = None
) -> list[dict[str, Any]]:
    """The pods a workload's selector matches (LeaderWorkerSets by their name label), plus `extra` (-l)."""
    spec = workload.get("spec") or {}
    selector = spec.get("selector") or {}
    labels = selector.get("matchLabels") or {}
    if not labels:  # LeaderWorkerSet has no spec.selector: its pods carry the set's name
        labels = {"leaderworkerset.sigs.k8s.io/name": workload["metadata"]["name"]}
    parts = [f"{k}={v}" for k, v in sorted(labels.items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        op = expr.get("operator")
        if op == "In":
            parts.append(f"{expr['key']} in ({values})")
        elif op == "NotIn":
            parts.append(f"{expr['key']} notin ({values})")
        elif op == "Exists":
            parts.append(expr["key"])
        elif op == "DoesNotExist":
            parts.append(f"!{expr['key']}")
    if extra:
        parts.append(extra)
    return cluster.list("v1", "Pod", namespace, label_selector=",".join(parts))


MEASURED_PODS = (
    3  # newest pods of a workload whose start is measured (each costs an events list and a log read)
)


def measured_cold_start(
    cluster: Cluster, workload: dict[str, Any], namespace: str, *, pods: int = MEASURED_PODS
) -> tuple[int, str] | None:
    """The cold start measured on the workload's own pods: the slowest start to Ready among its newest
    `pods` pods (events, conditions and logs, as `kubectl gpuscale coldstart`), with where it came from.
    None when no pod reached Ready or the cluster cannot say (no pods, 403, logs rotated away)."""
    kind, name = workload.get("kind"), (workload.get("metadata") or {}).get("name")
    try:
        if str(workload.get("apiVersion", "")).startswith("serving.knative.dev/"):
            found = cluster.list("v1", "Pod", namespace, label_selector=f"serving.knative.dev/service={name}")
        else:
            found = pods_of(cluster, workload, namespace)
    except GpuscaleError:
        return None
    found.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    totals = []
    for pod in found[:pods]:
        try:
            timeline = timeline_for_pod(cluster, pod)
        except GpuscaleError:
            continue
        if timeline.status == "ready" and timeline.total_seconds > 0:
            totals.append(timeline.total_seconds)
    if not totals:
        return None
    return math.ceil(
        max(totals)
    ), f"measured on {len(totals)} pod(s) of {kind}/{name}, the slowest start to Ready"
