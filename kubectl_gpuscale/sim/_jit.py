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
    """`njit`, inlined into its callers by numba: no call. The arrays it is passed are still reference
    counted (an atomic increment and decrement each) where numba's pruning misses the pair: `run` passes
    borrowed arrays (`borrowed`), which have no count."""
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
KIND_HPA = 2
KIND_KEDA = 3

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


@intrinsic
def _borrowed(typingctx: Any, arr: Any) -> Any:
    """The same array (data, shape, strides) with no meminfo: numba's reference counting skips it, where
    every array passed to an inlined function costs an atomic increment and decrement (numba's pruning
    misses most in `run`'s control flow). Only for arrays that outlive the call: `run`'s arguments."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary = context.make_array(signature.args[0])(context, builder, value=args[0])
        out = context.make_array(signature.return_type)(context, builder)
        context.populate_array(
            out,
            data=ary.data,
            shape=ary.shape,
            strides=ary.strides,
            itemsize=ary.itemsize,
            meminfo=None,
            parent=None,
        )
        return out._getvalue()

    return arr(arr), codegen


borrowed = cast(Callable[[np.ndarray], np.ndarray], _borrowed)


def _sure_bins() -> np.ndarray:
    """SURE_BINS[b, 0] < ttft < SURE_BINS[b, 1] means `ttft_bin(ttft) == b` for sure: the bin's edges
    narrowed by 1e-9 relative, far beyond the rounding of log10 and of these powers (bins 0, 1 and the
    last: never)."""
    sure = np.zeros((HIST_BINS, 2))
    sure[:, 0] = 1.0
    b = np.arange(2, HIST_BINS - 1, dtype=np.float64)
    sure[2 : HIST_BINS - 1, 0] = 10.0 ** ((b - 2 + 1e-9) / 100.0 - 3.0) * (1.0 + 1e-9)
    sure[2 : HIST_BINS - 1, 1] = 10.0 ** ((b - 1 + 1e-9) / 100.0 - 3.0) * (1.0 - 1e-9)
    return sure


CELL_SHIFT = 45  # a TTFT's cell: its float's bits >> 45 (exponent and 7 mantissa bits, < 0.8 % wide)
CELL_FIRST = int(np.float64(1e-3).view(np.int64)) >> CELL_SHIFT
CELL_LAST = int(np.float64(1e4).view(np.int64)) >> CELL_SHIFT


def _cell_bins() -> np.ndarray:
    """CELL_BINS[cell - CELL_FIRST]: the bin of the cell's smallest TTFT; a cell is narrower than a bin
    (2.3 %), so its TTFTs fall in that bin or the next."""
    cells = np.arange(CELL_FIRST, CELL_LAST + 1, dtype=np.int64)
    low = (cells << CELL_SHIFT).view(np.float64)
    b = np.ceil((np.log10(low) + 3.0) * 100.0 - 1e-9).astype(np.int64) + 1
    return np.clip(b, 2, HIST_BINS - 3).astype(np.int16)


# module-level arrays: numba compiles them in as constants (no argument, no reference counting)
SURE_BINS = _sure_bins()
CELL_BINS = _cell_bins()


@njit_inline
def sure_bin(ttft: float) -> int:
    """`ttft_bin(ttft)` for most TTFTs without a log10: the bin from the TTFT's cell (a table), the next
    one if the TTFT is past the bin's narrowed upper edge, confirmed by that bin's narrowed edges
    (`SURE_BINS`); 0 when not sure (near an edge, or outside 1 ms..10^4 s)."""
    if not 1e-3 < ttft < 1e4:
        return 0
    b = np.int64(CELL_BINS[(float_bits(ttft) >> CELL_SHIFT) - CELL_FIRST])
    b += 1 if ttft >= SURE_BINS[b, 1] else 0
    return b if SURE_BINS[b, 0] < ttft < SURE_BINS[b, 1] else 0


@njit
def bins(ttft: np.ndarray) -> np.ndarray:
    """The histogram bin of each TTFT as `add_to_hist` bins it (`core._bin`; for the tests)."""
    out = np.empty(ttft.shape[0], dtype=np.int64)
    for k in range(ttft.shape[0]):
        b = sure_bin(ttft[k])
        out[k] = b if b > 0 else ttft_bin(ttft[k])
    return out


@njit
def add_to_hist(hist: np.ndarray, ttft: np.ndarray, weight: np.ndarray, n: int) -> None:
    """Add `n` TTFTs with their weights to the run's histogram and the recent one (two passes: the bins,
    then the additions in order; measured ~10 % faster for the whole kernel than one)."""
    bins = np.empty(n, dtype=np.int64)
    for k in range(n):
        bins[k] = sure_bin(ttft[k])
    for k in range(n):
        b = bins[k]
        if b == 0:
            b = ttft_bin(ttft[k])
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


# --- HPA (sim/hpa.py HpaState and replica calculators, policies.HpaController) ------------------------------
# An HPA is p[HP_*] (then its behavior's policies) and s[HS_*] (then three time-ordered rings: the
# recommendations and the scale-up and scale-down events the windows and rate limits can still see; entries
# older than the horizon, the longest window or period, are dropped, so a ring of horizon + 3 entries never
# fills with whole-second syncs). KEDA's HPA is the same arrays at an offset of the KEDA controller's.
# hpa_decide and keda_decide are inlined into `decide`; their helpers are plain calls: inlining the whole
# tree made the first compile ~115 s of CPU instead of ~19 s and saved nothing measurable per tick.
HP_MIN = 0
HP_MAX = 1
HP_BEHAVIOR = 2  # 1: spec.behavior set (0: the normalizeDesiredReplicas path)
HP_DOWNSCALE_WINDOW = 3  # the no-behavior path's stabilization window
HP_UP_FACTOR = 4  # scaleUpLimitFactor
HP_UP_MINIMUM = 5  # scaleUpLimitMinimum
HP_TOL_UP = 6
HP_TOL_DOWN = 7
HP_TOL_INCLUSIVE = 8  # 1: kubernetes >= 1.33 isWithin
HP_HORIZON = 9
HP_CAP = 10  # entries per ring
HP_METRIC = 11  # HPA_METRIC_*
HP_TARGET = 12
HP_UP_STAB = 13
HP_UP_SELECT = 14  # HPA_SELECT_*
HP_UP_N = 15
HP_DOWN_STAB = 16
HP_DOWN_SELECT = 17
HP_DOWN_N = 18
HP_POLICIES = 19  # (type, value, period) per scale-up policy, then per scale-down policy

HPA_METRIC_CPU = 0  # a Resource metric, Utilization target (GetResourceReplicas) on OBS_CPU
HPA_METRIC_GPU = 1  # a Pods metric, AverageValue target (calcPlainMetricReplicas) on OBS_GPU
HPA_SELECT_MAX = 0
HPA_SELECT_MIN = 1
HPA_SELECT_DISABLED = 2
HPA_POLICY_PODS = 0
HPA_POLICY_PERCENT = 1

HS_SEEN = 0  # recordInitialRecommendation has run
HS_LIMIT = 1  # the ScalingLimited reason: HPA_LIMIT_*
HS_HEAD = 2  # (head, count) of ring k at HS_HEAD + 2k
HS_RINGS = 8  # ring k: times at HS_RINGS + 2k * cap, values at HS_RINGS + (2k + 1) * cap
HPA_RING_REC = 0
HPA_RING_UP = 1
HPA_RING_DOWN = 2

HPA_LIMIT_WITHIN = 1  # DesiredWithinRange
HPA_LIMIT_SCALE_UP = 2  # ScaleUpLimit
HPA_LIMIT_TOO_MANY = 3  # TooManyReplicas
HPA_LIMIT_TOO_FEW = 4  # TooFewReplicas
HPA_LIMIT_SCALE_DOWN = 5  # ScaleDownLimit

# reason codes (sim/reasons.py, whose texts both paths use; tests/test_sim_twins.py checks they agree)
HPA_REASON_METRIC = 1
KEDA_REASON_ACTIVATED = 2
KEDA_REASON_FALLBACK_SCALING = 3
KEDA_REASON_COOLDOWN = 4
KEDA_REASON_MIN_REPLICAS = 5
KEDA_REASON_UNAVAILABLE = 6
KEDA_REASON_FALLBACK = 7
KEDA_REASON_METRIC = 8


@njit
def hpa_push(s: np.ndarray, ring: int, cap: int, t: float, v: float) -> None:
    """Append (t, v) to a ring (with whole-second syncs it never fills; if it did, the oldest goes)."""
    h = HS_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    if n == cap:
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    k = head + n if head + n < cap else head + n - cap
    base = HS_RINGS + 2 * ring * cap
    s[base + k] = t
    s[base + cap + k] = v
    s[h] = head
    s[h + 1] = n + 1


@njit
def hpa_drop_before(s: np.ndarray, ring: int, cap: int, cutoff: float, inclusive: bool) -> None:
    """Drop a ring's oldest entries older than `cutoff` (also those at it when `inclusive`)."""
    h = HS_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    base = HS_RINGS + 2 * ring * cap
    while n > 0:
        t = s[base + head]
        if t < cutoff or (inclusive and t == cutoff):
            head = head + 1 if head + 1 < cap else 0
            n -= 1
        else:
            break
    s[h] = head
    s[h + 1] = n


