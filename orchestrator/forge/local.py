"""The local forge (embedded default): one bare repository per trial under the data dir.

Sandboxes reach a repo only over smart HTTP through the host service (`/git/<name>.git`,
the trial's token as the password), never through a bind mount, so the candidate can
neither rewrite nor delete the forge's copy, and revoking the token really ends pushes.
Hooks in each bare repo protect `main` (only the bot may update it, nobody may delete it)
and log every ref update, forced ones included, for the evidence.

Pull requests: any branch other than `main` is the candidate's pull request. Its title
and description are the subject and body of the branch's first commit, as GitHub fills
them in for a one-commit pull request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from orchestrator import gitenv
from orchestrator.config import Settings
from orchestrator.errors import ForgeError, PrerequisiteError
from orchestrator.forge import pushlog
from orchestrator.forge.base import PullRequest, RepoRef, SandboxAccess, service_git_access
from orchestrator.store import Store

BOT_ENV = "TRIAL_FORGE_BOT"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
BIG_FILES = ("-c", "core.bigFileThreshold=8m")
"""Files over this are diffed as binary: a pull request of huge files reads in bounded time and memory."""
MAX_PATCH_CHARS = 1 << 20
MAX_PR_COMMITS = 2000
MAX_PULLS = 1000
"""Branches read as pull requests, most recently pushed first: a hostile repo cannot make collect endless."""
MAX_CACHED_DIFF = 8 << 20
MAX_DIFF_BUDGET = 32 << 20
"""Characters of diff read per `pull_requests` call; past it, pull requests list their files only."""
MAX_PR_FILES = 3000
MAX_FILES_PAST_BUDGET = 300
PUSH_LOG = "trial-pushes.tsv"
"""The host push log (orchestrator/forge/pushlog.py format), written by the post-receive hook."""

PRE_RECEIVE = """#!/bin/sh
# Installed by trial: main changes only through the bot (pull requests are reviewed, not pushed).
while read old new ref; do
  if [ "$ref" = "refs/heads/main" ] && [ -z "${TRIAL_FORGE_BOT:-}" ]; then
    if [ -e "$GIT_DIR/trial-protected" ]; then
      echo "trial: main is protected; push a branch and open a pull request" >&2
      exit 1
    fi
  fi
  if [ "$ref" = "refs/heads/main" ] && [ "$new" = "0000000000000000000000000000000000000000" ]; then
    echo "trial: main cannot be deleted" >&2
    exit 1
  fi
done
# The repository size quota: the incoming objects already sit in a quarantine directory
# under objects/, so objects/ holds what the repo would be if this push were accepted.
quota=$(git config --get trial.quotaBytes 2>/dev/null || echo 0)
if [ "${quota:-0}" -gt 0 ] && [ -z "${TRIAL_FORGE_BOT:-}" ]; then
  size=$(du -sb "$GIT_DIR/objects" | cut -f1)
  if [ "$size" -gt "$quota" ]; then
    echo "trial: push refused: the repository would hold $size bytes, over this trial's quota of $quota bytes" >&2
    exit 1
  fi
fi
exit 0
"""

POST_RECEIVE = """#!/bin/sh
# Installed by trial: log every ref update (forced ones marked) for the evidence bundle.
# Tab-separated: a ref name cannot hold a tab or any control character (git check-ref-format).
zero=0000000000000000000000000000000000000000
while read old new ref; do
  forced=false
  if [ "$old" != "$zero" ] && [ "$new" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new" 2>/dev/null; then
    forced=true
  fi
  printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%6N+00:00)" "$ref" "$old" "$new" "$forced" \\
    "${REMOTE_USER:-${TRIAL_FORGE_BOT:+trial-bot}}" >> "$GIT_DIR/trial-pushes.tsv"
