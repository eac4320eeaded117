"""The Swarm backend: each candidate sandbox is one Docker Swarm service with one replica.

Chosen with `sandbox.backend = "swarm"`. The manager (`sandbox.swarm_manager`) schedules the
services; every node's own engine (`sandbox.swarm_nodes`: node id or hostname → engine URL) is
where the trial's volumes live and where exec and file copies go, through a `DockerBackend` per
node (so exec timeouts, copy caps and error translation are the Docker backend's).

How a sandbox maps onto Swarm:

- one service `trial-<id>-sandbox`, replicated, created with 0 replicas (`create`), scaled to 1
  (`start`) and back to 0 (`stop`, which also removes the stopped task's container and waits for
  the manager to forget the task: otherwise the next start can stay pending for good); restart
  condition `none`, so a crashed sandbox stays down until the orchestrator acts, as on one host.
- placement: a new trial goes to the ready, active node with the most free memory (the node's
  memory less the memory limits of this store's sandboxes placed on it); a trial whose volumes
  already exist stays on their node. The service is pinned there by a `node.id==` constraint,
  because the named volumes are local to that node's engine.
- the volumes are made on that node with the trial labels before the service exists, and a
  never-started "files" container (`trial-<id>-sandbox-files`, no network, no capabilities)
  holds them, so `copy_in` before the first start and `copy_out` after a stop work as on one host.
- sshd is published on the node (a port the engine picks, or `ssh_host_port`): by the door for a
  host-only sandbox, in host mode by the service otherwise; `node_address` says which node.
- the service names the image by its id on that node, never by tag: a tag makes the node try a
  registry first, an id is used as it is (no registry is ever contacted).
- `move` takes a sandbox to another node (draining, `orchestrator.nodes`): stopped, its volumes
  copied from its files container's archive into a helper on the target through the two engines,
  the service re-pinned, started again; a failure before it runs there leaves it where it was.
- verifiers and service-template programs (short-lived, no network or an internal one) are plain
  containers on the trial's node through that node's `DockerBackend`, with its full hardening; an
  internal network for them has no address of the node on its bridge, so they reach only each other.

Hardening kept, as service options: user (uid 1000), `cap_drop ALL` (CapEff and CapBnd 0),
read-only root, tmpfs `/tmp` and `/run` (sizes kept; Swarm mounts them nosuid,nodev), memory and
CPU limits, the pids limit (API 1.41 `Resources.Limits.Pids`), the init process, the labels.

Not expressible for services on Engine 20.10, and what stands in for it:

- `no-new-privileges`: services have no such option. The generated sandbox layer strips every
  setuid and setgid bit from the image (`orchestrator.sandbox.images`), and with no capability in
  the bounding set a setuid binary gains nothing anyway; NoNewPrivs reads 0 inside.
- memory swap: services set no swap limit of their own; nodes are expected to run without swap.
- `ssh_port_range`: a service publishes a fixed port or one the engine picks.
- host-only egress: the host's packet filter (`egress.HostFirewall`) cannot reach a node, and
  trial writes no node's packet filter. A host-only sandbox (`spec.network` set) therefore gets no
  route at all: its one network is an internal overlay of its own (`trial-<id>-net`), whose only
  other member is its door (`orchestrator.sandbox.door`), a hardened relay container on the same
  node that answers to `host.docker.internal` there, relays the spec's `host_ports` to the host
  service (`sandbox.swarm_service_host`) and publishes the sandbox's sshd on the node. Teardown
  and `trial gc` remove the door and the overlay with the trial; each node's door bridge goes
  with its last door. A sandbox without `spec.network` (egress `open`) sits on a swarm-scoped
  bridge whose options come from a config-only network on every node (no NAT, no traffic between
  containers: a swarm-scoped bridge drops options given to it directly and cannot carry labels,
  so its config networks are what `list_managed` recognises); it reaches what its node routes to.
- `extra_hosts` host-gateway: not resolved by Swarm; on a host-only sandbox those names are its
  door's aliases, on an open one they are missing.
"""

from __future__ import annotations

import socket
import time
from contextlib import suppress
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import EndpointSpec, Mount, Resources, RestartPolicy, ServiceMode

from orchestrator.config import SandboxSettings
from orchestrator.errors import PrerequisiteError, SandboxError, UsageError
from orchestrator.logging import get_logger
from orchestrator.sandbox import door
from orchestrator.sandbox.base import (
    LABEL_EGRESS,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_TRIAL,
    MANAGED_BY,
    SSH_PORT_IN_CONTAINER,
    BuildRequest,
    ExecResult,
    ImageRef,
    ManagedResource,
    ResourceKind,
    SandboxRef,
    SandboxSpec,
    SandboxStatus,
    VolumeUsage,
)
from orchestrator.sandbox.docker import (
    API_TIMEOUT_S,
    DockerBackend,
    _check_name,
    _engine_errors,
    container_name,
    volume_name,
)

SWARM_HINT = "set sandbox.swarm_manager to a manager's engine URL and sandbox.swarm_nodes to every node's"
DEFAULT_NETWORK = "trial-swarm-sandbox"
"""The sandboxes' network when the spec names none (open egress, as the default bridge on one host)."""
TASK_POLL_S = 0.2
SSH_PROBE_S = 0.2
"""How long one look for the sandbox's sshd banner may wait (to connect, then to read)."""
REMOVE_WAIT_S = 60.0
DOOR_OPEN_S = 20.0
FILES_SUFFIX = "-files"
CONFIG_SUFFIX = "-config"
LABEL_STARTED = "trial.started"
"""On a sandbox's service once it was first scaled up (`status` says `exited` rather than `created`)."""
_NS = 1_000_000_000
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _bytes(size: str) -> int:
    text = size.strip().lower()
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


