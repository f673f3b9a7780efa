"""Uninstall: delete what `install` created for a component, and nothing else.

The install record (ConfigMap gpuscale-system/gpuscale-config) says what to delete, but
anyone who can edit that ConfigMap can write it, so nothing in it is taken on trust:

1. every recorded object must lie inside what the component's release can contain
   (`ownership.outside_catalogue`); one entry outside it refuses the whole uninstall;
2. each live object must carry this install's labels (managed-by, component, install id),
   else it is kept and the plan says why;
3. objects that existed before the install ("adopted") are never deleted, and neither is
   a namespace that holds anything this install did not create.

The plan is printed before anything is deleted; the CLI asks for confirmation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale import config
from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError, InputError, NotFoundError
from kubectl_gpuscale.install import helm as helm_mod
from kubectl_gpuscale.install import manifests as mf
from kubectl_gpuscale.install import ownership, preflight
from kubectl_gpuscale.install.catalog import COMPONENTS, DEPENDENTS, Component
from kubectl_gpuscale.install.installer import release_revisions
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

# Kinds the cluster fills a namespace with by itself (not objects a user made).
AUTOMATIC_KINDS = frozenset({"Event", "Endpoints", "EndpointSlice", "Lease", "ControllerRevision"})
AUTOMATIC_OBJECTS = frozenset({("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")})
# Aggregated APIs that serve readings about objects (PodMetrics, external metrics), not objects.
DERIVED_GROUPS = frozenset({"metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io"})
SHOWN = 5


@dataclass
class UninstallPlan:
    """What uninstalling one component will do."""

    component: Component
    record: config.InstallRecord
    deletes: list[dict[str, str]]
    kept: list[str]
    helm_argv: list[str]
    dependents: list[str]
    gone: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The human-readable plan."""
        c = self.component
        out = [
            f"Uninstall {c.title} {self.record.version} (installed with {self.record.method}, "
            f"install id {self.record.install_id or 'none'}):"
        ]
        if self.helm_argv:
            out.append("  - run: " + " ".join(self.helm_argv))
        out += [f"  - delete {mf.describe(r)}" for r in self.deletes]
        out += [f"  - keep {k}" for k in self.kept]
        out += [f"  - already gone: {g}" for g in self.gone]
        if not self.deletes and not self.helm_argv:
            out.append("  (nothing to delete)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": "UninstallPlan",
            "component": self.component.name,
            "version": self.record.version,
            "method": self.record.method,
            "installId": self.record.install_id,
            "delete": self.deletes,
            "keep": self.kept,
            "gone": self.gone,
            "helm": self.helm_argv,
            "dependents": self.dependents,
        }


def dependents_of(cluster: Cluster, name: str) -> list[str]:
    """ScaledObjects, HTTPScaledObjects, Knative Services... that stop working without `name`."""
    out = []
    for api, kind in DEPENDENTS.get(name, ()):
        for obj in cluster.list_optional(api, kind) or []:
            meta = obj.get("metadata") or {}
            out.append(f"{kind} {meta.get('namespace')}/{meta.get('name')}")
    return out


def _text(ref: Any) -> str:
    try:
        return mf.describe(ref)
    except (KeyError, TypeError, AttributeError):
        return json.dumps(ref, sort_keys=True, default=str)[:120]


