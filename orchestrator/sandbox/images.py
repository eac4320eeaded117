"""Image recipes: the template image, then the generic sandbox layer with the agent on top.

Two builds, each tagged by the sha256 of everything that goes into it, so an unchanged
template is never rebuilt and a changed one can never be mistaken for the old:
    trial-tpl-<template>:<hash>        the template's own Dockerfile (language tools)
    trial-<template>-<agent>:<hash>    user `candidate`, /workspace, sshd entrypoint, agent
Only the Dockerfile and the template's `image/` folder enter the template build context:
the starter, the hidden tests and the reference never get into an image a candidate uses.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agents.base import AgentSpec
from orchestrator.agents.cache import agent_cache_dir
from orchestrator.catalog import Template
from orchestrator.config import Settings
from orchestrator.sandbox.base import (
    HOME,
    SANDBOX_USER,
    SSHD_DIR,
    WORKSPACE,
    BuildRequest,
    ImageRef,
    SandboxBackend,
)

ASSETS = Path(__file__).parent / "assets"
ENTRYPOINT = ASSETS / "entrypoint.sh"
SSHD_CONFIG = ASSETS / "sshd_config"
TRIAL_ASK = ASSETS / "trial-ask"
"""The sandbox's question command (orchestrator.questions); also installed as trial-answers."""
HASH_LENGTH = 16
LOCAL_BASE_IMAGE = "trial-base:bookworm"
"""What scripts/build-base-image.sh builds: Debian bookworm without any registry."""

SANDBOX_LAYER = """\
FROM {base}
USER root
# Tools every sandbox needs, whatever the template installed.
RUN (command -v sshd && command -v git && command -v ssh-keygen) >/dev/null 2>&1 \\
 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
       openssh-server openssh-client git ca-certificates && rm -rf /var/lib/apt/lists/*)
RUN id -u {user} >/dev/null 2>&1 || useradd --uid 1000 --create-home --shell /bin/bash {user}; \\
    mkdir -p {workspace} /opt/trial && chown {user}:{user} {workspace} {home}
COPY trial/ /opt/trial/
# Login shells and interactive shells both pick up the trial's environment from the home
# volume (sshd sessions do not inherit the container's environment); a login starts in the
# workspace.
# sshd's config is the image's (read-only root); the authorized keys and the session environment
# are root-owned files the host writes into {sshd_dir} (a volume) at launch.
RUN chmod 0755 /opt/trial/entrypoint.sh && chmod 0644 /opt/trial/sshd_config \\
 && install -m 0755 /opt/trial/trial-ask /usr/local/bin/trial-ask && ln -sf trial-ask /usr/local/bin/trial-answers \\
 && install -d -m 0755 -o root -g root {sshd_dir} \\
 && echo '[ -r "$HOME/.trial/env.sh" ] && . "$HOME/.trial/env.sh"' > /etc/profile.d/trial.sh \\
 && echo '[ "$PWD" = "$HOME" ] && cd {workspace}' >> /etc/profile.d/trial.sh \\
 && echo '[ -r "$HOME/.trial/env.sh" ] && . "$HOME/.trial/env.sh"' >> /etc/bash.bashrc
{agent}
# No setuid or setgid program: no-new-privileges already makes them inert, but a backend
# without it would hand the candidate a way back to root.
RUN find / -xdev -perm /6000 -type f -exec chmod ug-s {{}} +
USER {user}
ENV HOME={home}
WORKDIR {workspace}
EXPOSE 2222
CMD ["/opt/trial/entrypoint.sh"]
"""


@dataclass(frozen=True)
class SandboxImage:
    template_image: ImageRef
    sandbox_image: ImageRef

    @property
    def tag(self) -> str:
        return self.sandbox_image.tag


def _digest_tree(digest: hashlib._Hash, root: Path, *, cheap: bool = False) -> None:
    """Feed every file's relative path and content (or size, for big cached artefacts) to digest."""
    if not root.exists():
        return
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        if cheap and path.stat().st_size > 1 << 20:
            # Cached agent artefacts are named by version; hashing 400 MB on every launch is waste.
            digest.update(str(path.stat().st_size).encode())
        else:
            digest.update(path.read_bytes())
        digest.update(b"\0")


