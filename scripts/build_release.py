#!/usr/bin/env python3
"""Build the krew release archive for this machine's platform and render the krew manifest.

Krew cannot install Python dependencies, so each archive carries a self-contained
executable frozen by PyInstaller (onedir: an executable beside its ``_internal/``
directory, measured faster to start than onefile, which unpacks itself on every run).
Two of PyInstaller's runtime hooks are left out of the executable (see SKIPPED_RUNTIME_HOOKS):
leaving them out cut the frozen ``--help`` by 15-25 %; they serve features the plugin does not use.

    scripts/build_release.py build                 # dist/kubectl-gpuscale_v<ver>_<os>_<arch>.tar.gz
    scripts/build_release.py manifest              # plugin.yaml from .krew.yaml + dist/*.tar.gz
    scripts/build_release.py all                   # both

PyInstaller runs in its own virtualenv (build/venv by default), never in the
development .venv. Archives cannot be cross-built: the release workflow runs
``build`` on each os/arch and ``manifest`` once over all four archives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"
TEMPLATE = ROOT / ".krew.yaml"
MANIFEST = ROOT / "plugin.yaml"
NAME = "kubectl-gpuscale"
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")]
PLACEHOLDER_SHA = "0" * 64

# Modules the executable never needs: the asyncio twin of the kubernetes client (68 MB),
# test frameworks, GUI toolkits, plotting and dataframes (the `plot` extra stays a pip-only feature).
EXCLUDES = [
    "kubernetes.aio",
    "kubernetes.test",
    "tests",
    "pytest",
    "_pytest",
    "tkinter",
    "matplotlib",
    "pandas",
    "IPython",
    # numba + llvmlite add ~210 MB unpacked (libllvmlite.so alone 179 MB): the archive carries the
    # simulator's kernel built ahead of time instead (`prebuilt_kernel`), which needs only numpy
    "numba",
    "llvmlite",
]

# PyInstaller runtime hooks run at every start, before any of our code. These two are left out:
# - pyi_rth_multiprocessing imports multiprocessing.spawn (socket, subprocess, pickle, ...) to let a
#   frozen program start multiprocessing *child processes*; the plugin starts none (the kubernetes
#   client imports multiprocessing only for its ThreadPool, threads).
# - pyi_rth_inspect imports zipfile and reads base_library.zip's listing so that
#   inspect.getsource() finds stdlib sources; nothing in the plugin reads sources.
# pyi_rth_pkgutil stays: facts/matrix.py lists modules with pkgutil.iter_modules.
SKIPPED_RUNTIME_HOOKS = ["pyi_rth_multiprocessing", "pyi_rth_inspect"]
SPEC_PYZ_LINE = "pyz = PYZ(a.pure)"

ADDURI = re.compile(r'\{\{\s*addURIAndSha\s+"(?P<url>[^"]+)"\s+\.TagName\s*\}\}')
TAG = re.compile(r"\{\{\s*\.TagName\s*\}\}")


def version() -> str:
    """The package version, read from kubectl_gpuscale/__init__.py without importing it."""
    text = (ROOT / "kubectl_gpuscale" / "__init__.py").read_text()
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("cannot find __version__ in kubectl_gpuscale/__init__.py")
    return found.group(1)


def host_platform() -> tuple[str, str]:
    """(os, arch) in Go's GOOS/GOARCH spelling, as krew's selectors use."""
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if not system or not arch:
        raise SystemExit(f"unsupported build platform {platform.system()} {platform.machine()}")
    return system, arch


def archive_name(ver: str, os_: str, arch: str) -> str:
    """The release asset name, the same in .krew.yaml, the workflow and the docs."""
    return f"{NAME}_v{ver}_{os_}_{arch}.tar.gz"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_venv(path: Path) -> Path:
    """A separate virtualenv holding the project (non-editable) and PyInstaller; returns its python."""
    python = path / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(path)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"{ROOT}[release]"], check=True)
    # Always reinstall the project itself so the frozen code is the working tree's.
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True)
    return python


def skip_runtime_hooks(spec: str, hooks: list[str]) -> str:
    """The spec text with the named runtime hooks filtered out of ``a.scripts`` before the EXE step."""
    if SPEC_PYZ_LINE not in spec:
        raise SystemExit(f"PyInstaller spec without {SPEC_PYZ_LINE!r}: cannot leave out runtime hooks")
    keep = (
        f"_skipped = {hooks!r}\n"
        "print('leaving out runtime hooks:', [s[0] for s in a.scripts if s[0] in _skipped])\n"
        "a.scripts = [s for s in a.scripts if s[0] not in _skipped]\n"
    )
    return spec.replace(SPEC_PYZ_LINE, keep + SPEC_PYZ_LINE, 1)


# Run by the build virtualenv's python: the simulator's kernel built ahead of time (sim/aot.py) with the
# key a frozen program without numba computes (`aot.bundled()`), into argv[1]; prints its files as JSON.
PREBUILD = """
import json, sys
from pathlib import Path
from kubectl_gpuscale.sim import aot
files = aot.Paths(Path(sys.argv[1]), aot.key(bundled=True))
if not aot.build(files):
    sys.exit(files.failed.read_text() if files.failed.exists() else "the kernel was not built")
