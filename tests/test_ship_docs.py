"""The docs build (mkdocs --strict, what `make docs` runs): passes for the pages that exist, fails on a
broken link or anchor."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_real_part

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("mkdocs") is None:
        require_real_part("mkdocs", "pip install -e '.[dev]'")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=120,
    )


def copy_project_docs(tmp_path: Path) -> Path:
    """docs/, mkdocs.yml and the hook in a scratch directory, to break things in."""
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", tmp_path / "scripts")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path / "mkdocs.yml"


def test_docs_build_strict(tmp_path: Path) -> None:
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    for page in DOCS.glob("*.md"):
        built = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.exists(), f"{page.name} was not built"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("See [the page](no-such-page.md).", "no-such-page.md"),
        ("See [a section](troubleshooting.md#no-such-section).", "no-such-section"),
        ("See [a section](#nowhere).", "nowhere"),
    ],
)
def test_broken_links_fail_the_build(tmp_path: Path, text: str, why: str) -> None:
    config = copy_project_docs(tmp_path)
    (tmp_path / "docs" / "index.md").write_text((DOCS / "index.md").read_text() + f"\n{text}\n")
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert why in result.stderr


def test_hook_follows_the_pages_that_exist(tmp_path: Path) -> None:
    """A nav entry whose page is missing is left out; a page missing from nav is listed under More."""
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    (tmp_path / "a.md").write_text("# a\n")
    (tmp_path / "stray.md").write_text("# stray\n")
    config = {
        "docs_dir": str(tmp_path),
        "nav": [{"A": "a.md"}, {"Commands": [{"gone": "gone.md"}]}, {"Site": "https://example.com/"}],
    }
    out = hooks.on_config(config)
    assert out["nav"] == [{"A": "a.md"}, {"Site": "https://example.com/"}, {"More": ["stray.md"]}]


def test_nav_names_the_expected_pages() -> None:
    """The nav the lead and the command owners write pages for (docs/<command>.md)."""
    full = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = set()
    for item in full["nav"]:
        value = next(iter(item.values()))
        pages |= {next(iter(c.values())) for c in value} if isinstance(value, list) else {value}
    assert {"index.md", "install-plugin.md", "architecture.md", "troubleshooting.md"} <= pages
    for command in ("install", "migrate-hpa", "coldstart", "doctor", "simulate", "top", "checkpoint"):
        assert f"{command}.md" in pages
