"""Collection that cannot be blocked: hostile transcripts and repositories are left out and named.

The candidate writes the transcripts (their home folder) and every branch. None of what
they write may stop a collect or a grade: what cannot be read is left out, with why.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator.agents import get_agent, transcripts
from orchestrator.agents.base import Event
from orchestrator.config import load_settings
from orchestrator.errors import ForgeError
from orchestrator.evidence.gitlog import commit_records
from orchestrator.forge.base import RepoRef
from orchestrator.forge.local import LocalForge

pytestmark = pytest.mark.unit

GOOD = (json.dumps({"type": "user", "uuid": "u1", "sessionId": "s1", "timestamp": "2026-11-20T10:00:00Z",
                    "message": {"role": "user", "content": "Implement rotation."}}) + "\n").encode()
DEEP = b'{"a":' + b"[" * 100_000 + b"\n"
IDENTITY = {"GIT_AUTHOR_NAME": "Cand", "GIT_AUTHOR_EMAIL": "c@example.com", "GIT_COMMITTER_NAME": "Cand",
            "GIT_COMMITTER_EMAIL": "c@example.com"}


def _prompts(events: list[Event]) -> list[str]:
    return [e["text"] for e in events if e["kind"] == "user_prompt"]


def test_deep_nesting_is_skipped_and_named_not_a_recursion_error() -> None:
    problems: list[str] = []
    files = {".claude/projects/-workspace/a.jsonl": GOOD + DEEP,
             ".claude/projects/-workspace/b.jsonl": b'{"x": ' + b'{"y": ' * 5000 + b"1" + b"}" * 5001 + b"\n"}
    events = transcripts.safe_parse(get_agent("claude-code"), files, problems)
    assert _prompts(events) == ["Implement rotation."]
    assert any("a.jsonl: 1 line(s) skipped" in p and "nested too deep" in p for p in problems), problems
    assert any("b.jsonl" in p for p in problems), problems


def test_huge_lines_and_binary_files_are_skipped_and_named() -> None:
    problems: list[str] = []
    huge = b'{"type": "user", "message": {"content": "' + b"x" * (17 << 20) + b'"}}\n'
    files = {".claude/projects/p/huge.jsonl": huge + GOOD, ".claude/projects/p/bin.jsonl": os.urandom(4096)}
    events = transcripts.safe_parse(get_agent("claude-code"), files, problems)
    assert _prompts(events) == ["Implement rotation."]
    assert any("huge.jsonl" in p and "longer than 16 MiB" in p for p in problems), problems
    assert any("bin.jsonl" in p for p in problems), problems


class _BrittleAgent:
    """An agent whose parser raises on one file: the others are still read."""

    name = "brittle"
    transcript_globs = ("*.jsonl",)

    def parse(self, files: dict[str, bytes]) -> list[Event]:
        if any(b"boom" in data for data in files.values()):
            raise TypeError("unexpected shape")
        return [{"ts": "2026-11-20T10:00:00.000Z", "source": "brittle", "kind": "user_prompt", "session": "s",
                 "text": rel, "data": {}} for rel in sorted(files)]


def test_a_file_the_parser_chokes_on_is_left_out_and_the_rest_parsed() -> None:
    problems: list[str] = []
    events = transcripts.safe_parse(_BrittleAgent(), {"ok.jsonl": b"{}\n", "bad.jsonl": b'{"boom": 1}\n'},  # type: ignore[arg-type]
                                    problems)
    assert _prompts(events) == ["ok.jsonl"]
    assert problems == ["~/bad.jsonl: the brittle parser could not read it (TypeError); left out"]


class _StallingAgent(_BrittleAgent):
    """An agent whose parser never finishes on one file (a pathological pattern, a loop)."""

    name = "stalling"

    def parse(self, files: dict[str, bytes]) -> list[Event]:
        if any(b"stall" in data for data in files.values()):
            time.sleep(3600)
        return super().parse(files)


def test_a_file_that_stalls_the_parser_is_cut_off_in_bounded_time() -> None:
    problems: list[str] = []
    started = time.monotonic()
    events = transcripts.safe_parse(_StallingAgent(), {"ok.jsonl": b"{}\n", "slow.jsonl": b'{"stall": 1}\n'},  # type: ignore[arg-type]
                                    problems, timeout_s=2, file_timeout_s=2)
    assert time.monotonic() - started < 30
    assert _prompts(events) == ["ok.jsonl"]
    assert problems == ["~/slow.jsonl: the stalling parser did not finish within 2s; left out"]


def test_a_line_crafted_to_make_claude_codes_refusal_pattern_backtrack_parses_quickly() -> None:
    """A long run of "permission to use " once made the refusal pattern backtrack for minutes;
    the pattern now reads a bounded head, so the file is parsed, not left out."""
    stall = {"type": "user", "uuid": "u9", "sessionId": "s1", "timestamp": "2026-11-20T10:01:00Z",
             "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                                                      "content": "permission to use " * 200_000}]}}
    files = {".claude/projects/p/good.jsonl": GOOD,
             ".claude/projects/p/stall.jsonl": (json.dumps(stall) + "\n").encode()}
    problems: list[str] = []
    events = transcripts.safe_parse(get_agent("claude-code"), files, problems, timeout_s=20, file_timeout_s=20)
    assert _prompts(events) == ["Implement rotation."]
    assert problems == []
    assert any(e["kind"] == "tool_result" for e in events)


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


class _ArchiveSandbox:
    """A sandbox whose home copies out as a given tar (what `docker cp` returns)."""

    name = "archive"

    def __init__(self, archive: bytes) -> None:
        self.archive = archive

    def copy_out(self, ref: object, path: str, *, max_bytes: int | None = None) -> bytes:
        return self.archive


def test_links_fifos_devices_and_climbing_names_are_left_out_and_named(tmp_path: Path) -> None:
    archive = _tar([
        (_info("projects/-workspace/good.jsonl"), GOOD),
        (_info("projects/-workspace/passwd.jsonl", tarfile.SYMTYPE, "/etc/passwd"), None),
        (_info("projects/-workspace/hard.jsonl", tarfile.LNKTYPE, "/etc/shadow"), None),
        (_info("projects/-workspace/pipe.jsonl", tarfile.FIFOTYPE), None),
        (_info("projects/-workspace/tty.jsonl", tarfile.CHRTYPE), None),
        (_info("projects/../../../../tmp/escape.jsonl"), GOOD),
    ])
    problems: list[str] = []
    agent = get_agent("claude-code")
    files = transcripts.collect(_ArchiveSandbox(archive), object(), agent, problems)  # type: ignore[arg-type]
    assert sorted(files) == [".claude/projects/-workspace/good.jsonl"]
    text = "\n".join(problems)
    for name, kind in (("passwd", "a link to '/etc/passwd'"), ("hard", "a link to '/etc/shadow'"),
                       ("pipe", "a fifo"), ("tty", "a device"), ("escape", "not a plain file under home")):
        assert name in text and kind in text, (name, problems)
    written = transcripts.write_raw(tmp_path, agent.name, {**files, "../../outside.jsonl": GOOD}, problems)
    assert [p.name for p in written] == ["good.jsonl"] and not (tmp_path.parent / "outside.jsonl").exists()
    assert "~/../../outside.jsonl: the name leaves the transcripts folder; left out" in problems


def test_a_symlink_in_a_bundles_transcripts_is_never_followed(tmp_path: Path) -> None:
    folder = tmp_path / "transcripts" / "claude-code" / ".claude" / "projects"
    folder.mkdir(parents=True)
    (tmp_path / "secret.jsonl").write_bytes(GOOD)
    (folder / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")
    assert transcripts.read_raw(tmp_path, get_agent("claude-code")) == {}


def _diff_or_none(forge: LocalForge, repo: RepoRef, number: int) -> str | None:
    try:
        return forge.pull_request_diff(repo, number)
    except ForgeError:
        return None


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **IDENTITY}).stdout


@pytest.fixture
def forge_repo(tmp_path: Path) -> tuple[LocalForge, Path, Path]:
    forge = LocalForge(load_settings(overrides={"home": str(tmp_path / "home")}))
    repo = forge.create_repo("t1", "t1-repo", "test")
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("starter\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "starter", cwd=work)
    forge.push(repo, work)
    return forge, work, forge.repo_path(repo.name)


def test_an_orphan_branch_is_a_pull_request_of_its_whole_tree(forge_repo: tuple[LocalForge, Path, Path],
                                                              tmp_path: Path) -> None:
    forge, work, remote = forge_repo
    _git("checkout", "-q", "--orphan", "fresh", cwd=work)
    _git("rm", "-rq", "--cached", ".", cwd=work)
    (work / "README.md").unlink()
    (work / "app.py").write_text("print('no shared history')\n")
    _git("add", "app.py", cwd=work)
    _git("commit", "-qm", "Start over", cwd=work)
    _git("push", "-q", str(remote), "fresh", cwd=work)
    repo = forge.list_managed()[0]
    [pull] = forge.pull_requests(repo)
    assert (pull.head_ref, pull.base_sha, pull.title) == ("fresh", "", "Start over")
    assert [f["filename"] for f in pull.files] == ["app.py"]
    assert "+print('no shared history')" in forge.pull_request_diff(repo, pull.number)


def test_a_huge_file_reads_as_binary_in_bounded_time(forge_repo: tuple[LocalForge, Path, Path],
                                                     tmp_path: Path) -> None:
    forge, work, remote = forge_repo
    _git("checkout", "-qb", "big", cwd=work)
    (work / "data.txt").write_bytes(b"line of text\n" * (2 << 20))  # 26 MiB of text
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "Add data", cwd=work)
    _git("push", "-q", str(remote), "big", cwd=work)
    repo = forge.list_managed()[0]
    started = time.monotonic()
    [pull] = forge.pull_requests(repo)
    diff = forge.pull_request_diff(repo, pull.number)
    records = commit_records(forge.fetch_all(repo, tmp_path / "mirror.git"))
    assert time.monotonic() - started < 60
    assert pull.files[0]["patch"] == "" and "Binary files" in diff and len(diff) < 10_000
    [big] = [f for r in records for f in r["files"] if f["path"] == "data.txt"]
    assert big["binary"] is True


def test_a_thousand_branches_over_a_large_tree_read_in_linear_time(forge_repo: tuple[LocalForge, Path, Path],
                                                                   tmp_path: Path) -> None:
    forge, work, remote = forge_repo
    for folder in range(40):
        (work / f"pkg{folder}").mkdir()
        for module in range(50):
            (work / f"pkg{folder}" / f"m{module}.py").write_text(f"VALUE = {folder * 50 + module}\n" * 10)
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "A large tree", cwd=work)
    _git("push", "-q", str(remote), "HEAD:refs/heads/large", cwd=work)
    git = ["git", "--git-dir", str(remote)]
    base = subprocess.run([*git, "rev-parse", "large"], capture_output=True, text=True, check=True).stdout.strip()
    blob = subprocess.run([*git, "hash-object", "-w", "--stdin"], input="new\n", capture_output=True, text=True,
                          check=True).stdout.strip()
    # A thousand branches, each the large tree plus one file, made now (after `large`) in one git
    # process: 2000 mktree and commit-tree processes took 15-25 s of this test here.
    now = int(time.time())
    stream = "".join(f"commit refs/heads/b{i:04d}\ncommitter Cand <c@example.com> {now} +0000\n"
                     f"data {len(f'Feature {i}')}\nFeature {i}\nfrom {base}\nM 100644 {blob} feature{i}.txt\n\n"
                     for i in range(1000))
    subprocess.run([*git, "fast-import", "--quiet"], input=stream, text=True, check=True)
    repo = forge.list_managed()[0]
    started = time.monotonic()
    pulls = forge.pull_requests(repo)
    diffs = [_diff_or_none(forge, repo, pull.number) for pull in pulls]
    elapsed = time.monotonic() - started
    assert elapsed < 300, f"{elapsed:.0f}s for 1001 branches"
    # At most MAX_PULLS (1000) are read, the ones pushed last; the one left out is named.
    assert len(pulls) == 1000
    assert forge.left_out[0] == ("1 of 1001 branches not read as pull requests (only the 1000 pushed last are); "
                                 "all are in repo.bundle")
    # Each branch's diff holds the whole large tree: past the diff budget, files are listed only.
    assert forge.left_out[1].endswith("pull request(s) past the 32 MiB diff budget: files listed without line "
                                      "counts, patches or diff, at most 300 each (the commits are in repo.bundle)")
    assert {len(p.files) for p in pulls if p.number in forge._over_budget} == {300}
    assert sum(1 for d in diffs if d is not None) >= 10



def test_a_history_too_long_or_too_slow_to_count_is_listed_bounded_and_named(
        forge_repo: tuple[LocalForge, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.evidence import gitlog

    forge, work, remote = forge_repo
    for n in range(5):
        (work / "n.txt").write_text(f"{n}\n")
        _git("add", "n.txt", cwd=work)
        _git("commit", "-qm", f"step {n}", cwd=work)
    _git("push", "-q", str(remote), "HEAD:refs/heads/long", cwd=work)
    mirror = forge.fetch_all(forge.list_managed()[0], tmp_path / "mirror.git")
    monkeypatch.setattr(gitlog, "MAX_COMMITS", 3)
    problems: list[str] = []
    records = commit_records(mirror, problems)
    assert [r["message"] for r in records] == ["step 2", "step 3", "step 4"]
    assert problems == ["3 of 6 commits not listed (the newest 3 are); all are in repo.bundle"]
    monkeypatch.setattr(gitlog, "NUMSTAT_TIMEOUT_S", 1e-6)
    problems = []
    records = commit_records(mirror, problems)
    assert len(records) == 3 and all(r["files"] == [] for r in records)
    assert problems[1].startswith("per-file line counts left out (git log did not finish within")


def test_one_blob_at_many_paths_is_listed_not_diffed_in_full(forge_repo: tuple[LocalForge, Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """300 paths naming one 1 MiB text blob: a pack of KiB, a diff of 300 MiB. The patch is streamed
    and cut at the budget; the pull request lists its files and its diff is left out, named."""
    from orchestrator.forge import local

    forge, _work, remote = forge_repo
    git = ["git", "--git-dir", str(remote)]
    blob = subprocess.run([*git, "hash-object", "-w", "--stdin"], input=b"0123456789abcde\n" * (1 << 16),
                          capture_output=True, check=True).stdout.decode().strip()
    base = subprocess.run([*git, "rev-parse", "main"], capture_output=True, text=True, check=True).stdout.strip()
    listing = "".join(f"100644 blob {blob}\tcopy{i:04d}.txt\n" for i in range(300))
    tree = subprocess.run([*git, "mktree"], input=listing, capture_output=True, text=True, check=True).stdout.strip()
    commit = subprocess.run([*git, "commit-tree", tree, "-p", base, "-m", "Data"], capture_output=True, text=True,
                            check=True, env={**os.environ, **IDENTITY}).stdout.strip()
    subprocess.run([*git, "update-ref", "refs/heads/data", commit], check=True)
    cut: list[int] = []
    capped = LocalForge._diff_capped

    def spy(self: LocalForge, path: Path, base: str, head: str, cap: int) -> str | None:
        found = capped(self, path, base, head, cap)
        cut.append(cap if found is None else -1)
        return found

    monkeypatch.setattr(LocalForge, "_diff_capped", spy)
    monkeypatch.setattr(local, "MAX_DIFF_BUDGET", 8 << 20)
    repo = forge.list_managed()[0]
    [pull] = forge.pull_requests(repo)
    assert cut == [8 << 20]  # the stream was cut at the budget: at most 8 MiB was ever held
    assert len(pull.files) == 300 and all(f["patch"] == "" and f["counted"] is False for f in pull.files)
    assert any("past the 8 MiB diff budget" in note for note in forge.left_out), forge.left_out
    with pytest.raises(ForgeError, match="diff budget"):
        forge.pull_request_diff(repo, pull.number)
