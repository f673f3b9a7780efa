"""The cluster side of migrate-hpa: read HPAs with their targets, preflight, write all-or-nothing,
and roll back. Talks to the cluster only through the `Cluster` gateway passed in (no kubernetes import)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.autoscale import builders
from kubectl_gpuscale.autoscale.hpa import HPA_KIND, RESTORED_METADATA, quantity
from kubectl_gpuscale.autoscale.querycheck import NameForms, PromSource, check_query
from kubectl_gpuscale.errors import (
    ConflictError,
    ForbiddenError,
    GpuscaleError,
    InputError,
    InvalidError,
    NotFoundError,
)
from kubectl_gpuscale.facts import Targets
from kubectl_gpuscale.facts import keda as keda_facts
from kubectl_gpuscale.facts import knative as kfacts
from kubectl_gpuscale.names import KEDA_TRANSFER_OWNERSHIP, ORIGINAL_HPA

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


def read_inputs(
    cluster: Cluster,
    namespace: str | None,
    names: Sequence[str],
    *,
    selector: str | None = None,
    services: bool = False,
) -> ClusterInputs:
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
        ns = cluster.namespace_or_default(meta.get("namespace") or namespace)
        owner = _owner_so(hpa)
        if owner:
            so = cluster.get_or_none(builders.KEDA_API, SO_KIND, owner, ns)
            saved = ((so or {}).get("metadata") or {}).get("annotations", {}).get(ORIGINAL_HPA)
            if not saved:
                out.skipped.append(
                    (f"{ns}/{meta.get('name')}", f"managed by ScaledObject {owner} (not ours)")
                )
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
                target = cluster.get(
                    str(ref.get("apiVersion") or "apps/v1"), str(ref["kind"]), str(ref["name"]), ns
                )
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


def knative_version(cluster: Cluster) -> kfacts.Version | None:
    """Knative Serving's version from its webhook Deployment (version label or image tag), or None."""
    try:
        deploy = cluster.get_or_none("apps/v1", "Deployment", "webhook", "knative-serving")
    except ForbiddenError:
        return None
    if not deploy:
        return None
    from kubectl_gpuscale.facts.detect import workload_version

    found, _ = workload_version(deploy)
    return (found.major, found.minor) if found else None


def _keda_preflight(
    cluster: Cluster, objects: Sequence[Mapping[str, Any]], targets: Targets | None
) -> list[str]:
    """KEDA is served, can adopt the HPAs, and its webhook takes the ScaledObjects; warnings otherwise."""
    warnings: list[str] = []
    if not cluster.serves(builders.KEDA_API, SO_KIND):
        raise GpuscaleError(
            "cannot migrate",
            "KEDA is not installed (no scaledobjects.keda.sh served)",
            "run: kubectl gpuscale install keda",
        )
    if targets is None:
        from kubectl_gpuscale.facts.detect import detect_targets

        targets = detect_targets(cluster)
    version = targets.keda
    if version is None:
        warnings.append(
            "KEDA's version is unknown (no keda-operator Deployment found): adopting an HPA "
            "needs KEDA >= 2.11"
        )
    elif not keda_facts.holds("transfer-hpa-ownership", version) and any(
        (o.get("metadata") or {}).get("annotations", {}).get(KEDA_TRANSFER_OWNERSHIP) == "true"
        for o in objects
        if o.get("kind") == SO_KIND
    ):
        raise GpuscaleError(
            "cannot migrate",
            f"KEDA {version} cannot adopt an existing HPA (transfer-hpa-ownership needs >= 2.11)",
            "upgrade KEDA (kubectl gpuscale install keda), or delete the HPA first",
        )
    for obj in objects:
        if obj.get("kind") == SO_KIND:
            why = keda_facts.webhook_fallback_rejection(obj, version)
            if why:
                meta = obj.get("metadata") or {}
                raise GpuscaleError(
                    f"cannot migrate to ScaledObject {meta.get('namespace')}/{meta.get('name')}",
                    f"KEDA {version}'s admission webhook rejects it: {why}",
                    "set metricType: AverageValue on the triggers, or upgrade KEDA to >= 2.17.1",
                )
    if (
        cluster.get_or_none(
            "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "keda-admission"
        )
        is None
    ):
        warnings.append(
            "KEDA's admission webhook (keda-admission) was not found: conflicting "
            "ScaledObjects/HPAs will not be rejected"
        )
    return warnings


