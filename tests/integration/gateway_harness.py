"""A real gateway (aiohttp on loopback, real store, real log files) in front of the fake upstream.

Both servers run in background threads with their own event loops, so tests can drive
them with the official synchronous SDKs, curl or raw sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.config import Settings, load_settings
from orchestrator.gateway import GATEWAY_KEY, Gateway, gateway_urls, setup_gateway
from orchestrator.gateway.budget import Ledger
from orchestrator.gateway.log import log_path
from orchestrator.store import Store, Trial, utcnow
from tests.fakes.llm_upstream import ANTHROPIC_KEY, OPENAI_KEY, FakeUpstream, ServerThread

UPSTREAM_ENV = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY}


def create_trial(store: Store, trial_id: str = "tgw00001", budget_usd: float = 20.0, agent: str = "claude-code",
                 template: str = "api-keys") -> str:
    """A trial and its sandbox token (the token is returned: this is the one time it is seen).

    The agent decides which provider routes the token opens: claude-code the Anthropic ones,
    codex and aider the OpenAI ones.
    """
    now = utcnow()
    store.create_trial(Trial(id=trial_id, template=template, candidate="octocat", agent=agent, state="active",
                             created_at=now, updated_at=now, hours=1.0, budget_usd=budget_usd))
    return store.mint_token(trial_id, "sandbox")


def gateway_settings(upstream_url: str, **overrides: Any) -> Settings:
    return load_settings({"gateway.anthropic_base_url": upstream_url, "gateway.openai_base_url": upstream_url,
                          **overrides})


def gateway_app(settings: Settings, store: Store, env: dict[str, str] | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    setup_gateway(app, settings, store, env=UPSTREAM_ENV if env is None else env)
    return app


@dataclass
class Harness:
    fake: FakeUpstream
    upstream: ServerThread
    gateway: ServerThread
    settings: Settings
    store: Store
    trial_id: str
    token: str
    """Token of the trial, whose agent (claude-code unless asked) speaks Anthropic."""
    openai_token: str = ""
    """Token of a second trial in the same gateway whose agent (codex) speaks OpenAI."""
    openai_trial_id: str = "tgw00002"

    @property
    def urls(self) -> dict[str, str]:
        return gateway_urls(self.gateway.url)

    @property
    def log(self) -> Path:
        return log_path(self.settings.home, self.trial_id)

    @property
    def openai_log(self) -> Path:
        return log_path(self.settings.home, self.openai_trial_id)

    @property
    def app_gateway(self) -> Gateway:
        return self.gateway.app[GATEWAY_KEY]

    def ledger(self) -> Ledger | None:
        return self.app_gateway.budgets.get(self.trial_id)


@contextmanager
def running_gateway(budget_usd: float = 20.0, fake: FakeUpstream | None = None,
                    env: dict[str, str] | None = None, agent: str = "claude-code", upstream_host: str = "127.0.0.1",
                    **overrides: Any) -> Iterator[Harness]:
    """`upstream_host` names the fake upstream's loopback address in the gateway's settings
    (e.g. `localhost`: cookie jars ignore cookies from bare IP addresses)."""
    fake = fake or FakeUpstream()
    upstream = ServerThread(fake.app()).start()
    settings = gateway_settings(f"http://{upstream_host}:{upstream.port}", **overrides)
    store = Store.open(settings.home)
    token = create_trial(store, budget_usd=budget_usd, agent=agent)
    openai_token = create_trial(store, "tgw00002", budget_usd=budget_usd, agent="codex")
    gateway = ServerThread(gateway_app(settings, store, env)).start()
    try:
        yield Harness(fake, upstream, gateway, settings, store, "tgw00001", token, openai_token)
    finally:
        gateway.stop()
        upstream.stop()
        store.close()
