"""The launch path's engine client (orchestrator/sandbox/engine.py) says to the engine what the Docker
SDK said: the same create request for a spec, the same memory sizes, the same stream framing and
error messages. Against the real engine: tests/integration/test_docker_backend.py."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import _create_container_args
from docker.types import Mount
from docker.utils import parse_bytes

from orchestrator.config import SandboxSettings
from orchestrator.errors import PrerequisiteError, SandboxError
from orchestrator.sandbox.base import SandboxSpec
from orchestrator.sandbox.docker import SSH_PORT_KEY, DockerBackend, _memory_bytes
from orchestrator.sandbox.engine import (
    Engine,
    EngineError,
    EngineTimeout,
    EngineUnreachable,
    http_transport,
    read_frames,
    sdk_transport,
)

pytestmark = pytest.mark.unit


def _sdk_request(backend: DockerBackend, spec: SandboxSpec, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The body the SDK's `containers.create` sent for this spec (the options the backend gave it)."""
    options: dict[str, Any] = {
        "user": spec.user, "working_dir": spec.workdir, "environment": dict(spec.env),
        "labels": {"trial.id": spec.trial_id, "trial.managed-by": "trial", "trial.role": spec.role,
                   **backend._instance_label()},
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "mem_limit": spec.memory,
        "memswap_limit": spec.memory, "nano_cpus": round(spec.cpus * 1e9), "pids_limit": spec.pids,
        "read_only": spec.read_only_root, "tmpfs": dict(spec.tmpfs),
        "mounts": [Mount(target=m["Target"], source=m["Source"], type="volume", labels=m["VolumeOptions"]["Labels"])
                   for m in mounts],
        "init": True, "restart_policy": {"Name": "no"},
    }
    if spec.command is not None:
        options["command"] = list(spec.command)
    if spec.network_disabled:
        options["network_disabled"] = True
        options["network_mode"] = "none"
    else:
        options["extra_hosts"] = dict(spec.extra_hosts)
    if spec.publish_ssh:
        options["ports"] = {SSH_PORT_KEY: (spec.ssh_bind, backend._host_port(spec))}
    args = _create_container_args({**options, "image": spec.image, "version": "1.41"})
    args.setdefault("command", None)
    config = docker.APIClient(version="1.41").create_container_config(**args)
    body = {key: value for key, value in config.items() if value is not None}
    if not body["HostConfig"].get("ExtraHosts"):
        body["HostConfig"].pop("ExtraHosts", None)  # an empty list and no list mean the same
    return dict(json.loads(json.dumps(body)))


@pytest.mark.parametrize("overrides", [
    {"publish_ssh": True, "command": ("sleep", "infinity"), "extra_hosts": {"host.docker.internal": "host-gateway",
                                                                            "b.example": "10.0.0.1"}},
    {"role": "verifier", "network_disabled": True, "memory": "1536m", "cpus": 1.5, "workdir": None},
    {"publish_ssh": True, "ssh_host_port": 2222, "ssh_bind": "127.0.0.1", "tmpfs": {"/tmp": "rw,size=64m"}},
])
def test_the_create_request_is_the_one_the_sdk_sent(overrides: dict[str, Any]) -> None:
    backend = DockerBackend(SandboxSettings(ssh_port_range=(2200, 2300)), instance="abc123")
    spec = SandboxSpec(**{"trial_id": "t1", "image": "trial-x:1", "env": {"A": "1", "B": "two words"},
                          "volumes": {"workspace": "/workspace"}, **overrides})
    mounts = [{"Target": "/workspace", "Source": "trial-t1-workspace", "Type": "volume", "ReadOnly": False,
               "VolumeOptions": {"Labels": {"trial.id": "t1"}}}]
    assert backend._create_body(spec, mounts) == _sdk_request(backend, spec, mounts)


@pytest.mark.parametrize("size", ["2g", "512m", "1024", "1.5g", "100kb", "64M", "3GB", 4096])
def test_memory_sizes_read_as_the_sdk_read_them(size: str | int) -> None:
    assert _memory_bytes(size) == parse_bytes(size)


def test_a_memory_size_without_a_known_unit_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="no unit Docker knows"):
        _memory_bytes("2x")
    with pytest.raises(SandboxError, match="not a number"):
        _memory_bytes("twog")


