"""A scripted candidate: prompts through the agent's own CLI and shell commands, in the sandbox.

The `[[candidate]]` tables of a session file (the same file whose `[[step]]` tables the
gateway's scripted model answers from, see orchestrator/gateway/scripted.py) say what the
candidate does, in order::

    [[candidate]]
    prompt = "Read keyservice/store.py and tell me how keys are checked."
    new_session = true          # the first prompt starts a session; later ones continue it

    [[candidate]]
    prompt = "Now make the change."
    allow = "read-only"         # Claude Code: all (default) | edits | read-only; the rest its
                                # own permission layer refuses, as it does for a real candidate

    [[candidate]]
    shell = "python3 -m pytest -q"   # run as the candidate, in /workspace, in a login shell
    expect = "passed"                # optional: the output must contain this
    may_fail = true                  # optional: a non-zero exit is part of the story

Each action runs inside the trial's real sandbox as the candidate user, in a login shell
(what an SSH session gets, so the agent finds its gateway wiring in ~/.trial/env.sh).
Prompts go through the agent's own non-interactive CLI (`claude -p`, `codex exec`), so the
agent writes its own transcript and every model call crosses the gateway. A failing
command, a missing `expect`, or an agent answer that reports a script problem stops the
play with an error naming the action: a demo or a corpus session never passes silently
after going off its script.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from orchestrator.errors import SandboxError, StateError, UsageError
from orchestrator.sandbox.base import WORKSPACE
from orchestrator.services import Services

ACTION_TIMEOUT_S = 600
SCRIPT_PROBLEM = "[scripted model]"
"""How the scripted model's own problem messages begin (scripted.py)."""
PROMPTABLE = ("claude-code", "codex")
CLAUDE_PERMISSIONS = {
    "all": "--permission-mode acceptEdits --allowedTools Bash",
    "edits": "--permission-mode acceptEdits",
    "read-only": "",
}
"""Claude Code's flags for what the candidate approves: `all` is a candidate approving every edit
and command; with less, Claude Code's own permission layer refuses the rest (in -p mode it
cannot ask), which is how a session shows the agent's refusals."""


class CandidateAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = None
    """A prompt typed to the agent."""
    new_session: bool = False
    """Start a new agent session for this prompt (the first prompt always does)."""
    shell: str | None = None
    """A shell command the candidate runs in /workspace."""
    expect: str | None = None
    """Text the output must contain."""
    may_fail: bool = False
    """A shell command whose non-zero exit is part of the story (a failing test run)."""
    allow: Literal["all", "edits", "read-only"] = "all"
    """What the candidate lets Claude Code do unasked for this prompt (Codex: `all` only)."""

    @model_validator(mode="after")
    def _one(self) -> CandidateAction:
        if (self.prompt is None) == (self.shell is None):
            raise ValueError("a candidate action is either a prompt or a shell command")
        return self

    def label(self) -> str:
        text = " ".join((self.prompt if self.prompt is not None else self.shell or "").split())
        kind = "prompt" if self.prompt is not None else "shell"
        return f"{kind} {text[:70]!r}"


@dataclass(frozen=True)
class ActionResult:
    action: CandidateAction
    exit_code: int
    output: str

    def to_json(self) -> dict[str, object]:
        return {"action": self.action.label(), "exit_code": self.exit_code, "output_tail": self.output[-2000:]}


def load_actions(path: Path) -> list[CandidateAction]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"session {path}: cannot be read as TOML ({exc})", "check the path and the syntax") from exc
    entries = raw.get("candidate")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"session {path}: no [[candidate]] actions", "add the candidate's prompts and commands")
    actions = []
    for number, entry in enumerate(entries, 1):
        try:
            actions.append(CandidateAction.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"session {path}: candidate action {number}: {first['msg']}",
                             "each action has `prompt` or `shell`, optionally `new_session`, `expect`, "
                             "`may_fail`") from exc
    return actions


def play(services: Services, trial_id: str, path: Path,
         say: Callable[[str], None] = lambda _: None) -> list[ActionResult]:
    """Play the session's candidate actions in the trial's sandbox, in order; stop at the first that fails."""
    actions = load_actions(path)
    trial = services.store.get_trial(trial_id)
    if any(action.prompt is not None for action in actions) and trial.agent not in PROMPTABLE:
        raise UsageError(f"trial {trial.id} runs agent '{trial.agent}', which the candidate player cannot prompt",
                         f"launch with --agent {' or '.join(PROMPTABLE)}")
    if trial.agent == "codex" and any(action.allow != "all" for action in actions):
        raise UsageError(f"session {path}: `allow` other than \"all\" needs Claude Code",
                         "Codex runs with full access in the sandbox; drop `allow` for Codex sessions")
    ref = services.sandbox.find(trial.id)
    if ref is None or services.sandbox.status(ref) != "running":
        raise StateError(f"the sandbox of trial {trial.id} is not running", "see `trial status ID`")
    results: list[ActionResult] = []
    started = False
    for number, action in enumerate(actions, 1):
        if action.prompt is not None:
            command = prompt_command(trial.agent, action, continued=started and not action.new_session)
            started = True
        else:
            command = action.shell or ""
        say(f"candidate {number}/{len(actions)}: {action.label()}")
        done = services.sandbox.exec(ref, ["bash", "-lc", f"cd {WORKSPACE} && {{ {command}\n}} </dev/null 2>&1"],
                                     timeout_s=ACTION_TIMEOUT_S)
        result = ActionResult(action, done.exit_code, done.stdout + done.stderr)
        results.append(result)
        problem = _problem(result)
        if problem:
            raise SandboxError(f"candidate action {number} ({action.label()}) {problem}",
                               f"output: {' '.join(result.output.split())[-600:]}")
    return results


def prompt_command(agent: str, action: CandidateAction, *, continued: bool) -> str:
    """The agent's own non-interactive command line for one prompt."""
    prompt = shlex.quote(action.prompt or "")
    if agent == "codex":
        return f"codex exec --skip-git-repo-check {'resume --last ' if continued else ''}{prompt}"
    flags = " ".join(part for part in (CLAUDE_PERMISSIONS[action.allow], "--continue" if continued else "") if part)
    return f"claude -p {flags + ' ' if flags else ''}-- {prompt}"


def _problem(result: ActionResult) -> str | None:
    action = result.action
    if result.exit_code != 0 and not action.may_fail:
        return f"exited with {result.exit_code}"
    if action.prompt is not None and SCRIPT_PROBLEM in result.output:
        return "went off the scripted model's script"
    if action.expect is not None and action.expect not in result.output:
        return f"did not print {action.expect!r}"
    return None
