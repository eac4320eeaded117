"""`trial nodes ls|drain`: the swarm's nodes and moving live trials off one (orchestrator.nodes)."""

from __future__ import annotations

import click
from rich.table import Table

from orchestrator import nodes as swarm_nodes
from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out
from orchestrator.errors import ExitCode

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.group()
def nodes() -> None:
    """The Docker Swarm's nodes (sandbox.backend = "swarm"): list them, drain one."""


@nodes.command("ls")
@json_option
@pass_state
def ls(state: CliState, as_json: bool) -> None:
    """Every node: address, role, availability, free memory and the trials on it."""
    found = swarm_nodes.list_nodes(state.services)
    if as_json:
        emit_json("nodes ls", found)
        return
    table = Table("node", "id", "address", "role", "availability", "free", "trials", box=None)
    for node in found:
        free = node["free_memory"]
        table.add_row(node["hostname"], node["id"][:12], node["address"], node["role"],
                      f"{node['availability']} ({node['state']})", "-" if free is None else f"{free / 2**30:.1f} GiB",
                      " ".join(node["trials"]) or "-")
    out.print(table)


@nodes.command("drain")
@click.argument("node")
@json_option
@pass_state
def drain(state: CliState, node: str, as_json: bool) -> None:
    """Move every trial's sandbox off NODE (id, hostname or address), then drain it."""
    result = swarm_nodes.drain(state.services, node)
    if as_json:
        emit_json("nodes drain", result.to_json())
    else:
        for move in result.moves:
            if move.ok:
                out.print(f"moved {move.trial_id} to {move.target} ({move.detail})"
                          + (f"; ssh: {move.ssh}" if move.ssh else ""))
            else:
                out.print(f"[red]not moved[/red] {move.trial_id}: {move.detail}")
        out.print(f"node {result.node['hostname']} is {result.node['availability']}"
                  + (f" ({result.note})" if result.note else ""))
    if not result.ok:
        click.get_current_context().exit(int(ExitCode.PARTIAL))
