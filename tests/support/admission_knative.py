"""Knative Serving's Service validation webhook, emulated per version for the test API server.

Ported from knative/serving (the rule each check reproduces is named beside it):
- ``pkg/apis/serving/fieldmask.go``: ContainerMask, PodSpecMask (flag-gated pod fields),
  VolumeSourceMask/VolumeMask, VolumeMountMask, ContainerPortMask, ProbeMask;
- ``pkg/apis/serving/k8s_validation.go``: ValidatePodSpec, validateContainers/validateContainersPorts,
  ValidateContainer/validateSidecarContainer, validate (image, reserved names), validateVolume
  (the persistent-volume-write rule), ValidateVolumes (mounted), validateVolumeMounts, validateEnvVar
  (reserved variables), validateEnvValueFrom (fieldRef flag), validateContainerPorts (names, reserved
  ports), portValidation;
- ``pkg/apis/serving/metadata_validation.go``: ValidateContainerConcurrency, ValidateTimeoutSeconds;
- ``pkg/apis/autoscaling/annotation_validation.go``: ValidateAnnotations (class, min/max scale and
  max-scale-limit, floats, window, scale-down-delay, last-pod-retention, metric, initial-scale);
- ``pkg/apis/config/features.go`` (defaultFeaturesConfig, asFlag) and ``defaults.go`` for the settings.

It reads what the real webhook reads: the ``config-features``, ``config-defaults`` and
``config-autoscaler`` ConfigMaps in ``knative-serving`` (their upstream defaults when absent), and the
Knative version (the ``webhook`` Deployment's image tag, else the pinned version; or set `version`).
The facts shared with the product (flag names, the startupProbe release) come from
``kubectl_gpuscale.facts.knative``; the checks themselves are written from upstream, not from the
product's builder, so a builder bug shows up as a rejection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.facts import knative as kf

WEBHOOK = "validation.webhook.serving.knative.dev"
NAMESPACE = "knative-serving"
# k8s_validation.go reservedPorts: queue-proxy 8012/8013, admin 8022, metrics 9090/9091, profiling 8008.
RESERVED_PORTS = frozenset({8012, 8013, 8022, 9090, 9091, 8008})
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration (``time.ParseDuration``: ``90s``, ``1h30m``, ``0``), None when invalid."""
    text = str(text).strip()
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if not body or not _DURATION.match(body):
        return None
    return sign * sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(body))


@dataclass(frozen=True)
class KnativeConfig:
    """What the webhook validates against."""

    version: kf.Version = kf.PINNED
    features: Mapping[str, str] = field(default_factory=dict)
    container_concurrency_max_limit: int = kf.CONTAINER_CONCURRENCY_MAX_LIMIT
    allow_container_concurrency_zero: bool = kf.ALLOW_CONTAINER_CONCURRENCY_ZERO
    max_revision_timeout_seconds: int = kf.MAX_REVISION_TIMEOUT_S
    max_scale_limit: int = 0
    allow_zero_initial_scale: bool = False

    def on(self, flag: kf.Flag) -> bool:
        """features.go: a flag is on unless Disabled (Enabled and Allowed both pass validation)."""
        return flag.exists_in(self.version) and kf.flag_enabled(dict(self.features), flag)


@dataclass
class _Errors:
    items: list[str] = field(default_factory=list)

    def add(self, message: str, *paths: str) -> None:
        self.items.append(f"{message}: {', '.join(paths)}" if paths else message)


