"""The real Prometheus holding days of engine metrics generated from a KNOWN model, for `tune` tests.

A `Workload` (traffic pattern x engine preset x cold start x scaling policy) is simulated with
`kubectl_gpuscale.sim` one second at a time; its per-second arrivals, ready replicas, queue,
running sequences and TTFT are turned into what the pods' /metrics would have shown every 15 s:
per pod, vLLM's `vllm:request_success_total`, `vllm:prompt_tokens_total`,
`vllm:generation_tokens_total`, the `vllm:time_to_first_token_seconds` histogram's buckets (V0's, to
10 s; no `_sum`/`_count`: nothing reads them, and promtool reads only ~7 MB of text a second),
`vllm:num_requests_running` / `_waiting` (or SGLang's and TGI's equivalents, `Workload.exposes`), and
kube-state-metrics' `kube_deployment_status_replicas_available`. Pods come and go with the replicas (a new pod is a
new series starting from 0); `restart_at` restarts one pod in place (a counter reset). The text is
OpenMetrics, one file per 2-hour TSDB block, loaded with
`promtool tsdb create-blocks-from openmetrics` (one pass per file: promtool re-reads its whole
input once per block) into the data directory of a real Prometheus started on it.

The ground truth (`Truth`) is what the model did, step by step: the arrivals, the token means, the
TTFT histogram increments, the replicas, and the simulator's own result for the run.

Fixture (session-scoped, registered in tests/conftest.py)::

    def test_x(backfilled_prometheus):
        bf = backfilled_prometheus()                     # DEFAULT_WORKLOADS, a week in namespace "ml"
        bf = backfilled_prometheus(Workload(namespace="flat", pattern="constant", rps=10, days=7),
                                   Workload(namespace="bursty", pattern="spiky", rps=40, days=7))
        w = bf.truth["ml"]          # Truth: .namespace .pods (regex) .workload ("deploy/vllm") .start .end
                                    #        .arrivals .prompt_tokens .ttft_counts .replicas .result ...
        fetch_history(Prometheus.connect(bf.url), namespace=w.namespace, pods=w.pods, engine="vllm",
                      since=w.end - w.start, end=w.end, workload=w.workload)

Each distinct set of workloads is generated, loaded and served once per test session: for
`DEFAULT_WORKLOADS` (a week plus six 6-hour workloads, ~170 MB of text) 10 s on the shared 2-core
machine at load 3 (simulate 0.5 s, text 1.3 s, promtool 8.2 s, server 0.2 s), 30 s at load 7
(`Backfilled.seconds`). CI=true fails, never skips, when prometheus or promtool is missing.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.engines.traffic import VLLM_TTFT_BUCKETS
from kubectl_gpuscale.sim.simulation import PolicyResult
from tests.support.prometheus import PrometheusServer, start_prometheus

STEP = 15
BLOCK = 7200
DAY = 86400
FAMILIES = ("requests", "prompt", "output", "running", "waiting")
VLLM_NAMES = {
    "requests": "vllm:request_success_total",
    "prompt": "vllm:prompt_tokens_total",
    "output": "vllm:generation_tokens_total",
    "running": "vllm:num_requests_running",
    "waiting": "vllm:num_requests_waiting",
    "ttft": "vllm:time_to_first_token_seconds_bucket",
}
# sglang python/sglang/srt/metrics/collector.py; TGI router/src/server.rs (no TTFT histogram: drop it)
NAMES = {
    "vllm": VLLM_NAMES,
    "sglang": {
        "requests": "sglang:num_requests_total",
        "prompt": "sglang:prompt_tokens_total",
        "output": "sglang:generation_tokens_total",
        "running": "sglang:num_running_reqs",
        "waiting": "sglang:num_queue_reqs",
        "ttft": "sglang:time_to_first_token_seconds_bucket",
    },
    "tgi": {
        "requests": "tgi_request_success",
        "prompt": "tgi_request_input_length_sum",
        "output": "tgi_request_generated_tokens_sum",
        "running": "tgi_batch_current_size",
        "waiting": "tgi_queue_size",
        "ttft": "",
    },
}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One simulated workload: its traffic, engine, cold start and the policy that scaled it.

    `names`: "colon" (vllm:x), "underscore" (vllm_x, the OpenMetrics colon problem) or "mixed"
    (even pods colon, odd pods underscore). `drop`: families left out (keys of `VLLM_NAMES`).
    `restart_at`: seconds after the start at which pod slot 0 restarts in place (counters reset).
    """

    namespace: str = "ml"
    name: str = "vllm"
    pattern: str = "diurnal"
    rps: float = 30.0
    days: float = 7.0
    engine: str = "8b"
    coldstart: str = "8b-warm"
    policy: str = "keda:metric=running:threshold=60:min=1:max=8"
    prompt_tokens: float = 512.0
    output_tokens: float = 256.0
    seed: int = 1
    names: str = "colon"
    drop: tuple[str, ...] = ()
    restart_at: float | None = None
    exposes: str = "vllm"  # whose metric names the pods expose: a key of NAMES
    extra: tuple[str, ...] = ()  # "process": also process_cpu_seconds_total per pod


