"""The real sandbox image (template image + the generic sandbox layer, agent `none`) for tests
that need what every trial gets: sshd config, entrypoint, stripped setuid bits."""

from __future__ import annotations

from pathlib import Path

from orchestrator.agents import get_agent
from orchestrator.catalog import load_template
from orchestrator.config import Settings, load_settings
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.sandbox.images import build_sandbox_image
from tests.conftest import BASE_IMAGE


def build_probe_image(home: Path, templates: Path) -> tuple[str, Settings]:
    """Build (or reuse: the tag is a content hash) the sandbox image of a template with no tools."""
    settings = load_settings(env={"TRIAL_HOME": str(home), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE}, cwd=home)
    root = templates / "probe"
    (root / "starter").mkdir(parents=True, exist_ok=True)
    (root / "hidden_tests").mkdir(exist_ok=True)
    (root / "brief.md").write_text("Probe.\n")
    (root / "Dockerfile").write_text(f"ARG BASE_IMAGE={BASE_IMAGE}\nFROM ${{BASE_IMAGE}}\n")
    (root / "template.toml").write_text('title = "Probe"\nsummary = "sshd only."\nlanguage = "none"\n'
                                        '[tests]\nstarter = "true"\nhidden = "true"\n')
    backend = DockerBackend(settings.sandbox)
    return build_sandbox_image(backend, load_template(root), get_agent("none"), settings).tag, settings
