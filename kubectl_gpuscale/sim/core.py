"""The simulation: one workload (traffic x engine x cold start) under each policy.

Physics, per second: Poisson arrivals; a fluid FIFO queue in front of the ready replicas,
``q[t] = min(B[t], max(0, q[t-1] + a[t] - c[t]))`` where ``c = ready * mu`` is the
replicas' throughput and ``B = c * patience`` the longest queue a client still waits for
(arrivals beyond it time out: with FIFO and one client timeout that is exact in the fluid
model). With 0 ready replicas the activator / interceptor (if the policy has one) holds
requests until a replica is ready or the client times out; without one they are dropped.
Controllers act only at their ticks; between actions the queue is solved in closed form
over whole chunks with numpy (Lindley's recursion as a cumulative minimum), so a month
at 1 s resolution takes well under a second per policy.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kubectl_gpuscale.sim.engine import ColdStartProfile, EngineProfile
from kubectl_gpuscale.sim.policies import Controller
from kubectl_gpuscale.sim.traffic import Arrivals

# TTFT histogram: log-spaced bins from 1 ms to ~3 h
_EDGES = np.concatenate(([0.0], np.logspace(-3, 4, 701)))
HIST_BINS = _EDGES.shape[0] + 1
_EMPTY = np.zeros(0)
_EMPTY_INT = np.zeros(0, dtype=np.int64)


@dataclass
class Pod:
    """A replica: created at `created`, Ready at `ready_at` (seconds since start)."""

    name: str
    created: int
    ready_at: int


@dataclass(frozen=True)
class ScaleEvent:
    """A change of the spec replicas."""

    time: int
    old: int
    new: int
    reason: str


@dataclass(frozen=True)
class PodState:
    """A pod as the dashboard shows it."""

    name: str
    ready: bool
    phase: str
    progress: float  # 0..1 through the current cold-start phase (1 when ready)
    age: int


@dataclass(frozen=True)
class WorkloadState:
    """One policy's live state (the `top --demo` row)."""

    policy: str
    time: int
    desired: int
    ready: int
    pods: tuple[PodState, ...]
    waiting: float
    running: float
    rps: float
    kv_cache_pct: float
    gpu_util_pct: float
    cpu_util_pct: float
    ttft_p95: float | None
    events: tuple[ScaleEvent, ...]


