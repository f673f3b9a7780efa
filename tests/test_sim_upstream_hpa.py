"""kubernetes' own HPA table tests, ported row by row onto kubectl_gpuscale.sim.hpa.

Sources (kubernetes/kubernetes, pkg/controller/podautoscaler):
- replica_calculator_test.go: TestReplicaCalcResourceScale, TestReplicaCalcTolerance*,
  TestReplicaCalcConfigurableTolerance*, TestReplicaCalcMissingMetrics*, TestReplicaCalcScale*CM*,
  TestReplicaCalcSuperfluousMetrics, TestReplicaCalcDuringRollingUpdateWithMaxSurge*;
- horizontal_test.go: TestConvertDesiredReplicasWithRules, TestNormalizeDesiredReplicas,
  TestScalingWithRules, TestNormalizeDesiredReplicasWithBehavior,
  TestCalculateScaleUpLimitWithScalingRules, TestCalculateScaleDownLimitWithBehaviors, and the
  whole-controller cases TestScaleDownStabilizeInitialSize, TestStabilizeDownscale,
  TestScaleUpRCImmediately, TestScaleDownRCImmediately.
Each case's id is `<upstream test>/<row name>` and its expected value is upstream's. Upstream's
`Tolerances{scaleDown, scaleUp}` literal order is kept in the rows (down first). horizontal_test.go
sets `scaleUpLimitFactor = 8` in its init(); the rows that depend on it pass that factor.
"""

from __future__ import annotations

import pytest

from kubectl_gpuscale.sim.hpa import (
    Behavior,
    HpaState,
    PodSample,
    ScalingPolicy,
    ScalingRules,
    Tolerances,
    convert_desired_replicas_with_rules,
    convert_with_behavior_rate,
    default_scale_down,
    default_scale_up,
    external_replicas,
    external_value_replicas,
    plain_metric_replicas_from_pods,
    resource_replicas,
    resource_replicas_from_pods,
    scale_down_limit,
    scale_up_limit,
    stabilize_recommendation,
    stabilize_with_behaviors,
    tolerances_for,
)

TEST_SCALE_UP_LIMIT_FACTOR = 8.0  # horizontal_test.go init()
DEFAULT_TOL = 0.1  # defaultTestingTolerance


def cpu_pods(requests_m, levels, ready=None, phase=None, deleted=None, hot=None, per_container=2):
    """PodSamples as replica_calculator_test.go's fixtures build them (groupPods' classification).

    `requests_m`: each container's CPU request (m); `levels`: each pod's per-container usage
    (makePodMetricLevels), shorter than the pods for pods with no metric.
    """
    out = []
    for i, req in enumerate(requests_m):
        if (deleted and deleted[i]) or (phase and phase[i] == "Failed"):
            out.append(PodSample(req * per_container, None, "ignored"))
        elif phase and phase[i] == "Pending":
            out.append(PodSample(req * per_container, None, "unready"))
        elif i >= len(levels):
            out.append(PodSample(req * per_container, None, "missing"))
        elif (ready and ready[i] is False) or (hot and hot[i]):
            out.append(PodSample(req * per_container, levels[i] * per_container, "unready"))
        else:
            out.append(PodSample(req * per_container, levels[i] * per_container, "ready"))
    return out


