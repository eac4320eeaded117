"""A real multi-node Docker Swarm built on this machine for the swarm tests, and taken down after.

Each node is a separate `dockerd` in a network namespace the test creates, entered with
`nsenter --net` only (`ip netns exec` would remount /sys and hide the cgroup mounts: "Devices
cgroup isn't mounted"), with its own data root, exec root, socket and pidfile, no bridge of its
own (`--bridge=none`); each writes its iptables rules in its own namespace (netfilter tables are
per namespace, so the host's rules stay the host's; `IPTABLES = False` turns that off).
A veth joins each namespace to a test bridge with test-made addresses in 10.<r>.<r>.0/24; the
host's FORWARD policy is DROP, so one `ACCEPT` rule for that bridge (and only within it) goes in
DOCKER-USER while the cluster lives. Traffic goes only to addresses made here: the namespaces have
no default route. There is no registry, so images reach the nodes by `docker save | docker load`.
Everything of the nodes (data roots, sockets) lives on one tmpfs, so teardown is an unmount, not
a minute of deleting image layers from disk.

A fifth namespace on the bridge (`outside_netns`, no node) stands for an address beyond the
cluster. Teardown removes every piece it made, whatever failed halfway: services, containers, daemons
(SIGTERM, then SIGKILL after a bounded wait), mounts under the data roots, namespaces, veths, the
bridge, the rule and the files. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

DAEMON_START_S = 90.0
DAEMON_STOP_S = 15.0
COMMAND_S = 120.0
IMAGE_LOAD_S = 600.0
IPTABLES = True
"""The nodes' own packet filter (no inter-container traffic on a sandbox network is enforced by it).
Each dockerd writes its rules in its own network namespace, never the host's."""
TMPFS_SIZE = "6g"
"""Data roots, sockets and the image archive of all nodes (bounded: a runaway test cannot fill RAM)."""


def _run(*argv: str, check: bool = True, timeout: float = COMMAND_S) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass
class SwarmNode:
    name: str
    netns: str
    address: str
    host_veth: str
    root: Path
    process: subprocess.Popen[bytes] | None = None
    client: Any = None
    node_id: str = ""

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


@dataclass
class SwarmCluster:
    """The nodes (the first is the manager) and what teardown must undo."""

    tag: str
    bridge: str
    subnet_prefix: str
    base: Path
    nodes: list[SwarmNode] = field(default_factory=list)
    rule: tuple[str, ...] | None = None
    outside_made: bool = False

    @property
    def outside_netns(self) -> str:
        """A namespace on the test bridge that is no node: stands for an address beyond the cluster."""
        return f"{self.tag}-out"

    @property
    def outside_address(self) -> str:
        return f"{self.subnet_prefix}.99"

    @property
    def outside_veth(self) -> str:
        return f"{self.tag}ho"

    @property
    def manager(self) -> SwarmNode:
        return self.nodes[0]

    @property
    def gateway(self) -> str:
        return f"{self.subnet_prefix}.1"

    def node_urls(self) -> dict[str, str]:
        """Node id → engine URL, the shape `sandbox.swarm_nodes` takes."""
        return {node.node_id: node.url for node in self.nodes}


def _free_prefix() -> str:
    """10.x.250: a 10.x.0.0/16 no route of this host touches. The swarm's own address pool (its
    ingress network, inside the nodes) takes /24s from the bottom of the same /16."""
    routes = _run("ip", "-4", "route", "show", "table", "all").stdout
    for _ in range(50):
        prefix = f"10.{random.randint(64, 250)}"
        if f"{prefix}." not in routes:
            return f"{prefix}.250"
    raise RuntimeError("no free 10.x.0.0/16 for the test swarm")


def _start_daemon(node: SwarmNode, tag: str) -> None:
    data, exec_root = node.root / "data", node.root / "exec"
    data.mkdir(parents=True)
    exec_root.mkdir()
    config = node.root / "daemon.json"
    config.write_text("{}\n")  # never the host's /etc/docker/daemon.json
    log = (node.root / "dockerd.log").open("wb")
    node.process = subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{node.netns}", "dockerd",
         "--config-file", str(config), "--data-root", str(data), "--exec-root", str(exec_root),
         "-H", node.url, "--pidfile", str(node.root / "dockerd.pid"),
         "--bridge=none", f"--iptables={str(IPTABLES).lower()}", "--ip-forward=false", "--ip-masq=false",
         "--containerd-namespace", f"{tag}-{node.name}", "--containerd-plugins-namespace", f"{tag}-{node.name}-p"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # A task whose image is named by tag is pulled first; with this the node uses its own copy.
        env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"})
    log.close()
    deadline = time.monotonic() + DAEMON_START_S
    while True:
        if node.process.poll() is not None:
            raise RuntimeError(f"dockerd of {node.name} exited at start: "
                               f"{(node.root / 'dockerd.log').read_text()[-2000:]}")
        if node.socket.exists():
            client = docker.DockerClient(base_url=node.url, timeout=120)
            with contextlib.suppress(Exception):
                client.ping()
                node.client = client
                return
            client.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd of {node.name} did not answer within {DAEMON_START_S:.0f} s")
        time.sleep(0.3)


def _load_images(cluster: SwarmCluster, images: list[str]) -> None:
    archive = cluster.base / "images.tar"
    _run("docker", "save", "-o", str(archive), *images, timeout=IMAGE_LOAD_S)

    def load(node: SwarmNode) -> None:
        _run("docker", "-H", node.url, "load", "-i", str(archive), timeout=IMAGE_LOAD_S)

    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        list(pool.map(load, cluster.nodes))
    archive.unlink()


