"""The cluster side of migrate-hpa: read HPAs with their targets, preflight, write all-or-nothing,
and roll back. Talks to the cluster only through the `Cluster` gateway passed in (no kubernetes import)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.autoscale.hpa import HPA_KIND, quantity
from kubectl_gpuscale.autoscale.querycheck import NameForms, PromSource, check_query
from kubectl_gpuscale.errors import GpuscaleError, InputError, NotFoundError
from kubectl_gpuscale.facts import Targets
from kubectl_gpuscale.facts import keda as keda_facts

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

HPA_API = "autoscaling/v2"
SO_KIND = "ScaledObject"


@dataclass
class ClusterInputs:
    """HPAs, their targets and Services read from the cluster, plus saved originals of adopted HPAs."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    originals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _owner_so(hpa: Mapping[str, Any]) -> str | None:
    for ref in (hpa.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == SO_KIND:
            return str(ref.get("name"))
    return None


def read_inputs(cluster: Cluster, namespace: str | None, names: Sequence[str], *, selector: str | None = None,
                services: bool = False) -> ClusterInputs:
    """Read the HPAs asked for (names, or all / -l) with their scale targets.

    An HPA a ScaledObject already adopted is read back from the original we saved on that
    ScaledObject, so a second run plans the same objects (idempotent).
    """
    out = ClusterInputs()
    if names:
        hpas = [cluster.get(HPA_API, HPA_KIND, name, namespace) for name in names]
    else:
        hpas = cluster.list(HPA_API, HPA_KIND, namespace, label_selector=selector)
    seen: set[tuple[str, str | None, str]] = set()
    for hpa in hpas:
        hpa.setdefault("apiVersion", HPA_API)
        hpa.setdefault("kind", HPA_KIND)
        meta = hpa.get("metadata") or {}
        ns = meta.get("namespace") or namespace or cluster.default_namespace
        owner = _owner_so(hpa)
        if owner:
            so = cluster.get_or_none(builders.KEDA_API, SO_KIND, owner, ns)
            saved = ((so or {}).get("metadata") or {}).get("annotations", {}).get(builders.ORIGINAL_HPA)
            if not saved:
                out.skipped.append((f"{ns}/{meta.get('name')}", f"managed by ScaledObject {owner} (not ours)"))
                continue
            original = json.loads(saved)
            out.originals[(ns, str(meta.get("name")))] = original
            restored = dict(original)
            restored["status"] = hpa.get("status") or {}
            hpa = restored
        out.objects.append(hpa)
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        key = (str(ref.get("kind")), ns, str(ref.get("name")))
        if ref.get("kind") and ref.get("name") and key not in seen:
            seen.add(key)
            try:
                target = cluster.get(str(ref.get("apiVersion") or "apps/v1"), str(ref["kind"]), str(ref["name"]), ns)
            except NotFoundError:
                continue  # the converter reports the missing target, naming the HPA
            target.setdefault("apiVersion", ref.get("apiVersion") or "apps/v1")
            target.setdefault("kind", ref["kind"])
            out.objects.append(target)
    if services:
        for ns in sorted({(o.get("metadata") or {}).get("namespace") or "" for o in out.objects}):
            out.objects.extend(cluster.list("v1", "Service", ns or None))
    return out


def keda_version(cluster: Cluster) -> tuple[int, int, int] | None:
    """KEDA's version from its operator Deployment (label or image tag), or None when not found."""
    from kubectl_gpuscale.facts.detect import detect_targets

    found = detect_targets(cluster).keda
    return (found.major, found.minor, found.patch) if found else None


def preflight(cluster: Cluster, objects: Sequence[Mapping[str, Any]], targets: Targets | None = None) -> list[str]:
    """Check the cluster can take the objects; raise when it cannot, return warnings otherwise.

    ``targets`` are the versions the objects were built for (detected when not given): an object
    that KEDA's admission webhook of that version rejects stops the migration here, before any write.
    """
    warnings: list[str] = []
    kinds = {(o.get("apiVersion"), o.get("kind")) for o in objects}
    if (builders.KEDA_API, SO_KIND) in kinds:
        if not cluster.serves(builders.KEDA_API, SO_KIND):
            raise GpuscaleError("cannot migrate", "KEDA is not installed (no scaledobjects.keda.sh served)",
                                "run: kubectl gpuscale install keda")
        if targets is None:
            from kubectl_gpuscale.facts.detect import detect_targets

            targets = detect_targets(cluster)
        version = targets.keda
        if version is None:
            warnings.append("KEDA's version is unknown (no keda-operator Deployment found): adopting an HPA "
                            "needs KEDA >= 2.11")
        elif not keda_facts.holds("transfer-hpa-ownership", version) and any(
                (o.get("metadata") or {}).get("annotations", {}).get(builders.TRANSFER_OWNERSHIP) == "true"
                for o in objects if o.get("kind") == SO_KIND):
            raise GpuscaleError("cannot migrate", f"KEDA {version} cannot adopt an existing "
                                "HPA (transfer-hpa-ownership needs >= 2.11)",
                                "upgrade KEDA (kubectl gpuscale install keda), or delete the HPA first")
        for obj in objects:
            if obj.get("kind") == SO_KIND:
                why = keda_facts.webhook_fallback_rejection(obj, version)
                if why:
                    meta = obj.get("metadata") or {}
                    raise GpuscaleError(f"cannot migrate to ScaledObject {meta.get('namespace')}/{meta.get('name')}",
                                        f"KEDA {version}'s admission webhook rejects it: {why}",
                                        "set metricType: AverageValue on the triggers, or upgrade KEDA to >= 2.17.1")
        if cluster.get_or_none("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                               "keda-admission") is None:
            warnings.append("KEDA's admission webhook (keda-admission) was not found: conflicting "
                            "ScaledObjects/HPAs will not be rejected")
    if (builders.HTTP_API, "HTTPScaledObject") in kinds and not cluster.serves(builders.HTTP_API, "HTTPScaledObject"):
        raise GpuscaleError("cannot migrate with --scale-to-zero", "the KEDA HTTP add-on is not installed",
                            "run: kubectl gpuscale install keda-http-add-on, or print the YAML with -o yaml")
    if (builders.KNATIVE_API, "Service") in kinds and not cluster.serves(builders.KNATIVE_API, "Service"):
        raise GpuscaleError("cannot migrate --to knative", "Knative Serving is not installed",
                            "run: kubectl gpuscale install knative")
    return warnings


@dataclass(frozen=True)
class QueryFinding:
    """One line of the query preflight: ``level`` is "warning" (the trigger will not work as is) or "ok"."""

    level: str
    text: str


def query_preflight(prom: PromSource, objects: Sequence[Mapping[str, Any]]) -> list[QueryFinding]:
    """Run each ScaledObject prometheus trigger's query once (the check `doctor` does live, GS004/GS005).

    KEDA needs exactly one series: none -> a warning saying why (the form or the renamed name
    Prometheus holds, or labels matching no pod); several -> a warning to wrap it in ``sum``; one
    -> its value now against the threshold. Prometheus unreachable -> one warning and no more
    queries. Never raises for a Prometheus failure: these are warnings, the migration goes on.
    """
    forms = NameForms(prom)
    out: list[QueryFinding] = []
    for obj in objects:
        if obj.get("kind") != SO_KIND:
            continue
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        fallback = (spec.get("fallback") or {}).get("replicas")
        for trigger in spec.get("triggers") or []:
            md = trigger.get("metadata") or {}
            query = str(md.get("query") or "").strip()
            if trigger.get("type") != "prometheus" or not query:
                continue
            try:
                threshold: float | None = quantity(md.get("threshold"))
            except (TypeError, ValueError):
                threshold = None
            where = f"ScaledObject {meta.get('namespace')}/{meta.get('name')} trigger {trigger.get('name')}"
            check = check_query(prom, query, threshold, forms)
            if check.error is not None:
                if isinstance(check.error, InputError):
                    out.append(QueryFinding("warning", f"{where}: {check.error.what}: {check.error.why}; "
                                                       f"{check.error.fix}"))
                    continue
                out.append(QueryFinding("warning", f"trigger queries not checked: {check.error.what}: "
                                                   f"{check.error.why}; the migration goes on (check them later "
                                                   f"with: kubectl gpuscale doctor --prometheus URL)"))
                return out
            if not check.series:
                hold = f"KEDA holds {fallback} replica(s) (fallback) until it returns one" if fallback \
                    else "KEDA errors until it returns one"
                out.append(QueryFinding("warning", f"{where}: the query returns no series now ({check.why_empty}); "
                                                   f"{hold}: fix the metric name or labels, or pass --query"))
            elif check.series > 1:
                out.append(QueryFinding("warning", f"{where}: the query returns {check.series} series now (KEDA "
                                                   f"needs exactly one): wrap it in sum(...)"))
            elif check.value is None:
                out.append(QueryFinding("warning", f"{where}: the query returns one series with no value (NaN) "
                                                   f"now: check the metric is exported"))
            else:
                per = trigger.get("metricType") in (None, "AverageValue")
                wanted = f" (about {check.wanted_replicas} replica(s) wanted)" \
                    if per and check.wanted_replicas is not None else ""
                shown = "-" if threshold is None else f"{threshold:g}"
                out.append(QueryFinding("ok", f"{where}: one series, {check.value:g} now vs threshold "
                                              f"{shown}{' per replica' if per else ''}{wanted}"))
    return out


def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    meta = obj.get("metadata") or {}
    return str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")), meta.get("namespace")


def _strip(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    for key in ("managedFields", "uid", "creationTimestamp", "generation", "selfLink"):
        out.get("metadata", {}).pop(key, None)
    out.pop("status", None)
    return out


def apply_all(cluster: Cluster, objects: Sequence[Mapping[str, Any]], *, dry_run: bool = False,
              force: bool = False) -> list[dict[str, Any]]:
    """Server-side apply every object, all or nothing.

    First every object is sent with dryRun=All (the server validates it, persisting nothing); only
    when all pass are they written. If a write fails mid-way, what was written is undone in reverse
    (ScaledObjects deleted with Orphan so an adopted HPA survives, then restored from the saved
    original) and the error is raised.
    """
    for obj in objects:
        cluster.apply(obj, dry_run=True, force=force)
    if dry_run:
        return [dict(o) for o in objects]
    written: list[tuple[Mapping[str, Any], dict[str, Any] | None]] = []
    results = []
    try:
        for obj in objects:
            api_version, kind, name, ns = _ident(obj)
            before = cluster.get_or_none(api_version, kind, name, ns)
            results.append(cluster.apply(obj, force=force))
            written.append((obj, before))
    except GpuscaleError as exc:
        undo_errors = _undo(cluster, written)
        if undo_errors:
            exc.why += f" (and undoing the partial write failed: {'; '.join(undo_errors)})"
        else:
            exc.why += f" (nothing changed: {len(written)} object(s) written before the failure were undone)"
        raise
    return results


def _undo(cluster: Cluster, written: Sequence[tuple[Mapping[str, Any], dict[str, Any] | None]]) -> list[str]:
    errors = []
    for obj, before in reversed(written):
        api_version, kind, name, ns = _ident(obj)
        try:
            if before is None:
                if kind == SO_KIND:
                    rollback(cluster, name, ns)
                else:
                    cluster.delete(api_version, kind, name, ns, propagation_policy="Orphan")
            else:
                current = cluster.get(api_version, kind, name, ns)
                restored = _strip(before)
                restored["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
                cluster.replace(restored)
        except GpuscaleError as exc:
            errors.append(exc.line())
    return errors


def rollback(cluster: Cluster, name: str, namespace: str | None, *, dry_run: bool = False) -> dict[str, Any]:
    """Undo a migration: delete the ScaledObject with Orphan propagation, then restore the original HPA.

    Deleting the ScaledObject normally garbage-collects the HPA it adopted; Orphan keeps it, so the
    workload always has an autoscaler. The HPA is then rewritten from the original saved on the
    ScaledObject (spec, labels, annotations), without the ownerReference; or re-created if gone.
    KEDA is not paused first: pausing makes KEDA delete the HPA, which would open a gap.
    """
    so = cluster.get(builders.KEDA_API, SO_KIND, name, namespace)
    saved = ((so.get("metadata") or {}).get("annotations") or {}).get(builders.ORIGINAL_HPA)
    if not saved:
        raise InputError(f"cannot roll back ScaledObject {namespace}/{name}",
                         f"it has no {builders.ORIGINAL_HPA} annotation (not made by migrate-hpa)",
                         "delete it by hand with: kubectl delete scaledobject --cascade=orphan")
    try:
        original = json.loads(saved)
    except ValueError:
        raise InputError(f"cannot roll back ScaledObject {namespace}/{name}",
                         f"its {builders.ORIGINAL_HPA} annotation is not JSON", "restore the HPA by hand") from None
    ns = (so.get("metadata") or {}).get("namespace") or namespace
    original.setdefault("metadata", {})["namespace"] = ns
    hpa_name = original["metadata"]["name"]
    restored = json.loads(json.dumps(original))
    restored["apiVersion"] = HPA_API if original.get("apiVersion") in (None, "autoscaling/v2") \
        else original["apiVersion"]
    cluster.delete(builders.KEDA_API, SO_KIND, name, ns, propagation_policy="Orphan", dry_run=dry_run)
    current = cluster.get_or_none(restored["apiVersion"], HPA_KIND, hpa_name, ns)
    if current is None:
        return cluster.create(restored, dry_run=dry_run)
    restored["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
    return cluster.replace(restored, dry_run=dry_run)
