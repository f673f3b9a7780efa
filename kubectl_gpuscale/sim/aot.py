"""The simulator's kernel built ahead of time: `_jit.run` compiled once per machine by `numba.pycc` into a
C extension module that a process loads without importing numba.

Why: with numba's JIT, even from a warm cache, every `simulate` process pays ~0.8 s of CPU for numba
itself (`import numba` ~0.4 s, and at the first call the target context's refresh ~0.4 s, which imports
every lowering registry): 40 % of the 2 s a 30-day simulation may cost. The extension module holds the
same machine code (the same `_jit.py`, the same LLVM) and imports nothing but numpy.

The module is keyed on a hash of `_jit.py`'s bytes, numba's and llvmlite's versions, numpy's, the
Python ABI tag, the machine and the target CPU, so a module built from other sources or for another
interpreter is never loaded. It is built for the generic CPU of the architecture (x86-64, not the host's
model: a home directory shared between machines with different CPUs must not meet an illegal
instruction), which measured as fast as the host's target on this kernel. Beside it, `<name>.json` holds
`_jit.py`'s layout constants (`C_*`, `S_*`, `KIND_*`, ...), read by the loader instead of importing
`_jit`; a failed build leaves `<name>.failed` (its reason) so later processes go straight to the JIT.

A program shipped frozen (the krew archive: no numba, no compiler) carries a module built by the
release job in `_prebuilt/` next to this file, with `_jit.py` itself so its key can be checked
(`bundled()`); `kernel.load()` takes it first.

Location: `GPUSCALE_SIM_AOT_DIR`; else `$NUMBA_CACHE_DIR/kubectl-gpuscale`; else `__pycache__` next to
`_jit.py` when writable (where numba's JIT cache goes); else `$XDG_CACHE_HOME/kubectl-gpuscale`
(~/.cache/kubectl-gpuscale). Directories it creates are 0700. `GPUSCALE_SIM_AOT=0` turns the tier off.

The build runs `child_build(DIR, NAME, KEY)` in a child process (`python -c`; setuptools and the
C compiler print; the child's output is captured, never the parent's stdout), into a temporary directory
inside DIR, then moves the files into place with `os.replace`; a lock file (`flock`) makes a second
process wait for the first's build instead of repeating it. A build in `__pycache__` removes the modules
of this install's earlier `_jit.py`s.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

PREFIX = "_gpuscale_simkernel_"
TARGET_CPU = ""  # numba.pycc's default: the architecture's generic CPU (see the module docstring)
RECIPE = "1"  # bump when the way the module is built changes
BUILD_TIMEOUT_S = 600
JIT_SOURCE = Path(__file__).with_name("_jit.py")
BUNDLED_DIR = Path(__file__).with_name("_prebuilt")  # scripts/build_release.py puts a module here
CHILD = "import sys; from kubectl_gpuscale.sim.aot import child_build; child_build(*sys.argv[1:4])"


def enabled() -> bool:
    """Whether the ahead-of-time tier is on (`GPUSCALE_SIM_AOT=0` turns it off)."""
    return os.environ.get("GPUSCALE_SIM_AOT", "1").strip() not in ("0", "false", "no", "off")


def numba_installed() -> bool:
    """Whether numba can be found (without importing it)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):
        return False


def _package_stamp(name: str) -> bytes:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return f"{name}: absent".encode()
    version = Path(spec.origin).with_name("_version.py")
    try:
        return version.read_bytes()
    except OSError:
        stat = Path(spec.origin).stat()
        return f"{spec.origin} {stat.st_size} {stat.st_mtime_ns}".encode()


