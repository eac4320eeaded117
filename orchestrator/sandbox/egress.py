"""Host-only egress: the packet filter rules that make the host service the sandbox's one door.

A sandbox network is a bridge without NAT and without inter-container traffic, but that alone
still lets a container open any port of the host itself (every address the host has, since
they are all local to it) and, where a route back exists, addresses beyond the host. So each
such bridge gets two chains of its own in the host's `filter` table:

    INPUT       -i BRIDGE → TRIAL-IN-BRIDGE:  replies of connections the host opened (the
                published sshd port's proxy) pass; NEW tcp to the allowed ports passes;
                everything else is dropped.
    DOCKER-USER -i BRIDGE → TRIAL-FWD-BRIDGE: replies pass (a published port is DNATed
                inbound and answered through conntrack); everything else the bridge would
                send through the host (other containers, other networks, the internet) is
                dropped, except, on an `internal` network whose containers work together
                (a service template's program and its tests), traffic within the bridge.

The chains are (re)written in one `iptables-restore --noflush` transaction, so there is never
a moment with an empty chain; the jumps carry a comment naming the network. Writing them again
is a no-op when they already say the same thing. `remove` takes both away (`trial gc`).

Rules need root (CAP_NET_ADMIN) on the engine's own host. When that is not at hand,
`host_firewall()` says why in one sentence and the caller reports it instead of pretending.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SandboxError

IN_PREFIX = "TRIAL-IN-"
FWD_PREFIX = "TRIAL-FWD-"
COMMENT_PREFIX = "trial egress"
IPTABLES_TIMEOUT_S = 30
# Bridge names are interface names (≤ 15 chars); the chain names stay within iptables' 28.
_BRIDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_SYS_NET = Path("/sys/class/net")
_SYSTEM_PATH = "/usr/sbin:/sbin"
"""Where iptables lives even when an ordinary user's PATH leaves it out."""


def in_chain(bridge: str) -> str:
    return IN_PREFIX + bridge


def fwd_chain(bridge: str) -> str:
    return FWD_PREFIX + bridge


