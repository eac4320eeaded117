"""The deadline, enforced by the host: what `cut_off` ends and in what order, how the service's
watcher wakes at it, and that graders grade the refs as they stood at it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from graders.repo import choose_revision, open_repo
from orchestrator import deadlines
from orchestrator.errors import SandboxError
from orchestrator.evidence.bundle import Bundle, write_manifest
from orchestrator.service.deadline_watch import DeadlineWatcher
from orchestrator.store import Store, Trial, iso, utcnow

pytestmark = pytest.mark.unit

REPO = {"forge": "local", "name": "trial-x", "full_name": "trial-x", "web_url": "file:///x",
        "default_branch": "main", "trial_id": "tcut00001"}


class Forge:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def revoke(self, repo: Any, login: str) -> None:
        self.calls.append(f"revoke {repo.name} {login}")

    def revoke_sandbox_access(self, repo: Any, access_key_id: str | None) -> None:
        self.calls.append(f"revoke_sandbox_access {repo.name} {access_key_id}")


class Sandbox:
    def __init__(self, fail: int = 0) -> None:
        self.stopped: list[str] = []
        self.fail = fail

    def find(self, trial_id: str, role: str = "sandbox") -> Any:
        if self.fail:
            self.fail -= 1
            raise SandboxError("Docker Engine is not reachable")
        return f"container-of-{trial_id}"

    def stop(self, ref: Any, timeout_s: int = 10) -> None:
        self.stopped.append(ref)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "home")


def active(store: Store, trial_id: str, deadline_in: timedelta) -> Trial:
    now = utcnow()
    trial = store.create_trial(Trial(trial_id, "api-keys", "octocat", "none", "active", now, now, 1, 10,
                                     deadline=now + deadline_in, data={"repo": {**REPO, "trial_id": trial_id}}))
    store.mint_token(trial_id, "sandbox", now + timedelta(hours=1))  # an expiry later than the deadline
    return trial


def test_cut_off_ends_token_forge_access_and_sandbox_once_and_retries_what_failed(store: Store) -> None:
    active(store, "tcut00001", timedelta(seconds=-1))
    forge, sandbox = Forge(), Sandbox(fail=1)
    record = deadlines.cut_off(store, "tcut00001", lambda: forge, lambda: sandbox)
    assert record["done"] == ["token", "forge"] and "sandbox" in record["errors"]
    assert all(not t.usable() for t in store.tokens("tcut00001"))
    assert forge.calls == ["revoke trial-x octocat", "revoke_sandbox_access trial-x None"]
    assert [t.id for t in deadlines.due_for_cutoff(store, utcnow())] == ["tcut00001"]  # not finished

    again = deadlines.cut_off(store, "tcut00001", lambda: forge, lambda: sandbox)
    assert again["done"] == ["token", "forge", "sandbox"] and again["errors"] == {}
    assert sandbox.stopped == ["container-of-tcut00001"] and len(forge.calls) == 2  # nothing done twice
    assert deadlines.due_for_cutoff(store, utcnow()) == []
    trial = store.get_trial("tcut00001")
    assert trial.state == "active"  # `trial reap` still claims and collects it
    assert [e["kind"] for e in store.events("tcut00001")].count("trial.cutoff") == 1


def test_cut_off_leaves_a_trial_alone_before_its_deadline_or_once_it_is_collected(store: Store) -> None:
    active(store, "tcut00001", timedelta(minutes=5))
    forge, sandbox = Forge(), Sandbox()
    assert deadlines.cut_off(store, "tcut00001", lambda: forge, lambda: sandbox) == {"skipped": True}
    store.update_trial("tcut00001", state="collected", deadline=utcnow() - timedelta(seconds=1))
    assert deadlines.cut_off(store, "tcut00001", lambda: forge, lambda: sandbox) == {"skipped": True}
    assert forge.calls == [] and sandbox.stopped == []


def test_the_watcher_wakes_at_the_deadline_and_follows_an_extension(store: Store) -> None:
    now = utcnow()
    first = now.replace(microsecond=0) + timedelta(seconds=2)  # the store keeps whole seconds
    active(store, "tcut00001", first - now)
    forge, sandbox = Forge(), Sandbox()
    watcher = DeadlineWatcher(store, lambda: forge, lambda: sandbox, tick_s=0.2)

    async def run_until(moment: Any) -> None:
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(max(0.0, (moment - utcnow()).total_seconds()))
        task.cancel()

    moved = deadlines.extend(store, "tcut00001", 2.0 / 3600)  # from another "process", before the deadline
    asyncio.run(run_until(first + timedelta(seconds=0.7)))
    assert sandbox.stopped == []  # the old deadline passed, the new one not yet
    asyncio.run(run_until(moved.new_deadline + timedelta(seconds=0.7)))
    assert sandbox.stopped == ["container-of-tcut00001"]
    cutoff = store.get_trial("tcut00001").data["cutoff"]
    assert str(iso(moved.new_deadline)) <= cutoff["at"] <= str(iso(moved.new_deadline + timedelta(seconds=1)))


def test_a_restarted_service_cuts_off_what_came_due_while_it_was_down(store: Store) -> None:
    active(store, "tcut00001", timedelta(minutes=-10))
    active(store, "tcut00002", timedelta(minutes=10))
    forge, sandbox = Forge(), Sandbox()
    fresh = DeadlineWatcher(store, lambda: forge, lambda: sandbox, tick_s=5)  # nothing carried over
    wait = asyncio.run(fresh.pass_once())
    assert sandbox.stopped == ["container-of-tcut00001"]
    assert wait == 5  # the other deadline is further away than a tick


def test_late_pushes_are_those_after_the_deadline() -> None:
    deadline = utcnow()
    pushes = [{"ts": iso(deadline - timedelta(seconds=1)), "ref": "refs/heads/a"},
              {"ts": iso(deadline), "ref": "refs/heads/b"},
              {"ts": iso(deadline + timedelta(seconds=1)), "ref": "refs/heads/c"}]
    assert [p["ref"] for p in deadlines.late_pushes(pushes, deadline)] == ["refs/heads/c"]
    assert deadlines.late_pushes(pushes, None) == []


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "o", "GIT_AUTHOR_EMAIL": "o@x", "GIT_COMMITTER_NAME": "o",
           "GIT_COMMITTER_EMAIL": "o@x"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_graders_grade_the_pull_request_as_it_stood_at_the_deadline(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    _git("commit", "-q", "--allow-empty", "-m", "Starter", cwd=work)
    _git("checkout", "-q", "-b", "feature", cwd=work)
    _git("commit", "-q", "--allow-empty", "-m", "In time", cwd=work)
    in_time = _git("rev-parse", "HEAD", cwd=work).strip()
    # After the deadline: the branch is rewritten (the in-time commit is kept only by a pinned ref,
    # as collect pins it) and a new branch appears.
    _git("update-ref", "refs/trial/at-deadline/heads/feature", in_time, cwd=work)
    _git("commit", "-q", "--amend", "--allow-empty", "-m", "Late rewrite", cwd=work)
    late = _git("rev-parse", "HEAD", cwd=work).strip()
    _git("checkout", "-q", "-b", "late-branch", cwd=work)
    _git("commit", "-q", "--allow-empty", "-m", "Late branch", cwd=work)
    main = _git("rev-parse", "main", cwd=work).strip()

    bundle_dir = tmp_path / "bundle"
    (bundle_dir / "pulls").mkdir(parents=True)
    _git("bundle", "create", str(bundle_dir / "repo.bundle"), "--all", cwd=work)
    (bundle_dir / "pulls" / "1.json").write_text(json.dumps(
        {"number": 1, "state": "open", "head_ref": "feature", "head_sha": late, "base_sha": main,
         "created_at": "2026-01-01T10:00:00+00:00"}))
    (bundle_dir / "pulls" / "2.json").write_text(json.dumps(
        {"number": 2, "state": "open", "head_ref": "late-branch", "head_sha": "f" * 40, "base_sha": main,
         "created_at": "2026-01-01T11:00:00+00:00"}))
    write_manifest(bundle_dir, {"trial": {"repo": REPO},
                                "refs_at_deadline": {"refs/heads/main": main, "refs/heads/feature": in_time}})
    bundle = Bundle(bundle_dir)
    with open_repo(bundle) as repo:
        revision = choose_revision(bundle, repo)
    assert (revision.sha, revision.pr_number, revision.at_deadline) == (in_time, 1, True)

    write_manifest(bundle_dir, {"trial": {"repo": REPO}})  # collected without a deadline: heads at collect
    with open_repo(bundle) as repo:
        assert choose_revision(bundle, repo).sha == late


def test_collect_measures_the_repository_against_its_quota(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "blob.bin").write_bytes(os.urandom(300 * 1024))
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "blob", cwd=work)
    git_dir = work / ".git"
    size = deadlines.repo_size(git_dir, quota_mb=0.25)
    assert size["bytes"] >= 300 * 1024 and size["quota_bytes"] == 256 * 1024 and size["over_quota"] is True
    assert deadlines.repo_size(git_dir, quota_mb=1)["over_quota"] is False
    assert deadlines.repo_size(git_dir, quota_mb=0) | {"bytes": 0} == {"bytes": 0, "quota_bytes": None,
                                                                        "over_quota": False}


def test_the_watcher_alerts_a_volume_over_its_quota_once_without_being_asked(store: Store) -> None:
    from orchestrator.sandbox.base import VolumeUsage
    from orchestrator.sandbox.quota import EVENT

    active(store, "tcut00001", timedelta(hours=1))

    class Measured(Sandbox):
        def __init__(self) -> None:
            super().__init__()
            self.measured = 0

        def volume_usage(self) -> list[VolumeUsage]:
            self.measured += 1
            return [VolumeUsage("trial-tcut00001-workspace", "tcut00001", 3 << 20),
                    VolumeUsage("trial-tcut00001-home", "tcut00001", 1 << 20)]

    sandbox = Measured()
    watcher = DeadlineWatcher(store, Forge, lambda: sandbox, tick_s=5, quota_mb=2, quota_every_s=3600)
    asyncio.run(watcher.pass_once())
    asyncio.run(watcher.pass_once())  # within the interval: not measured again
    assert sandbox.measured == 1
    [event] = [e for e in store.events("tcut00001") if e["kind"] == EVENT]
    assert event["data"]["volume"] == "trial-tcut00001-workspace"
