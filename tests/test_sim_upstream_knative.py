"""knative/serving's own KPA tests, ported onto kubectl_gpuscale.sim.kpa, and the behaviours they rest
on through the simulator.

Sources (knative/serving):
- pkg/autoscaler/scaling/autoscaler_test.go: TestStartInPanicMode, TestAutoscalerScaleDownDelay,
  TestAutoscalerScaleDownDelayZero, TestAutoscalerStableModeIncreaseWithConcurrencyDefault,
  TestAutoscalerUnpanicAfterSlowIncrease, TestAutoscalerExtendPanicWindow,
  TestAutoscalerStableModeDecrease, TestAutoscalerStableModeNoTrafficScaleToZero,
  TestAutoscalerPanicModeExponentialTrackAndStabilize, TestAutoscalerScale (its rows),
  TestAutoscalerPanicThenUnPanicScaleDown, TestAutoscalerRateLimitScaleUp/Down,
  TestAutoscalerUseOnePodAsMinimumIfEndpointsNotFound, TestAutoscalerUpdateTarget;
  newTestAutoscalerWithScalingMetric's DeciderSpec: PanicThreshold 2, MaxScaleUp/DownRate 10,
  StableWindow 60 s, Reachable; a pod counter at 1 when created.
- pkg/reconciler/autoscaling/kpa/scaler_test.go: TestScaler's rows (gracePeriod 60 s, stableWindow
  5 min, paStableWindow 45 s, progressDeadline 121 s).
"""

from __future__ import annotations

import dataclasses

import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim.kpa import Decider, DeciderSpec, ScalerConfig, scaler_scale


def decider(target: float, ready_at_start: int = 1, **kw) -> Decider:
    """newTestAutoscaler's DeciderSpec."""
    spec = DeciderSpec(
        target, max_scale_up_rate=10, max_scale_down_rate=10, panic_threshold=2, stable_window=60, **kw
    )
    return Decider(spec, ready_at_start, now=0.0)


def test_start_in_panic_mode():
    """TestStartInPanicMode: created with 0 or 1 ready pods -> no panic, maxPanicPods = i; with 2 -> panic, 2."""
    spec = DeciderSpec(
        100, max_scale_up_rate=10, max_scale_down_rate=10, panic_threshold=2.2, stable_window=60
    )
    for i in (0, 1):
        a = Decider(spec, i)
        assert a.panic_time is None and a.max_panic_pods == i
    a = Decider(spec, 2)
    assert a.panic_time is not None and a.max_panic_pods == 2


def test_scale_down_delay():
    """TestAutoscalerScaleDownDelay (delay 5 min, target 10, panic threshold 100): simple, then gradual."""
    a = Decider(
        DeciderSpec(
            10, max_scale_up_rate=10, max_scale_down_rate=10, panic_threshold=100, scale_down_delay=300
        ),
        0,
    )
    assert a.scale(2, 0, 40, 40) == 4
    assert a.scale(300, 0, 0, 0) == 4
    assert a.scale(302, 0, 0, 0) == 0
    assert a.scale(540, 0, 40, 40) == 4
    assert a.scale(600, 0, 30, 30) == 4  # 4 still dominates
    assert a.scale(660, 0, 0, 0) == 4
    assert a.scale(840, 0, 0, 0) == 3  # 4 scrolls out
    assert a.scale(900, 0, 0, 0) == 0


def test_scale_down_delay_zero():
    """TestAutoscalerScaleDownDelayZero: no delay window, the next decision scales down at once."""
    a = Decider(DeciderSpec(10, max_scale_up_rate=10, max_scale_down_rate=10, panic_threshold=100), 0)
    assert a.scale(0, 0, 40, 40) == 4
    assert a.scale(0.5, 0, 20, 20) == 2


