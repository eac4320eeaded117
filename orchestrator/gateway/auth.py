"""Who is calling: the trial token in `x-api-key` or `Authorization: Bearer`.

Tokens are checked against the store by HMAC. The answer is cached for at most
`REFRESH_S` so the hot path does not touch SQLite on every request, while a token that
`trial collect` revokes (possibly from another process) stops working within a second.
The cache is keyed by the token's HMAC, never by the token itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from orchestrator.errors import NotFoundError
from orchestrator.store import TOKEN_PREFIX, Store

REFRESH_S = 1.0
GATEWAY_PURPOSES = ("sandbox",)
"""Token purposes the gateway accepts: what `trial launch` mints for the sandbox."""
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Grant:
    trial_id: str
    budget_usd: float
    checked_at: float
    provider: str | None = None
    """The trial's `[gateway] provider` as launch recorded it (None: the operator's setting)."""


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


class TokenCache:
    def __init__(self, store: Store, refresh_s: float = REFRESH_S) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._grants: dict[str, Grant] = {}

    async def resolve(self, request: web.Request) -> Grant | None:
        for token in presented_tokens(request):
            grant = self._fresh(token) or await self._resolve(token)
            if grant is not None:
                return grant
        return None

    def _fresh(self, token: str) -> Grant | None:
        """The cached grant if checked within the last second (the hot path: no await)."""
        grant = self._grants.get(self._store.digest(token))
        if grant is not None and time.monotonic() - grant.checked_at < self._refresh_s:
            return grant
        return None

    async def _resolve(self, token: str) -> Grant | None:
        key = self._store.digest(token)
        grant = self._grants.get(key)
        now = time.monotonic()
        if grant is not None and now - grant.checked_at < self._refresh_s:
            return grant
        # The store is blocking SQLite behind a lock other threads may hold: keep it off the loop.
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
        provider = trial.data.get("gateway_provider")
        return Grant(trial.id, float(trial.budget_usd), now,
                     provider=provider if isinstance(provider, str) else None)
