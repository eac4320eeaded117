"""The Docker backend: the candidate's sandbox and verifier containers on a real engine.

Talks to the engine through the docker SDK (`docker.from_env()`, so `DOCKER_HOST`,
including `ssh://`, is honoured), except for the calls a launch makes (ping, image and
container inspect, create, archive upload, start, exec), which go through the small client of
`orchestrator.sandbox.engine` so that a launch never imports the SDK (~50-110 ms here). Both
clients are made on first use, never at import, so that importing this module costs nothing
and a stopped engine is reported by the command that needs it, with a hint.

Hardening (DESIGN.md, "Sandbox hardening") and why each piece is there:

- `user=candidate` (uid 1000): the candidate and the agent never run as root, so a
  `sudo`-less shell cannot touch the image, sshd's host keys or other users' files.
- `cap_drop=["ALL"]`: no capability at all, not even the default set (CHOWN, NET_RAW,
  SETUID …) that root inside a container keeps; `/proc/self/status` shows CapEff 0.
- `security_opt=["no-new-privileges"]`: setuid binaries (su, passwd, mount) cannot raise
  privileges, so a binary left setuid in a template image is no way back to root.
- `mem_limit` with an equal `memswap_limit`: a hard memory cap with no swap, so a
  runaway build is OOM-killed inside its cgroup instead of pushing the host into swap.
- `nano_cpus` and `pids_limit`: a fork bomb or a busy loop stays within its share of
  the host, which other trials share.
- `read_only` root with tmpfs `/tmp` and `/run`: the image cannot be altered, so what the
  candidate leaves behind is exactly the named volumes (workspace and home), which is
  also what collection reads.
- named volumes only, as `type=volume` mounts whose names we build from the trial id:
  there is no bind mount of any host path and never the Docker socket (which would be
  root on the host). Names are checked, so a name can never turn into a host path.
- `init=True`: Docker's tiny init is PID 1 and reaps the zombies that agents and test
  runners leave, which would otherwise count against the pids limit.
- restart policy `no`: a sandbox that stops stays stopped until the orchestrator acts;
  a crash-looping container would hide the failure and keep consuming the host.
- labels `trial.id`, `trial.managed-by=trial`, `trial.role`: `trial gc` finds whatever
  we made, even when the store has forgotten it.
- verifiers (hidden tests) run with the network disabled; a sandbox on a host-only network
  (`SandboxSpec.network`) reaches the host service's port and nothing else: the bridge has
  no NAT and no inter-container traffic, and `egress.HostFirewall` drops everything else that
  leaves it (written when the network is made and again before every start, since a host
  reboot forgets them). Where this process cannot write those rules it says so, once.
- sshd is published on `ssh_bind` (all interfaces unless told), on a port Docker picks,
  the fixed `ssh_host_port`, or one from `SandboxSettings.ssh_port_range`.

`exec` timeouts run the command under coreutils `timeout` inside the container (it
signals the whole process group, so the command's children die with it, and escalates
to SIGKILL after a grace period). A timed-out command returns exit code 124 (137 when
it had to be killed) and a note on stderr. Every template image derives from the
Debian base image, which has coreutils.

Every docker SDK or requests exception is translated here into `SandboxError`,
`ImageBuildError` or `PrerequisiteError`; no library exception leaves this module.
"""

from __future__ import annotations

import calendar
import importlib
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.config import SandboxSettings
from orchestrator.errors import ImageBuildError, PrerequisiteError, SandboxError, TrialError, UsageError
from orchestrator.logging import get_logger
from orchestrator.sandbox import egress
from orchestrator.sandbox.base import (
    LABEL_EGRESS,
    LABEL_HOST_PORTS,
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
from orchestrator.sandbox.engine import (
    Engine,
    EngineError,
    EngineTimeout,
    EngineUnreachable,
    http_transport,
    sdk_transport,
)


class _LazyModule:
    """A module imported on first attribute use: the SDK's names (`docker.errors.NotFound`) stay
    written as they were, and a launch that never reaches one never imports the SDK. An `except`
    clause names its class only when an exception gets that far."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


docker: Any = _LazyModule("docker")
requests: Any = _LazyModule("requests")

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
ENGINE_HINT = "start it with `sudo systemctl start docker` or `sudo bash scripts/ensure-docker.sh`"
API_TIMEOUT_S = 60
"""HTTP timeout of ordinary engine calls (create, inspect, remove …)."""
BUILD_TIMEOUT_S = 3600
"""A build step may print nothing for a long while (apt, compilers); only a dead engine takes this long."""
BUILD_LOG_TAIL = 40
EXIT_LOG_TAIL = 20
TIMEOUT_GRACE_S = 5
"""Seconds between SIGTERM and SIGKILL for a timed-out exec."""
TIMEOUT_EXIT_CODES = (124, 137)
STOP_BEFORE_REMOVE_S = 5
SSH_PORT_KEY = f"{SSH_PORT_IN_CONTAINER}/tcp"

# Docker's own rule for container and volume names; checking it ourselves also rules out
# a "/" that would make the docker SDK treat a volume source as a host path.
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STEP_LINE = re.compile(r"^Step (\d+/\d+) : (.*)$")


class SandboxPathNotFound(SandboxError, LookupError):
    """A path asked of a container (copy in or out) does not exist in it."""


def container_name(trial_id: str, role: str) -> str:
    return f"trial-{trial_id}-{role}"


def volume_name(trial_id: str, volume: str) -> str:
    return f"trial-{trial_id}-{volume}"


def engine_url() -> str:
    """The engine address the docker SDK will use, for messages (read when called)."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _unreachable(url: str | None = None) -> PrerequisiteError:
    return PrerequisiteError(f"Docker Engine is not reachable at {url or engine_url()}", ENGINE_HINT)


def _sdk_loaded_error(exc: BaseException) -> bool:
    """An exception of the SDK or requests (only possible once they are imported)."""
    if "docker" not in sys.modules:
        return False
    return isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException))


def _explain(exc: BaseException) -> str:
    """The engine's own one-line explanation of an SDK exception."""
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(str(text).split())


