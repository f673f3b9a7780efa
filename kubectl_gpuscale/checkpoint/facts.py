"""Every checkpoint/restore fact in one place: versions, paths, images, annotations, defaults.

Sources: shared/reference/checkpoint.md (kubelet server.go, cri-o, containerd, CRIU, cuda-checkpoint).
"""

from __future__ import annotations

# Kubelet ContainerCheckpoint API (beta, on by default since 1.30).
MIN_KUBELET = (1, 30)
CHECKPOINT_DIR = "/var/lib/kubelet/checkpoints"
PROXY_PATH = "checkpoint/{namespace}/{pod}/{container}"

# Timeouts (seconds) passed as ?timeout=: the CRI default is 2 minutes, far too short for GPU memory.
DEFAULT_TIMEOUT = 120
DEFAULT_TIMEOUT_GPU = 900
# Extra client-side wait beyond the kubelet timeout before we give up on the HTTP request.
CLIENT_TIMEOUT_MARGIN = 60

# Runtimes: who can checkpoint (CRI CheckpointContainer) and who can restore from a checkpoint image.
CRIO_MIN_CHECKPOINT = (1, 25)
CRIO_MIN_RESTORE = (1, 26)
CONTAINERD_MIN_CHECKPOINT = (2, 0)
CONTAINERD_MIN_RESTORE = (2, 1)
CONTAINERD_RESTORE_REMOVED = (2, 4)
CONTAINERD_RESTORE_DEPRECATED = (2, 3)

# Checkpoint OCI image annotations (value: the container name).
CRIO_CHECKPOINT_ANNOTATION = "io.kubernetes.cri-o.annotations.checkpoint.name"
CONTAINERD_CHECKPOINT_ANNOTATION = "org.criu.checkpoint.container.name"

# GPU stack.
MIN_NVIDIA_DRIVER = 550
RECOMMENDED_NVIDIA_DRIVER = 570
MIN_CRIU = "4.0"
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
# GPU feature discovery labels carrying the driver major version (older and newer GFD names).
DRIVER_MAJOR_LABELS = ("nvidia.com/cuda.driver-version.major", "nvidia.com/cuda.driver.major")
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

# The API server's kubelet-client identity on kubeadm clusters (others: kube-apiserver, system:kube-apiserver).
KUBEADM_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
RBAC_NAME = "gpuscale-kubelet-checkpoint"

# Helper pods (list/fetch) and the image build job (restore). Pinned images.
HELPER_IMAGE = "docker.io/library/busybox:1.37.0"
BUILDAH_IMAGE = "quay.io/buildah/stable:v1.39.3"
HELPER_MOUNT = "/checkpoints"
HELPER_WAIT_SECONDS = 120
HELPER_DEADLINE_SECONDS = 3600
# Fetch time limits scale with the archive size, at throughputs a slow setup still reaches:
# busybox sha256sum in the helper (CPU limit 1) on a busy disk, and the exec stream through the
# API server to a laptop on a VPN. The fetch helper starts with the longest deadline and lowers it
# (the API server lets activeDeadlineSeconds only decrease) once the archive's size is known.
FETCH_CHECKSUM_BYTES_PER_SECOND = 32 * 1024 * 1024
FETCH_TRANSFER_BYTES_PER_SECOND = 4 * 1024 * 1024
FETCH_MIN_STEP_SECONDS = 300
FETCH_STALL_SECONDS = 300
FETCH_DEADLINE_MARGIN_SECONDS = 120
FETCH_MAX_DEADLINE_SECONDS = 24 * 3600
BUILD_DEADLINE_SECONDS = 3600
BUILD_TTL_SECONDS = 600

# Reading inspection metadata: JSON files above this size are refused (a malformed or hostile archive).
MAX_METADATA_BYTES = 16 * 1024 * 1024

SECURITY_WARNING = (
    "a checkpoint archive holds the container's whole process memory (model weights, "
    "KV cache with user prompts, API tokens, secrets): treat it like a Secret"
)
