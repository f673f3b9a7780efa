"""The compiled twin of KedaController.decide (numba): sim/keda.py's operator plus the HPA it owns.

sim/policies.py KedaController and sim/keda.py are the reference; these functions take numbers
and float64 arrays only and decide exactly as they do (tests/test_sim_twins.py). A ScaledObject
is two arrays:

- parameters (`keda_params`): the trigger's threshold and activation, min/idle replicas,
  polling, cooldowns, the fallback, the KEDA version's fallback scaling, the cron floors
  (start, end, replicas, offset, days as a bit mask) and outages, then its HPA's parameters
  (sim/hpa_twin.py) from `K_HEAD + 5 x crons + 2 x outages` on;
- state (`keda_state`): the failure count, lastActiveTime (NaN: never active), the reason
  `(code, x, y)` of sim/reasons.py at the same slots as an HPA's, then the HPA's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from kubectl_gpuscale.sim import defaults as d
from kubectl_gpuscale.sim import hpa_twin as h
from kubectl_gpuscale.sim import reasons as r
from kubectl_gpuscale.sim.keda import FALLBACK_BEHAVIORS

if TYPE_CHECKING:
    from kubectl_gpuscale.sim.policies import KedaController

# parameters
K_THRESHOLD = 0
K_ACTIVATION = 1
K_MIN = 2
K_POLLING = 3
K_COOLDOWN = 4
K_INITIAL_COOLDOWN = 5
K_IDLE = 6  # -1: no idleReplicaCount
K_FALLBACK = 7  # 1: a fallback is set
K_FB_REPLICAS = 8
K_FB_THRESHOLD = 9
K_FB_BEHAVIOR = 10  # index in keda.FALLBACK_BEHAVIORS
K_FALLBACK_SCALING = 11  # 1: KEDA <= 2.16 (RequestScale's doFallbackScaling)
K_SYNC = 12  # the HPA's sync period
K_CRONS = 13
K_OUTAGES = 14
K_HPA = 15  # offset of the HPA's parameters
K_HEAD = 16
CRON_SIZE = 5
OUTAGE_SIZE = 2

# state: the reason at the HPA state's slots, the HPA's state from KS_HPA on
KS_FAILURES = 0
KS_LAST_ACTIVE = 1
KS_HPA = 5

FB_CURRENT = 1
FB_IF_HIGHER = 2
FB_IF_LOWER = 3


def keda_params(ctl: KedaController) -> np.ndarray:
    """The parameter array of a KEDA controller."""
    so = ctl.so
    fb = so.fallback
    head = [0.0] * K_HEAD
    head[K_THRESHOLD] = ctl.threshold
    head[K_ACTIVATION] = ctl.activation
    head[K_MIN] = so.min_replicas
    head[K_POLLING] = ctl.polling
    head[K_COOLDOWN] = so.cooldown
    head[K_INITIAL_COOLDOWN] = so.initial_cooldown
    head[K_IDLE] = -1 if so.idle_replicas is None else so.idle_replicas
    if fb is not None:
        head[K_FALLBACK] = 1
        head[K_FB_REPLICAS] = fb.replicas
        head[K_FB_THRESHOLD] = fb.failure_threshold
        head[K_FB_BEHAVIOR] = FALLBACK_BEHAVIORS.index(fb.behavior)
    head[K_FALLBACK_SCALING] = 1 if ctl.keda_version < d.KEDA_NO_FALLBACK_SCALING_SINCE else 0
    head[K_SYNC] = d.HPA_SYNC_PERIOD_S
    head[K_CRONS] = len(ctl.cron)
    head[K_OUTAGES] = len(ctl.outages)
    for c in ctl.cron:
        head += [c.start, c.end, c.replicas, c.offset, sum(1 << day for day in set(c.days))]
    for o in ctl.outages:
        head += [o.start, o.end]
    head[K_HPA] = len(head)
    return np.concatenate((np.array(head, dtype=np.float64), h.hpa_params(ctl.hpa, ctl.tolerances)))


def keda_state(params: np.ndarray) -> np.ndarray:
    """A fresh state array for a KEDA controller with these parameters."""
    s = np.zeros(KS_HPA, dtype=np.float64)
    s[KS_LAST_ACTIVE] = np.nan
    return np.concatenate((s, h.hpa_state(params[int(params[K_HPA]) :])))


@njit(cache=True)
def cron_floor(k: np.ndarray, now: int) -> int:
    """The highest cron floor holding at `now` (CronFloor.active at wall-clock `now + offset`)."""
    floor = 0
    for j in range(int(k[K_CRONS])):
        c = K_HEAD + CRON_SIZE * j
        t = now + k[c + 3]
        hour = (t % 86400) / 3600.0
        day = int((t // 86400) % 7)
        replicas = int(k[c + 2])
        if k[c] <= hour < k[c + 1] and (int(k[c + 4]) >> day) & 1 and replicas > floor:
            floor = replicas
    return floor


@njit(cache=True)
def in_outage(k: np.ndarray, now: int) -> bool:
    """Whether the metric source is down at `now`."""
    first = K_HEAD + CRON_SIZE * int(k[K_CRONS])
    for j in range(int(k[K_OUTAGES])):
        o = first + OUTAGE_SIZE * j
        if k[o] <= now < k[o + 1]:
            return True
    return False


@njit(cache=True)
def _fallback_replicas(k: np.ndarray, current: int) -> int:
    """keda.fallback_replicas (doFallback)."""
    behavior, replicas = k[K_FB_BEHAVIOR], int(k[K_FB_REPLICAS])
    if behavior == FB_CURRENT:
        return current
    if behavior == FB_IF_HIGHER:
        return max(current, replicas)
    if behavior == FB_IF_LOWER:
        return min(current, replicas)
    return replicas


@njit(cache=True)
def _fetch(k: np.ndarray, s: np.ndarray, failed: bool, current: int) -> float:
    """keda.metrics_with_fallback for one fetch: the failures after it; returns the fallback's value
    (target x fallback replicas), -1 when the fetch failed with no fallback to use, 0 when it succeeded."""
    if not failed:
        s[KS_FAILURES] = 0
        return 0.0
    s[KS_FAILURES] += 1
    usable = k[K_FALLBACK] != 0 and k[K_FB_THRESHOLD] >= 0 and k[K_FB_REPLICAS] >= 0
    if not usable or s[KS_FAILURES] <= k[K_FB_THRESHOLD]:
        return -1.0
    return float(k[K_THRESHOLD] * _fallback_replicas(k, current))


@njit(cache=True)
def _scale_to_idle(k: np.ndarray, s: np.ndarray, current: int, now: int) -> int:
    """The scale-to-zero/idle and back-to-min end of RequestScale for an inactive poll."""
    minimum, idle = int(k[K_MIN]), int(k[K_IDLE])
    if (idle >= 0 and current > idle) or (current > 0 and minimum == 0):
        last = s[KS_LAST_ACTIVE]
        # never active: creation (second 0) + initialCooldownPeriod
        expired = (0.0 + k[K_INITIAL_COOLDOWN] if np.isnan(last) else last + k[K_COOLDOWN]) < now
        if expired:
            return idle if idle >= 0 else minimum
        return current
    if current < minimum and idle < 0:
        return minimum
    return current


@njit(cache=True)
def request_scale(k: np.ndarray, s: np.ndarray, current: int, flags: tuple[bool, bool], now: int) -> int:
    """keda.request_scale after one poll, `flags` = (isActive, isError); updates lastActiveTime."""
    active, error = flags
    minimum, idle = int(k[K_MIN]), int(k[K_IDLE])
    if active:
        if (idle >= 0 and current < minimum) or current == 0:
            s[KS_LAST_ACTIVE] = now
            return max(minimum, 1)
        if not error:
            s[KS_LAST_ACTIVE] = now
        return current
    has_fallback = k[K_FALLBACK] != 0
    if error and has_fallback and k[K_FB_REPLICAS] != 0:
        return int(k[K_FB_REPLICAS]) if k[K_FALLBACK_SCALING] != 0 else current
    if error and not has_fallback and k[K_FALLBACK_SCALING] == 0:
        return current
    return _scale_to_idle(k, s, current, now)


@njit(cache=True)
def _reason(s: np.ndarray, code: int, x: float, y: float) -> None:
    s[h.S_REASON] = code
    s[h.S_REASON_X] = x
    s[h.S_REASON_Y] = y


@njit(cache=True)
def _poll(k: np.ndarray, s: np.ndarray, now: int, spec: int, obs: tuple[float, int, bool]) -> int:
    """The operator's poll: one metric fetch, then RequestScale; `obs` = (value, cron floor, outage)."""
    value, floor, failed = obs
    _fetch(k, s, failed, spec)
    active = (not failed and value > k[K_ACTIVATION]) or floor > 0
    new = request_scale(k, s, spec, (active, failed), now)
    if new != spec:
        if new > spec and active:
            _reason(s, r.KEDA_ACTIVATED, 0.0, 0.0)
        elif failed:
            _reason(s, r.KEDA_FALLBACK_SCALING, new, 0.0)
        elif new < spec:
            _reason(s, r.KEDA_COOLDOWN, 0.0, 0.0)
        else:
            _reason(s, r.KEDA_MIN_REPLICAS, 0.0, 0.0)
    return new


