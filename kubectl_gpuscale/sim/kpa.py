"""Knative's KPA, as knative/serving implements it.

- pkg/autoscaler/scaling/autoscaler.go: `newAutoscaler` (start in panic with more than one ready
  pod), `Scale` (stable/panic desired counts bounded by max-scale-up/down rates, no scale-down
  limit when the revision is not Reachable, activation-scale, panic mode, scale-down-delay window);
- pkg/reconciler/autoscaling/kpa/scaler.go: `scale` (min/max and initial-scale bounds, minScale
  ignored when Unreachable) and `handleScaleToZero` (activation timeout, Active for a stable window
  before Inactive, then Inactive for max(grace, last-pod retention) before zero).
Pure: no clock, the caller passes times in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from kubectl_gpuscale.sim import defaults as d

EPS = 1e-9  # observed values come from window means over floats: ceil(4.0000000001) must be 4


@dataclass(frozen=True)
class DeciderSpec:
    """The autoscaler's DeciderSpec (per revision, from config-autoscaler and the annotations)."""

    target: float
    max_scale_up_rate: float = d.KNATIVE_MAX_SCALE_UP_RATE
    max_scale_down_rate: float = d.KNATIVE_MAX_SCALE_DOWN_RATE
    panic_threshold: float = d.KNATIVE_PANIC_THRESHOLD_PERCENTAGE / 100.0
    stable_window: float = d.KNATIVE_STABLE_WINDOW_S
    scale_down_delay: float = d.KNATIVE_SCALE_DOWN_DELAY_S
    activation_scale: int = 1
    reachable: bool = True


def desired_counts(
    spec: DeciderSpec, ready: int, stable: float, panic: float
) -> tuple[int, int, bool, float]:
    """Scale's arithmetic: (desired stable pods, desired panic pods, over the panic threshold, dspc)."""
    ready_f = float(ready) if ready > 1 else 1.0
    max_up = math.ceil(spec.max_scale_up_rate * ready_f)
    max_down = math.floor(ready_f / spec.max_scale_down_rate) if spec.reachable else 0
    dspc = math.ceil(stable / spec.target - EPS)
    dppc = math.ceil(panic / spec.target - EPS)
    ds = int(min(max(dspc, max_down), max_up))
    dp = int(min(max(dppc, max_down), max_up))
    if spec.activation_scale > 1:
        if dspc > 0 and spec.activation_scale > ds:
            ds = spec.activation_scale
        if dppc > 0 and spec.activation_scale > dp:
            dp = spec.activation_scale
    return ds, dp, dppc / ready_f >= spec.panic_threshold, dspc


