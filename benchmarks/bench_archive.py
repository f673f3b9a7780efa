"""Start-up of the krew archive: its `--help` beside the pip install's and `kubectl version --client`.

The archive (scripts/build_release.py build) is unpacked into a temporary directory, as krew
does, and its executable run directly, with no Python on PATH. Budget (DESIGN §5): `--help`
≤ 2x `kubectl version --client`. Uses hyperfine when it is on PATH (Debian package
`hyperfine`), else a timing loop; medians either way. Skips (exit 0) when no archive is built.

Run: .venv/bin/python benchmarks/bench_archive.py [--archive PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BUDGET_RATIO = 2.0


def default_archive() -> Path:
    """This machine's archive in dist/, named as scripts/build_release.py names it."""
    text = (ROOT / "kubectl_gpuscale" / "__init__.py").read_text()
    version = next(line.split('"')[1] for line in text.splitlines() if line.startswith("__version__"))
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return ROOT / "dist" / f"kubectl-gpuscale_v{version}_{platform.system().lower()}_{arch}.tar.gz"


def _loop_median(argv: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _hyperfine_medians(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", out.name, "--style", "none"]
        argv += [" ".join(cmd) for cmd in commands.values()]
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        results = json.loads(Path(out.name).read_text())["results"]
    return {label: r["median"] for label, r in zip(commands, results, strict=True)} | {
        f"{label}_cpu": r["user"] + r["system"] for label, r in zip(commands, results, strict=True)
    }


def measure(archive: Path, runs: int) -> dict[str, float]:
    """Median seconds of the archive's `--help`, the pip install's `--help` and `kubectl version --client`."""
    kubectl = str(BIN / "kubectl") if (BIN / "kubectl").exists() else shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("kubectl not found: run ./scripts/setup-test-env.sh")
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="tar")
        commands = {
            "archive": [str(Path(tmp) / "kubectl-gpuscale"), "--help"],
            "pip": [str(BIN / "kubectl-gpuscale"), "--help"],
            "kubectl": [kubectl, "version", "--client"],
        }
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8"}  # no Python of ours on PATH
        if shutil.which("hyperfine"):
            return _hyperfine_medians(commands, env, runs)
        return {label: _loop_median(cmd, env, runs) for label, cmd in commands.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=default_archive())
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if not args.archive.exists():
        print(f"archive start-up: skipped, {args.archive.name} not built (scripts/build_release.py build)")
        return 0
    m = measure(args.archive, args.runs)
    ratio = m["archive"] / m["kubectl"]
    ok = ratio <= BUDGET_RATIO
    print(f"archive start-up: archive --help {m['archive'] * 1000:.0f} ms, pip install --help {m['pip'] * 1000:.0f} ms, "
          f"kubectl version --client {m['kubectl'] * 1000:.0f} ms, archive/kubectl {ratio:.2f}x "
          f"(budget <= {BUDGET_RATIO:.1f}x)  {'OK' if ok else 'OVER BUDGET'}"
          f"  [{'hyperfine' if shutil.which('hyperfine') else 'timing loop'}, median of {args.runs}]")
    if "archive_cpu" in m:  # wall time on a busy machine swings; CPU time (user + sys, mean) much less
        print(f"archive start-up CPU: archive {m['archive_cpu'] * 1000:.0f} ms, pip install {m['pip_cpu'] * 1000:.0f} ms, "
              f"kubectl {m['kubectl_cpu'] * 1000:.0f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
