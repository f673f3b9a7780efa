"""`kubectl gpuscale simulate`: traffic x scaling policy x cold start -> latency SLO and cost."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import click

from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.cli.types import finite_float
from kubectl_gpuscale.errors import GpuscaleError, InputError
from kubectl_gpuscale.inputs import read_text

if TYPE_CHECKING:
    from kubectl_gpuscale.sim import PolicyResult, Series, Trace

SPARK = "▁▂▃▄▅▆▇█"


def _duration(ctx: click.Context | None, param: click.Parameter | None, value: str) -> float:
    from kubectl_gpuscale.cli.types import duration_value

    return duration_value(str(value).strip().lower(), allow_zero=False)


def sparkline(values: Any, width: int = 24) -> str:
    """A unicode sparkline of `values` resampled to `width` cells (max per cell)."""
    import numpy as np

    arr = np.nan_to_num(np.asarray(values, dtype=float))
    if arr.size == 0:
        return ""
    cells = np.array_split(arr, min(width, arr.size))
    peaks = np.array([c.max() for c in cells])
    top = peaks.max()
    if top <= 0:
        return SPARK[0] * len(peaks)
    return "".join(SPARK[min(7, int(p / top * 7.999))] for p in peaks)


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f}ms" if v < 1 else f"{v:.1f}s"


def _table(results: list[PolicyResult], series: list[Series]) -> None:
    from kubectl_gpuscale.cli.output import Column, render_table

    rows = list(zip(results, series, strict=True))
    render_table(
        rows,
        [
            Column("policy", lambda r: r[0].policy),
            Column("ttft p50", lambda r: _fmt_s(r[0].ttft_p50), justify="right"),
            Column("p95", lambda r: _fmt_s(r[0].ttft_p95), justify="right"),
            Column("p99", lambda r: _fmt_s(r[0].ttft_p99), justify="right"),
            Column("slo", lambda r: f"{r[0].slo_attainment_pct:.2f}%", justify="right"),
            Column("timed out", lambda r: r[0].timed_out, justify="right"),
            Column("dropped", lambda r: r[0].dropped, justify="right"),
            Column("gpu-h", lambda r: f"{r[0].gpu_hours:.1f}", justify="right"),
            Column("cost", lambda r: f"${r[0].cost:,.0f}", justify="right"),
            Column("$/month", lambda r: f"${r[0].cost_per_month:,.0f}", justify="right"),
            Column("idle $", lambda r: f"${r[0].idle_cost:,.0f}", justify="right"),
            Column("events", lambda r: r[0].scale_events, justify="right"),
            Column("at zero", lambda r: f"{r[0].time_at_zero_s / 3600:.1f}h", justify="right"),
            Column("replicas", lambda r: sparkline(r[1].pods)),
        ],
    )


def _plot(path: str, title: str, series: list[Series], slo: float) -> None:
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

    fig, axes = plt.subplots(4, 1, figsize=(11, 9), sharex=True)
    hours = series[0].t / 3600.0
    axes[0].plot(hours, series[0].rps, color="black", lw=0.8)
    axes[0].set_ylabel("arrivals/s")
    for s in series:
        h = s.t / 3600.0
        axes[1].plot(h, s.waiting, lw=0.8, label=s.policy)
        axes[2].step(h, s.pods, where="post", lw=0.9, label=s.policy)
        axes[3].plot(h, np.where(np.isnan(s.ttft), np.nan, np.maximum(s.ttft, 1e-3)), lw=0.8, label=s.policy)
    axes[1].set_ylabel("queued")
    axes[2].set_ylabel("replicas")
    axes[3].set_ylabel("mean TTFT (s)")
    axes[3].set_yscale("log")
    axes[3].axhline(slo, color="red", ls="--", lw=0.8)
    axes[3].set_xlabel("hours")
    axes[2].legend(loc="upper right", fontsize=7)
    axes[0].set_title(title)
    fig.tight_layout()
    from kubectl_gpuscale.cli.output import save_figure

    save_figure(fig, path, dpi=110)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--pattern",
    "pattern_name",
    default=None,
    metavar="NAME",
    help="Traffic pattern: constant, business-hours, business-hours-daily, dev, diurnal, spiky, step.",
)
@click.option(
    "--rps",
    type=finite_float(0, 1e6, low_open=True),
    default=None,
    help="The pattern's rate (peak req/s; for dev: requests/day).",
)
@click.option(
    "--trace",
    type=click.Path(dir_okay=False),
    default=None,
    help="Replay a CSV trace: timestamp,prompt_tokens,output_tokens per request.",
)
@click.option(
    "--policy",
    "policies",
    default="always-on,cpu-hpa,keda,knative",
    show_default=True,
    help="Comma-separated policies, options after colons, e.g. keda:min=0:threshold=5,knative:target=50.",
)
@click.option("--duration", default="1d", show_default=True, help="Simulated time: 30d, 12h, 90m, 600s.")
@click.option(
    "--model-profile",
    default="8b",
    show_default=True,
    help="Capacity preset: llama-8b-h100 (8b) or llama-70b-h100x2 (70b).",
)
@click.option(
    "--cold-start",
    default=None,
    metavar="PROFILE|FILE",
    help="8b-warm, 70b-warm, 8b-uncached, 70b-uncached, criu, or a JSON file (`coldstart -o json`).",
)
@click.option(
    "--prompt-tokens",
    type=finite_float(0, 1e7, low_open=True),
    default=512.0,
    show_default=True,
    help="Mean prompt tokens (patterns).",
)
@click.option(
    "--output-tokens",
    type=finite_float(0, 1e7, low_open=True),
    default=256.0,
    show_default=True,
    help="Mean output tokens (patterns).",
)
@click.option("--slo-ttft", default="2s", show_default=True, help="TTFT target for SLO attainment.")
@click.option("--timeout", "client_timeout", default="120s", show_default=True, help="Client timeout.")
@click.option(
    "--price",
    type=finite_float(0, 1e5),
    default=4.41,
    show_default=True,
    help="$ per GPU-hour (H100 SXM5 on-demand).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="RNG seed: the same seed gives the same result."
)
@click.option(
    "--preset",
    type=click.Choice(["seed-cost-model"]),
    default=None,
    help="Recompute the guide's cost table and say which claims hold.",
)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.png",
    help="Write traffic, queue, replicas and TTFT per policy to a PNG (needs matplotlib).",
)
def simulate(
    pattern_name: str | None,
    rps: float | None,
    trace: str | None,
    policies: str,
    duration: str,
    model_profile: str,
    cold_start: str | None,
    prompt_tokens: float,
    output_tokens: float,
    slo_ttft: str,
    client_timeout: str,
    price: float,
    seed: int,
    preset: str | None,
    output: str,
    plot_path: str | None,
) -> None:
    """What-if: traffic x scaling policy x cold start -> latency SLO and cost.

    A model, not a controller: it never touches a cluster. Policies: always-on[:n=N],
    cpu-hpa, gpu-hpa, keda, keda-zero, knative (see docs/simulate.md for their options).

    \b
    Examples:
      kubectl gpuscale simulate --pattern business-hours --duration 7d
      kubectl gpuscale simulate --pattern dev --policy keda-zero,knative --cold-start criu
      kubectl gpuscale simulate --pattern spiky --policy "knative:target=50,keda:threshold=10" -o json
      kubectl gpuscale simulate --trace requests.csv --policy keda --plot sim.png
      kubectl gpuscale simulate --cold-start coldstart.json --model-profile 70b --pattern diurnal
      kubectl gpuscale simulate --preset seed-cost-model
    """
    from kubectl_gpuscale import sim
    from kubectl_gpuscale.cli.output import compile_notice, emit_data

    slo = _duration(None, None, slo_ttft)
    timeout = _duration(None, None, client_timeout)
    seconds = int(_duration(None, None, duration))
    if preset == "seed-cost-model":
        _seed_cost(output, seed, slo, price, timeout, seconds if duration != "1d" else 7 * 86400)
        return
    if trace and pattern_name:
        raise InputError("--trace and --pattern are exclusive", fix="give one of them")
    traffic: sim.Pattern | sim.Trace
    if trace:
        traffic = read_trace(trace)
        if duration == "1d":
            seconds = traffic.duration
    else:
        traffic = sim.pattern(pattern_name or "business-hours", rps, prompt_tokens, output_tokens)
    engine = sim.engine_profile(model_profile)
    cold = _cold_start(cold_start, engine.name)
    controllers = [sim.build_controller(p) for p in _checked_policies(sim.parse_policies(policies))]
    s = sim.Simulation(traffic, engine, cold, controllers, seconds, seed, slo, price, timeout)
    compile_notice(s.runs)
    results = s.run()
    series = s.series()
    if plot_path:
        _plot(
            plot_path,
            f"{traffic.name} x {engine.name}, cold start {cold.name} ({cold.total:.0f}s)",
            series,
            slo,
        )
    if output == "table":
        _table(results, series)
    else:
        emit_data(
            {
                "kind": "Simulation",
                "traffic": traffic.name,
                "description": traffic.description,
                "modelProfile": engine.name,
                "coldStart": {
                    "name": cold.name,
                    "seconds": cold.total,
                    "phases": [{"name": n, "seconds": v} for n, v in cold.phases],
                },
                "durationSeconds": seconds,
                "seed": seed,
                "sloTtftSeconds": slo,
                "pricePerGpuHour": price,
                "results": [r.to_dict() for r in results],
            },
            output,
        )


def _cold_start(value: str | None, engine_name: str) -> Any:
    from kubectl_gpuscale import sim

    if value is None:
        return sim.coldstart_profile("70b-warm" if "70b" in engine_name else "8b-warm")
    if value in sim.COLDSTART_PRESETS:
        return sim.coldstart_profile(value)
    if not os.path.exists(value):
        raise InputError(
            f"unknown cold-start profile {value!r}",
            "it is neither a preset nor a readable file",
            f"use one of {', '.join(sim.COLDSTART_PRESETS)} or a JSON file",
        )
    try:
        return sim.coldstart_from_json(read_text(value, "cold-start profile"), value)
    except RecursionError:
        raise InputError(
            f"cannot read cold-start profile {value}",
            "its JSON is nested too deeply",
            "pass what `kubectl gpuscale coldstart -o json` writes",
        ) from None


def read_trace(path: str) -> Trace:
    """The `--trace` file (UTF-8 CSV) parsed; malformed CSV is an `InputError` naming the file."""
    import csv

    from kubectl_gpuscale import sim

    text = read_text(path, "trace")
    try:
        return sim.parse_trace(text, path)
    except csv.Error as exc:
        raise InputError(
            f"cannot parse trace {path}",
            f"malformed CSV ({exc})",
            "write one request per line: timestamp,prompt_tokens,output_tokens",
        ) from None


def _checked_policies(specs: list[Any]) -> list[Any]:
    """The parsed `--policy` items, refusing numeric options that are negative or not finite (keda:min=-3)."""
    for spec in specs:
        for key, value in spec.options.items():
            try:
                number = float(value)
            except ValueError:
                continue  # a duration (5m) or a cron floor: its parser says what is wrong
            if not math.isfinite(number) or number < 0:
                raise InputError(
                    f"bad policy option {key}={value} in {spec.name!r}",
                    "it must be a finite number >= 0",
                    "e.g. keda:min=0:max=8:threshold=5",
                )
    return specs


def _seed_cost(output: str, seed: int, slo: float, price: float, timeout: float, seconds: int) -> None:
    from kubectl_gpuscale.cli.output import Column, emit_data, note, render_table
    from kubectl_gpuscale.sim.seedcost import PATTERNS, run_seed_cost_model

    cells = run_seed_cost_model(seconds, seed, slo, price, timeout)
    if output != "table":
        emit_data(
            {
                "kind": "SeedCostModel",
                "durationSeconds": seconds,
                "seed": seed,
                "cells": [c.to_dict() for c in cells],
            },
            output,
        )
        return
    render_table(
        cells,
        [
            Column("pattern", lambda c: PATTERNS[c.pattern][2]),
            Column("setup", lambda c: c.setup),
            Column(
                "guide $/mo",
                lambda c: "not viable" if c.claim is None else f"${c.claim:,.0f}",
                justify="right",
            ),
            Column("model $/mo", lambda c: f"${c.result.cost_per_month:,.0f}", justify="right"),
            Column("ttft p95", lambda c: _fmt_s(c.result.ttft_p95), justify="right"),
            Column("slo", lambda c: f"{c.result.slo_attainment_pct:.2f}%", justify="right"),
            Column("timed out", lambda c: c.result.timed_out, justify="right"),
            Column("replicas", lambda c: f"{c.result.mean_replicas:.2f}", justify="right"),
            Column("verdict", lambda c: c.verdict),
        ],
    )
    agree = sum(1 for c in cells if c.verdict.startswith("agrees"))
    note(
        f"{agree} of {len(cells)} of the guide's figures hold within 25 % (8B on H100, 512/256 tokens, "
        f"{seconds // 86400} simulated days scaled to a 730.5 h month)."
    )
