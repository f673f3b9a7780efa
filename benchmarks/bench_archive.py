"""Start-up of the krew archive: its `--help` beside the pip install's and `kubectl version --client`.

The archive (scripts/build_release.py build) is unpacked into a temporary directory, as krew
does, and its executable run directly, with no Python on PATH. Budget (DESIGN §5): `--help`
≤ 2x `kubectl version --client`. Uses hyperfine when it is on PATH (Debian package
`hyperfine`, one command after the other), else or with --loop an interleaved timing loop (the
three take turns, fairer on a busy shared machine); medians either way. Skips (exit 0) when no archive is built.

Run: .venv/bin/python benchmarks/bench_archive.py [--archive PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
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
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), platform.machine()
    )
    return ROOT / "dist" / f"kubectl-gpuscale_v{version}_{platform.system().lower()}_{arch}.tar.gz"


def _interleaved_medians(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall and CPU (user + sys) seconds, the commands taking turns so load swings hit all alike."""
    wall: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    for round_ in range(runs + 1):  # round 0 warms the page cache
        for label, argv in commands.items():
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            elapsed, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_:
                wall[label].append(elapsed)
                cpu[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {label: statistics.median(wall[label]) for label in commands} | {
        f"{label}_cpu": statistics.median(cpu[label]) for label in commands
    }


def _hyperfine_medians(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            "hyperfine",
            "-N",
            "--warmup",
            "3",
            "--runs",
            str(runs),
            "--export-json",
            out.name,
            "--style",
            "none",
        ]
        argv += [" ".join(cmd) for cmd in commands.values()]
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        results = json.loads(Path(out.name).read_text())["results"]
    return {label: r["median"] for label, r in zip(commands, results, strict=True)} | {
        f"{label}_cpu": r["user"] + r["system"] for label, r in zip(commands, results, strict=True)
    }


def measure(
    archive: Path, runs: int, use_hyperfine: bool, baselines: list[Path] | None = None
) -> dict[str, float]:
    """Median seconds of the archive's `--help`, the pip install's `--help` and `kubectl version --client`
    (and other archives' `--help`, keyed by file name, to compare builds)."""
    kubectl = str(BIN / "kubectl") if (BIN / "kubectl").exists() else shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("kubectl not found: run ./scripts/setup-test-env.sh")
    with tempfile.TemporaryDirectory() as tmp:
        others = {path.name: path for path in baselines or []}
        for label, path in {"archive": archive, **others}.items():
            with tarfile.open(path) as tar:
                tar.extractall(Path(tmp) / label, filter="tar")
        commands = {
            "archive": [str(Path(tmp) / "archive" / "kubectl-gpuscale"), "--help"],
            "pip": [str(BIN / "kubectl-gpuscale"), "--help"],
            "kubectl": [kubectl, "version", "--client"],
        }
        for label in others:
            commands[label] = [str(Path(tmp) / label / "kubectl-gpuscale"), "--help"]
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8"}  # no Python of ours on PATH
        if use_hyperfine:
            return _hyperfine_medians(commands, env, runs)
        return _interleaved_medians(commands, env, runs)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", type=Path, default=default_archive())
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another archive whose --help is timed alongside (repeatable)",
    )
    parser.add_argument(
        "--loop", action="store_true", help="interleaved timing loop even when hyperfine is on PATH"
    )
    args = parser.parse_args()
    use_hyperfine = bool(shutil.which("hyperfine")) and not args.loop
    if not args.archive.exists():
        print(f"archive start-up: skipped, {args.archive.name} not built (scripts/build_release.py build)")
        return 0
    m = measure(args.archive, args.runs, use_hyperfine, args.baseline)
    ratio = m["archive"] / m["kubectl"]
    ok = ratio <= BUDGET_RATIO
    print(
        f"archive start-up: archive --help {m['archive'] * 1000:.0f} ms, pip install --help {m['pip'] * 1000:.0f} ms, "
        f"kubectl version --client {m['kubectl'] * 1000:.0f} ms, archive/kubectl {ratio:.2f}x "
        f"(budget <= {BUDGET_RATIO:.1f}x)  {'OK' if ok else 'OVER BUDGET'}"
        f"  [{'hyperfine' if use_hyperfine else 'interleaved loop'}, median of {args.runs}]"
    )
    for other in args.baseline:
        cpu = f", CPU {m[other.name + '_cpu'] * 1000:.0f} ms" if other.name + "_cpu" in m else ""
        print(
            f"archive start-up: {other.name} --help {m[other.name] * 1000:.0f} ms{cpu} "
            f"({m[other.name] / m['kubectl']:.2f}x kubectl)"
        )
    if "archive_cpu" in m:  # wall time on a busy machine swings; CPU time (user + sys) less so
        print(
            f"archive start-up CPU: archive {m['archive_cpu'] * 1000:.0f} ms, pip install {m['pip_cpu'] * 1000:.0f} ms, "
            f"kubectl {m['kubectl_cpu'] * 1000:.0f} ms"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