@contextmanager
def _engine_errors(action: str, hint: str | None = None) -> Iterator[None]:
    """Turn docker SDK and requests exceptions raised while doing `action` into ours."""
    try:
        yield
    except TrialError:
        raise
    except EngineUnreachable as exc:
        raise _unreachable(exc.url) from exc
    except EngineTimeout as exc:
        raise SandboxError(f"Docker did not answer while trying to {action} ({exc})",
                           hint or f"check the engine at {exc.url} (`docker info`)") from exc
    except EngineError as exc:
        raise SandboxError(f"Docker could not {action}: {exc.explanation}",
                           hint or "see `docker info` and the engine's log (`journalctl -u docker`)") from exc
    except requests.exceptions.ConnectionError as exc:
        raise _unreachable() from exc
    except requests.exceptions.RequestException as exc:
        raise SandboxError(f"Docker did not answer while trying to {action} ({_explain(exc)})",
                           hint or f"check the engine at {engine_url()} (`docker info`)") from exc
    except docker.errors.DockerException as exc:
        if "Connection" in str(exc) and "API version" in str(exc):
            raise _unreachable() from exc
        raise SandboxError(f"Docker could not {action}: {_explain(exc)}",
                           hint or "see `docker info` and the engine's log (`journalctl -u docker`)") from exc


def _image_missing(exc: EngineError) -> bool:
    """A 404 about the image (the SDK's ImageNotFound test), not about a network or a mount."""
    text = exc.explanation
    return ("No such image" in text or "not found: does not exist or no pull access" in text
            or "repository does not exist" in text)


_BYTE_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _memory_bytes(value: str | int) -> int:
    """A Docker memory size (`512m`, `2g`, `1024`) in bytes, read as the SDK's `parse_bytes` reads it."""
    if isinstance(value, int):
        return value
    text = value
    if len(text) >= 2 and text[-2].isalpha() and text[-1] in "bB":
        text = text[:-1]
    if not text:
        return 0
    suffix = text[-1].lower()
    digits, unit = (text, "b") if suffix.isdigit() else (text[:-1], suffix)
    if unit not in _BYTE_UNITS:
        raise SandboxError(f"the memory limit '{value}' has no unit Docker knows",
                           "write it with b, k, m or g (e.g. sandbox.memory = \"2g\")")
    try:
        return int(float(digits) * _BYTE_UNITS[unit])
    except ValueError as exc:
        raise SandboxError(f"the memory limit '{value}' is not a number",
                           "write it like 512m or 2g (sandbox.memory)") from exc


