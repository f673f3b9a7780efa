"""The compiled kernel: one policy's whole simulation (physics, pods, controller) in numba machine code.

What is compiled (`sim/_jit.py`, `@numba.njit(cache=True)`): the per-second loop of `run` over
seconds [t, end), the same model as `core.PolicyRun` (the fluid FIFO queue with the patience barrier as
a reflected recursion, second by second; pods with their cold start; the activator / interceptor holding
requests at zero ready replicas with the client timeout and releasing them FIFO; served / timed out /
dropped; the TTFT histogram bins of `core._bin`; busy seconds; the series bins; the observations
`state()` reads), the controller ticks, spec changes with the ReplicaSet's deletion order
(`core.PolicyRun._set_spec`) and the scale events. Everything lives in arrays the Python side owns, so
`Simulation.advance(dt)` stepping equals one `run()`. `KernelRun` is the Python face (the same
attributes `Simulation` and the CLI read from a `PolicyRun`).

The Python path (`core.PolicyRun`) stays the reference model: it runs when numba cannot be imported,
when `GPUSCALE_SIM_KERNEL=0`, for `Simulation(..., kernel=False)`, and for any controller without a
compiled twin. Both kinds of run can be mixed in one `Simulation`.

How a controller plugs in
-------------------------
1. Compiled decision. In `sim/_jit.py` (one file: numba's cache is keyed on that file only), write
   `@njit_inline def <kind>_decide(p, s, ring, mask, now, spec, pods, reason) -> int` (inlined: a
   call that passes arrays costs an atomic incref/decref per array; helpers it calls are
   `@njit_inline` too; allocate nothing per tick), give it a `KIND_<X>`
   number and a branch in `_jit.decide`, which `run` calls at every tick (`now % period == 0`, for
   every tick: there is no scan/skip in the kernel). Its arguments:

   - `p`: float64[:] the controller's parameters (read-only), laid out by `<X>P_*` index constants
     you define next to it (integers and booleans as floats);
   - `s`: float64[:] its mutable state (same convention; windows, rings of recommendations etc.
     are slices of `s`, sized by the Python side when it builds the array);
   - `ring`: float64[OBS_LEN, R] the per-second observations: `ring[OBS_X, sec & mask]` for the last
     `R - 1` seconds (R a power of two > the controller's `history`; seconds before 0 read as 0). The
     last observed second is `now - 1` (the chunk's `i` in `Controller.decide`). Rows: OBS_ARRIVALS,
     OBS_WAITING (num_requests_waiting, 0 at zero ready), OBS_RUNNING, OBS_CONC (running + waiting, plus
     what the activator holds at zero), OBS_READY, OBS_RHO, OBS_GPU, OBS_CPU, OBS_KV, OBS_SERVED (the
     `ChunkView` arrays of the same names). Window means: `window_sum(ring, OBS_X, mask, now - 1, w) / w`;
   - `now`: int, the tick (s); `spec`: int, the current spec replicas; `pods`: int, the pods that exist
     (`ChunkView.pods`: spec, or fewer while the pod table is being resized);
   - `reason`: float64[4], zeroed before the call: when the decision changes the spec, write a reason
     code (> 0, your own table) to `reason[0]` and up to three numbers the text shows to `reason[1:4]`.

   Return the new spec (`spec` for no change). Ticks run every `Controller.period` seconds; a KEDA that
   polls and syncs at different periods ticks at their gcd and tests `now % polling` itself, as the
   Python controller does.

2. Python twin. Override `Controller.kernel_twin(self) -> KernelTwin | None` to return
   `KernelTwin(kind=loaded().KIND_<X>, params=..., state=...)` built from the controller's fresh state
   (read every layout constant from `kernel.loaded()`, never by importing `_jit`: that imports numba,
   which a process running the ahead-of-time module must not pay for), and
   `Controller.kernel_reason(self, code, values) -> str` for the event text (`values` = reason[1:4]).
   `history` sizes the observation ring; `buffering`, `initial`, `initial_ready` and `period` are read
   from the controller as on the Python path. The Python controller object itself is not updated by a
   kernel run (its `decide` is not called): read results from the `Simulation`.

Tiers (`load()`): the ahead-of-time module first (sim/aot.py: `_jit.run` compiled by `numba.pycc` into
a C extension module, loaded without importing numba, which saves ~0.8 s of CPU per process), then
numba's JIT, then the Python path. The first process on a machine builds the ahead-of-time module (~30-35 s
of CPU in a child process; numba's JIT machine code for the callees is cached on the way); when the
build fails (no C compiler, no Python.h, numba without pycc) a marker makes later processes use the JIT
without trying again. The JIT caches machine code next to `_jit.py` (`__pycache__`), or, when that
directory is not writable, in numba's user-wide cache dir (~/.cache/numba; `NUMBA_CACHE_DIR` overrides
both): its first compile costs ~15 s of CPU, a later process ~0.8 s more than the ahead-of-time module.
With no writable cache location at all numba refuses `cache=True`, and the Python path runs.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from kubectl_gpuscale.sim import aot
from kubectl_gpuscale.sim.core import HIST_BINS, PodState, ScaleEvent, Totals, WorkloadState, percentile
from kubectl_gpuscale.sim.engine import ColdStartProfile, EngineProfile
from kubectl_gpuscale.sim.traffic import Arrivals

if TYPE_CHECKING:
    from kubectl_gpuscale.sim.policies import Controller

_loaded: list[ModuleType | None] = []


@dataclass
class KernelTwin:
    """A controller's compiled counterpart: its kind (`_jit.KIND_*`), parameters and initial state."""

    kind: int
    params: np.ndarray = field(default_factory=lambda: np.zeros(1))
    state: np.ndarray = field(default_factory=lambda: np.zeros(1))


