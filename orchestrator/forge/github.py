"""The GitHub forge: a private repo per candidate in one organisation, through PyGithub and git.

Credentials come only from the environment, never from trial.toml:

    GITHUB_TOKEN                         a fine-grained token (or classic, scope `repo`) of the bot
  or, as a GitHub App (preferred: short-lived tokens, check runs):
    TRIAL_GITHUB_APP_ID                  the App's id
    TRIAL_GITHUB_APP_INSTALLATION_ID     its installation in the org (the number in the org's
                                         Settings → GitHub Apps → Configure URL)
    TRIAL_GITHUB_APP_PRIVATE_KEY         the PEM key itself, or
    TRIAL_GITHUB_APP_PRIVATE_KEY_FILE    a path to it

The bot needs, on the org's repositories: administration (create, protect, collaborators,
archive), contents (push, fetch; also the sandbox's pushes, through the host service's proxy),
issues and pull requests, all write.

Git never sees the token in a URL or on disk: pushes and fetches pass it as an HTTP header
through git's environment (GIT_CONFIG_*), and an App's token is minted fresh before each.

The sandbox holds no GitHub credential: its clone goes through the host service's git
proxy (`/git/<repo>.git`, the trial token as the password), which adds the operator's
credentials upstream (`upstream_git`), refuses after the deadline, and writes the host
push log (`push_log_path`) that `push_events` merges with GitHub's own activity.
The cutoff is real: `revoke` removes the candidate (and any pending invitation), and
`revoke_sandbox_access` removes a deploy key left by a trial launched before the proxy.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import git
import requests
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededExceedsMaxWait,
    RateLimitExceededException,
)
from urllib3 import BaseHTTPResponse

from orchestrator import __version__, gitenv
from orchestrator.config import ForgeSettings, ServiceSettings
from orchestrator.errors import ConfigError, ForgeError, NotFoundError, PrerequisiteError, TrialError
from orchestrator.forge import pushlog
from orchestrator.forge.base import PullRequest, RepoRef, SandboxAccess, service_git_access
from orchestrator.logging import get_logger
from orchestrator.store import iso

if TYPE_CHECKING:
    from github.Repository import Repository

    from orchestrator.config import Settings

log = get_logger(component="forge.github")

MANAGED_TOPIC = "trial-managed"
"""Topic on every repository this forge creates: `trial gc` lists only these."""
TRIAL_MARK = re.compile(r"\(trial:([A-Za-z0-9_-]+)\)\s*$")
"""The trial id at the end of a repo's description: a rerun finds its own repo by it."""
NAME_ATTEMPTS = 9
INVITATION_LIFETIME = timedelta(days=7)
REQUIRED_APP_PERMISSIONS = {"administration": "write", "contents": "write", "issues": "write",
                            "pull_requests": "write"}
_LEVELS = {"read": 1, "write": 2, "admin": 3}
_NAME_TAKEN = "name already exists"
_PLAN_LIMIT = ("upgrade to github pro", "make this repository public")
_NOT_READY = (404, 409)

ENV_TOKEN = "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_APP_ID = "TRIAL_GITHUB_APP_ID"
ENV_APP_INSTALLATION = "TRIAL_GITHUB_APP_INSTALLATION_ID"
ENV_APP_KEY = "TRIAL_GITHUB_APP_PRIVATE_KEY"
ENV_APP_KEY_FILE = "TRIAL_GITHUB_APP_PRIVATE_KEY_FILE"
_CREDENTIALS_HINT = (f"export {ENV_TOKEN}, or {ENV_APP_ID} + {ENV_APP_INSTALLATION} + "
                     f"{ENV_APP_KEY} (or {ENV_APP_KEY_FILE})")


@dataclass(frozen=True)
class TokenCredentials:
    token: str = field(repr=False)


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    installation_id: int
    private_key: str = field(repr=False)


Credentials = TokenCredentials | AppCredentials


def credentials_from_env(env: Mapping[str, str]) -> Credentials:
    """An App when TRIAL_GITHUB_APP_ID is set, else GITHUB_TOKEN; names what is missing."""
    app_id = env.get(ENV_APP_ID, "").strip()
    if not app_id:
        token = env.get(ENV_TOKEN, "").strip()
        if not token:
            raise PrerequisiteError("no GitHub credentials in the environment", _CREDENTIALS_HINT)
        return TokenCredentials(token)
    installation = env.get(ENV_APP_INSTALLATION, "").strip()
    if not installation.isdigit():
        raise PrerequisiteError(f"{ENV_APP_ID} is set but {ENV_APP_INSTALLATION} is missing or not a number "
                                f"(got {installation!r})",
                                "see the org's Settings → GitHub Apps → Configure: the number in the URL")
    key = env.get(ENV_APP_KEY, "")
    key_file = env.get(ENV_APP_KEY_FILE, "").strip()
    if not key and key_file:
        try:
            key = Path(key_file).expanduser().read_text()
        except OSError as exc:
            raise PrerequisiteError(f"{ENV_APP_KEY_FILE}={key_file}: cannot read it ({exc.strerror})",
                                    "point it at the App's .pem private key") from exc
    if "\\n" in key and "\n" not in key.strip():
        key = key.replace("\\n", "\n")  # a PEM squeezed onto one line by a .env file
    if "PRIVATE KEY-----" not in key:
        source = ENV_APP_KEY_FILE if key_file and not env.get(ENV_APP_KEY) else ENV_APP_KEY
        raise PrerequisiteError(f"{source} does not hold a PEM private key",
                                "download one from the App's settings (Private keys → Generate)")
    return AppCredentials(app_id, int(installation), key)


