"""The `kubectl gpuscale` command line.

`main` is the console script. It decides the program name (``kubectl gpuscale``
when run as the ``kubectl-gpuscale`` plugin), runs the lazily loaded command
group, and turns every error into one line on stderr and an exit code.
"""

from __future__ import annotations

import os
import sys

import click

from kubectl_gpuscale.errors import ExitStatus, GpuscaleError

PLUGIN_NAME = "kubectl gpuscale"


def prog_name(argv0: str) -> str:
    """The name help text shows: ``kubectl gpuscale`` for the plugin executable, else the script's name."""
    base = os.path.basename(argv0)
    if base.startswith("kubectl-") or base.startswith("kubectl_complete-"):
        return PLUGIN_NAME
    if base in ("__main__.py", "-m", "-c", ""):
        return "python -m kubectl_gpuscale"
    return base


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GPUSCALE_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit: 0 ok, 1 failure or error-severity finding, 2 usage error."""
    from kubectl_gpuscale.cli.root import cli

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    try:
        code = cli.main(
            args=args,
            prog_name=prog_name(sys.argv[0]),
            standalone_mode=False,
            complete_var="_KUBECTL_GPUSCALE_COMPLETE",
        )
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.exceptions.Abort as stop:  # click turns KeyboardInterrupt into Abort
        from kubectl_gpuscale.interrupts import signal_of

        click.echo("Aborted.", err=True)
        sys.exit(ExitStatus.for_signal(signal_of(stop.__cause__ or stop)))
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GpuscaleError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.line()}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(ExitStatus.FAILURE)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP inside interrupts.interrupts_as_ctrl_c
        from kubectl_gpuscale.interrupts import signal_of

        sys.exit(ExitStatus.for_signal(signal_of(exc)))
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc}; "
            "run again with --debug for the traceback and report it",
            err=True,
        )
        sys.exit(ExitStatus.FAILURE)
    sys.exit(code if isinstance(code, int) else ExitStatus.OK)
