"""A second plain `trial launch` for a candidate with a live trial of that template refuses in one
line (exit 2, naming the trial and --again) and creates nothing; with --again it launches.

Before: the second launch made a second trial and exited 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.sandbox.base import LABEL_TRIAL

pytestmark = pytest.mark.docker


def trial(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=900, check=False)


@pytest.fixture
def stop_service() -> Any:
    yield
    trial("serve", "--stop")


def test_a_second_launch_refuses_unless_again(trial_home: Path, service_port: int, stop_service: None) -> None:
    launch = ("launch", "api-keys", "--candidate", "octo-cat", "--agent", "none", "--hours", "1")
    first = trial(*launch, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    first_id = json.loads(first.stdout)["data"]["trial"]["id"]

    refused = trial(*launch)
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert first_id in line and "--again" in line
    listed = json.loads(trial("ls", "--json").stdout)["data"]
    assert [t["id"] for t in listed] == [first_id]

    second = trial(*launch, "--again", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    second_id = json.loads(second.stdout)["data"]["trial"]["id"]
    assert second_id != first_id
    assert len(json.loads(trial("ls", "--json").stdout)["data"]) == 2

    engine = docker.from_env()
    for ident in (first_id, second_id):
        assert trial("teardown", ident, "--delete-repo", "--yes").returncode == 0
        assert engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={ident}"}) == []