def preflight(
    cluster: Cluster, objects: Sequence[Mapping[str, Any]], targets: Targets | None = None
) -> list[str]:
    """Check the cluster can take the objects; raise when it cannot, return warnings otherwise.

    ``targets`` are the versions the objects were built for (detected when not given): an object
    that KEDA's admission webhook of that version rejects stops the migration here, before any write.
    """
    warnings: list[str] = []
    kinds = {(o.get("apiVersion"), o.get("kind")) for o in objects}
    if (builders.KEDA_API, SO_KIND) in kinds:
        warnings += _keda_preflight(cluster, objects, targets)
    if (builders.HTTP_API, "HTTPScaledObject") in kinds and not cluster.serves(
        builders.HTTP_API, "HTTPScaledObject"
    ):
        raise GpuscaleError(
            "cannot migrate with --scale-to-zero",
            "the KEDA HTTP add-on is not installed",
            "run: kubectl gpuscale install keda-http-add-on, or print the YAML with -o yaml",
        )
    if (builders.KNATIVE_API, "Service") in kinds:
        if not cluster.serves(builders.KNATIVE_API, "Service"):
            raise GpuscaleError(
                "cannot migrate --to knative",
                "Knative Serving is not installed",
                "run: kubectl gpuscale install knative",
            )
        warnings += knative_preflight(
            cluster,
            [o for o in objects if (o.get("apiVersion"), o.get("kind")) == (builders.KNATIVE_API, "Service")],
        )
    return warnings


def knative_preflight(cluster: Cluster, services: Sequence[Mapping[str, Any]]) -> list[str]:
    """Refuse, before writing, what Knative's webhook would reject for this cluster's settings: a
    `config-features` flag the Service needs left disabled, containerConcurrency above the cluster's
    container-concurrency-max-limit. Warnings when the settings cannot be read."""
    try:
        features_cm = cluster.get_or_none("v1", "ConfigMap", "config-features", "knative-serving")
        defaults_cm = cluster.get_or_none("v1", "ConfigMap", "config-defaults", "knative-serving")
    except ForbiddenError as exc:
        return [
            f"Knative's settings (knative-serving ConfigMaps) not readable ({exc.why}): the config-features "
            "flags the Service needs are not checked"
        ]
    features = (features_cm or {}).get("data") or {}
    defaults = (defaults_cm or {}).get("data") or {}
    off: dict[str, list[str]] = {}
    for svc in services:
        spec = ((svc.get("spec") or {}).get("template") or {}).get("spec") or {}
        name = f"{(svc.get('metadata') or {}).get('namespace')}/{(svc.get('metadata') or {}).get('name')}"
        for flag in kfacts.flags_needed(spec):
            if not kfacts.flag_enabled(features, flag):
                off.setdefault(flag.key, []).append(name)
        limit = defaults.get("container-concurrency-max-limit")
        cc = spec.get("containerConcurrency")
        if limit is not None and str(limit).strip().isdigit() and isinstance(cc, int) and cc > int(limit):
            raise GpuscaleError(
                f"cannot migrate --to knative ({name})",
                f"containerConcurrency {cc} is above this cluster's container-concurrency-max-limit "
                f"{limit} (config-defaults)",
                "pass a lower concurrency (--max-num-seqs of the engine) "
                "or raise the limit in knative-serving/config-defaults",
            )
    if off:
        keys = sorted(off)
        patch = json.dumps({"data": {k: "enabled" for k in keys}}, separators=(",", ":"))
        raise GpuscaleError(
            "cannot migrate --to knative",
            f"knative-serving/config-features leaves {', '.join(keys)} disabled and the Service "
            f"needs them (Knative's webhook would reject it)",
            f"enable them: kubectl -n knative-serving patch configmap config-features --type merge "
            f"-p '{patch}' (or kubectl gpuscale install knative --set config-features.<flag>=enabled)",
        )
    return []


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
                    out.append(
                        QueryFinding(
                            "warning", f"{where}: {check.error.what}: {check.error.why}; {check.error.fix}"
                        )
                    )
                    continue
                out.append(
                    QueryFinding(
                        "warning",
                        f"trigger queries not checked: {check.error.what}: "
                        f"{check.error.why}; the migration goes on (check them later "
                        f"with: kubectl gpuscale doctor --prometheus URL)",
                    )
                )
                return out
            if not check.series:
                hold = (
                    f"KEDA holds {fallback} replica(s) (fallback) until it returns one"
                    if fallback
                    else "KEDA errors until it returns one"
                )
                out.append(
                    QueryFinding(
                        "warning",
                        f"{where}: the query returns no series now ({check.why_empty}); "
                        f"{hold}: fix the metric name or labels, or pass --query",
                    )
                )
            elif check.series > 1:
                out.append(
                    QueryFinding(
                        "warning",
                        f"{where}: the query returns {check.series} series now (KEDA "
                        f"needs exactly one): wrap it in sum(...)",
                    )
                )
            elif check.value is None:
                out.append(
                    QueryFinding(
                        "warning",
                        f"{where}: the query returns one series with no value (NaN) "
                        f"now: check the metric is exported",
                    )
                )
            else:
                per = trigger.get("metricType") in (None, "AverageValue")
                wanted = (
                    f" (about {check.wanted_replicas} replica(s) wanted)"
                    if per and check.wanted_replicas is not None
                    else ""
                )
                shown = "-" if threshold is None else f"{threshold:g}"
                out.append(
                    QueryFinding(
                        "ok",
                        f"{where}: one series, {check.value:g} now vs threshold "
                        f"{shown}{' per replica' if per else ''}{wanted}",
                    )
                )
    return out


