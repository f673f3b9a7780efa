"""Controller defaults the simulator models, each stated once with its upstream source.

One place per fact: the KEDA and HPA defaults that kubectl_gpuscale.autoscale already states
are imported from there; the rest (the HPA's policies, Knative's config-autoscaler) live here.
"""

from __future__ import annotations

from kubectl_gpuscale.autoscale.builders import (
    KEDA_DEFAULT_COOLDOWN,
    KEDA_DEFAULT_POLLING,
    KNATIVE_PROGRESS_DEADLINE,
)
from kubectl_gpuscale.autoscale.hpa import HPA_DEFAULT_SCALE_DOWN_WINDOW

# Kubernetes HPA (kube-controller-manager flags and autoscaling/v2 defaulting, pkg/apis/autoscaling/v2/defaults.go)
HPA_SYNC_PERIOD_S = 15  # --horizontal-pod-autoscaler-sync-period
HPA_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
HPA_SCALE_UP_STABILIZATION_S = 0
HPA_SCALE_DOWN_STABILIZATION_S = (
    HPA_DEFAULT_SCALE_DOWN_WINDOW  # --horizontal-pod-autoscaler-downscale-stabilization
)
HPA_SCALE_UP_POLICIES = (("Percent", 100, 15), ("Pods", 4, 15))
HPA_SCALE_DOWN_POLICIES = (("Percent", 100, 15),)
HPA_SELECT_POLICY = "Max"
# horizontal.go: the per-sync scale-up cap of an HPA without spec.behavior, max(factor x current, minimum)
HPA_SCALE_UP_LIMIT_FACTOR = 2.0  # scaleUpLimitFactor
HPA_SCALE_UP_LIMIT_MINIMUM = 4.0  # scaleUpLimitMinimum
# Versions (plain parameters until the versioned facts package supplies them)
KUBERNETES_VERSION = (1, 35)
HPA_INCLUSIVE_TOLERANCE_SINCE = (1, 33)  # replica_calculator.go Tolerances.isWithin
HPA_CONFIGURABLE_TOLERANCE_SINCE = (1, 35)  # pkg/features/kube_features.go HPAConfigurableTolerance beta, on

# KEDA ScaledObject (kedacore/keda withtriggers_types.go, scale_executor.go, scaledobject_types.go)
KEDA_POLLING_INTERVAL_S = KEDA_DEFAULT_POLLING
KEDA_COOLDOWN_PERIOD_S = KEDA_DEFAULT_COOLDOWN
KEDA_MIN_REPLICAS = 0
KEDA_MAX_REPLICAS = 100
KEDA_ACTIVATION_THRESHOLD = 0.0  # active when value > activationThreshold (strictly)
KEDA_INITIAL_COOLDOWN_PERIOD_S = 0  # initialCooldownPeriod
KEDA_FALLBACK_FAILURE_THRESHOLD = 3  # fallback.failureThreshold (the guide's; the CRD requires it)
KEDA_VERSION = (2, 20)  # plain parameter until the versioned facts package supplies it
KEDA_NO_FALLBACK_SCALING_SINCE = (2, 17)  # #6520: RequestScale no longer calls doFallbackScaling
KEDA_FALLBACK_BEHAVIOR_SINCE = (2, 17)  # #6464: spec.fallback.behavior

# Knative Serving config-autoscaler (knative/serving pkg/autoscaler/config/config.go defaultConfig())
KNATIVE_TICK_S = 2  # the KPA's decider tick
KNATIVE_CONTAINER_CONCURRENCY_TARGET = 100.0
KNATIVE_RPS_TARGET_DEFAULT = 200  # requests-per-second-target-default
KNATIVE_TARGET_UTILIZATION = 0.70
KNATIVE_STABLE_WINDOW_S = 60
KNATIVE_PANIC_WINDOW_PERCENTAGE = 10.0
KNATIVE_PANIC_THRESHOLD_PERCENTAGE = 200.0
KNATIVE_MAX_SCALE_UP_RATE = 1000.0
KNATIVE_MAX_SCALE_DOWN_RATE = 2.0
KNATIVE_SCALE_TO_ZERO_GRACE_S = 30
KNATIVE_SCALE_DOWN_DELAY_S = 0
KNATIVE_POD_RETENTION_S = 0  # scale-to-zero-pod-retention-period
KNATIVE_PROGRESS_DEADLINE_S = KNATIVE_PROGRESS_DEADLINE  # config-deployment progress-deadline
KNATIVE_ACTIVATION_TIMEOUT_BUFFER_S = 10  # kpa/scaler.go activationTimeoutBuffer

# Money: the guide's H100 SXM5 on-demand price ($/GPU-hour, Spheron, 07 May 2026)
DEFAULT_PRICE_PER_GPU_HOUR = 4.41
HOURS_PER_MONTH = 730.5  # 365.25 * 24 / 12: the guide's $3,222/mo = 4.41 * 730.5