def key(source: Path = JIT_SOURCE, *, bundled: bool = False) -> str:
    """The hash that names the module: `_jit.py`'s bytes, numba, llvmlite, numpy, the Python ABI, the
    machine, the target CPU and the build recipe. `bundled`: the key of a module shipped prebuilt with
    the program (`bundled()`), where numba is not installed: its versions are left out."""
    h = hashlib.sha256()
    h.update(source.read_bytes())
    compiler = (b"bundled",) if bundled else (_package_stamp("numba"), _package_stamp("llvmlite"))
    for part in (
        *compiler,
        np.__version__.encode(),
        str(sysconfig.get_config_var("EXT_SUFFIX")).encode(),
        sys.implementation.cache_tag.encode(),
        platform.machine().encode(),
        TARGET_CPU.encode(),
        RECIPE.encode(),
    ):
        h.update(b"\0" + part)
    return h.hexdigest()[:24]


def cache_dir() -> Path:
    """Where the module lives (see the module docstring for the order)."""
    explicit = os.environ.get("GPUSCALE_SIM_AOT_DIR")
    if explicit:
        return Path(explicit)
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "kubectl-gpuscale"
    in_tree = JIT_SOURCE.parent / "__pycache__"
    if _writable(in_tree):
        return in_tree
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubectl-gpuscale"


def _writable(path: Path) -> bool:
    if path.is_dir():
        return os.access(path, os.W_OK | os.X_OK)
    return os.access(path.parent, os.W_OK | os.X_OK)


