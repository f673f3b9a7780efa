"""KEDA and KEDA HTTP add-on facts by version: each present since X / gone in Y, with its source.

Every emitted ScaledObject, HTTPScaledObject and interceptor setting, and every doctor rule
about them, reads these facts here instead of comparing version numbers on its own. Where
a field exists only in some versions, the served CRD schema (``Targets.fields``) wins over
the version number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.facts.versions import Targets, Version, parse_version


@dataclass(frozen=True)
class Fact:
    """A behaviour true from ``since`` (inclusive) until ``until`` (exclusive); None = unbounded."""

    key: str
    component: str
    summary: str
    source: str
    since: Version | None = None
    until: Version | None = None

    def holds(self, version: Version | None) -> bool | None:
        """Whether the fact holds for ``version``; None when the version is unknown."""
        if version is None:
            return None
        return (self.since is None or version >= self.since) and (self.until is None or version < self.until)

    def span(self) -> str:
        """``>= 2.17.0``, ``< 2.17.0``, ``2.17.0 only``, ``2.11.0 - 2.16.x``."""
        if self.since and self.until:
            if (self.until.major, self.until.minor) == (
                self.since.major,
                self.since.minor,
            ) and self.until.patch == self.since.patch + 1:
                return f"{self.since} only"
            return f">= {self.since}, < {self.until}"
        if self.since:
            return f">= {self.since}"
        if self.until:
            return f"< {self.until}"
        return "all"


def _v(text: str) -> Version:
    return parse_version(text)


EXECUTOR = "kedacore/keda pkg/scaling/executor/scale_scaledobjects.go RequestScale"
WEBHOOK = "kedacore/keda apis/keda/v1alpha1/scaledobject_webhook.go"
TYPES = "kedacore/keda apis/keda/v1alpha1/scaledobject_types.go"
TIMEOUTS = "kedacore/http-add-on interceptor/config/timeouts.go"

FACTS: dict[str, Fact] = {
    f.key: f
    for f in (
        Fact(
            "transfer-hpa-ownership",
            "keda",
            "annotation scaledobject.keda.sh/transfer-hpa-ownership adopts an existing HPA named in "
            "advanced.horizontalPodAutoscalerConfig.name",
            f"{WEBHOOK} verifyHpas; kedacore/keda#4537",
            since=_v("2.11.0"),
        ),
        Fact(
            "metric-name-removed",
            "keda",
            "trigger metadata metricName is ignored (removed)",
            "kedacore/keda#4899 (v2.12.0 breaking changes)",
            since=_v("2.12.0"),
        ),
        Fact(
            "fallback-immediate",
            "keda",
            "on any scaler error with no active trigger the executor scales straight to fallback.replicas, "
            "without waiting for failureThreshold and from 0 replicas too",
            f"{EXECUTOR}: case `!isActive && isError && Fallback != nil && Fallback.Replicas != 0` -> "
            "doFallbackScaling; removed by kedacore/keda#6520",
            until=_v("2.17.0"),
        ),
        Fact(
            "fallback-from-zero-polling",
            "keda",
            "the polling loop applies the fallback after failureThreshold errors, so a ScaledObject at 0 "
            "replicas whose query errors is woken to fallback.replicas",
            "kedacore/keda#7244 (merged 2025-11-11; first release after it taken as 2.19.0)",
            since=_v("2.19.0"),
        ),
        Fact(
            "fallback-webhook",
            "keda",
            "the admission webhook rejects an invalid fallback (verifyFallback returns CheckFallbackValid's error; "
            "before it only logged, kedacore/keda#5962 unmerged)",
            f"{WEBHOOK} verifyFallback; kedacore/keda#6696",
            since=_v("2.17.0"),
        ),
        Fact(
            "fallback-explicit-metric-type",
            "keda",
            "the webhook counts only triggers with an explicit metricType AverageValue: fallback without "
            "metricType is rejected",
            f"{TYPES} CheckFallbackValid; kedacore/keda#6696, fixed by kedacore/keda#6702 in 2.17.1",
            since=_v("2.17.0"),
            until=_v("2.17.1"),
        ),
        Fact(
            "fallback-value-metric-type",
            "keda",
            "fallback also works for Value triggers (target * fallback.replicas / ready replicas)",
            "kedacore/keda#6655; keda-docs 2.18 scaledobject-spec.md",
            since=_v("2.18.0"),
        ),
        Fact(
            "fallback-behavior",
            "keda",
            "spec.fallback.behavior (static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower)",
            f"{TYPES} Fallback.Behavior; kedacore/keda#6464",
            since=_v("2.17.0"),
        ),
        Fact(
            "fallback-behavior-scaling-modifiers",
            "keda",
            "spec.fallback.behavior: scalingModifiers",
            "config/crd/bases/keda.sh_scaledobjects.yaml v2.20.0",
            since=_v("2.20.0"),
        ),
        Fact(
            "webhook-replica-bounds",
            "keda",
            "the webhook rejects minReplicaCount > maxReplicaCount and idleReplicaCount >= minReplicaCount "
            "(before it only logged them)",
            f"{WEBHOOK} verifyReplicaCount; {TYPES} CheckReplicaCountBoundsAreValid; kedacore/keda#7562",
            since=_v("2.20.0"),
        ),
        Fact(
            "webhook-name-length",
            "keda",
            "the webhook rejects a ScaledObject name or derived HPA name over 63 characters",
            f"{WEBHOOK} verifyName",
            since=_v("2.20.0"),
        ),
        Fact(
            "http-readiness-env",
            "keda-http",
            "the interceptor reads KEDA_HTTP_READINESS_TIMEOUT / KEDA_HTTP_RESPONSE_HEADER_TIMEOUT; the deprecated "
            "KEDA_CONDITION_WAIT_TIMEOUT / KEDA_RESPONSE_HEADER_TIMEOUT still take precedence when set",
            f"{TIMEOUTS} MustParseTimeouts, deprecatedTimeouts; timeouts_test.go "
            "TestMustParseTimeouts_DeprecatedOverride",
            since=_v("0.14.0"),
        ),
        Fact(
            "http-condition-wait-env",
            "keda-http",
            "the interceptor reads only KEDA_CONDITION_WAIT_TIMEOUT (chart default 20s) and "
            "KEDA_RESPONSE_HEADER_TIMEOUT (500ms)",
            f"{TIMEOUTS} Timeouts (envconfig); kedacore/charts http-add-on/templates/interceptor/deployment.yaml",
            until=_v("0.14.0"),
        ),
    )
}

# The ScaledObject fallback's behavior field and the value gpuscale prefers where it exists.
FALLBACK_BEHAVIOR_FIELD = "spec.fallback.behavior"
PREFERRED_FALLBACK_BEHAVIOR = "currentReplicasIfHigher"


def holds(key: str, version: Version | None) -> bool | None:
    """Whether fact ``key`` holds for a version (None when the version is unknown)."""
    return FACTS[key].holds(version)


@dataclass(frozen=True)
class FallbackPlan:
    """What to emit for spec.fallback: whether at all, the behavior, and whether triggers need metricType."""

    emit: bool
    behavior: str | None
    explicit_metric_type: bool
    why: str


def fallback_plan(targets: Targets, min_replicas: int) -> FallbackPlan:
    """The fallback gpuscale emits for a ScaledObject on the target KEDA.

    With ``minReplicaCount`` 0 the pod-scoped query has no series at zero replicas, so every poll
    errors: where KEDA falls back from zero (before 2.17 at once, from 2.19 after failureThreshold)
    the fallback wakes a replica that idles and goes back to zero, a cold start per cycle. No
    fallback there. ``behavior: currentReplicasIfHigher`` where the served CRD (or, unknown, the
    version) has spec.fallback.behavior. metricType is always written out: KEDA 2.17.0's webhook
    rejects a fallback whose triggers leave it implicit, and an explicit AverageValue is valid in
    every version.
    """
    version = targets.keda
    if min_replicas == 0:
        if version is None:
            return FallbackPlan(
                False,
                None,
                False,
                "no fallback: KEDA's version is unknown, and KEDA < 2.17 or >= 2.19 wakes a "
                "ScaledObject at 0 replicas to fallback.replicas on query errors (pass "
                "--target-versions keda=X.Y.Z)",
            )
        if holds("fallback-immediate", version):
            return FallbackPlan(
                False,
                None,
                False,
                f"no fallback: KEDA {version} scales straight to fallback.replicas on a query "
                f"error, which at 0 replicas is every poll (a cold start per cycle)",
            )
        if holds("fallback-from-zero-polling", version):
            return FallbackPlan(
                False,
                None,
                False,
                f"no fallback: KEDA {version} wakes a ScaledObject at 0 replicas to "
                f"fallback.replicas after failureThreshold query errors, which at 0 replicas is "
                f"always (a cold start per cycle)",
            )
    served = targets.serves_field("keda", FALLBACK_BEHAVIOR_FIELD)
    has_behavior = served if served is not None else bool(holds("fallback-behavior", version))
    return FallbackPlan(
        True,
        PREFERRED_FALLBACK_BEHAVIOR if has_behavior else None,
        True,
        "fallback holds replicas while the query fails",
    )


def fallback_covers(triggers: Sequence[Mapping[str, Any]], version: Version | None) -> bool:
    """Whether a fallback can act on any of these triggers on KEDA ``version``.

    pkg/fallback/fallback.go isFallbackEnabled applies it only to AverageValue metrics (Value too from
    2.18, kedacore/keda#6655), never to cpu/memory; a fallback over Value-only triggers does nothing
    before 2.18 and 2.17's webhook rejects it.
    """
    accepted = {"AverageValue", "Value"} if holds("fallback-value-metric-type", version) else {"AverageValue"}
    return any(
        t.get("type") not in ("cpu", "memory") and (t.get("metricType") or "AverageValue") in accepted
        for t in triggers
    )


@dataclass(frozen=True)
class InterceptorTimeoutKeys:
    """The interceptor env variables (and Helm values) a given HTTP add-on version reads."""

    readiness_env: str
    response_header_env: str
    readiness_helm: str
    response_header_helm: str
    deprecated: tuple[str, ...]
    upstream_readiness: str
    upstream_response_header: str


def interceptor_timeout_keys(version: Version | None) -> InterceptorTimeoutKeys:
    """Where the interceptor reads its wait-for-a-replica and response-header timeouts, by version.

    Before 0.14 only KEDA_CONDITION_WAIT_TIMEOUT / KEDA_RESPONSE_HEADER_TIMEOUT exist (chart values
    interceptor.replicas.waitTimeout / interceptor.responseHeaderTimeout); from 0.14 the
    KEDA_HTTP_* names, with the deprecated two still taking precedence when set.
    """
    if holds("http-condition-wait-env", version):
        return InterceptorTimeoutKeys(
            "KEDA_CONDITION_WAIT_TIMEOUT",
            "KEDA_RESPONSE_HEADER_TIMEOUT",
            "interceptor.replicas.waitTimeout",
            "interceptor.responseHeaderTimeout",
            (),
            "20s",
            "500ms",
        )
    return InterceptorTimeoutKeys(
        "KEDA_HTTP_READINESS_TIMEOUT",
        "KEDA_HTTP_RESPONSE_HEADER_TIMEOUT",
        "interceptor.readinessTimeout",
        "interceptor.responseHeaderTimeout",
        ("KEDA_CONDITION_WAIT_TIMEOUT", "KEDA_RESPONSE_HEADER_TIMEOUT"),
        "0s = unbounded",
        "300s",
    )


def effective_interceptor_env(env: dict[str, str], version: Version | None) -> tuple[str | None, str | None]:
    """(readiness variable, response-header variable) the interceptor actually uses from its env.

    From 0.14 a deprecated variable that is set wins over its replacement
    (interceptor/config/timeouts.go MustParseTimeouts); before 0.14 only the old names exist.
    """
    keys = interceptor_timeout_keys(version)
    if keys.deprecated:
        old_wait, old_header = keys.deprecated
        wait = old_wait if env.get(old_wait) else keys.readiness_env if env.get(keys.readiness_env) else None
        header = (
            old_header
            if env.get(old_header)
            else keys.response_header_env
            if env.get(keys.response_header_env)
            else None
        )
        return wait, header
    return (
        keys.readiness_env if env.get(keys.readiness_env) else None,
        keys.response_header_env if env.get(keys.response_header_env) else None,
    )


def webhook_fallback_rejection(scaled_object: Mapping[str, Any], version: Version | None) -> str | None:
    """The message KEDA ``version``'s webhook rejects this ScaledObject's fallback with, or None.

    A port of CheckFallbackValid (apis/keda/v1alpha1/scaledobject_types.go) as verifyFallback
    enforces it: not at all before 2.17.0; in 2.17.0 only an explicit AverageValue counts
    (kedacore/keda#6696); from 2.17.1 an implicit metricType counts as AverageValue; from 2.18
    Value counts too. Unknown version: judged as 2.17.0, the strictest.
    """
    spec = scaled_object.get("spec") or {}
    fallback = spec.get("fallback")
    if not fallback:
        return None
    if version is not None and not holds("fallback-webhook", version):
        return None
    if int(fallback.get("failureThreshold") or 0) < 0 or int(fallback.get("replicas") or 0) < 0:
        return (
            f"FailureThreshold={fallback.get('failureThreshold')} & Replicas={fallback.get('replicas')} "
            "must both be greater than or equal to 0"
        )
    modifiers = (spec.get("advanced") or {}).get("scalingModifiers") or {}
    if modifiers:
        if modifiers.get("metricType") == "Value":
            return (
                "when using ScalingModifiers, ScaledObject.Spec.Advanced.ScalingModifiers.MetricType must be "
                "AverageValue to have fallback enabled"
            )
        return None
    explicit_only = version is None or bool(holds("fallback-explicit-metric-type", version))
    accepted = {"AverageValue", "Value"} if holds("fallback-value-metric-type", version) else {"AverageValue"}
    for trigger in spec.get("triggers") or []:
        if trigger.get("type") in ("cpu", "memory"):
            continue
        metric_type = trigger.get("metricType") or ("" if explicit_only else "AverageValue")
        if metric_type in accepted:
            return None
    return (
        "at least one trigger (that is not cpu or memory) has to have the `AverageValue` type for the fallback "
        "to be enabled"
    )
