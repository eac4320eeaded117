"""The host service (`trial serve`): one aiohttp app per host.

It mounts the LLM gateway (`/anthropic/…`, `/openai/…`), the git endpoint for the trial's
own repo (`/git/<repo>.git`: the local forge's bare repos, or a proxy to GitHub), `/healthz`,
and the deadline watcher that ends each trial's access at its deadline. It holds no state
of its own beyond the store and the logs, so it can be restarted at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from orchestrator import __version__
from orchestrator.config import Settings
from orchestrator.gateway.server import setup_gateway
from orchestrator.service.git_http import GitBackend, LocalGitBackend, setup_git_endpoint
from orchestrator.service.questions import setup_question_route
from orchestrator.service.reports import setup_report_route
from orchestrator.store import Store

SERVICE_NAME = "trial"


def create_app(settings: Settings, store: Store, *, forge: Callable[[], Any] | None = None,
               sandbox: Callable[[], Any] | None = None, watch_deadlines: bool = True) -> web.Application:
    """`forge` and `sandbox` make the edges the watcher and the git proxy use (tests pass their own)."""
    app = web.Application(client_max_size=64 * 1024 * 1024)

    def make_forge() -> Any:
        from orchestrator.forge import make_forge as build

        return build(settings, store)

    def make_sandbox() -> Any:
        from orchestrator.sandbox import make_backend

        return make_backend(settings)

    forge_factory = forge or make_forge

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"service": SERVICE_NAME, "version": __version__, "home": str(settings.home),
                                  "gateway": app.get("gateway_mounted", False),
                                  "forge": settings.forge.kind, "deadline_watch": watch_deadlines})

    app.router.add_get("/healthz", healthz)
    backend: GitBackend
    if settings.forge.kind == "github":
        from orchestrator.service.git_proxy import GitHubProxy

        proxy = GitHubProxy(forge_factory, store, int(settings.forge.repo_quota_mb * 1024 * 1024))
        backend = proxy

        async def close_proxy(_: web.Application) -> None:
            await proxy.close()

        app.on_cleanup.append(close_proxy)
    else:
        from orchestrator.forge.local import LocalForge

        backend = LocalGitBackend(LocalForge(settings, store))
    setup_git_endpoint(app, backend, store)
    setup_report_route(app, settings, store)
    setup_question_route(app, settings, store, forge_factory)
    setup_gateway(app, settings, store)
    app["gateway_mounted"] = True

    if watch_deadlines:
        from orchestrator.service.deadline_watch import DeadlineWatcher

        watcher = DeadlineWatcher(store, forge_factory, sandbox or make_sandbox,
                                  quota_mb=settings.sandbox.volume_quota_mb)

        async def run_watcher(_: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(watcher.run())
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(run_watcher)
    return app
