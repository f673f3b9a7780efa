"""`kubectl gpuscale coldstart`: a pod's cold start as a waterfall of phases, and what to do about the longest."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.options import KubeOptions, kube_options
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.errors import ExitStatus, InputError, NotFoundError

if TYPE_CHECKING:
    from kubectl_gpuscale.coldstart.model import Timeline

BAR_WIDTH = 40
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "LeaderWorkerSet")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("target", required=False, metavar="[POD | TYPE/NAME]")
@click.option(
    "-f",
    "--filename",
    "log_file",
    default=None,
    metavar="LOGFILE",
    help="Offline: read a container log from this file ('-' for stdin) instead of the cluster.",
)
@click.option(
    "--events",
    "events_file",
    default=None,
    metavar="FILE",
    help="Offline: events as JSON/YAML (`kubectl get events --field-selector involvedObject.name=POD -o json`).",
)
@click.option(
    "--pod",
    "pod_file",
    default=None,
    metavar="FILE",
    help="Offline: the pod as JSON/YAML (`kubectl get pod POD -o json`): conditions anchor the log's times.",
)
@click.option(
    "--previous",
    "previous_file",
    default=None,
    metavar="FILE",
    help="Offline: the previous container's log (`kubectl logs -p`), to name why it failed.",
)
@click.option(
    "-c", "--container", default=None, help="Container to read (default: the pod's default container)."
)
@click.option(
    "--last",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="For TYPE/NAME: how many of the workload's newest pods to aggregate (p50/p95 per phase).",
)
@kube_options(outputs=("table", "wide", "json", "yaml"), all_namespaces=False)
def coldstart(
    target: str | None,
    log_file: str | None,
    events_file: str | None,
    pod_file: str | None,
    previous_file: str | None,
    container: str | None,
    last: int,
    kube: KubeOptions,
) -> None:
    """Break a pod's cold start into phases and say what to do about the longest.

    Phases: waiting for a node, image pull, container start, engine init, weight
    download, weight load, torch.compile, KV cache, CUDA graph capture, server
    start, readiness lag. Sources: pod conditions and container states, events,
    and the engine's log (vLLM V0/V1, SGLang, TGI; current and previous container).
    With TYPE/NAME, the newest --last pods of the workload are summarised as
    p50/p95 per phase. `-o json` is what `simulate --cold-start FILE` reads.

    \b
    Examples:
      kubectl gpuscale coldstart vllm-7d9f8-abcde -n ml         # one pod, from the cluster
      kubectl gpuscale coldstart deploy/vllm -n ml --last 10    # p50/p95 over 10 pods
      kubectl gpuscale coldstart -f vllm.log                    # offline, a log file
      kubectl logs POD --timestamps | kubectl gpuscale coldstart -f -
      kubectl gpuscale coldstart -f vllm.log --pod pod.json --events events.json -o json > cold.json
      kubectl gpuscale simulate --cold-start cold.json
    """
    if log_file or pod_file or events_file:
        if target:
            raise InputError(
                "both a cluster target and -f/--pod/--events were given",
                "offline mode reads files only",
                "drop the POD/TYPE/NAME argument or the files",
            )
        timeline = _offline(log_file, pod_file, events_file, previous_file, container)
        _emit_one(timeline, kube.output)
        _exit_for([timeline])
        return
    if not target:
        raise InputError(
            "nothing to diagnose",
            "give a pod, TYPE/NAME or -f LOGFILE",
            "e.g. `kubectl gpuscale coldstart deploy/vllm -n ml` or `coldstart -f vllm.log`",
        )
    from kubectl_gpuscale.coldstart.service import pods_of, timeline_for_pod
    from kubectl_gpuscale.kube.resources import split_ref

    try:
        api_version, kind, name = split_ref(target)
    except ValueError as exc:
        raise InputError(
            f"cannot read target {target!r}", str(exc), "use POD, pod/NAME, deploy/NAME or sts/NAME"
        ) from None
    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    if kind == "Pod":
        pod = cluster.get("v1", "Pod", name, namespace)
        timeline = timeline_for_pod(cluster, pod, container)
        _emit_one(timeline, kube.output)
        _exit_for([timeline])
        return
    if kind not in WORKLOAD_KINDS:
        raise InputError(
            f"cannot diagnose {target}",
            f"{kind} has no pods of its own",
            "give a pod, a Deployment, StatefulSet or LeaderWorkerSet",
        )
    workload = cluster.get(api_version, kind, name, namespace)
    pods = pods_of(cluster, workload, namespace, kube.selector)
    if not pods:
        raise NotFoundError(
            f"no pods found for {kind.lower()} {namespace}/{name}",
            "its selector matches no pod",
            "scale it up, or give a pod name",
        )
    pods.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)
    timelines = [timeline_for_pod(cluster, pod, container) for pod in pods[:last]]
    _emit_many(timelines, f"{kind.lower()}/{name}", kube.output)
    _exit_for(timelines)


def _exit_for(timelines: list[Timeline]) -> None:
    """Exit 1 when a start failed (a finding at error severity), after the output was printed."""
    if any(t.status == "failed" for t in timelines):
        sys.exit(ExitStatus.FAILURE)


# ------------------------------------------------------------------------------------------------ inputs
def _read_text(path: str, what: str) -> str:
    from kubectl_gpuscale.inputs import MAX_LOG_BYTES, MAX_TEXT_BYTES, read_text

    logs = what in ("log", "previous log")
    return read_text(path, what, limit=MAX_LOG_BYTES if logs else MAX_TEXT_BYTES, lenient=logs)


def _read_objects(path: str, what: str) -> Any:
    """The JSON or YAML document in `path` (one), with the YAML alias budget of every manifest reader."""
    from kubectl_gpuscale import manifests

    text = _read_text(path, what)
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(
            f"cannot parse {what} {path}",
            "it is nested too deeply",
            f"save it with `kubectl get ... -o json > {path}`",
        ) from None
    except ValueError:
        pass
    try:
        documents = [d for d in manifests.parse_documents(text, f"{what} {path}") if d is not None]
    except InputError as exc:
        raise InputError(
            f"cannot parse {what} {path}",
            f"neither JSON nor YAML ({exc.why})",
            f"save it with `kubectl get ... -o json > {path}`",
        ) from None
    if len(documents) > 1:
        raise InputError(
            f"cannot parse {what} {path}",
            f"it holds {len(documents)} YAML documents",
            f"save one with `kubectl get ... -o json > {path}`",
        )
    return documents[0] if documents else None


def _offline(
    log_file: str | None,
    pod_file: str | None,
    events_file: str | None,
    previous_file: str | None,
    container: str | None,
) -> Timeline:
    from kubectl_gpuscale import shapes
    from kubectl_gpuscale.coldstart import build

    lines = _read_text(log_file, "log").splitlines() if log_file else []
    pod = _read_objects(pod_file, "pod") if pod_file else None
    if pod is not None and (not isinstance(pod, dict) or pod.get("kind") not in (None, "Pod")):
        if (
            isinstance(pod, dict)
            and pod.get("kind") == "List"
            and isinstance(pod.get("items"), list)
            and pod["items"]
        ):
            pod = pod["items"][0]
        if not isinstance(pod, dict) or pod.get("kind") not in (None, "Pod"):
            raise InputError(
                f"{pod_file} is not a Pod",
                "expected `kubectl get pod POD -o json` output",
                "pass the pod object, not a list or another kind",
            )
    if pod is not None:
        shapes.check_object(pod, str(pod_file), shapes.POD)
    events: list[dict[str, Any]] = []
    if events_file:
        data = _read_objects(events_file, "events")
        items = data.get("items") if isinstance(data, dict) and "items" in data else data
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise InputError(
                f"{events_file} holds no events",
                "expected a List of Event objects",
                "save them with `kubectl get events -o json`",
            )
        events = [e for e in items if isinstance(e, dict)]
        for event in events:
            shapes.check_object(event, str(events_file), shapes.EVENT)
    previous = _read_text(previous_file, "previous log").splitlines() if previous_file else []
    return build(lines, pod=pod, events=events, previous=previous, container=container)


# ------------------------------------------------------------------------------------------------ output
def _emit_one(timeline: Timeline, output: str) -> None:
    from kubectl_gpuscale.coldstart import timeline_to_dict

    if output in ("json", "yaml"):
        from kubectl_gpuscale.cli.output import emit_data

        emit_data(timeline_to_dict(timeline), output)
        return
    render_waterfall(timeline, wide=output == "wide")


def _emit_many(timelines: list[Timeline], workload: str, output: str) -> None:
    from kubectl_gpuscale.coldstart.model import summarize

    doc = summarize(timelines, workload)
    if output in ("json", "yaml"):
        from kubectl_gpuscale.cli.output import emit_data

        emit_data(doc, output)
        return
    from rich.table import Table
    from rich.text import Text

    from kubectl_gpuscale.display import plain

    console = _console()
    total = doc["totalSeconds"]
    head = f"{workload}: {doc['pods']} pods, {doc['failed']} failed"
    if total:
        head += f", total p50 {_fmt(total['p50'])}, p95 {_fmt(total['p95'])}"
    console.print(plain(head), highlight=False)
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for col, justify in (
        ("PHASE", "left"),
        ("PODS", "right"),
        ("P50", "right"),
        ("P95", "right"),
        ("MAX", "right"),
        ("P95 BAR", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    peak = max((p["p95Seconds"] or 0.0 for p in doc["phases"]), default=0.0) or 1.0
    for p in doc["phases"]:
        bar = "█" * max(1 if p["p95Seconds"] else 0, round(BAR_WIDTH * (p["p95Seconds"] or 0.0) / peak))
        table.add_row(
            plain(_title(p["name"])),
            str(p["samples"]),
            _fmt(p["p50Seconds"]),
            _fmt(p["p95Seconds"]),
            _fmt(p["maxSeconds"]),
            Text(bar, style="cyan"),
        )
    console.print(table)
    console.print("")
    rows = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for col in ("POD", "ENGINE", "STATUS", "TOTAL", "LONGEST"):
        rows.add_column(col, no_wrap=True)
    for t in timelines:
        longest = t.longest()
        rows.add_row(
            plain(t.pod or "<none>"),
            plain(t.engine or "<none>"),
            plain(t.status),
            _fmt(t.total_seconds),
            plain(f"{_title(longest.name)} {_fmt(longest.seconds)}" if longest else "<none>"),
        )
    console.print(rows)
    failed = [t for t in timelines if t.failure]
    for t in failed:
        assert t.failure
        console.print(plain(f"{t.pod}: {t.failure.headline}", "red"), highlight=False)


def _console() -> Any:
    from rich.console import Console

    out = sys.stdout
    import shutil

    width = max(160, shutil.get_terminal_size((160, 40)).columns)
    return Console(file=out, width=width, soft_wrap=True, force_terminal=None if out.isatty() else False)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 120:
        return f"{int(seconds // 60)}m{seconds % 60:02.0f}s"
    return f"{seconds:.1f}s"


def _title(name: str) -> str:
    from kubectl_gpuscale.coldstart.model import TITLES

    return TITLES.get(name, name)


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if key in ("note",):
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def render_waterfall(t: Timeline, *, wide: bool = False) -> None:
    """Print the timeline as a waterfall table: start, duration, share, a bar placed on the time axis.

    Text from the pod and its log is printed as plain text (`display.plain`), never as Rich markup.
    """
    from rich.table import Table
    from rich.text import Text

    from kubectl_gpuscale.display import plain

    console = _console()
    who = t.pod or "log"
    engine = t.engine or "unknown engine"
    if t.engine_version:
        engine += f" {t.engine_version}"
    console.print(plain(f"{who}: {engine}, {t.status}, total {_fmt(t.total_seconds)}"), highlight=False)
    if t.failure:
        console.print(plain(t.failure.headline, "bold red"), highlight=False)
    if not t.phases:
        console.print("No phases recognised (no timestamps, events or known engine lines).", highlight=False)
    else:
        table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
        for col, justify in (
            ("PHASE", "left"),
            ("START", "right"),
            ("DURATION", "right"),
            ("SHARE", "right"),
            ("WATERFALL", "left"),
            ("DETAIL", "left"),
        ):
            table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        span = max(t.total_seconds, sum(p.seconds for p in t.phases), 1e-9)
        for p in t.phases:
            share = p.seconds / span
            offset = round(BAR_WIDTH * (p.start or 0.0) / span) if p.start is not None else 0
            length = max(1, round(BAR_WIDTH * p.seconds / span)) if p.seconds > 0 else 0
            offset = min(offset, BAR_WIDTH - length)
            colour = "red" if t.failure and t.failure.phase == p.name else "yellow" if p.open else "cyan"
            bar = Text(" " * max(0, offset)) + Text("█" * length or "▏", style=colour)
            duration = _fmt(p.seconds) + ("+" if p.open else "")
            start = _fmt(p.start) if p.start is not None else "?"
            detail = _detail_text(p.info)
            if not wide and len(detail) > 60:
                detail = detail[:57] + "..."
            table.add_row(plain(_title(p.name)), start, duration, f"{share:.0%}", bar, plain(detail))
        console.print(table)
    summary = dict(t.summary)
    if summary and wide:
        console.print(plain("summary: " + _detail_text(summary)), highlight=False)
    for note in t.notes:
        console.print(plain(f"note: {note}"), highlight=False)
    if t.failure and t.failure.fix:
        console.print(plain(f"fix: {t.failure.fix}"), highlight=False)
    if t.advice:
        console.print("")
        console.print("[bold]What to do (largest estimated saving first):[/]")
        for i, a in enumerate(t.advice[:5], 1):
            where = _title(a.phase) if a.phase != "all" else "whole start"
            console.print(
                Text.assemble(
                    f"{i}. ", (f"-{_fmt(a.saving_seconds)}", "bold"), plain(f" {where}: {a.action} ({a.why})")
                ),
                highlight=False,
            )