print(json.dumps({"module": str(files.module), "layout": str(files.layout), "source": str(aot.JIT_SOURCE)}))
"""


def prebuilt_kernel(python: Path, workdir: Path) -> list[str]:
    """PyInstaller options that ship the simulator's kernel built ahead of time (~30 s to build) in
    `kubectl_gpuscale/sim/_prebuilt/`, with `_jit.py` beside `aot.py` for its key: the frozen plugin
    simulates at compiled speed without numba. Exits when it cannot be built (no C compiler)."""
    out = workdir / "prebuilt"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run(  # cwd: the installed package, not the working tree's, is what gets frozen
        [str(python), "-c", PREBUILD, str(out)], cwd=out, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the simulator's kernel could not be built ahead of time: {done.stderr.strip()}")
    files = json.loads(done.stdout.strip().splitlines()[-1])
    bundle = "kubectl_gpuscale/sim/_prebuilt"
    return [
        "--add-binary",
        f"{files['module']}{os.pathsep}{bundle}",
        "--add-data",
        f"{files['layout']}{os.pathsep}{bundle}",
        "--add-data",
        f"{files['source']}{os.pathsep}kubectl_gpuscale/sim",
    ]


def freeze(python: Path, mode: str, workdir: Path) -> Path:
    """Run PyInstaller; returns the directory holding the frozen program (onedir) or the file (onefile)."""
    entry = workdir / "entry.py"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text("from kubectl_gpuscale.cli import main\n\nmain()\n")
    makespec = [
        str(python),
        "-m",
        "PyInstaller.utils.cliutils.makespec",
        "--log-level",
        "WARN",
        f"--{mode}",
        "--name",
        NAME,
        "--noupx",  # no --strip: see strip_elf
        "--specpath",
        str(workdir),
        "--collect-submodules",
        "kubectl_gpuscale",
        "--collect-data",
        "kubectl_gpuscale",
        "--collect-submodules",
        "textual.widgets",
        "--collect-data",
        "textual",
    ]
    for module in EXCLUDES:
        makespec += ["--exclude-module", module]
    makespec += prebuilt_kernel(python, workdir)
    subprocess.run([*makespec, str(entry)], check=True, stdout=subprocess.DEVNULL)
    spec = workdir / f"{NAME}.spec"
    spec.write_text(skip_runtime_hooks(spec.read_text(), SKIPPED_RUNTIME_HOOKS))
    subprocess.run(
        [
            str(python),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(workdir / "dist"),
            "--workpath",
            str(workdir / "work"),
            str(spec),
        ],
        check=True,
    )
    frozen = workdir / "dist" / NAME
    if frozen.is_dir():
        strip_elf(frozen)
    return frozen


def strip_elf(tree: Path) -> None:
    """Strip debug symbols from the ELF files of a onedir build, except wheel-vendored libraries.

    Libraries under ``*.libs/`` were rewritten by auditwheel/patchelf; stripping those breaks them
    (numpy's OpenBLAS: "ELF load command address/offset not page-aligned"), so PyInstaller's own
    --strip is not used. No-op where there is no GNU strip (macOS builds stay as they are).
    """
    strip = shutil.which("strip")
    if not strip or platform.system() != "Linux":
        return
    # Only under _internal/: the executable itself carries the PyInstaller archive appended to it.
    for path in sorted((tree / "_internal").rglob("*")):
        if not path.is_file() or path.is_symlink() or any(p.endswith(".libs") for p in path.parts):
            continue
        with path.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        subprocess.run([strip, "--strip-unneeded", str(path)], check=False, capture_output=True)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_archive(frozen: Path, target: Path) -> None:
    """tar.gz with the executable (and its _internal/ for onedir) plus LICENSE, at the archive's root."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        if frozen.is_dir():
            for child in sorted(frozen.iterdir()):
                tar.add(child, arcname=child.name, filter=_anonymous)
        else:
            tar.add(frozen, arcname=NAME, filter=_anonymous)
        tar.add(ROOT / "LICENSE", arcname="LICENSE", filter=_anonymous)


def build(mode: str, venv_dir: Path) -> Path:
    """Freeze and archive for the host platform; returns the archive path."""
    os_, arch = host_platform()
    ver = version()
    python = build_venv(venv_dir)
    workdir = BUILD / f"pyinstaller-{mode}"
    shutil.rmtree(workdir / "dist", ignore_errors=True)
    frozen = freeze(python, mode, workdir)
    target = DIST / archive_name(ver, os_, arch)
    make_archive(frozen, target)
    print(f"{target.relative_to(ROOT)}  {sha256_of(target)}  {target.stat().st_size / 1e6:.1f} MB")
    return target


def existing_shas(manifest: Path) -> dict[str, str]:
    """uri -> sha256 of a rendered manifest, to keep values for archives not built here."""
    if not manifest.exists():
        return {}
    text = manifest.read_text()
    return dict(re.findall(r"uri:\s*(\S+)\s*\n\s*sha256:\s*\"?([a-f0-9]{64})\"?", text))


def render(template: str, tag: str, shas: dict[str, str]) -> str:
    """Render the krew-release-bot template (the two functions it uses) with known sha256 values.

    ``shas`` maps an archive file name (a fresh digest) or a full uri (one kept from the previous
    plugin.yaml; the file name wins) to its sha256; unknown archives get the
    placeholder of 64 zeros, which the release workflow replaces. The digest is quoted (the
    bot does not quote): YAML reads an all-digit digest such as the placeholder as a number.
    """

    def uri_and_sha(match: re.Match[str]) -> str:
        uri = TAG.sub(tag, match.group("url"))
        sha = shas.get(uri.rsplit("/", 1)[-1]) or shas.get(uri) or PLACEHOLDER_SHA
        return f'uri: {uri}\n    sha256: "{sha}"'

    return TAG.sub(tag, ADDURI.sub(uri_and_sha, template))


def write_manifest(dist: Path, keep_existing: bool) -> Path:
    """Render plugin.yaml from .krew.yaml with the sha256 of every archive in ``dist``."""
    ver = version()
    shas = existing_shas(MANIFEST) if keep_existing else {}
    for os_, arch in PLATFORMS:
        archive = dist / archive_name(ver, os_, arch)
        if archive.exists():
            shas[archive.name] = sha256_of(archive)
    header = (
        "# Rendered from .krew.yaml by scripts/build_release.py manifest. sha256 values of\n"
        "# 64 zeros are placeholders for archives not built on this machine; the release\n"
        "# workflow (.github/workflows/release.yml) builds all four and renders it again.\n"
    )
    body = render(TEMPLATE.read_text(), f"v{ver}", shas)
    body = "\n".join(line for line in body.splitlines() if not line.startswith("#")).lstrip("\n")
    MANIFEST.write_text(header + body + "\n")
    placeholders = body.count(PLACEHOLDER_SHA)
    print(
        f"{MANIFEST.relative_to(ROOT)}: v{ver}, {len(PLATFORMS) - placeholders} real sha256, {placeholders} placeholders"
    )
    return MANIFEST


def main() -> None:
    """Command line: build | manifest | all."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=["build", "manifest", "all"])
    parser.add_argument("--mode", choices=["onedir", "onefile"], default="onedir")
    parser.add_argument(
        "--venv", type=Path, default=BUILD / "venv", help="build virtualenv (default build/venv)"
    )
    parser.add_argument("--dist", type=Path, default=DIST, help="where archives are (default dist/)")
    parser.add_argument(
        "--fresh", action="store_true", help="manifest: do not keep sha256 values already in plugin.yaml"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.step in ("build", "all"):
        build(args.mode, args.venv)
    if args.step in ("manifest", "all"):
        write_manifest(args.dist, keep_existing=not args.fresh)


if __name__ == "__main__":
    main()
