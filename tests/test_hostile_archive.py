"""`checkpoint inspect` on hostile archives (issue 15): each answers with one clear error line, exit 2,
within 5 s and 256 MiB, through the real CLI in a child process (`tests/support/measure.py`).

Real checkpoints are uncompressed tars of regular files (reference/checkpoint.md §3; CRI-O
`internal/lib/checkpoint.go` writes them with `archive.TarWithOptions(..., Compression: archive.Uncompressed)`),
so compressed archives, links in place of metadata, FIFOs and devices are refused, not followed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests import hostile
from tests.checkpoint_archives import crio_files, write_archive
from tests.support.measure import BUDGET_BYTES, BUDGET_SECONDS, Measured, run_measured


def _inspect(path: Path | str) -> Measured:
    result = run_measured(["checkpoint", "inspect", str(path)])
    assert result.code is not None, f"no answer within the timeout: {path}"
    assert result.seconds <= BUDGET_SECONDS, f"{result.seconds:.1f}s"
    assert result.peak_bytes <= BUDGET_BYTES, f"{result.peak_bytes >> 20} MiB"
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return result


def _refused(result: Measured, *phrases: str) -> None:
    assert result.code == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    for phrase in phrases:
        assert phrase in line, line


def test_sparse_member_hard_linked_as_metadata_is_refused(tmp_path: Path) -> None:
    """A 30 KiB tar: sparse 8 GiB pages-1.img and config.dump a hard link to it (was: MemoryError)."""
    result = _inspect(hostile.sparse_hardlink_archive(tmp_path / "sparse.tar"))
    _refused(result, "config.dump is a link")


def test_symlinked_metadata_is_refused(tmp_path: Path) -> None:
    _refused(_inspect(hostile.symlink_metadata_archive(tmp_path / "sym.tar")), "spec.dump is a link")


@pytest.mark.parametrize("codec", ["bz2", "xz"])
def test_compressed_bombs_are_refused_unopened(tmp_path: Path, codec: str) -> None:
    """8 GiB of zeros in a few KiB (was: GiBs decompressed while listing members)."""
    result = _inspect(hostile.compressed_bomb(tmp_path / f"bomb.tar.{codec}", codec))
    _refused(result, f"{'bzip2' if codec == 'bz2' else 'xz'}-compressed", "uncompressed tar")


def test_pax_header_claiming_a_gigabyte(tmp_path: Path) -> None:
    """A sparse 1 GiB file whose first header is a pax header claiming all of it (was: 1 GiB read into memory)."""
    _refused(_inspect(hostile.pax_header_bomb(tmp_path / "pax.tar")), "a header claims 1073741824 bytes")


def test_too_many_members(tmp_path: Path) -> None:
    _refused(_inspect(hostile.many_members_archive(tmp_path / "many.tar")), "more than 20,000 members")


@pytest.mark.parametrize("member", ["config.dump", "spec.dump"])
def test_deeply_nested_json(tmp_path: Path, member: str) -> None:
    """200,000 nested lists in 400 KB (was: RecursionError)."""
    _refused(
        _inspect(hostile.deep_json_archive(tmp_path / "deep.tar", member=member)), member, "nests deeper"
    )


def test_moderately_nested_json_within_the_recursion_limit(tmp_path: Path) -> None:
    _refused(_inspect(hostile.deep_json_archive(tmp_path / "deep.tar", depth=500)), "nests deeper than 64")


@pytest.mark.parametrize(
    ("member", "data", "field"),
    [
        ("spec.dump", {"process": "x"}, "process"),
        ("spec.dump", {"process": {"env": "PATH=/bin"}}, "process.env"),
        ("spec.dump", {"linux": {"devices": ["/dev/nvidia0"]}}, "linux.devices[0]"),
        ("spec.dump", {"annotations": ["io.container.manager=cri-o"]}, "annotations"),
        ("spec.dump", {"linux": [1]}, "linux"),
        ("config.dump", {"rootfsImageName": {"a": 1}}, "rootfsImageName"),
        ("config.dump", {"id": ["x"]}, "id"),
    ],
)
def test_metadata_of_the_wrong_shape(tmp_path: Path, member: str, data: object, field: str) -> None:
    """Wrong-typed metadata (was: AttributeError): the error names the member and the field."""
    result = _inspect(hostile.metadata_archive(tmp_path / "shape.tar", member, data))
    _refused(result, f"{member}: {field} must be")


def test_list_typed_metadata(tmp_path: Path) -> None:
    _refused(
        _inspect(hostile.metadata_archive(tmp_path / "list.tar", "spec.dump", [1, 2])),
        "spec.dump is not a JSON object",
    )


def test_cri_o_metadata_annotation_of_the_wrong_shape_is_ignored(tmp_path: Path) -> None:
    files = crio_files(pages=4096)
    spec = __import__("json").loads(files["spec.dump"])
    spec["annotations"]["io.kubernetes.cri-o.Metadata"] = "[" * 100_000
    files["spec.dump"] = __import__("json").dumps(spec).encode()
    result = _inspect(write_archive(tmp_path / "meta.tar", files))
    assert result.code == 0, result.stderr
    assert "vllm-0" in result.stdout


def test_fifo_answers_at_once(tmp_path: Path) -> None:
    """Nobody writes to the pipe (was: blocked for ever in open())."""
    _refused(_inspect(hostile.fifo(tmp_path / "pipe.tar")), "it is a FIFO")


def test_dev_zero_answers_at_once() -> None:
    _refused(_inspect("/dev/zero"), "it is a device")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert _inspect(tmp_path).code == 2


def test_real_layout_still_inspects(tmp_path: Path) -> None:
    result = _inspect(write_archive(tmp_path / "ok.tar", crio_files(pages=1 << 20)))
    assert result.code == 0, result.stderr
    assert "vllm-0" in result.stdout


def test_fifo_guard_answers_in_process(tmp_path: Path) -> None:
    """The FIFO is refused from its stat, before any open() could block (run in a thread: never hangs the suite)."""
    from kubectl_gpuscale.checkpoint.archive import inspect_archive

    pipe = hostile.fifo(tmp_path / "p.tar")
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            inspect_archive(pipe)
        except BaseException as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(BUDGET_SECONDS)
    if worker.is_alive():  # unblock the reader so the thread ends
        import os

        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("inspect_archive blocked opening a FIFO")
    assert errors and "FIFO" in str(errors[0])
