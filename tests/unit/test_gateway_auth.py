"""The gateway's token cache: fast for a busy trial, never lenient past a token's expiry or revocation."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.gateway.auth import TokenCache
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


def _store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path)
    now = utcnow()
    store.create_trial(Trial(id="tauth0001", template="demo", candidate="octocat", agent="claude-code",
                             state="active", created_at=now, updated_at=now, hours=1.0, budget_usd=5.0))
    return store


def _whole_second(moment: datetime) -> datetime:
    """The store keeps expiries to the second: a test expiry must be one it keeps as it is."""
    return moment.replace(microsecond=0)


def _request(token: str) -> Any:
    return SimpleNamespace(headers={"x-api-key": token}, remote="10.0.0.2")


def test_a_cached_grant_stops_at_its_tokens_expiry_not_a_refresh_later(tmp_path: Path) -> None:
    """The deadline: a token expiring while its grant is cached is refused from that instant."""
    store = _store(tmp_path)
    expires = _whole_second(utcnow() + timedelta(seconds=1.2))
    token = store.mint_token("tauth0001", "sandbox", expires_at=expires)
    cache = TokenCache(store, refresh_s=60.0)  # a refresh far away: only the expiry can end the grant

    async def run() -> None:
        assert await cache.resolve(_request(token)) is not None  # looked up and cached
        while time.time() < expires.timestamp():
            await asyncio.sleep(0.02)
        assert await cache.resolve(_request(token)) is None

    asyncio.run(run())
    store.close()


def test_requests_arriving_together_on_a_stale_grant_make_one_store_lookup(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.mint_token("tauth0001", "sandbox")
    cache = TokenCache(store, refresh_s=0.2)

    async def run() -> None:
        grants = await asyncio.gather(*(cache.resolve(_request(token)) for _ in range(50)))
        assert all(grant is not None and grant.trial_id == "tauth0001" for grant in grants)
        assert cache.lookups == 1
        await asyncio.sleep(0.25)  # stale now: everyone must wait for a check, and they share one
        await asyncio.gather(*(cache.resolve(_request(token)) for _ in range(50)))
        assert cache.lookups == 2

    asyncio.run(run())
    store.close()


def test_a_grant_past_half_its_age_serves_at_once_and_is_checked_again_in_the_background(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.mint_token("tauth0001", "sandbox")
    cache = TokenCache(store, refresh_s=0.4)

    async def run() -> None:
        first = await cache.resolve(_request(token))
        assert first is not None
        await asyncio.sleep(0.25)
        assert cache._fresh(token) is first  # no await: served from the cache, a check started
        assert cache.lookups == 2
        await asyncio.sleep(0.05)
        renewed = cache._fresh(token)
        assert renewed is not None and renewed.checked_at > first.checked_at

    asyncio.run(run())
    store.close()


def test_a_revoked_token_stops_within_the_refresh_however_busy_its_trial(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.mint_token("tauth0001", "sandbox")
    cache = TokenCache(store, refresh_s=0.3)

    async def run() -> float:
        assert await cache.resolve(_request(token)) is not None
        store.revoke_tokens("tauth0001")
        revoked = time.monotonic()
        while await cache.resolve(_request(token)) is not None:  # a request every 10 ms
            assert time.monotonic() - revoked < 0.3 + 0.2
            await asyncio.sleep(0.01)
        return time.monotonic() - revoked

    assert asyncio.run(run()) < 0.3 + 0.2
    store.close()


def test_an_extended_deadline_is_picked_up_once_the_old_expiry_passes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    expires = _whole_second(utcnow() + timedelta(seconds=1.2))
    token = store.mint_token("tauth0001", "sandbox", expires_at=expires)
    cache = TokenCache(store, refresh_s=60.0)

    async def run() -> None:
        assert await cache.resolve(_request(token)) is not None
        store.set_token_expiry("tauth0001", utcnow() + timedelta(hours=1))  # `trial extend`
        while time.time() < expires.timestamp():
            await asyncio.sleep(0.02)
        assert await cache.resolve(_request(token)) is not None  # looked up again: the new expiry

    asyncio.run(run())
    store.close()


def test_the_cache_names_tokens_by_a_keyed_hash_never_the_token_or_the_stores_hmac(tmp_path: Path) -> None:
    """A dump of the gateway's memory shows no cached token, nor the name the store files it under."""
    store = _store(tmp_path)
    token = store.mint_token("tauth0001", "sandbox")
    cache, other = TokenCache(store), TokenCache(store)

    async def run() -> None:
        assert await cache.resolve(_request(token)) is not None
        assert await other.resolve(_request(token)) is not None

    asyncio.run(run())
    (name,) = cache._grants
    assert token.encode() not in name and name.hex() != store.digest(token)
    assert list(other._grants) != [name]  # each process draws its own key
    store.close()
