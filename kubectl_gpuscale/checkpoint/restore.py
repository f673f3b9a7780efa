"""The restore plan: a buildah Job that turns the archive into a checkpoint OCI image, and the restore Pod.

Pure: builds plain dicts. The image carries both annotations (CRI-O reads
``io.kubernetes.cri-o.annotations.checkpoint.name``, containerd 2.1-2.3 reads
``org.criu.checkpoint.container.name``). The restore Pod keeps the container's name and
redeclares every volume and mount of the original (CRI-O refuses otherwise, CVE-2024-8676).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_gpuscale.checkpoint import facts
from kubectl_gpuscale.checkpoint.preflight import Runtime, restore_refusal, restore_warnings
from kubectl_gpuscale.names import (
    CHECKPOINT_HELPER_LABEL,
    CHECKPOINT_IMAGE_ANNOTATION,
    MANAGED_LABELS,
    RESTORED_FROM_LABEL,
)

# A fixed script: every value comes from the environment, nothing from input is interpolated.
BUILD_SCRIPT = """set -eu
ctr=$(buildah from scratch)
buildah add "$ctr" "$CHECKPOINTS/$ARCHIVE" /
buildah config --annotation "$CRIO_KEY=$CONTAINER" --annotation "$CONTAINERD_KEY=$CONTAINER" "$ctr"
buildah commit "$ctr" "$IMAGE"
buildah rm "$ctr"
buildah push "$IMAGE" "docker://$IMAGE"
echo "pushed $IMAGE"
"""


@dataclass(frozen=True)
class Step:
    """One step of the plan: what happens, and the object it creates (if any)."""

    description: str
    obj: dict[str, Any] | None = None


@dataclass
class RestorePlan:
    """Everything `restore` will do, in order."""

    image: str
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: str | None = None

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The Kubernetes objects the plan creates, in order."""
        return [s.obj for s in self.steps if s.obj is not None]

    @property
    def job(self) -> dict[str, Any]:
        """The image build Job."""
        return next(o for o in self.objects if o["kind"] == "Job")

    @property
    def pod(self) -> dict[str, Any]:
        """The restore Pod."""
        return next(o for o in self.objects if o["kind"] == "Pod")


def _dns(text: str, limit: int = 63) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return out[:limit].rstrip("-") or "x"


