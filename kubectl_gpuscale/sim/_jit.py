"""The compiled kernel (numba): one policy's per-second physics, event loop and compiled controllers.

Imported only by `kubectl_gpuscale.sim.kernel` when a simulation runs (importing numba costs ~0.25 s);
`kernel.py`'s docstring says how a controller plugs in. Every layout constant below is part of that
interface. Numba's cache is keyed on this file's stamp only: keep every compiled function and every
constant it reads in this file (a constant or a callee in another module can change without
invalidating the cached machine code).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])


def njit_inline(fn: F) -> F:
    """`njit`, inlined into its callers by numba: no call, and no reference counting of the arrays it is
    passed (an atomic increment and decrement per array per call otherwise)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))


def njit(fn: F) -> F:
    """numba.njit(cache=True), typed for mypy (numba ships no stubs): the function keeps its signature.

    error_model="numpy": no zero-division test on every float division (every divisor here is >= 1e-12)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


# --- the simulation's configuration: C[...] (float64, read-only) -----------------------------------------
C_MU = 0  # requests/s of one replica
C_PREFILL = 1  # unloaded prefill seconds
C_PATIENCE = 2  # timeout - prefill (>= 0): the patience barrier is ready * mu * patience
C_TIMEOUT = 3  # client timeout (s)
C_ITL_MIN = 4
C_ITL_SAT = 5
C_OUTPUT = 6  # output tokens per request
C_SEQS = 7  # max_num_seqs per replica
C_KV_PER = 8  # KV tokens per running request
C_KV_TOKENS = 9  # KV cache tokens per replica
C_CPU_IDLE = 10
C_CPU_BUSY = 11
C_COLD = 12  # whole seconds from pod creation to Ready
C_PERIOD = 13  # the controller's tick period (s)
C_BUFFERING = 14  # 1: the activator / interceptor holds requests at zero ready replicas
C_STEP = 15  # series bin (s)
C_KIND = 16  # which compiled controller decides (KIND_*)
C_LEN = 17

# --- the policy's physics state and totals: S[...] (float64) ---------------------------------------------
S_Q = 0  # the fluid queue after the last second (0 at zero ready replicas)
S_REQUESTS = 1
S_SERVED = 2
S_TIMED_OUT = 3
S_DROPPED = 4
S_POD_SECONDS = 5
S_BUSY = 6
S_ZERO_SECONDS = 7
S_HELD = 8  # requests the activator holds (sum of the pending ring)
S_UPPER = 9  # 1 while the queue rides the patience barrier (the upper regime of the reflected recursion)
S_LEN = 10

# --- integer state: I[...] (int64) -----------------------------------------------------------------------
I_T = 0  # the next second to simulate
I_SPEC = 1
I_PODS = 2  # pods in the pod table
I_SERIAL = 3  # last pod serial used
I_EVENTS = 4  # scale events so far (the ring holds the last EVENT_RING)
I_MAX_PODS = 5
I_PEND_HEAD = 6  # pending ring: first entry (absolute index)
I_PEND_TAIL = 7  # pending ring: one past the last entry
I_ZERO = 8  # 1 when the last simulated second had no ready replica
I_NEXT_SPEC = 9  # a decided spec not applied yet (the pod table was full), -1 for none
I_LEN = 10

# --- the pod table: pods[row, k] (int64), in the ReplicaSet's list order ---------------------------------
POD_SERIAL = 0
POD_CREATED = 1
POD_READY_AT = 2

# --- per-second observations: ring[OBS_*, second & mask] (float64) --------------------------------------
OBS_ARRIVALS = 0
OBS_WAITING = 1  # the engine's num_requests_waiting (0 with no ready replica)
OBS_RUNNING = 2
OBS_CONC = 3  # running + waiting, plus the requests the activator holds at zero
OBS_READY = 4
OBS_RHO = 5  # served / capacity of the ready replicas
OBS_GPU = 6  # DCGM GPU utilisation (%)
OBS_CPU = 7  # CPU (% of request)
OBS_KV = 8  # KV cache use (%)
OBS_SERVED = 9
OBS_LEN = 10

# --- scale events: events[EV_*, k % EVENT_RING] (float64) ------------------------------------------------
EV_TIME = 0
EV_OLD = 1
EV_NEW = 2
EV_CODE = 3  # the controller's reason code (its Python twin maps it to text)
EV_VALUE = 4  # EV_VALUE..EV_VALUE+2: the values the reason text shows (reason[1:4])
EV_LEN = 7
EVENT_RING = 256

# --- series: series[SER_*, bin] (float64) ----------------------------------------------------------------
SER_ARR = 0
SER_PODS = 1
SER_READY = 2
SER_WAIT = 3
SER_TTFT = 4  # sum of ttft * weight
SER_TTFT_W = 5
SER_N = 6
SER_LEN = 7

BATCH = 4096  # TTFTs binned per batch
HIST_BINS = 703  # core.HIST_BINS: bin 0 and 702 log-spaced edges from 1 ms to 10^4 s

# the run's return status
DONE = 0
NEED_PODS = 1  # the pod table is full: grow it and call again (I[I_NEXT_SPEC] is applied first)

# --- compiled controllers ---------------------------------------------------------------------------------
KIND_ALWAYS_ON = 0
KIND_KPA = 1
# KIND_HPA = 2, KIND_KEDA = 3: the HPA/KEDA port adds its kinds here and a branch in `decide`

# KPA parameters: p[KP_*]
KP_TARGET = 0  # target value per pod (target x utilization)
KP_WINDOW = 1  # stable window (s)
KP_PANIC_WINDOW = 2  # panic window (s)
KP_PANIC_THRESHOLD = 3  # fraction (2.0 = 200 %)
KP_MAX_UP = 4
KP_MAX_DOWN = 5
KP_REACHABLE = 6  # 1 / 0
KP_ACTIVATION_SCALE = 7
KP_DELAY = 8  # scale-down delay (s)
KP_MIN = 9
KP_MAX = 10  # 0: unbounded
KP_INITIAL_SCALE = 11  # the scaler's initial-scale floor (>= 1)
KP_INITIAL_SCALE_RAW = 12  # the annotation (0: none): initialized once this many pods are ready
KP_GRACE = 13
KP_RETENTION = 14
KP_ACTIVATION_TIMEOUT = 15  # progress deadline + the activation timeout buffer
KP_SOURCE = 16  # the observation the windows average (OBS_CONC, or OBS_ARRIVALS for rps)
KP_TICK = 17  # the decider's tick (the delay window's bucket)
KP_LEN = 18

# KPA state: s[KS_*]
KS_PANIC = 0  # 1 in panic mode
KS_PANIC_TIME = 1
KS_MAX_PANIC = 2
KS_PA = 3  # PA_*
KS_PA_SINCE = 4
KS_INITIALIZED = 5
KS_DELAY_HEAD = 6  # the delay window (a running maximum): entries [head, tail) of the pairs below
KS_DELAY_TAIL = 7
KS_DELAY = 8  # ring of (bucket, count) pairs from here: s[KS_DELAY + 2 * (k % cap)], +1
KS_FIXED = 8

PA_ACTIVATING = 0
PA_ACTIVE = 1
PA_INACTIVE = 2

KPA_REASON_ZERO = 1  # "no traffic for {window}s + grace {last pod}s"
KPA_REASON_STABLE = 2  # "stable: {metric} {reason[1]:.1f} / target {target:g}"
KPA_REASON_PANIC = 3  # "panic: ..."

EPS = 1e-9  # kpa.EPS


@njit_inline
def ttft_bin(ttft: float) -> int:
    """core._bin for one TTFT."""
    x = int(math.ceil((math.log10(max(ttft, 1e-4)) + 3.0) * 100.0 - 1e-9)) + 1
    return min(max(x, 1), HIST_BINS - 1)


@intrinsic
def _float_bits(typingctx: Any, x: Any) -> Any:
    """The IEEE 754 bits of a float64 as an int64 (an LLVM bitcast)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