class ChunkView:
    """Per-second observations over a chunk [t0, t0+n) with the pod set held fixed."""

    def __init__(
        self,
        t0: int,
        n: int,
        pods: int,
        engine: EngineProfile | None = None,
        kv_tokens_per_request: float = 0.0,
    ) -> None:
        self.t0 = t0
        self.n = n
        self.pods = pods
        self.engine = engine
        self.kv_per_request = kv_tokens_per_request
        self.arrivals = _EMPTY
        self.ready = _EMPTY_INT
        self.waiting = _EMPTY
        self.running = _EMPTY
        self.conc = _EMPTY
        self.rho = _EMPTY
        self._gpu: np.ndarray | None = None
        self._cpu: np.ndarray | None = None
        self._kv: np.ndarray | None = None
        self.served = np.zeros(n)
        self.timed_out = np.zeros(n)
        self.dropped = np.zeros(n)
        self.ttft = np.zeros(n)
        self.ttft_w = np.zeros(n)
        self.extra_ttft = _EMPTY  # TTFTs of requests released from the activator
        self.extra_w = _EMPTY
        self.extra_at = 0  # index at which they were released
        self.extra_timed_out = 0.0
        self.losses = False  # any request timed out or was dropped in the chunk
        self.pending_t = _EMPTY  # held requests (arrival second, count) at the chunk's end
        self.pending_n = _EMPTY
        self._hist = _EMPTY
        self._cum: np.ndarray | None = None
        self._source = "conc"
        self.memo: dict[str, Any] = {}  # controllers' per-view precomputations

    @property
    def gpu(self) -> np.ndarray:
        """DCGM GPU utilisation (%) of the ready pods: continuous batching keeps kernels busy early."""
        if self._gpu is None:
            self._gpu = np.where(self.ready > 0, 100.0 * np.minimum(1.0, 1.25 * self.rho), 0.0)
        return self._gpu

    @property
    def cpu(self) -> np.ndarray:
        """CPU use (% of the request) of the ready pods: the engine's loop barely moves it."""
        if self._cpu is None:
            e = self.engine
            idle, busy = (e.cpu_idle_pct, e.cpu_busy_pct) if e else (0.0, 0.0)
            self._cpu = np.where(self.ready > 0, idle + (busy - idle) * self.rho, 0.0)
        return self._cpu

    @property
    def kv(self) -> np.ndarray:
        """KV cache use (%) of the ready pods."""
        if self._kv is None:
            tokens = self.engine.kv_cache_tokens if self.engine else 1.0
            self._kv = 100.0 * np.minimum(
                1.0, self.running * self.kv_per_request / (tokens * np.maximum(self.ready, 1))
            )
        return self._kv

    def clone(self, pods: int) -> ChunkView:
        """A view of the same physics for another policy (own pod count, history and controller memo)."""
        c = ChunkView.__new__(ChunkView)
        c.__dict__.update(self.__dict__)
        c.pods = pods
        c.memo = {}
        c._hist = _EMPTY
        c._cum = None
        return c

    def set_history(self, hist: np.ndarray, source: str = "conc") -> None:
        """Attach the `source` series (concurrency, or arrivals for an RPS metric) of the seconds before the
        chunk; the windowed means then average that series."""
        self._hist = hist
        self._source = source
        self._cum = None

    def _cumulative(self) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(np.concatenate((self._hist, getattr(self, self._source))))))

    def window_mean_at(self, i: int, window: int) -> float:
        """Mean concurrency over the `window` seconds ending at index `i`, as a float."""
        cum = self._cum
        if cum is None:
            cum = self._cum = self._cumulative()
        end = i + 1 + self._hist.shape[0]
        start = end - window
        return (float(cum[end]) - float(cum[start if start > 0 else 0])) / window

    def window_mean_all(self, window: int) -> np.ndarray:
        """Mean concurrency over the `window` seconds ending at every index of the chunk."""
        cum = self._cum
        if cum is None:
            cum = self._cum = self._cumulative()
        n = self.n
        h1 = self._hist.shape[0] + 1
        s0 = h1 - window
        start = (
            cum[s0 : s0 + n]
            if s0 >= 0
            else np.concatenate((np.full(min(n, -s0), cum[0]), cum[: max(0, n + s0)]))
        )
        mean: np.ndarray = (cum[h1 : h1 + n] - start) / window
        return mean


class PhysicsCache:
    """The last few chunks' physics, shared by the policies of one simulation (same arrivals, engine, timeout).

    Policies whose pods, queue and held requests are the same at the same second (always-on N and an HPA that
    never acts, say) get the same chunk without recomputing it. Chunks are read-only once computed.
    """

    def __init__(self, seconds: int = 2 * 86400) -> None:
        self.seconds = seconds  # hold chunks covering up to this many seconds (a day of each of two)
        self._held = 0
        self._items: dict[tuple[object, ...], ChunkView] = {}
        self._flushed: dict[tuple[object, ...], tuple[object, Flushed]] = {}

    def flushed(self, key: tuple[object, ...]) -> Flushed | None:
        """The aggregate of the committed segments `key` (ids of shared chunks and bounds), if held."""
        got = self._flushed.get(key)
        return got[1] if got else None

    def keep_flushed(self, key: tuple[object, ...], segments: object, flushed: Flushed) -> Flushed:
        """Hold an aggregate (and its segments, so the chunk ids in `key` stay theirs); returns it."""
        if len(self._flushed) >= 2:
            del self._flushed[next(iter(self._flushed))]
        self._flushed[key] = (segments, flushed)
        return flushed

    def get(self, key: tuple[object, ...]) -> ChunkView | None:
        """The chunk computed for `key`, if still held."""
        return self._items.get(key)

    def put(self, key: tuple[object, ...], view: ChunkView) -> ChunkView:
        """Hold `view` for `key` (dropping the oldest chunks beyond `seconds`); returns it."""
        while self._items and self._held + view.n > self.seconds:
            self._held -= self._items.pop(next(iter(self._items))).n
        self._items[key] = view
        self._held += view.n
        return view


