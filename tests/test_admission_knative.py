"""The test API server's Knative Service admission: each rule rejects what upstream rejects and admits
what upstream admits. Cases come from knative/serving's table tests (pkg/apis/serving/
k8s_validation_test.go TestPodSpecValidation, TestPodSpecMultiContainerValidation,
TestPodSpecFeatureValidation; pkg/apis/autoscaling/annotation_validation_test.go), named after them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_gpuscale.facts import knative as kf
from kubectl_gpuscale.kube import Cluster
from tests.support.admission_knative import KnativeAdmission, KnativeConfig, go_duration, validate_service
from tests.support.apiserver import ApiError
from tests.support.kube_fixtures import TestApiServer


def ksvc(spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Service whose template spec is `spec` (one busybox container by default)."""
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "ml"},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": spec or {"containers": [{"image": "busybox"}]},
            }
        },
    }


def pvc_spec(claim_ro: bool, mount_ro: bool) -> dict[str, Any]:
    return {
        "containers": [
            {
                "image": "busybox",
                "volumeMounts": [{"name": "foo", "mountPath": "/data", "readOnly": mount_ro}],
            }
        ],
        "volumes": [{"name": "foo", "persistentVolumeClaim": {"claimName": "myclaim", "readOnly": claim_ro}}],
    }


ON = "enabled"
PVC = {"kubernetes.podspec-persistent-volume-claim": ON}
PVC_WRITE = {**PVC, "kubernetes.podspec-persistent-volume-write": ON}