# (row id, current, pods, target utilization, tolerances (down, up) or None, expected replicas)
RESOURCE_ROWS = [
    ("TestReplicaCalcResourceScale/scale up", 3, cpu_pods([1000] * 3, [300, 500, 700]), 30, None, 5),
    (
        "TestReplicaCalcResourceScale/scale up: container metric",
        3,
        cpu_pods([1000] * 3, [300, 500, 700], per_container=1),
        30,
        None,
        5,
    ),
    (
        "TestReplicaCalcResourceScale/scale up: unready pod scales less",
        3,
        cpu_pods([1000] * 3, [300, 500, 700], ready=[False, True, True]),
        30,
        None,
        4,
    ),
    (
        "TestReplicaCalcResourceScale/scale up: hot-CPU pod scales less",
        3,
        cpu_pods([1000] * 3, [300, 500, 700], hot=[True, False, False]),
        30,
        None,
        4,
    ),
    (
        "TestReplicaCalcResourceScale/no scale: unready pods ignored",
        3,
        cpu_pods([1000] * 3, [400, 500, 700], ready=[True, False, False]),
        30,
        None,
        3,
    ),
    (
        "TestReplicaCalcResourceScale/no scale: hot-CPU pods ignored",
        3,
        cpu_pods([1000] * 3, [400, 500, 700], ready=[True, False, False], hot=[False, True, True]),
        30,
        None,
        3,
    ),
    (
        "TestReplicaCalcResourceScale/scale up: failed pods ignored",
        2,
        cpu_pods(
            [1000] * 4,
            [500, 700],
            ready=[True, True, False, False],
            phase=["Running", "Running", "Failed", "Failed"],
        ),
        30,
        None,
        4,
    ),
    (
        "TestReplicaCalcResourceScale/scale up: pods being deleted are ignored",
        2,
        cpu_pods(
            [1000] * 4, [500, 700], ready=[True, True, False, False], deleted=[False, False, True, True]
        ),
        30,
        None,
        4,
    ),
    (
        "TestReplicaCalcResourceScale/scale down",
        5,
        cpu_pods([1000] * 5, [100, 300, 500, 250, 250]),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: container metric",
        5,
        cpu_pods([1000] * 5, [100, 300, 500, 250, 250], per_container=1),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: exclude unready pods",
        5,
        cpu_pods([1000] * 5, [100, 300, 500, 250, 250], ready=[True, True, True, False, False]),
        50,
        None,
        2,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: exclude unscheduled pods",
        5,
        cpu_pods(
            [1000] * 5,
            [100],
            ready=[True, False, False, False, False],
            phase=["Running", "Pending", "Pending", "Pending", "Pending"],
        ),
        50,
        None,
        1,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: ignore hot-CPU pods",
        5,
        cpu_pods([1000] * 5, [100, 300, 500, 250, 250], hot=[False, False, False, True, True]),
        50,
        None,
        2,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: failed pods ignored",
        5,
        cpu_pods(
            [1000] * 7,
            [100, 300, 500, 250, 250],
            ready=[True] * 5 + [False] * 2,
            phase=["Running"] * 5 + ["Failed"] * 2,
        ),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcResourceScale/scale down: pods being deleted are ignored",
        5,
        cpu_pods(
            [1000] * 7,
            [100, 300, 500, 250, 250],
            ready=[True] * 5 + [False] * 2,
            deleted=[False] * 5 + [True] * 2,
        ),
        50,
        None,
        3,
    ),
    ("TestReplicaCalcTolerance", 3, cpu_pods([900, 1000, 1100], [1010, 1030, 1020]), 100, None, 3),
    (
        "TestReplicaCalcConfigurableTolerance/Outside of a 0% tolerance",
        3,
        cpu_pods([900, 1000, 1100], [909, 1010, 1111]),
        100,
        (0.0, 0.0),
        4,
    ),
    (
        "TestReplicaCalcConfigurableTolerance/Within a 200% scale-up tolerance",
        3,
        cpu_pods([900, 1000, 1100], [1890, 1910, 1900]),
        100,
        (DEFAULT_TOL, 2.0),
        3,
    ),
    (
        "TestReplicaCalcConfigurableTolerance/Outside 8% scale-up tolerance (and superfuous scale-down tolerance)",
        3,
        cpu_pods([900, 1000, 1100], [1100, 1080, 1090]),
        100,
        (2.0, 0.08),
        4,
    ),
    (
        "TestReplicaCalcConfigurableTolerance/Within a 36% scale-down tolerance",
        3,
        cpu_pods([900, 1000, 1100], [660, 640, 650]),
        100,
        (0.36, DEFAULT_TOL),
        3,
    ),
    (
        "TestReplicaCalcConfigurableTolerance/Outside a 34% scale-down tolerance",
        3,
        cpu_pods([900, 1000, 1100], [660, 640, 650]),
        100,
        (0.34, DEFAULT_TOL),
        2,
    ),
    ("TestReplicaCalcSuperfluousMetrics", 4, cpu_pods([1000] * 4, [4000, 9500, 3000, 7000]), 100, None, 24),
    ("TestReplicaCalcMissingMetrics", 4, cpu_pods([1000] * 4, [400, 95]), 100, None, 3),
    ("TestReplicaCalcMissingMetricsNoChangeEq", 2, cpu_pods([1000] * 2, [1000]), 100, None, 2),
    ("TestReplicaCalcMissingMetricsNoChangeGt", 2, cpu_pods([1000] * 2, [1900]), 100, None, 2),
    ("TestReplicaCalcMissingMetricsNoChangeLt", 2, cpu_pods([1000] * 2, [600]), 100, None, 2),
    (
        "TestReplicaCalcMissingMetricsUnreadyChange",
        3,
        cpu_pods([1000] * 3, [100, 450], ready=[False, True, True]),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcMissingMetricsHotCpuNoChange",
        3,
        cpu_pods([1000] * 3, [100, 450], hot=[True, False, False]),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcMissingMetricsUnreadyScaleUp",
        3,
        cpu_pods([1000] * 3, [100, 2000], ready=[False, True, True]),
        50,
        None,
        4,
    ),
    (
        "TestReplicaCalcMissingMetricsHotCpuScaleUp",
        3,
        cpu_pods([1000] * 3, [100, 2000], ready=[False, True, True], hot=[True, False, False]),
        50,
        None,
        4,
    ),
    (
        "TestReplicaCalcMissingMetricsUnreadyScaleDown",
        4,
        cpu_pods([1000] * 4, [100, 100, 100], ready=[False, True, True, True]),
        50,
        None,
        3,
    ),
    (
        "TestReplicaCalcMissingMetricsScaleDownTargetOver100",
        4,
        cpu_pods([1000, 1000, 2000, 2000], [200, 100, 100], ready=[False, True, True, True]),
        300,
        None,
        2,
    ),
    ("TestReplicaCalcDuringRollingUpdateWithMaxSurge", 2, cpu_pods([1000] * 3, [100, 100]), 50, None, 2),
]