@njit
def hpa_sum_after(s: np.ndarray, ring: int, cap: int, cutoff: float) -> int:
    """Sum of a ring's values recorded strictly after `cutoff` (hpa._change_in_period)."""
    h = HS_HEAD + 2 * ring
    head, n = int(s[h]), int(s[h + 1])
    base = HS_RINGS + 2 * ring * cap
    total = 0
    k = head
    for _ in range(n):  # the entries from head on, wrapping at cap (no modulo: an integer division each)
        if s[base + k] > cutoff:
            total += int(s[base + cap + k])
        k = k + 1 if k + 1 < cap else 0
    return total


@njit
def hpa_within(p: np.ndarray, ratio: float) -> bool:
    """hpa.Tolerances.within."""
    if p[HP_TOL_INCLUSIVE] != 0:
        return bool((1.0 - p[HP_TOL_DOWN]) <= ratio <= (1.0 + p[HP_TOL_UP]))
    return bool(abs(1.0 - ratio) <= p[HP_TOL_UP])


@njit
def hpa_corrected(p: np.ndarray, current: int, ratio: float, new_ratio: float, counted: int) -> int:
    """The end of GetResourceReplicas / calcPlainMetricReplicas once unready and missing pods count."""
    if hpa_within(p, new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = int(math.ceil(new_ratio * counted))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


@njit
def hpa_resource_replicas(
    p: np.ndarray, current: int, ready: int, not_counted: tuple[int, int], usage: float
) -> int:
    """hpa.resource_replicas: ready pods at `usage` % of equal requests; `not_counted` = (unready, missing)."""
    unready, missing = not_counted
    if ready <= 0:
        return current
    milli = int(round(usage * 10.0))
    target = int(round(p[HP_TARGET]))
    total_usage = milli * ready
    total_requests = 1000 * ready
    ratio = ((total_usage * 100) // total_requests) / target
    up_with_unready = unready > 0 and ratio > 1.0
    if not up_with_unready and missing == 0:
        if hpa_within(p, ratio):
            return current
        return int(math.ceil(ratio * ready))
    counted = ready
    if missing > 0 and ratio != 1.0:
        fallback = max(100, target) if ratio < 1.0 else 0
        total_usage += missing * (1000 * fallback // 100)
        total_requests += 1000 * missing
        counted += missing
    if up_with_unready:
        total_requests += 1000 * unready
        counted += unready
    new_ratio = ((total_usage * 100) // total_requests) / target
    return hpa_corrected(p, current, ratio, new_ratio, counted)


@njit
def hpa_plain_metric_replicas(
    p: np.ndarray, current: int, ready: int, not_counted: tuple[int, int], usage: float
) -> int:
    """hpa.plain_metric_replicas: a Pods metric averaging `usage` on the ready pods; `not_counted` as above."""
    unready, missing = not_counted
    if ready <= 0:
        return current
    milli = int(round(usage * 1000.0))
    target = int(round(p[HP_TARGET] * 1000.0))
    ratio = ((milli * ready) // ready) / target
    up_with_unready = unready > 0 and ratio > 1.0
    if not up_with_unready and missing == 0:
        if hpa_within(p, ratio):
            return current
        return int(math.ceil(ratio * ready))
    total = milli * ready
    counted = ready
    if missing > 0 and ratio != 1.0:
        total += missing * (target if ratio < 1.0 else 0)
        counted += missing
    if up_with_unready:
        counted += unready
    new_ratio = (total // counted) / target
    return hpa_corrected(p, current, ratio, new_ratio, counted)


@njit
def hpa_external_replicas(p: np.ndarray, status_replicas: int, total: float, target_per_pod: float) -> int:
    """hpa.external_replicas (GetExternalPerPodMetricReplicas)."""
    if status_replicas <= 0:
        return int(math.ceil(total / target_per_pod))
    ratio = total / (target_per_pod * status_replicas)
    if not hpa_within(p, ratio):
        return int(math.ceil(total / target_per_pod))
    return status_replicas


@njit
def hpa_stabilize(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> int:
    """HpaState.stabilize: stabilizeRecommendation, or stabilizeRecommendationWithBehaviors; records `desired`."""
    cap = int(p[HP_CAP])
    hpa_drop_before(s, HPA_RING_REC, cap, now - p[HP_HORIZON], False)
    head, n = int(s[HS_HEAD]), int(s[HS_HEAD + 1])
    if p[HP_BEHAVIOR] == 0:
        highest = desired
        cutoff = now - p[HP_DOWNSCALE_WINDOW]
        k = head
        for _ in range(n):
            if s[HS_RINGS + k] >= cutoff and s[HS_RINGS + cap + k] > highest:
                highest = int(s[HS_RINGS + cap + k])
            k = k + 1 if k + 1 < cap else 0
        hpa_push(s, HPA_RING_REC, cap, now, desired)
        return highest
    up_rec = desired
    down_rec = desired
    up_cut = now - p[HP_UP_STAB]
    down_cut = now - p[HP_DOWN_STAB]
    k = head
    for _ in range(n):
        t, rec = s[HS_RINGS + k], int(s[HS_RINGS + cap + k])
        if t > up_cut and rec < up_rec:
            up_rec = rec
        if t > down_cut and rec > down_rec:
            down_rec = rec
        k = k + 1 if k + 1 < cap else 0
    recommendation = current
    if recommendation < up_rec:
        recommendation = up_rec
    if recommendation > down_rec:
        recommendation = down_rec
    hpa_push(s, HPA_RING_REC, cap, now, desired)
    return recommendation


@njit
def hpa_limit(p: np.ndarray, s: np.ndarray, now: float, current: int, up: bool) -> int:
    """calculateScaleUpLimitWithScalingRules (`up`) or calculateScaleDownLimitWithBehaviors."""
    select = p[HP_UP_SELECT] if up else p[HP_DOWN_SELECT]
    if select == HPA_SELECT_DISABLED:
        return current
    cap = int(p[HP_CAP])
    first = HP_POLICIES if up else HP_POLICIES + 3 * int(p[HP_UP_N])
    count = int(p[HP_UP_N]) if up else int(p[HP_DOWN_N])
    take_max = (select != HPA_SELECT_MIN) == up
    result = current
    for j in range(count):
        kind, value, period = p[first + 3 * j], p[first + 3 * j + 1], p[first + 3 * j + 2]
        cutoff = now - period
        start = (
            current
            - hpa_sum_after(s, HPA_RING_UP, cap, cutoff)
            + hpa_sum_after(s, HPA_RING_DOWN, cap, cutoff)
        )
        if up:
            proposed = (
                start + int(value) if kind == HPA_POLICY_PODS else int(math.ceil(start * (1 + value / 100.0)))
            )
        else:
            proposed = start - int(value) if kind == HPA_POLICY_PODS else int(start * (1 - value / 100.0))
        if j == 0:
            result = proposed
        elif take_max:
            result = max(result, proposed)
        else:
            result = min(result, proposed)
    return result


@njit
def hpa_with_rules(p: np.ndarray, s: np.ndarray, current: int, desired: int) -> int:
    """convertDesiredReplicasWithRules (no spec.behavior)."""
    limit = int(max(p[HP_UP_FACTOR] * current, p[HP_UP_MINIMUM]))
    mn, mx = int(p[HP_MIN]), int(p[HP_MAX])
    maximum, reason = (limit, HPA_LIMIT_SCALE_UP) if mx > limit else (mx, HPA_LIMIT_TOO_MANY)
    if desired < mn:
        s[HS_LIMIT] = HPA_LIMIT_TOO_FEW
        return mn
    if desired > maximum:
        s[HS_LIMIT] = reason
        return maximum
    s[HS_LIMIT] = HPA_LIMIT_WITHIN
    return desired


@njit
def hpa_with_behavior_rate(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> int:
    """convertDesiredReplicasWithBehaviorRate."""
    mn, mx = int(p[HP_MIN]), int(p[HP_MAX])
    if desired > current:
        limit = max(current, hpa_limit(p, s, now, current, True))
        maximum, reason = (limit, HPA_LIMIT_SCALE_UP) if mx > limit else (mx, HPA_LIMIT_TOO_MANY)
        if desired > maximum:
            s[HS_LIMIT] = reason
            return maximum
    elif desired < current:
        limit = min(current, hpa_limit(p, s, now, current, False))
        minimum, reason = (limit, HPA_LIMIT_SCALE_DOWN) if mn < limit else (mn, HPA_LIMIT_TOO_FEW)
        if desired < minimum:
            s[HS_LIMIT] = reason
            return minimum
    s[HS_LIMIT] = HPA_LIMIT_WITHIN
    return desired


@njit
def hpa_record_event(p: np.ndarray, s: np.ndarray, now: float, current: int, desired: int) -> None:
    """HpaState.record_event (storeScaleEvent): only with a behavior."""
    if p[HP_BEHAVIOR] == 0:
        return
    cap = int(p[HP_CAP])
    cut = now - p[HP_HORIZON]
    hpa_drop_before(s, HPA_RING_UP, cap, cut, True)
    hpa_drop_before(s, HPA_RING_DOWN, cap, cut, True)
    if desired > current:
        hpa_push(s, HPA_RING_UP, cap, now, desired - current)
    elif desired < current:
        hpa_push(s, HPA_RING_DOWN, cap, now, current - desired)


@njit
def hpa_reconcile(p: np.ndarray, s: np.ndarray, now: float, current: int, metric_desired: int) -> int:
    """HpaState.reconcile: one sync; `metric_desired` < 0 is None (no metric could be read)."""
    if s[HS_SEEN] == 0:
        s[HS_SEEN] = 1.0
        hpa_push(s, HPA_RING_REC, int(p[HP_CAP]), now, current)
    mn, mx = int(p[HP_MIN]), int(p[HP_MAX])
    if current == 0 and mn != 0:
        return 0
    if current > mx:
        desired = mx
    elif current < mn:
        desired = mn
    elif metric_desired < 0:
        return current
    else:
        stabilized = hpa_stabilize(p, s, now, current, metric_desired)
        if p[HP_BEHAVIOR] == 0:
            desired = hpa_with_rules(p, s, current, stabilized)
        else:
            desired = hpa_with_behavior_rate(p, s, now, current, stabilized)
    if desired != current:
        hpa_record_event(p, s, now, current, desired)
    return desired


@njit_inline
def hpa_decide(
    p: np.ndarray,
    s: np.ndarray,
    ring: np.ndarray,
    mask: int,
    now: int,
    spec: int,
    pods: int,
    reason: np.ndarray,
) -> int:
    """HpaController.decide: the pods' CPU or GPU metric of second `now - 1`, then HpaState.reconcile."""
    slot = (now - 1) & mask
    ready = int(ring[OBS_READY, slot])
    if p[HP_METRIC] == HPA_METRIC_CPU:
        usage = ring[OBS_CPU, slot]
        rec = hpa_resource_replicas(p, spec, ready, (pods - ready, 0), usage)
    else:
        usage = ring[OBS_GPU, slot]
        rec = hpa_plain_metric_replicas(p, spec, ready, (0, pods - ready), usage)
    new = hpa_reconcile(p, s, float(now), spec, rec)
    reason[0] = HPA_REASON_METRIC
    reason[1] = usage
    return new


# --- KEDA (sim/keda.py and policies.KedaController, on top of the HPA above) --------------------------------
# p[KD_*], then CRON_SIZE numbers per cron floor (start, end, replicas, offset, days as a bit mask), then
# OUTAGE_SIZE per outage (start, end), then the HPA's parameters from p[KD_HPA] on. s[KDS_*], then the
# HPA's state from KDS_HPA on.
KD_THRESHOLD = 0
KD_ACTIVATION = 1
KD_MIN = 2
KD_POLLING = 3
KD_COOLDOWN = 4
KD_INITIAL_COOLDOWN = 5
KD_IDLE = 6  # -1: no idleReplicaCount
KD_FALLBACK = 7  # 1: a fallback is set
KD_FB_REPLICAS = 8
KD_FB_THRESHOLD = 9
KD_FB_BEHAVIOR = 10  # KEDA_FB_* (the index in keda.FALLBACK_BEHAVIORS)
KD_FALLBACK_SCALING = 11  # 1: KEDA <= 2.16 (RequestScale's doFallbackScaling)
KD_SYNC = 12  # the HPA's sync period
KD_SOURCE = 13  # the observation the trigger's query sums (OBS_WAITING, OBS_RUNNING or OBS_CONC)
KD_CRONS = 14
KD_OUTAGES = 15
KD_HPA = 16  # offset of the HPA's parameters
KD_HEAD = 17
KD_CRON_SIZE = 5
KD_OUTAGE_SIZE = 2

KEDA_FB_CURRENT = 1
KEDA_FB_IF_HIGHER = 2
KEDA_FB_IF_LOWER = 3

KDS_FAILURES = 0
KDS_LAST_ACTIVE = 1  # NaN: never active
KDS_HPA = 2


@njit
def keda_cron_floor(p: np.ndarray, now: int) -> int:
    """The highest cron floor holding at `now` (CronFloor.holds at wall-clock `now + offset`)."""
    floor = 0
    for j in range(int(p[KD_CRONS])):
        c = KD_HEAD + KD_CRON_SIZE * j
        t = now + p[c + 3]
        hour = (t % 86400) / 3600.0
        day = int((t // 86400) % 7)
        replicas = int(p[c + 2])
        if p[c] <= hour < p[c + 1] and (int(p[c + 4]) >> day) & 1 and replicas > floor:
            floor = replicas
    return floor


@njit
def keda_in_outage(p: np.ndarray, now: int) -> bool:
    """Whether the metric source is down at `now`."""
    first = KD_HEAD + KD_CRON_SIZE * int(p[KD_CRONS])
    for j in range(int(p[KD_OUTAGES])):
        o = first + KD_OUTAGE_SIZE * j
        if p[o] <= now < p[o + 1]:
            return True
    return False


@njit
def keda_fallback_replicas(p: np.ndarray, current: int) -> int:
    """keda.fallback_replicas (doFallback)."""
    behavior, replicas = p[KD_FB_BEHAVIOR], int(p[KD_FB_REPLICAS])
    if behavior == KEDA_FB_CURRENT:
        return current
    if behavior == KEDA_FB_IF_HIGHER:
        return max(current, replicas)
    if behavior == KEDA_FB_IF_LOWER:
        return min(current, replicas)
    return replicas


@njit
def keda_fetch(p: np.ndarray, s: np.ndarray, failed: bool, current: int) -> float:
    """keda.metrics_with_fallback for one fetch (counts the failures): the fallback's value (target x its
    replicas) when one is used, -1 when the fetch failed with none to use, 0 when the fetch succeeded."""
    if not failed:
        s[KDS_FAILURES] = 0.0
        return 0.0
    s[KDS_FAILURES] += 1.0
    usable = p[KD_FALLBACK] != 0 and p[KD_FB_THRESHOLD] >= 0 and p[KD_FB_REPLICAS] >= 0
    if not usable or s[KDS_FAILURES] <= p[KD_FB_THRESHOLD]:
        return -1.0
    return float(p[KD_THRESHOLD] * keda_fallback_replicas(p, current))


@njit
def keda_scale_to_idle(p: np.ndarray, s: np.ndarray, current: int, now: int) -> int:
    """RequestScale's end for an inactive poll: to idle/min once the cooldown passed, or back up to min."""
    minimum, idle = int(p[KD_MIN]), int(p[KD_IDLE])
    if (idle >= 0 and current > idle) or (current > 0 and minimum == 0):
        last = s[KDS_LAST_ACTIVE]
        # never active: the creation (second 0) + initialCooldownPeriod
        deadline = 0.0 + p[KD_INITIAL_COOLDOWN] if np.isnan(last) else last + p[KD_COOLDOWN]
        if deadline < now:
            return idle if idle >= 0 else minimum
        return current
    if current < minimum and idle < 0:
        return minimum
    return current


@njit
def keda_request_scale(p: np.ndarray, s: np.ndarray, current: int, flags: tuple[bool, bool], now: int) -> int:
    """keda.request_scale after one poll, `flags` = (isActive, isError); updates lastActiveTime."""
    active, error = flags
    minimum, idle = int(p[KD_MIN]), int(p[KD_IDLE])
    if active:
        if (idle >= 0 and current < minimum) or current == 0:
            s[KDS_LAST_ACTIVE] = now
            return max(minimum, 1)
        if not error:
            s[KDS_LAST_ACTIVE] = now
        return current
    has_fallback = p[KD_FALLBACK] != 0
    if error and has_fallback and p[KD_FB_REPLICAS] != 0:
        return int(p[KD_FB_REPLICAS]) if p[KD_FALLBACK_SCALING] != 0 else current
    if error and not has_fallback and p[KD_FALLBACK_SCALING] == 0:
        return current
    return keda_scale_to_idle(p, s, current, now)


@njit
def keda_poll(
    p: np.ndarray, s: np.ndarray, now: int, spec: int, obs: tuple[float, int, bool]
) -> tuple[int, int]:
    """The operator's poll: one metric fetch, then RequestScale; `obs` = (value, cron floor, outage).
    Returns (replicas, reason code)."""
    value, floor, failed = obs
    keda_fetch(p, s, failed, spec)
    active = (not failed and value > p[KD_ACTIVATION]) or floor > 0
    new = keda_request_scale(p, s, spec, (active, failed), now)
    if new == spec:
        return new, 0
    if new > spec and active:
        return new, KEDA_REASON_ACTIVATED
    if failed:
        return new, KEDA_REASON_FALLBACK_SCALING
    return new, KEDA_REASON_COOLDOWN if new < spec else KEDA_REASON_MIN_REPLICAS


@njit
def keda_sync(
    p: np.ndarray, s: np.ndarray, now: int, spec: int, obs: tuple[float, int, bool], reason: np.ndarray
) -> int:
    """The HPA's sync: its own metric fetch (with the fallback), then HpaState.reconcile."""
    value, floor, failed = obs
    hp = p[int(p[KD_HPA]) :]
    fallback = keda_fetch(p, s, failed, spec)
    if failed and fallback < 0:
        rec = floor if floor > spec else -1  # a failing metric blocks all but a scale-up
        reason[0] = KEDA_REASON_UNAVAILABLE
    else:
        got = fallback if failed else value
        rec = max(hpa_external_replicas(hp, spec, got, p[KD_THRESHOLD]), floor)
        if failed:
            reason[0] = KEDA_REASON_FALLBACK
            reason[1] = rec
        else:
            reason[0] = KEDA_REASON_METRIC
            reason[1] = value
            reason[2] = floor
    return hpa_reconcile(hp, s[KDS_HPA:], float(now), spec, rec)


@njit_inline
def keda_decide(
    p: np.ndarray, s: np.ndarray, ring: np.ndarray, mask: int, now: int, spec: int, reason: np.ndarray
) -> int:
    """KedaController.decide at tick `now` on the trigger's metric of second `now - 1`."""
    obs = (ring[int(p[KD_SOURCE]), (now - 1) & mask], keda_cron_floor(p, now), keda_in_outage(p, now))
    if now % int(p[KD_POLLING]) == 0:
        new, code = keda_poll(p, s, now, spec, obs)
        if new != spec:
            reason[0] = code
            reason[1] = new
            return new
    if now % int(p[KD_SYNC]) == 0 and spec > 0:
        return keda_sync(p, s, now, spec, obs, reason)
    return spec


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
    if kind == KIND_HPA:
        return hpa_decide(p, s, ring, mask, now, spec, pods, reason)
    if kind == KIND_KEDA:
        return keda_decide(p, s, ring, mask, now, spec, reason)
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
    c, st, it, pods, pending = borrowed(c), borrowed(st), borrowed(it), borrowed(pods), borrowed(pending)
    ring, hist, series, events = borrowed(ring), borrowed(hist), borrowed(series), borrowed(events)
    p, s, reason = borrowed(ctl[0]), borrowed(ctl[1]), borrowed(ctl[2])
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
    tt_buf = np.empty(BATCH)
    tw_buf = np.empty(BATCH)
    n_buf = 0
    requests = 0.0
    served_sum = 0.0
    lost_sum = 0.0
    busy = 0.0
    pod_seconds = 0  # integer sums: exact, as the float sums of integers they replace
    zero_seconds = 0
    sbin = sec // step
    bin_end = (sbin + 1) * step
    next_tick = (sec // period + 1) * period
    s_arr = s_wait = s_ttft = s_ttft_w = 0.0
    s_pods = s_ready = s_n = 0
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
                add_to_hist(hist, tt_buf, tw_buf, n_buf)
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
                    add_to_hist(hist, tt_buf, tw_buf, n_buf)
                    n_buf = 0
        requests += a
        pod_seconds += npods
        max_pods = max(max_pods, npods)
        if npods == 0:
            zero_seconds += 1
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
            s_arr = s_wait = s_ttft = s_ttft_w = 0.0
            s_pods = s_ready = s_n = 0
            sbin = sec // step
            bin_end = (sbin + 1) * step
        s_arr += a
        s_pods += npods
        s_ready += ready
        s_wait += conc - running
        s_ttft += ttft * ttft_w
        s_ttft_w += ttft_w
        s_n += 1
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
    add_to_hist(hist, tt_buf, tw_buf, n_buf)
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
