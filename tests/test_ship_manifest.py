"""The krew manifest (plugin.yaml), its krew-release-bot template (.krew.yaml) and the archives."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import kubectl_gpuscale

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "plugin.yaml"
TEMPLATE = ROOT / ".krew.yaml"
DIST = ROOT / "dist"
SHA256 = re.compile(r"^[a-f0-9]{64}$")
EXPECTED_PLATFORMS = {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}


def load_build_script() -> ModuleType:
    """scripts/build_release.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("build_release", ROOT / "scripts" / "build_release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


def selector_of(platform: dict[str, Any]) -> tuple[str, str]:
    labels = platform["selector"]["matchLabels"]
    assert set(labels) == {"os", "arch"}, "krew selectors only know os and arch"
    return labels["os"], labels["arch"]


def test_manifest_header(manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"] == {"name": "gpuscale"}
    assert re.fullmatch(r"[\w-]+", manifest["metadata"]["name"])
    assert manifest["spec"]["version"] == "v" + kubectl_gpuscale.__version__
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", manifest["spec"]["version"])
    assert manifest["spec"]["homepage"].startswith("https://github.com/")


def test_descriptions_follow_krew_review_rules(manifest: dict[str, Any]) -> None:
    spec = manifest["spec"]
    short = spec["shortDescription"]
    assert "\n" not in short and "\r" not in short
    assert 0 < len(short) <= 50, f"shortDescription is {len(short)} characters"
    assert not short.lower().startswith(("kubectl", "a kubectl plugin")), "no redundant words"
    for field in ("description", "caveats"):
        lines = spec[field].rstrip("\n").splitlines()
        assert len(lines) >= 2
        too_long = [line for line in lines if len(line) > 80]
        assert not too_long, f"{field} lines over 80 columns: {too_long}"
    assert "kubectl gpuscale " not in spec["description"].split("\n")[0], "no usage examples in description"


def test_platforms(manifest: dict[str, Any]) -> None:
    platforms = manifest["spec"]["platforms"]
    seen = {selector_of(p) for p in platforms}
    assert seen == EXPECTED_PLATFORMS and len(platforms) == 4
    version = manifest["spec"]["version"]
    for platform in platforms:
        os_, arch = selector_of(platform)
        assert platform["bin"] == "kubectl-gpuscale"
        assert SHA256.fullmatch(platform["sha256"]), platform["sha256"]
        uri = platform["uri"]
        assert uri.startswith("https://") and uri.endswith(".tar.gz")
        assert uri.endswith(f"/{version}/kubectl-gpuscale_{version}_{os_}_{arch}.tar.gz")
        assert "files" not in platform or platform["files"], "files, when present, must not be empty"


def test_manifest_is_the_rendered_template(manifest: dict[str, Any]) -> None:
    """plugin.yaml and .krew.yaml cannot drift: rendering the template with plugin.yaml's sha256s gives it back."""
    build = load_build_script()
    shas = {p["uri"]: p["sha256"] for p in manifest["spec"]["platforms"]}
    rendered = yaml.safe_load(build.render(TEMPLATE.read_text(), manifest["spec"]["version"], shas))
    assert rendered == manifest


def test_render_uses_krew_release_bot_layout() -> None:
    build = load_build_script()
    text = '  - selector: {}\n    {{addURIAndSha "https://x/{{ .TagName }}/a_{{ .TagName }}.tar.gz" .TagName }}\n'
    out = build.render(text, "v9.9.9", {"a_v9.9.9.tar.gz": "ab" * 32})
    assert (
        out == f'  - selector: {{}}\n    uri: https://x/v9.9.9/a_v9.9.9.tar.gz\n    sha256: "{"ab" * 32}"\n'
    )
    assert build.PLACEHOLDER_SHA in build.render(text, "v1.0.0", {})
    # a freshly built archive (keyed by file name) wins over the digest kept from the old manifest (by uri)
    both = {"https://x/v9.9.9/a_v9.9.9.tar.gz": "00" * 32, "a_v9.9.9.tar.gz": "cd" * 32}
    assert f'sha256: "{"cd" * 32}"' in build.render(text, "v9.9.9", both)


def test_manifest_sha256_matches_built_archive(manifest: dict[str, Any]) -> None:
    """When the release script built the linux-amd64 archive here, plugin.yaml carries its digest."""
    version = manifest["spec"]["version"]
    archive = DIST / f"kubectl-gpuscale_{version}_linux_amd64.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive.name} not built (scripts/build_release.py all)")
    entry = next(p for p in manifest["spec"]["platforms"] if selector_of(p) == ("linux", "amd64"))
    assert entry["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "LICENSE" in members
    assert members["kubectl-gpuscale"].isfile() and members["kubectl-gpuscale"].mode & 0o111


def test_spec_filter_drops_only_the_named_runtime_hooks() -> None:
    """skip_runtime_hooks edits the spec pyi-makespec writes: the filtered ``a.scripts`` is what EXE() gets."""
    build = load_build_script()
    spec = "a = Analysis(['entry.py'])\npyz = PYZ(a.pure)\nexe = EXE(pyz, a.scripts)\n"
    patched = build.skip_runtime_hooks(spec, build.SKIPPED_RUNTIME_HOOKS)
    scripts = [
        (name, f"/hooks/{name}.py", "PYSOURCE")
        for name in (
            "pyiboot01_bootstrap",
            "pyi_rth_pkgutil",
            "pyi_rth_multiprocessing",
            "pyi_rth_inspect",
            "entry",
        )
    ]
    seen: dict[str, Any] = {}
    namespace = {
        "Analysis": lambda _: type("A", (), {"scripts": list(scripts), "pure": []})(),
        "PYZ": lambda pure: "pyz",
        "EXE": lambda pyz, got: seen.setdefault("scripts", [s[0] for s in got]),
        "print": lambda *_: None,
    }
    exec(patched, namespace)  # the spec is Python that PyInstaller executes the same way
    assert seen["scripts"] == ["pyiboot01_bootstrap", "pyi_rth_pkgutil", "entry"]
    with pytest.raises(SystemExit):
        build.skip_runtime_hooks("a = Analysis([])\n", build.SKIPPED_RUNTIME_HOOKS)
