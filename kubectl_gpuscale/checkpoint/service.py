"""Checkpoint/restore against a cluster: the only checkpoint module that calls `Cluster`.

Helper pods and build jobs are always removed (or left to their TTL) in ``finally`` blocks,
so a failed fetch leaves nothing running on the node.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_gpuscale.checkpoint import diagnose, facts, helper, preflight
from kubectl_gpuscale.checkpoint.archive import human_size, parse_archive_name, validate_archive_basename
from kubectl_gpuscale.checkpoint.restore import RestorePlan, plan_restore
from kubectl_gpuscale.errors import (
    ExitStatus,
    ForbiddenError,
    GpuscaleError,
    InputError,
    NotFoundError,
    UnreachableError,
)

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

Progress = Callable[[int, int], None]


@dataclass
class CheckpointResult:
    """A finished checkpoint: where the archive is."""

    node: str
    namespace: str
    pod: str
    container: str
    archive: str
    seconds: float
    timeout: int
    findings: list[preflight.Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For -o json/yaml."""
        return {
            "node": self.node,
            "namespace": self.namespace,
            "pod": self.pod,
            "container": self.container,
            "archive": self.archive,
            "seconds": round(self.seconds, 3),
            "timeout": self.timeout,
            "preflight": [{"level": f.level, "check": f.check, "message": f.message} for f in self.findings],
        }


def run_preflight(
    cluster: Cluster, name: str, namespace: str, container: str | None
) -> tuple[dict[str, Any], str, str, list[preflight.Finding]]:
    """(pod, node name, container, findings) for `checkpoint pod`."""
    pod = cluster.get("v1", "Pod", name, namespace)
    node_name = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase")
    if not node_name:
        raise InputError(
            f"cannot checkpoint pod {namespace}/{name}",
            "it is not scheduled on a node yet",
            "wait until it runs (kubectl get pod -w)",
        )
    if phase != "Running":
        raise InputError(
            f"cannot checkpoint pod {namespace}/{name}",
            f"it is {phase or 'not running'}",
            "only a running container can be checkpointed",
        )
    ctr = preflight.pick_container(pod, container)
    findings: list[preflight.Finding] = []
    try:
        node = cluster.get("v1", "Node", node_name)
    except (ForbiddenError, NotFoundError) as exc:
        node = {}
        findings.append(
            preflight.Finding(
                "warn", "node", f"cannot read node {node_name} ({exc.why}); kubelet and runtime not checked"
            )
        )
    try:
        can = cluster.can_i("create", "nodes", subresource="proxy", name=node_name)
    except GpuscaleError:
        can = None
    if node:
        findings += preflight.checkpoint_checks(pod, node, ctr, can)
    elif can is False:
        findings.append(preflight.Finding("error", "rbac", "you may not 'create nodes/proxy'"))
    return pod, node_name, ctr, findings


def default_timeout(pod: dict[str, Any], container: str) -> int:
    """The kubelet timeout for this container: large for GPU containers."""
    return facts.DEFAULT_TIMEOUT_GPU if preflight.gpu_count(pod, container) else facts.DEFAULT_TIMEOUT


