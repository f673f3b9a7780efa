"""Builders for the objects migrate-hpa emits: KEDA ScaledObject and triggers, HTTPScaledObject,
Knative Service, PodDisruptionBudget. Plain dicts in, plain dicts out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.autoscale.probes import probe_budget, startup_budget
from kubectl_gpuscale.facts import Targets, pinned_targets
from kubectl_gpuscale.facts import knative as kfacts
from kubectl_gpuscale.facts.keda import fallback_covers, fallback_plan
from kubectl_gpuscale.names import (
    HTTP_EXTERNAL_SCALER,
    KEDA_HTTP_SKIP_SCALEDOBJECT,
    KEDA_TRANSFER_OWNERSHIP,
    MANAGED_LABELS,
)

KEDA_API = "keda.sh/v1alpha1"
HTTP_API = "http.keda.sh/v1alpha1"
KNATIVE_API = "serving.knative.dev/v1"

# KEDA facts (DESIGN §4, reference/keda_knative.md §1-3)
KEDA_DEFAULT_POLLING = 30
KEDA_DEFAULT_COOLDOWN = 300

# Our defaults for GPU workloads (documented in docs/migrate-hpa.md and --help)
GPU_POLLING = 15  # the HPA itself re-reads metrics every 15 s; polling faster buys nothing
GPU_COOLDOWN = 600  # scale-to-zero only: keep a warm replica 10 min after the last request
FALLBACK_FAILURES = 3  # 3 failed polls (45 s) before holding the fallback replica count

# Knative facts live in kubectl_gpuscale.facts.knative; these names stay for their importers.
KNATIVE_REVISION_TIMEOUT = kfacts.REVISION_TIMEOUT_S
KNATIVE_MAX_REVISION_TIMEOUT = kfacts.MAX_REVISION_TIMEOUT_S
KNATIVE_PROGRESS_DEADLINE = kfacts.PROGRESS_DEADLINE_S


@dataclass(frozen=True)
class Schedule:
    """A business-hours floor: KEDA cron trigger fields."""

    timezone: str
    start: str
    end: str
    replicas: int


def prometheus_trigger(
    name: str,
    server: str,
    query: str,
    threshold: str,
    *,
    activation: str | None = "0",
    metric_type: str | None = None,
) -> dict[str, Any]:
    """A prometheus trigger that errors (no silent 0) on an empty result; no `metricName`."""
    metadata = {"serverAddress": server, "query": query, "threshold": threshold}
    if activation is not None:
        metadata["activationThreshold"] = activation
    metadata["ignoreNullValues"] = "false"
    trigger: dict[str, Any] = {"type": "prometheus", "name": name, "metadata": metadata}
    if metric_type and metric_type != "AverageValue":
        trigger["metricType"] = metric_type
    return trigger


# KEDA prometheus scaler auth (kedacore/keda pkg/scalers/authentication/authentication_types.go `Config`):
# `authModes` in trigger metadata; the secrets come as authParams, which a TriggerAuthentication's
# secretTargetRef fills (pkg/scaling/resolver/scale_resolvers.go: authParams[parameter] = secret[key],
# the Secret in the trigger's namespace).
TRIGGER_AUTH_KIND = "TriggerAuthentication"
AUTH_PARAMETERS = {"basic": ("username", "password"), "bearer": ("bearerToken",)}


def trigger_authentication(*, name: str, namespace: str | None, mode: str, secret: str) -> dict[str, Any]:
    """A TriggerAuthentication handing KEDA the `mode` credentials from Secret `secret` (same keys as parameters).

    It references the Secret only: no credential is ever in the object.
    """
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_LABELS)
    refs = [{"parameter": key, "name": secret, "key": key} for key in AUTH_PARAMETERS[mode]]
    return {
        "apiVersion": KEDA_API,
        "kind": TRIGGER_AUTH_KIND,
        "metadata": meta,
        "spec": {"secretTargetRef": refs},
    }


def authenticated(trigger: Mapping[str, Any], *, auth_name: str, mode: str) -> dict[str, Any]:
    """`trigger` authenticating through TriggerAuthentication `auth_name` (`authenticationRef` + `authModes`)."""
    out = dict(trigger)
    out["metadata"] = {**dict(trigger.get("metadata") or {}), "authModes": mode}
    out["authenticationRef"] = {"name": auth_name, "kind": TRIGGER_AUTH_KIND}
    return out


def cron_trigger(schedule: Schedule) -> dict[str, Any]:
    """A KEDA cron trigger holding `replicas` between start and end."""
    return {
        "type": "cron",
        "name": "business_hours",
        "metadata": {
            "timezone": schedule.timezone,
            "start": schedule.start,
            "end": schedule.end,
            "desiredReplicas": str(schedule.replicas),
        },
    }


def http_push_trigger(http_name: str) -> dict[str, Any]:
    """The external-push trigger that lets the HTTP add-on wake a workload scaled to zero."""
    return {
        "type": "external-push",
        "name": "http_requests",
        "metadata": {"httpScaledObject": http_name, "scalerAddress": HTTP_EXTERNAL_SCALER},
    }


def scaled_object(
    *,
    name: str,
    namespace: str | None,
    target: Mapping[str, str],
    min_replicas: int,
    max_replicas: int,
    triggers: Sequence[Mapping[str, Any]],
    adopt_hpa: str | None,
    behavior: Mapping[str, Any] | None,
    fallback_replicas: int | None,
    annotations: Mapping[str, str],
    polling: int = GPU_POLLING,
    cooldown: int = GPU_COOLDOWN,
    targets: Targets | None = None,
) -> dict[str, Any]:
    """A ScaledObject; with `adopt_hpa` it takes over that HPA (annotation + advanced.horizontalPodAutoscalerConfig.name).

    The fallback follows `kubectl_gpuscale.facts.keda.fallback_plan` for the target KEDA
    (``targets``, default the pinned install versions).
    """
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_LABELS)
    notes = dict(annotations)
    if adopt_hpa:
        notes[KEDA_TRANSFER_OWNERSHIP] = "true"
    meta["annotations"] = notes
    spec: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": target["apiVersion"],
            "kind": target["kind"],
            "name": target["name"],
        },
        "pollingInterval": polling,
        "cooldownPeriod": cooldown,
        "minReplicaCount": min_replicas,
        "maxReplicaCount": max_replicas,
    }
    emitted = [dict(t) for t in triggers]
    targets = targets or pinned_targets()
    if (
        fallback_replicas is not None
        and any(t.get("type") == "prometheus" for t in triggers)
        and fallback_covers(emitted, targets.keda)
    ):
        fallback = fallback_spec(fallback_replicas, min_replicas, targets)
        if fallback is not None:
            spec["fallback"] = fallback
            emitted = [with_metric_type(t) for t in emitted]
    hpa_config: dict[str, Any] = {}
    if adopt_hpa:
        hpa_config["name"] = adopt_hpa
    if behavior:
        hpa_config["behavior"] = dict(behavior)
    if hpa_config:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": hpa_config}
    spec["triggers"] = emitted
    return {"apiVersion": KEDA_API, "kind": "ScaledObject", "metadata": meta, "spec": spec}


def fallback_spec(replicas: int, min_replicas: int, targets: Targets) -> dict[str, Any] | None:
    """spec.fallback for the target KEDA, or None where a fallback would flap a workload at zero."""
    plan = fallback_plan(targets, min_replicas)
    if not plan.emit:
        return None
    fallback: dict[str, Any] = {"failureThreshold": FALLBACK_FAILURES, "replicas": replicas}
    if plan.behavior:
        fallback["behavior"] = plan.behavior
    return fallback


def with_metric_type(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """The trigger with its metricType written out (AverageValue when implicit); cpu/memory untouched.

    KEDA 2.17.0's webhook rejects a fallback whose triggers leave metricType implicit
    (kedacore/keda#6696); an explicit AverageValue means the same in every version.
    """
    out = dict(trigger)
    if out.get("type") not in ("cpu", "memory") and not out.get("metricType"):
        out["metricType"] = "AverageValue"
    return out


def http_scaled_object(
    *,
    name: str,
    namespace: str | None,
    target: Mapping[str, str],
    service: str,
    port: int,
    min_replicas: int,
    max_replicas: int,
    concurrency: int,
    hosts: Sequence[str],
    cold_start: int,
    cooldown: int = GPU_COOLDOWN,
) -> dict[str, Any]:
    """An HTTPScaledObject routing and buffering requests while the workload wakes from zero.

    It creates no ScaledObject of its own (our ScaledObject carries an external-push trigger), so
    the existing HPA is adopted once, by one owner. Timeouts exceed the cold start.
    """
    meta: dict[str, Any] = {
        "name": name,
        "labels": dict(MANAGED_LABELS),
        "annotations": {KEDA_HTTP_SKIP_SCALEDOBJECT: "true"},
    }
    if namespace:
        meta["namespace"] = namespace
    wait = max(cold_start * 2, 120)
    return {
        "apiVersion": HTTP_API,
        "kind": "HTTPScaledObject",
        "metadata": meta,
        "spec": {
            "hosts": list(hosts),
            "scaleTargetRef": {
                "apiVersion": target["apiVersion"],
                "kind": target["kind"],
                "name": target["name"],
                "service": service,
                "port": port,
            },
            "replicas": {"min": min_replicas, "max": max_replicas},
            "scalingMetric": {"concurrency": {"targetValue": concurrency}},
            "scaledownPeriod": cooldown,
            "timeouts": {"conditionWait": f"{wait}s", "responseHeader": f"{max(wait, 300)}s"},
        },
    }


@dataclass(frozen=True)
class KnativeBuild:
    """A Knative Service and what the conversion needs said: the `config-features` flags it relies on,
    the fields dropped because the target Knative rejects them (each with why), other adjustments."""

    service: dict[str, Any]
    flags: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    adjusted: tuple[str, ...] = ()


# Values the API server fills in on every pod spec: read back from a cluster they are no choice of the operator.
_POD_DEFAULTS: dict[str, Any] = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
}


class _KnativeShaper:
    """Shapes a pod template into what Knative `version`'s webhook accepts, collecting flags and notes."""

    def __init__(self, version: kfacts.Version) -> None:
        self.version = version
        self.flags: set[str] = set()
        self.dropped: list[str] = []
        self.adjusted: list[str] = []

    def drop(self, where: str, why: str) -> None:
        self.dropped.append(f"{where} dropped: {why}")

    def need(self, flag: kfacts.Flag, where: str) -> bool:
        """Name the flag `where` needs; False (and a drop note) when the target Knative has no such flag."""
        if not flag.exists_in(self.version):
            self.drop(
                where,
                f"Knative {kfacts.version_text(self.version)} has no {flag.key} flag "
                f"(since {kfacts.version_text(flag.since)})",
            )
            return False
        if not flag.default_enabled:
            self.flags.add(flag.key)
        return True

    def pod(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in spec.items():
            if key in kfacts.POD_FIELDS:
                if key == "automountServiceAccountToken" and value is not False:
                    self.drop("spec.automountServiceAccountToken", "Knative accepts only false (PodSpecMask)")
                    continue
                out[key] = value
            elif key in kfacts.POD_FLAGS:
                if value in (None, "", [], {}, False) or _POD_DEFAULTS.get(key) == value:
                    continue
                if self.need(kfacts.POD_FLAGS[key], f"spec.{key}"):
                    out[key] = value
            elif key in kfacts.REVISION_FIELDS:
                out[key] = value
            elif (
                key == "containers"
                or value in (None, "", [], {})
                or _POD_DEFAULTS.get(key) == value
                or (key == "serviceAccount" and value == spec.get("serviceAccountName"))
            ):
                continue
            elif key == "terminationGracePeriodSeconds":
                self.drop(
                    "spec.terminationGracePeriodSeconds", "Knative sets the grace period from timeoutSeconds"
                )
            else:
                self.drop(f"spec.{key}", "Knative's PodSpecMask disallows it")
        return out

    def volumes(
        self, volumes: Any, mounts: Mapping[str, list[Mapping[str, Any]]]
    ) -> tuple[list[Any], set[str]]:
        """The volumes Knative accepts, and the names of those dropped (their mounts go too)."""
        kept: list[Any] = []
        gone: set[str] = set()
        for v in volumes or []:
            if not isinstance(v, Mapping):
                continue
            name = str(v.get("name") or "")
            sources = [k for k in v if k != "name"]
            source = sources[0] if sources else ""
            if source in kfacts.VOLUME_SOURCES:
                kept.append(dict(v))
                continue
            flag = kfacts.VOLUME_FLAGS.get(source)
            if flag is None:
                self.drop(
                    f"spec.volumes[{name}] ({source})",
                    "Knative accepts no such volume type (VolumeSourceMask); its mounts are dropped too",
                )
                gone.add(name)
                continue
            if not self.need(flag, f"spec.volumes[{name}]"):
                gone.add(name)
                continue
            volume = dict(v)
            if source == "persistentVolumeClaim":
                volume["persistentVolumeClaim"] = self.claim(
                    name, dict(v.get(source) or {}), mounts.get(name, [])
                )
            kept.append(volume)
        return kept, gone

    def claim(self, name: str, claim: dict[str, Any], mounts: list[Mapping[str, Any]]) -> dict[str, Any]:
        """A PVC is writable unless the claim says readOnly (k8s_validation.go validateVolume)."""
        if claim.get("readOnly") is True:
            return claim
        if mounts and all(m.get("readOnly") is True for m in mounts):
            claim["readOnly"] = True
            self.adjusted.append(
                f"volume {name}: persistentVolumeClaim.readOnly set (every mount is read-only), "
                f"so no {kfacts.PVC_WRITE_FLAG.key} is needed"
            )
            return claim
        self.need(kfacts.PVC_WRITE_FLAG, f"spec.volumes[{name}]")
        return claim

    def container(self, c: Mapping[str, Any], serving: bool, gone: set[str]) -> dict[str, Any]:
        name = str(c.get("name") or "?")
        allowed = kfacts.container_fields(self.version)
        out: dict[str, Any] = {}
        for key, value in c.items():
            if key in allowed:
                out[key] = value
            elif key == "startupProbe":
                continue  # handled below: Knative < 1.15
            else:
                why = kfacts.CONTAINER_DISALLOWED_WHY.get(key, "not in Knative's ContainerMask")
                self.drop(f"containers[{name}].{key}", why)
        startup = c.get("startupProbe") if isinstance(c.get("startupProbe"), Mapping) else None
        if startup and "startupProbe" not in allowed:
            self.startup_probe(out, name, startup)
        self.ports(out, name, serving)
        if "env" in out:
            out["env"] = self.env(out, name, serving)
        if "volumeMounts" in out:
            out["volumeMounts"] = self.mounts(out, name, gone)
        if not serving and (out.get("livenessProbe") or out.get("readinessProbe")):
            self.need(kfacts.MULTI_CONTAINER_PROBING_FLAG, f"containers[{name}] probes")
        return out

    def unmounted_volumes(self, pod: dict[str, Any], containers: list[dict[str, Any]]) -> None:
        """Drop the volumes no container (or init container) mounts: Knative rejects them."""
        used = {
            str(m.get("name"))
            for c in [*containers, *(pod.get("initContainers") or [])]
            if isinstance(c, Mapping)
            for m in c.get("volumeMounts") or []
            if isinstance(m, Mapping)
        }
        for v in pod["volumes"]:
            if str(v.get("name")) not in used:
                self.drop(
                    f"spec.volumes[{v.get('name')}]",
                    "no container mounts it (Knative rejects unmounted "
                    "volumes; an injected sidecar's volumes come with it)",
                )
        pod["volumes"] = [v for v in pod["volumes"] if str(v.get("name")) in used]
        if not pod["volumes"]:
            pod.pop("volumes")

    def startup_probe(self, out: dict[str, Any], name: str, startup: Mapping[str, Any]) -> None:
        """Drop a startupProbe this Knative rejects, keeping liveness from killing the loading pod."""
        budget = probe_budget(startup)
        live = out.get("livenessProbe")
        self.drop(
            f"containers[{name}].startupProbe",
            f"Knative {kfacts.version_text(self.version)} rejects it (allowed since "
            f"{kfacts.version_text(kfacts.STARTUP_PROBE_SINCE)})",
        )
        if isinstance(live, Mapping) and int(live.get("initialDelaySeconds") or 0) < budget:
            out["livenessProbe"] = {**live, "initialDelaySeconds": budget}
            self.adjusted.append(
                f"containers[{name}].livenessProbe.initialDelaySeconds raised to {budget}s "
                f"(the startupProbe budget) so liveness does not kill the loading pod"
            )

    def ports(self, out: dict[str, Any], name: str, serving: bool) -> None:
        """The serving container keeps its first port (with a protocol name Knative reads); sidecars none."""
        ports = [p for p in out.get("ports") or [] if isinstance(p, Mapping)]
        if ports and serving:
            port = {k: v for k, v in ports[0].items() if k in kfacts.CONTAINER_PORT_FIELDS}
            if port.get("name", "") not in kfacts.PORT_NAMES:
                self.adjusted.append(
                    f"containers[{name}].ports name {port.pop('name')!r} dropped (Knative reads "
                    f"the port name as the protocol: h2c or http1)"
                )
            out["ports"] = [port]
        else:
            out.pop("ports", None)

    def env(self, out: Mapping[str, Any], name: str, serving: bool) -> list[Mapping[str, Any]]:
        """The env without the variables Knative reserves or the field references it does not allow."""
        reserved = kfacts.RESERVED_ENV if serving else kfacts.RESERVED_SIDECAR_ENV
        env = [e for e in out.get("env") or [] if isinstance(e, Mapping)]
        kept_env = []
        for e in env:
            if e.get("name") in reserved:
                self.drop(
                    f"containers[{name}].env[{e.get('name')}]",
                    "reserved: Knative sets it (PORT is the container port)",
                )
                continue
            value_from = e.get("valueFrom")
            source: Mapping[str, Any] = value_from if isinstance(value_from, Mapping) else {}
            if ("fieldRef" in source or "resourceFieldRef" in source) and not self.need(
                kfacts.all_flags()[kfacts.ENV_FIELD_REF_FLAG], f"containers[{name}].env[{e.get('name')}]"
            ):
                continue
            kept_env.append(e)
        return kept_env

    def mounts(self, out: Mapping[str, Any], name: str, gone: set[str]) -> list[dict[str, Any]]:
        """The volume mounts of kept volumes, off reserved paths, with only VolumeMountMask fields."""
        mounts = []
        for m in out.get("volumeMounts") or []:
            if not isinstance(m, Mapping) or m.get("name") in gone:
                continue
            if str(m.get("mountPath") or "").rstrip("/") in kfacts.RESERVED_PATHS | {""}:
                self.drop(
                    f"containers[{name}].volumeMounts[{m.get('name')}]",
                    f"{m.get('mountPath')} is a path Knative reserves",
                )
                continue
            extra = sorted(set(m) - kfacts.VOLUME_MOUNT_FIELDS)
            if extra:
                self.drop(
                    f"containers[{name}].volumeMounts[{m.get('name')}].{','.join(extra)}",
                    "not in Knative's VolumeMountMask",
                )
            mounts.append({k: v for k, v in m.items() if k in kfacts.VOLUME_MOUNT_FIELDS})
        return mounts


def knative_service(
    *,
    name: str,
    namespace: str | None,
    template: Mapping[str, Any],
    min_scale: int,
    max_scale: int,
    concurrency: int,
    cold_start: int,
    retention: str = "10m",
    version: kfacts.Version = kfacts.PINNED,
    concurrency_limit: int = kfacts.CONTAINER_CONCURRENCY_MAX_LIMIT,
) -> KnativeBuild:
    """A Knative Service for the workload's pod template that Knative `version`'s webhook accepts.

    Fields Knative rejects are dropped (each named, with why); flag-gated fields are kept and their
    `config-features` flags named; containerConcurrency is clamped to `concurrency_limit`
    (config-defaults container-concurrency-max-limit); the progress deadline covers the cold start
    twice and at least the startupProbe budget the operator wrote.
    """
    shaper = _KnativeShaper(version)
    source = dict(template.get("spec") or {})
    pod = shaper.pod(source)
    containers_in = [c for c in source.get("containers") or [] if isinstance(c, Mapping)]
    mounts: dict[str, list[Mapping[str, Any]]] = {}
    for c in containers_in:
        for m in c.get("volumeMounts") or []:
            if isinstance(m, Mapping):
                mounts.setdefault(str(m.get("name")), []).append(m)
    if "volumes" in pod:
        pod["volumes"], gone = shaper.volumes(pod["volumes"], mounts)
    else:
        gone = set()
    serving_index = next((i for i, c in enumerate(containers_in) if c.get("ports")), 0)
    containers = [shaper.container(c, i == serving_index, gone) for i, c in enumerate(containers_in)]
    if len(containers) > 1:
        shaper.need(kfacts.MULTI_CONTAINER_FLAG, "sidecars")
    pod["containers"] = containers
    if pod.get("volumes"):
        shaper.unmounted_volumes(pod, containers)
    pod["timeoutSeconds"] = min(max(cold_start * 2, KNATIVE_REVISION_TIMEOUT), KNATIVE_MAX_REVISION_TIMEOUT)
    cc = max(0, int(concurrency))
    if cc > concurrency_limit:
        shaper.adjusted.append(
            f"containerConcurrency {cc} clamped to {concurrency_limit} "
            f"(config-defaults container-concurrency-max-limit)"
        )
        cc = concurrency_limit
    pod["containerConcurrency"] = cc
    written = startup_budget({"containers": containers}) or startup_budget(source)
    deadline = max(cold_start * 2, KNATIVE_PROGRESS_DEADLINE, written[0] if written else 0)
    annotations = {
        "autoscaling.knative.dev/class": kfacts.KPA_CLASS,
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": str(max(cc, 1)),
        "autoscaling.knative.dev/min-scale": str(min_scale),
        "autoscaling.knative.dev/max-scale": str(max_scale),
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": retention,
        "autoscaling.knative.dev/scale-down-delay": f"{min(cold_start, kfacts.WINDOW_MAX_S)}s",
        "serving.knative.dev/progress-deadline": f"{deadline}s",
    }
    tmeta: dict[str, Any] = {"annotations": annotations}
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        tmeta["labels"] = dict(labels)
    meta: dict[str, Any] = {"name": name, "labels": dict(MANAGED_LABELS)}
    if namespace:
        meta["namespace"] = namespace
    service = {
        "apiVersion": KNATIVE_API,
        "kind": "Service",
        "metadata": meta,
        "spec": {"template": {"metadata": tmeta, "spec": pod}},
    }
    return KnativeBuild(service, tuple(sorted(shaper.flags)), tuple(shaper.dropped), tuple(shaper.adjusted))


def pod_disruption_budget(
    *, name: str, namespace: str | None, match_labels: Mapping[str, str]
) -> dict[str, Any]:
    """A PDB keeping one warm replica through voluntary disruptions (node drains, upgrades)."""
    meta: dict[str, Any] = {"name": f"{name}-warm", "labels": dict(MANAGED_LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(match_labels)}},
    }
