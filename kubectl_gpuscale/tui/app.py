"""The `top` dashboard: workloads, their history and pods, scaling events, doctor findings.

The data comes from an injected `Source` (live cluster or simulated demo). Each
refresh runs in a thread worker; the next one is scheduled only when the last
one finished, so polls never overlap and the UI never waits on I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Label, RichLog, Sparkline, Static
from textual.widgets.data_table import ColumnKey
from textual.worker import Worker, WorkerState

from kubectl_gpuscale.display import plain, visible
from kubectl_gpuscale.tui.model import (
    Finding,
    History,
    Snapshot,
    Source,
    Workload,
    classify,
    filter_workloads,
)
from kubectl_gpuscale.tui.widgets import (
    ConfirmScreen,
    HelpScreen,
    PodScreen,
    PromptScreen,
    num,
    pct,
    seconds,
    start_bar,
    state_text,
)

WORKLOAD_COLUMNS = (
    "NAMESPACE",
    "NAME",
    "ENGINE",
    "SCALER",
    "READY",
    "MIN-MAX",
    "WHY",
    "QUEUE",
    "RUN",
    "KV",
    "GPU",
    "TTFT p95",
    "STATE",
)
POD_COLUMNS = ("POD", "STATUS", "NODE", "AGE", "GPU", "COLD START")
MAX_FINDINGS_SHOWN = 100


class TopApp(App[None]):
    """The live dashboard of scaling and cold starts."""

    CSS_PATH = "app.tcss"
    TITLE = "kubectl gpuscale top"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "filter", "Filter"),
        Binding("n", "namespace", "Namespace"),
        Binding("s", "scale", "Scale"),
        Binding("p", "pause", "Pause/resume"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("x", "context", "Context"),
        Binding("enter", "pod", "Cold start", show=False),
        Binding("r", "refresh", "Refresh"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, source: Source, *, interval: float | None = 2.0, show_clock: bool = True) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.history = History()
        self.snapshot: Snapshot | None = None
        self.filter_text = ""
        self.selected_key: str | None = None
        self._seen_events: set[tuple[str, str, str, str]] = set()
        self._show_clock = show_clock
        self._next_poll: Timer | None = None
        self._cells: dict[str, tuple[object, ...]] = {}
        self._shown_findings: tuple[Finding, ...] | None = None
        self.refreshes = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=self._show_clock)
        yield Static("", id="problems")
        yield DataTable(id="workloads", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="detail"):
            with Vertical(id="history"):
                yield Label("queue waiting", id="queue-label")
                yield Sparkline([], id="queue-spark")
                yield Label("replicas ready", id="replicas-label")
                yield Sparkline([], id="replicas-spark")
                yield Static("", id="why")
            yield DataTable(id="pods", cursor_type="row")
        with Horizontal(id="bottom"):
            yield RichLog(id="events", max_lines=500, markup=False, wrap=False)
            yield RichLog(id="findings", max_lines=200, markup=False, wrap=True, auto_scroll=False)
        yield Input(
            placeholder="filter: name, engine, scaler or state; Enter applies, Esc clears", id="filter"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.source.name
        workloads = self.query_one("#workloads", DataTable)
        for label in WORKLOAD_COLUMNS:
            workloads.add_column(label, key=label)
        pods = self.query_one("#pods", DataTable)
        for label in POD_COLUMNS:
            pods.add_column(label, key=label)
        self.query_one("#filter", Input).display = False
        self.query_one("#events", RichLog).border_title = "scaling events"
        self.query_one("#findings", RichLog).border_title = "doctor"
        self.query_one("#pods", DataTable).border_title = "pods"
        workloads.focus()
        self.action_refresh()

    # ---- refresh loop ------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        """Fetch a snapshot now (in a worker thread); the next poll is scheduled when it finishes."""
        if self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        self._fetch()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _fetch(self) -> Snapshot:
        return self.source.refresh()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "poll":
            return
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, Snapshot):
            self.show(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self._show_problems((f"refresh failed: {event.worker.error}; showing the last values",))
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR) and self.interval:
            if self._next_poll is not None:
                self._next_poll.stop()
            self._next_poll = self.set_timer(self.interval, self._fetch)

    # ---- rendering ---------------------------------------------------------------------------------

    def show(self, snapshot: Snapshot) -> None:
        """Render one snapshot (on the UI thread)."""
        self.refreshes += 1
        workloads = tuple(_with_state(w, self.history) for w in snapshot.workloads)
        self.history.record(workloads)
        self.snapshot = Snapshot(
            snapshot.time,
            snapshot.source,
            workloads,
            snapshot.events,
            snapshot.findings,
            snapshot.problems,
            snapshot.namespaces,
        )
        self.sub_title = f"{snapshot.source} · {snapshot.time}"
        self._show_problems(snapshot.problems)
        self._render_workloads()
        self._render_detail()
        self._render_events(snapshot)
        self._render_findings(snapshot)

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        banner = self.query_one("#problems", Static)
        banner.update(plain("  ".join(f"⚠ {p}" for p in problems), "bold red") if problems else "")
        banner.display = bool(problems)

    def visible_workloads(self) -> list[Workload]:
        """The workloads the filter lets through, in table order."""
        if self.snapshot is None:
            return []
        return filter_workloads(self.snapshot.workloads, self.filter_text)

    def _render_workloads(self) -> None:
        table = self.query_one("#workloads", DataTable)
        rows = self.visible_workloads()
        keys = [w.key for w in rows]
        current = [str(k.value) for k in table.rows]
        if current != keys:
            table.clear()
            self._cells = {w.key: _workload_cells(w) for w in rows}
            for w in rows:
                table.add_row(*self._cells[w.key], key=w.key)
        else:
            for w in rows:
                cells, before = _workload_cells(w), self._cells.get(w.key, ())
                for i, (column, value) in enumerate(zip(WORKLOAD_COLUMNS, cells, strict=True)):
                    if i >= len(before) or before[i] != value:
                        wider = (
                            cell_len(value.plain if isinstance(value, Text) else str(value))
                            > table.columns[ColumnKey(column)].content_width
                        )
                        table.update_cell(w.key, column, value, update_width=wider)
                self._cells[w.key] = cells
        if self.selected_key in keys:
            table.move_cursor(row=keys.index(self.selected_key))
        elif keys:
            self.selected_key = keys[min(table.cursor_row, len(keys) - 1)]

    def selected(self) -> Workload | None:
        """The workload under the cursor."""
        for w in self.visible_workloads():
            if w.key == self.selected_key:
                return w
        return None

    @on(DataTable.RowHighlighted, "#workloads")
    def _on_highlight(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected_key = str(event.row_key.value)
            self._render_detail()

    @on(DataTable.RowSelected, "#workloads")
    def _on_select(self, event: DataTable.RowSelected) -> None:
        self.action_pod()

    def _render_detail(self) -> None:
        w = self.selected()
        queue = self.query_one("#queue-spark", Sparkline)
        replicas = self.query_one("#replicas-spark", Sparkline)
        pods = self.query_one("#pods", DataTable)
        pods.clear()
        if w is None:
            queue.data, replicas.data = [], []
            self.query_one("#why", Static).update("")
            return
        queue.data = _trend(self.history.queue.get(w.key, ()))
        replicas.data = _trend(self.history.replicas.get(w.key, ()))
        self.query_one("#queue-label", Label).update(
            plain(f"queue waiting · {w.key} · now {num(w.queue_waiting)}")
        )
        self.query_one("#replicas-label", Label).update(
            f"replicas ready {w.ready} / desired {w.desired} (min {num(w.min_replicas)}, max {num(w.max_replicas)})"
        )
        self.query_one("#why", Static).update(
            Text.assemble(
                ("why: ", "bold"),
                plain(w.why()),
                "\n",
                ("scaler: ", "bold"),
                plain(f"{w.scaler} {w.scaler_name}"),
            )
        )
        for pod in w.pods:
            pods.add_row(
                plain(pod.name),
                plain(pod.phase + ("" if pod.ready else " (not ready)")),
                plain(pod.node or "-"),
                seconds(pod.age_seconds),
                pct(pod.gpu_util),
                start_bar(pod),
                key=pod.name,
            )

    def _render_events(self, snapshot: Snapshot) -> None:
        log = self.query_one("#events", RichLog)
        denied = next((p for p in snapshot.problems if p.startswith("events: ")), None)
        if denied and ("", "", "", denied) not in self._seen_events:  # the panel says why it stays empty
            self._seen_events.add(("", "", "", denied))
            log.write(plain(denied, "yellow"))
        for e in snapshot.events:
            key = (e.time, e.namespace, e.name, e.message)
            if key in self._seen_events:
                continue
            self._seen_events.add(key)
            log.write(
                Text.assemble(
                    (visible(e.time), "dim"),
                    " ",
                    (visible(f"{e.namespace}/{e.name}"), "bold"),
                    " ",
                    (visible(e.reason), "red" if e.warning else "cyan"),
                    " ",
                    visible(e.message),
                )
            )

    def _render_findings(self, snapshot: Snapshot) -> None:
        if snapshot.findings == self._shown_findings:
            return
        self._shown_findings = snapshot.findings
        log = self.query_one("#findings", RichLog)
        log.clear()
        if not snapshot.findings:
            log.write(Text("no findings", style="green"))
        for f in snapshot.findings[:MAX_FINDINGS_SHOWN]:
            style = {"error": "bold red", "warning": "yellow"}.get(f.severity, "cyan")
            log.write(Text.assemble((f"{f.severity:<8}", style), f" {f.rule} ", (visible(f.target), "bold")))
            log.write(plain(f"         {f.message}", "dim"))
        hidden = len(snapshot.findings) - MAX_FINDINGS_SHOWN
        if hidden > 0:
            log.write(Text(f"... and {hidden} more: kubectl gpuscale doctor", style="dim"))

    # ---- actions -----------------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    @on(Input.Submitted, "#filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        event.input.display = False
        self.query_one("#workloads", DataTable).focus()
        self._render_workloads()
        self._render_detail()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = False
        self.filter_text = ""
        self.query_one("#workloads", DataTable).focus()
        self._render_workloads()

    def action_pod(self) -> None:
        w = self.selected()
        if w is None or not w.pods:
            self.notify("no pods to show", severity="warning")
            return
        pod = next((p for p in w.pods if p.starting_phase), None) or min(w.pods, key=lambda p: p.age_seconds)
        screen = PodScreen(w, pod)
        self.push_screen(screen)
        self._read_cold_start(screen, w.namespace, pod.name)

    @work(thread=True, group="coldstart", exclusive=True, exit_on_error=False)
    def _read_cold_start(self, screen: PodScreen, namespace: str, pod: str) -> None:
        try:
            phases, headline = self.source.cold_start(namespace, pod)
        except Exception as exc:  # shown on the screen, never fatal
            self.call_from_thread(screen.show_phases, (), f"cannot read the cold start: {exc}")
            return
        self.call_from_thread(screen.show_phases, phases, headline)

    def action_namespace(self) -> None:
        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            self.source.set_namespace(answer or None)
            self.notify(f"namespace: {answer or 'all'}")
            self.action_refresh()

        names = ", ".join(self.snapshot.namespaces) if self.snapshot else ""
        self.push_screen(PromptScreen("Namespace (empty for all)", placeholder=names), chosen)

    def action_scale(self) -> None:
        w = self.selected()
        if w is None:
            return

        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            try:
                replicas = int(answer)
                if replicas < 0:
                    raise ValueError
            except ValueError:
                self.notify(f"{answer!r} is not a replica count", severity="error")
                return
            self._confirm_then(
                f"Scale {w.key} from {w.desired} to {replicas} replicas?",
                lambda: self.source.scale(w.namespace, w.name, replicas),
            )

        self.push_screen(PromptScreen(f"Scale {w.key} to how many replicas?", str(w.desired)), chosen)

    def action_pause(self) -> None:
        w = self.selected()
        if w is None:
            return
        if w.scaler != "KEDA":
            self.notify("pause/resume needs a KEDA ScaledObject", severity="warning")
            return
        if w.paused:
            question, replicas = f"Resume autoscaling of {w.key}?", None
        else:
            question, replicas = f"Pause autoscaling of {w.key} at {w.desired} replicas?", w.desired
        self._confirm_then(question, lambda: self.source.pause(w.namespace, w.name, replicas))

    def action_checkpoint(self) -> None:
        w = self.selected()
        ready = [p for p in w.pods if p.ready] if w else []
        if w is None or not ready:
            self.notify("no ready pod to checkpoint", severity="warning")
            return
        pod = max(ready, key=lambda p: p.age_seconds)
        self._confirm_then(
            f"Checkpoint pod {w.namespace}/{pod.name}? The archive holds its memory "
            "(weights, prompts): treat it like a Secret.",
            lambda: self.source.checkpoint(w.namespace, pod.name),
        )

    def action_context(self) -> None:
        def chosen(answer: str | None) -> None:
            if answer:
                self._act(lambda: self.source.set_context(answer))

        self.push_screen(PromptScreen("Switch to kubeconfig context"), chosen)

    def _confirm_then(self, question: str, action: Callable[[], str]) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                self._act(action)

        self.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, group="action", exit_on_error=False)
    def _act(self, action: Callable[[], str]) -> None:
        try:
            message = action()
        except Exception as exc:  # an action's failure is shown, never fatal
            self.call_from_thread(self.notify, f"failed: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, message)
        self.call_from_thread(self.action_refresh)


def _trend(points: Iterable[float]) -> list[float]:
    """Sparkline data: nothing until there are two points (one point would fill the whole box)."""
    data = list(points)
    return data if len(data) > 1 else []


def _with_state(w: Workload, history: History) -> Workload:
    from dataclasses import replace

    return replace(w, state=classify(w, history))


def _workload_cells(w: Workload) -> tuple[object, ...]:
    ready = Text(f"{w.ready}/{w.desired}", style="yellow" if w.ready < w.desired else "")
    bounds = f"{num(w.min_replicas)}-{num(w.max_replicas)}"
    why = plain(w.why(), "bold" if any(t.firing for t in w.triggers) else "")
    return (
        plain(w.namespace),
        plain(w.name),
        plain(w.engine or "-"),
        plain(w.scaler),
        ready,
        bounds,
        why,
        num(w.queue_waiting),
        num(w.queue_running),
        pct(w.kv_cache_pct),
        pct(w.gpu_util_pct),
        seconds(w.ttft_p95_s),
        state_text(w.state),
    )
