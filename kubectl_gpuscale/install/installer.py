"""Running an install plan: Helm or server-side apply, readiness, and the install record; uninstall.

The service layer between the CLI and the `Cluster` gateway. Output goes through a
`Reporter` the CLI provides (a rich progress display, or nothing in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale import config
from kubectl_gpuscale.errors import InputError, NotFoundError
from kubectl_gpuscale.install import helm as helm_mod
from kubectl_gpuscale.install import manifests as mf
from kubectl_gpuscale.install import plan as plan_mod
from kubectl_gpuscale.install import preflight, readiness
from kubectl_gpuscale.install.catalog import COMPONENTS, DEPENDENTS, Component
from kubectl_gpuscale.install.defaults import DEFAULT_COLD_START_S
from kubectl_gpuscale.install.prepull import DEFAULT_NODE_SELECTOR, build_daemonset, gpu_images

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

COMPONENT_LABEL = "kubectl-gpuscale/component"


class Reporter:
    """Where progress goes. The base class drops everything (tests); the CLI shows it."""

    def note(self, text: str) -> None:
        """An informational line."""

    def warn(self, text: str) -> None:
        """A warning line."""

    def waiting(self, component: str, verdicts: list[readiness.Verdict]) -> None:
        """Readiness progress of one component."""

    def done(self, component: str) -> None:
        """A component finished."""


@dataclass(frozen=True)
class Options:
    """The install flags."""

    method: str = "auto"
    versions: Mapping[str, str] = field(default_factory=dict)
    manifests_dir: str | None = None
    cold_start_s: int = DEFAULT_COLD_START_S
    overrides: Mapping[str, str] = field(default_factory=dict)
    dry_run: str = "none"
    timeout_s: float = 300.0
    force_conflicts: bool = False
    images: Sequence[str] = ()
    node_selector: Mapping[str, str] | None = None
    prometheus: str | None = None
    target: helm_mod.KubeTarget = helm_mod.KubeTarget()
    download: bool = True
    helm_available: bool | None = None
    service_monitor: bool | None = None  # None: decided by preflight (Prometheus Operator CRDs)
    poll_interval_s: float = 2.0


@dataclass
class ComponentResult:
    """What happened to one component."""

    component: str
    version: str
    method: str
    created: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ready: bool | None = None
    helm_output: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"component": self.component, "version": self.version, "method": self.method,
                "created": self.created, "configured": self.configured, "unchanged": self.unchanged,
                "skipped": self.skipped, "ready": self.ready}


@dataclass
class Result:
    """A whole install."""

    plan: plan_mod.Plan
    objects: dict[str, list[dict[str, Any]]]
    components: list[ComponentResult] = field(default_factory=list)
    facts: preflight.Facts | None = None
    prometheus: config.PrometheusRef | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the plan, then what happened."""
        out = self.plan.to_dict()
        out["results"] = [c.to_dict() for c in self.components]
        if self.prometheus:
            out["prometheus"] = {"url": self.prometheus.url, "source": self.prometheus.source}
        return out


def component_labels(name: str) -> dict[str, str]:
    """The labels on objects `install` generates itself."""
    return {**config.MANAGED_LABELS, COMPONENT_LABEL: name}


def build_plan(names: Sequence[str], opts: Options, *, service_monitor: bool = False) -> plan_mod.Plan:
    """The plan for `names` under these options (raises InputError for bad flags)."""
    helm_ok = opts.helm_available if opts.helm_available is not None else helm_mod.helm_binary() is not None
    if opts.method == "helm" and not helm_ok:
        raise InputError("cannot use --method helm", "helm is not on PATH", "install helm or use --method manifests")
    if opts.manifests_dir and opts.method == "helm":
        raise InputError("--manifests and --method helm exclude each other", "--manifests is for the manifest path",
                         "drop one of them")
    method = "manifests" if opts.manifests_dir else opts.method
    try:
        return plan_mod.build(names, method=method, helm_available=helm_ok, versions=opts.versions,
                              cold_start_s=opts.cold_start_s, overrides=opts.overrides,
                              service_monitor=service_monitor, manifests_dir=opts.manifests_dir,
                              images=opts.images, dry_run=opts.dry_run, target=opts.target,
                              timeout_s=opts.timeout_s, prometheus=opts.prometheus)
    except plan_mod.PlanError as exc:
        raise InputError("cannot plan the install", str(exc), "see kubectl gpuscale install -h") from None