def _header(headers: Mapping[str, Any] | None, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "").strip()
    details = [str(e.get("message") or e.get("code")) for e in data.get("errors", []) if isinstance(e, dict)]
    return "; ".join([message, *details]) if details else message


def translate(exc: GithubException, action: str) -> TrialError:
    """One GitHub failure as one of our errors, naming the permission or limit when GitHub says."""
    status = exc.status
    message = _message(exc)
    if isinstance(exc, BadCredentialsException) or status == 401:
        return PrerequisiteError(f"GitHub rejected the credentials while {action} (401 {message})",
                                 f"check {ENV_TOKEN} or the {ENV_APP_ID} variables; tokens expire")
    if isinstance(exc, RateLimitExceededException) or status == 429 or "rate limit" in message.lower():
        reset = _header(exc.headers, "x-ratelimit-reset")
        when = f", resets at {datetime.fromtimestamp(int(reset)).isoformat()}" if reset.isdigit() else ""
        return ForgeError(f"GitHub rate limit hit while {action} ({status}{when})",
                          "wait, then rerun the command: finished steps are kept")
    if status == 403:
        permission = _header(exc.headers, "x-accepted-github-permissions")
        if permission:
            return PrerequisiteError(f"GitHub refused {action}: the credentials lack permission {permission}",
                                     "grant it to the fine-grained token or the GitHub App installation")
        accepted = _header(exc.headers, "x-accepted-oauth-scopes")
        if accepted:
            return PrerequisiteError(f"GitHub refused {action}: the token needs scope {accepted}",
                                     "add the scope to the token, or use a fine-grained token")
    return ForgeError(f"GitHub answered {status} while {action}: {message or 'no message'}",
                      "see https://www.githubstatus.com and rerun; finished steps are kept")


class _BoundedRetry(GithubRetry):
    """PyGithub's retry, except that a Retry-After longer than max_rate_limit_wait fails the call
    (the step is rerun later) instead of sleeping inside it for as long as GitHub asks."""

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        seconds = self.get_retry_after(response)
        if seconds and self.max_rate_limit_wait is not None and seconds > self.max_rate_limit_wait:
            raise RateLimitExceededExceedsMaxWait(
                response.status, {"message": f"GitHub asked to retry after {seconds:g} s"},
                dict(response.headers), wait=seconds)
        return bool(super().sleep_for_retry(response))


