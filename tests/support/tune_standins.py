"""Small stand-ins for the parts of `tune` built on the other branch (`tune.calibrate`, `tune.baseline`,
`prom.history`), installed only where the real module is missing, so that the CLI's offline paths
(`--history FILE`) run here. Tests only: never imported by the package."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim.policies import PolicySpec
from kubectl_gpuscale.tune.history import History
from tests.support.tune_history import MONDAY, PresetCalibration, pattern_history


@dataclass(frozen=True)
class StandInReplay:
    """The current policy simulated over the history (no observed side: the stand-in reads none)."""

    predicted_p95: float | None
    predicted_hours: float
    large: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"observedTtftP95": None, "predictedTtftP95": self.predicted_p95,
                "observedReplicaHours": None, "predictedReplicaHours": round(self.predicted_hours, 2)}


def calibrate(history: History, preset: sim.EngineProfile) -> PresetCalibration:
    return PresetCalibration(engine=preset, source=f"preset {preset.name} (stand-in)")


def replay(history: History, calibration: Any, coldstart: sim.ColdStartProfile, baseline: PolicySpec, *,
           seed: int) -> StandInReplay:
    counts = history.per_second(seed).astype(float)
    trace = sim.Trace(counts, history.prompt_tokens, history.output_tokens, int(counts.sum()))
    r = sim.Simulation(trace, calibration.engine, coldstart, [sim.build_controller(baseline)], trace.duration,
                       seed).run()[0]
    return StandInReplay(r.ttft_p95, r.replica_seconds / 3600.0)


def baseline_policy(objects: Sequence[Mapping[str, Any]]) -> PolicySpec:
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj.get("kind") == "HorizontalPodAutoscaler":
            return PolicySpec("cpu-hpa", {"min": str(spec.get("minReplicas", 1)), "max": str(spec["maxReplicas"])})
        if obj.get("kind") == "ScaledObject":
            return PolicySpec("keda", {"min": str(spec.get("minReplicaCount", 0)),
                                       "max": str(spec.get("maxReplicaCount", 100))})
    return PolicySpec("always-on", {"n": "1"})


def fetch_history(prom: Any, *, namespace: str, pods: str, engine: str, since: float, step: float = 15.0,
                  end: float | None = None) -> History:
    return pattern_history("dev", 2000.0, days=min(since, 86400) / 86400, start=MONDAY + 10 * 3600, workload=pods)


def install(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put each stand-in module in sys.modules where the real one does not exist; return their names."""
    here = sys.modules[__name__]
    installed = []
    for name, attrs in (("kubectl_gpuscale.tune.calibrate", ("calibrate", "replay")),
                        ("kubectl_gpuscale.tune.baseline", ("baseline_policy",)),
                        ("kubectl_gpuscale.prom.history", ("fetch_history",))):
        if importlib.util.find_spec(name) is not None:
            continue
        module = types.ModuleType(name)
        for attr in attrs:
            setattr(module, attr, getattr(here, attr))
        monkeypatch.setitem(sys.modules, name, module)
        installed.append(name)
    return installed


def main(argv: list[str]) -> None:
    """`python -m tests.support.tune_standins tune ARGS...`: the CLI with the stand-ins where the real
    modules are missing (how docs/tune.md's run was made before the two tune branches merged)."""
    from kubectl_gpuscale.cli import main as cli_main

    with pytest.MonkeyPatch.context() as mp:
        install(mp)
        cli_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
