"""`kubectl gpuscale checkpoint`: trigger, list, fetch, inspect and restore container checkpoints."""

from __future__ import annotations

import sys
from typing import Any

import click

from kubectl_gpuscale.cli.options import KubeOptions, kube_options
from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.errors import ExitStatus


@click.group(context_settings=CONTEXT_SETTINGS)
def checkpoint() -> None:
    """Checkpoint, list, fetch, inspect and restore inference containers.

    Uses the kubelet ContainerCheckpoint API (Kubernetes >= 1.30) through the API
    server's node proxy. An archive holds the container's whole memory (weights,
    prompts, tokens): treat it like a Secret.

    \b
    Examples:
      kubectl gpuscale checkpoint pod vllm-0 -n ml --timeout 900
      kubectl gpuscale checkpoint pod vllm-0 -n ml --print-rbac | kubectl apply -f -
      kubectl gpuscale checkpoint list --node gpu-node-1 -n kube-system
      kubectl gpuscale checkpoint fetch ARCHIVE --node gpu-node-1 -n kube-system -o vllm.tar
      kubectl gpuscale checkpoint inspect vllm.tar
      kubectl gpuscale checkpoint restore ARCHIVE --node gpu-node-1 -n ml --registry registry.internal/ckpt --dry-run=client
    """


def _security_warning() -> None:
    from kubectl_gpuscale.checkpoint.facts import SECURITY_WARNING
    from kubectl_gpuscale.cli.output import warn

    warn(SECURITY_WARNING)


@checkpoint.command("pod", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("-c", "--container", default=None, help="Container to checkpoint (default: the only one).")
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Kubelet checkpoint timeout (default 900 for GPU containers, 120 otherwise).",
)
@click.option(
    "--print-rbac",
    is_flag=True,
    help="Print the ClusterRole and binding that let the API server's kubelet client checkpoint, and exit.",
)
@click.option(
    "--rbac-user",
    default=None,
    metavar="USER",
    help="The API server's kubelet-client user for --print-rbac (default: kube-apiserver-kubelet-client).",
)
@click.option("--preflight", "preflight_only", is_flag=True, help="Only run the preflight checks.")
@click.option("--force", is_flag=True, help="Checkpoint even when a preflight check fails.")
@kube_options(outputs=("table", "json", "yaml"), selector=False, all_namespaces=False)
def pod(
    kube: KubeOptions,
    name: str,
    container: str | None,
    timeout: int | None,
    print_rbac: bool,
    rbac_user: str | None,
    preflight_only: bool,
    force: bool,
) -> None:
    """Checkpoint a running container through the kubelet; print the archive path on the node.

    Preflight first: kubelet >= 1.30, a runtime that checkpoints (CRI-O, containerd >= 2.0),
    the GPU driver labels, and your permission to create nodes/proxy.

    \b
    Examples:
      kubectl gpuscale checkpoint pod vllm-0 -n ml
      kubectl gpuscale checkpoint pod vllm-0 -n ml -c vllm --timeout 1800 -o json
      kubectl gpuscale checkpoint pod vllm-0 -n ml --preflight
      kubectl gpuscale checkpoint pod vllm-0 --print-rbac | kubectl apply -f -
    """
    from kubectl_gpuscale.checkpoint import diagnose, facts, service
    from kubectl_gpuscale.cli.output import emit_data, emit_objects, note, warn

    if print_rbac:
        emit_objects(
            diagnose.rbac_fix(rbac_user or facts.KUBEADM_KUBELET_CLIENT),
            "json" if kube.output == "json" else "yaml",
        )
        return
    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    if preflight_only:
        _, node, ctr, findings = service.run_preflight(cluster, name, namespace, container)
        if kube.output in ("json", "yaml"):
            emit_data(
                {"node": node, "container": ctr, "preflight": [f.__dict__ for f in findings]}, kube.output
            )
        else:
            for f in findings:
                click.echo(f"{f.level.upper():5}  {f.check:8}  {f.message}")
        if any(f.level == "error" for f in findings):
            sys.exit(ExitStatus.FAILURE)
        return
    _security_warning()
    result = service.checkpoint_pod(
        cluster, name, namespace, container=container, timeout=timeout, force=force
    )
    for f in result.findings:
        if f.level != "ok":
            warn(f"{f.check}: {f.message}")
    if kube.output in ("json", "yaml"):
        emit_data(result.as_dict(), kube.output)
    else:
        click.echo(result.archive)
    note(
        f"checkpointed {namespace}/{name}/{result.container} on node {result.node} in {result.seconds:.1f}s; "
        f"fetch with: kubectl gpuscale checkpoint fetch '{result.archive}' --node {result.node} -o FILE"
    )


