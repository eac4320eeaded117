"""The host service's git endpoint: smart HTTP for the trial's own repo, on every forge.

`/git/<repo>.git/...` accepts only the trial's own token (HTTP Basic, any user name, the
token as the password), only while the trial is provisioning or active and before its
deadline, and only the smart-HTTP routes; an address that keeps presenting unknown tokens is
slowed, then refused for a while (service/token_guard.py, shared with the question route).
Behind it, a backend serves the repo: on the local forge `git http-backend` over the bare
repo, on GitHub a proxy that adds the operator's credentials upstream
(orchestrator/service/git_proxy.py). Bodies stream both ways, so large pushes never sit in
memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from orchestrator.logging import get_logger
from orchestrator.service.token_guard import TokenGuard
from orchestrator.store import Trial, iso, utcnow

if TYPE_CHECKING:
    from orchestrator.forge.local import LocalForge
    from orchestrator.store import Store

REALM = 'Basic realm="trial"'
SMART_ROUTES = {("GET", "info/refs"), ("POST", "git-upload-pack"), ("POST", "git-receive-pack")}
SERVICES = {"git-upload-pack", "git-receive-pack"}
OPEN_STATES = ("provisioning", "active")
"""States in which the sandbox may use git: the launch clones while provisioning."""
log = get_logger(component="git-http")


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or None
    if scheme.lower() == "bearer":
        return value or None
    return None


def _unauthorized(text: str) -> web.Response:
    return web.Response(status=401, text=text + "\n", headers={"WWW-Authenticate": REALM})


TOKEN_GUARD = web.AppKey("token_guard", TokenGuard)


def install_token_guard(app: web.Application) -> None:
    """One unknown-token lockout shared by every sandbox-facing route of the app."""
    if TOKEN_GUARD not in app:
        app[TOKEN_GUARD] = TokenGuard()


async def authenticated_trial(store: Store, request: web.Request, trial_id: str, *, ask: str,
                              refused_event: str, **log_fields: Any) -> web.Response | Trial:
    """The trial whose token the request presents (Basic password or Bearer), or the 401 to send:
    one check for every sandbox-facing route of the host service. An address that keeps
    presenting unknown tokens is slowed, then refused with a 429 (service/token_guard.py)."""
    token = _presented_token(request)
    if token is None:
        return _unauthorized(f"authentication required: {ask}")
    guard, remote, digest = request.app[TOKEN_GUARD], request.remote or "", store.digest(token)
    wait, counted = guard.admit(remote, digest)
    if wait:
        return web.Response(status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))},
                            text=f"too many unknown tokens from {remote}: try again in {wait:.0f} s\n")
    record = await asyncio.to_thread(store.verify_token, token)
    if record is None or record.trial_id != trial_id:
        hold = guard.failed(remote, digest)
        if counted and guard.locked_out(remote):
            log.warning("service.token_lockout", remote=remote, **log_fields)
        else:
            log.info(refused_event, remote=remote, **log_fields)
        if hold:
            await asyncio.sleep(hold)
        return _unauthorized("token refused (unknown, revoked, expired or for another trial)")
    guard.succeeded(remote, digest, counted)
    return await asyncio.to_thread(store.get_trial, trial_id)


def refusal(trial: Trial) -> str | None:
    """Why this trial may no longer use git, or None while it may."""
    if trial.state not in OPEN_STATES:
        return f"this trial is {trial.state}: git access has ended"
    if trial.deadline is not None and trial.deadline <= utcnow():
        return f"this trial's deadline passed at {iso(trial.deadline)}: git access has ended"
    return None


class GitBackend(Protocol):
    def trial_of(self, name: str) -> str | None:
        """The trial whose repo is served under `name`, or None."""

    def accepts_pushes(self, name: str) -> bool: ...

    async def serve(self, request: web.Request, name: str, trial: Trial) -> web.StreamResponse: ...


class GitEndpoint:
    def __init__(self, backend: GitBackend, store: Store) -> None:
        self.backend = backend
        self.store = store

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        admitted = await self._admit(request, name)
        if isinstance(admitted, web.Response):
            return admitted
        return await self.backend.serve(request, name, admitted)

    async def _admit(self, request: web.Request, name: str) -> web.Response | Trial:
        """The trial to serve, or the refusal: route, repo, token, the trial's state and deadline."""
        tail, service = request.match_info["tail"], request.query.get("service", "")
        if (request.method, tail) not in SMART_ROUTES or (tail == "info/refs" and service not in SERVICES):
            return web.Response(status=404, text="only git's smart HTTP protocol is served here\n")
        trial_id = await asyncio.to_thread(self.backend.trial_of, name)
        if trial_id is None:
            return web.Response(status=404, text="no such repository\n")
        trial = await authenticated_trial(self.store, request, trial_id, ask="the trial token is the password",
                                          refused_event="git.auth_refused", repo=name)
        if isinstance(trial, web.Response):
            return trial
        closed = refusal(trial)
        if closed is None and "git-receive-pack" in (tail, service) and not self.backend.accepts_pushes(name):
            closed = "this trial is closed: pushes are no longer accepted"
        if closed is not None:
            log.info("git.closed", repo=name, trial_id=trial_id, reason=closed)
            return web.Response(status=403, text=closed + "\n")
        return trial


