"""The candidate's repository, read from the bundle's `repo.bundle` (never from the forge).

`choose_revision` decides which commit is graded: the head of the newest open pull
request, else the newest non-default branch head, else the default branch head; the
choice is recorded in every result that depends on it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from orchestrator import gitenv
from orchestrator.errors import EvidenceError
from orchestrator.evidence.bundle import REPO_BUNDLE, Bundle

_SHOWS_DIFFS = ("diff", "show", "log")
MAX_TREE_BYTES = 512 << 20
"""The most a graded tree may expand to (every path's blob size, a blob named by many paths counted
at each): the pack quota measures compressed objects, and 200 paths naming one 8 MB blob pack into
28 KiB but archive into 1.6 GB."""
MAX_DIFF_BYTES = 256 << 20
"""The most diff text a query reads: git's output is streamed and cut here, never held whole."""
_CHUNK = 1 << 20
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class TreeTooLarge(EvidenceError):
    """The candidate's tree or diff expands past a cap: the candidate's doing, not the machinery's."""

    def __init__(self, message: str, size: int, cap: int) -> None:
        super().__init__(message, "the candidate's commit holds too much data to grade; read repo.bundle by hand")
        self.size = size
        self.cap = cap


@dataclass(frozen=True)
class Revision:
    sha: str
    source: Literal["pull_request", "branch", "default_branch"]
    ref: str
    base_sha: str
    """Where the candidate's work starts: the PR base, or the merge-base with the default branch."""
    starter_sha: str
    """The first commit of the default branch: the starter as pushed at launch."""
    pr_number: int | None = None
    at_deadline: bool = False
    """Chosen among the refs as they stood at the deadline (pushes after it are not graded)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AddedLine:
    path: str
    line: int
    text: str


class Repo:
    """A bare clone of the bundle with the few queries graders need."""

    def __init__(self, path: Path, bundle_file: Path) -> None:
        self.path = path
        self.bundle_file = bundle_file

    def _args(self, args: tuple[str, ...]) -> list[str]:
        # Hardened (orchestrator.gitenv): the candidate's .gitattributes and replace refs steer nothing.
        if args and args[0] in _SHOWS_DIFFS:
            args = (args[0], *gitenv.DIFF_FLAGS, *args[1:])
        return ["--git-dir", str(self.path), *args]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return gitenv.run(self._args(args), check=False)

    def _run_bytes(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return gitenv.run_bytes(self._args(args), check=False)

    def git(self, *args: str, check: bool = True) -> str:
        result = self._run(*args)
        if check and result.returncode != 0:
            raise EvidenceError(f"{self.bundle_file}: `git {' '.join(args[:3])}` failed: "
                                f"{result.stderr.strip()[:300]}",
                                "the repo bundle may be damaged: run `trial collect ID` again")
        return result.stdout

    def heads(self) -> dict[str, str]:
        """refs/heads/* → sha."""
        heads: dict[str, str] = {}
        for line in self.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads").splitlines():
            sha, ref = line.split(" ", 1)
            heads[ref] = sha
        return heads

    def has(self, sha: str) -> bool:
        if not sha:
            return False
        probe = self._run("cat-file", "-e", f"{sha}^{{commit}}")
        return bool(probe.returncode == 0)

    def commit_time(self, sha: str) -> int:
        return int(self.git("show", "-s", "--format=%ct", sha).strip() or 0)

    def merge_base(self, left: str, right: str) -> str | None:
        out = self.git("merge-base", left, right, check=False).strip()
        return out or None

    def root_commit(self, sha: str) -> str:
        roots = self.git("rev-list", "--max-parents=0", "--reverse", sha).split()
        return roots[0]

    def files(self, sha: str) -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", "-z", sha).split("\0")[:-1]

    def show(self, sha: str, path: str) -> str | None:
        result = self._run_bytes("show", f"{sha}:{path}")
        return result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None

    def _stream(self, args: tuple[str, ...], cap: int, what: str) -> bytes:
        """stdout of `git ARGS`, read in chunks and stopped (git killed) past `cap` bytes: TreeTooLarge."""
        chunks: list[bytes] = []
        size = 0
        with subprocess.Popen(gitenv.argv(*self._args(args)), env=gitenv.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            stdout = cast("IO[bytes]", proc.stdout)  # stdout=PIPE: never None
            try:
                while chunk := stdout.read(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise TreeTooLarge(f"{self.bundle_file}: {what} is over {cap >> 20} MiB", size, cap)
                    chunks.append(chunk)
                stderr = proc.stderr.read() if proc.stderr else b""
                code = proc.wait(timeout=gitenv.DEFAULT_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
        if code != 0:
            raise EvidenceError(f"{self.bundle_file}: `git {' '.join(args[:3])}` failed: "
                                f"{stderr.decode(errors='replace').strip()[:300]}",
                                "the repo bundle may be damaged: run `trial collect ID` again")
        return b"".join(chunks)

    def tree_bytes(self, sha: str, cap: int | None = None) -> int:
        """What the tree at `sha` expands to: every blob's size at every path naming it (`ls-tree -r -l`).
        Stops counting past `cap` (the total returned is then over it)."""
        total = 0
        limit = MAX_TREE_BYTES if cap is None else cap
        with subprocess.Popen(gitenv.argv(*self._args(("ls-tree", "-r", "-l", "-z", sha))), env=gitenv.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            stdout = cast("IO[bytes]", proc.stdout)  # stdout=PIPE: never None
            rest = b""
            try:
                while chunk := stdout.read(_CHUNK):
                    *entries, rest = (rest + chunk).split(b"\0")
                    for entry in entries:
                        meta = entry.split(b"\t", 1)[0].split()
                        if len(meta) == 4 and meta[3].isdigit():
                            total += int(meta[3])
                    if total > limit:
                        return total
                code = proc.wait(timeout=gitenv.DEFAULT_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
        if code != 0:
            raise EvidenceError(f"{self.bundle_file}: cannot list the tree of {sha[:12]}",
                                "the repo bundle may be damaged: run `trial collect ID` again")
        return total

    def check_tree(self, sha: str) -> None:
        """TreeTooLarge when the tree at `sha` expands past MAX_TREE_BYTES (read at call time)."""
        size = self.tree_bytes(sha, MAX_TREE_BYTES)
        if size > MAX_TREE_BYTES:
            raise TreeTooLarge(f"the tree of {sha[:12]} expands to more than {MAX_TREE_BYTES >> 20} MiB (each "
                               "path's blob counted, however often one blob is repeated)", size, MAX_TREE_BYTES)

    def archive(self, sha: str) -> bytes:
        """A tar of the tree at `sha`; TreeTooLarge (checked before git writes a byte) past MAX_TREE_BYTES."""
        self.check_tree(sha)
        result = self._run_bytes("archive", "--format=tar", sha)
        if result.returncode != 0:
            raise EvidenceError(f"{self.bundle_file}: cannot archive {sha[:12]}: "
                                f"{result.stderr.decode(errors='replace').strip()[:200]}",
                                "the repo bundle may be damaged: run `trial collect ID` again")
        return result.stdout

    def changes(self, base: str, head: str) -> list[tuple[str, str]]:
        """(status letter, path) for every file that differs; renames count as delete + add."""
        out = self.git("diff", "--no-renames", "--name-status", "-z", base, head)
        parts = out.split("\0")[:-1]
        return [(parts[i][0], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]

    def added_lines(self, base: str, head: str) -> list[AddedLine]:
        return _parse_added(self._diff_text(("diff", "--no-renames", "-U0", "--no-color", base, head)))

    def commit_added_lines(self, sha: str) -> list[AddedLine]:
        """Lines a commit added relative to its first parent (or to nothing, for a root commit)."""
        return _parse_added(self._diff_text(("show", "--no-renames", "-U0", "--no-color", "--format=",
                                             "--first-parent", sha)))

    def _diff_text(self, args: tuple[str, ...]) -> str:
        return self._stream(args, MAX_DIFF_BYTES, f"the diff `git {' '.join(args[:1])} {args[-1][:12]}`") \
            .decode("utf-8", "replace")

    def rev_list(self, base: str | None, head: str) -> list[str]:
        """Commits in head and not in base, oldest first."""
        spec = [f"{base}..{head}"] if base else [head]
        return self.git("rev-list", "--reverse", "--topo-order", *spec).split()


def _parse_added(diff: str) -> list[AddedLine]:
    added: list[AddedLine] = []
    path: str | None = None
    line_no = 0
    for raw in diff.splitlines():
        if raw.startswith("+++ "):
            target = raw[4:]
            path = None if target == "/dev/null" else target[2:] if target.startswith("b/") else target
        elif raw.startswith("@@"):
            match = _HUNK.match(raw)
            line_no = int(match.group(1)) if match else 0
        elif raw.startswith("+") and path is not None:
            added.append(AddedLine(path, line_no, raw[1:]))
            line_no += 1
    return added


@contextmanager
def open_repo(bundle: Bundle) -> Iterator[Repo]:
    """A throwaway bare clone of repo.bundle holding every ref exactly as collected."""
    source = bundle.file(REPO_BUNDLE)
    if not source.is_file():
        raise EvidenceError(f"{bundle.path} has no {REPO_BUNDLE}", "run `trial collect ID` again")
    workdir = Path(tempfile.mkdtemp(prefix="trial-grade-repo-"))
    try:
        path = workdir / "repo.git"
        for argv in (["init", "-q", "--bare", str(path)],
                     ["--git-dir", str(path), "fetch", "-q", str(source), "+refs/*:refs/*"]):
            result = gitenv.run(argv, check=False)
            if result.returncode != 0:
                raise EvidenceError(f"{source}: cannot read the repo bundle: {result.stderr.strip()[:300]}",
                                    "run `trial collect ID` again")
            if argv[0] == "init":
                gitenv.harden(path)  # before any object arrives: no command ever sees the tree's attributes
        yield Repo(path, source)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def default_branch(bundle: Bundle) -> str:
    trial = bundle.manifest().get("trial") or {}
    repo = trial.get("repo") if isinstance(trial, dict) else None
    name = repo.get("default_branch") if isinstance(repo, dict) else None
    return str(name or "main")


def heads_at_deadline(bundle: Bundle, repo: Repo) -> dict[str, str] | None:
    """refs/heads/* → sha as they stood at the deadline (the manifest's `refs_at_deadline`,
    replayed from the host's push log), or None for a bundle collected without a deadline."""
    recorded = bundle.manifest().get("refs_at_deadline")
    if not isinstance(recorded, dict) or not recorded:
        return None
    heads = {str(ref): str(sha) for ref, sha in recorded.items()
             if str(ref).startswith("refs/heads/") and repo.has(str(sha))}
    return heads or None


def choose_revision(bundle: Bundle, repo: Repo) -> Revision:
    deadline_heads = heads_at_deadline(bundle, repo)
    at_deadline = deadline_heads is not None
    heads = deadline_heads if deadline_heads is not None else repo.heads()
    default_ref = f"refs/heads/{default_branch(bundle)}"
    default_sha = heads.get(default_ref)
    if default_sha is None:
        if not heads:
            raise EvidenceError(f"{bundle.file(REPO_BUNDLE)} holds no branch",
                                "the collector fetched an empty repository: run `trial collect ID` again")
        default_ref, default_sha = sorted(heads.items())[0]
    starter = repo.root_commit(default_sha)

    def pr_head(pr: dict[str, Any]) -> str:
        # At the deadline: what the PR's branch held then ("" when it was pushed only later).
        return heads.get(f"refs/heads/{pr.get('head_ref')}", "") if at_deadline else str(pr.get("head_sha"))

    open_pulls = [pr for pr in bundle.pulls() if pr.get("state") == "open" and repo.has(pr_head(pr))]
    if open_pulls:
        newest = max(open_pulls, key=lambda pr: (str(pr.get("created_at", "")), int(pr["number"])))
        head = pr_head(newest)
        base = str(newest.get("base_sha") or "")
        if not repo.has(base):
            base = repo.merge_base(head, default_sha) or starter
        return Revision(sha=head, source="pull_request", ref=f"refs/pull/{newest['number']}/head",
                        base_sha=base, starter_sha=starter, pr_number=int(newest["number"]),
                        at_deadline=at_deadline)

    others = {ref: sha for ref, sha in heads.items() if ref != default_ref and sha != default_sha}
    if others:
        ref, head = max(others.items(), key=lambda item: (repo.commit_time(item[1]), item[0]))
        base = repo.merge_base(head, default_sha) or starter
        return Revision(sha=head, source="branch", ref=ref, base_sha=base, starter_sha=starter,
                        at_deadline=at_deadline)
    return Revision(sha=default_sha, source="default_branch", ref=default_ref, base_sha=starter,
                    starter_sha=starter, at_deadline=at_deadline)