@pytest.mark.parametrize(
    ("current", "pods", "target", "tol", "expected"),
    [r[1:] for r in RESOURCE_ROWS],
    ids=[r[0] for r in RESOURCE_ROWS],
)
def test_replica_calculator_resource_rows(current, pods, target, tol, expected):
    """replica_calculator.go GetResourceReplicas: integer utilization, isWithin, unready and missing pods."""
    tolerances = Tolerances(up=tol[1], down=tol[0]) if tol else Tolerances()
    assert resource_replicas_from_pods(current, pods, target, tolerances) == expected


def test_replica_calculator_empty_metrics_is_an_error():
    """TestReplicaCalcEmptyMetrics: no pod has a metric -> an error (the HPA changes nothing)."""
    assert resource_replicas_from_pods(4, cpu_pods([1000] * 3, []), 100) is None
    assert HpaState(1, 10, None).reconcile(0, 4, None) == 4


def pods_metric(levels, n=None):
    n = len(levels) if n is None else n
    return [
        PodSample(0, levels[i], "ready") if i < len(levels) else PodSample(0, None, "missing")
        for i in range(n)
    ]


# (row id, current, pod levels (m), pods, target (m), tolerances (down, up) or None, expected)
PODS_METRIC_ROWS = [
    ("TestReplicaCalcScaleDownCM", 5, [12000] * 5, 5, 20000, None, 3),
    ("TestReplicaCalcToleranceCM", 3, [20000, 21000, 21000], 3, 20000, None, 3),
    ("TestReplicaCalcConfigurableToleranceCM", 3, [20000, 21000, 21000], 3, 20000, (DEFAULT_TOL, 0.01), 4),
    ("TestPlainMetricReplicaCalcMissingMetricsNoChangeEq", 5, [20000, 19000, 21000], 5, 20000, None, 5),
    ("TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM", 2, [10000, 10000], 3, 17000, None, 2),
]


@pytest.mark.parametrize(
    ("current", "levels", "n", "target", "tol", "expected"),
    [r[1:] for r in PODS_METRIC_ROWS],
    ids=[r[0] for r in PODS_METRIC_ROWS],
)
def test_replica_calculator_pods_metric_rows(current, levels, n, target, tol, expected):
    """replica_calculator.go calcPlainMetricReplicas (a Pods metric, AverageValue target)."""
    tolerances = Tolerances(up=tol[1], down=tol[0]) if tol else Tolerances()
    assert plain_metric_replicas_from_pods(current, pods_metric(levels, n), target, tolerances) == expected


# (row id, status replicas, metric total (m), per-pod target (m), tolerances (down, up) or None, expected)
EXTERNAL_PER_POD_ROWS = [
    ("TestReplicaCalcScaleUpPerPodCMExternal", 3, 8600, 2150, None, 4),
    ("TestReplicaCalcScaleDownPerPodCMExternal", 5, 8600, 2867, None, 3),
    ("TestReplicaCalcTolerancePerPodCMExternal", 3, 8600, 2900, None, 3),
    ("TestReplicaCalcConfigurableTolerancePerPodCMExternal", 3, 8600, 2800, (DEFAULT_TOL, 0.01), 4),
]


