"""`kubectl gpuscale tune`: the cheapest autoscaling settings that meet a TTFT SLO, from the workload's history."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.options import KubeOptions, kube_options
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.cli.types import duration_value, finite_float
from kubectl_gpuscale.errors import GpuscaleError, InputError

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster
    from kubectl_gpuscale.sim import ColdStartProfile
    from kubectl_gpuscale.tune.history import History
    from kubectl_gpuscale.tune.search import TuneResult

TARGET_KINDS = {
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "sts": "StatefulSet",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "so": "ScaledObject",
    "scaledobject": "ScaledObject",
    "scaledobjects": "ScaledObject",
}
WORKLOAD_APIS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1"}


def _share(ctx: click.Context, param: click.Parameter, value: str) -> float:
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a share; e.g. 99% or 0.99") from None
    if share > 1 and not text.endswith("%"):
        share /= 100.0
    if not (math.isfinite(share) and 0 < share <= 1):
        raise click.BadParameter(f"{value!r} is not a share in (0, 100%]")
    return share


def _positive_duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    return duration_value(str(value).strip().lower(), allow_zero=False)


def _policy_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    from kubectl_gpuscale.tune.search import POLICIES

    names = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    unknown = [n for n in names if n not in POLICIES]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown policy {', '.join(unknown) or '(none)'}; use some of {','.join(POLICIES)}"
        )
    return names


@dataclass
class _Target:
    """What TARGET (or -f) names: the objects for the baseline and the objects' builder."""

    namespace: str
    workload: dict[str, Any] | None
    current: list[dict[str, Any]]  # the HPA / ScaledObject / Knative Service scaling it now
    objects: list[dict[str, Any]]  # everything read (for the migrate plan and the baseline)
    hpa: str | None  # the HPA migrate-hpa adopts (name)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("target", required=False, metavar="TARGET")
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The workload's manifests offline (Deployment + HPA or ScaledObject [+ Service]).",
)
@click.option(
    "--prometheus",
    default=None,
    metavar="URL",
    help="Prometheus to read the history from (else $GPUSCALE_PROMETHEUS_URL, else the install record).",
)
@click.option(
    "--since",
    default="7d",
    show_default=True,
    callback=_positive_duration,
    metavar="DURATION",
    help="History window.",
)
@click.option(
    "--slo-ttft",
    default="2s",
    show_default=True,
    callback=_positive_duration,
    metavar="DURATION",
    help="TTFT target.",
)
@click.option(
    "--slo",
    default="99%",
    show_default=True,
    callback=_share,
    metavar="PERCENT",
    help="Share of requests that must meet the TTFT target.",
)
@click.option(
    "--policies",
    default=None,
    callback=_policy_list,
    metavar="LIST",
    help="What to search: keda,keda-zero,knative (default: what the environment supports).",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(1, 1000),
    default=None,
    help="Upper bound for every candidate (default: the current policy's, else 8).",
)
@click.option("--price", type=finite_float(0, 1e5), default=4.41, show_default=True, help="$ per GPU-hour.")
@click.option(
    "--headroom",
    type=finite_float(1, 100),
    default=1.5,
    show_default=True,
    help="Also replay the history with its traffic x this; the recommendation must meet the SLO on both.",
)
@click.option(
    "--cold-start",
    default=None,
    metavar="DURATION|FILE",
    help="The replica cold start: a duration (90s) or `coldstart -o json` output (default: measured).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**31),
    default=0,
    show_default=True,
    help="First RNG seed (two seeds are simulated: SEED and SEED+1).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.png",
    help="Write the frontier and the replay of baseline vs recommendation to a PNG (needs matplotlib).",
)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Write the recommendation through migrate-hpa's apply path (adoption, preflight, backup).",
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Tune offline from a history saved with --save-history (no Prometheus).",
)
@click.option(
    "--save-history",
    "save_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the history read from Prometheus to FILE (for --history later).",
)
@kube_options(outputs=("table", "json", "yaml"), writes=True, selector=False, all_namespaces=False)
def tune(
    target: str | None,
    files: tuple[str, ...],
    prometheus: str | None,
    since: float,
    slo_ttft: float,
    slo: float,
    policies: tuple[str, ...] | None,
    max_replicas: int | None,
    price: float,
    headroom: float,
    cold_start: str | None,
    seed: int,
    plot_path: str | None,
    do_apply: bool,
    history_path: str | None,
    save_path: str | None,
    kube: KubeOptions,
) -> None:
    """Find the cheapest autoscaling settings that meet a TTFT SLO on the workload's own traffic.

    Reads the workload's history from Prometheus (or --history FILE), checks the simulator against
    it (the replay of the current policy), simulates KEDA, KEDA scale-to-zero and Knative settings
    on it and on --headroom x its traffic, and prints the cost/SLO frontier, the recommendation,
    its cold-start cliff, and the objects migrate-hpa would write. --apply writes them (--dry-run=server
    sends them with dryRun=All; --dry-run=client writes nothing).

    \b
    Examples:
      kubectl gpuscale tune deploy/vllm -n ml --prometheus http://localhost:9090 --since 7d
      kubectl gpuscale tune hpa/vllm -n ml --slo-ttft 1.5s --slo 99.5% --plot tune.png
      kubectl gpuscale tune -f vllm.yaml --history week.json --cold-start 90s -o json
      kubectl gpuscale tune hpa/vllm -n ml --history week.json --apply --dry-run=server
    """
    from kubectl_gpuscale.cli.output import compile_notice, note, warn

    _check_flags(target, files, do_apply=do_apply, history_path=history_path, save_path=save_path)
    cluster: Cluster | None = None
    if target:
        cluster = kube.cluster()
        where = _read_cluster_target(cluster, target, cluster.namespace_or_default(kube.namespace))
    else:
        where = _read_files(files, kube.namespace)
    if do_apply and where.hpa is None:
        raise InputError(
            f"cannot --apply for {target}",
            "no HPA or ScaledObject scales it (migrate-hpa adopts one)",
            "create an HPA for the workload first, or drop --apply and write the objects yourself",
        )
    coldstart, source = _cold_start(cold_start, where, cluster)
    history = _history(history_path, prometheus, cluster, kube, where, since)
    if save_path:
        _save_history(history, save_path)
        note(f"history saved to {save_path}")
    from kubectl_gpuscale import sim
    from kubectl_gpuscale.tune.baseline import baseline_policy
    from kubectl_gpuscale.tune.calibrate import calibrate, replay
    from kubectl_gpuscale.tune.search import TuneOptions, recommend

    preset = sim.engine_profile("70b" if "70b" in json.dumps(where.workload or {}).lower() else "8b")
    calibration = calibrate(history, preset)
    baseline = baseline_policy(where.current + ([where.workload] if where.workload else []))
    compile_notice()
    check = replay(history, calibration, coldstart, baseline, seed=seed)
    checked = check.to_dict()
    if getattr(check, "large", False):
        warn(
            "the simulator's replay of the current policy is far from what was observed "
            f"(TTFT p95 {checked.get('predictedTtftP95')} vs {checked.get('observedTtftP95')} s, replica-hours "
            f"{checked.get('predictedReplicaHours')} vs {checked.get('observedReplicaHours')}): "
            "read the recommendation with care"
        )
    for line in getattr(calibration, "notes", ()) or ():
        note(line)
    top = max_replicas or _current_max(where.current) or 8
    options = TuneOptions(
        slo_ttft=slo_ttft,
        slo=slo,
        policies=policies or _supported(cluster, where),
        max_replicas=top,
        price=price,
        headroom=headroom,
        seeds=(seed, seed + 1),
        cold_start_source=source,
        workers=min(2, os.cpu_count() or 1),
    )
    with _progress_bar() as progress:
        result = recommend(history, calibration, coldstart, baseline, options, progress=progress)
    objects, plan = _objects(result, where, files, cluster, kube, prometheus, coldstart, note)
    from dataclasses import replace

    result = replace(
        result,
        objects=tuple(objects),
        replay=checked,
        calibration_source=str(getattr(calibration, "source", "") or ""),
        workload={
            "namespace": where.namespace,
            "kind": (where.workload or {}).get("kind"),
            "name": ((where.workload or {}).get("metadata") or {}).get("name") or history.workload,
            "engine": history.engine,
        },
    )
    if plot_path:
        _plot(plot_path, result)
        note(f"plot written to {plot_path}")
    if do_apply and plan is not None and kube.dry_run != "client":
        from kubectl_gpuscale import migrate

        assert cluster is not None
        migrate.apply(
            plan,
            cluster,
            dry_run=kube.dry_run == "server",
            force_conflicts=kube.force_conflicts,
            note=note,
            warn=warn,
        )
        suffix = " (server dry run)" if kube.dry_run == "server" else ""
        note("applied " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects) + suffix)
    elif do_apply and kube.dry_run == "client":
        note("client dry run: nothing written")
    _render(result, kube.output)