def wanted() -> bool:
    """Whether simulations should use the kernel by default (`GPUSCALE_SIM_KERNEL=0` turns it off)."""
    return os.environ.get("GPUSCALE_SIM_KERNEL", "1").strip() not in ("0", "false", "no", "off")


def load() -> ModuleType | None:
    """The kernel module, from the first tier that works (the result is kept for the process):

    0. the ahead-of-time module shipped with the program (`aot.bundled()`: the krew archive);
    1. the ahead-of-time module (sim/aot.py; no numba import in this process). When it is not built yet
       for this `_jit.py` and numba is installed, a namespace with `_jit`'s constants whose `run` builds it
       at its first call (~30-35 s, once per machine; `pending_compile()` says so), then runs it;
    2. numba's JIT (`_jit`, importing numba; machine code from numba's cache);
    3. None: numba cannot be imported or has nowhere to cache machine code (numba raises RuntimeError:
       compiling in every process would cost more than the Python path saves); the Python path runs.

    Every tier's module has `run` and `_jit.py`'s layout constants (`C_*`, `KIND_*`, ...), and `TIER`
    ("ahead-of-time" or "compiled"): kernel users read the constants from here, never from `_jit`."""
    if not _loaded:
        _loaded.append(_load())
    return _loaded[0]


def loaded() -> ModuleType:
    """The module `load()` returns, for code that runs only on the kernel (RuntimeError without one)."""
    module = load()
    if module is None:
        raise RuntimeError("no compiled kernel: no module built ahead of time, and numba cannot be imported")
    return module


def _load() -> ModuleType | None:
    if aot.enabled():
        shipped = aot.bundled()
        module = None if shipped is None else aot.load_built(shipped)
        if module is not None:
            return module
        if aot.numba_installed():
            try:
                files = aot.paths()
            except (OSError, RuntimeError):  # _jit.py unreadable, no home directory
                files = None
            if files is not None:
                module = aot.load_built(files)  # None unless built (and loadable: else marked failed)
                if module is not None:
                    return module
                if aot.status(files) == "missing":
                    jit = _import_jit()
                    return None if jit is None else _pending(files, jit)
    return _import_jit()


def _import_jit() -> ModuleType | None:
    try:
        from kubectl_gpuscale.sim import _jit  # numba costs ~0.4 s: only when simulating
    except (ImportError, RuntimeError):
        return None
    return aot.namespace(aot.layout_of(_jit), _jit.run, "compiled")


def _pending(files: aot.Paths, jit: ModuleType) -> ModuleType:
    """`_jit`'s constants, with a `run` that builds the ahead-of-time module at its first call and then
    runs whichever tier it got (the built module, or the JIT when the build failed)."""
    ns = aot.namespace(aot.layout_of(jit), None, "ahead-of-time (not built yet)")
    ns.__dict__["PENDING"] = True

    def run_after_build(*args: object) -> int:
        built = aot.load_built(files) if aot.build(files) else None
        chosen = jit if built is None else built
        ns.__dict__.update(run=chosen.run, TIER=chosen.TIER, PENDING=False)
        return int(chosen.run(*args))

    ns.__dict__["run"] = run_after_build
    return ns


def tier() -> str:
    """Which kernel simulations run on: "ahead-of-time", "compiled" (numba's JIT) or "Python"."""
    module = load() if wanted() else None
    return "Python" if module is None else str(module.TIER)