@pytest.mark.parametrize(
    ("status", "total", "target", "tol", "expected"),
    [r[1:] for r in EXTERNAL_PER_POD_ROWS],
    ids=[r[0] for r in EXTERNAL_PER_POD_ROWS],
)
def test_replica_calculator_external_per_pod_rows(status, total, target, tol, expected):
    """GetExternalPerPodMetricReplicas: the AverageValue target KEDA's triggers use."""
    tolerances = Tolerances(up=tol[1], down=tol[0]) if tol else Tolerances()
    assert external_replicas(status, total, target, tolerances) == expected


# (row id, current, ready pods, metric total (m), target (m), tolerances (down, up) or None, expected)
EXTERNAL_VALUE_ROWS = [
    ("TestReplicaCalcScaleDownCMExternal", 5, 5, 8600, 14334, None, 3),
    ("TestReplicaCalcToleranceCMExternal", 3, 3, 8600, 8888, None, 3),
    ("TestReplicaCalcConfigurableToleranceCMExternal", 3, 3, 8900, 8800, (DEFAULT_TOL, 0.01), 4),
]


@pytest.mark.parametrize(
    ("current", "ready", "total", "target", "tol", "expected"),
    [r[1:] for r in EXTERNAL_VALUE_ROWS],
    ids=[r[0] for r in EXTERNAL_VALUE_ROWS],
)
def test_replica_calculator_external_value_rows(current, ready, total, target, tol, expected):
    """GetExternalMetricReplicas -> getUsageRatioReplicaCount (a Value target)."""
    tolerances = Tolerances(up=tol[1], down=tol[0]) if tol else Tolerances()
    assert external_value_replicas(current, ready, total, target, tolerances) == expected


def test_tolerance_bounds_by_kubernetes_version():
    """replica_calculator.go Tolerances.isWithin (1.33+) vs the older `math.Abs(1.0-usageRatio) <= tolerance`:
    a utilization of exactly 110 % of the target stays put from 1.33 on and scales before it."""
    pods = cpu_pods([1000] * 10, [1100] * 10)
    assert resource_replicas_from_pods(10, pods, 100, tolerances_for((1, 33))) == 10
    assert resource_replicas_from_pods(10, pods, 100, tolerances_for((1, 32))) == 11
    # per-HPA behavior tolerances count only where HPAConfigurableTolerance is on by default (beta, 1.35)
    assert tolerances_for((1, 35), up=0.05).up == 0.05
    assert tolerances_for((1, 34), up=0.05).up == 0.1
    # the aggregate form the simulator's controllers use gives the same answers
    assert resource_replicas(10, 10, 0, 110.0, 100, tolerances_for((1, 33))) == 10
    assert resource_replicas(10, 10, 0, 110.0, 100, tolerances_for((1, 32))) == 11


def test_missing_pods_count_fully_loaded_on_scale_down_in_the_aggregate_form():
    """GetResourceReplicas: 2 ready pods at 24 % of a 100 % target and 2 pods with no metric give 3, not 1."""
    assert resource_replicas(4, 2, 0, 24.75, 100, missing=2) == 3
    assert resource_replicas(4, 2, 0, 24.75, 100) == 1


# TestConvertDesiredReplicasWithRules: (annotation, current, desired, min, max, expected, condition)
CONVERT_ROWS = [
    ("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    ("prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0, "DesiredWithinRange"),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 24, "ScaleUpLimit"),
]


@pytest.mark.parametrize(
    ("current", "desired", "lo", "hi", "expected", "condition"),
    [r[1:] for r in CONVERT_ROWS],
    ids=[f"TestConvertDesiredReplicasWithRules/{r[0]}" for r in CONVERT_ROWS],
)
def test_convert_desired_replicas_with_rules(current, desired, lo, hi, expected, condition):
    """horizontal.go convertDesiredReplicasWithRules (expected = calculateScaleUpLimit(3) with the test's factor 8)."""
    got = convert_desired_replicas_with_rules(current, desired, lo, hi, TEST_SCALE_UP_LIMIT_FACTOR)
    assert got == (expected, condition)


