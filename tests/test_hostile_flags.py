"""Flags and file inputs that ended in "internal error" or were accepted although wrong (issue 15).

Numbers from flags are finite and in range (click types in cli/types.py: `click.FloatRange` lets
``nan`` through, and ``inf`` / ``1e400`` through an open range); text files must be UTF-8; each bad
input is one line on stderr and exit 2, through the real CLI in a child process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import hostile
from tests.support.kube_fixtures import TestApiServer
from tests.support.measure import BUDGET_SECONDS, Measured, run_measured

CORPUS = hostile.HERE
NOT_UTF8 = str(CORPUS / "not-utf8.bin")
SCHEDULE = "start=0 8 * * 1-5;end=0 18 * * 1-5;replicas=2"


def _usage_error(result: Measured, *phrases: str) -> None:
    assert result.code == 2, (result.code, result.stdout[-300:], result.stderr)
    assert result.seconds <= BUDGET_SECONDS
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["simulate", "--rps", "-5"], "Invalid value for '--rps'"),
        (["simulate", "--rps", "nan"], "'nan' is not a finite number"),
        (["simulate", "--rps", "inf"], "'inf' is not a finite number"),
        (["simulate", "--rps", "1e400"], "is not a finite number"),
        (["simulate", "--price", "-1"], "Invalid value for '--price'"),
        (["simulate", "--price", "nan"], "is not a finite number"),
        (["simulate", "--prompt-tokens", "0"], "Invalid value for '--prompt-tokens'"),
        (["simulate", "--duration", "inf"], "is not a finite duration"),
        (["simulate", "--slo-ttft", "nan"], "is not a finite duration"),
        (["simulate", "--policy", "keda:min=-3"], "bad policy option min=-3"),
        (["simulate", "--policy", "knative:target=nan"], "bad policy option target=nan"),
        (["simulate", "--trace", NOT_UTF8], "cannot read trace"),
        (["simulate", "--cold-start", NOT_UTF8], "cannot read cold-start profile"),
        (["migrate-hpa", "-f", "x.yaml", "--target-queue", "nan"], "'nan' is not a finite number"),
        (["migrate-hpa", "-f", "x.yaml", "--target-queue", "inf"], "'inf' is not a finite number"),
        (["migrate-hpa", "-f", "x.yaml", "--kv-cache", "nan"], "is not a finite number"),
        (
            ["migrate-hpa", "-f", "x.yaml", "--schedule", f"timezone=Nowhere/Zone;{SCHEDULE}"],
            "'Nowhere/Zone' is not an IANA time zone",
        ),
        (["top", "--demo", "--once", "--speed", "nan"], "is not a finite number"),
        (["top", "--demo", "--once", "--interval", "nan"], "is not a finite duration"),
        (["doctor", "-f", NOT_UTF8], "not UTF-8"),
        (["coldstart", "--pod", NOT_UTF8], "cannot read pod"),
        (["coldstart", "--pod", str(CORPUS / "pod-malformed.json")], "cannot parse pod"),
        (
            ["coldstart", "--pod", str(CORPUS / "pod-conditions-string.json")],
            "status.conditions must be a list",
        ),
        (
            [
                "checkpoint",
                "restore",
                "checkpoint-a_b-c-2026-01-01T00:00:00Z.tar",
                "--node",
                "n",
                "--registry",
                "r",
                "-f",
                NOT_UTF8,
                "--dry-run=client",
            ],
            "cannot read Pod manifest",
        ),
        (["status", "--kubeconfig", str(CORPUS / "kubeconfig-not-yaml")], "it is not valid YAML (line 4)"),
    ],
)
def test_bad_flag_or_file_is_a_usage_error(args: list[str], phrase: str) -> None:
    _usage_error(
        run_measured(
            [*args, *(["--duration", "1h"] if args[0] == "simulate" and "--duration" not in args else [])]
        ),
        phrase,
    )


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"phases": ' + "[" * 100_000 + "]" * 100_000 + "}"],
    ids=["lists", "phases"],
)
def test_deeply_nested_cold_start_profile(tmp_path: Path, text: str) -> None:
    """Was: RecursionError from json.loads ("internal error")."""
    path = tmp_path / "cold.json"
    path.write_text(text)
    _usage_error(
        run_measured(["simulate", "--cold-start", str(path), "--duration", "1h"]), "nested too deeply"
    )


def test_valid_schedule_timezone_still_accepted(tmp_path: Path) -> None:
    from kubectl_gpuscale.cli.migrate import _known_timezone

    assert _known_timezone("Europe/Berlin") and _known_timezone("UTC") and not _known_timezone("Nowhere/Zone")


def test_zero_price_and_durations_with_units_still_run() -> None:
    result = run_measured(
        ["simulate", "--duration", "1h", "--price", "0", "--policy", "keda:min=0", "-o", "json"], timeout=60
    )
    assert result.code == 0, result.stderr


@pytest.mark.parametrize(
    "events",
    [
        '{"items": [{"involvedObject": "pod/x", "reason": "Pulled"}]}',
        '{"items": [{"reason": ["Pulled"], "message": "m"}]}',
        '[{"count": "many", "reason": "BackOff"}]',
    ],
)
def test_events_file_of_the_wrong_shape(tmp_path: Path, events: str) -> None:
    path = tmp_path / "events.json"
    path.write_text(events)
    _usage_error(run_measured(["coldstart", "--events", str(path)]), f"cannot read {path}")


def test_fetch_onto_a_directory_is_refused_before_any_request(
    apiserver: TestApiServer, tmp_path: Path
) -> None:
    archive = "checkpoint-vllm-0_ml-vllm-2026-03-13T21:43:06Z.tar"
    (tmp_path / archive).mkdir()
    apiserver.reset_requests()
    result = run_measured(
        [
            "checkpoint",
            "fetch",
            archive,
            "--node",
            "gpu-node-1",
            "-o",
            str(tmp_path),
            "--overwrite",
            "--kubeconfig",
            apiserver.kubeconfig,
        ]
    )
    _usage_error(result, "it is a directory")
    assert not [r for r in apiserver.requests if r.method == "POST"]


@pytest.mark.parametrize(
    ("rows", "phrase"),
    [
        ("0,10,10\n1e12,10,10\n", "spans more than 35 days"),
        ("0,1e400,10\n", "finite non-negative"),
        ("inf,10,10\n", "finite"),
        ("0.0,\r,0", "cannot parse trace"),
    ],
)
def test_hostile_traces(tmp_path: Path, rows: str, phrase: str) -> None:
    """A 2-line trace spanning 31,000 years allocated one count per second (the kernel killed it)."""
    path = tmp_path / "trace.csv"
    path.write_bytes(rows.encode())
    _usage_error(run_measured(["simulate", "--trace", str(path), "--policy", "keda"]), phrase)


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "-f", "/dev/zero"],
        ["coldstart", "-f", "/dev/zero"],
        ["simulate", "--trace", "/dev/zero"],
        ["migrate-hpa", "-f", "/dev/urandom"],
    ],
)
def test_devices_are_not_read(args: list[str]) -> None:
    _usage_error(run_measured(args), "it is a device")


def test_text_inputs_are_capped(tmp_path: Path) -> None:
    from kubectl_gpuscale.errors import InputError
    from kubectl_gpuscale.inputs import read_text

    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 2048)
    with pytest.raises(InputError, match="larger than"):
        read_text(str(path), "manifest", limit=1024)
    assert read_text(str(path), "manifest", limit=4096).startswith("#")
