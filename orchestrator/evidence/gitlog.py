"""Commit history of a repository as JSON records (commits.jsonl) and a git bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import gitenv
from orchestrator.errors import EvidenceError

# NUL-delimited: a commit message can hold any byte but NUL, so no message can forge a field.
_START, _END = "\0\0C\0", "\0\0E\0"
_FIELDS = "%x00%x00C%x00%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%cI%x00%D%x00%B%x00%x00E%x00"


def _git(repo: Path, *args: str) -> str:
    try:
        return gitenv.output(args, cwd=repo)
    except gitenv.GitError as exc:
        raise EvidenceError(f"git {args[0]} in {repo} failed: {exc.stderr.strip()[-300:] or exc.message}") from exc


def refs(repo: Path) -> dict[str, str]:
    out = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


MAX_COMMITS = 20_000
"""Commits listed in commits.jsonl (the newest); a history longer than any trial's is left in repo.bundle."""
NUMSTAT_TIMEOUT_S = 300.0


def commit_records(repo: Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Every commit reachable from any ref, oldest first, with per-file line counts.

    Bounded: at most MAX_COMMITS (the newest), and when counting lines takes too long the
    commits are listed without them; `problems` says what was left out."""
    if not refs(repo):
        return []
    gitenv.harden(repo)
    notes = problems if problems is not None else []
    total = int(_git(repo, "rev-list", "--all", "--count").strip() or 0)
    limit = ["--max-count", str(MAX_COMMITS)] if total > MAX_COMMITS else []
    if limit:
        notes.append(f"{total - MAX_COMMITS} of {total} commits not listed (the newest {MAX_COMMITS} are); "
                     "all are in repo.bundle")
    # Files over 8 MiB count as binary: their line counts would cost time, not tell anything.
    argv = ["-c", "core.bigFileThreshold=8m", "log", *gitenv.DIFF_FLAGS, "--all", "--reverse", "--date-order",
            "--no-renames", f"--format={_FIELDS}", *limit]
    try:
        out = gitenv.output([*argv, "--numstat"], cwd=repo, timeout_s=NUMSTAT_TIMEOUT_S)
    except gitenv.GitError as exc:
        notes.append(f"per-file line counts left out ({exc.message})")
        out = _git(repo, *argv)
    records: list[dict[str, Any]] = []
    for chunk in out.split(_START)[1:]:
        head, _, numstat = chunk.partition(_END)
        sha, parents, an, ae, at, cn, ct, decorations, message = head.split("\0", 8)
        record: dict[str, Any] = {
            "sha": sha, "parents": parents.split(), "author_name": an, "author_email": ae, "authored_at": at,
            "committer_name": cn, "committed_at": ct, "refs": [d.strip() for d in decorations.split(",") if d],
            "message": message.strip(), "files": [], "additions": 0, "deletions": 0,
        }
        _add_numstat(record, numstat)
        records.append(record)
    return records


def _add_numstat(record: dict[str, Any], text: str) -> None:
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        entry = {"path": path, "additions": int(added) if added.isdigit() else 0,
                 "deletions": int(deleted) if deleted.isdigit() else 0, "binary": not added.isdigit()}
        record["files"].append(entry)
        record["additions"] += entry["additions"]
        record["deletions"] += entry["deletions"]


def write_bundle(repo: Path, dest: Path) -> bool:
    """`git bundle create dest --all`; False when the repo has no refs (nothing to bundle)."""
    if not refs(repo):
        return False
    _git(repo, "bundle", "create", str(dest), "--all")
    return True
