"""The simulation: policies' behaviour, conservation, determinism, the fast path against tick-by-tick."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.coldstart.model import Phase, Timeline, timeline_to_dict
from kubectl_gpuscale.errors import InputError
from kubectl_gpuscale.sim.seedcost import CLAIMS, run_seed_cost_model

E8 = sim.engine_profile("8b")
WARM = sim.coldstart_profile("8b-warm")


def make(policies: str, traffic, duration: int, seed: int = 3, fast: bool = True, **kw) -> sim.Simulation:
    return sim.Simulation(
        traffic,
        E8,
        WARM,
        [sim.build_controller(p) for p in sim.parse_policies(policies)],
        duration,
        seed,
        fast=fast,
        **kw,
    )


def trace_at(*times: float) -> sim.Trace:
    return sim.parse_trace("".join(f"{t},512,256\n" for t in times))


def test_capacity_preset_matches_its_source_figures():
    # 512 prompt + 256 output tokens: 1/(512/25000 + 256/12500) requests/s
    assert E8.throughput(512, 256) == pytest.approx(24.41, rel=1e-3)
    assert "docs.nvidia.com/nim" in E8.source
    assert sim.coldstart_profile("8b-warm").total == 25 and sim.coldstart_profile("70b-warm").total == 85
    assert 300 <= sim.coldstart_profile("8b-uncached").total <= 420
    assert 360 <= sim.coldstart_profile("70b-uncached").total <= 480
    assert sim.coldstart_profile("criu").total < 5


@pytest.mark.parametrize(
    "policies,pattern,rps,seconds",
    [
        ("always-on:n=2,cpu-hpa", "step", 40.0, 3600),
        ("keda", "spiky", 60.0, 4 * 3600),
        ("keda", "constant", 50.0, 3 * 3600),
        # an HPA without spec.behavior: a higher recommendation in the window scales up by itself, and the
        # first sync's recordInitialRecommendation holds scale-downs (both must be seen by the fast path)
        ("keda", "diurnal", 30.0, 86400),
        ("keda:outage=3600-9000:fallback=4:keda-version=2.16", "diurnal", 30.0, 4 * 3600),
        ("keda:down-window=60:down-pods=1:down-period=60:cron=1-2x2", "diurnal", 60.0, 6 * 3600),
        ("keda-zero", "dev", 3000.0, 86400),
        ("knative:target=50", "step", 60.0, 3600),
        ("knative", "dev", 2000.0, 86400),
        ("knative:initial-scale=2:retention=120s:activation-scale=2", "dev", 2000.0, 86400),
        ("knative:initial=3:reachable=false:delay=30s", "spiky", 30.0, 6 * 3600),
        ("knative:metric=rps:target=5:max=10", "spiky", 30.0, 6 * 3600),
        ("gpu-hpa:max=4", "diurnal", 60.0, 6 * 3600),
    ],
)
def test_fast_path_equals_tick_by_tick(policies, pattern, rps, seconds):
    # the Python path's scans (the kernel decides every tick: tests/test_sim_kernel.py compares the two)
    fast = make(policies, sim.pattern(pattern, rps), seconds, kernel=False).run()
    slow = make(policies, sim.pattern(pattern, rps), seconds, fast=False, kernel=False).run()
    assert [r.to_dict() for r in fast] == [r.to_dict() for r in slow]
    assert sum(r.scale_events for r in fast) > 0 or policies.startswith("always-on")


def test_fast_path_sees_the_activation_timeout():
    """kpa/scaler.go handleScaleToZero: a revision still activating after progress-deadline + 10 s with
    nothing to serve scales to zero. Here the held requests time out (10 s client timeout), the 6 s window
    empties, and the activation (5 s + 10 s) times out before the 25 s cold start: the scan must flag it."""
    policy = "knative:progress-deadline=5s:window=6s"
    trace = trace_at(*(600.0 * k + j for k in range(6) for j in range(3)))
    fast = make(policy, trace, 3600, timeout=10.0, kernel=False)
    slow = make(policy, trace, 3600, timeout=10.0, fast=False, kernel=False)
    assert [r.to_dict() for r in fast.run()] == [r.to_dict() for r in slow.run()]
    events = list(fast.runs[0].events)
    timed_out = [
        b for a, b in itertools.pairwise(events) if a.new == 1 and b.new == 0 and b.time - a.time < 25
    ]
    assert len(timed_out) == 6, events


def test_requests_are_conserved():
    s = make("always-on,keda,keda-zero,knative", sim.pattern("spiky", 45.0), 6 * 3600)
    for run, r in zip(s.runs, s.run(), strict=True):
        in_system = run.q + float(run.pending_n.sum())
        assert r.requests == pytest.approx(r.served + r.timed_out + r.dropped + in_system, abs=2)


def test_littles_law_on_a_steady_overload():
    # one replica at 30 req/s: the queue sits at the patience barrier, every served request waits ~timeout
    s = make("always-on", sim.pattern("constant", 30.0), 3600, timeout=60.0)
    r = s.run()[0]
    mu = E8.throughput(512, 256)
    assert r.served / 3600 == pytest.approx(mu, rel=0.02)
    waiting = s.runs[0].q
    # L = lambda W for the queue: W = L / throughput ~ patience
    assert waiting / mu == pytest.approx(60.0 - E8.prefill_seconds(512), rel=0.02)
    assert r.timed_out / r.requests == pytest.approx(1 - mu / 30.0, abs=0.02)


def test_same_seed_same_result_other_seed_differs():
    a = make("keda,knative", sim.pattern("spiky", 40.0), 3 * 3600, seed=7).run()
    b = make("keda,knative", sim.pattern("spiky", 40.0), 3 * 3600, seed=7).run()
    c = make("keda,knative", sim.pattern("spiky", 40.0), 3 * 3600, seed=8).run()
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    assert [x.requests for x in a] != [x.requests for x in c]


def test_stepping_gives_the_same_result_as_one_run():
    whole = make("keda,knative", sim.pattern("spiky", 40.0), 7200).run()
    stepped = make("keda,knative", sim.pattern("spiky", 40.0), 7200)
    while not stepped.done:
        stepped.advance(137)
    assert [r.to_dict() for r in stepped.results()] == [r.to_dict() for r in whole]


def test_cpu_hpa_never_fires_on_gpu_pods():
    s = make("cpu-hpa", sim.pattern("constant", 60.0), 2 * 3600)
    states = s.advance(3600)
    assert states[0].cpu_util_pct < 10 and states[0].gpu_util_pct == 100 and states[0].waiting > 100
    r = s.run()[0]
    assert r.scale_events == 0 and r.max_replicas == 1
    assert r.timed_out > r.requests / 2


def test_keda_activates_from_zero_through_the_http_add_on():
    s = make("keda-zero", trace_at(0, 1), 2000)  # a trace starts at its first request
    assert s.advance(10)[0].desired == 0
    st = s.advance(10)[0]  # the poll at 15 s sees the interceptor's 2 requests
    assert st.desired == 1 and st.events[-1].reason == "activated" and st.events[-1].time == 15
    assert not st.pods[0].ready and st.pods[0].phase == "weight_load"
    s.advance(40)
    r = s.results()[0]
    assert r.served == 2 and r.timed_out == 0
    assert 38 <= r.ttft_p50 <= 42  # waited for the poll (15 s) and the 25 s cold start
    s.run()
    last = s.states()[0]
    assert last.desired == 0 and last.events[-1].reason.startswith("cooldown")


def test_keda_at_zero_without_http_add_on_never_activates():
    # a Prometheus queue metric reads 0 when there are no pods: KEDA min 0 never wakes up
    r = make("keda:min=0", trace_at(*range(100, 200)), 1000).run()[0]
    assert r.scale_events == 0 and r.dropped == 100 and r.served == 0


def test_keda_cron_floor_and_fallback():
    # cron floor 3 from 09:00; Prometheus down 1h..2h with fallback 4
    s = make("keda:cron=9-17x3:outage=3600-7200:fallback=4", sim.pattern("constant", 5.0), 10 * 3600)
    # fallback.go GetMetricsWithFallback counts every failed fetch, the operator's poll and the
    # HPA's alike, and falls back once the count is strictly above failureThreshold (3): the
    # fetches at 3600 (poll, HPA) make 2, the poll at 3615 makes 3, the HPA's read at 3615 the 4th
    s.advance(3600 + 10)
    assert s.states()[0].desired == 1
    s.advance(10)
    assert s.states()[0].desired == 4 and "fallback" in s.states()[0].events[-1].reason
    s.advance(9 * 3600 - s.time + 60)
    assert s.states()[0].desired == 3


@pytest.mark.parametrize("kernel", [False, True])
def test_knative_panics_on_a_load_step(kernel):
    """On the Python path the controller's own panic state is visible; the kernel reports it in the event."""
    s = make("knative:target=50:max=20:initial=1", sim.pattern("step", 60.0), 1800, kernel=kernel)
    s.advance(600)
    before = s.states()[0].desired
    ctl = s.runs[0].ctl
    assert ctl.panic_time is None
    s.advance(10)
    after = s.states()[0]
    assert (kernel or ctl.panic_time is not None) and after.desired >= 2 * before
    assert "panic" in after.events[-1].reason
    # no scale-down while panicking
    seen = [s.advance(2)[0].desired for _ in range(20)]
    assert seen == sorted(seen)