def _check_flags(
    target: str | None,
    files: Sequence[str],
    *,
    do_apply: bool,
    history_path: str | None,
    save_path: str | None,
) -> None:
    """InputError for a combination of TARGET, -f, --apply, --history and --save-history that cannot work."""
    if target and files:
        raise InputError(
            "TARGET and -f are exclusive", "-f reads the workload from files", "give one of them"
        )
    if not target and not files:
        raise InputError(
            "nothing to tune", "no TARGET and no -f", "e.g. kubectl gpuscale tune deploy/vllm -n ml"
        )
    if do_apply and files:
        raise InputError(
            "--apply needs a TARGET in the cluster",
            "-f reads the workload offline",
            "e.g. kubectl gpuscale tune hpa/NAME -n NS --apply (or -o yaml | kubectl apply -f -)",
        )
    if save_path and history_path:
        raise InputError(
            "--save-history and --history are exclusive",
            "--history already is a saved history",
            "drop one of them",
        )


# -- inputs ----------------------------------------------------------------------------------------------


def _read_files(files: Sequence[str], namespace: str | None) -> _Target:
    from kubectl_gpuscale.manifests import load

    objects = [dict(item.obj) for item in load(files)]
    workloads = [o for o in objects if o.get("kind") in WORKLOAD_APIS]
    current = [
        o
        for o in objects
        if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")
        or (o.get("kind") == "Service" and str(o.get("apiVersion", "")).startswith("serving.knative.dev/"))
    ]
    if not workloads and not current:
        raise InputError(
            f"nothing to tune in {', '.join(files)}",
            "no Deployment, StatefulSet, HPA or ScaledObject",
            "pass the workload's manifests (-f deploy.yaml -f hpa.yaml)",
        )
    workload = workloads[0] if workloads else None
    ns = namespace or ((workload or current[0]).get("metadata") or {}).get("namespace") or "default"
    hpa = next((o["metadata"]["name"] for o in current if o.get("kind") == "HorizontalPodAutoscaler"), None)
    return _Target(ns, workload, current, objects, hpa)


