"""The simulator's kernel built ahead of time (sim/aot.py): the same results as numba's JIT and the Python
path, no numba in a process that runs it, a failed build that falls back to the JIT, and no stale module.

The module is built once per test session at its default location (the first test that needs it; later
sessions on the machine find it there), by the same code path `simulate` uses. A missing C compiler or
Python.h skips those tests locally and fails them under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from kubectl_gpuscale import sim
from kubectl_gpuscale.sim import aot, kernel
from tests.conftest import require_real_part
from tests.test_sim_kernel import _events, _scenarios, _simulation

pytestmark = pytest.mark.skipif(not aot.numba_installed(), reason="numba is not installed")

EXE = str(Path(sys.executable).with_name("kubectl-gpuscale"))
SIMULATE = [EXE, "simulate", "--pattern", "spiky", "--duration", "2h", "--policy"]
POLICIES = "always-on,cpu-hpa,keda,knative"
NUMBA_FREE = (
    "import atexit, sys\n"
    "from kubectl_gpuscale.cli import main\n"
    "from kubectl_gpuscale.sim import kernel\n"
    "atexit.register(lambda: print(kernel.tier(), 'numba' in sys.modules, 'llvmlite' in sys.modules, file=sys.stderr))\n"
    "sys.argv = ['kubectl-gpuscale', *sys.argv[1:]]\n"
    "main()\n"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSCALE_SIM")}
    return {**env, **extra}


@pytest.fixture(scope="session")
def built() -> ModuleType:
    """The ahead-of-time module at its default location (built here when this machine has none yet)."""
    files = aot.paths()
    if aot.status(files) == "missing":
        aot.build(files)
    module = aot.load_built(files)
    if module is None:
        reason = files.failed.read_text() if files.failed.exists() else "no module"
        require_real_part("a C compiler and Python.h for numba.pycc", reason.strip().splitlines()[-1])
    assert module is not None
    return module


@pytest.fixture(scope="session")
def jit() -> ModuleType:
    """numba's JIT tier."""
    module = kernel._import_jit()
    assert module is not None and module.TIER == "compiled"
    return module


def _run_on(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, *args: object, **kw: object
) -> sim.Simulation:
    monkeypatch.setattr(kernel, "_loaded", [module])
    s = _simulation(*args, True, **kw)
    assert {type(r).__name__ for r in s.runs} == {"KernelRun"}
    s.run()
    return s


SCENARIOS = [
    *_scenarios(3),
    (POLICIES + ",gpu-hpa,keda:min=1:fallback=2", "spiky", 60.0, 6 * 3600, {"seed": 5}),
    (POLICIES + ",knative:min=1:delay=60s", "diurnal", 30.0, 86400, {"engine": "70b", "timeout": 60.0}),
]


@pytest.mark.parametrize(("policies", "name", "rps", "seconds", "kw"), SCENARIOS)
def test_ahead_of_time_equals_the_jit_and_the_python_path(
    monkeypatch, built, jit, policies, name, rps, seconds, kw
):
    ahead = _run_on(monkeypatch, built, policies, sim.pattern(name, rps), seconds, **dict(kw))
    compiled = _run_on(monkeypatch, jit, policies, sim.pattern(name, rps), seconds, **dict(kw))
    python = _simulation(policies, sim.pattern(name, rps), seconds, False, **dict(kw))
    python.run()
    assert [r.to_dict() for r in ahead.results()] == [r.to_dict() for r in compiled.results()]
    assert [r.to_dict() for r in ahead.results()] == [r.to_dict() for r in python.results()]
    assert _events(ahead) == _events(compiled) == _events(python)
    for a, b in zip(ahead.series(), compiled.series(), strict=True):
        np.testing.assert_array_equal(a.pods, b.pods)
        np.testing.assert_array_equal(a.waiting, b.waiting)


