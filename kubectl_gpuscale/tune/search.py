"""The search: candidate settings per policy, simulated on the history and on its `--headroom` variant
with several seeds, the cost/SLO frontier, the cheapest configuration meeting the SLO on both, and
its cold-start cliff. Pure: the simulator's public API, numpy, and a process pool for the second core.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from kubectl_gpuscale import sim
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.defaults import DEFAULT_PRICE_PER_GPU_HOUR, HOURS_PER_MONTH
from kubectl_gpuscale.sim.policies import CronFloor, PolicySpec
from kubectl_gpuscale.tune.history import History

POLICIES = ("keda", "keda-zero", "knative")
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0, as the simulator's CronFloor counts)
CLIFF_MAX_S = 1800.0  # the cold start the cliff search stops at (30 min)
CLIFF_STEPS = 4  # bisection steps after the bracket (the cliff to ~3 % of its bracket)
Progress = Callable[[int, int], None]


class CalibrationLike(Protocol):
    """What `recommend` reads from `tune.calibrate.Calibration`."""

    @property
    def profile(self) -> sim.EngineProfile: ...


@dataclass(frozen=True, kw_only=True)
class TuneOptions:
    """The meaning of `tune`'s search flags.

    `slo` is the share of requests (0-1) whose TTFT must be within `slo_ttft` seconds; `headroom`
    multiplies the history's traffic for the second variant (1 = no second variant); `seeds` spread
    each step's arrivals over its seconds differently; `cold_start_source` says where the cold start
    came from (for the result); `workers` processes share the simulations (1 = in this process).
    """

    slo_ttft: float = 2.0
    slo: float = 0.99
    policies: tuple[str, ...] = POLICIES
    max_replicas: int = 8
    price: float = DEFAULT_PRICE_PER_GPU_HOUR
    headroom: float = 1.5
    seeds: tuple[int, ...] = (0, 1)
    cold_start_source: str = "given"
    timeout: float = 120.0
    workers: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.slo <= 1:
            raise InputError(f"SLO share {self.slo:g} is not in (0, 1]", fix="e.g. --slo 99%")
        if self.slo_ttft <= 0 or not math.isfinite(self.slo_ttft):
            raise InputError("the TTFT target must be a positive duration", fix="e.g. --slo-ttft 2s")
        if self.headroom < 1 or not math.isfinite(self.headroom):
            raise InputError(
                f"headroom {self.headroom:g} is below 1",
                "it scales the history's traffic up",
                "e.g. --headroom 1.5 (1 for none)",
            )
        if self.max_replicas < 1:
            raise InputError("--max-replicas must be at least 1")
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise InputError(
                f"unknown policy {', '.join(unknown) or '(none)'} for tune",
                fix=f"use some of {', '.join(POLICIES)}",
            )
        if not self.seeds:
            raise InputError("no seed given", fix="e.g. --seed 0")


@dataclass(frozen=True)
class Floor:
    """A KEDA cron floor: `replicas` from `start` to `end` o'clock UTC on `days` (Monday = 0)."""

    start: int
    end: int
    replicas: int
    days: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """The floor as it appears in a POINT's params."""
        return {
            "start": f"{self.start:02d}:00",
            "end": f"{self.end:02d}:00",
            "days": list(self.days),
            "replicas": self.replicas,
            "timezone": "UTC",
        }


