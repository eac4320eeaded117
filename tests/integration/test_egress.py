"""Host-only egress, seen from inside a real sandbox on a real network.

The sandbox is brought up by the Docker backend exactly as a launch does (a host-only network
with the host service's port as its one door), so the packet filter under test is the real one.
Everything the sandbox tries to reach is made here: listeners on this host, other sandboxes,
and an "outside" address in a network namespace of our own behind a veth, routed back to us.
A sandbox on the default (open) bridge reaches all of them: the control that proves each target
is reachable at all, so "blocked" means the rules blocked it.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.config import SandboxSettings
from orchestrator.sandbox import egress
from orchestrator.sandbox.base import HOME, LABEL_TRIAL, WORKSPACE, SandboxRef, SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from tests.conftest import free_port
from tests.integration.sandbox_image import build_probe_image

pytestmark = pytest.mark.docker

# Prints "<target> open|blocked" per host:port; every connect and read is bounded by 2 s.
PROBE = r"""
import socket, sys
from concurrent.futures import ThreadPoolExecutor
def reach(target):
    host, port = target.rsplit(":", 1)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect((host.strip("[]"), int(port)))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = s.recv(64)
        return f"{target} {'open' if data else 'closed'}"
    except OSError as exc:
        return f"{target} blocked {type(exc).__name__}"
# All at once: a dropped connection waits out its 2 s timeout, and most targets are dropped.
with ThreadPoolExecutor(max_workers=16) as pool:
    print("\n".join(pool.map(reach, sys.argv[1:])))
"""


def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: the egress tests need root (iptables, network namespaces)", pytrace=False)
        pytest.skip("egress tests need root (iptables and network namespaces)")


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"here"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


class _Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the probe hangs up after the first bytes


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_probe_image(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("templates"))[0]


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, int]]:
    """The host service's stand-in and another service on this host, both on every address."""
    servers = {name: _Quiet(("0.0.0.0", free_port()), _Answer)
               for name in ("service", "other")}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {name: server.server_address[1] for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


# Records the query names that reach it (a DNS server that never answers).
DNS_CATCHER = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 53))
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        data, _ = sock.recvfrom(4096)
        out.write(data[12:] + b"\n")
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A network namespace of ours behind a veth, routed back through this host (as a LAN host or
    a router would be), with a web server (`http`: host:port) and a DNS server that logs the names
    it is asked (`ip`, `dns_log`): an address beyond the host that is not the internet."""
    needs_root()
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    for _ in range(50):
        net = ipaddress.ip_network(f"198.18.{random.randrange(256)}.0/30")
        if str(net.network_address)[:-1] not in used:
            break
    host_side, far_side = (str(a) for a in net.hosts())
    tag = uuid.uuid4().hex[:6]
    ns, veth, peer = f"trial-test-{tag}", f"tto{tag}", f"ttp{tag}"
    port = 8080
    run = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", veth, "type", "veth", "peer", "name", peer],
        ["ip", "link", "set", peer, "netns", ns],
        ["ip", "addr", "add", f"{host_side}/30", "dev", veth],
        ["ip", "link", "set", veth, "up"],
        ["ip", "-n", ns, "addr", "add", f"{far_side}/30", "dev", peer],
        ["ip", "-n", ns, "link", "set", peer, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "route", "add", "default", "via", host_side],
    ]
    dns_log = tmp_path_factory.mktemp("dns") / "queries"
    dns_log.touch()
    server = catcher = None
    try:
        for argv in run:
            subprocess.run(argv, check=True, capture_output=True)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", str(port),
                                   "--bind", far_side], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        catcher = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", DNS_CATCHER, far_side,
                                    str(dns_log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection((far_side, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield {"http": f"{far_side}:{port}", "ip": far_side, "dns_log": str(dns_log)}
    finally:
        for process in (server, catcher):
            if process is not None:
                process.kill()
                process.wait(timeout=10)
        subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def world(engine: Any, image: str, listeners: dict[str, int]) -> Iterator[dict[str, Any]]:
    """A host-only sandbox (with a published sshd), another trial's sandbox on the same network,
    and a third on the default bridge, all serving HTTP on 8080 except the first."""
    needs_root()
    backend = DockerBackend(SandboxSettings())
    nonce = uuid.uuid4().hex[:8]
    network = f"trial-test-egress-{nonce}"
    serve = ("python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/tmp")
    specs = {
        "sandbox": SandboxSpec(trial_id=f"eg{nonce}a", image=image, network=network,
                               host_ports=(listeners["service"],), publish_ssh=True, ssh_bind="127.0.0.1",
                               volumes={"home": HOME, "workspace": WORKSPACE}),
        "neighbour": SandboxSpec(trial_id=f"eg{nonce}b", image=image, network=network,
                                 host_ports=(listeners["service"],), command=serve),
        "open": SandboxSpec(trial_id=f"eg{nonce}c", image=image, command=serve),
    }
    refs: dict[str, SandboxRef] = {}
    try:
        for name, spec in specs.items():
            refs[name] = backend.start(backend.create(spec))
        yield {"backend": backend, "network": network, "refs": refs}
    finally:
        for spec in specs.values():
            for container in engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={spec.trial_id}"}):
                container.remove(force=True)
            for volume in engine.volumes.list(filters={"label": f"{LABEL_TRIAL}={spec.trial_id}"}):
                volume.remove(force=True)
        for resource in backend.list_managed():
            if resource.kind == "network" and resource.name == network:
                backend.remove_resource(resource)


def address(engine: Any, ref: SandboxRef) -> str:
    networks = engine.containers.get(ref.id).attrs["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["IPAddress"])


def probe(backend: DockerBackend, ref: SandboxRef, targets: list[str]) -> dict[str, str]:
    done = backend.exec(ref, ["python3", "-c", PROBE, *targets], timeout_s=10 + 3 * len(targets))
    assert done.ok, done.stderr
    return {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}


def host_addresses() -> list[str]:
    """This host's own IPv4 addresses (traffic to them never leaves the machine)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if not line.split()[3].startswith("127.")]


