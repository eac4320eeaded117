"""The git proxy for GitHub: the sandbox's smart-HTTP git, relayed to the trial's repo only.

The sandbox presents its trial token (checked by the endpoint); the proxy sends the
request on to the repo's GitHub clone URL with the operator's credentials (a PAT, or an
App installation token), which never leave the host. Bodies stream both ways. A push is
watched as it goes by (orchestrator/service/pktline.py): its pack is counted against the
repository size quota (the upstream connection is cut, so nothing lands, when it goes
over), and the ref updates GitHub accepts are written to the host push log, in the
local forge's format, at the moment GitHub answered.

The quota holds against a client that writes its own requests: a push must ask for
report-status (every git client does; without it GitHub's answer says nothing the proxy
could read), each chunk of a pack is reserved against the quota before it goes upstream
(so pushes in flight at once share what is left instead of each using all of it), and
the pack counts as used whenever GitHub answered 200, whatever the answer says.
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


class QuotaExceeded(Exception):
    """Raised inside the request body stream: aiohttp then cuts the upstream connection, so
    GitHub receives no complete pack and changes nothing."""


def refused_refs(push: PushRequest, default_branch: str) -> dict[str, str]:
    """{ref: reason} for what the sandbox may not do although the bot's credentials could:
    upstream the proxy pushes as the bot, whom branch protection lets change the default branch."""
    refused: dict[str, str] = {}
    for command in push.commands:
        if command.ref == f"refs/heads/{default_branch}":
            refused[command.ref] = f"{default_branch} is protected: push a branch and open a pull request"
        elif not command.ref.startswith(("refs/heads/", "refs/tags/")):
            refused[command.ref] = "only branches and tags may be pushed"
    return refused


def refusal_report(push: PushRequest, refused: dict[str, str]) -> bytes:
    """A receive-pack answer refusing the whole push, so git names the reason per ref
    (`! [remote rejected] main -> main (main is protected ...)`)."""
    lines = [pkt(b"unpack ok\n")]
    for command in push.commands:
        reason = refused.get(command.ref, "not pushed: another ref in this push was refused")
        lines.append(pkt(f"ng {command.ref} {reason}\n".encode()))
    report = b"".join(lines) + FLUSH_PKT
    if push.side_band:
        return pkt(b"\x01" + report) + FLUSH_PKT
    return report


def pkt(payload: bytes) -> bytes:
    return f"{len(payload) + 4:04x}".encode() + payload


FLUSH_PKT = b"0000"


class GitHubProxy:
    """A GitBackend (orchestrator/service/git_http.py) over the trial's GitHub repository."""

    def __init__(self, forge_factory: Callable[[], GitHubForge], store: Store, quota_bytes: int) -> None:
        self._forge_factory = forge_factory
        self._forge: GitHubForge | None = None
        self.store = store
        self.quota_bytes = quota_bytes
        self._session: aiohttp.ClientSession | None = None
        self._record_lock = asyncio.Lock()
        # Pack bytes of pushes in flight, by repo: already sent on to GitHub, not yet in the usage file.
        self._reserved: dict[str, int] = {}

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
        held: list[bytes] = []
        if push is not None:
            # The commands come first and are small: read them all before GitHub hears of the push.
            try:
                while not push.commands_read and (chunk := await request.content.readany()):
                    held.append(chunk)
                    push.feed(chunk)
            except ProtocolError as exc:
                return web.Response(status=400, text=f"not a git push: {exc}\n")
            if push.commands and not {"report-status", "report-status-v2"} & push.capabilities:
                # GitHub would answer such a push with nothing to read: it would land unlogged. (A push
                # with no commands is git's auth probe, a bare flush, before a large chunked push.)
                reason = "the push must ask for report-status (git always does): push with git"
                return await self._refuse(request, trial, push, {c.ref: reason for c in push.commands})
            refused = refused_refs(push, repo.default_branch)
            if refused:
                return await self._refuse(request, trial, push, refused)
        if push is None:
            body = self._streamed(request, held, None, None) if request.method == "POST" else None
            return await self._relay(request, trial, repo, f"{url}/{tail}", headers, body, None)
        reservation = _Reservation(self, repo)
        try:
            body = self._streamed(request, held, push, reservation)
            return await self._relay(request, trial, repo, f"{url}/{tail}", headers, body, push, reservation)
        finally:
            reservation.release()

    async def _relay(self, request: web.Request, trial: Trial, repo: RepoRef, target: str,
                     headers: dict[str, str], body: AsyncIterator[bytes] | None, push: PushRequest | None,
                     reservation: _Reservation | None = None) -> web.StreamResponse:
        """Send the request on to GitHub and its answer back, both streamed; log an accepted push."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT, auto_decompress=True)
        response: web.StreamResponse | None = None
        try:
            async with self._session.request(request.method, target, params=request.query,
                                             headers=headers, data=body, allow_redirects=False) as upstream:
                if upstream.status in (401, 403, 404):
                    log.warning("git_proxy.upstream_refused", trial_id=trial.id, status=upstream.status)
                status = 502 if upstream.status == 401 else upstream.status
                response = web.StreamResponse(status=status, headers={
                    key: upstream.headers[key] for key in RESPONSE_HEADERS if key in upstream.headers})
                await response.prepare(request)
                report = PushReport(push.side_band) if push is not None else None
                if push is not None and reservation is not None and upstream.status == 200:
                    # GitHub took the pack in: it counts, whatever the report below says or leaves out.
                    await self._settle(repo, reservation)
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    if report is not None:
                        try:
                            report.feed(chunk)
                        except ProtocolError:
                            report = None  # not a report we can read: the push is left out of the log
                    await response.write(chunk)
                if reservation is not None and upstream.status == 200:
                    await self._settle(repo, reservation)  # pack bytes GitHub read after it answered
                await response.write_eof()
        except aiohttp.ClientError as exc:
            if response is not None and response.prepared:
                # Cut mid-answer: the client sees a broken stream, as it would from GitHub itself.
                log.warning("git_proxy.upstream_cut", trial_id=trial.id, error=type(exc).__name__)
                return response
            if isinstance(exc.__cause__, QuotaExceeded) and push is not None:
                log.info("git_proxy.over_quota", trial_id=trial.id, pack_bytes=push.pack_bytes)
                reason = f"refused: {exc.__cause__}"
                return await self._refuse(request, trial, push, {c.ref: reason for c in push.commands})
            log.warning("git_proxy.upstream_failed", trial_id=trial.id, error=type(exc).__name__)
            return web.Response(status=502, text="GitHub could not be reached; try the push again\n")
        if push is not None and report is not None:
            await self._record(repo, trial, push, report)
        return response

    @staticmethod
    async def _refuse(request: web.Request, trial: Trial, push: PushRequest,
                      refused: dict[str, str]) -> web.StreamResponse:
        log.info("git_proxy.push_refused", trial_id=trial.id, refs=sorted(refused))
        if not {"report-status", "report-status-v2"} & push.capabilities:
            return web.Response(status=403, text="push refused: " + "; ".join(
                f"{ref}: {why}" for ref, why in refused.items()) + "\n")
        async for _ in request.content.iter_chunked(CHUNK):
            pass  # git reads the answer only once it has sent the pack
        return web.Response(body=refusal_report(push, refused),
                            headers={"Content-Type": "application/x-git-receive-pack-result",
                                     "Cache-Control": "no-cache"})

    def _remaining(self, repo: RepoRef) -> int | None:
        """What is left of the quota: the usage file less the packs in flight (None: no quota)."""
        if self.quota_bytes <= 0:
            return None
        used = _read_int(self.forge().proxy_usage_path(repo))
        return self.quota_bytes - used - self._reserved.get(repo.full_name, 0)

    @staticmethod
    async def _streamed(request: web.Request, held: list[bytes], push: PushRequest | None,
                        reservation: _Reservation | None) -> AsyncIterator[bytes]:
        """The request body as it arrives (what was read ahead first), a push's pack reserved
        against the quota before each part of it goes on."""
        if held:
            if reservation is not None and push is not None:
                reservation.take(push.pack_bytes)
            yield b"".join(held)
        async for chunk in request.content.iter_chunked(CHUNK):
            if push is not None:
                before = push.pack_bytes
                push.feed(chunk)
                if reservation is not None:
                    reservation.take(push.pack_bytes - before)
            yield chunk

    async def _settle(self, repo: RepoRef, reservation: _Reservation) -> None:
        """Move a push's reserved bytes into the usage file. The file is written before the
        reservation is let go, so for a moment they count twice, never not at all."""
        usage = self.forge().proxy_usage_path(repo)
        async with self._record_lock:
            if usage is not None and reservation.held:
                await asyncio.to_thread(_write_int, usage, _read_int(usage) + reservation.held)
            reservation.release()

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
        log.info("git_proxy.push", trial_id=trial.id, refs=len(lines), pack_bytes=push.pack_bytes)


class _Reservation:
    """One push's share of the quota while it streams to GitHub. Taking is synchronous (no await
    between the check and the add), so two pushes on the event loop cannot both take the last bytes."""

    def __init__(self, proxy: GitHubProxy, repo: RepoRef) -> None:
        self._proxy = proxy
        self._key = repo.full_name
        self._repo = repo
        self.held = 0

    def take(self, size: int) -> None:
        remaining = self._proxy._remaining(self._repo)
        if remaining is not None and size > remaining:
            raise QuotaExceeded(_over(remaining + self.held))
        self.held += size
        reserved = self._proxy._reserved
        reserved[self._key] = reserved.get(self._key, 0) + size

    def release(self) -> None:
        reserved = self._proxy._reserved
        left = reserved.get(self._key, 0) - self.held
        if left > 0:
            reserved[self._key] = left
        else:
            reserved.pop(self._key, None)
        self.held = 0


def _over(remaining: int) -> str:
    return f"the pack is over the {max(remaining, 0)} bytes left of this trial's repository size quota"


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
