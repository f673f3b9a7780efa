"""Knative Serving facts by version: what its Service webhook accepts, behind which `config-features`
flag, and the defaults that bound a revision.

The one place for these facts: the Knative Service builder, the doctor's Knative rules, install's
Knative settings and the test API server's admission emulation all read them here. Sources
(knative/serving): `pkg/apis/serving/fieldmask.go` (ContainerMask, PodSpecMask, VolumeSourceMask),
`pkg/apis/serving/k8s_validation.go` (ValidatePodSpec, validateVolume), `pkg/apis/config/features.go`
(defaultFeaturesConfig), `pkg/apis/config/defaults.go`, `hack/schema/schema.go` (revSpecOverrides),
`pkg/apis/autoscaling/annotation_validation.go` and `register.go`; release notes of the PRs cited.

Pure module: no cluster access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gpuscale.install.catalog import KNATIVE

Version = tuple[int, int]

PINNED: Version = tuple(int(x) for x in KNATIVE.version.split(".")[:2])  # type: ignore[assignment]
OLDEST_COVERED: Version = (1, 14)

# ---- container fields: fieldmask.go ContainerMask (+ hack/schema/schema.go "containers") ----------
CONTAINER_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "args",
        "command",
        "env",
        "workingDir",
        "envFrom",
        "image",
        "imagePullPolicy",
        "livenessProbe",
        "ports",
        "readinessProbe",
        "resources",
        "securityContext",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "volumeMounts",
    }
)
# knative/serving PR #15309 "Add startup probe support to Knative Service" (merged 2024-06): release 1.15.
STARTUP_PROBE_SINCE: Version = (1, 15)
# Explicitly disallowed in ContainerMask ("Lifecycle = nil"): the queue-proxy drains on scale-down.
CONTAINER_DISALLOWED_WHY: dict[str, str] = {
    "lifecycle": "Knative's ContainerMask disallows it (the queue-proxy drains requests before the pod stops)",
    "stdin": "Knative's ContainerMask disallows it",
    "stdinOnce": "Knative's ContainerMask disallows it",
    "tty": "Knative's ContainerMask disallows it",
    "volumeDevices": "Knative's ContainerMask disallows it",
    "resizePolicy": "not in Knative's ContainerMask",
    "restartPolicy": "not in Knative's ContainerMask",
}
CONTAINER_PORT_FIELDS: frozenset[str] = frozenset({"containerPort", "name", "protocol"})
# k8s_validation.go validPortNames: the port name selects the protocol.
PORT_NAMES: frozenset[str] = frozenset({"", "h2c", "http1"})
# k8s_validation.go reservedEnvVars (the sidecars may set PORT) and reservedPaths.
RESERVED_ENV: frozenset[str] = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
RESERVED_SIDECAR_ENV: frozenset[str] = RESERVED_ENV - {"PORT"}
RESERVED_PATHS: frozenset[str] = frozenset({"/", "/dev", "/dev/log", "/tmp", "/var", "/var/log"})
RESERVED_CONTAINER_NAMES: frozenset[str] = frozenset({"queue-proxy"})
PROBE_FIELDS: frozenset[str] = frozenset(
    {
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "httpGet",
        "exec",
        "tcpSocket",
        "grpc",
    }
)
VOLUME_MOUNT_FIELDS: frozenset[str] = frozenset({"name", "readOnly", "mountPath", "subPath"})
ENV_FIELD_REF_FLAG = "kubernetes.podspec-fieldref"


@dataclass(frozen=True)
class Flag:
    """A `config-features` flag gating a field: its key, the release that added it, its upstream default."""

    key: str
    since: Version = OLDEST_COVERED
    default_enabled: bool = False
    note: str = ""

    def exists_in(self, version: Version) -> bool:
        """Whether the flag (and so the field) exists in Knative `version`."""
        return version >= self.since


# ---- pod spec: fieldmask.go PodSpecMask; hack/schema/schema.go revSpecOverrides featureFlagFields ---
POD_FIELDS: frozenset[str] = frozenset(
    {
        "serviceAccountName",
        "containers",
        "volumes",
        "imagePullSecrets",
        "enableServiceLinks",
        "automountServiceAccountToken",
    }
)
# Revision fields that sit next to the pod spec (RevisionSpec).
REVISION_FIELDS: frozenset[str] = frozenset(
    {"containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"}
)
POD_FLAGS: dict[str, Flag] = {
    "affinity": Flag("kubernetes.podspec-affinity"),
    "dnsConfig": Flag("kubernetes.podspec-dnsconfig"),
    "dnsPolicy": Flag("kubernetes.podspec-dnspolicy"),
    "hostAliases": Flag("kubernetes.podspec-hostaliases"),
    # knative/serving PR #15414 (hostNetwork/hostPID/hostIPC behind flags, 2024-08; knative/docs#6103).
    "hostIPC": Flag("kubernetes.podspec-hostipc", (1, 16)),
    "hostNetwork": Flag("kubernetes.podspec-hostnetwork", (1, 16)),
    "hostPID": Flag("kubernetes.podspec-hostpid", (1, 16)),
    "initContainers": Flag("kubernetes.podspec-init-containers"),
    "nodeSelector": Flag("kubernetes.podspec-nodeselector"),
    "priorityClassName": Flag("kubernetes.podspec-priorityclassname"),
    "runtimeClassName": Flag("kubernetes.podspec-runtimeclassname"),
    "schedulerName": Flag("kubernetes.podspec-schedulername"),
    "securityContext": Flag("kubernetes.podspec-securitycontext"),
    # knative/serving PR #14454 (2023-09): before the covered range.
    "shareProcessNamespace": Flag("kubernetes.podspec-shareprocessnamespace"),
    "tolerations": Flag("kubernetes.podspec-tolerations"),
    "topologySpreadConstraints": Flag("kubernetes.podspec-topologyspreadconstraints"),
}
# Pod fields no flag allows (PodSpecMask "Disallowed fields"; absent from the CRD schema).
POD_DISALLOWED: frozenset[str] = frozenset(
    {
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "nodeName",
        "hostname",
        "subdomain",
        "priority",
        "readinessGates",
        "serviceAccount",
        "overhead",
        "preemptionPolicy",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "resourceClaims",
        "schedulingGates",
        "ephemeralContainers",
    }
)

# ---- volumes: fieldmask.go VolumeSourceMask; schema.go "volumes" featureFlagFields ------------------
VOLUME_SOURCES: frozenset[str] = frozenset({"secret", "configMap", "projected"})
VOLUME_FLAGS: dict[str, Flag] = {
    # knative/serving PR #13405 turned emptyDir on by default (1.8).
    "emptyDir": Flag("kubernetes.podspec-volumes-emptydir", default_enabled=True),
    # knative/serving PR #12458 "Add pvc support" (1.2): claim + write flags.
    "persistentVolumeClaim": Flag("kubernetes.podspec-persistent-volume-claim"),
    "hostPath": Flag("kubernetes.podspec-volumes-hostpath"),
    # knative/serving PR #15815 "add support for CSI volumes" (merged 2025-03): release 1.18.
    "csi": Flag("kubernetes.podspec-volumes-csi", (1, 18)),
    # knative/serving PR #16590 "generic ephemeral volumes" (merged 2026-05): release 1.23.
    "ephemeral": Flag("kubernetes.podspec-volumes-ephemeral", (1, 23)),
    # In features.go at the pin; the first release carrying it is not verified: assumed only at the pin.
    "image": Flag("kubernetes.podspec-volumes-image", PINNED, note="first release not verified"),
}
PVC_WRITE_FLAG = Flag("kubernetes.podspec-persistent-volume-write")
MULTI_CONTAINER_FLAG = Flag("multi-container", default_enabled=True)
# Liveness/readiness probes on sidecars (k8s_validation.go validateSidecarContainer); a sidecar's
# startupProbe needs no flag (knative/serving PR #15461 tests startup probes on sidecars).
MULTI_CONTAINER_PROBING_FLAG = Flag("multi-container-probing")

# ---- config-defaults / config-deployment / config-autoscaler defaults ------------------------------
REVISION_TIMEOUT_S = 300  # config-defaults revision-timeout-seconds
MAX_REVISION_TIMEOUT_S = 600  # config-defaults max-revision-timeout-seconds
CONTAINER_CONCURRENCY_MAX_LIMIT = 1000  # config-defaults container-concurrency-max-limit
ALLOW_CONTAINER_CONCURRENCY_ZERO = True  # config-defaults allow-container-concurrency-zero
PROGRESS_DEADLINE_S = 600  # config-deployment progress-deadline
# pkg/apis/autoscaling/register.go bounds, checked by annotation_validation.go.
WINDOW_MIN_S, WINDOW_MAX_S = 6, 3600
TARGET_MIN = 0.01
PANIC_WINDOW_PERCENTAGE_BOUNDS = (1.0, 100.0)
PANIC_THRESHOLD_PERCENTAGE_BOUNDS = (110.0, 1000.0)
KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"


def parse_version(text: str | None) -> Version:
    """``1.15``, ``v1.15.2`` or ``knative-v1.15.2`` as (1, 15); the pinned version when empty or unreadable."""
    if not text:
        return PINNED
    core = str(text).rsplit("v", 1)[-1] if "v" in str(text) else str(text)
    parts = core.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return PINNED


def version_text(version: Version) -> str:
    """(1, 15) as ``1.15``."""
    return f"{version[0]}.{version[1]}"


def container_fields(version: Version) -> frozenset[str]:
    """The container fields Knative `version`'s webhook accepts on the serving container."""
    return CONTAINER_FIELDS | ({"startupProbe"} if version >= STARTUP_PROBE_SINCE else frozenset())