def image_ref(registry: str, pod: str, container: str, time: str) -> str:
    """``<registry>/checkpoint-<pod>-<container>:<time as 20260313T214306Z>``."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "", time.replace("+", "p")) or "latest"
    return f"{registry.rstrip('/')}/checkpoint-{_dns(pod, 60)}-{_dns(container, 60)}:{tag[:128]}"


def build_job(
    *, archive: str, node: str, namespace: str, container: str, image: str, registry_secret: str | None = None
) -> dict[str, Any]:
    """The buildah Job, pinned to the node holding the archive, reading it from a read-only hostPath."""
    digest = hashlib.sha256(f"{archive}\n{image}".encode()).hexdigest()[:6]
    name = _dns(f"gpuscale-ckpt-build-{container}", 56) + "-" + digest
    env = [
        {"name": "ARCHIVE", "value": archive},
        {"name": "CHECKPOINTS", "value": facts.HELPER_MOUNT},
        {"name": "CONTAINER", "value": container},
        {"name": "IMAGE", "value": image},
        {"name": "CRIO_KEY", "value": facts.CRIO_CHECKPOINT_ANNOTATION},
        {"name": "CONTAINERD_KEY", "value": facts.CONTAINERD_CHECKPOINT_ANNOTATION},
        {"name": "STORAGE_DRIVER", "value": "vfs"},
        {"name": "BUILDAH_ISOLATION", "value": "chroot"},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "checkpoints", "mountPath": facts.HELPER_MOUNT, "readOnly": True},
        {"name": "storage", "mountPath": "/var/lib/containers"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "checkpoints", "hostPath": {"path": facts.CHECKPOINT_DIR, "type": "Directory"}},
        {"name": "storage", "emptyDir": {}},
    ]
    if registry_secret:
        env.append({"name": "REGISTRY_AUTH_FILE", "value": "/auth/.dockerconfigjson"})
        mounts.append({"name": "auth", "mountPath": "/auth", "readOnly": True})
        volumes.append({"name": "auth", "secret": {"secretName": registry_secret}})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**MANAGED_LABELS, CHECKPOINT_HELPER_LABEL: "build"},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": facts.BUILD_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": facts.BUILD_TTL_SECONDS,
            "template": {
                "metadata": {"labels": {**MANAGED_LABELS, CHECKPOINT_HELPER_LABEL: "build"}},
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "buildah",
                            "image": facts.BUILDAH_IMAGE,
                            "command": ["sh", "-c", BUILD_SCRIPT],
                            "env": env,
                            "securityContext": {
                                "runAsUser": 0,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {
                                    "drop": ["ALL"],
                                    "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETFCAP"],
                                },
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


_POD_SPEC_DROP = ("nodeName", "ephemeralContainers", "nodeSelector", "affinity", "schedulerName", "priority")


def restore_pod(
    template: Mapping[str, Any],
    *,
    container: str,
    image: str,
    node: str,
    name: str,
    namespace: str,
    keep_labels: bool = False,
    pull_secret: str | None = None,
) -> dict[str, Any]:
    """The restore Pod: the original spec, the checkpointed container's image swapped for the checkpoint image.

    Same container name, same volumes and mounts, pinned to `node`. Labels are not copied
    unless `keep_labels` (a matching ReplicaSet would adopt the pod and scale another away).
    """
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    for key in _POD_SPEC_DROP:
        spec.pop(key, None)
    spec["nodeName"] = node
    spec["restartPolicy"] = (
        "Never"
        if spec.get("restartPolicy") == "Never"
        else "OnFailure"
        if spec.get("restartPolicy") == "OnFailure"
        else "Always"
    )
    for ctr in spec.get("containers") or []:
        if ctr.get("name") == container:
            ctr["image"] = image
            ctr["imagePullPolicy"] = "IfNotPresent"
    if pull_secret:
        secrets_ = list(spec.get("imagePullSecrets") or [])
        if {"name": pull_secret} not in secrets_:
            secrets_.append({"name": pull_secret})
        spec["imagePullSecrets"] = secrets_
    meta = template.get("metadata") or {}
    labels = dict(meta.get("labels") or {}) if keep_labels else {}
    labels.update({**MANAGED_LABELS, RESTORED_FROM_LABEL: _dns(str(meta.get("name", "")))})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {CHECKPOINT_IMAGE_ANNOTATION: image},
        },
        "spec": spec,
    }


def plan_restore(
    *,
    archive: str,
    source_node: str,
    target_node: str,
    target_runtime: Runtime,
    template: Mapping[str, Any],
    container: str,
    namespace: str,
    registry: str,
    time: str,
    image: str | None = None,
    name: str | None = None,
    registry_secret: str | None = None,
    keep_labels: bool = False,
) -> RestorePlan:
    """Plan a restore: refuse where the target runtime cannot restore, else the job, the push and the pod."""
    pod_name = str((template.get("metadata") or {}).get("name", "pod"))
    ref = image or image_ref(registry, pod_name, container, time)
    plan = RestorePlan(image=ref)
    plan.refusal = restore_refusal(target_runtime)
    plan.warnings += restore_warnings(target_runtime)
    names = [c.get("name") for c in (template.get("spec") or {}).get("containers") or []]
    if container not in names:
        plan.refusal = plan.refusal or (
            f"the pod template has no container {container!r} (it has "
            f"{', '.join(str(n) for n in names)}); the restored container must keep "
            "its name"
        )
    plan.warnings.append(
        f"the image {ref} holds the process memory: push only to a private registry "
        "with access control, never a public one"
    )
    if source_node != target_node:
        plan.warnings.append(
            f"restoring on {target_node}, checkpointed on {source_node}: the GPU model and count, "
            "driver, CRIU and runc versions must match"
        )
    job = build_job(
        archive=archive,
        node=source_node,
        namespace=namespace,
        container=container,
        image=ref,
        registry_secret=registry_secret,
    )
    pod = restore_pod(
        template,
        container=container,
        image=ref,
        node=target_node,
        name=name or _dns(f"{pod_name}-restored", 63),
        namespace=namespace,
        keep_labels=keep_labels,
        pull_secret=registry_secret,
    )
    plan.steps = [
        Step(
            f"create Job {namespace}/{job['metadata']['name']} on node {source_node}: buildah from scratch, "
            f"add {facts.CHECKPOINT_DIR}/{archive}, annotate {facts.CRIO_CHECKPOINT_ANNOTATION} and "
            f"{facts.CONTAINERD_CHECKPOINT_ANNOTATION} = {container}, commit",
            job,
        ),
        Step(f"push {ref} (from the Job)"),
        Step(f"wait for Job {job['metadata']['name']} to succeed"),
        Step(
            f"create Pod {namespace}/{pod['metadata']['name']} on node {target_node} with container {container} "
            f"from {ref} and the original {len(pod['spec'].get('volumes') or [])} volume(s)",
            pod,
        ),
    ]
    return plan
