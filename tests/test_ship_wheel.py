"""The PyPI distribution: the wheel built from this tree carries complete metadata and both console scripts.

Installing it with pipx and uv (offline, from a wheelhouse) is scripts/check_wheel_install.sh, run by
the release workflow: downloading the dependencies is what takes time, not the test."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import kubectl_gpuscale

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            *isolation,
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}")]
        return zf.read(member).decode()


def test_wheel_name_and_contents(wheel: Path) -> None:
    assert wheel.name == f"kubectl_gpuscale-{kubectl_gpuscale.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "kubectl_gpuscale/py.typed" in names
    assert "kubectl_gpuscale/cli/completion.py" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "docs/"))]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_metadata_is_complete(wheel: Path) -> None:
    meta = Parser().parsestr(dist_info(wheel, "METADATA"))
    assert meta["Name"] == "kubectl-gpuscale"
    assert meta["Version"] == kubectl_gpuscale.__version__
    assert meta["Summary"] and len(meta["Summary"]) < 200
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.10"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier")
    assert "Environment :: Console" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("kubernetes==") for r in requires)
    assert "mkdocs" not in " ".join(r for r in requires if "extra" not in r), (
        "docs tooling is not a runtime dep"
    )
    assert meta.get_payload().startswith("# kubectl gpuscale"), "README is the long description"


def test_console_scripts(wheel: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info(wheel, "entry_points.txt"))
    scripts = dict(entry_points["console_scripts"])
    assert scripts == {
        "kubectl-gpuscale": "kubectl_gpuscale.cli:main",
        "kubectl_complete-gpuscale": "kubectl_gpuscale.cli.completion:complete_main",
    }
    for target in scripts.values():
        module, attr = target.split(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))
