"""A standing fuzz harness (issue 15): generated manifests, pods, events, logs, traces, cold-start profiles
and archive members are fed to every reader and to each command's file input; the only property is
"a clean error or a result, never an unexpected exception".

Inputs are real samples (shared/samples) with one field replaced by a value of another type, or
generated from scratch. Each test keeps `max_examples` small with a deadline, so the whole file runs in
well under a minute; the failures it found became the shapes in kubectl_gpuscale/shapes.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_gpuscale import manifests
from kubectl_gpuscale.errors import GpuscaleError
from tests.checkpoint_archives import crio_files, write_archive
from tests.support.paths import SAMPLES

EXAMPLES = int(os.environ.get("GPUSCALE_FUZZ_EXAMPLES", "25"))  # raise it for a longer hunt, never in CI
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=3000,
    derandomize=EXAMPLES <= 25,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["[/]", "nan", "-1", "1e400", "\x1b[2J", "", "0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _samples(prefix: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((SAMPLES / "manifests").glob(f"{prefix}*.yaml")):
        try:
            out += [loaded.obj for loaded in manifests.load([str(path)])]
        except GpuscaleError:
            continue
    return out


DEPLOYMENTS = _samples("deploy_")
HPAS = _samples("hpa_")


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `obj` (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(obj: dict[str, Any], seed: int, value: Any) -> dict[str, Any]:
    """A copy of `obj` with the value at one path (chosen by `seed`) replaced by `value`."""
    out = copy.deepcopy(obj)
    paths = [p for p in _paths(out) if p[0] not in ("apiVersion", "kind")]
    path = random.Random(seed).choice(paths)
    parent: Any = out
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return out


def _run_cli(args: list[str]) -> None:
    """Run the CLI in-process as `main` does; a clean error is fine, anything else fails the test."""
    from kubectl_gpuscale.cli.root import cli

    try:
        cli.main(args=args, prog_name="kubectl gpuscale", standalone_mode=False)
    except (GpuscaleError, click.ClickException, click.exceptions.Exit):
        pass
    except SystemExit as stop:
        assert stop.code in (0, 1, 2, None)


def _dump(objects: list[Any]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True)


@FUZZ
@given(index=st.integers(0, 10**6), seed=st.integers(0, 10**6), value=VALUES)
def test_doctor_and_migrate_on_mutated_samples(
    tmp_path_factory: pytest.TempPathFactory, index: int, seed: int, value: Any
) -> None:
    hpa = HPAS[index % len(HPAS)]
    deployment = copy.deepcopy(DEPLOYMENTS[index % len(DEPLOYMENTS)])
    target = hpa.get("spec", {}).get("scaleTargetRef", {})
    deployment["metadata"] = {
        **deployment.get("metadata", {}),
        "name": target.get("name", "x"),
        "namespace": hpa.get("metadata", {}).get("namespace", "default"),
    }
    objects = [_mutate(hpa, seed, value), deployment] if seed % 2 else [hpa, _mutate(deployment, seed, value)]
    path = tmp_path_factory.mktemp("fuzz") / "in.yaml"
    try:
        path.write_text(_dump(objects))
    except (ValueError, UnicodeEncodeError):  # e.g. a lone surrogate: not writable as UTF-8 YAML at all
        return
    _run_cli(["doctor", "-f", str(path), "-o", "json"])
    _run_cli(["migrate-hpa", "-f", str(path), "--dry-run=client", "-o", "yaml"])


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        VALUES.map(lambda v: yaml.safe_dump(v)),
    )
)
def test_manifest_reader_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(GpuscaleError):
        manifests.parse_text(text, "fuzz.yaml")


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "vllm-0", "namespace": "ml"},
    "spec": {
        "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.8.5", "args": ["--port", "8000"]}]
    },
    "status": {
        "phase": "Running",
        "startTime": "2026-03-13T21:40:00Z",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-03-13T21:40:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-13T21:43:00Z"},
        ],
        "containerStatuses": [
            {
                "name": "vllm",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-03-13T21:40:40Z"}},
            }
        ],
    },
}
EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "e1", "namespace": "ml"},
    "involvedObject": {"kind": "Pod", "name": "vllm-0", "namespace": "ml"},
    "reason": "Pulled",
    "message": 'Successfully pulled image "vllm/vllm-openai:v0.8.5" in 2m3.5s',
    "type": "Normal",
    "firstTimestamp": "2026-03-13T21:40:05Z",
    "lastTimestamp": "2026-03-13T21:42:08Z",
    "count": 1,
}
LOG_LINES = [
    line
    for path in sorted((SAMPLES / "logs").glob("*.log"))[:6]
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:40]
]


@FUZZ
@given(seed=st.integers(0, 10**6), value=VALUES, which=st.sampled_from(["pod", "events", "both"]))
def test_coldstart_offline_on_mutated_pod_and_events(
    tmp_path_factory: pytest.TempPathFactory, seed: int, value: Any, which: str
) -> None:
    tmp = tmp_path_factory.mktemp("cold")
    pod = _mutate(POD, seed, value) if which in ("pod", "both") else POD
    event = _mutate(EVENT, seed + 1, value) if which in ("events", "both") else EVENT
    (tmp / "pod.json").write_text(json.dumps(pod))
    (tmp / "events.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [event]}))
    (tmp / "log").write_text("\n".join(LOG_LINES[seed % 50 : seed % 50 + 60]))
    _run_cli(
        [
            "coldstart",
            "-f",
            str(tmp / "log"),
            "--pod",
            str(tmp / "pod.json"),
            "--events",
            str(tmp / "events.json"),
            "-o",
            "json",
        ]
    )


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(LOG_LINES),
            st.text(max_size=80),
            st.sampled_from(LOG_LINES).map(lambda s: s[: len(s) // 2] + "\x1b[/]" + s[len(s) // 2 :]),
        ),
        max_size=40,
    )
)
def test_coldstart_log_reader(tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("log") / "vllm.log"
    try:
        path.write_text("\n".join(lines), encoding="utf-8")
    except UnicodeEncodeError:
        return
    _run_cli(["coldstart", "-f", str(path)])


@FUZZ
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.floats(allow_nan=True), st.integers(-10, 10**12), st.text(max_size=25)),
            st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=5)),
            st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=5)),
        ),
        max_size=20,
    ),
    header=st.booleans(),
)
def test_trace_reader(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, Any, Any]], header: bool
) -> None:
    """`simulate --trace FILE`'s reader (the simulation itself is not run: it is slow and not a reader)."""
    from kubectl_gpuscale.cli.simulate import read_trace

    path = tmp_path_factory.mktemp("trace") / "trace.csv"
    text = ("timestamp,prompt_tokens,output_tokens\n" if header else "") + "\n".join(
        ",".join(str(c) for c in row) for row in rows
    )
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except UnicodeEncodeError:
        return
    with contextlib.suppress(GpuscaleError):
        read_trace(str(path))