@dataclass(frozen=True)
class Candidate:
    """One configuration: a policy and its parameters (camelCase, as in the result), plus a floor."""

    policy: str
    params: Mapping[str, Any]
    floor: Floor | None = None

    @property
    def label(self) -> str:
        """A unique, readable name (the simulator's policy label)."""
        parts = [f"{k}={v}" for k, v in self.params.items()]
        if self.floor:
            parts.append(f"cron={self.floor.start}-{self.floor.end}x{self.floor.replicas}")
        return f"{self.policy}:" + ":".join(parts)

    def spec(self) -> PolicySpec:
        """The simulator's policy spec."""
        p = self.params
        if self.policy in ("keda", "keda-zero"):
            options = {
                "threshold": str(p["threshold"]),
                "activation": str(p["activation"]),
                "min": str(p["minReplicas"]),
                "max": str(p["maxReplicas"]),
                "polling": str(p["pollingSeconds"]),
                "cooldown": str(p["cooldownSeconds"]),
                "down-window": str(p["scaleDownStabilizationSeconds"]),
            }
            return PolicySpec(self.policy, options)
        return PolicySpec(
            "knative",
            {
                "target": str(p["target"]),
                "min": str(p["minScale"]),
                "max": str(p["maxScale"]),
                "delay": str(p["scaleDownDelaySeconds"]),
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The params for the result (the floor included)."""
        out = dict(self.params)
        if self.floor:
            out["cronFloor"] = self.floor.to_dict()
        return out


@dataclass(frozen=True)
class Scores:
    """A candidate's figures: on the history (mean over seeds) and the worst variant's attainment."""

    slo_attainment: float
    headroom_attainment: float
    ttft_p95: float | None
    gpu_hours: float
    cost_per_month: float
    scale_events: float
    time_at_zero_s: float
    coldstart_gpu_hours_per_month: float

    @property
    def worst(self) -> float:
        """The lower attainment of the two variants (share, 0-1)."""
        return min(self.slo_attainment, self.headroom_attainment)


@dataclass(frozen=True)
class Point:
    """A scored candidate: a POINT of the result."""

    candidate: Candidate
    scores: Scores

    def to_dict(self) -> dict[str, Any]:
        """POINT: policy, params, sloAttainment, ttftP95, gpuHours, costPerMonth, scaleEvents (+ extras)."""
        s = self.scores
        return {
            "policy": self.candidate.policy,
            "params": self.candidate.to_dict(),
            "sloAttainment": round(s.slo_attainment, 5),
            "headroomSloAttainment": round(s.headroom_attainment, 5),
            "ttftP95": None if s.ttft_p95 is None else round(s.ttft_p95, 4),
            "gpuHours": round(s.gpu_hours, 3),
            "costPerMonth": round(s.cost_per_month, 2),
            "scaleEvents": round(s.scale_events, 1),
            "timeAtZeroSeconds": round(s.time_at_zero_s, 1),
        }


@dataclass(frozen=True)
class TuneResult:
    """What `recommend` found. `to_dict()` is the `-o json` document (issue 18 item 6) without the
    parts the CLI adds (workload, objects, calibration replay)."""

    history: History
    coldstart: sim.ColdStartProfile
    options: TuneOptions
    baseline: Point
    points: tuple[Point, ...]
    frontier: tuple[Point, ...]
    recommendation: Point
    meets_slo: bool
    cliff_seconds: float | None
    cliff_capped: bool
    reason: str
    series: tuple[sim.Series, ...] = field(default=(), compare=False)
    workload: Mapping[str, Any] = field(default_factory=dict)
    objects: tuple[Mapping[str, Any], ...] = ()
    replay: Mapping[str, Any] | None = None
    calibration_source: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The TuneResult document."""
        h = self.history
        recommendation = self.recommendation.to_dict()
        recommendation.update(
            {
                "objects": [dict(o) for o in self.objects],
                "coldStartCliffSeconds": None if self.cliff_seconds is None else round(self.cliff_seconds, 1),
                "coldStartGpuHoursPerMonth": round(
                    self.recommendation.scores.coldstart_gpu_hours_per_month, 2
                ),
            }
        )
        return {
            "kind": "TuneResult",
            "apiVersion": "gpuscale/v1",
            "workload": dict(self.workload)
            or {"namespace": h.namespace, "name": h.workload, "engine": h.engine},
            "history": {
                "from": _iso(h.start),
                "to": _iso(h.end),
                "requests": h.requests,
                "peakRps": round(h.peak_rps, 3),
                "stepSeconds": h.step,
            },
            "coldStart": {
                "seconds": round(self.coldstart.total, 1),
                "source": self.options.cold_start_source,
            },
            "calibration": {
                "source": self.calibration_source or None,
                "replay": dict(self.replay) if self.replay is not None else None,
            },
            "slo": {
                "ttftSeconds": self.options.slo_ttft,
                "share": self.options.slo,
                "headroom": self.options.headroom,
                "seeds": list(self.options.seeds),
            },
            "candidates": len(self.points),
            "baseline": self.baseline.to_dict(),
            "frontier": [p.to_dict() for p in self.frontier],
            "recommendation": recommendation,
            "meetsSlo": self.meets_slo,
            "reason": self.reason,
        }


def _iso(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- candidates ------------------------------------------------------------------------------------------


def repetition(history: History) -> str | None:
    """ "daily" when each day's hourly traffic looks like the others', "weekdays" when the weekdays do
    and weekends are quieter, else None (no floor by time of day makes sense)."""
    hours = _hourly(history)
    if hours is None:
        return None
    days = hours.shape[0]
    busy = hours.sum(axis=1) > 0
    if days < 2 or busy.sum() < 2:
        return None
    weekday = _day_of_week(history, days)
    weekdays = [d for d in range(days) if weekday[d] < 5 and busy[d]]
    if _alike(hours[[d for d in range(days) if busy[d]]]):
        return "daily"
    if len(weekdays) >= 2 and _alike(hours[weekdays]):
        return "weekdays"
    return None


def _hourly(history: History) -> np.ndarray | None:
    """Arrivals per UTC hour of each UTC day the history covers fully: shape (days, 24)."""
    per_hour = max(1, round(3600 / history.step))
    if history.step > 3600:
        return None
    first = math.ceil(history.start / 86400) * 86400
    skip = round((first - history.start) / history.step)
    counts = np.nan_to_num(history.arrivals[skip:], nan=0.0)
    days = counts.shape[0] // (24 * per_hour)
    if days < 1:
        return None
    hourly: np.ndarray = counts[: days * 24 * per_hour].reshape(days, 24, per_hour).sum(axis=2)
    return hourly


def _day_of_week(history: History, days: int) -> list[int]:
    first = math.ceil(history.start / 86400)
    return [(first + d + EPOCH_WEEKDAY) % 7 for d in range(days)]


def _alike(days: np.ndarray) -> bool:
    """Days whose hourly shapes correlate (>= 0.8 with the mean day) and whose volumes are within 2x."""
    mean = days.mean(axis=0)
    if mean.std() == 0:
        return False  # flat all day: nothing to floor by time of day
    totals = days.sum(axis=1)
    if totals.min() * 2 < totals.max():
        return False
    return all(float(np.corrcoef(d, mean)[0, 1]) >= 0.8 for d in days if d.std() > 0)


def busy_window(history: History) -> tuple[int, int] | None:
    """The UTC hours [start, end) whose mean traffic is at least a third of the busiest hour's."""
    hours = _hourly(history)
    if hours is None:
        return None
    mean = hours.mean(axis=0)
    hot = np.flatnonzero(mean >= mean.max() / 3)
    if hot.size == 0 or hot.size == 24:
        return None
    return int(hot[0]), int(hot[-1]) + 1


def candidates(history: History, engine: sim.EngineProfile, options: TuneOptions) -> list[Candidate]:
    """The configurations to simulate for `options.policies` (issue 18 item 3)."""
    top = options.max_replicas
    mu = engine.throughput(history.prompt_tokens or 512.0, history.output_tokens or 256.0)
    need = max(1, min(top, math.ceil(history.peak_rps / mu)))
    pattern = repetition(history)
    window = busy_window(history) if pattern else None
    floors: list[Floor] = []
    if window:
        days = tuple(range(7)) if pattern == "daily" else (0, 1, 2, 3, 4)
        for reps in sorted({max(1, math.ceil(need / 2)), need}):
            floors.append(Floor(window[0], window[1], reps, days))
    out: list[Candidate] = []
    if "keda" in options.policies:
        out += _keda_candidates(top, need, floors)
    if "keda-zero" in options.policies:
        out += _keda_zero_candidates(top, floors)
    if "knative" in options.policies:
        for target, min_scale, delay in [(t, m, 0) for t in (8, 32, 64, 128) for m in (0, 1)] + [
            (32, 0, 300)
        ]:
            out.append(
                Candidate(
                    "knative",
                    {
                        "target": target,
                        "minScale": min_scale,
                        "maxScale": top,
                        "scaleDownDelaySeconds": delay,
                    },
                )
            )
    return out


def _keda_candidate(
    policy: str,
    threshold: float,
    min_r: int,
    down: int,
    cooldown: int,
    *,
    most: int,
    polling: int = 15,
    activation: float = 0,
    floor: Floor | None = None,
) -> Candidate:
    """One KEDA configuration (`keda` or `keda-zero`), with at most `most` replicas."""
    return Candidate(
        policy,
        {
            "threshold": threshold,
            "activation": activation,
            "minReplicas": min_r,
            "maxReplicas": most,
            "scaleDownStabilizationSeconds": down,
            "cooldownSeconds": cooldown,
            "pollingSeconds": polling,
        },
        floor,
    )


def _keda_candidates(top: int, need: int, floors: Sequence[Floor]) -> list[Candidate]:
    """The `keda` grid: thresholds x minimums x scale-down windows, a lower ceiling, the cron floors."""
    out: list[Candidate] = []
    for threshold in (1, 3, 5, 10, 20):
        for min_r in sorted({1, min(2, top)}):
            for down in (120, 600):
                out.append(_keda_candidate("keda", threshold, min_r, down, 300, most=top))
    lower = max(need, math.ceil(top / 2))
    if lower < top:  # a lower ceiling: cheaper when bursts do not need every replica
        for threshold in (5, 10):
            out.append(_keda_candidate("keda", threshold, 1, 600, 300, most=lower))
    for floor in floors:
        out.append(_keda_candidate("keda", 5, 1, 300, 300, most=top, floor=floor))
    return out


def _keda_zero_candidates(top: int, floors: Sequence[Floor]) -> list[Candidate]:
    """The `keda-zero` grid: thresholds x cooldowns, slower polling, an activation, the cron floors."""
    out: list[Candidate] = []
    for threshold in (8, 32, 128):
        for cooldown in (120, 600, 1800):
            out.append(_keda_candidate("keda-zero", threshold, 0, 300, cooldown, most=top))
    out.append(_keda_candidate("keda-zero", 32, 0, 300, 600, most=top, polling=30))
    out.append(_keda_candidate("keda-zero", 32, 0, 300, 600, most=top, activation=2))
    for floor in floors:
        for threshold in (8, 32):
            out.append(_keda_candidate("keda-zero", threshold, 0, 300, 600, most=top, floor=floor))
    return out


# -- simulation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """One Simulation: a variant of the history, a seed, a group of policies, a cold start."""

    history: History
    seed: int
    counts: np.ndarray
    specs: tuple[tuple[PolicySpec, Floor | None], ...]
    engine: sim.EngineProfile
    coldstart: sim.ColdStartProfile
    slo_ttft: float
    price: float
    timeout: float
    want_series: bool = False


@dataclass(frozen=True)
class _Outcome:
    results: tuple[sim.PolicyResult, ...]
    coldstart_gpu_hours: tuple[float, ...]
    series: tuple[sim.Series, ...]


def shifted_floor(floor: Floor, offset: float) -> CronFloor:
    """The simulator's cron floor for `floor` (UTC hours) in a simulation whose second 0 is `offset`
    seconds after a Monday 00:00 UTC."""
    return CronFloor(float(floor.start), float(floor.end), floor.replicas, floor.days, offset=offset)


def _controller(spec: PolicySpec, floor: Floor | None, start: float) -> sim.Controller:
    ctl = sim.build_controller(spec)
    if floor is not None:
        # KedaController reads its cron floors from `cron` when it first looks at a chunk
        ctl.cron = (shifted_floor(floor, start + EPOCH_WEEKDAY * 86400.0),)  # type: ignore[attr-defined]
    return ctl


def _run(job: _Job) -> _Outcome:
    h = job.history
    counts = job.counts
    trace = sim.Trace(
        counts.astype(np.float64),
        h.prompt_tokens or 512.0,
        h.output_tokens or 256.0,
        int(counts.sum()),
        name=h.workload,
    )
    controllers = [_controller(spec, floor, h.start) for spec, floor in job.specs]
    s = sim.Simulation(
        trace,
        job.engine,
        job.coldstart,
        controllers,
        trace.duration,
        job.seed,
        job.slo_ttft,
        job.price,
        job.timeout,
    )
    results = s.run()
    series = s.series()
    gpus = job.engine.gpus_per_replica
    month = HOURS_PER_MONTH * 3600.0 / max(1, trace.duration)
    cold = []
    for srs in series:
        step = float(srs.t[1] - srs.t[0]) if len(srs.t) > 1 else float(trace.duration)
        cold.append(float(np.sum(srs.pods - srs.ready)) * step * gpus / 3600.0 * month)
    return _Outcome(tuple(results), tuple(cold), tuple(series) if job.want_series else ())


def headroom_variant(history: History, factor: float) -> History:
    """The history with its traffic (peaks included) multiplied by `factor`."""
    return replace(history, arrivals=history.arrivals * factor, workload=f"{history.workload} x{factor:g}")


def _groups(items: Sequence[Any], n: int) -> list[list[Any]]:
    """`items` split into `n` interleaved groups (similar cost each)."""
    return [list(items[i::n]) for i in range(n) if items[i::n]]


class _Runner:
    """Runs jobs in this process or in a pool, counting progress."""

    def __init__(self, workers: int, progress: Progress | None, total: int) -> None:
        self.workers = max(1, workers)
        self.progress = progress
        self.total = total
        self.done = 0
        self.pool: ProcessPoolExecutor | None = None
        self.counts: dict[tuple[str, int], np.ndarray] = {}

    def arrivals(self, history: History, seed: int) -> np.ndarray:
        """`history.per_second(seed)`, computed once per variant and seed."""
        key = (history.workload, seed)
        got = self.counts.get(key)
        if got is None:
            got = self.counts[key] = history.per_second(seed)
        return got

    def __enter__(self) -> _Runner:
        import multiprocessing

        # fork only: a spawned worker would re-run a frozen (krew) executable's CLI; without fork, one process
        if self.workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def run(self, jobs: Sequence[_Job], weight: int = 1) -> list[_Outcome]:
        if self.pool is None or len(jobs) == 1:
            outs = []
            for job in jobs:
                outs.append(_run(job))
                self.tick(weight)
            return outs
        futures = [self.pool.submit(_run, job) for job in jobs]
        outs = []
        for f in futures:
            outs.append(f.result())
            self.tick(weight)
        return outs

    def tick(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        if self.progress:
            self.progress(self.done, self.total)


def _score(history: History, per_variant: Sequence[Sequence[tuple[sim.PolicyResult, float]]]) -> Scores:
    """Scores from [variant][seed] -> (result, cold-start GPU-h/month); variant 0 is the history."""
    base = per_variant[0]
    p95 = [r.ttft_p95 for r, _ in base if r.ttft_p95 is not None]
    attain = [float(np.mean([r.slo_attainment_pct / 100.0 for r, _ in v])) for v in per_variant]
    return Scores(
        slo_attainment=attain[0],
        headroom_attainment=min(attain),
        ttft_p95=float(np.mean(p95)) if p95 else None,
        gpu_hours=float(np.mean([r.gpu_hours for r, _ in base])),
        cost_per_month=float(np.mean([r.cost_per_month for r, _ in base])),
        scale_events=float(np.mean([r.scale_events for r, _ in base])),
        time_at_zero_s=float(np.mean([r.time_at_zero_s for r, _ in base])),
        coldstart_gpu_hours_per_month=float(np.mean([c for _, c in base])),
    )


def frontier(points: Iterable[Point]) -> list[Point]:
    """The cost/SLO Pareto frontier: no other point is both cheaper (or as cheap) and better (or as good)
    on the worse variant's attainment; cheapest first."""
    ordered = sorted(points, key=lambda p: (p.scores.cost_per_month, -p.scores.worst))
    out: list[Point] = []
    best = -1.0
    for p in ordered:
        if p.scores.worst > best + 1e-9:
            out.append(p)
            best = p.scores.worst
    return out


def _variants(history: History, options: TuneOptions) -> list[History]:
    return [history] + ([headroom_variant(history, options.headroom)] if options.headroom > 1 else [])


# KEDA's RequestScale (pkg/scaling/executor/scale_scaledobjects.go; sim/keda.py request_scale): with
# minReplicaCount >= 1 and no idleReplicaCount nothing scales to zero, so whether a poll is active
# (activationThreshold) and when it last was (cooldownPeriod, initialCooldownPeriod) change nothing.
_ZERO_ONLY_OPTIONS = ("activation", "cooldown", "initial-cooldown")


def simulation_key(spec: PolicySpec, floor: Floor | None) -> tuple[Any, ...]:
    """What the simulation of `spec` depends on: equal keys give identical results (a KEDA policy that
    never scales to zero ignores its activation threshold and cooldowns)."""
    options = dict(spec.options)
    if spec.name == "keda" and "idle" not in options and int(options.get("min", "1")) >= 1:
        for name in _ZERO_ONLY_OPTIONS:
            options.pop(name, None)
    return spec.name, tuple(sorted(options.items())), floor


def _evaluate(
    runner: _Runner,
    variants: Sequence[History],
    items: Sequence[tuple[PolicySpec, Floor | None]],
    engine: sim.EngineProfile,
    coldstart: sim.ColdStartProfile,
    *,
    options: TuneOptions,
    groups: int,
) -> list[list[list[tuple[sim.PolicyResult, float]]]]:
    """[item][variant][seed] -> (result, cold-start GPU-h/month) for each policy item. Items that
    `simulation_key` proves equivalent are simulated once and share the result."""
    first: dict[tuple[Any, ...], int] = {}
    same = [first.setdefault(simulation_key(spec, floor), i) for i, (spec, floor) in enumerate(items)]
    if len(first) < len(items):
        unique = sorted(first.values())
        shared = _evaluate(
            runner, variants, [items[i] for i in unique], engine, coldstart, options=options, groups=groups
        )
        at = {i: k for k, i in enumerate(unique)}
        return [shared[at[same[i]]] for i in range(len(items))]
    index = list(range(len(items)))
    split = _groups(index, groups)
    jobs, keys = [], []
    for v, hist in enumerate(variants):
        for seed in options.seeds:
            counts = runner.arrivals(hist, seed)
            for g in split:
                jobs.append(
                    _Job(
                        hist,
                        seed,
                        counts,
                        tuple(items[i] for i in g),
                        engine,
                        coldstart,
                        options.slo_ttft,
                        options.price,
                        options.timeout,
                    )
                )
                keys.append((v, g))
    outs = runner.run(jobs)
    table: list[list[list[tuple[sim.PolicyResult, float]]]] = [[[] for _ in variants] for _ in items]
    for (v, g), out in zip(keys, outs, strict=True):
        for i, result, cold in zip(g, out.results, out.coldstart_gpu_hours, strict=True):
            table[i][v].append((result, cold))
    return table


def scaled_coldstart(coldstart: sim.ColdStartProfile, seconds: float) -> sim.ColdStartProfile:
    """The cold start with every phase scaled so that the total is `seconds`."""
    total = coldstart.total
    if total <= 0:
        return sim.ColdStartProfile(f"{seconds:.0f}s", (("start", seconds),), coldstart.source)
    k = seconds / total
    return sim.ColdStartProfile(
        f"{coldstart.name} x{k:.2f}", tuple((n, s * k) for n, s in coldstart.phases), coldstart.source
    )


def recommend(
    history: History,
    calibration: CalibrationLike,
    coldstart: sim.ColdStartProfile,
    baseline: PolicySpec,
    options: TuneOptions,
    *,
    progress: Progress | None = None,
) -> TuneResult:
    """Search the candidates of `options.policies` on `history` (and its headroom variant, each seed), and
    recommend the cheapest configuration whose SLO attainment meets `options.slo` on both; then find its
    cold-start cliff. `progress(done, total)` is called as simulations finish."""
    if history.steps == 0 or history.requests == 0:
        raise InputError(
            f"the history of {history.workload} has no requests",
            "nothing to tune on: the window saw no traffic",
            "widen --since or check the metrics",
        )
    engine = calibration.profile
    cands = candidates(history, engine, options)
    variants = _variants(history, options)
    workers = max(1, min(options.workers, os.cpu_count() or 1))
    groups = 2 * workers if workers > 1 else 1  # more jobs than workers: the pool balances uneven groups
    sims = len(variants) * len(options.seeds)
    cliff_sims = (4 + CLIFF_STEPS) * sims
    with _Runner(workers, progress, sims * groups + cliff_sims + 1) as runner:
        items = [(baseline, None)] + [(c.spec(), c.floor) for c in cands]
        table = _evaluate(runner, variants, items, engine, coldstart, options=options, groups=groups)
        scored = [_score(history, per) for per in table]
        base_point = Point(_baseline_candidate(baseline), scored[0])
        points = tuple(Point(c, s) for c, s in zip(cands, scored[1:], strict=True))
        meeting = [p for p in points if p.scores.worst >= options.slo]
        if meeting:
            best = min(
                meeting, key=lambda p: (p.scores.cost_per_month, -p.scores.worst, p.scores.scale_events)
            )
        else:
            best = max(points, key=lambda p: (p.scores.worst, -p.scores.cost_per_month))
        cliff, capped = (
            _cliff(runner, variants, best, engine, coldstart, options=options) if meeting else (None, False)
        )
        pair = ((baseline, None), (best.candidate.spec(), best.candidate.floor))
        series = _run(
            _Job(
                history,
                options.seeds[0],
                runner.arrivals(history, options.seeds[0]),
                pair,
                engine,
                coldstart,
                options.slo_ttft,
                options.price,
                options.timeout,
                want_series=True,
            )
        ).series
        runner.tick(runner.total)
    reason = _reason(
        base_point,
        best,
        meets=bool(meeting),
        cliff=cliff,
        capped=capped,
        coldstart=coldstart,
        options=options,
    )
    return TuneResult(
        history=history,
        coldstart=coldstart,
        options=options,
        baseline=base_point,
        points=points,
        frontier=tuple(frontier(points)),
        recommendation=best,
        meets_slo=bool(meeting),
        cliff_seconds=cliff,
        cliff_capped=capped,
        reason=reason,
        series=series,
    )


def _baseline_candidate(spec: PolicySpec) -> Candidate:
    return Candidate(spec.name, dict(spec.options))


def _cliff(
    runner: _Runner,
    variants: Sequence[History],
    best: Point,
    engine: sim.EngineProfile,
    coldstart: sim.ColdStartProfile,
    *,
    options: TuneOptions,
) -> tuple[float | None, bool]:
    """The largest cold start (s) at which `best` still meets the SLO on every variant: doubling to a
    bracket (at most CLIFF_MAX_S), then bisection. (value, True) when it holds even at CLIFF_MAX_S."""
    item = [(best.candidate.spec(), best.candidate.floor)]

    def meets(seconds: float) -> bool:
        table = _evaluate(
            runner, variants, item, engine, scaled_coldstart(coldstart, seconds), options=options, groups=1
        )
        return _score(variants[0], table[0]).worst >= options.slo

    good = max(coldstart.total, 1.0)
    bad = None
    probe = good
    while bad is None:
        probe = min(CLIFF_MAX_S, probe * 2.5)
        if meets(probe):
            good = probe
            if probe >= CLIFF_MAX_S:
                return CLIFF_MAX_S, True
        else:
            bad = probe
    for _ in range(CLIFF_STEPS):
        mid = (good + bad) / 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good, False


def _fmt_params(c: Candidate) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.to_dict().items() if k != "cronFloor") + (
        f", cron floor {c.floor.replicas} from {c.floor.start:02d}:00 to {c.floor.end:02d}:00 UTC"
        if c.floor
        else ""
    )


def _reason(
    base: Point,
    best: Point,
    *,
    meets: bool,
    cliff: float | None,
    capped: bool,
    coldstart: sim.ColdStartProfile,
    options: TuneOptions,
) -> str:
    """One paragraph: what was picked, why, what it saves, and the cold-start cliff."""
    s, b = best.scores, base.scores
    share = f"{options.slo * 100:g}%"
    if not meets:
        return (
            f"No candidate meets {share} of requests within {options.slo_ttft:g}s TTFT on the history and at "
            f"{options.headroom:g}x traffic; the closest is {best.candidate.policy} ({_fmt_params(best.candidate)}) "
            f"at {s.worst * 100:.2f}%. Raise --max-replicas, relax the SLO, or shorten the "
            f"{coldstart.total:.0f}s cold start."
        )
    saving = b.cost_per_month - s.cost_per_month
    versus = (
        f"{'saves' if saving >= 0 else 'costs'} ${abs(saving):,.0f}/month against the current policy "
        f"({b.slo_attainment * 100:.2f}% on the history, {b.headroom_attainment * 100:.2f}% at "
        f"{options.headroom:g}x)"
    )
    zero = (
        f" It spends {s.time_at_zero_s / 3600:.1f} h of the window at zero replicas."
        if s.time_at_zero_s > 0
        else ""
    )
    if cliff is None:
        cliff_text = ""
    elif capped:
        cliff_text = f" It still meets the SLO with a {cliff:.0f}s cold start or longer: start-up speed is not the limit."
    else:
        cliff_text = (
            f" Its cold-start cliff is {cliff:.0f}s (today {coldstart.total:.0f}s): beyond it the SLO "
            f"fails; cold starts cost {s.coldstart_gpu_hours_per_month:.1f} GPU-h/month allocated but "
            f"not serving."
        )
    return (
        f"{best.candidate.policy} ({_fmt_params(best.candidate)}) is the cheapest of the configurations "
        f"simulated that keeps {share} of requests within {options.slo_ttft:g}s TTFT both on the history "
        f"({s.slo_attainment * 100:.2f}%) and at {options.headroom:g}x its traffic "
        f"({s.headroom_attainment * 100:.2f}%); at ${s.cost_per_month:,.0f}/month it {versus}.{zero}{cliff_text}"
    )
