"""The names kubectl gpuscale writes into a cluster and reads back: labels, annotations, the field
manager, the config namespace, default URLs. One place for each; everything else imports it.

Pure: strings only, importing it costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROGRAM = "kubectl-gpuscale"

# The namespace of an object whose manifest names none, when the command was given no -n (as kubectl).
DEFAULT_NAMESPACE = "default"


def namespace_of(obj: Mapping[str, Any], *fallbacks: str | None) -> str:
    """The namespace `obj` lives in: its own, else the first of `fallbacks` set (e.g. -n), else ``default``.

    For objects read from files (offline). With a cluster, a verb on one object takes
    ``cluster.namespace_or_default(...)``: the context's namespace, not ``default``.
    """
    own = (obj.get("metadata") or {}).get("namespace")
    return str(own or next((f for f in fallbacks if f), DEFAULT_NAMESPACE))


# Server-side apply field managers.
FIELD_MANAGER = PROGRAM
CONFIG_FIELD_MANAGER = "kubectl-gpuscale-config"

# Our namespace: where `install` records what it did and which Prometheus it found (config.py),
# and where the image pre-pull DaemonSet runs.
CONFIG_NAMESPACE = "gpuscale-system"
CONFIG_NAME = "gpuscale-config"

# Labels on every object we create; install adds the component and the install id.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = PROGRAM
MANAGED_LABELS = {MANAGED_BY_LABEL: MANAGED_BY}
COMPONENT_LABEL = "kubectl-gpuscale/component"
INSTALL_ID_LABEL = "kubectl-gpuscale/install-id"
VERSION_ANNOTATION = "kubectl-gpuscale/version"
PREPULL_IMAGES_ANNOTATION = "kubectl-gpuscale/images"

# migrate-hpa's annotations on the objects it emits.
MIGRATE_PREFIX = "gpuscale.kubectl.dev/"
ORIGINAL_HPA = MIGRATE_PREFIX + "original-hpa"
ENGINE_ANNOTATION = MIGRATE_PREFIX + "engine"
STABILIZATION_REASON = MIGRATE_PREFIX + "scale-down-stabilization"

# checkpoint's helper pods, image build job and restored workloads.
CHECKPOINT_PREFIX = "gpuscale.io/"
CHECKPOINT_HELPER_LABEL = CHECKPOINT_PREFIX + "checkpoint-helper"
CHECKPOINT_PURPOSE_ANNOTATION = CHECKPOINT_PREFIX + "purpose"
RESTORED_FROM_LABEL = CHECKPOINT_PREFIX + "restored-from"
CHECKPOINT_IMAGE_ANNOTATION = CHECKPOINT_PREFIX + "checkpoint-image"

# KEDA's annotations we write or read (kedacore/keda apis/keda/v1alpha1/scaledobject_types.go).
KEDA_PAUSED = "autoscaling.keda.sh/paused"
KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
KEDA_TRANSFER_OWNERSHIP = "scaledobject.keda.sh/transfer-hpa-ownership"
KEDA_HTTP_SKIP_SCALEDOBJECT = "httpscaledobject.keda.sh/skip-scaledobject-creation"

# The TriggerAuthentication carrying KEDA's Prometheus credentials, and its Secret unless told otherwise.
PROMETHEUS_SECRET = "gpuscale-prometheus"

# Default URLs: the Prometheus the kube-prometheus-stack operator serves, and the HTTP add-on's services.
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
HTTP_EXTERNAL_SCALER = "keda-add-ons-http-external-scaler.keda:9090"
HTTP_INTERCEPTOR = "keda-add-ons-http-interceptor-proxy.keda:8080"
