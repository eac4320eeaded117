"""The set-up test_agents.py and test_scripted_agents.py share: a `trial serve` for a data dir of
the module, a template that adds nothing to the base image (the agent layer is what is tested),
the agent's image built from the shared agent cache, and a started sandbox wired to the gateway
the way launch wires it (~/.trial/env.sh, the agent's home files, a git identity, a one-commit
repo in /workspace)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.agents import AgentSpec
from orchestrator.catalog import Template, load_template
from orchestrator.config import Settings
from orchestrator.sandbox.base import HOME, WORKSPACE, SandboxRef, SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.sandbox.home import env_sh, home_tar
from orchestrator.sandbox.images import build_sandbox_image
from tests.conftest import BASE_IMAGE

GITCONFIG = ("[user]\n\tname = Octo Cat\n\temail = octocat@users.noreply.github.com\n"
             "[init]\n\tdefaultBranch = main\n")


def probe_template(root: Path) -> Template:
    """A template that adds nothing to the base image, written under `root`."""
    root = root / "agent-probe"
    (root / "starter").mkdir(parents=True)
    (root / "hidden_tests").mkdir()
    (root / "starter" / "README.md").write_text("probe\n")
    (root / "brief.md").write_text("Probe the agents.\n")
    (root / "Dockerfile").write_text(f"ARG BASE_IMAGE={BASE_IMAGE}\nFROM ${{BASE_IMAGE}}\n")
    (root / "template.toml").write_text('title = "Agent probe"\nsummary = "Agents only."\nlanguage = "none"\n'
                                        '[tests]\nstarter = "true"\nhidden = "true"\n')
    return load_template(root)


def agent_image(backend: DockerBackend, template: Template, agent: AgentSpec, settings: Settings,
                shared_cache: Path) -> str:
    """The agent's sandbox image. The images module caches under the data dir; it is pointed at the
    shared cache so a test run neither downloads nor copies the artefacts again."""
    shared = shared_cache / agent.name
    shared.mkdir(parents=True, exist_ok=True)
    link = settings.home / "cache" / "agents" / agent.name
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(shared, target_is_directory=True)
    return build_sandbox_image(backend, template, agent, settings).tag


def start_agent_sandbox(backend: DockerBackend, image: str, agent: AgentSpec, trial_id: str, token: str,
                        gateway_url: str, started: list[SandboxRef], env: dict[str, str] | None = None) -> SandboxRef:
    """A started sandbox for `agent` with the trial's wiring in its home and a one-commit repo in
    /workspace; appended to `started` as soon as it exists, so the caller removes it whatever happens."""
    ref = backend.create(SandboxSpec(trial_id=trial_id, image=image, env={"TRIAL_ID": trial_id},
                                     volumes={"workspace": WORKSPACE, "home": HOME}))
    started.append(ref)
    wiring = {"TRIAL_ID": trial_id, **(env or {}), **agent.env(gateway_url, token)}
    backend.copy_in(ref, HOME, home_tar({".trial/env.sh": (env_sh(wiring), 0o600), ".gitconfig": (GITCONFIG, 0o644),
                                         **agent.home_files(gateway_url, token)}))
    ref = backend.start(ref)
    setup = backend.exec(ref, ["bash", "-lc", f"cd {WORKSPACE} && git init -q && echo 'print(1)' > app.py "
                               "&& git add app.py && git commit -qm start"])
    assert setup.ok, setup.stderr
    return ref
