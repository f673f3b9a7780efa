"""`History`: a workload's observed traffic and behaviour over a window, one row per step.

Built by `prom.history.fetch_history` from Prometheus range queries (or loaded from a file written by
`tune --save-history`); read by `calibrate` and `search`. Pure: numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kubectl_gpuscale.errors import InputError

HISTORY_KIND = "TuneHistory"


@dataclass(frozen=True, kw_only=True)
class History:
    """What one workload did from `start` for `len(arrivals)` steps of `step` seconds.

    Arrays have one value per step; NaN where Prometheus had no sample for that step.
    `ttft_counts[i, j]` is how many requests finished prefill in step i with TTFT <= `ttft_buckets[j]`
    and > the previous bound (the histogram's increments, de-cumulated; the last bound is +Inf).
    `sources` says which series each field came from (e.g. `{"arrivals": "vllm:request_success_total"}`).
    """

    namespace: str
    workload: str
    engine: str
    start: float
    step: float
    arrivals: np.ndarray
    prompt_tokens: float
    output_tokens: float
    replicas: np.ndarray
    running: np.ndarray
    waiting: np.ndarray
    ttft_buckets: tuple[float, ...]
    ttft_counts: np.ndarray
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Number of steps."""
        return int(self.arrivals.shape[0])

    @property
    def end(self) -> float:
        """Unix seconds just after the last step."""
        return self.start + self.steps * self.step

    @property
    def requests(self) -> int:
        """Requests that arrived over the window."""
        return int(np.nansum(self.arrivals))

    @property
    def peak_rps(self) -> float:
        """The highest per-step arrival rate (requests/s)."""
        return float(np.nanmax(self.arrivals) / self.step) if self.steps else 0.0

    def per_second(self, seed: int) -> np.ndarray:
        """Arrival counts per second (int64) for the simulator: each step's count spread over its
        seconds at random (multinomial, seeded), so the total per step is kept exactly."""
        rng = np.random.default_rng(seed)
        width = max(1, round(self.step))
        counts = np.nan_to_num(self.arrivals, nan=0.0)
        whole = np.floor(counts).astype(np.int64)
        whole += (rng.random(whole.shape[0]) < counts - whole).astype(np.int64)
        out = np.zeros((whole.shape[0], width), dtype=np.int64)
        for i in np.flatnonzero(whole):
            out[i] = rng.multinomial(int(whole[i]), [1.0 / width] * width)
        return out.reshape(-1)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (`--save-history`); NaN written as null."""

        def arr(a: np.ndarray) -> list[Any]:
            return [None if isinstance(v, float) and np.isnan(v) else v for v in a.tolist()]

        return {
            "kind": HISTORY_KIND,
            "apiVersion": "gpuscale/v1",
            "namespace": self.namespace,
            "workload": self.workload,
            "engine": self.engine,
            "start": self.start,
            "step": self.step,
            "promptTokens": self.prompt_tokens,
            "outputTokens": self.output_tokens,
            "arrivals": arr(self.arrivals),
            "replicas": arr(self.replicas),
            "running": arr(self.running),
            "waiting": arr(self.waiting),
            "ttftBuckets": [("+Inf" if np.isinf(b) else b) for b in self.ttft_buckets],
            "ttftCounts": [arr(row) for row in self.ttft_counts],
            "sources": dict(self.sources),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "history") -> History:
        """Read what `to_json` wrote; a malformed document raises InputError naming the field."""
        if not isinstance(data, Mapping) or data.get("kind") != HISTORY_KIND:
            raise InputError(
                f"{where}: not a {HISTORY_KIND} document (write one with `tune --save-history FILE`)"
            )

        def arr(key: str) -> np.ndarray:
            try:
                return np.array([np.nan if v is None else float(v) for v in data[key]], dtype=float)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{where}: field {key!r} must be a list of numbers or nulls") from exc

        try:
            buckets = tuple(float("inf") if b == "+Inf" else float(b) for b in data["ttftBuckets"])
            rows = data["ttftCounts"]
            counts = np.array(
                [[np.nan if v is None else float(v) for v in row] for row in rows], dtype=float
            ).reshape(len(rows), len(buckets))
            history = cls(
                namespace=str(data["namespace"]),
                workload=str(data["workload"]),
                engine=str(data["engine"]),
                start=float(data["start"]),
                step=float(data["step"]),
                arrivals=arr("arrivals"),
                prompt_tokens=float(data["promptTokens"]),
                output_tokens=float(data["outputTokens"]),
                replicas=arr("replicas"),
                running=arr("running"),
                waiting=arr("waiting"),
                ttft_buckets=buckets,
                ttft_counts=counts,
                sources={str(k): str(v) for k, v in dict(data.get("sources") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{where}: malformed {HISTORY_KIND} ({exc}); write it again with --save-history"
            ) from exc
        n = history.steps
        if (
            history.step <= 0
            or any(a.shape[0] != n for a in (history.replicas, history.running, history.waiting))
            or history.ttft_counts.shape[0] != n
        ):
            raise InputError(f"{where}: the per-step arrays differ in length or the step is not positive")
        return history

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a `--save-history` file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read history ({exc})") from exc
        return cls.from_json(data, str(path))