def test_stable_mode_rows():
    """TestAutoscalerStableModeIncreaseWithConcurrencyDefault, ...StableModeDecrease, ...NoTrafficScaleToZero."""
    a = decider(10)
    assert a.scale(0, 1, 50, 10) == 5
    assert a.scale(0, 1, 100, 10) == 10
    a = decider(10)
    assert a.scale(0, 8, 100, 100) == 10
    assert a.scale(0, 8, 50, 50) == 5
    a = decider(10)
    assert a.scale(0, 1, 1, 0) == 1
    assert a.scale(0, 1, 0, 0) == 0


def test_unpanic_after_slow_increase_and_extend_panic_window():
    """TestAutoscalerUnpanicAfterSlowIncrease (25, 41, then 50 out of panic) and TestAutoscalerExtendPanicWindow (80)."""
    a = decider(1)
    assert a.scale(0, 10, 11, 25) == 25 and a.panic_time == 0
    assert a.scale(30, 40, 30, 41) == 41 and a.panic_time == 0
    assert a.scale(62, 55, 50, 56) == 50 and a.panic_time is None
    a = decider(1)
    assert a.scale(0, 10, 11, 25) == 25
    assert a.scale(30, 40, 30, 80) == 80 and a.panic_time == 30


def test_panic_exponential_track_and_stabilize():
    """TestAutoscalerPanicModeExponentialTrackAndStabilize: 6, 36, 216, 1296, 1296."""
    a = decider(1)
    assert a.scale(0, 1, 6, 6) == 6
    assert a.scale(1, 6, 36, 36) == 36 and a.panic_time == 1
    assert a.scale(2, 36, 216, 216) == 216 and a.panic_time == 2
    assert a.scale(2, 216, 1296, 1296) == 1296
    assert a.scale(3, 1296, 1296, 1296) == 1296


# TestAutoscalerScale: (label, target, stable, panic, ready, spec changes, panicking with maxPanicPods, want)
SCALE_ROWS = [
    ("AutoscalerNoDataAtZeroNoAutoscale", 10, 0, 0, 1, {}, None, 0),
    ("AutoscalerStableModeUnlimitedTBC", 181, 21, 26, 1, {}, None, 1),
    ("Autoscaler0TBC", 10, 50, 49, 1, {}, None, 5),
    ("AutoscalerStableModeNoChange", 10, 50, 50, 1, {}, None, 5),
    ("AutoscalerPanicStableLargerThanPanic", 1, 50, 30, 5, {}, 5, 50),
    ("AutoscalerPanicStableLessThanPanic", 1, 20, 30, 5, {}, 5, 30),
    ("AutoscalerStableModeNoChangeAlreadyScaled", 10, 50, 50, 5, {}, None, 5),
    ("AutoscalerStableModeIncreaseWithSmallScaleUpRate", 1, 3, 3.1, 2, {"max_scale_up_rate": 1.1}, None, 3),
    (
        "AutoscalerStableModeDecreaseWithSmallScaleDownRate",
        10,
        1,
        1,
        100,
        {"max_scale_down_rate": 1.1},
        None,
        90,
    ),
    (
        "AutoscalerStableModeDecreaseNonReachable",
        10,
        1,
        1,
        100,
        {"max_scale_down_rate": 1.1, "reachable": False},
        None,
        1,
    ),
    ("AutoscalerPanicModeDoublePodCount", 10, 50, 100, 1, {}, None, 10),
]


@pytest.mark.parametrize(
    ("target", "stable", "panic", "ready", "changes", "panicking", "want"),
    [r[1:] for r in SCALE_ROWS],
    ids=[f"TestAutoscalerScale/{r[0]}" for r in SCALE_ROWS],
)
def test_autoscaler_scale_rows(target, stable, panic, ready, changes, panicking, want):
    """autoscaler.go Scale: bounded stable/panic counts, Reachable, panic mode."""
    a = decider(target)
    a.spec = dataclasses.replace(a.spec, **changes)
    if panicking is not None:  # prepFunc: panicTime 5 s ago, maxPanicPods
        a.panic_time, a.max_panic_pods = 95.0, panicking
    assert a.scale(100.0, ready, stable, panic) == want


