"""Times come from the host: a commit's time is when it reached the forge, whatever it claims."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.evidence.bundle import COMMITS, PUSHES, write_jsonl
from orchestrator.evidence.events import build_events, parse_ts
from orchestrator.evidence.gitlog import commit_records
from orchestrator.forge.local import LocalForge

pytestmark = pytest.mark.unit

LONG_AGO = "2001-01-01T00:00:00+00:00"


def _git(*args: str, cwd: Path, **env: str) -> None:
    identity = {"GIT_AUTHOR_NAME": "Cand", "GIT_AUTHOR_EMAIL": "c@example.com", "GIT_COMMITTER_NAME": "Cand",
                "GIT_COMMITTER_EMAIL": "c@example.com"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **identity, **env})


def test_a_backdated_commit_takes_the_time_it_was_pushed(tmp_path: Path) -> None:
    forge = LocalForge(load_settings(overrides={"home": str(tmp_path / "home")}))
    repo = forge.create_repo("t1", "t1-repo", "test")
    remote = str(forge.repo_path("t1-repo"))
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("starter\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "starter", cwd=work)
    forge.push(repo, work)
    _git("checkout", "-qb", "spec-first", cwd=work)
    (work / "SPEC.md").write_text("the spec, written last but dated first\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "Spec", cwd=work, GIT_AUTHOR_DATE=LONG_AGO, GIT_COMMITTER_DATE=LONG_AGO)
    _git("push", "-q", remote, "spec-first", cwd=work)

    bundle = tmp_path / "bundle"
    mirror = forge.fetch_all(repo, tmp_path / "mirror.git")
    write_jsonl(bundle / COMMITS, commit_records(mirror))
    pushes = forge.push_events(repo)
    write_jsonl(bundle / PUSHES, pushes)
    [spec] = [e for e in build_events(bundle, []) if e["kind"] == "commit" and e["text"] == "Spec"]

    [pushed] = [p for p in pushes if p["ref"] == "refs/heads/spec-first"]
    pushed_at = parse_ts(pushed["ts"])  # the push log keeps microseconds, the timeline milliseconds
    assert parse_ts(spec["ts"]) == pushed_at.replace(microsecond=pushed_at.microsecond // 1000 * 1000)
    assert spec["witness"] == "host" and spec["data"]["pushed_at"] == pushed["ts"]
    assert spec["data"]["committed_at"].startswith("2001-01-01")  # kept, as the commit's claim only
    # The local forge's pull request is dated by the push log too.
    [pull] = forge.pull_requests(repo)
    assert pull.created_at == pushed["ts"]


def test_a_commit_no_logged_push_brought_keeps_its_claim_marked_transcript(tmp_path: Path) -> None:
    write_jsonl(tmp_path / COMMITS, [{"sha": "a" * 40, "parents": [], "committed_at": LONG_AGO, "message": "x"}])
    [commit] = build_events(tmp_path, [])
    assert commit["witness"] == "transcript" and "pushed_at" not in commit["data"]


def test_manifest_times_come_from_the_gateway_and_push_logs_not_from_commits(tmp_path: Path) -> None:
    from orchestrator.evidence.collect import host_times

    write_jsonl(tmp_path / "gateway.jsonl", [{"seq": 1, "ts": "2026-11-20T10:05:00.000Z"},
                                             {"seq": 2, "ts": "2026-11-20T10:07:00.000Z"}])
    write_jsonl(tmp_path / PUSHES, [
        {"ts": "2026-11-20T09:59:00+00:00", "ref": "refs/heads/main", "pusher": "trial-bot"},
        {"ts": "2026-11-20T10:30:00+00:00", "ref": "refs/heads/a", "pusher": "octo-cat"},
        {"ts": "2026-11-20T11:10:00+00:00", "ref": "refs/heads/a", "pusher": "octo-cat"}])
    write_jsonl(tmp_path / COMMITS, [{"sha": "a" * 40, "parents": [], "committed_at": LONG_AGO}])
    times = host_times(tmp_path, launched_at="2026-11-20T10:00:00+00:00", deadline="2026-11-20T14:00:00+00:00",
                       frozen_at="2026-11-20T14:00:05+00:00", bot_pushers={"trial-bot"})
    assert times["launched_at"] == times["started_at"] == "2026-11-20T10:00:00+00:00"
    assert times["first_gateway_request"] == "2026-11-20T10:05:00.000Z"
    assert (times["first_push"], times["last_push"]) == ("2026-11-20T10:30:00.000Z", "2026-11-20T11:10:00.000Z")
    assert times["deadline"] and times["frozen_at"] and times["collected_at"]


def test_a_push_only_the_forge_saw_times_its_commits_as_forge_witnessed(tmp_path: Path) -> None:
    write_jsonl(tmp_path / COMMITS, [{"sha": "a" * 40, "parents": [], "committed_at": LONG_AGO, "message": "x"},
                                     {"sha": "b" * 40, "parents": ["a" * 40], "committed_at": LONG_AGO,
                                      "message": "y"}])
    write_jsonl(tmp_path / PUSHES, [
        {"ts": "2026-11-20T10:00:00+00:00", "ref": "refs/heads/a", "before": "0" * 40, "after": "a" * 40,
         "pusher": "octo-cat", "kind": "push"},  # through the host's proxy: host
        {"ts": "2026-11-20T11:00:00+00:00", "ref": "refs/heads/a", "before": "a" * 40, "after": "b" * 40,
         "pusher": "octo-cat", "kind": "push", "witness": "forge"}])  # straight to GitHub
    commits = {e["text"]: e for e in build_events(tmp_path, []) if e["kind"] == "commit"}
    assert (commits["x"]["witness"], commits["x"]["ts"]) == ("host", "2026-11-20T10:00:00.000Z")
    assert (commits["y"]["witness"], commits["y"]["ts"]) == ("forge", "2026-11-20T11:00:00.000Z")
