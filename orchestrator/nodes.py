"""The nodes of a Docker Swarm and draining one with live trials (`trial nodes ls|drain`).

Volumes are local to a node, so draining moves every sandbox of this store off it: each is
stopped, its volumes are copied to the node with the most free memory through the two engines,
its service is pinned there and it starts again if it was running (`SwarmBackend.move`). The
node is paused first (nothing new lands, running sandboxes stay) and set to `drain` once no
sandbox of this store is left on it. A sandbox that cannot move stays where it was, running as
before; the result says which and why, and the node stays paused (as it does while another data
dir's sandboxes are on it: draining would stop them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import SandboxError, UsageError
from orchestrator.logging import get_logger
from orchestrator.sandbox.base import SandboxRef
from orchestrator.services import Services

if TYPE_CHECKING:
    from orchestrator.sandbox.swarm import SwarmBackend

log = get_logger(component="nodes")


@dataclass
class Move:
    trial_id: str
    source: str
    target: str | None
    ok: bool
    detail: str = ""
    ssh: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DrainResult:
    node: dict[str, Any]
    moves: list[Move] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(move.ok for move in self.moves)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "ok": self.ok, "moves": [move.to_json() for move in self.moves], "note": self.note}


def swarm(services: Services) -> SwarmBackend:
    from orchestrator.sandbox.swarm import SwarmBackend

    backend = services.sandbox
    if not isinstance(backend, SwarmBackend):
        raise UsageError(f"`trial nodes` needs the swarm backend (sandbox.backend is '{backend.name}')",
                         'set sandbox.backend = "swarm" with sandbox.swarm_manager and sandbox.swarm_nodes')
    return backend


def list_nodes(services: Services) -> list[dict[str, Any]]:
    backend = swarm(services)
    backend.ping()
    return backend.nodes()


def find_node(nodes: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """By id (or a unique prefix of it), hostname or address."""
    exact = [n for n in nodes if wanted in (n["id"], n["hostname"], n["address"])]
    found = exact or [n for n in nodes if n["id"].startswith(wanted)]
    if len(found) != 1:
        names = ", ".join(f"{n['hostname']} ({n['id'][:12]})" for n in nodes)
        raise UsageError(f"'{wanted}' {'names several' if found else 'is not a'} swarm node",
                         f"name one by id, hostname or address: {names}")
    return found[0]


def drain(services: Services, wanted: str) -> DrainResult:
    """Move every sandbox of this store off the node, then set it to `drain`."""
    from orchestrator.lifecycle import ssh_command

    backend = swarm(services)
    backend.ping()
    node = find_node(backend.nodes(), wanted)
    others = [n for n in backend.nodes() if n["id"] != node["id"] and n["state"] == "ready"
              and n["availability"] == "active"]
    if node["trials"] and not others:
        raise UsageError(f"node {node['hostname']} has trials and no other node is ready and active",
                         "add or activate a node first (`docker node update --availability active NODE`)")
    backend.set_availability(node["id"], "pause")
    result = DrainResult(node)
    for trial_id in node["trials"]:
        ref = backend.find(trial_id)
        if ref is None:
            continue
        free = backend.free_memory()
        free.pop(node["id"], None)
        target = max(sorted(free), key=lambda node_id: free[node_id]) if free else None
        if target is None:
            result.moves.append(Move(trial_id, node["id"], None, False, "no other node is ready and active"))
            continue
        result.moves.append(_move(services, backend, ref, node["id"], target, ssh_command))
    result.node = find_node(backend.nodes(), node["id"])
    if result.ok and result.node["other_sandboxes"]:
        # Another data dir's sandboxes are pinned there: draining would stop them. Its operator moves them.
        result.note = (f"left paused: {result.node['other_sandboxes']} sandbox(es) of another trial data dir "
                       "run there; drain it from that data dir too")
    elif result.ok:
        backend.set_availability(node["id"], "drain")
        result.node = find_node(backend.nodes(), node["id"])
    return result


def _move(services: Services, backend: SwarmBackend, ref: SandboxRef, source: str, target: str,
          ssh_command: Any) -> Move:
    trial_id = ref.trial_id
    try:
        moved = backend.move(ref, target)
    except SandboxError as exc:
        log.warning("nodes.move.failed", trial_id=trial_id, source=source, target=target, error=exc.message)
        return Move(trial_id, source, target, False, exc.message)
    known = trial_id in {trial.id for trial in services.store.list_trials()}
    ssh = None
    if known:
        services.store.add_event(trial_id, "sandbox.moved", {"from": source, "to": target, "host": moved.host,
                                                             "ssh_port": moved.ssh_port})
        if moved.ssh_port:
            services.store.merge_data(trial_id, {"ssh_port": moved.ssh_port, "ssh_host": moved.host})
            ssh = ssh_command(services, moved.ssh_port, moved.host)
    return Move(trial_id, source, target, True, f"now on {moved.host}", ssh)
