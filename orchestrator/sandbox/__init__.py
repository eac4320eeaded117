"""Sandbox backends: where a candidate's container runs. `docker` is the real one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.sandbox.base import (
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_TRIAL,
    BuildRequest,
    ExecResult,
    ImageRef,
    ManagedResource,
    SandboxBackend,
    SandboxRef,
    SandboxSpec,
)

if TYPE_CHECKING:
    from orchestrator.config import Settings

__all__ = [
    "LABEL_MANAGED",
    "LABEL_ROLE",
    "LABEL_TRIAL",
    "BuildRequest",
    "ExecResult",
    "ImageRef",
    "ManagedResource",
    "SandboxBackend",
    "SandboxRef",
    "SandboxSpec",
    "instance_id",
    "make_backend",
    "sandbox_network",
]


def instance_id(settings: Settings) -> str:
    """Names this data dir on shared engines, so `trial gc` of one store never touches another's."""
    import hashlib

    return hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:16]


def sandbox_network(settings: Settings) -> str:
    """The host-only network of this data dir's sandboxes (its filter admits this data dir's
    service port, so two data dirs on one engine each get their own)."""
    return f"trial-sandbox-{instance_id(settings)[:12]}"


def make_backend(settings: Settings, name: str | None = None) -> SandboxBackend:
    """Import the backend lazily so that `trial --help` never loads the Docker SDK."""
    name = name or settings.sandbox.backend
    if name == "swarm":
        from orchestrator.sandbox.swarm import SwarmBackend

        return SwarmBackend(settings.sandbox, instance=instance_id(settings))
    if name == "docker":
        from orchestrator.sandbox.docker import DockerBackend

        return DockerBackend(settings.sandbox, instance=instance_id(settings))
    from orchestrator.errors import ConfigError

    raise ConfigError(f"unknown sandbox backend '{name}'", "the known backends are 'docker' and 'swarm'")
