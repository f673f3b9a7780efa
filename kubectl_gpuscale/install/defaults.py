"""GPU defaults: the settings `install` changes from upstream, each with its reason, each overridable.

Every value derives from one input, the longest cold start expected
(`--cold-start`, default 10 minutes: a 15 GB image pull plus weight loading),
and can be overridden by key with `--set KEY=VALUE`. Pure: no cluster access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kubectl_gpuscale.autoscale.builders import (
    KNATIVE_MAX_REVISION_TIMEOUT,
    KNATIVE_PROGRESS_DEADLINE,
    KNATIVE_REVISION_TIMEOUT,
)
from kubectl_gpuscale.facts import knative as kfacts
from kubectl_gpuscale.facts import parse_version
from kubectl_gpuscale.facts.keda import interceptor_timeout_keys
from kubectl_gpuscale.install.catalog import KEDA_HTTP, KOURIER_INGRESS_CLASS

DEFAULT_COLD_START_S = 600
DCGM_INTERVAL_MS = 5000
# config-features flags install turns on, and why: GPU pods use these fields (facts/knative.py).
KNATIVE_FEATURES: tuple[tuple[str, str], ...] = (
    (kfacts.POD_FLAGS["nodeSelector"].key, "GPU node selectors"),
    (kfacts.POD_FLAGS["tolerations"].key, "tolerations of the GPU nodes' taints"),
    (kfacts.POD_FLAGS["affinity"].key, "GPU product affinity"),
    (kfacts.VOLUME_FLAGS["persistentVolumeClaim"].key, "model-cache PVCs"),
    (
        kfacts.PVC_WRITE_FLAG.key,
        "model caches are written (a download into the claim); without it the "
        "webhook rejects every claim not marked readOnly",
    ),
    (kfacts.POD_FLAGS["initContainers"].key, "model-download init containers"),
    (kfacts.POD_FLAGS["runtimeClassName"].key, "the nvidia runtime class"),
)


@dataclass(frozen=True)
class Setting:
    """One value `install` sets, where it goes, the upstream default and why we change it.

    `configmap` is (namespace, name) of a ConfigMap whose data key `key` (after the first dot)
    receives the value; `helm` is a dotted chart value path; `env` is (Deployment|DaemonSet name,
    variable) set on the main container in the manifest path.
    """

    component: str
    key: str
    value: str
    upstream: str
    why: str
    configmap: tuple[str, str] | None = None
    helm: str | None = None
    env: tuple[str, str] | None = None
    drop_env: tuple[
        str, ...
    ] = ()  # variables removed from the same container (deprecated ones that would win)

    @property
    def data_key(self) -> str:
        """The ConfigMap data key (the part of `key` after the ConfigMap name)."""
        return self.key.split(".", 1)[1] if self.configmap else self.key


def _dur(seconds: int) -> str:
    return f"{seconds}s"


def gpu_settings(
    component: str,
    *,
    cold_start_s: int = DEFAULT_COLD_START_S,
    service_monitor: bool = False,
    version: str | None = None,
) -> list[Setting]:
    """The GPU defaults of one component for a given longest cold start (seconds) and version.

    ``version`` (default: the pinned one) decides where a setting goes when it moved between
    releases: the HTTP add-on interceptor's timeouts (facts.keda.interceptor_timeout_keys).
    """
    cold = max(1, int(cold_start_s))
    if component == "knative":
        deadline = max(KNATIVE_PROGRESS_DEADLINE, 2 * cold)
        revision_timeout = max(KNATIVE_REVISION_TIMEOUT, cold + 120)
        max_timeout = max(KNATIVE_MAX_REVISION_TIMEOUT, revision_timeout)
        ns = "knative-serving"
        out = [
            Setting(
                "knative",
                "config-deployment.progress-deadline",
                _dur(deadline),
                _dur(KNATIVE_PROGRESS_DEADLINE),
                f"a revision that is not Ready within it fails; twice the {cold}s cold start "
                "(image pull + weights + compile) leaves room for a slow node",
                ("knative-serving", "config-deployment"),
            ),
            Setting(
                "knative",
                "config-defaults.revision-timeout-seconds",
                str(revision_timeout),
                str(KNATIVE_REVISION_TIMEOUT),
                f"requests that arrive at zero wait behind the activator for the {cold}s cold start, "
                "then need time to generate",
                (ns, "config-defaults"),
            ),
            Setting(
                "knative",
                "config-defaults.max-revision-timeout-seconds",
                str(max_timeout),
                str(KNATIVE_MAX_REVISION_TIMEOUT),
                "the upper bound must allow the default above (the activator's termination grace "
                "period is raised to match)",
                (ns, "config-defaults"),
            ),
            Setting(
                "knative",
                "config-network.ingress-class",
                KOURIER_INGRESS_CLASS,
                "istio.ingress.networking.knative.dev",
                "Kourier is the ingress this install brings",
                (ns, "config-network"),
            ),
            Setting(
                "knative",
                "config-autoscaler.scale-to-zero-grace-period",
                "60s",
                "30s",
                "keeps the last GPU replica until the activator is surely in the path, so a short "
                "lull does not cost a cold start",
                (ns, "config-autoscaler"),
            ),
            Setting(
                "knative",
                "config-autoscaler.scale-to-zero-pod-retention-period",
                _dur(cold),
                "0s",
                "an idle GPU pod stays as long as it would take to start again (the ski-rental rule)",
                (ns, "config-autoscaler"),
            ),
        ]
        for feature, why in KNATIVE_FEATURES:
            out.append(
                Setting(
                    "knative",
                    f"config-features.{feature}",
                    "enabled",
                    "disabled",
                    f"GPU pods need it: {why}",
                    (ns, "config-features"),
                )
            )
        return out
    if component == "keda-http":
        keys = interceptor_timeout_keys(parse_version(version or KEDA_HTTP.version))
        wait = "interceptor.readinessTimeout" if keys.deprecated else keys.readiness_helm
        return [
            Setting(
                "keda-http",
                wait,
                _dur(cold + 60),
                f"{keys.upstream_readiness}, {keys.readiness_env}",
                f"a request at zero replicas waits for the {cold}s cold start, then gets a 504 "
                "rather than hanging forever",
                helm=keys.readiness_helm,
                env=("keda-add-ons-http-interceptor", keys.readiness_env),
                drop_env=keys.deprecated[:1],
            ),
            Setting(
                "keda-http",
                "interceptor.responseHeaderTimeout",
                _dur(max(300, cold)),
                f"{keys.upstream_response_header}, {keys.response_header_env}",
                "a non-streaming LLM answer sends its headers only when generation ends",
                helm=keys.response_header_helm,
                env=("keda-add-ons-http-interceptor", keys.response_header_env),
                drop_env=keys.deprecated[1:],
            ),
        ]
    if component == "dcgm":
        return [
            Setting(
                "dcgm",
                "collection-interval-ms",
                str(DCGM_INTERVAL_MS),
                "30000",
                "KEDA polls every 15-30s and the HPA every 15s; a 30s collection makes the GPU "
                "signal up to 30s stale",
                env=("dcgm-exporter", "DCGM_EXPORTER_INTERVAL"),
            ),
            Setting(
                "dcgm",
                "kubernetes-mapping",
                "true",
                "true in the chart, false in the binary",
                "adds pod/namespace/container labels, so GPU metrics can be tied to a workload",
                env=("dcgm-exporter", "DCGM_EXPORTER_KUBERNETES"),
            ),
            Setting(
                "dcgm",
                "serviceMonitor.enabled",
                "true" if service_monitor else "false",
                "true",
                "the Prometheus Operator CRDs exist"
                if service_monitor
                else "the Prometheus Operator CRDs are absent: a ServiceMonitor would fail the install",
                helm="serviceMonitor.enabled",
            ),
            Setting(
                "dcgm",
                "serviceMonitor.honorLabels",
                "true",
                "false",
                "keeps the exporter's pod/namespace labels instead of exported_pod/exported_namespace",
                helm="serviceMonitor.honorLabels",
            ),
        ]
    return []


def optional_settings(component: str, version: str | None = None) -> list[Setting]:
    """Settings install leaves alone unless `--set` names them: every other Knative `config-features`
    flag a migrated Service may need (migrate-hpa names them), where the Knative `version` has it."""
    if component != "knative":
        return []
    defaults = {key for key, _ in KNATIVE_FEATURES}
    target = kfacts.parse_version(version)
    return [
        Setting(
            "knative",
            f"config-features.{flag.key}",
            "enabled",
            "disabled",
            "a Service that sets the field it gates needs it (migrate-hpa --to knative names it)",
            ("knative-serving", "config-features"),
        )
        for key, flag in sorted(kfacts.all_flags().items())
        if key not in defaults and not flag.default_enabled and flag.exists_in(target)
    ]


def apply_overrides(settings: list[Setting], overrides: Mapping[str, str]) -> list[Setting]:
    """Replace values by key (`--set KEY=VALUE`); an unknown key raises KeyError naming the valid ones."""
    by_key = {s.key: s for s in settings}
    for key in overrides:
        if key not in by_key:
            raise KeyError(f"unknown setting {key!r}; valid: {', '.join(sorted(by_key)) or 'none'}")
    return [replace(s, value=overrides[s.key]) if s.key in overrides else s for s in settings]


def helm_values(settings: list[Setting]) -> dict[str, object]:
    """The Helm values tree of the settings that have a chart value (env-only ones go to extraEnv)."""
    values: dict[str, object] = {}
    extra_env: list[dict[str, str]] = []
    for s in settings:
        if s.helm:
            node = values
            parts = s.helm.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[parts[-1]] = _typed(s.value)
        elif s.env and s.component == "dcgm" and s.env[1] != "DCGM_EXPORTER_KUBERNETES":
            extra_env.append({"name": s.env[1], "value": s.value})
    if extra_env:
        values["extraEnv"] = extra_env
    return values


def _typed(value: str) -> object:
    if value in ("true", "false"):
        return value == "true"
    return value
