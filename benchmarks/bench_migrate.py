"""Benchmark: `migrate-hpa -f` on 1,000 HPAs with their workloads from one file (DESIGN §5: <= 1.5 s).

The file is the real sample pair (hpa_k8s-examples_1 + deploy_k8s-examples_1) renamed 1,000 times
(2,000 documents, 1.9 MB). Measured, each against the budget:

- the whole command as a user runs it, `kubectl-gpuscale migrate-hpa -f FILE --dry-run=client -o yaml`
  in a new process (interpreter start, imports, read, convert, write 2.2 MB of YAML to a pipe);
- the same command in-process (click's CliRunner: no interpreter start or imports);
- the phases in-process: load (parse), convert, YAML rendering.

Wall time depends on what else runs on the machine, so CPU time (user+sys) is shown too, with the
load average. Usage: .venv/bin/python benchmarks/bench_migrate.py [--runs N]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT.parent / "shared" / "samples" / "manifests"
BUDGET_S = 1.5
COUNT = 1000


def build(path: Path) -> None:
    """Write COUNT HPA + Deployment pairs (20 namespaces) to `path`."""
    hpa = yaml.safe_load((SAMPLES / "hpa_k8s-examples_1.yaml").read_text())
    deploy = yaml.safe_load((SAMPLES / "deploy_k8s-examples_1.yaml").read_text())
    docs = []
    for i in range(COUNT):
        h, d = copy.deepcopy(hpa), copy.deepcopy(deploy)
        h["metadata"].update(name=f"hpa-{i}", namespace=f"ns-{i % 20}")
        h["spec"]["scaleTargetRef"]["name"] = f"vllm-{i}"
        d["metadata"].update(name=f"vllm-{i}", namespace=f"ns-{i % 20}")
        docs += [h, d]
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump_all(docs, Dumper=dumper, sort_keys=False))


def _times(
    run: Callable[[], object], runs: int, *, children: bool = False
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `runs` calls (CPU of child processes when `children`)."""
    walls, cpus = [], []
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    for _ in range(runs):
        before = resource.getrusage(who)
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(who)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def _line(label: str, walls: list[float], cpus: list[float]) -> str:
    best = min(walls)
    verdict = "ok" if best <= BUDGET_S else "OVER"
    return (
        f"{label:<34} wall best {best:6.3f} s  median {statistics.median(walls):6.3f} s   "
        f"cpu best {min(cpus):6.3f} s   budget {BUDGET_S} s: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (best and median shown)")
    runs = parser.parse_args().runs

    from click.testing import CliRunner

    from kubectl_gpuscale.autoscale.convert import Options, convert_all
    from kubectl_gpuscale.cli.output import as_list
    from kubectl_gpuscale.cli.root import cli
    from kubectl_gpuscale.manifests import dump_yaml, load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hpas.yaml"
        build(path)
        args = ["migrate-hpa", "-f", str(path), "--dry-run=client", "-o", "yaml"]
        exe = Path(sys.executable).parent / "kubectl-gpuscale"

        def whole() -> None:
            proc = subprocess.run([str(exe), *args], capture_output=True)
            assert proc.returncode == 0, proc.stderr.decode()

        def in_process() -> None:
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output

        load_avg = os.getloadavg()
        print(
            f"{COUNT} HPAs + {COUNT} Deployments, {path.stat().st_size / 1e6:.1f} MB; {os.cpu_count()} CPUs, "
            f"load average {load_avg[0]:.1f} {load_avg[1]:.1f} {load_avg[2]:.1f}; {runs} runs each"
        )
        print(f"command: kubectl-gpuscale {' '.join(args[:2])} FILE {' '.join(args[3:])}")
        print(_line("whole process (as a user runs it)", *_times(whole, runs, children=True)))
        in_process()  # warm the imports
        print(_line("in-process (CliRunner)", *_times(in_process, runs)))

        loaded = load([str(path)])
        objects = [item.obj for item in loaded]
        results = convert_all(objects, Options())
        assert sum(r.ok for r in results) == COUNT
        rendered = as_list([obj for r in results if r.ok for obj in r.objects])
        for label, phase in (
            ("  phase: load (parse YAML)", lambda: load([str(path)])),
            ("  phase: convert", lambda: convert_all(objects, Options())),
            ("  phase: render -o yaml", lambda: dump_yaml(rendered)),
        ):
            walls, cpus = _times(phase, runs)
            print(f"{label:<34} wall best {min(walls):6.3f} s   cpu best {min(cpus):6.3f} s")


if __name__ == "__main__":
    main()
