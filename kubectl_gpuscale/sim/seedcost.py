"""`--preset seed-cost-model`: the guide's cost table, recomputed by the model.

The guide (reference/gpu-autoscaling-guide.txt, "Cost Model: 24/7 Reserved vs Autoscaled vs
Scale-to-Zero") prices three traffic patterns under three set-ups at $4.41/GPU-hour. Here
each cell is simulated with the guide's own manifests (its ScaledObject and its Knative
Service) and an 8B model on one H100, and set beside the guide's figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim.engine import coldstart_profile, engine_profile
from kubectl_gpuscale.sim.policies import build_controller, parse_policies
from kubectl_gpuscale.sim.simulation import PolicyResult, Simulation
from kubectl_gpuscale.sim.traffic import pattern

# The guide's set-ups, as policies:
#  reserved 24/7     -> 1 replica always on ($3,222/mo = 4.41 x 730.5 h)
#  KEDA autoscaled   -> its ScaledObject: min 1, max 8, polling 15 s, waiting-queue threshold 5,
#                       scale-down window 60 s and 1 pod per 60 s
#  Knative to zero   -> its ksvc: target 10, min-scale 0, max-scale 5, window 60 s. Its
#                       `scale-to-zero-grace-period: 300s` annotation is not a per-revision key
#                       (reference/keda_knative.md), so the global default grace (30 s) applies.
SETUPS = {
    "reserved": "always-on:n=1",
    "keda": "keda:min=1:max=8:polling=15:threshold=5:down-window=60:down-pods=1:down-period=60",
    "knative": "knative:target=10:min=0:max=5:window=60",
}
PATTERNS = {
    "constant-50rps": ("constant", 50.0, "Constant 50 RPS"),
    "burst-9-to-5": ("business-hours-daily", 20.0, "9am-5pm burst (8h/day, 20 RPS peak)"),
    "dev-endpoint": ("dev", 100.0, "Dev endpoint (~100 req/day)"),
}
# The guide's figures ($/month; None = "Not viable (SLA impact)")
CLAIMS: dict[tuple[str, str], float | None] = {
    ("constant-50rps", "reserved"): 3222.0,
    ("constant-50rps", "keda"): 3222.0,
    ("constant-50rps", "knative"): None,
    ("burst-9-to-5", "reserved"): 3222.0,
    ("burst-9-to-5", "keda"): 1611.0,
    ("burst-9-to-5", "knative"): 1128.0,
    ("dev-endpoint", "reserved"): 3222.0,
    ("dev-endpoint", "keda"): 330.0,
    ("dev-endpoint", "knative"): 50.0,
}
AGREE_WITHIN = 0.25  # a cost claim "holds" when the model is within +-25 %


@dataclass(frozen=True)
class Cell:
    """One (pattern, set-up) cell: the guide's claim beside the model's result."""

    pattern: str
    setup: str
    claim: float | None
    result: PolicyResult
    verdict: str

    def to_dict(self) -> dict[str, object]:
        """JSON-able."""
        r = self.result
        return {
            "pattern": self.pattern,
            "setup": self.setup,
            "claimPerMonth": self.claim,
            "modelPerMonth": round(r.cost_per_month, 2),
            "verdict": self.verdict,
            "ttftP95": r.ttft_p95,
            "sloAttainmentPct": round(r.slo_attainment_pct, 3),
            "timedOut": r.timed_out,
            "dropped": r.dropped,
            "meanReplicas": round(r.mean_replicas, 3),
            "scaleEvents": r.scale_events,
            "policy": r.policy,
        }


def verdict(claim: float | None, r: PolicyResult, slo_target_pct: float = 99.0) -> str:
    """Whether the model agrees with a claimed $/month (or with "not viable")."""
    if claim is None:
        viable = r.slo_attainment_pct >= slo_target_pct
        return "disagrees: meets the SLO" if viable else "agrees: misses the SLO"
    ratio = r.cost_per_month / claim
    if abs(ratio - 1.0) <= AGREE_WITHIN:
        return "agrees"
    return f"disagrees: model x{ratio:.2f}"


def run_seed_cost_model(
    duration: int = 7 * 86400,
    seed: int = 0,
    slo_ttft: float = 2.0,
    price: float = d.DEFAULT_PRICE_PER_GPU_HOUR,
    timeout: float = 120.0,
) -> list[Cell]:
    """Simulate every cell of the guide's cost table."""
    engine = engine_profile("8b")
    cold = coldstart_profile("8b-warm")
    cells = []
    for key, (name, rps, _) in PATTERNS.items():
        controllers = [build_controller(parse_policies(SETUPS[s])[0]) for s in SETUPS]
        sim = Simulation(
            pattern(name, rps), engine, cold, controllers, duration, seed, slo_ttft, price, timeout
        )
        for setup, res in zip(SETUPS, sim.run(), strict=True):
            claim = CLAIMS[(key, setup)]
            cells.append(Cell(key, setup, claim, res, verdict(claim, res)))
    return cells