def test_panic_then_unpanic_scale_down():
    """TestAutoscalerPanicThenUnPanicScaleDown: 10; a panic surge to 100; held for 30 s; down after the stable window."""
    a = decider(10)
    assert a.scale(0, 1, 100, 100) == 10
    assert a.scale(10, 10, 100, 1000) == 100
    assert a.scale(40, 10, 1, 1) == 100
    assert a.scale(71, 10, 1, 1) == 1


def test_rate_limits_and_no_endpoints():
    """TestAutoscalerRateLimitScaleUp (10, 100), ...RateLimitScaleDown (10, 1), ...UseOnePodAsMinimumIfEndpointsNotFound."""
    a = decider(10)
    assert a.scale(0, 1, 1000, 1001) == 10
    assert a.scale(0, 10, 1000, 1001) == 100
    a = decider(10)
    assert a.scale(0, 100, 1, 1) == 10
    assert a.scale(0, 10, 1, 1) == 1
    assert decider(10).scale(0, 0, 1000, 888) == 10


def test_update_target():
    """TestAutoscalerUpdateTarget: target 10 -> 10 pods; Update to target 1 with 10 ready -> 100."""
    a = decider(10)
    assert a.scale(0, 1, 100, 101) == 10
    a.spec = dataclasses.replace(a.spec, target=1)
    assert a.scale(0, 10, 100, 101) == 100


def test_activation_scale():
    """autoscaler.go Scale: with ActivationScale > 1 any non-zero demand asks for at least activation-scale pods."""
    a = decider(10, activation_scale=3)
    assert a.scale(0, 1, 1, 1) == 3
    assert a.scale(0, 1, 0, 0) == 0
    assert a.scale(0, 1, 50, 50) == 5


G, SW, PSW, PD = 60, 300, 45, 121
CFG = ScalerConfig(stable_window=SW, grace=G, progress_deadline=PD)

