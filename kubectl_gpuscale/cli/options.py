"""The kubectl flags, given to every leaf command by one decorator.

click options on a group must precede the subcommand, which is not how kubectl
users type (`kubectl gpuscale status -n ml`), so each leaf command carries them.
The flags arrive bundled in one `KubeOptions` argument named ``kube``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubectl_gpuscale.cli.types import duration_value, request_timeout
from kubectl_gpuscale.names import FIELD_MANAGER

if TYPE_CHECKING:
    from kubectl_gpuscale.kube import Cluster

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name")
DRY_RUN_MODES = ("none", "client", "server")


@dataclass(frozen=True)
class KubeOptions:
    """The kubectl flags of one invocation."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    selector: str | None = None
    output: str = "table"
    dry_run: str = "none"
    field_manager: str = FIELD_MANAGER
    force_conflicts: bool = False
    request_timeout: float | None = None
    insecure_skip_tls_verify: bool = False

    @property
    def writes(self) -> bool:
        """True when the command may change the cluster (not a client dry run)."""
        return self.dry_run != "client"

    def cluster(self) -> Cluster:
        """Connect to the cluster these flags name (imports the kubernetes client)."""
        from kubectl_gpuscale.kube import Cluster

        return Cluster.connect(
            kubeconfig=self.kubeconfig,
            context=self.context,
            request_timeout=self.request_timeout,
            insecure_skip_tls_verify=self.insecure_skip_tls_verify,
            field_manager=self.field_manager,
        )

    def target_namespace(self, cluster: Cluster) -> str | None:
        """The namespace to list in: None for -A (all), else -n, else the context's namespace.

        A verb on one named object takes ``cluster.namespace_or_default(kube.namespace)`` instead.
        """
        if self.all_namespaces:
            return None
        return cluster.namespace_or_default(self.namespace)


def parse_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback: `30s`, `2m`, `500ms`, `1h` or plain seconds as float seconds (None when unset or 0).

    Finite, not negative, at most a year (`cli.types.duration_value`).
    """
    if value in (None, "", "0"):
        return None
    assert value is not None
    return duration_value(value)


def kube_options(
    *,
    outputs: Sequence[str] = OUTPUT_FORMATS,
    default_output: str = "table",
    writes: bool = False,
    selector: bool = True,
    all_namespaces: bool = True,
    output: bool = True,
) -> Callable[[F], F]:
    """Give a leaf command the kubectl flags it can use, bundled as ``kube: KubeOptions``.

    Args:
        outputs: the ``-o`` formats the command can render.
        default_output: the ``-o`` default.
        writes: add ``--dry-run``, ``--field-manager`` and ``--force-conflicts``.
        selector: add ``-l/--selector``.
        all_namespaces: add ``-A/--all-namespaces``.
        output: add ``-o/--output`` (False for a command whose ``-o`` names a file).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kube = KubeOptions(
                kubeconfig=kwargs.pop("kubeconfig"),
                context=kwargs.pop("kube_context"),
                namespace=kwargs.pop("namespace"),
                all_namespaces=kwargs.pop("all_namespaces", False),
                selector=kwargs.pop("selector", None),
                output=kwargs.pop("output", default_output),
                dry_run=kwargs.pop("dry_run", "none"),
                field_manager=kwargs.pop("field_manager", FIELD_MANAGER),
                force_conflicts=kwargs.pop("force_conflicts", False),
                request_timeout=kwargs.pop("request_timeout"),
                insecure_skip_tls_verify=kwargs.pop("insecure_skip_tls_verify"),
            )
            return func(*args, kube=kube, **kwargs)

        options: list[Callable[[Any], Any]] = [
            click.option(
                "--kubeconfig",
                type=click.Path(dir_okay=False),
                default=None,
                help="Path to the kubeconfig file (default: $KUBECONFIG, a ':'-list, or ~/.kube/config).",
            ),
            click.option("--context", "kube_context", default=None, help="The kubeconfig context to use."),
            click.option(
                "-n", "--namespace", default=None, help="Namespace (default: the context's namespace)."
            ),
        ]
        if all_namespaces:
            options.append(
                click.option(
                    "-A", "--all-namespaces", is_flag=True, help="Act across all namespaces; -n is ignored."
                )
            )
        if selector:
            options.append(
                click.option(
                    "-l", "--selector", default=None, help="Label selector, e.g. -l app=vllm,tier!=dev."
                )
            )
        if output:
            options.append(
                click.option(
                    "-o",
                    "--output",
                    type=click.Choice(list(outputs)),
                    default=default_output,
                    show_default=True,
                    help="Output format.",
                )
            )
        if writes:
            options += [
                click.option(
                    "--dry-run",
                    type=click.Choice(list(DRY_RUN_MODES)),
                    default="none",
                    show_default=True,
                    help="client: print what would be sent; server: send with dryRun=All, persist nothing.",
                ),
                click.option(
                    "--field-manager",
                    default=FIELD_MANAGER,
                    show_default=True,
                    help="Field manager name for server-side apply.",
                ),
                click.option(
                    "--force-conflicts",
                    is_flag=True,
                    help="Take ownership of fields another field manager owns (server-side apply force).",
                ),
            ]
        options += [
            click.option(
                "--request-timeout",
                default=None,
                callback=request_timeout,
                metavar="DURATION",
                help="Per-request timeout, e.g. 30s or 2m; 0 for none (default: 30s; watches and "
                "streams excepted).",
            ),
            click.option(
                "--insecure-skip-tls-verify",
                is_flag=True,
                help="Do not verify the API server's certificate (insecure; for test clusters only).",
            ),
        ]
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _target_versions(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    from kubectl_gpuscale.facts import parse_targets

    try:
        return dict(parse_targets(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def target_versions_option(func: F) -> F:
    """``--target-versions COMPONENT=VERSION,...``: the versions to emit for, as ``target_versions`` (a dict)."""
    return click.option(
        "--target-versions",
        "target_versions",
        callback=_target_versions,
        default=None,
        metavar="COMPONENT=VERSION,...",
        help="Versions to emit for (keda, keda-http, knative, kubernetes), e.g. keda=2.16.1,keda-http=0.13.0. "
        "Default: detected in the cluster; offline, the pinned install versions.",
    )(func)


def resolve_targets(given: dict[str, Any], cluster: Cluster | None) -> Any:
    """The `Targets` for a command: ``given`` over those detected with a cluster, else over the pinned ones."""
    from kubectl_gpuscale.facts.detect import detect_targets, offline_targets

    return detect_targets(cluster, given) if cluster is not None else offline_targets(given)


def announce_targets(targets: Any) -> None:
    """Say on stderr which versions the output was built for (and where each came from)."""
    from kubectl_gpuscale.cli.output import note

    note("target versions: " + "; ".join(targets.lines()))