def _build(cluster: SwarmCluster, size: int, images: list[str]) -> None:
    _run("ip", "link", "add", cluster.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{cluster.gateway}/24", "dev", cluster.bridge)
    _run("ip", "link", "set", cluster.bridge, "up")
    rule = ("DOCKER-USER", "-i", cluster.bridge, "-o", cluster.bridge, "-j", "ACCEPT")
    _run("iptables", "-I", *rule)
    cluster.rule = rule
    for index in range(size):
        node = SwarmNode(name=f"n{index}", netns=f"{cluster.tag}-n{index}",
                         address=f"{cluster.subnet_prefix}.{10 + index}", host_veth=f"{cluster.tag}h{index}",
                         root=cluster.base / f"n{index}")
        cluster.nodes.append(node)
        _run("ip", "netns", "add", node.netns)
        peer = f"{cluster.tag}p{index}"
        _run("ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", node.host_veth, "master", cluster.bridge, "up")
        _run("ip", "link", "set", peer, "netns", node.netns)
        ns = ("ip", "-n", node.netns)
        _run(*ns, "link", "set", peer, "name", "eth0")
        _run(*ns, "addr", "add", f"{node.address}/24", "dev", "eth0")
        _run(*ns, "link", "set", "eth0", "up")
        _run(*ns, "link", "set", "lo", "up")
    _run("ip", "netns", "add", cluster.outside_netns)
    cluster.outside_made = True
    _run("ip", "link", "add", cluster.outside_veth, "type", "veth", "peer", "name", f"{cluster.tag}po")
    _run("ip", "link", "set", cluster.outside_veth, "master", cluster.bridge, "up")
    _run("ip", "link", "set", f"{cluster.tag}po", "netns", cluster.outside_netns)
    outside = ("ip", "-n", cluster.outside_netns)
    _run(*outside, "link", "set", f"{cluster.tag}po", "name", "eth0")
    _run(*outside, "addr", "add", f"{cluster.outside_address}/24", "dev", "eth0")
    _run(*outside, "link", "set", "eth0", "up")
    with ThreadPoolExecutor(max_workers=size) as pool:
        list(pool.map(lambda node: _start_daemon(node, cluster.tag), cluster.nodes))
    manager = cluster.manager
    manager.client.swarm.init(advertise_addr=manager.address, listen_addr=f"{manager.address}:2377",
                              default_addr_pool=[f"10.{cluster.subnet_prefix.split('.')[1]}.0.0/16"],
                              subnet_size=24)
    token = manager.client.swarm.attrs["JoinTokens"]["Worker"]
    for node in cluster.nodes[1:]:
        node.client.swarm.join(remote_addrs=[f"{manager.address}:2377"], join_token=token,
                               listen_addr=f"{node.address}:2377", advertise_addr=node.address)
    for node in cluster.nodes:
        node.node_id = str(node.client.info()["Swarm"]["NodeID"])
    deadline = time.monotonic() + DAEMON_START_S
    while True:
        ready = [n for n in manager.client.nodes.list() if n.attrs["Status"]["State"] == "ready"]
        if len(ready) == size:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {size} swarm nodes became ready")
        time.sleep(0.5)
    _load_images(cluster, images)


def _stop_daemon(node: SwarmNode) -> None:
    if node.client is not None:
        with contextlib.suppress(Exception):
            for container in node.client.containers.list(all=True):
                container.remove(force=True)
        with contextlib.suppress(Exception):
            node.client.close()
    process = node.process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=DAEMON_STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=DAEMON_STOP_S)


def _unmount_under(base: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m == str(base) or m.startswith(f"{base}/")), key=len, reverse=True):
        _run("umount", "-l", point, check=False)


def _teardown(cluster: SwarmCluster) -> None:
    manager = cluster.manager if cluster.nodes else None
    if manager is not None and manager.client is not None:
        with contextlib.suppress(Exception):
            for service in manager.client.services.list():
                service.remove()
    with ThreadPoolExecutor(max_workers=max(len(cluster.nodes), 1)) as pool:
        list(pool.map(_stop_daemon, cluster.nodes))
    for node in cluster.nodes:
        _run("ip", "netns", "del", node.netns, check=False)
        _run("ip", "link", "del", node.host_veth, check=False)
    if cluster.outside_made:
        _run("ip", "netns", "del", cluster.outside_netns, check=False)
        _run("ip", "link", "del", cluster.outside_veth, check=False)
    _run("ip", "link", "del", cluster.bridge, check=False)
    if cluster.rule is not None:
        _run("iptables", "-D", *cluster.rule, check=False)
    _unmount_under(cluster.base)
    shutil.rmtree(cluster.base, ignore_errors=True)


@contextlib.contextmanager
def swarm_cluster(size: int = 3, images: tuple[str, ...] = ()) -> Iterator[SwarmCluster]:
    """Build a `size`-node swarm with `images` on every node; take it all down on exit."""
    tag = f"tsw{random.randint(0, 0xfff):03x}"
    base = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    cluster = SwarmCluster(tag=tag, bridge=f"{tag}br", subnet_prefix=_free_prefix(), base=base)
    try:
        # The data roots in memory: three copies of the images would take a minute to delete from disk.
        _run("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", f"{tag}-roots", str(base))
        _build(cluster, size, list(images))
        yield cluster
    finally:
        _teardown(cluster)