def all_flags() -> dict[str, Flag]:
    """Every `config-features` flag gpuscale may name, by key."""
    flags = [
        *POD_FLAGS.values(),
        *VOLUME_FLAGS.values(),
        PVC_WRITE_FLAG,
        MULTI_CONTAINER_FLAG,
        MULTI_CONTAINER_PROBING_FLAG,
        Flag(ENV_FIELD_REF_FLAG),
    ]
    return {f.key: f for f in flags}


def flag_enabled(features: Mapping[str, str] | None, flag: Flag) -> bool:
    """Whether a `config-features` data map turns `flag` on ("enabled" or "allowed", any case); its
    upstream default when the key is absent (features.go asFlag)."""
    raw = (features or {}).get(flag.key)
    if raw is None or str(raw).lower() not in ("enabled", "disabled", "allowed"):
        return flag.default_enabled
    return str(raw).lower() != "disabled"


def flags_needed(pod_spec: Mapping[str, Any]) -> list[Flag]:
    """The `config-features` flags a Knative revision's pod spec relies on (default-on ones included),
    in a stable order: flag-gated pod fields, volume types, a writable claim, env fieldRefs, sidecars."""
    found: dict[str, Flag] = {}
    for key, flag in POD_FLAGS.items():
        if pod_spec.get(key) not in (None, "", [], {}, False):
            found.setdefault(flag.key, flag)
    for volume in pod_spec.get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        for source, flag in VOLUME_FLAGS.items():
            if source in volume:
                found.setdefault(flag.key, flag)
        claim = volume.get("persistentVolumeClaim")
        if isinstance(claim, Mapping) and claim.get("readOnly") is not True:
            found.setdefault(PVC_WRITE_FLAG.key, PVC_WRITE_FLAG)
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, Mapping)]
    if _uses_field_refs(containers):
        found.setdefault(ENV_FIELD_REF_FLAG, all_flags()[ENV_FIELD_REF_FLAG])
    if len(containers) > 1:
        found.setdefault(MULTI_CONTAINER_FLAG.key, MULTI_CONTAINER_FLAG)
        if _sidecars_probed(containers):
            found.setdefault(MULTI_CONTAINER_PROBING_FLAG.key, MULTI_CONTAINER_PROBING_FLAG)
    return list(found.values())


