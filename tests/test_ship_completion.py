"""Shell completion: the scripts `completion bash|zsh|fish` prints, and kubectl's plugin protocol
(`kubectl __complete gpuscale …` runs `kubectl_complete-gpuscale`) through the real kubectl binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_gpuscale.cli.completion import COMPLETE_VAR, KUBECTL_SHIM, cobra_completions
from kubectl_gpuscale.cli.root import COMMANDS, LazyGroup, cli

VENV_BIN = Path(sys.executable).parent
PLUGIN = VENV_BIN / "kubectl-gpuscale"
COMPLETER = VENV_BIN / "kubectl_complete-gpuscale"


def available_commands() -> list[str]:
    return [name for name in COMMANDS if LazyGroup._available(name)]


def plugin_env(path_dirs: list[Path], home: Path) -> dict[str, str]:
    """A bare environment: only the given directories and the system's on PATH."""
    return {
        "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def values(lines: list[str]) -> list[str]:
    return [line.split("\t", 1)[0] for line in lines[:-1]]


@pytest.mark.parametrize("name", available_commands())
def test_every_command_completes_from_its_prefix(name: str) -> None:
    lines = cobra_completions([name[:3]])
    assert name in values(lines)
    assert lines[-1] == ":4", "commands are not files"
    assert all(v.startswith(name[:3]) for v in values(lines))


def test_option_values_and_file_directive() -> None:
    assert values(cobra_completions(["version", "-o", ""])) == ["text", "json", "yaml"]
    assert cobra_completions(["version", "-o", "j"]) == ["json", ":4"]
    # --kubeconfig takes a path: no candidates, cobra's default directive lets the shell complete files.
    if "status" in available_commands():
        assert cobra_completions(["status", "--kubeconfig", ""]) == [":0"]


def test_help_text_rides_after_a_tab() -> None:
    lines = cobra_completions(["versio"])
    assert lines[0].startswith("version\t") and "version" in lines[0].split("\t")[1].lower()


def test_nonsense_never_raises() -> None:
    assert cobra_completions(["no-such-command", "--what", ""])[-1].startswith(":")
    assert cobra_completions([])[-1] == ":4"


def test_completion_bash_is_valid_bash_and_completes(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash, "bash is part of the base system"
    script = subprocess.run(
        [str(PLUGIN), "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout
    assert f"{COMPLETE_VAR}=bash_complete" in script
    subprocess.run([bash, "-n"], input=script, text=True, check=True)
    (tmp_path / "completion.bash").write_text(script)
    # Source the script in a real bash and run the completion function the way readline would.
    probe = (
        f"source {tmp_path / 'completion.bash'}\n"
        "COMP_WORDS=(kubectl-gpuscale vers); COMP_CWORD=1\n"
        "_kubectl_gpuscale_completion kubectl-gpuscale\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(
        [bash, "--norc", "-c", probe], capture_output=True, text=True, env=plugin_env([VENV_BIN], tmp_path)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["version"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("zsh", "#compdef kubectl-gpuscale"), ("fish", "complete --no-files --command kubectl-gpuscale")],
)
def test_completion_zsh_fish_scripts(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output and f"{COMPLETE_VAR}={shell}_complete" in result.output
    if shutil.which(shell):
        subprocess.run([shell, "-n"], input=result.output, text=True, check=True)


def test_unknown_shell_is_a_usage_error() -> None:
    out = subprocess.run([str(PLUGIN), "completion", "tcsh"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "bash, zsh, fish" in out.stderr and "Traceback" not in out.stderr


def test_console_script_prints_cobra_format() -> None:
    assert COMPLETER.exists(), "kubectl_complete-gpuscale is a console script: pip install -e ."
    out = subprocess.run([str(COMPLETER), "version", "-o", "y"], capture_output=True, text=True, check=True)
    assert out.stdout == "yaml\n:4\n"


def test_kubectl_plugin_completion_through_real_kubectl(kubectl_bin: str, tmp_path: Path) -> None:
    """kubectl >= 1.26 runs kubectl_complete-gpuscale for `kubectl gpuscale <TAB>`."""
    env = plugin_env([VENV_BIN], tmp_path)
    plugins = subprocess.run(
        [kubectl_bin, "__complete", "gpus"], capture_output=True, text=True, env=env, check=True
    )
    assert "gpuscale" in values(plugins.stdout.splitlines())
    target = "migrate-hpa" if "migrate-hpa" in available_commands() else "version"
    out = subprocess.run(
        [kubectl_bin, "__complete", "gpuscale", target[:3]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert target in values(out.stdout.splitlines())
    assert out.stdout.rstrip().endswith(":4")
    flags = subprocess.run(
        [kubectl_bin, "__complete", "gpuscale", "version", "-o", ""],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert values(flags.stdout.splitlines()) == ["text", "json", "yaml"]


def test_kubectl_shim_for_krew_installs(kubectl_bin: str, tmp_path: Path) -> None:
    """Krew installs only kubectl-gpuscale; `completion kubectl` writes the completer shim."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl-gpuscale").symlink_to(PLUGIN)
    shim = subprocess.run(
        [str(PLUGIN), "completion", "kubectl"], capture_output=True, text=True, check=True
    ).stdout
    assert shim == KUBECTL_SHIM
    (bin_dir / "kubectl_complete-gpuscale").write_text(shim)
    (bin_dir / "kubectl_complete-gpuscale").chmod(0o755)
    out = subprocess.run(
        [kubectl_bin, "__complete", "gpuscale", "vers"],
        capture_output=True,
        text=True,
        env=plugin_env([bin_dir], tmp_path),
        check=True,
    )
    assert values(out.stdout.splitlines()) == ["version"]
