"""`sandbox.egress = host-only` is a requirement: where the host filter cannot be written, launch
refuses up front (one line, exit 3, nothing created) instead of starting an open sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli, main
from orchestrator.sandbox import egress

pytestmark = pytest.mark.docker


def test_explicit_host_only_egress_refuses_to_launch_where_it_cannot_be_enforced(
        trial_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(egress.os, "geteuid", lambda: 1000)  # as an ordinary user would run trial
    monkeypatch.setenv("TRIAL_SANDBOX_EGRESS", "host-only")
    with pytest.raises(SystemExit) as exited:  # the CLI's own entry point: errors become exit codes
        main(["launch", "api-keys", "--candidate", "octocat", "--agent", "none"])
    assert exited.value.code == 3
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "sandbox.egress = host-only cannot be enforced: writing iptables rules needs root" in line
    listed = CliRunner().invoke(cli, ["ls", "--json"])
    assert json.loads(listed.output)["data"] == []
    assert not (trial_home / "forge").exists()