def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    meta = obj.get("metadata") or {}
    return str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")), meta.get("namespace")


def _strip(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(obj))
    for key in ("managedFields", "uid", "creationTimestamp", "generation", "selfLink"):
        out.get("metadata", {}).pop(key, None)
    out.pop("status", None)
    return out


def _label(kind: str, ns: str | None, name: str) -> str:
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


# ---- writes of unknown outcome ----------------------------------------------------------------------


def outcome_unknown(exc: GpuscaleError) -> bool:
    """Whether a failed write may have been committed all the same.

    The API server answers 401/403/404/409/422 before it stores anything. A timeout, a dropped
    connection or a 5xx gives no such promise: even the API server's own 504 ("request did not
    complete within requested timeout") leaves the write running and able to commit afterwards
    (kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/handlers/finisher/finisher.go,
    asyncFinisher: "the callee goroutine may continue to run after the given context expires").
    """
    return not isinstance(exc, (ForbiddenError, NotFoundError, ConflictError, InvalidError, InputError))


def _landed(cluster: Cluster, obj: Mapping[str, Any], before: Mapping[str, Any] | None) -> str:
    """Read a write of unknown outcome back: "yes" (the object changed), "no", or "unknown" (no answer)."""
    api_version, kind, name, ns = _ident(obj)
    try:
        now = cluster.get_or_none(api_version, kind, name, ns)
    except GpuscaleError:
        return "unknown"
    if now is None:
        return "no" if before is None else "yes"
    if before is None:
        return "yes"
    same = (now.get("metadata") or {}).get("resourceVersion") == (before.get("metadata") or {}).get(
        "resourceVersion"
    )
    return "no" if same else "yes"