float_bits = cast(Callable[[float], int], _float_bits)


@njit
def bin_table() -> np.ndarray:
    """bounds[0, b] < ttft < bounds[1, b] means `ttft_bin(ttft) == b` for sure: the bin's edges narrowed
    by 1e-9 relative, far beyond the rounding of log10 and of these powers (bins 1 and the last: never)."""
    bounds = np.zeros((2, HIST_BINS))
    bounds[0, :] = 1.0
    for b in range(2, HIST_BINS - 1):
        bounds[0, b] = 10.0 ** ((b - 2 + 1e-9) / 100.0 - 3.0) * (1.0 + 1e-9)
        bounds[1, b] = 10.0 ** ((b - 1 + 1e-9) / 100.0 - 3.0) * (1.0 - 1e-9)
    return bounds


@njit_inline
def find_bin(bounds: np.ndarray, ttft: float) -> int:
    """`ttft_bin(ttft)` without a log10 for most TTFTs: log2 from the float's exponent and a cubic of its
    mantissa (off by < 0.04 bin) puts the bin among three, two comparisons pick it, and the narrowed
    edges of `bin_table` confirm it; otherwise log10 decides."""
    if 1e-3 < ttft < 1e4:
        raw = float_bits(ttft)
        x = (raw & 0xFFFFFFFFFFFFF) * 2.220446049250313e-16  # mantissa fraction in [0, 1)
        log2 = ((raw >> 52) - 1023) + x * (1.42349497 + x * (-0.58777239 + x * 0.16559264))
        k = int(log2 * 30.102999566398120 + 300.0) + 1
        if 2 <= k <= HIST_BINS - 4:
            j = k + (1 if ttft >= bounds[1, k] else 0) + (1 if ttft >= bounds[1, k + 1] else 0)
            if bounds[0, j] < ttft < bounds[1, j]:
                return j
    return ttft_bin(ttft)


