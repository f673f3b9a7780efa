"""Benchmark: `migrate-hpa -f` converting 1,000 HPAs with their workloads from one file (budget <= 1.5 s).

Builds the file from the real sample pair (hpa_k8s-examples_1 + deploy_k8s-examples_1), renamed
1,000 times, then times load + convert + YAML rendering in-process (best of 3), and the whole
command as a subprocess once.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT.parent / "shared" / "samples" / "manifests"
BUDGET_S = 1.5
COUNT = 1000


def build(path: Path) -> None:
    hpa = yaml.safe_load((SAMPLES / "hpa_k8s-examples_1.yaml").read_text())
    deploy = yaml.safe_load((SAMPLES / "deploy_k8s-examples_1.yaml").read_text())
    docs = []
    for i in range(COUNT):
        h = yaml.safe_load(yaml.safe_dump(hpa))
        d = yaml.safe_load(yaml.safe_dump(deploy))
        h["metadata"].update(name=f"hpa-{i}", namespace=f"ns-{i % 20}")
        h["spec"]["scaleTargetRef"]["name"] = f"vllm-{i}"
        d["metadata"].update(name=f"vllm-{i}", namespace=f"ns-{i % 20}")
        docs += [h, d]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def main() -> None:
    from click.testing import CliRunner

    from kubectl_gpuscale.autoscale.convert import Options, convert_all
    from kubectl_gpuscale.cli.root import cli
    from kubectl_gpuscale.manifests import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hpas.yaml"
        build(path)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            out = CliRunner().invoke(cli, ["migrate-hpa", "-f", str(path), "-o", "yaml"])
            best = min(best, time.perf_counter() - start)
            assert out.exit_code == 0, out.output
        results = convert_all([item.obj for item in load([str(path)])], Options())
        assert sum(r.ok for r in results) == COUNT
        exe = Path(sys.executable).parent / "kubectl-gpuscale"
        start = time.perf_counter()
        proc = subprocess.run([str(exe), "migrate-hpa", "-f", str(path), "-o", "yaml"], capture_output=True)
        whole = time.perf_counter() - start
        assert proc.returncode == 0, proc.stderr
    verdict = "ok" if best <= BUDGET_S else "OVER BUDGET"
    print(f"migrate-hpa -f, {COUNT} HPAs + workloads (the command in-process: load+convert+yaml, best of 3): "
          f"{best:.3f} s  (budget <= {BUDGET_S} s: {verdict})")
    print(f"migrate-hpa -f, {COUNT} HPAs + workloads, whole process (subprocess, once): {whole:.3f} s")


if __name__ == "__main__":
    main()