class Paths:
    """The files of the module for one key in one directory."""

    def __init__(self, directory: Path, digest: str) -> None:
        self.directory = directory
        self.name = PREFIX + digest
        self.digest = digest
        self.module = directory / (self.name + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
        self.layout = directory / (self.name + ".json")
        self.failed = directory / (self.name + ".failed")


def paths() -> Paths:
    """The files for this `_jit.py`, numba and interpreter, in `cache_dir()`."""
    return Paths(cache_dir(), key())


def bundled() -> Paths | None:
    """The module shipped prebuilt inside the program (`BUNDLED_DIR`: the krew archive, whose frozen
    program has no numba), keyed on this `_jit.py`, numpy and interpreter; None when there is none."""
    if not BUNDLED_DIR.is_dir():
        return None
    try:
        return Paths(BUNDLED_DIR, key(bundled=True))
    except OSError:  # _jit.py not shipped beside it
        return None


def status(p: Paths) -> str:
    """The module's state: "ready" (module and layout present), "failed" (the marker), or "missing"."""
    if p.failed.exists():
        return "failed"
    if p.module.exists() and p.layout.exists():
        return "ready"
    return "missing"


def load_built(p: Paths) -> ModuleType | None:
    """The built module as a namespace (`run`, the layout constants, `TIER`), or None when it is absent or
    does not load (then the marker is written: later processes do not try it again)."""
    if status(p) != "ready":
        return None
    try:
        layout = json.loads(p.layout.read_text())
        if layout.pop("__key__", None) != p.digest:
            raise ImportError(f"{p.layout} was written for another key")
        loader = importlib.machinery.ExtensionFileLoader(p.name, str(p.module))
        spec = importlib.util.spec_from_file_location(p.name, p.module, loader=loader)
        if spec is None:
            raise ImportError(f"cannot load {p.module}")
        ext = importlib.util.module_from_spec(spec)
        loader.exec_module(ext)
        run = ext.run
    except (ImportError, OSError, ValueError, AttributeError) as exc:
        _mark_failed(p, f"the built module does not load: {exc}")
        return None
    return namespace(layout, run, "ahead-of-time")


def namespace(layout: dict[str, int | float], run: object, tier: str) -> ModuleType:
    """What `kernel.load()` returns for every tier: `run`, the layout constants and `TIER`."""
    ns = ModuleType("kubectl_gpuscale.sim.kernel_module", f"The simulator's kernel ({tier}).")
    ns.__dict__.update(layout, run=run, TIER=tier, PENDING=False)
    return ns


def _mark_failed(p: Paths, reason: str) -> None:
    try:
        _ensure_dir(p.directory)
        p.failed.write_text(
            "the simulator's ahead-of-time kernel could not be built or loaded; the next tier runs instead "
            "(numba's JIT, else the Python path).\n"
            f"delete this file to try again.\n\n{reason}\n"
        )
    except OSError:
        pass


def _ensure_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def build(p: Paths) -> bool:
    """Build the module for `p` in a child process (its output captured); True when it is in place. A
    process that finds another building the same module waits for it and takes its result. On any
    failure write the marker (the reason: the child's last lines) and return False."""
    try:
        _ensure_dir(p.directory)
        with _exclusive(p.directory / (p.name + ".lock")):
            state = status(p)
            built = state == "ready" if state != "missing" else _build(p)
        if built and p.directory == JIT_SOURCE.parent / "__pycache__":
            _remove_other_keys(p)  # this install's earlier `_jit.py`s: never loaded again
        return built
    except (OSError, subprocess.SubprocessError) as exc:
        _mark_failed(p, f"{type(exc).__name__}: {exc}")
        return False


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: two builds may run at once, each moving a complete module
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_other_keys(p: Paths) -> None:
    for stale in p.directory.glob(PREFIX + "*"):
        if not stale.name.startswith(p.name + "."):
            stale.unlink(missing_ok=True)


def _build(p: Paths) -> bool:
    with tempfile.TemporaryDirectory(prefix=".build-", dir=p.directory) as tmp:
        root = str(Path(__file__).resolve().parents[2])  # the child imports this very package
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
            "TMPDIR": tmp,  # pycc's own scratch directory, removed with ours
        }
        done = subprocess.run(
            [sys.executable, "-c", CHILD, tmp, p.name, p.digest],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        built = Path(tmp) / p.module.name
        layout = Path(tmp) / p.layout.name
        if done.returncode != 0 or not built.exists() or not layout.exists():
            tail = "\n".join(done.stdout.decode(errors="replace").strip().splitlines()[-20:])
            _mark_failed(p, f"exit status {done.returncode}\n{tail}")
            return False
        os.replace(layout, p.layout)
        os.replace(built, p.module)
        return True


def signature() -> object:
    """The numba signature `kernel.KernelRun` calls `_jit.run` with (imports numba)."""
    t: Any = importlib.import_module("numba.types")  # numba ships no type stubs
    f1, i1 = t.Array(t.float64, 1, "C"), t.Array(t.int64, 1, "C")
    f2, i2 = t.Array(t.float64, 2, "C"), t.Array(t.int64, 2, "C")
    arrays = t.Tuple((f1, f1, i1, i2, f2, f2, f2, f2, f2))
    return t.int64(f1, t.int64, arrays, t.UniTuple(f1, 3))


def layout_of(module: ModuleType) -> dict[str, int | float]:
    """The layout constants of `_jit` (upper-case ints and floats) that kernel users read."""
    return {
        k: v
        for k, v in vars(module).items()
        if k.isupper() and type(v) in (int, float) and not k.startswith("_")
    }


def child_build(out: str, name: str, digest: str) -> None:
    """The build itself (in the child process): compile `_jit.run` with pycc into `out`, write the layout."""
    from kubectl_gpuscale.sim import _jit

    pycc: Any = importlib.import_module("numba.pycc")  # numba ships no type stubs
    jitted: Any = _jit.run

    source = Path(str(_jit.__file__))
    mine = key(source)
    if digest not in (mine, key(source, bundled=True)):
        raise SystemExit(
            f"{_jit.__file__} hashes to {mine}, not {digest}: another kubectl_gpuscale on the path"
        )
    cc = pycc.CC(name, source_module=_jit)
    cc.output_dir = out
    cc.target_cpu = TARGET_CPU
    cc.export("run", signature())(jitted.py_func)
    cc.compile()
    Path(out, name + ".json").write_text(json.dumps({**layout_of(_jit), "__key__": digest}, sort_keys=True))