def chain_rules(bridge: str, ports: Sequence[int], *, within: bool = False) -> dict[str, list[str]]:
    """The body of both chains, as `iptables -S CHAIN` prints it (so it can be compared)."""
    inbound = in_chain(bridge)
    forward = fwd_chain(bridge)
    rules_in = [f"-A {inbound} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    rules_in += [f"-A {inbound} -p tcp -m tcp --dport {port} -j ACCEPT" for port in sorted(set(ports))]
    rules_in.append(f"-A {inbound} -j DROP")
    rules_fwd = [f"-A {forward} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
    if within:
        rules_fwd.append(f"-A {forward} -o {bridge} -j RETURN")
    rules_fwd.append(f"-A {forward} -j DROP")
    return {inbound: rules_in, forward: rules_fwd}


def restore_script(bridge: str, ports: Sequence[int], jumps: Sequence[str], *, within: bool = False) -> str:
    """An `iptables-restore --noflush` transaction: declaring a chain creates or flushes it, and
    the new rules and the missing jumps land in the same commit."""
    rules = chain_rules(bridge, ports, within=within)
    lines = ["*filter", *(f":{chain} - [0:0]" for chain in rules)]
    for body in rules.values():
        lines += body
    lines += list(jumps)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _check_bridge(bridge: str) -> None:
    if not _BRIDGE.match(bridge):
        raise SandboxError(f"'{bridge}' is not a bridge interface name", "bridge names are ≤ 15 characters")


@dataclass(frozen=True)
class HostFirewall:
    """iptables on the host that runs the engine, driven as root."""

    iptables: str
    restore: str

    def ensure(self, bridge: str, ports: Sequence[int], network: str, *, within: bool = False) -> bool:
        """Make the bridge host-only (allowing `ports` on the host, and traffic within the bridge
        when `within`). True when rules were written, False when they already said that.

        Checked against one listing of the filter table (one process, not one per chain and
        jump: this runs at every sandbox start), and written in one transaction when anything differs."""
        _check_bridge(bridge)
        comment = f"{COMMENT_PREFIX} {network}"[:250]
        table = self._table()
        forward_parent = "DOCKER-USER" if "DOCKER-USER" in table else "FORWARD"
        wanted_jumps = [("INPUT", in_chain(bridge)), (forward_parent, fwd_chain(bridge))]
        missing = [f'-I {parent} 1 -i {bridge} -m comment --comment "{comment}" -j {chain}'
                   for parent, chain in wanted_jumps
                   if ["-A", parent, "-i", bridge, "-m", "comment", "--comment", comment, "-j", chain]
                   not in (_split_rule(line) for line in table.get(parent, []))]
        wanted = chain_rules(bridge, ports, within=within)
        if not missing and all(table.get(chain) == body for chain, body in wanted.items()):
            return False
        self._run([self.restore, "--noflush"], f"write the egress rules of {bridge}",
                  stdin=restore_script(bridge, ports, missing, within=within))
        return True

    def remove(self, bridge: str) -> None:
        """Remove the jumps to the bridge's chains, then the chains. Missing pieces are fine."""
        _check_bridge(bridge)
        for parent in ("INPUT", "DOCKER-USER", "FORWARD"):
            if not self._chain_exists(parent):
                continue
            for line in self._rules(parent):
                if f" -i {bridge} " in f"{line} " and (in_chain(bridge) in line.split() or
                                                     fwd_chain(bridge) in line.split()):
                    self._run([self.iptables, "-w", *_split_rule(line.replace("-A ", "-D ", 1))],
                              f"remove a jump to the egress rules of {bridge}")
        for chain in (in_chain(bridge), fwd_chain(bridge)):
            if self._chain_exists(chain):
                self._run([self.iptables, "-w", "-F", chain], f"flush {chain}")
                self._run([self.iptables, "-w", "-X", chain], f"delete {chain}")

    def bridges(self) -> list[str]:
        """Bridges that have egress chains (whether or not the bridge still exists)."""
        done = self._run([self.iptables, "-w", "-S"], "list the filter table")
        found = set()
        for line in done.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "-N":
                for prefix in (IN_PREFIX, FWD_PREFIX):
                    if parts[1].startswith(prefix):
                        found.add(parts[1][len(prefix):])
        return sorted(found)

    @staticmethod
    def bridge_exists(bridge: str) -> bool:
        return (_SYS_NET / bridge).exists()

    def _chain_exists(self, chain: str) -> bool:
        done = subprocess.run([self.iptables, "-w", "-S", chain], capture_output=True, text=True,
                              timeout=IPTABLES_TIMEOUT_S, check=False)
        return done.returncode == 0

    def _rules(self, chain: str) -> list[str]:
        done = subprocess.run([self.iptables, "-w", "-S", chain], capture_output=True, text=True,
                              timeout=IPTABLES_TIMEOUT_S, check=False)
        if done.returncode != 0:
            return []
        return [line for line in done.stdout.splitlines() if line.startswith("-A ")]

    def _table(self) -> dict[str, list[str]]:
        """Every chain of the filter table with its rules (`-A` lines, in order), from one `iptables -S`."""
        chains: dict[str, list[str]] = {}
        for line in self._run([self.iptables, "-w", "-S"], "list the filter table").splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) >= 2 and parts[0] in ("-P", "-N"):
                chains.setdefault(parts[1], [])
            elif len(parts) >= 2 and parts[0] == "-A":
                chains.setdefault(parts[1], []).append(line)
        return chains

    def _run(self, argv: list[str], action: str, stdin: str | None = None) -> str:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=IPTABLES_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxError(f"could not {action}: {exc}", "check iptables on this host") from exc
        if done.returncode != 0:
            error = " ".join(done.stderr.split())[:300]
            raise SandboxError(f"could not {action}: {error}", "check iptables on this host (`iptables -S`)")
        return done.stdout


def _split_rule(line: str) -> list[str]:
    """`iptables -S` output back into argv (it quotes comments with double quotes)."""
    import shlex

    return shlex.split(line)


def host_firewall(docker_host: str | None = None) -> HostFirewall | str:
    """The host's firewall, or one sentence saying why this process cannot write its rules."""
    docker_host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if docker_host and not docker_host.startswith("unix://"):
        return f"the Docker engine at {docker_host} is not this host, so its packet filter is out of reach"
    path = os.environ.get("PATH", "") + os.pathsep + _SYSTEM_PATH
    iptables = shutil.which("iptables", path=path)
    restore = shutil.which("iptables-restore", path=path)
    if os.geteuid() != 0:
        return "writing iptables rules needs root and trial runs as an ordinary user"
    if not iptables or not restore:
        return "there is no iptables on this host (install the iptables package)"
    return HostFirewall(iptables=iptables, restore=restore)
