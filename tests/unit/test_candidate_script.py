"""The scripted candidate's session format, and the demo session's consistency with its template."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.candidate_script import ActionResult, CandidateAction, _problem, load_actions, play
from orchestrator.config import load_settings
from orchestrator.errors import UsageError
from orchestrator.gateway.scripted import load_script
from orchestrator.services import Services
from orchestrator.store import Trial, utcnow
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit
TEMPLATE = REPO_ROOT / "trial_templates" / "api-keys"


@pytest.mark.parametrize(("text", "expected"), [
    ("", "no [[candidate]] actions"),
    ('[[candidate]]\nprompt = "a"\nshell = "b"\n', "either a prompt or a shell command"),
    ('[[candidate]]\nprompt = "a"\ntypo = 1\n', "candidate action 1"),
    ("[[candidate]\n", "cannot be read as TOML"),
])
def test_a_bad_session_is_one_line_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "session.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_actions(path)
    assert expected in caught.value.message and str(path) in caught.value.message


def test_what_stops_the_play() -> None:
    prompt = CandidateAction(prompt="go")
    assert _problem(ActionResult(prompt, 0, "Done.")) is None
    assert _problem(ActionResult(prompt, 0, "[scripted model] The script does not match")) == (
        "went off the scripted model's script")
    assert _problem(ActionResult(prompt, 1, "boom")) == "exited with 1"
    failing = CandidateAction.model_validate({"shell": "pytest", "may_fail": True, "expect": "1 failed"})
    assert _problem(ActionResult(failing, 1, "1 failed, 2 passed")) is None
    assert _problem(ActionResult(failing, 1, "3 passed")) == "did not print '1 failed'"


def test_an_agent_the_player_cannot_prompt_is_refused_before_anything_runs(tmp_path: Path) -> None:
    settings = load_settings()
    services = Services.from_settings(settings)
    now = utcnow()
    services.store.create_trial(Trial(id="tplay0001", template="api-keys", candidate="octocat", agent="aider",
                                      state="active", created_at=now, updated_at=now, hours=1, budget_usd=1))
    path = tmp_path / "session.toml"
    path.write_text('[[candidate]]\nprompt = "hello"\n')
    with pytest.raises(UsageError, match="cannot prompt"):
        play(services, "tplay0001", path)
    services.store.close()


def test_the_demo_session_plays_on_its_template(tmp_path: Path) -> None:
    """Every file the scripted agent reads exists by then, and every file it writes is the reference's."""
    solution = tmp_path / "solution"
    shutil.copytree(TEMPLATE / "starter", solution)
    subprocess.run(["git", "init", "-q"], cwd=solution, check=True)
    subprocess.run(["git", "apply", "--whitespace=nowarn", str(TEMPLATE / "reference" / "solution.patch")],
                   cwd=solution, check=True)
    shutil.copy(TEMPLATE / "demo" / "session.toml", tmp_path / "session.toml")
    loaded = load_script(tmp_path / "session.toml")
    actions = load_actions(tmp_path / "session.toml")
    assert [a.prompt is not None for a in actions][:2] == [False, True] and actions[1].new_session
    written: set[str] = {"tests/test_key_hash_spec.py"}  # the candidate's acceptance test, first
    starter = {str(p.relative_to(TEMPLATE / "starter")) for p in (TEMPLATE / "starter").rglob("*") if p.is_file()}
    for step in loaded.script.step:
        for call in step.calls:
            if call.read is not None:
                assert call.read in starter | written, f"{step.id} reads {call.read} before it exists"
            if call.write is not None:
                written.add(call.write)
    changed = {str(p.relative_to(solution)) for p in solution.rglob("*")
               if p.is_file() and ".git" not in p.parts
               and (not (TEMPLATE / "starter" / p.relative_to(solution)).is_file()
                    or (TEMPLATE / "starter" / p.relative_to(solution)).read_bytes() != p.read_bytes())}
    assert changed <= written, f"the reference changes files the demo never writes: {changed - written}"


def test_prompt_commands_for_each_agent_and_permission() -> None:
    from orchestrator.candidate_script import prompt_command

    first = CandidateAction(prompt="it's done?")
    assert prompt_command("claude-code", first, continued=False) == (
        "claude -p --permission-mode acceptEdits --allowedTools Bash -- 'it'\"'\"'s done?'")
    assert prompt_command("claude-code", CandidateAction(prompt="go", allow="read-only"), continued=True) == (
        "claude -p --continue -- go")
    assert prompt_command("codex", first, continued=True) == (
        "codex exec --skip-git-repo-check resume --last 'it'\"'\"'s done?'")
