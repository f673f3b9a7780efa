"""`Simulation`: one workload under several policies, run to the end or stepped live."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim import kernel as kernel_module
from kubectl_gpuscale.sim.core import PhysicsCache, PolicyRun, WorkloadState, percentile, share_below
from kubectl_gpuscale.sim.engine import ColdStartProfile, EngineProfile
from kubectl_gpuscale.sim.kernel import KernelRun
from kubectl_gpuscale.sim.policies import Controller
from kubectl_gpuscale.sim.traffic import Arrivals, Pattern, Trace


@dataclass(frozen=True)
class PolicyResult:
    """What one policy achieved over the run."""

    policy: str
    requests: int
    served: int
    timed_out: int
    dropped: int
    ttft_p50: float | None
    ttft_p95: float | None
    ttft_p99: float | None
    slo_attainment_pct: float
    replica_seconds: float
    gpu_hours: float
    cost: float
    cost_per_month: float
    idle_cost: float
    scale_events: int
    time_at_zero_s: float
    mean_replicas: float
    max_replicas: int

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able dict."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Series:
    """Per-bin series for plots: time (s), arrivals/s, pods, ready, waiting, mean TTFT (s)."""

    policy: str
    t: np.ndarray
    rps: np.ndarray
    pods: np.ndarray
    ready: np.ndarray
    waiting: np.ndarray
    ttft: np.ndarray


class Simulation:
    """A workload (traffic x engine x cold start) under each controller, advanced in lockstep.

    Args:
        traffic: a `Pattern` or a `Trace`.
        engine: per-replica capacity.
        coldstart: how long a new replica takes to be Ready.
        controllers: one fresh `Controller` per policy (build with `build_controller`).
        duration: seconds to simulate.
        seed: RNG seed for the arrivals (all policies see the same arrivals).
        slo_ttft: the TTFT target (s) for SLO attainment.
        price: $ per GPU-hour.
        timeout: client timeout (s): requests waiting longer give up.
        fast: False decides every controller tick one by one (slow; for tests).
        kernel: run policies whose controller has a compiled twin in the compiled kernel (sim/kernel.py);
            False runs every policy on the Python reference path; None (the default) uses the kernel
            unless `GPUSCALE_SIM_KERNEL=0` or numba cannot be imported.
    """

    def __init__(
        self,
        traffic: Pattern | Trace,
        engine: EngineProfile,
        coldstart: ColdStartProfile,
        controllers: list[Controller],
        duration: int,
        seed: int = 0,
        slo_ttft: float = 2.0,
        price: float = d.DEFAULT_PRICE_PER_GPU_HOUR,
        timeout: float = 120.0,
        fast: bool = True,
        kernel: bool | None = None,
    ) -> None:
        self.traffic = traffic
        self.engine = engine
        self.coldstart = coldstart
        self.duration = int(duration)
        self.seed = seed
        self.slo = slo_ttft
        self.price = price
        self.fast = fast
        self.time = 0
        step = max(60, -(-self.duration // 3000))
        step = (
            next(
                s
                for s in (
                    60,
                    120,
                    180,
                    240,
                    300,
                    360,
                    480,
                    540,
                    600,
                    720,
                    864,
                    900,
                    960,
                    1080,
                    1200,
                    1440,
                    1728,
                    1800,
                    2160,
                    2400,
                    2880,
                    3600,
                    4320,
                    4800,
                    5400,
                    7200,
                    8640,
                    10800,
                    14400,
                    17280,
                    21600,
                    28800,
                    43200,
                    86400,
                )
                if s >= step
            )
            if step <= 86400
            else step
        )
        arrivals = Arrivals(traffic, seed)  # shared: policies advance in lockstep, a day at a time
        shared = PhysicsCache()  # policies with the same pods and queue share a chunk's physics
        use_kernel = kernel_module.wanted() if kernel is None else kernel
        # numba's import and set-up (~0.6 s) only when some controller has a compiled twin
        use_kernel = use_kernel and any(
            type(c).kernel_twin is not Controller.kernel_twin for c in controllers
        )
        if use_kernel and kernel_module.load() is None:
            use_kernel = False
        self.runs: list[PolicyRun | KernelRun] = []
        for c in controllers:
            twin = c.kernel_twin() if use_kernel else None
            if twin is not None:
                self.runs.append(
                    KernelRun(c, twin, arrivals, engine, coldstart, timeout, step, self.duration)
                )
            else:
                self.runs.append(
                    PolicyRun(c, arrivals, engine, coldstart, timeout, step, self.duration, shared)
                )

    @property
    def done(self) -> bool:
        """True when the end of the duration is reached."""
        return self.time >= self.duration

    def advance(self, dt: float) -> list[WorkloadState]:
        """Advance every policy by `dt` seconds (whole seconds; capped at the duration); return their states."""
        end = min(self.duration, self.time + max(1, int(round(dt))))
        for r in self.runs:
            r.recent[:] = 0.0
            r.advance_to(end, self.fast)
        self.time = end
        return self.states()

    def run(self) -> list[PolicyResult]:
        """Run to the end and return the results."""
        while self.time < self.duration:
            end = min(self.duration, (self.time // 86400 + 1) * 86400)
            for r in self.runs:
                r.advance_to(end, self.fast)
            self.time = end
        return self.results()

    def states(self) -> list[WorkloadState]:
        """Each policy's live state at the current time."""
        return [r.state(self.time) for r in self.runs]

    def results(self) -> list[PolicyResult]:
        """Results so far, one per policy."""
        out = []
        span = max(1, self.time)
        for r in self.runs:
            t = r.totals
            gpus = self.engine.gpus_per_replica
            gpu_hours = t.pod_seconds * gpus / 3600.0
            cost = gpu_hours * self.price
            idle_hours = max(0.0, t.pod_seconds - t.busy_seconds) * gpus / 3600.0
            ok = share_below(t.hist, self.slo)
            out.append(
                PolicyResult(
                    policy=r.ctl.name,
                    requests=int(round(t.requests)),
                    served=int(round(t.served)),
                    timed_out=int(round(t.timed_out)),
                    dropped=int(round(t.dropped)),
                    ttft_p50=percentile(t.hist, 50),
                    ttft_p95=percentile(t.hist, 95),
                    ttft_p99=percentile(t.hist, 99),
                    slo_attainment_pct=100.0 * ok / t.requests if t.requests else 100.0,
                    replica_seconds=t.pod_seconds,
                    gpu_hours=gpu_hours,
                    cost=cost,
                    cost_per_month=cost * d.HOURS_PER_MONTH * 3600.0 / span,
                    idle_cost=idle_hours * self.price,
                    scale_events=t.scale_events,
                    time_at_zero_s=t.zero_seconds,
                    mean_replicas=t.pod_seconds / span,
                    max_replicas=t.max_pods,
                )
            )
        return out

    def series(self) -> list[Series]:
        """Binned time series per policy, for plots and sparklines."""
        out = []
        for r in self.runs:
            nb = max(1, -(-self.time // r.series_step))
            n = np.maximum(r.s_n[:nb], 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ttft = np.where(
                    r.s_ttft_w[:nb] > 0, r.s_ttft[:nb] / np.maximum(r.s_ttft_w[:nb], 1e-12), np.nan
                )
            out.append(
                Series(
                    r.ctl.name,
                    np.arange(nb) * r.series_step,
                    r.s_arr[:nb] / n,
                    r.s_pods[:nb] / n,
                    r.s_ready[:nb] / n,
                    r.s_wait[:nb] / n,
                    ttft,
                )
            )
        return out
