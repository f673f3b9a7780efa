"""The krew archive built by scripts/build_release.py, run the way krew installs it (scripts/smoke_release.sh):
unpacked into an empty directory, linked onto a bare PATH, through the real kubectl, no virtualenv.

Building the archive takes minutes (PyInstaller), so the suite tests an archive already in dist/; the
release workflow builds and smoke-tests one on every platform."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import kubectl_gpuscale

ROOT = Path(__file__).resolve().parent.parent
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
ARCHIVE = (
    ROOT
    / "dist"
    / f"kubectl-gpuscale_v{kubectl_gpuscale.__version__}_{platform.system().lower()}_{ARCH}.tar.gz"
)


@pytest.mark.skipif(not ARCHIVE.exists(), reason=f"{ARCHIVE.name} not built (scripts/build_release.py build)")
def test_archive_runs_through_kubectl_without_python(kubectl_bin: str) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "smoke_release.sh"), str(ARCHIVE), kubectl_bin],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("smoke: OK")


def test_smoke_script_fails_on_a_broken_archive(tmp_path: Path, kubectl_bin: str) -> None:
    """The smoke test can fail: an archive whose executable is not a working plugin is rejected."""
    import tarfile

    fake = tmp_path / "kubectl-gpuscale"
    fake.write_text("#!/bin/sh\necho 'Usage: something else'\n")
    fake.chmod(0o755)
    (tmp_path / "LICENSE").write_text("license\n")
    archive = tmp_path / "broken.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(fake, arcname="kubectl-gpuscale")
        tar.add(tmp_path / "LICENSE", arcname="LICENSE")
    result = subprocess.run(
        [str(ROOT / "scripts" / "smoke_release.sh"), str(archive), kubectl_bin],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FAIL" in result.stderr and "Usage: kubectl gpuscale" in result.stderr


@pytest.mark.skipif(not ARCHIVE.exists(), reason=f"{ARCHIVE.name} not built (scripts/build_release.py build)")
def test_archive_leaves_out_the_slow_runtime_hooks() -> None:
    """The executable's PyInstaller archive lists its runtime hooks by name in its table of contents
    (PyInstaller/archive/writers.py, CArchiveWriter); build_release.SKIPPED_RUNTIME_HOOKS must be absent
    (leaving them out cut `--help` by 15-25 %), pyi_rth_pkgutil present (facts/matrix.py needs pkgutil.iter_modules)."""
    import tarfile

    with tarfile.open(ARCHIVE) as tar:
        member = tar.extractfile("kubectl-gpuscale")
        assert member is not None
        executable = member.read()
    assert b"pyi_rth_pkgutil" in executable
    assert b"pyi_rth_multiprocessing" not in executable
    assert b"pyi_rth_inspect" not in executable


@pytest.mark.skipif(not ARCHIVE.exists(), reason=f"{ARCHIVE.name} not built (scripts/build_release.py build)")
def test_archive_simulates_on_the_prebuilt_kernel_without_numba(tmp_path: Path) -> None:
    """The archive leaves numba and llvmlite out (~210 MB) and carries the simulator's kernel built ahead of
    time by the release job (build_release.prebuilt_kernel, sim/aot.py `bundled`): a 30-day spiky
    simulation of the four default policies gives the pip install's results at compiled speed (~1 s of
    CPU; the Python path it ran before takes 11-16 s), and the module loads (no `.failed` marker)."""
    import resource
    import tarfile

    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path / "install", filter="data")
    internal = tmp_path / "install" / "_internal"
    prebuilt = internal / "kubectl_gpuscale" / "sim" / "_prebuilt"
    assert sorted(p.suffix for p in prebuilt.iterdir()) == [".json", ".so"]
    assert (internal / "kubectl_gpuscale" / "sim" / "_jit.py").is_file()  # its key is checked against it
    assert not (internal / "numba").exists() and not (internal / "llvmlite").exists()
    args = ["simulate", "--pattern", "spiky", "--duration", "30d", "-o", "json"]
    (tmp_path / "home").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    frozen = subprocess.run(
        [str(tmp_path / "install" / "kubectl-gpuscale"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert frozen.returncode == 0, frozen.stderr
    assert not list(prebuilt.glob("*.failed")), [p.read_text() for p in prebuilt.glob("*.failed")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 5.0, f"the archive's simulate took {cpu:.1f} s of CPU: not on the prebuilt kernel"
    installed = subprocess.run(
        [str(Path(sys.executable).with_name("kubectl-gpuscale")), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(frozen.stdout) == json.loads(installed.stdout)