# TestScaler: (label, config, current, scaleTo, PA state, state for (s), extra, want replicas, want scaling)
SCALER_ROWS = [
    ("waits to scale to zero (just before idle period)", CFG, 1, 0, "active", SW - 1, {}, 1, False),
    (
        "waits to scale to zero (just before idle period), custom PA window",
        dataclasses.replace(CFG, stable_window=PSW),
        1,
        0,
        "active",
        PSW - 1,
        {},
        1,
        False,
    ),
    (
        "custom PA window, check for standard window, no probe",
        dataclasses.replace(CFG, stable_window=PSW),
        1,
        0,
        "active",
        SW,
        {},
        0,
        False,
    ),
    ("scale to 1 waiting for idle expires", CFG, 10, 0, "active", SW - 1, {}, 1, True),
    ("waits to scale to zero after idle period", CFG, 1, 0, "active", SW, {}, 0, False),
    (
        "waits to scale to zero after idle period (custom PA window)",
        dataclasses.replace(CFG, stable_window=PSW),
        1,
        0,
        "active",
        PSW,
        {},
        0,
        False,
    ),
    (
        "can scale to zero after grace period, but 0 PA retention",
        dataclasses.replace(CFG, pod_retention=0),
        1,
        0,
        "inactive",
        G,
        {},
        0,
        True,
    ),
    (
        "can't scale to zero after grace period, but before last pod retention",
        dataclasses.replace(CFG, pod_retention=2 * G),
        1,
        0,
        "inactive",
        G,
        {},
        0,
        False,
    ),
    (
        "scale to zero after grace period, and after last pod retention",
        dataclasses.replace(CFG, pod_retention=G),
        1,
        0,
        "inactive",
        G,
        {},
        0,
        True,
    ),
    ("scale to zero after grace period", CFG, 1, 0, "inactive", G, {}, 0, True),
    (
        "waits to scale to zero (just before grace period)",
        CFG,
        1,
        0,
        "inactive",
        G - 1,
        {"proxy_for": 0},
        0,
        False,
    ),
    (
        "waits to scale to zero (just before grace period, sks short)",
        CFG,
        1,
        0,
        "inactive",
        G - 1,
        {"proxy_for": G - 1},
        0,
        False,
    ),
    (
        "waits to scale to zero (just before grace period, sks in proxy long) and last pod timeout positive",
        dataclasses.replace(CFG, pod_retention=42),
        1,
        0,
        "inactive",
        G - 1,
        {"proxy_for": G},
        0,
        True,
    ),
    (
        "waits to scale to zero (just before grace period, sks in proxy long)",
        CFG,
        1,
        0,
        "inactive",
        G - 1,
        {"proxy_for": G},
        0,
        True,
    ),
    (
        "scale to zero after grace period, but fail prober",
        CFG,
        1,
        0,
        "inactive",
        G,
        {"activator_in_path": False},
        0,
        False,
    ),
    (
        "waits to scale to zero while activating until after deadline exceeded",
        CFG,
        1,
        0,
        "activating",
        (PD + 10) / 2,
        {},
        -1,
        False,
    ),
    (
        "scale to zero while activating after deadline exceeded",
        CFG,
        1,
        0,
        "activating",
        PD + 10 + 1,
        {},
        0,
        True,
    ),
    (
        "scale to zero while activating after revision deadline exceeded",
        dataclasses.replace(CFG, progress_deadline=5),
        1,
        0,
        "activating",
        5 + 10 + 1,
        {},
        0,
        True,
    ),
    (
        "scale down to minScale before grace period",
        dataclasses.replace(CFG, min_scale=2),
        10,
        0,
        "inactive",
        G - 1,
        {},
        2,
        True,
    ),
    (
        "scale down to minScale after grace period",
        dataclasses.replace(CFG, min_scale=2),
        10,
        0,
        "inactive",
        G,
        {},
        2,
        True,
    ),
    (
        "ignore minScale if unreachable",
        dataclasses.replace(CFG, min_scale=2, reachability="Unreachable"),
        10,
        0,
        "inactive",
        G,
        {},
        0,
        True,
    ),
    (
        "observe minScale if reachability unknown",
        dataclasses.replace(CFG, min_scale=2, reachability=""),
        10,
        0,
        "inactive",
        G,
        {},
        2,
        True,
    ),
    ("scales up", CFG, 1, 10, "active", 0, {}, 10, True),
    ("scales up to maxScale", dataclasses.replace(CFG, max_scale=8), 1, 10, "active", 0, {}, 8, True),
    ("scale up inactive revision", CFG, 1, 10, "inactive", G / 2, {}, 10, True),
    ("does not scale up from zero with no metrics", CFG, 0, -1, "inactive", 0, {}, -1, False),
    ("scales up from zero to desired one", CFG, 0, 1, "inactive", 0, {}, 1, True),
    ("scales up from zero to desired high scale", CFG, 0, 10, "inactive", 0, {}, 10, True),
    ("negative scale does not scale", CFG, 12, -1, "active", 0, {}, -1, False),
    (
        "initial scale attained, but now time to scale down",
        dataclasses.replace(CFG, initial_scale=2),
        2,
        0,
        "active",
        120,
        {"target_initialized": True},
        1,
        True,
    ),
    (
        "haven't scaled to initial scale, override desired scale with initial scale",
        dataclasses.replace(CFG, initial_scale=2),
        0,
        1,
        "activating",
        0,
        {"target_initialized": False},
        2,
        True,
    ),
    (
        "initial scale reached for the first time",
        dataclasses.replace(CFG, initial_scale=5),
        5,
        1,
        "activating",
        0,
        {"target_initialized": False},
        5,
        False,
    ),
    (
        "reaching initial scale zero",
        dataclasses.replace(CFG, initial_scale=0),
        0,
        0,
        "inactive",
        0,
        {"proxy_for": 0},
        0,
        False,
    ),
]


