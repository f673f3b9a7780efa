"""Small renderables and modal screens of the dashboard."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from kubectl_gpuscale.display import plain, visible
from kubectl_gpuscale.names import KEDA_PAUSED_REPLICAS
from kubectl_gpuscale.tui.model import (
    COLD_STARTING,
    FLAPPING,
    METRIC_MISSING,
    PAUSED,
    SCALING_DOWN,
    SCALING_UP,
    ColdStartPhase,
    Pod,
    Workload,
)

STATE_STYLE = {
    COLD_STARTING: "bold yellow",
    SCALING_UP: "bold cyan",
    SCALING_DOWN: "cyan",
    FLAPPING: "bold magenta",
    METRIC_MISSING: "bold red",
    PAUSED: "dim",
}


def state_text(state: str) -> Text:
    """A workload state, coloured."""
    return Text(state, style=STATE_STYLE.get(state, "green"))


def pct(value: float | None) -> str:
    """`57%`, or `-` when unknown."""
    return "-" if value is None else f"{value:.0f}%"


def num(value: float | None, digits: int = 0) -> str:
    """A number, or `-` when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    """`850ms`, `2.4s`, `3m05s`, or `-`."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 90:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m{int(value % 60):02d}s"


def start_bar(pod: Pod, width: int = 12) -> Text:
    """A pod's cold-start progress: `[█████░░░░░░░] weights 42%`, or `ready`."""
    if pod.start_progress is None or pod.starting_phase is None:
        return Text("ready" if pod.ready else pod.phase.lower(), style="green" if pod.ready else "yellow")
    done = max(0, min(width, round(pod.start_progress * width)))
    text = Text("█" * done, style="yellow")
    text.append("░" * (width - done), style="grey37")
    text.append(f" {pod.starting_phase} {pod.start_progress * 100:.0f}%")
    return text


def waterfall(pod: Pod, width: int = 40) -> Table:
    """The cold-start waterfall of one pod: each phase's start, duration, share and bar."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header, justify in (
        ("PHASE", "left"),
        ("START", "right"),
        ("DURATION", "right"),
        ("SHARE", "right"),
        ("", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    total = sum(p.seconds for p in pod.phases) or 1.0
    offset = 0.0
    for phase in pod.phases:
        lead = round(offset / total * width)
        size = max(1, round(phase.seconds / total * width)) if phase.seconds > 0 else 0
        bar = Text(" " * lead) + Text("█" * size, style="cyan")
        table.add_row(
            phase.name, seconds(offset), seconds(phase.seconds), f"{phase.seconds / total:.0%}", bar
        )
        offset += phase.seconds
    table.add_row(Text("total", style="bold"), "", Text(seconds(offset), style="bold"), "", "")
    return table


class ConfirmScreen(ModalScreen[bool]):
    """Ask yes/no before an action that changes the cluster."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.question), id="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes", variant="warning", id="yes")
                yield Button("No", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen["str | None"]):
    """Ask for one value (replicas, a namespace); Enter accepts, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.question))
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓", "select a workload"),
    ("enter", "cold-start waterfall of its starting (or newest) pod"),
    ("/", "filter by namespace, name, engine, scaler or state; esc clears"),
    ("n", "switch namespace (empty: all)"),
    ("s", "scale the workload (asks for the count, then to confirm)"),
    ("p", f"pause / resume its ScaledObject ({KEDA_PAUSED_REPLICAS})"),
    ("c", "checkpoint its oldest ready pod (kubelet checkpoint API; asks to confirm)"),
    ("x", "switch kubeconfig context"),
    ("r", "refresh now"),
    ("?", "this help"),
    ("q", "quit"),
)


def help_table() -> Table:
    """The keys, the states and what WHY means."""
    table = Table(
        box=None,
        show_header=False,
        pad_edge=False,
        title="kubectl gpuscale top",
        title_justify="left",
        title_style="bold",
        caption_justify="left",
        caption="STATE: steady, scaling up, scaling down, cold starting, flapping, metric missing, at zero, "
        "paused.\nWHY: each trigger's value against its threshold (queue 12/5: 12 waiting, "
        "threshold 5).",
    )
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """The key bindings and what the columns mean."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(help_table())

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class PodScreen(ModalScreen[None]):
    """The cold-start waterfall of one pod (`phases` may come later, read in a worker)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, workload: Workload, pod: Pod, headline: str = "") -> None:
        super().__init__()
        self.workload = workload
        self.pod = pod
        self.headline = headline

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(
                Text.assemble(
                    (visible(self.workload.key), "bold"),
                    visible(f" · pod {self.pod.name} · on {self.pod.node or '-'}"),
                )
            )
            yield Static(plain(self.headline), id="headline")
            yield Static(self._body(), id="waterfall")

    def _body(self) -> Table | str:
        return waterfall(self.pod) if self.pod.phases else "reading the pod's events and logs..."

    def show_phases(self, phases: tuple[ColdStartPhase, ...], headline: str) -> None:
        """Fill in the waterfall once the pod's cold start has been read."""
        self.pod = replace(self.pod, phases=phases)
        self.query_one("#headline", Static).update(plain(headline))
        self.query_one("#waterfall", Static).update(self._body() if phases else "no cold-start phases found")

    def action_close(self) -> None:
        self.dismiss(None)
