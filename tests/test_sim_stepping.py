"""Stepping the simulation live (as `top --demo` does) gives the same run as one call to the end."""

from __future__ import annotations

import pytest

from kubectl_gpuscale.sim.engine import coldstart_profile, engine_profile
from kubectl_gpuscale.sim.policies import build_controller, parse_policies
from kubectl_gpuscale.sim.simulation import Simulation
from kubectl_gpuscale.sim.traffic import pattern


def _simulation() -> Simulation:
    controllers = [build_controller(s) for s in parse_policies("keda:max=8,cpu-hpa:max=8,knative:max=4")]
    return Simulation(
        pattern("step", 30.0),
        engine_profile("8b"),
        coldstart_profile("8b-warm"),
        controllers,
        duration=1800,
        seed=11,
    )


@pytest.mark.parametrize("step", [1, 5, 15, 37])
def test_stepped_run_equals_one_run(step: int) -> None:
    whole = _simulation()
    whole.run()
    stepped = _simulation()
    while not stepped.done:
        stepped.advance(step)
    for a, b in zip(whole.results(), stepped.results(), strict=True):
        assert a.scale_events == b.scale_events, (step, a.policy)
        assert a.replica_seconds == pytest.approx(b.replica_seconds), (step, a.policy)
        assert a.served == pytest.approx(b.served, rel=1e-6), (step, a.policy)


def test_keda_reacts_within_a_poll_when_stepped_by_the_poll_period() -> None:
    sim = _simulation()
    desired = []
    while sim.time < 900:
        desired.append(sim.advance(15)[0].desired)
    assert (
        max(desired) > 1
    )  # the 10x step at 600 s is seen by the 15 s HPA sync, however the clock is stepped
