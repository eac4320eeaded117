"""The CLI imports a command's module only when that command is used; every command is still there."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from orchestrator.cli.main import _COMMANDS, cli


@pytest.mark.unit
def test_every_listed_command_resolves_under_its_own_name() -> None:
    ctx = click.Context(cli)
    assert set(cli.list_commands(ctx)) == set(_COMMANDS)
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


@pytest.mark.unit
def test_starting_the_cli_does_not_import_other_commands_modules() -> None:
    probe = ("import sys, orchestrator.cli.main; "
             "print(' '.join(m for m in ('orchestrator.cli.cohort', 'orchestrator.cli.scores', "
             "'orchestrator.cli.grade', 'orchestrator.report.scores') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
