"""Regenerate the dashboard's SVG screenshots in docs/img/ from the demo cluster.

Run: .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubectl_gpuscale.tui.app import TopApp
from kubectl_gpuscale.tui.sources.demo import DemoSource

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"
SIZE = (150, 45)


async def shoot(name: str, minutes: float, keys: tuple[str, ...] = (), history: int = 40) -> Path:
    """Run the demo `minutes` in (the last `history` refreshes 15 s apart, for the sparklines), press
    `keys`, and save the screen as docs/img/<name>.svg."""
    source = DemoSource(realtime=False)
    history = min(history, int(minutes * 60 // 15))
    source.advance_by(minutes * 60 - history * 15)
    app = TopApp(source, interval=None, show_clock=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        for _ in range(history):
            source.advance_by(15)
            app.action_refresh()
            await app.workers.wait_for_complete()
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        path = OUT / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"kubectl gpuscale top --demo ({name})"))
    return path


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, minutes, keys in (
        ("top", 12.0, ()),
        ("top-cpu-hpa", 12.0, ("down",)),
        ("top-coldstart", 7.0, ()),
        ("top-waterfall", 7.0, ("enter",)),
        ("top-help", 12.0, ("question_mark",)),
    ):
        print(await shoot(name, minutes, keys))


if __name__ == "__main__":
    asyncio.run(main())