def pending_compile() -> str | None:
    """What the next simulation compiles first, once per machine: "ahead-of-time" (the module is built,
    ~30-35 s of CPU), "compiled" (numba's JIT compiles, ~15-20 s: its cache holds no machine code for
    this `_jit.py`), or None (nothing, or it cannot be known)."""
    if not wanted():
        return None
    module = load()
    if module is None:
        return None
    if getattr(module, "PENDING", False):
        return "ahead-of-time"
    if module.TIER != "compiled":
        return None
    try:
        index = module.run._cache._cache_file._load_index()  # numba's cache index for this source and version
    except (AttributeError, OSError, ValueError):
        return None
    return None if index else "compiled"


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


class KernelRun:
    """One policy simulated by the compiled kernel (the face `Simulation` reads, like `core.PolicyRun`)."""

    def __init__(
        self,
        controller: Controller,
        twin: KernelTwin,
        arrivals: Arrivals,
        engine: EngineProfile,
        coldstart: ColdStartProfile,
        timeout: float,
        series_step: int,
        duration: int,
    ) -> None:
        jit = loaded()
        self._jit = jit
        self.ctl = controller
        self.twin = twin
        self.arrivals = arrivals
        self.coldstart = coldstart
        self.series_step = series_step
        prompt, output = arrivals.prompt_tokens, arrivals.output_tokens
        mu = engine.throughput(prompt, output)
        prefill = engine.prefill_seconds(prompt)
        c = np.zeros(jit.C_LEN)
        c[jit.C_MU] = mu
        c[jit.C_PREFILL] = prefill
        c[jit.C_PATIENCE] = max(0.0, timeout - prefill)
        c[jit.C_TIMEOUT] = timeout
        c[jit.C_ITL_MIN] = engine.itl_min_s
        c[jit.C_ITL_SAT] = engine.itl_sat_s
        c[jit.C_OUTPUT] = output
        c[jit.C_SEQS] = engine.max_num_seqs
        c[jit.C_KV_PER] = prompt + output / 2.0
        c[jit.C_KV_TOKENS] = engine.kv_cache_tokens
        c[jit.C_CPU_IDLE] = engine.cpu_idle_pct
        c[jit.C_CPU_BUSY] = engine.cpu_busy_pct
        c[jit.C_COLD] = int(np.ceil(coldstart.total))
        c[jit.C_PERIOD] = controller.period
        c[jit.C_BUFFERING] = 1.0 if controller.buffering else 0.0
        c[jit.C_STEP] = series_step
        c[jit.C_KIND] = twin.kind
        self._c = c
        self._st = np.zeros(jit.S_LEN)
        it = np.zeros(jit.I_LEN, dtype=np.int64)
        it[jit.I_NEXT_SPEC] = -1
        self._it = it
        spec = controller.initial
        pods = np.zeros((3, max(8, _pow2(spec + 1))), dtype=np.int64)
        for k in range(spec):
            pods[jit.POD_SERIAL, k] = k + 1
            pods[jit.POD_READY_AT, k] = 0 if controller.initial_ready else int(c[jit.C_COLD])
        it[jit.I_SPEC] = it[jit.I_PODS] = it[jit.I_SERIAL] = spec
        self._pods = pods
        self._pending = np.zeros((2, _pow2(int(timeout) + 4)))
        self._ring = np.zeros((jit.OBS_LEN, _pow2(max(64, controller.history + 2))))
        self._hist = np.zeros((2, HIST_BINS))
        self._series = np.zeros((jit.SER_LEN, duration // series_step + 2))
        self._events = np.zeros((jit.EV_LEN, jit.EVENT_RING))
        self._ctl = (
            np.ascontiguousarray(twin.params, dtype=np.float64),
            np.ascontiguousarray(twin.state, dtype=np.float64),
            np.zeros(4),
        )
        self.recent = self._hist[1]
        rows = self._series
        self.s_arr, self.s_pods, self.s_ready = rows[jit.SER_ARR], rows[jit.SER_PODS], rows[jit.SER_READY]
        self.s_wait, self.s_ttft, self.s_ttft_w = rows[jit.SER_WAIT], rows[jit.SER_TTFT], rows[jit.SER_TTFT_W]
        self.s_n = rows[jit.SER_N]

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self._c,
            self._st,
            self._it,
            self._pods,
            self._pending,
            self._ring,
            self._hist,
            self._series,
            self._events,
        )

    @property
    def t(self) -> int:
        """The next second to simulate."""
        return int(self._it[self._jit.I_T])

    @property
    def spec(self) -> int:
        """The current spec replicas."""
        return int(self._it[self._jit.I_SPEC])

    def advance_to(self, end: int, fast: bool = True) -> None:
        """Run until second `end` (`fast` is the Python path's switch: the kernel decides every tick)."""
        jit = self._jit
        while self.t < end:
            a = np.ascontiguousarray(self.arrivals.window(self.t, end), dtype=np.float64)
            if jit.run(a, end, self._arrays(), self._ctl) == jit.NEED_PODS:
                grown = np.zeros((3, 2 * self._pods.shape[1]), dtype=np.int64)
                grown[:, : self._pods.shape[1]] = self._pods
                self._pods = grown

    def flush(self) -> None:
        """Nothing to aggregate: the kernel adds every second to the totals as it goes."""

    @property
    def totals(self) -> Totals:
        """The accumulated results (the histogram is the kernel's own array)."""
        jit, st, it = self._jit, self._st, self._it
        return Totals(
            requests=float(st[jit.S_REQUESTS]),
            served=float(st[jit.S_SERVED]),
            timed_out=float(st[jit.S_TIMED_OUT]),
            dropped=float(st[jit.S_DROPPED]),
            pod_seconds=float(st[jit.S_POD_SECONDS]),
            busy_seconds=float(st[jit.S_BUSY]),
            zero_seconds=float(st[jit.S_ZERO_SECONDS]),
            scale_events=int(it[jit.I_EVENTS]),
            max_pods=int(it[jit.I_MAX_PODS]),
            hist=self._hist[0],
        )

    @property
    def q(self) -> float:
        """Requests waiting: the engine queue, or those the activator holds at zero ready replicas."""
        jit = self._jit
        if self._it[jit.I_ZERO] and self.ctl.buffering:
            return float(self._st[jit.S_HELD])
        return float(self._st[jit.S_Q])

    @property
    def pending_n(self) -> np.ndarray:
        """Counts of the requests the activator holds (by arrival second)."""
        jit, it = self._jit, self._it
        size = self._pending.shape[1]
        idx = np.arange(it[jit.I_PEND_HEAD], it[jit.I_PEND_TAIL]) % size
        held: np.ndarray = self._pending[1, idx]
        return held

    @property
    def events(self) -> deque[ScaleEvent]:
        """The last 200 scale events, as `PolicyRun.events`."""
        jit, ev = self._jit, self._events
        total = int(self._it[jit.I_EVENTS])
        out: deque[ScaleEvent] = deque(maxlen=200)
        for k in range(max(0, total - 200), total):
            col = ev[:, k % jit.EVENT_RING]
            values = (float(col[jit.EV_VALUE]), float(col[jit.EV_VALUE + 1]), float(col[jit.EV_VALUE + 2]))
            out.append(
                ScaleEvent(
                    int(col[jit.EV_TIME]),
                    int(col[jit.EV_OLD]),
                    int(col[jit.EV_NEW]),
                    self.ctl.kernel_reason(int(col[jit.EV_CODE]), values),
                )
            )
        return out

    def state(self, t: int) -> WorkloadState:
        """The live view of this policy (as `PolicyRun.state`; rps is the mean over the last 10 s)."""
        jit, now = self._jit, self.t
        n = int(self._it[jit.I_PODS])
        table = self._pods
        pods = tuple(
            PodState(
                f"{self.ctl.kind}-{int(table[jit.POD_SERIAL, k]):05d}",
                bool(table[jit.POD_READY_AT, k] <= now),
                *(
                    self.coldstart.phase_at(now - int(table[jit.POD_CREATED, k]))
                    if table[jit.POD_READY_AT, k] > now
                    else ("ready", 1.0)
                ),
                now - int(table[jit.POD_CREATED, k]),
            )
            for k in sorted(range(n), key=lambda k: int(table[jit.POD_CREATED, k]))
        )
        p95 = percentile(self.recent, 95.0)
        events = tuple(list(self.events)[-20:])
        if now == 0:
            return WorkloadState(self.ctl.name, t, self.spec, 0, pods, 0, 0, 0, 0, 0, 0, p95, events)
        ring = self._ring
        mask = ring.shape[1] - 1
        last = now - 1
        slot = last & mask
        recent = [ring[jit.OBS_ARRIVALS, s & mask] for s in range(max(0, last - 9), last + 1)]
        return WorkloadState(
            self.ctl.name,
            t,
            self.spec,
            int(ring[jit.OBS_READY, slot]),
            pods,
            float(ring[jit.OBS_WAITING, slot]),
            float(ring[jit.OBS_RUNNING, slot]),
            float(np.mean(recent)),
            float(ring[jit.OBS_KV, slot]),
            float(ring[jit.OBS_GPU, slot]),
            float(ring[jit.OBS_CPU, slot]),
            p95,
            events,
        )
