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
from kubectl_gpuscale.install import ownership, preflight, readiness
from kubectl_gpuscale.install import plan as plan_mod
from kubectl_gpuscale.install.catalog import COMPONENTS, Component
from kubectl_gpuscale.install.defaults import DEFAULT_COLD_START_S
from kubectl_gpuscale.install.prepull import DEFAULT_NODE_SELECTOR, build_daemonset, gpu_images
from kubectl_gpuscale.names import COMPONENT_LABEL, MANAGED_LABELS, VERSION_ANNOTATION

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster


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
    target: helm_mod.KubeTarget = field(default_factory=helm_mod.KubeTarget)
    download: bool = True
    helm_available: bool | None = None
    service_monitor: bool | None = None  # None: decided by preflight (Prometheus Operator CRDs)
    poll_interval_s: float = 2.0
    digests: Mapping[str, str] = field(default_factory=dict)  # --sha256 FILE=DIGEST


@dataclass
class ComponentResult:
    """What happened to one component."""

    component: str
    version: str
    method: str
    created: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # existed before, not created by this install
    skipped: list[str] = field(default_factory=list)
    ready: bool | None = None
    install_id: str = ""
    owned_refs: list[dict[str, str]] = field(default_factory=list)
    adopted_refs: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "component": self.component,
            "version": self.version,
            "method": self.method,
            "installId": self.install_id,
            "created": self.created,
            "configured": self.configured,
            "unchanged": self.unchanged,
            "adopted": self.adopted,
            "skipped": self.skipped,
            "ready": self.ready,
        }


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
    return {**MANAGED_LABELS, COMPONENT_LABEL: name}


def build_plan(names: Sequence[str], opts: Options, *, service_monitor: bool = False) -> plan_mod.Plan:
    """The plan for `names` under these options (raises InputError for bad flags)."""
    helm_ok = opts.helm_available if opts.helm_available is not None else helm_mod.helm_binary() is not None
    if opts.method == "helm" and not helm_ok:
        raise InputError(
            "cannot use --method helm", "helm is not on PATH", "install helm or use --method manifests"
        )
    if opts.manifests_dir and opts.method == "helm":
        raise InputError(
            "--manifests and --method helm exclude each other",
            "--manifests is for the manifest path",
            "drop one of them",
        )
    method = "manifests" if opts.manifests_dir else opts.method
    try:
        return plan_mod.build(
            names,
            method=method,
            helm_available=helm_ok,
            versions=opts.versions,
            cold_start_s=opts.cold_start_s,
            overrides=opts.overrides,
            service_monitor=service_monitor,
            manifests_dir=opts.manifests_dir,
            images=opts.images,
            dry_run=opts.dry_run,
            target=opts.target,
            timeout_s=opts.timeout_s,
            prometheus=opts.prometheus,
        )
    except plan_mod.PlanError as exc:
        raise InputError("cannot plan the install", str(exc), "see kubectl gpuscale install -h") from None


def service_monitor_object(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ServiceMonitor for the manifest-installed DCGM exporter (honorLabels keeps pod/namespace)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "dcgm-exporter", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}],
        },
    }