def test_knative_scales_to_zero_after_window_and_grace():
    s = make("knative:grace=30", trace_at(0), 400)
    s.run()
    events = s.states()[0].events
    assert [e.new for e in events] == [1, 0]
    assert events[0].time <= 2 and events[1].time >= 25 + 60 + 30


def test_trace_parsing_and_errors():
    t = sim.parse_trace(
        "timestamp,prompt_tokens,output_tokens\n2026-05-07T10:00:00Z,100,10\n2026-05-07T10:00:02.5Z,300,30\n"
    )
    assert t.requests == 2 and list(t.counts) == [1, 0, 1] and t.prompt_tokens == 200
    with pytest.raises(InputError, match="line 2"):
        sim.parse_trace("0,1,1\n1,2\n")
    with pytest.raises(InputError, match="line 1"):
        sim.parse_trace("yesterday,1,1\n")
    with pytest.raises(InputError, match="no requests"):
        sim.parse_trace("timestamp,prompt,output\n")


def test_coldstart_json_from_the_coldstart_command_and_plain_form():
    tl = Timeline(
        phases=(Phase("image_pull", 200.0), Phase("weight_load", 40.0)), total_seconds=250.0, pod="vllm-0"
    )
    prof = sim.coldstart_from_json(json.dumps(timeline_to_dict(tl)))
    assert prof.total == pytest.approx(250.0) and prof.phases[-1][0] == "unattributed"
    listed = sim.coldstart_from_json(json.dumps({"kind": "List", "items": [timeline_to_dict(tl)]}))
    assert listed.total == pytest.approx(250.0)
    plain = sim.coldstart_from_json('{"phases": [{"name": "restore", "seconds": 4}]}')
    assert plain.total == 4 and plain.phase_at(2.0) == ("restore", 0.5)
    for bad in ("{", '{"phases": 3}', '{"phases": [{"name": "x"}]}', '{"phases": []}'):
        with pytest.raises(InputError):
            sim.coldstart_from_json(bad)


