"""A fake GitHub: a real HTTP server on 127.0.0.1 that PyGithub and git talk to as to GitHub.

REST under `/api/v3` (the GitHub Enterprise layout, so `forge.api_url` is all a client
changes), git over smart HTTP under `/{owner}/{repo}.git` through `git http-backend`, so
pushes and fetches are real. State lives in memory (repos on disk): organisations, users
and their SSH keys, tokens (classic with scopes, fine-grained and App installation tokens
with permissions), Apps with JWT auth, repositories with collaborators, invitations,
deploy keys, branch protection, issues, pull requests, reviews, comments, check runs and
push activity.

Bodies follow GitHub's OpenAPI description (tests/fakes/github/openapi-extract.json);
every JSON answer is recorded, and `schema_problems()` checks them all against it.
Error paths answer as GitHub does: 404 for what the caller may not see, 422 for a name
taken, 403 naming the missing permission (X-Accepted-GitHub-Permissions), 403 for a plan
limit, and rate limits with their headers. Faults are armed by tests: `rate_limit()`,
`fail()`, `drop_next_push()`, `delay_next_repo()`.

Deploy keys are kept and listed, but the fake serves no SSH, so nothing can push with one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.github import gitops, schema
from tests.fakes.github.shapes import INVITATION_LIFETIME, Shapes
from tests.fakes.github.state import (
    LEVELS,
    Account,
    App,
    CheckRun,
    Comment,
    DeployKey,
    Invitation,
    Issue,
    Pull,
    Repo,
    Review,
    ReviewComment,
    Token,
    next_id,
)

API_PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"
_GIT_PATH = re.compile(r"^/([^/]+)/([^/]+?)\.git(/.*)$")
_NAME_OK = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_KEY_OK = re.compile(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$")


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors:
            self.body["errors"] = errors
        self.headers = headers or {}


@dataclass
class Principal:
    login: str | None
    token: Token | None = None
    app: App | None = None


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    principal: Principal


@dataclass
class Fault:
    kind: str  # secondary | primary | bare429 | status
    count: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    retry_after: int | None = None
    status: int = 500
    message: str = ""


@dataclass
class Exchange:
    operation: str
    status: int
    body: Any


@dataclass(frozen=True)
class AppKeys:
    app_id: int
    installation_id: int
    private_key: str = field(repr=False)


Handler = Callable[[Request], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


class FakeGitHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.repos_root = root / "repos"
        self.repos_root.mkdir(parents=True, exist_ok=True)
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Token] = {}
        self.apps: dict[int, App] = {}
        self.repos: dict[str, Repo] = {}
        self.exchanges: list[Exchange] = []
        self.requests: list[tuple[str, str]] = []
        self.server_errors: list[str] = []
        self.faults: list[Fault] = []
        self.minted_installation_tokens = 0
        self.clock_offset = timedelta()
        self._drop_pushes = 0
        self._dropping = False
        self._delay_next_repo = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.web_url = ""
        self.api_url = ""
        self.host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                          "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy"
                          "7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="]
        self._routes = self._route_table()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.web_url = f"http://127.0.0.1:{port}"
        self.api_url = self.web_url + API_PREFIX
        self.shapes = Shapes(self.web_url, self.api_url, self.accounts, self.apps)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-github", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.clock_offset

    # -- setup by tests -------------------------------------------------------------------
    def add_org(self, login: str, *, plan: str = "team", owners: tuple[str, ...] = ()) -> Account:
        org = Account(login=login, type="Organization", created_at=self.now(), plan=plan, owners=set(owners))
        self.accounts[login.lower()] = org
        return org

    def add_user(self, login: str, *, ssh_keys: tuple[str, ...] = (), owner_of: tuple[str, ...] = (),
                 name: str | None = None, kind: str = "User") -> Account:
        user = Account(login=login, type=kind, created_at=self.now(), name=name or login,
                       email=f"{login}@users.noreply.github.com",
                       keys=[(next_id(), key) for key in ssh_keys])
        self.accounts[login.lower()] = user
        for org in owner_of:
            self.accounts[org.lower()].owners.add(login)
        return user

    def add_token(self, login: str, *, kind: str = "classic", scopes: tuple[str, ...] = ("repo",),
                  permissions: dict[str, str] | None = None, expires_in: timedelta | None = None) -> str:
        prefix = {"classic": "ghp_", "fine_grained": "github_pat_", "installation": "ghs_"}[kind]
        value = prefix + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")
        self.tokens[value] = Token(value=value, login=login, kind=kind, scopes=scopes if kind == "classic" else (),
                                   permissions=dict(permissions or {}),
                                   expires_at=self.now() + expires_in if expires_in else None)
        return value

    def add_app(self, slug: str, org: str, permissions: dict[str, str]) -> AppKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        app = App(id=next_id(), slug=slug, org=org, public_key_pem=public, permissions=dict(permissions),
                  installation_id=next_id(), created_at=self.now())
        self.apps[app.id] = app
        self.add_user(app.bot_login, kind="Bot")
        return AppKeys(app.id, app.installation_id, pem)

    # -- faults ---------------------------------------------------------------------------
    def rate_limit(self, count: int = 1, *, kind: str = "secondary", retry_after: int | None = 1,
                   method: str | None = None, path: str | None = None) -> None:
        """The next `count` matching API calls are refused for rate: secondary (403 + Retry-After),
        primary (403 + X-RateLimit-Remaining: 0 and a reset), or bare429 (429, no headers)."""
        self.faults.append(Fault(kind, count, method, re.compile(path) if path else None, retry_after))

    def fail(self, count: int, status: int, *, method: str | None = None, path: str | None = None,
             message: str = "Server Error", after: bool = False) -> None:
        """The next `count` matching API calls answer `status`; with `after`, only once the call has
        done its work (the answer is what gets lost, as when a proxy drops it)."""
        self.faults.append(Fault("after" if after else "status", count, method, re.compile(path) if path else None,
                                 None, status, message))

    def drop_next_push(self, count: int = 1) -> None:
        """The next `count` pushes lose their connection: each pack upload is read, then the
        connection is cut with no answer (curl's silent retry on a reused connection included)."""
        self._drop_pushes += count

    def delay_next_repo(self, requests: int) -> None:
        """The next repo created answers "being created" (404/409) to its first `requests` requests."""
        self._delay_next_repo = requests

    def advance_clock(self, delta: timedelta) -> None:
        self.clock_offset += delta

    # -- inspection -----------------------------------------------------------------------
    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def repos_of(self, owner: str) -> list[Repo]:
        return [r for r in self.repos.values() if r.owner.lower() == owner.lower()]

    def schema_problems(self) -> list[str]:
        found = list(self.server_errors)
        for exchange in list(self.exchanges):
            found += schema.problems(exchange.operation, exchange.status, exchange.body)
        return found

    def calls(self, method: str, pattern: str, since: int = 0) -> int:
        """How many requests matched, from request number `since` on (`len(fake.requests)` marks one)."""
        matcher = re.compile(pattern)
        return sum(1 for m, p in self.requests[since:] if m == method and matcher.search(p))

    # -- HTTP -----------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = _read_body(handler, headers)
        self.requests.append((handler.command, parts.path))
        if parts.path.startswith(API_PREFIX + "/") or parts.path == API_PREFIX:
            status, payload, extra = self._api(handler.command, parts.path[len(API_PREFIX):] or "/",
                                               parts.query, headers, body)
            _respond(handler, status, payload, extra)
            return
        match = _GIT_PATH.match(parts.path)
        if match:
            self._git(handler, match, parts.query, headers, body)
            return
        _respond(handler, 404, {"message": "Not Found", "documentation_url": DOCS}, {})

    def _api(self, method: str, path: str, query: str, headers: dict[str, str],
             raw: bytes) -> tuple[int, Any, dict[str, str]]:
        extra = self._rate_headers()
        operation = "unrouted"
        try:
            for verb, pattern, template, handler in self._routes:
                if verb != method:
                    continue
                found = pattern.match(path)
                if found is None:
                    continue
                operation = f"{verb} {template}"
                with self._lock:
                    lost = self._fault(method, path)
                    principal = self._principal(headers)
                    body = json.loads(raw) if raw.strip() else None
                    request = Request(method, path, found.groupdict(),
                                      {k: v[0] for k, v in parse_qs(query).items()}, body, headers, principal)
                    if principal.token is not None and principal.token.kind == "classic":
                        extra["X-OAuth-Scopes"] = ", ".join(principal.token.scopes)
                    result = handler(request)
                    if lost is not None:
                        raise HttpError(lost.status, lost.message)
                status, payload = result[0], result[1]
                if len(result) == 3:
                    extra.update(result[2])  # type: ignore[misc]
                break
            else:
                raise HttpError(404, "Not Found")
        except HttpError as exc:
            status, payload = exc.status, exc.body
            extra.update(exc.headers)
        except json.JSONDecodeError:
            status, payload = 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
        except Exception as exc:  # a bug in the fake must fail the test, not hang it
            self.server_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            status, payload = 500, {"message": f"fake server error: {exc}"}
        if isinstance(payload, str):
            return status, payload, {**extra, "Content-Type": "text/plain; charset=utf-8"}
        self.exchanges.append(Exchange(operation, status, payload))
        return status, payload, extra

    def _rate_headers(self) -> dict[str, str]:
        reset = int((self.now() + timedelta(hours=1)).timestamp())
        return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990", "X-RateLimit-Used": "10",
                "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core",
                "X-GitHub-Api-Version-Selected": "2022-11-28"}

    def _fault(self, method: str, path: str) -> Fault | None:
        """Raise the armed fault for this call, or return one that strikes after the work is done."""
        for fault in self.faults:
            if fault.count <= 0 or (fault.method and fault.method != method) or (
                    fault.path and not fault.path.search(path)):
                continue
            fault.count -= 1
            if fault.kind == "secondary":
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise HttpError(403, "You have exceeded a secondary rate limit. Please wait a few minutes "
                                "before you try again.", headers=headers)
            if fault.kind == "primary":
                reset = int(datetime.now(UTC).timestamp()) + (fault.retry_after or 1)
                raise HttpError(403, "API rate limit exceeded for installation.",
                                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            if fault.kind == "bare429":
                raise HttpError(429, "Too many requests")
            if fault.kind == "after":
                return fault
            raise HttpError(fault.status, fault.message)
        return None

    # -- authentication and access --------------------------------------------------------
    def _principal(self, headers: dict[str, str]) -> Principal:
        auth = headers.get("authorization", "")
        if not auth:
            return Principal(None)
        scheme, _, credential = auth.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if scheme == "basic":
            decoded = base64.b64decode(credential).decode(errors="replace")
            credential = decoded.partition(":")[2]
        if scheme == "bearer" and credential.count(".") == 2:
            return Principal(None, app=self._app_from_jwt(credential))
        token = self.tokens.get(credential)
        if token is None or (token.expires_at is not None and token.expires_at <= self.now()):
            raise HttpError(401, "Bad credentials")
        return Principal(token.login, token=token)

    def _app_from_jwt(self, encoded: str) -> App:
        try:
            claims = jwt.decode(encoded, options={"verify_signature": False})
            app = self.apps[int(claims["iss"])]
            jwt.decode(encoded, app.public_key_pem, algorithms=["RS256"])
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise HttpError(401, "A JSON web token could not be decoded") from exc
        return app

    def _level(self, principal: Principal, repo: Repo) -> int:
        token = principal.token
        if token is None:
            return 0 if repo.private else 1
        if token.kind == "installation":
            return 3 if (token.org or "").lower() == repo.owner.lower() else 0
        owner = self.accounts.get(repo.owner.lower())
        if token.login.lower() == repo.owner.lower() or (owner is not None and token.login in owner.owners):
            return 3
        return LEVELS.get(repo.collaborators.get(token.login, "none"), 0)

    def _need(self, request: Request, permission: str, level: str) -> None:
        """Fine-grained and installation tokens must hold the permission; GitHub names it."""
        token = request.principal.token
        if token is None:
            raise HttpError(401, "Requires authentication")
        if token.kind == "classic":
            if "repo" not in token.scopes:
                raise HttpError(404, "Not Found", headers={"X-Accepted-OAuth-Scopes": "repo"})
            return
        if LEVELS.get(token.permissions.get(permission, "none"), 0) < LEVELS[level]:
            who = "integration" if token.kind == "installation" else "personal access token"
            raise HttpError(403, f"Resource not accessible by {who}",
                            headers={"X-Accepted-GitHub-Permissions": f"{permission}={level}"})

    def _repo(self, request: Request, level: int = 1, *, write: bool = False) -> Repo:
        repo = self.repos.get(f"{request.params['owner']}/{request.params['repo']}".lower())
        if repo is None:
            raise HttpError(404, "Not Found")
        if repo.unready > 0:
            repo.unready -= 1
            if request.method == "GET" and request.path.count("/") == 3:
                raise HttpError(404, "Not Found")
            raise HttpError(409, "Repository is being created.")
        have = self._level(request.principal, repo)
        if have == 0:
            raise HttpError(404, "Not Found")
        if have < level:
            raise HttpError(403, "Must have admin rights to Repository." if level >= 3
                            else "Must have push access to this repository.")
        if write and repo.archived:
            raise HttpError(403, "Repository was archived so is read-only.")
        return repo

    def _account(self, login: str) -> Account:
        account = self.accounts.get(login.lower())
        if account is None:
            raise HttpError(404, "Not Found")
        return account

    def _page(self, request: Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []
        base = {k: v for k, v in request.query.items() if k != "page"}

        def url(number: int) -> str:
            query = "&".join(f"{k}={v}" for k, v in {**base, "page": str(number)}.items())
            return f"<{self.api_url}{request.path}?{query}>"

        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links += [f'{url(page - 1)}; rel="prev"', f'{url(1)}; rel="first"']
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    # -- routes ---------------------------------------------------------------------------
    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/meta", self.get_meta),
            ("GET", "/app", self.get_app),
            ("GET", "/user", self.get_user),
            ("GET", "/user/repository_invitations", self.list_my_invitations),
            ("PATCH", "/user/repository_invitations/{invitation_id}", self.accept_invitation),
            ("GET", "/users/{username}", self.get_account),
            ("GET", "/users/{username}/keys", self.list_user_keys),
            ("GET", "/orgs/{org}", self.get_org),
            ("GET", "/orgs/{org}/repos", self.list_org_repos),
            ("POST", "/orgs/{org}/repos", self.create_org_repo),
            ("POST", "/app/installations/{installation_id}/access_tokens", self.create_installation_token),
            ("GET", "/repos/{owner}/{repo}", self.get_repo),
            ("PATCH", "/repos/{owner}/{repo}", self.edit_repo),
            ("DELETE", "/repos/{owner}/{repo}", self.delete_repo),
            ("PUT", "/repos/{owner}/{repo}/topics", self.replace_topics),
            ("GET", "/repos/{owner}/{repo}/activity", self.list_activity),
            ("PUT", "/repos/{owner}/{repo}/branches/{branch}/protection", self.protect_branch),
            ("GET", "/repos/{owner}/{repo}/keys", self.list_keys),
            ("POST", "/repos/{owner}/{repo}/keys", self.create_key),
            ("DELETE", "/repos/{owner}/{repo}/keys/{key_id}", self.delete_key),
            ("GET", "/repos/{owner}/{repo}/collaborators", self.list_collaborators),
            ("PUT", "/repos/{owner}/{repo}/collaborators/{username}", self.add_collaborator),
            ("DELETE", "/repos/{owner}/{repo}/collaborators/{username}", self.remove_collaborator),
            ("GET", "/repos/{owner}/{repo}/invitations", self.list_invitations),
            ("DELETE", "/repos/{owner}/{repo}/invitations/{invitation_id}", self.delete_invitation),
            ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", self.edit_comment),
            ("GET", "/repos/{owner}/{repo}/issues", self.list_issues),
            ("POST", "/repos/{owner}/{repo}/issues", self.create_issue),
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", self.list_comments),
            ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", self.create_comment),
            ("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls),
            ("POST", "/repos/{owner}/{repo}/pulls", self.create_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self.get_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files", self.list_pull_files),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", self.list_pull_commits),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.list_reviews),
            ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.create_review),
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", self.list_review_comments),
            ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", self.create_review_comment),
            ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies",
             self.reply_review_comment),
            ("POST", "/repos/{owner}/{repo}/check-runs", self.create_check_run),
        ]
        compiled = []
        for verb, template, handler in table:
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
            compiled.append((verb, re.compile(f"^{pattern}/?$"), template, handler))
        return compiled

    # meta, apps, users, orgs
    def get_meta(self, request: Request) -> tuple[int, Any]:
        return 200, {"verifiable_password_authentication": False, "ssh_keys": list(self.host_keys),
                     "ssh_key_fingerprints": {}, "git": ["127.0.0.1/32"], "api": ["127.0.0.1/32"]}

    def get_app(self, request: Request) -> tuple[int, Any]:
        app = request.principal.app
        if app is None:
            raise HttpError(401, "A JSON web token could not be decoded")
        return 200, self.shapes.integration(app)

    def create_installation_token(self, request: Request) -> tuple[int, Any]:
        app = request.principal.app
        if app is None:
            raise HttpError(401, "A JSON web token could not be decoded")
        if str(app.installation_id) != request.params["installation_id"]:
            raise HttpError(404, "Not Found")
        value = self.add_token(app.bot_login, kind="installation", permissions=app.permissions,
                               expires_in=timedelta(hours=1))
        token = self.tokens[value]
        token.org, token.app_id = app.org, app.id
        self.minted_installation_tokens += 1
        return 201, {"token": value, "expires_at": _ts(token.expires_at), "permissions": dict(app.permissions),
                     "repository_selection": "all"}

    def get_user(self, request: Request) -> tuple[int, Any]:
        token = request.principal.token
        if token is None:
            raise HttpError(401, "Requires authentication")
        if token.kind == "installation":
            raise HttpError(403, "Resource not accessible by integration")
        return 200, self.shapes.private_user(self._account(token.login))

    def get_account(self, request: Request) -> tuple[int, Any]:
        account = self._account(request.params["username"])
        if account.type == "Organization":
            return 200, {**self.shapes.public_user(account), "type": "Organization"}
        return 200, self.shapes.public_user(account)

    def list_user_keys(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        account = self._account(request.params["username"])
        return self._page(request, [{"id": key_id, "key": key} for key_id, key in account.keys])

    def get_org(self, request: Request) -> tuple[int, Any]:
        org = self._account(request.params["org"])
        if org.type != "Organization":
            raise HttpError(404, "Not Found")
        return 200, self.shapes.organization(org)

    def list_org_repos(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        self._account(request.params["org"])
        visible = [r for r in self.repos_of(request.params["org"]) if self._level(request.principal, r) > 0]
        visible.sort(key=lambda r: r.created_at)
        return self._page(request, [self.shapes.minimal_repo(r) for r in visible])

    def create_org_repo(self, request: Request) -> tuple[int, Any]:
        org = self._account(request.params["org"])
        token = request.principal.token
        if token is None:
            raise HttpError(401, "Requires authentication")
        if token.kind == "installation":
            if (token.org or "").lower() != org.login.lower():
                raise HttpError(404, "Not Found")
        elif token.login not in org.owners:
            raise HttpError(403, "You need admin access to the organization before adding a repository to it.")
        self._need(request, "administration", "write")
        body = request.body or {}
        name = str(body.get("name") or "")
        if not _NAME_OK.match(name):
            raise HttpError(422, "Repository creation failed.",
                            errors=[{"resource": "Repository", "code": "custom", "field": "name",
                                     "message": "name is invalid"}])
        key = f"{org.login}/{name}".lower()
        if key in self.repos:
            raise HttpError(422, "Repository creation failed.",
                            errors=[{"resource": "Repository", "code": "custom", "field": "name",
                                     "message": "name already exists on this account"}])
        now = self.now()
        repo = Repo(owner=org.login, name=name, description=body.get("description"),
                    private=bool(body.get("private", False)), path=self.repos_root / org.login / f"{name}.git",
                    created_at=now, updated_at=now)
        gitops.init_bare(repo.path)
        self.repos[key] = repo
        answer = self.shapes.full_repo(repo, 3)
        repo.unready, self._delay_next_repo = self._delay_next_repo, 0
        return 201, answer

    # repositories
    def get_repo(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request)  # metadata:read comes with every fine-grained token
        return 200, self.shapes.full_repo(repo, self._level(request.principal, repo))

    def edit_repo(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3)
        self._need(request, "administration", "write")
        body = request.body or {}
        if repo.archived and body.get("archived") is not False:
            raise HttpError(403, "Repository was archived so is read-only.")
        for name in ("description", "archived", "private", "default_branch"):
            if name in body:
                setattr(repo, name, body[name])
        repo.updated_at = self.now()
        return 200, self.shapes.full_repo(repo, 3)

    def delete_repo(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3)
        token = request.principal.token
        if token is not None and token.kind == "classic" and "delete_repo" not in token.scopes:
            raise HttpError(403, "Must have admin rights to Repository.",
                            headers={"X-Accepted-OAuth-Scopes": "delete_repo"})
        self._need(request, "administration", "write")
        del self.repos[repo.full_name.lower()]
        return 204, None

    def replace_topics(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        names = [str(n).lower() for n in (request.body or {}).get("names", [])]
        repo.topics = names
        return 200, self.shapes.topics(repo)

    def list_activity(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "contents", "read")
        items = [self.shapes.activity(repo.id * 1000 + i, item)
                 for i, item in enumerate(gitops.activity(repo.path), start=1)]
        if request.query.get("direction", "desc") == "desc":
            items.reverse()
        return self._page(request, items)

    def protect_branch(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        org = self.accounts.get(repo.owner.lower())
        if repo.private and org is not None and org.plan == "free":
            raise HttpError(403, "Upgrade to GitHub Pro or make this repository public to enable this feature.")
        body = request.body or {}
        missing = [k for k in ("required_status_checks", "enforce_admins", "required_pull_request_reviews",
                               "restrictions") if k not in body]
        if missing:
            raise HttpError(422, "Invalid request.\n\n" + "\n".join(f'"{k}" wasn\'t supplied.' for k in missing))
        branch = request.params["branch"]
        if gitops.rev(repo.path, f"refs/heads/{branch}") is None:
            raise HttpError(404, "Branch not found")
        repo.protection[branch] = body
        return 200, self.shapes.protection(repo, branch, body)

    def list_keys(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request, 3)
        self._need(request, "administration", "read")
        return self._page(request, [self.shapes.deploy_key(repo, k) for k in repo.keys.values()])

    def create_key(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        body = request.body or {}
        key = str(body.get("key") or "").strip()
        if not _KEY_OK.match(key):
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "PublicKey", "code": "custom", "field": "key",
                                     "message": "key is invalid. You must supply a key in OpenSSH public key "
                                                "format"}])
        material = " ".join(key.split()[:2])
        for other in self.repos.values():
            if any(" ".join(k.key.split()[:2]) == material for k in other.keys.values()):
                raise HttpError(422, "Validation Failed",
                                errors=[{"resource": "PublicKey", "code": "custom", "field": "key",
                                         "message": "key is already in use"}])
        added = DeployKey(title=str(body.get("title") or ""), key=material, read_only=bool(body.get("read_only", True)),
                          created_at=self.now(), added_by=request.principal.login or "")
        repo.keys[added.id] = added
        return 201, self.shapes.deploy_key(repo, added)

    def delete_key(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        if repo.keys.pop(int(request.params["key_id"]), None) is None:
            raise HttpError(404, "Not Found")
        return 204, None

    # collaborators and invitations
    def list_collaborators(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Direct collaborators and, with affiliation=all (the default), the organisation's owners as admins."""
        repo = self._repo(request, 2)
        self._need(request, "metadata", "read")
        roles = {login: {"pull": "read", "push": "write"}.get(role, role) for login, role in repo.collaborators.items()}
        if request.query.get("affiliation", "all") != "outside":
            owner = self.accounts.get(repo.owner.lower())
            for login in sorted(owner.owners if owner is not None else ()):
                roles[login] = "admin"
        order = ["read", "triage", "write", "maintain", "admin"]
        wanted = {"pull": "read", "push": "write"}.get(request.query.get("permission", ""),
                                                       request.query.get("permission", "read"))
        floor = order.index(wanted) if wanted in order else 0
        chosen = [(login, role) for login, role in roles.items() if order.index(role) >= floor]
        return self._page(request, [self.shapes.collaborator(self._account(login), role) for login, role in chosen])

    def add_collaborator(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        user = self._account(request.params["username"])
        permission = {"pull": "read", "push": "write", "admin": "admin", "maintain": "maintain",
                      "triage": "triage"}.get(str((request.body or {}).get("permission", "push")))
        if permission is None or user.type == "Organization":
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "Repository", "code": "custom", "field": "permission",
                                     "message": "permission is invalid"}])
        if user.login in repo.collaborators:
            repo.collaborators[user.login] = permission
            return 204, None
        pending = [i for i in repo.invitations.values() if i.login == user.login]
        live = [i for i in pending if i.created_at + INVITATION_LIFETIME >= self.now()]
        if live:
            return 204, None  # GitHub answers 204 while an invitation is pending
        invitation = Invitation(login=user.login, inviter=request.principal.login or "", permission=permission,
                                created_at=self.now())
        repo.invitations[invitation.id] = invitation
        return 201, self.shapes.invitation(repo, invitation, self.now())

    def remove_collaborator(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        user = self._account(request.params["username"])
        repo.collaborators.pop(user.login, None)
        return 204, None

    def list_invitations(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request, 3)
        self._need(request, "administration", "read")
        return self._page(request, [self.shapes.invitation(repo, i, self.now()) for i in repo.invitations.values()])

    def delete_invitation(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 3, write=True)
        self._need(request, "administration", "write")
        repo.invitations.pop(int(request.params["invitation_id"]), None)
        return 204, None

    def list_my_invitations(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        login = request.principal.login
        if login is None:
            raise HttpError(401, "Requires authentication")
        mine = [self.shapes.invitation(repo, inv, self.now()) for repo in self.repos.values()
                for inv in repo.invitations.values() if inv.login == login]
        return self._page(request, mine)

    def accept_invitation(self, request: Request) -> tuple[int, Any]:
        login = request.principal.login
        wanted = int(request.params["invitation_id"])
        for repo in self.repos.values():
            invitation = repo.invitations.get(wanted)
            if invitation is not None and invitation.login == login:
                if invitation.created_at + INVITATION_LIFETIME < self.now():
                    raise HttpError(404, "Not Found")  # an expired invitation cannot be accepted
                del repo.invitations[wanted]
                repo.collaborators[invitation.login] = invitation.permission
                return 204, None
        raise HttpError(404, "Not Found")

    # issues and comments
    def _issue(self, repo: Repo, number: str) -> Issue:
        issue = repo.issues.get(int(number)) if number.isdigit() else None
        if issue is None:
            raise HttpError(404, "Not Found")
        return issue

    def list_issues(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "issues", "read")
        state = request.query.get("state", "open")
        issues = [i for i in repo.issues.values() if state in ("all", i.state)]
        issues.sort(key=lambda i: i.number, reverse=request.query.get("direction", "desc") == "desc")
        return self._page(request, [self.shapes.issue(repo, i) for i in issues])

    def create_issue(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        self._need(request, "issues", "write")
        body = request.body or {}
        if not body.get("title"):
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "Issue", "code": "missing_field", "field": "title"}])
        now = self.now()
        issue = Issue(number=repo.next_number(), title=str(body["title"]), body=body.get("body"),
                      user=request.principal.login or "", created_at=now, updated_at=now)
        repo.issues[issue.number] = issue
        return 201, self.shapes.issue(repo, issue)

    def list_comments(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "issues", "read")
        issue = self._issue(repo, request.params["issue_number"])
        return self._page(request, [self.shapes.comment(repo, issue, c) for c in issue.comments])

    def create_comment(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        issue = self._issue(repo, request.params["issue_number"])
        self._need(request, "pull_requests" if issue.pull else "issues", "write")
        text = (request.body or {}).get("body")
        if not text:
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        now = self.now()
        token = request.principal.token
        comment = Comment(user=request.principal.login or "", body=str(text), created_at=now, updated_at=now,
                          app_id=token.app_id if token else None)
        issue.comments.append(comment)
        issue.updated_at = now
        return 201, self.shapes.comment(repo, issue, comment)

    def edit_comment(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        wanted = int(request.params["comment_id"])
        for issue in repo.issues.values():
            for comment in issue.comments:
                if comment.id != wanted:
                    continue
                self._need(request, "pull_requests" if issue.pull else "issues", "write")
                if comment.user != request.principal.login and self._level(request.principal, repo) < 3:
                    raise HttpError(403, "You must be the author or an admin to edit this comment.")
                comment.body = str((request.body or {}).get("body") or comment.body)
                comment.updated_at = self.now()
                return 200, self.shapes.comment(repo, issue, comment)
        raise HttpError(404, "Not Found")

    # pull requests
    def _pull(self, repo: Repo, number: str) -> Issue:
        issue = self._issue(repo, number)
        if issue.pull is None:
            raise HttpError(404, "Not Found")
        return issue

    def _shas(self, repo: Repo, issue: Issue) -> tuple[str, str]:
        assert issue.pull is not None
        head = gitops.rev(repo.path, f"refs/heads/{issue.pull.head_ref}") or gitops.rev(
            repo.path, f"refs/pull/{issue.number}/head") or ""
        base = gitops.rev(repo.path, f"refs/heads/{issue.pull.base_ref}") or ""
        return head, base

    def _pull_body(self, repo: Repo, issue: Issue, full: bool) -> dict[str, Any]:
        head, base = self._shas(repo, issue)
        stats = None
        if full:
            merge_base = gitops.merge_base(repo.path, base, head)
            files = gitops.changes(repo.path, merge_base, head)
            stats = {"commits": len(gitops.commits(repo.path, base, head)),
                     "additions": sum(f.additions for f in files), "deletions": sum(f.deletions for f in files),
                     "changed_files": len(files)}
        return self.shapes.pull(repo, issue, head, base, full, stats)

    def list_pulls(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        state = request.query.get("state", "open")
        pulls = [i for i in repo.issues.values() if i.pull and state in ("all", i.state)]
        pulls.sort(key=lambda i: i.number, reverse=request.query.get("direction", "desc") == "desc")
        return self._page(request, [self._pull_body(repo, i, full=False) for i in pulls])

    def create_pull(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 2, write=True)
        self._need(request, "pull_requests", "write")
        body = request.body or {}
        head_ref = str(body.get("head") or "").split(":")[-1]
        base_ref = str(body.get("base") or "")
        if not body.get("title"):
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "PullRequest", "code": "missing_field", "field": "title"}])
        head = gitops.rev(repo.path, f"refs/heads/{head_ref}")
        base = gitops.rev(repo.path, f"refs/heads/{base_ref}")
        for field_name, sha in (("head", head), ("base", base)):
            if sha is None:
                raise HttpError(422, "Validation Failed",
                                errors=[{"resource": "PullRequest", "code": "invalid", "field": field_name}])
        assert head is not None and base is not None
        if not gitops.commits(repo.path, base, head):
            raise HttpError(422, "Validation Failed",
                            errors=[{"resource": "PullRequest", "code": "custom",
                                     "message": f"No commits between {base_ref} and {head_ref}"}])
        for other in repo.issues.values():
            if other.pull and other.state == "open" and other.pull.head_ref == head_ref:
                raise HttpError(422, "Validation Failed",
                                errors=[{"resource": "PullRequest", "code": "custom",
                                         "message": f"A pull request already exists for {repo.owner}:{head_ref}."}])
        now = self.now()
        issue = Issue(number=repo.next_number(), title=str(body["title"]), body=body.get("body"),
                      user=request.principal.login or "", created_at=now, updated_at=now,
                      pull=Pull(head_ref=head_ref, base_ref=base_ref))
        repo.issues[issue.number] = issue
        gitops.update_ref(repo.path, f"refs/pull/{issue.number}/head", head)
        return 201, self._pull_body(repo, issue, full=True)

    def get_pull(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        issue = self._pull(repo, request.params["pull_number"])
        if "diff" in request.headers.get("accept", ""):
            head, base = self._shas(repo, issue)
            return 200, gitops.full_diff(repo.path, gitops.merge_base(repo.path, base, head), head)
        return 200, self._pull_body(repo, issue, full=True)

    def list_pull_files(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        issue = self._pull(repo, request.params["pull_number"])
        head, base = self._shas(repo, issue)
        files = gitops.changes(repo.path, gitops.merge_base(repo.path, base, head), head)
        return self._page(request, [self.shapes.diff_entry(repo, head, f) for f in files])

    def list_pull_commits(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        issue = self._pull(repo, request.params["pull_number"])
        head, base = self._shas(repo, issue)
        by_email = {a.email: a.login for a in self.accounts.values() if a.email}
        return self._page(request, [
            self.shapes.commit(repo, c, by_email.get(c["author_email"]), by_email.get(c["committer_email"]))
            for c in gitops.commits(repo.path, base, head)])

    def list_reviews(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        issue = self._pull(repo, request.params["pull_number"])
        assert issue.pull is not None
        return self._page(request, [self.shapes.review(repo, issue, r) for r in issue.pull.reviews])

    def create_review(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        self._need(request, "pull_requests", "write")
        issue = self._pull(repo, request.params["pull_number"])
        assert issue.pull is not None
        body = request.body or {}
        event = str(body.get("event") or "COMMENT")
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}.get(event)
        if state is None:
            raise HttpError(422, "Unprocessable Entity", errors=[{"field": "event", "code": "invalid"}])
        if state != "COMMENTED" and issue.user == request.principal.login:
            raise HttpError(422, "Unprocessable Entity",
                            errors=[{"message": "Can not approve your own pull request"}])
        head, _ = self._shas(repo, issue)
        review = Review(user=request.principal.login or "", body=str(body.get("body") or ""), state=state,
                        commit_id=str(body.get("commit_id") or head), submitted_at=self.now())
        issue.pull.reviews.append(review)
        return 200, self.shapes.review(repo, issue, review)

    def list_review_comments(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        repo = self._repo(request)
        self._need(request, "pull_requests", "read")
        issue = self._pull(repo, request.params["pull_number"])
        assert issue.pull is not None
        return self._page(request, [self.shapes.review_comment(repo, issue, c) for c in issue.pull.review_comments])

    def create_review_comment(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        self._need(request, "pull_requests", "write")
        issue = self._pull(repo, request.params["pull_number"])
        assert issue.pull is not None
        body = request.body or {}
        now = self.now()
        reply_to = body.get("in_reply_to")
        if reply_to is not None:
            parent = next((c for c in issue.pull.review_comments if c.id == int(reply_to)), None)
            if parent is None:
                raise HttpError(404, "Not Found")
            path, line, side, commit, hunk = parent.path, parent.line, parent.side, parent.commit_id, parent.diff_hunk
        else:
            head, base = self._shas(repo, issue)
            path = str(body.get("path") or "")
            changed = {f.filename: f for f in gitops.changes(repo.path, gitops.merge_base(repo.path, base, head),
                                                             head)}
            if path not in changed or not body.get("body"):
                raise HttpError(422, "Validation Failed",
                                errors=[{"resource": "PullRequestReviewComment", "code": "invalid",
                                         "field": "path"}])
            line = int(body["line"]) if body.get("line") is not None else None
            side, commit = str(body.get("side") or "RIGHT"), str(body.get("commit_id") or head)
            hunk = (changed[path].patch or "").split("\n@@")[0]
        comment = ReviewComment(user=request.principal.login or "", body=str(body.get("body") or ""), path=path,
                                line=line, side=side, commit_id=commit, diff_hunk=hunk, created_at=now,
                                updated_at=now, in_reply_to=int(reply_to) if reply_to is not None else None)
        review = Review(user=comment.user, body="", state="COMMENTED", commit_id=commit, submitted_at=now)
        issue.pull.reviews.append(review)
        comment.review_id = review.id
        issue.pull.review_comments.append(comment)
        return 201, self.shapes.review_comment(repo, issue, comment)

    def reply_review_comment(self, request: Request) -> tuple[int, Any]:
        request.body = {**(request.body or {}), "in_reply_to": int(request.params["comment_id"])}
        return self.create_review_comment(request)

    def create_check_run(self, request: Request) -> tuple[int, Any]:
        repo = self._repo(request, 1, write=True)
        token = request.principal.token
        if token is None or token.kind != "installation" or token.app_id is None:
            raise HttpError(403, "You must authenticate via a GitHub App.")
        self._need(request, "checks", "write")
        body = request.body or {}
        if not body.get("name") or not body.get("head_sha"):
            raise HttpError(422, "Invalid request.")
        now = self.now()
        status = str(body.get("status") or "queued")
        run = CheckRun(name=str(body["name"]), head_sha=str(body["head_sha"]), status=status,
                       conclusion=body.get("conclusion"), output=dict(body.get("output") or {}),
                       app_id=token.app_id, started_at=now, completed_at=now if status == "completed" else None)
        repo.check_runs.append(run)
        return 201, self.shapes.check_run(repo, run)

    # -- git over smart HTTP --------------------------------------------------------------
    def _git(self, handler: BaseHTTPRequestHandler, match: re.Match[str], query: str, headers: dict[str, str],
             body: bytes) -> None:
        owner, name, rest = match.group(1), match.group(2), match.group(3)
        service = parse_qs(query).get("service", [""])[0] or rest.rsplit("/", 1)[-1]
        pushing = service == "git-receive-pack"
        with self._lock:
            repo = self.repos.get(f"{owner}/{name}".lower())
            auth = headers.get("authorization", "")
            if not auth:
                _respond(handler, 401, "Authentication required\n", {"WWW-Authenticate": 'Basic realm="GitHub"'})
                return
            try:
                principal = self._principal(headers)
            except HttpError:
                _respond(handler, 401, "Invalid username or token\n", {"WWW-Authenticate": 'Basic realm="GitHub"'})
                return
            level = self._level(principal, repo) if repo is not None else 0
            if repo is None or level == 0 or repo.unready > 0:
                if repo is not None and repo.unready > 0:
                    repo.unready -= 1
                _respond(handler, 404, "Repository not found.\n", {})
                return
            token = principal.token
            needed = "write" if pushing else "read"
            if token is not None and token.kind != "classic" and \
                    LEVELS.get(token.permissions.get("contents", "none"), 0) < LEVELS[needed]:
                _respond(handler, 403, f"Permission to {repo.full_name}.git denied to {principal.login}.\n", {})
                return
            if pushing and (level < 2 or repo.archived):
                reason = "This repository was archived so it is read-only." if repo.archived else \
                    f"Permission to {repo.full_name}.git denied to {principal.login}."
                _respond(handler, 403, reason + "\n", {})
                return
            protected = [f"refs/heads/{branch}" for branch, rules in repo.protection.items()
                         if rules.get("required_pull_request_reviews") is not None
                         and (level < 3 or rules.get("enforce_admins"))]
            if pushing and handler.command == "GET":  # a new push starts with its ref advertisement
                self._dropping = self._drop_pushes > 0
                self._drop_pushes -= int(self._dropping)
            drop = pushing and handler.command == "POST" and self._dropping
        if drop:
            _cut(handler)
            return
        status, out_headers, payload = gitops.http_backend(
            self.repos_root, f"/{repo.owner}/{repo.name}.git{rest}", handler.command, query, headers, body,
            principal.login or "x-access-token",
            {"FAKE_GH_PROTECTED": " ".join(protected), "FAKE_GH_ACTOR": principal.login or ""})
        if pushing and handler.command == "POST":
            with self._lock:
                self._after_push(repo)
        _respond(handler, status, payload, out_headers)

    def _after_push(self, repo: Repo) -> None:
        repo.pushed_at = self.now()
        for issue in repo.issues.values():
            if issue.pull is not None:
                head = gitops.rev(repo.path, f"refs/heads/{issue.pull.head_ref}")
                if head:
                    gitops.update_ref(repo.path, f"refs/pull/{issue.number}/head", head)
                    issue.updated_at = self.now()


def _ts(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else b""


def _respond(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str]) -> None:
    if payload is None:
        data = b""
    elif isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8", **headers}
    else:
        data = json.dumps(payload).encode()
        headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
    handler.send_response(status)
    for name, value in headers.items():
        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
            handler.send_header(name, value)
    if status != 204:
        handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if data and status != 204:
        handler.wfile.write(data)


def _cut(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection with no answer at all: what a dropped network looks like to git."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