def backup_adopted(objects: Sequence[Mapping[str, Any]], context: str | None) -> list[tuple[str, str]]:
    """Write a local backup of every HPA the ScaledObjects adopt (their saved original); (HPA, path) pairs.

    Raises:
        GpuscaleError: a backup cannot be written (then nothing must be written to the cluster).
    """
    from kubectl_gpuscale.autoscale.backup import write_backup

    out = []
    for obj in objects:
        saved = ((obj.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL_HPA)
        if obj.get("kind") != SO_KIND or not saved:
            continue
        original = json.loads(saved)
        meta = original.setdefault("metadata", {})
        meta.setdefault("namespace", (obj.get("metadata") or {}).get("namespace"))
        out.append((f"{meta['namespace']}/{meta.get('name')}", str(write_backup(original, context=context))))
    return out


def apply_all(
    cluster: Cluster, objects: Sequence[Mapping[str, Any]], *, dry_run: bool = False, force: bool = False
) -> list[dict[str, Any]]:
    """Server-side apply every object, all or nothing.

    First every object is sent with dryRun=All (the server validates it, persisting nothing); only
    when all pass are they written. If a write fails mid-way, what was written is undone in reverse
    (a ScaledObject by `rollback`, so an HPA KEDA already adopted gets its original back) and the
    error is raised. A write that failed with no clear answer (timeout, dropped connection, 5xx)
    may have landed: it is read back, and undone too when it did; the error never says "nothing
    changed" unless everything written was undone and every outcome is known.
    """
    for obj in objects:
        cluster.apply(obj, dry_run=True, force=force)
    if dry_run:
        return [dict(o) for o in objects]
    written: list[tuple[Mapping[str, Any], dict[str, Any] | None]] = []
    results = []
    for obj in objects:
        api_version, kind, name, ns = _ident(obj)
        try:
            before = cluster.get_or_none(api_version, kind, name, ns)
        except GpuscaleError as exc:
            _explain_undo(exc, cluster, written, None)
            raise
        try:
            results.append(cluster.apply(obj, force=force))
        except GpuscaleError as exc:
            landed = _landed(cluster, obj, before) if outcome_unknown(exc) else "no"
            if landed != "no":
                written.append((obj, before))
            _explain_undo(exc, cluster, written, (obj, landed) if outcome_unknown(exc) else None)
            raise
        written.append((obj, before))
    return results


def _explain_undo(
    exc: GpuscaleError,
    cluster: Cluster,
    written: Sequence[tuple[Mapping[str, Any], dict[str, Any] | None]],
    uncertain: tuple[Mapping[str, Any], str] | None,
) -> None:
    """Undo what was written and say exactly what the cluster holds now, in ``exc.why``."""
    undone, failed = _undo(cluster, written)
    parts = []
    if uncertain is not None:
        _api_version, kind, name, ns = _ident(uncertain[0])
        label = _label(kind, ns, name)
        parts.append(
            {
                "yes": f"{label} was written all the same (read back after the failure)",
                "no": f"{label} was not there when read back after the failure (check again with: kubectl "
                f"get {kind.lower()} {name}{' -n ' + ns if ns else ''})",
                "unknown": f"{label} may have been written (reading it back failed too)",
            }[uncertain[1]]
        )
    if failed:
        parts.append("undoing the partial write failed: " + "; ".join(failed))
        if undone:
            parts.append("undone: " + ", ".join(undone))
    elif uncertain is None or uncertain[1] == "yes":
        parts.append(
            f"nothing changed: {len(undone)} object(s) written were undone"
            + (f" ({', '.join(undone)})" if undone else "")
        )
    else:
        parts.append(
            f"{len(undone)} object(s) written were undone" + (f" ({', '.join(undone)})" if undone else "")
        )
    exc.why += f" ({'; '.join(parts)})"
    exc.args = (exc.line(),)


def _undo(
    cluster: Cluster, written: Sequence[tuple[Mapping[str, Any], dict[str, Any] | None]]
) -> tuple[list[str], list[str]]:
    """Undo writes in reverse; (what was undone, what could not be, each with its error)."""
    undone, errors = [], []
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
            undone.append(_label(kind, ns, name))
        except GpuscaleError as exc:
            errors.append(exc.line())
    return undone, errors


# ---- rollback ---------------------------------------------------------------------------------------

_HPA_API_VERSION = re.compile(r"autoscaling/v[0-9]+((alpha|beta)[0-9]+)?")
_RESTORE_ATTEMPTS = 5


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 80 else text[:77] + "..."


def _target_of(ref: Any, *, default_kind: str | None = None) -> tuple[str, str, str] | None:
    """(group, kind, name) of a scaleTargetRef; KEDA defaults apiVersion apps/v1 and kind Deployment.

    The group is "" when an HPA's ref has no apiVersion (optional in CrossVersionObjectReference):
    then only kind and name are compared."""
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    api = str(ref.get("apiVersion") or ("apps/v1" if default_kind else ""))
    return api.rpartition("/")[0], str(ref.get("kind") or default_kind or ""), str(ref["name"])


def _string_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _malformed_metadata(meta: Mapping[str, Any]) -> str | None:
    """Why the restored metadata (labels, annotations, ownerReferences, finalizers) is the wrong shape, or None."""
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not _string_map(meta[key]):
            return f"has metadata.{key} that is not a map of strings"
    owners = meta.get("ownerReferences")
    if owners is not None and not (
        isinstance(owners, list)
        and all(
            isinstance(o, Mapping)
            and all(isinstance(o.get(k), str) and o.get(k) for k in ("apiVersion", "kind", "name", "uid"))
            for o in owners
        )
    ):
        return "has metadata.ownerReferences that are not {apiVersion, kind, name, uid} entries"
    finalizers = meta.get("finalizers")
    if finalizers is not None and not (
        isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)
    ):
        return "has metadata.finalizers that are not a list of strings"
    return None