def _shown(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")


def foreign_objects(cluster: Cluster, namespace: str, component: str, install_id: str | None) -> list[str]:
    """Objects in `namespace` this install did not create (what the cluster makes by itself, and
    objects owned by another object, aside). A kind that may not be listed counts as foreign."""
    out: list[str] = []
    for group, versions in cluster.api_groups().items():
        if not versions or group in DERIVED_GROUPS:
            continue
        api_version = f"{group}/{versions[0]}" if group else versions[0]
        for res in cluster.api_resources(api_version) or []:
            kind = res.get("kind", "")
            if (
                "/" in res.get("name", "")
                or not res.get("namespaced")
                or "list" not in (res.get("verbs") or [])
                or kind in AUTOMATIC_KINDS
            ):
                continue
            try:
                items = cluster.list(api_version, kind, namespace)
            except NotFoundError:
                continue
            except GpuscaleError as exc:  # forbidden, or an aggregated API that does not answer
                out.append(f"{res.get('name')} (cannot list them: {exc.why or exc.what})")
                continue
            for item in items:
                meta = item.get("metadata") or {}
                if meta.get("ownerReferences") or (kind, meta.get("name")) in AUTOMATIC_OBJECTS:
                    continue
                if ownership.not_created_by(item, component, install_id) is not None:
                    out.append(mf.describe(mf.ref(item)))
    return out


def _record_of(
    cluster: Cluster, c: Component
) -> tuple[config.InstallRecord, dict[str, config.InstallRecord]]:
    data = config.read_cluster(cluster)
    recs = config.records(data or {})
    record = recs.get(c.name)
    if record is None:
        found = preflight.find_installed(cluster, c)
        why = (
            f"{c.title} {found.version or ''} is in the cluster, installed with {found.method} by something else"
            if found
            else f"{c.title} is not installed"
        )
        raise NotFoundError(
            f"cannot uninstall {c.name}",
            f"{why}; kubectl gpuscale has no record of installing it "
            f"(ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME})",
            "remove it the way it was installed" if found else "nothing to do",
        )
    return record, recs


def check_record(c: Component, record: config.InstallRecord) -> None:
    """Refuse (deleting nothing) a record that lists anything the component's release cannot contain."""
    refused = [
        f"{_text(r)} ({why})"
        for r in record.objects
        if (why := ownership.outside_catalogue(c, r)) is not None
    ]
    if refused:
        raise GpuscaleError(
            f"refusing to uninstall {c.name}, nothing was deleted",
            f"the install record (ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME}, key "
            f"{config.COMPONENT_PREFIX}{c.name}) lists {len(refused)} object(s) outside the {c.title} release: "
            + "; ".join(refused),
            f"someone edited the record: see who with kubectl get configmap -n {CONFIG_NAMESPACE} "
            f"{CONFIG_NAME} -o yaml --show-managed-fields, and remove the forged entries",
        )
    if record.objects and not record.install_id:
        raise GpuscaleError(
            f"refusing to uninstall {c.name}, nothing was deleted",
            "its install record has no install id (written by a kubectl-gpuscale from before install ids), so no "
            "object can be shown to be one install created",
            "remove the component by hand (kubectl delete -f the release files, or helm uninstall), then delete "
            f"the key {config.COMPONENT_PREFIX}{c.name} from the ConfigMap",
        )


def _release_not_ours(cluster: Cluster, c: Component, install_id: str | None) -> str | None:
    """Why `helm uninstall` must not run (None: a revision of the release carries this install's labels)."""
    try:
        revisions = release_revisions(cluster, c)
    except ForbiddenError as exc:
        return f"cannot tell whether this install made it: {exc.why}"
    if not revisions:
        return "no revision of it exists"
    reasons = [ownership.not_created_by(s, c.name, install_id) for s in revisions]
    if all(reasons):
        return f"not installed by this install: on its latest revision, {reasons[-1]}"
    return None


def plan_uninstall(
    cluster: Cluster, name: str, *, include_crds: bool = False, target: helm_mod.KubeTarget | None = None
) -> UninstallPlan:
    """Plan removing what `install` created for `name`, and nothing else (see the module docstring)."""
    if name not in COMPONENTS:
        raise InputError(f"unknown component {name!r}", f"one of {', '.join(COMPONENTS)}", "")
    c = COMPONENTS[name]
    record, recs = _record_of(cluster, c)
    check_record(c, record)
    other_namespaces = {r.namespace for n, r in recs.items() if n != name}
    other_namespaces |= {
        str(o.get("namespace") or "")
        for n, r in recs.items()
        if n != name
        for o in r.objects
        if isinstance(o, dict)
    }
    deletes: list[dict[str, str]] = []
    kept: list[str] = []
    gone: list[str] = []
    for r in reversed(record.objects):
        text = mf.describe(r)
        if r["kind"] == "CustomResourceDefinition" and not include_crds:
            kept.append(f"{text} (deleting a CRD deletes every object of its kind; --include-crds)")
            continue
        live = cluster.get_or_none(r["apiVersion"], r["kind"], r["name"], r.get("namespace"))
        if live is None:
            gone.append(text)
            continue
        why = ownership.not_created_by(live, name, record.install_id)
        if why:
            kept.append(f"{text} (not created by this install: {why})")
        elif r["kind"] == "Namespace" and r["name"] in other_namespaces:
            kept.append(f"{text} (another installed component uses it)")
        elif r["kind"] == "Namespace" and (
            foreign := foreign_objects(cluster, r["name"], name, record.install_id)
        ):
            kept.append(f"{text} (holds objects this install did not create: {_shown(foreign)})")
        else:
            deletes.append(r)
    kept += [f"{_text(r)} (existed before the install: adopted, never deleted)" for r in record.adopted]
    # namespaces last, CRDs after everything that uses them
    deletes.sort(key=lambda r: {"Namespace": 2, "CustomResourceDefinition": 1}.get(r["kind"], 0))
    argv: list[str] = []
    if record.method == "helm":
        why = _release_not_ours(cluster, c, record.install_id)
        if why:
            kept.append(f"helm release {c.helm.release if c.helm else ''} -n {c.namespace} ({why})")
        else:
            argv = helm_mod.uninstall_argv(c, target=target or helm_mod.KubeTarget())
    return UninstallPlan(c, record, deletes, kept, argv, dependents_of(cluster, name), gone)


def uninstall(cluster: Cluster, up: UninstallPlan, *, dry_run: str = "none") -> list[str]:
    """Carry out an uninstall plan; returns the objects deleted (or that would be).

    Each object is read again just before its deletion: one that lost this install's labels
    meanwhile, or a namespace that gained foreign objects, is left alone.
    """
    done: list[str] = []
    if dry_run == "client":
        return [mf.describe(r) for r in up.deletes]
    if up.helm_argv:
        argv = list(up.helm_argv) + (["--dry-run"] if dry_run == "server" else [])
        helm_mod.run(argv)
    name, install_id = up.component.name, up.record.install_id
    for r in up.deletes:
        live = cluster.get_or_none(r["apiVersion"], r["kind"], r["name"], r.get("namespace"))
        if live is None or ownership.not_created_by(live, name, install_id):
            continue
        if (
            r["kind"] == "Namespace"
            and dry_run == "none"
            and foreign_objects(cluster, r["name"], name, install_id)
        ):
            continue
        gone = cluster.delete(
            r["apiVersion"],
            r["kind"],
            r["name"],
            r.get("namespace"),
            propagation_policy="Background",
            dry_run=dry_run == "server",
        )
        if gone is not None:
            done.append(mf.describe(r))
    if dry_run == "none":
        config.write_cluster(cluster, {config.COMPONENT_PREFIX + name: None})
    return done