def test_the_host_service_is_the_only_door(engine: Any, world: dict[str, Any], listeners: dict[str, int],
                                           outside: dict[str, str]) -> None:
    backend: DockerBackend = world["backend"]
    refs: dict[str, SandboxRef] = world["refs"]
    gateway = engine.networks.get(world["network"]).attrs["IPAM"]["Config"][0]["Gateway"]
    service, other = listeners["service"], listeners["other"]
    others_on_host = [f"{host}:{other}" for host in ["host.docker.internal", gateway, *host_addresses()]]
    neighbours = [f"{address(engine, refs['neighbour'])}:8080", f"{address(engine, refs['open'])}:8080"]
    targets = [f"host.docker.internal:{service}", *others_on_host, *neighbours, outside["http"]]

    # The controls, so that "blocked" below means the filter blocked it: an open sandbox reaches
    # the host's other port and the outside address; this host reaches both neighbours.
    seen_open = probe(backend, refs["open"], [*others_on_host, outside["http"]])
    assert set(seen_open.values()) == {"open"}, seen_open
    for neighbour in neighbours:
        host, port = neighbour.split(":")
        for _ in range(50):  # the servers may need a moment to bind
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the neighbour at {neighbour} does not answer even this host")

    seen = probe(backend, refs["sandbox"], targets)
    assert seen.pop(f"host.docker.internal:{service}") == "open"
    assert seen == dict.fromkeys(seen, "blocked"), seen
    # No IPv6 either: the filter is IPv4, so the sandbox must have no IPv6 to go around it.
    assert backend.exec(refs["sandbox"], ["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]).stdout.strip() == "1"


def test_dns_is_no_way_out(engine: Any, world: dict[str, Any], outside: dict[str, str], image: str) -> None:
    """Docker's embedded DNS forwards a name it does not know to the upstream server from inside
    the container's network namespace, so the filter must stop that query too (DNS tunnels)."""
    nonce = uuid.uuid4().hex[:10]
    found: dict[str, bool] = {}
    for where, network in (("host-only", world["network"]), ("open", "bridge")):
        qname = f"q{nonce}{where.replace('-', '')}.trial-test"
        # The upstream is our namespace's catcher instead of the host's resolvers (never asked).
        # One try of one second: the embedded resolver forwards the query as it receives it, so waiting
        # out the stub resolver's default retries (5 s x 2, every run) only delayed the verdict.
        container = engine.containers.run(image, ["sleep", "infinity"], detach=True, network=network,
                                          dns=[outside["ip"]], dns_opt=["timeout:1", "attempts:1"],
                                          labels={LABEL_TRIAL: f"dns{nonce}"}, name=f"trial-test-dns-{nonce}-{where}")
        try:
            container.exec_run(["timeout", "10", "python3", "-c",
                                f"import socket\ntry:\n socket.getaddrinfo('{qname}', 80)\nexcept OSError:\n pass"])
            heard = time.monotonic() + 3
            while not (found.get(where) or time.monotonic() > heard):
                found[where] = qname.split(".", maxsplit=1)[0].encode() in Path(outside["dns_log"]).read_bytes()
                time.sleep(0.1)
        finally:
            container.remove(force=True)
    assert found == {"host-only": False, "open": True}  # the open one proves the catcher hears


def test_published_sshd_still_answers_and_rules_are_idempotent_and_survive_a_flush(
        engine: Any, world: dict[str, Any], listeners: dict[str, int]) -> None:
    backend: DockerBackend = world["backend"]
    ref: SandboxRef = world["refs"]["sandbox"]
    assert ref.ssh_port
    bridge = f"br-{engine.networks.get(world['network']).id[:12]}"

    def banner() -> bytes:
        for _ in range(50):  # sshd writes its host key on first start
            try:
                with socket.create_connection(("127.0.0.1", ref.ssh_port), timeout=2) as sock:
                    sock.settimeout(2)
                    data = sock.recv(16)
                    if data:
                        return data
            except OSError:
                pass
            time.sleep(0.2)
        return b""

    assert banner().startswith(b"SSH-2.0-")  # inbound DNAT and its replies pass the filter
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert rules.count(f"-j {egress.in_chain(bridge)}") == 1
    assert rules.count(f"-j {egress.fwd_chain(bridge)}") == 1
    assert f"-A {egress.in_chain(bridge)} -p tcp -m tcp --dport {listeners['service']} -j ACCEPT" in rules

    # A host reboot (or an operator's flush) loses the rules: the next start writes them again.
    firewall = egress.host_firewall()
    assert isinstance(firewall, egress.HostFirewall)
    firewall.remove(bridge)
    backend.stop(ref, timeout_s=2)
    ref = backend.start(ref)
    again = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert again.count(f"-j {egress.in_chain(bridge)}") == 1
    seen = probe(backend, ref, [f"host.docker.internal:{listeners['other']}",
                                f"host.docker.internal:{listeners['service']}"])
    assert seen == {f"host.docker.internal:{listeners['other']}": "blocked",
                    f"host.docker.internal:{listeners['service']}": "open"}


def test_gc_removes_the_network_and_its_rules_once_no_sandbox_uses_it(
        engine: Any, world: dict[str, Any]) -> None:
    backend: DockerBackend = world["backend"]
    network = engine.networks.get(world["network"])
    bridge = f"br-{network.id[:12]}"
    mine = [r for r in backend.list_managed() if r.kind == "network" and r.name == world["network"]]
    assert [r.status for r in mine] == ["in use"]
    # A stopped sandbox (collected, or the host rebooted) still needs it to start again.
    for ref in world["refs"].values():
        backend.stop(ref, timeout_s=2)
    mine = [r for r in backend.list_managed() if r.kind == "network" and r.name == world["network"]]
    assert [r.status for r in mine] == ["in use"]
    backend.remove_resource(mine[0])
    assert engine.networks.get(world["network"]).id == network.id  # kept
    for ref in world["refs"].values():
        backend.remove(ref)
    mine = [r for r in backend.list_managed() if r.kind == "network" and r.name == world["network"]]
    assert [r.status for r in mine] == ["unused"]
    backend.remove_resource(mine[0])
    with pytest.raises(docker.errors.NotFound):
        engine.networks.get(world["network"])
    assert f"TRIAL-IN-{bridge}" not in subprocess.run(["iptables", "-S"], capture_output=True, text=True,
                                                      check=True).stdout


def test_rules_left_behind_by_a_network_removed_elsewhere_are_listed_for_gc() -> None:
    needs_root()
    firewall = egress.host_firewall()
    assert isinstance(firewall, egress.HostFirewall)
    bridge = f"br-gone{uuid.uuid4().hex[:6]}"
    firewall.ensure(bridge, [7717], "trial-test-gone")
    try:
        backend = DockerBackend(SandboxSettings())
        orphans = [r for r in backend.list_managed() if r.kind == "firewall" and r.id == bridge]
        assert [(r.status, r.trial_id) for r in orphans] == [("unused", None)]
        backend.remove_resource(orphans[0])
        assert bridge not in firewall.bridges()
    finally:
        firewall.remove(bridge)


@pytest.mark.unit
def test_a_host_that_cannot_enforce_says_why_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    remote = egress.host_firewall("tcp://10.0.0.5:2375")
    assert remote == ("the Docker engine at tcp://10.0.0.5:2375 is not this host, so its packet filter is "
                      "out of reach")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(egress, "_SYSTEM_PATH", "/nonexistent")
    monkeypatch.setattr(egress.os, "geteuid", lambda: 0)
    assert egress.host_firewall("") == "there is no iptables on this host (install the iptables package)"
    monkeypatch.setattr(egress.os, "geteuid", lambda: 1000)
    assert egress.host_firewall("") == "writing iptables rules needs root and trial runs as an ordinary user"


@pytest.mark.docker
def test_backend_says_once_that_egress_is_not_enforced(monkeypatch: pytest.MonkeyPatch, engine: Any,
                                                       image: str) -> None:
    from structlog.testing import capture_logs

    monkeypatch.setattr(egress.os, "geteuid", lambda: 1000)
    backend = DockerBackend(SandboxSettings())
    nonce = uuid.uuid4().hex[:8]
    network = f"trial-test-unenforced-{nonce}"
    specs = [SandboxSpec(trial_id=f"ne{nonce}{i}", image=image, network=network, command=("sleep", "infinity"))
             for i in range(2)]
    try:
        with capture_logs() as logs:
            for spec in specs:
                backend.start(backend.create(spec))
        warnings = [entry for entry in logs if entry["event"] == "sandbox.egress.unenforced"]
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"
        assert "host-only egress is NOT enforced: writing iptables rules needs root" in warnings[0]["reason"]
    finally:
        for spec in specs:
            for container in engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={spec.trial_id}"}):
                container.remove(force=True)
        engine.networks.get(network).remove()



def test_trial_gc_removes_this_data_dirs_unused_network_and_its_rules(engine: Any, image: str) -> None:
    from orchestrator.config import load_settings
    from orchestrator.sandbox import instance_id, sandbox_network

    needs_root()
    settings = load_settings()
    backend = DockerBackend(settings.sandbox, instance=instance_id(settings))
    spec = SandboxSpec(trial_id=f"gc{uuid.uuid4().hex[:8]}", image=image, command=("sleep", "infinity"),
                       network=sandbox_network(settings), host_ports=(settings.service.port,))
    ref = backend.start(backend.create(spec))
    network = engine.networks.get(spec.network)
    bridge = f"br-{network.id[:12]}"
    try:
        def gc(*args: str) -> list[dict[str, Any]]:
            done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "gc", *args, "--json"],
                                  capture_output=True, text=True, env=os.environ.copy(), timeout=120)
            assert done.returncode == 0, done.stderr
            # Only this test's network and bridge: rules that other tests of the same run left for
            # bridges that are gone are orphans gc rightly lists too, but they are not this test's.
            return [item for item in json.loads(done.stdout)["data"] if item["kind"] in ("network", "firewall")
                    and (item["name"] == spec.network or bridge in item["name"])]

        # In use by a sandbox of a trial the store does not know: gc removes the container, then
        # finds the network free and removes it with its rules, in the same run.
        assert {(i["kind"], i["name"]) for i in gc("--dry-run")} == set()
        removed = gc()
        assert [(i["kind"], i["name"], i["removed"]) for i in removed] == [("network", spec.network, True)]
        with pytest.raises(docker.errors.NotFound):
            engine.networks.get(spec.network)
        firewall = egress.host_firewall()
        assert isinstance(firewall, egress.HostFirewall)
        assert bridge not in firewall.bridges()
    finally:
        backend.remove(ref)
        for resource in backend.list_managed():
            if resource.kind == "network" and resource.name == spec.network:
                backend.remove_resource(resource)