def test_the_exported_signature_and_layout_are_the_jits(monkeypatch, built, jit):
    """`run` is exported with the signature KernelRun calls it with (the one the JIT compiles) and the
    layout written beside the module is `_jit.py`'s."""
    from kubectl_gpuscale.sim import _jit

    _run_on(monkeypatch, jit, POLICIES, sim.pattern("dev", None), 600)
    assert [str(s) for s in jit.run.nopython_signatures] == [str(aot.signature())]
    layout = {k: v for k, v in vars(built).items() if k.isupper() and k not in ("TIER", "PENDING")}
    assert layout == aot.layout_of(_jit)
    assert layout["C_LEN"] == _jit.C_LEN and layout["EPS"] == _jit.EPS


def test_a_warm_process_simulates_without_importing_numba(built):
    out = subprocess.run(
        [sys.executable, "-c", NUMBA_FREE, *SIMULATE[1:], POLICIES, "-o", "json"],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr.strip().splitlines() == ["ahead-of-time False False"]
    assert len(json.loads(out.stdout)["results"]) == 4
    off = subprocess.run(
        [sys.executable, "-c", NUMBA_FREE, *SIMULATE[1:], POLICIES, "-o", "json"],
        env=_env(GPUSCALE_SIM_AOT="0"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert off.stderr.strip().splitlines()[-1] == "compiled True True"
    assert json.loads(off.stdout) == json.loads(out.stdout)


def test_a_failed_build_falls_back_to_the_jit_once_and_quietly(built, tmp_path):
    """No C compiler (CC=/bin/false): the build fails in its child process, the JIT runs with the same
    results, stdout stays one JSON document, stderr has no traceback, and the marker stops later
    processes from trying again."""
    reference = subprocess.run(
        [*SIMULATE, POLICIES, "-o", "json"], env=_env(), capture_output=True, check=True
    )
    env = _env(GPUSCALE_SIM_AOT_DIR=str(tmp_path / "aot"), CC="/bin/false")
    first = subprocess.run([*SIMULATE, POLICIES, "-o", "json"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == json.loads(reference.stdout)
    assert "Traceback" not in first.stderr
    markers = list((tmp_path / "aot").glob("*.failed"))
    assert [m.name for m in markers] == [aot.PREFIX + aot.key() + ".failed"]
    assert "exit status" in markers[0].read_text() and "delete this file" in markers[0].read_text()
    left = sorted(p.name for p in (tmp_path / "aot").iterdir())
    assert left == [markers[0].name, markers[0].name.replace(".failed", ".lock")]  # no module, no tmp dir
    assert (tmp_path / "aot").stat().st_mode & 0o777 == 0o700
    again = subprocess.run(
        [sys.executable, "-c", NUMBA_FREE, *SIMULATE[1:], POLICIES, "-o", "json"],
        env={**env, "CC": "/nonexistent/cc"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stderr.strip().splitlines() == ["compiled True True"]  # no notice, no second build
    assert json.loads(again.stdout) == json.loads(reference.stdout)


def test_a_module_for_other_sources_is_never_loaded(built, tmp_path):
    """The name carries the hash of `_jit.py` (and numba, numpy, the ABI...): a changed `_jit.py` looks for
    another file; a file under this name whose layout says another key is refused (and marked)."""
    changed = tmp_path / "_jit.py"
    changed.write_bytes(aot.JIT_SOURCE.read_bytes() + b"\n# changed\n")
    assert aot.key(changed) != aot.key()
    here = aot.Paths(tmp_path / "stale", aot.key())
    here.directory.mkdir()
    shutil.copy(aot.paths().module, here.module)
    here.layout.write_text(json.dumps({**aot.layout_of(built), "__key__": aot.key(changed)}))
    assert aot.status(here) == "ready"
    assert aot.load_built(here) is None
    assert aot.status(here) == "failed" and "another key" in here.failed.read_text()
    other = aot.Paths(here.directory, aot.key(changed))
    assert aot.status(other) == "missing"


def test_the_tier_switch_and_the_pending_build(monkeypatch, tmp_path, built):
    """GPUSCALE_SIM_AOT=0: the JIT; no module yet: `_jit`'s layout with a build pending, which
    `pending_compile()` reports (the stderr notice) without building it."""
    monkeypatch.setenv("GPUSCALE_SIM_AOT", "0")
    assert kernel._load().TIER == "compiled"
    monkeypatch.setenv("GPUSCALE_SIM_AOT", "1")
    monkeypatch.setenv("GPUSCALE_SIM_AOT_DIR", str(tmp_path))
    pending = kernel._load()
    assert pending is not None and pending.PENDING and pending.KIND_KPA == built.KIND_KPA
    monkeypatch.setattr(kernel, "_loaded", [pending])
    assert kernel.pending_compile() == "ahead-of-time"
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(kernel, "_loaded", [built])
    assert kernel.pending_compile() is None and kernel.tier() == "ahead-of-time"


def test_a_build_in_pycache_removes_the_modules_of_earlier_sources(tmp_path):
    """Each edit of `_jit.py` builds a new module; in the install's `__pycache__` the old ones go."""
    current = aot.Paths(tmp_path, aot.key())
    old = aot.Paths(tmp_path, "0" * 24)
    for p in (current, old):
        for f in (p.module, p.layout, p.failed, p.directory / (p.name + ".lock")):
            f.write_text("")
    (tmp_path / "_jit.add_to_hist-227.py311.nbi").write_text("")  # numba's own cache: not ours
    aot._remove_other_keys(current)
    left = sorted(f.name for f in tmp_path.iterdir())
    assert [f for f in left if f.startswith(aot.PREFIX)] == sorted(
        f.name for f in (current.module, current.layout, current.failed, tmp_path / (current.name + ".lock"))
    )
    assert "_jit.add_to_hist-227.py311.nbi" in left


def test_a_module_shipped_with_the_program_comes_first_without_numba(monkeypatch, tmp_path, built):
    """The krew archive (no numba, no compiler) carries a module built by the release job in `_prebuilt/`
    (scripts/build_release.py `prebuilt_kernel`): `load()` takes it before looking for numba; a module
    there for other sources is not loaded, and the next tier (here numba's JIT) runs."""
    assert aot.key(bundled=True) != aot.key()
    monkeypatch.setattr(aot, "_package_stamp", lambda name: pytest.fail(f"{name} read for a bundled key"))
    shipped_key = aot.key(bundled=True)
    monkeypatch.undo()
    assert aot.bundled() is None  # a pip install ships none
    bundle = tmp_path / "_prebuilt"
    bundle.mkdir()
    monkeypatch.setattr(aot, "BUNDLED_DIR", bundle)
    shipped = aot.bundled()
    assert shipped is not None and shipped.digest == shipped_key and aot.status(shipped) == "missing"
    # the module built for this machine, under the bundled name (a module's name is its init symbol)
    normal = aot.paths()
    monkeypatch.setattr(aot, "key", lambda source=aot.JIT_SOURCE, *, bundled=False: normal.digest)
    shipped = aot.bundled()
    assert shipped is not None
    shutil.copy(normal.module, shipped.module)
    shutil.copy(normal.layout, shipped.layout)
    monkeypatch.setattr(aot, "numba_installed", lambda: False)
    monkeypatch.setenv("GPUSCALE_SIM_AOT_DIR", str(tmp_path / "empty"))
    module = kernel._load()
    assert module is not None and module.TIER == "ahead-of-time"
    assert not (tmp_path / "empty").exists()
    _run_on(monkeypatch, module, POLICIES, sim.pattern("dev", None), 600)
    monkeypatch.setattr(aot, "key", lambda source=aot.JIT_SOURCE, *, bundled=False: "0" * 24)
    other = kernel._load()  # a module for another `_jit.py`: not loaded; the next tier runs
    assert other is not None and other.TIER == "compiled"
