"""The SandboxBackend protocol and the value types that cross it.

A backend runs containers for trials: the candidate's long-lived, hardened sandbox and
short-lived verifier containers (hidden tests). Everything it creates carries the labels
below, so `list_managed` can find leftovers without the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

LABEL_TRIAL = "trial.id"
LABEL_MANAGED = "trial.managed-by"
LABEL_ROLE = "trial.role"  # sandbox | verifier | service (a service template's program under test)
LABEL_INSTANCE = "trial.instance"  # which data dir (store) made it: one engine can serve several
LABEL_EGRESS = "trial.egress"  # on networks: host-only
LABEL_HOST_PORTS = "trial.host-ports"  # on host-only networks: the host ports its sandboxes may open
MANAGED_BY = "trial"

SANDBOX_USER = "candidate"
WORKSPACE = "/workspace"
HOME = "/home/candidate"
SSHD_DIR = "/etc/trial-ssh"
"""A root-owned volume: sshd's authorized keys and session environment, which the candidate reads
but cannot change (written by the host with `copy_in`; see `home.sshd_tar`)."""
SSH_PORT_IN_CONTAINER = 2222


@dataclass(frozen=True)
class BuildRequest:
    """Everything `build` needs; `tag` already carries the content hash of the context."""

    context_dir: Path
    tag: str
    buildargs: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRef:
    tag: str
    id: str
    cached: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    trial_id: str
    image: str
    role: Literal["sandbox", "verifier", "service"] = "sandbox"
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    """None: the image's CMD (the sandbox's sshd)."""
    user: str = SANDBOX_USER
    workdir: str = WORKSPACE
    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    volumes: dict[str, str] = field(default_factory=dict)
    """Named volume → mount point; the backend prefixes names with the trial id."""
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": "rw,nosuid,nodev,size=512m",  # noqa: S108
                                                           "/run": "rw,nosuid,nodev,size=16m"})
    publish_ssh: bool = False
    """Publish the container's sshd port on the host (loopback unless ssh_bind says)."""
    ssh_bind: str = "0.0.0.0"  # noqa: S104 - candidates connect from outside the host
    ssh_host_port: int = 0
    network_disabled: bool = False
    """Verifiers run with no network at all."""
    network: str | None = None
    """A host-only bridge the backend creates: no NAT, no container-to-container traffic, and a
    host packet filter that drops everything leaving it except `host_ports` on the host itself.
    None: the default bridge (open egress)."""
    host_ports: tuple[int, ...] = ()
    """With `network`: the host's ports its sandboxes may open (the host service). A property of
    the network, so every spec on one network must name the same ports."""
    internal_network: str | None = None
    """A network made by `create_network` (no route out; its containers reach each other by
    container name): a service template's program and its hidden tests share one per run."""
    extra_hosts: dict[str, str] = field(default_factory=lambda: {"host.docker.internal": "host-gateway"})
    read_only_root: bool = True
    name_suffix: str = ""
    """Appended to the container's name (`trial-ID-ROLE-SUFFIX`): verifiers and services take a random one,
    so two grades of one trial at once never share (or remove) a container; labels still find them."""


@dataclass(frozen=True)
class SandboxRef:
    id: str
    name: str
    trial_id: str
    volumes: dict[str, str] = field(default_factory=dict)
    """Mount point → volume name."""
    ssh_port: int | None = None
    host: str | None = None
    """The address of the machine whose `ssh_port` it is, when that is not this host's (a swarm
    node): candidates connect there instead of `service.public_host`."""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


ResourceKind = Literal["container", "volume", "image", "network", "firewall", "build-container"]


@dataclass(frozen=True)
class ManagedResource:
    kind: ResourceKind
    id: str
    name: str
    trial_id: str | None
    status: str = ""
    """Containers: the engine's status. Networks and firewall rules: `unused` or `in use`."""
    instance: str | None = None
    """The `trial.instance` label: the data dir that made it (None on resources older than the label)."""


@dataclass(frozen=True)
class VolumeUsage:
    name: str
    trial_id: str | None
    size_bytes: int
    """As the engine measures it on the host (root), whatever the candidate did to permissions."""


SandboxStatus = Literal["created", "running", "paused", "restarting", "exited", "dead", "missing"]


@runtime_checkable
class SandboxBackend(Protocol):
    name: str

    def ping(self) -> None:
        """Raise PrerequisiteError, saying how to start the engine, when it does not answer."""

    def build(self, request: BuildRequest) -> ImageRef:
        """Build (or reuse, when the tag exists) the image; ImageBuildError on failure."""

    def image_exists(self, tag: str) -> bool: ...

    def create(self, spec: SandboxSpec) -> SandboxRef:
        """Create volumes and a hardened container (not started). Idempotent per trial and role."""

    def start(self, ref: SandboxRef) -> SandboxRef:
        """Start it; returns the ref with the published SSH port filled in."""

    def stop(self, ref: SandboxRef, timeout_s: int = 10) -> None:
        """Stop, then kill if it did not stop in time. Volumes are kept."""

    def remove(self, ref: SandboxRef, *, volumes: bool = True) -> None:
        """Stop → kill → remove the container, then its volumes. Missing pieces are fine."""

    def status(self, ref: SandboxRef) -> SandboxStatus: ...

    def exec(self, ref: SandboxRef, argv: list[str], *, user: str | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None, timeout_s: int | None = None) -> ExecResult: ...

    def copy_in(self, ref: SandboxRef, dest_dir: str, tar_bytes: bytes) -> None:
        """Unpack a tar archive into dest_dir (works on stopped containers too)."""

    def copy_out(self, ref: SandboxRef, path: str, *, max_bytes: int | None = None) -> bytes:
        """A tar archive of path (works on stopped containers too); SandboxError past max_bytes."""

    def find(self, trial_id: str, role: str = "sandbox") -> SandboxRef | None: ...

    def list_managed(self, kinds: frozenset[ResourceKind] | None = None) -> list[ManagedResource]:
        """Everything of ours on the engine (`kinds`: only those kinds, which asks the engine less:
        a verifier looking for its trial's leftover containers need not list every image). With
        kinds that leave out `build-container`, a build step's labelled container may be listed
        as a `container` without a trial."""

    def volume_usage(self) -> list[VolumeUsage]:
        """Disk used by each volume this data dir's trials have (quotas are watched with it)."""

    def create_network(self, name: str, trial_id: str) -> None:
        """An internal network (no route beyond it) for one verification run; labelled like the rest."""

    def remove_network(self, name: str) -> None:
        """Remove it; a missing network is fine."""

    def remove_resource(self, resource: ManagedResource) -> None: ...