def load_objects(
    cp: plan_mod.ComponentPlan,
    opts: Options,
    warn: Callable[[str], None],
    *,
    fetched: list[mf.Fetched] | None = None,
    recorded: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The objects a manifest or generated component will apply, GPU defaults laid over them.

    Each release file is checked against its known digests (`manifests.fetch`); `recorded`
    maps file -> the sha256 the install record holds; what was read is appended to `fetched`.
    """
    c = cp.component
    if cp.method == "generated":
        if not cp.images:
            raise InputError(
                "nothing to pre-pull",
                "no image given and none found in GPU workloads",
                "pass --image IMAGE (repeatable)",
            )
        ns = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": c.namespace, "labels": dict(MANAGED_LABELS)},
        }
        ds = build_daemonset(
            cp.images,
            namespace=c.namespace,
            node_selector=opts.node_selector,
            labels=component_labels(c.name),
        )
        return [ns, ds]
    if cp.method != "manifests":
        return []
    objects: list[dict[str, Any]] = []
    for artifact in cp.artifacts:
        got = mf.fetch(
            artifact,
            manifests_dir=opts.manifests_dir,
            download=opts.download,
            warn=warn,
            given=opts.digests.get(artifact.file),
            recorded=(recorded or {}).get(artifact.file),
        )
        if fetched is not None:
            fetched.append(got)
        objects.extend(mf.parse(got.text, got.source))
    objects = mf.set_namespaces(objects, c.namespace)
    if not any(
        o.get("kind") == "Namespace" and o["metadata"].get("name") == c.namespace for o in objects
    ) and any((o.get("metadata") or {}).get("namespace") == c.namespace for o in objects):
        objects.insert(
            0,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": c.namespace, "labels": component_labels(c.name)},
            },
        )
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


def apply_objects(
    cluster: Cluster,
    objects: Sequence[dict[str, Any]],
    result: ComponentResult,
    opts: Options,
    reporter: Reporter,
) -> None:
    """Server-side apply each object, in order; CRDs are awaited before the objects that need them.

    An object that does not exist yet, or that this install (`result.install_id`) created
    before, is applied with the ownership labels; one that existed before is adopted: applied
    without them and recorded apart, so uninstall never deletes it. An object outside the
    component's catalogue scope is applied but not recorded (uninstall would refuse it), with a warning.
    """
    dry = opts.dry_run == "server"
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    crd_kinds = {
        ((o.get("spec") or {}).get("group"), ((o.get("spec") or {}).get("names") or {}).get("kind"))
        for o in crds
    }
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
                readiness.wait(
                    cluster,
                    targets,
                    timeout_s=opts.timeout_s,
                    interval_s=opts.poll_interval_s,
                    what=f"the CRDs of {result.component}",
                )
                crds_waited = True
        if not _kind_served(cluster, obj):
            result.skipped.append(f"{text} (the cluster does not serve {r['apiVersion']} {r['kind']})")
            reporter.warn(f"skipped {text}: the cluster does not serve {r['apiVersion']} {r['kind']}")
            continue
        before = cluster.get_or_none(r["apiVersion"], r["kind"], r["name"], r.get("namespace"))
        ours = before is None or ownership.not_created_by(before, result.component, result.install_id) is None
        sent = (
            ownership.stamp(obj, result.component, result.version, result.install_id)
            if before is None or ours
            else ownership.adopt(obj, before)
        )
        after = cluster.apply(sent, dry_run=dry, force=opts.force_conflicts)
        if not ours:
            result.adopted.append(text)
            result.adopted_refs.append(r)
            continue
        outside = ownership.outside_catalogue(COMPONENTS[result.component], r)
        if outside:
            reporter.warn(f"{text} is not recorded, so uninstall will not delete it: {outside}")
        else:
            result.owned_refs.append(r)
        if before is None:
            result.created.append(text)
        elif _same(before, after):
            result.unchanged.append(text)
        else:
            result.configured.append(text)


def _same(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether an apply changed nothing: same resourceVersion, or the same object apart from bookkeeping
    (our version annotation included: an upgrade that changes nothing else configures nothing) and
    status (which controllers write, not the apply)."""

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in (obj.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")
        }
        meta["annotations"] = {
            k: v for k, v in (meta.get("annotations") or {}).items() if k != VERSION_ANNOTATION
        }
        return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": meta}

    rv = (before.get("metadata") or {}).get("resourceVersion")
    return rv == (after.get("metadata") or {}).get("resourceVersion") or strip(before) == strip(after)


def readiness_targets(
    cp: plan_mod.ComponentPlan, objects: Sequence[Mapping[str, Any]]
) -> list[readiness.Target]:
    """What must be ready: from the applied objects (manifests) or the catalog's Helm names."""
    c = cp.component
    probes = [readiness.Target("ServiceProbe", f"{svc}:{port}", ns) for ns, svc, port in c.probes]
    if cp.method == "helm":
        targets = [readiness.Target(kind, name, ns) for kind, ns, name in c.workload_names("helm")]
        targets += [readiness.Target("CustomResourceDefinition", crd) for crd in c.crds]
        targets += [readiness.Target("APIService", svc) for svc in c.api_services]
        return targets + probes
    return readiness.targets_of(objects) + probes


def install(
    cluster: Cluster | None,
    names: Sequence[str],
    opts: Options,
    reporter: Reporter | None = None,
    *,
    on_plan: Callable[[plan_mod.Plan], None] | None = None,
) -> Result:
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
        images = _workload_images(cluster, reporter)
    opts = _with(opts, images=tuple(images))
    node_selector = DEFAULT_NODE_SELECTOR if opts.node_selector is None else opts.node_selector
    previous = config.records((config.read_cluster(cluster) or {}) if cluster is not None else {})
    plan = build_plan(names, opts, service_monitor=service_monitor)
    check_digest_flags(plan, opts.digests)
    plan, objects = _load(plan, opts, reporter, previous)
    facts = None
    if opts.dry_run != "client":
        if cluster is None:
            raise InputError("no cluster", "a cluster is needed unless --dry-run=client", "")
        facts = preflight.run(
            cluster,
            [(cp.component.name, cp.method, cp.version) for cp in plan.components],
            objects,
            node_selector=node_selector if "prepull" in names else None,
        )
        _warn_preflight(facts.warnings, facts.gpu_nodes_unlabelled, node_selector, reporter)
        if opts.service_monitor is None and facts.prometheus_operator and "dcgm" in names:
            plan = build_plan(names, opts, service_monitor=True)
            plan, objects = _load(plan, opts, reporter, previous)
    result = Result(plan, objects, facts=facts)
    if on_plan:
        on_plan(plan)
    if opts.dry_run == "client":
        return result
    assert cluster is not None
    records: dict[str, str] = {}
    for cp in plan.components:
        before = previous.get(cp.component.name)
        cres = ComponentResult(
            cp.component.name,
            cp.version,
            cp.method,
            install_id=(before.install_id if before and before.install_id else ownership.new_install_id()),
        )
        result.components.append(cres)
        record = _install_component(
            cluster, cp, objects[cp.component.name], cres, opts=opts, reporter=reporter
        )
        if record is not None:
            records[config.COMPONENT_PREFIX + cp.component.name] = record
        reporter.done(cp.component.name)
    if opts.dry_run == "none":
        _record(cluster, result, records, opts, reporter)
    return result


def _warn_preflight(
    warnings: Sequence[str], unlabelled: Sequence[str], node_selector: Mapping[str, str], reporter: Reporter
) -> None:
    """The preflight's warnings, and the GPU nodes the pre-pull DaemonSet's node selector misses."""
    for w in warnings:
        reporter.warn(w)
    if unlabelled:
        reporter.warn(
            f"GPU node(s) {', '.join(unlabelled)} lack the label(s) "
            f"{', '.join(f'{k}={v}' for k, v in node_selector.items())}: the pre-pull DaemonSet "
            "skips them (pass --node-selector)"
        )


def _workload_images(cluster: Cluster, reporter: Reporter) -> list[str]:
    """The images of the cluster's GPU workloads: what prepull pulls when no --image is given."""
    workloads = []
    for api, kind in (
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("serving.knative.dev/v1", "Service"),
    ):
        workloads.extend(cluster.list_optional(api, kind) or [])
    images = gpu_images(workloads)
    if images:
        reporter.note(f"pre-pulling the images of GPU workloads: {', '.join(images)}")
    return images


def _install_component(
    cluster: Cluster,
    cp: plan_mod.ComponentPlan,
    objs: list[dict[str, Any]],
    cres: ComponentResult,
    *,
    opts: Options,
    reporter: Reporter,
) -> str | None:
    """Install one component (helm or apply) and wait until it is ready; its install record's JSON when written."""
    c = cp.component
    if cp.method == "helm":
        earlier = release_revisions(cluster, c) if opts.dry_run == "none" else []
        helm_mod.run(cp.helm_argv, cp.helm_values, timeout_s=opts.timeout_s)
        if opts.dry_run == "none":
            _mark_release(cluster, c, cres, earlier, reporter)
        objs = []
    else:
        apply_objects(cluster, objs, cres, opts, reporter)
    if opts.dry_run != "none":
        return None
    targets = readiness_targets(cp, objs)
    readiness.wait(
        cluster,
        targets,
        timeout_s=opts.timeout_s,
        interval_s=opts.poll_interval_s,
        on_update=_progress(reporter, c.name),
        what=f"{c.title} {cp.version}",
    )
    cres.ready = True
    rec = config.InstallRecord(
        c.name,
        cp.version,
        cp.method,
        tuple(cres.owned_refs),
        c.helm.release if cp.method == "helm" and c.helm else None,
        c.namespace,
        cres.install_id,
        tuple(cres.adopted_refs),
        tuple(f.to_dict() for f in cp.files),
    )
    return rec.to_json()


def _record(
    cluster: Cluster, result: Result, records: Mapping[str, str], opts: Options, reporter: Reporter
) -> None:
    """Write the install records and the Prometheus found (or given) to the cluster's config."""
    prom = config.prometheus_url(cluster, explicit=opts.prometheus)
    result.prometheus = prom
    updates = dict(records)
    if prom and prom.source.startswith(("--prometheus", "discovered")):
        updates[config.KEY_PROMETHEUS] = prom.url
        updates[config.KEY_PROMETHEUS_SOURCE] = prom.source
    elif prom is None:
        reporter.warn("no Prometheus found in the cluster; record one with --prometheus URL")
    config.write_cluster(cluster, updates)


def release_revisions(cluster: Cluster, c: Component) -> list[dict[str, Any]]:
    """The Secrets in which Helm stores the revisions of the component's release, oldest first (Helm's
    secrets storage driver, pkg/storage/driver/secrets.go: `sh.helm.release.v1.<release>.v<N>`, labels
    owner=helm, name=<release>, version=<N>)."""
    if c.helm is None:
        return []
    found = cluster.list("v1", "Secret", c.namespace, label_selector=f"owner=helm,name={c.helm.release}")

    def revision(secret: Mapping[str, Any]) -> int:
        value = str(((secret.get("metadata") or {}).get("labels") or {}).get("version", ""))
        return int(value) if value.isdigit() else 0

    return sorted(found, key=revision)


def _mark_release(
    cluster: Cluster,
    c: Component,
    cres: ComponentResult,
    earlier: Sequence[Mapping[str, Any]],
    reporter: Reporter,
) -> None:
    """Label the revisions this run stored with the install id, unless the release existed before and
    was not ours: then it is adopted (uninstall never runs `helm uninstall` on it)."""

    def ours(secret: Mapping[str, Any]) -> bool:
        return ownership.not_created_by(secret, c.name, cres.install_id) is None

    release = f"helm release {c.helm.release if c.helm else ''} -n {c.namespace}"
    if earlier and not any(ours(s) for s in earlier):
        cres.adopted.append(release)
        cres.adopted_refs.append(mf.ref({**earlier[-1], "apiVersion": "v1", "kind": "Secret"}))
        return
    known = {s["metadata"]["name"] for s in earlier}
    fresh = [s for s in release_revisions(cluster, c) if s["metadata"]["name"] not in known]
    if not fresh:
        reporter.warn(f"{release}: no new revision found to label; uninstall will not remove it")
    for secret in fresh:
        cluster.patch(
            "v1",
            "Secret",
            secret["metadata"]["name"],
            c.namespace,
            {"metadata": {"labels": ownership.ownership_labels(c.name, cres.install_id)}},
        )


def check_digest_flags(plan: plan_mod.Plan, digests: Mapping[str, str]) -> None:
    """Each `--sha256 FILE=DIGEST` must name a release file of the plan and be 64 hex digits."""
    files = [a.file for cp in plan.components for a in cp.artifacts]
    for file, digest in digests.items():
        if file not in files:
            raise InputError(
                f"--sha256 {file}=...: no such release file in this install",
                f"the files are: {', '.join(files) or 'none (nothing installs from manifests)'}",
                "name a file as the plan shows it",
            )
        if not mf.SHA256_HEX.match(digest):
            raise InputError(
                f"--sha256 {file}={digest}: not a sha256",
                "expected 64 lowercase hex digits",
                f"e.g. the first field of: sha256sum {file}",
            )


def _load(
    plan: plan_mod.Plan, opts: Options, reporter: Reporter, previous: Mapping[str, config.InstallRecord]
) -> tuple[plan_mod.Plan, dict[str, list[dict[str, Any]]]]:
    """Read (fetch, verify) every component's objects; the plan gains each file's sha256."""
    from dataclasses import replace

    objects: dict[str, list[dict[str, Any]]] = {}
    components = []
    for cp in plan.components:
        record = previous.get(cp.component.name)
        recorded = {
            str(f.get("file")): str(f.get("sha256"))
            for f in (record.files if record else ())
            if isinstance(f, dict) and mf.SHA256_HEX.match(str(f.get("sha256", "")))
        }
        fetched: list[mf.Fetched] = []
        objects[cp.component.name] = load_objects(cp, opts, reporter.warn, fetched=fetched, recorded=recorded)
        files = tuple(plan_mod.FileDigest(f.artifact.file, f.sha256, f.source, f.checked) for f in fetched)
        components.append(replace(cp, files=files))
    return replace(plan, components=tuple(components)), objects


def _progress(reporter: Reporter, name: str) -> Callable[[list[readiness.Verdict]], None]:
    return lambda verdicts: reporter.waiting(name, verdicts)


def _with(opts: Options, **changes: Any) -> Options:
    from dataclasses import replace

    return replace(opts, **changes)