@checkpoint.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--node", "nodes", multiple=True, help="Node to look on (repeatable; default: every GPU node).")
@click.option(
    "--wait",
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the helper pod.",
)
@kube_options(outputs=("table", "wide", "json", "yaml"), selector=False, all_namespaces=False)
def list_(kube: KubeOptions, nodes: tuple[str, ...], wait: int) -> None:
    """List checkpoint archives on nodes, through a short-lived read-only helper pod per node.

    The helper pod runs in -n NAMESPACE, which must allow hostPath volumes (Pod Security
    'privileged', e.g. kube-system); it only prints file names and sizes, and is deleted afterwards.

    \b
    Examples:
      kubectl gpuscale checkpoint list --node gpu-node-1 -n kube-system
      kubectl gpuscale checkpoint list -n kube-system -o json
    """
    from kubectl_gpuscale.checkpoint import service
    from kubectl_gpuscale.checkpoint.archive import human_size
    from kubectl_gpuscale.cli.output import Column, emit_data, render_table
    from kubectl_gpuscale.errors import InputError

    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    targets = list(nodes) or service.gpu_nodes(cluster)
    if not targets:
        raise InputError("no node to list", "no node has GPU capacity", "pass --node NAME")
    from kubectl_gpuscale.interrupts import interrupts_as_ctrl_c

    with interrupts_as_ctrl_c():  # the helper pods are deleted on SIGTERM/SIGHUP too
        listings = service.list_archives(cluster, targets, namespace, wait=wait)
    rows = [a for listing in listings for a in listing.archives]
    if kube.output in ("json", "yaml"):
        emit_data(
            [
                {
                    "node": a.node,
                    "file": a.file,
                    "path": a.path,
                    "size": a.size,
                    "mtime": a.mtime,
                    "pod": a.parsed.pod if a.parsed else None,
                    "namespace": a.parsed.namespace if a.parsed else None,
                    "container": a.parsed.container if a.parsed else None,
                    "time": a.parsed.time if a.parsed else None,
                }
                for a in rows
            ],
            kube.output,
        )
        return
    render_table(
        rows,
        [
            Column("node", lambda a: a.node),
            Column("namespace", lambda a: a.parsed.namespace if a.parsed else ""),
            Column("pod", lambda a: a.parsed.pod if a.parsed else ""),
            Column("container", lambda a: a.parsed.container if a.parsed else ""),
            Column("time", lambda a: a.parsed.time if a.parsed else ""),
            Column("size", lambda a: human_size(a.size), justify="right"),
            Column("archive", lambda a: a.file, wide=True),
        ],
        wide=kube.output == "wide",
        empty="No checkpoint archives found.",
    )