def _read_cluster_target(cluster: Cluster, target: str, namespace: str) -> _Target:
    kind_text, sep, name = target.partition("/")
    kind = TARGET_KINDS.get(kind_text.lower())
    if not sep or not name or kind is None:
        raise InputError(
            f"cannot tune {target!r}",
            "TARGET is KIND/NAME",
            "use deploy/NAME, statefulset/NAME, hpa/NAME or scaledobject/NAME (or -f FILE)",
        )
    if kind in WORKLOAD_APIS:
        workload = cluster.get(WORKLOAD_APIS[kind], kind, name, namespace)
        hpas = [
            h
            for h in cluster.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace)
            if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
            and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == kind
        ]
        current = hpas[:1]
    else:
        api = "autoscaling/v2" if kind == "HorizontalPodAutoscaler" else "keda.sh/v1alpha1"
        current = [cluster.get(api, kind, name, namespace)]
        ref = (current[0].get("spec") or {}).get("scaleTargetRef") or {}
        wkind = str(ref.get("kind") or "Deployment")
        workload = cluster.get(
            str(ref.get("apiVersion") or WORKLOAD_APIS.get(wkind, "apps/v1")),
            wkind,
            str(ref.get("name")),
            namespace,
        )
    hpa = None
    for obj in current:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            hpa = obj["metadata"]["name"]
        else:
            adv = ((obj.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
            hpa = adv.get("name") or f"keda-hpa-{obj['metadata']['name']}"
    return _Target(namespace, workload, current, [workload, *current], hpa)


def _history(
    path: str | None,
    prometheus: str | None,
    cluster: Cluster | None,
    kube: KubeOptions,
    where: _Target,
    since: float,
) -> History:
    from kubectl_gpuscale.tune.history import History

    if path:
        return History.load(path)
    from kubectl_gpuscale import engines
    from kubectl_gpuscale.prom import resolve
    from kubectl_gpuscale.prom.history import fetch_history

    if where.workload is None:
        raise InputError(
            "cannot read the history",
            "no workload found for the target",
            "pass the Deployment or StatefulSet too, or --history FILE",
        )
    url = resolve.resolve(prometheus, cluster, context=kube.context)
    detection = engines.detect(where.workload)
    name = where.workload["metadata"]["name"]
    from kubectl_gpuscale.autoscale import promql

    prom = resolve.connect(url, timeout=kube.request_timeout)
    try:
        return fetch_history(
            prom,
            namespace=where.namespace,
            pods=promql.pod_regex(where.workload["kind"], name),
            engine=detection.engine.key if detection.engine else "vllm",
            since=since,
            workload=f"{'statefulset' if where.workload['kind'] == 'StatefulSet' else 'deploy'}/{name}",
        )
    finally:
        prom.close()


def _save_history(history: History, path: str) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(history.to_json(), fh)
        os.replace(tmp, path)
    except OSError as exc:
        raise GpuscaleError(
            f"cannot write the history {path}", exc.strerror or str(exc), "check the path"
        ) from None


def _cold_start(value: str | None, where: _Target, cluster: Cluster | None) -> tuple[ColdStartProfile, str]:
    from kubectl_gpuscale import sim

    if value is not None:
        if os.path.exists(value):
            from kubectl_gpuscale.inputs import read_text

            return sim.coldstart_from_json(read_text(value, "cold-start profile"), value), value
        try:
            seconds = duration_value(value.strip().lower(), allow_zero=False)
        except click.BadParameter as exc:
            raise InputError(
                f"bad --cold-start {value!r}",
                f"neither a duration nor a readable file ({exc.message})",
                "e.g. --cold-start 90s or --cold-start coldstart.json (`coldstart -o json`)",
            ) from None
        return sim.ColdStartProfile(f"{seconds:g}s", (("start", seconds),), "--cold-start"), "--cold-start"
    if where.workload is None:
        return sim.coldstart_profile("8b-warm"), "preset 8b-warm (no workload to measure)"
    from kubectl_gpuscale import engines
    from kubectl_gpuscale.autoscale.convert import cold_start_estimate

    measured = None
    if cluster is not None:
        from kubectl_gpuscale.coldstart.service import measured_cold_start

        measured = measured_cold_start(cluster, where.workload, where.namespace)
    seconds, source = cold_start_estimate(where.workload, engines.detect(where.workload), None, measured)
    return sim.ColdStartProfile(f"{seconds}s", (("start", float(seconds)),), source), source


def _current_max(current: Sequence[Mapping[str, Any]]) -> int | None:
    for obj in current:
        spec = obj.get("spec") or {}
        for key in ("maxReplicas", "maxReplicaCount"):
            if isinstance(spec.get(key), int):
                return int(spec[key])
    return None


def _supported(cluster: Cluster | None, where: _Target) -> tuple[str, ...]:
    """The policies the environment supports: offline all three; in a cluster KEDA, keda-zero when the
    HTTP add-on's HTTPScaledObject is served, Knative when its Service is."""
    if cluster is None:
        return ("keda", "keda-zero", "knative")
    out = ["keda"]
    if cluster.serves("http.keda.sh/v1alpha1", "HTTPScaledObject"):
        out.append("keda-zero")
    if cluster.serves("serving.knative.dev/v1", "Service"):
        out.append("knative")
    return tuple(out)


def _objects(
    result: TuneResult,
    where: _Target,
    files: Sequence[str],
    cluster: Cluster | None,
    kube: KubeOptions,
    prometheus: str | None,
    coldstart: ColdStartProfile,
    note: Callable[[str], None],
) -> tuple[list[dict[str, Any]], Any]:
    """The recommendation's objects, built by migrate-hpa's plan (its builders), and the plan for --apply."""
    from kubectl_gpuscale import migrate
    from kubectl_gpuscale.tune.objects import migrate_options, shaped

    if where.hpa is None:
        note("no HPA to adopt: the objects are left out (migrate-hpa builds them from an HPA)")
        return [], None
    request = migrate.MigrateRequest(
        names=(where.hpa,),
        files=tuple(files),
        namespace=where.namespace,
        context=kube.context,
        request_timeout=kube.request_timeout,
        prometheus=prometheus,
        options=migrate_options(result.recommendation.candidate, cold_start=round(coldstart.total)),
    )
    plan = migrate.plan(request, cluster if not files else None, note=note)
    for conversion in plan.results:
        if conversion.ok:
            conversion.objects[:] = shaped(conversion.objects, result.recommendation.candidate)
            for line in conversion.notes:
                if not line.startswith(("queue threshold", "cold start")):
                    note(f"{conversion.hpa}: {line}")
    return plan.objects, plan


# -- output ----------------------------------------------------------------------------------------------


class _progress_bar:
    """A rich progress bar on stderr while the search runs (only when stderr is a terminal)."""

    def __enter__(self) -> Callable[[int, int], None] | None:
        self.bar: Any = None
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("tune", total=None)

        def update(done: int, total: int) -> None:
            self.bar.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f}ms" if v < 1 else f"{v:.1f}s"


def _params(point: Mapping[str, Any]) -> str:
    short = {
        "threshold": "thr",
        "activation": "act",
        "minReplicas": "min",
        "maxReplicas": "max",
        "scaleDownStabilizationSeconds": "down",
        "cooldownSeconds": "cool",
        "pollingSeconds": "poll",
        "target": "target",
        "minScale": "min",
        "maxScale": "max",
        "scaleDownDelaySeconds": "delay",
    }
    parts = []
    for k, v in point["params"].items():
        if k == "cronFloor":
            parts.append(f"cron {v['start']}-{v['end']}x{v['replicas']}")
        else:
            parts.append(f"{short.get(k, k)}={v}")
    return " ".join(parts)


def _render(result: TuneResult, output: str) -> None:
    from kubectl_gpuscale.cli.output import Column, emit_data, note, render_table

    doc = result.to_dict()
    if output != "table":
        emit_data(doc, output)
        return
    rec = doc["recommendation"]
    rows = (
        [("baseline", doc["baseline"])] + [("frontier", p) for p in doc["frontier"]] + [("recommended", rec)]
    )
    render_table(
        rows,
        [
            Column("", lambda r: r[0]),
            Column("policy", lambda r: r[1]["policy"]),
            Column("params", lambda r: _params(r[1])),
            Column("slo", lambda r: f"{r[1]['sloAttainment'] * 100:.2f}%", justify="right"),
            Column(
                f"slo x{result.options.headroom:g}",
                lambda r: f"{r[1]['headroomSloAttainment'] * 100:.2f}%",
                justify="right",
            ),
            Column("ttft p95", lambda r: _fmt_s(r[1]["ttftP95"]), justify="right"),
            Column("gpu-h", lambda r: f"{r[1]['gpuHours']:.1f}", justify="right"),
            Column("$/month", lambda r: f"${r[1]['costPerMonth']:,.0f}", justify="right"),
            Column("events", lambda r: f"{r[1]['scaleEvents']:.0f}", justify="right"),
            Column("at zero", lambda r: f"{r[1]['timeAtZeroSeconds'] / 3600:.1f}h", justify="right"),
        ],
    )
    h = doc["history"]
    replay_doc = doc["calibration"]["replay"] or {}
    click.echo(
        f"\nhistory {h['from']} .. {h['to']}: {h['requests']:,} requests, peak {h['peakRps']:.2f} req/s; "
        f"cold start {doc['coldStart']['seconds']:.0f}s ({doc['coldStart']['source']}); "
        f"{doc['candidates']} configurations x {2 if result.options.headroom > 1 else 1} variants x "
        f"{len(result.options.seeds)} seeds"
    )
    if replay_doc:
        hours = [
            "-" if v is None else f"{v:,.1f}"
            for v in (replay_doc.get("observedReplicaHours"), replay_doc.get("predictedReplicaHours"))
        ]
        click.echo(
            f"replay check (current policy): TTFT p95 observed {_fmt_s(replay_doc.get('observedTtftP95'))}, "
            f"predicted {_fmt_s(replay_doc.get('predictedTtftP95'))}; replica-hours observed {hours[0]}, "
            f"predicted {hours[1]}"
        )
    cliff = rec["coldStartCliffSeconds"]
    click.echo(
        f"cold-start cliff: {'-' if cliff is None else f'{cliff:.0f}s'}"
        f"{' (or more)' if result.cliff_capped else ''}; cold starts cost "
        f"{rec['coldStartGpuHoursPerMonth']:.1f} GPU-h/month allocated but not serving"
    )
    click.echo("\n" + doc["reason"])
    if rec["objects"]:
        note(
            "objects: "
            + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in rec["objects"])
            + " (-o yaml shows them; --apply writes them)"
        )


