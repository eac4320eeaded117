"""SwarmBackend on a real 3-node swarm built on this machine (tests/integration/swarm_cluster.py).

The same backend-level contract as tests/integration/test_docker_backend.py (hardening seen from
inside, exec, files before the first start and after a stop, volumes kept across re-creation,
idempotent create, an instant exit reported, gc listing, errors on missing pieces), plus what only
a swarm has: placement by free memory, volumes pinning a trial to its node, a drained node skipped,
sshd's port published on the node. The cluster is built once for the module (about 20 s, then the
image load) and taken down at its end; every test's finalizer removes what carries its trial id
straight through the engines, whatever the backend did.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from orchestrator.agents import get_agent
from orchestrator.catalog import load_template
from orchestrator.config import SandboxSettings, load_settings
from orchestrator.errors import SandboxError, UsageError
from orchestrator.sandbox import make_backend
from orchestrator.sandbox.base import (
    HOME,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_TRIAL,
    SSHD_DIR,
    WORKSPACE,
    SandboxBackend,
    SandboxRef,
    SandboxSpec,
)
from orchestrator.sandbox.docker import DockerBackend, volume_name
from orchestrator.sandbox.images import build_sandbox_image
from orchestrator.sandbox.swarm import SwarmBackend
from tests.conftest import BASE_IMAGE
from tests.integration.sandbox_image import build_probe_image
from tests.integration.swarm_cluster import SwarmCluster, swarm_cluster
from tests.integration.test_docker_backend import DOCKERFILE, MIB, sandbox_spec, tar_of, untar

pytestmark = pytest.mark.docker
_LIVE: list[SwarmCluster] = []
"""The cluster while it is up: every test's finalizer cleans its trial there too."""


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    nonce = uuid.uuid4().hex[:10]
    client = docker.from_env()
    tag = f"trial-test-swarm:{nonce}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        data = DOCKERFILE.replace("{nonce}", nonce).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    client.images.build(fileobj=io.BytesIO(context.getvalue()), custom_context=True, tag=tag,
                        buildargs={"BASE_IMAGE": BASE_IMAGE}, labels={LABEL_MANAGED: "trial"}, pull=False)
    yield tag
    client.images.remove(tag, force=True)
    client.close()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """A tool-less template (`probe`): its sandbox image (sshd entrypoint, setuid bits stripped), its
    template image (what verifiers run) and the templates folder holding it."""
    templates = tmp_path_factory.mktemp("templates")
    (templates / "probe" / "starter").mkdir(parents=True)
    (templates / "probe" / "starter" / "README.md").write_text("# Probe\n")  # a starter to commit
    tag, settings = build_probe_image(tmp_path_factory.mktemp("home"), templates)
    built = build_sandbox_image(DockerBackend(settings.sandbox), load_template(templates / "probe"),
                                get_agent("none"), settings)
    assert built.tag == tag
    return tag, built.template_image.tag, templates


@pytest.fixture(scope="module")
def probe_image(probe: tuple[str, str, Path]) -> str:
    return probe[0]


@pytest.fixture(scope="module")
def cluster(image: str, probe: tuple[str, str, Path]) -> Iterator[SwarmCluster]:
    with swarm_cluster(3, (image, probe[0], probe[1])) as built:
        _LIVE.append(built)
        try:
            yield built
        finally:
            _LIVE.remove(built)


@pytest.fixture(scope="module")
def instance() -> str:
    return f"swarm-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def backend(cluster: SwarmCluster, instance: str) -> SwarmBackend:
    return SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                        instance=instance)


@pytest.fixture(params=["docker", "swarm"])
def any_backend(request: pytest.FixtureRequest, instance: str) -> SandboxBackend:
    """The contract's subject: each test below runs on the host's engine and on the swarm."""
    if request.param == "docker":
        return DockerBackend(SandboxSettings(), instance=instance)
    cluster: SwarmCluster = request.getfixturevalue("cluster")
    return SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                        instance=instance)


def _cleanup(cluster: SwarmCluster, trial_id: str) -> None:
    selector = {"label": f"{LABEL_TRIAL}={trial_id}"}
    for service in cluster.manager.client.services.list(filters=selector):
        with suppress(docker.errors.NotFound):
            service.remove()
    for node in cluster.nodes:
        for container in node.client.containers.list(all=True, filters=selector, ignore_removed=True):
            with suppress(docker.errors.NotFound):  # a task container the node removes meanwhile
                container.remove(force=True)
    for node in cluster.nodes:
        deadline = time.monotonic() + 60
        while node.client.containers.list(all=True, filters=selector, ignore_removed=True) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        for volume in node.client.volumes.list(filters=selector):
            volume.remove(force=True)
    deadline = time.monotonic() + 60
    for network in cluster.manager.client.networks.list(filters=selector):
        while True:  # a node lets go of a removed door's attachment a moment later
            try:
                with suppress(docker.errors.NotFound):
                    network.remove()
                break
            except docker.errors.APIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@pytest.fixture
def trial_id(request: pytest.FixtureRequest) -> Iterator[str]:
    tid = f"t{uuid.uuid4().hex[:10]}"
    yield tid
    for cluster in _LIVE:
        _cleanup(cluster, tid)
    engine = docker.from_env()
    selector = {"label": f"{LABEL_TRIAL}={tid}"}
    for container in engine.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for volume in engine.volumes.list(filters=selector):
        volume.remove(force=True)
    engine.close()


def sh(backend: SandboxBackend, ref: SandboxRef, script: str) -> tuple[int, str, str]:
    result = backend.exec(ref, ["sh", "-c", script])
    return result.exit_code, result.stdout.strip(), result.stderr.strip()


