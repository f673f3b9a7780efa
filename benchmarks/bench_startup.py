"""Start-up budget: `kubectl gpuscale --help` (whole process) ≤ 2x `kubectl version --client`.

Both run interleaved in the same session, several times; the medians are compared.
Run: .venv/bin/python benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BUDGET_RATIO = 2.0


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def measure(runs: int = 11) -> dict[str, float]:
    """Median seconds of both commands and their ratio."""
    kubectl = str(BIN / "kubectl") if (BIN / "kubectl").exists() else shutil.which("kubectl")
    plugin = str(BIN / "kubectl-gpuscale")
    if not kubectl:
        raise SystemExit("kubectl not found: run ./scripts/setup-test-env.sh")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    ours, theirs = [], []
    _time([plugin, "--help"], env)
    _time([kubectl, "version", "--client"], env)
    for _ in range(runs):
        ours.append(_time([plugin, "--help"], env))
        theirs.append(_time([kubectl, "version", "--client"], env))
    plugin_s, kubectl_s = statistics.median(ours), statistics.median(theirs)
    return {"plugin_help_s": plugin_s, "kubectl_version_s": kubectl_s, "ratio": plugin_s / kubectl_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    m = measure(args.runs)
    ok = m["ratio"] <= BUDGET_RATIO
    print(
        f"start-up: kubectl gpuscale --help {m['plugin_help_s'] * 1000:.0f} ms, "
        f"kubectl version --client {m['kubectl_version_s'] * 1000:.0f} ms, "
        f"ratio {m['ratio']:.2f}x  (budget <= {BUDGET_RATIO:.1f}x)  {'OK' if ok else 'OVER BUDGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