@njit
def add_to_hist(hist: np.ndarray, bounds: np.ndarray, ttft: np.ndarray, weight: np.ndarray, n: int) -> None:
    """Add `n` TTFTs with their weights to the run's histogram and the recent one."""
    for k in range(n):
        b = find_bin(bounds, ttft[k])
        hist[0, b] += weight[k]
        hist[1, b] += weight[k]


@njit_inline
def window_sum(ring: np.ndarray, row: int, mask: int, last: int, width: int) -> float:
    """Sum of observation `row` over the `width` seconds ending at `last` (seconds before 0 count as 0)."""
    lo = last - width + 1
    lo = max(lo, 0)
    a0 = a1 = a2 = a3 = 0.0
    sec = lo
    while sec + 3 <= last:
        a0 += ring[row, sec & mask]
        a1 += ring[row, (sec + 1) & mask]
        a2 += ring[row, (sec + 2) & mask]
        a3 += ring[row, (sec + 3) & mask]
        sec += 4
    while sec <= last:
        a0 += ring[row, sec & mask]
        sec += 1
    return (a0 + a1) + (a2 + a3)


# --- KPA ---------------------------------------------------------------------------------------------------
@njit_inline
def kpa_delayed(p: np.ndarray, s: np.ndarray, now: float, desired: int) -> int:
    """kpa.Decider._delayed: the largest count recorded over the scale-down delay (a running maximum)."""
    tick = p[KP_TICK]
    cap = (len(s) - KS_DELAY) // 2
    bucket = int(now // tick)
    head = int(s[KS_DELAY_HEAD])
    tail = int(s[KS_DELAY_TAIL])
    if tail > head:
        k = KS_DELAY + 2 * ((tail - 1) % cap)
        if int(s[k]) >= bucket:
            desired = max(desired, int(s[k + 1]))
            tail -= 1
    while tail > head and int(s[KS_DELAY + 2 * ((tail - 1) % cap) + 1]) <= desired:
        tail -= 1
    k = KS_DELAY + 2 * (tail % cap)
    s[k] = bucket
    s[k + 1] = desired
    tail += 1
    first = min(bucket, bucket - int(p[KP_DELAY] // tick) + 1)
    while int(s[KS_DELAY + 2 * (head % cap)]) < first:
        head += 1
    s[KS_DELAY_HEAD] = head
    s[KS_DELAY_TAIL] = tail
    return int(s[KS_DELAY + 2 * (head % cap) + 1])


@njit_inline
def kpa_scale(p: np.ndarray, s: np.ndarray, now: float, ready: int, stable: float, panic: float) -> int:
    """kpa.Decider.scale (desired_counts, panic mode, the scale-down delay)."""
    ready_f = float(ready) if ready > 1 else 1.0
    max_up = math.ceil(p[KP_MAX_UP] * ready_f)
    max_down = math.floor(ready_f / p[KP_MAX_DOWN]) if p[KP_REACHABLE] > 0 else 0
    dspc = math.ceil(stable / p[KP_TARGET] - EPS)
    dppc = math.ceil(panic / p[KP_TARGET] - EPS)
    ds = min(max(dspc, max_down), max_up)
    dp = min(max(dppc, max_down), max_up)
    act = int(p[KP_ACTIVATION_SCALE])
    if act > 1:
        if dspc > 0 and act > ds:
            ds = act
        if dppc > 0 and act > dp:
            dp = act
    if dppc / ready_f >= p[KP_PANIC_THRESHOLD]:
        s[KS_PANIC] = 1.0
        s[KS_PANIC_TIME] = now
    elif s[KS_PANIC] > 0 and s[KS_PANIC_TIME] + p[KP_WINDOW] < now:
        s[KS_PANIC] = 0.0
        s[KS_MAX_PANIC] = 0.0
    desired = ds
    if s[KS_PANIC] > 0:
        desired = max(desired, dp)
        if desired > s[KS_MAX_PANIC]:
            s[KS_MAX_PANIC] = desired
        desired = int(s[KS_MAX_PANIC])
    if p[KP_DELAY] > 0:
        desired = kpa_delayed(p, s, now, desired)
    return int(desired)


@njit_inline
def kpa_scaler(
    p: np.ndarray, s: np.ndarray, current: int, desired: int, state_for: float
) -> tuple[int, bool]:
    """kpa.scaler_scale (min/max/initial-scale bounds and handleScaleToZero): (desired, applied)."""
    pa = int(s[KS_PA])
    if desired < 0 and pa != PA_ACTIVATING:
        return desired, False
    lo = int(p[KP_MIN]) if p[KP_REACHABLE] > 0 else 0
    init = int(p[KP_INITIAL_SCALE])
    if init > 1 and s[KS_INITIALIZED] == 0:
        lo = max(init, lo)
    desired = max(desired, lo)
    hi = int(p[KP_MAX])
    if hi != 0 and desired > hi:
        desired = hi
    if desired != 0:
        return desired, desired != current
    if pa == PA_ACTIVATING:
        if state_for >= p[KP_ACTIVATION_TIMEOUT]:
            return 0, current != 0
        return -1, False
    if pa == PA_ACTIVE:
        if state_for >= p[KP_WINDOW]:
            return 0, False
        return 1, current != 1
    grace = p[KP_GRACE]
    retention = p[KP_RETENTION]
    if state_for >= max(grace, retention):
        return 0, current != 0
    if retention > 0 and state_for < retention:
        return 0, False
    if grace - state_for <= 0:
        return 0, current != 0
    return 0, False


@njit_inline
def kpa_decide(
    p: np.ndarray, s: np.ndarray, ring: np.ndarray, mask: int, now: int, spec: int, reason: np.ndarray
) -> int:
    """KpaController.decide."""
    last = now - 1
    src = int(p[KP_SOURCE])
    stable = window_sum(ring, src, mask, last, int(p[KP_WINDOW])) / p[KP_WINDOW]
    panic = window_sum(ring, src, mask, last, int(p[KP_PANIC_WINDOW])) / p[KP_PANIC_WINDOW]
    ready = int(ring[OBS_READY, last & mask])
    t = float(now)
    desired = kpa_scale(p, s, t, ready, stable, panic)
    if spec == 0 and ring[OBS_CONC, last & mask] > 0:
        desired = max(desired, 1)
    pa = int(s[KS_PA])
    if desired > 0 and pa == PA_INACTIVE:
        s[KS_PA] = PA_ACTIVE if ready > 0 else PA_ACTIVATING
        s[KS_PA_SINCE] = t
    elif pa == PA_ACTIVATING and ready > 0:
        s[KS_PA] = PA_ACTIVE
        s[KS_PA_SINCE] = t
    if s[KS_INITIALIZED] == 0 and ready >= p[KP_INITIAL_SCALE_RAW]:
        s[KS_INITIALIZED] = 1.0
    new, apply = kpa_scaler(p, s, spec, desired, t - s[KS_PA_SINCE])
    if new == 0 and not apply and int(s[KS_PA]) == PA_ACTIVE:
        s[KS_PA] = PA_INACTIVE
        s[KS_PA_SINCE] = t
    if not apply:
        return spec
    if spec == 0 and new > 0:
        s[KS_PA] = PA_ACTIVATING
        s[KS_PA_SINCE] = t
    if new == 0:
        reason[0] = KPA_REASON_ZERO
    else:
        reason[0] = KPA_REASON_PANIC if s[KS_PANIC] > 0 else KPA_REASON_STABLE
    reason[1] = stable
    return new


# --- the dispatcher ---------------------------------------------------------------------------------------
@njit_inline
def decide(
    kind: int,
    p: np.ndarray,
    s: np.ndarray,
    ring: np.ndarray,
    mask: int,
    now: int,
    spec: int,
    pods: int,
    reason: np.ndarray,
) -> int:
    """The new spec replicas of controller `kind` at tick `now` (see kernel.py: the controller interface)."""
    if kind == KIND_KPA:
        return kpa_decide(p, s, ring, mask, now, spec, reason)
    return spec


# --- pods -------------------------------------------------------------------------------------------------
@njit
def set_spec(c: np.ndarray, st: np.ndarray, it: np.ndarray, pods: np.ndarray, new: int) -> None:
    """PolicyRun._set_spec: add pods (cold start) or delete not-ready pods first, then the newest."""
    t = it[I_T]
    n = it[I_PODS]
    while n < new:
        it[I_SERIAL] += 1
        pods[POD_SERIAL, n] = it[I_SERIAL]
        pods[POD_CREATED, n] = t
        pods[POD_READY_AT, n] = t + int(c[C_COLD])
        n += 1
    if n > new:
        # stable insertion sort by (ready, -created), as Python's list.sort
        for k in range(1, n):
            serial = pods[POD_SERIAL, k]
            created = pods[POD_CREATED, k]
            ready_at = pods[POD_READY_AT, k]
            key_r = 1 if ready_at <= t else 0
            j = k - 1
            while j >= 0:
                kr = 1 if pods[POD_READY_AT, j] <= t else 0
                if kr > key_r or (kr == key_r and -pods[POD_CREATED, j] > -created):
                    pods[POD_SERIAL, j + 1] = pods[POD_SERIAL, j]
                    pods[POD_CREATED, j + 1] = pods[POD_CREATED, j]
                    pods[POD_READY_AT, j + 1] = pods[POD_READY_AT, j]
                    j -= 1
                else:
                    break
            pods[POD_SERIAL, j + 1] = serial
            pods[POD_CREATED, j + 1] = created
            pods[POD_READY_AT, j + 1] = ready_at
        drop = n - new
        for k in range(new):
            pods[POD_SERIAL, k] = pods[POD_SERIAL, k + drop]
            pods[POD_CREATED, k] = pods[POD_CREATED, k + drop]
            pods[POD_READY_AT, k] = pods[POD_READY_AT, k + drop]
        n = new
    it[I_PODS] = n
    it[I_SPEC] = new
    if c[C_BUFFERING] == 0:
        any_ready = False
        for k in range(n):
            if pods[POD_READY_AT, k] <= t:
                any_ready = True
        if new == 0 or not any_ready:
            st[S_DROPPED] += st[S_Q]
            st[S_Q] = 0.0


@njit
def record_event(it: np.ndarray, events: np.ndarray, old: int, new: int, reason: np.ndarray) -> None:
    """A ScaleEvent in the ring of the last EVENT_RING."""
    k = it[I_EVENTS] % EVENT_RING
    events[EV_TIME, k] = it[I_T]
    events[EV_OLD, k] = old
    events[EV_NEW, k] = new
    events[EV_CODE, k] = reason[0]
    events[EV_VALUE, k] = reason[1]
    events[EV_VALUE + 1, k] = reason[2]
    events[EV_VALUE + 2, k] = reason[3]
    it[I_EVENTS] += 1


# --- the activator ----------------------------------------------------------------------------------------
@njit_inline
def hold(c: np.ndarray, st: np.ndarray, it: np.ndarray, pending: np.ndarray, sec: int, a: float) -> float:
    """A second at zero ready replicas with the activator in the path: hold the arrivals, time out those
    older than the client timeout; returns the requests held."""
    cap = pending.shape[1]
    if a > 0:
        k = it[I_PEND_TAIL] % cap
        pending[0, k] = sec
        pending[1, k] = a
        it[I_PEND_TAIL] += 1
        st[S_HELD] += a
    edge = sec - c[C_TIMEOUT]
    head = it[I_PEND_HEAD]
    while head < it[I_PEND_TAIL] and pending[0, head % cap] <= edge:
        n = pending[1, head % cap]
        st[S_TIMED_OUT] += n
        st[S_HELD] -= n
        head += 1
    it[I_PEND_HEAD] = head
    if head == it[I_PEND_TAIL]:
        st[S_HELD] = 0.0
    held: float = st[S_HELD]
    return held


@njit
def release(
    c: np.ndarray, st: np.ndarray, it: np.ndarray, pending: np.ndarray, hist: np.ndarray, sec: int, cap: float
) -> float:
    """The first ready replica at `sec`: the held requests go to it FIFO (those whose wait would pass the
    timeout time out); returns the queue they form (core: the chunk's `extra_*` release)."""
    size = pending.shape[1]
    head = it[I_PEND_HEAD]
    tail = it[I_PEND_TAIL]
    edge = sec - c[C_TIMEOUT]
    gone = 0.0
    while head < tail and pending[0, head % size] <= edge:
        gone += pending[1, head % size]
        head += 1
    ahead_sum = 0.0
    ok_sum = 0.0
    late = 0.0
    released = False
    for k in range(head, tail):
        t_al = pending[0, k % size]
        n_al = pending[1, k % size]
        ahead_sum += n_al
        wait = (sec - t_al) + (ahead_sum - n_al / 2.0) / cap + c[C_PREFILL]
        if wait <= c[C_TIMEOUT]:
            released = True
            b = ttft_bin(wait)
            hist[0, b] += n_al
            hist[1, b] += n_al
            ok_sum += n_al
        else:
            late += n_al
    if released:  # core counts the release's timeouts only when some request was released
        st[S_TIMED_OUT] += gone + late
    it[I_PEND_HEAD] = tail
    st[S_HELD] = 0.0
    return ok_sum


# --- the loop ---------------------------------------------------------------------------------------------
@njit_inline
def ready_count(pods: np.ndarray, n: int, sec: int) -> tuple[int, int]:
    """(pods Ready at `sec`, the next second at which that count changes: a pod's ready_at, or a huge one)."""
    ready = 0
    nxt = 1 << 62
    for k in range(n):
        r = pods[POD_READY_AT, k]
        if r <= sec:
            ready += 1
        elif r < nxt:
            nxt = r
    return ready, nxt


@njit
def run(
    arrivals: np.ndarray,
    end: int,
    arrays: tuple[np.ndarray, ...],
    ctl: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Simulate seconds [it[I_T], end) of one policy (arrivals[k] is second it[I_T] + k); ticks in between
    call its compiled controller. Returns DONE, or NEED_PODS (grow the pod table and call again)."""
    c, st, it, pods, pending, ring, hist, series, events = arrays
    p, s, reason = ctl
    mask = ring.shape[1] - 1
    kind = int(c[C_KIND])
    period = int(c[C_PERIOD])
    step = int(c[C_STEP])
    buffering = c[C_BUFFERING] > 0
    mu = c[C_MU]
    prefill = c[C_PREFILL]
    patience = c[C_PATIENCE]
    itl_min = c[C_ITL_MIN]
    itl_span = c[C_ITL_SAT] - itl_min
    output = c[C_OUTPUT]
    seqs_per = c[C_SEQS]
    cpu_idle = c[C_CPU_IDLE]
    cpu_span = c[C_CPU_BUSY] - cpu_idle
    kv_per = c[C_KV_PER]
    kv_tokens = c[C_KV_TOKENS]
    prefill_mu = prefill * mu
    t0 = it[I_T]
    if it[I_NEXT_SPEC] >= 0:
        new = it[I_NEXT_SPEC]
        if new > pods.shape[1]:
            return NEED_PODS
        it[I_NEXT_SPEC] = -1
        set_spec(c, st, it, pods, new)
    q = st[S_Q]
    upper = st[S_UPPER] > 0
    zero = it[I_ZERO] > 0
    sec = it[I_T]
    npods = it[I_PODS]
    max_pods = it[I_MAX_PODS]
    ready, next_change = ready_count(pods, npods, sec)
    kv_scale = kv_per / (kv_tokens * max(ready, 1))
    bounds = bin_table()
    tt_buf = np.empty(BATCH)
    tw_buf = np.empty(BATCH)
    n_buf = 0
    requests = 0.0
    served_sum = 0.0
    lost_sum = 0.0
    busy = 0.0
    pod_seconds = 0.0
    zero_seconds = 0.0
    sbin = sec // step
    bin_end = (sbin + 1) * step
    next_tick = (sec // period + 1) * period
    s_arr = s_pods = s_ready = s_wait = s_ttft = s_ttft_w = s_n = 0.0
    while sec < end:
        a = arrivals[sec - t0]
        if sec >= next_change:
            ready, next_change = ready_count(pods, npods, sec)
            kv_scale = kv_per / (kv_tokens * max(ready, 1))
        served = 0.0
        waiting = 0.0
        running = 0.0
        rho = 0.0
        conc = 0.0
        ttft = 0.0
        ttft_w = 0.0
        if ready == 0:
            if buffering:
                it[I_T] = sec
                conc = hold(c, st, it, pending, sec, a)
            else:
                st[S_DROPPED] += a
            q = 0.0
            upper = False
            zero = True
        else:
            cap = ready * mu
            if zero:
                q = 0.0
                upper = False
                add_to_hist(hist, bounds, tt_buf, tw_buf, n_buf)
                n_buf = 0
                if buffering and it[I_PEND_TAIL] > it[I_PEND_HEAD]:
                    q = release(c, st, it, pending, hist, sec, cap)
                zero = False
            barrier = cap * patience
            lost = 0.0
            y = q + a - cap
            if upper:
                if y > barrier:
                    lost = y - barrier
                    nq = barrier
                elif y < -1e-9:
                    nq = 0.0
                    upper = False
                else:
                    nq = y
            else:
                nq = y if y > 0.0 else 0.0
                if nq > barrier + 1e-9:
                    lost = nq - barrier
                    nq = barrier
                    upper = True
            served = q + a - lost - nq
            served = max(served, 0.0)
            q = nq
            rho = served / max(cap, 1e-12)
            lat = rho * itl_span
            lat += itl_min
            lat *= output
            lat += prefill
            lat *= served
            running = min(lat, seqs_per * ready)
            waiting = q
            conc = running + q
            wait = q - a / 2.0
            wait = max(wait, 0.0)
            wait /= max(cap, 1e-12)
            rho_p = served * prefill_mu
            rho_p /= max(cap, mu)
            rho_p = min(rho_p, 0.9)
            ttft = wait + prefill / (1.0 - rho_p)
            ttft_w = max(a - lost, 0.0)
            lost_sum += lost
            served_sum += served
            busy += rho * ready
            if ttft_w > 0:  # binned in batches: the bin's latency is kept off the per-second chain
                tt_buf[n_buf] = ttft
                tw_buf[n_buf] = ttft_w
                n_buf += 1
                if n_buf == BATCH:
                    add_to_hist(hist, bounds, tt_buf, tw_buf, n_buf)
                    n_buf = 0
        requests += a
        pod_seconds += npods
        max_pods = max(max_pods, npods)
        if npods == 0:
            zero_seconds += 1.0
        # observations
        slot = sec & mask
        ring[OBS_ARRIVALS, slot] = a
        ring[OBS_WAITING, slot] = waiting
        ring[OBS_RUNNING, slot] = running
        ring[OBS_CONC, slot] = conc
        ring[OBS_READY, slot] = ready
        ring[OBS_RHO, slot] = rho
        ring[OBS_SERVED, slot] = served
        if ready > 0:
            ring[OBS_GPU, slot] = 100.0 * min(1.0, 1.25 * rho)
            ring[OBS_CPU, slot] = cpu_idle + cpu_span * rho
            ring[OBS_KV, slot] = 100.0 * min(1.0, running * kv_scale)
        else:
            ring[OBS_GPU, slot] = 0.0
            ring[OBS_CPU, slot] = 0.0
            ring[OBS_KV, slot] = 0.0
        # series (summed per bin)
        if sec >= bin_end:
            series[SER_ARR, sbin] += s_arr
            series[SER_PODS, sbin] += s_pods
            series[SER_READY, sbin] += s_ready
            series[SER_WAIT, sbin] += s_wait
            series[SER_TTFT, sbin] += s_ttft
            series[SER_TTFT_W, sbin] += s_ttft_w
            series[SER_N, sbin] += s_n
            s_arr = s_pods = s_ready = s_wait = s_ttft = s_ttft_w = s_n = 0.0
            sbin = sec // step
            bin_end = (sbin + 1) * step
        s_arr += a
        s_pods += npods
        s_ready += ready
        s_wait += conc - running
        s_ttft += ttft * ttft_w
        s_ttft_w += ttft_w
        s_n += 1.0
        sec += 1
        if sec == next_tick:
            next_tick += period
            spec = it[I_SPEC]
            reason[0] = 0.0
            new = decide(kind, p, s, ring, mask, sec, spec, npods, reason)
            if new != spec:
                it[I_T] = sec
                record_event(it, events, spec, new, reason)
                st[S_Q] = q
                if new > pods.shape[1]:
                    it[I_NEXT_SPEC] = new
                    end = sec  # stop here: the caller grows the pod table
                    break
                set_spec(c, st, it, pods, new)
                q = st[S_Q]
                npods = it[I_PODS]
                ready, next_change = ready_count(pods, npods, sec)
                kv_scale = kv_per / (kv_tokens * max(ready, 1))
    add_to_hist(hist, bounds, tt_buf, tw_buf, n_buf)
    series[SER_ARR, sbin] += s_arr
    series[SER_PODS, sbin] += s_pods
    series[SER_READY, sbin] += s_ready
    series[SER_WAIT, sbin] += s_wait
    series[SER_TTFT, sbin] += s_ttft
    series[SER_TTFT_W, sbin] += s_ttft_w
    series[SER_N, sbin] += s_n
    st[S_REQUESTS] += requests
    st[S_SERVED] += served_sum
    st[S_TIMED_OUT] += lost_sum
    st[S_BUSY] += busy
    st[S_POD_SECONDS] += pod_seconds
    st[S_ZERO_SECONDS] += zero_seconds
    it[I_MAX_PODS] = max_pods
    it[I_T] = sec
    it[I_ZERO] = 1 if zero else 0
    st[S_Q] = q
    st[S_UPPER] = 1.0 if upper else 0.0
    return NEED_PODS if it[I_NEXT_SPEC] >= 0 else DONE