def test_no_behavior_scale_up_cap_with_the_real_factor():
    """horizontal.go scaleUpLimitFactor 2 / scaleUpLimitMinimum 4 (outside the tests' init): from 1, 2, 3
    replicas an HPA without spec.behavior may go to 4, 4, 6 in one sync (a defaulted behavior allows 5, 6, 7)."""
    assert [convert_desired_replicas_with_rules(c, 100, 1, 100)[0] for c in (1, 2, 3)] == [4, 4, 6]
    assert [HpaState(1, 100, None).reconcile(0, c, 100) for c in (1, 2, 3)] == [4, 4, 6]
    assert [HpaState(1, 100, Behavior()).reconcile(0, c, 100) for c in (1, 2, 3)] == [5, 6, 7]


NOW = 10_000.0

# TestNormalizeDesiredReplicas: (name, recommendations (value, seconds ago), prenormalized, expected, log length)
NORMALIZE_ROWS = [
    ("empty log", [], 5, 5, 1),
    ("stabilize", [(4, 120), (5, 60)], 3, 5, 3),
    ("no stabilize", [(1, 120), (2, 60)], 3, 3, 3),
    ("no stabilize - old recommendations", [(10, 600), (9, 540)], 3, 3, 2),
    ("stabilize - old recommendations", [(10, 600), (4, 60), (5, 120), (9, 540)], 3, 5, 4),
]


@pytest.mark.parametrize(
    ("recs", "desired", "expected", "length"),
    [r[1:] for r in NORMALIZE_ROWS],
    ids=[f"TestNormalizeDesiredReplicas/{r[0]}" for r in NORMALIZE_ROWS],
)
def test_normalize_desired_replicas(recs, desired, expected, length):
    """horizontal.go stabilizeRecommendation (no spec.behavior): the highest recommendation over 5 minutes."""
    log = [(NOW - ago, value) for value, ago in recs]
    assert stabilize_recommendation(log, NOW, desired, 300) == expected
    assert len(log) == length


def uniform_events(raw, period):
    """generateEventsUniformDistribution: events centred in equal segments of the last `period` seconds."""
    seg = period / len(raw)
    return [(NOW - int(period - seg * (i + 1) + seg / 2), change) for i, change in enumerate(raw)]


