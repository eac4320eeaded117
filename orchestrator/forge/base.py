"""The Forge protocol: a candidate's repository, their access to it, and their pull requests.

The lifecycle never learns which forge it drives. The local forge keeps bare repos under
the data dir and serves them to sandboxes over smart HTTP; the GitHub forge uses PyGithub
for the API and GitPython for pushes and fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RepoRef:
    forge: str
    """Name of the forge that owns it: local | github."""
    name: str
    """Repository name (no owner)."""
    full_name: str
    """owner/name on GitHub; the name on the local forge."""
    web_url: str
    """Where a person looks at it (https://github.com/… or a file path)."""
    default_branch: str = "main"
    trial_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"forge": self.forge, "name": self.name, "full_name": self.full_name, "web_url": self.web_url,
                "default_branch": self.default_branch, "trial_id": self.trial_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoRef:
        return cls(**data)


@dataclass(frozen=True)
class SandboxAccess:
    """How the sandbox's /workspace clone reaches the repo, with push rights to it only.

    `files` are written under the sandbox home (path relative to it → (content, mode)),
    e.g. the trial token; `git_config` entries go into the home's ~/.gitconfig.
    """

    clone_url: str
    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    git_config: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    key_id: str | None = None
    """Forge-side id of a deploy key (trials launched before the git proxy had one)."""


def service_git_access(sandbox_host: str, port: int, repo_name: str, token: str) -> SandboxAccess:
    """The sandbox's clone through the host service's git endpoint, on every forge.

    The trial token is the only credential in the sandbox: git reads it from a file through
    a credential helper (so it is in no URL and no git config), and the host service checks
    it, the trial's deadline and the repo on every request.
    """
    url = f"http://{sandbox_host}:{port}/git/{repo_name}.git"
    helper = ('!f() { test "$1" = get || exit 0; echo username=trial; '
              'echo "password=$(cat "$HOME/.trial/token")"; }; f')
    return SandboxAccess(clone_url=url, files={".trial/token": (token, 0o600)},
                         git_config={f"credential.{url}.helper": helper})


@dataclass
class PullRequest:
    number: int
    title: str
    body: str
    state: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    author: str
    created_at: str
    updated_at: str
    url: str
    merged: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    """{filename, status, additions, deletions, patch}"""
    commits: list[dict[str, Any]] = field(default_factory=list)
    """{sha, author, authored_at, committer, committed_at, message}"""
    reviews: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    """Issue comments on the PR: {id, author, created_at, updated_at, body, url}"""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@runtime_checkable
class Forge(Protocol):
    name: str

    def check(self) -> None:
        """Raise PrerequisiteError when credentials or permissions are missing (names which)."""

    def user_exists(self, login: str) -> bool: ...

    def ssh_keys(self, login: str) -> list[str]:
        """The user's public SSH keys (authorized_keys lines)."""

    def git_identity(self, login: str) -> tuple[str, str]:
        """(name, email) for the candidate's commits: their profile name and the forge's noreply address."""

    def create_repo(self, trial_id: str, name: str, description: str) -> RepoRef:
        """Create the repository, or return it when this trial already created it (resume)."""

    def repo_exists(self, repo: RepoRef) -> bool: ...

    def push(self, repo: RepoRef, worktree: Path, branch: str = "main") -> str:
        """Push the worktree's branch to the repo; returns the pushed head SHA."""

    def how_to_submit(self, repo: RepoRef) -> str:
        """Markdown appended to the brief: how the candidate hands in work on this forge."""

    def open_issue(self, repo: RepoRef, title: str, body: str) -> str:
        """Open an issue (the brief); returns its URL. Idempotent by title."""

    def protect_default_branch(self, repo: RepoRef) -> bool:
        """Only pull requests may change the default branch; False when the plan forbids it."""

    def sandbox_access(self, repo: RepoRef, token: str) -> SandboxAccess:
        """How the sandbox's clone reaches this repo: through the host service, with the trial token."""

    def revoke_sandbox_access(self, repo: RepoRef, access_key_id: str | None) -> None:
        """End the sandbox's git access (and remove a deploy key a trial launched before the git
        proxy still holds)."""

    def grant(self, repo: RepoRef, login: str) -> dict[str, Any]:
        """Give the candidate push access (invitation on GitHub); returns what happened."""

    def revoke(self, repo: RepoRef, login: str) -> None:
        """Remove the candidate's access and any pending invitation."""

    def fetch_all(self, repo: RepoRef, dest: Path) -> Path:
        """Mirror every ref into a bare repository at dest; returns dest."""

    def fetch_commits(self, repo: RepoRef, dest: Path, wanted: dict[str, str]) -> list[str]:
        """Fetch commits by SHA into the bare repository at dest, each under its ref in `wanted`
        ({ref: sha}), even when no ref on the forge reaches them; returns the refs it could not get."""

    def pull_requests(self, repo: RepoRef) -> list[PullRequest]:
        """Every pull request, read whole (files, commits, reviews, comments)."""

    def pull_request_diff(self, repo: RepoRef, number: int) -> str: ...

    def push_events(self, repo: RepoRef) -> list[dict[str, Any]]:
        """Ref updates: {ts, ref, before, after, forced, pusher, witness}, oldest first. `witness` is
        `host` for pushes through the host (push log), `forge` for those only the forge saw."""

    def post_comment(self, repo: RepoRef, number: int, body: str, marker: str) -> str:
        """Create, or update the earlier comment carrying `marker`; returns its URL."""

    def archive(self, repo: RepoRef) -> None: ...

    def delete(self, repo: RepoRef) -> None: ...

    def list_managed(self) -> list[RepoRef]:
        """Repositories this forge created for trials (for `trial gc`)."""
