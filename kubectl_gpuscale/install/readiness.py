"""Ready means ready: Deployments Available, DaemonSets scheduled and ready, CRDs Established,
APIServices Available, ingress gateways answering HTTP (Knative's Kourier, probed through the API
server's service proxy). Pure verdicts over objects, and a poll loop over a `Cluster`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

WAITABLE = {
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "APIService": "apiregistration.k8s.io/v1",
    "ServiceProbe": "v1",
}
"""`ServiceProbe` targets are answered by a GET through the API server's service proxy (name ``svc:port``)."""


@dataclass(frozen=True)
class Target:
    """One object whose readiness is awaited."""

    kind: str
    name: str
    namespace: str | None = None

    @property
    def api_version(self) -> str:
        """Its apiVersion."""
        return WAITABLE[self.kind]

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}" + (f" -n {self.namespace}" if self.namespace else "")


@dataclass(frozen=True)
class Verdict:
    """Whether a target is ready, and why not."""

    target: Target
    ready: bool
    reason: str


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def judge(target: Target, obj: Mapping[str, Any] | None) -> Verdict:
    """The readiness of one object (None: it does not exist)."""
    if obj is None:
        return Verdict(target, False, "not found")
    kind = target.kind
    if kind in ("Deployment", "StatefulSet"):
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        observed = status.get("observedGeneration")
        if generation is not None and observed is not None and observed < generation:
            return Verdict(
                target, False, f"rollout not observed yet (generation {generation}, observed {observed})"
            )
        if kind == "StatefulSet":
            want = (obj.get("spec") or {}).get("replicas", 1)
            have = status.get("readyReplicas", 0)
            return Verdict(target, have >= want, f"{have}/{want} ready")
        cond = _condition(obj, "Available")
        if cond is None:
            return Verdict(target, False, "no Available condition yet")
        if cond.get("status") != "True":
            return Verdict(
                target,
                False,
                f"not Available: {cond.get('reason') or ''} {cond.get('message') or ''}".strip(),
            )
        return Verdict(target, True, "Available")
    if kind == "DaemonSet":
        status = obj.get("status") or {}
        want = status.get("desiredNumberScheduled", 0)
        have = status.get("numberReady", 0)
        if want == 0:
            return Verdict(target, True, "0 nodes match its node selector")
        return Verdict(target, have >= want, f"{have}/{want} pods ready")
    if kind == "CustomResourceDefinition":
        cond = _condition(obj, "Established")
        ok = bool(cond and cond.get("status") == "True")
        return Verdict(target, ok, "Established" if ok else "not Established yet")
    if kind == "APIService":
        cond = _condition(obj, "Available")
        ok = bool(cond and cond.get("status") == "True")
        why = (
            "Available"
            if ok
            else (
                f"not Available: {cond.get('reason') or ''} {cond.get('message') or ''}".strip()
                if cond
                else "no Available condition yet"
            )
        )
        return Verdict(target, ok, why)
    return Verdict(target, True, "exists")


def targets_of(objects: Iterable[Mapping[str, Any]]) -> list[Target]:
    """The readiness targets among applied objects (workloads, CRDs, APIServices)."""
    out = []
    for obj in objects:
        kind = obj.get("kind", "")
        if kind in WAITABLE and obj.get("apiVersion") == WAITABLE[kind]:
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") if kind not in ("CustomResourceDefinition", "APIService") else None
            out.append(Target(kind, meta.get("name", ""), ns))
    return out


def probe(cluster: Cluster, target: Target) -> Verdict:
    """Whether a Service answers HTTP (any answer of its own, 404 included) through the service proxy."""
    service, _, port = target.name.partition(":")
    try:
        status, answered = cluster.service_answer(
            cluster.namespace_or_default(target.namespace), service, port or "80"
        )
    except GpuscaleError as exc:
        return Verdict(target, False, f"no answer: {exc.why or exc.what}")
    if answered:
        return Verdict(target, True, f"answering (HTTP {status})")
    return Verdict(target, False, f"not answering (HTTP {status} from the API server: no ready endpoints?)")


def check(cluster: Cluster, targets: Iterable[Target]) -> list[Verdict]:
    """One pass over the targets."""
    verdicts = []
    for t in targets:
        if t.kind == "ServiceProbe":
            verdicts.append(probe(cluster, t))
            continue
        try:
            obj = cluster.get_or_none(t.api_version, t.kind, t.name, t.namespace)
        except ForbiddenError:
            verdicts.append(Verdict(t, False, "forbidden to read it"))
            continue
        verdicts.append(judge(t, obj))
    return verdicts


def wait(
    cluster: Cluster,
    targets: list[Target],
    *,
    timeout_s: float,
    interval_s: float = 2.0,
    on_update: Callable[[list[Verdict]], None] | None = None,
    what: str = "the install",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Verdict]:
    """Poll until every target is ready; raise `GpuscaleError` naming what is not, after `timeout_s`."""
    deadline = clock() + timeout_s
    while True:
        verdicts = check(cluster, targets)
        if on_update:
            on_update(verdicts)
        pending = [v for v in verdicts if not v.ready]
        if not pending:
            return verdicts
        if clock() >= deadline:
            listed = "; ".join(f"{v.target}: {v.reason}" for v in pending[:6])
            more = f" (+{len(pending) - 6} more)" if len(pending) > 6 else ""
            raise GpuscaleError(
                f"{what} is not ready after {timeout_s:g}s",
                listed + more,
                "check the pods (kubectl get pods -n <namespace>) and events, or raise --timeout",
            )
        sleep(min(interval_s, max(0.0, deadline - clock())))
