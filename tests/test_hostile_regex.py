"""Hostile text reaches these patterns (pod logs, kubelet and API answers, object fields): each must
read a long line in time linear in its length. Before the fix each input here took seconds to hours
(nested `.*` scans, or a `findall` restarting at every digit); a linear read takes milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from kubectl_gpuscale.checkpoint.diagnose import kubelet_forbidden_user
from kubectl_gpuscale.coldstart.logs import scan
from kubectl_gpuscale.units import duration_seconds

T = TypeVar("T")
BUDGET_S = 1.0  # CPU for a 200 kB line: the quadratic reads took minutes


def _cpu(call: Callable[[Any], T], arg: Any) -> tuple[float, T]:
    start = time.process_time()
    result = call(arg)
    return time.process_time() - start, result


@pytest.mark.parametrize(
    "line",
    [
        "[2025-11-30 12:50:10] Load weight end." + " elapsed=1 s" * 20_000,
        "[2025-11-30 12:50:10] max_total_num_tokens=" + "1" * 200_000,
    ],
    ids=["sglang-load-weight-end", "sglang-max-total-num-tokens"],
)
def test_a_long_sglang_line_is_read_in_linear_time(line: str) -> None:
    seconds, _ = _cpu(scan, [line])
    assert seconds < BUDGET_S


def test_the_sglang_lines_still_read_their_figures() -> None:
    s = scan(
        [
            "[2026-01-15 13:56:49 TP0] Load weight end. elapsed=12.5 s, type=X, avail mem=29.92 GB, mem usage=30.67 GB.",
            "[2026-01-15 13:56:49 TP1] Load weight end. type=X, dtype=torch.bfloat16, avail mem=29.86 GB, mem usage=30.6 GB.",
            "[2026-01-15 13:56:50 TP0] max_total_num_tokens=834615, chunked_prefill_size=8192, max_running_requests=4096",
        ]
    )
    assert [m.values["groups"] for m in s.marks["sg_load_end"]] == [("12.5", "30.67"), (None, "30.6")]  # type: ignore[index]
    assert s.marks["sg_capacity"][0].values["groups"] == ("834615", "4096")  # type: ignore[index]


def test_a_long_kubelet_answer_is_read_in_linear_time() -> None:
    body = "Forbidden " + " user=x" * 30_000
    seconds, user = _cpu(kubelet_forbidden_user, body)
    assert seconds < BUDGET_S and user is None
    real = "Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[checkpoint])"
    assert kubelet_forbidden_user(real) == "kube-apiserver-kubelet-client"
    other = real.replace("kube-apiserver-kubelet-client", "apiserver-kubelet").replace(
        "checkpoint]", "proxy]"
    )
    assert kubelet_forbidden_user(other) is None


def test_a_long_number_is_refused_as_a_duration_in_linear_time() -> None:
    start = time.process_time()
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("1" * 200_000 + "x")
    assert time.process_time() - start < BUDGET_S
    assert duration_seconds("1h30m") == 5400 and duration_seconds("1m2.5s") == 62.5
