"""Hostile inputs of issue 15: each must answer within 5 s and 256 MiB (DESIGN §5 style budget).

Every input runs as a user runs it (`python -m kubectl_gpuscale ...` in a child process); wall time and
the child's peak resident memory (wait4) are printed beside the budget. Bombs are built in a temporary
directory by tests/hostile (not checked in). The stalled-server rows use `--request-timeout 2s`: with the
default (30 s) they answer after 30 s, by design.

Run: .venv/bin/python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import hostile
from tests.support.measure import BUDGET_BYTES, BUDGET_SECONDS, run_measured
from tests.support.stalled import kubeconfig_for, stalled_server


def cases(tmp: Path) -> list[tuple[str, Callable[[], list[str]]]]:
    """(label, a function building the input and returning the CLI arguments)."""
    corpus = hostile.HERE

    def bomb_file() -> Path:
        path = tmp / "alias-bomb.yaml"
        path.write_text(hostile.alias_bomb())
        return path

    def trace_span() -> Path:
        path = tmp / "trace.csv"
        path.write_text("0,10,10\n1e12,10,10\n")
        return path

    def deep_json() -> Path:
        path = tmp / "cold.json"
        path.write_text("[" * 100_000 + "]" * 100_000)
        return path

    inspect = ["checkpoint", "inspect"]
    return [
        (
            "inspect: sparse 8 GiB member, config.dump hard-linked",
            lambda: [*inspect, str(hostile.sparse_hardlink_archive(tmp / "sparse.tar"))],
        ),
        (
            "inspect: spec.dump symlinked to the pages",
            lambda: [*inspect, str(hostile.symlink_metadata_archive(tmp / "sym.tar"))],
        ),
        (
            "inspect: bz2 bomb (8 GiB of zeros)",
            lambda: [*inspect, str(hostile.compressed_bomb(tmp / "b.tar.bz2", "bz2"))],
        ),
        (
            "inspect: xz bomb (8 GiB of zeros)",
            lambda: [*inspect, str(hostile.compressed_bomb(tmp / "b.tar.xz", "xz"))],
        ),
        (
            "inspect: pax header claiming 1 GiB (sparse file)",
            lambda: [*inspect, str(hostile.pax_header_bomb(tmp / "pax.tar"))],
        ),
        ("inspect: 30,000 members", lambda: [*inspect, str(hostile.many_members_archive(tmp / "many.tar"))]),
        (
            "inspect: config.dump nested 200,000 deep",
            lambda: [*inspect, str(hostile.deep_json_archive(tmp / "deep.tar"))],
        ),
        (
            'inspect: spec.dump {"process": "x"}',
            lambda: [
                *inspect,
                str(hostile.metadata_archive(tmp / "shape.tar", "spec.dump", {"process": "x"})),
            ],
        ),
        ("inspect: a FIFO nobody writes", lambda: [*inspect, str(hostile.fifo(tmp / "pipe.tar"))]),
        ("inspect: /dev/zero", lambda: [*inspect, "/dev/zero"]),
        (
            "migrate-hpa -f: YAML alias bomb (840 B)",
            lambda: ["migrate-hpa", "-f", str(bomb_file()), "--dry-run=client"],
        ),
        ("doctor -f: YAML alias bomb (840 B)", lambda: ["doctor", "-f", str(bomb_file())]),
        (
            'doctor -f: containers: "c"',
            lambda: ["doctor", "-f", str(corpus / "doctor-containers-string.yaml")],
        ),
        (
            'migrate-hpa -f: metadata: "m"',
            lambda: ["migrate-hpa", "-f", str(corpus / "migrate-metadata-string.yaml"), "--dry-run=client"],
        ),
        (
            "coldstart --pod: malformed JSON",
            lambda: ["coldstart", "--pod", str(corpus / "pod-malformed.json")],
        ),
        ("simulate --trace: not UTF-8", lambda: ["simulate", "--trace", str(corpus / "not-utf8.bin")]),
        (
            "simulate --trace: 2 rows spanning 31,000 years",
            lambda: ["simulate", "--trace", str(trace_span())],
        ),
        ("simulate --rps nan", lambda: ["simulate", "--rps", "nan"]),
        (
            "simulate --cold-start: JSON nested 100,000 deep",
            lambda: ["simulate", "--cold-start", str(deep_json())],
        ),
        ("doctor -f /dev/zero", lambda: ["doctor", "-f", "/dev/zero"]),
        (
            "status --kubeconfig: not YAML",
            lambda: ["status", "--kubeconfig", str(corpus / "kubeconfig-not-yaml")],
        ),
    ]


def main() -> int:
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    )
    print(f"{'hostile input':<52} {'exit':>4} {'wall s':>7} {'budget':>6} {'peak MiB':>9} {'budget':>6}")
    over = 0
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        rows = [(label, build()) for label, build in cases(tmp)]
        with stalled_server() as port:
            config = str(kubeconfig_for(port, tmp / "kubeconfig"))
            rows += [
                (
                    f"{' '.join(cmd)}: stalled server, --request-timeout 2s",
                    [*cmd, "--kubeconfig", config, "--request-timeout", "2s"],
                )
                for cmd in (["status"], ["top", "--once"])
            ]
            for label, args in rows:
                result = run_measured(args, timeout=3 * BUDGET_SECONDS)
                ok = result.within_budget and result.code != 0
                over += not ok
                code = "kill" if result.code is None else str(result.code)
                print(
                    f"{label:<52} {code:>4} {result.seconds:7.2f} {BUDGET_SECONDS:6.1f} "
                    f"{result.peak_bytes / 2**20:9.1f} {BUDGET_BYTES >> 20:6d}  {'ok' if ok else 'OVER'}"
                )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