def _disallowed(errs: _Errors, base: str, obj: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """apis.CheckDisallowedFields against a mask: every set field outside `allowed`."""
    for key in sorted(obj):
        if key not in allowed and obj[key] not in (None, "", [], {}, False, 0):
            errs.add("must not set the field(s)", f"{base}.{key}")


def validate_service(obj: Mapping[str, Any], cfg: KnativeConfig) -> list[str]:
    """Every error Knative's webhook raises for a serving.knative.dev/v1 Service (empty: admitted)."""
    errs = _Errors()
    template = ((obj.get("spec") or {}).get("template")) or {}
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    _annotations(errs, meta.get("annotations") or {}, cfg)
    _pod_spec(errs, spec, cfg)
    _revision(errs, spec, cfg)
    return errs.items


def _pod_spec(errs: _Errors, ps: Mapping[str, Any], cfg: KnativeConfig) -> None:
    """k8s_validation.go ValidatePodSpec with fieldmask.go PodSpecMask."""
    base = "spec.template.spec"
    allowed = set(kf.POD_FIELDS) | set(kf.REVISION_FIELDS)
    allowed |= {key for key, flag in kf.POD_FLAGS.items() if cfg.on(flag)}
    _disallowed(errs, base, {k: v for k, v in ps.items() if k != "automountServiceAccountToken"}, allowed)
    # PodSpecMask: "Only allow setting AutomountServiceAccountToken to false".
    if ps.get("automountServiceAccountToken") is True:
        errs.add("must not set the field(s)", f"{base}.automountServiceAccountToken")
    containers = [c for c in ps.get("containers") or [] if isinstance(c, Mapping)]
    mounted: dict[str, list[Mapping[str, Any]]] = {}
    for c in [*containers, *(ps.get("initContainers") or [])]:
        for m in c.get("volumeMounts") or []:
            mounted.setdefault(str(m.get("name")), []).append(m)
    volumes = _volumes(errs, ps.get("volumes") or [], mounted, cfg)
    if not containers:
        errs.add("missing field(s)", f"{base}.containers")
        return
    if len(containers) > 1:
        # validateContainers + validateContainersPorts
        if not cfg.on(kf.MULTI_CONTAINER_FLAG):
            errs.add(f"multi-container is off, but found {len(containers)} containers")
            return
        ports = sum(len(c.get("ports") or []) for c in containers)
        if ports == 0:
            errs.add("missing field(s)", f"{base}.containers[*].ports")
        elif ports > 1:
            errs.add("more than one container port is set", f"{base}.containers[*].ports")
    names: set[str] = set()
    for i, c in enumerate(containers):
        name = str(c.get("name") or "")
        if name and name in names:
            errs.add(f'duplicate container name "{name}"', f"{base}.containers[{i}].name")
        names.add(name)
        serving = len(containers) == 1 or bool(c.get("ports"))
        _container(errs, f"{base}.containers[{i}]", c, serving, volumes=volumes, cfg=cfg)


def _volumes(
    errs: _Errors, vs: list[Any], mounted: Mapping[str, list[Mapping[str, Any]]], cfg: KnativeConfig
) -> dict[str, Mapping[str, Any]]:
    """k8s_validation.go ValidateVolumes/validateVolume with VolumeSourceMask and the PVC rules."""
    seen: dict[str, Mapping[str, Any]] = {}
    for i, v in enumerate(vs):
        base = f"spec.template.spec.volumes[{i}]"
        name = str(v.get("name") or "")
        if name in seen:
            errs.add(f'duplicate volume name "{name}"', f"{base}.name")
        if name not in mounted:
            errs.add(f'volume with name "{name}" not mounted', f"{base}.name")
        allowed = set(kf.VOLUME_SOURCES) | {"name"} | {s for s, f in kf.VOLUME_FLAGS.items() if cfg.on(f)}
        _disallowed(errs, base, v, allowed)
        sources = [k for k in v if k != "name"]
        if not sources:
            errs.add(
                "expected exactly one, got neither",
                f"{base}.configMap",
                f"{base}.projected",
                f"{base}.secret",
            )
        elif len(sources) > 1:
            errs.add("expected exactly one, got both", *(f"{base}.{s}" for s in sources))
        claim = v.get("persistentVolumeClaim")
        if (
            isinstance(claim, Mapping)
            and cfg.on(kf.VOLUME_FLAGS["persistentVolumeClaim"])
            and not claim.get("readOnly")
            and not cfg.on(kf.PVC_WRITE_FLAG)
        ):
            errs.add(
                f"Persistent volume write support is disabled, but found persistent volume claim "
                f"{claim.get('claimName')} that is not read-only"
            )
        seen[name] = v
    return seen


def _container(
    errs: _Errors,
    base: str,
    c: Mapping[str, Any],
    serving: bool,
    *,
    volumes: Mapping[str, Mapping[str, Any]],
    cfg: KnativeConfig,
) -> None:
    """ContainerMask + ValidateContainer (serving) / validateSidecarContainer, and validate."""
    _disallowed(errs, base, c, kf.container_fields(cfg.version))
    name = str(c.get("name") or "")
    if name in kf.RESERVED_CONTAINER_NAMES:
        errs.add(f'"{name}" is a reserved container name', f"{base}.name")
    if not c.get("image"):
        errs.add("missing field(s)", f"{base}.image")
    if serving:
        _serving_ports(errs, base, c)
        _serving_probes(errs, base, c)
    else:
        # validateSidecarContainer: liveness/readiness only with multi-container-probing; a startupProbe
        # is the kubelet's (PR #15461 runs it on sidecars).
        for probe in _PROBES[:2]:
            if c.get(probe) and not cfg.on(kf.MULTI_CONTAINER_PROBING_FLAG):
                errs.add("must not set the field(s)", f"{base}.{probe}")
    _env(errs, base, c, serving, cfg)
    _mounts(errs, base, c, volumes)


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _serving_ports(errs: _Errors, base: str, c: Mapping[str, Any]) -> None:
    """portValidation and validateContainerPorts: one port, a protocol name, not reserved, TCP."""
    ports = c.get("ports") or []
    if len(ports) > 1:  # portValidation
        errs.add("More than one container port is set", f"{base}.ports")
    for j, p in enumerate(ports):
        _disallowed(errs, f"{base}.ports[{j}]", p, kf.CONTAINER_PORT_FIELDS)
        if p.get("name", "") not in kf.PORT_NAMES:
            errs.add(f"invalid value: {p.get('name')}", f"{base}.ports[{j}].name")
        port = p.get("containerPort")
        if port in RESERVED_PORTS:
            errs.add(f"port {port} is reserved", f"{base}.ports[{j}].containerPort")
        if p.get("protocol", "") not in ("", "TCP"):  # validateContainerPorts: TCP only
            errs.add(f"invalid value: {p.get('protocol')}", f"{base}.ports[{j}].protocol")


def _serving_probes(errs: _Errors, base: str, c: Mapping[str, Any]) -> None:
    """ProbeMask, and validateProbe: exactly one handler."""
    for probe in _PROBES:
        if isinstance(c.get(probe), Mapping):
            _disallowed(errs, f"{base}.{probe}", c[probe], kf.PROBE_FIELDS)
            handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if c[probe].get(h) is not None]
            if len(handlers) > 1:
                errs.add("expected exactly one, got both", *(f"{base}.{probe}.{h}" for h in handlers))


