"""The normalized timeline: gateway records, transcripts, git and forge merged and cross-checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.evidence.bundle import write_jsonl
from orchestrator.evidence.events import MISSING_FROM_GATEWAY, build_events, parse_ts
from orchestrator.evidence.exchanges import read_exchange
from tests.fixtures.bundle_builder import SESSIONS, SessionBuilder, bash, write

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def careful(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return SESSIONS["careful"](tmp_path_factory.mktemp("careful"))


def _events(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]


def test_timeline_is_sorted_and_has_every_source(careful: Path) -> None:
    events = _events(careful)
    moments = [parse_ts(e["ts"]) for e in events]
    assert moments == sorted(moments)
    assert {e["source"] for e in events} == {"claude-code", "git", "forge"}
    kinds = [e["kind"] for e in events]
    assert kinds.count("commit") == 5  # the starter and the candidate's four
    assert kinds.count("push") == 3 and kinds.count("pr_opened") == 1
    assert set(events[0]) == {"ts", "source", "kind", "session", "text", "data", "witness"}


def test_transcript_events_carry_their_gateway_record_and_are_not_duplicated(careful: Path) -> None:
    events = _events(careful)
    gateway = [json.loads(line) for line in (careful / "gateway.jsonl").read_text().splitlines()]
    prompts = [e for e in events if e["kind"] == "user_prompt"]
    assert [p["data"]["gateway_seq"] for p in prompts] == [1, 2, 5, 8]
    # Every exchange the transcript shows is kept once, from the transcript.
    assert not [e for e in events if e["source"] == "gateway"]
    calls = [e for e in events if e["kind"] == "tool_call"]
    assert all("gateway_seq" in c["data"] for c in calls)
    assert len(calls) == sum(1 for r in gateway for b in r["response"]["content"] if b["type"] == "tool_use")
    assert not [e for e in events if e["data"].get(MISSING_FROM_GATEWAY)]


def test_transcript_exchanges_missing_from_the_gateway_are_flagged(tmp_path: Path) -> None:
    events = _events(SESSIONS["spoofing"](tmp_path))
    flagged = [e for e in events if e["data"].get(MISSING_FROM_GATEWAY)]
    assert [(e["kind"], e["text"][:20]) for e in flagged] == [("user_prompt", "Read SPEC.md first. "),
                                                             ("assistant_message", "Understood, followin")]
    honest = [e for e in events if e["kind"] == "user_prompt" and not e["data"].get(MISSING_FROM_GATEWAY)]
    assert [e["text"] for e in honest] == ["do the brief"]


def test_gateway_traffic_without_a_transcript_is_kept_from_the_gateway(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-gw-only")
    s.prompt(2, "Add * to calc.evaluate")
    [call] = s.reply(3, "On it.", [bash("python3 -m pytest -q tests")])
    s.tool_result(4, call, "1 failed, 2 passed", error=True)
    s.reply(5, "One test fails.")
    s.agent_events.clear()  # as if the agent left no transcript
    bundle = s.build()
    events = _events(bundle)
    from_gateway = [(e["kind"], e["text"]) for e in events if e["source"] == "gateway"]
    assert ("user_prompt", "Add * to calc.evaluate") in from_gateway
    assert ("tool_call", "Bash: python3 -m pytest -q tests") in from_gateway
    assert ("tool_result", "1 failed, 2 passed") in from_gateway
    assert ("assistant_message", "One test fails.") in from_gateway
    result = next(e for e in events if e["kind"] == "tool_result")
    assert result["data"]["is_error"] is True and result["data"]["gateway_seq"] == 2


def test_rejection_and_interrupt_seen_only_by_the_gateway_keep_their_kind(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-reject")
    s.prompt(1, "Add * to calc.evaluate")
    [call] = s.reply(2, "Writing.", [write("calc/__init__.py", "x = 1\n")])
    s.reject(3, call)
    s.interrupt(3.5)
    s.prompt(4, "Only change calc/ops.py")
    s.reply(5, "OK.")
    s.agent_events.clear()
    events = _events(s.build())
    kinds = [e["kind"] for e in events if e["source"] == "gateway"]
    assert "tool_rejected" in kinds and "interrupt" in kinds
    prompt = next(e for e in events if e["kind"] == "user_prompt" and "Only" in e["text"])
    assert "interrupted" not in prompt["text"]


def test_secrets_in_events_are_redacted(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-secret")
    s.prompt(1, "the token is trl_abcdefghijklmnopqrstuvwx, use it")
    s.reply(2, "ok")
    text = (s.build() / "events.jsonl").read_text()
    assert "trl_abcdefghijklmnopqrstuvwx" not in text and "***" in text


def test_openai_chat_and_responses_records_read_like_anthropic_ones() -> None:
    chat = read_exchange({"seq": 1, "ts": "2025-01-01T00:00:00Z", "route": "/openai/v1/chat/completions",
                          "request": {"messages": [{"role": "system", "content": "sys"},
                                                   {"role": "user", "content": "fix the parser"}]},
                          "response": {"id": "chatcmpl-1", "choices": [{"message": {
                              "content": "Sure.", "tool_calls": [{"id": "call_1", "function": {
                                  "name": "shell", "arguments": "{\"command\": \"pytest\"}"}}]}}]},
                          "usage": {"prompt_tokens": 10}, "cost_usd": 0.01})
    assert (chat.wire, chat.prompt, chat.response_text) == ("openai-chat", "fix the parser", "Sure.")
    assert chat.tool_uses[0].name == "shell" and chat.tool_uses[0].input == {"command": "pytest"}
    followup = read_exchange({"seq": 2, "route": "/openai/v1/chat/completions", "request": {"messages": [
        {"role": "user", "content": "fix"}, {"role": "assistant", "content": None},
        {"role": "tool", "tool_call_id": "call_1", "content": "2 passed"}]}, "response": {"choices": []}})
    assert followup.prompt is None and followup.tool_outcomes[0].tool_use_id == "call_1"

    responses = read_exchange({"seq": 3, "route": "/openai/v1/responses",
                               "request": {"input": [
                                   {"role": "user", "content": [{"type": "input_text", "text": "old"}]},
                                   {"type": "function_call", "call_id": "c1", "name": "exec_command"},
                                   {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                                   {"role": "user", "content": [{"type": "input_text", "text": "now test it"}]}]},
                               "response": {"id": "resp_1", "output": [
                                   {"type": "message", "content": [{"type": "output_text", "text": "Done."}]},
                                   {"type": "function_call", "call_id": "c2", "name": "exec_command",
                                    "arguments": "{\"cmd\": \"pytest\"}"}]}})
    assert responses.wire == "openai-responses" and responses.prompt == "now test it"
    assert [o.tool_use_id for o in responses.tool_outcomes] == ["c1"]
    assert responses.response_id == "resp_1" and responses.tool_uses[0].input == {"cmd": "pytest"}


def test_harness_text_is_not_a_prompt() -> None:
    exchange = read_exchange({"seq": 1, "request": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>context</system-reminder>"},
        {"type": "text", "text": "make it faster"}]}]}, "response": {"type": "message", "content": []}})
    assert exchange.prompt == "make it faster"


def test_build_events_on_an_empty_bundle_dir(tmp_path: Path) -> None:
    assert build_events(tmp_path, []) == []
    write_jsonl(tmp_path / "pushes.jsonl", [{"ts": "2025-01-01T00:00:00Z", "ref": "refs/heads/x",
                                            "before": "a" * 40, "after": "b" * 40, "forced": True}])
    [push] = build_events(tmp_path, [])
    assert push["kind"] == "push" and "(forced)" in push["text"]


def test_a_prompt_the_agent_sent_with_additions_still_matches_its_gateway_record(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-attach")
    typed = "Implement multiplication in calc/ops.py following tokenize"
    s.prompt(1, typed, via_gateway=False)
    s._queue(1, "s1", {"type": "text", "text": typed + "\n\n@calc/ops.py contents: ..."})  # what the agent sent
    s.reply(2, "ok")
    events = _events(s.build())
    prompt = next(e for e in events if e["kind"] == "user_prompt")
    assert prompt["source"] == "claude-code" and prompt["data"]["gateway_seq"] == 1
    assert MISSING_FROM_GATEWAY not in prompt["data"]
    assert [e["kind"] for e in events if e["source"] == "gateway"] == []


def test_a_trailing_system_message_does_not_hide_the_prompt() -> None:
    # Claude Code 2.1 appends its environment as a `system` message after the user's turn.
    exchange = read_exchange({"seq": 1, "route": "/anthropic/v1/messages", "request": {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>\nnotes\n</system-reminder>"},
                                     {"type": "text", "text": "Explain auth.py in one sentence."}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment\nPlatform: linux"}]}]},
        "response": {"content": [{"type": "text", "text": "It checks keys."}]}})
    assert exchange.prompt == "Explain auth.py in one sentence."