DEFAULT_WORKLOADS = (
    Workload(restart_at=3.5 * DAY),
    Workload(namespace="ml-underscore", days=0.25, names="underscore", seed=2),
    Workload(namespace="ml-mixed", days=0.25, names="mixed", rps=200.0, seed=3),  # >= 2 pods: both forms
    Workload(namespace="ml-relabelled", days=0.25, drop=("requests",), seed=4),
    Workload(namespace="sglang", name="sglang", days=0.25, exposes="sglang", seed=5),
    Workload(namespace="tgi", name="tgi", days=0.25, exposes="tgi", seed=6),
    Workload(
        namespace="ml-metrics-off",
        days=0.25,
        drop=("requests", "prompt", "output", "running", "waiting", "ttft"),
        extra=("process",),
        seed=7,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Truth:
    """What a workload's model did, per 15 s step from `start` (Unix seconds) to `end`."""

    workload_spec: Workload
    namespace: str
    pods: str
    workload: str
    start: float
    end: float
    step: float
    arrivals: np.ndarray
    prompt_tokens: float
    output_tokens: float
    replicas: np.ndarray
    running: np.ndarray
    waiting: np.ndarray
    ttft_buckets: tuple[float, ...]
    ttft_counts: np.ndarray
    result: PolicyResult
    restarts: int = 0

    @property
    def requests(self) -> int:
        """Requests over the window."""
        return int(self.arrivals.sum())


@dataclass
class Backfilled:
    """A running Prometheus holding the workloads' history."""

    url: str
    truth: dict[str, Truth]
    server: PrometheusServer
    seconds: dict[str, float] = field(default_factory=dict)


# ---- the model, per second ---------------------------------------------------------------------


def simulate(w: Workload) -> dict[str, np.ndarray | PolicyResult]:
    """Per-second arrays of one simulated run: arrivals, ready, waiting, running, ttft, ttft_w."""
    duration = int(w.days * DAY)
    s = sim.Simulation(
        sim.pattern(w.pattern, rps=w.rps, prompt_tokens=w.prompt_tokens, output_tokens=w.output_tokens),
        sim.engine_profile(w.engine),
        sim.coldstart_profile(w.coldstart),
        [sim.build_controller(p) for p in sim.parse_policies(w.policy)],
        duration=duration,
        seed=w.seed,
        kernel=False,  # the Python path: its PolicyRun._commit sees every second (the kernel keeps none)
    )
    run = s.runs[0]
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("arrivals", "ready", "waiting", "running", "ttft", "ttft_w")
    }
    commit = run._commit

    def record(v: Any, lo: int, hi: int) -> None:
        # the seconds [lo, hi) of a chunk are accepted as what happened (see sim/core.py PolicyRun._commit)
        for key in ("arrivals", "ready", "running", "ttft", "ttft_w"):
            columns[key].append(np.asarray(getattr(v, key)[lo:hi], dtype=float))
        columns["waiting"].append(np.asarray(v.conc[lo:hi] - v.running[lo:hi], dtype=float))
        commit(v, lo, hi)

    run._commit = record  # type: ignore[method-assign]
    result = s.run()[0]
    out: dict[str, np.ndarray | PolicyResult] = {k: np.concatenate(v)[:duration] for k, v in columns.items()}
    out["result"] = result
    return out


def truth_of(w: Workload, start: float) -> Truth:
    """Simulate `w` and reduce it to 15 s steps (the ground truth)."""
    run = simulate(w)
    steps = int(w.days * DAY) // STEP

    def per_step(key: str) -> np.ndarray:
        a = run[key]
        assert isinstance(a, np.ndarray)
        return a[: steps * STEP].reshape(steps, STEP)

    arrivals = per_step("arrivals").sum(axis=1)
    ready = per_step("ready")[:, -1]
    bounds = (*VLLM_TTFT_BUCKETS[:16], math.inf)  # V0's buckets: V1's up to 10 s
    ttft, weight = per_step("ttft"), per_step("ttft_w")
    which = np.searchsorted(np.asarray(bounds), ttft, side="left")
    raw = np.zeros((steps, len(bounds)))
    np.add.at(raw, (np.repeat(np.arange(steps), STEP), which.reshape(-1)), weight.reshape(-1))
    counts = np.diff(np.rint(np.cumsum(raw, axis=0)), axis=0, prepend=0.0)  # whole requests, totals kept
    result = run["result"]
    assert isinstance(result, PolicyResult)
    return Truth(
        workload_spec=w,
        namespace=w.namespace,
        pods=f"{w.name}-.*",
        workload=f"deploy/{w.name}",
        start=start,
        end=start + steps * STEP,
        step=STEP,
        arrivals=arrivals,
        prompt_tokens=w.prompt_tokens,
        output_tokens=w.output_tokens,
        replicas=ready.astype(float),
        running=per_step("running")[:, -1],
        waiting=per_step("waiting")[:, -1],
        ttft_buckets=bounds,
        ttft_counts=counts,
        result=result,
        restarts=1 if w.restart_at is not None else 0,
    )


# ---- per pod ------------------------------------------------------------------------------------


@dataclass
class Life:
    """One pod's series from step `first` to `last` (inclusive); counters start at 0 at `first`."""

    pod: str
    slot: int
    first: int
    last: int = -1


def lives(t: Truth) -> list[Life]:
    """Pods over the steps: slot k is up while k < replicas; a slot coming back up is a new pod; the
    `restart_at` restart splits slot 0's pod into two lives with the same name (a counter reset)."""
    w = t.workload_spec
    restart = int(w.restart_at // STEP) if w.restart_at is not None else -1
    out: list[Life] = []
    open_: dict[int, Life] = {}
    generation = 0
    for i, r in enumerate(t.replicas.astype(int)):
        for k in list(open_):
            if k >= r:
                open_.pop(k).last = i - 1
        if i == restart and 0 in open_:
            old = open_.pop(0)
            old.last = i - 1
            open_[0] = Life(old.pod, 0, i)
            out.append(open_[0])
        for k in range(r):
            if k not in open_:
                generation += 1
                open_[k] = Life(f"{w.name}-{generation:05x}-s{k}", k, i)
                out.append(open_[k])
    for life in open_.values():
        life.last = len(t.replicas) - 1
    return out


def _share(total: np.ndarray, replicas: np.ndarray, slot: int) -> np.ndarray:
    """Slot `slot`'s whole share of per-step integer totals split over the replicas."""
    r = np.maximum(replicas, 1)
    base = np.floor_divide(total, r)
    return base + (slot < np.mod(total, r))


def openmetrics_files(truths: list[Truth], outdir: Path) -> list[Path]:
    """Write the workloads' samples as OpenMetrics, one file per 2-hour block; their paths."""
    start = min(t.start for t in truths)
    end = max(t.end for t in truths)
    files: dict[int, list[str]] = {b: [] for b in range(int(start) // BLOCK, int(end) // BLOCK + 1)}
    for t in truths:
        _write_workload(t, files)
    paths = []
    for block, lines in files.items():
        if not lines:
            continue
        path = outdir / f"block-{block}.om"
        with path.open("w") as fh:
            fh.writelines(lines)
            fh.write("# EOF\n")
        paths.append(path)
    return paths


def _name(t: Truth, family: str, slot: int) -> str:
    name = NAMES[t.workload_spec.exposes][family]
    mode = t.workload_spec.names
    if mode == "underscore" or (mode == "mixed" and slot % 2):
        return name.replace(":", "_")
    return name


def _write_workload(t: Truth, files: dict[int, list[str]]) -> None:  # noqa: C901 - one pass over a pod's series, in file order
    w = t.workload_spec
    replicas = t.replicas.astype(np.int64)
    arrivals = t.arrivals.astype(np.int64)
    counts = t.ttft_counts.astype(np.int64)
    stamps = [f" {int(t.start + (i + 1) * STEP)}\n" for i in range(len(replicas))]
    block_of = (np.arange(len(replicas)) * STEP + STEP + int(t.start)) // BLOCK
    edges = np.flatnonzero(np.diff(block_of)) + 1
    cuts = [0, *edges.tolist(), len(replicas)]

    def emit(prefix: str, values: list[str], first: int, last: int) -> None:
        for a, b in itertools.pairwise(cuts):
            lo, hi = max(a, first), min(b, last + 1)
            if lo < hi:
                files[int(block_of[lo])].extend(
                    prefix + v + s
                    for v, s in zip(values[lo - first : hi - first], stamps[lo:hi], strict=True)
                )

    running = t.running / np.maximum(replicas, 1)
    waiting = t.waiting / np.maximum(replicas, 1)
    pods = lives(t)
    continued = {(life.pod, life.first) for life in pods}
    for life in pods:
        sl = slice(life.first, life.last + 1)
        labels = (
            f'{{namespace="{w.namespace}",pod="{life.pod}",model_name="m8b"'  # short: promtool reads ~7 MB/s
        )
        mine = _share(arrivals[sl], replicas[sl], life.slot)
        series: dict[str, np.ndarray] = {}
        if "process" in w.extra:  # the Python process' own series, which stay when engine metrics are off
            series[f'process_cpu_seconds_total{{namespace="{w.namespace}",pod="{life.pod}"}} '] = np.cumsum(
                mine
            )
        if "requests" not in w.drop:
            series[_name(t, "requests", life.slot) + labels + ',finished_reason="stop"} '] = np.cumsum(mine)
        if "prompt" not in w.drop:
            series[_name(t, "prompt", life.slot) + labels + "} "] = np.cumsum(mine) * int(w.prompt_tokens)
        if "output" not in w.drop:
            series[_name(t, "output", life.slot) + labels + "} "] = np.cumsum(mine) * int(w.output_tokens)
        if "ttft" not in w.drop and NAMES[w.exposes]["ttft"]:
            cumulative = np.zeros(life.last + 1 - life.first, dtype=np.int64)
            for j, le in enumerate(t.ttft_buckets):
                cumulative = cumulative + np.cumsum(_share(counts[sl, j], replicas[sl], life.slot))
                le_text = "+Inf" if math.isinf(le) else repr(le)
                series[_name(t, "ttft", life.slot) + labels + f',le="{le_text}"}} '] = cumulative
        for prefix, values in series.items():
            emit(prefix, [str(v) for v in values.tolist()], life.first, life.last)
        # a gauge's last sample stays visible for Prometheus' 5-minute lookback (a backfill has no staleness
        # markers): a pod that goes away reports 0 once more, as a drained pod does
        last = life.last if (life.pod, life.last + 1) in continued else min(life.last + 1, len(replicas) - 1)
        for family, gauge in (("running", running), ("waiting", waiting)):
            if family not in w.drop:
                shown = [f"{v:.6g}" for v in gauge[sl].tolist()] + ["0"] * (last - life.last)
                emit(_name(t, family, life.slot) + labels + "} ", shown, life.first, last)
    ksm = (
        f'kube_deployment_status_replicas_available{{namespace="{w.namespace}",deployment="{w.name}",'
        'job="kube-state-metrics"} '
    )
    emit(ksm, [str(v) for v in replicas.tolist()], 0, len(replicas) - 1)


# ---- promtool and the server -------------------------------------------------------------------


def create_blocks(promtool: str, files: list[Path], data: Path) -> None:
    """`promtool tsdb create-blocks-from openmetrics` on each file (two at a time), blocks moved into `data`."""
    data.mkdir(parents=True, exist_ok=True)
    pending = list(files)
    running: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    while pending or running:
        while pending and len(running) < 2:
            path = pending.pop()
            out = path.with_suffix(".blocks")
            proc = subprocess.Popen(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            running.append((proc, path, out))
        proc, path, out = running.pop(0)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"promtool failed on {path.name}: {err.decode(errors='replace')[-2000:]}")
        for block in out.iterdir():
            shutil.move(str(block), data / block.name)
        path.unlink()


def backfill(prometheus: str, promtool: str, workloads: tuple[Workload, ...], workdir: Path) -> Backfilled:
    """Generate, load and serve the workloads' history (the window ends at today's 00:00 UTC)."""
    timings: dict[str, float] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    end = math.floor(time.time() / DAY) * DAY
    truths = {w.namespace: truth_of(w, end - int(w.days * DAY)) for w in workloads}
    timings["simulate"] = time.monotonic() - t0
    t0 = time.monotonic()
    files = openmetrics_files(list(truths.values()), workdir)
    timings["openmetrics"] = time.monotonic() - t0
    t0 = time.monotonic()
    create_blocks(promtool, files, workdir / "data")
    timings["promtool"] = time.monotonic() - t0
    t0 = time.monotonic()
    server = start_prometheus(prometheus, [], workdir, retention="400d")
    timings["server"] = time.monotonic() - t0
    return Backfilled(server.url, truths, server, timings)


def promtool_bin() -> str | None:
    """promtool (Debian package prometheus)."""
    return shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)


@pytest.fixture(scope="session")
def backfilled_prometheus(prometheus_bin: str) -> Iterator[Callable[..., Backfilled]]:
    """A factory: `backfilled_prometheus(*workloads)` -> `Backfilled` (default `DEFAULT_WORKLOADS`), one
    Prometheus per distinct set of workloads, cached for the session."""
    promtool = promtool_bin()
    if not promtool:
        from tests.conftest import require_real_part

        require_real_part("promtool", "apt-get install prometheus")
    assert promtool
    made: dict[tuple[Workload, ...], Backfilled] = {}
    with tempfile.TemporaryDirectory(prefix="gpuscale-backfill-") as tmp:

        def get(*workloads: Workload) -> Backfilled:
            key = workloads or DEFAULT_WORKLOADS
            if key not in made:
                made[key] = backfill(prometheus_bin, promtool, key, Path(tmp) / f"set-{len(made)}")
            return made[key]

        try:
            yield get
        finally:
            for done in made.values():
                done.server.stop()