done
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LocalForge:
    name = "local"

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.root = settings.forge_dir
        self.store = store
        self.left_out: list[str] = []
        """What the last `pull_requests` call did not read, and why (collect puts it in the manifest)."""
        self._diff_cache: dict[int, tuple[str, str]] = {}
        self._over_budget: set[int] = set()

    # -- paths and metadata -------------------------------------------------------------
    def repo_path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def _meta(self, name: str) -> Path:
        return self.repo_path(name) / "trial-meta.json"

    def _read_meta(self, name: str) -> dict[str, Any]:
        path = self._meta(name)
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        path = self._meta(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        tmp.replace(path)

    def trial_of(self, name: str) -> str | None:
        """The trial a served repo belongs to, for the git endpoint's auth check."""
        if not name or "/" in name or name.startswith("."):
            return None
        meta = self._read_meta(name)
        trial_id = meta.get("trial_id")
        return str(trial_id) if trial_id else None

    def accepts_pushes(self, name: str) -> bool:
        return not self._read_meta(name).get("locked", False)

    def _git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        try:
            return gitenv.output(args, cwd=cwd, extra_env=env)
        except gitenv.GitError as exc:
            raise ForgeError(f"git {args[0]} failed: {exc.stderr.strip().splitlines()[-1:] or exc.message}") from exc

    def _ref(self, name: str, trial_id: str = "") -> RepoRef:
        path = self.repo_path(name)
        return RepoRef(forge=self.name, name=name, full_name=name, web_url=path.as_uri(), trial_id=trial_id)

    # -- Forge protocol -----------------------------------------------------------------
    def check(self) -> None:
        if shutil.which("git") is None:
            raise PrerequisiteError("git is not installed", "install git (apt-get install git)")
        exec_path = Path(self._git("--exec-path").strip())
        if not (exec_path / "git-http-backend").exists():
            raise PrerequisiteError(f"git-http-backend not found in {exec_path}",
                                    "install a full git (the local forge serves repos with it)")

    def user_exists(self, login: str) -> bool:
        return True  # the local forge has no accounts: any well-formed login is a candidate

    def ssh_keys(self, login: str) -> list[str]:
        keys = self.root / "users" / f"{login}.keys"
        if not keys.exists():
            return []
        return [line.strip() for line in keys.read_text().splitlines() if line.strip()]

    def git_identity(self, login: str) -> tuple[str, str]:
        return login, f"{login}@users.noreply.github.com"

    def create_repo(self, trial_id: str, name: str, description: str) -> RepoRef:
        path = self.repo_path(name)
        if path.exists():
            owner = self.trial_of(name)
            if owner != trial_id:
                raise ForgeError(f"repository '{name}' already exists for trial {owner}",
                                 "change forge.repo_pattern or tear that trial down")
            return self._ref(name, trial_id)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{name}.creating"
        shutil.rmtree(staging, ignore_errors=True)
        # No template: git's sample hooks are a dozen files to write per repo (and ours replace the hooks).
        self._git("init", "--quiet", "--bare", "--template=", "--initial-branch=main", str(staging))
        # Appended to the config `git init` wrote, not set by one `git config` process each (launch
        # pays for every process); a section may appear twice in a git config file, the last value wins.
        quota = int(self.settings.forge.repo_quota_mb * 1024 * 1024)
        settings = ("[http]\n\treceivepack = true\n[receive]\n\tdenyDeletes = false\n\tfsckObjects = true\n"
                    "[core]\n\tsharedRepository = false\n")
        if quota > 0:
            settings += f"[trial]\n\tquotaBytes = {quota}\n"
        with (staging / "config").open("a") as config:
            config.write(settings)
        hooks = staging / "hooks"
        hooks.mkdir(exist_ok=True)
        for hook, body in (("pre-receive", PRE_RECEIVE), ("post-receive", POST_RECEIVE)):
            (hooks / hook).write_text(body)
            (hooks / hook).chmod(0o755)
        (staging / "description").write_text(description + "\n")
        (staging / "trial-meta.json").write_text(json.dumps(
            {"trial_id": trial_id, "created_at": _now(), "issues": [], "comments": {}, "pulls": {},
             "access": {}, "locked": False}, indent=2))
        staging.rename(path)  # atomic: a repo is either whole or absent
        return self._ref(name, trial_id)

    def repo_exists(self, repo: RepoRef) -> bool:
        return self._meta(repo.name).exists()

    def push(self, repo: RepoRef, worktree: Path, branch: str = "main") -> str:
        self._git("push", "--quiet", str(self.repo_path(repo.name)), f"HEAD:refs/heads/{branch}",
                  cwd=worktree, env={BOT_ENV: "1"})
        # What the repo now holds, read from its ref file (a fresh bare repo keeps refs loose; packed,
        # ask git) rather than asking the worktree again.
        ref = self.repo_path(repo.name) / "refs" / "heads" / branch
        if ref.is_file():
            return ref.read_text().strip()
        return self._git("rev-parse", f"refs/heads/{branch}", cwd=self.repo_path(repo.name)).strip()

    def how_to_submit(self, repo: RepoRef) -> str:
        return ("## How to submit\n"
                "Work on a branch and push it (`git push origin my-branch`): any branch other than `main` is "
                "your pull request. Its title and description are the subject and body of the branch's first "
                "commit message, so write that message like a pull request description "
                "(see `.github/pull_request_template.md`). `main` is protected.\n")

    def open_issue(self, repo: RepoRef, title: str, body: str) -> str:
        meta = self._read_meta(repo.name)
        for issue in meta["issues"]:
            if issue["title"] == title:
                return str(issue["url"])
        number = len(meta["issues"]) + 1
        url = f"{repo.web_url}#issue-{number}"
        meta["issues"].append({"number": number, "title": title, "body": body, "url": url, "created_at": _now()})
        self._write_meta(repo.name, meta)
        return url

    def issues(self, repo: RepoRef) -> list[dict[str, Any]]:
        return list(self._read_meta(repo.name).get("issues", []))

    def protect_default_branch(self, repo: RepoRef) -> bool:
        (self.repo_path(repo.name) / "trial-protected").touch()
        return True

    def sandbox_access(self, repo: RepoRef, token: str) -> SandboxAccess:
        service = self.settings.service
        return service_git_access(service.sandbox_host, service.port, repo.name, token)

    def revoke_sandbox_access(self, repo: RepoRef, access_key_id: str | None) -> None:
        self._set_locked(repo, True)

    def _set_locked(self, repo: RepoRef, locked: bool) -> None:
        meta = self._read_meta(repo.name)
        meta["locked"] = locked
        self._write_meta(repo.name, meta)

    def grant(self, repo: RepoRef, login: str) -> dict[str, Any]:
        meta = self._read_meta(repo.name)
        meta["access"][login] = {"permission": "push", "granted_at": _now()}
        self._write_meta(repo.name, meta)
        return {"login": login, "status": "granted"}

    def revoke(self, repo: RepoRef, login: str) -> None:
        meta = self._read_meta(repo.name)
        if login in meta["access"]:
            meta["access"][login]["revoked_at"] = _now()
        meta["locked"] = True
        self._write_meta(repo.name, meta)

    def fetch_all(self, repo: RepoRef, dest: Path) -> Path:
        if dest.exists():
            shutil.rmtree(dest)
        self._git("clone", "--quiet", "--mirror", str(self.repo_path(repo.name)), str(dest))
        return dest

    def fetch_commits(self, repo: RepoRef, dest: Path, wanted: dict[str, str]) -> list[str]:
        # The bare repo keeps objects no ref reaches until gc; upload-pack hands them out by SHA
        # only when told it may.
        missing = []
        for ref, sha in wanted.items():
            try:
                self._git("fetch", "--quiet", "--no-tags",
                          "--upload-pack=git -c uploadpack.allowAnySHA1InWant=true upload-pack",
                          str(self.repo_path(repo.name)), f"{sha}:{ref}", cwd=dest)
            except ForgeError:
                missing.append(ref)
        return missing

    def _branches(self, repo: RepoRef) -> dict[str, str]:
        out = self._git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads",
                        cwd=self.repo_path(repo.name))
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def _pull_numbers(self, repo: RepoRef, branches: list[str], pushes: list[dict[str, Any]]) -> dict[str, int]:
        """Stable numbers: in the order branches were first pushed (issues take 1..n first)."""
        meta = self._read_meta(repo.name)
        numbers: dict[str, int] = meta.setdefault("pulls", {})
        first_pushed: dict[str, int] = {}
        for position, event in enumerate(pushes):
            first_pushed.setdefault(str(event["ref"]).removeprefix("refs/heads/"), position)
        ordered = sorted(branches, key=lambda b: (first_pushed.get(b, 1 << 30), b))
        changed = False
        for branch in ordered:
            if branch not in numbers:
                numbers[branch] = len(meta["issues"]) + len(numbers) + 1
                changed = True
        if changed:
            self._write_meta(repo.name, meta)
        return numbers

    def pull_requests(self, repo: RepoRef) -> list[PullRequest]:
        """Every branch but the default one that holds commits of its own, as a pull request.

        A fixed number of git commands per branch (no command per file, no re-listing per
        pull request), so a thousand branches over a large tree read in linear time. Times
        are the host's push log, never commit dates (the candidate sets those).
        """
        path = self.repo_path(repo.name)
        gitenv.harden(path)
        branches = self._branches(repo)
        base_ref = repo.default_branch
        if base_ref not in branches:
            return []
        candidates = [b for b in branches if b != base_ref]
        pushes = self.push_events(repo)
        numbers = self._pull_numbers(repo, candidates, pushes)
        pushed: dict[str, list[str]] = {}
        for event in pushes:
            pushed.setdefault(str(event["ref"]).removeprefix("refs/heads/"), []).append(str(event["ts"]))
        self.left_out = []
        self._diff_cache = {}
        self._over_budget = set()
        budget = MAX_DIFF_BUDGET
        # Most recently pushed first: caps and the diff budget go to the work graded first.
        candidates.sort(key=lambda b: ((pushed.get(b) or [""])[-1], numbers[b]), reverse=True)
        if len(candidates) > MAX_PULLS:
            self.left_out.append(f"{len(candidates) - MAX_PULLS} of {len(candidates)} branches not read as pull "
                                 f"requests (only the {MAX_PULLS} pushed last are); all are in repo.bundle")
            candidates = candidates[:MAX_PULLS]
        comments = self._read_meta(repo.name).get("comments", {})
        pulls = []
        for branch in candidates:
            head = branches[branch]
            base = self._merge_base(path, branches[base_ref], head)
            commits = self._commits(path, f"{base}..{head}" if base else head)
            if not commits:
                continue  # a branch with nothing new is not a pull request
            first = commits[0]
            subject, _, body = first["message"].partition("\n")
            number = numbers[branch]
            times = pushed.get(branch) or [first["committed_at"], commits[-1]["committed_at"]]
            pulls.append(PullRequest(
                number=number, title=subject.strip(), body=body.strip(), state="open",
                head_ref=branch, head_sha=head, base_ref=base_ref, base_sha=base,
                author=str(first["author"]), created_at=times[0], updated_at=times[-1],
                url=f"{repo.web_url}#pull-{number}", files=self._files(path, base, head, number, budget),
                commits=commits[:MAX_PR_COMMITS], comments=list(comments.get(str(number), [])),
            ))
            budget -= sum(len(f["patch"]) for f in pulls[-1].files) + len(self._diff_cache.get(number, ("", ""))[1])
        if self._over_budget:
            self.left_out.append(f"{len(self._over_budget)} pull request(s) past the {MAX_DIFF_BUDGET >> 20} MiB diff "
                                 "budget: files listed without line counts, patches or diff, at most "
                                 f"{MAX_FILES_PAST_BUDGET} each (the commits are in repo.bundle)")
        return sorted(pulls, key=lambda pr: pr.number)

    def _merge_base(self, path: Path, base: str, head: str) -> str:
        """The fork point, or "" for a branch with no history in common (an orphan branch)."""
        try:
            return gitenv.output(["merge-base", base, head], cwd=path).strip()
        except gitenv.GitError as exc:
            if exc.returncode == 1 and not exc.stderr.strip():
                return ""  # git's answer for "no common ancestor"
            raise ForgeError(f"git merge-base failed: {exc.stderr.strip()[-200:]}") from exc

    def _commits(self, path: Path, revrange: str) -> list[dict[str, Any]]:
        # NUL-delimited: a commit message can hold any byte but NUL.
        out = self._git("log", "--reverse", "-z", "--format=%H%x00%an%x00%ae%x00%aI%x00%cn%x00%cI%x00%B", revrange,
                        cwd=path)
        commits = []
        fields = out.split("\0")
        for at in range(0, len(fields) - 6, 7):
            sha, name, email, authored, committer, committed, message = fields[at:at + 7]
            commits.append({"sha": sha.strip("\n"), "author": name, "author_email": email, "authored_at": authored,
                            "committer": committer, "committed_at": committed, "message": message.strip()})
        return commits

    def _diff(self, path: Path, base: str, head: str, *args: str) -> str:
        # Against the empty tree for an orphan branch: the whole branch is the change.
        return self._git(*BIG_FILES, "diff", *gitenv.DIFF_FLAGS, "--no-renames", *args, base or EMPTY_TREE, head,
                         cwd=path)

    def _diff_capped(self, path: Path, base: str, head: str, cap: int) -> str | None:
        """The patch, streamed and cut (git killed) past `cap` bytes: None then. A diff is never read
        whole first: one blob at many paths packs into KiB and diffs into GB."""
        argv = gitenv.argv(*BIG_FILES, "diff", *gitenv.DIFF_FLAGS, "--no-renames", base or EMPTY_TREE, head)
        chunks: list[bytes] = []
        size = 0
        with subprocess.Popen(argv, cwd=path, env=gitenv.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) as proc:
            stdout = cast("IO[bytes]", proc.stdout)  # stdout=PIPE: never None
            try:
                while chunk := stdout.read(1 << 20):
                    size += len(chunk)
                    if size > cap:
                        return None
                    chunks.append(chunk)
                code = proc.wait(timeout=gitenv.DEFAULT_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise ForgeError(f"git diff did not finish within {gitenv.DEFAULT_TIMEOUT_S:g}s") from exc
            finally:
                if proc.poll() is None:
                    proc.kill()
        if code != 0:
            raise ForgeError(f"git diff failed (exit {code}) for {head[:12]}")
        return b"".join(chunks).decode("utf-8", "replace")

    def _files(self, path: Path, base: str, head: str, number: int, budget: int) -> list[dict[str, Any]]:
        """Two diffs for the whole branch (status and line counts together, then the patch); git
        lists files in the same order in both. Past the diff budget (`budget` spent, or this patch
        longer than what is left), one tree-only listing: names and statuses, no patch kept."""
        full_read = budget > 0
        statuses: list[str] = []
        names: list[str] = []
        counts: list[tuple[str, str, str]] = []  # (added, deleted, name)
        tokens = iter(self._diff(path, base, head, "--raw", *(("--numstat",) if full_read else ()), "-z")
                      .split("\0"))
        for token in tokens:  # every raw entry (status, then its path), then every numstat entry
            if token.startswith(":"):
                statuses.append(token.split()[-1][:1])
                names.append(next(tokens, ""))
            elif token.count("\t") >= 2:
                added, deleted, name = token.split("\t", 2)
                counts.append((added, deleted, name))
        full = self._diff_capped(path, base, head, budget) if full_read else None
        if full is None:
            self._over_budget.add(number)
            return [{"filename": name, "status": {"A": "added", "D": "removed"}.get(code, "modified"),
                     "additions": 0, "deletions": 0, "patch": "", "counted": False}
                    for code, name in list(zip(statuses, names, strict=False))[:MAX_FILES_PAST_BUDGET]]
        entries = [(statuses[i] if i < len(statuses) else "M", *count) for i, count in enumerate(counts)]
        if len(full) <= MAX_CACHED_DIFF:
            self._diff_cache[number] = (head, full)
        patches = _split_patch(full)
        aligned = len(patches) == len(entries)
        files = []
        for position, (code, added, deleted, filename) in enumerate(entries[:MAX_PR_FILES]):
            patch = patches[position] if aligned else ""
            hunks = patch.find("\n@@")
            text = patch[hunks + 1:] if hunks >= 0 else ""
            if len(text) > MAX_PATCH_CHARS:
                text = text[:MAX_PATCH_CHARS] + f"\n… [{len(text) - MAX_PATCH_CHARS} more characters not shown]"
            files.append({
                "filename": filename,
                "status": {"A": "added", "D": "removed", "R": "renamed"}.get(code, "modified"),
                "additions": int(added) if added.isdigit() else 0,
                "deletions": int(deleted) if deleted.isdigit() else 0,
                "patch": text,
            })
        return files

    def pull_request_diff(self, repo: RepoRef, number: int) -> str:
        if number in self._over_budget:
            raise ForgeError(f"the diff of pull request #{number} was not read: past the "
                             f"{MAX_DIFF_BUDGET >> 20} MiB diff budget of this collect")
        path = self.repo_path(repo.name)
        branch = next((b for b, n in self._read_meta(repo.name).get("pulls", {}).items() if n == number), None)
        cached = self._diff_cache.get(number)
        if cached is not None and branch is not None:
            # Read by the `pull_requests` call just before (collect reads both): reuse it if the branch held still.
            now = gitenv.run(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], cwd=path, check=False)
            if now.stdout.strip() == cached[0]:
                return cached[1]
        branches = self._branches(repo)
        if branch is None or branch not in branches or repo.default_branch not in branches:
            raise ForgeError(f"no pull request #{number} in {repo.name}")
        head = branches[branch]
        diff = self._diff_capped(path, self._merge_base(path, branches[repo.default_branch], head), head,
                                 MAX_DIFF_BUDGET)
        if diff is None:
            raise ForgeError(f"the diff of pull request #{number} was not read: longer than the "
                             f"{MAX_DIFF_BUDGET >> 20} MiB diff budget")
        return diff

    def push_events(self, repo: RepoRef) -> list[dict[str, Any]]:
        return pushlog.read(self.repo_path(repo.name) / PUSH_LOG)

    def post_comment(self, repo: RepoRef, number: int, body: str, marker: str) -> str:
        if not self._meta(repo.name).exists():
            raise ForgeError(f"repository {repo.name} was archived or deleted: it takes no more comments",
                             "post the report before `trial teardown`, or read report.md in the bundle")
        meta = self._read_meta(repo.name)
        thread: list[dict[str, Any]] = meta.setdefault("comments", {}).setdefault(str(number), [])
        for comment in thread:
            # The marker is kept beside the body: a body need not carry it (GitHub's hides it in HTML).
            if comment.get("marker") == marker or marker in comment["body"]:
                comment.update(body=body, updated_at=_now())
                self._write_meta(repo.name, meta)
                return str(comment["url"])
        comment_id = sum(len(t) for t in meta["comments"].values()) + 1
        url = f"{repo.web_url}#pull-{number}-comment-{comment_id}"
        thread.append({"id": comment_id, "author": self.settings.forge.bot_name, "body": body,
                       "created_at": _now(), "updated_at": _now(), "url": url, "marker": marker})
        self._write_meta(repo.name, meta)
        return url

    def archive(self, repo: RepoRef) -> None:
        path = self.repo_path(repo.name)
        if not path.exists():
            return
        self._set_locked(repo, True)
        target = self.root / "archive" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        path.rename(target)

    def delete(self, repo: RepoRef) -> None:
        shutil.rmtree(self.repo_path(repo.name), ignore_errors=True)

    def list_managed(self) -> list[RepoRef]:
        if not self.root.is_dir():
            return []
        repos = []
        for path in sorted(self.root.glob("*.git")):
            name = path.name.removesuffix(".git")
            trial_id = self.trial_of(name)
            if trial_id:
                repos.append(self._ref(name, trial_id))
        return repos


def _split_patch(diff: str) -> list[str]:
    """A whole `git diff` cut into one patch per file, in git's order."""
    chunks: list[str] = []
    start = None
    position = 0
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git "):
            if start is not None:
                chunks.append(diff[start:position])
            start = position
        position += len(line)
    if start is not None:
        chunks.append(diff[start:])
    return chunks
