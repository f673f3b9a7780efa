"""The exit statuses the CLI promises (docs/architecture.md): the numbers scripts and CI test against."""

from __future__ import annotations

import signal

import pytest

from kubectl_gpuscale.cli import main
from kubectl_gpuscale.errors import ExitStatus, GpuscaleError, InputError


def test_statuses_keep_their_numbers() -> None:
    assert [int(s) for s in (ExitStatus.OK, ExitStatus.FAILURE, ExitStatus.USAGE)] == [0, 1, 2]
    assert ExitStatus.INTERRUPTED == 130 and ExitStatus.TERMINATED == 143 and ExitStatus.HANGUP == 129
    assert ExitStatus.for_signal(signal.SIGTERM) is ExitStatus.TERMINATED
    assert ExitStatus.for_signal(signal.SIGUSR1) == 128 + signal.SIGUSR1
    assert GpuscaleError("x").exit_code == 1 and InputError("x").exit_code == 2


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--version"], ExitStatus.OK),
        (["no-such-command"], ExitStatus.USAGE),
        (["simulate", "--duration", "-5"], ExitStatus.USAGE),
    ],
)
def test_main_exits_with_the_status(argv: list[str], status: ExitStatus) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == status
