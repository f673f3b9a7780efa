"""kedacore/keda's own executor and fallback tests, ported onto kubectl_gpuscale.sim.keda, and the
operator's behaviours they rest on, through the simulator.

Sources (kedacore/keda):
- pkg/scaling/executor/scale_scaledobjects_test.go: TestScaleToMinReplicasWhenNotActive,
  TestScaleToMinReplicasFromLowerInitialReplicaCount, TestScaleFromMinReplicasWhenActive,
  TestScaleToIdleReplicasWhenNotActive, TestScaleFromIdleToMinReplicasWhenActive,
  TestEventWitTriggerInfo (the replicas it scales to);
- pkg/fallback/fallback_test.go (Describe "fallback"): the It(...) rows on the metric value and the
  failure count;
- pkg/scaling/executor/scale_scaledobjects.go RequestScale / scaleToZeroOrIdle (cooldown strictly
  before now, initialCooldownPeriod, no scale to zero on a scaler error) and, up to KEDA 2.16,
  doFallbackScaling; pkg/fallback/fallback.go doFallback (fallback.behavior).
"""

from __future__ import annotations

import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim.keda import (
    Fallback,
    ScaledObjectSpec,
    fallback_replicas,
    metrics_with_fallback,
    request_scale,
)

NOW = 1_000_000.0

# (upstream test, spec, current replicas, isActive, expected replicas)
EXECUTOR_ROWS = [
    ("TestScaleToMinReplicasWhenNotActive", ScaledObjectSpec(min_replicas=0), 10, False, 0),
    ("TestScaleToMinReplicasFromLowerInitialReplicaCount", ScaledObjectSpec(min_replicas=5), 1, False, 5),
    ("TestScaleFromMinReplicasWhenActive", ScaledObjectSpec(min_replicas=0), 0, True, 1),
    ("TestScaleToIdleReplicasWhenNotActive", ScaledObjectSpec(min_replicas=5, idle_replicas=0), 10, False, 0),
    (
        "TestScaleFromIdleToMinReplicasWhenActive",
        ScaledObjectSpec(min_replicas=5, idle_replicas=0),
        0,
        True,
        5,
    ),
    ("TestEventWitTriggerInfo", ScaledObjectSpec(min_replicas=5, idle_replicas=0), 2, True, 5),
]


@pytest.mark.parametrize(
    ("so", "current", "active", "expected"), [r[1:] for r in EXECUTOR_ROWS], ids=[r[0] for r in EXECUTOR_ROWS]
)
def test_executor_rows(so, current, active, expected):
    """RequestScale with no lastActiveTime (a new ScaledObject: creation + initialCooldown 0 is before now)."""
    replicas, _ = request_scale(so, current, active, False, None, NOW - 1, NOW)
    assert replicas == expected


def test_fallback_rows():
    """fallback_test.go, Describe("fallback")."""
    fb = Fallback(replicas=10, failure_threshold=3)
    # "should return the expected metric when fallback is disabled"
    assert metrics_with_fallback(5, 0, None, 3, 1) == (5, 0, False)
    # "should reset the health status when scaler metrics are available" (5 failures -> 0)
    assert metrics_with_fallback(6, 5, fb, 3, 1) == (6, 0, False)
    # "should propagate the error when fallback is disabled"
    assert metrics_with_fallback(None, 0, None, 3, 1)[0] is None
    # "should bump the number of failures when metrics call fails" (0 -> 1, still an error)
    assert metrics_with_fallback(None, 0, fb, 10, 1) == (None, 1, False)
    # "should return a normalised metric when number of failures are beyond threshold": 3 -> 4 > 3,
    # the metric is target (10) x fallback replicas (10) = 100
    assert metrics_with_fallback(None, 3, fb, 10, 1) == (100, 4, True)
    # "should return error when fallback is enabled but scaledobject has invalid parameter" (threshold -3)
    assert metrics_with_fallback(None, 3, Fallback(10, -3), 10, 1)[0] is None


@pytest.mark.parametrize(
    ("behavior", "current", "expected"),
    [
        ("static", 7, 4),
        ("currentReplicas", 7, 7),
        ("currentReplicasIfHigher", 7, 7),
        ("currentReplicasIfHigher", 2, 4),
        ("currentReplicasIfLower", 7, 4),
        ("currentReplicasIfLower", 2, 2),
    ],
)
def test_fallback_behaviors(behavior, current, expected):
    """fallback.go doFallback: replicas by fallback.behavior."""
    assert fallback_replicas(Fallback(4, 3, behavior), current) == expected


