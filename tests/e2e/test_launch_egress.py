"""`trial launch` puts the sandbox behind the one door on its own: the data dir's host-only network
with the host service's port as the only opening, seen from inside the launched sandbox; and
`sandbox.egress=open` is an opt-out the launch says out loud."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.config import load_settings
from orchestrator.sandbox import sandbox_network

pytestmark = pytest.mark.e2e

PROBE = r"""
import socket, sys
for port in sys.argv[2:]:
    try:
        with socket.create_connection((sys.argv[1], int(port)), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            s.settimeout(2)
            print(port, "open" if s.recv(16) else "closed")
    except OSError:
        print(port, "blocked")
"""


def trial(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data: dict[str, Any] = json.loads(done.stdout)["data"]
    return data, done.stderr


@pytest.fixture
def other_port() -> Iterator[int]:
    """Something else listening on this host, on every address, as a database or an exporter would."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen()

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhere")

    threading.Thread(target=answer, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()


@pytest.fixture
def stop_service() -> Iterator[None]:
    yield
    subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], capture_output=True,
                   env=os.environ.copy(), timeout=60)


def test_a_launched_sandbox_reaches_the_host_service_and_nothing_else_on_the_host(
        trial_home: Path, service_port: int, other_port: int, stop_service: None) -> None:
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("host-only egress is enforced only where trial runs as root")
    launched, _ = trial("launch", "api-keys", "--candidate", "octocat", "--agent", "none")
    trial_id = launched["trial"]["id"]
    engine = docker.from_env()
    try:
        container = engine.containers.get(launched["trial"]["data"]["sandbox"]["id"])
        network = sandbox_network(load_settings())
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [network]
        assert engine.networks.get(network).attrs["Labels"]["trial.host-ports"] == str(service_port)
        done = container.exec_run(["python3", "-c", PROBE, "host.docker.internal", str(service_port),
                                   str(other_port)], user="candidate")
        seen = dict(line.split() for line in done.output.decode().splitlines())
        assert seen == {str(service_port): "open", str(other_port): "blocked"}
    finally:
        trial("teardown", trial_id, "--delete-repo", "--yes")
        engine.close()
    # Its last sandbox gone, the data dir's network goes too.
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().networks.get(network)


def test_open_egress_is_an_opt_out_the_launch_says_out_loud(trial_home: Path, service_port: int,
                                                            stop_service: None) -> None:
    launched, stderr = trial("launch", "api-keys", "--candidate", "octocat", "--agent", "none",
                             env={"TRIAL_SANDBOX_EGRESS": "open"})
    trial_id = launched["trial"]["id"]
    engine = docker.from_env()
    try:
        container = engine.containers.get(launched["trial"]["data"]["sandbox"]["id"])
        assert list(container.attrs["NetworkSettings"]["Networks"]) == ["bridge"]
        warnings = [line for line in stderr.splitlines() if "launch.egress.open" in line]
        assert len(warnings) == 1 and "sandbox.egress=open" in warnings[0]
    finally:
        trial("teardown", trial_id, "--delete-repo", "--yes")
        engine.close()
