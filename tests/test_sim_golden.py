"""Golden outputs: the simulator's results on fixed scenarios, checked in so that speed work cannot
move a number unnoticed, and behaviour changes move them only deliberately.

`tests/sim_golden.json` maps a scenario id to every policy's result fields. Regenerate (after a
deliberate behaviour change, saying which in the commit) with
`.venv/bin/python tests/test_sim_golden.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kubectl_gpuscale import sim

GOLDEN = Path(__file__).with_name("sim_golden.json")
POLICIES = "always-on,cpu-hpa,gpu-hpa:max=6,keda,keda-zero,knative,knative:min=1:delay=60s"
SCENARIOS = {
    "business-hours": ("business-hours", None),
    "diurnal": ("diurnal", None),
    "constant-50": ("constant", 50.0),
    "dev": ("dev", None),
    "spiky": ("spiky", None),
}
DAYS = 2


def compute(scenario: str, kernel: bool | None = None) -> list[dict[str, object]]:
    """Every policy's result on `scenario` (DAYS days, seed 1, 8B model, warm cold start); `kernel` False
    runs the Python reference path for every policy."""
    name, rps = SCENARIOS[scenario]
    controllers = [sim.build_controller(p) for p in sim.parse_policies(POLICIES)]
    s = sim.Simulation(
        sim.pattern(name, rps),
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        controllers,
        DAYS * 86400,
        seed=1,
        kernel=kernel,
    )
    return [r.to_dict() for r in s.run()]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("kernel", [None, False], ids=["default", "python"])
def test_results_match_the_golden_outputs(scenario, kernel):
    golden = json.loads(GOLDEN.read_text())
    assert compute(scenario, kernel) == golden[scenario]


if __name__ == "__main__":
    only = sys.argv[1:] or sorted(SCENARIOS)
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    for sc in only:
        data[sc] = compute(sc)
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
