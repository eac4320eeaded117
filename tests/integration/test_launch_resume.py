"""A launch that fails at step k resumes at k: real Docker, real git, a forge that fails once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from orchestrator import lifecycle
from orchestrator.errors import ForgeError, SandboxError, StepFailed
from orchestrator.forge.base import RepoRef
from orchestrator.forge.local import LocalForge
from orchestrator.services import Services
from tests.integration.launch_services import services_with_forge

pytestmark = pytest.mark.docker


class FlakyForge(LocalForge):
    """The local forge, down for one call to open_issue: a real fault in the middle of a launch."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.down = True
        self.issue_calls = 0

    def open_issue(self, repo: RepoRef, title: str, body: str) -> str:
        self.issue_calls += 1
        if self.down:
            self.down = False
            raise ForgeError("the forge did not answer", "try again")
        return super().open_issue(repo, title, body)


@pytest.fixture
def services(trial_home: Path, service_port: int) -> Iterator[Services]:
    with services_with_forge(FlakyForge) as services:
        yield services


def test_failed_launch_resumes_at_the_failed_step_and_creates_nothing_twice(services: Services) -> None:
    request = lifecycle.LaunchRequest("api-keys", "octocat", agent="none")
    with pytest.raises(StepFailed, match="step 'open_brief' failed: the forge did not answer"):
        lifecycle.launch(services, request)
    [trial] = services.store.list_trials()
    assert (trial.state, trial.failed_step) == ("failed", "launch:open_brief")
    before = {s.name: s for s in services.store.steps(trial.id, "launch")}
    assert [n for n, s in before.items() if s.status == "done"] == ["build_image", "create_repo", "push_starter"]
    assert services.sandbox.find(trial.id) is None  # nothing past the failure was made

    result = lifecycle.resume_launch(services, trial.id)

    assert result.resumed and result.trial.state == "active" and result.trial.failed_step is None
    after = {s.name: s for s in services.store.steps(trial.id, "launch")}
    assert all(s.status == "done" for s in after.values())
    for name in ("build_image", "create_repo", "push_starter"):  # not redone
        assert after[name].started_at == before[name].started_at
    [repo] = services.forge.list_managed()
    forge = services.forge
    assert isinstance(forge, FlakyForge)
    [issue] = forge.issues(repo)
    assert issue["title"] == services.catalog.get("api-keys").config.title
    assert "## How to submit" in issue["body"] and "any branch other than `main`" in issue["body"]
    assert isinstance(forge, FlakyForge) and forge.issue_calls == 2
    containers = docker.from_env().containers.list(filters={"label": f"trial.id={trial.id}"})
    assert [c.status for c in containers] == ["running"]


def test_resume_refuses_a_trial_that_is_not_a_failed_launch(services: Services) -> None:
    services.forge.down = False  # type: ignore[attr-defined]
    launched = lifecycle.launch(services, lifecycle.LaunchRequest("api-keys", "octocat", agent="none"))
    with pytest.raises(Exception, match="only a launch that did not finish can resume"):
        lifecycle.resume_launch(services, launched.trial.id)


def test_a_launch_that_failed_at_the_clone_resumes_on_a_sandbox_stopped_since(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox was started by the run that failed; the host restarted before the resume (the
    container stopped): the resume starts it again rather than failing at every try."""
    services.forge.down = False  # type: ignore[attr-defined]
    real_exec_ok = lifecycle._exec_ok
    calls = []

    def clone_fails_once(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise SandboxError("git setup and clone inside the sandbox failed: the host service did not answer",
                               "try again")
        real_exec_ok(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "_exec_ok", clone_fails_once)
    with pytest.raises(StepFailed, match="step 'clone_workspace' failed"):
        lifecycle.launch(services, lifecycle.LaunchRequest("api-keys", "octocat", agent="none"))
    [trial] = services.store.list_trials()
    [container] = docker.from_env().containers.list(filters={"label": f"trial.id={trial.id}"})
    container.stop(timeout=1)

    result = lifecycle.resume_launch(services, trial.id)

    assert result.trial.state == "active"
    container.reload()
    assert container.status == "running"
    ref = services.sandbox.find(trial.id)
    assert ref is not None
    assert services.sandbox.exec(ref, ["test", "-d", "/workspace/.git"]).ok
    assert result.ssh_command is not None and str(services.store.get_trial(trial.id).data["ssh_port"]) in \
        result.ssh_command
