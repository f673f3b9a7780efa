"""`install`, `status`, `uninstall`: KEDA (+ HTTP add-on), Knative Serving + Kourier, the DCGM exporter
and the image pre-pull DaemonSet, configured for GPU cold starts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.options import KubeOptions, kube_options, parse_duration, target_versions_option
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.errors import ExitStatus, InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kubectl_gpuscale.install.installer import Reporter, Result

COMPONENT_NAMES = ("keda", "keda-http", "knative", "dcgm", "prepull", "all")


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        for item in value.split(",") if flag == "--node-selector" else [value]:
            if "=" not in item:
                raise InputError(f"invalid {flag} {item!r}", "expected KEY=VALUE", f"e.g. {flag} key=value")
            key, val = item.split("=", 1)
            out[key.strip()] = val.strip()
    return out


def _versions(value: str | None, components: tuple[str, ...]) -> dict[str, str]:
    if not value:
        return {}
    if "=" in value:
        return _pairs(tuple(value.split(",")), "--version")
    real = [c for c in components if c != "all"]
    if len(real) != 1 or "all" in components:
        raise InputError(
            "ambiguous --version",
            "several components are being installed",
            "use --version COMPONENT=VERSION[,COMPONENT=VERSION]",
        )
    return {real[0]: value.lstrip("v")}


def _make_reporter(quiet: bool) -> Reporter:
    from rich.console import Console

    from kubectl_gpuscale.install.installer import Reporter

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    class RichReporter(Reporter):
        def __init__(self) -> None:
            self._last: dict[str, str] = {}
            self._status: Any = None

        def note(self, text: str) -> None:
            console.print(text, markup=False)

        def warn(self, text: str) -> None:
            console.print(f"warning: {text}", markup=False, style="yellow")

        def waiting(self, component: str, verdicts: list[Any]) -> None:
            ready = sum(1 for v in verdicts if v.ready)
            pending = [v for v in verdicts if not v.ready]
            line = f"{component}: {ready}/{len(verdicts)} ready" + (
                f", waiting for {pending[0].target} ({pending[0].reason})" if pending else ""
            )
            if console.is_terminal:
                if self._status is None:
                    self._status = console.status(line)
                    self._status.start()
                else:
                    self._status.update(line)
            elif self._last.get(component) != line and not quiet:
                console.print(line, markup=False)
            self._last[component] = line

        def done(self, component: str) -> None:
            if self._status is not None:
                self._status.stop()
                self._status = None
            console.print(f"{component}: done", markup=False, style="green")

    return RichReporter()


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("components", nargs=-1, required=True, type=click.Choice(COMPONENT_NAMES))
@click.option(
    "--method",
    type=click.Choice(["auto", "helm", "manifests"]),
    default="auto",
    show_default=True,
    help="auto: Helm when `helm` is on PATH, else server-side apply of the release manifests.",
)
@click.option(
    "--version",
    "version",
    default=None,
    metavar="VERSION|C=V,...",
    help="Override the pinned version (one component), or COMPONENT=VERSION pairs.",
)
@click.option(
    "--manifests",
    "manifests_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Air-gapped: a directory holding the release files (named as in the plan); nothing downloads.",
)
@click.option("--no-download", is_flag=True, help="Never download: use --manifests or the cache only.")
@click.option(
    "--sha256",
    "digests",
    multiple=True,
    metavar="FILE=DIGEST",
    help="The sha256 a release file must have (e.g. from the release page); a mismatch is refused. "
    "Repeatable.",
)
@click.option(
    "--cold-start",
    default="10m",
    callback=parse_duration,
    metavar="DURATION",
    show_default=True,
    help="The longest cold start expected; the GPU timeouts derive from it.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one GPU default by its key (as shown in the plan). Repeatable.",
)
@click.option(
    "--timeout",
    default="5m",
    callback=parse_duration,
    metavar="DURATION",
    show_default=True,
    help="How long to wait for each component to be ready.",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="IMAGE",
    help="prepull: an image to pre-pull (repeatable; default: the images of GPU workloads).",
)
@click.option(
    "--node-selector",
    "node_selectors",
    multiple=True,
    metavar="K=V[,K=V]",
    help="prepull: the GPU node selector (default nvidia.com/gpu.present=true; '' for none).",
)
@click.option(
    "--prometheus",
    default=None,
    metavar="URL",
    help="The Prometheus to record for the other commands (default: found in the cluster).",
)
@target_versions_option
@kube_options(outputs=("table", "json", "yaml"), writes=True, selector=False, all_namespaces=False)
def install(
    components: tuple[str, ...],
    method: str,
    version: str | None,
    manifests_dir: str | None,
    no_download: bool,
    digests: tuple[str, ...],
    cold_start: float | None,
    sets: tuple[str, ...],
    timeout: float | None,
    images: tuple[str, ...],
    node_selectors: tuple[str, ...],
    prometheus: str | None,
    target_versions: dict[str, Any],
    kube: KubeOptions,
) -> None:
    """Install autoscaling components, configured for GPU cold starts.

    COMPONENTS: keda, keda-http (the HTTP add-on), knative (Serving + Kourier), dcgm (the
    NVIDIA DCGM exporter), prepull (an image pre-pull DaemonSet on GPU nodes), or all
    (keda, keda-http, knative, dcgm). Preflight checks run first and stop before anything
    is touched; the plan (with every GPU default and why) is printed before any write.
    Re-running is safe: nothing changes when nothing differs; a newer pin upgrades.
    Every object install creates is labelled with the component and an install id; an
    object that existed before is adopted (applied, never deleted by uninstall). Each
    release file's sha256 is shown in the plan, checked against the pin, --sha256 and the
    digest recorded at download, and kept in the install record.

    \b
    Examples:
      kubectl gpuscale install keda --dry-run=client          # the plan and the objects, offline
      kubectl gpuscale install all                             # helm if on PATH, else manifests
      kubectl gpuscale install keda --method manifests --version 2.19.0
      kubectl gpuscale install knative --manifests ./release-files   # air-gapped
      kubectl gpuscale install keda --manifests ./release-files --sha256 keda-2.20.2.yaml=<sha256>
      kubectl gpuscale install knative --cold-start 15m --set config-autoscaler.scale-to-zero-grace-period=90s
      kubectl gpuscale install prepull --image vllm/vllm-openai:v0.8.5
      kubectl gpuscale install keda --dry-run=server -o json
      kubectl gpuscale install keda-http --version 0.13.0 --dry-run=client   # 0.13's interceptor variables

    The version installed decides where a setting goes: the HTTP add-on before 0.14 reads its
    timeouts only from KEDA_CONDITION_WAIT_TIMEOUT / KEDA_RESPONSE_HEADER_TIMEOUT (chart values
    interceptor.replicas.waitTimeout / interceptor.responseHeaderTimeout), 0.14+ from the
    KEDA_HTTP_* ones. --target-versions COMPONENT=VERSION acts as --version for those components.
    """
    from kubectl_gpuscale.cli.output import dump, emit_objects, note
    from kubectl_gpuscale.install.helm import KubeTarget
    from kubectl_gpuscale.install.installer import Options
    from kubectl_gpuscale.install.installer import install as run_install

    if prometheus:
        prometheus = _recordable_prometheus(prometheus)
    node_selector: dict[str, str] | None = None
    if node_selectors:
        node_selector = {} if node_selectors == ("",) else _pairs(node_selectors, "--node-selector")
    versions = _merged_versions(_versions(version, components), target_versions)
    opts = Options(
        method=method,
        versions=versions,
        manifests_dir=manifests_dir,
        cold_start_s=int(cold_start or 600),
        overrides=_pairs(sets, "--set"),
        dry_run=kube.dry_run,
        timeout_s=timeout or 300.0,
        force_conflicts=kube.force_conflicts,
        images=images,
        node_selector=node_selector,
        prometheus=prometheus,
        download=not no_download,
        digests={k: v.lower() for k, v in _pairs(digests, "--sha256").items()},
        target=KubeTarget(kube.kubeconfig, kube.context, kube.insecure_skip_tls_verify),
    )
    cluster = kube.cluster() if kube.dry_run != "client" else None
    structured = kube.output in ("json", "yaml")

    def show_plan(plan: Any) -> None:
        if not structured or kube.dry_run == "client":
            for line in plan.lines():
                note(line)

    reporter = _make_reporter(quiet=structured)
    result = run_install(cluster, list(components), opts, reporter, on_plan=show_plan)
    objects = [o for objs in result.objects.values() for o in objs]
    if kube.dry_run == "client":
        if structured:
            emit_objects(objects, kube.output)
        else:
            click.echo(dump({"apiVersion": "v1", "kind": "List", "items": objects}, "yaml"), nl=False)
        if any(cp.method == "helm" for cp in result.plan.components):
            note("(helm components: their objects are rendered by helm, not shown)")
        return
    if structured:
        click.echo(dump(result.to_dict(), kube.output), nl=False)
        return
    _echo_components(result, kube.dry_run)
    if result.prometheus:
        click.echo(f"prometheus: {result.prometheus.url} ({result.prometheus.source})")
    sys.stdout.flush()


def _merged_versions(versions: dict[str, str], target_versions: Mapping[str, Any]) -> dict[str, str]:
    """--version's pins with --target-versions' for keda, keda-http and knative; a disagreement is an error."""
    for name, wanted in target_versions.items():
        if name in versions and versions[name].lstrip("v") != str(wanted):
            raise InputError(
                f"conflicting versions for {name}",
                f"--version says {versions[name]}, --target-versions says {wanted}",
                "pass one of them",
            )
        if name in ("keda", "keda-http", "knative"):
            versions.setdefault(name, str(wanted))
    return versions


def _echo_components(result: Result, dry_run: str) -> None:
    from kubectl_gpuscale.cli.output import note

    suffix = " (server dry run)" if dry_run == "server" else ""
    for c in result.components:
        state = "ready" if c.ready else ("not waited (dry run)" if dry_run == "server" else "not ready")
        if c.method == "helm":
            click.echo(f"{c.component} {c.version}: helm upgrade --install done{suffix}; {state}")
        else:
            adopted = (
                f", {len(c.adopted)} adopted (existed before: uninstall keeps them)" if c.adopted else ""
            )
            click.echo(
                f"{c.component} {c.version}: {len(c.created)} created, {len(c.configured)} configured, "
                f"{len(c.unchanged)} unchanged{adopted}{suffix}; {state}"
            )
        for skipped in c.skipped:
            note(f"  skipped {skipped}")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--prometheus", default=None, metavar="URL", help="Show this Prometheus instead of the recorded one."
)
@kube_options(outputs=("table", "wide", "json", "yaml"), writes=False, selector=False, all_namespaces=False)
def status(prometheus: str | None, kube: KubeOptions) -> None:
    """Show which autoscaling components the cluster serves, their version and health.

    Read-only. For each of KEDA, the HTTP add-on, Knative Serving + Kourier, the DCGM
    exporter (and the pre-pull DaemonSet when present): installed or not, the version,
    ready or why not; then the Prometheus the other commands use and who serves the
    external metrics API. Exit code 1 when an installed component is not ready.

    \b
    Examples:
      kubectl gpuscale status
      kubectl gpuscale status -o wide
      kubectl gpuscale status -o json | jq '.components[] | select(.state != "Ready")'
    """
    from kubectl_gpuscale.cli.output import Column, dump, render_table
    from kubectl_gpuscale.install.status import collect

    cluster = kube.cluster()
    report = collect(cluster, prometheus=prometheus)
    if kube.output in ("json", "yaml"):
        click.echo(dump(report.to_dict(), kube.output), nl=False)
    else:
        columns = [
            Column("component", lambda r: r.component),
            Column("state", lambda r: r.state),
            Column("version", lambda r: r.version),
            Column("method", lambda r: r.method),
            Column("namespace", lambda r: r.namespace, wide=True),
            Column("pinned", lambda r: r.pinned, wide=True),
            Column("recorded", lambda r: "yes" if r.recorded else "no", wide=True),
            Column("reason", lambda r: r.reason),
        ]
        render_table(report.components, columns, wide=kube.output == "wide")
        prom = report.prometheus
        click.echo(
            f"\nPrometheus: {prom.url} ({prom.source})"
            if prom
            else "\nPrometheus: none found (record one: kubectl gpuscale install ... --prometheus URL)"
        )
        click.echo(f"External metrics API: {report.external_metrics or 'not registered'}")
    if any(c.installed and not c.ready for c in report.components):
        sys.exit(ExitStatus.FAILURE)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("component", type=click.Choice(["keda", "keda-http", "knative", "dcgm", "prepull"]))
@click.option(
    "--include-crds",
    is_flag=True,
    help="Also delete the CRDs (and so every object of their kinds, e.g. all ScaledObjects).",
)
@click.option(
    "--yes", "-y", "yes", is_flag=True, help="Delete without asking (needed when stdin is not a terminal)."
)
@kube_options(outputs=("table", "json", "yaml"), writes=True, selector=False, all_namespaces=False)
def uninstall(component: str, include_crds: bool, yes: bool, kube: KubeOptions) -> None:
    """Remove what `install` created for a component, and nothing else.

    Reads the install record (ConfigMap gpuscale-system/gpuscale-config) without trusting
    it: an entry outside what the component's release can contain refuses the whole
    uninstall, and an object is deleted only if it carries this install's labels
    (managed-by, component, install id). Objects that existed before the install
    (adopted), and namespaces holding anything install did not create, are kept. CRDs
    are kept unless --include-crds. Prints the plan, warns about the ScaledObjects,
    HTTPScaledObjects or Knative Services that depend on the component, then asks for
    confirmation (--yes to skip; without a terminal, --yes is required).

    \b
    Examples:
      kubectl gpuscale uninstall knative --dry-run=client     # the plan only
      kubectl gpuscale uninstall keda-http
      kubectl gpuscale uninstall keda --include-crds --yes
    """
    from kubectl_gpuscale.cli.output import dump, note, warn
    from kubectl_gpuscale.install.helm import KubeTarget
    from kubectl_gpuscale.install.uninstall import plan_uninstall
    from kubectl_gpuscale.install.uninstall import uninstall as run_uninstall

    cluster = kube.cluster()
    up = plan_uninstall(
        cluster,
        component,
        include_crds=include_crds,
        target=KubeTarget(kube.kubeconfig, kube.context, kube.insecure_skip_tls_verify),
    )
    for line in up.lines():
        note(line)
    if up.dependents:
        shown = ", ".join(up.dependents[:10]) + (
            f" (+{len(up.dependents) - 10} more)" if len(up.dependents) > 10 else ""
        )
        warn(f"{len(up.dependents)} object(s) depend on {component} and stop scaling without it: {shown}")
    if kube.dry_run == "none" and not yes and (up.deletes or up.helm_argv):
        _confirm(component, len(up.deletes), bool(up.helm_argv))
    deleted = run_uninstall(cluster, up, dry_run=kube.dry_run)
    if kube.output in ("json", "yaml"):
        data = up.to_dict()
        data["deleted"] = deleted
        data["dryRun"] = kube.dry_run
        click.echo(dump(data, kube.output), nl=False)
        return
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(kube.dry_run, "")
    for text in deleted:
        click.echo(f"{text} deleted{suffix}")
    if up.helm_argv:
        click.echo(
            f"helm release {up.component.helm.release if up.component.helm else ''} uninstalled{suffix}"
        )


def _confirm(component: str, count: int, helm: bool) -> None:
    """Ask on a terminal; without one, stop: deleting needs --yes."""
    what = f"delete {count} object(s)" + (" and run helm uninstall" if helm else "")
    if not sys.stdin.isatty():
        raise InputError(
            f"not uninstalling {component}: it would {what} and needs confirmation",
            "stdin is not a terminal and --yes was not given",
            "review the plan above (or run with --dry-run=client) and re-run with --yes",
        )
    if not click.confirm(f"{what[0].upper()}{what[1:]} of {component}?", default=False, err=True):
        raise InputError(f"not uninstalling {component}", "not confirmed", "nothing was deleted")


def _recordable_prometheus(url: str) -> str:
    """The --prometheus URL as install records it: without ``user:password@`` (the ConfigMap is readable
    by anyone who can read ConfigMaps in gpuscale-system); says so when it drops credentials."""
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.prom.settings import ENV_URL, split_userinfo

    clean, auth = split_userinfo(url)
    if auth is not None:
        note(
            f"recording Prometheus {clean} without the credentials in --prometheus; give them to each command "
            f"that queries it (--prometheus or ${ENV_URL})"
        )
    return clean
