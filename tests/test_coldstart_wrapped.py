"""Every real sample log behind every wrapper a pod log meets on its way to `coldstart -f`.

`kubectl logs --prefix` / `--timestamps`, a node's CRI log file, syslog (RFC 3164, RFC 5424) and
journald, JSON-per-line exports (Docker json-file, Loki, CloudWatch) and an orchestrator's own
header (issue 14 item 7: ``07:29:01 [INFO] [inf-job] [INFERENCE LOG] (EngineCore_DP0 pid=497) INFO
10-03 ...``). The variants come from tests/support/wrapped_logs.py; for each one the phases
recognised must equal the hand-computed ones in the sample's `.source.txt`, exactly as for the
bare log (tests/test_coldstart_samples.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from kubectl_gpuscale.coldstart import build
from kubectl_gpuscale.coldstart.logs import scan, split_line
from tests.support.wrapped_logs import WRAPPERS, rfc3339nano, sample_logs, wrap
from tests.test_coldstart_samples import check_hand_computed

CASES = [(path, name) for path in sample_logs() for name in WRAPPERS]
ORCHESTRATED = [
    "07:29:01 [INFO] [inf-job] [INFERENCE LOG] (EngineCore_DP0 pid=497) INFO 10-03 07:29:01 "
    "[gpu_model_runner.py:2602] Starting to load model Qwen/Qwen3-8B...",
    "07:29:12 [INFO] [inf-job] [INFERENCE LOG] (EngineCore_DP0 pid=497) INFO 10-03 07:29:12 "
    "[default_loader.py:267] Loading weights took 9.31 seconds",
    "07:29:13 [INFO] [inf-job] [INFERENCE LOG] (EngineCore_DP0 pid=497) INFO 10-03 07:29:13 "
    "[gpu_model_runner.py:2653] Model loading took 15.2683 GiB and 11.021315 seconds",
]


def test_every_sample_has_every_variant() -> None:
    assert len(CASES) == len(sample_logs()) * len(WRAPPERS) and len(sample_logs()) >= 20


@pytest.mark.parametrize(("path", "wrapper"), CASES, ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_wrapped_sample_phases_equal_the_hand_computed_ones(path: Path, wrapper: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    wrapped = wrap(lines, wrapper)
    assert all(w != line for w, line in zip(wrapped, lines, strict=True) if line.strip())
    check_hand_computed(path, build(wrapped))


def test_orchestrator_prefix_from_the_issue_is_recognised() -> None:
    t = build(ORCHESTRATED)
    assert t.engine == "vllm"
    assert t.seconds("weight_load") == pytest.approx(9.31)
    assert dict(t.summary).get("modelLoadingSeconds") == pytest.approx(11.02, abs=0.01)


def test_unstamped_lines_behind_a_learned_prefix_lose_it() -> None:
    """A tqdm bar relayed under the orchestrator's header is read as the bar, not as header text."""
    bar = (
        "07:29:05 [INFO] [inf-job] [INFERENCE LOG] model-00001-of-00004.safetensors:  50%|\u2588\u2588\u2588\u2588\u2588"
        "     | 2.49G/4.98G [00:12<00:12, 201MB/s]"
    )
    s = scan([ORCHESTRATED[0], bar, ORCHESTRATED[1]])
    assert [m.values["label"] for m in s.get("bar")] == ["model-00001-of-00004.safetensors"]


def test_rfc3339nano_with_trimmed_zeros_is_a_decimal_fraction() -> None:
    """kubectl writes Go's RFC3339Nano, which trims trailing zeros: `.12Z` is 120 ms, `.12345Z` 123.45 ms."""
    assert rfc3339nano(datetime(2025, 1, 1, 0, 0, 0, 120000)) == "2025-01-01T00:00:00.12Z"
    for stamp, micros in (("01.12Z", 120000), ("01.12345Z", 123450), ("01.123456789Z", 123456), ("01Z", 0)):
        line = split_line(f"2025-10-03T07:29:{stamp} INFO 10-03 07:29:01 [core.py:1] init engine")
        assert line.ts == datetime(2025, 10, 3, 7, 29, 1, micros) and line.utc


@pytest.mark.parametrize(
    "record",
    [
        '{"log": "INFO 10-03 07:29:01 [core.py:1] x\\n", "stream": "stderr", "time": "2025-10-03T07:29:01.5Z"}',
        '{"line": "INFO 10-03 07:29:01 [core.py:1] x", "timestamp": "2025-10-03T09:29:01.5+02:00"}',
        '{"timestamp": 1759476541500, "message": "INFO 10-03 07:29:01 [core.py:1] x"}',
        '{"MESSAGE": "INFO 10-03 07:29:01 [core.py:1] x", "__REALTIME_TIMESTAMP": "1759476541500000"}',
    ],
)
def test_json_records_give_the_message_and_the_exporter_time(record: str) -> None:
    line = split_line(record)
    assert line.engine == "vllm" and line.msg == "x" and line.utc
    assert line.ts == datetime(2025, 10, 3, 7, 29, 1, 500000)


def test_json_that_is_not_a_log_record_is_left_alone() -> None:
    assert split_line('{"model": "x"}').msg == '{"model": "x"}'
    assert split_line("{not json").msg == "{not json"


def test_hostile_wrappers_are_read_as_text_quickly() -> None:
    """Deep JSON nesting, a megabyte of clocks, a huge prefix: no exception, and fast (DESIGN §5: <= 5 s)."""
    import time

    deep = "{" + '"a":{' * 100_000 + "}" * 100_001
    clocks = "00:00:00 " * 120_000
    huge_prefix = "x1 " * 50_000 + "(EngineCore_DP0 pid=1) INFO 10-03 07:29:01 [core.py:1] init engine"
    started = time.monotonic()
    s = scan([deep, clocks, huge_prefix, *ORCHESTRATED])
    assert time.monotonic() - started < 5
    assert split_line(deep).msg.startswith("{") and s.has("weights_start", "load_logged")