def _env(errs: _Errors, base: str, c: Mapping[str, Any], serving: bool, cfg: KnativeConfig) -> None:
    """Reserved variables, and the valueFrom sources allowed (field refs behind their flag)."""
    reserved = kf.RESERVED_ENV if serving else kf.RESERVED_SIDECAR_ENV
    for j, env in enumerate(c.get("env") or []):
        if env.get("name") in reserved:
            errs.add(f'"{env.get("name")}" is a reserved environment variable', f"{base}.env[{j}].name")
        source = env.get("valueFrom") or {}
        fieldref_on = cfg.on(kf.all_flags()[kf.ENV_FIELD_REF_FLAG])
        allowed = {"configMapKeyRef", "secretKeyRef"} | (
            {"fieldRef", "resourceFieldRef"} if fieldref_on else set()
        )
        _disallowed(errs, f"{base}.env[{j}].valueFrom", source, allowed)


def _mounts(errs: _Errors, base: str, c: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]]) -> None:
    """VolumeMountMask and validateVolumeMounts: a matching volume, absolute unique unreserved paths."""
    paths: set[str] = set()
    for j, m in enumerate(c.get("volumeMounts") or []):
        where = f"{base}.volumeMounts[{j}]"
        _disallowed(errs, where, m, kf.VOLUME_MOUNT_FIELDS)
        path = str(m.get("mountPath") or "")
        if m.get("name") not in volumes:
            errs.add(f"volumeMount has no matching volume: {m.get('name')}", f"{where}.name")
        if not path.startswith("/"):
            errs.add("must be an absolute path", f"{where}.mountPath")
        if path.rstrip("/") in kf.RESERVED_PATHS or path == "/":
            errs.add(f"mountPath {path!r} is a reserved path", f"{where}.mountPath")
        if path in paths:
            errs.add(f'"{path}" must be unique', f"{where}.mountPath")
        paths.add(path)
        claim = (volumes.get(str(m.get("name"))) or {}).get("persistentVolumeClaim")
        if isinstance(claim, Mapping) and claim.get("readOnly") and not m.get("readOnly"):
            errs.add("volume is readOnly but volume mount is not", f"{where}.readOnly")