def checkpoint_pod(
    cluster: Cluster,
    name: str,
    namespace: str,
    *,
    container: str | None = None,
    timeout: int | None = None,
    force: bool = False,
) -> CheckpointResult:
    """Preflight, then POST the kubelet checkpoint through the API server's node proxy."""
    pod, node, ctr, findings = run_preflight(cluster, name, namespace, container)
    errors = [f for f in findings if f.level == "error"]
    if errors and not force:
        raise GpuscaleError(
            f"cannot checkpoint {namespace}/{name}/{ctr}",
            "; ".join(f"{f.check}: {f.message}" for f in errors),
            "fix the above, or pass --force to try anyway",
        )
    seconds = int(timeout) if timeout else default_timeout(pod, ctr)
    path = facts.PROXY_PATH.format(namespace=namespace, pod=name, container=ctr)
    started = time.monotonic()
    target = f"{namespace}/{name}/{ctr} on node {node}"
    try:
        response = cluster.node_proxy(
            "POST", node, path, query=[("timeout", seconds)], timeout=seconds + facts.CLIENT_TIMEOUT_MARGIN
        )
    except ForbiddenError as exc:
        user = diagnose.kubelet_forbidden_user(exc.why)
        if user:
            raise ForbiddenError(
                f"cannot checkpoint {target}",
                f"the kubelet refused the API server's own identity {user!r}: it lacks 'create nodes/checkpoint' "
                "(the default system:kubelet-api-admin role does not grant it)",
                f"a cluster admin can grant it: kubectl gpuscale checkpoint pod {name} -n {namespace} --print-rbac "
                "| kubectl apply -f -",
            ) from None
        raise ForbiddenError(
            f"cannot checkpoint {target}",
            exc.why,
            f"you need 'create nodes/proxy'; check with: kubectl auth can-i create nodes "
            f"--subresource=proxy (node {node})",
        ) from None
    except NotFoundError as exc:
        why, fix = diagnose.explain_404(exc.why, ctr)
        raise NotFoundError(f"cannot checkpoint {target}", why, fix) from None
    except UnreachableError:
        raise
    except GpuscaleError as exc:
        hints = diagnose.criu_hints(exc.why)
        raise GpuscaleError(
            f"checkpoint of {target} failed", exc.why.replace("\n", " ")[:400], " | ".join(hints)
        ) from None
    try:
        data = response.json()
        archive = str(data["items"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        raise GpuscaleError(
            f"checkpoint of {target} answered without an archive path",
            f"unexpected body: {response.body[:120]!r}",
            "check the kubelet version",
        ) from None
    return CheckpointResult(
        node, namespace, name, ctr, archive, time.monotonic() - started, seconds, findings
    )


# ---- helper pods --------------------------------------------------------------------------------------


def _create_helper(cluster: Cluster, pod: dict[str, Any]) -> dict[str, Any]:
    try:
        return cluster.create(pod)
    except ForbiddenError as exc:
        if "PodSecurity" in exc.why or "hostPath" in exc.why:
            raise ForbiddenError(
                f"cannot start the helper pod in namespace {pod['metadata']['namespace']}",
                exc.why,
                "its hostPath mount needs a namespace with the 'privileged' Pod Security "
                "level; pass -n with such a namespace (e.g. kube-system)",
            ) from None
        raise


def _wait_phase(
    cluster: Cluster, name: str, namespace: str, phases: tuple[str, ...], *, wait: float, poll: float = 0.5
) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    last: dict[str, Any] = {}
    while True:
        last = cluster.get("v1", "Pod", name, namespace)
        phase = (last.get("status") or {}).get("phase")
        if phase in phases:
            return last
        if phase == "Failed" and "Failed" not in phases:
            raise GpuscaleError(
                f"helper pod {namespace}/{name} failed", _pod_reason(last), "see kubectl describe pod"
            )
        if time.monotonic() >= deadline:
            raise UnreachableError(
                f"helper pod {namespace}/{name} did not start",
                f"still {phase or 'Pending'} after {wait:.0f}s ({_pod_reason(last)})",
                "check the node can pull " + facts.HELPER_IMAGE + " and --wait",
            )
        time.sleep(poll)


def _pod_reason(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key, {}).get("reason"):
                return str(state[key]["reason"])
    return str(status.get("reason") or status.get("message") or "no reason given")


def _delete_helper(cluster: Cluster, name: str, namespace: str) -> bool:
    """Delete a helper pod; True when it is gone (deleted now, or never created)."""
    try:
        cluster.delete("v1", "Pod", name, namespace)
    except NotFoundError:
        return True
    except GpuscaleError:
        return False
    return True


@dataclass(frozen=True)
class NodeListing:
    """The archives on one node."""

    node: str
    archives: list[helper.ListedArchive]


def gpu_nodes(cluster: Cluster) -> list[str]:
    """Nodes with GPU capacity."""
    out = []
    for node in cluster.list("v1", "Node"):
        capacity = (node.get("status") or {}).get("capacity") or {}
        if any(str(capacity.get(k, "0")) not in ("0", "") for k in facts.GPU_RESOURCES):
            out.append(node["metadata"]["name"])
    return sorted(out)


def list_archives(
    cluster: Cluster, nodes: list[str], namespace: str, *, wait: float = facts.HELPER_WAIT_SECONDS
) -> list[NodeListing]:
    """Archives on each node, read by a helper pod that prints a listing (names and sizes only) and exits."""
    try:
        known_ns = {n["metadata"]["name"] for n in cluster.list("v1", "Namespace")}
    except GpuscaleError:
        known_ns = set()
    out: list[NodeListing] = []
    for node in nodes:
        pod = helper.list_pod(node, namespace)
        name = pod["metadata"]["name"]
        try:
            _create_helper(cluster, pod)
            _wait_phase(cluster, name, namespace, ("Succeeded",), wait=wait)
            text = cluster.pod_logs(name, namespace)
            try:
                archives = helper.parse_listing(text, node, known_ns)
            except ValueError as exc:
                raise GpuscaleError(
                    f"cannot list checkpoints on node {node}",
                    str(exc),
                    "run again; check the helper pod's log",
                ) from None
        finally:
            _delete_helper(cluster, name, namespace)
        out.append(NodeListing(node, archives))
    return out


@dataclass(frozen=True)
class FetchResult:
    """A fetched archive."""

    path: str
    size: int
    sha256: str
    node: str
    archive: str


class FetchInterrupted(GpuscaleError):
    """A fetch stopped by SIGINT, SIGTERM or SIGHUP, after its cleanup; exits 128 + the signal number."""

    def __init__(self, what: str, why: str, fix: str, signum: int) -> None:
        super().__init__(what, why, fix)
        self.exit_code = ExitStatus.for_signal(signum)


def fetch_archive(
    cluster: Cluster,
    node: str,
    archive: str,
    namespace: str,
    dest: str,
    *,
    overwrite: bool = False,
    wait: float = facts.HELPER_WAIT_SECONDS,
    progress: Progress | None = None,
    on_step: Callable[[str], None] | None = None,
    transfer_timeout: int | None = None,
) -> FetchResult:
    """Copy an archive from the node to `dest` (mode 0600) through a read-only helper pod's exec stream.

    The bytes go to a new temporary file in the destination directory (created exclusively, never
    through a symlink) that is renamed into place only once the node's sha256 matches what was
    received; a missing or malformed checksum fails the fetch. The time limits scale with the
    archive's size (`helper.fetch_limits`). On any failure, and on Ctrl-C, SIGTERM or SIGHUP (raised
    as ``KeyboardInterrupt`` by `kubectl_gpuscale.interrupts`), the temporary file is removed and the
    helper pod deleted.
    """
    from kubectl_gpuscale.interrupts import Interrupted, signal_of

    say = on_step or (lambda _text: None)
    base = validate_archive_basename(archive)
    target = Path(dest)
    if target.is_dir():
        target = target / base
    if target.is_dir():
        raise InputError(f"cannot write {target}", "it is a directory", "pass another -o FILE or remove it")
    if os.path.lexists(target) and not overwrite:
        raise InputError(f"cannot write {target}", "the file exists", "pass --overwrite or another -o FILE")
    if not target.parent.is_dir():
        raise InputError(
            f"cannot write {target}", f"directory {target.parent} does not exist", "create it first"
        )
    remote = f"{facts.HELPER_MOUNT}/{base}"
    pod = helper.helper_pod(node, namespace, purpose="fetch", deadline=facts.FETCH_MAX_DEADLINE_SECONDS)
    name = pod["metadata"]["name"]
    say(
        f"plan: helper pod {namespace}/{name} on node {node} (root, {facts.CHECKPOINT_DIR} mounted read-only, "
        f"no port, no service account token) reads {base} through its exec channel; the node's sha256 is checked; "
        f"{target} is written mode 0600; the pod is deleted at the end, also on Ctrl-C, SIGTERM or SIGHUP"
    )
    partial: str | None = None
    deleted = False
    try:
        created_at = time.monotonic()
        _create_helper(cluster, pod)
        _wait_phase(cluster, name, namespace, ("Running",), wait=wait)
        size = _remote_size(cluster, name, namespace, remote, base=base, node=node)
        limits = helper.fetch_limits(size, time.monotonic() - created_at, transfer=transfer_timeout)
        say(f"{base}: {human_size(size)} ({size} bytes); {limits.describe()}")
        _lower_deadline(cluster, name, namespace, limits, say)
        expected_sum = _remote_sha256(cluster, name, namespace, remote, base=base, node=node, limits=limits)
        digest = hashlib.sha256()
        received = 0
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            for chunk in cluster.exec_stream(
                name, namespace, ["cat", remote], timeout=limits.transfer, idle_timeout=limits.stall
            ):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    progress(received, size)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if received != size or actual != expected_sum:
            raise GpuscaleError(
                f"fetch of {base} from node {node} is corrupt",
                f"got {received} bytes sha256 {actual[:16]}…, the node has {size} bytes "
                f"sha256 {expected_sum[:16]}…",
                "run fetch again",
            )
        _move_into_place(partial, target, overwrite)
        partial = None
        return FetchResult(str(target), received, actual, node, base)
    except KeyboardInterrupt as exc:
        signum = signal_of(exc)
        removed = _remove_partial(partial)
        partial = None
        deleted = _delete_helper(cluster, name, namespace)
        signame = exc.name if isinstance(exc, Interrupted) else "SIGINT"
        state = (
            f"helper pod {namespace}/{name} deleted"
            if deleted
            else f"helper pod {namespace}/{name} NOT deleted (kubectl delete pod -n {namespace} {name})"
        )
        raise FetchInterrupted(
            f"fetch of {base} from node {node} interrupted by {signame}",
            f"{state}; {removed}",
            "run fetch again",
            signum,
        ) from None
    finally:
        _remove_partial(partial)
        if not deleted:
            _delete_helper(cluster, name, namespace)


def _remote_size(cluster: Cluster, name: str, namespace: str, remote: str, *, base: str, node: str) -> int:
    from kubectl_gpuscale.kube import CommandFailedError

    try:
        size_text = (
            b"".join(cluster.exec_stream(name, namespace, ["stat", "-c", "%s", remote])).decode().strip()
        )
    except CommandFailedError as exc:
        if exc.command_exit is None:  # stat could not run: not about the archive
            raise
        size_text = ""
    if not size_text.isdigit():
        raise NotFoundError(
            f"cannot fetch {base} from node {node}",
            f"the archive is not in {facts.CHECKPOINT_DIR}",
            f"list archives with: kubectl gpuscale checkpoint list --node {node}",
        )
    return int(size_text)


def _remote_sha256(
    cluster: Cluster,
    name: str,
    namespace: str,
    remote: str,
    *,
    base: str,
    node: str,
    limits: helper.FetchLimits,
) -> str:
    """The node's sha256 of the archive. No data flows while it computes: the limit is the whole step."""
    from kubectl_gpuscale.kube import CommandFailedError

    what = f"cannot verify {base} on node {node}"
    try:
        raw = b"".join(
            cluster.exec_stream(
                name, namespace, ["sha256sum", remote], timeout=limits.checksum, idle_timeout=limits.checksum
            )
        )
    except CommandFailedError as exc:
        raise GpuscaleError(
            what,
            f"sha256sum failed in the helper pod ({exc.why})",
            f"check that {facts.HELPER_IMAGE} runs on the node; nothing was written",
        ) from None
    try:
        return helper.parse_sha256sum(raw.decode("utf-8", "replace"), remote)
    except ValueError as exc:
        raise GpuscaleError(
            what,
            f"sha256sum in the helper pod gave no checksum: {exc}",
            f"check that the helper runs {facts.HELPER_IMAGE}; nothing was written",
        ) from None


def _lower_deadline(
    cluster: Cluster, name: str, namespace: str, limits: helper.FetchLimits, say: Callable[[str], None]
) -> None:
    """Lower the helper pod's activeDeadlineSeconds from the initial maximum to what this archive needs."""
    try:
        cluster.patch("v1", "Pod", name, namespace, {"spec": {"activeDeadlineSeconds": limits.deadline}})
    except GpuscaleError as exc:
        say(
            f"warning: cannot lower helper pod {namespace}/{name}'s deadline to {limits.deadline}s ({exc.why}); "
            f"it is deleted when the fetch ends, else after {facts.FETCH_MAX_DEADLINE_SECONDS}s"
        )


def _move_into_place(partial: str, target: Path, overwrite: bool) -> None:
    """Rename the verified file to `target`; without `overwrite`, never replace a file that appeared meanwhile."""
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)
    except FileExistsError:
        raise InputError(
            f"cannot write {target}",
            "the file appeared during the fetch",
            "pass --overwrite or another -o FILE",
        ) from None
    except OSError:  # no hard links on this filesystem
        if os.path.lexists(target):
            raise InputError(
                f"cannot write {target}",
                "the file appeared during the fetch",
                "pass --overwrite or another -o FILE",
            ) from None
        os.replace(partial, target)
        return
    os.unlink(partial)


def _remove_partial(partial: str | None) -> str:
    """Remove the temporary file this fetch created (only that one); says what happened."""
    if partial is None:
        return "no partial file left"
    try:
        os.unlink(partial)
    except FileNotFoundError:
        return "no partial file left"
    except OSError as exc:
        return f"partial file {partial} NOT removed ({exc.strerror})"
    return "partial file removed"


# ---- restore -------------------------------------------------------------------------------------------


def plan_from_cluster(
    cluster: Cluster,
    archive: str,
    node: str,
    namespace: str,
    *,
    registry: str,
    target_node: str | None = None,
    template: dict[str, Any] | None = None,
    pod_name: str | None = None,
    container: str | None = None,
    image: str | None = None,
    name: str | None = None,
    registry_secret: str | None = None,
    keep_labels: bool = False,
) -> RestorePlan:
    """Read what the plan needs (nodes, the original pod) and build it."""
    base = validate_archive_basename(archive)
    parsed = parse_archive_name(base)
    if template is None:
        wanted = pod_name or (parsed.pod if parsed else None)
        if not wanted:
            raise InputError(
                f"cannot plan a restore of {base}",
                "the archive name does not say which pod",
                "pass --pod NAME or -f pod.yaml",
            )
        template = cluster.get_or_none("v1", "Pod", wanted, namespace)
        if template is None:
            raise NotFoundError(
                f"cannot plan a restore of {base}",
                f"the original pod {namespace}/{wanted} is gone",
                "pass its manifest with -f pod.yaml (the restore Pod must redeclare its mounts)",
            )
    ctr = container or (parsed.container if parsed else None) or preflight.pick_container(template, None)
    names = [c.get("name") for c in (template.get("spec") or {}).get("containers") or []]
    if ctr not in names and parsed:
        # The <ns>-<container> split is ambiguous: the template's container names settle it.
        for candidate in names:
            if f"{parsed.namespace}-{parsed.container}".endswith(f"-{candidate}"):
                ctr = str(candidate)
    to_node = target_node or node
    target = cluster.get("v1", "Node", to_node)
    runtime = preflight.parse_runtime(
        str(((target.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion", ""))
    )
    return plan_restore(
        archive=base,
        source_node=node,
        target_node=to_node,
        target_runtime=runtime,
        template=template,
        container=str(ctr),
        namespace=namespace,
        registry=registry,
        time=parsed.time if parsed else time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        image=image,
        name=name,
        registry_secret=registry_secret,
        keep_labels=keep_labels,
    )


def perform_restore(
    cluster: Cluster,
    plan: RestorePlan,
    *,
    dry_run_server: bool = False,
    wait: float = facts.BUILD_DEADLINE_SECONDS,
    poll: float = 2.0,
    on_step: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Create the build Job, wait for it, then create the restore Pod. Returns what was created."""
    if plan.refusal:
        raise GpuscaleError(
            "cannot restore",
            plan.refusal,
            "restore on a node with CRI-O >= 1.26 or containerd 2.1-2.3 (--target-node)",
        )
    say = on_step or (lambda _text: None)
    job = cluster.create(plan.job, dry_run=dry_run_server)
    say(f"job/{job['metadata']['name']} created" + (" (server dry run)" if dry_run_server else ""))
    if dry_run_server:
        pod = cluster.create(plan.pod, dry_run=True)
        say(f"pod/{pod['metadata']['name']} created (server dry run)")
        return [job, pod]
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    deadline = time.monotonic() + wait
    while True:
        current = cluster.get("batch/v1", "Job", name, ns)
        status = current.get("status") or {}
        if status.get("succeeded"):
            break
        if status.get("failed"):
            raise GpuscaleError(
                f"the image build job {ns}/{name} failed",
                f"buildah could not build or push {plan.image}",
                f"read its log: kubectl logs -n {ns} job/{name}",
            )
        if time.monotonic() >= deadline:
            raise UnreachableError(
                f"the image build job {ns}/{name} did not finish",
                f"not done after {wait:.0f}s",
                f"kubectl logs -n {ns} job/{name}",
            )
        time.sleep(poll)
    say(f"{plan.image} built and pushed")
    pod = cluster.create(plan.pod)
    say(f"pod/{pod['metadata']['name']} created")
    return [current, pod]
