"""DockerBackend against the real engine: builds, hardening seen from inside, files, volumes, cleanup.

Every test gets a fresh trial id; its finalizer removes whatever carries that id's label
straight through the docker SDK, so a bug in the backend's own removal cannot leak
containers or volumes. The image built here is removed at the end of the module.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.config import SandboxSettings
from orchestrator.errors import ImageBuildError, PrerequisiteError, SandboxError, UsageError
from orchestrator.sandbox.base import (
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_TRIAL,
    BuildRequest,
    ImageRef,
    SandboxBackend,
    SandboxRef,
    SandboxSpec,
)
from orchestrator.sandbox.docker import DockerBackend, SandboxPathNotFound, container_name, volume_name
from orchestrator.sandbox.engine import Engine, sdk_transport
from tests.conftest import BASE_IMAGE

TEST_LABEL = "trial.test"
DOCKERFILE = """\
ARG BASE_IMAGE=trial-base:bookworm
FROM ${BASE_IMAGE}
RUN useradd --uid 1000 --create-home --shell /bin/bash candidate \\
 && install -d -o candidate -g candidate /workspace \\
 && echo built-for-{nonce} > /etc/trial-test
USER candidate
CMD ["sleep", "infinity"]
"""
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def backend() -> DockerBackend:
    return DockerBackend(SandboxSettings())


@pytest.fixture(scope="module")
def built(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ImageRef, BuildRequest]]:
    """The test image, built once per module (a fresh tag each run, so the first build is real)."""
    nonce = uuid.uuid4().hex[:10]
    context = tmp_path_factory.mktemp("image")
    (context / "Dockerfile").write_text(DOCKERFILE.replace("{nonce}", nonce))
    request = BuildRequest(context_dir=context, tag=f"trial-test-sandbox:{nonce}",
                           buildargs={"BASE_IMAGE": BASE_IMAGE}, labels={TEST_LABEL: "docker-backend"})
    ref = DockerBackend(SandboxSettings()).build(request)
    yield ref, request
    engine.images.remove(request.tag, force=True)


@pytest.fixture
def image(built: tuple[ImageRef, BuildRequest]) -> str:
    return built[0].tag


@pytest.fixture
def trial_id(engine: Any) -> Iterator[str]:
    tid = f"t{uuid.uuid4().hex[:10]}"
    yield tid
    selector = {"label": f"{LABEL_TRIAL}={tid}"}
    for container in engine.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for volume in engine.volumes.list(filters=selector):
        volume.remove(force=True)


def sandbox_spec(trial_id: str, image: str, **overrides: Any) -> SandboxSpec:
    values: dict[str, Any] = {
        "trial_id": trial_id,
        "image": image,
        "command": ("sleep", "infinity"),
        "memory": "256m",
        "cpus": 0.5,
        "pids": 64,
        "volumes": {"workspace": "/workspace", "home": "/home/candidate"},
        "env": {"TRIAL_GREETING": "hello"},
        "ssh_bind": "127.0.0.1",
    }
    values.update(overrides)
    return SandboxSpec(**values)


def tar_of(files: dict[str, bytes], uid: int = 1000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uid = info.gid = uid
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
                for member in archive.getmembers() if member.isfile()}


def sh(backend: DockerBackend, ref: SandboxRef, script: str) -> tuple[int, str, str]:
    result = backend.exec(ref, ["sh", "-c", script])
    return result.exit_code, result.stdout.strip(), result.stderr.strip()


# ---- engine and images -----------------------------------------------------------------------------


@pytest.mark.docker
def test_backend_satisfies_the_protocol_and_pings(backend: DockerBackend) -> None:
    assert isinstance(backend, SandboxBackend)
    backend.ping()


@pytest.mark.unit
def test_ping_names_the_engine_and_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens on port 1
    backend = DockerBackend(SandboxSettings())  # no connection at construction
    with pytest.raises(PrerequisiteError) as caught:
        backend.ping()
    assert caught.value.message == "Docker Engine is not reachable at tcp://127.0.0.1:1"
    assert "systemctl start docker" in (caught.value.hint or "")
    assert "scripts/ensure-docker.sh" in (caught.value.hint or "")
    # Any other call reports the same prerequisite, never a library exception.
    with pytest.raises(PrerequisiteError):
        backend.image_exists("trial-base:bookworm")


@pytest.mark.docker
def test_build_labels_the_image_and_the_second_build_is_cached(
        built: tuple[ImageRef, BuildRequest], backend: DockerBackend, engine: Any) -> None:
    first, request = built
    assert first.cached is False
    assert first.tag == request.tag
    labels = engine.images.get(request.tag).labels
    assert labels[LABEL_MANAGED] == "trial"
    assert labels[TEST_LABEL] == "docker-backend"
    again = backend.build(request)
    assert again == ImageRef(tag=request.tag, id=first.id, cached=True)
    assert backend.image_exists(request.tag)
    assert not backend.image_exists(f"{request.tag}-absent")


@pytest.mark.docker
def test_failed_build_names_the_failing_step_and_shows_the_log_tail(
        backend: DockerBackend, engine: Any, tmp_path: Path) -> None:
    # The failing RUN is the first step that makes a layer, so no intermediate image is left.
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail-now && exit 3\n")
    tag = f"trial-test-broken:{uuid.uuid4().hex[:10]}"
    with pytest.raises(ImageBuildError) as caught:
        backend.build(BuildRequest(context_dir=tmp_path, tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE}))
    message, hint = caught.value.message, caught.value.hint or ""
    assert "\n" not in message
    # Step 3 of however many the builder counts (it adds a LABEL step for our labels).
    assert re.search(r"failed to build at step 3/\d+ `RUN echo about-to-fail-now && exit 3`: .*"
                     r"returned a non-zero code: 3$", message), message
    assert "about-to-fail-now" in hint.split("build log:", 1)[1]  # the command's own output
    assert str(tmp_path / "Dockerfile") in hint
    assert not engine.images.list(name=tag)


@pytest.mark.docker
def test_build_without_a_dockerfile_is_an_image_build_error(backend: DockerBackend, tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="Dockerfile does not exist"):
        backend.build(BuildRequest(context_dir=tmp_path, tag=f"trial-test-none:{uuid.uuid4().hex[:8]}"))


# ---- the sandbox ------------------------------------------------------------------------------------


@pytest.mark.docker
def test_sandbox_is_hardened_seen_from_inside_and_in_inspect(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    ref = backend.start(backend.create(sandbox_spec(trial_id, image)))
    assert ref.name == container_name(trial_id, "sandbox")
    assert backend.status(ref) == "running"

    assert sh(backend, ref, "id -u")[1] == "1000"
    status = dict(line.split(":\t", 1) for line in sh(backend, ref, "cat /proc/self/status")[1].splitlines()
                  if ":\t" in line)
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    code, _, err = sh(backend, ref, "touch /etc/evil")
    assert code != 0
    assert "Read-only file system" in err
    assert sh(backend, ref, "touch /workspace/ok /tmp/ok /home/candidate/ok")[0] == 0
    assert sh(backend, ref, "test -e /var/run/docker.sock || test -e /run/docker.sock")[0] == 1
    # PID 1 is Docker's init, which reaps zombies; the command runs under it.
    assert sh(backend, ref, "cat /proc/1/comm")[1] == "docker-init"

    attrs = engine.containers.get(ref.id).attrs
    host = attrs["HostConfig"]
    assert host["Memory"] == 256 * MIB
    assert host["MemorySwap"] == 256 * MIB  # equal to Memory: no swap
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 500_000_000
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["Init"] is True
    assert host["RestartPolicy"]["Name"] in ("no", "")
    assert not host.get("Binds")
    assert host["ExtraHosts"] == ["host.docker.internal:host-gateway"]
    assert set(host["Tmpfs"]) == {"/tmp", "/run"}
    assert {m["Type"] for m in attrs["Mounts"]} == {"volume"}
    assert not any("docker.sock" in str(m) for m in attrs["Mounts"])
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL_TRIAL] == trial_id
    assert labels[LABEL_MANAGED] == "trial"
    assert labels[LABEL_ROLE] == "sandbox"
    assert attrs["Config"]["User"] == "candidate"
    assert ref.volumes == {"/workspace": volume_name(trial_id, "workspace"),
                           "/home/candidate": volume_name(trial_id, "home")}
    for volume in ref.volumes.values():
        assert engine.volumes.get(volume).attrs["Labels"] == {LABEL_TRIAL: trial_id, LABEL_MANAGED: "trial"}


@pytest.mark.docker
def test_exec_uses_env_workdir_user_and_enforces_its_timeout(
        backend: DockerBackend, image: str, trial_id: str) -> None:
    ref = backend.start(backend.create(sandbox_spec(trial_id, image)))
    result = backend.exec(ref, ["sh", "-c", 'echo "$TRIAL_GREETING $EXTRA $(pwd)"; echo oops >&2; exit 5'],
                          env={"EXTRA": "there"}, workdir="/home/candidate")
    assert (result.exit_code, result.stdout, result.stderr) == (5, "hello there /home/candidate\n", "oops\n")
    assert not result.ok
    assert backend.exec(ref, ["pwd"]).stdout.strip() == "/workspace"  # the spec's workdir
    assert backend.exec(ref, ["id", "-u"], user="root").stdout.strip() == "0"
    # Even root gets no capabilities back.
    assert backend.exec(ref, ["touch", "/etc/evil"], user="root").exit_code != 0

    started = time.monotonic()
    slow = backend.exec(ref, ["sh", "-c", "echo started; sleep 30"], timeout_s=1)
    assert time.monotonic() - started < 10
    assert slow.exit_code == 124
    assert slow.stdout == "started\n"
    assert "timed out after 1 s" in slow.stderr
    assert backend.exec(ref, ["true"], timeout_s=5).ok


@pytest.mark.docker
def test_copy_in_and_out_round_trip_and_copy_out_works_when_stopped(
        backend: DockerBackend, image: str, trial_id: str) -> None:
    created = backend.create(sandbox_spec(trial_id, image))
    # Into a volume of a container that never ran (launch writes the home this way).
    backend.copy_in(created, "/home/candidate", tar_of({".trial/env.sh": b"export A=1\n"}))
    ref = backend.start(created)
    env_sh = "/home/candidate/.trial/env.sh"
    assert sh(backend, ref, f"stat -c %u {env_sh} && cat {env_sh}") == (0, "1000\nexport A=1", "")
    # The image's own home (copied into the fresh volume) is still there and the candidate's.
    owners = sh(backend, ref, "stat -c %U /home/candidate /home/candidate/.bashrc")
    assert owners == (0, "candidate\ncandidate", "")
    backend.copy_in(ref, "/workspace", tar_of({"notes/plan.md": b"# plan\n", "data.bin": bytes(range(256))}))
    assert sh(backend, ref, "stat -c %u /workspace/notes/plan.md && cat /workspace/notes/plan.md") == \
        (0, "1000\n# plan", "")
    files = untar(backend.copy_out(ref, "/workspace/notes"))
    assert files == {"notes/plan.md": b"# plan\n"}

    assert sh(backend, ref, "echo written-while-running > /home/candidate/transcript.jsonl")[0] == 0
    backend.stop(ref, timeout_s=2)
    assert backend.status(ref) == "exited"
    assert untar(backend.copy_out(ref, "/home/candidate/transcript.jsonl")) == \
        {"transcript.jsonl": b"written-while-running\n"}
    assert untar(backend.copy_out(ref, "/workspace/data.bin")) == {"data.bin": bytes(range(256))}
    backend.copy_in(ref, "/workspace", tar_of({"late.txt": b"in while stopped"}))
    assert untar(backend.copy_out(ref, "/workspace/late.txt")) == {"late.txt": b"in while stopped"}

    with pytest.raises(SandboxPathNotFound, match="/home/candidate/no-such-file"):
        backend.copy_out(ref, "/home/candidate/no-such-file")
    with pytest.raises(SandboxPathNotFound, match="/no/such/dir"):
        backend.copy_in(ref, "/no/such/dir", tar_of({"x": b"x"}))


@pytest.mark.docker
def test_volumes_survive_stop_and_recreate_and_remove_cleans_everything(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image)
    first = backend.start(backend.create(spec))
    write = "echo kept > /workspace/work.txt && echo home > /home/candidate/.history"
    assert sh(backend, first, write)[0] == 0
    backend.stop(first, timeout_s=2)
    backend.remove(first, volumes=False)
    assert backend.status(first) == "missing"
    assert backend.find(trial_id) is None

    second = backend.start(backend.create(spec))
    assert second.id != first.id
    assert sh(backend, second, "cat /workspace/work.txt /home/candidate/.history")[1] == "kept\nhome"

    backend.remove(second)
    selector = {"label": f"{LABEL_TRIAL}={trial_id}"}
    assert engine.containers.list(all=True, filters=selector) == []
    assert engine.volumes.list(filters=selector) == []
    backend.remove(second)  # removing what is gone is fine
    backend.stop(second)


@pytest.mark.docker
def test_create_labels_the_volumes_it_makes_and_a_failed_create_removes_only_those(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    labels = {LABEL_TRIAL: trial_id, "trial.managed-by": "trial"}
    kept = engine.volumes.create(name=volume_name(trial_id, "workspace"), labels=labels)  # holds work
    with pytest.raises(SandboxError):
        backend.create(sandbox_spec(trial_id, f"{image}-missing"))
    assert [v.name for v in engine.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"})] == [kept.name]

    backend.create(sandbox_spec(trial_id, image))
    made = engine.volumes.get(volume_name(trial_id, "home"))  # made by the engine with the container
    assert {k: made.attrs["Labels"].get(k) for k in labels} == labels


@pytest.mark.docker
def test_create_is_idempotent_per_trial_and_role(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image)
    first = backend.create(spec)
    assert backend.status(first) == "created"
    assert backend.create(spec) == first
    assert backend.find(trial_id) == first
    assert backend.find(trial_id, "verifier") is None
    containers = engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"})
    assert [c.id for c in containers] == [first.id]
    started = backend.start(first)
    assert backend.create(spec).id == started.id
    assert backend.start(started).id == started.id  # starting a running sandbox is a no-op


@pytest.mark.docker
def test_container_that_exits_at_once_fails_start_and_leaves_no_container(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image, command=("sh", "-c", "echo boom-from-container >&2; exit 7"))
    ref = backend.create(spec)
    with pytest.raises(SandboxError) as caught:
        backend.start(ref)
    assert "exited at once with code 7" in caught.value.message
    assert "boom-from-container" in caught.value.message
    assert engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
    assert backend.status(ref) == "missing"


@pytest.mark.docker
def test_sshd_port_is_published_on_the_requested_address(
        backend: DockerBackend, image: str, trial_id: str) -> None:
    # A web server stands in for sshd on 2222: what matters is that the host port reaches it.
    spec = sandbox_spec(trial_id, image, publish_ssh=True,
                        command=("python3", "-m", "http.server", "2222", "--bind", "0.0.0.0",
                                 "--directory", "/workspace"))
    ref = backend.create(spec)
    assert ref.ssh_port is None
    started = backend.start(ref)
    assert started.ssh_port is not None
    assert sh(backend, started, "echo served > /workspace/probe.txt")[0] == 0
    body = b""
    url = f"http://127.0.0.1:{started.ssh_port}/probe.txt"
    for _ in range(50):  # the server may need a moment to bind
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == b"served\n"
    assert backend.find(trial_id) == started


@pytest.mark.docker
def test_ssh_port_range_from_settings_is_honoured(image: str, trial_id: str) -> None:
    backend = DockerBackend(SandboxSettings(ssh_port_range=(42210, 42230)))
    ref = backend.start(backend.create(sandbox_spec(trial_id, image, publish_ssh=True)))
    assert ref.ssh_port is not None
    assert 42210 <= ref.ssh_port <= 42230


@pytest.mark.docker
def test_verifier_has_no_network(backend: DockerBackend, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image, role="verifier", network_disabled=True, volumes={})
    ref = backend.start(backend.create(spec))
    assert ref.name == container_name(trial_id, "verifier")
    assert sh(backend, ref, "ls /sys/class/net")[1].split() == ["lo"]
    with pytest.raises(UsageError, match="publish_ssh with network_disabled"):
        backend.create(sandbox_spec(trial_id, image, role="sandbox", network_disabled=True, publish_ssh=True))


@pytest.mark.docker
def test_list_managed_finds_containers_and_volumes_and_removes_them(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    ref = backend.create(sandbox_spec(trial_id, image))
    mine = [r for r in backend.list_managed() if r.trial_id == trial_id]
    assert sorted((r.kind, r.name) for r in mine) == [
        ("container", ref.name),
        ("volume", volume_name(trial_id, "home")),
        ("volume", volume_name(trial_id, "workspace")),
    ]
    assert any(r.kind == "image" and r.name == image for r in backend.list_managed())
    # Containers first, as `trial gc` does: a volume in use cannot go.
    for resource in sorted(mine, key=lambda r: r.kind != "container"):
        backend.remove_resource(resource)
    assert [r for r in backend.list_managed() if r.trial_id == trial_id] == []
    assert engine.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []


@pytest.mark.docker
def test_operations_on_a_missing_container_raise_sandbox_errors(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    ref = backend.create(sandbox_spec(trial_id, image))
    with pytest.raises(SandboxError, match="not running"):
        backend.exec(ref, ["true"])
    backend.remove(ref)
    for operation in (lambda: backend.start(ref), lambda: backend.exec(ref, ["true"]),
                      lambda: backend.copy_out(ref, "/workspace")):
        with pytest.raises(SandboxError, match="does not exist"):
            operation()
    with pytest.raises(SandboxError, match="does not exist"):
        backend.create(sandbox_spec(trial_id, "trial-test-no-such-image:latest"))
    # The failed create took back the volumes it had made.
    assert engine.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
    with pytest.raises(UsageError, match=r"volume '\.\./etc'"):
        backend.create(sandbox_spec(trial_id, image, volumes={"../etc": "/etc"}))


@pytest.mark.docker
def test_host_only_network_has_no_nat_and_isolates_sandboxes_from_each_other(
        backend: DockerBackend, engine: Any, image: str, trial_id: str) -> None:
    network = f"trial-test-no-egress-{trial_id}"
    server = backend.start(backend.create(sandbox_spec(
        trial_id, image, role="sandbox", network=network, volumes={},
        command=("python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"))))
    client = backend.start(backend.create(sandbox_spec(trial_id, image, role="verifier", network=network,
                                                       volumes={})))
    try:
        options = engine.networks.get(network).attrs["Options"]
        assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false"  # no route beyond the host
        assert options["com.docker.network.bridge.enable_icc"] == "false"
        attrs = engine.containers.get(server.id).attrs
        address = attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        # The server answers inside its own container, but another sandbox cannot reach it.
        probe = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=3); print('reached')"
        here = backend.exec(server, ["python3", "-c", probe, "http://127.0.0.1:8080/"], timeout_s=20)
        assert here.stdout.strip() == "reached", here.stderr
        there = backend.exec(client, ["python3", "-c", probe, f"http://{address}:8080/"], timeout_s=20)
        assert there.exit_code != 0 and "reached" not in there.stdout
    finally:
        backend.remove(server)
        backend.remove(client)
        for resource in backend.list_managed():
            if resource.kind == "network" and resource.name == network:
                backend.remove_resource(resource)  # the network and its host firewall rules


@pytest.mark.docker
def test_copy_out_stops_at_its_cap(backend: DockerBackend, image: str, trial_id: str) -> None:
    ref = backend.start(backend.create(sandbox_spec(trial_id, image)))
    backend.exec(ref, ["sh", "-c", "head -c 3000000 /dev/urandom > /workspace/big.bin"])
    assert len(backend.copy_out(ref, "/workspace/big.bin", max_bytes=4 << 20)) > 3_000_000
    with pytest.raises(SandboxError, match="larger than 1 MiB; not copied"):
        backend.copy_out(ref, "/workspace/big.bin", max_bytes=1 << 20)


@pytest.mark.docker
def test_the_launch_calls_go_through_the_sdks_session_for_engines_it_alone_reaches(
        image: str, trial_id: str) -> None:
    # ssh:// and TLS engines: the launch path's requests ride on the SDK's session; the same calls
    # as over the socket, here against the local engine.
    backend = DockerBackend(SandboxSettings())
    backend._engine = Engine(sdk_transport(backend.client.api), timeout_s=60)
    backend.ping()
    assert backend.image_exists(image) and not backend.image_exists("trial-no-such-image:0")
    created = backend.create(sandbox_spec(trial_id, image, publish_ssh=True))
    backend.copy_in(created, "/home/candidate", tar_of({"note.txt": b"through the sdk\n"}))
    ref = backend.start(created)
    assert backend.find(trial_id) == ref
    assert sh(backend, ref, "cat /home/candidate/note.txt; echo err >&2; exit 3") == (3, "through the sdk", "err")
    with pytest.raises(SandboxPathNotFound):
        backend.copy_in(ref, "/no/such/dir", tar_of({"x": b"x"}))


@pytest.mark.docker
def test_the_launch_calls_do_not_import_the_docker_sdk(image: str) -> None:
    probe = ("import sys\n"
             "from orchestrator.config import SandboxSettings\n"
             "from orchestrator.sandbox.docker import DockerBackend\n"
             "backend = DockerBackend(SandboxSettings())\n"
             "backend.ping()\n"
             f"assert backend.image_exists({image!r})\n"
             "assert backend.find('tnosuchtrial') is None\n"
             "print(' '.join(m for m in ('docker', 'requests', 'urllib3') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
