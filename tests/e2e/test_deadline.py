"""The deadline is a real cutoff, enforced by the host service itself: at the deadline, with no
`trial reap`, the sandbox stops and its token fails; pushes after it (here straight into the
forge's bare repo, as a forge-side push would land) are listed as late and never graded;
`trial reap` then collects the trial once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from graders.repo import choose_revision, open_repo
from orchestrator.config import load_settings
from orchestrator.evidence.bundle import Bundle
from orchestrator.sandbox.docker import DockerBackend

pytestmark = pytest.mark.e2e
HOURS = 0.005  # 18 s: long enough to launch and push, short enough to wait out
GIT_ID = {"GIT_AUTHOR_NAME": "Late", "GIT_AUTHOR_EMAIL": "late@x", "GIT_COMMITTER_NAME": "Late",
          "GIT_COMMITTER_EMAIL": "late@x"}


def trial(*args: str, ok: bool = True) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    envelope: dict[str, Any] = json.loads(done.stdout)
    return envelope


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ID, "GIT_TERMINAL_PROMPT": "0"})
    assert not check or done.returncode == 0, done.stderr
    return done


def test_the_service_ends_access_at_the_deadline_and_late_pushes_are_not_graded(
        trial_home: Path, service_port: int, tmp_path: Path) -> None:
    launched = trial("launch", "api-keys", "--candidate", "octocat", "--agent", "none", "--hours", str(HOURS))
    trial_id = launched["data"]["trial"]["id"]
    deadline = datetime.fromisoformat(launched["data"]["trial"]["deadline"])
    try:
        in_time = trial("candidate-push", trial_id, "--branch", "before-deadline", "--message", "In time")["data"]
        backend = DockerBackend(load_settings().sandbox)
        ref = backend.find(trial_id)
        assert ref is not None
        token = backend.exec(ref, ["cat", "/home/candidate/.trial/token"]).stdout.strip()
        repo_name = trial("status", trial_id)["data"]["trial"]["data"]["repo"]["name"]
        url = f"http://trial:{token}@127.0.0.1:{service_port}/git/{repo_name}.git"
        assert git("ls-remote", url, cwd=tmp_path).returncode == 0

        # No reaper runs: the host service alone must end access, within seconds of the deadline.
        limit = time.monotonic() + (deadline - datetime.now(deadline.tzinfo)).total_seconds() + 6
        while time.monotonic() < limit and backend.status(ref) == "running":
            time.sleep(0.5)
        assert backend.status(ref) != "running", "the sandbox still runs after the deadline"
        assert datetime.now(deadline.tzinfo) >= deadline
        refused = git("ls-remote", url, cwd=tmp_path, check=False)
        assert refused.returncode != 0 and "token refused" in refused.stderr
        status = trial("status", trial_id)["data"]["trial"]
        assert status["data"]["cutoff"]["done"] == ["token", "forge", "sandbox"]
        assert backend.find(trial_id) is not None  # stopped, not removed: the volumes wait for collect

        # A push after the deadline that reached the forge anyway (straight into the bare repo):
        # a new branch, and the in-time branch rewritten.
        bare = load_settings().forge_dir / f"{repo_name}.git"
        work = tmp_path / "late"
        git("clone", "-q", str(bare), str(work), cwd=tmp_path)
        git("checkout", "-q", "before-deadline", cwd=work)
        git("commit", "-q", "--amend", "--allow-empty", "-m", "Rewritten after the deadline", cwd=work)
        git("push", "-q", "--force", "origin", "HEAD:before-deadline", cwd=work)
        git("push", "-q", "origin", "HEAD:refs/heads/after-deadline", cwd=work)
        late_sha = git("rev-parse", "HEAD", cwd=work).stdout.strip()

        reaped = trial("reap")["data"]
        assert [o["trial_id"] for o in reaped["outcomes"] if o["collected"]] == [trial_id]
        assert trial("reap")["data"]["collected"] == 0  # collected once
        bundle = Bundle(Path(trial("status", trial_id)["data"]["bundle"]))
        manifest = bundle.manifest()
        late = {(p["ref"], p["after"]) for p in manifest["late_pushes"]}
        assert late == {("refs/heads/before-deadline", late_sha), ("refs/heads/after-deadline", late_sha)}
        assert manifest["refs_at_deadline"]["refs/heads/before-deadline"] == in_time["sha"]
        assert {p["ref"] for p in bundle.pushes() if p["late"]} == {"refs/heads/before-deadline",
                                                                     "refs/heads/after-deadline"}
        with open_repo(bundle) as repo:
            revision = choose_revision(bundle, repo)
        assert (revision.sha, revision.at_deadline) == (in_time["sha"], True)
    finally:
        trial("teardown", trial_id, "--delete-repo", "--yes")
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], capture_output=True,
                       env=os.environ.copy(), timeout=60)
