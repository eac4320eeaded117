"""The host service's git and question routes against a token guesser, over real sockets.

A real `trial serve` on 127.0.0.1; the guesser connects from 127.0.0.2 and 127.0.0.3 (every
127/8 address is loopback on Linux), so its lockout is per source address as a sandbox's is.
"""

from __future__ import annotations

import base64
import http.client
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.forge.local import LocalForge
from orchestrator.service import token_guard
from orchestrator.store import TOKEN_PREFIX, Store, Trial, utcnow
from tests.conftest import git

pytestmark = pytest.mark.unit
TRIAL = "tlock12345"


@pytest.fixture
def repo_path(trial_home: Path, service_port: int, tmp_path: Path) -> tuple[Store, str]:
    settings = load_settings()
    store = Store.open(settings.home)
    store.create_trial(Trial(TRIAL, "api-keys", "octocat", "none", "active", utcnow(), utcnow(), 4, 10))
    forge = LocalForge(settings, store)
    repo = forge.create_repo(TRIAL, "trial-api-keys-octocat", "demo")
    work = tmp_path / "starter"
    work.mkdir()
    (work / "README.md").write_text("# starter\n")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=bot", "-c", "user.email=bot@x", "commit", "-qm", "Starter", cwd=work)
    forge.push(repo, work)
    return store, f"/git/{repo.name}.git/info/refs?service=git-upload-pack"


def get(url: str, path: str, token: str, source: str) -> tuple[int, float, dict[str, str]]:
    """Status, seconds taken and headers of one request from `source`."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    auth = base64.b64encode(f"trial:{token}".encode()).decode()
    started = time.monotonic()
    try:
        conn.request("GET", path, headers={"Authorization": f"Basic {auth}"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started, dict(response.headers)
    finally:
        conn.close()


def guess() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def test_a_guesser_is_slowed_then_refused_and_the_real_trial_keeps_working(
        repo_path: tuple[Store, str], host_service: str, trial_home: Path) -> None:
    store, path = repo_path
    token = store.mint_token(TRIAL, "sandbox")
    # The sandbox's own git use (the launch clones from it): its token is known from now on.
    assert get(host_service, path, token, "127.0.0.2")[0] == 200

    answers = [get(host_service, path, guess(), "127.0.0.2") for _ in range(token_guard.ALLOWED + 3)]
    statuses = [status for status, _, _ in answers]
    assert statuses == [401] * token_guard.ALLOWED + [429] * 3
    # Past the free allowance each refusal is held longer (lower bounds only: the machine may be loaded).
    slowed = answers[token_guard.FREE:token_guard.ALLOWED]
    for extra, (_, took, _) in enumerate(slowed, start=1):
        assert took >= min(token_guard.DELAY_STEP_S * extra, token_guard.MAX_DELAY_S) * 0.9, (extra, took)
    assert int(answers[-1][2]["Retry-After"]) > 0
    # The question route shares the lockout: the guesser cannot move to another door.
    assert get(host_service, f"/questions/{TRIAL}", guess(), "127.0.0.2")[0] == 429

    # The real trial is not locked out: its token works from the guesser's address and elsewhere.
    assert get(host_service, path, token, "127.0.0.2")[0] == 200
    assert get(host_service, path, token, "127.0.0.1")[0] == 200
    # Another address is not affected by this one's guesses.
    assert get(host_service, path, guess(), "127.0.0.1")[0] == 401
    # The lookup still decides for a known token: revoked means refused, not served from a cache.
    store.revoke_tokens(TRIAL)
    assert get(host_service, path, token, "127.0.0.2")[0] == 401

    # The lockout is logged once, not once per refused guess.
    assert (trial_home.parent / "service.log").read_text().count("service.token_lockout") == 1


def test_a_parallel_burst_of_guesses_gets_no_more_lookups_than_the_allowance(
        repo_path: tuple[Store, str], host_service: str) -> None:
    _store, path = repo_path
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(lambda _: get(host_service, path, guess(), "127.0.0.3")[0], range(48)))
    assert statuses.count(401) == token_guard.ALLOWED
    assert statuses.count(429) == 48 - token_guard.ALLOWED