def _plot(path: str, result: TuneResult) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GpuscaleError(
            f"cannot write the plot {path}",
            "matplotlib is not installed",
            "pip install 'kubectl-gpuscale[plot]' (or drop --plot)",
        ) from None
    import numpy as np

    fig, axes = plt.subplots(3, 1, figsize=(11, 10), gridspec_kw={"height_ratios": [2, 1, 1]})
    ax = axes[0]
    colors = {"keda": "tab:blue", "keda-zero": "tab:orange", "knative": "tab:green"}
    for p in result.points:
        ax.scatter(
            p.scores.cost_per_month,
            p.scores.worst * 100,
            s=14,
            alpha=0.5,
            color=colors.get(p.candidate.policy, "grey"),
        )
    for policy, color in colors.items():
        ax.scatter([], [], color=color, label=policy)
    front = result.frontier
    ax.plot(
        [p.scores.cost_per_month for p in front],
        [p.scores.worst * 100 for p in front],
        color="black",
        lw=0.8,
        label="frontier",
    )
    b, r = result.baseline.scores, result.recommendation.scores
    low = max(0.0, min([p.scores.worst for p in front] + [result.options.slo]) * 100 - 1)
    below = b.worst * 100 < low  # drawn on the bottom edge, its value in the label
    ax.scatter(
        b.cost_per_month,
        max(b.worst * 100, low + 0.2),
        marker="v" if below else "s",
        s=60,
        color="red",
        label=f"baseline ({b.worst * 100:.1f}%)",
    )
    ax.scatter(
        r.cost_per_month,
        r.worst * 100,
        marker="*",
        s=220,
        color="gold",
        edgecolor="black",
        label="recommendation",
    )
    ax.axhline(result.options.slo * 100, color="red", ls="--", lw=0.8)
    ax.set_xlabel("$/month")
    ax.set_ylabel(f"SLO attainment, worse of history and x{result.options.headroom:g} (%)")
    ax.set_ylim(low, 100.2)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"tune {result.history.workload}: {len(result.points)} configurations")
    if result.series:
        base, best = result.series[0], result.series[-1]
        hours = base.t / 3600.0
        axes[1].plot(hours, base.rps, color="black", lw=0.7)
        axes[1].set_ylabel("arrivals/s")
        axes[2].step(hours, base.pods, where="post", lw=0.9, color="red", label="baseline")
        axes[2].step(
            best.t / 3600.0, best.pods, where="post", lw=0.9, color="tab:blue", label="recommendation"
        )
        axes[2].set_ylabel("replicas")
        axes[2].set_xlabel("hours since the history's start")
        axes[2].legend(fontsize=7, loc="upper right")
        axes[2].set_ylim(
            bottom=0, top=max(1.0, float(np.nanmax(np.concatenate([base.pods, best.pods]))) + 0.5)
        )
    fig.tight_layout()
    from kubectl_gpuscale.cli.output import save_figure

    save_figure(fig, path, dpi=100)
