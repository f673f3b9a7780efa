"""Text from the cluster or from files is never read as Rich markup, and control characters are shown,
not sent to the terminal (issue 15): `evil[/]` and `[/d]` raised MarkupError, `[red]x` lost its
brackets, and raw ESC sequences from archive metadata reached the terminal.

Rich parses a plain ``str`` table cell or `Console.print` argument as markup
(rich/markup.py `render`, "closing tag '[/]' has nothing to close"); Textual's DataTable does the
same for ``str`` cells (textual/widgets/_data_table.py `default_cell_formatter`, `Text.from_markup`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, RichLog, Static

from kubectl_gpuscale.cli.output import Column, render_table
from kubectl_gpuscale.display import plain, visible
from kubectl_gpuscale.tui.app import TopApp
from kubectl_gpuscale.tui.model import Pod, ScalingEvent, Snapshot, Trigger, Workload
from tests import hostile
from tests.support.measure import run_measured

HOSTILE = [
    "evil[/]",
    "/var/lib/[/d]/x",
    "[red]x",
    "a\x1b[31mred\x1b[0m",
    "[bold]b[/bold]",
    "\x1b]0;title\x07",
]


def test_visible_spells_control_characters() -> None:
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("x\ny\tz\x7f\x9b\u202e") == "x\\ny\\tz\\x7f\\x9b\\u202e"
    assert visible("évil [/] ✓") == "évil [/] ✓"
    assert plain("[red]x").plain == "[red]x"


@pytest.mark.parametrize("text", HOSTILE)
def test_table_cells_are_plain_text(text: str) -> None:
    out = io.StringIO()
    render_table([{"name": text}], [Column("name", lambda r: r["name"])], file=out, width=120)
    shown = out.getvalue()
    assert "\x1b" not in shown
    assert visible(text) in shown


def test_checkpoint_inspect_shows_hostile_metadata_literally(tmp_path: Path) -> None:
    """Image, container and times from config.dump/spec.dump, as a user would see them in the table."""
    config = {
        "id": "abc",
        "rootfsImageName": "evil[/]",
        "runtime": "[red]runc",
        "checkpointedTime": "\x1b[2J\x1b]0;pwned\x07now",
        "createdTime": "[/d]",
    }
    archive = hostile.metadata_archive(tmp_path / "a.tar", "config.dump", config)
    result = run_measured(["checkpoint", "inspect", str(archive), "-o", "wide"], env={"COLUMNS": "600"})
    assert result.code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    for literal in ("evil[/]", "[red]runc", "\\x1b[2J\\x1b]0;pwned\\x07now"):
        assert literal in result.stdout, result.stdout


def test_coldstart_prints_hostile_pod_text_literally(tmp_path: Path) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "evil[/]\x1b[2J", "namespace": "[red]ml"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-03-13T21:40:00Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-13T21:41:00Z"},
            ],
        },
    }
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(pod))
    log = tmp_path / "vllm.log"
    log.write_text("INFO 03-13 21:40:30 [api_server.py:1024] vLLM API server version [/d] \x1b[31m\n")
    result = run_measured(["coldstart", "-f", str(log), "--pod", str(path)], env={"COLUMNS": "400"})
    assert result.code in (0, 1), result.stderr
    assert "MarkupError" not in result.stderr and "internal error" not in result.stderr
    assert "\x1b" not in result.stdout
    assert "evil[/]\\x1b[2J" in result.stdout


class HostileSource:
    """A source whose names, reasons and messages hold markup and escape sequences."""

    name = "hostile"
    namespace = None

    def refresh(self) -> Snapshot:
        pod = Pod("evil[/]-pod", "[red]Running", ready=True, node="node-[/d]", age_seconds=10)
        workload = Workload(
            "[bold]ns",
            "evil[/]",
            engine="vLLM\x1b[31m",
            scaler="KEDA",
            scaler_name="so[/]",
            ready=1,
            desired=1,
            triggers=(Trigger("queue", 1, 5),),
            pods=(pod,),
        )
        events = (ScalingEvent("10:00:01", "ns", "evil[/]", "[/d]", "message \x1b[2J [red]x"),)
        return Snapshot(
            "10:00:05",
            "hostile",
            (workload,),
            events,
            problems=("events: [/] forbidden",),
            namespaces=("ns",),
        )


async def test_dashboard_cells_are_plain_text() -> None:
    app = TopApp(HostileSource(), interval=None)  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one("#workloads", DataTable)
        assert table.row_count == 1
        row = [str(getattr(c, "plain", c)) for c in table.get_row_at(0)]
        assert "evil[/]" in row and "[bold]ns" in row and "vLLM\\x1b[31m" in row
        pods = app.query_one("#pods", DataTable)
        assert [str(getattr(c, "plain", c)) for c in pods.get_row_at(0)][:3] == [
            "evil[/]-pod",
            "[red]Running",
            "node-[/d]",
        ]
        assert "so[/]" in str(app.query_one("#why", Static).render())
        assert "events: [/] forbidden" in str(app.query_one("#problems", Static).render())
        log = app.query_one("#events", RichLog)
        text = "".join(strip.text for strip in log.lines)
        assert "\\x1b[2J [red]x" in text and "\x1b" not in text
