"""`fetch_history`: a workload's traffic history from Prometheus range queries, as a `tune.history.History`.

What is read (names per engine from `engines.traffic` and `engines.catalogue`; each in whichever
form the server holds, `vllm:x` or `vllm_x`, both at once matched by regex):

- arrivals: the engine's finished-request counter (vLLM `vllm:request_success_total`), per step;
- mean prompt / generated tokens: the token counters' increase over the window / the requests';
- TTFT: the histogram's `_bucket` increments per step (de-cumulated over `le`);
- running and waiting: the engine gauges summed over the pods, at each step's end;
- replicas: kube-state-metrics `kube_deployment_status_replicas_available` (statefulsets:
  `kube_statefulset_status_replicas_ready`) when a workload is named and the server holds it, else
  the number of distinct pods reporting the running gauge.

Counters are de-cumulated per series on the server, at every step, and only then summed (one
answer series, or one per `le`): a drop is a reset (the increase is the new value), a series that
appears inside the window counts its first value (a new pod starts from 0). No `increase()`
extrapolation, so totals are exact when the step is the scrape interval. Range queries are split
into chunks of `CHUNK_POINTS` points (Prometheus refuses more than 11,000 per series; a week at
15 s is 40,320).

A series the history needs and the server lacks raises `MissingSeriesError` saying which, why
(wrong namespace or pod regex, engine metrics off, relabelled or dropped names) and what to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from kubectl_gpuscale.engines.catalogue import BY_KEY, Engine
from kubectl_gpuscale.engines.traffic import TRAFFIC, TrafficMetrics
from kubectl_gpuscale.errors import InputError, NotFoundError
from kubectl_gpuscale.prom.promql import (
    LabelValue,
    label_matchers,
    name_matcher,
    name_variants,
    names_matcher,
)
from kubectl_gpuscale.tune.history import History
from kubectl_gpuscale.units import duration_seconds

if TYPE_CHECKING:
    from kubectl_gpuscale.prom.gateway import Prometheus

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus' limit on a range query (promql `exceeded maximum resolution of 11,000 points per timeseries`)."""
CHUNK_POINTS = 1_440
"""Points per series asked in one range query: under `MAX_POINTS_PER_SERIES`, and short (6 h at 15 s)
because the server scans every series its selector matched over the query's whole range at each step,
so a workload whose pods come and go (a new series per pod) costs in proportion to the pods of a
chunk, not of the week (measured on the backfilled week, 248 pods: its TTFT buckets took 20 s in
10,000-point chunks, 8.7 s in these)."""
KSM_REPLICAS = {
    "deploy": "kube_deployment_status_replicas_available",
    "statefulset": "kube_statefulset_status_replicas_ready",
}
KSM_LABEL = {"deploy": "deployment", "statefulset": "statefulset"}
_KINDS = {
    "deploy": "deploy",
    "deployment": "deploy",
    "deployments": "deploy",
    "statefulset": "statefulset",
    "statefulsets": "statefulset",
    "sts": "statefulset",
}


class MissingSeriesError(NotFoundError):
    """The history needs series the server does not hold; `series` names them (the current names)."""

    def __init__(self, what: str, why: str, fix: str, series: Sequence[str]) -> None:
        self.series = tuple(series)
        super().__init__(what, why, fix)