def service_monitor_object(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ServiceMonitor for the manifest-installed DCGM exporter (honorLabels keeps pod/namespace)."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "dcgm-exporter", "namespace": namespace, "labels": dict(labels)},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}},
                     "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}]}}


def load_objects(cp: plan_mod.ComponentPlan, opts: Options, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The objects a manifest or generated component will apply, GPU defaults laid over them."""
    c = cp.component
    if cp.method == "generated":
        if not cp.images:
            raise InputError("nothing to pre-pull", "no image given and none found in GPU workloads",
                             "pass --image IMAGE (repeatable)")
        ns = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": c.namespace, "labels": dict(config.MANAGED_LABELS)}}
        ds = build_daemonset(cp.images, namespace=c.namespace, node_selector=opts.node_selector,
                             labels=component_labels(c.name))
        return [ns, ds]
    if cp.method != "manifests":
        return []
    objects: list[dict[str, Any]] = []
    for artifact in cp.artifacts:
        fetched = mf.fetch(artifact, manifests_dir=opts.manifests_dir, download=opts.download, warn=warn)
        objects.extend(mf.parse(fetched.text, fetched.source))
    objects = mf.set_namespaces(objects, c.namespace)
    if not any(o.get("kind") == "Namespace" and o["metadata"].get("name") == c.namespace for o in objects) \
            and any((o.get("metadata") or {}).get("namespace") == c.namespace for o in objects):
        objects.insert(0, {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": c.namespace, "labels": component_labels(c.name)}})
    objects, left = mf.overlay(objects, list(cp.settings))
    objects.extend(mf.configmaps_for(left, component_labels(c.name)))
    for s in left:
        if s.env and not s.configmap:
            warn(f"{s.key}: {s.env[0]} is not in the manifests, so {s.env[1]} was not set")
    if c.name == "dcgm" and any(s.key == "serviceMonitor.enabled" and s.value == "true" for s in cp.settings):
        objects.append(service_monitor_object(c.namespace, component_labels(c.name)))
    return mf.order(objects)


def _kind_served(cluster: Cluster, obj: Mapping[str, Any]) -> bool:
    try:
        cluster.resource(obj["apiVersion"], obj["kind"])
        return True
    except NotFoundError:
        return False


def apply_objects(cluster: Cluster, objects: Sequence[dict[str, Any]], result: ComponentResult, opts: Options,
                  reporter: Reporter) -> None:
    """Server-side apply each object, in order; CRDs are awaited before the objects that need them."""
    dry = opts.dry_run == "server"
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    crd_kinds = {((o.get("spec") or {}).get("group"), ((o.get("spec") or {}).get("names") or {}).get("kind"))
                 for o in crds}
    crds_waited = False
    for obj in objects:
        r = mf.ref(obj)
        text = mf.describe(r)
        group = r["apiVersion"].split("/")[0] if "/" in r["apiVersion"] else ""
        if (group, r["kind"]) in crd_kinds:
            if dry:
                result.skipped.append(f"{text} (its CRD is not created in a server dry run)")
                continue
            if not crds_waited:
                targets = readiness.targets_of(crds)
                readiness.wait(cluster, targets, timeout_s=opts.timeout_s, interval_s=opts.poll_interval_s,
                               what=f"the CRDs of {result.component}")
                crds_waited = True
        if not _kind_served(cluster, obj):
            result.skipped.append(f"{text} (the cluster does not serve {r['apiVersion']} {r['kind']})")
            reporter.warn(f"skipped {text}: the cluster does not serve {r['apiVersion']} {r['kind']}")
            continue
        before = cluster.get_or_none(r["apiVersion"], r["kind"], r["name"], r.get("namespace"))
        after = cluster.apply(obj, dry_run=dry, force=opts.force_conflicts)
        if before is None:
            result.created.append(text)
        elif _same(before, after):
            result.unchanged.append(text)
        else:
            result.configured.append(text)


def _same(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether an apply changed nothing: same resourceVersion, or the same object apart from bookkeeping
    and status (which controllers write, not the apply)."""
    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
        return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": meta}

    rv = (before.get("metadata") or {}).get("resourceVersion")
    return rv == (after.get("metadata") or {}).get("resourceVersion") or strip(before) == strip(after)


def readiness_targets(cp: plan_mod.ComponentPlan, objects: Sequence[Mapping[str, Any]]) -> list[readiness.Target]:
    """What must be ready: from the applied objects (manifests) or the catalog's Helm names."""
    c = cp.component
    probes = [readiness.Target("ServiceProbe", f"{svc}:{port}", ns) for ns, svc, port in c.probes]
    if cp.method == "helm":
        targets = [readiness.Target(kind, name, ns) for kind, ns, name in c.workload_names("helm")]
        targets += [readiness.Target("CustomResourceDefinition", crd) for crd in c.crds]
        targets += [readiness.Target("APIService", svc) for svc in c.api_services]
        return targets + probes
    return readiness.targets_of(objects) + probes


def install(cluster: Cluster | None, names: Sequence[str], opts: Options, reporter: Reporter | None = None,
            *, on_plan: Callable[[plan_mod.Plan], None] | None = None) -> Result:
    """Preflight, plan, then install each component and wait until it is ready.

    With ``dry_run == "client"`` the cluster is not contacted (it may be None): the result
    carries the plan and the objects. ``on_plan`` is called with the final plan before any write.
    """
    reporter = reporter or Reporter()
    service_monitor = bool(opts.service_monitor)
    names = plan_mod.expand(names) if names else []
    if not names:
        raise InputError("nothing to install", "no component given", "kubectl gpuscale install keda|...|all")
    images = list(opts.images)
    if "prepull" in names and not images and cluster is not None:
        workloads = []
        for api, kind in (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("serving.knative.dev/v1", "Service")):
            workloads.extend(cluster.list_optional(api, kind) or [])
        images = gpu_images(workloads)
        if images:
            reporter.note(f"pre-pulling the images of GPU workloads: {', '.join(images)}")
    opts = _with(opts, images=tuple(images))
    node_selector = DEFAULT_NODE_SELECTOR if opts.node_selector is None else opts.node_selector
    plan = build_plan(names, opts, service_monitor=service_monitor)
    objects = {cp.component.name: load_objects(cp, opts, reporter.warn) for cp in plan.components}
    facts = None
    if opts.dry_run != "client":
        if cluster is None:
            raise InputError("no cluster", "a cluster is needed unless --dry-run=client", "")
        facts = preflight.run(cluster, [(cp.component.name, cp.method, cp.version) for cp in plan.components],
                              objects, node_selector=node_selector if "prepull" in names else None)
        for w in facts.warnings:
            reporter.warn(w)
        if facts.gpu_nodes_unlabelled:
            reporter.warn(f"GPU node(s) {', '.join(facts.gpu_nodes_unlabelled)} lack the label(s) "
                          f"{', '.join(f'{k}={v}' for k, v in node_selector.items())}: the pre-pull DaemonSet "
                          "skips them (pass --node-selector)")
        if opts.service_monitor is None and facts.prometheus_operator and "dcgm" in names:
            plan = build_plan(names, opts, service_monitor=True)
            objects = {cp.component.name: load_objects(cp, opts, reporter.warn) for cp in plan.components}
    result = Result(plan, objects, facts=facts)
    if on_plan:
        on_plan(plan)
    if opts.dry_run == "client":
        return result
    assert cluster is not None
    records: dict[str, str] = {}
    for cp in plan.components:
        c = cp.component
        cres = ComponentResult(c.name, cp.version, cp.method)
        result.components.append(cres)
        objs = objects[c.name]
        if cp.method == "helm":
            cres.helm_output = helm_mod.run(cp.helm_argv, cp.helm_values, timeout_s=opts.timeout_s)
            objs = []
        else:
            apply_objects(cluster, objs, cres, opts, reporter)
        if opts.dry_run == "none":
            targets = readiness_targets(cp, objs)
            readiness.wait(cluster, targets, timeout_s=opts.timeout_s, interval_s=opts.poll_interval_s,
                           on_update=_progress(reporter, c.name), what=f"{c.title} {cp.version}")
            cres.ready = True
            rec = config.InstallRecord(c.name, cp.version, cp.method,
                                       tuple(mf.ref(o) for o in objs),
                                       c.helm.release if cp.method == "helm" and c.helm else None, c.namespace)
            records[config.COMPONENT_PREFIX + c.name] = rec.to_json()
        reporter.done(c.name)
    if opts.dry_run == "none":
        prom = config.prometheus_url(cluster, explicit=opts.prometheus)
        result.prometheus = prom
        updates = dict(records)
        if prom and prom.source.startswith(("--prometheus", "discovered")):
            updates[config.KEY_PROMETHEUS] = prom.url
            updates[config.KEY_PROMETHEUS_SOURCE] = prom.source
        elif prom is None:
            reporter.warn("no Prometheus found in the cluster; record one with --prometheus URL")
        config.write_cluster(cluster, updates)
    return result


def _progress(reporter: Reporter, name: str) -> Callable[[list[readiness.Verdict]], None]:
    return lambda verdicts: reporter.waiting(name, verdicts)


def _with(opts: Options, **changes: Any) -> Options:
    from dataclasses import replace

    return replace(opts, **changes)


# ---- uninstall ---------------------------------------------------------------------------------------


@dataclass
class UninstallPlan:
    """What uninstalling one component will do."""

    component: Component
    record: config.InstallRecord
    deletes: list[dict[str, str]]
    kept: list[str]
    helm_argv: list[str]
    dependents: list[str]

    def lines(self) -> list[str]:
        """The human-readable plan."""
        c = self.component
        out = [f"Uninstall {c.title} {self.record.version} (installed with {self.record.method}):"]
        if self.helm_argv:
            out.append("  - run: " + " ".join(self.helm_argv))
        out += [f"  - delete {mf.describe(r)}" for r in self.deletes]
        out += [f"  - keep {k}" for k in self.kept]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": "UninstallPlan", "component": self.component.name, "version": self.record.version,
                "method": self.record.method, "delete": self.deletes, "keep": self.kept,
                "helm": self.helm_argv, "dependents": self.dependents}


def dependents_of(cluster: Cluster, name: str) -> list[str]:
    """ScaledObjects, HTTPScaledObjects, Knative Services... that stop working without `name`."""
    out = []
    for api, kind in DEPENDENTS.get(name, ()):
        for obj in cluster.list_optional(api, kind) or []:
            meta = obj.get("metadata") or {}
            out.append(f"{kind} {meta.get('namespace')}/{meta.get('name')}")
    return out


def plan_uninstall(cluster: Cluster, name: str, *, include_crds: bool = False,
                   target: helm_mod.KubeTarget | None = None) -> UninstallPlan:
    """Plan removing what `install` recorded for `name`, and nothing else."""
    if name not in COMPONENTS:
        raise InputError(f"unknown component {name!r}", f"one of {', '.join(COMPONENTS)}", "")
    c = COMPONENTS[name]
    data = config.read_cluster(cluster)
    recs = config.records(data or {})
    record = recs.get(name)
    if record is None:
        found = preflight.find_installed(cluster, c)
        why = (f"{c.title} {found.version or ''} is in the cluster, installed with {found.method} by something else"
               if found else f"{c.title} is not installed")
        raise NotFoundError(f"cannot uninstall {name}",
                            f"{why}; kubectl gpuscale has no record of installing it "
                            f"(ConfigMap {config.CONFIG_NAMESPACE}/{config.CONFIG_NAME})",
                            "remove it the way it was installed" if found else "nothing to do")
    other_namespaces = {r.namespace for n, r in recs.items() if n != name}
    other_namespaces |= {(o.get("namespace") or "") for n, r in recs.items() if n != name for o in r.objects}
    deletes: list[dict[str, str]] = []
    kept: list[str] = []
    for r in reversed(record.objects):
        if r["kind"] == "CustomResourceDefinition" and not include_crds:
            kept.append(f"{mf.describe(r)} (deleting a CRD deletes every object of its kind; --include-crds)")
        elif r["kind"] == "Namespace" and r["name"] in other_namespaces:
            kept.append(f"{mf.describe(r)} (another installed component uses it)")
        else:
            deletes.append(r)
    # namespaces last, CRDs after everything that uses them
    deletes.sort(key=lambda r: {"Namespace": 2, "CustomResourceDefinition": 1}.get(r["kind"], 0))
    argv = helm_mod.uninstall_argv(c, target=target or helm_mod.KubeTarget()) if record.method == "helm" else []
    return UninstallPlan(c, record, deletes, kept, argv, dependents_of(cluster, name))


def uninstall(cluster: Cluster, up: UninstallPlan, *, dry_run: str = "none") -> list[str]:
    """Carry out an uninstall plan; returns the objects deleted (or that would be)."""
    done: list[str] = []
    if dry_run == "client":
        return [mf.describe(r) for r in up.deletes]
    if up.helm_argv:
        argv = list(up.helm_argv) + (["--dry-run"] if dry_run == "server" else [])
        helm_mod.run(argv)
    for r in up.deletes:
        try:
            gone = cluster.delete(r["apiVersion"], r["kind"], r["name"], r.get("namespace"),
                                  propagation_policy="Background", dry_run=dry_run == "server")
        except NotFoundError:
            gone = None
        if gone is not None:
            done.append(mf.describe(r))
    if dry_run == "none":
        config.write_cluster(cluster, {config.COMPONENT_PREFIX + up.component.name: None})
    return done