class _Chunks:
    """A response body that hands out at most 3 bytes per read (frames split across reads)."""

    status = 200

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def read(self, amount: int | None = None) -> bytes:
        piece, self.data = self.data[:min(amount or 3, 3)], self.data[min(amount or 3, 3):]
        return piece

    def close(self) -> None:
        self.closed = True


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_a_multiplexed_stream_splits_into_stdout_and_stderr_in_order() -> None:
    body = _Chunks(_frame(1, b"out one\n") + _frame(2, b"err\n") + _frame(1, b"") + _frame(1, b"out two\n"))
    assert read_frames(body) == (b"out one\nout two\n", b"err\n")
    assert body.closed


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A unix socket answering like an engine: 404 with the engine's JSON message, else 200 JSON."""
    path = str(tmp_path / "engine.sock")
    seen: list[str] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(65536).decode()
                line = request.split("\r\n", 1)[0]
                seen.append(line)
                if "/missing/" in line:
                    body, status = b'{"message":"No such container: missing"}', "404 Not Found"
                elif "/silent/" in line:
                    body, status = b"", "500 Internal Server Error"
                elif "/cut/" in line:  # the connection drops ten bytes into a hundred-byte answer
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 100\r\n\r\n" + b'{"Id": "ab')
                    continue
                else:
                    body, status = json.dumps({"Id": "abc", "Line": line}).encode(), "200 OK"
                conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", seen
    server.close()


def test_requests_go_over_the_unix_socket_and_refusals_carry_the_engines_message(
        fake_engine: tuple[str, list[str]]) -> None:
    url, seen = fake_engine
    transport = http_transport(url)
    assert transport is not None
    engine = Engine(transport, timeout_s=5)
    assert engine.inspect("containers", "trial-t1-sandbox") == {
        "Id": "abc", "Line": "GET /containers/trial-t1-sandbox/json HTTP/1.1"}
    assert engine.inspect("containers", "missing") is None
    with pytest.raises(EngineError) as refused:
        engine.call("DELETE", "/containers/missing/", params={"force": 1, "v": None})
    assert (refused.value.status, refused.value.explanation) == (404, "No such container: missing")
    assert seen[-1] == "DELETE /containers/missing/?force=1 HTTP/1.1"


def test_a_backend_on_a_socket_nobody_serves_says_the_engine_is_unreachable(tmp_path: Path) -> None:
    url = f"unix://{tmp_path / 'nobody.sock'}"
    backend = DockerBackend(SandboxSettings(), engine_url=url)
    with pytest.raises(PrerequisiteError, match=f"Docker Engine is not reachable at {url}"):
        backend.ping()
    with pytest.raises(PrerequisiteError, match=f"Docker Engine is not reachable at {url}"):
        backend.find("t1")


def test_engines_it_cannot_reach_itself_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    assert http_transport("ssh://user@host") is None
    assert http_transport("tcp://127.0.0.1:2376") is not None
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    assert http_transport("tcp://127.0.0.1:2376") is None


def _read_request(conn: socket.socket) -> None:
    """The whole request, body included (closing on unread bytes would reset the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)


@pytest.fixture
def slow_engine(tmp_path: Path) -> Iterator[tuple[str, dict[str, float]]]:
    """A unix socket that reads a request and then waits `plan["headers_after"]` seconds before
    answering an exec start (headers, then one stdout frame `plan["frame_after"]` seconds later).
    Waiting longer than the test is a hung engine; teardown releases it."""
    path = str(tmp_path / "slow.sock")
    plan: dict[str, float] = {"headers_after": 0.0, "frame_after": 0.0}
    release = threading.Event()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            _read_request(conn)
            if release.wait(plan["headers_after"]):
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
            if release.wait(plan["frame_after"]):
                return
            conn.sendall(_frame(1, b"late output\n"))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", plan
    release.set()
    server.close()
    for conn in held:
        conn.close()


def _exec_in_thread(engine: Engine, limit_s: float) -> object:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(engine.exec_run("abc"))
        except Exception as exc:  # the test inspects what was raised
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit_s)
    return outcome[0] if outcome else "still waiting"


def test_an_exec_on_a_hung_engine_times_out_instead_of_waiting_forever(
        slow_engine: tuple[str, dict[str, float]]) -> None:
    """The engine accepts the exec start and never answers: the command's own bound (`timeout` in
    the container) cannot help, since nothing runs; the client's timeout covers the answer's headers."""
    url, plan = slow_engine
    plan["headers_after"] = 60.0
    transport = http_transport(url)
    assert transport is not None
    assert isinstance(_exec_in_thread(Engine(transport, timeout_s=0.3), 5.0), EngineTimeout)


def test_an_exec_stream_may_stay_silent_longer_than_the_timeout(slow_engine: tuple[str, dict[str, float]]) -> None:
    """Once the engine has answered, the command's output may take as long as the command does."""
    url, plan = slow_engine
    plan["frame_after"] = 0.8
    transport = http_transport(url)
    assert transport is not None
    assert _exec_in_thread(Engine(transport, timeout_s=0.3), 5.0) == (b"late output\n", b"")