def validate_original(
    saved: Any,
    *,
    namespace: str,
    hpa_name: str | None,
    target: tuple[str, str, str] | None,
    scaled_object: str,
    source: str,
) -> dict[str, Any]:
    """The HPA a rollback may write, from a saved original that anyone able to edit the ScaledObject could forge.

    Accepted only when it is a HorizontalPodAutoscaler (apiVersion autoscaling/*) in ``namespace``,
    named ``hpa_name`` (the ScaledObject's spec.advanced.horizontalPodAutoscalerConfig.name) and
    scaling ``target`` (the ScaledObject's scaleTargetRef as (group, kind, name)); the metadata kept
    is `hpa.RESTORED_METADATA`, type-checked. Anything else raises `InputError`, before any write.
    """
    so_name = scaled_object.split("/")[-1]
    fix = (
        "nothing was written; pass the backup file --apply wrote for this HPA (its path was printed)"
        if source.startswith("backup")
        else "nothing was written; the saved HPA was changed after migrate-hpa wrote it: inspect it (kubectl get "
        f"scaledobject {so_name} -n {namespace} -o yaml) and restore the HPA from the backup --apply wrote "
        "(--rollback NAME --from-backup FILE) or by hand"
    )

    def refuse(why: str) -> InputError:
        return InputError(f"refusing to roll back ScaledObject {scaled_object}", f"{source} {why}", fix)

    if not isinstance(saved, Mapping):
        raise refuse(f"is not an object but {_shown(type(saved).__name__)}")
    kind, api_version, meta = saved.get("kind"), saved.get("apiVersion"), saved.get("metadata")
    meta_name = meta.get("name") if isinstance(meta, Mapping) else None
    if kind != HPA_KIND or not isinstance(api_version, str) or not _HPA_API_VERSION.fullmatch(api_version):
        raise refuse(
            f"describes {_shown(kind)} {_shown(meta_name)} ({_shown(api_version)}), not a "
            "HorizontalPodAutoscaler (autoscaling/*)"
        )
    if not isinstance(meta, Mapping) or not isinstance(meta_name, str) or not meta_name:
        raise refuse("has no metadata.name")
    saved_ns = meta.get("namespace") or namespace
    if saved_ns != namespace:
        raise refuse(f"is in namespace {_shown(saved_ns)}, not {namespace}")
    if hpa_name is not None and meta_name != hpa_name:
        raise refuse(
            f"names HPA {_shown(meta_name)}, but the ScaledObject adopted HPA {hpa_name} "
            "(spec.advanced.horizontalPodAutoscalerConfig.name)"
        )
    malformed = _malformed_metadata(meta)
    if malformed:
        raise refuse(malformed)
    spec = saved.get("spec")
    if not isinstance(spec, Mapping):
        raise refuse("has no spec")
    saved_target = _target_of(spec.get("scaleTargetRef"))
    if saved_target is None:
        raise refuse("has no spec.scaleTargetRef")
    if target is not None and (
        saved_target[1:] != target[1:] or (saved_target[0] and target[0] and saved_target[0] != target[0])
    ):
        raise refuse(
            f"scales {_shown(saved_target[1])}/{_shown(saved_target[2])} "
            f"({_shown(saved_target[0] or 'core')}), but the ScaledObject scales {target[1]}/{target[2]} "
            f"({target[0] or 'core'})"
        )
    kept: dict[str, Any] = {key: meta[key] for key in RESTORED_METADATA if meta.get(key)}
    kept["namespace"] = namespace
    restored: dict[str, Any] = json.loads(
        json.dumps({"apiVersion": api_version, "kind": HPA_KIND, "metadata": kept, "spec": spec})
    )
    return restored