def _uses_field_refs(containers: Sequence[Mapping[str, Any]]) -> bool:
    """An env var of some container takes its value from a fieldRef or resourceFieldRef."""
    for c in containers:
        for env in c.get("env") or []:
            value_from = env.get("valueFrom") if isinstance(env, Mapping) else None
            if isinstance(value_from, Mapping) and (
                "fieldRef" in value_from or "resourceFieldRef" in value_from
            ):
                return True
    return False


def _sidecars_probed(containers: Sequence[Mapping[str, Any]]) -> bool:
    """A sidecar (a container without ports, or every one after the first when none has ports) has a
    liveness or readiness probe."""
    sidecars = (
        [c for c in containers if not c.get("ports")]
        if any(c.get("ports") for c in containers)
        else containers[1:]
    )
    return any(c.get("livenessProbe") or c.get("readinessProbe") for c in sidecars)


def covered_versions() -> list[Version]:
    """The Knative minor versions these facts describe, oldest first (1.14 to the pinned one)."""
    return [(1, minor) for minor in range(OLDEST_COVERED[1], PINNED[1] + 1)]


def compatibility(version: Version) -> dict[str, str]:
    """What gpuscale emits for a Knative Service on `version`, for the compatibility matrix."""
    new_flags = sorted(f.key for f in all_flags().values() if OLDEST_COVERED < f.since <= version)
    return {
        "knative": version_text(version),
        "startupProbe": "kept"
        if version >= STARTUP_PROBE_SINCE
        else "dropped; liveness initialDelaySeconds raised to its budget",
        "lifecycle (preStop)": "dropped (never accepted)",
        "flag-gated fields": "kept, flags named" + (f" (incl. {', '.join(new_flags)})" if new_flags else ""),
        "containerConcurrency": f"clamped to container-concurrency-max-limit ({CONTAINER_CONCURRENCY_MAX_LIMIT})",
    }


def compatibility_section() -> Any:
    """Knative 1.14 to the pinned version: the Service `migrate-hpa --to knative` writes for each
    (a `facts.matrix.Section`, collected by docs/compatibility.md's generator)."""
    from kubectl_gpuscale.facts.matrix import Section

    rows = [compatibility(v) for v in covered_versions()]
    header = list(rows[0])
    return Section(
        30,
        "Knative Serving",
        "What `migrate-hpa --to knative` writes into a Knative Service for each Knative "
        "version (`--target-versions knative=X.Y`, detected from knative-serving's webhook or controller, "
        "offline the pinned one); fields behind a `config-features` flag are kept and the flag is named.",
        header,
        [[row[h] for h in header] for row in rows],
        [
            "Field masks: knative/serving `pkg/apis/serving/fieldmask.go` (ContainerMask, PodSpecMask) and "
            "`k8s_validation.go`; startupProbe accepted since 1.15 (knative/serving#15309); "
            "containerConcurrency bound by `container-concurrency-max-limit` (config-defaults, default 1000)."
        ],
    )
