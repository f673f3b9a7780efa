"""Benchmark: `simulate`, 30 days at 1 s resolution, 4 policies (DESIGN §5 budget: <= 2 s).

Prints each figure beside its budget. Run: .venv/bin/python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import os
import resource
import time

from kubectl_gpuscale import sim

BUDGET_S = 2.0
POLICIES = "always-on,cpu-hpa,keda,knative"


def bench(pattern: str, rps: float | None) -> tuple[float, float, float, int]:
    controllers = [sim.build_controller(p) for p in sim.parse_policies(POLICIES)]
    s = sim.Simulation(sim.pattern(pattern, rps), sim.engine_profile("8b"), sim.coldstart_profile("8b-warm"),
                       controllers, 30 * 86400, seed=1)
    t0, c0 = time.perf_counter(), time.process_time()
    results = s.run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # process peak RSS so far (MiB)
    return elapsed, cpu, peak, sum(r.scale_events for r in results)


def main() -> None:
    sim.Simulation(sim.pattern("constant", 1.0), sim.engine_profile("8b"), sim.coldstart_profile("8b-warm"),
                   [sim.build_controller(p) for p in sim.parse_policies(POLICIES)], 3600).run()   # warm-up
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
    print(f"{'scenario (30 d x 1 s, ' + POLICIES + ')':<56} {'wall s':>7} {'cpu s':>6} {'budget':>7} "
          f"{'max RSS MiB':>11} {'events':>7}")
    for pattern, rps in (("business-hours", None), ("diurnal", None), ("constant", 50.0), ("dev", None)):
        elapsed, cpu, peak, events = bench(pattern, rps)
        flag = "ok" if elapsed <= BUDGET_S else "OVER" + (" (cpu within: a loaded machine)" if cpu <= BUDGET_S else "")
        print(f"{pattern:<56} {elapsed:7.2f} {cpu:6.2f} {BUDGET_S:7.1f} {peak:11.1f} {events:7d}  {flag}")


if __name__ == "__main__":
    main()
