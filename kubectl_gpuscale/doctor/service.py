"""Gather the doctor's snapshot (from a cluster: one list per kind; or from manifest files), run the
rules, and apply the safe patches through the Cluster gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.autoscale.querycheck import PromSource
from kubectl_gpuscale.doctor.model import Finding, Patch
from kubectl_gpuscale.doctor.rules import run
from kubectl_gpuscale.doctor.snapshot import name_of, ns_of
from kubectl_gpuscale.errors import ForbiddenError, GpuscaleError, InputError, NotFoundError
from kubectl_gpuscale.facts import Targets
from kubectl_gpuscale.names import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

# (apiVersion, kind, namespaced?) read in the target namespace(s); one list per kind.
REQUIRED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("v1", "PersistentVolumeClaim"),
    ("policy/v1", "PodDisruptionBudget"),
)
OPTIONAL_KINDS: tuple[tuple[str, str], ...] = (
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("http.keda.sh/v1alpha1", "HTTPScaledObject"),
    ("serving.knative.dev/v1", "Service"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
)
# Read cluster-wide whatever the namespace: pre-pull DaemonSets live elsewhere, nodes are global.
CLUSTER_KINDS: tuple[tuple[str, str], ...] = (("apps/v1", "DaemonSet"), ("v1", "Node"))
KNATIVE_CONFIG = (("knative-serving", "config-deployment"), ("knative-serving", "config-defaults"))
HTTP_INTERCEPTOR = ("keda", "keda-add-ons-http-interceptor")


@dataclass
class Gathered:
    """The objects read, where each came from (files), and what could not be read (with why)."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[tuple[str, str, str], str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    from_files: bool = False
    # (kind, namespace, name) -> cold start measured on the workload's own pods, and its source.
    measured: dict[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)


def gather_cluster(cluster: Cluster, namespace: str | None, *, selector: str | None = None) -> Gathered:
    """One list per kind in ``namespace`` (None: all); optional kinds only when served; DaemonSets and
    Nodes cluster-wide; the Knative and HTTP add-on settings when present. 403s degrade to notes."""
    out = Gathered()
    for api_version, kind in REQUIRED_KINDS:
        try:
            out.objects += cluster.list(
                api_version,
                kind,
                namespace,
                label_selector=selector if kind in ("Deployment", "StatefulSet") else None,
            )
        except (ForbiddenError, NotFoundError) as exc:
            out.skipped.append(f"{kind}: {exc.why}")
    for api_version, kind in OPTIONAL_KINDS:
        try:
            found = cluster.list_optional(api_version, kind, namespace)
        except ForbiddenError as exc:
            out.skipped.append(f"{kind}: {exc.why}")
            continue
        if found is None:
            continue
        out.objects += found
    for api_version, kind in CLUSTER_KINDS:
        try:
            out.objects += cluster.list(api_version, kind, None)
        except (ForbiddenError, NotFoundError) as exc:
            out.skipped.append(f"{kind} (cluster-wide): {exc.why}")
    for ns, name in KNATIVE_CONFIG:
        _get_into(cluster, out, "v1", "ConfigMap", name=name, namespace=ns)
    _get_into(cluster, out, "apps/v1", "Deployment", name=HTTP_INTERCEPTOR[1], namespace=HTTP_INTERCEPTOR[0])
    return out


def _get_into(
    cluster: Cluster, out: Gathered, api_version: str, kind: str, *, name: str, namespace: str
) -> None:
    if any(o.get("kind") == kind and name_of(o) == name and ns_of(o) == namespace for o in out.objects):
        return
    try:
        obj = cluster.get_or_none(api_version, kind, name, namespace)
    except ForbiddenError:
        return
    if obj:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        out.objects.append(obj)


