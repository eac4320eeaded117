"""The git proxy for GitHub: the sandbox's smart-HTTP git, relayed to the trial's repo only.

The sandbox presents its trial token (checked by the endpoint); the proxy sends the
request on to the repo's GitHub clone URL with the operator's credentials (a PAT, or an
App installation token), which never leave the host. Bodies stream both ways. A push is
watched as it goes by (orchestrator/service/pktline.py): its pack is counted against the
repository size quota (the upstream connection is cut, so nothing lands, when it goes
over), and the ref updates GitHub accepts are written to the host push log, in the
local forge's format, at the moment GitHub answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from orchestrator.errors import TrialError
from orchestrator.forge import pushlog
from orchestrator.forge.base import RepoRef
from orchestrator.logging import get_logger
from orchestrator.service.pktline import ProtocolError, PushReport, PushRequest
from orchestrator.store import Store, Trial

if TYPE_CHECKING:
    from orchestrator.forge.github import GitHubForge

log = get_logger(component="git-proxy")
CHUNK = 1 << 16
REQUEST_HEADERS = ("Content-Type", "Accept", "Git-Protocol", "User-Agent")
RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "Expires", "Pragma")
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=600)


class PushRefused(Exception):
    """Raised inside the request body stream: aiohttp then cuts the upstream connection, so
    GitHub receives no complete push and changes nothing."""


class QuotaExceeded(PushRefused):
    pass


def check_commands(push: PushRequest, default_branch: str) -> None:
    """What the sandbox may not do although the bot's credentials could: upstream, the proxy
    pushes as the bot, which branch protection lets change the default branch."""
    for command in push.commands:
        if command.ref == f"refs/heads/{default_branch}":
            raise PushRefused(f"{default_branch} is protected; push a branch and open a pull request")
        if not command.ref.startswith(("refs/heads/", "refs/tags/")):
            raise PushRefused(f"{command.ref}: only branches and tags may be pushed")


class GitHubProxy:
    """A GitBackend (orchestrator/service/git_http.py) over the trial's GitHub repository."""

    def __init__(self, forge_factory: Callable[[], GitHubForge], store: Store, quota_bytes: int) -> None:
        self._forge_factory = forge_factory
        self._forge: GitHubForge | None = None
        self.store = store
        self.quota_bytes = quota_bytes
        self._session: aiohttp.ClientSession | None = None
        self._record_lock = asyncio.Lock()

    def forge(self) -> GitHubForge:
        if self._forge is None:
            self._forge = self._forge_factory()
        return self._forge

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def trial_of(self, name: str) -> str | None:
        """The trial whose GitHub repo is named `name`; a live trial wins over a closed one that
        had the same name before its repo was deleted."""
        found = [t for t in self.store.list_trials()
                 if (t.data.get("repo") or {}).get("forge") == "github" and t.data["repo"].get("name") == name]
        if not found:
            return None
        return max(found, key=lambda t: (t.state in ("provisioning", "active"), t.created_at)).id

    def accepts_pushes(self, name: str) -> bool:
        return True  # the endpoint already refused a trial past its deadline or collected

    async def serve(self, request: web.Request, name: str, trial: Trial) -> web.StreamResponse:
        repo = RepoRef.from_json(trial.data["repo"])
        try:
            url, auth = await asyncio.to_thread(self.forge().upstream_git, repo)
        except TrialError as exc:
            log.warning("git_proxy.no_upstream", trial_id=trial.id, error=exc.one_line())
            return web.Response(status=502, text="the host could not reach GitHub for this repo; "
                                                 "tell the trial's operator\n")
        tail = request.match_info["tail"]
        headers = {key: request.headers[key] for key in REQUEST_HEADERS if key in request.headers}
        headers.update(auth)
        pushing = request.method == "POST" and tail == "git-receive-pack"
        push = PushRequest() if pushing else None
        remaining = self._remaining(repo) if pushing else None
        body: AsyncIterator[bytes] | None = None
        if request.method == "POST":
            body = self._watched(request, push, remaining, repo.default_branch)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT, auto_decompress=True)
        try:
            async with self._session.request(request.method, f"{url}/{tail}", params=request.query,
                                             headers=headers, data=body, allow_redirects=False) as upstream:
                if upstream.status in (401, 403) and not pushing:
                    log.warning("git_proxy.upstream_refused", trial_id=trial.id, status=upstream.status)
                status = 502 if upstream.status == 401 else upstream.status
                response = web.StreamResponse(status=status, headers={
                    key: upstream.headers[key] for key in RESPONSE_HEADERS if key in upstream.headers})
                await response.prepare(request)
                report = PushReport(push.side_band) if push is not None else None
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    if report is not None:
                        try:
                            report.feed(chunk)
                        except ProtocolError:
                            report = None  # not a report we can read: the push is left out of the log
                    await response.write(chunk)
                await response.write_eof()
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, PushRefused):
                quota = isinstance(exc.__cause__, QuotaExceeded)
                log.info("git_proxy.push_refused", trial_id=trial.id, reason=str(exc.__cause__),
                         pack_bytes=push.pack_bytes if push else 0, remaining=remaining)
                return web.Response(status=413 if quota else 403, text=f"push refused: {exc.__cause__}\n")
            if isinstance(exc.__cause__, ProtocolError):
                return web.Response(status=400, text=f"not a git push: {exc.__cause__}\n")
            log.warning("git_proxy.upstream_failed", trial_id=trial.id, error=type(exc).__name__)
            return web.Response(status=502, text="GitHub could not be reached; try the push again\n")
        if push is not None and report is not None:
            await self._record(repo, trial, push, report)
        return response

    def _remaining(self, repo: RepoRef) -> int | None:
        if self.quota_bytes <= 0:
            return None
        return self.quota_bytes - _read_int(self.forge().proxy_usage_path(repo))

    @staticmethod
    async def _watched(request: web.Request, push: PushRequest | None, remaining: int | None,
                       default_branch: str) -> AsyncIterator[bytes]:
        """The request body, streamed; a push's commands are held back until all have arrived
        and are allowed, so a refused push sends GitHub nothing it could act on."""
        held: list[bytes] = []
        checked = False
        async for chunk in request.content.iter_chunked(CHUNK):
            if push is None:
                yield chunk
                continue
            push.feed(chunk)
            if not push.commands_read:
                held.append(chunk)
                continue
            if not checked:
                check_commands(push, default_branch)
                checked = True
            if remaining is not None and push.pack_bytes > remaining:
                raise QuotaExceeded(f"the pack is over the {max(remaining, 0)} bytes left "
                                    "of this trial's repository size quota")
            if held:
                yield b"".join(held)
                held = []
            yield chunk
        if held:
            yield b"".join(held)  # a body that never finished its commands: GitHub answers for it

    async def _record(self, repo: RepoRef, trial: Trial, push: PushRequest, report: PushReport) -> None:
        if report.unpack_ok is False:
            return
        accepted = set(report.accepted)
        lines = [pushlog.line(c.ref, c.before, c.after, forced=False, pusher=f"trial:{trial.id}")
                 for c in push.commands if c.ref in accepted]
        if not lines:
            return
        forge = self.forge()
        async with self._record_lock:
            log_path = forge.push_log_path(repo)
            if log_path is not None:
                await asyncio.to_thread(pushlog.append, log_path, lines)
            usage = forge.proxy_usage_path(repo)
            if usage is not None:
                await asyncio.to_thread(_write_int, usage, _read_int(usage) + push.pack_bytes)
        log.info("git_proxy.push", trial_id=trial.id, refs=len(lines), pack_bytes=push.pack_bytes)


def _read_int(path: Path | None) -> int:
    try:
        return int(path.read_text().strip()) if path is not None else 0
    except (FileNotFoundError, ValueError):
        return 0


def _write_int(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(value))
    tmp.replace(path)
