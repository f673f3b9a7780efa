"""`top --demo` and `top --once`: the simulated cluster tells its story, and the screens look right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable

from kubectl_gpuscale.tui.app import TopApp
from kubectl_gpuscale.tui.sources.demo import DemoSource, demo_manifests

PLUGIN = str(Path(sys.executable).parent / "kubectl-gpuscale")


def _by_name(source: DemoSource) -> dict[str, object]:
    return {w.name: w for w in source.refresh().workloads}


def test_keda_reacts_to_the_load_step_while_the_cpu_hpa_does_nothing() -> None:
    source = DemoSource(realtime=False)
    before = _by_name(source)
    source.advance_by(8 * 60)
    after = _by_name(source)
    keda, cpu = after["llama-8b"], after["llama-8b-cpu-hpa"]
    assert before["llama-8b"].desired == 1  # type: ignore[attr-defined]
    assert keda.desired > 1 and keda.ready > 1  # type: ignore[attr-defined]
    assert cpu.desired == 1  # type: ignore[attr-defined]
    assert cpu.triggers[0].value < cpu.triggers[0].threshold  # type: ignore[attr-defined]  # CPU stays low
    assert cpu.queue_waiting > keda.queue_waiting  # type: ignore[attr-defined]
    assert after["qwen-dev"].desired == 0  # type: ignore[attr-defined]  # the dev endpoint sleeps at zero


def test_demo_is_deterministic_for_a_seed() -> None:
    a, b = DemoSource(realtime=False, seed=3), DemoSource(realtime=False, seed=3)
    a.advance_by(300)
    b.advance_by(300)
    assert a.refresh().workloads == b.refresh().workloads


def test_realtime_clock_drives_the_simulation() -> None:
    now = [0.0]
    source = DemoSource(realtime=True, speed=20.0, clock=lambda: now[0])
    start = source.now
    now[0] = 3.0
    source.refresh()
    assert source.now == start + 60


def test_cold_starting_pods_show_their_phase() -> None:
    source = DemoSource(realtime=False)
    source.advance_by(75)  # the step came at 00:10, KEDA asked for more pods; 8B warm start is ~25 s
    keda = _by_name(source)["llama-8b"]
    starting = [p for p in keda.pods if not p.ready]  # type: ignore[attr-defined]
    assert starting and all(p.starting_phase and 0 <= (p.start_progress or 0) < 1 for p in starting)


def test_doctor_findings_come_from_the_real_rules() -> None:
    source = DemoSource(realtime=False)
    rules = {(f.rule, f.target) for f in source.refresh().findings}
    assert ("GS001", "HorizontalPodAutoscaler/chat/llama-8b-cpu-hpa") in rules
    kinds = {o["kind"] for o in demo_manifests()}
    assert kinds == {"Deployment", "HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"}


def test_top_once_table_and_json() -> None:
    table = subprocess.run(
        [PLUGIN, "top", "--demo", "--once", "--at", "5m"], capture_output=True, text=True, timeout=120
    )
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:4] == ["NAMESPACE", "NAME", "ENGINE", "SCALER"]
    assert "llama-8b-cpu-hpa" in table.stdout
    data = json.loads(
        subprocess.run(
            [PLUGIN, "top", "--demo", "--once", "-o", "json"], capture_output=True, text=True, timeout=120
        ).stdout
    )
    assert {w["name"] for w in data["workloads"]} >= {"llama-8b", "llama-70b", "qwen-dev"}


def test_live_dashboard_refuses_json_without_once() -> None:
    result = subprocess.run(
        [PLUGIN, "top", "--demo", "-o", "json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "needs --once" in result.stderr


async def test_namespace_switch_in_the_demo() -> None:
    source = DemoSource(realtime=False)
    app = TopApp(source, interval=None, show_clock=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("#workloads", DataTable).row_count == 5
        await pilot.press("n", *"chat", "enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("#workloads", DataTable).row_count == 3


def _demo_app(minutes: int) -> TopApp:
    source = DemoSource(realtime=False)
    source.advance_by(minutes * 60)
    return TopApp(source, interval=None, show_clock=False)


def test_snapshot_main_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(_demo_app(4), terminal_size=(150, 45), run_before=settle)


def test_snapshot_cold_start_waterfall(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def open_pod(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(_demo_app(1), terminal_size=(150, 45), run_before=open_pod)


def test_the_demo_runs_without_the_compiled_kernel() -> None:
    """The dashboard steps seconds per frame: the Python path, so no first compile freezes `top --demo`."""
    code = (
        "import sys; from kubectl_gpuscale.tui.sources.demo import DemoSource; "
        "DemoSource(realtime=False).advance_by(60); print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
