"""`kubectl gpuscale top`: the live dashboard, or one snapshot with --once."""

from __future__ import annotations

from dataclasses import replace

import click

from kubectl_gpuscale.cli.options import KubeOptions, kube_options, parse_duration
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.cli.types import finite_float
from kubectl_gpuscale.errors import InputError


@click.command(context_settings=CONTEXT_SETTINGS)
@kube_options(outputs=("table", "wide", "json", "yaml"), writes=False, selector=True)
@click.option(
    "--demo", is_flag=True, help="Run on the built-in simulated cluster: no cluster, Prometheus or network."
)
@click.option(
    "--speed",
    type=finite_float(0.1, 600),
    default=10.0,
    show_default=True,
    help="Demo only: simulated seconds per real second.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Demo only: random seed of the traffic.")
@click.option(
    "--interval",
    default="2s",
    show_default=True,
    callback=parse_duration,
    metavar="DURATION",
    help="Refresh interval.",
)
@click.option(
    "--once", is_flag=True, help="Print one snapshot of the workloads table and exit (for scripts)."
)
@click.option(
    "--at",
    "at",
    default="12m",
    show_default=True,
    callback=parse_duration,
    metavar="DURATION",
    help="Demo with --once: how far into the simulation (from its start) the snapshot is taken.",
)
@click.option(
    "--prometheus",
    "prometheus_url",
    default=None,
    metavar="URL",
    help="Prometheus URL (default: GPUSCALE_PROMETHEUS_URL, then what `install` recorded).",
)
def top(
    kube: KubeOptions,
    demo: bool,
    speed: float,
    seed: int,
    interval: float | None,
    once: bool,
    at: float | None,
    prometheus_url: str | None,
) -> None:
    """Live dashboard of GPU inference scaling and cold starts.

    Shows each workload's autoscaler (HPA, KEDA, Knative), replicas, every trigger's
    value against its threshold, queue depth, KV cache, GPU utilisation, TTFT p95 and
    a state (steady, scaling up, cold starting, flapping, metric missing); its pods
    with cold-start progress; the scaling events; doctor findings.

    Keys: / filter, n namespace, s scale, p pause/resume, enter cold-start waterfall,
    r refresh, ? help, q quit. Actions that change the cluster ask first.

    \b
    Examples:
      kubectl gpuscale top --demo                 # simulated cluster, 10x speed
      kubectl gpuscale top -n ml                  # live, one namespace
      kubectl gpuscale top -A --prometheus http://localhost:9090
      kubectl gpuscale top --once -o json         # one snapshot for scripts
      kubectl gpuscale top --demo --once --at 20m
    """
    from kubectl_gpuscale.tui.model import Source

    source: Source
    if demo:
        from kubectl_gpuscale.tui.sources.demo import DemoSource

        demo_source = DemoSource(seed=seed, speed=speed, realtime=not once)
        if once:
            demo_source.advance_by(at or 0.0)
        source = demo_source
    else:
        from kubectl_gpuscale.tui.sources.live import LiveSource

        source = LiveSource.from_flags(
            lambda context: replace(kube, context=context).cluster(),
            context=kube.context,
            namespace=kube.namespace,
            all_namespaces=kube.all_namespaces,
            selector=kube.selector,
            prometheus_url=prometheus_url,
            request_timeout=kube.request_timeout,
        )
    if once:
        _print_once(source, kube.output)
        return
    if kube.output not in ("table", "wide"):
        raise InputError(
            f"-o {kube.output} needs --once",
            "the live dashboard draws a table",
            "add --once for a snapshot in json or yaml",
        )
    from kubectl_gpuscale.tui.app import TopApp

    TopApp(source, interval=interval or 2.0).run()


def _print_once(source: object, output: str) -> None:
    from kubectl_gpuscale.cli.output import Column, emit_data, note, render_table
    from kubectl_gpuscale.tui.model import History, Workload, classify

    snapshot = source.refresh()  # type: ignore[attr-defined]
    failed = [p for p in snapshot.problems if p.startswith("cluster: ")]
    if failed:
        from kubectl_gpuscale.errors import GpuscaleError

        raise GpuscaleError(
            "top --once: " + failed[0].removeprefix("cluster: error: ").removeprefix("cluster: ")
        )
    if output in ("json", "yaml"):
        emit_data(snapshot.to_dict(), output)
        return
    for problem in snapshot.problems:
        note(f"warning: {problem}")
    history = History()

    def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
        return "-" if value is None else f"{value:.{digits}f}{unit}"

    columns = [
        Column("namespace", lambda w: w.namespace),
        Column("name", lambda w: w.name),
        Column("engine", lambda w: w.engine),
        Column("scaler", lambda w: w.scaler),
        Column("ready", lambda w: f"{w.ready}/{w.desired}"),
        Column("min-max", lambda w: f"{fmt(w.min_replicas)}-{fmt(w.max_replicas)}"),
        Column("why", lambda w: w.why()),
        Column("queue", lambda w: fmt(w.queue_waiting), justify="right"),
        Column("running", lambda w: fmt(w.queue_running), justify="right", wide=True),
        Column("kv", lambda w: fmt(w.kv_cache_pct, "%"), justify="right"),
        Column("gpu", lambda w: fmt(w.gpu_util_pct, "%"), justify="right"),
        Column("cpu", lambda w: fmt(w.cpu_pct, "%"), justify="right", wide=True),
        Column("ttft-p95", lambda w: fmt(w.ttft_p95_s, "s", 2), justify="right"),
        Column("state", lambda w: classify(w, history)),
        Column("pods", lambda w: len(w.pods), justify="right", wide=True),
    ]
    rows: list[Workload] = list(snapshot.workloads)
    render_table(rows, columns, wide=output == "wide", empty="No inference workloads found.")
