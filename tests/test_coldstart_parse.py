"""Cold-start parsers: events, pod anchoring, wrappers, ranks, failures (pure; no server)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from kubectl_gpuscale.coldstart import build, timeline_to_dict
from kubectl_gpuscale.coldstart.events import Event, events_of, go_duration, parse_pull, parse_time
from kubectl_gpuscale.coldstart.logs import YEARLESS, scan, split_line
from kubectl_gpuscale.coldstart.model import percentile, summarize
from tests.support.paths import LOGS


@pytest.mark.parametrize(
    "text,seconds",
    [("1m2.5s", 62.5), ("500ms", 0.5), ("1h2m3s", 3723.0), ("3.204s", 3.204), ("123.456µs", 0.000123456)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


def test_go_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        go_duration("1 minute")


def _event(reason: str, message: str, at: str, count: int = 1) -> dict[str, Any]:
    return {
        "kind": "Event",
        "reason": reason,
        "message": message,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": count,
        "involvedObject": {"kind": "Pod", "name": "vllm-0"},
    }


def test_pulled_event_with_timing_waiting_and_size() -> None:
    ev = events_of(
        [
            _event(
                "Pulled",
                'Successfully pulled image "vllm/vllm-openai:v0.11.2" in 1m2.5s '
                "(1m3s including waiting). Image size: 9876543210 bytes.",
                "2025-11-24T19:41:10Z",
            )
        ]
    )[0]
    pull = parse_pull(ev)
    assert pull is not None and not pull.cached
    assert (pull.image, pull.pull_seconds, pull.wait_seconds, pull.size_bytes) == (
        "vllm/vllm-openai:v0.11.2",
        62.5,
        63.0,
        9876543210,
    )


def test_pulled_event_old_format_and_already_present() -> None:
    old = parse_pull(Event("Pulled", 'Successfully pulled image "nginx" in 3.204s', None, None))
    assert old is not None and old.pull_seconds == pytest.approx(3.204) and old.wait_seconds is None
    present = parse_pull(
        Event("Pulled", 'Container image "vllm/vllm-openai:v0.11.2" already present on machine', None, None)
    )
    assert present is not None and present.cached and present.image == "vllm/vllm-openai:v0.11.2"
    assert parse_pull(Event("Pulled", "something else", None, None)) is None


def test_events_k8s_io_v1_shape() -> None:
    evs = events_of(
        [
            {
                "reason": "Scheduled",
                "note": "Successfully assigned ml/vllm-0 to gpu-1",
                "eventTime": "2025-11-24T19:40:05.123456Z",
                "series": {"count": 2},
            }
        ]
    )
    assert evs[0].first == datetime(2025, 11, 24, 19, 40, 5, 123456) and evs[0].count == 2
    assert parse_time("2025-11-24T19:40:05.123456789+01:00") == datetime(2025, 11, 24, 18, 40, 5, 123456)


# --- a whole pod: conditions + events + a year-less, local-time vLLM log (UTC-8) --------------------------
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "vllm-0",
        "namespace": "ml",
        "uid": "u1",
        "creationTimestamp": "2025-11-24T19:40:00Z",
    },
    "spec": {"nodeName": "gpu-1", "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.2"}]},
    "status": {
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-11-24T19:40:05Z"},
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2025-11-24T19:40:05Z"},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2025-11-24T19:45:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-11-24T19:45:00Z"},
        ],
        "containerStatuses": [
            {
                "name": "vllm",
                "restartCount": 0,
                "ready": True,
                "state": {"running": {"startedAt": "2025-11-24T19:43:20Z"}},
            }
        ],
    },
}
EVENTS = [
    _event(
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        "2025-11-24T19:40:00Z",
        3,
    ),
    _event("TriggeredScaleUp", "pod triggered scale-up: [{gpu-pool 0->1 (max: 4)}]", "2025-11-24T19:40:01Z"),
    _event("Scheduled", "Successfully assigned ml/vllm-0 to gpu-1", "2025-11-24T19:40:05Z"),
    _event("Pulling", 'Pulling image "vllm/vllm-openai:v0.11.2"', "2025-11-24T19:40:06Z"),
    _event(
        "Pulled",
        'Successfully pulled image "vllm/vllm-openai:v0.11.2" in 3m2.5s (3m3s including waiting). '
        "Image size: 9876543210 bytes.",
        "2025-11-24T19:43:10Z",
    ),
    _event("Created", "Created container vllm", "2025-11-24T19:43:19Z"),
    _event("Started", "Started container vllm", "2025-11-24T19:43:20Z"),
    _event(
        "Unhealthy",
        'Readiness probe failed: Get "http://10.0.0.5:8000/health": connection refused',
        "2025-11-24T19:44:30Z",
        6,
    ),
]
COMPILE_MISS = (
    (LOGS / "vllm_v1-0.11.x_enginecoreDP0-compile-miss_5.log").read_text(encoding="utf-8").splitlines()
)


def test_pod_events_and_yearless_local_log_are_anchored() -> None:
    t = build(COMPILE_MISS, pod=POD, events=EVENTS)
    assert t.anchored and t.pod == "ml/vllm-0" and t.status == "ready"
    assert any("+8.00 h" in n for n in t.notes)
    assert t.total_seconds == pytest.approx(300.0)  # Ready - creationTimestamp
    assert t.seconds("scheduling") == pytest.approx(5.0)
    sched = t.phase("scheduling")
    assert sched and sched.info["failedScheduling"] == 3 and "gpu-pool" in sched.info["scaleUp"]
    pull = t.phase("image_pull")
    assert pull and pull.seconds == pytest.approx(183.0) and pull.info["gb"] == pytest.approx(9.88)
    assert pull.info["gbPerSecond"] == pytest.approx(9.87654321 / 182.5, abs=1e-3)
    assert pull.info["waitingSeconds"] == pytest.approx(0.5)
    assert t.seconds("container_start") == pytest.approx(10.0)  # Pulled 19:43:10 -> started 19:43:20
    # the log's 11:43:54 local = 19:43:54Z; "Model loading took ... 27.200487 seconds" began at 19:43:26.8
    assert t.seconds("engine_init") == pytest.approx(6.8, abs=0.01)
    load = t.phase("weight_load")
    assert load and load.start == pytest.approx(206.8, abs=0.01)  # 19:43:26.8 - 19:40:00
    assert t.seconds("torch_compile") == pytest.approx(19.69)
    # graphs end 11:44:20 local (tqdm) -> Ready 19:45:00Z
    lag = t.phase("readiness_lag")
    assert lag and lag.seconds == pytest.approx(40.0, abs=1.0) and lag.info["probeFailures"] == 6
    actions = " ".join(a.action for a in t.advice)
    assert t.advice[0].phase == "image_pull" and "install prepull" in t.advice[0].action
    assert "VLLM_CACHE_ROOT" in actions and "startupProbe" in actions
    doc = timeline_to_dict(t)
    assert doc["origin"] == "2025-11-24T19:40:00"
    assert [p["name"] for p in doc["phases"]][:3] == ["scheduling", "image_pull", "container_start"]
    assert sum(p["seconds"] for p in doc["phases"]) + doc["unattributedSeconds"] == pytest.approx(
        300.0, abs=0.1
    )


def test_cached_image_has_no_prepull_advice() -> None:
    events = [e for e in EVENTS if e["reason"] != "Pulled"] + [
        _event(
            "Pulled",
            'Container image "vllm/vllm-openai:v0.11.2" already present on machine',
            "2025-11-24T19:40:06Z",
        )
    ]
    t = build(COMPILE_MISS, pod=POD, events=events)
    pull = t.phase("image_pull")
    assert pull and pull.seconds == 0 and pull.info["cached"] is True
    assert all(a.phase != "image_pull" for a in t.advice)


def test_kubectl_timestamps_wrapper_gives_absolute_times() -> None:
    lines = [
        "2025-11-24T19:43:54.123456789Z " + line.replace("11-24 ", "11-24 ") for line in COMPILE_MISS[:6]
    ]
    s = scan(lines)
    assert s.utc and not s.yearless
    assert s.first_ts == datetime(2025, 11, 24, 19, 43, 54, 123456)


def test_ansi_process_prefix_and_negative_kv_memory() -> None:
    lines = [
        "\x1b[1;36m(EngineCore_DP0 pid=7)\x1b[0;0m INFO 10-25 13:08:30 [gpu_model_runner.py:1] "
        "Model loading took 60.8 GiB memory and 41.5 seconds",
        "\x1b[1;36m(EngineCore_DP0 pid=7)\x1b[0;0m INFO 10-25 13:08:40 [gpu_worker.py:298] "
        "Available KV cache memory: -2.77 GiB",
        "\x1b[1;36m(EngineCore_DP0 pid=7)\x1b[0;0m ERROR 10-25 13:08:41 [core.py:708] EngineCore failed to start.",
    ]
    t = build(lines)
    assert t.status == "failed" and t.failure is not None
    assert t.failure.phase == "kv_cache" and "negative KV cache memory (-2.77 GiB)" in t.failure.headline
    assert t.seconds("weight_load") == pytest.approx(41.5)


def test_oom_during_v0_graph_capture() -> None:
    lines = [
        "INFO 12-20 20:25:46 distributed_gpu_executor.py:57] # GPU blocks: 3852, # CPU blocks: 4096",
        "(VllmWorkerProcess pid=90) INFO 12-20 20:25:49 model_runner.py:1413] Capturing cudagraphs for decoding.",
        "(VllmWorkerProcess pid=90) ERROR 12-20 20:25:58 multiproc_worker_utils.py:229] torch.OutOfMemoryError: "
        "CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 15.77 GiB",
    ]
    t = build(lines)
    assert t.failure is not None and t.failure.phase == "cuda_graphs"
    assert "CUDA out of memory" in t.failure.headline and "VllmWorkerProcess" in t.failure.headline
    graphs = t.phase("cuda_graphs")
    assert graphs and graphs.open and graphs.seconds == pytest.approx(9.0)


def test_every_rank_logs_its_own_lines_take_the_max() -> None:
    lines = [
        f"(VllmWorker rank={r} pid={100 + r}) INFO 03-01 07:56:{50 + r} [loader.py:423] "
        f"Loading weights took {secs} seconds"
        for r, secs in enumerate((5.38, 9.91, 7.02))
    ]
    t = build(lines)
    assert t.seconds("weight_load") == pytest.approx(9.91)


def test_journald_and_tgi_cloudwatch_ansi_wrappers() -> None:
    j = split_line(
        "\u0430\u0432\u0433 18 14:15:04 gpu-host python3[4242]: INFO 08-18 14:15:04 [core.py:172] "
        "init engine (profile, create kv cache, warmup model) took 3.50 seconds"
    )
    assert j.engine == "vllm" and j.msg.startswith("init engine") and j.ts == datetime(2000, 8, 18, 14, 15, 4)
    tgi = (
        "#033[2m2024-05-01T10:00:00.000000Z#033[0m #033[32m INFO#033[0m #033[2mshard-manager#033[0m: "
        "#033[2mtext_generation_launcher#033[0m#033[2m:#033[0m Shard ready in 55.2s #033[2m#033[3mrank#033[0m"
        "#033[2m=#033[0m0"
    )
    t = build([tgi])
    assert t.engine == "tgi" and t.seconds("weight_load") == pytest.approx(55.2)


def test_sglang_old_and_new_graph_end_field_order() -> None:
    old = "[2025-05-01 10:00:10 TP0] Capture cuda graph end. Time elapsed: 12.34 s. avail mem=10.1 GB. mem usage=2.0 GB."
    new = "[2026-07-01 10:00:10 TP0] Capture target decode CUDA graph end. elapsed=7.50 s, mem usage=1.5 GB, avail mem=9 GB."
    assert build([old]).seconds("cuda_graphs") == pytest.approx(12.34)
    assert build([new]).seconds("cuda_graphs") == pytest.approx(7.5)


def test_unknown_lines_are_tolerated() -> None:
    t = build(["hello", "", "\x00\xff garbage [[[", "Traceback? no"])
    assert t.phases == () and t.engine is None and t.failure is None


def test_previous_container_failure_is_reported() -> None:
    previous = (
        (LOGS / "vllm_v1-2026_tp4-fail-oom-graph-capture_26.log").read_text(encoding="utf-8").splitlines()
    )
    t = build(COMPILE_MISS, previous=previous)
    assert t.failure is not None and t.failure.headline.startswith("previous attempt: ")
    assert t.status != "failed"


def test_summary_percentiles() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([10.0], 95) == 10.0
    a = build(COMPILE_MISS, pod=POD, events=EVENTS)
    b = build(COMPILE_MISS)
    doc = summarize([a, b], "deployment/vllm")
    compile_row = next(p for p in doc["phases"] if p["name"] == "torch_compile")
    assert compile_row["samples"] == 2 and compile_row["p50Seconds"] == pytest.approx(19.69)
    assert doc["pods"] == 2 and len(doc["items"]) == 2


# --- only lines that become marks get their timestamps converted: nothing else may change ------------------
def _sample_logs() -> list[tuple[str, list[str]]]:
    return [(p.stem, p.read_text(encoding="utf-8").splitlines()) for p in sorted(LOGS.glob("*.log"))]


def test_outer_stamps_reach_every_mark_and_the_clock_ends() -> None:
    seen = 0
    for name, plain in _sample_logs():
        stamps = [datetime(2025, 11, 24, 19, i // 60 % 60, i % 60, i) for i in range(len(plain))]
        lines = [f"{ts.isoformat()}Z {line}" for ts, line in zip(stamps, plain, strict=True)]
        s = scan(lines)
        said = [i for i, line in enumerate(plain) if line.strip()]
        assert s.utc and not s.yearless, name
        assert (s.first_ts, s.last_ts) == (stamps[said[0]], stamps[said[-1]]), name
        for marks in s.marks.values():
            for mark in marks:
                assert mark.ts == stamps[mark.index], (name, mark.name)
                assert mark.text == split_line(lines[mark.index]).msg, (name, mark.name)
                seen += 1
    assert seen > 100


NOISE = [
    'INFO:     10.0.0.1:51234 - "GET /metrics HTTP/1.1" 200 OK',
    "",
    "   ",
    '  File "/usr/lib/python3.12/site-packages/vllm/engine.py", line 12, in run',
    "Starting nothing in particular",
    "The end of a sentence",
    "# a comment",
    "Loading something else",
    "KV is short for key/value",
    "max_total_num_tokens is printed later",
    "50 percent | done",
    "(not a prefix",
]


def test_unstamped_noise_between_lines_changes_no_phase() -> None:
    for n, (name, plain) in enumerate(_sample_logs()):
        noisy: list[str] = []
        for i, line in enumerate(plain):
            noisy += [NOISE[(n + i) % len(NOISE)], line, NOISE[(n + 2 * i + 5) % len(NOISE)]]
        assert timeline_to_dict(build(noisy)) == timeline_to_dict(build(plain)), name


def test_impossible_timestamp_is_read_as_no_time() -> None:
    s = scan(
        [
            "INFO 13-45 10:00:00 [kv_cache_utils.py:1] GPU KV cache size: 1,024 tokens",
            "INFO 02-29 10:00:01 [kv_cache_utils.py:2] Maximum concurrency for 2,048 tokens per request: 3.5x",
        ]
    )
    assert s.engine == "vllm" and s.get("kv_tokens")[0].ts is None
    assert s.first_ts == datetime(YEARLESS, 2, 29, 10, 0, 1) and s.yearless


ACCESS = [
    '(APIServer pid=1) INFO:     10.0.3.7:40012 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    'INFO:     127.0.0.1:51234 - "GET /health HTTP/1.1" 200 OK',
    '(APIServer pid=7) INFO:     10.0.0.9:1 - "POST /v1/completions HTTP/1.1" 500 Internal Server Error',
]


def test_access_lines_among_startup_lines_change_no_phase() -> None:
    """Access lines are skipped without peeling once the clock is known: the timeline must not notice."""
    for n, (name, plain) in enumerate(_sample_logs()):
        served: list[str] = []
        for i, line in enumerate(plain):
            served += [line, ACCESS[(n + i) % len(ACCESS)], ACCESS[(n + i + 1) % len(ACCESS)]]
        assert timeline_to_dict(build(served)) == timeline_to_dict(build(plain)), name


def test_a_tail_with_only_the_compile_cache_load_builds_a_timeline() -> None:
    """`kubectl logs --tail` can cut a start after vLLM's dynamo lines: the cache-load line alone
    (vllm/compilation/backends.py, `CompilerManager.load` logs "Directly load the compiled graph(s)")
    gives no compile duration, and no traceback."""
    t = build(
        [
            "(Worker_TP2_EP2 pid=1) INFO 09-29 09:51:35 [backends.py:164] Directly load the compiled graph(s)"
            " for dynamic shape from the cache, took 4.746 s",
            "(Worker_TP2_EP2 pid=1) INFO 09-29 09:51:40 [gpu_worker.py:1] Available KV cache memory: 20.5 GiB",
        ]
    )
    assert "torch_compile" not in [p.name for p in t.phases]
