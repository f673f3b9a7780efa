"""Shell completion: `kubectl gpuscale completion bash|zsh|fish`, and kubectl's plugin protocol.

Two ways users complete:

- ``kubectl-gpuscale <TAB>`` (the executable called directly): the bash/zsh/fish
  scripts printed by ``completion SHELL``, click's own completion machinery.
- ``kubectl gpuscale <TAB>``: kubectl's completion (``kubectl completion bash``,
  kubectl >= 1.26) runs ``kubectl_complete-gpuscale WORD... INCOMPLETE`` from PATH
  and reads cobra's ``__complete`` format: one candidate a line (``value<TAB>help``),
  then ``:<directive>``. pip/pipx/uv install that executable; krew cannot, so
  ``completion kubectl`` prints a two-line shim to put on PATH.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from kubectl_gpuscale.cli.root import CONTEXT_SETTINGS
from kubectl_gpuscale.names import PROGRAM

PROG = PROGRAM
COMPLETE_VAR = "_KUBECTL_GPUSCALE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

# cobra's ShellCompDirective values (spf13/cobra completions.go).
DIRECTIVE_DEFAULT = 0
DIRECTIVE_NO_FILE = 4
DIRECTIVE_FILTER_DIRS = 16

KUBECTL_SHIM = """\
#!/bin/sh
# kubectl calls this for `kubectl gpuscale <TAB>` (kubectl >= 1.26). Put it on PATH
# as kubectl_complete-gpuscale, executable.
exec kubectl-gpuscale completion __complete "$@"
"""


def shell_script(shell: str) -> str:
    """The completion script click generates for ``kubectl-gpuscale`` in ``shell``."""
    from click.shell_completion import get_completion_class

    from kubectl_gpuscale.cli.root import cli

    comp_cls = get_completion_class(shell)
    if comp_cls is None:
        raise click.BadParameter(f"unsupported shell {shell!r}; choose one of {', '.join(SHELLS)}")
    return comp_cls(cli, {}, PROG, COMPLETE_VAR).source()


def cobra_completions(words: Sequence[str]) -> list[str]:
    """Completion lines in cobra's ``__complete`` format for the words after ``gpuscale``.

    The last word is the one being completed (possibly empty). The final line is
    ``:<directive>``: file completion only where the parameter takes a path.
    """
    from click.shell_completion import ShellComplete

    from kubectl_gpuscale.cli.root import cli

    args = list(words[:-1])
    incomplete = words[-1] if words else ""
    completer = ShellComplete(cli, {}, "kubectl gpuscale", COMPLETE_VAR)
    try:
        items = completer.get_completions(args, incomplete)
    except Exception:  # a half-typed command line must never print a traceback into the shell
        return [f":{DIRECTIVE_NO_FILE}"]
    lines: list[str] = []
    directive = DIRECTIVE_NO_FILE
    for item in items:
        if item.type == "file":
            directive = DIRECTIVE_DEFAULT
        elif item.type == "dir":
            directive = DIRECTIVE_FILTER_DIRS
        else:
            text = str(item.value)
            help_text = " ".join(str(item.help).split()) if item.help else ""
            lines.append(f"{text}\t{help_text}" if help_text else text)
    lines.append(f":{directive}")
    return lines


def complete_main(argv: list[str] | None = None) -> None:
    """Console script ``kubectl_complete-gpuscale``: print cobra-format completions for argv."""
    words = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write("\n".join(cobra_completions(words)) + "\n")
    sys.stdout.flush()


@click.command(
    context_settings={**CONTEXT_SETTINGS, "ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("shell", metavar="bash|zsh|fish|kubectl")
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="")
def completion(shell: str, words: tuple[str, ...]) -> None:
    """Print a shell completion script (bash, zsh, fish).

    The script completes the `kubectl-gpuscale` executable. For `kubectl gpuscale
    <TAB>`, load kubectl's own completion (`kubectl completion bash`, kubectl
    1.26 or newer): it runs `kubectl_complete-gpuscale`, which pip, pipx and uv
    install beside `kubectl-gpuscale`. Krew installs only the plugin: `completion
    kubectl` prints the small `kubectl_complete-gpuscale` script to put on PATH.

    \b
    Examples:
      source <(kubectl gpuscale completion bash)        # bash, this shell
      kubectl gpuscale completion bash > ~/.local/share/bash-completion/completions/kubectl-gpuscale
      kubectl gpuscale completion zsh > "${fpath[1]}/_kubectl-gpuscale"
      kubectl gpuscale completion fish > ~/.config/fish/completions/kubectl-gpuscale.fish
      kubectl gpuscale completion kubectl > ~/.krew/bin/kubectl_complete-gpuscale \\
        && chmod +x ~/.krew/bin/kubectl_complete-gpuscale
    """
    if shell == "__complete":
        click.echo("\n".join(cobra_completions(words)))
        return
    if words:
        raise click.UsageError(f"unexpected arguments after {shell!r}: {' '.join(words)}")
    if shell == "kubectl":
        click.echo(KUBECTL_SHIM, nl=False)
        return
    if shell not in SHELLS:
        from kubectl_gpuscale.errors import InputError

        raise InputError(
            f"completion {shell}",
            "unsupported shell",
            f"choose one of {', '.join(SHELLS)}, or 'kubectl' for the kubectl_complete-gpuscale script",
        )
    click.echo(shell_script(shell), nl=False)