def test_cooldown_is_strictly_before_now():
    """scaleToZeroOrIdle: `LastActiveTime.Add(cooldownPeriod).Before(time.Now())`."""
    so = ScaledObjectSpec(min_replicas=0, cooldown=300)
    assert request_scale(so, 2, False, False, NOW - 300, 0, NOW)[0] == 2
    assert request_scale(so, 2, False, False, NOW - 301, 0, NOW)[0] == 0


def test_initial_cooldown_period():
    """scaleToZeroOrIdle: never active -> `CreationTimestamp.Add(initialCooldownPeriod).Before(now)`."""
    so = ScaledObjectSpec(min_replicas=0, initial_cooldown=600)
    assert request_scale(so, 1, False, False, None, NOW - 600, NOW)[0] == 1
    assert request_scale(so, 1, False, False, None, NOW - 601, NOW)[0] == 0


def test_no_scale_to_zero_while_a_scaler_errors():
    """RequestScale (2.17+): `case isError && Fallback == nil` and `case isError && Fallback.Replicas != 0` change
    nothing; up to 2.16 the error fell through to scale-to-zero, and a fallback was applied at once."""
    bare = ScaledObjectSpec(min_replicas=0)
    assert request_scale(bare, 2, False, True, NOW - 3600, 0, NOW, (2, 17))[0] == 2
    assert request_scale(bare, 2, False, True, NOW - 3600, 0, NOW, (2, 16))[0] == 0
    fb = ScaledObjectSpec(min_replicas=0, fallback=Fallback(4))
    assert request_scale(fb, 0, False, True, NOW - 3600, 0, NOW, (2, 17))[0] == 0  # stays at zero
    assert request_scale(fb, 0, False, True, NOW - 3600, 0, NOW, (2, 16))[0] == 4  # doFallbackScaling
    assert request_scale(fb, 2, False, True, NOW - 3600, 0, NOW, (2, 16))[0] == 4


def make(policy: str, traffic, duration: int):
    return sim.Simulation(
        traffic,
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        [sim.build_controller(p) for p in sim.parse_policies(policy)],
        duration,
        seed=3,
    )


def test_fallback_from_zero_by_keda_version():
    """Issue 14 item 1 through the simulator: a scale-to-zero ScaledObject with a fallback whose Prometheus fails
    while at zero. KEDA 2.16 scales straight to the fallback count (a GPU idles through the outage);
    2.17+ stays at zero."""
    quiet = sim.pattern("constant", 0.0)
    old = make("keda:min=0:outage=3600-7200:fallback=2:keda-version=2.16", quiet, 3 * 3600)
    new = make("keda:min=0:outage=3600-7200:fallback=2:keda-version=2.17", quiet, 3 * 3600)
    r_old, r_new = old.run()[0], new.run()[0]
    assert r_new.replica_seconds == 0 and r_new.scale_events == 0
    assert r_old.replica_seconds >= 2 * 3000 and r_old.max_replicas == 2


def test_no_scale_to_zero_during_an_outage_without_fallback():
    """A keda min-0 ScaledObject whose metric fails with no fallback keeps its replicas (2.17+) and, up to
    2.16, scales to zero after the cooldown as if idle."""
    busy_then_quiet = sim.parse_trace("".join(f"{t},512,256\n" for t in range(600)))
    new = make("keda-zero:outage=900-5000:cooldown=300s", busy_then_quiet, 5400)
    old = make("keda-zero:outage=900-5000:cooldown=300s:keda-version=2.16", busy_then_quiet, 5400)
    new.advance(4900)
    old.advance(4900)
    assert new.states()[0].desired >= 1
    assert old.states()[0].desired == 0


def test_idle_replica_count_through_the_simulation():
    """idleReplicaCount 0 with minReplicaCount 2: idle after the cooldown, straight to min (not 1) on activity."""
    s = make("keda-zero:min=2:idle=0:cooldown=60s", sim.pattern("business-hours-daily", 20.0), 86400)
    s.advance(8 * 3600)  # night: idle at 0
    assert s.states()[0].desired == 0
    s.advance(2 * 3600)  # 10:00: active -> min 2 at least
    assert s.states()[0].desired >= 2
