"""tune's search (issue 18 items 3, 5, 6) on histories generated from the simulator's own traffic
patterns (known ground truth), with a preset calibration standing in for `tune.calibrate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.policies import PolicySpec
from kubectl_gpuscale.tune import search
from kubectl_gpuscale.tune.search import TuneOptions, recommend
from tests.support.tune_history import MONDAY, pattern_history, preset_calibration

COLD = sim.coldstart_profile("8b-warm")
OPTIONS = TuneOptions(seeds=(0,), workers=2)
POINT_KEYS = {"policy", "params", "sloAttainment", "ttftP95", "gpuHours", "costPerMonth", "scaleEvents"}


@pytest.fixture(scope="module")
def flat() -> search.TuneResult:
    """Three hours of a steady 6 req/s."""
    return recommend(
        pattern_history("constant", 6.0, days=0.125),
        preset_calibration(),
        COLD,
        PolicySpec("keda", {}),
        OPTIONS,
    )


@pytest.fixture(scope="module")
def idle() -> search.TuneResult:
    """A dev endpoint seen from Monday 16:00 to 24:00: 1,000 requests a day between 9:00 and 18:00."""
    return recommend(
        pattern_history("dev", 1000.0, days=1 / 3, start=MONDAY + 16 * 3600),
        preset_calibration(),
        COLD,
        PolicySpec("keda", {}),
        OPTIONS,
    )


def _replayed(result: search.TuneResult, seed: int) -> sim.PolicyResult:
    """The recommendation simulated again on the history with another seed (a run the search never saw)."""
    h = result.history
    counts = h.per_second(seed).astype(float)
    trace = sim.Trace(counts, h.prompt_tokens, h.output_tokens, int(counts.sum()))
    best = result.recommendation.candidate
    ctl = search._controller(best.spec(), best.floor, h.start)
    return sim.Simulation(
        trace, preset_calibration().profile, COLD, [ctl], trace.duration, seed, result.options.slo_ttft
    ).run()[0]


def test_flat_and_idle_histories_get_different_recommendations(
    flat: search.TuneResult, idle: search.TuneResult
) -> None:
    """Scale to zero only where idle hours dominate: the steady load keeps warm replicas, the dev endpoint
    is recommended a policy with a zero floor that spends most of the window at zero."""
    assert flat.meets_slo and idle.meets_slo
    f, i = flat.recommendation, idle.recommendation
    assert f.scores.time_at_zero_s == 0
    assert f.candidate.params.get("minReplicas", f.candidate.params.get("minScale")) >= 1
    assert i.candidate.params.get("minReplicas", i.candidate.params.get("minScale")) == 0
    assert i.scores.time_at_zero_s > 0.5 * idle.history.steps * idle.history.step
    assert i.scores.cost_per_month < idle.baseline.scores.cost_per_month


@pytest.mark.parametrize("which", ["flat", "idle"])
def test_the_recommendation_replayed_meets_the_slo(which: str, request: pytest.FixtureRequest) -> None:
    result: search.TuneResult = request.getfixturevalue(which)
    replayed = _replayed(result, seed=11)
    assert replayed.slo_attainment_pct / 100 >= result.options.slo
    assert replayed.requests == result.history.requests


def test_recommendation_is_the_cheapest_meeting_the_slo_and_on_the_frontier(flat: search.TuneResult) -> None:
    best = flat.recommendation
    meeting = [p for p in flat.points if p.scores.worst >= flat.options.slo]
    assert best.scores.cost_per_month == min(p.scores.cost_per_month for p in meeting)
    assert best in flat.frontier
    costs = [p.scores.cost_per_month for p in flat.frontier]
    worst = [p.scores.worst for p in flat.frontier]
    assert costs == sorted(costs) and worst == sorted(worst)
    for p in flat.points:  # nothing off the frontier beats a frontier point on both axes
        assert not any(
            q.scores.cost_per_month < p.scores.cost_per_month and q.scores.worst > p.scores.worst
            for q in flat.points
            if p in flat.frontier
        )


def test_cold_start_cliff_brackets_the_slo(idle: search.TuneResult) -> None:
    """The cliff is where the recommendation stops meeting the SLO: it meets it at the cliff, not at 1.3x it."""
    cliff = idle.cliff_seconds
    assert cliff is not None and not idle.cliff_capped and cliff >= COLD.total
    item = [(idle.recommendation.candidate.spec(), idle.recommendation.candidate.floor)]
    variants = search._variants(idle.history, idle.options)
    with search._Runner(1, None, 100) as runner:

        def worst(seconds: float) -> float:
            table = search._evaluate(
                runner,
                variants,
                item,
                preset_calibration().profile,
                search.scaled_coldstart(COLD, seconds),
                options=idle.options,
                groups=1,
            )
            return search._score(idle.history, table[0]).worst

        assert worst(cliff) >= idle.options.slo
        assert worst(cliff * 1.3) < idle.options.slo
    assert idle.recommendation.scores.coldstart_gpu_hours_per_month > 0


def test_json_shape(idle: search.TuneResult) -> None:
    doc = json.loads(json.dumps(idle.to_dict()))
    assert doc["kind"] == "TuneResult"
    assert set(doc["history"]) >= {"from", "to", "requests", "peakRps"}
    assert doc["history"]["from"] == "2026-01-05T16:00:00Z" and doc["history"]["to"] == "2026-01-06T00:00:00Z"
    assert doc["history"]["requests"] == idle.history.requests
    assert set(doc["coldStart"]) == {"seconds", "source"} and doc["coldStart"]["seconds"] == 25
    assert "replay" in doc["calibration"]
    for point in [doc["baseline"], doc["recommendation"], *doc["frontier"]]:
        assert set(point) >= POINT_KEYS
    assert {"objects", "coldStartCliffSeconds", "coldStartGpuHoursPerMonth"} <= set(doc["recommendation"])
    assert doc["candidates"] >= 40


def test_candidates_cover_each_policy_and_floors_only_for_repeating_traffic() -> None:
    engine = sim.engine_profile("8b")
    office = pattern_history("business-hours", 20.0, days=7, step=60.0)
    steady = pattern_history("constant", 6.0, days=7, step=60.0)
    found = search.candidates(office, engine, TuneOptions())
    assert len(found) >= 40
    assert {c.policy for c in found} == {"keda", "keda-zero", "knative"}
    floors = {c.floor for c in found if c.floor}
    assert floors and all(f.start == 9 and f.end == 17 and f.days == (0, 1, 2, 3, 4) for f in floors)
    assert search.repetition(office) == "weekdays"
    assert search.repetition(steady) is None
    assert not any(c.floor for c in search.candidates(steady, engine, TuneOptions()))
    for key in (
        "threshold",
        "activation",
        "minReplicas",
        "maxReplicas",
        "scaleDownStabilizationSeconds",
        "cooldownSeconds",
        "pollingSeconds",
    ):
        assert len({c.params[key] for c in found if c.policy.startswith("keda")}) >= 2, key
    for key in ("target", "minScale", "scaleDownDelaySeconds"):
        assert len({c.params[key] for c in found if c.policy == "knative"}) >= 2, key


def test_shifted_floor_is_in_utc() -> None:
    """A 9-17 weekday floor on a history starting Monday 06:00 UTC is active 3 h into it, not at 0 or 11 h."""
    floor = search.shifted_floor(search.Floor(9, 17, 2, (0, 1, 2, 3, 4)), MONDAY + 6 * 3600 + 3 * 86400)
    assert floor.active(np.array([0, 3 * 3600, 11 * 3600 - 1, 11 * 3600])).tolist() == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"slo": 0.0}, "SLO share"),
        ({"slo": 1.5}, "SLO share"),
        ({"headroom": 0.5}, "headroom"),
        ({"policies": ("cpu-hpa",)}, "unknown policy"),
        ({"max_replicas": 0}, "--max-replicas"),
        ({"slo_ttft": 0.0}, "TTFT target"),
        ({"seeds": ()}, "no seed"),
    ],
)
def test_bad_options(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InputError, match=words):
        TuneOptions(**kwargs)  # type: ignore[arg-type]


def test_an_empty_history_is_refused() -> None:
    empty = pattern_history("dev", 1e-9, days=0.1)
    with pytest.raises(InputError, match="no requests"):
        recommend(empty, preset_calibration(), COLD, PolicySpec("keda", {}), OPTIONS)


def test_equivalent_candidates_are_simulated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """KEDA's RequestScale (pkg/scaling/executor/scale_scaledobjects.go, sim/keda.py request_scale) reads
    the activation threshold and cooldownPeriod only on the way to zero: with minReplicaCount 1 they change
    nothing, so those candidates share one simulation (and get exactly what each would alone); with
    minReplicaCount 0 (keda-zero) the cooldown matters and each is simulated."""
    history = pattern_history("dev", 2000.0, days=4 / 24, start=MONDAY + 16 * 3600)  # idle after 18:00
    items = [
        (PolicySpec("keda", {"min": "1", "cooldown": "120", "activation": "0"}), None),
        (PolicySpec("keda", {"min": "1", "cooldown": "1800", "activation": "2"}), None),
        (PolicySpec("keda-zero", {"min": "0", "cooldown": "120"}), None),
        (PolicySpec("keda-zero", {"min": "0", "cooldown": "1800"}), None),
    ]
    simulated: list[str] = []
    real_run = search._run

    def counting(job: search._Job) -> search._Outcome:
        simulated.extend(spec.options["cooldown"] + "/" + spec.options["min"] for spec, _ in job.specs)
        return real_run(job)

    monkeypatch.setattr(search, "_run", counting)
    options = TuneOptions(seeds=(0,), workers=1, headroom=1.0)
    engine, cold = preset_calibration().profile, sim.coldstart_profile("8b-warm")
    runner = search._Runner(1, None, 1)
    with runner:
        table = search._evaluate(runner, [history], items, engine, cold, options=options, groups=1)
        assert sorted(simulated) == ["120/0", "120/1", "1800/0"]
        alone = search._evaluate(runner, [history], items[1:2], engine, cold, options=options, groups=1)
    assert table[0] == table[1]
    assert alone[0][0][0][0].to_dict() | {"policy": ""} == table[1][0][0][0].to_dict() | {"policy": ""}
    assert table[2][0][0][0].time_at_zero_s != table[3][0][0][0].time_at_zero_s
