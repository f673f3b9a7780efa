"""A prefix shape learnt from one line is sliced off the next ones before any search (the fast
path for orchestrator-relayed logs, coldstart/logs.py `_Stream`); a line must read the same as
when the search finds its engine line, which the shortcut may only take when the engine's own
line start is right after the prefix and nothing else (a wrapper, leading space) intervenes.
"""

from __future__ import annotations

import pytest

from kubectl_gpuscale.coldstart.logs import DIRECT_LINES, _as_line, _peel, _Stream, scan
from kubectl_gpuscale.coldstart.marks import M
from tests.support.wrapped_logs import WRAPPERS, sample_logs, wrap

SHAPE = (
    "07:29:01 [INFO] [inf-job] (EngineCore_DP0 pid=497) INFO 10-03 07:29:01 [gpu_model_runner.py:2602] "
    "Starting to load model Qwen/Qwen3-8B..."
)


def _only(lines: list[str], name: M) -> tuple[object, str, str]:
    marks = scan(lines).get(name)
    assert len(marks) == 1
    return marks[0].ts, marks[0].rank, marks[0].text


def test_a_wrapper_inside_the_learnt_prefix_is_not_read_as_the_lines_collector() -> None:
    relayed = (
        "07:29:02 [WARN] [inf-job] 2024-07-18T12:26:26+0000 gpu-node-3 vllm[4242]: (VllmWorkerProcess "
        "pid=3311321) INFO 07-18 12:26:26 model_runner.py:1071] Loading model weights took 1.9028 GB"
    )
    alone = _only([relayed], M.WEIGHTS_GB)
    assert _only([SHAPE, relayed], M.WEIGHTS_GB) == alone
    assert (
        alone[0] is not None and alone[0].year != 2024
    )  # the engine's own (year-less) stamp, as the search reads it


def test_a_line_with_leading_space_is_not_sliced_by_a_blank_prefix_shape() -> None:
    blank_shape = (
        "[pod/llm-0/engine]  INFO 09-03 16:28:23 [core.py:648] Waiting for init message from front-end."
    )
    record = (
        '  {"line": "[2026-01-15 13:56:49 DP0 TP0] Load weight end. type=Qwen3, avail mem=29.86 GB, '
        'mem usage=30.67 GB.", "timestamp": "2026-01-15T13:56:49Z"}'
    )
    assert _only([blank_shape, record], M.SG_LOAD_END)[2] == _only([record], M.SG_LOAD_END)[2]


def _variants(raw: str) -> list[str]:
    """The line as read, and behind the wrappers and with the debris the stream's shortcuts must refuse."""
    return [
        raw,
        raw + "  ",
        raw + "\r",
        raw + " \x1b[0m",
        raw + " [0m",
        f"[pod/llm-0/engine] {raw}",
        f"[pod/llm-0/engine] 2024-01-02T03:04:05.12Z {raw}",
        f"[pod/llm-0/engine] 2024-01-02T03:04:05Z {raw} [0m",
        f"[pod/llm-0/engine] 2024-01-02T03:04:05Z {raw}  ",
    ]


@pytest.mark.parametrize("wrapper", ["bare", *WRAPPERS])
def test_the_streams_shortcuts_read_every_line_as_peel_does(wrapper: str) -> None:
    """`_Stream.peel` reads `_plain` lines first, lines behind `kubectl logs --prefix [--timestamps]` in
    two matches (`_behind_kubectl`) and, once a log is known unprefixed, text lines as they are
    (`_text_line`): each must give what `_peel`'s full treatment gives, on every sample line behind
    every wrapper and with the debris (ANSI codes, carriage returns, trailing space) that sends a
    line back to `_peel`."""
    for path in sample_logs():
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines if wrapper == "bare" else wrap(lines, wrapper):
            for raw in _variants(line):
                stream = _Stream()
                stream.direct = (
                    DIRECT_LINES  # a log known unprefixed: no search, as in `_peel(raw, False, False)`
                )
                assert _as_line(stream.peel(raw)) == _as_line(_peel(raw, False, False)), raw