def test_guide_cost_claims_as_the_model_computes_them():
    cells = {(c.pattern, c.setup): c for c in run_seed_cost_model(duration=86400, seed=1)}
    assert set(cells) == set(CLAIMS)
    # $3,222/mo for one always-on H100 at $4.41: holds (4.41 x 730.5 h)
    for p in ("constant-50rps", "burst-9-to-5", "dev-endpoint"):
        assert cells[(p, "reserved")].result.cost_per_month == pytest.approx(3221.5, abs=1)
        assert cells[(p, "reserved")].verdict == "agrees"
    # one 8B H100 replica cannot carry 50 req/s of 512/256-token requests (~24 req/s): the reserved
    # replica misses the SLO, and KEDA needs several replicas, so "no idle savings at $3,222" does not hold
    assert cells[("constant-50rps", "reserved")].result.slo_attainment_pct < 50
    assert cells[("constant-50rps", "keda")].result.cost_per_month > 1.5 * 3222
    # with minReplicaCount 1 KEDA can never cost less than one reserved replica: ~50 % and ~90 % savings fail
    assert cells[("burst-9-to-5", "keda")].result.cost_per_month >= 3221
    assert cells[("dev-endpoint", "keda")].verdict.startswith("disagrees")
    # Knative to zero for the dev endpoint: each lonely request keeps a GPU ~25 s cold start + 60 s window
    # + 30 s grace, so it costs far more than ~$50/mo, and most requests wait for a cold start
    dev = cells[("dev-endpoint", "knative")].result
    assert dev.cost_per_month > 50 * 1.25 and dev.slo_attainment_pct < 80 and dev.time_at_zero_s > 0
    assert np.isfinite(dev.cost)