@pytest.mark.parametrize("cut", [3, 8 + 4])
def test_a_stream_cut_inside_a_frame_is_an_engine_error_not_short_output(cut: int) -> None:
    """A connection dropped mid-frame (an engine restart) must not read as a command's whole output."""
    body = _Chunks((_frame(1, b"out one\n") + _frame(1, b"out two\n"))[:len(_frame(1, b"out one\n")) + cut])
    with pytest.raises(EngineUnreachable, match="inside a frame"):
        read_frames(body)
    assert body.closed


def test_a_unix_address_without_the_third_slash_is_the_sockets_absolute_path(
        fake_engine: tuple[str, list[str]]) -> None:
    """`unix://var/run/docker.sock` is `/var/run/docker.sock` to the SDK (and the docker CLI): the
    same engine, not `/run/docker.sock` (the host part dropped)."""
    url, seen = fake_engine
    relative = "unix://" + url.removeprefix("unix:///")
    transport = http_transport(relative)
    assert transport is not None
    assert Engine(transport, timeout_s=5).inspect("containers", "c1") is not None
    assert seen == ["GET /containers/c1/json HTTP/1.1"]


def test_sshd_is_read_from_proc_only_when_this_backends_engine_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node backend on a remote engine (a swarm worker at tcp://) must not read this host's /proc
    for the node's pid (another process here, perhaps another sandbox's sshd), whatever DOCKER_HOST says."""
    import orchestrator.sandbox.docker as docker_module

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(docker_module, "_listening", lambda pid, port: True)
    attrs = {"HostConfig": {"PortBindings": {SSH_PORT_KEY: [{"HostIp": "127.0.0.1", "HostPort": "2299"}]}},
             "State": {"Pid": 4242}}
    assert not DockerBackend(SandboxSettings(), engine_url="tcp://10.0.0.2:2375")._sshd_listening(attrs)
    assert DockerBackend(SandboxSettings(), engine_url="unix:///var/run/docker.sock")._sshd_listening(attrs)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.2:2375")
    assert not DockerBackend(SandboxSettings())._sshd_listening(attrs)


def test_a_refusal_with_an_empty_body_still_says_something(fake_engine: tuple[str, list[str]]) -> None:
    """An engine (or a proxy in front of it) answering 500 with no body: the error names the status,
    never an empty explanation ("Docker could not start container x: ")."""
    url, _seen = fake_engine
    transport = http_transport(url)
    assert transport is not None
    with pytest.raises(EngineError) as refused:
        Engine(transport, timeout_s=5).call("POST", "/containers/silent/start")
    assert refused.value.status == 500 and refused.value.explanation == "the engine answered HTTP 500 with no message"


@pytest.mark.parametrize("through", ["http.client", "sdk session"])
def test_an_answer_cut_short_is_an_unreachable_engine_on_either_transport(
        fake_engine: tuple[str, list[str]], through: str) -> None:
    """The connection drops inside the body: EngineUnreachable (the caller's one-line error), never a
    urllib3 or http.client exception escaping as a traceback. The SDK session is the real SDK's."""
    url, _seen = fake_engine
    transport = http_transport(url) if through == "http.client" else sdk_transport(
        docker.APIClient(base_url=url, version="1.41"))
    assert transport is not None
    with pytest.raises(EngineUnreachable):
        Engine(transport, timeout_s=5).call("GET", "/containers/cut/json")