def gather_files(paths: Sequence[str]) -> Gathered:
    """Objects from files/directories (``-`` for stdin). In a directory, files that are not manifests
    (unrendered templates, values files) are skipped with a note; a named file must load."""
    from pathlib import Path

    from kubectl_gpuscale.manifests import YAML_SUFFIXES, load

    out = Gathered(from_files=True)
    for raw in paths:
        path = Path(raw)
        if raw != "-" and path.is_dir():
            files = sorted(
                str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in YAML_SUFFIXES
            )
            if not files:
                raise InputError(
                    f"cannot read {raw}",
                    "the directory holds no .yaml, .yml or .json file",
                    "pass a manifest file or directory",
                )
        else:
            files = [raw]
        for file in files:
            try:
                loaded = load([file])
            except InputError as exc:
                if raw != file:
                    out.skipped.append(f"{file}: {exc.why}")
                    continue
                raise
            for item in loaded:
                out.objects.append(item.obj)
                out.sources.setdefault(_key(item.obj), item.where)
    return out


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(obj.get("kind") or ""), ns_of(obj), name_of(obj))


def measure_cold_starts(cluster: Cluster, gathered: Gathered) -> None:
    """Measure each GPU inference workload's cold start on its own pods (the coldstart service), into
    `gathered.measured`; workloads whose pods say nothing keep the startupProbe or engine figure."""
    from kubectl_gpuscale import engines
    from kubectl_gpuscale.coldstart.service import measured_cold_start
    from kubectl_gpuscale.doctor.snapshot import WORKLOAD_KINDS, is_knative_service

    for obj in gathered.objects:
        if obj.get("kind") not in WORKLOAD_KINDS and not is_knative_service(obj):
            continue
        detection = engines.detect(obj)
        if not detection.gpus and detection.engine is None:
            continue
        found = measured_cold_start(cluster, obj, ns_of(obj))
        if found:
            gathered.measured[(str(obj.get("kind")), ns_of(obj), name_of(obj))] = found


def diagnose(
    gathered: Gathered,
    prometheus: PromSource | None = None,
    cold_start: int | None = None,
    targets: Targets | None = None,
) -> list[Finding]:
    """Run the rules over what was gathered (judged for ``targets``); findings on file inputs say which file."""
    findings = run(
        gathered.objects,
        prometheus,
        cold_start,
        from_files=gathered.from_files,
        measured_cold_starts=gathered.measured,
        targets=targets,
    )
    if gathered.sources:
        findings = [
            f.with_source(gathered.sources.get((f.kind, f.namespace or DEFAULT_NAMESPACE, f.name)))
            for f in findings
        ]
    return findings


def patches(findings: Sequence[Finding]) -> list[Patch]:
    """The safe patches of the findings, once each (the same patch may fix several findings)."""
    seen: set[str] = set()
    out: list[Patch] = []
    for f in findings:
        if f.patch is None:
            continue
        key = repr(f.patch.to_dict())
        if key not in seen:
            seen.add(key)
            out.append(f.patch)
    return out


@dataclass(frozen=True)
class Applied:
    """One patch sent (or refused) and the server's answer."""

    patch: Patch
    ok: bool
    message: str


def apply_patches(
    cluster: Cluster, items: Sequence[Patch], *, dry_run: bool = False, force: bool = False
) -> list[Applied]:
    """Send each patch: merge patches as JSON merge patches, new objects by server-side apply (field manager
    of the cluster connection). ``dry_run`` sends dryRun=All. A failure is reported, not raised, so the
    other patches still go."""
    out: list[Applied] = []
    for p in items:
        try:
            if p.type == "merge":
                cluster.patch(
                    p.api_version,
                    p.kind,
                    p.name,
                    p.namespace,
                    dict(p.body),
                    patch_type="merge",
                    dry_run=dry_run,
                )
            else:
                cluster.apply(dict(p.body), dry_run=dry_run, force=force)
            out.append(Applied(p, True, "patched" if p.type == "merge" else "applied"))
        except GpuscaleError as exc:
            out.append(Applied(p, False, f"{exc.what}: {exc.why}"))
    return out
