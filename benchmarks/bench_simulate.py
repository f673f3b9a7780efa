"""Benchmark: `simulate`, 30 days at 1 s resolution, 4 policies (DESIGN §5 budget: <= 2 s CPU, whole process).

Prints each scenario's CPU (in-process, and of the whole `kubectl-gpuscale simulate ... -o json`
process, which the budget is about) beside the budget, and whether its results equal the checked-in
30-day golden outputs (`benchmarks/sim_golden_30d.json`; `--write-golden` rewrites them after a
deliberate behaviour change). Then the `tune` case (DESIGN §5: >= 40 candidates x 2 variants over 7
days in <= 30 s): one `Simulation` of 40 KEDA/Knative controllers over a 7-day per-second `Trace`.
Policies whose controller has a compiled twin run in the numba kernel (sim/kernel.py): the module built
ahead of time ("ahead-of-time", no numba import), else numba's JIT ("compiled"); the others on the Python
path. The first line says which (GPUSCALE_SIM_AOT=0 benchmarks the JIT, GPUSCALE_SIM_KERNEL=0 the Python
path alone).
Run: .venv/bin/python benchmarks/bench_simulate.py [--in-process-only] [--no-tune]
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

import numpy as np

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim import kernel

BUDGET_S = 2.0
TUNE_BUDGET_S = 30.0
TUNE_RUNS = 160  # candidates x traffic variants that one `tune` simulates (issue 18)
POLICIES = "always-on,cpu-hpa,keda,knative"
SCENARIOS = (("business-hours", None), ("diurnal", None), ("constant", 50.0), ("dev", None), ("spiky", None))
GOLDEN = Path(__file__).with_name("sim_golden_30d.json")


def bench(pattern: str, rps: float | None) -> tuple[float, float, float, int, list[dict[str, object]]]:
    controllers = [sim.build_controller(p) for p in sim.parse_policies(POLICIES)]
    s = sim.Simulation(
        sim.pattern(pattern, rps),
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        controllers,
        30 * 86400,
        seed=1,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    results = s.run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS so far (MiB)
    return elapsed, cpu, peak, sum(r.scale_events for r in results), [r.to_dict() for r in results]


def process_cpu(pattern: str, rps: float | None) -> float:
    """User + system CPU seconds of a whole `kubectl-gpuscale simulate ... -o json` process."""
    exe = shutil.which("kubectl-gpuscale") or str(Path(sys.executable).with_name("kubectl-gpuscale"))
    args = [
        exe,
        "simulate",
        "--pattern",
        pattern,
        "--duration",
        "30d",
        "--policy",
        POLICIES,
        "--seed",
        "1",
        "-o",
        "json",
    ] + (["--rps", f"{rps:g}"] if rps else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tune_candidates() -> list[str]:
    """40 policies of the kind `tune` searches: KEDA and Knative with varied thresholds, minimums, windows."""
    out = []
    for threshold in (2, 3, 5, 8, 12):
        for low in (0, 1):
            for cooldown in (60, 300):
                zero = ":metric=concurrency:http=true" if low == 0 else ""
                out.append(f"keda:threshold={threshold}:min={low}:cooldown={cooldown}:max=8{zero}")
    for target in (5, 8, 10, 15, 20):
        for low in (0, 1):
            for window in ("30s", "60s"):
                out.append(f"knative:target={target}:min={low}:window={window}:max=8")
    return out


def bench_tune(days: int = 7) -> tuple[int, float, float, int]:
    """(controllers, wall s, CPU s, scale events) of one Simulation of the tune candidates over a diurnal Trace."""
    counts = np.random.default_rng(7).poisson(sim.pattern("diurnal").rate(np.arange(days * 86400)))
    trace = sim.Trace(counts.astype(np.float64), 512.0, 256.0, int(counts.sum()), name="diurnal-7d")
    t0, c0 = time.perf_counter(), time.process_time()
    controllers = [sim.build_controller(p) for p in sim.parse_policies(",".join(tune_candidates()))]
    results = sim.Simulation(
        trace, sim.engine_profile("8b"), sim.coldstart_profile("8b-warm"), controllers, days * 86400, seed=1
    ).run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(controllers), elapsed, cpu, sum(r.scale_events for r in results)


def main() -> None:
    write = "--write-golden" in sys.argv
    whole = "--in-process-only" not in sys.argv
    golden = {} if write or not GOLDEN.exists() else json.loads(GOLDEN.read_text())
    sim.Simulation(
        sim.pattern("constant", 1.0),
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        [sim.build_controller(p) for p in sim.parse_policies(POLICIES)],
        3600,
    ).run()  # warm-up
    paths = sim.Simulation(
        sim.pattern("constant", 1.0),
        sim.engine_profile("8b"),
        sim.coldstart_profile("8b-warm"),
        [sim.build_controller(p) for p in sim.parse_policies(POLICIES)],
        60,
    ).runs
    tier = kernel.tier()  # "ahead-of-time", "compiled" (numba's JIT) or "Python"
    print(
        "simulator path (GPUSCALE_SIM_AOT=0 for numba's JIT, GPUSCALE_SIM_KERNEL=0 for the Python reference): "
        + ", ".join(f"{r.ctl.name} {tier if type(r).__name__ == 'KernelRun' else 'Python'}" for r in paths)
    )
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    )
    print(
        f"{'scenario (30 d x 1 s, ' + POLICIES + ')':<44} {'wall s':>7} {'cpu s':>6} "
        + (f"{'process':>8} " if whole else "")
        + f"{'budget':>7} {'max RSS MiB':>11} {'events':>7}  golden"
    )
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
        print(
            f"{key:<44} {elapsed:7.2f} {cpu:6.2f} {proc}{BUDGET_S:7.1f} {peak:11.1f} {events:7d}  {same}  {flag}"
        )
    if write:
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    if "--no-tune" not in sys.argv:
        n, elapsed, cpu, events = bench_tune()
        total = cpu * TUNE_RUNS / n
        flag = "ok" if total <= TUNE_BUDGET_S else "OVER"
        print(
            f"tune case: {n} KEDA/Knative controllers in one Simulation, 7 d diurnal Trace x 1 s: wall {elapsed:.2f} s, "
            f"cpu {cpu:.2f} s, {events} events; x{TUNE_RUNS // n} for {TUNE_RUNS} runs = {total:.1f} s CPU "
            f"(budget {TUNE_BUDGET_S:.0f} s on 2 cores)  {flag}"
        )


if __name__ == "__main__":
    main()
