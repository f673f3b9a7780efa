"""Calibration: the engine capacity model (`sim.engine.EngineProfile`) fitted to the workload's history,
and the replay check: the current policy simulated over the history, side by side with what happened.

`calibrate(history, preset)` fits, per replica (per step: throughput x = arrivals / step / replicas,
running and waiting per replica, the TTFT histogram), the simulator's own relations
(sim/engine.py, sim/core.py):

- prefill: with no queue, TTFT = p / (1 - x p) with p = prompt / prefill_tps; p such that these
  TTFTs over the queue-free steps, binned into the history's buckets, have the observed median
  (so the buckets' coarseness, 20 ms wide around 30 ms, cancels); needs `MIN_TTFT_REQUESTS` TTFTs;
- inter-token latency: Little's law, running = x (p + output * ITL) with ITL = itl_min +
  (itl_sat - itl_min) x / mu, a least-squares line over the queue-free steps; needs
  `MIN_STEPS` steps and a load spread of `MIN_RHO_SPREAD` of the capacity (else only the level);
- capacity mu (hence decode_tps = output / (1/mu - p)): the median per-replica throughput of the
  steps with a standing queue (>= 1 waiting per replica two steps in a row), never below the 99th
  percentile of the queue-free throughput; needs `MIN_STEPS` such steps and `MIN_QUEUED_SHARE` of
  all (a few transient queues while a scale-up is under way measure the cold start, not capacity);
- max_num_seqs: raised to the largest running per replica seen when that exceeds the preset.

What the history does not constrain keeps the preset's value, and `Calibration.notes` says so;
nothing fitted at all gives `source="preset"`.

`replay(history, calibration, coldstart, baseline, seed=...)` runs the baseline policy over the
history's arrivals (`History.per_second` -> `sim.Trace` -> `sim.Simulation`) and compares TTFT p50/p95
and replica-hours. Both TTFT figures go through the same buckets (the history's `le` bounds, with
Prometheus' `histogram_quantile` interpolation), so the bucket resolution does not count as model error.
Replica-hours compare Ready (available) replicas on both sides.

`Replay.large` when the TTFT p95 error exceeds `LARGE_TTFT_ERROR` (25 %) or the replica-hours
error `LARGE_REPLICA_HOURS_ERROR` (15 %). Why these: the search ranks candidates by GPU-hours, and
neighbouring candidates differ by about one replica in four to seven (15-25 %), so a larger cost
error can reorder them; TTFT p95 is read from a histogram whose buckets around an SLO are 25-50 %
apart (vLLM: 0.5, 0.75, 1, 2.5 s), and 25 % is the width of the finest of them.
Pure: numpy and the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim import Simulation, Trace, build_controller
from kubectl_gpuscale.sim.core import share_below
from kubectl_gpuscale.sim.engine import ColdStartProfile, EngineProfile
from kubectl_gpuscale.sim.policies import PolicySpec
from kubectl_gpuscale.tune.history import History

MIN_TTFT_REQUESTS = 1000
MIN_STEPS = 40
MIN_RHO_SPREAD = 0.2
QUEUE_FREE = 0.5  # waiting per replica below which a step has no standing queue
STANDING_QUEUE = 1.0
MIN_QUEUED_SHARE = 0.01  # of the steps: a few transient queues (scale-ups under way) do not measure capacity
LARGE_TTFT_ERROR = 0.25
LARGE_REPLICA_HOURS_ERROR = 0.15


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """The engine profile to simulate with, and how it was obtained."""

    profile: EngineProfile
    preset: str
    source: str  # "fitted" or "preset"
    fitted: tuple[str, ...] = ()  # the profile fields the history set
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        p = self.profile
        return {
            "source": self.source,
            "preset": self.preset,
            "fitted": list(self.fitted),
            "notes": list(self.notes),
            "profile": {
                "prefillTokensPerSecond": round(p.prefill_tps, 1),
                "decodeTokensPerSecond": round(p.decode_tps, 1),
                "itlMinSeconds": round(p.itl_min_s, 6),
                "itlSaturatedSeconds": round(p.itl_sat_s, 6),
                "maxNumSeqs": p.max_num_seqs,
            },
        }


@dataclass(frozen=True, kw_only=True)
class Replay:
    """The current policy simulated over the history beside what was observed."""

    policy: str
    observed_ttft_p50: float | None
    observed_ttft_p95: float | None
    predicted_ttft_p50: float | None
    predicted_ttft_p95: float | None
    observed_replica_hours: float | None  # None: the history has no replica series
    predicted_replica_hours: float
    ttft_p95_error: float | None
    replica_hours_error: float | None
    large: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the keys of `tune -o json`'s `calibration.replay`."""

        def r(v: float | None, n: int = 4) -> float | None:
            return None if v is None else round(v, n)

        return {
            "policy": self.policy,
            "observedTtftP50": r(self.observed_ttft_p50),
            "observedTtftP95": r(self.observed_ttft_p95),
            "predictedTtftP50": r(self.predicted_ttft_p50),
            "predictedTtftP95": r(self.predicted_ttft_p95),
            "observedReplicaHours": r(self.observed_replica_hours, 2),
            "predictedReplicaHours": r(self.predicted_replica_hours, 2),
            "ttftP95Error": r(self.ttft_p95_error),
            "replicaHoursError": r(self.replica_hours_error),
            "large": self.large,
            "notes": list(self.notes),
        }


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: np.ndarray) -> float | None:
    """Prometheus' `histogram_quantile` on per-bucket counts (non-cumulative; the last bound +Inf)."""
    total = float(np.sum(counts))
    if total <= 0 or not bounds:
        return None
    cumulative = np.cumsum(counts)
    rank = q * total
    j = int(np.searchsorted(cumulative, rank, side="left"))
    j = min(j, len(bounds) - 1)
    if math.isinf(bounds[j]):
        finite = [b for b in bounds if not math.isinf(b)]
        return finite[-1] if finite else None
    lower = bounds[j - 1] if j > 0 else 0.0
    below = float(cumulative[j - 1]) if j > 0 else 0.0
    inside = float(counts[j])
    return lower + (bounds[j] - lower) * ((rank - below) / inside if inside > 0 else 1.0)