def _same_hpa(live: Mapping[str, Any] | None, restored: Mapping[str, Any]) -> bool:
    """Whether the live HPA is the restored one: spec and the restored metadata, field for field."""
    if live is None:
        return False
    meta, want = live.get("metadata") or {}, restored.get("metadata") or {}
    if live.get("spec") != restored.get("spec"):
        return False
    for key in ("labels", "annotations", "finalizers"):
        if (meta.get(key) or None) != (want.get(key) or None):
            return False
    refs = [(r.get("kind"), r.get("name"), r.get("uid")) for r in meta.get("ownerReferences") or []]
    return refs == [(r.get("kind"), r.get("name"), r.get("uid")) for r in want.get("ownerReferences") or []]


def _live_owners(cluster: Cluster, restored: dict[str, Any], notes: list[str]) -> None:
    """Keep only ownerReferences whose owner still exists with the same uid.

    An ownerReference to a gone owner makes the garbage collector delete the HPA
    (kubernetes pkg/controller/garbagecollector: attemptToDeleteItem deletes a dependent whose
    owners are all absent), so such a reference is dropped with a note rather than restored.
    """
    meta = restored["metadata"]
    kept = []
    for ref in meta.get("ownerReferences") or []:
        where = f"{ref['kind']} {ref['name']}"
        if ref["kind"] == SO_KIND and ref["apiVersion"].startswith("keda.sh/"):
            notes.append(f"ownerReference to {where} not restored: KEDA's own")
            continue
        try:
            resource = cluster.resource(ref["apiVersion"], ref["kind"])
            owner = cluster.get_or_none(
                ref["apiVersion"],
                ref["kind"],
                ref["name"],
                meta["namespace"] if resource.namespaced else None,
            )
        except GpuscaleError as exc:
            notes.append(
                f"ownerReference to {where} not restored: its owner could not be read ({exc.why}); a "
                "reference to a missing owner lets the garbage collector delete the HPA"
            )
            continue
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref["uid"]:
            notes.append(
                f"ownerReference to {where} not restored: that owner was deleted (or re-created with "
                "another uid); restoring it would let the garbage collector delete the HPA"
            )
            continue
        kept.append(ref)
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)