@dataclass(frozen=True)
class Flushed:
    """What a run of committed segments adds to a policy's totals, histogram and series."""

    requests: float
    served: float
    losses: tuple[float, float] | None  # (timed out, dropped) when the segments had any
    busy: float
    released_timed_out: list[float]
    hist: np.ndarray
    b0: int
    m: int
    columns: tuple[np.ndarray, ...]
    counts: np.ndarray | int


@dataclass
class Totals:
    """Accumulated results of one policy."""

    requests: float = 0.0
    served: float = 0.0
    timed_out: float = 0.0
    dropped: float = 0.0
    pod_seconds: float = 0.0
    busy_seconds: float = 0.0
    zero_seconds: float = 0.0
    scale_events: int = 0
    max_pods: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS))


DIRECT_AFTER_CHANGE = 2  # ticks decided one by one after a change (a flapping controller acts again at once)


class PolicyRun:
    """One policy's simulation state. Use `Simulation`, which drives one per policy."""

    def __init__(
        self,
        controller: Controller,
        arrivals: Arrivals,
        engine: EngineProfile,
        coldstart: ColdStartProfile,
        timeout: float,
        series_step: int,
        duration: int,
        shared: PhysicsCache | None = None,
    ) -> None:
        self.ctl = controller
        self.arrivals = arrivals
        self.engine = engine
        self.coldstart = coldstart
        self.timeout = timeout
        self.prompt = arrivals.prompt_tokens
        self.output = arrivals.output_tokens
        self.mu = engine.throughput(self.prompt, self.output)
        self.prefill = engine.prefill_seconds(self.prompt)
        self.patience = max(0.0, timeout - self.prefill)
        self.cold = int(math.ceil(coldstart.total))
        self.t = 0
        self.q = 0.0
        self.spec = controller.initial
        self.pods: list[Pod] = []
        self._serial = 0
        self.pending_t = np.zeros(0)
        self.pending_n = np.zeros(0)
        self.hist_conc = np.zeros(0)
        self.totals = Totals()
        self.events: deque[ScaleEvent] = deque(maxlen=200)
        self.recent = np.zeros(HIST_BINS)
        self.last_view: ChunkView | None = None
        self._buf: list[tuple[ChunkView, int, int, int]] = []
        self._buf_len = 0
        self.last_i = -1
        self.series_step = series_step
        nb = duration // series_step + 2
        self.s_arr = np.zeros(nb)
        self.s_pods = np.zeros(nb)
        self.s_ready = np.zeros(nb)
        self.s_wait = np.zeros(nb)
        self.s_ttft = np.zeros(nb)
        self.s_ttft_w = np.zeros(nb)
        self.s_n = np.zeros(nb)
        for _ in range(self.spec):
            self._add_pod(ready_now=controller.initial_ready)
        self._chunk = 64
        self._shared = shared if shared is not None else PhysicsCache()

    # pods ---------------------------------------------------------------------------------
    def _add_pod(self, ready_now: bool = False) -> None:
        self._serial += 1
        ready_at = self.t if ready_now else self.t + self.cold
        self.pods.append(Pod(f"{self.ctl.kind}-{self._serial:05d}", self.t, ready_at))

    def _set_spec(self, new: int) -> None:
        if new == self.spec:
            return
        self.totals.scale_events += 1
        self.events.append(ScaleEvent(self.t, self.spec, new, self.ctl.reason))
        while len(self.pods) < new:
            self._add_pod()
        if len(self.pods) > new:
            # the ReplicaSet deletes not-ready pods first, then the newest
            self.pods.sort(key=lambda p: (p.ready_at <= self.t, -p.created))
            del self.pods[: len(self.pods) - new]
        self.spec = new
        if (new == 0 or not any(p.ready_at <= self.t for p in self.pods)) and not self.ctl.buffering:
            self.totals.dropped += self.q
            self.q = 0.0

    # physics ------------------------------------------------------------------------------
    def _physics(self, t0: int, n: int) -> ChunkView:
        """The chunk's physics; policies whose pods and queue are the same share one computation."""
        key = (
            t0,
            n,
            self.q,
            self.ctl.buffering,
            self.pending_t.tobytes(),
            self.pending_n.tobytes(),
            tuple(sorted(p.ready_at if p.ready_at > t0 else t0 for p in self.pods)),
        )
        got = self._shared.get(key)
        if got is None:
            got = self._shared.put(key, self._compute(t0, n))
        v = got.clone(len(self.pods))
        v.set_history(self.hist_conc, self.ctl.history_source)
        return v

    def _compute(self, t0: int, n: int) -> ChunkView:
        v = ChunkView(t0, n, len(self.pods), self.engine, self.prompt + self.output / 2.0)
        a = self.arrivals.window(t0, t0 + n)
        v.arrivals = a
        base = 0
        steps = []
        for p in self.pods:
            k = p.ready_at - t0
            if k <= 0:
                base += 1
            elif k < n:
                steps.append(k)
        ready = np.full(n, base, dtype=np.int64)
        cap: np.ndarray | float
        if steps:
            steps.sort()
            for k in steps:
                ready[k:] += 1
            cap = ready * self.mu
            cap_max: np.ndarray | float = np.maximum(cap, 1e-12)
            seqs: np.ndarray | int = self.engine.max_num_seqs * ready
        else:
            cap = base * self.mu  # constant over the chunk: scalar arithmetic
            cap_max = max(cap, 1e-12)
            seqs = self.engine.max_num_seqs * base
        v.ready = ready
        z = 0 if base > 0 else (steps[0] if steps else n)  # ready is non-decreasing in a chunk
        q = np.zeros(n)
        q0 = self.q
        pend_t, pend_n = self.pending_t, self.pending_n
        if z > 0:
            if self.ctl.buffering:
                secs = np.arange(t0, t0 + z)
                nz = a[:z] > 0
                pend_t = np.concatenate((pend_t, secs[nz].astype(np.float64)))
                pend_n = np.concatenate((pend_n, a[:z][nz]))
                cum = np.cumsum(pend_n)
                # held at second s: arrivals in (s - timeout, s]
                hi = np.searchsorted(pend_t, secs, side="right")
                lo = np.searchsorted(pend_t, secs - self.timeout, side="right")
                cum0 = np.concatenate(([0.0], cum))
                q[:z] = cum0[hi] - cum0[lo]
                # timing out at second s: arrivals in (s - 1 - timeout, s - timeout]
                gone = cum0[lo]
                before = cum0[np.searchsorted(pend_t, t0 - 1 - self.timeout, side="right")]
                v.timed_out[:z] = np.diff(np.concatenate(([before], gone)))
                v.losses = True
            else:
                v.dropped[:z] = a[:z]
                v.losses = True
            q0 = float(q[z - 1]) if self.ctl.buffering else 0.0
        v.pending_t, v.pending_n = pend_t, pend_n  # held requests up to z (for a commit before z)
        if z < n:
            if pend_t.size:
                # release the held requests to the first ready replica(s), FIFO
                start = t0 + z
                alive = pend_t > start - self.timeout
                # those timing out at `start` itself (earlier ones are in v.timed_out[:z])
                v.extra_timed_out = max(0.0, float(pend_n[~alive].sum()) - float(v.timed_out[:z].sum()))
                t_al, n_al = pend_t[alive], pend_n[alive]
                ahead = np.cumsum(n_al) - n_al / 2.0
                wait = (
                    (start - t_al) + ahead / (cap[z] if isinstance(cap, np.ndarray) else cap) + self.prefill
                )
                ok = wait <= self.timeout
                v.extra_ttft, v.extra_w = wait[ok], n_al[ok]
                v.extra_timed_out += float(n_al[~ok].sum())
                v.extra_at = z
                q0 = float(n_al[ok].sum())
                pend_t, pend_n = np.zeros(0), np.zeros(0)
            self._queue(a[z:], cap[z:] if isinstance(cap, np.ndarray) else cap, q0, q[z:], v, z)
        # engine observables
        e = self.engine
        rho = v.served / cap_max
        t = rho * (e.itl_sat_s - e.itl_min_s)
        t += e.itl_min_s  # inter-token latency
        t *= self.output
        t += self.prefill  # request latency
        t *= v.served
        running = np.minimum(t, seqs, out=t)
        v.rho = rho
        v.running = running
        if steps:
            v.waiting = np.where(ready > 0, q, 0.0)
        else:
            v.waiting = q if base > 0 else np.zeros(n)
        v.conc = running + q
        return v

    def _queue(
        self, a: np.ndarray, cap: np.ndarray | float, q0: float, q: np.ndarray, v: ChunkView, off: int
    ) -> None:
        """Doubly reflected Lindley recursion (0 and the patience barrier), solved piecewise in closed form.

        `cap` is a float when the ready replicas are constant over the chunk (the usual case: fewer, cheaper
        numpy calls); the arithmetic is the same either way.
        """
        n = a.shape[0]
        x = a - cap
        barrier = cap * self.patience
        dropped: np.ndarray | None = None
        i = 0
        cur = q0
        while i < n:
            # lower regime: q = S - min(-q0, cummin S)
            s = np.cumsum(x[i:])
            m = np.minimum.accumulate(s)
            np.minimum(m, -cur, out=m)
            lower = np.subtract(s, m, out=s)
            if isinstance(barrier, np.ndarray):
                over = np.flatnonzero(lower > barrier[i:] + 1e-9)
                if not over.size:
                    q[i:] = lower
                    break
                bar = barrier
            else:
                if not lower.max() > barrier + 1e-9:
                    q[i:] = lower
                    break
                over = np.flatnonzero(lower > barrier + 1e-9)
                bar = np.full(n, barrier)
            if dropped is None:
                dropped = np.zeros(n)
            j = i + int(over[0])
            q[i:j] = lower[: j - i]
            dropped[j] = lower[j - i] - bar[j]
            q[j] = bar[j]
            # upper regime: p = B - q reflected at 0, until q would go below 0
            k = j + 1
            if k >= n:
                break
            bprev = np.concatenate(([bar[j]], bar[k:-1])) if k < n else np.zeros(0)
            inc = (bar[k:] - bprev) - x[k:]
            ps = np.cumsum(inc)
            p = ps - np.minimum(0.0, np.minimum.accumulate(ps))
            refl = -np.minimum(0.0, np.minimum.accumulate(ps))
            under = np.flatnonzero(p > bar[k:] + 1e-9)
            m_ = int(under[0]) if under.size else n - k
            q[k : k + m_] = bar[k : k + m_] - p[:m_]
            dropped[k : k + m_] += np.diff(np.concatenate(([0.0], refl[:m_])))
            if not under.size:
                break
            e = k + m_
            q[e] = 0.0
            cur = 0.0  # the queue emptied at e: back to the lower regime
            i = e + 1
        if not n:
            return
        # served = max(0, q[t-1] + a - dropped - q), with q[-1] = q0
        served = np.empty(n)
        np.add(q[:-1], a[1:], out=served[1:])
        served[0] = q0 + a[0]
        if dropped is not None:
            served -= dropped
        served -= q
        np.maximum(served, 0.0, out=served)
        v.served[off:] = served
        # TTFT: the wait in the queue plus the prefill inflated by the prefill load
        wait = a / 2.0
        np.subtract(q, wait, out=wait)
        np.maximum(wait, 0.0, out=wait)
        wait /= np.maximum(cap, 1e-12)
        rho_p = served * (self.prefill * self.mu)
        rho_p /= np.maximum(cap, self.mu)
        np.minimum(rho_p, 0.9, out=rho_p)
        np.subtract(1.0, rho_p, out=rho_p)
        np.divide(self.prefill, rho_p, out=rho_p)
        np.add(wait, rho_p, out=v.ttft[off:])
        if dropped is None:
            v.ttft_w[off:] = a
        else:
            v.timed_out[off:] += dropped
            v.losses = True
            np.maximum(a - dropped, 0.0, out=v.ttft_w[off:])

    # commit -------------------------------------------------------------------------------
    def _commit(self, v: ChunkView, lo: int, hi: int) -> None:
        """Accept seconds [lo, hi) of a chunk as what happened (aggregated later, in `flush`)."""
        k = hi - lo
        pods = len(self.pods)
        tot = self.totals
        tot.pod_seconds += pods * k
        if pods == 0:
            tot.zero_seconds += k
        tot.max_pods = max(tot.max_pods, pods)
        self._buf.append((v, lo, hi, pods))
        self._buf_len += k
        # state at the end of the segment
        end = hi - 1
        if v.ready[end] > 0 or not self.ctl.buffering:
            self.q = float(v.waiting[end]) if v.ready[end] > 0 else 0.0
            self.pending_t, self.pending_n = _EMPTY, _EMPTY
        elif not v.pending_t.size:
            self.q = float(v.conc[end])
            self.pending_t, self.pending_n = _EMPTY, _EMPTY
        else:
            self.q = float(v.conc[end])
            keep = v.pending_t <= v.t0 + end
            pt, pn = v.pending_t[keep], v.pending_n[keep]
            alive = pt > v.t0 + end - self.timeout
            self.pending_t, self.pending_n = pt[alive], pn[alive]
        need = self.ctl.history
        if need:
            seg = getattr(v, self.ctl.history_source)[max(lo, hi - need) : hi]
            k = need - seg.shape[0]
            self.hist_conc = np.concatenate((self.hist_conc[-k:], seg)) if k > 0 else seg
        self.last_view, self.last_i = v, end
        self.t = v.t0 + hi
        if self._buf_len >= 86400:
            self.flush()

    def flush(self) -> None:
        """Aggregate the committed segments into the totals, histograms and series."""
        if not self._buf:
            return
        buf, self._buf, self._buf_len = self._buf, [], 0
        key = tuple((id(v.served), lo, hi, pods) for v, lo, hi, pods in buf)
        f = self._shared.flushed(key)
        if f is None:
            f = self._shared.keep_flushed(key, buf, self._aggregate(buf))
        tot = self.totals
        tot.requests += f.requests
        tot.served += f.served
        if f.losses is not None:
            tot.timed_out += f.losses[0]
            tot.dropped += f.losses[1]
        tot.busy_seconds += f.busy
        for e in f.released_timed_out:
            tot.timed_out += e
        tot.hist += f.hist
        self.recent += f.hist
        b0, m = f.b0, f.m
        targets = (self.s_arr, self.s_pods, self.s_ready, self.s_wait, self.s_ttft, self.s_ttft_w)
        for col, target in zip(f.columns, targets, strict=True):
            target[b0 : b0 + m] += col
        self.s_n[b0 : b0 + m] += f.counts

    def _aggregate(self, buf: list[tuple[ChunkView, int, int, int]]) -> Flushed:
        """Sums, TTFT histogram and series bins of committed segments (the same for policies that share them)."""

        runs = _contiguous(buf)

        def cat(name: str) -> np.ndarray:
            if len(runs) == 1:
                v, lo, hi = runs[0]
                only: np.ndarray = getattr(v, name)[lo:hi]
                return only
            return np.concatenate([getattr(v, name)[lo:hi] for v, lo, hi in runs])

        a = cat("arrivals")
        ttft, ttft_w, ready = cat("ttft"), cat("ttft_w"), cat("ready").astype(np.float64)
        requests = float(a.sum())
        served = float(cat("served").sum())
        losses = None
        if any(v.losses for v, *_ in buf):
            losses = (float(cat("timed_out").sum()), float(cat("dropped").sum()))
        busy = float((cat("rho") * ready).sum())
        some = ttft_w > 0  # seconds without requests add nothing to the histogram
        if some.all():
            h = np.bincount(_bin(ttft), weights=ttft_w, minlength=HIST_BINS)
        elif not some.any():
            h = np.zeros(HIST_BINS)
        else:
            h = np.bincount(_bin(ttft[some]), weights=ttft_w[some], minlength=HIST_BINS)
        released = [v for v, lo, hi, _ in buf if lo <= v.extra_at < hi and v.extra_ttft.size]
        if released:
            # requests the activator / interceptor held, released when a replica became ready (whole counts)
            h += np.bincount(
                _bin(np.concatenate([v.extra_ttft for v in released])),
                weights=np.concatenate([v.extra_w for v in released]),
                minlength=HIST_BINS,
            )
        # series
        t0 = buf[0][0].t0 + buf[0][1]
        n = a.shape[0]
        step = self.series_step
        pods = np.repeat(np.array([p for *_, p in buf], dtype=np.float64), [hi - lo for _, lo, hi, _ in buf])
        columns = (a, pods, ready, cat("conc") - cat("running"), ttft * ttft_w, ttft_w)
        counts: np.ndarray | int
        if t0 % step == 0 and n % step == 0:
            b0, m = t0 // step, n // step
            sums = tuple(col.reshape(m, step).sum(axis=1) for col in columns)
            counts = step
        else:
            secs = np.arange(t0, t0 + n) // step
            b0 = int(secs[0])
            rel = secs - b0
            m = int(rel[-1]) + 1
            sums = tuple(np.bincount(rel, weights=col, minlength=m) for col in columns)
            counts = np.bincount(rel, minlength=m)
        return Flushed(
            requests, served, losses, busy, [v.extra_timed_out for v in released], h, b0, m, sums, counts
        )

    @staticmethod
    def _first_difference(old: list[int], new: list[int]) -> int | None:
        """First second at which two pod sets' ready counts differ (None when they never do)."""
        a, b = sorted(old), sorted(new)
        for x, y in zip(a, b, strict=False):
            if x != y:
                return x if x < y else y
        if len(a) != len(b):
            return a[len(b)] if len(a) > len(b) else b[len(a)]
        return None

    def advance_to(self, end: int, fast: bool = True) -> None:
        """Run until second `end`.

        The physics of a chunk depends only on when pods are ready, so ticks whose decision keeps
        the spec reuse it, and a change of the spec keeps it up to the first second at which the
        ready pods differ (a new pod is ready only after its cold start; removing a pod that is
        still starting changes nothing). Only then is a new chunk computed.
        """
        period = self.ctl.period
        while self.t < end:
            n = min(self._chunk, end - self.t)
            v = self._physics(self.t, n)
            base = [p.ready_at for p in self.pods]
            first = (self.t // period + 1) * period
            ticks = np.arange(first, self.t + n + 1, period, dtype=np.int64)
            ticks = ticks[ticks <= end]
            pos = 0
            direct = 0
            lo = 0
            valid = n
            limit = len(ticks)
            broken = False
            look = 32
            while pos < limit:
                scanned = False
                if direct > 0 or not fast:
                    k = pos
                    direct -= 1
                else:
                    scanned = True
                    # scan a growing window of ticks: short after activity, long when steady
                    stop = min(limit, pos + look)
                    k = pos + self.ctl.scan(v, ticks[pos:stop], self.spec)
                    if k >= stop:
                        if stop >= limit:
                            break
                        self.ctl.skip(v, ticks[pos:stop], self.spec)
                        pos = stop
                        look *= 4
                        continue
                    look = 32
                    self.ctl.skip(v, ticks[pos:k], self.spec)
                tick = int(ticks[k])
                new = self.ctl.decide(v, tick - 1 - v.t0, tick, self.spec)
                pos = k + 1
                if new != self.spec:
                    hi = tick - v.t0
                    self._commit(v, lo, hi)
                    q_before = self.q
                    self._set_spec(new)
                    d = self._first_difference(base, [p.ready_at for p in self.pods])
                    valid = n if d is None else min(n, d - v.t0)
                    if valid <= hi or self.q != q_before:
                        broken = True
                        break
                    v.pods = len(self.pods)
                    lo = hi
                    limit = int(np.searchsorted(ticks, v.t0 + valid, side="right"))
                    direct = DIRECT_AFTER_CHANGE
                    continue
                if scanned:
                    direct = (
                        self.ctl.settle
                    )  # a flagged tick that changed nothing: decide the next few directly
            if broken:
                self._chunk = 512
                continue
            if pos < limit:
                self.ctl.skip(v, ticks[pos:limit], self.spec)
            self._commit(v, lo, valid)
            if valid < n:
                self._chunk = 512
            else:
                self._chunk = min(self._chunk * 4, 1 << 16)
        self.flush()

    def state(self, t: int) -> WorkloadState:
        """The live view of this policy."""
        v, i = self.last_view, self.last_i
        pods = tuple(
            PodState(
                p.name,
                p.ready_at <= self.t,
                *(self.coldstart.phase_at(self.t - p.created) if p.ready_at > self.t else ("ready", 1.0)),
                self.t - p.created,
            )
            for p in sorted(self.pods, key=lambda p: p.created)
        )
        w = self.recent
        p95 = percentile(w, 95.0)
        if v is None:
            return WorkloadState(
                self.ctl.name, t, self.spec, 0, pods, 0, 0, 0, 0, 0, 0, p95, tuple(self.events)
            )
        ready = int(v.ready[i])
        lo = max(0, i - 9)
        return WorkloadState(
            self.ctl.name,
            t,
            self.spec,
            ready,
            pods,
            float(v.waiting[i]),
            float(v.running[i]),
            float(v.arrivals[lo : i + 1].mean()),
            float(v.kv[i]),
            float(v.gpu[i]),
            float(v.cpu[i]),
            p95,
            tuple(list(self.events)[-20:]),
        )


def _contiguous(buf: list[tuple[ChunkView, int, int, int]]) -> list[tuple[ChunkView, int, int]]:
    """Committed segments with adjacent ranges of one chunk merged (a scale event that keeps the ready pods
    splits a chunk only for the pod count): fewer slices to concatenate, the same arrays."""
    runs: list[tuple[ChunkView, int, int]] = []
    for v, lo, hi, _ in buf:
        if runs and runs[-1][0] is v and runs[-1][2] == lo:
            runs[-1] = (v, runs[-1][1], hi)
        else:
            runs.append((v, lo, hi))
    return runs


def _bin(ttft: np.ndarray) -> np.ndarray:
    """Histogram bin of each TTFT: bin i >= 1 holds (_EDGES[i-1], _EDGES[i]] (100 bins per decade)."""
    x = np.ceil((np.log10(np.maximum(ttft, 1e-4)) + 3.0) * 100.0 - 1e-9).astype(np.int64) + 1
    bins: np.ndarray = np.clip(x, 1, HIST_BINS - 1)
    return bins


def percentile(hist: np.ndarray, pct: float) -> float | None:
    """The pct-th percentile of a TTFT histogram (upper bin edge), or None when empty."""
    total = float(hist.sum())
    if total <= 0:
        return None
    idx = int(np.searchsorted(np.cumsum(hist), total * pct / 100.0))
    idx = min(max(idx, 1), _EDGES.shape[0] - 1)
    return float(_EDGES[idx])


def share_below(hist: np.ndarray, limit: float) -> float:
    """Weight of TTFTs at or under `limit` (by bin upper edge)."""
    k = int(np.searchsorted(_EDGES, limit, side="right"))
    return float(hist[:k].sum())