def _fit_prefill(
    bounds: tuple[float, ...], median: float, x: np.ndarray, weights: np.ndarray
) -> float | None:
    """The unloaded prefill time p whose queue-free TTFTs, p / (1 - x p) per step (the simulator's, load
    capped at 0.9), binned into the same buckets, have the observed median (bisection: monotonic in p)."""
    edges = np.asarray(bounds)

    def model_median(p: float) -> float:
        ttft = p / (1.0 - np.minimum(x * p, 0.9))
        binned = np.bincount(
            np.searchsorted(edges, ttft, side="left"), weights=weights, minlength=len(bounds)
        )
        return histogram_quantile(0.5, bounds, binned[: len(bounds)]) or 0.0

    lo, hi = 1e-5, 60.0
    if not model_median(lo) <= median <= model_median(hi):
        return None
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if model_median(mid) < median else (lo, mid)
    return math.sqrt(lo * hi)


def calibrate(history: History, preset: EngineProfile) -> Calibration:
    """The preset's capacity model fitted to the history (see the module docstring)."""
    step = history.step
    replicas = np.nan_to_num(history.replicas, nan=0.0)
    up = replicas > 0
    arrivals = np.nan_to_num(history.arrivals, nan=0.0)
    x = np.where(up, arrivals / step / np.maximum(replicas, 1), np.nan)
    waiting = np.where(up, np.nan_to_num(history.waiting) / np.maximum(replicas, 1), np.nan)
    running = np.where(up, np.nan_to_num(history.running) / np.maximum(replicas, 1), np.nan)
    prompt, output = history.prompt_tokens, history.output_tokens
    if not (prompt > 0 and output > 0):
        return Calibration(
            profile=preset,
            preset=preset.name,
            source="preset",
            notes=("no requests in the history: the preset is used as it is",),
        )
    fitted: list[str] = []
    notes: list[str] = []
    free = up & (x > 0) & (waiting < QUEUE_FREE)

    p = prompt / preset.prefill_tps
    counts = history.ttft_counts
    observed = counts[free].sum(axis=0) if counts.shape[1] and free.any() else np.zeros(0)
    if observed.size and observed.sum() >= MIN_TTFT_REQUESTS:
        median = histogram_quantile(0.5, history.ttft_buckets, observed)
        fit = _fit_prefill(history.ttft_buckets, median, x[free], arrivals[free]) if median else None
        if fit is not None and median is not None:
            p = fit
            fitted.append("prefill_tps")
            notes.append(
                f"prefill: median TTFT {median * 1000:.0f} ms (through the histogram's buckets) over "
                f"{int(free.sum())} queue-free steps -> {prompt / p:,.0f} prompt tokens/s "
                f"(preset {preset.prefill_tps:,.0f})"
            )
        else:
            notes.append("prefill: the TTFT median lies outside what the model can produce; preset kept")
    else:
        notes.append(
            f"prefill: fewer than {MIN_TTFT_REQUESTS} TTFTs in queue-free steps (or no TTFT histogram); "
            "preset kept"
        )
    prefill_tps = prompt / p if "prefill_tps" in fitted else preset.prefill_tps

    decode_tps = preset.decode_tps
    queued = up & (waiting >= STANDING_QUEUE) & (x > 0)
    queued[1:] &= queued[:-1]  # a standing queue: two steps in a row
    if queued.sum() >= max(MIN_STEPS, MIN_QUEUED_SHARE * history.steps):
        # never below what the replicas served without a queue
        mu = max(float(np.median(x[queued])), float(np.quantile(x[free], 0.99)) if free.any() else 0.0)
        if mu > 0 and 1.0 / mu > p:
            decode_tps = output / (1.0 / mu - p)
            fitted.append("decode_tps")
            notes.append(
                f"capacity: {mu:.2f} req/s per replica over {int(queued.sum())} steps with a standing "
                f"queue -> {decode_tps:,.0f} output tokens/s (preset {preset.decode_tps:,.0f})"
            )
    else:
        notes.append(
            f"capacity: {int(queued.sum())} steps with a standing queue, fewer than "
            f"{max(MIN_STEPS, int(MIN_QUEUED_SHARE * history.steps))} (the workload seldom saturated); "
            "preset decode throughput kept"
        )
    mu = 1.0 / (p + output / decode_tps)

    itl_min, itl_sat = preset.itl_min_s, preset.itl_sat_s
    ok = free & (running > 0)
    if ok.sum() >= MIN_STEPS:
        latency = running[ok] / x[ok]
        itl = (latency - p) / output
        rho = x[ok] / mu
        weights = arrivals[ok]
        if float(np.quantile(rho, 0.9) - np.quantile(rho, 0.1)) >= MIN_RHO_SPREAD:
            slope, intercept = np.polyfit(rho, itl, 1, w=np.sqrt(weights))
            if intercept > 0 and slope >= 0:
                itl_min, itl_sat = float(intercept), float(intercept + slope)
                fitted += ["itl_min_s", "itl_sat_s"]
                notes.append(
                    f"inter-token latency: {itl_min * 1000:.1f} ms at batch 1, {itl_sat * 1000:.1f} ms "
                    f"saturated, from running vs throughput over {int(ok.sum())} steps "
                    f"(preset {preset.itl_min_s * 1000:.1f} / {preset.itl_sat_s * 1000:.1f} ms)"
                )
            else:
                notes.append("inter-token latency: the fit came out negative; preset kept")
        else:
            level = float(np.average(itl, weights=weights))
            model = float(
                np.average(preset.itl_min_s + (preset.itl_sat_s - preset.itl_min_s) * rho, weights=weights)
            )
            if level > 0 and model > 0:
                itl_min, itl_sat = preset.itl_min_s * level / model, preset.itl_sat_s * level / model
                fitted += ["itl_min_s", "itl_sat_s"]
                notes.append(
                    f"inter-token latency: load too even to fit a slope; the preset's line scaled by "
                    f"{level / model:.2f}"
                )
    else:
        notes.append(
            f"inter-token latency: fewer than {MIN_STEPS} queue-free steps with running requests; preset kept"
        )

    seqs = preset.max_num_seqs
    peak = float(np.nanmax(running)) if np.isfinite(running).any() else 0.0
    if peak > seqs:
        seqs = math.ceil(peak)
        fitted.append("max_num_seqs")
        notes.append(f"max_num_seqs: {seqs} running per replica seen (preset {preset.max_num_seqs})")

    profile = replace(
        preset,
        name=f"{preset.name} (fitted)" if fitted else preset.name,
        prefill_tps=prefill_tps,
        decode_tps=decode_tps,
        itl_min_s=itl_min,
        itl_sat_s=itl_sat,
        max_num_seqs=seqs,
        source=f"fitted to {history.namespace}/{history.workload}" if fitted else preset.source,
    )
    return Calibration(
        profile=profile,
        preset=preset.name,
        source="fitted" if fitted else "preset",
        fitted=tuple(fitted),
        notes=tuple(notes),
    )


