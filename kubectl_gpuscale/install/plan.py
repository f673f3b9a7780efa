"""The install plan: for each component, the method (Helm or manifests), the version, the files or
the helm argv, the GPU settings with their reasons, and the steps. Pure: built from flags and
facts gathered by preflight, printed before anything is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.install import defaults as gpu_defaults
from kubectl_gpuscale.install.catalog import ALL_ORDER, COMPONENTS, Artifact, Component
from kubectl_gpuscale.install.defaults import Setting
from kubectl_gpuscale.install.helm import KubeTarget, install_argv
from kubectl_gpuscale.names import CONFIG_NAME, CONFIG_NAMESPACE

METHODS = ("auto", "helm", "manifests")


class PlanError(ValueError):
    """A request that cannot be planned (unknown component, override or method)."""


@dataclass(frozen=True)
class FileDigest:
    """A release file about to be applied: its sha256, where it came from and what that digest matched."""

    file: str
    sha256: str
    source: str
    checked: tuple[str, ...] = ()

    def line(self) -> str:
        """`sha256 DIGEST (matches ...)` for the plan."""
        how = (
            ("matches " + " and ".join(self.checked))
            if self.checked
            else "no published digest to check it against: compare it with the release page"
        )
        return f"sha256 {self.sha256} ({how})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also what the install record keeps)."""
        return {"file": self.file, "sha256": self.sha256, "source": self.source}


@dataclass(frozen=True)
class ComponentPlan:
    """What installing one component will do."""

    component: Component
    version: str
    method: str  # helm | manifests | generated
    artifacts: tuple[Artifact, ...] = ()
    helm_argv: tuple[str, ...] = ()
    helm_values: Mapping[str, Any] = field(default_factory=dict)
    settings: tuple[Setting, ...] = ()
    steps: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    files: tuple[FileDigest, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "component": self.component.name,
            "version": self.version,
            "method": self.method,
            "namespace": self.component.namespace,
            "steps": list(self.steps),
        }
        if self.artifacts:
            out["manifests"] = [{"file": a.file, "url": a.url, "sha256": a.sha256} for a in self.artifacts]
        if self.helm_argv:
            out["helm"] = list(self.helm_argv)
            out["helmValues"] = dict(self.helm_values)
        if self.settings:
            out["settings"] = [
                {"key": s.key, "value": s.value, "upstream": s.upstream, "why": s.why} for s in self.settings
            ]
        if self.images:
            out["images"] = list(self.images)
        if self.files:
            out["files"] = [{**f.to_dict(), "checked": list(f.checked)} for f in self.files]
        return out


@dataclass(frozen=True)
class Plan:
    """The whole install."""

    components: tuple[ComponentPlan, ...]
    dry_run: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": "InstallPlan",
            "dryRun": self.dry_run,
            "components": [c.to_dict() for c in self.components],
        }

    def lines(self) -> list[str]:
        """The human-readable plan."""
        mode = {
            "client": " (dry run: client, nothing is sent)",
            "server": " (dry run: server, dryRun=All, nothing persists)",
        }.get(self.dry_run, "")
        out = [f"Plan{mode}:"]
        for cp in self.components:
            c = cp.component
            pinned = "" if cp.version == c.version else f" (pinned {c.version})"
            out.append(f"  {c.title} {cp.version}{pinned} via {cp.method}, namespace {c.namespace}")
            shown = set()
            for step in cp.steps:
                out.append(f"    - {step}")
                for f in cp.files:
                    if step.startswith(f"server-side apply {f.file} "):
                        out.append(f"      {f.line()}")
                        shown.add(f.file)
            out += [f"    - {f.file} {f.line()}" for f in cp.files if f.file not in shown]
            for s in cp.settings:
                out.append(f"    * {s.key} = {s.value} (upstream {s.upstream}): {s.why}")
        return out


def expand(names: Sequence[str]) -> list[str]:
    """Component names in install order, `all` expanded, duplicates dropped."""
    wanted: list[str] = []
    for name in names:
        for n in ALL_ORDER if name == "all" else (name,):
            if n not in COMPONENTS:
                raise PlanError(f"unknown component {n!r}; one of {', '.join([*COMPONENTS, 'all'])}")
            if n not in wanted:
                wanted.append(n)
    order = [*ALL_ORDER, "prepull"]
    return sorted(wanted, key=order.index)


def choose_method(component: Component, method: str, helm_available: bool) -> str:
    """helm | manifests | generated for one component."""
    if method not in METHODS:
        raise PlanError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if not component.manifests and component.helm is None:
        return "generated"
    if component.helm is None:
        return "manifests"
    if method == "helm" or (method == "auto" and helm_available):
        return "helm"
    return "manifests"