@pytest.mark.parametrize(
    ("cfg", "current", "scale_to", "state", "state_for", "extra", "want", "scaling"),
    [r[1:] for r in SCALER_ROWS],
    ids=[f"TestScaler/{r[0]}" for r in SCALER_ROWS],
)
def test_scaler_rows(cfg, current, scale_to, state, state_for, extra, want, scaling):
    """kpa/scaler.go scale + handleScaleToZero."""
    assert scaler_scale(cfg, current, scale_to, state, state_for, **extra) == (want, scaling)


@pytest.fixture(params=["kernel", "python"], autouse=False)
def both_paths(request, monkeypatch):
    """Each simulated case runs on the compiled kernel and on the Python reference path (sim/kernel.py)."""
    monkeypatch.setenv("GPUSCALE_SIM_KERNEL", "1" if request.param == "kernel" else "0")


def make(policy: str, traffic, duration: int):
    return sim.Simulation(
        traffic,
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        [sim.build_controller(p) for p in sim.parse_policies(policy)],
        duration,
        seed=5,
    )


@pytest.mark.usefixtures("both_paths")
def test_simulated_kpa_starts_in_panic_with_several_ready_pods():
    """newAutoscaler through the simulator: 3 ready pods and no traffic hold 3 for the stable window."""
    s = make("knative:initial=3:min=0", sim.pattern("constant", 0.0), 600)
    s.advance(50)
    assert s.states()[0].desired == 3
    s.advance(300)
    assert s.states()[0].desired == 0


@pytest.mark.usefixtures("both_paths")
def test_simulated_activation_scale_and_retention():
    """activation-scale 2 wakes two pods for a lone request; scale-to-zero-pod-retention-period 300 s keeps the
    last pod 300 s after the revision goes Inactive instead of the 30 s grace period."""
    lone = sim.parse_trace("100,512,256\n")
    r = make("knative:activation-scale=2", lone, 1200).run()[0]
    assert r.max_replicas == 2
    short = make("knative", lone, 1200).run()[0]
    kept = make("knative:retention=300s", lone, 1200).run()[0]
    assert kept.replica_seconds - short.replica_seconds == pytest.approx(270, abs=4)


@pytest.mark.usefixtures("both_paths")
def test_simulated_new_revision_initial_scale():
    """kpa/scaler.go scale: a new revision's initial-scale is a floor until the scale target is initialized
    (that many pods Ready once), then the autoscaler's count applies: 3 cold-starting pods are kept while a
    trickle of traffic asks for 1, and the count falls to 1 after they are Ready."""
    trickle = sim.pattern("constant", 0.5)
    s = make("knative:initial-scale=3", trickle, 900)
    s.advance(20)
    state = s.states()[0]
    assert state.desired == 3 and state.ready == 0
    s.advance(400)
    assert s.states()[0].desired == 1
    plain = make("knative:initial=0", trickle, 900)  # the same start from zero, no initial-scale
    plain.advance(20)
    assert plain.states()[0].desired < 3


def test_rps_rows():
    """TestAutoscalerStableModeIncreaseWithRPS (50 -> 5, then 100/99 -> 10) and TestAutoscalerMetricsWithRPS
    (stable 100, panic 99 -> 10): the decider's arithmetic is the same on requests per second."""
    a = decider(10)
    assert a.scale(0, 1, 50, 50) == 5
    assert a.scale(0, 1, 100, 99) == 10
    assert decider(10).scale(0, 1, 100, 99) == 10


@pytest.mark.usefixtures("both_paths")
def test_simulated_rps_metric():
    """autoscaling.knative.dev/metric: rps: the windows average the requests per second reaching the revision;
    20 req/s against a target of 5 x 70 % asks for ceil(20 / 3.5) = 6 pods, whatever their concurrency."""
    s = make("knative:metric=rps:target=5:max=10:initial=6", sim.pattern("constant", 20.0), 1800)
    s.advance(1200)
    assert s.states()[0].desired == 6
    assert make("knative:metric=rps", sim.pattern("constant", 1.0), 60).runs[0].ctl.target_value == 140.0
