"""The root group. Subcommands are imported only when they run (or when help lists them)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from kubectl_gpuscale import __version__

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# name -> (module under kubectl_gpuscale.cli, attribute, one-line help shown in the group's listing)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "install": (
        "install",
        "install",
        "Install KEDA, Knative, DCGM exporter, image pre-pull, tuned for GPU cold starts.",
    ),
    "status": (
        "install",
        "status",
        "Show which autoscaling components the cluster serves, and their health.",
    ),
    "uninstall": ("install", "uninstall", "Remove a component installed by `install`."),
    "migrate-hpa": (
        "migrate",
        "migrate_hpa",
        "Turn CPU/memory HPAs on GPU inference into queue-depth KEDA ScaledObjects.",
    ),
    "coldstart": (
        "coldstart",
        "coldstart",
        "Break a pod's cold start into phases and say what to do about the longest.",
    ),
    "doctor": ("doctor", "doctor", "Lint a namespace or cluster for what makes GPU autoscaling go wrong."),
    "simulate": (
        "simulate",
        "simulate",
        "What-if: traffic x scaling policy x cold start -> latency SLO and cost.",
    ),
    "tune": (
        "tune",
        "tune",
        "Find the cheapest autoscaling settings that meet a TTFT SLO, from the workload's history.",
    ),
    "top": ("top", "top", "Live dashboard of scaling and cold starts (--demo: a simulated cluster)."),
    "checkpoint": (
        "checkpoint",
        "checkpoint",
        "Checkpoint, list, fetch, inspect and restore inference containers.",
    ),
    "completion": ("completion", "completion", "Print a shell completion script (bash, zsh, fish)."),
    "version": ("root", "version", "Print the plugin version."),
}


class LazyGroup(click.Group):
    """A group whose subcommands live in modules imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *(name for name in COMMANDS if self._available(name))})

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name][0]
        return importlib.util.find_spec(f"kubectl_gpuscale.cli.{module}") is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None or not self._available(cmd_name):
            return None
        module = importlib.import_module(f"kubectl_gpuscale.cli.{entry[0]}")
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2] if name in COMMANDS else "") for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="Run 'kubectl gpuscale COMMAND -h' for a command's flags and examples. "
    "Docs: https://github.com/kubectl-gpuscale/kubectl-gpuscale/tree/main/docs",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (also GPUSCALE_DEBUG=1).")
@click.version_option(__version__, "--version", prog_name="kubectl-gpuscale", message="%(prog)s %(version)s")
def cli(debug: bool) -> None:
    """Autoscale GPU LLM inference on Kubernetes.

    KEDA queue-depth scaling instead of CPU HPAs, Knative scale-to-zero, DCGM GPU
    metrics, cold-start diagnosis and container checkpoint/restore, from kubectl.

    \b
    Examples:
      kubectl gpuscale top --demo               # the dashboard on a simulated cluster
      kubectl gpuscale migrate-hpa --all -n ml --dry-run=client
      kubectl gpuscale coldstart deploy/vllm -n ml
      kubectl gpuscale simulate --pattern business-hours --policy cpu-hpa,keda,knative
    """


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True
)
def version(output: str) -> None:
    """Print the plugin version.

    \b
    Examples:
      kubectl gpuscale version
      kubectl gpuscale version -o json
    """
    import platform

    info = {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    if output == "text":
        click.echo(f"kubectl-gpuscale {__version__} (python {info['python']}, {info['platform']})")
    else:
        from kubectl_gpuscale.cli.output import dump

        click.echo(dump(info, output), nl=False)
