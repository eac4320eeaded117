"""Who is calling, and what they may do: the trial token in `x-api-key` or `Authorization: Bearer`.

Tokens are checked against the store by HMAC. The answer is cached for at most
`REFRESH_S` so the hot path does not touch SQLite on every request, while a token that
`trial collect` revokes (possibly from another process) stops working within a second.
A grant past half that age is still served and checked again in the background, so a
busy trial's requests never wait for the store; one lookup per token runs at a time, and
requests that need its answer wait for that one (a hundred requests arriving as a grant
goes stale make one lookup, not a hundred). A grant also carries its token's expiry (the
trial's deadline): a cached grant stops at that instant, not up to `REFRESH_S` later.
The cache is keyed by a keyed hash of the token, never by the token itself: BLAKE2b under a
key drawn when the process starts (a MAC, like the store's HMAC-SHA256, at a third of its
cost on every request); the store is still looked up by its own HMAC.

Unknown tokens cost a store lookup in a worker thread, so a sandbox could flood the
gateway with made-up ones and slow every other trial's lookups. An address that presents
more than `FAILURES_ALLOWED` unknown tokens within `FAILURE_WINDOW_S` gets no lookups
until the window ends (the server answers a retryable 429); a token already verified and
cached still works. A sandbox cannot change its address (no NET_ADMIN), so the lockout
stays with the sandbox that earned it.

A grant carries the trial's rules: the providers its agent speaks to (a Claude Code
trial's token opens the /anthropic routes only, so a candidate cannot spend it on another
provider's models through their own scripts) and whether its template allows
provider-side remote tools (remote_tools.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from orchestrator.errors import NotFoundError
from orchestrator.gateway.provider_errors import Provider
from orchestrator.logging import get_logger
from orchestrator.store import TOKEN_PREFIX, Store

REFRESH_S = 1.0
GATEWAY_PURPOSES = ("sandbox",)
"""Token purposes the gateway accepts: what `trial launch` mints for the sandbox."""
_CACHE_LIMIT = 4096
FAILURE_WINDOW_S = 10.0
FAILURES_ALLOWED = 20
TEMPLATE_REFRESH_S = 60.0
AGENT_PROVIDERS: dict[str, tuple[Provider, ...]] = {
    "claude-code": ("anthropic",),  # ANTHROPIC_BASE_URL → /anthropic (agents/claude_code.py)
    "codex": ("openai",),  # the Responses wire through ~/.codex/config.toml (agents/codex.py)
    "aider": ("openai",),  # LiteLLM's openai/ models through OPENAI_API_BASE (agents/aider.py)
    "none": (),  # no agent in the sandbox: no model either
}
"""Provider routes a trial's token opens, by the trial's agent; an agent not listed opens none."""

log = get_logger(component="gateway")


@dataclass(frozen=True)
class Grant:
    trial_id: str
    budget_usd: float
    checked_at: float
    agent: str = "none"
    providers: tuple[Provider, ...] = ()
    allow_remote_tools: bool = False
    provider: str | None = None
    """The trial's `[gateway] provider` as launch recorded it (None: the operator's setting)."""
    expires_at: float | None = None
    """The token's expiry (epoch seconds, None: none): the grant is void from that instant."""


class TemplateRules:
    """The gateway's options from each template's template.toml, re-read once a minute.

    Read leniently and apart from the catalog's full validation (which also checks the
    starter and Dockerfile): the gateway needs one flag, and an unreadable template means
    the strict default, never an error on the hot path.
    """

    def __init__(self, templates_dir: Path | None, refresh_s: float = TEMPLATE_REFRESH_S) -> None:
        self._dir = templates_dir
        self._refresh_s = refresh_s
        self._cache: dict[str, tuple[bool, float]] = {}

    def allow_remote_tools(self, template: str, now: float) -> bool:
        """Blocking (reads a file): call from a worker thread."""
        cached = self._cache.get(template)
        if cached is not None and now - cached[1] < self._refresh_s:
            return cached[0]
        allowed = False
        if self._dir is not None and template and "/" not in template and not template.startswith("."):
            try:
                raw = tomllib.loads((self._dir / template / "template.toml").read_text())
                allowed = raw.get("allow_remote_tools") is True
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                log.warning("gateway.template_unreadable", template=template, error=str(exc))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[template] = (allowed, now)
        return allowed


def presented_tokens(request: web.Request) -> list[str]:
    """Candidate tokens, x-api-key first; an agent may send both headers."""
    found: list[str] = []
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        found.append(api_key)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    return [token for token in found if token.startswith(TOKEN_PREFIX)]


