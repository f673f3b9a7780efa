"""The image pre-pull DaemonSet: on every GPU node, an init container per inference image
that only pulls it, then a pause container that keeps the pod (and so the image) there.

Pattern from ../shared/reference/gpu-autoscaling-guide.txt ("Pre-pull images via DaemonSet").
Pure: builds plain dicts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kubectl_gpuscale.install.catalog import GPU_RESOURCE, PAUSE_IMAGE, PREPULL
from kubectl_gpuscale.names import MANAGED_LABELS, PREPULL_IMAGES_ANNOTATION

PREPULL_NAME = PREPULL.main_workload
DEFAULT_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
PULL_COMMAND = ["sh", "-c", "true"]


def _requests_gpu(container: Mapping[str, Any]) -> bool:
    res = container.get("resources") or {}
    for section in ("limits", "requests"):
        value = (res.get(section) or {}).get(GPU_RESOURCE)
        if value not in (None, "", "0", 0):
            return True
    return False


def pod_spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a Deployment/StatefulSet/DaemonSet/Knative Service/LeaderWorkerSet (or {})."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "LeaderWorkerSet":
        spec = ((spec.get("leaderWorkerTemplate") or {}).get("workerTemplate")) or {}
        return spec.get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def gpu_images(workloads: Iterable[Mapping[str, Any]]) -> list[str]:
    """The images of containers that request nvidia.com/gpu, in first-seen order, without duplicates."""
    seen: list[str] = []
    for obj in workloads:
        for container in pod_spec_of(obj).get("containers") or []:
            image = container.get("image")
            if image and _requests_gpu(container) and image not in seen:
                seen.append(image)
    return seen


def _container_name(image: str, used: set[str]) -> str:
    repo = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    base = "pull-" + (re.sub(r"[^a-z0-9-]", "-", repo.lower()).strip("-") or "image")
    base = base[:50].rstrip("-")
    name = base
    if name in used:
        name = f"{base[:43]}-{hashlib.sha256(image.encode()).hexdigest()[:6]}"
    used.add(name)
    return name


def build_daemonset(
    images: Iterable[str],
    *,
    namespace: str = PREPULL.namespace,
    node_selector: Mapping[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    pull_secrets: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The pre-pull DaemonSet for `images` (at least one), on GPU nodes."""
    images = list(dict.fromkeys(images))
    if not images:
        raise ValueError("no images to pre-pull")
    used: set[str] = set()
    match = {"app.kubernetes.io/name": PREPULL_NAME}
    all_labels = {**match, **MANAGED_LABELS, **(labels or {})}
    init = [
        {
            "name": _container_name(image, used),
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(PULL_COMMAND),
            "resources": {
                "requests": {"cpu": "1m", "memory": "8Mi"},
                "limits": {"cpu": "100m", "memory": "100Mi"},
            },
        }
        for image in images
    ]
    pod: dict[str, Any] = {
        "nodeSelector": dict(DEFAULT_NODE_SELECTOR if node_selector is None else node_selector),
        "tolerations": list(GPU_TOLERATIONS if tolerations is None else tolerations),
        "initContainers": init,
        "containers": [
            {
                "name": "pause",
                "image": PAUSE_IMAGE,
                "resources": {
                    "requests": {"cpu": "1m", "memory": "8Mi"},
                    "limits": {"cpu": "10m", "memory": "10Mi"},
                },
            }
        ],
        "terminationGracePeriodSeconds": 0,
    }
    if not pod["nodeSelector"]:
        pod.pop("nodeSelector")
    secrets = list(pull_secrets)
    if secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": PREPULL_NAME,
            "namespace": namespace,
            "labels": dict(all_labels),
            "annotations": {PREPULL_IMAGES_ANNOTATION: ",".join(images)},
        },
        "spec": {
            "selector": {"matchLabels": dict(match)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {"metadata": {"labels": dict(all_labels)}, "spec": pod},
        },
    }