def scaling_rules(pods, pods_period, percent, percent_period, window):
    """generateScalingRules."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, tuple(policies), "Max")


# TestScalingWithRules: (name, up events, down events, min, max, up rules, down rules, current, desired,
#                        expected, condition)
SCALING_ROWS = [
    (
        "prenormalized desired replicas within range",
        None,
        None,
        3,
        8,
        None,
        None,
        5,
        7,
        7,
        "DesiredWithinRange",
    ),
    ("prenormalized desired replicas < minReplicas", None, None, 2, 8, None, None, 3, 1, 2, "TooFewReplicas"),
    (
        "prenormalized desired replicas within range when minReplicas is 0",
        None,
        None,
        0,
        10,
        None,
        None,
        1,
        0,
        0,
        "DesiredWithinRange",
    ),
    (
        "maxReplicas is the limit because maxReplicas < scaleUpLimit",
        None,
        None,
        1,
        10,
        None,
        None,
        20,
        1000,
        10,
        "TooManyReplicas",
    ),
    (
        "desired replica count is more than the maximum replica count",
        None,
        None,
        100,
        150,
        None,
        None,
        100,
        1000,
        150,
        "TooManyReplicas",
    ),
    (
        "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
        None,
        None,
        1,
        2000,
        scaling_rules(0, 0, 1, 60, 0),
        None,
        3,
        1000,
        4,
        "ScaleUpLimit",
    ),
    (
        "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies",
        None,
        None,
        3,
        2000,
        None,
        scaling_rules(20, 60, 0, 0, 0),
        1000,
        3,
        980,
        "ScaleDownLimit",
    ),
    ("scaleUp with default behavior", None, None, 1, 1000, None, None, 10, 50, 20, "ScaleUpLimit"),
    (
        "scaleUp with pods policy larger than percent policy",
        None,
        None,
        1,
        1000,
        scaling_rules(100, 60, 100, 60, 0),
        None,
        10,
        500,
        110,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy larger than pods policy",
        None,
        None,
        1,
        1000,
        scaling_rules(2, 60, 100, 60, 0),
        None,
        10,
        500,
        20,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large pod policy",
        None,
        None,
        1,
        1000,
        scaling_rules(100, 60, 0, 0, 0),
        None,
        10,
        50,
        50,
        "DesiredWithinRange",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large percent policy",
        None,
        None,
        1,
        1000,
        scaling_rules(10000, 60, 0, 0, 0),
        None,
        10,
        50,
        50,
        "DesiredWithinRange",
    ),
    (
        "scaleUp with pod policy limitation",
        None,
        None,
        1,
        1000,
        scaling_rules(30, 60, 0, 0, 0),
        None,
        10,
        50,
        40,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy limitation",
        None,
        None,
        1,
        1000,
        scaling_rules(0, 0, 200, 60, 0),
        None,
        10,
        50,
        30,
        "ScaleUpLimit",
    ),
    (
        "scaleDown with percent policy larger than pod policy",
        None,
        None,
        1,
        1000,
        None,
        scaling_rules(20, 60, 1, 60, 300),
        100,
        2,
        80,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with pod policy larger than percent policy",
        None,
        None,
        1,
        1000,
        None,
        scaling_rules(2, 60, 1, 60, 300),
        100,
        2,
        98,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with spec MinReplicas=nil limitation with large pod policy",
        None,
        None,
        1,
        1000,
        None,
        scaling_rules(100, 60, 0, 0, 300),
        10,
        0,
        1,
        "TooFewReplicas",
    ),
    (
        "scaleDown with spec MinReplicas limitation with large percent policy",
        None,
        None,
        5,
        1000,
        None,
        scaling_rules(0, 0, 100, 60, 300),
        10,
        2,
        5,
        "TooFewReplicas",
    ),
    (
        "scaleDown with pod policy limitation",
        None,
        None,
        1,
        1000,
        None,
        scaling_rules(5, 60, 0, 0, 300),
        10,
        2,
        5,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy limitation",
        None,
        None,
        1,
        1000,
        None,
        scaling_rules(0, 0, 50, 60, 300),
        10,
        5,
        5,
        "DesiredWithinRange",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large pod policy and events",
        ([1, 5, 9], 120),
        None,
        1,
        200,
        scaling_rules(300, 60, 0, 0, 0),
        None,
        100,
        500,
        200,
        "TooManyReplicas",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large percent policy and events",
        ([1, 5, 9], 120),
        None,
        1,
        200,
        scaling_rules(0, 0, 10000, 60, 0),
        None,
        100,
        500,
        200,
        "TooManyReplicas",
    ),
    (
        "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events",
        ([1, 5, 9], 120),
        None,
        1,
        1000,
        scaling_rules(5, 120, 0, 0, 0),
        None,
        100,
        500,
        100,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with pod policy and previous scale up events",
        ([1, 5, 9], 120),
        None,
        1,
        1000,
        scaling_rules(150, 120, 0, 0, 0),
        None,
        100,
        500,
        235,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy and previous scale up events",
        ([1, 5, 9], 120),
        None,
        1,
        1000,
        scaling_rules(0, 0, 200, 120, 0),
        None,
        100,
        500,
        255,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy and previous scale up and down events",
        ([4], 120),
        ([2], 120),
        1,
        1000,
        scaling_rules(0, 0, 300, 300, 0),
        None,
        6,
        24,
        16,
        "ScaleUpLimit",
    ),
    (
        "scaleDown with default policy and previous events",
        None,
        ([1, 5, 9], 120),
        1,
        1000,
        None,
        None,
        10,
        5,
        5,
        "DesiredWithinRange",
    ),
    (
        "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
        None,
        ([1, 5, 9], 120),
        1,
        1000,
        None,
        scaling_rules(115, 120, 0, 0, 300),
        100,
        0,
        1,
        "TooFewReplicas",
    ),
    (
        "scaleDown with spec MinReplicas limitation with large pod policy and previous events",
        None,
        ([1, 5, 9], 120),
        5,
        1000,
        None,
        scaling_rules(130, 120, 0, 0, 300),
        100,
        0,
        5,
        "TooFewReplicas",
    ),
    (
        "scaleDown with spec MinReplicas limitation with large percent policy and previous events",
        None,
        ([1, 5, 9], 120),
        5,
        1000,
        None,
        scaling_rules(0, 0, 100, 120, 300),
        100,
        2,
        5,
        "TooFewReplicas",
    ),
    (
        "scaleDown with pod policy limitation and previous events",
        None,
        ([1, 5, 9], 120),
        1,
        1000,
        None,
        scaling_rules(5, 120, 0, 0, 300),
        100,
        2,
        100,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy limitation and previous events",
        None,
        ([2, 4, 6], 120),
        1,
        1000,
        None,
        scaling_rules(0, 0, 50, 120, 300),
        100,
        0,
        56,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy and previous scale up and down events",
        ([2], 120),
        ([4], 120),
        1,
        1000,
        None,
        scaling_rules(0, 0, 50, 180, 0),
        10,
        1,
        6,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with previous events preventing further scale down",
        None,
        ([10, 10, 10], 120),
        1,
        1000,
        None,
        scaling_rules(0, 0, 10, 120, 300),
        100,
        0,
        100,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with with previous events still allowing more scale down",
        None,
        ([10, 10, 10], 120),
        1,
        1000,
        None,
        scaling_rules(0, 0, 1000, 120, 300),
        10,
        5,
        5,
        "DesiredWithinRange",
    ),
    (
        "check 'outdated' flag for events for one behavior for up",
        ([8, 12, 9, 11], 120),
        None,
        1,
        1000,
        scaling_rules(1000, 60, 0, 0, 0),
        None,
        100,
        200,
        200,
        "DesiredWithinRange",
    ),
    (
        "check that events were not marked 'outdated' for two different policies in the behavior for up",
        ([8, 12, 9, 11], 120),
        None,
        1,
        1000,
        scaling_rules(1000, 120, 100, 60, 0),
        None,
        100,
        200,
        200,
        "DesiredWithinRange",
    ),
    (
        "check that events were marked 'outdated' for two different policies in the behavior for up",
        ([8, 12, 9, 11], 120),
        None,
        1,
        1000,
        scaling_rules(1000, 30, 100, 60, 0),
        None,
        100,
        200,
        200,
        "DesiredWithinRange",
    ),
    (
        "check 'outdated' flag for events for one behavior for down",
        None,
        ([8, 12, 9, 11], 120),
        1,
        1000,
        None,
        scaling_rules(1000, 60, 0, 0, 300),
        100,
        5,
        5,
        "DesiredWithinRange",
    ),
    (
        "check that events were not marked 'outdated' for two different policies in the behavior for down",
        None,
        ([8, 12, 9, 11], 120),
        1,
        1000,
        None,
        scaling_rules(1000, 120, 100, 60, 300),
        100,
        5,
        5,
        "DesiredWithinRange",
    ),
    (
        "check that events were marked 'outdated' for two different policies in the behavior for down",
        None,
        ([8, 12, 9, 11], 120),
        1,
        1000,
        None,
        scaling_rules(1000, 30, 100, 60, 300),
        100,
        5,
        5,
        "DesiredWithinRange",
    ),
]


@pytest.mark.parametrize(
    ("up", "down", "lo", "hi", "up_rules", "down_rules", "current", "desired", "expected", "condition"),
    [r[1:] for r in SCALING_ROWS],
    ids=[f"TestScalingWithRules/{r[0]}" for r in SCALING_ROWS],
)
def test_scaling_with_rules(up, down, lo, hi, up_rules, down_rules, current, desired, expected, condition):
    """horizontal.go convertDesiredReplicasWithBehaviorRate with GenerateHPAScaleUp/DownRules' defaults."""
    behavior = Behavior(up_rules or default_scale_up(), down_rules or default_scale_down())
    up_events = uniform_events(*up) if up else []
    down_events = uniform_events(*down) if down else []
    got = convert_with_behavior_rate(current, desired, lo, hi, behavior, up_events, down_events, NOW)
    assert got == (expected, condition)


