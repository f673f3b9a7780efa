"""Rendering for every command: json/yaml (several objects as a `List`), `-o name`, rich tables.

Only the requested output goes to stdout, so `-o json` pipes into jq and
`-o yaml` into `kubectl apply -f -`. Notes and warnings go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from kubectl_gpuscale.manifests import dump_yaml


def dump(data: Any, fmt: str) -> str:
    """`data` as JSON (indented, like kubectl) or YAML text, ending with a newline."""
    if fmt == "json":
        return json.dumps(data, indent=4, default=str) + "\n"
    if fmt == "yaml":
        return dump_yaml(data)
    raise ValueError(f"unknown format {fmt!r}")


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap Kubernetes objects in a `v1 List`, the way kubectl prints several objects."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def object_name(obj: Mapping[str, Any]) -> str:
    """`kind.group/name` as `kubectl get -o name` prints it (`pod/x`, `deployment.apps/x`)."""
    api_version = obj.get("apiVersion", "v1")
    group = api_version.split("/")[0] if "/" in api_version else ""
    kind = str(obj.get("kind", "")).lower()
    name = obj.get("metadata", {}).get("name", "")
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def emit_objects(objects: Sequence[Mapping[str, Any]], output: str, *, single: bool = False) -> None:
    """Print Kubernetes objects as json, yaml or name. `single` prints one object bare, not in a List."""
    if output == "name":
        for obj in objects:
            click.echo(object_name(obj))
        return
    if output in ("json", "yaml"):
        data: Any = objects[0] if single and len(objects) == 1 else as_list(objects)
        click.echo(dump(data, output), nl=False)
        return
    raise ValueError(f"emit_objects cannot render {output!r}; use render_table")


def emit_data(data: Any, output: str) -> None:
    """Print a plain report (not Kubernetes objects) as json or yaml."""
    click.echo(dump(data, output), nl=False)


@dataclass(frozen=True)
class Column:
    """One table column: its header, how to get a cell from a row, and whether only `-o wide` shows it."""

    header: str
    cell: Callable[[Any], Any]
    wide: bool = False
    justify: str = "left"


def render_table(
    rows: Iterable[Any],
    columns: Sequence[Column],
    *,
    wide: bool = False,
    empty: str = "No resources found.",
    file: Any = None,
    width: int | None = None,
) -> None:
    """Print rows as a kubectl-style table: upper-case headers, no borders, `<none>` for empty cells.

    Cells are shown as plain text (`display.plain`: no Rich markup, control characters visible); a
    cell that is already a Rich renderable is shown as it is.

    `width` overrides the console width (default: the terminal's, at least 200); cells wider than
    their share are cut with an ellipsis.
    """
    from rich.console import Console
    from rich.table import Table

    from kubectl_gpuscale.display import plain

    out = file or sys.stdout
    shown = [c for c in columns if wide or not c.wide]
    rows = list(rows)
    if not rows:
        click.echo(empty, err=True)
        return
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for column in shown:
        table.add_column(column.header.upper(), justify=column.justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        cells: list[Any] = []
        for column in shown:
            value = column.cell(row)
            cells.append(
                "<none>" if value in (None, "") else value if hasattr(value, "__rich__") else plain(value)
            )
        table.add_row(*cells)
    console = Console(
        file=out,
        width=width or max(200, _terminal_width()),
        soft_wrap=True,
        force_terminal=None if out.isatty() else False,
    )
    console.print(table)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 40)).columns


def warn(message: str) -> None:
    """A warning line on stderr (never stdout)."""
    click.echo(f"warning: {message}", err=True)


def note(message: str) -> None:
    """An informational line on stderr (never stdout)."""
    click.echo(message, err=True)


def compile_notice(runs: Iterable[object] | None = None) -> None:
    """One stderr line when a simulation is about to compile the simulator's kernel (the first on a
    machine), so a 15-35 s pause is not taken for a hang; `runs`: the Simulation's runs (None: any)."""
    from kubectl_gpuscale.sim.kernel import KernelRun, pending_compile

    if runs is not None and not any(isinstance(r, KernelRun) for r in runs):
        return
    pending = pending_compile()
    if pending == "ahead-of-time":
        note(
            "compiling the simulator's kernel, once per machine (ahead of time: ~30-35 s of CPU; "
            "later runs load it without numba)"
        )
    elif pending:
        note(
            "compiling the simulator's kernel, once per machine (~15-20 s of CPU; "
            "later runs load it from numba's cache)"
        )


def save_figure(fig: Any, path: str, *, dpi: int) -> None:
    """Write a matplotlib figure to `path` and close it; an unwritable path is one clear error."""
    import matplotlib.pyplot as plt

    from kubectl_gpuscale.errors import GpuscaleError

    try:
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise GpuscaleError(
            f"cannot write the plot {path}", exc.strerror or str(exc), "check the path"
        ) from None
    finally:
        plt.close(fig)