@checkpoint.command("fetch", context_settings=CONTEXT_SETTINGS)
@click.argument("archive")
@click.option("--node", required=True, help="The node holding the archive.")
@click.option(
    "-o",
    "--output-file",
    "dest",
    required=True,
    type=click.Path(dir_okay=True),
    help="Where to write it (mode 0600); a directory keeps the archive's name.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@click.option(
    "--wait",
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the helper pod.",
)
@click.option(
    "--timeout",
    "transfer_timeout",
    type=click.IntRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Time allowed for the transfer (default: from the archive's size at 4 MiB/s, at least 300).",
)
@kube_options(selector=False, all_namespaces=False, output=False)
def fetch(
    kube: KubeOptions,
    archive: str,
    node: str,
    dest: str,
    overwrite: bool,
    wait: int,
    transfer_timeout: int | None,
) -> None:
    """Copy an archive from a node to a local file, checking its sha256.

    Streams over a read-only helper pod's exec channel. The pod runs in -n NAMESPACE (default:
    the context's namespace), which must allow hostPath volumes (Pod Security 'privileged', e.g.
    kube-system); you need create, patch and delete pods and create pods/exec there. The plan on
    stderr names the pod. The pod is deleted afterwards, even on failure, Ctrl-C, SIGTERM or
    SIGHUP; the file appears only once its sha256 matches the node's. Time limits scale with the
    archive's size.

    \b
    Examples:
      kubectl gpuscale checkpoint fetch checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar \\
          --node gpu-node-1 -n kube-system -o vllm.tar
      kubectl gpuscale checkpoint fetch /var/lib/kubelet/checkpoints/ARCHIVE --node gpu-node-1 -o ./archives/
    """
    from kubectl_gpuscale.checkpoint import service
    from kubectl_gpuscale.checkpoint.archive import human_size
    from kubectl_gpuscale.cli.output import note
    from kubectl_gpuscale.interrupts import interrupts_as_ctrl_c

    _security_warning()
    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    progress, done = _progress_bar()
    try:
        with interrupts_as_ctrl_c():
            result = service.fetch_archive(
                cluster,
                node,
                archive,
                namespace,
                dest,
                overwrite=overwrite,
                wait=wait,
                progress=progress,
                on_step=note,
                transfer_timeout=transfer_timeout,
            )
    finally:
        done()
    click.echo(result.path)
    note(
        f"fetched {result.archive} from {node}: {human_size(result.size)}, sha256 {result.sha256} (file mode 0600)"
    )


def _progress_bar() -> tuple[Any, Any]:
    """A progress callback drawing on stderr when it is a terminal, and its closer."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress(
        BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=Console(stderr=True), transient=True
    )
    task = bar.add_task("fetch", total=None)
    bar.start()

    def update(received: int, total: int) -> None:
        bar.update(task, completed=received, total=total or None)

    return update, bar.stop


@checkpoint.command("inspect", context_settings=CONTEXT_SETTINGS)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "json", "yaml"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def inspect(files: tuple[str, ...], output: str) -> None:
    """Inspect archives offline: container, image, pod, engine, times, sizes, CUDA plugin.

    Reads only metadata (config.dump, spec.dump, the CRIU inventory and dump log); memory
    pages are sized, never read or printed.

    \b
    Examples:
      kubectl gpuscale checkpoint inspect vllm.tar
      kubectl gpuscale checkpoint inspect vllm.tar -o json | jq .checkpoint_size
      kubectl gpuscale checkpoint inspect a.tar b.tar -o wide
    """
    from kubectl_gpuscale.checkpoint.archive import human_size, inspect_archive
    from kubectl_gpuscale.cli.output import Column, emit_data, render_table, warn

    infos = [inspect_archive(f) for f in files]
    for info in infos:
        if info.gpu_devices and info.cuda_plugin == "no":
            warn(
                f"{info.file}: the container had GPUs but the CRIU CUDA plugin did not take part; "
                "its GPU state is not in the archive"
            )
    if output in ("json", "yaml"):
        data = [i.as_dict() for i in infos]
        emit_data(data[0] if len(data) == 1 else data, output)
        return
    render_table(
        infos,
        [
            Column("container", lambda i: i.container),
            Column("pod", lambda i: f"{i.namespace}/{i.pod}" if i.pod else ""),
            Column("image", lambda i: i.image),
            Column("engine", lambda i: i.engine),
            Column("checkpointed", lambda i: i.checkpointed),
            Column("chkpt size", lambda i: human_size(i.checkpoint_size), justify="right"),
            Column("memory", lambda i: human_size(i.memory_pages_size), justify="right"),
            Column("root fs diff", lambda i: human_size(i.root_fs_diff_size), justify="right"),
            Column("cuda", lambda i: i.cuda_plugin),
            Column("id", lambda i: i.id, wide=True),
            Column("runtime", lambda i: i.runtime, wide=True),
            Column("created", lambda i: i.created, wide=True),
            Column("gpu devices", lambda i: ",".join(i.gpu_devices), wide=True),
            Column("file", lambda i: i.file, wide=True),
        ],
        wide=output == "wide",
    )


@checkpoint.command("restore", context_settings=CONTEXT_SETTINGS)
@click.argument("archive")
@click.option("--node", required=True, help="The node holding the archive (the image is built there).")
@click.option("--registry", required=True, help="Private registry to push the checkpoint image to.")
@click.option(
    "--registry-secret",
    default=None,
    metavar="SECRET",
    help="dockerconfigjson Secret in -n used to push (and pull, as imagePullSecret).",
)
@click.option("--target-node", default=None, help="Node to restore on (default: --node).")
@click.option(
    "--pod", "pod_name", default=None, help="Original pod to copy (default: from the archive name)."
)
@click.option(
    "-f",
    "--filename",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Pod manifest to copy instead of the live pod.",
)
@click.option(
    "-c", "--container", default=None, help="The checkpointed container (default: from the archive)."
)
@click.option(
    "--image", default=None, help="Full checkpoint image reference (default: derived from --registry)."
)
@click.option("--name", default=None, help="Name of the restore Pod (default: <pod>-restored).")
@click.option(
    "--keep-labels",
    is_flag=True,
    help="Copy the original labels (Services route to it; a matching ReplicaSet may adopt it).",
)
@kube_options(outputs=("table", "json", "yaml"), writes=True, selector=False, all_namespaces=False)
def restore(
    kube: KubeOptions,
    archive: str,
    node: str,
    registry: str,
    registry_secret: str | None,
    target_node: str | None,
    pod_name: str | None,
    filename: Any,
    container: str | None,
    image: str | None,
    name: str | None,
    keep_labels: bool,
) -> None:
    """Restore a checkpoint: build a checkpoint image on the node, push it, run a restore Pod.

    A buildah Job on --node turns the archive into an OCI image annotated for CRI-O and
    containerd, pushes it to --registry; then a Pod with the same container name and the
    same volumes runs it on --target-node. Refuses where the runtime cannot restore
    (containerd < 2.1 or >= 2.4, CRI-O < 1.26). --dry-run=client prints every step and object.

    \b
    Examples:
      kubectl gpuscale checkpoint restore ARCHIVE --node gpu-node-1 -n ml --registry registry.internal/ckpt \\
          --dry-run=client -o yaml
      kubectl gpuscale checkpoint restore ARCHIVE --node gpu-node-1 -n ml --registry registry.internal/ckpt \\
          --registry-secret push-creds
    """

    from kubectl_gpuscale.checkpoint import service
    from kubectl_gpuscale.cli.output import emit_objects, note, warn
    from kubectl_gpuscale.errors import GpuscaleError, InputError

    template = None
    if filename is not None:
        from kubectl_gpuscale.inputs import read_text
        from kubectl_gpuscale.manifests import parse_text

        objects = parse_text(read_text(filename, "Pod manifest"), filename)
        if len(objects) != 1 or objects[0].obj.get("kind") != "Pod":
            raise InputError(f"cannot use {filename}", "it is not one Pod manifest", "pass a Pod manifest")
        template = objects[0].obj
    cluster = kube.cluster()
    namespace = cluster.namespace_or_default(kube.namespace)
    plan = service.plan_from_cluster(
        cluster,
        archive,
        node,
        namespace,
        registry=registry,
        target_node=target_node,
        template=template,
        pod_name=pod_name,
        container=container,
        image=image,
        name=name,
        registry_secret=registry_secret,
        keep_labels=keep_labels,
    )
    _security_warning()
    for text in plan.warnings:
        warn(text)
    if plan.refusal:
        raise GpuscaleError(
            "cannot restore",
            plan.refusal,
            "restore on a node with CRI-O >= 1.26 or containerd 2.1-2.3 (--target-node)",
        )
    if kube.dry_run == "client":
        for i, step in enumerate(plan.steps, 1):
            note(f"step {i}: {step.description}")
        emit_objects(plan.objects, kube.output if kube.output in ("json", "yaml") else "yaml")
        return
    created = service.perform_restore(cluster, plan, dry_run_server=kube.dry_run == "server", on_step=note)
    if kube.output in ("json", "yaml"):
        emit_objects(created, kube.output)
    else:
        click.echo(f"pod/{created[-1]['metadata']['name']}")