def _write_hpa(cluster: Cluster, restored: Mapping[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """Create or replace the HPA with ``restored`` (no write when it already is); on 409 re-read and retry
    (the HPA controller writes its status every 15 s, KEDA may re-create or rewrite it: what was read a
    moment ago goes stale)."""
    api_version, _, name, ns = _ident(restored)
    last: ConflictError | None = None
    for _ in range(_RESTORE_ATTEMPTS):
        current = cluster.get_or_none(api_version, HPA_KIND, name, ns)
        if _same_hpa(current, restored):
            assert current is not None
            return current
        body = json.loads(json.dumps(restored))
        try:
            if current is None:
                return cluster.create(body, dry_run=dry_run)
            body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
            return cluster.replace(body, dry_run=dry_run)
        except ConflictError as exc:
            last = exc
    assert last is not None
    last.why += f" ({_RESTORE_ATTEMPTS} attempts, re-reading the HPA each time)"
    raise last


@dataclass
class Rollback:
    """What a rollback did: the HPA as written, whether the ScaledObject was deleted, and notes."""

    hpa: dict[str, Any]
    scaled_object_deleted: bool
    notes: list[str] = field(default_factory=list)


def _stopped(exc: GpuscaleError, state: str, so: str, command: str) -> GpuscaleError:
    """The error of a rollback that stopped: the step's failure, the cluster's state, how to finish."""
    fix = f"{exc.fix}; then " if exc.fix and isinstance(exc, ForbiddenError) else ""
    return GpuscaleError(
        f"cannot roll back ScaledObject {so}",
        f"{exc.what}: {exc.why}; {state}",
        f"{fix}finish with: {command}",
    )


@dataclass
class RollbackPlan:
    """A validated rollback: the ScaledObject (None when only a backup is restored) and the HPA to write."""

    name: str
    namespace: str
    scaled_object: dict[str, Any] | None
    hpa: dict[str, Any]
    source: str
    command: str


def plan_rollback(
    cluster: Cluster,
    name: str,
    namespace: str | None,
    *,
    backup: Mapping[str, Any] | None = None,
    backup_path: str | None = None,
) -> RollbackPlan:
    """Read ScaledObject ``name`` and validate the HPA to restore (its annotation, or ``backup``); no writes.

    Raises:
        InputError: the saved HPA is missing, not JSON, or fails `validate_original`.
        NotFoundError: no such ScaledObject and no backup.
    """
    ns = cluster.namespace_or_default(namespace)
    so_label = f"{ns}/{name}"
    command = f"kubectl gpuscale migrate-hpa --rollback {name} -n {ns}" + (
        f" --from-backup {backup_path}" if backup_path else ""
    )
    so = cluster.get_or_none(builders.KEDA_API, SO_KIND, name, ns)
    if so is None and backup is None:
        raise NotFoundError(
            f"cannot roll back ScaledObject {so_label}",
            "it does not exist",
            "check the name and -n; to restore an HPA whose ScaledObject is gone, pass the backup "
            "--apply wrote: --rollback NAME --from-backup FILE",
        )
    hpa_name: str | None = None
    target = None
    if so is not None:
        spec = so.get("spec") or {}
        hpa_name = ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("name")
        if not hpa_name:
            raise InputError(
                f"refusing to roll back ScaledObject {so_label}",
                "it adopted no HPA (spec.advanced.horizontalPodAutoscalerConfig.name is empty)",
                "nothing was written; it was not made by migrate-hpa: delete it by hand with "
                f"kubectl delete scaledobject {name} -n {ns} --cascade=orphan",
            )
        target = _target_of(spec.get("scaleTargetRef"), default_kind="Deployment")
    if backup is not None:
        saved: Any = backup
        source = f"backup {backup_path or ''}".strip()
    else:
        assert so is not None
        text = ((so.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL_HPA)
        if not text:
            raise InputError(
                f"cannot roll back ScaledObject {so_label}",
                f"it has no {ORIGINAL_HPA} annotation (not made by migrate-hpa)",
                "nothing was written; restore the HPA from the backup --apply wrote "
                "(--rollback NAME --from-backup FILE), or delete the ScaledObject by hand with: "
                f"kubectl delete scaledobject {name} -n {ns} --cascade=orphan",
            )
        try:
            saved = json.loads(text)
        except ValueError:
            raise InputError(
                f"refusing to roll back ScaledObject {so_label}",
                f"its {ORIGINAL_HPA} annotation is not JSON",
                "nothing was written; restore the HPA from the backup --apply wrote "
                "(--rollback NAME --from-backup FILE)",
            ) from None
        source = f"the saved HPA ({ORIGINAL_HPA} annotation)"
    if target is None and isinstance(saved, Mapping) and isinstance(saved.get("metadata"), Mapping):
        live_name = saved["metadata"].get("name")
        live = cluster.get_or_none(HPA_API, HPA_KIND, live_name, ns) if isinstance(live_name, str) else None
        target = _target_of((live or {}).get("spec", {}).get("scaleTargetRef"))
    restored = validate_original(
        saved, namespace=ns, hpa_name=hpa_name, target=target, scaled_object=so_label, source=source
    )
    return RollbackPlan(name, ns, so, restored, source, command)


def _scaled_object_gone(cluster: Cluster, name: str, namespace: str) -> bool:
    """Read back after a delete of unknown outcome: the ScaledObject is gone or being deleted."""
    try:
        after = cluster.get_or_none(builders.KEDA_API, SO_KIND, name, namespace)
    except GpuscaleError:
        return False
    return after is None or bool((after.get("metadata") or {}).get("deletionTimestamp"))


def rollback(
    cluster: Cluster,
    name: str,
    namespace: str | None,
    *,
    dry_run: bool = False,
    backup: Mapping[str, Any] | None = None,
    backup_path: str | None = None,
) -> Rollback:
    """Undo a migration without ever losing the HPA: restore it first, then delete the ScaledObject.

    The original comes from the ScaledObject's original-hpa annotation, or from ``backup`` (a file
    --apply wrote), validated before any write (`plan_rollback`, `validate_original`). Then:

    1. the HPA is created or replaced with the original (re-read and retried on 409); a write of
       unknown outcome is read back;
    2. only then is the ScaledObject deleted, with propagationPolicy Orphan (a normal delete
       garbage-collects the HPA it owns). KEDA is not paused first: pausing makes KEDA delete the HPA;
    3. the HPA is read again and restored once more if it changed: removing KEDA's ownerReference
       in step 1 makes KEDA reconcile the ScaledObject (Owns(HorizontalPodAutoscaler) enqueues the
       old owner; kedacore/keda controllers/keda/scaledobject_controller.go) and updateHPAIfNeeded
       (controllers/keda/hpa.go) rewrites the HPA until the ScaledObject is gone.

    If step 1 or 2 fails, the ScaledObject and its annotation stay and the error says what the
    cluster holds and the one command that finishes the job. If step 3 fails, the original is
    written to a local backup file and the error names it.
    """
    plan = plan_rollback(cluster, name, namespace, backup=backup, backup_path=backup_path)
    ns, so, restored, command = plan.namespace, plan.scaled_object, plan.hpa, plan.command
    so_label = f"{ns}/{name}"
    hpa_label = f"{ns}/{restored['metadata']['name']}"
    notes: list[str] = []
    _live_owners(cluster, restored, notes)
    kept = (
        f"ScaledObject {so_label} and the original HPA saved on it are kept"
        if so is not None
        else "no ScaledObject is involved"
    )

    try:
        written = _write_hpa(cluster, restored, dry_run=dry_run)
    except GpuscaleError as exc:
        if dry_run or not outcome_unknown(exc):
            raise _stopped(
                exc, f"the rollback changed nothing: {kept}, HPA {hpa_label} is unchanged", so_label, command
            ) from None
        try:
            live = cluster.get_or_none(restored["apiVersion"], HPA_KIND, restored["metadata"]["name"], ns)
        except GpuscaleError:
            raise _stopped(
                exc,
                f"HPA {hpa_label} may or may not have been restored (reading it back failed too); {kept}",
                so_label,
                command,
            ) from None
        if not _same_hpa(live, restored):
            raise _stopped(
                exc,
                f"HPA {hpa_label} was not restored when read back after the failure (a write still "
                f"in flight may land later; the command below is safe either way); {kept}",
                so_label,
                command,
            ) from None
        written = live or {}
        notes.append(f"the HPA write got no clear answer ({exc.why}); read back: it is restored")
    if so is None:
        notes.append(f"ScaledObject {so_label} not found: only the HPA was restored")
        return Rollback(written, False, notes)

    try:
        cluster.delete(builders.KEDA_API, SO_KIND, name, ns, propagation_policy="Orphan", dry_run=dry_run)
    except GpuscaleError as exc:
        gone = not dry_run and outcome_unknown(exc) and _scaled_object_gone(cluster, name, ns)
        if not gone:
            raise _stopped(
                exc,
                f"HPA {hpa_label} is restored (its original, no ScaledObject owner), but "
                f"ScaledObject {so_label} is still there and KEDA may take the HPA over again "
                f"until it is deleted",
                so_label,
                command,
            ) from None
        notes.append(f"the ScaledObject delete got no clear answer ({exc.why}); read back: it is deleted")
    if dry_run:
        return Rollback(written, True, notes)

    try:
        live = cluster.get_or_none(restored["apiVersion"], HPA_KIND, restored["metadata"]["name"], ns)
        if not _same_hpa(live, restored):
            written = _write_hpa(cluster, restored, dry_run=False)
            notes.append("KEDA rewrote the HPA before its ScaledObject was deleted: restored it again")
    except GpuscaleError as exc:
        from kubectl_gpuscale.autoscale.backup import write_backup

        try:
            saved_at = str(write_backup(restored, context=cluster.context))
        except GpuscaleError as backup_exc:
            raise _stopped(
                exc,
                f"ScaledObject {so_label} is deleted; HPA {hpa_label} may hold what KEDA wrote; the "
                f"original could not be saved locally either ({backup_exc.why}): "
                f"{json.dumps(restored)}",
                so_label,
                "kubectl replace -f FILE (that JSON)",
            ) from None
        raise _stopped(
            exc,
            f"ScaledObject {so_label} is deleted; HPA {hpa_label} may hold what KEDA wrote; the "
            f"original is saved in {saved_at}",
            so_label,
            f"kubectl gpuscale migrate-hpa --rollback {name} -n {ns} --from-backup {saved_at}",
        ) from None
    return Rollback(written, True, notes)