def _revision(errs: _Errors, spec: Mapping[str, Any], cfg: KnativeConfig) -> None:
    """metadata_validation.go ValidateContainerConcurrency and ValidateTimeoutSeconds."""
    cc = spec.get("containerConcurrency")
    if cc is not None:
        low = 0 if cfg.allow_container_concurrency_zero else 1
        if not isinstance(cc, int) or cc < low or cc > cfg.container_concurrency_max_limit:
            errs.add(
                f"expected {low} <= {cc} <= {cfg.container_concurrency_max_limit}",
                "spec.template.spec.containerConcurrency",
            )
    timeout = spec.get("timeoutSeconds")
    if timeout not in (None, 0) and (
        not isinstance(timeout, int) or timeout < 0 or timeout > cfg.max_revision_timeout_seconds
    ):
        errs.add(
            f"expected 0 <= {timeout} <= {cfg.max_revision_timeout_seconds}",
            "spec.template.spec.timeoutSeconds",
        )


def _float(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_AS = "autoscaling.knative.dev/"
_WHERE = "spec.template.metadata.annotations."


def _annotations(errs: _Errors, anns: Mapping[str, str], cfg: KnativeConfig) -> None:
    """autoscaling annotation_validation.go ValidateAnnotations (kebab-case keys), plus the
    progress-deadline annotation (a positive duration; deploy.go reads it as "already validated")."""
    p, where = _AS, _WHERE
    cls = anns.get(p + "class")
    if cls is not None and cls.endswith(".knative.dev") and cls not in (kf.KPA_CLASS, kf.HPA_CLASS):
        errs.add(f"invalid value: {cls}", where + p + "class")  # validateClass
    _scale_bounds(errs, anns, cfg)
    _floats(errs, anns)
    _durations(errs, anns)
    metric = anns.get(p + "metric")
    if metric is not None:  # validateMetric
        klass = cls or kf.KPA_CLASS
        if (klass == kf.KPA_CLASS and metric not in ("concurrency", "rps")) or (
            klass == kf.HPA_CLASS and not metric
        ):
            errs.add(f"invalid value: {metric}", where + p + "metric")
    if p + "initial-scale" in anns:  # validateInitialScale
        text = str(anns[p + "initial-scale"])
        if not text.isdigit() or (int(text) == 0 and not cfg.allow_zero_initial_scale):
            errs.add(f"invalid value: {text}", where + p + "initial-scale")
    deadline = anns.get("serving.knative.dev/progress-deadline")
    if deadline is not None:
        d = go_duration(deadline)
        if d is None or d <= 0:
            errs.add(f"invalid value: {deadline}", where + "serving.knative.dev/progress-deadline")


def _scale_bounds(errs: _Errors, anns: Mapping[str, str], cfg: KnativeConfig) -> None:
    """getIntGE0 for min-scale/max-scale, validateMinMaxScale and validateMaxScaleWithinLimit."""
    p, where = _AS, _WHERE
    bounds: dict[str, int] = {}
    for key in ("min-scale", "max-scale"):  # getIntGE0
        if p + key in anns:
            text = str(anns[p + key])
            if not re.fullmatch(r"[+-]?\d+", text.strip()):
                errs.add(f"invalid value: {text}", where + p + key)
            elif not 0 <= int(text) <= 2**31 - 1:
                errs.add(f"expected 0 <= {text} <= 2147483647", where + p + key)
            else:
                bounds[key] = int(text)
    low, high = bounds.get("min-scale", 0), bounds.get("max-scale", 0)
    if high != 0 and high < low:  # validateMinMaxScale
        errs.add(
            f"max-scale={high} is less than min-scale={low}", where + p + "max-scale", where + p + "min-scale"
        )
    if p + "max-scale" in anns and cfg.max_scale_limit:  # validateMaxScaleWithinLimit
        if high > cfg.max_scale_limit:
            errs.add(f"expected 1 <= {high} <= {cfg.max_scale_limit}", where + p + "max-scale")
        if high == 0:
            errs.add(
                f"max-scale=0 (unlimited), must be less than {cfg.max_scale_limit}", where + p + "max-scale"
            )


def _floats(errs: _Errors, anns: Mapping[str, str]) -> None:
    """validateFloats (the panic window and threshold, target utilization) and the target's minimum."""
    p, where = _AS, _WHERE
    ranges = {
        "panic-window-percentage": kf.PANIC_WINDOW_PERCENTAGE_BOUNDS,
        "panic-threshold-percentage": kf.PANIC_THRESHOLD_PERCENTAGE_BOUNDS,
        "target-utilization-percentage": (1.0, 100.0),
    }
    for key, (lo, hi) in ranges.items():  # validateFloats
        if p + key in anns:
            fv = _float(anns[p + key])
            if fv is None:
                errs.add(f"invalid value: {anns[p + key]}", where + p + key)
            elif not lo <= fv <= hi:
                errs.add(f"expected {lo:g} <= {anns[p + key]} <= {hi:g}", where + p + key)
    if p + "target" in anns:
        fv = _float(anns[p + "target"])
        if fv is None or fv < kf.TARGET_MIN:
            errs.add(
                f"target {anns[p + 'target']} should be at least {kf.TARGET_MIN:g}", where + p + "target"
            )


def _durations(errs: _Errors, anns: Mapping[str, str]) -> None:
    """validateWindow, validateScaleDownDelay and validateLastPodRetention."""
    p, where = _AS, _WHERE
    if p + "window" in anns:  # validateWindow
        d = go_duration(anns[p + "window"])
        if d is None:
            errs.add(f"invalid value: {anns[p + 'window']}", where + p + "window")
        elif not kf.WINDOW_MIN_S <= d <= kf.WINDOW_MAX_S:
            errs.add(f"expected 6s <= {anns[p + 'window']} <= 1h0m0s", where + p + "window")
        elif d != int(d):
            errs.add("must be specified with at most second precision", where + p + "window")
    for key in (
        "scale-down-delay",
        "scale-to-zero-pod-retention-period",
    ):  # validateScaleDownDelay, LastPodRetention
        if p + key in anns:
            d = go_duration(anns[p + key])
            if d is None:
                errs.add(f"invalid value: {anns[p + key]}", where + p + key)
            elif not 0 <= d <= kf.WINDOW_MAX_S:
                errs.add(f"expected 0s <= {anns[p + key]} <= 1h0m0s", where + p + key)
            elif key == "scale-down-delay" and d != int(d):
                errs.add("must be specified with at most second precision", where + p + key)


def _data(server: Any, name: str) -> dict[str, str]:
    cm = server.get_object("v1", "ConfigMap", name, NAMESPACE)
    return dict((cm or {}).get("data") or {})


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def cluster_config(server: Any, version: kf.Version | None = None) -> KnativeConfig:
    """The webhook's configuration as the test API server holds it (upstream defaults when absent)."""
    if version is None:
        webhook = server.get_object("apps/v1", "Deployment", "webhook", NAMESPACE)
        images = [
            c.get("image", "")
            for c in (((webhook or {}).get("spec") or {}).get("template") or {})
            .get("spec", {})
            .get("containers")
            or []
        ]
        tags = [i.rsplit(":", 1)[-1] for i in images if ":" in i.rsplit("/", 1)[-1]]
        version = kf.parse_version(tags[0]) if tags else kf.PINNED
    defaults, autoscaler = _data(server, "config-defaults"), _data(server, "config-autoscaler")
    return KnativeConfig(
        version=version,
        features=_data(server, "config-features"),
        container_concurrency_max_limit=_int(
            defaults.get("container-concurrency-max-limit"), kf.CONTAINER_CONCURRENCY_MAX_LIMIT
        ),
        allow_container_concurrency_zero=str(defaults.get("allow-container-concurrency-zero", "true")).lower()
        == "true",
        max_revision_timeout_seconds=_int(
            defaults.get("max-revision-timeout-seconds"), kf.MAX_REVISION_TIMEOUT_S
        ),
        max_scale_limit=_int(autoscaler.get("max-scale-limit"), 0),
        allow_zero_initial_scale=str(autoscaler.get("allow-zero-initial-scale", "false")).lower() == "true",
    )


class KnativeAdmission:
    """The webhook as an admission hook of the test API server (`AdmissionRequest` -> None).

    Raises the test server's ApiError (400, BadRequest, the real denial text) when Knative would
    reject a Service. `version` pins the Knative version (None: read from the cluster).
    """

    def __init__(self, server: Any, version: kf.Version | None = None) -> None:
        self.server = server
        self.version = version
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: Any) -> None:
        self.check(request.operation, request.obj, request.old)

    def check(self, verb: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        """Deny (raise the test server's ApiError) when Knative's webhook would reject ``obj``."""
        if obj.get("kind") != "Service" or not str(obj.get("apiVersion", "")).startswith(
            "serving.knative.dev/"
        ):
            return
        meta = obj.get("metadata") or {}
        self.seen.append((verb, f"{meta.get('namespace')}/{meta.get('name')}"))
        errors = validate_service(obj, cluster_config(self.server, self.version))
        if errors:
            from tests.support.apiserver import ApiError

            raise ApiError(
                400,
                "BadRequest",
                f'admission webhook "{WEBHOOK}" denied the request: validation failed: {"; ".join(errors)}',
            )
