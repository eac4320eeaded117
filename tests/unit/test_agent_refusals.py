"""Each agent's own permission layer refusing a tool use is a rejection, not a failed command."""

from __future__ import annotations

import json

import pytest

from orchestrator.agents.claude_code import parse_transcripts
from orchestrator.agents.codex import parse_rollouts

pytestmark = pytest.mark.unit


def _claude(result: str, *, is_error: bool | None) -> list[dict]:
    block: dict = {"type": "tool_result", "tool_use_id": "toolu_1", "content": result}
    if is_error is not None:
        block["is_error"] = is_error
    records = [
        {"type": "assistant", "uuid": "a1", "timestamp": "2026-11-25T09:00:00Z", "sessionId": "s",
         "message": {"id": "msg_1", "role": "assistant", "model": "claude-x",
                     "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                  "input": {"command": "rm -rf build"}}]}},
        {"type": "user", "uuid": "u1", "timestamp": "2026-11-25T09:00:01Z", "sessionId": "s",
         "message": {"role": "user", "content": [block]}},
    ]
    raw = "\n".join(json.dumps(r) for r in records).encode()
    return parse_transcripts({".claude/projects/-workspace/s.jsonl": raw})


@pytest.mark.parametrize(("text", "is_error"), [
    ("The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, "
     "the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how "
     "to proceed.", None),
    ("Claude requested permissions to use Bash, but you haven't granted it yet.", True),
    ("Claude requested permissions to use Bash, but you haven't granted it yet.", None),
    ("Permission to use Bash with command rm -rf build has been denied.", False),
    ("rm in '/workspace/build' needs approval. The path is inside the working directories for this session.", True),
])
def test_claude_code_permission_layer_refusals_are_rejections(text: str, is_error: bool | None) -> None:
    [result] = [e for e in _claude(text, is_error=is_error) if e["kind"] in ("tool_result", "tool_rejected")]
    assert result["kind"] == "tool_rejected"
    assert result["data"]["tool_use_id"] == "toolu_1"


@pytest.mark.parametrize("text", ["ls: cannot open directory '/root': Permission denied",
                                  "error: access denied by policy in the remote"])
def test_a_command_that_prints_permission_denied_is_a_failed_command_not_a_refusal(text: str) -> None:
    [result] = [e for e in _claude(text, is_error=False) if e["kind"] in ("tool_result", "tool_rejected")]
    assert result["kind"] == "tool_result"


@pytest.mark.parametrize("output", ["exec command rejected by user", "patch rejected by user",
                                    "command denied by the user"])
def test_codex_approval_denials_are_rejections(output: str) -> None:
    records = [
        {"timestamp": "2026-11-25T09:00:00Z", "type": "session_meta", "payload": {"id": "sess"}},
        {"timestamp": "2026-11-25T09:00:01Z", "type": "response_item",
         "payload": {"type": "function_call", "name": "exec_command", "call_id": "call_1",
                     "arguments": json.dumps({"cmd": ["rm", "-rf", "build"]})}},
        {"timestamp": "2026-11-25T09:00:02Z", "type": "response_item",
         "payload": {"type": "function_call_output", "call_id": "call_1", "output": output}},
    ]
    raw = "\n".join(json.dumps(r) for r in records).encode()
    events = parse_rollouts({".codex/sessions/2026/11/25/rollout-x.jsonl": raw})
    assert [e["kind"] for e in events] == ["tool_call", "tool_rejected"]


def test_a_huge_failed_output_is_read_for_a_refusal_only_at_its_head() -> None:
    # 400 KB of "permission to use …" made the unbounded pattern backtrack for tens of seconds
    # (a candidate controls what a command prints); a refusal past the head is not Claude Code's.
    flood = "permission to use x " * 20_000 + "has been denied"
    [result] = [e for e in _claude(flood, is_error=True) if e["kind"] in ("tool_result", "tool_rejected")]
    assert result["kind"] == "tool_result"