# (name as upstream, spec, config-features, expected error fragment or None)
POD_SPEC_CASES: list[tuple[str, dict[str, Any], dict[str, str], str | None]] = [
    ("valid", {"containers": [{"image": "helloworld"}]}, {}, None),
    (
        "with automountServiceAccountToken (ok)",
        {"automountServiceAccountToken": False, "containers": [{"image": "helloworld"}]},
        {},
        None,
    ),
    (
        "with automountServiceAccountToken = true",
        {"automountServiceAccountToken": True, "containers": [{"image": "helloworld"}]},
        {},
        "must not set the field(s): spec.template.spec.automountServiceAccountToken",
    ),
    (
        "bad pod spec (lifecycle)",
        {
            "containers": [
                {"name": "steve", "image": "helloworld", "lifecycle": {"preStop": {"sleep": {"seconds": 15}}}}
            ]
        },
        {},
        "must not set the field(s): spec.template.spec.containers[0].lifecycle",
    ),
    ("missing all", {"containers": []}, {}, "missing field(s): spec.template.spec.containers"),
    (
        "extra field",
        {"containers": [{"image": "busybox"}], "terminationGracePeriodSeconds": 5},
        {},
        "must not set the field(s): spec.template.spec.terminationGracePeriodSeconds",
    ),
    (
        "PVC not read-only, mount read-only, write disabled by default",
        pvc_spec(False, True),
        PVC,
        "Persistent volume write support is disabled, but found persistent volume claim myclaim that is not read-only",
    ),
    (
        "PVC not read-only, mount not read-only, write disabled by default",
        pvc_spec(False, False),
        PVC,
        "Persistent volume write support is disabled",
    ),
    (
        "PVC read-only, mount not read-only, write disabled by default",
        pvc_spec(True, False),
        PVC,
        "volume is readOnly but volume mount is not",
    ),
    ("PVC read-only, write disabled by default", pvc_spec(True, True), PVC, None),
    ("PVC not read-only, write enabled", pvc_spec(False, True), PVC_WRITE, None),
    ("PVC read-only, write enabled", pvc_spec(False, False), PVC_WRITE, None),
    (
        "PVC with the claim flag off",
        pvc_spec(True, True),
        {},
        "must not set the field(s): spec.template.spec.volumes[0].persistentVolumeClaim",
    ),
    (
        "flag enabled: multiple containers with no port",
        {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "helloworld"}]},
        {},
        "missing field(s): spec.template.spec.containers[*].ports",
    ),
    (
        "flag enabled: multiple containers with multiple port",
        {
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 8888}]},
                {"name": "b", "image": "helloworld", "ports": [{"containerPort": 9999}]},
            ]
        },
        {},
        "more than one container port is set",
    ),
    (
        "flag enabled: probes are not allowed for non serving containers",
        {
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 8888}]},
                {"name": "b", "image": "helloworld", "livenessProbe": {"timeoutSeconds": 1}},
            ]
        },
        {},
        "must not set the field(s): spec.template.spec.containers[1].livenessProbe",
    ),
    (
        "sidecar probes with multi-container-probing",
        {
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 8888}]},
                {"name": "b", "image": "helloworld", "readinessProbe": {"tcpSocket": {"port": 9000}}},
            ]
        },
        {"multi-container-probing": "enabled"},
        None,
    ),
    (
        "sidecar startupProbe needs no flag (PR #15461)",
        {
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 8888}]},
                {"name": "b", "image": "helloworld", "startupProbe": {"tcpSocket": {"port": 9000}}},
            ]
        },
        {},
        None,
    ),
    (
        "flag enabled: multiple containers with illegal env variable defined for side car",
        {
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 8888}]},
                {
                    "name": "b",
                    "image": "helloworld",
                    "env": [{"name": "PORT", "value": "Foo"}, {"name": "K_SERVICE", "value": "Foo"}],
                },
            ]
        },
        {},
        '"K_SERVICE" is a reserved environment variable: spec.template.spec.containers[1].env[1].name',
    ),
    (
        "reserved env PORT on the serving container",
        {
            "containers": [
                {
                    "image": "ghcr.io/huggingface/text-generation-inference",
                    "env": [{"name": "PORT", "value": "80"}],
                }
            ]
        },
        {},
        '"PORT" is a reserved environment variable',
    ),
    (
        "flag disabled: more than one container",
        {"containers": [{"image": "busybox", "ports": [{"containerPort": 8888}]}, {"image": "helloworld"}]},
        {"multi-container": "disabled"},
        "multi-container is off, but found 2 containers",
    ),
    (
        "volume not mounted",
        {
            "containers": [{"image": "busybox"}],
            "volumes": [{"name": "the-name", "secret": {"secretName": "foo"}}],
        },
        {},
        'volume with name "the-name" not mounted',
    ),
    (
        "reserved mount path",
        {
            "containers": [{"image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/var/log"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
        {},
        "is a reserved path",
    ),
    (
        "emptyDir is enabled by default (dshm)",
        {
            "containers": [
                {"image": "vllm/vllm-openai", "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}
            ],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
        },
        {},
        None,
    ),
    (
        "port name must select a protocol",
        {"containers": [{"image": "busybox", "ports": [{"name": "http", "containerPort": 8000}]}]},
        {},
        "invalid value: http",
    ),
    (
        "reserved port",
        {"containers": [{"image": "busybox", "ports": [{"containerPort": 8012}]}]},
        {},
        "port 8012 is reserved",
    ),
    (
        "UDP port",
        {"containers": [{"image": "busybox", "ports": [{"containerPort": 8000, "protocol": "UDP"}]}]},
        {},
        "invalid value: UDP",
    ),
    (
        "with volume name collision",
        {
            "containers": [
                {
                    "image": "helloworld",
                    "volumeMounts": [{"mountPath": "/mount/path", "name": "the-name", "readOnly": True}],
                }
            ],
            "volumes": [
                {"name": "the-name", "secret": {"secretName": "foo"}},
                {"name": "the-name", "configMap": {}},
            ],
        },
        {},
        'duplicate volume name "the-name"',
    ),
    (
        "with volume mount path collision",
        {
            "containers": [
                {
                    "image": "helloworld",
                    "volumeMounts": [
                        {"mountPath": "/mount/path", "name": "the-foo", "readOnly": True},
                        {"mountPath": "/mount/path", "name": "the-bar", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "the-foo", "secret": {"secretName": "foo"}},
                {"name": "the-bar", "secret": {"secretName": "bar"}},
            ],
        },
        {},
        '"/mount/path" must be unique',
    ),
    (
        "reserved container name",
        {"containers": [{"name": "queue-proxy", "image": "busybox"}]},
        {},
        '"queue-proxy" is a reserved container name',
    ),
    (
        "missing image",
        {"containers": [{"name": "c"}]},
        {},
        "missing field(s): spec.template.spec.containers[0].image",
    ),
    (
        "probe with two handlers",
        {
            "containers": [
                {
                    "image": "busybox",
                    "readinessProbe": {"httpGet": {"path": "/"}, "tcpSocket": {"port": 8080}},
                }
            ]
        },
        {},
        "expected exactly one, got both",
    ),
    (
        "fieldRef env needs its flag",
        {
            "containers": [
                {
                    "image": "busybox",
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                }
            ]
        },
        {},
        "must not set the field(s): spec.template.spec.containers[0].env[0].valueFrom.fieldRef",
    ),
    (
        "fieldRef env with its flag",
        {
            "containers": [
                {
                    "image": "busybox",
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                }
            ]
        },
        {"kubernetes.podspec-fieldref": "enabled"},
        None,
    ),
]

# TestPodSpecFeatureValidation: each flag-gated pod field is rejected with the flag off, admitted with it on.
FEATURE_CASES: list[tuple[str, Any]] = [
    (
        "affinity",
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
    ),
    (
        "topologySpreadConstraints",
        [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}],
    ),
    ("nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    ("tolerations", [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
    ("runtimeClassName", "nvidia"),
    ("securityContext", {"runAsUser": 1000}),
    ("schedulerName", "gpu-scheduler"),
    ("dnsPolicy", "ClusterFirstWithHostNet"),
    ("priorityClassName", "inference"),
    ("initContainers", [{"name": "fetch", "image": "busybox"}]),
]


@pytest.mark.parametrize(
    ("name", "spec", "features", "error"), POD_SPEC_CASES, ids=[c[0] for c in POD_SPEC_CASES]
)
def test_pod_spec_validation(
    name: str, spec: dict[str, Any], features: dict[str, str], error: str | None
) -> None:
    """k8s_validation.go ValidatePodSpec (with fieldmask.go PodSpecMask/ContainerMask, validateVolume,
    validateContainersPorts, validateSidecarContainer, validateEnvVar, validateVolumeMounts,
    validateContainerPorts): TestPodSpecValidation / TestPodSpecMultiContainerValidation rows."""
    errors = validate_service(ksvc(spec), KnativeConfig(features=features))
    if error is None:
        assert errors == []
    else:
        assert any(error in e for e in errors), errors


@pytest.mark.parametrize(("field", "value"), FEATURE_CASES, ids=[c[0] for c in FEATURE_CASES])
def test_pod_spec_feature_validation(field: str, value: Any) -> None:
    """fieldmask.go PodSpecMask: a flag-gated field is rejected while its config-features flag is off
    (the default, features.go defaultFeaturesConfig) and admitted once it is on (TestPodSpecFeatureValidation)."""
    spec = {"containers": [{"image": "busybox"}], field: value}
    off = validate_service(ksvc(spec), KnativeConfig())
    assert f"must not set the field(s): spec.template.spec.{field}" in off
    flag = kf.POD_FLAGS[field].key
    assert validate_service(ksvc(spec), KnativeConfig(features={flag: "Enabled"})) == []
    assert validate_service(ksvc(spec), KnativeConfig(features={flag: "allowed"})) == []


def test_startup_probe_by_version() -> None:
    """fieldmask.go ContainerMask: startupProbe is admitted since 1.15 (knative/serving PR #15309), rejected
    before (the 'must not set the field(s): spec.template.spec.containers[0].startupProbe' of issue #10037)."""
    spec = {
        "containers": [
            {
                "image": "vllm/vllm-openai",
                "startupProbe": {"httpGet": {"path": "/health"}, "failureThreshold": 90},
                "livenessProbe": {"httpGet": {"path": "/health"}},
            }
        ]
    }
    assert validate_service(ksvc(spec), KnativeConfig(version=(1, 15))) == []
    assert validate_service(ksvc(spec), KnativeConfig(version=(1, 14))) == [
        "must not set the field(s): spec.template.spec.containers[0].startupProbe"
    ]


def test_volume_flags_by_version() -> None:
    """VolumeSourceMask: csi exists from 1.18 (PR #15815); before, the flag cannot be turned on."""
    spec = {
        "containers": [{"image": "busybox", "volumeMounts": [{"name": "w", "mountPath": "/models"}]}],
        "volumes": [{"name": "w", "csi": {"driver": "gcsfuse.csi.storage.gke.io"}}],
    }
    features = {"kubernetes.podspec-volumes-csi": "enabled"}
    assert validate_service(ksvc(spec), KnativeConfig(version=(1, 18), features=features)) == []
    assert validate_service(ksvc(spec), KnativeConfig(version=(1, 17), features=features))


@pytest.mark.parametrize(
    ("value", "limit", "ok"),
    [
        (1000, 1000, True),
        (1001, 1000, False),
        (5000, 1000, False),
        (0, 1000, True),
        (-1, 1000, False),
        (50, 40, False),
    ],
)
def test_container_concurrency_bounds(value: int, limit: int, ok: bool) -> None:
    """metadata_validation.go ValidateContainerConcurrency: 0 (allow-container-concurrency-zero) ..
    container-concurrency-max-limit (config-defaults, 1000 by default)."""
    svc = ksvc()
    svc["spec"]["template"]["spec"]["containerConcurrency"] = value
    errors = validate_service(svc, KnativeConfig(container_concurrency_max_limit=limit))
    assert (errors == []) is ok, errors


def test_timeout_seconds_bound() -> None:
    """metadata_validation.go ValidateTimeoutSeconds: timeoutSeconds <= max-revision-timeout-seconds."""
    svc = ksvc()
    svc["spec"]["template"]["spec"]["timeoutSeconds"] = 900
    assert validate_service(svc, KnativeConfig()) == [
        "expected 0 <= 900 <= 600: spec.template.spec.timeoutSeconds"
    ]
    assert validate_service(svc, KnativeConfig(max_revision_timeout_seconds=1200)) == []


A = "autoscaling.knative.dev/"
ANNOTATION_CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("minScale is 0", {A + "min-scale": "0"}, None),
    ("minScale is -1", {A + "min-scale": "-1"}, "expected 0 <= -1 <= 2147483647"),
    ("minScale is foo", {A + "min-scale": "foo"}, "invalid value: foo"),
    (
        "minScale is greater than maxScale",
        {A + "min-scale": "5", A + "max-scale": "2"},
        "max-scale=2 is less than min-scale=5",
    ),
    ("minScale is greater than unlimited maxScale", {A + "min-scale": "5", A + "max-scale": "0"}, None),
    ("window too short", {A + "window": "5s"}, "expected 6s <= 5s <= 1h0m0s"),
    ("window too long", {A + "window": "365h"}, "expected 6s <= 365h <= 1h0m0s"),
    ("window sub-second", {A + "window": "10.5s"}, "at most second precision"),
    ("window ok", {A + "window": "1m"}, None),
    ("target 0", {A + "target": "0"}, "target 0 should be at least 0.01"),
    ("target ok", {A + "target": "0.01"}, None),
    ("panic window percentage too high", {A + "panic-window-percentage": "101"}, "expected 1 <= 101 <= 100"),
    ("panic threshold too low", {A + "panic-threshold-percentage": "100"}, "expected 110 <= 100 <= 1000"),
    ("target utilization 0", {A + "target-utilization-percentage": "0"}, "expected 1 <= 0 <= 100"),
    ("scale-down-delay too long", {A + "scale-down-delay": "2h"}, "expected 0s <= 2h <= 1h0m0s"),
    ("scale-down-delay sub-second", {A + "scale-down-delay": "1.5s"}, "at most second precision"),
    ("retention too long", {A + "scale-to-zero-pod-retention-period": "2h"}, "expected 0s <= 2h <= 1h0m0s"),
    ("invalid class", {A + "class": "foo.knative.dev"}, "invalid value: foo.knative.dev"),
    ("other class left alone", {A + "class": "keda.sh", A + "metric": "anything"}, None),
    ("kpa metric cpu", {A + "metric": "cpu"}, "invalid value: cpu"),
    ("initial scale 0 not allowed by default", {A + "initial-scale": "0"}, "invalid value: 0"),
    (
        "progress deadline not a duration",
        {"serving.knative.dev/progress-deadline": "ten minutes"},
        "invalid value: ten minutes",
    ),
]


@pytest.mark.parametrize(
    ("name", "annotations", "error"), ANNOTATION_CASES, ids=[c[0] for c in ANNOTATION_CASES]
)
def test_autoscaling_annotations(name: str, annotations: dict[str, str], error: str | None) -> None:
    """annotation_validation.go ValidateAnnotations (validateMinMaxScale, validateWindow, validateFloats,
    validateScaleDownDelay, validateLastPodRetention, validateClass, validateMetric, validateInitialScale):
    rows of annotation_validation_test.go, kebab-case keys; register.go bounds (window 6s-1h, target >= 0.01)."""
    errors = validate_service(ksvc(annotations=annotations), KnativeConfig())
    if error is None:
        assert errors == []
    else:
        assert any(error in e for e in errors), errors


def test_max_scale_limit() -> None:
    """validateMaxScaleWithinLimit: with config-autoscaler max-scale-limit set, max-scale above it or 0 is rejected."""
    cfg = KnativeConfig(max_scale_limit=10)
    assert validate_service(ksvc(annotations={A + "max-scale": "11"}), cfg)
    assert validate_service(ksvc(annotations={A + "max-scale": "0"}), cfg)
    assert validate_service(ksvc(annotations={A + "max-scale": "10"}), cfg) == []


def test_go_duration() -> None:
    """time.ParseDuration as the webhook uses it."""
    assert go_duration("1h30m") == 5400 and go_duration("600s") == 600 and go_duration("0") == 0
    assert go_duration("10") is None and go_duration("1d") is None


def test_hook_denies_through_http_with_the_real_message(apiserver: TestApiServer, cluster: Cluster) -> None:
    """Through the kubernetes client over HTTP: the denial is a 400 Status whose message is the webhook's;
    nothing is stored. The ConfigMap and the webhook's image tag drive it, as in a cluster."""
    from kubectl_gpuscale.errors import GpuscaleError

    bad = ksvc(
        {"containers": [{"image": "vllm/vllm-openai", "lifecycle": {"preStop": {"sleep": {"seconds": 15}}}}]}
    )
    with pytest.raises(GpuscaleError, match="denied the request: validation failed: must not set the field"):
        cluster.apply(copy.deepcopy(bad))
    assert apiserver.get_object("serving.knative.dev/v1", "Service", "s", "ml") is None
    apiserver.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "webhook", "namespace": "knative-serving"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "webhook",
                                "image": "gcr.io/knative-releases/knative.dev/serving/cmd/webhook:v1.14.2",
                            }
                        ]
                    }
                }
            },
        }
    )
    probed = ksvc(
        {"containers": [{"image": "vllm/vllm-openai", "startupProbe": {"tcpSocket": {"port": 8000}}}]}
    )
    with pytest.raises(GpuscaleError, match=r"containers\[0\].startupProbe"):
        cluster.apply(copy.deepcopy(probed))
    hook = next(h for h in apiserver.admission if isinstance(h, KnativeAdmission))
    hook.version = (1, 15)
    cluster.apply(copy.deepcopy(probed))
    assert apiserver.get_object("serving.knative.dev/v1", "Service", "s", "ml")
    assert ("CREATE", "ml/s") in hook.seen


def test_hook_ignores_core_services() -> None:
    """Only serving.knative.dev Services go through Knative's webhook."""

    class NoServer:
        def get_object(self, *a: Any) -> None:
            raise AssertionError("not consulted")

    KnativeAdmission(NoServer()).check(
        "CREATE", {"apiVersion": "v1", "kind": "Service", "metadata": {}}, None
    )


def test_hook_raises_the_servers_status_error() -> None:
    """A denial is the test server's ApiError: 400 BadRequest, as the API server answers a webhook denial."""
    hook = KnativeAdmission(None, version=(1, 23))
    hook.server = type("S", (), {"get_object": staticmethod(lambda *a: None)})()
    with pytest.raises(ApiError) as info:
        hook.check("CREATE", ksvc({"containers": [{"image": "x", "tty": True}]}), None)
    assert info.value.code == 400 and "containers[0].tty" in str(info.value.status()["message"])
