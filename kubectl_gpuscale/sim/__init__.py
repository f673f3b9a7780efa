"""A calibrated what-if model of GPU LLM inference autoscaling (pure: no I/O, click or textual).

Traffic (`traffic`) x policy (`policies`: always-on N, the HPA v2 algorithm in `hpa`, KEDA
on top of it, Knative's KPA) x cold start (`engine.COLDSTART_PRESETS` or `coldstart -o json`)
-> TTFT percentiles, SLO attainment, timeouts, GPU-hours and cost.

Batch use::

    from kubectl_gpuscale import sim
    s = sim.Simulation(sim.pattern("business-hours"), sim.engine_profile("8b"),
                       sim.coldstart_profile("8b-warm"),
                       [sim.build_controller(p) for p in sim.parse_policies("cpu-hpa,keda,knative")],
                       duration=7 * 86400, seed=1)
    for r in s.run():                       # list[PolicyResult]
        print(r.policy, r.ttft_p95, r.slo_attainment_pct, r.cost)

Live use (the `top --demo` dashboard)::

    s = sim.Simulation(...same arguments...)
    while not s.done:
        states = s.advance(2.0)             # list[WorkloadState], one per policy
        for w in states:
            w.policy, w.desired, w.ready           # spec replicas and Ready pods
            w.waiting, w.running, w.rps            # engine queue, running sequences, arrivals/s
            w.kv_cache_pct, w.gpu_util_pct, w.cpu_util_pct
            w.ttft_p95                              # over the last advance() (None if no request)
            for p in w.pods: p.name, p.ready, p.phase, p.progress, p.age   # cold-start phase progress
            w.events                                # recent ScaleEvent(time, old, new, reason)

`advance(dt)` costs about the same whether dt is 1 s or an hour; the same seed gives the
same results whatever the steps. `Simulation.results()` and `.series()` work mid-run.
"""

from __future__ import annotations

from kubectl_gpuscale.sim.core import PodState, ScaleEvent, WorkloadState
from kubectl_gpuscale.sim.engine import (
    COLDSTART_PRESETS,
    PRESETS,
    ColdStartProfile,
    EngineProfile,
    coldstart_from_json,
    coldstart_profile,
    engine_profile,
)
from kubectl_gpuscale.sim.policies import POLICY_HELP, Controller, build_controller, parse_policies
from kubectl_gpuscale.sim.simulation import PolicyResult, Series, Simulation
from kubectl_gpuscale.sim.traffic import PATTERNS, Pattern, Trace, parse_trace, pattern

__all__ = [
    "COLDSTART_PRESETS",
    "PATTERNS",
    "POLICY_HELP",
    "PRESETS",
    "ColdStartProfile",
    "Controller",
    "EngineProfile",
    "Pattern",
    "PodState",
    "PolicyResult",
    "ScaleEvent",
    "Series",
    "Simulation",
    "Trace",
    "WorkloadState",
    "build_controller",
    "coldstart_from_json",
    "coldstart_profile",
    "engine_profile",
    "parse_policies",
    "parse_trace",
    "pattern",
]