class GitHubForge:
    """The Forge protocol on GitHub (or GitHub Enterprise Server through forge.api_url)."""

    name = "github"

    def __init__(self, settings: ForgeSettings, credentials: Credentials, *,
                 sleep: Callable[[float], None] = time.sleep, service: ServiceSettings | None = None,
                 state_dir: Path | None = None) -> None:
        if not settings.org:
            raise ConfigError("forge.org is not set but forge.kind is github",
                              'set [forge] org = "your-org" in trial.toml or TRIAL_FORGE_ORG')
        self.settings = settings
        self.org = settings.org
        self.credentials = credentials
        self.service = service or ServiceSettings()
        self.state_dir = state_dir
        """Where the host keeps what it witnessed of each repo (push logs, pack bytes through the proxy)."""
        self._proxy_token: tuple[str, float] | None = None
        self._sleep = sleep
        self._api_url = settings.api_url.rstrip("/")
        retry = _BoundedRetry(secondary_rate_wait=min(60.0, settings.max_rate_limit_wait_s),
                            max_rate_limit_wait=settings.max_rate_limit_wait_s)
        common: dict[str, Any] = {
            "base_url": self._api_url, "timeout": settings.request_timeout_s, "per_page": settings.per_page,
            "user_agent": f"trial/{__version__}", "retry": retry,
            "seconds_between_requests": 0.25 if settings.throttle else None,
            "seconds_between_writes": 1.0 if settings.throttle else None,
        }
        self._integration: GithubIntegration | None = None
        auth: Auth.Auth
        if isinstance(credentials, AppCredentials):
            app_auth = Auth.AppAuth(credentials.app_id, credentials.private_key)
            auth = app_auth.get_installation_auth(credentials.installation_id)
            self._integration = GithubIntegration(auth=app_auth, **common)
        else:
            auth = Auth.Token(credentials.token)
        self._gh = Github(auth=auth, lazy=True, **common)
        self._login: str | None = None
        self._clone_urls: dict[str, tuple[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> GitHubForge:
        return cls(settings.forge, credentials_from_env(os.environ if env is None else env),
                   service=settings.service, state_dir=settings.forge_dir / "github")

    @property
    def is_app(self) -> bool:
        return isinstance(self.credentials, AppCredentials)

    # -- plumbing -------------------------------------------------------------------------
    @contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Every PyGithub call runs in here, so its exceptions leave as ours."""
        try:
            yield
        except GithubException as exc:
            raise translate(exc, action) from exc
        except requests.exceptions.RetryError as exc:
            # PyGithub's retries ran out on 5xx (or rate-limit) answers: GitHub is up but failing.
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            raise ForgeError(f"GitHub kept failing while {action} ({reason or exc})",
                             "see https://www.githubstatus.com, then rerun: finished steps are kept") from exc
        except requests.RequestException as exc:
            raise ForgeError(f"cannot reach GitHub at {self._api_url} while {action} ({type(exc).__name__})",
                             "check the network and forge.api_url, then rerun") from exc

    def _request(self, verb: str, url: str, *, parameters: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, body: Any = None) -> tuple[dict[str, Any], Any]:
        """A raw REST call through PyGithub's requester (auth, retries and throttling included)."""
        result: tuple[dict[str, Any], Any] = self._gh.requester.requestJsonAndCheck(
            verb, url, parameters=parameters, headers=headers, input=body)
        return result

    def _paged(self, url: str, parameters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint PyGithub has no class for, following GitHub's Link header."""
        params: dict[str, Any] | None = {"per_page": self.settings.per_page, **(parameters or {})}
        next_url: str | None = url
        while next_url:
            headers, data = self._request("GET", next_url, parameters=params)
            yield from data or []
            next_url = _next_link(_header(headers, "link"))
            params = None  # the next link carries them

    def _repo(self, repo: RepoRef) -> Repository:
        return self._gh.get_repo(repo.full_name)

    def _full_name(self, name: str) -> str:
        return f"{self.org}/{name}"

    def _token(self) -> str:
        """A token for git: the PAT, or a freshly minted installation token (they live an hour)."""
        if isinstance(self.credentials, TokenCredentials):
            return self.credentials.token
        return str(self._installation_token().token)

    def _installation_token(self) -> Any:
        """A new installation token (with the permissions GitHub granted it)."""
        if self._integration is None or not isinstance(self.credentials, AppCredentials):
            raise ForgeError("an installation token was asked of a token-authenticated forge")
        with self._api("minting a GitHub App installation token"):
            return self._integration.get_access_token(self.credentials.installation_id)

    def upstream_git(self, repo: RepoRef) -> tuple[str, dict[str, str]]:
        """(https clone URL, headers) for the host service's git proxy to reach this repo as the bot.

        An App's installation token is kept while it has more than five minutes left: a
        fetch is two requests, and minting one per request would cost a call each.
        """
        if isinstance(self.credentials, TokenCredentials):
            token = self.credentials.token
        else:
            cached = self._proxy_token
            if cached is None or cached[1] - time.time() < 300:
                minted = self._installation_token()
                expires = minted.expires_at.timestamp() if minted.expires_at else time.time() + 3600
                cached = self._proxy_token = (str(minted.token), expires)
            token = cached[0]
        https_url, _ = self._urls(repo)
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        return https_url, {"Authorization": f"Basic {basic}"}

    def push_log_path(self, repo: RepoRef) -> Path | None:
        """The host push log of this repo (written by the git proxy), or None without a state dir."""
        if self.state_dir is None:
            return None
        return self.state_dir / f"{repo.trial_id or repo.name}.pushes.tsv"

    def proxy_usage_path(self, repo: RepoRef) -> Path | None:
        """Pack bytes this repo took through the git proxy so far (for the size quota)."""
        if self.state_dir is None:
            return None
        return self.state_dir / f"{repo.trial_id or repo.name}.pack-bytes"

    def _git_env(self) -> dict[str, str]:
        basic = base64.b64encode(f"x-access-token:{self._token()}".encode()).decode()
        # Hardened like every host-side git over candidate content (orchestrator.gitenv).
        return {**gitenv.SAFE_ENV, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}

    def _urls(self, repo: RepoRef) -> tuple[str, str]:
        """(https clone URL, ssh URL) as GitHub reports them, which is right for Enterprise too."""
        if repo.full_name not in self._clone_urls:
            with self._api(f"reading {repo.full_name}"):
                _, data = self._request("GET", f"/repos/{repo.full_name}")
            self._clone_urls[repo.full_name] = (str(data["clone_url"]), str(data["ssh_url"]))
        return self._clone_urls[repo.full_name]

    def _me(self) -> str:
        """The login our comments carry: the token's user, or `<app-slug>[bot]`."""
        if self._login is None:
            if self._integration is not None:
                with self._api("reading the GitHub App"):
                    self._login = f"{self._integration.get_app().slug}[bot]"
            else:
                with self._api("reading the authenticated user"):
                    _, data = self._request("GET", "/user")
                self._login = str(data["login"])
        return self._login

    # -- Forge protocol -------------------------------------------------------------------
    def check(self) -> None:
        if isinstance(self.credentials, AppCredentials):
            granted = self._installation_token().permissions or {}
            missing = [f"{name}={level}" for name, level in REQUIRED_APP_PERMISSIONS.items()
                       if _LEVELS.get(str(granted.get(name)), 0) < _LEVELS[level]]
            if missing:
                raise PrerequisiteError(
                    f"the GitHub App installation {self.credentials.installation_id} lacks permission "
                    f"{', '.join(missing)}",
                    "add it under the App's Permissions & events, then accept it in the org's installation")
        else:
            with self._api("reading the authenticated user"):
                headers, data = self._request("GET", "/user")
            self._login = str(data["login"])
            scopes = _header(headers, "x-oauth-scopes")
            if scopes or "x-oauth-scopes" in {k.lower() for k in headers}:
                # A classic token announces its scopes; a fine-grained one does not (its
                # missing permissions are named by GitHub when a call is refused).
                have = {s.strip() for s in scopes.split(",") if s.strip()}
                needed = ["repo"] + (["delete_repo"] if self.settings.on_teardown == "delete" else [])
                missing = [s for s in needed if s not in have]
                if missing:
                    raise PrerequisiteError(f"{ENV_TOKEN} lacks scope {', '.join(missing)} "
                                            f"(it has: {scopes or 'none'})",
                                            "create a token with those scopes, or a fine-grained token")
        try:
            with self._api(f"reading the organisation {self.org}"):
                self._request("GET", f"/orgs/{self.org}")
        except TrialError as exc:
            if _status(exc) == 404:
                raise PrerequisiteError(f"GitHub organisation '{self.org}' does not exist or is not visible "
                                        "to these credentials",
                                        "check forge.org and the token's resource owner") from exc
            raise

    def user_exists(self, login: str) -> bool:
        try:
            with self._api(f"looking up the GitHub user {login}"):
                self._request("GET", f"/users/{login}")
        except TrialError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def how_to_submit(self, repo: RepoRef) -> str:
        return ("## How to submit\n"
                f"Push a branch to {repo.web_url} and open a pull request against `{repo.default_branch}` "
                "(the description template is filled in for you). `main` only changes through pull requests.\n")

    def git_identity(self, login: str) -> tuple[str, str]:
        """The profile's name, and the `ID+login@users.noreply.HOST` address GitHub links to the account."""
        with self._api(f"reading {login}'s profile"):
            _, data = self._request("GET", f"/users/{login}")
        name = str(data.get("name") or data.get("login") or login)
        host = urlsplit(self.settings.api_url).hostname or "github.com"
        host = "github.com" if host == "api.github.com" else host
        return name, f"{data.get('id')}+{data.get('login') or login}@users.noreply.{host}"

    def ssh_keys(self, login: str) -> list[str]:
        try:
            with self._api(f"reading {login}'s SSH keys"):
                return [str(key["key"]).strip() for key in self._paged(f"/users/{login}/keys")]
        except TrialError as exc:
            if _status(exc) == 404:
                raise _no_such_user(login) from exc
            raise

    def create_repo(self, trial_id: str, name: str, description: str) -> RepoRef:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", name).strip(".")[:96] or f"trial-{trial_id}"
        marked = f"{description} (trial:{trial_id})"
        organisation = self._gh.get_organization(self.org)
        for attempt in range(1, NAME_ATTEMPTS + 1):
            candidate = base if attempt == 1 else f"{base}-{attempt}"
            try:
                with self._api(f"creating the repository {self._full_name(candidate)}"):
                    created = organisation.create_repo(
                        candidate, description=marked, private=True, has_issues=True, has_wiki=False,
                        has_projects=False, auto_init=False, delete_branch_on_merge=False)
                full_name = str(created.full_name)
            except TrialError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, GithubException) and cause.status == 422
                        and _NAME_TAKEN in _message(cause).lower()):
                    raise
                owner = self._trial_of(self._full_name(candidate))
                if owner != trial_id:
                    log.info("repo.name_taken", name=candidate, owner_trial=owner)
                    continue
                full_name = self._full_name(candidate)  # a rerun: this trial made it already
                log.info("repo.resumed", repo=full_name, trial_id=trial_id)
            self._await_ready(full_name)
            with self._api(f"tagging {full_name}"):
                self._gh.get_repo(full_name).replace_topics([MANAGED_TOPIC])
            return RepoRef(forge=self.name, name=full_name.split("/", 1)[1], full_name=full_name,
                           web_url=self._web_url(full_name), default_branch="main", trial_id=trial_id)
        raise ForgeError(f"every name from {base} to {base}-{NAME_ATTEMPTS} is taken in {self.org}",
                         "change forge.repo_pattern (it can use {short_id} or {trial_id})")

    def _trial_of(self, full_name: str) -> str | None:
        with self._api(f"reading {full_name}"):
            _, data = self._request("GET", f"/repos/{full_name}")
        found = TRIAL_MARK.search(str(data.get("description") or ""))
        return found.group(1) if found else None

    def _web_url(self, full_name: str) -> str:
        parts = urlsplit(self._api_url)
        host = parts.netloc.removeprefix("api.")
        return f"{parts.scheme}://{host}/{full_name}"

    def _await_ready(self, full_name: str) -> None:
        """A just-created repo can answer 404/409 ("repository is being created") for a while."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        delay = 0.2
        while True:
            try:
                with self._api(f"waiting for {full_name} to be ready"):
                    self._request("GET", f"/repos/{full_name}")
                return
            except TrialError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, GithubException) and cause.status in _NOT_READY):
                    raise
                if time.monotonic() + delay > deadline:
                    raise ForgeError(f"GitHub has not finished creating {full_name} after "
                                     f"{self.settings.ready_timeout_s:g} s ({cause.status})",
                                     "rerun the command; it resumes at this step") from exc
            self._sleep(delay)
            delay = min(delay * 2, 3.0)

    def repo_exists(self, repo: RepoRef) -> bool:
        try:
            with self._api(f"reading {repo.full_name}"):
                self._request("GET", f"/repos/{repo.full_name}")
        except TrialError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def push(self, repo: RepoRef, worktree: Path, branch: str = "main") -> str:
        https_url, _ = self._urls(repo)
        try:
            local = git.Repo(worktree)
            local.git.push("--quiet", https_url, f"HEAD:refs/heads/{branch}", env=self._git_env())
            return str(local.head.commit.hexsha)
        except git.GitCommandError as exc:
            raise ForgeError(f"git push to {repo.full_name} ({branch}) failed: {_git_reason(exc)}",
                             "rerun the command: the push is repeated and converges") from exc
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise ForgeError(f"{worktree} is not a git work tree",
                             "commit the starter before pushing") from exc

    def open_issue(self, repo: RepoRef, title: str, body: str) -> str:
        with self._api(f"opening the brief issue in {repo.full_name}"):
            for issue in self._paged(f"/repos/{repo.full_name}/issues", {"state": "all"}):
                if "pull_request" not in issue and issue["title"] == title:
                    return str(issue["html_url"])
            return str(self._repo(repo).create_issue(title=title, body=body).html_url)

    def protect_default_branch(self, repo: RepoRef) -> bool:
        rules = {
            "required_status_checks": None,
            "enforce_admins": False,  # the bot may still repair main; the candidate (write) may not
            "required_pull_request_reviews": {"required_approving_review_count": 0,
                                              "dismiss_stale_reviews": False,
                                              "require_code_owner_reviews": False},
            "restrictions": None,
            "allow_force_pushes": False,
            "allow_deletions": False,
        }
        url = f"/repos/{repo.full_name}/branches/{repo.default_branch}/protection"
        try:
            with self._api(f"protecting {repo.default_branch} of {repo.full_name}"):
                self._request("PUT", url, body=rules)
        except TrialError as exc:
            cause = exc.__cause__
            if isinstance(cause, GithubException) and cause.status == 403 and any(
                    hint in _message(cause).lower() for hint in _PLAN_LIMIT):
                log.warning("protect.plan_limit", repo=repo.full_name, message=_message(cause))
                return False
            raise
        return True

    def sandbox_access(self, repo: RepoRef, token: str) -> SandboxAccess:
        # No GitHub credential enters the sandbox: its clone goes through the host service.
        return service_git_access(self.service.sandbox_host, self.service.port, repo.name, token)

    def revoke_sandbox_access(self, repo: RepoRef, access_key_id: str | None) -> None:
        # The proxy refuses the trial once its deadline passed or its token is revoked; what is
        # left to end is a deploy key from a trial launched before the proxy.
        title = _deploy_key_title(repo)
        with self._api(f"removing the sandbox's deploy key from {repo.full_name}"):
            for key in self._repo(repo).get_keys():
                if str(key.id) == access_key_id or key.title == title:
                    key.delete()

    def grant(self, repo: RepoRef, login: str) -> dict[str, Any]:
        gh_repo = self._repo(repo)
        reinvited = False
        for invitation in self.pending_invitations(repo):
            if invitation["login"].lower() != login.lower():
                continue
            if not invitation["expired"]:
                return {"login": login, "status": "pending", **invitation}
            with self._api(f"removing {login}'s expired invitation to {repo.full_name}"):
                gh_repo.remove_invitation(invitation["id"])
            reinvited = True
        try:
            with self._api(f"inviting {login} to {repo.full_name}"):
                sent = gh_repo.add_to_collaborators(login, permission="push")
        except TrialError as exc:
            if _status(exc) == 404:
                raise _no_such_user(login) from exc
            raise
        if sent is None:
            return {"login": login, "status": "member"}
        created = iso(sent.created_at)
        return {"login": login, "status": "reinvited" if reinvited else "invited", "id": sent.id,
                "created_at": created, "expires_at": iso(sent.created_at + INVITATION_LIFETIME),
                "expired": False, "url": str(sent.html_url)}

    def pending_invitations(self, repo: RepoRef) -> list[dict[str, Any]]:
        """Invitations not yet accepted, with when they expire (GitHub lets them lapse after 7 days)."""
        with self._api(f"listing invitations to {repo.full_name}"):
            return [{"login": str(inv.invitee.login), "id": inv.id, "created_at": iso(inv.created_at),
                     "expires_at": iso(inv.created_at + INVITATION_LIFETIME), "expired": bool(inv.expired),
                     "url": str(inv.html_url)}
                    for inv in self._repo(repo).get_pending_invitations()]

    def revoke(self, repo: RepoRef, login: str) -> None:
        gh_repo = self._repo(repo)
        for invitation in self.pending_invitations(repo):
            if invitation["login"].lower() == login.lower():
                with self._api(f"withdrawing {login}'s invitation to {repo.full_name}"):
                    gh_repo.remove_invitation(invitation["id"])
        try:
            with self._api(f"removing {login} from {repo.full_name}"):
                gh_repo.remove_from_collaborators(login)
        except TrialError as exc:
            if _status(exc) != 404:
                raise  # 404: the user is gone from GitHub, so is their access

    def fetch_all(self, repo: RepoRef, dest: Path) -> Path:
        https_url, _ = self._urls(repo)
        env = self._git_env()
        try:
            if (dest / "HEAD").exists():
                git.Repo(dest).git.fetch("--quiet", "--prune", https_url, "+refs/*:refs/*", env=env)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                git.Repo.clone_from(https_url, dest, mirror=True, env=env)
        except git.GitCommandError as exc:
            raise ForgeError(f"git fetch of {repo.full_name} failed: {_git_reason(exc)}",
                             "rerun the command; the fetch resumes into the same mirror") from exc
        return dest

    def fetch_commits(self, repo: RepoRef, dest: Path, wanted: dict[str, str]) -> list[str]:
        # GitHub serves a commit by SHA while it exists, reachable or not (until its gc).
        https_url, _ = self._urls(repo)
        missing = []
        for ref, sha in wanted.items():
            try:
                git.Repo(dest).git.fetch("--quiet", "--no-tags", https_url, f"{sha}:{ref}", env=self._git_env())
            except git.GitCommandError as exc:
                log.warning("fetch_commit.failed", repo=repo.full_name, ref=ref, reason=_git_reason(exc))
                missing.append(ref)
        return missing

    def pull_requests(self, repo: RepoRef) -> list[PullRequest]:
        # Raw JSON rather than PyGithub objects: an attribute GitHub leaves out of a list item
        # (in_reply_to_id on a first comment) would make PyGithub fetch that item again.
        base = f"/repos/{repo.full_name}/pulls"
        pulls: list[PullRequest] = []
        with self._api(f"reading the pull requests of {repo.full_name}"):
            for listed in self._paged(base, {"state": "all", "sort": "created", "direction": "asc"}):
                number = int(listed["number"])
                _, pr = self._request("GET", f"{base}/{number}")
                pulls.append(PullRequest(
                    number=number, title=pr["title"], body=pr.get("body") or "", state=pr["state"],
                    head_ref=pr["head"]["ref"], head_sha=pr["head"]["sha"], base_ref=pr["base"]["ref"],
                    base_sha=pr["base"]["sha"], author=_user(pr.get("user")), created_at=_when(pr["created_at"]),
                    updated_at=_when(pr["updated_at"]), url=pr["html_url"], merged=bool(pr.get("merged")),
                    files=[_file_record(f) for f in self._paged(f"{base}/{number}/files")],
                    commits=[_commit_record(c) for c in self._paged(f"{base}/{number}/commits")],
                    reviews=[_review_record(r) for r in self._paged(f"{base}/{number}/reviews")],
                    review_comments=[_review_comment_record(c)
                                     for c in self._paged(f"{base}/{number}/comments")],
                    comments=[_comment_record(c) for c in
                              self._paged(f"/repos/{repo.full_name}/issues/{number}/comments")],
                ))
        return pulls

    def pull_request_diff(self, repo: RepoRef, number: int) -> str:
        url = f"/repos/{repo.full_name}/pulls/{number}"
        try:
            with self._api(f"reading the diff of {repo.full_name}#{number}"):
                _, data = self._request("GET", url, headers={"Accept": "application/vnd.github.diff"})
        except TrialError as exc:
            if _status(exc) == 406:
                # GitHub refuses diffs past 20,000 lines / 300 files: rebuild it from the file patches.
                pr = next((p for p in self.pull_requests(repo) if p.number == number), None)
                return _diff_from_files(pr.files) if pr else ""
            raise
        return str((data or {}).get("data", ""))

    def push_events(self, repo: RepoRef) -> list[dict[str, Any]]:
        """The host's push log (pushes through the proxy, host-timed) merged with GitHub's activity.

        A push seen by both keeps the host's time and takes GitHub's word on whether it was
        forced (the proxy never sees the commits' ancestry); a push only GitHub saw (the bot's
        starter, the candidate's laptop) keeps GitHub's time and is marked `witness: forge`.
        """
        with self._api(f"reading the push activity of {repo.full_name}"):
            activity = list(self._paged(f"/repos/{repo.full_name}/activity", {"direction": "asc"}))
        forge_seen = [{"ts": _when(item["timestamp"]), "ref": item["ref"], "before": item["before"],
                       "after": item["after"], "forced": item["activity_type"] == "force_push",
                       "kind": item["activity_type"], "pusher": (item.get("actor") or {}).get("login"),
                       "witness": "forge"}
                      for item in activity]
        log_path = self.push_log_path(repo)
        host_seen = pushlog.read(log_path) if log_path is not None else []
        by_update = {(e["ref"], e["before"], e["after"]): e for e in forge_seen}
        events = []
        for seen in host_seen:
            match = by_update.pop((seen["ref"], seen["before"], seen["after"]), None)
            events.append({**seen, "forced": match["forced"], "kind": match["kind"]} if match else seen)
        events += by_update.values()
        # By time, not by text: the host's log keeps microseconds and GitHub's activity seconds.
        return sorted(events, key=lambda event: datetime.fromisoformat(str(event["ts"]) or "1970-01-01T00:00:00+00:00"))

    def issue_comments(self, repo: RepoRef, number: int) -> list[dict[str, Any]]:
        """Comments on an issue, oldest first, each marked `mine` when our own login wrote it."""
        me = self._me().lower()
        with self._api(f"reading the comments of {repo.full_name}#{number}"):
            return [{**_comment_record(c), "mine": _user(c.get("user")).lower() == me}
                    for c in self._paged(f"/repos/{repo.full_name}/issues/{number}/comments")]

    def post_comment(self, repo: RepoRef, number: int, body: str, marker: str) -> str:
        tag = f"<!-- {marker} -->"
        text = body if tag in body else f"{body}\n\n{tag}"
        me = self._me().lower()
        with self._api(f"commenting on {repo.full_name}#{number}"):
            issue = self._repo(repo).get_issue(number)
            for comment in issue.get_comments():
                # Only our own: a candidate could paste the marker into a comment of theirs.
                if tag in (comment.body or "") and _login(comment.user).lower() == me:
                    comment.edit(text)
                    return str(comment.html_url)
            return str(issue.create_comment(text).html_url)

    def post_check_run(self, repo: RepoRef, head_sha: str, *, name: str, conclusion: str, title: str,
                       summary: str) -> str | None:
        """A completed check run on the PR's head; only a GitHub App may create them (else None)."""
        if not self.is_app:
            return None
        with self._api(f"creating the check run {name!r} on {repo.full_name}"):
            run = self._repo(repo).create_check_run(
                name=name, head_sha=head_sha, status="completed", conclusion=conclusion,
                output={"title": title, "summary": summary[:65535]})
        return str(run.html_url)

    def maintainers(self, repo: RepoRef) -> list[str]:
        """Logins with the admin or maintain role on the repository: who may `/score` it by default."""
        with self._api(f"reading the collaborators of {repo.full_name}"):
            return sorted(str(user.login) for user in self._repo(repo).get_collaborators()
                          if user.permissions is not None and (user.permissions.admin or user.permissions.maintain))

    def archive(self, repo: RepoRef) -> None:
        try:
            with self._api(f"reading {repo.full_name}"):
                _, data = self._request("GET", f"/repos/{repo.full_name}")
        except TrialError as exc:
            if _status(exc) == 404:
                return  # nothing left to archive
            raise
        if data.get("archived"):
            return  # GitHub refuses every write to an archived repo, this one included
        with self._api(f"archiving {repo.full_name}"):
            self._repo(repo).edit(archived=True)

    def delete(self, repo: RepoRef) -> None:
        try:
            with self._api(f"deleting {repo.full_name}"):
                self._repo(repo).delete()
        except TrialError as exc:
            if _status(exc) != 404:
                raise
        self._clone_urls.pop(repo.full_name, None)

    def list_managed(self) -> list[RepoRef]:
        refs: list[RepoRef] = []
        with self._api(f"listing the repositories of {self.org}"):
            for item in self._paged(f"/orgs/{self.org}/repos", {"type": "all"}):
                found = TRIAL_MARK.search(str(item.get("description") or ""))
                if MANAGED_TOPIC in (item.get("topics") or []) and found:
                    refs.append(RepoRef(forge=self.name, name=str(item["name"]),
                                        full_name=str(item["full_name"]), web_url=str(item["html_url"]),
                                        default_branch=str(item.get("default_branch") or "main"),
                                        trial_id=found.group(1)))
        return refs


# -- helpers --------------------------------------------------------------------------------

def _status(exc: TrialError) -> int | None:
    """The HTTP status behind one of our errors, when GitHub answered at all."""
    cause = exc.__cause__
    return cause.status if isinstance(cause, GithubException) else None


def _no_such_user(login: str) -> NotFoundError:
    return NotFoundError(f"GitHub user '{login}' does not exist", "check the candidate's login")


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            return url.strip().strip("<>")
    return None


def _login(user: Any) -> str:
    return str(getattr(user, "login", "") or "") if user is not None else ""


def _when(text: str | None) -> str:
    """GitHub's `…Z` timestamps in the `+00:00` form the rest of the evidence uses."""
    if not text:
        return ""
    return iso(datetime.fromisoformat(text.replace("Z", "+00:00"))) or ""


def _user(user: dict[str, Any] | None) -> str:
    return str((user or {}).get("login") or "")


def _file_record(item: dict[str, Any]) -> dict[str, Any]:
    return {"filename": item["filename"], "status": item["status"], "additions": item["additions"],
            "deletions": item["deletions"], "changes": item["changes"], "patch": item.get("patch") or "",
            "previous_filename": item.get("previous_filename"), "sha": item.get("sha")}


def _commit_record(item: dict[str, Any]) -> dict[str, Any]:
    data = item["commit"]
    author = data.get("author") or {}
    committer = data.get("committer") or {}
    return {"sha": item["sha"], "author": author.get("name", ""), "author_email": author.get("email", ""),
            "author_login": _user(item.get("author")) or None, "authored_at": _when(author.get("date")),
            "committer": committer.get("name", ""), "committed_at": _when(committer.get("date")),
            "message": data["message"], "parents": [parent["sha"] for parent in item.get("parents", [])]}


def _review_record(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "author": _user(item.get("user")), "state": item["state"],
            "body": item.get("body") or "", "commit_id": item.get("commit_id"),
            "submitted_at": _when(item.get("submitted_at")), "url": item["html_url"]}


def _review_comment_record(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "author": _user(item.get("user")), "path": item["path"],
            "line": item.get("line"), "side": item.get("side"), "commit_id": item["commit_id"],
            "original_commit_id": item["original_commit_id"], "diff_hunk": item["diff_hunk"],
            "body": item["body"], "in_reply_to_id": item.get("in_reply_to_id"),
            "review_id": item.get("pull_request_review_id"), "created_at": _when(item["created_at"]),
            "updated_at": _when(item["updated_at"]), "url": item["html_url"]}


def _comment_record(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "author": _user(item.get("user")), "created_at": _when(item["created_at"]),
            "updated_at": _when(item["updated_at"]), "body": item.get("body") or "", "url": item["html_url"]}


def _diff_from_files(files: list[dict[str, Any]]) -> str:
    chunks = []
    for item in files:
        old = item.get("previous_filename") or item["filename"]
        chunks.append(f"diff --git a/{old} b/{item['filename']}\n--- a/{old}\n+++ b/{item['filename']}\n"
                      f"{item.get('patch') or ''}\n")
    return "".join(chunks)


def _git_reason(exc: git.GitCommandError) -> str:
    lines = [line.strip() for line in str(exc.stderr or "").splitlines() if line.strip()]
    return lines[-1].removeprefix("stderr: ").strip("'") if lines else f"exit {exc.status}"


def _deploy_key_title(repo: RepoRef) -> str:
    return f"trial sandbox {repo.trial_id or repo.name}"
