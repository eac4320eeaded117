"""The real agents, in a real sandbox, driven by the scripted model through the real gateway.

`trial serve` runs with no provider key at all: every answer comes from a script, in the
provider's wire format, through the gateway's relay path (logged, priced, budgeted). The
script makes Claude Code run a shell command and write a file, and Codex run a command
and apply a patch; the files really appear in /workspace, owned by the candidate, and the
agents' own transcripts show the scripted calls with the ids the gateway logged. A
request the script does not expect, and one after the script has run out, are answered
with a plain message, which the agent shows its user.
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents import AgentSpec, get_agent
from orchestrator.agents.cache import agent_cache_root
from orchestrator.agents.codex import Codex
from orchestrator.agents.transcripts import collect
from orchestrator.catalog import Template
from orchestrator.config import Settings, load_settings
from orchestrator.gateway.log import log_path, verify_chain
from orchestrator.sandbox.base import WORKSPACE, SandboxRef
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.store import Store, Trial, utcnow
from tests.conftest import BASE_IMAGE, free_port, trial_serve
from tests.integration.agent_sandboxes import agent_image, probe_template, start_agent_sandbox

pytestmark = pytest.mark.docker
RUN_TIMEOUT_S = 240

SCRIPT = """\
description = "integration: one shell command, one new file, one edit, then done"

[[step]]
id = "shell"
when = { prompt = "make the marker files" }
text = "First the shell, then the file."
calls = [{ bash = "echo made-by-bash > from-bash.txt && cat from-bash.txt", description = "Write a marker" }]

[[step]]
id = "write"
when = { tool_result = "made-by-bash" }
calls = [{ write = "from-write.txt", content = "made by the write tool\\n" }]

[[step]]
id = "edit"
when = { tool_result = "" }
calls = [{ edit = "from-write.txt", old = "made by the write tool", new = "made by the write tool, then edited" }]