def fetch_history(
    prom: Prometheus,
    *,
    namespace: str,
    pods: str,
    engine: str | Engine,
    since: float | str,
    step: float = 15.0,
    end: float | None = None,
    workload: str | None = None,
) -> History:
    """The workload's history over `since` (seconds or a duration like `7d`) ending at `end` (default now).

    Args:
        prom: the gateway.
        namespace: the workload's namespace.
        pods: a regex (RE2, anchored) matching the workload's pod names, e.g. ``vllm-7d9f.*``.
        engine: the engine key (``vllm``, ``sglang``, ``tgi``, ``nim``) or its catalogue record.
        since: the window's length.
        step: seconds per step (the scrape interval is the natural choice).
        end: Unix seconds of the window's end; aligned down to a multiple of `step`.
        workload: ``deploy/NAME`` or ``statefulset/NAME`` (a bare NAME is a Deployment): read the
            replicas from kube-state-metrics when the server holds them.

    Raises:
        InputError: an engine with no traffic counters, or a window shorter than one step.
        MissingSeriesError: a series is missing (the message says which and why).
    """
    record = engine if isinstance(engine, Engine) else BY_KEY.get(engine)
    traffic = TRAFFIC.get(record.key) if record is not None else None
    if record is None or traffic is None or record.running is None or record.queue is None:
        name = record.display if record is not None else str(engine)
        raise InputError(
            f"cannot read the traffic history of {name}",
            "tune reads request and token counters that only vLLM, SGLang, TGI and NIM export",
            "pass the history as a file (--history FILE written by --save-history)",
        )
    seconds = since if isinstance(since, (int, float)) else duration_seconds(since)
    if step <= 0 or seconds < step:
        raise InputError(
            f"history window {seconds:g}s with step {step:g}s",
            "the window holds no whole step",
            "give a longer --since",
        )
    finish = math.floor((time.time() if end is None else end) / step) * step
    steps = int(seconds // step)
    start = finish - steps * step
    within: dict[str, LabelValue] = {"namespace": namespace, "pod": ("=~", pods)}
    lookback = max(time.time() - start, seconds) + step

    matchers = _resolve(
        prom, record, traffic, within, lookback=lookback, namespace=namespace, pods=pods, seconds=seconds
    )
    grid = _Grid(prom, start, steps, step)
    arrivals = grid.counter(matchers["arrivals"])
    prompt_total = float(np.nansum(grid.counter(matchers["prompt"])))
    output_total = float(np.nansum(grid.counter(matchers["output"])))
    requests = float(np.nansum(arrivals))
    running = grid.gauge(f"sum({matchers['running']})")
    waiting = grid.gauge(f"sum({matchers['waiting']})")
    buckets: tuple[float, ...] = ()
    counts = np.zeros((steps, 0))
    if "ttft" in matchers:
        buckets, counts = grid.histogram(matchers["ttft"])
    replicas, replica_source = _replicas(prom, grid, workload, namespace, matchers, lookback=lookback)
    sources = {key: _source_text(expr) for key, expr in matchers.items()}
    sources["replicas"] = replica_source
    return History(
        namespace=namespace,
        workload=workload or pods,
        engine=record.key,
        start=float(start),
        step=float(step),
        arrivals=arrivals,
        prompt_tokens=prompt_total / requests if requests else math.nan,
        output_tokens=output_total / requests if requests else math.nan,
        replicas=replicas,
        running=running,
        waiting=waiting,
        ttft_buckets=buckets,
        ttft_counts=counts,
        sources=sources,
    )


# ---- names ------------------------------------------------------------------------------------


def _signals(record: Engine, traffic: TrafficMetrics) -> dict[str, tuple[str, ...]]:
    assert record.running is not None and record.queue is not None
    out = {
        "arrivals": (traffic.requests,),
        "prompt": (traffic.prompt_tokens,),
        "output": (traffic.output_tokens,),
        "running": record.running.names,
        "waiting": record.queue.names,
    }
    if traffic.ttft:
        out["ttft"] = (traffic.ttft + "_bucket",)
    return out


def _resolve(
    prom: Prometheus,
    record: Engine,
    traffic: TrafficMetrics,
    within: Mapping[str, LabelValue],
    *,
    lookback: float,
    namespace: str,
    pods: str,
    seconds: float,
) -> dict[str, str]:
    """One selector per signal, for the form(s) the server holds; MissingSeriesError for those it lacks."""
    signals = _signals(record, traffic)
    held = set(
        prom.series_names(
            names_matcher([n for names in signals.values() for n in names], within), lookback=lookback
        )
    )
    out: dict[str, str] = {}
    missing: list[str] = []
    for key, names in signals.items():
        for name in names:
            forms = [v for v in name_variants(name) if v in held]
            if len(forms) == 1:
                out[key] = "{" + ", ".join([f'__name__="{forms[0]}"', *label_matchers(within)]) + "}"
                break
            if forms:
                out[key] = name_matcher(name, within)
                break
        else:
            missing.append(names[0])
    if missing:
        raise _missing_error(
            prom,
            record,
            missing,
            held,
            within,
            lookback=lookback,
            namespace=namespace,
            pods=pods,
            seconds=seconds,
        )
    return out


def _missing_error(
    prom: Prometheus,
    record: Engine,
    missing: list[str],
    held: set[str],
    within: Mapping[str, LabelValue],
    *,
    lookback: float,
    namespace: str,
    pods: str,
    seconds: float,
) -> MissingSeriesError:
    names = ", ".join(missing)
    what = (
        f"no {names} in Prometheus for pods matching {pods!r} in namespace {namespace} "
        f"over the last {_span(seconds)} (checked both the ':' and '_' forms)"
    )
    if held:
        why = (
            f"the pods report {', '.join(sorted(held)[:3])}{'...' if len(held) > 3 else ''} but not these: "
            "a metric_relabel_configs rule renamed or dropped them, or this engine version does not export them"
        )
        fix = "keep the engine's series in the scrape config (see docs/tune.md), or pass --history FILE"
        return MissingSeriesError(what, why, fix, missing)
    anything = prom.series_names("{" + ", ".join(label_matchers(within)) + "}", lookback=lookback)
    if not anything:
        why = "Prometheus holds no series at all for these pods: the namespace or the pod regex is wrong"
        fix = f"check `kubectl get pods -n {namespace}` and the target (or pass --namespace)"
    else:
        off = record.metrics_off_flags or (
            (f"without {record.metrics_needs_flag}",) if record.metrics_needs_flag else ()
        )
        names_seen = f"{len(anything)} metric name{'s' if len(anything) != 1 else ''}"
        why = (
            f"the pods are scraped ({names_seen}) but export no {record.display} metrics: "
            f"engine metrics are off{' (' + ', '.join(off) + ')' if off else ''} or the engine is not "
            f"{record.display}"
        )
        fix = f"turn the engine's metrics on and scrape its {record.metrics_path}, or pass --engine"
    return MissingSeriesError(what, why, fix, missing)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _source_text(selector: str) -> str:
    if selector.startswith('{__name__="'):
        return selector.split('"', 2)[1]
    return selector.split("__name__=~", 1)[1].split('"', 2)[1] if "__name__=~" in selector else selector


# ---- range queries -----------------------------------------------------------------------------


class _Grid:
    """Range queries over the window's step grid: points at start + i * step for i in 0..steps."""

    def __init__(self, prom: Prometheus, start: float, steps: int, step: float) -> None:
        self.prom = prom
        self.start = start
        self.steps = steps
        self.step = step

    def series(self, expr: str) -> dict[tuple[tuple[str, str], ...], np.ndarray]:
        """{labels: values at the steps+1 points (NaN where absent)}, in chunks of `CHUNK_POINTS`."""
        total = self.steps + 1
        out: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for first in range(0, total, CHUNK_POINTS):
            last = min(total, first + CHUNK_POINTS) - 1
            for s in self.prom.query_range(
                expr, self.start + first * self.step, self.start + last * self.step, self.step
            ):
                key = tuple(sorted(s.labels.items()))
                values = out.get(key)
                if values is None:
                    values = out[key] = np.full(total, np.nan)
                if s.points:
                    pts = np.asarray(s.points, dtype=float)
                    idx = np.rint((pts[:, 0] - self.start) / self.step).astype(np.int64)
                    keep = (idx >= 0) & (idx < total)
                    values[idx[keep]] = pts[keep, 1]
        return out

    def increments(self, selector: str, by: str = "") -> str:
        """PromQL for each series' increase over the last step, summed (`by` labels kept): a drop is a
        reset (the new value counts), a series with no sample a step earlier is new (its value counts).

        ``C - C offset step`` is the raw difference; ``>= 0`` drops it at a reset and for a new series
        (no earlier sample), where ``or C * 1`` (same labels, name dropped) puts the value itself.
        """
        offset = f"{round(self.step * 1000)}ms"
        inner = f"({selector} - {selector} offset {offset}) >= 0 or {selector} * 1"
        return f"sum{f' by ({by})' if by else ''} ({inner})"

    def counter(self, selector: str) -> np.ndarray:
        """Per-step increase of a counter summed over its series (NaN where none reported)."""
        series = list(self.series(self.increments(selector)).values())
        return series[0][1:] if series else np.full(self.steps, np.nan)

    def gauge(self, expr: str) -> np.ndarray:
        """An aggregated gauge at each step's end."""
        series = list(self.series(expr).values())
        return series[0][1:] if series else np.full(self.steps, np.nan)

    def histogram(self, selector: str) -> tuple[tuple[float, ...], np.ndarray]:
        """The histogram's bucket bounds and per-step, per-bucket (non-cumulative) increments.

        Bucket counters are cumulative, so per step 0 <= increase(le) <= increase(le') <= increase(+Inf)
        for le < le': a bucket that never held a request is 0 throughout (one cheap `max_over_time`
        says which), and once a bucket's increments equal +Inf's at every step so do all above it.
        Only the buckets in between are read (about 4 of vLLM's 17 for a narrow TTFT distribution,
        a fifth of the time of reading them all).
        """
        window = f"{round((self.steps + 1) * self.step * 1000)}ms"
        peaks = {
            s.labels.get("le", ""): s.value
            for s in self.prom.query(
                f"max by (le) (max_over_time({selector}[{window}]))", at=self.start + self.steps * self.step
            )
        }
        try:
            spelled = sorted(((float(le), le) for le in peaks), key=lambda b: b[0])
        except ValueError:
            spelled = []
        bounds = tuple(b for b, _ in spelled)
        if not bounds or not math.isinf(bounds[-1]):
            return (), np.zeros((self.steps, 0))
        top = np.nan_to_num(self.counter(_with_le(selector, spelled[-1][1])))
        cumulative = np.zeros((self.steps, len(bounds)))
        for j, (bound, le) in enumerate(spelled):
            if math.isinf(bound):
                cumulative[:, j:] = top[:, None]
                break
            if peaks[le] <= 0:
                continue
            got = np.nan_to_num(self.counter(_with_le(selector, le)))
            if np.array_equal(got, top):
                cumulative[:, j:] = top[:, None]
                break
            cumulative[:, j] = got
        return bounds, np.maximum(np.diff(cumulative, axis=1, prepend=0.0), 0.0)


def _with_le(selector: str, le: str) -> str:
    return selector[:-1] + f', le="{le}"}}'


# ---- replicas ----------------------------------------------------------------------------------


def _replicas(
    prom: Prometheus,
    grid: _Grid,
    workload: str | None,
    namespace: str,
    matchers: Mapping[str, str],
    *,
    lookback: float,
) -> tuple[np.ndarray, str]:
    if workload:
        kind, _, name = workload.rpartition("/")
        kind = _KINDS.get(kind.lower() or "deploy", "")
        if kind and name:
            metric = KSM_REPLICAS[kind]
            labels: dict[str, LabelValue] = {"namespace": namespace, KSM_LABEL[kind]: name}
            if prom.series_names(name_matcher(metric, labels), lookback=lookback):
                return grid.gauge(f"max({name_matcher(metric, labels)})"), metric
    running = grid.gauge(f"count(count by (pod) ({matchers['running']}))")
    return np.nan_to_num(running, nan=0.0), f"count of pods reporting {_source_text(matchers['running'])}"