def node_of(cluster: SwarmCluster, backend: SwarmBackend, ref: SandboxRef) -> Any:
    service = cluster.manager.client.services.get(ref.id)
    node_id = service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"][0].split("==")[1]
    return next(node for node in cluster.nodes if node.node_id == node_id)


def test_backend_satisfies_the_protocol_pings_and_is_chosen_by_settings(
        backend: SwarmBackend, cluster: SwarmCluster, tmp_path: Any) -> None:
    assert isinstance(backend, SandboxBackend)
    backend.ping()
    settings = load_settings(env={"TRIAL_HOME": str(tmp_path)}, cwd=tmp_path)
    settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={
        "backend": "swarm", "swarm_manager": cluster.manager.url, "swarm_nodes": cluster.node_urls()})})
    chosen = make_backend(settings)
    assert isinstance(chosen, SwarmBackend)
    chosen.ping()
    assert isinstance(make_backend(settings, "docker"), DockerBackend)


def test_sandbox_is_hardened_seen_from_inside_and_in_the_service(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str, instance: str) -> None:
    ref = backend.start(backend.create(sandbox_spec(trial_id, image)))
    assert ref.name == f"trial-{trial_id}-sandbox"
    assert backend.status(ref) == "running"
    assert sh(backend, ref, "id -u")[1] == "1000"
    status = dict(line.split(":\t", 1) for line in sh(backend, ref, "cat /proc/self/status")[1].splitlines()
                  if ":\t" in line)
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    # Not expressible for services on Engine 20.10 (module docstring): the bounding set is empty instead.
    assert status["NoNewPrivs"].strip() == "0"
    assert status["Seccomp"].strip() == "2"
    code, _, err = sh(backend, ref, "touch /etc/evil")
    assert code != 0
    assert "Read-only file system" in err
    assert sh(backend, ref, "touch /workspace/ok /tmp/ok /home/candidate/ok")[0] == 0
    assert sh(backend, ref, "test -e /var/run/docker.sock || test -e /run/docker.sock")[0] == 1
    assert sh(backend, ref, "cat /proc/1/comm")[1] == "docker-init"
    # Even root in the sandbox gets no capability back.
    assert backend.exec(ref, ["touch", "/etc/evil"], user="root").exit_code != 0

    node = node_of(cluster, backend, ref)
    container = node.client.containers.list(filters={"label": f"com.docker.swarm.service.id={ref.id}"})[0]
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 256 * MIB
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 500_000_000
    assert host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True
    assert host["Init"] is True
    assert not host.get("Binds")
    assert {m["Type"] for m in container.attrs["Mounts"]} == {"volume", "tmpfs"}
    assert not any("docker.sock" in str(m) for m in container.attrs["Mounts"])
    for labels in (container.labels, cluster.manager.client.services.get(ref.id).attrs["Spec"]["Labels"]):
        assert labels[LABEL_TRIAL] == trial_id
        assert labels[LABEL_MANAGED] == "trial"
        assert labels[LABEL_ROLE] == "sandbox"
        assert labels[LABEL_INSTANCE] == instance
    assert ref.volumes == {"/workspace": volume_name(trial_id, "workspace"),
                           "/home/candidate": volume_name(trial_id, "home")}
    for volume in ref.volumes.values():
        assert node.client.volumes.get(volume).attrs["Labels"] == {
            LABEL_TRIAL: trial_id, LABEL_MANAGED: "trial", LABEL_INSTANCE: instance}
    # tmpfs mounts are nosuid and nodev, as on one host.
    mounts = sh(backend, ref, "grep ' /tmp ' /proc/mounts")[1]
    assert "nosuid" in mounts and "nodev" in mounts