def build(
    names: Sequence[str],
    *,
    method: str = "auto",
    helm_available: bool = False,
    versions: Mapping[str, str] | None = None,
    cold_start_s: int = gpu_defaults.DEFAULT_COLD_START_S,
    overrides: Mapping[str, str] | None = None,
    service_monitor: bool = False,
    manifests_dir: str | None = None,
    images: Sequence[str] = (),
    dry_run: str = "none",
    target: KubeTarget | None = None,
    timeout_s: float | None = None,
    prometheus: str | None = None,
) -> Plan:
    """Plan installing `names` (``all`` allowed).

    Args:
        versions: component -> version overriding the pin (`--version`).
        overrides: setting key -> value (`--set`); each key must belong to a planned component.
        service_monitor: the Prometheus Operator CRDs exist (DCGM gets a ServiceMonitor).
        images: the images `prepull` will pull.
    """
    versions = dict(versions or {})
    overrides = dict(overrides or {})
    plans = []
    used: set[str] = set()
    for name in expand(names):
        c = COMPONENTS[name]
        version = versions.get(name, c.version)
        how = choose_method(c, method, helm_available)
        settings = gpu_defaults.gpu_settings(
            name, cold_start_s=cold_start_s, service_monitor=service_monitor, version=version
        )
        optional = {s.key: s for s in gpu_defaults.optional_settings(name, version)}
        mine = {k: v for k, v in overrides.items() if k in {s.key for s in settings} | set(optional)}
        settings += [optional[k] for k in mine if k in optional]
        used |= set(mine)
        settings = gpu_defaults.apply_overrides(settings, mine)
        steps: list[str] = []
        artifacts: tuple[Artifact, ...] = ()
        argv: tuple[str, ...] = ()
        values: dict[str, Any] = {}
        if how == "helm":
            values = gpu_defaults.helm_values(settings)
            argv = tuple(
                install_argv(c, version, target=target or KubeTarget(), dry_run=dry_run, timeout_s=timeout_s)
            )
            steps.append("run: " + " ".join(argv))
        elif how == "manifests":
            artifacts = c.artifacts(version)
            where = (
                f"from {manifests_dir}" if manifests_dir else "from the cache or a sha256-checked download"
            )
            for a in artifacts:
                steps.append(f"server-side apply {a.file} ({where})")
            if any(s.configmap for s in settings):
                steps.append("set the GPU defaults below in the ConfigMaps (same apply)")
            if any(s.env for s in settings):
                steps.append("set the GPU defaults below as container env (same apply)")
            if name == "dcgm" and service_monitor:
                steps.append("apply a ServiceMonitor for the exporter (Prometheus Operator CRDs found)")
        else:
            steps.append(
                f"server-side apply DaemonSet {c.namespace}/{c.main_workload} "
                f"pulling {len(images)} image(s) on GPU nodes: {', '.join(images) or '(none)'}"
            )
        if name == "keda":
            steps.append(
                "wait: Deployments Available, CRDs Established, APIService "
                "v1beta1.external.metrics.k8s.io Available"
            )
        elif name == "knative":
            steps.append(
                "wait: Deployments Available (knative-serving, kourier-system: the Kourier gateway), "
                "CRDs Established, the Kourier ingress answering HTTP through the service proxy"
            )
        else:
            steps.append("wait: workloads ready, CRDs Established")
        plans.append(
            ComponentPlan(
                c,
                version,
                how,
                artifacts,
                argv,
                values,
                tuple(settings),
                tuple(steps),
                tuple(images) if name == "prepull" else (),
            )
        )
    unknown = set(overrides) - used
    if unknown:
        valid = sorted(
            {
                s.key
                for n in expand(names)
                for s in [*gpu_defaults.gpu_settings(n), *gpu_defaults.optional_settings(n)]
            }
        )
        raise PlanError(
            f"unknown --set key(s) {', '.join(sorted(unknown))}; valid: {', '.join(valid) or 'none'}"
        )
    extra = [f"record the install (and the Prometheus {prometheus})" if prometheus else "record the install"]
    if plans and dry_run == "none":
        last = plans[-1]
        plans[-1] = ComponentPlan(
            last.component,
            last.version,
            last.method,
            last.artifacts,
            last.helm_argv,
            last.helm_values,
            last.settings,
            (*last.steps, f"{extra[0]} in ConfigMap {CONFIG_NAMESPACE}/{CONFIG_NAME}"),
            last.images,
        )
    return Plan(tuple(plans), dry_run)