def resolve_base_image(backend: SandboxBackend, settings: Settings) -> str | None:
    """BASE_IMAGE for template builds: the configured one; else the locally built base image
    when the engine has it (so a machine without registry access never tries one); else None,
    each Dockerfile's own default."""
    if settings.sandbox.base_image:
        return settings.sandbox.base_image
    return LOCAL_BASE_IMAGE if backend.image_exists(LOCAL_BASE_IMAGE) else None


def template_request(template: Template, base: str | None, workdir: Path) -> BuildRequest:
    digest = hashlib.sha256(b"trial-template-v1\0")
    digest.update(template.dockerfile.read_bytes())
    _digest_tree(digest, template.image_dir)
    digest.update((base or "").encode())
    context = workdir / "template"
    context.mkdir(parents=True)
    shutil.copy2(template.dockerfile, context / "Dockerfile")
    if template.image_dir.is_dir():
        shutil.copytree(template.image_dir, context / "image")
    return BuildRequest(
        context_dir=context,
        tag=f"trial-tpl-{template.name}:{digest.hexdigest()[:HASH_LENGTH]}",
        buildargs={"BASE_IMAGE": base} if base else {},
        labels={"trial.template": template.name},
    )


def sandbox_request(template: Template, agent: AgentSpec, base_tag: str, settings: Settings,
                    workdir: Path) -> BuildRequest:
    cache = agent_cache_dir(agent.name)
    files = agent.context_files(cache)
    snippet = agent.dockerfile_snippet()
    dockerfile = SANDBOX_LAYER.format(base=base_tag, user=SANDBOX_USER, workspace=WORKSPACE, home=HOME,
                                      sshd_dir=SSHD_DIR, agent=snippet)
    digest = hashlib.sha256(b"trial-sandbox-v1\0")
    digest.update(dockerfile.encode())
    digest.update(ENTRYPOINT.read_bytes())
    digest.update(SSHD_CONFIG.read_bytes())
    digest.update(TRIAL_ASK.read_bytes())
    for rel, source in sorted(files.items()):
        digest.update(rel.encode() + b"\0")
        _digest_tree(digest, source, cheap=True)
    context = workdir / "sandbox"
    (context / "trial").mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    shutil.copy2(ENTRYPOINT, context / "trial" / "entrypoint.sh")
    shutil.copy2(SSHD_CONFIG, context / "trial" / "sshd_config")
    shutil.copy2(TRIAL_ASK, context / "trial" / "trial-ask")
    for rel, source in files.items():
        target = context / "agent" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(source, target)
    return BuildRequest(
        context_dir=context,
        tag=f"trial-{template.name}-{agent.name}:{digest.hexdigest()[:HASH_LENGTH]}",
        labels={"trial.template": template.name, "trial.agent": agent.name},
    )


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_hardlink_or_copy)
    else:
        _hardlink_or_copy(str(source), str(target))


def _hardlink_or_copy(source: str, target: str) -> str:
    try:
        Path(target).hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)
    return target


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="trial-build-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build_sandbox_image(backend: SandboxBackend, template: Template, agent: AgentSpec, settings: Settings,
                        progress: Callable[[str], None] | None = None) -> SandboxImage:
    """Build (or reuse) the template image and the sandbox layer for this agent."""
    say = progress or (lambda _msg: None)
    cache = agent_cache_dir(agent.name)
    agent.fetch(cache)
    with _workdir() as workdir:
        first = template_request(template, resolve_base_image(backend, settings), workdir)
        say(f"image {first.tag}")
        template_image = backend.build(first)
        second = sandbox_request(template, agent, template_image.tag, settings, workdir)
        say(f"image {second.tag}")
        sandbox_image = backend.build(second)
    return SandboxImage(template_image=template_image, sandbox_image=sandbox_image)
