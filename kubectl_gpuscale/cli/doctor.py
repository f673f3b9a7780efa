"""`kubectl gpuscale doctor`: lint a namespace, a cluster or manifests for what makes GPU autoscaling go wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.options import (
    KubeOptions,
    announce_targets,
    kube_options,
    parse_duration,
    resolve_targets,
    target_versions_option,
)
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.errors import ExitStatus, InputError

if TYPE_CHECKING:
    from kubectl_gpuscale.doctor.model import Finding, Patch
    from kubectl_gpuscale.kube import Cluster

OUTPUTS = ("table", "wide", "json", "yaml", "sarif")
SHORT_KINDS = {
    "HorizontalPodAutoscaler": "hpa",
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "ScaledObject": "scaledobject",
    "HTTPScaledObject": "httpscaledobject",
    "Service": "ksvc",
    "LeaderWorkerSet": "lws",
    "PodDisruptionBudget": "pdb",
}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    seconds = parse_duration(ctx, param, value)
    if seconds is not None and seconds <= 0:
        raise click.BadParameter(f"{value!r} is not a positive duration; use e.g. 300, 300s, 5m or 1h")
    return None if seconds is None else max(1, round(seconds))


@click.command("doctor", context_settings=CONTEXT_SETTINGS)
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    metavar="FILE|DIR|-",
    help="Lint manifests (files, directories, or - for stdin) instead of the cluster.",
)
@click.option(
    "--prometheus",
    metavar="URL",
    default=None,
    help="Prometheus to check ScaledObject queries against (default: $GPUSCALE_PROMETHEUS_URL, "
    "else what `install` recorded; none: static checks only).",
)
@click.option(
    "--cold-start",
    callback=_duration,
    default=None,
    metavar="DURATION",
    help="Cold start to check against, e.g. 8m (default: per workload, measured on its pods, "
    "else its startupProbe budget, else the engine's typical cold start).",
)
@click.option(
    "--fix", is_flag=True, help="Print the safe patches (kubectl patch lines and objects to apply)."
)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Apply the safe patches to the cluster (implies --fix; honours --dry-run).",
)
@target_versions_option
@kube_options(outputs=OUTPUTS, writes=True)
def doctor(
    files: tuple[str, ...],
    prometheus: str | None,
    cold_start: int | None,
    fix: bool,
    do_apply: bool,
    target_versions: dict[str, Any],
    kube: KubeOptions,
) -> None:
    """Lint GPU inference autoscaling: scalers, queries, timeouts, probes, drain, capacity.

    Each finding has a stable rule ID (GS001...), a severity (error, warning,
    info), the evidence (object, field, value) and the fix; docs/doctor.md
    explains every rule. With a Prometheus (--prometheus, $GPUSCALE_PROMETHEUS_URL
    or the install config) each ScaledObject query is run now: no series,
    several series, the value against the threshold, which metric name form
    (colon or underscore) is held, and DCGM pod vs exported_pod labels.

    Exit status: 1 when any finding is an error (so it can gate CI), else 0.

    --fix prints only the safe patches: merge patches on scalar fields
    (windows, timeouts, grace periods, minReplicaCount, fallback) as kubectl
    patch lines, and new PodDisruptionBudgets to apply. --apply sends them
    (merge patch; server-side apply for new objects) with --dry-run support.

    \b
    Examples:
      kubectl gpuscale doctor -n ml                         # lint one namespace
      kubectl gpuscale doctor -A -o wide                    # every namespace, with the fixes
      kubectl gpuscale doctor -f k8s/ -o sarif > doctor.sarif   # CI on a GitOps repo
      kubectl gpuscale doctor -n ml --prometheus http://localhost:9090
      kubectl gpuscale doctor -n ml --cold-start 8m
      kubectl gpuscale doctor -n ml --fix                   # print the safe patches
      kubectl gpuscale doctor -n ml --apply --dry-run=server
    """
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.doctor import service

    if do_apply:
        fix = True
        if files:
            raise InputError(
                "cannot --apply to files",
                "-f lints manifests, which have no cluster to patch",
                "edit the manifests (see --fix), or run doctor against the cluster",
            )
    cluster = None
    if files:
        if kube.selector:
            raise InputError(
                "cannot combine -f with -l", "selectors apply to cluster reads", "drop one of them"
            )
        gathered = service.gather_files(files)
    else:
        cluster = kube.cluster()
        gathered = service.gather_cluster(cluster, kube.target_namespace(cluster), selector=kube.selector)
        if cold_start is None:
            service.measure_cold_starts(cluster, gathered)
    for line in gathered.skipped:
        note(f"skipped {line}")
    prom = _prometheus(prometheus, cluster, kube, files_only=bool(files))
    targets = resolve_targets(target_versions, cluster)
    try:
        findings = service.diagnose(gathered, prom, cold_start, targets)
    finally:
        if prom is not None:
            prom.close()
    announce_targets(targets)
    if fix:
        patches = service.patches(findings)
        if do_apply and kube.dry_run != "client":
            assert cluster is not None
            failed = _apply(cluster, patches, kube)
            _summary(findings)
            if failed:
                raise SystemExit(ExitStatus.FAILURE)
        else:
            _print_fixes(patches, kube.output)
            _summary(findings)
    else:
        _render(findings, gathered.skipped, kube.output)
    if any(f.severity == "error" for f in findings):
        raise SystemExit(ExitStatus.FAILURE)


def _apply(cluster: Cluster, patches: list[Patch], kube: KubeOptions) -> bool:
    """Apply the safe patches, one line each; True when any failed."""
    from kubectl_gpuscale.cli.output import note, warn
    from kubectl_gpuscale.doctor import service

    results = service.apply_patches(
        cluster, patches, dry_run=kube.dry_run == "server", force=kube.force_conflicts
    )
    suffix = " (server dry run)" if kube.dry_run == "server" else ""
    failed = False
    for r in results:
        what = f"{r.patch.kind}/{r.patch.name}" + (f" -n {r.patch.namespace}" if r.patch.namespace else "")
        if r.ok:
            note(f"{r.message} {what}{suffix}")
        else:
            failed = True
            warn(f"could not patch {what}: {r.message}")
    if not results:
        note("no safe patch to apply")
    return failed


def _prometheus(flag: str | None, cluster: Any, kube: KubeOptions, *, files_only: bool) -> Any:
    """The Prometheus gateway to check queries live, or None (static checks only)."""
    from kubectl_gpuscale.cli.output import note, warn
    from kubectl_gpuscale.errors import GpuscaleError
    from kubectl_gpuscale.prom import resolve

    try:
        url = resolve.resolve(flag, cluster, context=kube.context, recorded=not files_only)
    except InputError as exc:
        if flag:
            raise
        if exc.what != resolve.NO_URL:
            warn(f"{exc.what}: ScaledObject queries checked statically only")
            return None
        note("no Prometheus configured: ScaledObject queries checked statically only (pass --prometheus URL)")
        return None
    if url.token_withheld:
        note(url.withheld_note())
    try:
        prom = resolve.connect(url, timeout=kube.request_timeout, check=True)
    except GpuscaleError as exc:
        if flag:
            raise
        warn(f"Prometheus at {url.url} ({url.source}) did not answer ({exc.why}): static checks only")
        return None
    return prom


def _one_line(text: str, width: int | None = 60) -> str:
    flat = " ".join(str(text).split())
    return flat if width is None or len(flat) <= width else flat[: width - 1] + "…"


def _render(findings: list[Finding], skipped: list[str], output: str) -> None:
    from kubectl_gpuscale.cli.output import Column, emit_data, render_table
    from kubectl_gpuscale.doctor import report

    if output == "sarif":
        import json

        click.echo(json.dumps(report.sarif(findings), indent=2))
        return
    if output in ("json", "yaml"):
        emit_data(report.report(findings, skipped), output)
        return
    wide = output == "wide"
    several = len({f.namespace for f in findings}) > 1
    columns = [
        Column("severity", lambda f: f.severity),
        Column("rule", lambda f: f.rule),
        *([Column("namespace", lambda f: f.namespace or "")] if several or wide else []),
        Column(
            "object",
            lambda f: _one_line(f"{SHORT_KINDS.get(f.kind, f.kind.lower())}/{f.name}", None if wide else 40),
        ),
        Column("field", lambda f: _one_line(f.field, None if wide else 40)),
        Column("value", lambda f: _one_line(f.value, None if wide else 24)),
        Column("message", lambda f: _one_line(f.message, None if wide else 64 if several else 76)),
        Column("fix", lambda f: _one_line(f.fix, None), wide=True),
        Column("source", lambda f: _one_line(f.source or "", None), wide=True),
    ]
    render_table(findings, columns, wide=wide, empty="No problems found.", width=100_000)
    _summary(findings)


def _summary(findings: list[Finding]) -> None:
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.doctor.report import summary

    counts = summary(findings)
    patchable = sum(1 for f in findings if f.patch is not None)
    note(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info; "
        f"{patchable} with a safe patch (--fix)"
    )


def _print_fixes(patches: list[Patch], output: str) -> None:
    from kubectl_gpuscale.cli.output import dump, emit_data, note
    from kubectl_gpuscale.doctor.report import fix_lines

    if output in ("json", "yaml"):
        emit_data({"kind": "DoctorFixes", "patches": [p.to_dict() for p in patches]}, output)
        return
    if not patches:
        note("no safe patch for these findings; see the FIX column (-o wide)")
        return
    lines, objects = fix_lines(patches)
    for line in lines:
        click.echo(line)
    if objects:
        click.echo("kubectl apply --server-side --field-manager=kubectl-gpuscale -f - <<'EOF'")
        for obj in objects:
            click.echo("---")
            click.echo(dump(obj, "yaml"), nl=False)
        click.echo("EOF")