# TestNormalizeDesiredReplicasWithBehavior: (name, recommendations (value, seconds ago), current, prenormalized,
#                                            expected, expected stored values or None, up window, down window)
BEHAVIOR_ROWS = [
    ("empty recommendations for scaling down", [], 100, 5, 5, [5], 0, 0),
    ("simple scale down stabilization", [(4, 120), (5, 60)], 100, 3, 5, [4, 5, 3], 0, 180),
    ("simple scale up stabilization", [(4, 120), (5, 60)], 1, 7, 4, [4, 5, 7], 300, 0),
    ("no scale down stabilization", [(1, 120), (2, 60)], 100, 3, 3, [1, 2, 3], 300, 0),
    ("no scale up stabilization", [(4, 120), (5, 60)], 1, 3, 3, [4, 5, 3], 0, 300),
    (
        "no scale down stabilization, reuse recommendation element",
        [(10, 600), (9, 540)],
        100,
        3,
        3,
        [10, 3],
        0,
        0,
    ),
    (
        "no scale up stabilization, reuse recommendation element",
        [(10, 600), (9, 540)],
        1,
        100,
        100,
        [10, 100],
        0,
        0,
    ),
    (
        "scale down stabilization, reuse one of obsolete recommendation element",
        [(10, 600), (4, 60), (5, 120), (9, 540)],
        100,
        3,
        5,
        [10, 4, 5, 3],
        0,
        180,
    ),
    (
        "scale up stabilization, reuse one of obsolete recommendation element",
        [(10, 6000), (6, 60), (5, 120), (9, 180)],
        1,
        100,
        5,
        [100, 6, 5, 9],
        300,
        0,
    ),
    (
        "scale up and down stabilization, do not scale up when prenormalized rec goes down",
        [(2, 6000), (3, 180)],
        2,
        1,
        2,
        None,
        300,
        300,
    ),
    (
        "scale up and down stabilization, do not scale down when prenormalized rec goes up",
        [(2, 6000), (1, 180)],
        2,
        3,
        2,
        None,
        300,
        300,
    ),
]


