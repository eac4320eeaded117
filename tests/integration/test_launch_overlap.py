"""The sandbox starts while the forge takes the starter: on GitHub each forge call is spaced a
quarter to a whole second apart, so a launch that waited for the forge before starting its
container paid for both. Real Docker, real git, the local forge made slow on purpose."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from orchestrator import lifecycle
from orchestrator.forge.base import RepoRef
from orchestrator.forge.local import LocalForge
from orchestrator.services import Services
from tests.integration.launch_services import services_with_forge

pytestmark = pytest.mark.docker

WAIT_S = 30.0


class SlowForge(LocalForge):
    """The local forge, whose push waits (bounded) until the trial's sandbox runs, as a slow
    forge's push would still be going when it does."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sandbox_running_during_push: bool | None = None
        self.trial_id = ""

    def create_repo(self, trial_id: str, name: str, description: str) -> RepoRef:
        self.trial_id = trial_id
        return super().create_repo(trial_id, name, description)

    def push(self, repo: RepoRef, worktree: Path, branch: str = "main") -> str:
        client = docker.from_env()
        deadline = time.monotonic() + WAIT_S
        running = False
        while not running and time.monotonic() < deadline:
            running = any(c.status == "running" for c in client.containers.list(
                filters={"label": [f"trial.id={self.trial_id}", "trial.role=sandbox"]}))
            if not running:
                time.sleep(0.1)
        self.sandbox_running_during_push = running
        return super().push(repo, worktree, branch)


@pytest.fixture
def services(trial_home: Path, service_port: int) -> Iterator[Services]:
    with services_with_forge(SlowForge) as services:
        yield services


def test_the_sandbox_is_running_before_the_forge_has_the_starter(services: Services) -> None:
    result = lifecycle.launch(services, lifecycle.LaunchRequest("api-keys", "octocat", agent="none"))

    forge = services.forge
    assert isinstance(forge, SlowForge)
    assert forge.sandbox_running_during_push is True
    # And the workspace is still the pushed starter: cloned once the push was done.
    ref = services.sandbox.find(result.trial.id)
    assert ref is not None
    head = services.sandbox.exec(ref, ["git", "-C", "/workspace", "rev-parse", "HEAD"])
    steps = {s.name: s for s in services.store.steps(result.trial.id, "launch")}
    assert head.ok and head.stdout.strip() == steps["push_starter"].result["sha"]
    assert steps["clone_workspace"].started_at >= steps["push_starter"].finished_at