class DockerBackend:
    """`SandboxBackend` on a Docker Engine (local socket or `DOCKER_HOST`)."""

    name = "docker"

    def __init__(self, settings: SandboxSettings, *, start_timeout_s: float = 30.0,
                 start_settle_s: float = 0.5, instance: str | None = None, engine_url: str | None = None) -> None:
        self.settings = settings
        self.engine_url = engine_url
        """The engine's address; None: `DOCKER_HOST`, else the local socket (as `docker.from_env`)."""
        self.instance = instance
        """Written as the `trial.instance` label on what this backend creates (see make_backend)."""
        self.build_leftover_age_s = 600.0
        """A `Created` build step container older than this is a leftover (see _build_leftovers)."""
        self.start_timeout_s = start_timeout_s
        """How long a started container may take to report `running`."""
        self.start_settle_s = start_settle_s
        """How long it must then stay running to count as started (catches instant exits), unless
        it shows sooner that it is up: sshd listening in a container that publishes it."""
        self._client: Any = None
        self._engine: Engine | None = None
        self._firewall: egress.HostFirewall | str | None = None
        self._log = get_logger(component="sandbox.docker")

    def _instance_label(self) -> dict[str, str]:
        return {LABEL_INSTANCE: self.instance} if self.instance else {}

    # ---- engine -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The docker SDK client, made on first use."""
        if self._client is None:
            try:
                if self.engine_url:
                    self._client = docker.DockerClient(base_url=self.engine_url, timeout=API_TIMEOUT_S)
                else:
                    self._client = docker.from_env(timeout=API_TIMEOUT_S)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise _unreachable(self.engine_url) from exc
        return self._client

    @property
    def engine(self) -> Engine:
        """The launch path's client (see the module docstring), made on first use: straight to a
        local socket or plain tcp engine, through the SDK's session for anything else."""
        if self._engine is None:
            url = self.engine_url or engine_url()
            transport = http_transport(url) or sdk_transport(self.client.api, url)
            self._engine = Engine(transport, timeout_s=API_TIMEOUT_S)
        return self._engine

    def ping(self) -> None:
        try:
            self.engine.ping()
        except (EngineError, EngineUnreachable, EngineTimeout) as exc:
            raise _unreachable(self.engine_url) from exc
        except Exception as exc:
            if _sdk_loaded_error(exc):
                raise _unreachable(self.engine_url) from exc
            raise

    # ---- images -------------------------------------------------------------------------

    def image_exists(self, tag: str) -> bool:
        return self._image_id(tag) is not None

    def _image_id(self, tag: str) -> str | None:
        with _engine_errors(f"inspect image {tag}"):
            attrs = self.engine.inspect("images", tag)
        return None if attrs is None else str(attrs["Id"])

    def _image(self, tag: str) -> Any | None:
        with _engine_errors(f"inspect image {tag}"):
            try:
                return self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                return None

    def build(self, request: BuildRequest) -> ImageRef:
        existing = self._image_id(request.tag)
        if existing is not None:
            self._log.debug("sandbox.build.cached", tag=request.tag)
            return ImageRef(tag=request.tag, id=existing, cached=True)
        dockerfile = request.context_dir / "Dockerfile"
        if not dockerfile.is_file():
            raise ImageBuildError(f"cannot build image {request.tag}: {dockerfile} does not exist",
                                  "every build context needs a Dockerfile at its top")
        self._log.info("sandbox.build.start", tag=request.tag, context=str(request.context_dir))
        started = time.monotonic()
        tail: deque[str] = deque(maxlen=BUILD_LOG_TAIL)
        step = ""
        hint_action = f"build image {request.tag}"
        with _engine_errors(hint_action, f"fix {dockerfile}; the engine refused the build"):
            stream = self.client.api.build(
                path=str(request.context_dir),
                tag=request.tag,
                buildargs=dict(request.buildargs),
                labels={**request.labels, LABEL_MANAGED: MANAGED_BY},
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                timeout=BUILD_TIMEOUT_S,
            )
            for chunk in stream:
                for line in str(chunk.get("stream", "")).splitlines():
                    if not line.strip():
                        continue
                    tail.append(line)
                    if matched := _STEP_LINE.match(line):
                        step = f"step {matched[1]} `{matched[2]}`"
                    self._log.debug("sandbox.build.line", tag=request.tag, line=line)
                if "error" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    error = " ".join(str(detail.get("message") or chunk["error"]).split())
                    self._build_failed(request, dockerfile, step, error, tail)
        image = self._image(request.tag)
        if image is None:
            self._build_failed(request, dockerfile, step,
                               "the engine reported no error but the tag is missing", tail)
        self._log.info("sandbox.build.done", tag=request.tag, seconds=round(time.monotonic() - started, 1))
        return ImageRef(tag=request.tag, id=str(image.id), cached=False)

    def _build_failed(self, request: BuildRequest, dockerfile: Any, step: str, error: str,
                      tail: deque[str]) -> NoReturn:
        where = f"at {step}" if step else "before its first step"
        shown = "\n".join(f"  | {line}" for line in tail) or "  | (no output)"
        self._log.error("sandbox.build.failed", tag=request.tag, step=step, error=error)
        raise ImageBuildError(
            f"image {request.tag} failed to build {where}: {error}",
            f"fix {dockerfile}; last {len(tail)} lines of the build log:\n{shown}",
        )

    # ---- containers ---------------------------------------------------------------------

    def create(self, spec: SandboxSpec) -> SandboxRef:
        _check_name("trial id", spec.trial_id)
        _check_name("role", spec.role)
        name = container_name(spec.trial_id, spec.role)
        if spec.name_suffix:
            _check_name("name suffix", spec.name_suffix)
            name = f"{name}-{spec.name_suffix}"
        found = self._inspect_container(name)
        if found is not None:
            self._log.debug("sandbox.create.exists", trial_id=spec.trial_id, container=name)
            return self._ref(found)
        if spec.publish_ssh and spec.network_disabled:
            raise UsageError(f"sandbox spec for trial {spec.trial_id}: publish_ssh with network_disabled",
                             "a container without a network cannot publish its sshd port")

        made_volumes: list[str] = []
        mounts: list[dict[str, Any]] = []
        for volume, target in spec.volumes.items():
            _check_name("volume", volume)
            if not target.startswith("/"):
                raise UsageError(f"sandbox spec for trial {spec.trial_id}: volume '{volume}' mount "
                                 f"point '{target}' is not absolute", "mount points are absolute paths")
        # The engine makes a missing volume as it creates the container, labelled from its mount:
        # one listing instead of a lookup and a create per volume. Only volumes that did not exist
        # before are removed if the container cannot be made (the others may hold work).
        existing = self._volume_names(spec.trial_id) if spec.volumes else set()
        labels = {LABEL_TRIAL: spec.trial_id, LABEL_MANAGED: MANAGED_BY, **self._instance_label()}
        for volume, target in spec.volumes.items():
            full = volume_name(spec.trial_id, volume)
            if full not in existing:
                made_volumes.append(full)
            mounts.append({"Target": target, "Source": full, "Type": "volume", "ReadOnly": False,
                           "VolumeOptions": {"Labels": labels}})
        try:
            attrs = self._create_container(spec, name, mounts)
        except BaseException:
            for full in made_volumes:
                self._remove_volume(full, quiet=True)
            raise
        self._log.info("sandbox.created", trial_id=spec.trial_id, container=name, image=spec.image,
                       env_keys=sorted(spec.env))
        return self._ref(attrs)

    def _volume_names(self, trial_id: str) -> set[str]:
        """Names of the trial's volumes that exist (one listing; the engine's name filter is a substring match)."""
        prefix = volume_name(trial_id, "")
        with _engine_errors(f"list the volumes of trial {trial_id}"):
            listed = self.engine.call("GET", "/volumes", params={"filters": json.dumps({"name": [prefix]})})
        return {str(v["Name"]) for v in (listed or {}).get("Volumes") or [] if str(v["Name"]).startswith(prefix)}

    def _ensure_volume(self, full: str, trial_id: str) -> bool:
        """Create the volume unless it exists; True when this call made it."""
        with _engine_errors(f"create volume {full}"):
            try:
                self.client.volumes.get(full)
                return False
            except docker.errors.NotFound:
                labels = {LABEL_TRIAL: trial_id, LABEL_MANAGED: MANAGED_BY, **self._instance_label()}
                self.client.volumes.create(name=full, labels=labels)
                return True

    def _ensure_network(self, name: str, host_ports: tuple[int, ...]) -> str:
        """A host-only bridge: no NAT (so no route beyond the host), no inter-container traffic
        (so one candidate's sandbox cannot reach another's), and the host filter on top. Published
        ports still work: inbound connections are DNATed and answered through conntrack."""
        _check_name("network", name)
        ports = ",".join(str(port) for port in sorted(set(host_ports)))
        with _engine_errors(f"create network {name}"):
            attrs = self.engine.inspect("networks", name)
            if attrs is not None and (attrs.get("Labels") or {}).get(LABEL_HOST_PORTS) != ports:
                # Rare (an older version's network, or the service port changed): through the SDK.
                network = self.client.networks.get(name)
                if self._network_in_use(network):
                    raise SandboxError(
                        f"network {name} admits host ports "
                        f"'{(attrs.get('Labels') or {}).get(LABEL_HOST_PORTS, '')}', this sandbox needs "
                        f"'{ports}'", "the service port changed while trials use the old one: finish them or "
                        "set service.port back")
                self._remove_network(network)  # made by an older version or for another port, unused
                attrs = None
            if attrs is None:
                labels = {LABEL_MANAGED: MANAGED_BY, LABEL_EGRESS: "host-only", LABEL_HOST_PORTS: ports,
                          **self._instance_label()}
                try:
                    self.engine.call("POST", "/networks/create", body={
                        "Name": name, "Driver": "bridge", "Labels": labels,
                        "Options": {"com.docker.network.bridge.enable_ip_masquerade": "false",
                                    "com.docker.network.bridge.enable_icc": "false"}})
                except EngineError as exc:
                    if exc.status != 409:  # created meanwhile by a concurrent launch
                        raise
                attrs = self.engine.inspect("networks", name)
                if attrs is None:
                    raise SandboxError(f"network {name} vanished right after it was created",
                                       "a `trial gc` or teardown ran at the same time: launch again (it resumes)")
        self._enforce_egress(attrs)
        return name

    def _enforce_egress(self, attrs: dict[str, Any]) -> bool:
        """Write the host filter rules of a host-only network; False (said once) where it cannot."""
        firewall = self._host_firewall()
        if isinstance(firewall, str):
            return False
        labels = attrs.get("Labels") or {}
        ports = tuple(int(port) for port in str(labels.get(LABEL_HOST_PORTS, "")).split(",") if port)
        within = labels.get(LABEL_EGRESS) == "internal"
        if firewall.ensure(_bridge_name(attrs), ports, str(attrs.get("Name", "")), within=within):
            self._log.info("sandbox.egress.enforced", network=attrs.get("Name"), bridge=_bridge_name(attrs),
                           host_ports=list(ports))
        return True

    def _host_firewall(self) -> egress.HostFirewall | str:
        if self._firewall is None:
            self._firewall = egress.host_firewall()
            if isinstance(self._firewall, str):
                self._log.warning("sandbox.egress.unenforced",
                                  reason=f"host-only egress is NOT enforced: {self._firewall}; sandboxes can "
                                         "open any port of the host and, where a route back exists, addresses "
                                         "beyond it (run trial as root on the engine's host to enforce it)")
        return self._firewall

    def _network_in_use(self, network: Any) -> bool:
        """Any container on it, stopped ones included: the network's own attrs list only running
        ones, and a collected or rebooted sandbox must find its network when it starts again."""
        return bool(self.client.api.containers(all=True, quiet=True, filters={"network": str(network.id)}))

    def _remove_network(self, network: Any) -> None:
        """The network first, then its rules; never while a container, even a stopped one, is on it
        (the engine would allow that, and the container could not start again)."""
        if self._network_in_use(network):
            self._log.warning("sandbox.network.kept", network=network.name, reason="a container is on it")
            return
        bridge = _bridge_name(network.attrs)
        with suppress(docker.errors.NotFound):
            network.remove()
        firewall = self._host_firewall()
        if not isinstance(firewall, str):
            firewall.remove(bridge)

    def create_network(self, name: str, trial_id: str) -> None:
        _check_name("network", name)
        # `internal` stops forwarding but not the host's own addresses: the filter closes those.
        labels = {LABEL_TRIAL: trial_id, LABEL_MANAGED: MANAGED_BY, LABEL_EGRESS: "internal",
                  **self._instance_label()}
        with _engine_errors(f"create network {name}"):
            network = self.client.networks.create(name, driver="bridge", internal=True, labels=labels)
            network.reload()
            self._enforce_egress(network.attrs)

    def remove_network(self, name: str) -> None:
        with _engine_errors(f"remove network {name}"):
            try:
                self._remove_network(self.client.networks.get(name))
            except docker.errors.NotFound:
                return

    def _create_body(self, spec: SandboxSpec, mounts: list[dict[str, Any]]) -> dict[str, Any]:
        """The create request the SDK's `containers.create` sent for this spec (its network aside)."""
        host: dict[str, Any] = {
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Memory": _memory_bytes(spec.memory),
            "MemorySwap": _memory_bytes(spec.memory),
            "NanoCpus": round(spec.cpus * 1e9),
            "PidsLimit": spec.pids,
            "ReadonlyRootfs": spec.read_only_root,
            "Tmpfs": dict(spec.tmpfs),
            "Mounts": mounts,
            "Init": True,
            "RestartPolicy": {"Name": "no"},
        }
        body: dict[str, Any] = {
            "Image": spec.image, "User": spec.user,
            "Env": [f"{key}={value}" for key, value in spec.env.items()],
            "Labels": {LABEL_TRIAL: spec.trial_id, LABEL_MANAGED: MANAGED_BY, LABEL_ROLE: spec.role,
                       **self._instance_label()},
            "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "NetworkDisabled": bool(spec.network_disabled), "HostConfig": host,
        }
        if spec.workdir is not None:
            body["WorkingDir"] = spec.workdir
        if spec.command is not None:
            body["Cmd"] = list(spec.command)
        # The SDK's default; `_create_container` names the sandbox's network here.
        host["NetworkMode"] = "none" if spec.network_disabled else "default"
        if not spec.network_disabled and spec.extra_hosts:
            host["ExtraHosts"] = [f"{name}:{address}" for name, address in sorted(spec.extra_hosts.items())]
        if spec.publish_ssh:
            body["ExposedPorts"] = {SSH_PORT_KEY: {}}
            host["PortBindings"] = {SSH_PORT_KEY: [{"HostIp": spec.ssh_bind, "HostPort": self._host_port(spec) or ""}]}
        return body

    def _create_container(self, spec: SandboxSpec, name: str, mounts: list[dict[str, Any]]) -> dict[str, Any]:
        """Create the container and inspect it."""
        body = self._create_body(spec, mounts)
        host: dict[str, Any] = body["HostConfig"]
        if not spec.network_disabled:
            if spec.internal_network:
                host["NetworkMode"] = spec.internal_network
            elif spec.network:
                host["NetworkMode"] = self._ensure_network(spec.network, spec.host_ports)
        hint = f"check that image {spec.image} exists (`docker image ls`) and the spec's limits"

        def create() -> str:
            return str(self.engine.call("POST", "/containers/create", params={"name": name}, body=body)["Id"])

        with _engine_errors(f"create container {name} from {spec.image}", hint):
            try:
                try:
                    made = create()
                except EngineError as exc:
                    if not exc.not_found or _image_missing(exc) or not spec.network \
                            or "network" not in exc.explanation.lower():
                        raise
                    # A teardown or gc took the network while it had no container yet: once more.
                    host["NetworkMode"] = self._ensure_network(spec.network, spec.host_ports)
                    made = create()
            except EngineError as exc:
                if exc.not_found and _image_missing(exc):
                    raise SandboxError(f"cannot create container {name}: image {spec.image} does not exist",
                                       "build it first (`trial templates check`)") from exc
                if exc.status == 409:
                    # Another caller created it between our lookup and now: same trial, same role.
                    raced = self._inspect_container(name)
                    if raced is not None:
                        return raced
                raise
            attrs = self.engine.inspect("containers", made)
        if attrs is None:
            raise SandboxError(f"container {name} vanished right after it was created",
                               "something removed it meanwhile (`trial gc`?): launch again (it resumes)")
        return attrs

    def _host_port(self, spec: SandboxSpec) -> str | None:
        if spec.ssh_host_port:
            return str(spec.ssh_host_port)
        low, high = self.settings.ssh_port_range
        if (low, high) != (0, 0):
            return f"{low}-{high}"  # Docker picks a free port within the range
        return None

    def start(self, ref: SandboxRef) -> SandboxRef:
        attrs = self._inspect_ref(ref)
        container_id = str(attrs["Id"])
        with _engine_errors(f"start container {ref.name}"):
            # Before the container runs anything: rules vanish with a host reboot.
            for network_name in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}):
                network = self.engine.inspect("networks", network_name)
                if network is not None and (network.get("Labels") or {}).get(LABEL_EGRESS) in ("host-only", "internal"):
                    self._enforce_egress(network)
            try:
                self.engine.call("POST", f"/containers/{container_id}/start")
            except EngineError as exc:
                self._discard(container_id)
                raise SandboxError(f"container {ref.name} failed to start: {exc.explanation}",
                                   "check the image's CMD, the user and the mounts of the spec") from exc
            attrs = self._wait_running(container_id, ref)  # its last look at the container is fresh
        started = self._ref(attrs)
        self._log.info("sandbox.started", trial_id=ref.trial_id, container=ref.name,
                       ssh_port=started.ssh_port)
        return started

    def _wait_running(self, container_id: str, ref: SandboxRef) -> dict[str, Any]:
        """Wait (bounded) until the container is up; an exit on the way fails the start. Returns
        its last inspection.

        Up means running and, for a container that publishes sshd, sshd listening: its command
        got through its setup, so an instant exit is ruled out without a fixed wait. A container
        whose command is an idle `sleep infinity` (a verifier's: its work comes through exec) has
        no setup to get through and cannot exit by itself: running is up. Anything else (or an
        engine whose processes we cannot see) must stay running for the settle window.
        """
        deadline = time.monotonic() + self.start_timeout_s
        running_since: float | None = None
        while True:
            attrs = self.engine.inspect("containers", container_id)
            if attrs is None:
                raise SandboxError(f"container {ref.name} vanished while it started",
                                   "something removed it meanwhile (`trial gc`?); create the sandbox again")
            state = attrs.get("State") or {}
            status = str(state.get("Status", ""))
            now = time.monotonic()
            if status in ("exited", "dead"):
                self._start_failed(container_id, ref, state)
            if status == "running":
                running_since = running_since or now
                if now - running_since >= self.start_settle_s or _idle(attrs) or self._sshd_listening(attrs):
                    return attrs
            elif now > deadline:
                self._discard(container_id)
                raise SandboxError(
                    f"container {ref.name} is still '{status}' after {self.start_timeout_s:.0f} s",
                    "check the engine's load and `docker events`")
            time.sleep(0.02)

    def _sshd_listening(self, attrs: dict[str, Any]) -> bool:
        """Whether the container's sshd port is listening, read from its network namespace
        through the host's /proc (a local engine only: a remote engine's pid means nothing here)."""
        published = ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(SSH_PORT_KEY)
        pid = int((attrs.get("State") or {}).get("Pid") or 0)
        if not published or pid <= 0 or not (self.engine_url or engine_url()).startswith("unix://"):
            return False
        return _listening(pid, SSH_PORT_IN_CONTAINER)

    def _start_failed(self, container_id: str, ref: SandboxRef, state: dict[str, Any]) -> NoReturn:
        code = state.get("ExitCode")
        error = str(state.get("Error") or "")
        try:
            logs = self.engine.logs(container_id, EXIT_LOG_TAIL).decode(errors="replace").strip()
        except (EngineError, EngineUnreachable, EngineTimeout):
            logs = ""
        except Exception as exc:
            if not _sdk_loaded_error(exc):
                raise
            logs = ""
        self._discard(container_id)
        lines = [line for line in logs.splitlines()[-EXIT_LOG_TAIL:] if line.strip()]
        last = " | ".join(lines) or "(no output)"
        detail = f"; {error}" if error else ""
        self._log.error("sandbox.start.failed", trial_id=ref.trial_id, container=ref.name, exit_code=code)
        raise SandboxError(
            f"container {ref.name} exited at once with code {code}{detail}; last output: {last}",
            "the container was removed (volumes kept); fix the image's CMD or the spec's command")

    def _discard(self, container_id: str) -> None:
        """Remove a container that failed to start; its volumes stay (they may hold work)."""
        try:
            self.engine.call("DELETE", f"/containers/{container_id}", params={"force": 1})
        except (EngineError, EngineUnreachable, EngineTimeout):
            pass
        except Exception as exc:
            if not _sdk_loaded_error(exc):
                raise

    def stop(self, ref: SandboxRef, timeout_s: int = 10) -> None:
        container = self._container_or_none(ref)
        if container is None:
            return
        with _engine_errors(f"stop container {ref.name}"):
            try:
                container.stop(timeout=timeout_s)
                container.reload()
                if container.status == "running":
                    container.kill()
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                # 409: it stopped between our calls; anything else is a real failure.
                if exc.status_code != 409:
                    raise
        self._log.info("sandbox.stopped", trial_id=ref.trial_id, container=ref.name)

    def remove(self, ref: SandboxRef, *, volumes: bool = True) -> None:
        container = self._container_or_none(ref)
        names = set(ref.volumes.values())
        if container is not None:
            names |= set(self._ref(container.attrs).volumes.values())
            self.stop(ref, timeout_s=STOP_BEFORE_REMOVE_S)
            with _engine_errors(f"remove container {ref.name}"), suppress(docker.errors.NotFound):
                container.remove(force=True)
        if volumes:
            for name in sorted(names):
                self._remove_volume(name)
        self._log.info("sandbox.removed", trial_id=ref.trial_id, container=ref.name, volumes=volumes)

    def _remove_volume(self, name: str, *, quiet: bool = False) -> None:
        with _engine_errors(f"remove volume {name}"):
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code == 409 or quiet:
                    # In use by another container of the trial (a verifier): removing that one removes it.
                    self._log.warning("sandbox.volume.kept", volume=name, reason=_explain(exc))
                    return
                raise

    def status(self, ref: SandboxRef) -> SandboxStatus:
        container = self._container_or_none(ref)
        if container is None:
            return "missing"
        status = str(container.status)
        known: tuple[SandboxStatus, ...] = ("created", "running", "paused", "restarting", "exited", "dead")
        for value in known:
            if status == value:
                return value
        # "removing": it is on its way out.
        return "missing" if status == "removing" else "dead"

    def exit_report(self, ref: SandboxRef, lines: int = 5) -> str:
        """How a container that stopped ended: exit code, the engine's error, its last output lines."""
        container = self._container_or_none(ref)
        if container is None:
            return "its container is gone"
        state = container.attrs.get("State") or {}
        try:
            raw = container.logs(stdout=True, stderr=True, tail=lines)
            logs = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            logs = ""
        last = " | ".join(line.strip() for line in logs.splitlines()[-lines:] if line.strip()) or "(no output)"
        error = f" ({state['Error']})" if state.get("Error") else ""
        return f"exit code {state.get('ExitCode')}{error}; last output: {last}"

    # ---- exec and files -----------------------------------------------------------------

    def exec(self, ref: SandboxRef, argv: list[str], *, user: str | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None, timeout_s: int | None = None) -> ExecResult:
        if not argv:
            raise UsageError(f"exec in {ref.name}: empty command", "pass the program and its arguments")
        command = list(argv)
        if timeout_s is not None:
            command = ["timeout", f"--kill-after={TIMEOUT_GRACE_S}", str(timeout_s), *command]
        started = time.monotonic()
        body: dict[str, Any] = {"User": user or "", "Privileged": False, "Tty": False, "AttachStdin": False,
                                "AttachStdout": True, "AttachStderr": True, "Cmd": command,
                                "Env": [f"{key}={value}" for key, value in (env or {}).items()]}
        if workdir is not None:
            body["WorkingDir"] = workdir

        def create(container_id: str) -> str:
            return str(self.engine.call("POST", f"/containers/{container_id}/exec", body=body)["Id"])

        with _engine_errors(f"run {argv[0]} in {ref.name}"):
            try:
                try:
                    # By the ref's id, without looking the container up first (one engine call less);
                    # a container re-created since the ref was taken is found by name.
                    exec_id = create(ref.id or str(self._inspect_ref(ref)["Id"]))
                except EngineError as exc:
                    if not exc.not_found:
                        raise
                    exec_id = create(str(self._inspect_ref(ref)["Id"]))
            except EngineError as exc:
                if exc.status == 409:
                    raise SandboxError(f"cannot run {argv[0]} in {ref.name}: the container is not running",
                                       "start the sandbox first") from exc
                raise
            # Both streams are read to the end however long the command stays silent (no read
            # timeout); the in-container `timeout` is what bounds it.
            out, err = self.engine.exec_run(exec_id)
            code = self._exit_code(exec_id)
        stdout = (out or b"").decode(errors="replace")
        stderr = (err or b"").decode(errors="replace")
        elapsed = time.monotonic() - started
        if timeout_s is not None and code in TIMEOUT_EXIT_CODES and elapsed >= timeout_s:
            stderr += f"\n[trial] command timed out after {timeout_s} s\n"
        self._log.debug("sandbox.exec", trial_id=ref.trial_id, program=argv[0], exit_code=code,
                        seconds=round(elapsed, 2))
        return ExecResult(exit_code=code, stdout=stdout, stderr=stderr)

    def _exit_code(self, exec_id: str) -> int:
        # The stream can end a moment before the engine records the exit code.
        for _ in range(100):
            info = self.engine.call("GET", f"/exec/{exec_id}/json")
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(0.02)
        raise SandboxError(f"exec {exec_id[:12]} reported no exit code", "check the engine (`docker info`)")

    def copy_in(self, ref: SandboxRef, dest_dir: str, tar_bytes: bytes) -> None:
        """Unpack tar_bytes into dest_dir (a volume or tmpfs: the root is read-only).

        Entries keep the uid/gid written in the archive, and parents the archive does not
        list are made root-owned, so archives for the candidate list their directories
        with uid 1000 (see `orchestrator.sandbox.home.home_tar`).
        """
        container_id = str(self._inspect_ref(ref)["Id"])
        with _engine_errors(f"copy into {ref.name}:{dest_dir}",
                            "copy into a volume or tmpfs; the root filesystem is read-only"):
            try:
                done = self.engine.put_archive(container_id, dest_dir, tar_bytes)
            except EngineError as exc:
                if not exc.not_found:
                    raise
                raise SandboxPathNotFound(
                    f"cannot copy into {ref.name}: {dest_dir} does not exist in it",
                    "create the directory first (it must exist in the image or a volume)") from exc
        if not done:
            raise SandboxError(f"copy into {ref.name}:{dest_dir} was refused",
                               "check the archive and the path")

    def copy_out(self, ref: SandboxRef, path: str, *, max_bytes: int | None = None) -> bytes:
        container = self._container(ref)
        with _engine_errors(f"copy {ref.name}:{path} out"):
            try:
                chunks, _stat = container.get_archive(path)
            except docker.errors.NotFound as exc:
                raise SandboxPathNotFound(f"cannot copy out of {ref.name}: {path} does not exist in it",
                                          "check the path (absolute, inside the image or a volume)") from exc
            # Read as it streams and stop at the cap: what the candidate wrote can be any size.
            parts: list[bytes] = []
            total = 0
            for chunk in chunks:
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    close = getattr(chunks, "close", None)
                    if callable(close):
                        close()
                    raise SandboxError(f"{ref.name}:{path} is larger than {max_bytes >> 20} MiB; not copied",
                                       "inspect it by hand with `trial shell ID`")
                parts.append(chunk)
            return b"".join(parts)

    # ---- lookup and garbage collection ----------------------------------------------------

    def find(self, trial_id: str, role: str = "sandbox") -> SandboxRef | None:
        attrs = self._inspect_container(container_name(trial_id, role))
        return None if attrs is None else self._ref(attrs)

    def list_managed(self, kinds: frozenset[ResourceKind] | None = None) -> list[ManagedResource]:
        managed = {"label": f"{LABEL_MANAGED}={MANAGED_BY}"}
        found: list[ManagedResource] = []

        def wanted(kind: ResourceKind) -> bool:
            return kinds is None or kind in kinds

        with _engine_errors("list the containers, volumes and images it manages"):
            if wanted("build-container"):
                found += self._build_leftovers()
            builds = {resource.id for resource in found}
            # The engine's own lists, which carry names, labels and states: the SDK's models inspect
            # every container and image once more (a hundred images took a second, and a verifier
            # lists before each run).
            for container in self.client.api.containers(all=True, filters=managed) if wanted("container") else []:
                if str(container["Id"]) in builds:
                    continue
                labels = container.get("Labels") or {}
                # Its own name; legacy links add "/linker/alias" entries, in no set order.
                names = [str(name).lstrip("/") for name in container.get("Names") or []]
                name = next((name for name in names if "/" not in name), str(container["Id"]))
                found.append(ManagedResource(kind="container", id=str(container["Id"]), name=name,
                                             trial_id=labels.get(LABEL_TRIAL), status=str(container.get("State")),
                                             instance=labels.get(LABEL_INSTANCE)))
            for volume in self.client.volumes.list(filters=managed) if wanted("volume") else []:
                labels = volume.attrs.get("Labels") or {}
                found.append(ManagedResource(kind="volume", id=str(volume.id), name=str(volume.name),
                                             trial_id=labels.get(LABEL_TRIAL), instance=labels.get(LABEL_INSTANCE)))
            for image in self.client.api.images(filters=managed) if wanted("image") else []:
                labels = image.get("Labels") or {}
                tags = [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]
                found.append(ManagedResource(kind="image", id=str(image["Id"]),
                                             name=str(tags[0]) if tags else str(image["Id"]),
                                             trial_id=labels.get(LABEL_TRIAL)))
            bridges: set[str] = set()
            networks = self.client.networks.list(filters=managed) if wanted("network") or wanted("firewall") else []
            for network in networks:
                labels = network.attrs.get("Labels") or {}
                bridges.add(_bridge_name(network.attrs))
                if wanted("network"):
                    found.append(ManagedResource(kind="network", id=str(network.id), name=str(network.name),
                                                 trial_id=labels.get(LABEL_TRIAL), instance=labels.get(LABEL_INSTANCE),
                                                 status="in use" if self._network_in_use(network) else "unused"))
        firewall = self._host_firewall() if wanted("firewall") else "not asked for"
        if not isinstance(firewall, str):
            # Rules whose bridge is gone (its network removed outside trial): nothing uses them.
            for bridge in firewall.bridges():
                if bridge not in bridges and not firewall.bridge_exists(bridge):
                    found.append(ManagedResource(kind="firewall", id=bridge, name=f"egress rules of {bridge}",
                                                 trial_id=None, status="unused"))
        return found

    def _build_leftovers(self) -> list[ManagedResource]:
        """`Created` containers an interrupted image build of ours left behind (`rm`/`forcerm` only
        clean up when the build ends): a step container labelled `trial.managed-by` with neither a
        trial nor an instance label (the build's LABEL step), or an unlabelled `#(nop)` step whose
        image descends from our base image or an image we built. Another tool's containers have
        neither mark. Only containers older than `build_leftover_age_s` count: a running build
        creates and commits its step containers within a second."""
        with _engine_errors("list the containers image builds left behind"):
            created = self.client.containers.list(all=True, filters={"status": "created"}, ignore_removed=True)
            ours: set[str] | None = None
            found: list[ManagedResource] = []
            for container in created:
                config = container.attrs.get("Config") or {}
                labels = config.get("Labels") or {}
                if labels.get(LABEL_TRIAL) or labels.get(LABEL_INSTANCE) or not self._old_enough(container):
                    continue
                if labels.get(LABEL_MANAGED) != MANAGED_BY:
                    if labels or list(config.get("Cmd") or [])[:3] != ["/bin/sh", "-c", "#(nop) "]:
                        continue
                    ours = self._build_roots() if ours is None else ours
                    try:
                        chain = {str(layer.get("Id")) for layer in self.client.api.history(container.attrs["Image"])}
                    except docker.errors.NotFound:
                        continue  # its image is gone: nothing says whose it was
                    if not chain & ours:
                        continue
                found.append(ManagedResource(kind="build-container", id=str(container.id), name=str(container.name),
                                             trial_id=None, status="left by an interrupted image build"))
            return found

    def _old_enough(self, container: Any) -> bool:
        created = str(container.attrs.get("Created") or "")[:19]
        try:
            started = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%S"))  # the engine's UTC
        except ValueError:
            return False
        return time.time() - started >= self.build_leftover_age_s

    def _build_roots(self) -> set[str]:
        """Image ids a build of ours starts from or produces: the base image and every image we label."""
        from orchestrator.sandbox.images import LOCAL_BASE_IMAGE

        roots = {str(image_id) for image_id in self.client.api.images(
            filters={"label": f"{LABEL_MANAGED}={MANAGED_BY}"}, quiet=True)}
        for tag in {self.settings.base_image or LOCAL_BASE_IMAGE, LOCAL_BASE_IMAGE}:
            image = self._image(tag)
            if image is not None:
                roots.add(str(image.id))
        return roots

    def volume_usage(self) -> list[VolumeUsage]:
        # `docker system df`: the engine sizes volumes as root on the host (no exec in the sandbox,
        # where an unreadable directory would hide from `du`). Engines before API 1.42 size them all.
        with _engine_errors("measure the volumes (docker system df)"):
            volumes = self.client.df().get("Volumes") or []
        found: list[VolumeUsage] = []
        for volume in volumes:
            labels = volume.get("Labels") or {}
            if labels.get(LABEL_MANAGED) != MANAGED_BY or labels.get(LABEL_INSTANCE) != self.instance:
                continue
            size = int((volume.get("UsageData") or {}).get("Size") or 0)
            found.append(VolumeUsage(name=str(volume["Name"]), trial_id=labels.get(LABEL_TRIAL),
                                     size_bytes=max(size, 0)))
        return found

    def remove_resource(self, resource: ManagedResource) -> None:
        if resource.kind == "container":
            self.remove(SandboxRef(id=resource.id, name=resource.name, trial_id=resource.trial_id or ""),
                        volumes=False)
        elif resource.kind == "build-container":
            with _engine_errors(f"remove build container {resource.name}"), suppress(docker.errors.NotFound):
                self.client.containers.get(resource.id).remove(force=True)
        elif resource.kind == "volume":
            with _engine_errors(f"remove volume {resource.name}"), suppress(docker.errors.NotFound):
                self.client.volumes.get(resource.id).remove(force=True)
        elif resource.kind == "network":
            with _engine_errors(f"remove network {resource.name}", "a container still uses it"), \
                    suppress(docker.errors.NotFound):
                self._remove_network(self.client.networks.get(resource.id))
        elif resource.kind == "firewall":
            firewall = self._host_firewall()
            if not isinstance(firewall, str):
                firewall.remove(resource.id)
        else:
            hint = "remove the containers that use it first (`trial gc` does containers first)"
            with _engine_errors(f"remove image {resource.name}", hint), suppress(docker.errors.ImageNotFound):
                self.client.images.remove(resource.id, force=True)
        self._log.info("sandbox.gc.removed", kind=resource.kind, name=resource.name,
                       trial_id=resource.trial_id)

    # ---- helpers ------------------------------------------------------------------------

    def _inspect_container(self, key: str) -> dict[str, Any] | None:
        """A container's inspection by name or id (the launch path's client), None if there is none."""
        with _engine_errors(f"inspect container {key}"):
            return self.engine.inspect("containers", key)

    def _inspect_ref(self, ref: SandboxRef) -> dict[str, Any]:
        """The ref's container by id, else by name (re-created since the ref was taken); SandboxError if gone."""
        for key in (ref.id, ref.name):
            if key:
                attrs = self._inspect_container(key)
                if attrs is not None:
                    return attrs
        raise SandboxError(f"container {ref.name} ({ref.id[:12]}) does not exist",
                           "it was removed; create the sandbox again (`trial launch` resumes)")

    def _container_or_none(self, ref: SandboxRef) -> Any | None:
        # The id is exact; the name finds a container re-created since the ref was taken.
        with _engine_errors(f"inspect container {ref.name}"):
            for key in (ref.id, ref.name):
                if not key:
                    continue
                try:
                    return self.client.containers.get(key)
                except docker.errors.NotFound:
                    continue
        return None

    def _container(self, ref: SandboxRef) -> Any:
        container = self._container_or_none(ref)
        if container is None:
            raise SandboxError(f"container {ref.name} ({ref.id[:12]}) does not exist",
                               "it was removed; create the sandbox again (`trial launch` resumes)")
        return container

    def _ref(self, attrs: dict[str, Any]) -> SandboxRef:
        """A ref from a container's inspection."""
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        volumes = {str(m["Destination"]): str(m["Name"]) for m in attrs.get("Mounts") or []
                   if m.get("Type") == "volume" and m.get("Name")}
        if not volumes:
            # A created, never-started container lists its mounts only in HostConfig.
            declared = (attrs.get("HostConfig") or {}).get("Mounts") or []
            volumes = {str(m["Target"]): str(m["Source"]) for m in declared if m.get("Type") == "volume"}
        return SandboxRef(id=str(attrs["Id"]), name=str(attrs.get("Name") or "").lstrip("/"),
                          trial_id=str(labels.get(LABEL_TRIAL, "")), volumes=volumes,
                          ssh_port=_published_port(attrs))


def _idle(attrs: dict[str, Any]) -> bool:
    """The container's command is `sleep infinity`: nothing it runs could end it early."""
    return attrs.get("Path") == "sleep" and attrs.get("Args") == ["infinity"]


def _bridge_name(attrs: dict[str, Any]) -> str:
    """The host interface of a bridge network: named in its options, else Docker's br-<id>."""
    options = attrs.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or f"br-{str(attrs['Id'])[:12]}")


def _published_port(attrs: dict[str, Any]) -> int | None:
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(SSH_PORT_KEY) or []
    for binding in bindings:
        port = binding.get("HostPort")
        if port:
            return int(port)
    return None


def _listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on `port` in the network namespace of process `pid`."""
    wanted = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        # Columns: sl local_address rem_address st ...; st 0A is LISTEN.
        if any(fields[1].endswith(wanted) and fields[3] == "0A" for fields in (line.split() for line in lines)):
            return True
    return False


def _check_name(what: str, value: str) -> None:
    if not _NAME_PART.match(value):
        raise UsageError(f"{what} '{value}' cannot be part of a Docker name",
                         "use letters, digits, '_', '.' and '-', starting with a letter or digit")
