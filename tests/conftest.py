"""Shared fixtures: an isolated TRIAL_HOME per test, and the Docker engine gate.

With CI=true a test that needs Docker fails when no engine answers; it never skips,
or CI could pass having tested nothing real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("TRIAL_BASE_IMAGE", "trial-base:bookworm")


@pytest.fixture(autouse=True)
def unconfigured_logging() -> Iterator[None]:
    """A CLI run in-process (CliRunner) sets the process's log level; the next test starts
    without it, as a fresh process would (records below it never reach structlog's capture)."""
    from orchestrator import logging as trial_logging

    yield
    with trial_logging._Setup.lock:
        trial_logging._Setup.threshold = None
        trial_logging._Setup.pending = None
    if "structlog" in sys.modules:
        sys.modules["structlog"].reset_defaults()  # and structlog's own level filter with it


@pytest.fixture(autouse=True)
def trial_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """All state under a fresh data dir; no operator trial.toml or TRIAL_* leaks in."""
    for name in list(os.environ):
        if name.startswith("TRIAL_") and name not in ("TRIAL_BASE_IMAGE", "TRIAL_AGENT_CACHE"):
            monkeypatch.delenv(name)
    home = tmp_path / "trial-home"
    monkeypatch.setenv("TRIAL_HOME", str(home))
    monkeypatch.setenv("TRIAL_TEMPLATES_DIR", str(REPO_ROOT / "trial_templates"))
    monkeypatch.setenv("TRIAL_SANDBOX_BASE_IMAGE", BASE_IMAGE)
    return home


def _docker_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        if not client.images.list(name=BASE_IMAGE.split(":")[0]):
            return f"base image {BASE_IMAGE} is missing (run scripts/build-base-image.sh)"
        client.close()
    except Exception as exc:
        return f"Docker engine not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """Use in every test that needs Docker (marker `docker`)."""
    problem = _docker_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {problem}", pytrace=False)
        pytest.skip(problem)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked docker or e2e get the engine gate without asking for it."""
    for item in items:
        if item.get_closest_marker("docker") or item.get_closest_marker("e2e"):
            item.fixturenames.insert(0, "docker_engine") if "docker_engine" not in item.fixturenames else None


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free port for this test's host service (TRIAL_SERVICE_PORT)."""
    port = free_port()
    monkeypatch.setenv("TRIAL_SERVICE_PORT", str(port))
    return port


@pytest.fixture
def host_service(trial_home: Path, service_port: int) -> Iterator[str]:
    """`trial serve` in a subprocess for this test's data dir, on loopback only; stopped after."""
    with trial_serve(trial_home.parent, {**os.environ, "TRIAL_SERVICE_BIND": "127.0.0.1"}, service_port):
        yield f"http://127.0.0.1:{service_port}"


@contextmanager
def trial_serve(home: Path, env: dict[str, str], port: int) -> Iterator[None]:
    """`trial serve` with this environment until the block ends; fails the test if it does not answer."""
    log = (home / "service.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "serve"], env=env, cwd=home,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"trial serve did not start: {(home / 'service.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
