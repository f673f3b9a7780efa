"""The root CLI as a user meets it: help, version, exit codes, one-line errors, import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubectl_gpuscale import __version__
from kubectl_gpuscale.cli import main, prog_name
from kubectl_gpuscale.cli.options import KubeOptions, kube_options
from kubectl_gpuscale.cli.output import as_list, dump, object_name
from kubectl_gpuscale.cli.root import COMMANDS, cli
from kubectl_gpuscale.errors import ConflictError, InputError

HEAVY = ("kubernetes", "textual", "prometheus_api_client")
PLUGIN = str(Path(sys.executable).parent / "kubectl-gpuscale")


def run_plugin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLUGIN, *args], capture_output=True, text=True, timeout=60)


def test_help_reads_as_a_kubectl_plugin() -> None:
    result = run_plugin("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: kubectl gpuscale [OPTIONS] COMMAND [ARGS]...")
    assert "version" in result.stdout


def test_prog_name_by_invocation() -> None:
    assert prog_name("/usr/local/bin/kubectl-gpuscale") == "kubectl gpuscale"
    assert prog_name("/x/kubectl_complete-gpuscale") == "kubectl gpuscale"
    assert prog_name("gpuscale-dev") == "gpuscale-dev"


def test_version_text_and_json() -> None:
    text = run_plugin("version")
    assert text.returncode == 0 and __version__ in text.stdout
    data = json.loads(run_plugin("version", "-o", "json").stdout)
    assert data["version"] == __version__


def test_python_dash_m_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubectl_gpuscale", "version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["-h"]])
def test_start_up_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from kubectl_gpuscale.cli import main\n"
        f"sys.argv = ['kubectl-gpuscale', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}], file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_every_registered_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, f"{name} is registered but its module is missing"
        paths = [[name]]
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(click.Context(command))]
        for path in paths:
            result = runner.invoke(cli, [*path, "--help"])
            assert result.exit_code == 0, (path, result.output)
            assert "Example" in result.output, f"{' '.join(path)} --help has no example"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["no-such-command"])
    assert stop.value.code == 2
    assert "No such command" in capsys.readouterr().err


def _failing_command(error: Exception) -> click.Command:
    @click.command()
    def boom() -> None:
        raise error

    return boom


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            InputError("cannot read x.yaml", "not YAML", "check the file"),
            2,
            "error: cannot read x.yaml: not YAML; check the file",
        ),
        (
            ConflictError("cannot apply ScaledObject ml/v", "conflict", "re-run with --force-conflicts"),
            1,
            "error: cannot apply ScaledObject ml/v: conflict; re-run with --force-conflicts",
        ),
        (RuntimeError("kaboom"), 1, "error: internal error: RuntimeError: kaboom; run again with --debug"),
    ],
)
def test_errors_are_one_line_with_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    code: int,
    line: str,
) -> None:
    monkeypatch.setitem(cli.commands, "boom", _failing_command(error))  # type: ignore[attr-defined]
    monkeypatch.delenv("GPUSCALE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        main(["boom"])
    err = capsys.readouterr().err
    assert stop.value.code == code
    assert err.startswith(line) and err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "boom", _failing_command(RuntimeError("kaboom")))  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        main(["--debug", "boom"])


def test_kube_options_after_the_command_name() -> None:
    seen: list[KubeOptions] = []

    @click.command()
    @kube_options(writes=True)
    def probe(kube: KubeOptions) -> None:
        seen.append(kube)

    result = CliRunner().invoke(
        probe,
        [
            "-n",
            "ml",
            "-l",
            "app=vllm",
            "-o",
            "yaml",
            "--dry-run=server",
            "--context",
            "gpu",
            "--request-timeout",
            "2m",
            "--force-conflicts",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen[0] == KubeOptions(
        namespace="ml",
        selector="app=vllm",
        output="yaml",
        dry_run="server",
        context="gpu",
        request_timeout=120.0,
        force_conflicts=True,
    )


def test_dry_run_has_no_bare_form() -> None:
    @click.command()
    @kube_options(writes=True)
    def probe(kube: KubeOptions) -> None:
        pass

    assert CliRunner().invoke(probe, ["--dry-run"]).exit_code == 2
    assert CliRunner().invoke(probe, ["--dry-run=yes"]).exit_code == 2
    assert CliRunner().invoke(probe, ["--request-timeout", "soon"]).exit_code == 2


def test_output_helpers() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vllm"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "s"}}
    assert [object_name(o) for o in (deploy, pod, so)] == [
        "deployment.apps/vllm",
        "pod/p",
        "scaledobject.keda.sh/s",
    ]
    listed = as_list([deploy, pod])
    assert listed["kind"] == "List" and listed["items"] == [deploy, pod]
    assert json.loads(dump(listed, "json")) == listed
    assert "query: |-\n" in dump({"query": "sum(\n x)"}, "yaml")


def test_ctx_exit_code_reaches_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command()
    @click.pass_context
    def finding(ctx: click.Context) -> None:
        ctx.exit(1)

    monkeypatch.setitem(cli.commands, "finding", finding)  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as stop:
        main(["finding"])
    assert stop.value.code == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1m2.5s", 62.5),
        ("30d", 2592000.0),
        ("845µs", 0.000845),
    ],
)
def test_one_duration_parser(text: str, seconds: float) -> None:
    from kubectl_gpuscale.units import duration_seconds, optional_duration

    assert duration_seconds(text) == pytest.approx(seconds)
    assert optional_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "1 minute", "5x", "m5", ""])
def test_durations_rejected(text: str) -> None:
    from kubectl_gpuscale.units import duration_seconds, optional_duration

    with pytest.raises(ValueError):
        duration_seconds(text)
    assert optional_duration(text) is None