def replay(
    history: History,
    calibration: Calibration,
    coldstart: ColdStartProfile,
    baseline: PolicySpec,
    *,
    seed: int,
) -> Replay:
    """The baseline policy simulated over the history, beside what was observed (module docstring)."""
    if not (history.prompt_tokens > 0 and history.output_tokens > 0) or history.requests <= 0:
        raise InputError(
            "cannot replay the history", "it holds no requests", "choose a longer or busier --since"
        )
    counts = history.per_second(seed).astype(np.float64)
    trace = Trace(
        counts,
        history.prompt_tokens,
        history.output_tokens,
        int(counts.sum()),
        name="history",
        description=f"{history.namespace}/{history.workload}",
    )
    duration = int(counts.shape[0])
    simulation = Simulation(
        trace, calibration.profile, coldstart, [build_controller(baseline)], duration=duration, seed=seed
    )
    result = simulation.run()[0]
    series = simulation.series()[0]
    widths = np.diff(np.append(series.t, duration)).clip(min=0)
    predicted_hours = float(np.sum(series.ready * widths)) / 3600.0
    known = not bool(np.all(np.isnan(history.replicas)))
    observed_hours = float(np.nansum(history.replicas)) * history.step / 3600.0 if known else None

    observed = history.ttft_counts.sum(axis=0) if history.ttft_counts.shape[1] else np.zeros(0)
    bounds = history.ttft_buckets
    o50 = o95 = p50 = p95 = None
    notes: list[str] = []
    if observed.size and observed.sum() > 0:
        o50, o95 = histogram_quantile(0.5, bounds, observed), histogram_quantile(0.95, bounds, observed)
        hist = simulation.runs[0].totals.hist
        total = float(hist.sum())
        cumulative = np.array([total if math.isinf(b) else share_below(hist, b) for b in bounds])
        predicted = np.diff(cumulative, prepend=0.0)
        p50, p95 = histogram_quantile(0.5, bounds, predicted), histogram_quantile(0.95, bounds, predicted)
    else:
        p50, p95 = result.ttft_p50, result.ttft_p95
        notes.append("the history has no TTFT histogram: only replica-hours are checked")
    ttft_error = abs(p95 - o95) / o95 if p95 is not None and o95 else None
    hours_error = abs(predicted_hours - observed_hours) / observed_hours if observed_hours else None
    large = bool(
        (ttft_error is not None and ttft_error > LARGE_TTFT_ERROR)
        or (hours_error is not None and hours_error > LARGE_REPLICA_HOURS_ERROR)
    )
    if large:
        notes.append(
            f"the model misses the history by more than {LARGE_TTFT_ERROR:.0%} on TTFT p95 or "
            f"{LARGE_REPLICA_HOURS_ERROR:.0%} on replica-hours: treat the recommendation with care "
            "(check the cold start, the engine preset and that the baseline policy is the one that ran)"
        )
    return Replay(
        policy=result.policy,
        observed_ttft_p50=o50,
        observed_ttft_p95=o95,
        predicted_ttft_p50=p50,
        predicted_ttft_p95=p95,
        observed_replica_hours=observed_hours,
        predicted_replica_hours=predicted_hours,
        ttft_p95_error=ttft_error,
        replica_hours_error=hours_error,
        large=large,
        notes=tuple(notes),
    )