def test_trace_with_a_bare_carriage_return_is_a_clean_error(tmp_path: Path) -> None:
    """Found by the harness: csv.Error escaped sim.parse_trace ("new-line character seen in unquoted field")."""
    from kubectl_gpuscale.cli.simulate import read_trace

    path = tmp_path / "t.csv"
    path.write_bytes(b"0.0,\r,0")
    with pytest.raises(GpuscaleError, match="cannot parse trace"):
        read_trace(str(path))


@FUZZ
@given(
    data=st.one_of(
        VALUES,
        st.fixed_dictionaries(
            {
                "phases": st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": st.one_of(
                                st.sampled_from(["image_pull", "weights", "cuda_graphs"]), st.text(max_size=8)
                            ),
                            "seconds": SCALARS,
                        }
                    ),
                    max_size=5,
                )
            }
        ),
    )
)
def test_cold_start_profile_reader(data: Any) -> None:
    from kubectl_gpuscale import sim

    try:
        text = json.dumps(data)
    except ValueError:
        return
    with contextlib.suppress(GpuscaleError):
        sim.coldstart_from_json(text, "fuzz.json")


@FUZZ
@given(
    member=st.sampled_from(["config.dump", "spec.dump", "checkpoint/inventory.img", "dump.log"]),
    data=st.one_of(VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300)),
)
def test_archive_members(tmp_path_factory: pytest.TempPathFactory, member: str, data: bytes) -> None:
    from kubectl_gpuscale.checkpoint.archive import inspect_archive

    files = crio_files(pages=4096)
    files[member] = data
    path = write_archive(tmp_path_factory.mktemp("arc") / "a.tar", files)
    with contextlib.suppress(GpuscaleError):
        inspect_archive(path)
    _run_cli(["checkpoint", "inspect", str(path)])


def test_harness_inputs_exist() -> None:
    assert DEPLOYMENTS and HPAS and LOG_LINES
    assert Path(SAMPLES).is_dir()
