"""Benchmark: `simulate`, 30 days at 1 s resolution, 4 policies (DESIGN §5 budget: <= 2 s CPU, whole process).

Prints each figure beside its budget, and whether each scenario's results equal the checked-in
30-day golden outputs (`benchmarks/sim_golden_30d.json`; `--write-golden` rewrites them after a
deliberate behaviour change). Run: .venv/bin/python benchmarks/bench_simulate.py
`--process` also times the whole `kubectl-gpuscale simulate ... -o json` process per scenario.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kubectl_gpuscale import sim

BUDGET_S = 2.0
POLICIES = "always-on,cpu-hpa,keda,knative"
SCENARIOS = (("business-hours", None), ("diurnal", None), ("constant", 50.0), ("dev", None), ("spiky", None))
GOLDEN = Path(__file__).with_name("sim_golden_30d.json")


def bench(pattern: str, rps: float | None) -> tuple[float, float, float, int, list[dict[str, object]]]:
    controllers = [sim.build_controller(p) for p in sim.parse_policies(POLICIES)]
    s = sim.Simulation(sim.pattern(pattern, rps), sim.engine_profile("8b"), sim.coldstart_profile("8b-warm"),
                       controllers, 30 * 86400, seed=1)
    t0, c0 = time.perf_counter(), time.process_time()
    results = s.run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # process peak RSS so far (MiB)
    return elapsed, cpu, peak, sum(r.scale_events for r in results), [r.to_dict() for r in results]


def process_cpu(pattern: str, rps: float | None) -> float:
    """User + system CPU seconds of a whole `kubectl-gpuscale simulate ... -o json` process."""
    exe = shutil.which("kubectl-gpuscale") or str(Path(sys.executable).with_name("kubectl-gpuscale"))
    args = [exe, "simulate", "--pattern", pattern, "--duration", "30d", "--policy", POLICIES, "--seed", "1",
            "-o", "json"] + (["--rps", f"{rps:g}"] if rps else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    write = "--write-golden" in sys.argv
    whole = "--process" in sys.argv
    golden = {} if write or not GOLDEN.exists() else json.loads(GOLDEN.read_text())
    sim.Simulation(sim.pattern("constant", 1.0), sim.engine_profile("8b"), sim.coldstart_profile("8b-warm"),
                   [sim.build_controller(p) for p in sim.parse_policies(POLICIES)], 3600).run()   # warm-up
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
    print(f"{'scenario (30 d x 1 s, ' + POLICIES + ')':<44} {'wall s':>7} {'cpu s':>6} "
          + (f"{'process':>8} " if whole else "") + f"{'budget':>7} {'max RSS MiB':>11} {'events':>7}  golden")
    for pattern, rps in SCENARIOS:
        elapsed, cpu, peak, events, results = bench(pattern, rps)
        key = pattern if rps is None else f"{pattern}-{rps:g}"
        if write:
            golden[key] = results
            same = "written"
        else:
            same = "same" if golden.get(key) == results else ("DIFFERENT" if key in golden else "none")
        shown = process_cpu(pattern, rps) if whole else cpu
        flag = "ok" if shown <= BUDGET_S else "OVER"
        proc = f"{shown:8.2f} " if whole else ""
        print(f"{key:<44} {elapsed:7.2f} {cpu:6.2f} {proc}{BUDGET_S:7.1f} {peak:11.1f} {events:7d}  {same}  {flag}")
    if write:
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
