"""Policies that behave alike share a chunk's physics and a day's aggregation; nothing leaks between them."""

from __future__ import annotations

import pytest

from kubectl_gpuscale.sim import core
from kubectl_gpuscale.sim.engine import coldstart_profile, engine_profile
from kubectl_gpuscale.sim.policies import build_controller, parse_policies
from kubectl_gpuscale.sim.simulation import Simulation
from kubectl_gpuscale.sim.traffic import pattern

POLICIES = "always-on,cpu-hpa,keda,keda-zero,keda:min=0:http=false,knative,knative:min=1"


def _sim(
    policies: str, name: str = "business-hours", days: float = 1.0, kernel: bool | None = None
) -> Simulation:
    controllers = [build_controller(s) for s in parse_policies(policies)]
    return Simulation(
        pattern(name),
        engine_profile("8b"),
        coldstart_profile("8b-warm"),
        controllers,
        duration=int(days * 86400),
        seed=7,
        kernel=kernel,
    )


@pytest.mark.parametrize("name", ["business-hours", "dev", "spiky"])
def test_each_policy_gives_the_same_results_alone_and_beside_the_others(name: str) -> None:
    together = _sim(POLICIES, name)
    together.run()
    for spec, result, series in zip(
        parse_policies(POLICIES), together.results(), together.series(), strict=True
    ):
        label = spec.name + "".join(f":{k}={v}" for k, v in spec.options.items())
        alone = _sim(label, name)
        alone.run()
        assert alone.results()[0] == result, label
        assert (
            alone.runs[0].totals.hist
            == together.runs[[r.ctl.name for r in together.runs].index(label)].totals.hist
        ).all(), label
        assert (alone.series()[0].pods == series.pods).all(), label


def test_a_policy_that_never_acts_reuses_the_physics_of_its_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[str] = []
    original = core.PolicyRun._compute

    def counting(self: core.PolicyRun, t0: int, n: int) -> core.ChunkView:
        computed.append(self.ctl.name)
        return original(self, t0, n)

    monkeypatch.setattr(core.PolicyRun, "_compute", counting)
    sim = _sim("always-on,cpu-hpa", kernel=False)  # the Python path's PhysicsCache
    sim.run()
    assert [r.scale_events for r in sim.results()] == [0, 0]
    assert computed.count("always-on") > 0 and computed.count("cpu-hpa") == 0
    a, b = sim.results()
    assert a.replica_seconds == b.replica_seconds and a.ttft_p95 == b.ttft_p95 and a.served == b.served
