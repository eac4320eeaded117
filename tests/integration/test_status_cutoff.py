"""`trial status` between the deadline's cut-off and the reap: the trial is still `active` in
the store, but its access is gone, and the human and --json output say so (real CLI, real engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import deadlines
from orchestrator.config import load_settings
from orchestrator.errors import SandboxError
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.docker


def trial(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


class Forge:
    def revoke(self, repo: Any, login: str) -> None: ...

    def revoke_sandbox_access(self, repo: Any, access_key_id: str | None) -> None: ...


class Sandbox:
    """The cut-off's view of the engine; `down` makes stopping fail as a stopped engine would."""

    def __init__(self, down: bool) -> None:
        self.down = down

    def find(self, trial_id: str, role: str = "sandbox") -> Any:
        if self.down:
            raise SandboxError("[engine] Docker Engine is not reachable")  # brackets: not rich markup
        return None

    def stop(self, ref: Any, timeout_s: int = 10) -> None: ...


def test_status_says_when_access_was_cut_and_what_is_still_open(trial_home: Path) -> None:
    store = Store.open(load_settings().home)
    past = utcnow() - timedelta(minutes=5)
    for tid in ("tcutdone1", "tcuthalf1", "topen0001"):
        store.create_trial(Trial(tid, "api-keys", "octocat", "none", "active", past, past, 1, 1,
                                 deadline=past if tid != "topen0001" else utcnow() + timedelta(hours=1)))
    deadlines.cut_off(store, "tcutdone1", Forge, lambda: Sandbox(down=False))
    deadlines.cut_off(store, "tcuthalf1", Forge, lambda: Sandbox(down=True))
    store.close()

    data = json.loads(trial("status", "tcutdone1", "--json").stdout)["data"]
    assert data["trial"]["state"] == "active"  # the store's state: the reap has not run
    cut_at = data["cutoff"]["at"]
    assert data["cutoff"]["pending"] == [] and data["cutoff"]["done"] == list(deadlines.CUTOFF_PARTS)
    assert data["state"].startswith(f"active (access cut at {cut_at}")
    assert "ssh" not in data  # the sandbox is stopped: no connect line to mislead
    human = trial("status", "tcutdone1").stdout
    assert f"active (access cut at {cut_at}; `trial reap` collects it)" in human

    half = json.loads(trial("status", "tcuthalf1", "--json").stdout)["data"]
    assert half["cutoff"]["pending"] == ["sandbox"]
    assert "sandbox not yet cut; sandbox: [engine] Docker Engine is not reachable" in half["state"]
    shown = trial("status", "tcuthalf1").stdout
    assert "access being cut since" in shown and "[engine] Docker Engine is not reachable" in shown

    still_open = json.loads(trial("status", "topen0001", "--json").stdout)["data"]
    assert "cutoff" not in still_open and still_open["state"] == "active"
    assert "access" not in trial("status", "topen0001").stdout