class LockedOut(Exception):
    """This address presented too many unknown tokens; its tokens are not looked up for now."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"locked out for {seconds:.1f} s")
        self.seconds = seconds


class TokenCache:
    def __init__(self, store: Store, refresh_s: float = REFRESH_S, templates_dir: Path | None = None) -> None:
        self._store = store
        self._templates = TemplateRules(templates_dir)
        self._refresh_s = refresh_s
        self._grants: dict[bytes, Grant] = {}
        self._key = os.urandom(32)
        """This process's key for the cache's names of tokens (never stored, never sent)."""
        self._checking: dict[bytes, asyncio.Future[Grant | None]] = {}
        """Token's cache name → the store lookup running for it (one at a time per token)."""
        self._failures: dict[str, tuple[float, int]] = {}
        """Remote address → (start of its window, unknown tokens presented in it)."""
        self.lookups = 0
        """Store lookups made (what a flood of unknown tokens costs)."""

    async def resolve(self, request: web.Request) -> Grant | None:
        """The grant behind the request's token, None if there is none; LockedOut (before any
        lookup) if the request's address is locked out and its token is not already verified."""
        tokens = presented_tokens(request)
        for token in tokens:
            grant = self._fresh(token)
            if grant is not None:
                return grant
        remote = request.remote or ""
        if not tokens:
            return None
        wait = self.locked_out(remote)
        if wait:
            raise LockedOut(wait)
        for token in tokens:
            grant = await self._resolve(token)
            if grant is not None:
                return grant
        self._failed(remote)
        return None

    def locked_out(self, remote: str | None, now: float | None = None) -> float:
        """Seconds until this address may present tokens again (0: it may now)."""
        start, count = self._failures.get(remote or "", (0.0, 0))
        left = start + FAILURE_WINDOW_S - (time.monotonic() if now is None else now)
        return left if count >= FAILURES_ALLOWED and left > 0 else 0.0

    def _failed(self, remote: str) -> None:
        now = time.monotonic()
        start, count = self._failures.get(remote, (now, 0))
        if now - start >= FAILURE_WINDOW_S:
            start, count = now, 0
        if len(self._failures) >= _CACHE_LIMIT:
            self._failures.clear()
        self._failures[remote] = (start, count + 1)

    def _fresh(self, token: str) -> Grant | None:
        """The cached grant if still good (the hot path: no await); past half its age it is
        checked again in the background while it serves."""
        key = self._name(token)
        grant = self._grants.get(key)
        if grant is None:
            return None
        age = time.monotonic() - grant.checked_at
        if age >= self._refresh_s or (grant.expires_at is not None and time.time() >= grant.expires_at):
            return None
        if age >= self._refresh_s / 2 and key not in self._checking:
            self._check(key, token)
        return grant

    def _name(self, token: str) -> bytes:
        """The token's name in this cache: a MAC under the process's key, not the token."""
        return hashlib.blake2b(token.encode(), key=self._key, digest_size=32).digest()

    async def _resolve(self, token: str) -> Grant | None:
        key = self._name(token)
        # The store is blocking SQLite behind a lock other threads may hold: keep it off the loop.
        # Shielded: a caller whose client hangs up stops waiting, the lookup others share goes on.
        return await asyncio.shield(self._checking.get(key) or self._check(key, token))

    def _check(self, key: bytes, token: str) -> asyncio.Future[Grant | None]:
        """Start the store lookup for this token; its answer replaces the cached grant."""
        self.lookups += 1
        checking = asyncio.ensure_future(self._lookup_and_cache(key, token))
        self._checking[key] = checking
        checking.add_done_callback(lambda done: self._checked(key, done))
        return checking

    def _checked(self, key: bytes, done: asyncio.Future[Grant | None]) -> None:
        if self._checking.get(key) is done:
            del self._checking[key]
        if not done.cancelled() and done.exception() is not None:
            # Retrieved here, so a background check nobody waits for does not warn unseen;
            # callers that wait get it raised as well.
            log.warning("gateway.token_check_failed", error=str(done.exception()))

    async def _lookup_and_cache(self, key: bytes, token: str) -> Grant | None:
        # The grant's age counts from before the lookup: a revocation that lands while it
        # runs still takes effect within REFRESH_S of it.
        now = time.monotonic()
        fresh = await asyncio.to_thread(self._lookup, token, now)
        if fresh is None:
            self._grants.pop(key, None)
        else:
            if len(self._grants) >= _CACHE_LIMIT:
                self._grants.clear()
            self._grants[key] = fresh
        return fresh

    def _lookup(self, token: str, now: float) -> Grant | None:
        record = self._store.verify_token(token)
        if record is None or record.purpose not in GATEWAY_PURPOSES:
            return None
        try:
            trial = self._store.get_trial(record.trial_id)
        except NotFoundError:
            return None
        providers = AGENT_PROVIDERS.get(trial.agent, ())
        provider = trial.data.get("gateway_provider")
        return Grant(trial.id, float(trial.budget_usd), now, trial.agent, providers,
                     self._templates.allow_remote_tools(trial.template, now),
                     provider=provider if isinstance(provider, str) else None,
                     expires_at=record.expires_at.timestamp() if record.expires_at is not None else None)
