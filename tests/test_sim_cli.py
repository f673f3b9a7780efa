"""`kubectl gpuscale simulate` through click's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_gpuscale.cli import main
from kubectl_gpuscale.cli.root import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["simulate", *args])


def fail(capsys, *args: str) -> tuple[int, str]:
    """Run through `main` (the console script's error handling): exit code and stderr."""
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *args])
    err = capsys.readouterr().err
    return int(stop.value.code or 0), err


def test_json_output_has_every_policy():
    r = run("--pattern", "constant", "--rps", "5", "--duration", "1h", "-o", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [x["policy"] for x in doc["results"]] == ["always-on", "cpu-hpa", "keda", "knative"]
    assert doc["results"][0]["gpu_hours"] == 1.0 and doc["coldStart"]["seconds"] == 25


def test_table_and_plot(tmp_path):
    png = tmp_path / "sim.png"
    r = run(
        "--pattern", "spiky", "--duration", "6h", "--policy", "keda,knative:target=50", "--plot", str(png)
    )
    assert r.exit_code == 0, r.output
    assert "TTFT P50" in r.stdout and "knative:target=50" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trace_replay_and_malformed_trace(tmp_path, capsys):
    good = tmp_path / "t.csv"
    good.write_text(
        "timestamp,prompt_tokens,output_tokens\n" + "".join(f"{i * 0.5},400,200\n" for i in range(600))
    )
    r = run("--trace", str(good), "--policy", "always-on", "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["requests"] == 600
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1,1\n1,two,1\n")
    code, err = fail(capsys, "--trace", str(bad))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: cannot read") and "line 2" in err


def test_bad_policy_and_cold_start_file(tmp_path, capsys):
    code, err = fail(capsys, "--policy", "hpa-magic", "--duration", "1h")
    assert code == 2 and "unknown policy 'hpa-magic'" in err and err.count("\n") == 1
    cs = tmp_path / "cs.json"
    cs.write_text('{"phases": [{"name": "restore", "seconds": 4}]}')
    r = run(
        "--pattern", "dev", "--policy", "knative", "--cold-start", str(cs), "--duration", "1d", "-o", "json"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["coldStart"]["seconds"] == 4


def test_same_seed_same_output():
    a = run("--pattern", "spiky", "--duration", "3h", "--seed", "5", "-o", "json").stdout
    b = run("--pattern", "spiky", "--duration", "3h", "--seed", "5", "-o", "json").stdout
    assert a == b


@pytest.mark.parametrize(
    ("policy", "why"),
    [
        ("keda:fallback-behavior=sometimes", "fallback behavior 'sometimes' is not one of static"),
        ("keda:keda-version=latest", "'latest' is not a version like 1.33"),
        ("keda:min=1:idle=3", "idleReplicaCount must be less than minReplicaCount"),
        ("cpu-hpa:k8s-version=1", "'1' is not a version like 1.33"),
        # kedacore/keda#6464 added spec.fallback.behavior in the 2.17 line
        ("keda:fallback=2:fallback-behavior=currentReplicas:keda-version=2.16", "needs KEDA 2.17 or newer"),
    ],
)
def test_bad_values_of_the_version_and_fallback_options(capsys, policy, why):
    code, err = fail(capsys, "--duration", "1h", "--policy", policy)
    assert code == 2 and why in err and "docs/simulate.md#policies" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_first_simulation_on_a_machine_says_it_compiles_the_kernel(tmp_path: Path) -> None:
    """An empty numba cache (NUMBA_CACHE_DIR): the first `simulate` says on stderr that it compiles the kernel
    (the ahead-of-time module, sim/aot.py: 30-35 s that would look like a hang) and leaves the module in
    NUMBA_CACHE_DIR/kubectl-gpuscale (0700); the next one, loading it, says nothing."""
    exe = str(Path(sys.executable).with_name("kubectl-gpuscale"))
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
        "GPUSCALE_SIM_KERNEL": "1",
        "GPUSCALE_SIM_AOT": "1",
    }
    args = [exe, "simulate", "--pattern", "dev", "--duration", "1h", "--policy", "knative", "-o", "json"]
    first = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    again = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert "compiling the simulator's kernel, once per machine (ahead of time" in first.stderr
    assert first.stderr.count("\n") == 1 and again.stderr == ""
    built = tmp_path / "numba" / "kubectl-gpuscale"
    assert built.stat().st_mode & 0o777 == 0o700 and len(list(built.glob("_gpuscale_simkernel_*.so"))) == 1
    assert json.loads(first.stdout) == json.loads(again.stdout)
