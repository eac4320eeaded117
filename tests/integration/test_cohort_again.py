"""A second plain `trial launch` for a candidate with a live trial of that template refuses in one
line (exit 2, naming the trial and --again) and creates nothing; with --again it launches. In a
cohort the same refusal is that row's error, and the other rows launch.

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

    # In a cohort, that candidate's row fails (naming the trial and --again) and the other row still launches.
    cohort_file = trial_home.parent / "autumn.csv"
    cohort_file.write_text("candidate,template,agent,hours\nocto-cat,api-keys,none,1\nhu-bot,api-keys,none,1\n")
    partial = trial("cohort", "launch", str(cohort_file), "--json")
    assert partial.returncode == 4, partial.stderr[-3000:]
    rows = {row["candidate"]: row for row in json.loads(partial.stdout)["data"]["rows"]}
    assert rows["hu-bot"]["action"] == "launched" and rows["hu-bot"]["state"] == "active"
    assert rows["octo-cat"]["action"] == "failed" and "--again" in rows["octo-cat"]["error"]
    again = trial("cohort", "launch", str(cohort_file), "--again", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = {row["candidate"]: row for row in json.loads(again.stdout)["data"]["rows"]}
    assert (rows["octo-cat"]["action"], rows["hu-bot"]["action"]) == ("launched", "exists")
    cohort_ids = [t["id"] for t in json.loads(trial("ls", "--cohort", "autumn", "--json").stdout)["data"]]
    assert len(cohort_ids) == 2 and len(json.loads(trial("ls", "--json").stdout)["data"]) == 4

    engine = docker.from_env()
    torn = trial("cohort", "teardown", "autumn", "--yes", "--delete-repo", "--json")
    assert torn.returncode == 0, torn.stdout[-3000:]
    for ident in (first_id, second_id):
        assert trial("teardown", ident, "--delete-repo", "--yes").returncode == 0
        assert engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={ident}"}) == []
