"""Sandbox start: done as soon as sshd listens (no fixed settle), and a late exit still fails it.

Real Docker. The test image (tests/integration/test_docker_backend.py) stands a web server on
the sshd port in for sshd: what start waits for is a socket listening there.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.config import SandboxSettings
from orchestrator.errors import SandboxError
from orchestrator.sandbox.base import LABEL_TRIAL, SSH_PORT_IN_CONTAINER
from orchestrator.sandbox.docker import DockerBackend
from tests.integration.test_docker_backend import built, engine, image, sandbox_spec, trial_id  # noqa: F401

LISTENER = ("python3", "-m", "http.server", str(SSH_PORT_IN_CONTAINER), "--bind", "0.0.0.0")


@pytest.mark.docker
def test_start_returns_once_the_ssh_port_listens_not_after_the_settle_window(
        image: str, trial_id: str) -> None:  # noqa: F811
    # A settle window far longer than any start: returning before it shows readiness was seen.
    backend = DockerBackend(SandboxSettings(), start_settle_s=120)
    ref = backend.create(sandbox_spec(trial_id, image, publish_ssh=True, command=LISTENER))
    started = time.monotonic()
    ref = backend.start(ref)
    assert time.monotonic() - started < 120
    assert backend.status(ref) == "running"


@pytest.mark.docker
def test_a_container_without_a_listener_still_gets_the_settle_window(image: str, trial_id: str) -> None:  # noqa: F811
    backend = DockerBackend(SandboxSettings(), start_settle_s=0.3)
    # A command that could still exit on its own (a shell), not the idle sleep below.
    ref = backend.start(backend.create(sandbox_spec(trial_id, image, publish_ssh=True,
                                                    command=("sh", "-c", "while :; do sleep 1; done"))))
    assert backend.status(ref) == "running"


@pytest.mark.docker
def test_an_idle_sleep_container_is_up_once_running_without_the_settle_window(
        image: str, trial_id: str) -> None:  # noqa: F811
    """A verifier's container runs `sleep infinity` and gets its work through exec: nothing can end
    it early, so waiting out the settle window (0.5 s of every verification run) proves nothing."""
    backend = DockerBackend(SandboxSettings(), start_settle_s=120)
    ref = backend.create(sandbox_spec(trial_id, image, network_disabled=True, command=("sleep", "infinity")))
    started = time.monotonic()
    ref = backend.start(ref)
    assert time.monotonic() - started < 120
    assert backend.status(ref) == "running"
    assert backend.exec(ref, ["true"]).ok


@pytest.mark.docker
def test_an_exit_before_sshd_listens_fails_start_and_leaves_no_container(
        engine: Any, image: str, trial_id: str) -> None:  # noqa: F811
    # Slower than an instant exit, still within the old fixed 0.5 s settle: must not pass as started.
    backend = DockerBackend(SandboxSettings())
    spec = sandbox_spec(trial_id, image, publish_ssh=True,
                        command=("sh", "-c", "sleep 0.3; echo late-boom >&2; exit 7"))
    ref = backend.create(spec)
    with pytest.raises(SandboxError) as caught:
        backend.start(ref)
    assert "exited at once with code 7" in caught.value.message
    assert "late-boom" in caught.value.message
    assert engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