def test_an_internal_network_lets_its_containers_talk_but_reaches_nothing_on_the_host(
        engine: Any, image: str, listeners: dict[str, int]) -> None:
    """A service template's program and its hidden tests share an internal network (no route
    out). Docker's `internal` stops forwarding, but not the host's own addresses: the filter must."""
    needs_root()
    backend = DockerBackend(SandboxSettings())
    tag = uuid.uuid4().hex[:8]
    network, trial_id = f"trial-test-internal-{tag}", f"in{tag}"
    backend.create_network(network, trial_id)
    serve = ("python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/tmp")
    try:
        program = backend.start(backend.create(SandboxSpec(trial_id=trial_id, image=image, role="service",
                                                           internal_network=network, command=serve,
                                                           extra_hosts={})))
        tests = backend.start(backend.create(SandboxSpec(trial_id=trial_id, image=image, role="verifier",
                                                         internal_network=network,
                                                         command=("sleep", "infinity"), extra_hosts={})))
        gateway = engine.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"]
        program_at = f"{address(engine, program)}:8080"
        for _ in range(50):  # the program's server may need a moment to bind
            if probe(backend, tests, [program_at])[program_at] == "open":
                break
            time.sleep(0.2)
        seen = probe(backend, tests, [program_at, *(f"{host}:{port}" for host in (gateway, "172.17.0.1")
                                                    for port in listeners.values())])
        assert seen.pop(program_at) == "open"
        assert seen == dict.fromkeys(seen, "blocked"), seen
    finally:
        for container in engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={trial_id}"}):
            container.remove(force=True)
        bridge = f"br-{engine.networks.get(network).id[:12]}"
        backend.remove_network(network)
        firewall = egress.host_firewall()
        assert isinstance(firewall, egress.HostFirewall)
        assert bridge not in firewall.bridges()  # its rules went with it
