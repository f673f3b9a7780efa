"""The dashboard driven by Pilot with an injected source: rendering, filter, actions, degraded modes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import DataTable, Static

from kubectl_gpuscale.tui.app import TopApp
from kubectl_gpuscale.tui.model import (
    COLD_STARTING,
    METRIC_MISSING,
    ColdStartPhase,
    Pod,
    ScalingEvent,
    Snapshot,
    Trigger,
    Workload,
)


def _workloads() -> tuple[Workload, ...]:
    starting = Pod(
        "vllm-8b-7f9-xk2",
        "Running",
        ready=False,
        node="gpu-2",
        age_seconds=30,
        starting_phase="weights",
        start_progress=0.4,
        phases=(ColdStartPhase("image pull", 0), ColdStartPhase("weights", 12.0)),
    )
    ready = Pod(
        "vllm-8b-7f9-ab1",
        "Running",
        ready=True,
        node="gpu-1",
        age_seconds=3600,
        gpu_util=93,
        phases=(
            ColdStartPhase("image pull", 3.0),
            ColdStartPhase("weights", 9.0),
            ColdStartPhase("cuda graphs", 14.0),
        ),
    )
    return (
        Workload(
            "ml",
            "vllm-8b",
            engine="vLLM",
            scaler="KEDA",
            scaler_name="vllm-8b",
            ready=1,
            desired=2,
            min_replicas=1,
            max_replicas=8,
            triggers=(Trigger("queue", 12, 5),),
            queue_waiting=12,
            queue_running=48,
            kv_cache_pct=81,
            gpu_util_pct=95,
            ttft_p95_s=3.2,
            pods=(ready, starting),
        ),
        Workload(
            "ml",
            "tgi-cpu-hpa",
            engine="TGI",
            scaler="HPA",
            ready=2,
            desired=2,
            min_replicas=2,
            max_replicas=6,
            triggers=(Trigger("cpu", 6, 70, "%"),),
            queue_waiting=30,
            cpu_pct=6,
        ),
        Workload(
            "dev",
            "sglang-dev",
            engine="SGLang",
            scaler="KEDA",
            ready=1,
            desired=1,
            min_replicas=0,
            max_replicas=2,
            triggers=(Trigger("queue", None, 4),),
        ),
    )


class FakeSource:
    """A source with fixed data that records the actions the app asked for."""

    name = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0
        self.actions: list[tuple[str, ...]] = []
        self.namespace: str | None = None

    def refresh(self) -> Snapshot:
        self.calls += 1
        if self.fail:
            raise ConnectionError("API server unreachable")
        events = (ScalingEvent("10:00:01", "ml", "vllm-8b", "KEDAScaleTargetActivated", "scaled 1 -> 2"),)
        return Snapshot("10:00:05", "fake", _workloads(), events, problems=(), namespaces=("ml", "dev"))

    def scale(self, namespace: str, name: str, replicas: int) -> str:
        self.actions.append(("scale", namespace, name, str(replicas)))
        return f"scaled {name} to {replicas}"

    def pause(self, namespace: str, name: str, replicas: int | None) -> str:
        self.actions.append(("pause", namespace, name, str(replicas)))
        return "paused"

    def set_namespace(self, namespace: str | None) -> None:
        self.namespace = namespace

    def checkpoint(self, namespace: str, pod: str) -> str:
        self.actions.append(("checkpoint", namespace, pod))
        return "checkpointed"

    def set_context(self, context: str) -> str:
        self.actions.append(("context", context))
        return f"switched to context {context}"

    def cold_start(self, namespace: str, pod: str) -> tuple[tuple[ColdStartPhase, ...], str]:
        self.actions.append(("coldstart", namespace, pod))
        return (ColdStartPhase("image pull", 4.0), ColdStartPhase("weights", 30.0)), "ready; longest: weights"


async def _settle(app: TopApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_renders_workloads_states_and_pods() -> None:
    app = TopApp(FakeSource(), interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        table = app.query_one("#workloads", DataTable)
        assert table.row_count == 3
        states = {w.name: w.state for w in app.snapshot.workloads}  # type: ignore[union-attr]
        assert states["vllm-8b"] == COLD_STARTING
        assert states["sglang-dev"] == METRIC_MISSING
        assert app.query_one("#pods", DataTable).row_count == 2
        assert "queue 12/5" in str(app.query_one("#why", Static).render())


async def test_filter_and_clear() -> None:
    app = TopApp(FakeSource(), interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("slash", *"tgi", "enter")
        assert app.query_one("#workloads", DataTable).row_count == 1
        await pilot.press("escape")
        assert app.query_one("#workloads", DataTable).row_count == 3


async def test_scale_asks_then_acts() -> None:
    source = FakeSource()
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("end", "backspace", "4", "enter")
        await pilot.pause()
        assert source.actions == []  # nothing before the confirmation
        await pilot.press("y")
        await _settle(app, pilot)
        assert source.actions == [("scale", "ml", "vllm-8b", "4")]


async def test_checkpoint_asks_then_checkpoints_the_oldest_ready_pod() -> None:
    source = FakeSource()
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        assert source.actions == []
        await pilot.press("y")
        await _settle(app, pilot)
        assert source.actions == [("checkpoint", "ml", "vllm-8b-7f9-ab1")]


async def test_context_switch() -> None:
    source = FakeSource()
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("x", *"gpu-prod", "enter")
        await _settle(app, pilot)
        assert ("context", "gpu-prod") in source.actions


async def test_pause_declined_does_nothing() -> None:
    source = FakeSource()
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("escape")
        await _settle(app, pilot)
        assert source.actions == []


async def test_refresh_failure_degrades_and_keeps_running() -> None:
    source = FakeSource()
    app = TopApp(source, interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        source.fail = True
        await pilot.press("r")
        await _settle(app, pilot)
        banner = app.query_one("#problems", Static)
        assert banner.display and "API server unreachable" in str(banner.render())
        assert app.query_one("#workloads", DataTable).row_count == 3  # last values kept
        assert app.is_running


async def test_waterfall_screen_opens_for_the_starting_pod() -> None:
    app = TopApp(FakeSource(), interval=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert type(app.screen).__name__ == "PodScreen"
        assert app.screen.pod.name == "vllm-8b-7f9-xk2"  # type: ignore[attr-defined]
        assert app.screen.pod.phases[-1] == ColdStartPhase("weights", 30.0)  # type: ignore[attr-defined]
        assert ("coldstart", "ml", "vllm-8b-7f9-xk2") in app.source.actions  # type: ignore[attr-defined]


def test_history_detects_flapping() -> None:
    from kubectl_gpuscale.tui.model import FLAPPING, History, classify

    history = History()
    w = _workloads()[1]
    for desired in (2, 3, 2, 3, 2, 3, 2):
        history.record([replace(w, desired=desired, ready=desired)])
    assert classify(replace(w, desired=2, ready=2), history) == FLAPPING


@pytest.mark.parametrize("text,expected", [("", 3), ("keda", 2), ("DEV", 1), ("nothing", 0)])
def test_filter_workloads(text: str, expected: int) -> None:
    from kubectl_gpuscale.tui.model import filter_workloads

    assert len(filter_workloads(_workloads(), text)) == expected


async def test_polls_never_double_up_when_refreshing_by_hand() -> None:
    source = FakeSource()
    app = TopApp(source, interval=0.5)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(app, pilot)
        for _ in range(10):
            await pilot.press("r")
            await _settle(app, pilot)
        start = source.calls
        await pilot.pause(2.0)
        await _settle(app, pilot)
        assert source.calls - start <= 6  # one poll chain every 0.5 s (4 in 2 s), not eleven
