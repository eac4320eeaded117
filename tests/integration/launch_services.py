"""Services over the real engine with a forge a test shapes (slow, flaky), and everything its
launches made taken down afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from orchestrator import lifecycle
from orchestrator.config import Settings, load_settings
from orchestrator.forge.base import Forge
from orchestrator.service import daemon
from orchestrator.services import Services


@contextmanager
def services_with_forge(make_forge: Callable[[Settings], Forge]) -> Iterator[Services]:
    """Needs the `trial_home` and `service_port` fixtures (settings come from their environment)."""
    settings = load_settings()
    services = Services.from_settings(settings, forge=make_forge(settings))
    try:
        yield services
    finally:
        for trial in services.store.list_trials():
            lifecycle.teardown(services, trial.id, repo_action="delete")
        daemon.stop(settings)
        services.close()
