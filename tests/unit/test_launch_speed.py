"""What keeps a warm `trial launch` cheap, pinned: the modules it does not load, a logger that loads
structlog only for a record it writes, step records without an fsync each, ~/.gitconfig written as a
file (and read back by git exactly as `git config --global` would have set it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.forge.base import service_git_access
from orchestrator.sandbox.home import gitconfig
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


def test_deferred_sync_keeps_every_commit_and_restores_full_sync(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.create_trial(Trial("t1", "x", "octocat", "none", "provisioning", utcnow(), utcnow(), 1, 1))
    before = store._db.execute("PRAGMA synchronous").fetchone()[0]
    with store.deferred_sync():
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync per commit
        for seq in range(3):
            store.record_step("t1", "launch", f"s{seq}", seq, "done", {"n": seq})
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == before
    store.close()
    again = Store.open(tmp_path)  # another connection sees every commit made inside the block
    assert [(s.name, s.result) for s in again.steps("t1", "launch")] == [(f"s{n}", {"n": n}) for n in range(3)]


def test_gitconfig_reads_back_as_git_config_would_have_set_it(tmp_path: Path) -> None:
    access = service_git_access("host.docker.internal", 4711, "trial-x", "trl_secret")
    entries = {"user.name": 'Octo "Cat" \\ #1; x ', "user.email": "octocat@users.noreply.github.com",
               "init.defaultBranch": "main", "pull.rebase": "false", **access.git_config}
    path = tmp_path / ".gitconfig"
    path.write_text(gitconfig(entries))
    listed = subprocess.run(["git", "config", "--file", str(path), "--null", "--list"], capture_output=True,
                            text=True, check=True).stdout
    found = dict(item.split("\n", 1) for item in listed.split("\0") if item)
    helper_key = next(iter(access.git_config))
    assert found == {"user.name": entries["user.name"], "user.email": entries["user.email"],
                     "init.defaultbranch": "main", "pull.rebase": "false",
                     helper_key: access.git_config[helper_key]}