@njit(cache=True)
def _sync(k: np.ndarray, s: np.ndarray, now: int, spec: int, obs: tuple[float, int, bool]) -> int:
    """The HPA's sync: its own metric fetch (with the fallback), then HpaState.reconcile."""
    value, floor, failed = obs
    hp = k[int(k[K_HPA]) :]
    fallback = _fetch(k, s, failed, spec)
    if failed and fallback < 0:
        rec = floor if floor > spec else -1
        _reason(s, r.KEDA_UNAVAILABLE, 0.0, 0.0)
    else:
        got = fallback if failed else value
        rec = max(h.external_replicas(hp, spec, got, k[K_THRESHOLD]), floor)
        if failed:
            _reason(s, r.KEDA_FALLBACK, rec, 0.0)
        else:
            _reason(s, r.KEDA_METRIC, value, floor)
    return h.reconcile(hp, s[KS_HPA:], float(now), spec, rec)


@njit(cache=True)
def keda_decide(k: np.ndarray, s: np.ndarray, now: int, spec: int, value: float) -> int:
    """KedaController.decide at tick `now` with the trigger's metric `value`: the new spec replicas."""
    obs = (value, cron_floor(k, now), in_outage(k, now))
    if now % int(k[K_POLLING]) == 0:
        new = _poll(k, s, now, spec, obs)
        if new != spec:
            return new
    if now % int(k[K_SYNC]) == 0 and spec > 0:
        return _sync(k, s, now, spec, obs)
    return spec