class Decider:
    """The per-revision autoscaler: panic state and the scale-down-delay window."""

    def __init__(self, spec: DeciderSpec, ready_at_start: int, now: float = 0.0) -> None:
        self.spec = spec
        # newAutoscaler: "We always start in the panic mode, if the deployment is scaled up over 1 pod."
        self.panic_time: float | None = now if ready_at_start > 1 else None
        self.max_panic_pods = ready_at_start
        self._delay: deque[tuple[int, int]] = deque()  # (bucket, count), counts strictly falling

    def scale(self, now: float, ready: int, stable: float, panic: float) -> int:
        """Scale: the desired pod count from the observed stable and panic values."""
        spec = self.spec
        ds, dp, over, _ = desired_counts(spec, ready, stable, panic)
        if over:
            self.panic_time = now
        elif self.panic_time is not None and self.panic_time + spec.stable_window < now:
            self.panic_time = None
            self.max_panic_pods = 0
        desired = ds
        if self.panic_time is not None:
            desired = max(desired, dp)
            if desired > self.max_panic_pods:
                self.max_panic_pods = desired
            desired = self.max_panic_pods
        if spec.scale_down_delay > 0:
            desired = self._delayed(now, desired)
        return desired

    def _delayed(self, now: float, desired: int) -> int:
        """max.TimeWindow(scaleDownDelay, tickInterval): the largest count recorded over the delay.

        A running maximum: buckets only move forward, so a bucket whose count a later bucket reaches
        can never be the maximum again and is dropped; the front is the window's maximum."""
        g = d.KNATIVE_TICK_S
        bucket = int(now // g)
        window = self._delay
        if window and window[-1][0] >= bucket:
            if window[-1][0] > bucket:
                raise ValueError(f"scale-down delay window: time went back to {now}")
            desired = max(desired, window.pop()[1])
        while window and window[-1][1] <= desired:
            window.pop()
        window.append((bucket, desired))
        first = min(bucket, bucket - int(self.spec.scale_down_delay // g) + 1)
        while window[0][0] < first:
            window.popleft()
        return window[0][1]

    def delayed_over(self, buckets: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """What `_delayed` would return at each of the consecutive tick `buckets` if `desired` were
        recorded there in turn (nothing is recorded): the running maximum over the window, vectorised."""
        width = max(1, int(self.spec.scale_down_delay // d.KNATIVE_TICK_S))
        out = _sliding_max(desired.astype(np.float64), width)
        if self._delay:
            held = np.array(self._delay, dtype=np.float64)
            first = np.minimum(buckets, buckets - width + 1)
            at = np.searchsorted(held[:, 0], first, side="left")
            before = np.where(at < len(held), held[np.minimum(at, len(held) - 1), 1], -np.inf)
            out = np.maximum(out, before)
        return out

    def record(self, buckets: np.ndarray, desired: np.ndarray) -> None:
        """Record `desired` at the consecutive tick `buckets` (after the last one recorded), as
        `_delayed` would one by one: the window's running maximum afterwards is the same."""
        if not len(buckets):
            return
        if self._delay and int(buckets[0]) <= self._delay[-1][0]:
            raise ValueError(f"scale-down delay window: bucket {int(buckets[0])} recorded twice")
        last = int(buckets[-1])
        first = min(last, last - int(self.spec.scale_down_delay // d.KNATIVE_TICK_S) + 1)
        entries = [*self._delay, *zip((int(b) for b in buckets), (int(v) for v in desired), strict=True)]
        entries = [e for e in entries if e[0] >= first]
        kept: list[tuple[int, int]] = []
        for bucket, value in reversed(entries):
            if not kept or value > kept[-1][1]:
                kept.append((bucket, value))
        self._delay = deque(reversed(kept))


def _sliding_max(x: np.ndarray, width: int) -> np.ndarray:
    """max(x[j - width + 1 : j + 1]) at every j (van Herk / Gil-Werman: block prefix and suffix maxima)."""
    n = len(x)
    if width <= 1 or n == 0:
        same: np.ndarray = x.copy()
        return same
    pad = (-n) % width
    blocks = np.concatenate([x, np.full(pad, -np.inf)]).reshape(-1, width)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    out: np.ndarray = prefix[:n].copy()
    if n >= width:
        out[width - 1 :] = np.maximum(suffix[: n - width + 1], prefix[width - 1 : n])
    return out


@dataclass(frozen=True)
class ScalerConfig:
    """config-autoscaler / config-deployment values and the revision annotations `scale` reads."""

    min_scale: int = 0
    max_scale: int = 0
    initial_scale: int = 1
    stable_window: float = d.KNATIVE_STABLE_WINDOW_S
    grace: float = d.KNATIVE_SCALE_TO_ZERO_GRACE_S
    pod_retention: float = 0.0
    progress_deadline: float = d.KNATIVE_PROGRESS_DEADLINE_S
    reachability: str = "Reachable"  # Reachable | Unreachable | "" (unknown)
    enable_scale_to_zero: bool = True


SCALE_UNKNOWN = -1


def scaler_scale(
    cfg: ScalerConfig,
    current: int,
    desired: int,
    pa_state: str,
    state_for: float,
    target_initialized: bool = True,
    proxy_for: float | None = None,
    activator_in_path: bool = True,
) -> tuple[int, bool]:
    """kpa/scaler.go `scale` + `handleScaleToZero`: (desired scale, whether it is applied).

    `pa_state` is the PodAutoscaler's Active condition: "activating" (Unknown), "active" or
    "inactive"; `state_for` how long it has been so (s); `proxy_for` how long the SKS has proxied
    through the activator (None: as long as the PA has been inactive); `activator_in_path` the
    activator probe's answer (the simulator's activator is always in the path once Inactive).
    """
    if desired < 0 and pa_state != "activating":
        return desired, False
    lo = cfg.min_scale if cfg.reachability != "Unreachable" else 0
    if cfg.initial_scale > 1 and not target_initialized:
        lo = max(cfg.initial_scale, lo)
    if desired < lo:
        desired = lo
    if cfg.max_scale != 0 and desired > cfg.max_scale:
        desired = cfg.max_scale
    if desired != 0:
        return desired, desired != current
    if not cfg.enable_scale_to_zero:
        return 1, current != 1
    if pa_state == "activating":
        if state_for >= cfg.progress_deadline + d.KNATIVE_ACTIVATION_TIMEOUT_BUFFER_S:
            return 0, current != 0
        return SCALE_UNKNOWN, False
    if pa_state == "active":
        if state_for >= cfg.stable_window:
            return 0, False  # mark the PA inactive; the activator takes the traffic
        return 1, current != 1
    if not activator_in_path:
        return 0, False
    last_pod = max(cfg.grace, cfg.pod_retention)
    if state_for >= last_pod:
        return 0, current != 0
    if cfg.pod_retention > 0 and state_for < cfg.pod_retention:
        return 0, False
    proxied = state_for if proxy_for is None else proxy_for
    if cfg.grace - proxied <= 0:
        return 0, current != 0
    return 0, False