@pytest.mark.parametrize(
    ("recs", "current", "desired", "expected", "stored", "up_window", "down_window"),
    [r[1:] for r in BEHAVIOR_ROWS],
    ids=[f"TestNormalizeDesiredReplicasWithBehavior/{r[0]}" for r in BEHAVIOR_ROWS],
)
def test_stabilize_with_behaviors(recs, current, desired, expected, stored, up_window, down_window):
    """horizontal.go stabilizeRecommendationWithBehaviors, including which stored slot it reuses."""
    log = [(NOW - ago, value) for value, ago in recs]
    assert stabilize_with_behaviors(log, NOW, current, desired, up_window, down_window) == expected
    if stored is not None:
        assert [value for _, value in log] == stored


def test_calculate_limits_with_min_select_policy():
    """TestCalculateScaleUpLimitWithScalingRules (2) and TestCalculateScaleDownLimitWithBehaviors (3)."""
    rules = ScalingRules(300, (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60)), "Min")
    assert scale_up_limit(1, [], [], rules, NOW) == 2
    assert scale_down_limit(5, [], [], rules, NOW) == 3


def controller_case(min_replicas, max_replicas, spec, pods, target, recommendations):
    """horizontal_test.go testCase: one reconcile of an HPA without spec.behavior (scaleUpLimitFactor 8)."""
    hpa = HpaState(min_replicas, max_replicas, None, scale_up_limit_factor=TEST_SCALE_UP_LIMIT_FACTOR)
    if recommendations is not None:  # a non-nil log: recordInitialRecommendation adds nothing
        hpa.seen = True
        hpa.recommendations = [(NOW - ago, value) for value, ago in recommendations]
    desired = resource_replicas_from_pods(spec, pods, target) if pods else spec
    return hpa.reconcile(NOW, spec, desired)


def test_scale_down_stabilize_initial_size():
    """TestScaleDownStabilizeInitialSize: recommendations nil -> recordInitialRecommendation records the 5
    current replicas, so a metric asking for 3 is held at 5."""
    pods = [PodSample(1000, u) for u in (100, 300, 500, 250, 250)]
    assert controller_case(2, 6, 5, pods, 50, None) == 5
    # the same case with an existing (empty) log: nothing holds the scale-down to 3
    assert controller_case(2, 6, 5, pods, 50, []) == 3


def test_stabilize_downscale():
    """TestStabilizeDownscale: a 4 recorded a minute ago holds a scale-down to 2; the 10 from 10 minutes ago has expired."""
    pods = [PodSample(100, 50)] * 3
    assert controller_case(1, 5, 4, pods, 100, [(10, 600), (4, 60)]) == 4


def test_scale_rc_immediately_to_min_and_max():
    """TestScaleUpRCImmediately (1 below min 2 -> 2) and TestScaleDownRCImmediately (6 above max 5 -> 5)."""
    assert controller_case(2, 6, 1, [PodSample(1000, 0)] * 4, 50, None) == 2
    pods = [PodSample(900, 8000), PodSample(1000, 9500), PodSample(1100, 1000)]
    assert controller_case(2, 5, 6, pods, 50, None) == 5