class LocalGitBackend:
    """The local forge's bare repos through `git http-backend` (CGI), streamed both ways."""

    def __init__(self, forge: LocalForge) -> None:
        self.forge = forge

    def trial_of(self, name: str) -> str | None:
        return self.forge.trial_of(name)

    def accepts_pushes(self, name: str) -> bool:
        return self.forge.accepts_pushes(name)

    async def serve(self, request: web.Request, name: str, trial: Trial) -> web.StreamResponse:
        return await self._run_backend(request, name, trial.id)

    async def _run_backend(self, request: web.Request, name: str, trial_id: str) -> web.StreamResponse:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.forge.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.forge.root),
            "PATH_INFO": f"/{name}.git/{request.match_info['tail']}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "REMOTE_USER": f"trial:{trial_id}",
            "REMOTE_ADDR": request.remote or "",
            "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        }
        # aiohttp has already undone any Content-Encoding, so the CGI sees plain bytes;
        # with no CONTENT_LENGTH it reads the body until EOF.
        proc = await asyncio.create_subprocess_exec(
            "git", "http-backend", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin and proc.stdout and proc.stderr  # noqa: S101 - PIPE guarantees them
        feeder = asyncio.create_task(self._feed(request, proc.stdin))
        try:
            status, headers = await self._read_cgi_headers(proc.stdout)
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            while chunk := await proc.stdout.read(1 << 16):
                await response.write(chunk)
            await feeder
            stderr = (await proc.stderr.read()).decode(errors="replace").strip()
            code = await proc.wait()
            if code != 0 or stderr:
                log.info("git.backend", repo=name, exit_code=code, stderr=stderr[-500:])
            await response.write_eof()
            return response
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            feeder.cancel()

    @staticmethod
    async def _feed(request: web.Request, stdin: asyncio.StreamWriter) -> None:
        try:
            async for chunk in request.content.iter_chunked(1 << 16):
                stdin.write(chunk)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                stdin.close()

    @staticmethod
    async def _read_cgi_headers(stdout: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        status = 200
        headers: dict[str, str] = {}
        while True:
            line = (await stdout.readline()).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split(" ", 1)[0])
            else:
                headers[key.strip()] = value.strip()
        return status, headers


def setup_git_endpoint(app: web.Application, backend: GitBackend, store: Store) -> None:
    install_token_guard(app)
    endpoint = GitEndpoint(backend, store)
    app.router.add_route("*", r"/git/{name:[A-Za-z0-9._-]+}.git/{tail:.*}", endpoint.handle)