def test_exec_uses_env_workdir_user_and_enforces_its_timeout(
        any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    ref = any_backend.start(any_backend.create(sandbox_spec(trial_id, image)))
    result = any_backend.exec(ref, ["sh", "-c", 'echo "$TRIAL_GREETING $EXTRA $(pwd)"; echo oops >&2; exit 5'],
                          env={"EXTRA": "there"}, workdir="/home/candidate")
    assert (result.exit_code, result.stdout, result.stderr) == (5, "hello there /home/candidate\n", "oops\n")
    assert any_backend.exec(ref, ["pwd"]).stdout.strip() == "/workspace"
    assert any_backend.exec(ref, ["id", "-u"], user="root").stdout.strip() == "0"
    started = time.monotonic()
    slow = any_backend.exec(ref, ["sh", "-c", "echo started; sleep 30"], timeout_s=1)
    assert time.monotonic() - started < 10
    assert slow.exit_code == 124
    assert "timed out after 1 s" in slow.stderr


def test_copy_in_before_start_and_out_after_stop(any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    created = any_backend.create(sandbox_spec(trial_id, image))
    assert any_backend.status(created) == "created"
    any_backend.copy_in(created, "/home/candidate", tar_of({".trial/env.sh": b"export A=1\n"}))
    ref = any_backend.start(created)
    env_sh = "/home/candidate/.trial/env.sh"
    assert sh(any_backend, ref, f"stat -c %u {env_sh} && cat {env_sh}") == (0, "1000\nexport A=1", "")
    assert sh(any_backend, ref, "stat -c %U /home/candidate /home/candidate/.bashrc") == (0, "candidate\ncandidate", "")
    any_backend.copy_in(ref, "/workspace", tar_of({"notes/plan.md": b"# plan\n"}))
    assert untar(any_backend.copy_out(ref, "/workspace/notes")) == {"notes/plan.md": b"# plan\n"}
    assert sh(any_backend, ref, "echo written-while-running > /home/candidate/transcript.jsonl")[0] == 0
    any_backend.stop(ref, timeout_s=2)
    assert any_backend.status(ref) == "exited"
    with pytest.raises(SandboxError, match="not running"):
        any_backend.exec(ref, ["true"])
    assert untar(any_backend.copy_out(ref, "/home/candidate/transcript.jsonl")) == \
        {"transcript.jsonl": b"written-while-running\n"}
    any_backend.copy_in(ref, "/workspace", tar_of({"late.txt": b"in while stopped\n"}))
    again = any_backend.start(ref)
    assert sh(any_backend, again, "cat /workspace/late.txt /home/candidate/transcript.jsonl")[1] == \
        "in while stopped\nwritten-while-running"
    with pytest.raises(SandboxError, match="no-such-file does not exist"):
        any_backend.copy_out(again, "/home/candidate/no-such-file")


def test_volumes_survive_recreate_on_their_node_and_remove_cleans_everything(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image)
    first = backend.start(backend.create(spec))
    node = node_of(cluster, backend, first)
    assert sh(backend, first, "echo kept > /workspace/work.txt")[0] == 0
    backend.remove(first, volumes=False)
    assert backend.status(first) == "missing"
    assert backend.find(trial_id) is None
    second = backend.start(backend.create(spec))
    assert second.id != first.id
    assert node_of(cluster, backend, second) is node  # pinned where its volumes are
    assert sh(backend, second, "cat /workspace/work.txt")[1] == "kept"
    backend.remove(second)
    selector = {"label": f"{LABEL_TRIAL}={trial_id}"}
    assert cluster.manager.client.services.list(filters=selector) == []
    for each in cluster.nodes:
        assert each.client.containers.list(all=True, filters=selector) == []
        assert each.client.volumes.list(filters=selector) == []
    backend.remove(second)
    backend.stop(second)


def test_create_is_idempotent_and_starting_a_running_sandbox_is_a_no_op(
        any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image)
    first = any_backend.create(spec)
    assert any_backend.create(spec) == first
    assert any_backend.find(trial_id) == first
    assert any_backend.find(trial_id, "verifier") is None
    started = any_backend.start(first)
    assert any_backend.start(started).id == started.id
    assert [r.name for r in any_backend.list_managed() if r.trial_id == trial_id and r.kind == "container"] == \
        [first.name]


def test_a_sandbox_that_exits_at_once_fails_start_with_its_output(
        any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image, command=("sh", "-c", "echo boom-from-container >&2; exit 7"))
    ref = any_backend.create(spec)
    with pytest.raises(SandboxError) as caught:
        any_backend.start(ref)
    assert "code 7" in caught.value.message
    assert "boom-from-container" in caught.value.message
    assert any_backend.status(ref) in ("missing", "exited")  # Docker discards the container; Swarm scales to 0


def test_placement_spreads_by_free_memory_and_skips_a_drained_node(
        backend: SwarmBackend, cluster: SwarmCluster, image: str) -> None:
    trials = [f"t{uuid.uuid4().hex[:10]}" for _ in range(3)]
    manager = cluster.manager.client
    drained: Any = None
    try:
        first = node_of(cluster, backend, backend.create(sandbox_spec(trials[0], image, memory="512m")))
        second = node_of(cluster, backend, backend.create(sandbox_spec(trials[1], image, memory="256m")))
        assert second is not first  # the first sandbox's limit took memory from its node
        idle = next(node for node in cluster.nodes if node not in (first, second))
        drained = manager.nodes.get(idle.node_id)
        drained.update({**drained.attrs["Spec"], "Availability": "drain"})
        assert idle.node_id not in backend.free_memory()
        # Of the two active nodes, the one whose sandbox reserves less memory.
        third = node_of(cluster, backend, backend.create(sandbox_spec(trials[2], image, memory="256m")))
        assert third is second
    finally:
        if drained is not None:
            drained.reload()
            drained.update({**drained.attrs["Spec"], "Availability": "active"})
        for tid in trials:
            _cleanup(cluster, tid)


def test_sshd_port_is_published_on_the_node(backend: SwarmBackend, cluster: SwarmCluster, image: str,
                                            trial_id: str) -> None:
    spec = sandbox_spec(trial_id, image, publish_ssh=True, volumes={},
                        command=("python3", "-m", "http.server", "2222", "--bind", "0.0.0.0"))
    ref = backend.start(backend.create(spec))
    assert ref.ssh_port is not None
    address = backend.node_address(ref)
    assert address == node_of(cluster, backend, ref).address
    deadline = time.monotonic() + 30
    reply = b""
    while not reply.startswith(b"HTTP/") and time.monotonic() < deadline:
        try:
            with socket.create_connection((address, ref.ssh_port), timeout=3) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = conn.recv(64)
        except OSError:
            time.sleep(0.5)
    assert reply.startswith(b"HTTP/"), reply


def test_verifier_runs_beside_the_trial_volumes_with_no_network(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str) -> None:
    sandbox = backend.create(sandbox_spec(trial_id, image))
    home = node_of(cluster, backend, sandbox)
    verifier = backend.start(backend.create(sandbox_spec(trial_id, image, role="verifier", network_disabled=True)))
    assert home.client.containers.get(verifier.id).name == f"trial-{trial_id}-verifier"
    assert sh(backend, verifier, "ls /sys/class/net")[1].split() == ["lo"]
    status = dict(line.split(":\t", 1) for line in sh(backend, verifier, "cat /proc/self/status")[1].splitlines()
                  if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1"
    assert backend.find(trial_id, "verifier") is not None
    backend.remove(verifier, volumes=False)
    assert backend.status(verifier) == "missing"

    # A service template's run: the program and its tests on an internal network of the node, which
    # reach each other and nothing of the node (the attack: the candidate's program opens the node).
    network = f"trial-{trial_id}-net-run"
    backend.create_network(network, trial_id)
    node_port = _free_port()
    program = backend.start(backend.create(sandbox_spec(
        trial_id, image, role="service", volumes={}, internal_network=network,
        command=("python3", "-c", MARKER_SERVER, "0.0.0.0", "8080", "program"))))
    tests = backend.start(backend.create(sandbox_spec(
        trial_id, image, role="verifier", volumes={}, internal_network=network, name_suffix="run")))
    gateway = home.client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"]
    with marker_server((home.netns, "0.0.0.0", node_port, "node")):
        targets = [f"trial-{trial_id}-service:8080", f"{gateway}:{node_port}", f"{home.address}:{node_port}",
                   f"{cluster.gateway}:{node_port}"]
        deadline = time.monotonic() + 20
        while True:  # the program's listener may take a moment to come up
            seen = json.loads(backend.exec(tests, ["python3", "-c", PROBE, *targets], timeout_s=60).stdout)
            if seen[targets[0]] == "program" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert {t: r for t, r in seen.items() if not r.startswith("error:")} == {targets[0]: "program"}, seen
    for ref in (tests, program):
        backend.remove(ref, volumes=False)
    backend.remove_network(network)
    assert not [n for n in home.client.networks.list() if n.name == network]
    with pytest.raises(UsageError, match="network_disabled"):
        backend.create(sandbox_spec(f"t{uuid.uuid4().hex[:10]}", image, network_disabled=True))


def test_list_managed_finds_services_and_volumes_and_removes_them(
        any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    ref = any_backend.create(sandbox_spec(trial_id, image))
    mine = [r for r in any_backend.list_managed() if r.trial_id == trial_id]
    assert sorted((r.kind, r.name) for r in mine) == [
        ("container", ref.name),
        ("volume", volume_name(trial_id, "home")),
        ("volume", volume_name(trial_id, "workspace")),
    ]
    # Asked for some kinds, a backend lists exactly those of them (a verifier asks for containers only).
    for kinds in ({"container"}, {"volume"}, {"container", "volume"}, {"image", "network", "firewall"}):
        only = any_backend.list_managed(frozenset(kinds))  # type: ignore[arg-type]
        assert {r.kind for r in only} <= kinds
        assert sorted((r.kind, r.name, r.status) for r in only if r.trial_id == trial_id) == \
            sorted((r.kind, r.name, r.status) for r in mine if r.kind in kinds)
    for resource in sorted(mine, key=lambda r: r.kind != "container"):
        any_backend.remove_resource(resource)
    assert [r for r in any_backend.list_managed() if r.trial_id == trial_id] == []
    assert any_backend.volume_usage() == [] or all(u.trial_id != trial_id for u in any_backend.volume_usage())


def test_operations_on_a_missing_sandbox_raise_sandbox_errors(
        any_backend: SandboxBackend, image: str, trial_id: str) -> None:
    ref = any_backend.create(sandbox_spec(trial_id, image))
    with pytest.raises(SandboxError, match="not running"):
        any_backend.exec(ref, ["true"])
    any_backend.remove(ref)
    for operation in (lambda: any_backend.start(ref), lambda: any_backend.exec(ref, ["true"]),
                      lambda: any_backend.copy_out(ref, "/workspace")):
        with pytest.raises(SandboxError, match="does not exist"):
            operation()
    with pytest.raises(SandboxError, match="does not exist"):
        any_backend.create(sandbox_spec(trial_id, "trial-test-no-such-image:latest"))
    # The failed create took back the volumes it had made.
    assert [r for r in any_backend.list_managed() if r.trial_id == trial_id] == []


def test_the_real_sandbox_serves_ssh_on_its_node_and_has_no_setuid_program(
        backend: SwarmBackend, probe_image: str, trial_id: str) -> None:
    """What stands in for no-new-privileges on Swarm: the sandbox layer leaves no setuid or setgid
    file, and with an empty bounding set there is nothing one could gain."""
    spec = SandboxSpec(trial_id=trial_id, image=probe_image, publish_ssh=True, memory="256m", cpus=0.5, pids=64,
                       volumes={"workspace": WORKSPACE, "home": HOME, "sshd": SSHD_DIR})
    ref = backend.start(backend.create(spec))
    found = backend.exec(ref, ["find", "/", "-xdev", "-perm", "/6000", "-type", "f"], timeout_s=60)
    assert found.stdout.strip() == "", found.stdout
    assert backend.exec(ref, ["su", "-c", "id"], timeout_s=10).exit_code != 0
    address = backend.node_address(ref)
    assert address is not None and ref.ssh_port is not None
    deadline = time.monotonic() + 30
    banner = b""
    while not banner.startswith(b"SSH-2.0-") and time.monotonic() < deadline:
        try:
            with socket.create_connection((address, ref.ssh_port), timeout=3) as conn:
                banner = conn.recv(64)
        except OSError:
            time.sleep(0.5)
    assert banner.startswith(b"SSH-2.0-OpenSSH"), banner


def test_start_returns_once_sshd_answers_on_the_node_not_after_the_settle_window(
        cluster: SwarmCluster, instance: str, probe_image: str, trial_id: str) -> None:
    """The Docker backend's readiness read from /proc means nothing for a remote node's container:
    there, sshd's banner at the address candidates get is what shows the start got through."""
    # A settle window far longer than any start: returning before it shows the banner was seen.
    backend = SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                           instance=instance, start_settle_s=120)
    spec = SandboxSpec(trial_id=trial_id, image=probe_image, publish_ssh=True, memory="256m", cpus=0.5, pids=64,
                       volumes={"workspace": WORKSPACE, "home": HOME, "sshd": SSHD_DIR})
    created = backend.create(spec)
    started_at = time.monotonic()
    ref = backend.start(created)
    assert time.monotonic() - started_at < 60
    address = backend.node_address(ref)
    assert address is not None and ref.ssh_port is not None
    with socket.create_connection((address, ref.ssh_port), timeout=3) as conn:
        assert conn.recv(64).startswith(b"SSH-2.0-OpenSSH")


def test_the_sandbox_network_carries_no_nat_and_no_icc_on_its_node(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str) -> None:
    """A swarm-scoped bridge drops the options it is created with; they come from a config-only
    network on each node. (Enforcing them takes the node engine's iptables, which the test nodes
    run without, so this checks the configuration the node's engine applies, not packets.)"""
    ref = backend.start(backend.create(sandbox_spec(trial_id, image, volumes={})))
    node = node_of(cluster, backend, ref)
    container = node.client.containers.list(filters={"label": f"com.docker.swarm.service.id={ref.id}"})[0]
    (network,) = container.attrs["NetworkSettings"]["Networks"]
    local = node.client.networks.get(network).attrs
    config = node.client.networks.get(local["ConfigFrom"]["Network"]).attrs
    assert config["Options"] == {"com.docker.network.bridge.enable_ip_masquerade": "false",
                                 "com.docker.network.bridge.enable_icc": "false"}
    listed = [r for r in backend.list_managed() if r.kind == "network" and r.name == network]
    assert [(r.status, r.instance) for r in listed] == [("in use", backend.instance)]


def test_sandboxes_on_one_node_cannot_reach_each_other(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str) -> None:
    """The attack: a candidate's sandbox opens a port of another candidate's sandbox on the same node."""
    other_trial = f"t{uuid.uuid4().hex[:10]}"
    server = backend.start(backend.create(sandbox_spec(
        trial_id, image, volumes={}, command=("python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"))))
    home = node_of(cluster, backend, server)
    manager = cluster.manager.client
    drained = [manager.nodes.get(node.node_id) for node in cluster.nodes if node is not home]
    try:
        for node in drained:
            node.update({**node.attrs["Spec"], "Availability": "drain"})
        client = backend.start(backend.create(sandbox_spec(other_trial, image, volumes={})))
        assert node_of(cluster, backend, client) is home
    finally:
        for node in drained:
            node.reload()
            node.update({**node.attrs["Spec"], "Availability": "active"})
    try:
        container = home.client.containers.list(filters={"label": f"com.docker.swarm.service.id={server.id}"})[0]
        address = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        probe = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=3); print('reached')"
        deadline = time.monotonic() + 30
        here = backend.exec(server, ["python3", "-c", probe, "http://127.0.0.1:8080/"], timeout_s=20)
        while here.stdout.strip() != "reached" and time.monotonic() < deadline:
            time.sleep(0.5)
            here = backend.exec(server, ["python3", "-c", probe, "http://127.0.0.1:8080/"], timeout_s=20)
        assert here.stdout.strip() == "reached", here.stderr
        there = backend.exec(client, ["python3", "-c", probe, f"http://{address}:8080/"], timeout_s=20)
        assert there.exit_code != 0 and "reached" not in there.stdout
    finally:
        _cleanup(cluster, other_trial)


def test_a_sandbox_stops_and_starts_again_many_times(backend: SwarmBackend, image: str, trial_id: str) -> None:
    """A stopped task lingering in its slot once kept every later start pending (one restart in three)."""
    ref = backend.create(sandbox_spec(trial_id, image))
    for round_ in range(4):
        ref = backend.start(ref)
        assert sh(backend, ref, f"echo {round_} >> /workspace/rounds && wc -l < /workspace/rounds")[1] == \
            str(round_ + 1)
        backend.stop(ref, timeout_s=2)
        assert backend.status(ref) == "exited"


# ---- host-only egress through the door ----------------------------------------------------------

MARKER_SERVER = """\
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(sys.argv[3].encode())
    conn.close()
"""
PROBE = """\
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def reach(target):
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as conn:
            conn.settimeout(3)
            return conn.recv(100).decode(errors="replace") or "(connected, nothing said)"
    except OSError as exc:
        return f"error: {type(exc).__name__}"

with ThreadPoolExecutor(len(sys.argv) - 1) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(reach, sys.argv[1:])))))
"""


@contextmanager
def marker_server(*listeners: tuple[str | None, str, int, str]) -> Iterator[None]:
    """Listeners (netns, address, port, marker) that say their marker to whoever connects, each in a
    namespace the test made (or the host's); all started at once, each listening before this yields."""
    processes = []
    try:
        for netns, address, port, marker in listeners:
            prefix = ["nsenter", f"--net=/var/run/netns/{netns}"] if netns else []
            processes.append(subprocess.Popen(
                [*prefix, sys.executable, "-S", "-c", MARKER_SERVER, address, str(port), marker],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        for process, (_netns, _address, _port, marker) in zip(processes, listeners, strict=True):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "listening":  # ends at once if it exits
                raise RuntimeError(f"the {marker} listener did not start")
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def _reach(netns: str | None, address: str, port: int) -> str:
    """What answers at address:port seen from the host (or a test namespace)."""
    if netns is None:
        try:
            with socket.create_connection((address, port), timeout=3) as conn:
                conn.settimeout(3)
                return conn.recv(100).decode(errors="replace")
        except OSError as exc:
            return f"error: {type(exc).__name__}"
    prefix = ["nsenter", f"--net=/var/run/netns/{netns}"]
    done = subprocess.run([*prefix, sys.executable, "-S", "-c", PROBE, f"{address}:{port}"], capture_output=True,
                          text=True, timeout=20, check=False)
    return str(json.loads(done.stdout or "{}").get(f"{address}:{port}", done.stderr))


@contextmanager
def placed_on(cluster: SwarmCluster, target: Any) -> Iterator[None]:
    """New sandboxes go to `target`: every other node is paused (running tasks stay; nothing new lands)."""
    manager = cluster.manager.client
    paused = [manager.nodes.get(node.node_id) for node in cluster.nodes if node is not target]
    try:
        for node in paused:
            node.update({**node.attrs["Spec"], "Availability": "pause"})
        yield
    finally:
        for node in paused:
            node.reload()
            node.update({**node.attrs["Spec"], "Availability": "active"})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_host_only_sandbox_on_a_worker_reaches_the_host_service_through_its_door_and_nothing_else(
        cluster: SwarmCluster, instance: str, image: str, trial_id: str) -> None:
    """The attack: from a sandbox on a worker node, open anything but the host service: the host's
    other ports, the host service directly, the node's own addresses, another candidate's sandbox
    and its door, an address beyond the cluster. Only the door's relay to the service answers."""
    service_port, other_port, node_port, outside_port = (_free_port() for _ in range(4))
    backend = SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                           instance=instance, service_host=cluster.gateway)
    worker = cluster.nodes[1]
    other_trial = f"t{uuid.uuid4().hex[:10]}"
    listener = ("python3", "-c", MARKER_SERVER, "0.0.0.0")
    with contextlib.ExitStack() as stack:
        stack.callback(_cleanup, cluster, other_trial)
        stack.enter_context(marker_server(
            (None, cluster.gateway, service_port, "host-service"),
            (None, cluster.gateway, other_port, "host-other-port"),
            (worker.netns, "0.0.0.0", node_port, "node"),
            (cluster.outside_netns, cluster.outside_address, outside_port, "outside")))
        with placed_on(cluster, worker):
            created = [backend.create(sandbox_spec(
                trial_id, image, network="trial-sandbox-x", host_ports=(service_port,), publish_ssh=True,
                ssh_bind="0.0.0.0", command=(*listener, "2222", "sandbox-sshd"))), backend.create(sandbox_spec(
                    other_trial, image, volumes={}, network="trial-sandbox-x", host_ports=(service_port,),
                    command=(*listener, "8080", "other-sandbox")))]
        with ThreadPoolExecutor(2) as pool:  # each start mostly waits on its node
            ref, other = pool.map(backend.start, created)
        assert node_of(cluster, backend, ref) is worker and node_of(cluster, backend, other) is worker
        assert backend.node_address(ref) == worker.address

        # The candidate's way in: the node's published port, relayed by the door to the sandbox's sshd.
        assert ref.ssh_port is not None
        assert _reach(None, worker.address, ref.ssh_port) == "sandbox-sshd"
        # Every listener answers where it is reachable at all, so a refusal below means something.
        assert _reach(None, cluster.gateway, other_port) == "host-other-port"
        assert _reach(cluster.outside_netns, worker.address, node_port) == "node"

        containers = {name: worker.client.containers.get(name) for name in (
            f"trial-{trial_id}-sandbox-door", f"trial-{other_trial}-sandbox-door")}
        other_task = worker.client.containers.list(filters={"label": f"com.docker.swarm.service.id={other.id}"})[0]
        other_ip = other_task.attrs["NetworkSettings"]["Networks"][f"trial-{other_trial}-net"]["IPAddress"]
        other_door = containers[f"trial-{other_trial}-sandbox-door"].attrs["NetworkSettings"]["Networks"]
        door_gateway = other_door[f"trial-door-{instance[:12]}"]["Gateway"]
        gwbridge = worker.client.networks.get("docker_gwbridge").attrs["IPAM"]["Config"][0]["Gateway"]
        assert backend.exec(other, ["python3", "-c", PROBE, "127.0.0.1:8080"]).stdout.count("other-sandbox") == 1
        targets = {
            f"host.docker.internal:{service_port}": "host-service",
            f"{cluster.gateway}:{service_port}": None, f"{cluster.gateway}:{other_port}": None,
            f"host.docker.internal:{other_port}": None, f"host.docker.internal:{node_port}": None,
            f"{worker.address}:{node_port}": None, f"{gwbridge}:{node_port}": None,
            f"{door_gateway}:{node_port}": None, f"{cluster.nodes[0].address}:{node_port}": None,
            f"{cluster.outside_address}:{outside_port}": None,
            f"{other_ip}:8080": None,
            f"{other_door[f'trial-{other_trial}-net']['IPAddress']}:2222": None,
            f"{other_door[f'trial-door-{instance[:12]}']['IPAddress']}:2222": None,
        }
        seen = json.loads(backend.exec(ref, ["python3", "-c", PROBE, *targets], timeout_s=120).stdout)
        answered = {target: reply for target, reply in seen.items() if not reply.startswith("error:")}
        assert answered == {f"host.docker.internal:{service_port}": "host-service"}, seen

        # The door: the sandbox's hardening, and smaller; and it goes with the trial.
        host = containers[f"trial-{trial_id}-sandbox-door"].attrs["HostConfig"]
        assert (host["CapDrop"], host["ReadonlyRootfs"], host["SecurityOpt"]) == (["ALL"], True, ["no-new-privileges"])
        assert containers[f"trial-{trial_id}-sandbox-door"].attrs["Config"]["User"] == "65534:65534"
        assert host["Memory"] == 64 * MIB and host["PidsLimit"] == 32
        mine = [r for r in backend.list_managed() if r.trial_id == trial_id]
        assert sorted((r.kind, r.name) for r in mine if r.kind != "volume") == [
            ("container", f"trial-{trial_id}-sandbox"), ("container", f"trial-{trial_id}-sandbox-door"),
            ("network", f"trial-{trial_id}-net")]
        # What `trial gc` does for an unknown trial: containers and volumes, then its unused networks.
        for resource in sorted(mine, key=lambda r: r.kind != "container"):
            if resource.kind != "network":
                backend.remove_resource(resource)
        for resource in backend.list_managed():
            if resource.trial_id == trial_id and resource.status == "unused":
                backend.remove_resource(resource)
        assert [r for r in backend.list_managed() if r.trial_id == trial_id] == []
        assert not worker.client.containers.list(all=True, filters={"name": f"trial-{trial_id}-sandbox-door"})
        assert not [n for n in cluster.manager.client.networks.list() if n.name == f"trial-{trial_id}-net"]
        # The last door gone from every node, its bridge is unused and gc takes it too.
        backend.remove(other)
        doors = [r for r in backend.list_managed() if r.name == f"trial-door-{instance[:12]}"]
        assert [r.status for r in doors] == ["unused"]
        backend.remove_resource(doors[0])
        assert not [n for n in worker.client.networks.list() if n.name == f"trial-door-{instance[:12]}"]


# ---- a whole trial on a worker node --------------------------------------------------------------


def trial_cli(cwd: Path, env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    # The envelope is the output's last JSON object; a warning logged on the way may precede it.
    start = done.stdout.find("{\n") if not done.stdout.startswith("{") else 0
    envelope = json.loads(done.stdout[start:]) if start >= 0 else {}
    assert envelope.get("ok"), (f"trial {' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}"
                                f" | stdout: {done.stdout[-3000:]}")
    return envelope["data"]


def test_a_whole_trial_runs_on_a_worker_node(cluster: SwarmCluster, probe: tuple[str, str, Path],
                                             trial_home: Path, tmp_path: Path) -> None:
    """launch (placed on a worker) → the candidate pushes from the sandbox through its door and the
    host service → collect → grade → teardown, through the real CLI with `sandbox.backend = "swarm"`."""
    worker = cluster.nodes[2]
    port = _free_port()
    foreign_trial = f"t{uuid.uuid4().hex[:10]}"
    nodes = "".join(f'"{node_id}" = "{url}"\n' for node_id, url in cluster.node_urls().items())
    (tmp_path / "trial.toml").write_text(
        f'[service]\nport = {port}\nbind = ["127.0.0.1", "{cluster.gateway}"]\n'
        f'[sandbox]\nbackend = "swarm"\nswarm_manager = "{cluster.manager.url}"\n'
        f'swarm_service_host = "{cluster.gateway}"\nmemory = "512m"\n[sandbox.swarm_nodes]\n{nodes}')
    env = {**os.environ, "TRIAL_TEMPLATES_DIR": str(probe[2]),
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("TRIAL_SERVICE_PORT", None)
    try:
        with placed_on(cluster, worker):
            launched = trial_cli(tmp_path, env, "launch", "probe", "--candidate", "octo-cat", "--agent", "none",
                                 "--hours", "1")
        trial_id = launched["trial"]["id"]
        assert launched["trial"]["state"] == "active"
        assert launched["ssh_command"].endswith(f"candidate@{worker.address}"), launched["ssh_command"]
        assert f"HostName {worker.address}" in launched["ssh_config"]
        [service] = cluster.manager.client.services.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"})
        assert service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={worker.node_id}"]
        status = trial_cli(tmp_path, env, "status", trial_id)
        assert status["sandbox"] == f"trial-{trial_id}-sandbox (running) on {worker.address}"
        assert status["ssh"] == launched["ssh_command"]
        ssh_port = int(launched["ssh_command"].split()[2])
        assert _banner(worker.address, ssh_port).startswith(b"SSH-2.0-OpenSSH"), "sshd not reached through the door"

        pushed = trial_cli(tmp_path, env, "candidate-push", trial_id, "--branch", "feature/on-a-worker",
                           "--message", "Work done on a worker node")
        assert pushed["branch"] == "feature/on-a-worker"

        # Drain the worker with the trial live on it: the sandbox moves with its volumes and runs on.
        # Another data dir's sandbox on the same worker: trial moves its own, and does not drain the
        # node from under the other's (that would stop it).
        foreign = SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                               instance="another-data-dir")
        with placed_on(cluster, worker):
            stranger = foreign.create(sandbox_spec(foreign_trial, probe[0], volumes={}, command=("sleep", "infinity")))
        listed = {node["id"]: node for node in trial_cli(tmp_path, env, "nodes", "ls")}
        assert (listed[worker.node_id]["trials"], listed[worker.node_id]["other_sandboxes"]) == ([trial_id], 1)
        drained = trial_cli(tmp_path, env, "nodes", "drain", worker.address)
        [move] = drained["moves"]
        assert drained["ok"] and move["ok"] and move["source"] == worker.node_id, drained
        assert drained["node"]["availability"] == "pause" and "another trial data dir" in drained["note"]
        foreign.remove(stranger)
        again = trial_cli(tmp_path, env, "nodes", "drain", worker.node_id[:8])
        assert (again["moves"], again["node"]["availability"], again["note"]) == ([], "drain", "")
        new_home = next(node for node in cluster.nodes if node.node_id == move["target"])
        status = trial_cli(tmp_path, env, "status", trial_id)
        assert status["sandbox"] == f"trial-{trial_id}-sandbox (running) on {new_home.address}"
        assert status["ssh"] == move["ssh"] and status["ssh"].endswith(f"candidate@{new_home.address}")
        assert _banner(new_home.address, int(status["ssh"].split()[2])).startswith(b"SSH-2.0-OpenSSH")
        assert worker.client.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
        assert worker.client.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
        backend = SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls())
        ref = backend.find(trial_id)
        assert ref is not None
        moved = backend.exec(ref, ["sh", "-c", "git -C /workspace log -1 --format=%s feature/on-a-worker; "
                                   "stat -c '%u %a' /home/candidate/.trial/env.sh /etc/trial-ssh"])
        assert moved.stdout.split("\n")[:3] == ["Work done on a worker node", "1000 600", "0 755"], moved
        # Its new door relays to the host service as the old one did.
        health = backend.exec(ref, ["python3", "-c", "import urllib.request, sys; print(urllib.request.urlopen("
                                    "sys.argv[1], timeout=10).status)", f"http://host.docker.internal:{port}/healthz"])
        assert health.stdout.strip() == "200", health
        collected = trial_cli(tmp_path, env, "collect", trial_id)
        assert collected["trial"]["state"] == "collected" and collected["problems"] == []
        bundle = Path(collected["bundle"])
        commits = [json.loads(line) for line in (bundle / "commits.jsonl").read_text().splitlines()]
        assert commits[-1]["author_name"] == "octo-cat"
        assert commits[-1]["message"].startswith("Work done on a worker node")
        graded = trial_cli(tmp_path, env, "grade", trial_id)
        [hidden] = [r for r in graded["report"]["graders"] if r["grader"] == "hidden_tests"]
        assert hidden["status"] == "ok", hidden

        trial_cli(tmp_path, env, "teardown", trial_id, "--delete-repo", "--yes")
        selector = {"label": f"{LABEL_TRIAL}={trial_id}"}
        assert cluster.manager.client.services.list(filters=selector) == []
        assert cluster.manager.client.networks.list(filters=selector) == []
        for node in cluster.nodes:
            assert node.client.containers.list(all=True, filters=selector) == []
            assert node.client.volumes.list(filters=selector) == []
    finally:
        node = cluster.manager.client.nodes.get(worker.node_id)
        node.update({**node.attrs["Spec"], "Availability": "active"})
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=60, check=False)
        _cleanup(cluster, foreign_trial)
        for row in json.loads(subprocess.run(
                [sys.executable, "-m", "orchestrator.cli.main", "ls", "--json"], cwd=tmp_path, env=env,
                capture_output=True, text=True, timeout=60, check=False).stdout or "{}").get("data") or []:
            _cleanup(cluster, str(row.get("id", "")))


def _banner(address: str, port: int) -> bytes:
    deadline = time.monotonic() + 30
    banner = b""
    while not banner.startswith(b"SSH-2.0-") and time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=3) as conn:
                banner = conn.recv(64)
        except OSError:
            time.sleep(0.5)
    return banner


def test_a_move_that_fails_midway_leaves_the_sandbox_where_it_was(
        backend: SwarmBackend, cluster: SwarmCluster, image: str, trial_id: str) -> None:
    ref = backend.start(backend.create(sandbox_spec(trial_id, image)))
    home = node_of(cluster, backend, ref)
    assert sh(backend, ref, "echo kept > /workspace/work.txt")[0] == 0
    target = next(node for node in cluster.nodes if node is not home)
    # Something on the target already holds the files container's name: the move fails after the copy.
    target.client.containers.create(image, name=f"{ref.name}-files", command=["true"])
    with pytest.raises(SandboxError, match=f"stays on node {home.node_id} and runs again"):
        backend.move(ref, target.node_id)
    assert node_of(cluster, backend, ref) is home
    again = backend.find(trial_id)
    assert again is not None and backend.status(again) == "running" and again.host == home.address
    assert sh(backend, again, "cat /workspace/work.txt")[1] == "kept"
    assert target.client.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []
    # And the same move, with the way clear, goes through.
    moved = backend.move(again, target.node_id)
    assert node_of(cluster, backend, moved) is target and moved.host == target.address
    assert sh(backend, moved, "cat /workspace/work.txt && stat -c %u /workspace/work.txt")[1] == "kept\n1000"
    assert home.client.volumes.list(filters={"label": f"{LABEL_TRIAL}={trial_id}"}) == []


def test_launch_on_the_swarm_without_the_service_address_refuses_up_front(
        cluster: SwarmCluster, probe: tuple[str, str, Path], tmp_path: Path) -> None:
    nodes = "".join(f'"{node_id}" = "{url}"\n' for node_id, url in cluster.node_urls().items())
    (tmp_path / "trial.toml").write_text(f'[sandbox]\nbackend = "swarm"\nswarm_manager = "{cluster.manager.url}"\n'
                                         f"[sandbox.swarm_nodes]\n{nodes}")
    env = {**os.environ, "TRIAL_TEMPLATES_DIR": str(probe[2])}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "launch", "probe", "--candidate",
                           "octo-cat", "--agent", "none"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 3
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert "needs sandbox.swarm_service_host" in line
    assert trial_cli(tmp_path, env, "ls") == []


def test_a_door_that_does_not_open_fails_the_start_with_its_output(
        cluster: SwarmCluster, instance: str, image: str, trial_id: str) -> None:
    backend = SwarmBackend(SandboxSettings(), manager_url=cluster.manager.url, node_urls=cluster.node_urls(),
                           instance=instance, service_host=cluster.gateway)
    ref = backend.create(sandbox_spec(trial_id, image, volumes={}, network="trial-sandbox-x", host_ports=(70000,)))
    with pytest.raises(SandboxError, match=r"the door of .* did not open \(exited\): .*OverflowError"):
        backend.start(ref)
    assert backend.status(ref) == "created"
