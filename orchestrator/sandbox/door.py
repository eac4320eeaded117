"""A swarm sandbox's door: the one container that connects it to anything.

On one host the sandbox's bridge is closed by the host's packet filter (`egress.HostFirewall`). A
swarm node is another machine whose packet filter trial does not write, so a swarm sandbox gets
no route at all instead: its only network is an `internal` overlay of its own (no gateway, no
NAT, no other sandbox on it), and a door container on the same node is the only other member:

- the door joins that overlay under the names the sandbox knows the host by (`host.docker.internal`),
  and relays each host port the spec allows (the host service: gateway and git) to the host
  service's address as the nodes reach it, and nowhere else;
- the door also sits on a plain bridge of the node (NAT, no traffic between its containers) that
  publishes its sshd relay: the candidate connects to the node's port, the door relays to the
  sandbox's sshd over the overlay.

So from inside the sandbox there is nothing but the door: no other sandbox (each overlay has
one), no address of the node (an overlay's bridge lives in a namespace of its own), no outside
address (no route), and on the door only the relays. The door runs the relay below from the
trial's own image (its Python is there on every node; nothing else is shipped), as nobody, with
no capability, a read-only root, no-new-privileges and small limits; the candidate has no shell
in it. It carries the trial's labels, so teardown and `trial gc` remove it with the rest.
"""

from __future__ import annotations

from typing import Any

RELAY = """\
import asyncio, sys
from concurrent.futures import ThreadPoolExecutor

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.IncompleteReadError):
        writer.close()

def relay(host, port):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        writer.close()
        up_writer.close()
    return handle

async def main():
    # Name lookups run in threads: a few, whatever the node's core count, within the pids limit.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))
    servers = []
    for spec in sys.argv[1:]:
        listen, host, port = spec.rsplit(":", 2)
        servers.append(await asyncio.start_server(relay(host, int(port)), "0.0.0.0", int(listen)))
    print("door open", " ".join(sys.argv[1:]), flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))

asyncio.run(main())
"""
"""Listens on each `LISTEN:HOST:PORT` argument and relays every connection to HOST:PORT, resolved
anew per connection (the sandbox's task address changes when it restarts)."""

SUFFIX = "-door"
USER = "65534:65534"
MEMORY = 64 * 1024 * 1024
PIDS = 32
NANO_CPUS = 250_000_000
SSH_LISTEN = 2222
"""The door's own sshd relay port (published on the node)."""


def network_name(instance: str | None) -> str:
    """The node-local bridge every door of one data dir sits on (one per node)."""
    return f"trial-door-{(instance or 'default')[:12]}"


def overlay_name(trial_id: str) -> str:
    """The trial's own internal overlay: its sandbox and its door, nothing else."""
    return f"trial-{trial_id}-net"


def relays(host_ports: tuple[int, ...], service_host: str, sandbox: str, ssh_port: int) -> list[str]:
    """The relay's arguments: each allowed host port to the host service, and the sshd relay."""
    return [*(f"{port}:{service_host}:{port}" for port in sorted(set(host_ports))),
            f"{SSH_LISTEN}:{sandbox}:{ssh_port}"]


def container_options(*, name: str, image_id: str, labels: dict[str, str], network: str, ssh_bind: str,
                      ssh_host_port: int, args: list[str]) -> dict[str, Any]:
    """`containers.create` options of a door: hardened as a sandbox is, and smaller."""
    return {
        "name": name, "entrypoint": ["python3", "-c", RELAY], "command": args, "user": USER,
        "labels": labels, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "read_only": True,
        "mem_limit": MEMORY, "memswap_limit": MEMORY, "pids_limit": PIDS, "nano_cpus": NANO_CPUS,
        "init": True, "restart_policy": {"Name": "no"}, "network": network,
        "ports": {f"{SSH_LISTEN}/tcp": (ssh_bind, ssh_host_port or None)},
        "environment": {"PYTHONDONTWRITEBYTECODE": "1"}, "detach": True,
    }
