"""Host-side git over candidate content: a candidate's .gitattributes runs nothing and hides nothing.

The operator's own git config may define drivers (git-lfs's `filter.lfs`, a textconv for
some format). A candidate who names such a driver in `.gitattributes` must not get it run
on the host by the collector or the graders, and `export-ignore` must not hide files from
the tree the graders test. The attack config here stands in for the operator's
~/.gitconfig (GIT_CONFIG_GLOBAL), with drivers that leave a marker file when run.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from graders.repo import open_repo
from orchestrator.evidence.bundle import Bundle
from orchestrator.evidence.gitlog import commit_records

pytestmark = pytest.mark.unit

IDENTITY = {"GIT_AUTHOR_NAME": "Cand", "GIT_AUTHOR_EMAIL": "c@example.com", "GIT_COMMITTER_NAME": "Cand",
            "GIT_COMMITTER_EMAIL": "c@example.com"}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **IDENTITY}).stdout


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A candidate repo naming drivers the 'operator's' global config defines; the marker folder."""
    markers = tmp_path / "markers"
    markers.mkdir()
    driver = tmp_path / "driver.sh"
    driver.write_text(f'#!/bin/sh\ntouch "{markers}/$1"\ncat\n')
    driver.chmod(0o755)
    config = tmp_path / "operator.gitconfig"
    config.write_text(f'[filter "evil"]\n\tsmudge = {driver} smudge\n\tclean = {driver} clean\n'
                      f'[diff "evil"]\n\ttextconv = {driver} textconv\n'
                      f'[diff]\n\texternal = {driver} external\n')
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "app.py").write_text("print('v1')\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "starter", cwd=work)
    (work / ".gitattributes").write_text("* filter=evil diff=evil\nhidden.py export-ignore\n")
    (work / "app.py").write_text("print('v2')\n")
    (work / "hidden.py").write_text("SECRET_SHORTCUT = True\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "work", cwd=work)
    # From here on every git the code under test runs sees the 'operator's' config.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM", raising=False)
    return work, markers


def test_graders_archive_and_diffs_run_no_candidate_named_driver(hostile: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    work, markers = hostile
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    subprocess.run(["git", "bundle", "create", str(bundle_dir / "repo.bundle"), "--all"], cwd=work, check=True,
                   capture_output=True, env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"})
    with open_repo(Bundle(bundle_dir)) as repo:
        head = repo.heads()["refs/heads/main"]
        archive = repo.archive(head)
        base = repo.rev_list(None, head)[0]
        assert [line.text for line in repo.added_lines(base, head) if line.path == "app.py"] == ["print('v2')"]
        repo.git("show", head)
        repo.git("log", "-p", head)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
    assert "hidden.py" in names, "export-ignore in the candidate's tree hid a file from the graders"
    assert sorted(p.name for p in markers.iterdir()) == []


def test_collector_and_local_forge_run_no_candidate_named_driver(hostile: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    from orchestrator.config import load_settings
    from orchestrator.forge.local import LocalForge

    work, markers = hostile
    settings = load_settings(overrides={"home": str(tmp_path / "home")})
    forge = LocalForge(settings)
    repo = forge.create_repo("t1", "t1-repo", "test")
    _git("push", "-q", str(forge.repo_path("t1-repo")), "main:main", "main:refs/heads/feature", cwd=work)
    _git("push", "-q", str(forge.repo_path("t1-repo")), "main~1:main", "-f", cwd=work)
    mirror = forge.fetch_all(repo, tmp_path / "mirror.git")
    records = commit_records(mirror)
    assert {r["message"] for r in records} == {"starter", "work"}
    [pull] = forge.pull_requests(repo)
    assert {f["filename"] for f in pull.files} == {".gitattributes", "app.py", "hidden.py"}
    assert "+print('v2')" in forge.pull_request_diff(repo, pull.number)
    assert sorted(p.name for p in markers.iterdir()) == []


def test_the_hardened_git_runs_a_plain_diff(tmp_path: Path) -> None:
    from orchestrator import gitenv

    _git("init", "-q", "-b", "main", cwd=tmp_path)
    (tmp_path / "f.txt").write_text("a\n")
    _git("add", ".", cwd=tmp_path)
    _git("commit", "-qm", "one", cwd=tmp_path)
    (tmp_path / "f.txt").write_text("b\n")
    assert "+b" in gitenv.output(["diff"], cwd=tmp_path)
    assert "+a" in gitenv.output(["log", "-p", "-1"], cwd=tmp_path)
