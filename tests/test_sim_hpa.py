"""The HPA v2 algorithm against the worked examples of the Kubernetes documentation
(concepts/workloads/autoscaling/horizontal-pod-autoscale: "Algorithm details", "Scaling policies",
"Stabilization window", "Default Behavior")."""

from __future__ import annotations

from kubectl_gpuscale.sim.hpa import (
    Behavior,
    HpaState,
    ScalingPolicy,
    ScalingRules,
    default_scale_up,
    external_replicas,
    resource_replicas,
)


def test_ratio_doubles_and_halves():
    # "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled"
    assert resource_replicas(current=3, ready=3, unready=0, usage=200, target=100) == 6
    # "if the current value is instead 50m, you'll halve the number of replicas"
    assert resource_replicas(current=4, ready=4, unready=0, usage=50, target=100) == 2


def test_tolerance_skips_small_ratios():
    # within 0.9..1.1 of the target: no scaling
    assert resource_replicas(current=10, ready=10, unready=0, usage=109, target=100) == 10
    assert resource_replicas(current=10, ready=10, unready=0, usage=91, target=100) == 10
    assert resource_replicas(current=10, ready=10, unready=0, usage=111, target=100) == 12
    assert resource_replicas(current=10, ready=10, unready=0, usage=109, target=100, tolerance=0.05) == 11


def test_not_ready_pods_count_as_zero_on_scale_up():
    # 2 ready pods at 150 %, 2 starting: with the starting pods at 0 % the ratio is 0.75, which would
    # reverse the direction, so the HPA keeps 4 (it does not scale up on pods still starting)
    assert resource_replicas(current=4, ready=2, unready=2, usage=150, target=100) == 4
    # 2 ready at 400 %, 1 starting: new ratio 400*2/300 = 2.67 -> ceil(2.67*3) = 8
    assert resource_replicas(current=3, ready=2, unready=1, usage=400, target=100) == 8
    # no ready pod: no sample, no change
    assert resource_replicas(current=2, ready=0, unready=2, usage=0, target=100) == 2


def test_external_average_value():
    assert external_replicas(status_replicas=2, total=30, target_per_pod=5) == 6
    assert external_replicas(status_replicas=6, total=31, target_per_pod=5) == 6  # 31/30 within tolerance
    assert external_replicas(status_replicas=6, total=0, target_per_pod=5) == 0


def test_percent_policy_scale_down_example():
    # docs: Pods 4/60s and Percent 10/60s, Max: from 80 to 10, the first step removes 8 -> 72,
    # "in the next iteration when the number of replicas is 72, 10% of the pods is 7.2 but the
    # number is rounded up to 8" -> 64
    down = ScalingRules(0, (ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60)))
    hpa = HpaState(1, 100, Behavior(scale_down=down))
    assert hpa.reconcile(0, 80, 10) == 72
    assert hpa.reconcile(15, 72, 10) == 72  # still inside the 60 s period
    assert hpa.reconcile(61, 72, 10) == 64
    # with 40 or fewer replicas the Pods policy (4) allows more than 10 %
    hpa2 = HpaState(1, 100, Behavior(scale_down=down))
    assert hpa2.reconcile(0, 30, 10) == 26


def test_default_scale_up_is_max_of_100_percent_and_4_pods():
    # an HPA with spec.behavior set (the API server defaults the rest); with no behavior at all
    # the older max(2 x current, 4) cap applies (tests/test_sim_upstream_hpa.py)
    hpa = HpaState(1, 100, Behavior())
    assert hpa.reconcile(0, 1, 10) == 5  # max(1*2, 1+4)
    assert hpa.reconcile(15, 5, 20) == 10  # a new period: max(5*2, 5+4)
    assert hpa.reconcile(16, 10, 40) == 10  # still in that period (started at 5): max(10, 9)
    assert default_scale_up().policies[0].type == "Percent"


def test_default_scale_down_stabilization_window():
    hpa = HpaState(1, 10)
    assert hpa.reconcile(0, 5, 5) == 5
    assert hpa.reconcile(15, 5, 1) == 5  # the 300 s window still holds the 5
    assert hpa.reconcile(299, 5, 1) == 5
    assert hpa.reconcile(301, 5, 1) == 1  # the 5 recorded at t=0 has left the window


def test_min_max_and_disabled_select_policy():
    hpa = HpaState(2, 4)
    assert hpa.reconcile(0, 3, 40) == 4
    assert hpa.reconcile(0, 0, 40) == 0  # at 0 the HPA is disabled (KEDA owns 0 <-> 1)
    frozen = HpaState(
        1, 10, Behavior(scale_down=ScalingRules(0, (ScalingPolicy("Pods", 1, 60),), "Disabled"))
    )
    assert frozen.reconcile(0, 5, 1) == 5