class SwarmBackend:
    """`SandboxBackend` over Docker Swarm services, one replica each, volumes pinned by placement."""

    name = "swarm"

    def __init__(self, settings: SandboxSettings, *, manager_url: str | None = None,
                 node_urls: dict[str, str] | None = None, instance: str | None = None,
                 service_host: str | None = None, start_timeout_s: float = 60.0,
                 start_settle_s: float = 0.5) -> None:
        self.settings = settings
        self.instance = instance
        self.manager_url = manager_url or settings.swarm_manager
        self.service_host = service_host or settings.swarm_service_host
        """Where the nodes reach the host service: every sandbox door relays there."""
        self.node_urls = dict(node_urls if node_urls is not None else settings.swarm_nodes)
        self.start_timeout_s = start_timeout_s
        self.start_settle_s = start_settle_s
        self._manager: Any = None
        self._node_backends: dict[str, DockerBackend] = {}
        self._log = get_logger(component="sandbox.swarm")

    # ---- engines ----------------------------------------------------------------------------

    @property
    def manager(self) -> Any:
        if self._manager is None:
            if not self.manager_url:
                raise PrerequisiteError("sandbox.backend is 'swarm' but sandbox.swarm_manager is not set",
                                        SWARM_HINT)
            try:
                self._manager = docker.DockerClient(base_url=self.manager_url, timeout=API_TIMEOUT_S)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise self._unreachable() from exc
        return self._manager

    def _unreachable(self) -> PrerequisiteError:
        return PrerequisiteError(f"the swarm manager is not reachable at {self.manager_url}", SWARM_HINT)

    def node(self, node_id: str) -> DockerBackend:
        """The Docker backend of one node's own engine (its volumes, its task containers)."""
        if node_id not in self._node_backends:
            with _engine_errors(f"inspect swarm node {node_id}"):
                attrs = self.manager.nodes.get(node_id).attrs
            hostname = str((attrs.get("Description") or {}).get("Hostname", ""))
            url = self.node_urls.get(node_id) or self.node_urls.get(hostname)
            if not url:
                raise PrerequisiteError(f"swarm node {node_id} ({hostname}) has no engine URL",
                                        f"add it to sandbox.swarm_nodes (by node id or hostname); {SWARM_HINT}")
            backend = DockerBackend(self.settings, instance=self.instance, engine_url=url)
            # This host's packet filter is not the node's: never write rules here for a node's bridges.
            backend._firewall = "the engine is a swarm node's, whose packet filter trial does not write"
            try:
                backend._client = docker.DockerClient(base_url=url, timeout=API_TIMEOUT_S)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise PrerequisiteError(f"swarm node {node_id} is not reachable at {url}", SWARM_HINT) from exc
            self._node_backends[node_id] = backend
        return self._node_backends[node_id]

    def _nodes(self) -> list[dict[str, Any]]:
        with _engine_errors("list the swarm nodes"):
            return [dict(n.attrs) for n in self.manager.nodes.list()]

    def _node_ids(self) -> list[str]:
        return sorted(str(n["ID"]) for n in self._nodes())

    def node_address(self, ref: SandboxRef) -> str | None:
        """The address of the node a sandbox runs on (where its published sshd port is)."""
        service = self._service(ref.name)
        return None if service is None else self._node_addr(_pinned_node(service.attrs))

    def _node_addr(self, node_id: str) -> str:
        with _engine_errors(f"inspect swarm node {node_id}"):
            return str(self.manager.nodes.get(node_id).attrs["Status"]["Addr"])

    def ping(self) -> None:
        try:
            info = self.manager.info()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise self._unreachable() from exc
        if not (info.get("Swarm") or {}).get("ControlAvailable"):
            raise PrerequisiteError(f"the engine at {self.manager_url} is not a swarm manager",
                                    "point sandbox.swarm_manager at a manager (`docker node ls` works there)")
        for node_id in self._node_ids():
            self.node(node_id).ping()

    # ---- images: every node builds the same context (the tag is its content hash) -------------

    def build(self, request: BuildRequest) -> ImageRef:
        refs = [self.node(node_id).build(request) for node_id in self._node_ids()]
        return replace(refs[0], cached=all(ref.cached for ref in refs))

    def image_exists(self, tag: str) -> bool:
        return all(self.node(node_id).image_exists(tag) for node_id in self._node_ids())

    # ---- placement ----------------------------------------------------------------------------

    def _trial_node(self, trial_id: str) -> str | None:
        """The node holding a trial's volumes or containers, if any."""
        selector = {"label": f"{LABEL_TRIAL}={trial_id}"}
        for node_id in self._node_ids():
            client = self.node(node_id).client
            with _engine_errors(f"look for trial {trial_id} on node {node_id}"):
                if client.volumes.list(filters=selector) or client.containers.list(all=True, filters=selector,
                                                                                   ignore_removed=True):
                    return node_id
        return None

    def free_memory(self) -> dict[str, int]:
        """Ready, active nodes → memory less the limits of this store's sandboxes placed there."""
        free: dict[str, int] = {}
        for attrs in self._nodes():
            if (attrs.get("Status") or {}).get("State") != "ready" or \
                    (attrs.get("Spec") or {}).get("Availability") != "active":
                continue
            free[str(attrs["ID"])] = int(attrs["Description"]["Resources"]["MemoryBytes"])
        for service in self._services():
            node_id = _pinned_node(service.attrs)
            limits = (service.attrs["Spec"]["TaskTemplate"].get("Resources") or {}).get("Limits") or {}
            if node_id in free:
                free[node_id] -= int(limits.get("MemoryBytes") or 0)
        return free

    def _place(self, trial_id: str) -> str:
        held = self._trial_node(trial_id)
        if held is not None:
            return held
        free = self.free_memory()
        if not free:
            raise SandboxError("no swarm node is ready and active", "check `docker node ls` on the manager")
        return max(sorted(free), key=lambda node_id: free[node_id])

    # ---- sandboxes ----------------------------------------------------------------------------

    def _services(self) -> list[Any]:
        filters = {"label": f"{LABEL_MANAGED}={MANAGED_BY}"}
        with _engine_errors("list the swarm services"):
            services = self.manager.services.list(filters=filters)
        return [s for s in services if (s.attrs["Spec"].get("Labels") or {}).get(LABEL_INSTANCE) == self.instance]

    def _service(self, name: str) -> Any | None:
        with _engine_errors(f"inspect service {name}"):
            for service in self.manager.services.list(filters={"name": name}):
                if service.name == name:
                    return service
        return None

    def _labels(self, spec: SandboxSpec) -> dict[str, str]:
        labels = {LABEL_TRIAL: spec.trial_id, LABEL_MANAGED: MANAGED_BY, LABEL_ROLE: spec.role}
        if self.instance:
            labels[LABEL_INSTANCE] = self.instance
        return labels

    def create(self, spec: SandboxSpec) -> SandboxRef:
        _check_name("trial id", spec.trial_id)
        _check_name("role", spec.role)
        if spec.role != "sandbox":
            return self.node(self._place(spec.trial_id)).create(spec)
        name = container_name(spec.trial_id, spec.role)
        existing = self._service(name)
        if existing is not None:
            return self._ref(existing)
        if spec.network_disabled:
            raise UsageError(f"sandbox spec for trial {spec.trial_id}: network_disabled on the swarm backend",
                             "a swarm sandbox needs its network; only verifiers run without one")
        service_host = self.service_host
        if spec.network is not None and not service_host:
            raise PrerequisiteError("a host-only swarm sandbox needs sandbox.swarm_service_host",
                                    "set it to the address where the swarm nodes reach this host's service "
                                    "(and include it in service.bind)")
        node_id = self._place(spec.trial_id)
        node = self.node(node_id)
        made: list[str] = []
        mounts: list[Any] = []
        overlay: str | None = None
        try:
            for volume, target in spec.volumes.items():
                _check_name("volume", volume)
                if not target.startswith("/"):
                    raise UsageError(f"sandbox spec for trial {spec.trial_id}: volume '{volume}' mount "
                                     f"point '{target}' is not absolute", "mount points are absolute paths")
                full = volume_name(spec.trial_id, volume)
                if node._ensure_volume(full, spec.trial_id):
                    made.append(full)
                mounts.append(Mount(target=target, source=full, type="volume"))
            image_id = self._image_id(node, spec.image, name)
            self._create_files_holder(node, spec, name, image_id, mounts)
            if spec.network is not None and service_host:
                overlay = self._ensure_overlay(spec)
                self._create_door(node, spec, name, image_id, overlay, service_host)
            service = self._create_service(spec, name, node_id, image_id, mounts, overlay)
        except BaseException:
            self._remove_door(node, name)
            if overlay is not None:
                self._remove_overlay(overlay)
            self._remove_files_holder(node, name)
            for full in made:
                node._remove_volume(full, quiet=True)
            raise
        self._log.info("sandbox.created", trial_id=spec.trial_id, service=name, node=node_id, image=spec.image,
                       env_keys=sorted(spec.env))
        return self._ref(service)

    def _image_id(self, node: DockerBackend, tag: str, name: str) -> str:
        image = node._image(tag)
        if image is None:
            raise SandboxError(f"cannot create service {name}: image {tag} does not exist on its node",
                               "build it first (`trial templates check` builds on every node)")
        return str(image.id)

    def _create_files_holder(self, node: DockerBackend, spec: SandboxSpec, name: str, image_id: str,
                             mounts: list[Any]) -> None:
        labels = {**self._labels(spec), LABEL_ROLE: "files"}
        with _engine_errors(f"create the files container of {name}"):
            node.client.containers.create(
                image_id, name=name + FILES_SUFFIX, command=["true"], user=spec.user, labels=labels,
                mounts=mounts, network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"],
                read_only=True)

    def _remove_files_holder(self, node: DockerBackend, name: str) -> None:
        with _engine_errors(f"remove the files container of {name}"), suppress(docker.errors.NotFound):
            node.client.containers.get(name + FILES_SUFFIX).remove(force=True)

    def _create_door(self, node: DockerBackend, spec: SandboxSpec, name: str, image_id: str,
                     overlay: str, service_host: str) -> None:
        """The sandbox's door (orchestrator.sandbox.door), created with it and started before it."""
        bridge = self._ensure_door_network(node)
        args = door.relays(spec.host_ports, service_host, name, SSH_PORT_IN_CONTAINER)
        if not spec.publish_ssh:
            args = args[:-1]
        labels = {**self._labels(spec), LABEL_ROLE: "door"}
        options = door.container_options(name=name + door.SUFFIX, image_id=image_id, labels=labels, network=bridge,
                                         ssh_bind=spec.ssh_bind, ssh_host_port=spec.ssh_host_port, args=args)
        if not spec.publish_ssh:
            del options["ports"]
        # The names the sandbox knows the host by (`host-gateway` on one host) are the door's here.
        aliases = sorted(host for host, target in spec.extra_hosts.items() if target == "host-gateway")
        with _engine_errors(f"create the door of {name}"):
            container = node.client.containers.create(image_id, **options)
            # By name: a worker learns of a swarm network only when something of its own attaches.
            node.client.api.connect_container_to_network(container.id, overlay, aliases=aliases)

    def _ensure_door_network(self, node: DockerBackend) -> str:
        """The node's bridge for doors: NAT out (to the host service), nothing between its containers."""
        name = door.network_name(self.instance)
        with _engine_errors(f"create network {name}"):
            if not _has_network(node.client, name):
                labels = {LABEL_MANAGED: MANAGED_BY, LABEL_EGRESS: "door"}
                if self.instance:
                    labels[LABEL_INSTANCE] = self.instance
                try:
                    node.client.networks.create(name, driver="bridge", labels=labels,
                                                options={"com.docker.network.bridge.enable_icc": "false"})
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
        return name

    def _door(self, node: DockerBackend, name: str) -> Any | None:
        with _engine_errors(f"inspect the door of {name}"):
            try:
                return node.client.containers.get(name + door.SUFFIX)
            except docker.errors.NotFound:
                return None

    def _remove_door(self, node: DockerBackend, name: str) -> None:
        with _engine_errors(f"remove the door of {name}"), suppress(docker.errors.NotFound):
            node.client.containers.get(name + door.SUFFIX).remove(force=True)

    def _ensure_overlay(self, spec: SandboxSpec) -> str:
        """The trial's internal overlay (no route out, nobody else on it); attachable for its door."""
        name = door.overlay_name(spec.trial_id)
        with _engine_errors(f"create network {name}"):
            if not _has_network(self.manager, name):
                labels = {**self._labels(spec), LABEL_EGRESS: "host-only"}
                del labels[LABEL_ROLE]
                try:
                    self.manager.networks.create(name, driver="overlay", internal=True, attachable=True,
                                                 labels=labels, scope="swarm")
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
        return name

    def _remove_overlay(self, name: str) -> None:
        """Remove it once its last attachment is gone (a node lets go of a door's a moment later)."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        while True:
            try:
                with suppress(docker.errors.NotFound):
                    for network in self.manager.networks.list(names=[name]):
                        if network.name == name:
                            network.remove()
                return
            except docker.errors.APIError as exc:
                if time.monotonic() > deadline:
                    raise SandboxError(f"could not remove network {name}: {exc.explanation}",
                                       "run `trial gc` again once its containers are gone") from exc
            except requests.exceptions.RequestException as exc:
                raise self._unreachable() from exc
            time.sleep(TASK_POLL_S)

    def _create_service(self, spec: SandboxSpec, name: str, node_id: str, image_id: str,
                        mounts: list[Any], overlay: str | None) -> Any:
        resources = Resources(cpu_limit=round(spec.cpus * _NS), mem_limit=_bytes(spec.memory))
        resources["Limits"]["Pids"] = spec.pids
        tmpfs = [Mount(target=target, source=None, type="tmpfs", tmpfs_size=_tmpfs_size(options))
                 for target, options in spec.tmpfs.items()]
        ports = []
        if spec.publish_ssh and overlay is None:
            port: dict[str, Any] = {"Protocol": "tcp", "TargetPort": SSH_PORT_IN_CONTAINER, "PublishMode": "host"}
            if spec.ssh_host_port:
                port["PublishedPort"] = spec.ssh_host_port
            ports.append(port)
        if spec.internal_network:
            raise UsageError(f"sandbox spec for trial {spec.trial_id}: internal_network on a swarm sandbox",
                             "internal networks are for verification runs, which run as plain containers")
        network = overlay or DEFAULT_NETWORK
        if overlay is None:
            self._ensure_network(network)
        options: dict[str, Any] = {
            "name": name, "labels": self._labels(spec), "container_labels": self._labels(spec),
            "env": [f"{key}={value}" for key, value in spec.env.items()],
            "user": spec.user, "workdir": spec.workdir, "mounts": [*mounts, *tmpfs],
            "cap_drop": ["ALL"], "read_only": spec.read_only_root, "init": True,
            "resources": resources, "restart_policy": RestartPolicy(condition="none"),
            "constraints": [f"node.id=={node_id}"], "mode": {"Replicated": {"Replicas": 0}},
            "networks": [network],
            # On its overlay the sandbox is found by its task's own address (the door's sshd relay).
            "endpoint_spec": EndpointSpec(ports=ports) if ports else
            EndpointSpec(mode="dnsrr") if overlay else None,
            "stop_grace_period": 10 * _NS,
        }
        if spec.command is not None:
            options["command"] = list(spec.command)
        with _engine_errors(f"create service {name}"):
            try:
                return self.manager.services.create(image_id, **options)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    raced = self._service(name)
                    if raced is not None:
                        return raced
                raise

    def _ensure_network(self, name: str) -> None:
        """A swarm-scoped bridge whose options come from a config-only network on every node: a
        swarm-scoped bridge drops the options it is created with, and without them the node would
        NAT its sandboxes out and let them reach each other."""
        _check_name("network", name)
        labels = {LABEL_MANAGED: MANAGED_BY, LABEL_EGRESS: "host-only"}
        if self.instance:
            labels[LABEL_INSTANCE] = self.instance
        config = name + CONFIG_SUFFIX
        for node_id in self._node_ids():
            client = self.node(node_id).client
            with _engine_errors(f"create network {config} on node {node_id}"):
                if not _has_network(client, config):
                    self._create_network_raw(client, {
                        "Name": config, "Driver": "bridge", "ConfigOnly": True, "Labels": labels,
                        "Options": {"com.docker.network.bridge.enable_ip_masquerade": "false",
                                    "com.docker.network.bridge.enable_icc": "false"}})
        with _engine_errors(f"create network {name}"):
            if not _has_network(self.manager, name):
                self._create_network_raw(self.manager, {
                    "Name": name, "Driver": "bridge", "Scope": "swarm",
                    "ConfigFrom": {"Network": config}})

    def _create_network_raw(self, client: Any, body: dict[str, Any]) -> None:
        # The SDK has no ConfigOnly / ConfigFrom; the engine API has had them since 1.30.
        api = client.api
        try:
            api._result(api._post_json(api._url("/networks/create"), data=body), json=True)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # made meanwhile by a concurrent create
                raise

    def _ref(self, service: Any) -> SandboxRef:
        spec = service.attrs["Spec"]
        labels = spec.get("Labels") or {}
        mounts = (spec["TaskTemplate"].get("ContainerSpec") or {}).get("Mounts") or []
        volumes = {str(m["Target"]): str(m["Source"]) for m in mounts if m.get("Type") == "volume"}
        task = self._running_task(service)
        port = None
        if task is not None:
            for published in (task["Status"].get("PortStatus") or {}).get("Ports") or []:
                if published.get("TargetPort") == SSH_PORT_IN_CONTAINER:
                    port = int(published["PublishedPort"])
            if port is None and self._on_overlay(service):
                port = self._door_port(self.node(_pinned_node(service.attrs)), str(service.name))
        return SandboxRef(id=str(service.id), name=str(service.name), trial_id=str(labels.get(LABEL_TRIAL, "")),
                          volumes=volumes, ssh_port=port, host=self._node_addr(_pinned_node(service.attrs)))

    @staticmethod
    def _on_overlay(service: Any) -> bool:
        """Host-only: the sandbox reaches the world through its door."""
        endpoint = (service.attrs["Spec"].get("EndpointSpec") or {})
        return str(endpoint.get("Mode")) == "dnsrr"

    def _door_port(self, node: DockerBackend, name: str) -> int | None:
        container = self._door(node, name)
        if container is None:
            return None
        bound = ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{door.SSH_LISTEN}/tcp")
        return int(bound[0]["HostPort"]) if bound else None

    def _tasks(self, service: Any) -> list[dict[str, Any]]:
        with _engine_errors(f"list the tasks of {service.name}"):
            try:
                return [dict(task) for task in service.tasks()]
            except docker.errors.NotFound:
                return []

    def _running_task(self, service: Any) -> dict[str, Any] | None:
        for task in self._tasks(service):
            if task.get("DesiredState") == "running" and task["Status"].get("State") == "running":
                return task
        return None

    def _replicas(self, service: Any) -> int:
        return int(((service.attrs["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)

    def _scale(self, service: Any, replicas: int) -> None:
        """Scale, and mark the service as started once: Swarm forgets the tasks of a scaled-down slot,
        so task history cannot tell a stopped sandbox from one that never ran."""
        with _engine_errors(f"scale service {service.name} to {replicas}"):
            service.reload()
            labels = dict(service.attrs["Spec"].get("Labels") or {})
            if replicas:
                labels[LABEL_STARTED] = "1"
            if self._replicas(service) != replicas or labels != (service.attrs["Spec"].get("Labels") or {}):
                service.client.api.update_service(service.id, service.version, mode=ServiceMode("replicated", replicas),
                                                  labels=labels, fetch_current_spec=True)

    def _located(self, ref: SandboxRef) -> tuple[Any | None, DockerBackend | None, SandboxRef | None]:
        """(service, its node, the container to act on) — or, for a plain container, (None, node, ref)."""
        service = self._service(ref.name)
        if service is not None:
            node = self.node(_pinned_node(service.attrs))
            task = self._running_task(service)
            if task is not None:
                container_id = str(task["Status"]["ContainerStatus"]["ContainerID"])
                return service, node, SandboxRef(id=container_id, name=ref.name, trial_id=ref.trial_id)
            return service, node, None
        for node_id in self._node_ids():
            node = self.node(node_id)
            if node._container_or_none(ref) is not None:
                return None, node, ref
        return None, None, None

    def _missing(self, ref: SandboxRef) -> SandboxError:
        return SandboxError(f"container {ref.name} ({ref.id[:12]}) does not exist",
                            "it was removed; create the sandbox again (`trial launch` resumes)")

    def start(self, ref: SandboxRef) -> SandboxRef:
        service, node, target = self._located(ref)
        if service is None:
            if node is None or target is None:
                raise self._missing(ref)
            return node.start(target)
        if target is not None:
            return self._ref(service)
        if node is not None:
            self._start_door(node, ref.name)
        self._scale(service, 1)
        deadline = time.monotonic() + self.start_timeout_s
        running_since: float | None = None
        while True:
            tasks = [t for t in self._tasks(service) if t.get("DesiredState") == "running"]
            states = [str(t["Status"].get("State")) for t in tasks]
            now = time.monotonic()
            failed = [t for t in self._tasks(service) if t["Status"].get("State") in ("failed", "rejected")
                      or (t["Status"].get("State") == "complete" and running_since is not None)]
            if failed:
                self._start_failed(service, node, failed[0], ref)
            if "running" in states:
                running_since = running_since or now
                if now - running_since >= self.start_settle_s or self._sshd_answers(service):
                    break
            elif now > deadline:
                self._scale(service, 0)
                if node is not None:
                    self._stop_door(node, ref.name)
                why = "; ".join(sorted({str(t["Status"].get("Err") or t["Status"].get("Message") or "")
                                        for t in tasks} - {""}))
                raise SandboxError(f"service {ref.name} is still '{','.join(states) or 'pending'}' after "
                                   f"{self.start_timeout_s:.0f} s ({why or 'no reason given'})",
                                   "check `docker service ps` on the manager")
            time.sleep(TASK_POLL_S)
        with _engine_errors(f"inspect service {ref.name}"):
            service.reload()
        started = self._ref(service)
        self._log.info("sandbox.started", trial_id=ref.trial_id, service=ref.name, ssh_port=started.ssh_port)
        return started

    def _sshd_answers(self, service: Any) -> bool:
        """Whether the sandbox's sshd sends its banner at the address and port candidates are given
        (the node's published port, or its door's): its command got through its setup, so an
        instant exit is ruled out without waiting out the settle window, and the way in is open.
        A node this host cannot reach leaves the settle window to decide, as before."""
        try:
            ref = self._ref(service)
        except SandboxError:
            return False
        if not ref.ssh_port or not ref.host:
            return False
        try:
            with socket.create_connection((ref.host, ref.ssh_port), timeout=SSH_PROBE_S) as conn:
                conn.settimeout(SSH_PROBE_S)
                banner = b""
                while len(banner) < 4:
                    chunk = conn.recv(4 - len(banner))
                    if not chunk:
                        break
                    banner += chunk
        except OSError:
            return False
        return banner == b"SSH-"

    def _start_door(self, node: DockerBackend, name: str) -> None:
        container = self._door(node, name)
        if container is None or container.status == "running":
            return
        with _engine_errors(f"start the door of {name}"):
            container.start()
            # Open once its relay says so; one that exits (an image without python3) is said here,
            # not found later as a sandbox that reaches nothing.
            deadline = time.monotonic() + DOOR_OPEN_S
            while b"door open" not in container.logs(stdout=True, stderr=False):
                container.reload()
                if container.status != "running" or time.monotonic() > deadline:
                    logs = container.logs(stdout=True, stderr=True, tail=5).decode(errors="replace").strip()
                    raise SandboxError(f"the door of {name} did not open ({container.status}): "
                                       f"{' | '.join(logs.splitlines()) or 'no output'}",
                                       "the door runs python3 from the trial's image: check that it has one")
                time.sleep(TASK_POLL_S)

    def _stop_door(self, node: DockerBackend, name: str) -> None:
        container = self._door(node, name)
        if container is None:
            return
        with _engine_errors(f"stop the door of {name}"), suppress(docker.errors.NotFound):
            container.stop(timeout=2)

    def _start_failed(self, service: Any, node: DockerBackend | None, task: dict[str, Any], ref: SandboxRef) -> None:
        status = task["Status"]
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        error = str(status.get("Err") or "")
        logs = ""
        container_id = (status.get("ContainerStatus") or {}).get("ContainerID")
        if node is not None and container_id:
            with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                raw = node.client.containers.get(container_id).logs(stdout=True, stderr=True, tail=20)
                logs = raw.decode(errors="replace").strip()
        self._scale(service, 0)
        if node is not None:
            self._stop_door(node, ref.name)
        last = " | ".join(line for line in logs.splitlines() if line.strip()) or "(no output)"
        detail = f"; {error}" if error else ""
        raise SandboxError(f"container {ref.name} exited at once with code {code}{detail}; last output: {last}",
                           "the service was scaled to 0 (volumes kept); fix the image's CMD or the spec's command")

    def stop(self, ref: SandboxRef, timeout_s: int = 10) -> None:
        service, node, target = self._located(ref)
        if service is None:
            if node is not None and target is not None:
                node.stop(target, timeout_s=timeout_s)
            return
        self._scale(service, 0)
        deadline = time.monotonic() + timeout_s + 20
        while self._running_task(service) is not None or self._task_container_running(service, node):
            if time.monotonic() > deadline:
                raise SandboxError(f"service {ref.name} did not stop in {timeout_s + 20} s",
                                   "check `docker service ps` on the manager")
            time.sleep(TASK_POLL_S)
        self._forget_tasks(service, node)
        if node is not None:
            self._stop_door(node, ref.name)
        self._log.info("sandbox.stopped", trial_id=ref.trial_id, service=ref.name)

    def _forget_tasks(self, service: Any, node: DockerBackend | None) -> None:
        """Remove the stopped task's container and wait (bounded) until the manager forgets the task:
        a slot whose old task lingers in `remove` keeps the next start pending indefinitely."""
        if node is not None:
            with _engine_errors(f"remove the stopped containers of {service.name}"):
                for container in node.client.containers.list(
                        all=True, filters={"label": f"com.docker.swarm.service.id={service.id}"}, ignore_removed=True):
                    with suppress(docker.errors.NotFound):
                        container.remove(force=True)
        deadline = time.monotonic() + REMOVE_WAIT_S
        while self._tasks(service) and time.monotonic() < deadline:
            time.sleep(TASK_POLL_S)

    def _task_container_running(self, service: Any, node: DockerBackend | None) -> bool:
        if node is None:
            return False
        with _engine_errors(f"list the containers of {service.name}"):
            # The node removes a task's container on its own: one gone between list and inspect is fine.
            return bool(node.client.containers.list(filters={"label": f"com.docker.swarm.service.id={service.id}"},
                                                    ignore_removed=True))

    def remove(self, ref: SandboxRef, *, volumes: bool = True) -> None:
        service, node, target = self._located(ref)
        if service is None:
            if node is not None and target is not None:
                node.remove(target, volumes=volumes)
            return
        names = set(ref.volumes.values()) | set(self._ref(service).volumes.values())
        if node is None:  # a service always has its node
            raise self._missing(ref)
        with _engine_errors(f"remove service {ref.name}"), suppress(docker.errors.NotFound):
            service.remove()
        # The node removes the task containers after the service is gone; the volumes wait for them.
        deadline = time.monotonic() + REMOVE_WAIT_S
        selector = {"label": f"com.docker.swarm.service.id={service.id}"}
        while True:
            with _engine_errors(f"list the containers of {ref.name}"):
                left = node.client.containers.list(all=True, filters=selector, ignore_removed=True)
                if not left:
                    break
                if time.monotonic() > deadline:
                    for container in left:
                        with suppress(docker.errors.NotFound):
                            container.remove(force=True)
                    break
            time.sleep(TASK_POLL_S)
        self._remove_files_holder(node, ref.name)
        self._remove_door(node, ref.name)
        trial_id = _trial_of(service) or ref.trial_id
        if trial_id:
            self._remove_overlay(door.overlay_name(trial_id))
        if volumes:
            for name in sorted(names):
                node._remove_volume(name)
        self._log.info("sandbox.removed", trial_id=ref.trial_id, service=ref.name, volumes=volumes)

    def status(self, ref: SandboxRef) -> SandboxStatus:
        service, node, target = self._located(ref)
        if service is None:
            return "missing" if node is None or target is None else node.status(target)
        if target is not None:
            return "running"
        return "exited" if (service.attrs["Spec"].get("Labels") or {}).get(LABEL_STARTED) else "created"

    # ---- moving a sandbox to another node (draining) -------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        """Every node as the manager sees it, with the sandboxes of this store pinned to it."""
        pinned: dict[str, list[str]] = {}
        for service in self._services():
            pinned.setdefault(_pinned_node(service.attrs), []).append(_trial_of(service))
        # Other data dirs' sandboxes: draining their node would stop them (they are pinned there).
        others: dict[str, int] = {}
        with _engine_errors("list the swarm services"):
            for service in self.manager.services.list(filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}"}):
                if (service.attrs["Spec"].get("Labels") or {}).get(LABEL_INSTANCE) != self.instance:
                    with suppress(SandboxError):
                        node_id = _pinned_node(service.attrs)
                        others[node_id] = others.get(node_id, 0) + 1
        free = self.free_memory()
        return [{"id": str(attrs["ID"]), "hostname": str((attrs.get("Description") or {}).get("Hostname", "")),
                 "address": str((attrs.get("Status") or {}).get("Addr", "")),
                 "role": str((attrs.get("Spec") or {}).get("Role", "")),
                 "availability": str((attrs.get("Spec") or {}).get("Availability", "")),
                 "state": str((attrs.get("Status") or {}).get("State", "")),
                 "free_memory": free.get(str(attrs["ID"])), "trials": sorted(pinned.get(str(attrs["ID"]), [])),
                 "other_sandboxes": others.get(str(attrs["ID"]), 0)}
                for attrs in sorted(self._nodes(), key=lambda a: str((a.get("Description") or {}).get("Hostname")))]

    def set_availability(self, node_id: str, availability: str) -> None:
        """`active`, `pause` (nothing new lands, running tasks stay) or `drain`."""
        with _engine_errors(f"set swarm node {node_id} to {availability}"):
            node = self.manager.nodes.get(node_id)
            node.update({**node.attrs["Spec"], "Availability": availability})

    def node_of(self, ref: SandboxRef) -> str:
        service = self._service(ref.name)
        if service is None:
            raise self._missing(ref)
        return _pinned_node(service.attrs)

    def move(self, ref: SandboxRef, target_id: str) -> SandboxRef:
        """Move a sandbox and its volumes to another node: stop it, copy each volume through the two
        engines (the source's files container archives it, a helper container on the target unpacks
        it), re-pin the service there and start it again if it was running. Any failure before the
        re-pinned sandbox runs leaves it on its node as it was (started again if it ran) and says so."""
        service = self._service(ref.name)
        if service is None:
            raise self._missing(ref)
        source_id = _pinned_node(service.attrs)
        if source_id == target_id:
            return self._ref(service)
        source, target = self.node(source_id), self.node(target_id)
        running = self._running_task(service) is not None
        trial_id = _trial_of(service)
        self.stop(ref)
        made: list[str] = []
        try:
            image_id = self._same_image(source, target, str(service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
                                                            ["Image"]), ref.name)
            mounts = self._copy_volumes(source, target, ref.name, trial_id, made)
            self._recreate_holder(source, target, ref.name, image_id, mounts)
            old_door = self._door(source, ref.name)
            if old_door is not None:
                self._copy_door(old_door, target, ref.name, image_id)
            self._repin(service, target_id, image_id)
        except BaseException as exc:
            self._remove_door(target, ref.name)
            self._remove_files_holder(target, ref.name)
            for name in made:
                target._remove_volume(name, quiet=True)
            if running:
                self.start(ref)
            if isinstance(exc, SandboxError):
                raise SandboxError(f"could not move {ref.name} to node {target_id}: {exc.message}; it stays on "
                                   f"node {source_id}" + (" and runs again" if running else ""), exc.hint) from exc
            raise
        moved = self._ref(self._service(ref.name)) if not running else self._start_repinned(
            ref, service, source_id, target_id, made)
        # The sandbox runs on its new node: what it left on the old one goes.
        self._remove_door(source, ref.name)
        self._remove_files_holder(source, ref.name)
        for name in sorted(set(moved.volumes.values())):
            source._remove_volume(name, quiet=True)
        self._log.info("sandbox.moved", trial_id=trial_id, service=ref.name, source=source_id, target=target_id)
        return moved

    def _start_repinned(self, ref: SandboxRef, service: Any, source_id: str, target_id: str,
                        made: list[str]) -> SandboxRef:
        try:
            return self.start(ref)
        except SandboxError as exc:
            # Back where its volumes still are, as it was.
            source, target = self.node(source_id), self.node(target_id)
            fresh = self._service(ref.name) or service
            self._repin(fresh, source_id, self._same_image(target, source, str(
                fresh.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]), ref.name))
            self._remove_door(target, ref.name)
            self._remove_files_holder(target, ref.name)
            for name in made:
                target._remove_volume(name, quiet=True)
            self.start(ref)
            raise SandboxError(f"could not start {ref.name} on node {target_id}: {exc.message}; it runs again on "
                               f"node {source_id}", exc.hint) from exc

    def _same_image(self, source: DockerBackend, target: DockerBackend, image_id: str, name: str) -> str:
        """The id on `target` of the image `source` knows as `image_id` (each node builds its own)."""
        with _engine_errors(f"inspect the image of {name}"):
            tags = list(source.client.images.get(image_id).tags or [])
        for tag in tags:
            found = target._image(tag)
            if found is not None:
                return str(found.id)
        raise SandboxError(f"the image of {name} ({', '.join(tags) or image_id[:19]}) is not on the target node",
                           "build it there first (`trial templates check` builds on every node)")

    def _copy_volumes(self, source: DockerBackend, target: DockerBackend, name: str, trial_id: str,
                      made: list[str]) -> list[Any]:
        """Each volume of the sandbox, made on the target and filled from the source; the mounts."""
        holder = self._holder(source, name)
        mounts = [m for m in holder.attrs.get("Mounts") or [] if m.get("Type") == "volume"]
        helper_mounts = []
        for index, mount in enumerate(mounts):
            if target._ensure_volume(str(mount["Name"]), trial_id):
                made.append(str(mount["Name"]))
            # Mounted at /move/<i>/<its own base name>: the source's archive of /workspace holds
            # `workspace/...`, so unpacking it at /move/<i> fills the volume.
            base = str(mount["Destination"]).rstrip("/").rsplit("/", 1)[-1]
            helper_mounts.append(Mount(target=f"/move/{index}/{base}", source=str(mount["Name"]), type="volume"))
        helper_name = f"{name}-move"
        with _engine_errors(f"create the copy helper of {name}"):
            with suppress(docker.errors.NotFound):
                target.client.containers.get(helper_name).remove(force=True)
            helper = target.client.containers.create(
                holder.attrs["Image"] if target._image(holder.attrs["Image"]) else self._same_image(
                    source, target, str(holder.attrs["Image"]), name),
                name=helper_name, command=["true"], mounts=helper_mounts, network_mode="none", cap_drop=["ALL"],
                security_opt=["no-new-privileges"], labels=dict(holder.labels or {}))
        try:
            for index, mount in enumerate(mounts):
                with _engine_errors(f"copy {mount['Destination']} of {name} between nodes"):
                    stream, _stat = holder.get_archive(str(mount["Destination"]))
                    if not helper.put_archive(f"/move/{index}", stream):
                        raise SandboxError(f"the target node refused the copy of {mount['Destination']} of {name}",
                                           "check the target node's engine log")
        finally:
            with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                helper.remove(force=True)
        return [Mount(target=str(m["Destination"]), source=str(m["Name"]), type="volume") for m in mounts]

    def _holder(self, node: DockerBackend, name: str) -> Any:
        with _engine_errors(f"inspect the files container of {name}"):
            try:
                return node.client.containers.get(name + FILES_SUFFIX)
            except docker.errors.NotFound as exc:
                raise SandboxError(f"the files container of {name} is missing on its node",
                                   "recreate the sandbox (`trial launch --resume`) before moving it") from exc

    def _recreate_holder(self, source: DockerBackend, target: DockerBackend, name: str, image_id: str,
                         mounts: list[Any]) -> None:
        holder = self._holder(source, name)
        with _engine_errors(f"create the files container of {name}"):
            target.client.containers.create(
                image_id, name=name + FILES_SUFFIX, command=["true"], user=holder.attrs["Config"].get("User"),
                labels=dict(holder.labels or {}), mounts=mounts, network_mode="none", cap_drop=["ALL"],
                security_opt=["no-new-privileges"], read_only=True)

    def _copy_door(self, old: Any, target: DockerBackend, name: str, image_id: str) -> None:
        """The same door (relays, aliases, published port) on the target node."""
        config, networks = old.attrs["Config"], old.attrs["NetworkSettings"]["Networks"]
        bindings = (old.attrs["HostConfig"].get("PortBindings") or {}).get(f"{door.SSH_LISTEN}/tcp")
        bridge = self._ensure_door_network(target)
        options = door.container_options(
            name=name + door.SUFFIX, image_id=image_id, labels=dict(config.get("Labels") or {}), network=bridge,
            ssh_bind=str(bindings[0].get("HostIp") or "0.0.0.0") if bindings else "0.0.0.0",  # noqa: S104
            ssh_host_port=int(bindings[0].get("HostPort") or 0) if bindings else 0, args=list(config["Cmd"]))
        if not bindings:
            del options["ports"]
        with _engine_errors(f"create the door of {name}"):
            container = target.client.containers.create(image_id, **options)
            for network, settings in networks.items():
                if network != bridge:
                    aliases = [a for a in settings.get("Aliases") or [] if a != str(old.id)[:12]]
                    target.client.api.connect_container_to_network(container.id, network, aliases=aliases)

    def _repin(self, service: Any, node_id: str, image_id: str) -> None:
        with _engine_errors(f"pin service {service.name} to node {node_id}"):
            service.reload()
            spec = service.attrs["Spec"]
            task = dict(spec["TaskTemplate"])
            task["Placement"] = {**(task.get("Placement") or {}), "Constraints": [f"node.id=={node_id}"]}
            task["ContainerSpec"] = {**task["ContainerSpec"], "Image": image_id}
            service.client.api.update_service(service.id, service.version, task_template=task,
                                              fetch_current_spec=True)

    # ---- exec and files -----------------------------------------------------------------------

    def exec(self, ref: SandboxRef, argv: list[str], *, user: str | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None, timeout_s: int | None = None) -> ExecResult:
        if not argv:
            raise UsageError(f"exec in {ref.name}: empty command", "pass the program and its arguments")
        _service, node, target = self._located(ref)
        if node is None:
            raise self._missing(ref)
        if target is None:
            raise SandboxError(f"cannot run {argv[0]} in {ref.name}: the container is not running",
                               "start the sandbox first")
        return node.exec(target, argv, user=user, workdir=workdir, env=env, timeout_s=timeout_s)

    def _files_target(self, ref: SandboxRef) -> tuple[DockerBackend, SandboxRef]:
        """The running task's container, else the files container holding the same volumes."""
        _service, node, target = self._located(ref)
        if node is None:
            raise self._missing(ref)
        if target is None:
            holder = ref.name + FILES_SUFFIX
            target = SandboxRef(id=holder, name=holder, trial_id=ref.trial_id)
        return node, target

    def copy_in(self, ref: SandboxRef, dest_dir: str, tar_bytes: bytes) -> None:
        node, target = self._files_target(ref)
        node.copy_in(target, dest_dir, tar_bytes)

    def copy_out(self, ref: SandboxRef, path: str, *, max_bytes: int | None = None) -> bytes:
        node, target = self._files_target(ref)
        return node.copy_out(target, path, max_bytes=max_bytes)

    # ---- lookup and garbage collection ----------------------------------------------------------

    def find(self, trial_id: str, role: str = "sandbox") -> SandboxRef | None:
        if role == "sandbox":
            service = self._service(container_name(trial_id, role))
            return None if service is None else self._ref(service)
        for node_id in self._node_ids():
            found = self.node(node_id).find(trial_id, role)
            if found is not None:
                return found
        return None

    def list_managed(self, kinds: frozenset[ResourceKind] | None = None) -> list[ManagedResource]:
        found: list[ManagedResource] = []
        services: list[Any] = []
        if kinds is None or "container" in kinds:
            with _engine_errors("list the swarm services"):
                services = self.manager.services.list(filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}"})
        for service in services:
            labels = service.attrs["Spec"].get("Labels") or {}
            status = "running" if self._running_task(service) is not None else "exited"
            found.append(ManagedResource(kind="container", id=str(service.id), name=str(service.name),
                                         trial_id=labels.get(LABEL_TRIAL), status=status,
                                         instance=labels.get(LABEL_INSTANCE)))
        images: set[str] = set()
        doors: dict[str, str] = {}
        instances: dict[str, str | None] = {}
        for node_id in self._node_ids():
            for resource in self.node(node_id).list_managed(kinds):
                if resource.kind == "container" and (resource.name.endswith(FILES_SUFFIX) or "." in resource.name):
                    continue  # a service's files container or task container: the service stands for it
                if resource.kind == "network" and resource.name == door.network_name(self.instance):
                    doors[resource.name] = "in use" if "in use" in (doors.get(resource.name), resource.status) \
                        else "unused"
                    instances[resource.name] = resource.instance
                    continue
                if resource.kind in ("network", "firewall"):
                    continue  # node-local networks are verification runs' and go with their containers
                if resource.kind == "image":
                    if resource.name in images:
                        continue
                    images.add(resource.name)
                found.append(resource)
        found += [ManagedResource(kind="network", id=name, name=name, trial_id=None, status=status,
                                  instance=instances[name]) for name, status in doors.items()]
        return found + (self._swarm_networks() if kinds is None or "network" in kinds else [])

    def _swarm_networks(self) -> list[ManagedResource]:
        found: list[ManagedResource] = []
        # A swarm network with a config network cannot carry labels: its config networks (labelled,
        # one per node) say it is ours.
        configs: dict[str, dict[str, str]] = {}
        for node_id in self._node_ids():
            with _engine_errors(f"list the networks of node {node_id}"):
                for network in self.node(node_id).client.networks.list(
                        filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}"}):
                    if network.attrs.get("ConfigOnly"):
                        configs[str(network.name)] = dict(network.attrs.get("Labels") or {})
        with _engine_errors("list the swarm networks"):
            for network in self.manager.networks.list(filters={"scope": "swarm"}):
                config = str((network.attrs.get("ConfigFrom") or {}).get("Network") or "")
                if config not in configs:
                    continue
                in_use = str(network.name) in self._service_networks()
                found.append(ManagedResource(kind="network", id=str(network.id), name=str(network.name),
                                             trial_id=None, instance=configs[config].get(LABEL_INSTANCE),
                                             status="in use" if in_use else "unused"))
            # Each host-only trial's overlay (its sandbox and door): in use while either exists.
            used = self._service_networks()
            for network in self.manager.networks.list(filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}",
                                                               "driver": "overlay"}):
                labels = network.attrs.get("Labels") or {}
                trial_id = labels.get(LABEL_TRIAL)
                in_use = str(network.name) in used or bool(trial_id and self._trial_door(str(trial_id)))
                found.append(ManagedResource(kind="network", id=str(network.id), name=str(network.name),
                                             trial_id=trial_id, instance=labels.get(LABEL_INSTANCE),
                                             status="in use" if in_use else "unused"))
        return found

    def _trial_door(self, trial_id: str) -> bool:
        name = container_name(trial_id, "sandbox")
        return any(self._door(self.node(node_id), name) is not None for node_id in self._node_ids())

    def _service_networks(self) -> set[str]:
        names: set[str] = set()
        with _engine_errors("list the swarm networks in use"):
            by_id = {str(n.id): str(n.name) for n in self.manager.networks.list(filters={"scope": "swarm"})}
            for service in self.manager.services.list(filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}"}):
                for attached in service.attrs["Spec"]["TaskTemplate"].get("Networks") or []:
                    names.add(by_id.get(str(attached.get("Target")), str(attached.get("Target"))))
        return names

    def volume_usage(self) -> list[VolumeUsage]:
        return [usage for node_id in self._node_ids() for usage in self.node(node_id).volume_usage()]

    def create_network(self, name: str, trial_id: str) -> None:
        """An internal bridge on the trial's node for one verification run, whose bridge has no address
        of the node's (`inhibit_ipv4`): with no route out and nothing of the node to address, its
        containers reach only each other (on one host the host filter closes the host's addresses)."""
        _check_name("network", name)
        node = self.node(self._place(trial_id))
        labels = {LABEL_TRIAL: trial_id, LABEL_MANAGED: MANAGED_BY, LABEL_EGRESS: "internal"}
        if self.instance:
            labels[LABEL_INSTANCE] = self.instance
        with _engine_errors(f"create network {name}"):
            node.client.networks.create(name, driver="bridge", internal=True, labels=labels,
                                        options={"com.docker.network.bridge.inhibit_ipv4": "true"})

    def remove_network(self, name: str) -> None:
        for node_id in self._node_ids():
            self.node(node_id).remove_network(name)

    def remove_resource(self, resource: ManagedResource) -> None:
        ref = SandboxRef(id=resource.id, name=resource.name, trial_id=resource.trial_id or "")
        if resource.kind == "container" and self._service(resource.name) is not None:
            self.remove(ref, volumes=False)
        elif resource.kind == "network" and resource.name == door.network_name(self.instance):
            for node_id in self._node_ids():
                with _engine_errors(f"remove network {resource.name}", "a door still uses it"), \
                        suppress(docker.errors.NotFound):
                    self.node(node_id).client.networks.get(resource.name).remove()
        elif resource.kind == "network" and resource.trial_id and _has_network(self.manager, resource.name):
            self._remove_overlay(resource.name)
        elif resource.kind == "network" and _has_network(self.manager, resource.name):
            with _engine_errors(f"remove network {resource.name}", "a service still uses it"), \
                    suppress(docker.errors.NotFound):
                self.manager.networks.get(resource.id).remove()
            for node_id in self._node_ids():
                with _engine_errors(f"remove network {resource.name}{CONFIG_SUFFIX}"), \
                        suppress(docker.errors.NotFound):
                    self.node(node_id).client.networks.get(resource.name + CONFIG_SUFFIX).remove()
        else:
            for node_id in self._node_ids():
                node = self.node(node_id)
                with suppress(SandboxError):
                    if resource.kind == "volume" and not node.client.volumes.list(filters={"name": resource.name}):
                        continue
                    node.remove_resource(resource)
        self._log.info("sandbox.gc.removed", kind=resource.kind, name=resource.name, trial_id=resource.trial_id)



def _has_network(client: Any, name: str) -> bool:
    # The engine's name filter matches substrings: `x` would find `x-config`.
    return any(network.name == name for network in client.networks.list(names=[name]))


def _trial_of(service: Any) -> str:
    return str((service.attrs["Spec"].get("Labels") or {}).get(LABEL_TRIAL, ""))


def _pinned_node(attrs: dict[str, Any]) -> str:
    constraints = ((attrs["Spec"]["TaskTemplate"].get("Placement") or {}).get("Constraints")) or []
    for constraint in constraints:
        key, _, value = str(constraint).replace(" ", "").partition("==")
        if key == "node.id":
            return value
    raise SandboxError(f"service {attrs['Spec'].get('Name')} is not pinned to a node",
                       "it was not made by trial; remove it with `docker service rm`")


def _tmpfs_size(options: str) -> int | None:
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key == "size" and value:
            return _bytes(value)
    return None