[[step]]
id = "done"
when = { tool_result = "" }
text = "Both marker files are in place."
"""


@dataclass
class Service:
    home: Path
    port: int
    settings: Settings
    store: Store
    script: Path

    def sandbox_url(self) -> str:
        return f"http://host.docker.internal:{self.port}"

    def new_trial(self, agent: str, script: Path | None = None) -> tuple[str, str]:
        trial_id = f"scr{uuid.uuid4().hex[:8]}"
        now = utcnow()
        self.store.create_trial(Trial(id=trial_id, template="agent-probe", candidate="octocat", agent=agent,
                                      state="active", created_at=now, updated_at=now, hours=1, budget_usd=5,
                                      deadline=now + timedelta(hours=1),
                                      data={"gateway_provider": f"script:{script or self.script}"}))
        return trial_id, self.store.mint_token(trial_id, "sandbox", now + timedelta(hours=1))

    def records(self, trial_id: str) -> list[dict[str, Any]]:
        path = log_path(self.home, trial_id)
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from orchestrator.service.daemon import docker_bridge_gateway

    home = tmp_path_factory.mktemp("scripted-home")
    script = home / "session.toml"
    script.write_text(SCRIPT)
    bridge = docker_bridge_gateway()
    assert bridge, "no Docker bridge address: sandboxes could not reach the gateway"
    port = free_port()
    # No provider key and no provider URL that answers: only the script can reply.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("TRIAL_") and key not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    env.update({"TRIAL_HOME": str(home), "TRIAL_SERVICE_PORT": str(port), "TRIAL_SERVICE_BIND": f"127.0.0.1,{bridge}",
                "TRIAL_GATEWAY_ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "TRIAL_GATEWAY_OPENAI_BASE_URL":
                "http://127.0.0.1:9", "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE})
    settings = load_settings(env=env, cwd=home)
    store = Store.open(home)
    try:
        with trial_serve(home, env, port):
            yield Service(home=home, port=port, settings=settings, store=store, script=script)
    finally:
        store.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return probe_template(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="module")
def shared_cache() -> Path:
    return agent_cache_root()


@dataclass
class Sandbox:
    backend: DockerBackend
    ref: SandboxRef
    trial_id: str

    def run(self, command: str) -> str:
        """As the candidate in a login shell (what an SSH session gets), in /workspace."""
        result = self.backend.exec(self.ref, ["bash", "-lc", f"cd {WORKSPACE} && {command} </dev/null"],
                                   timeout_s=RUN_TIMEOUT_S)
        assert result.ok, f"exit {result.exit_code}: {result.stdout[-1500:]} {result.stderr[-1500:]}"
        return result.stdout + result.stderr

    def owner_and_text(self, name: str) -> tuple[str, str]:
        made = self.backend.exec(self.ref, ["sh", "-c", f"stat -c %U {WORKSPACE}/{name} && cat {WORKSPACE}/{name}"])
        assert made.ok, made.stderr
        owner, _, text = made.stdout.partition("\n")
        return owner, text


@pytest.fixture
def sandbox(service: Service, template: Template, shared_cache: Path) -> Iterator[Any]:
    backend = DockerBackend(service.settings.sandbox)
    started: list[SandboxRef] = []

    def start(agent: AgentSpec, script: Path | None = None) -> Sandbox:
        image = agent_image(backend, template, agent, service.settings, shared_cache)
        trial_id, token = service.new_trial(agent.name, script)
        ref = start_agent_sandbox(backend, image, agent, trial_id, token, service.sandbox_url(), started)
        return Sandbox(backend, ref, trial_id)

    yield start
    for ref in started:
        backend.remove(ref, volumes=True)


def _steps(records: list[dict[str, Any]]) -> list[tuple[str | None, Any]]:
    return [((r.get("script") or {}).get("status"), (r.get("script") or {}).get("step_id")) for r in records
            if r["route"].endswith(("/v1/messages", "/v1/responses"))]


def test_claude_code_runs_a_command_and_writes_a_file_from_the_script(sandbox: Any, service: Service) -> None:
    agent = get_agent("claude-code")
    box = sandbox(agent)
    claude = "claude -p --permission-mode acceptEdits --allowedTools Bash --"

    # A prompt the script does not expect: the agent shows the plain answer, and the script waits.
    said = box.run(f"{claude} {shlex.quote('What is this repository?')}")
    assert "The script does not match this request" in said and "'shell'" in said

    said = box.run(f"{claude} {shlex.quote('Please make the marker files.')}")
    assert "Both marker files are in place." in said
    assert box.owner_and_text("from-bash.txt") == ("candidate", "made-by-bash\n")
    assert box.owner_and_text("from-write.txt") == ("candidate", "made by the write tool, then edited\n")

    said = box.run(f"{claude.removesuffix(' --')} --continue -- {shlex.quote('Anything else?')}")
    assert "The script has run out" in said

    records = service.records(box.trial_id)
    assert [step for step in _steps(records) if step[0] != "side"] == [
        ("mismatch", "shell"), ("matched", "shell"), ("matched", "write"), ("matched", "edit"), ("matched", "done"),
        ("exhausted", None)]
    assert all(r["status"] == 200 and r["outcome"] == "ok" for r in records)
    billed = [r for r in records if r["route"].endswith("/v1/messages")]
    assert all(r["cost_usd"] > 0 and r["usage"]["output_tokens"] > 0 for r in billed)
    assert "does not match" in next(r["error"] for r in records if (r.get("script") or {}).get("status") == "mismatch")
    assert verify_chain(log_path(service.home, box.trial_id)).ok

    events = agent.parse(collect(box.backend, box.ref, agent))
    calls = [e for e in events if e["kind"] == "tool_call"]
    # Claude Code records Edit with its default replace_all=False filled in.
    assert [(c["data"]["tool"], {k: v for k, v in c["data"]["input"].items() if k != "replace_all"})
            for c in calls] == [
        ("Bash", {"command": "echo made-by-bash > from-bash.txt && cat from-bash.txt",
                  "description": "Write a marker"}),
        ("Write", {"file_path": f"{WORKSPACE}/from-write.txt", "content": "made by the write tool\n"}),
        ("Edit", {"file_path": f"{WORKSPACE}/from-write.txt", "old_string": "made by the write tool",
                  "new_string": "made by the write tool, then edited"})]
    results = {e["data"]["tool_use_id"]: e for e in events if e["kind"] == "tool_result"}
    assert "made-by-bash" in results[calls[0]["data"]["tool_use_id"]]["text"]
    logged_ids = {str((r.get("response") or {}).get("id")) for r in records}
    assert {e["data"]["message_id"] for e in events if e["kind"] in ("assistant_message", "tool_call")
            and e["data"].get("message_id")} <= logged_ids


@pytest.mark.parametrize(("model", "patch_tool"), [
    ("gpt-5.5", "apply_patch"), ("gpt-5-codex", "exec_command"), (None, "apply_patch")])
def test_codex_runs_a_command_and_applies_a_patch_from_the_script(sandbox: Any, service: Service,
                                                                   model: str | None, patch_tool: str) -> None:
    # A model Codex knows gets the apply_patch tool; for one it has no metadata for ("gpt-5-codex"
    # in Codex 0.169) it offers none, and the patch goes through its shell tool instead. The agent's
    # default (None) must be one it knows.
    agent = Codex(model=model) if model else get_agent("codex")
    box = sandbox(agent)
    said = box.run(f"codex exec --skip-git-repo-check {shlex.quote('Please make the marker files.')}")
    assert "Both marker files are in place." in said
    assert box.owner_and_text("from-bash.txt") == ("candidate", "made-by-bash\n")
    assert box.owner_and_text("from-write.txt") == ("candidate", "made by the write tool, then edited\n")

    records = service.records(box.trial_id)
    assert [step for step in _steps(records) if step[0] != "side"] == [
        ("matched", "shell"), ("matched", "write"), ("matched", "edit"), ("matched", "done")]
    assert all(r["cost_usd"] > 0 for r in records if r["route"].endswith("/v1/responses"))
    events = agent.parse(collect(box.backend, box.ref, agent))
    calls = [e for e in events if e["kind"] == "tool_call"]
    assert [c["data"]["tool"] for c in calls] == ["exec_command", patch_tool, patch_tool]
    assert all(not e["data"].get("is_error") for e in events if e["kind"] == "tool_result")


REFUSED = """\
[[step]]
when = { prompt = "write it without asking" }
calls = [{ write = "refused.txt", content = "should not exist\\n" }]

[[step]]
id = "after-refusal"
when = { tool_result = "granted" }
text = "Claude Code refused the write; nothing was written."
"""


def test_claude_codes_own_refusal_of_a_scripted_write_is_a_rejection(sandbox: Any, service: Service,
                                                                     tmp_path: Path) -> None:
    script = tmp_path / "refused.toml"
    script.write_text(REFUSED)
    agent = get_agent("claude-code")
    box = sandbox(agent, script)
    # No permission flags: in -p mode Claude Code cannot ask, so its permission layer refuses the write.
    said = box.run(f"claude -p -- {shlex.quote('Please write it without asking.')}")
    assert "Claude Code refused the write" in said
    missing = box.backend.exec(box.ref, ["test", "-e", f"{WORKSPACE}/refused.txt"])
    assert not missing.ok
    assert [step for step in _steps(service.records(box.trial_id)) if step[0] != "side"] == [
        ("matched", None), ("matched", "after-refusal")]
    events = agent.parse(collect(box.backend, box.ref, agent))
    assert [e["kind"] for e in events if e["kind"] in ("tool_call", "tool_result", "tool_rejected")] == [
        "tool_call", "tool_rejected"]
