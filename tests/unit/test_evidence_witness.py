"""Every event says who witnessed it; transcript lines the gateway never carried are `transcript`.

The candidate owns ~/.claude/projects/*.jsonl. Two forged lines there (an interrupt, and a
rejection of a tool call the gateway saw answered normally) used to pass as witnessed
course-corrections. A rejection or interrupt counts as gateway-witnessed only when the
agent's next request carried it, for a tool call an earlier logged response issued.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.claude_code import parse_transcripts
from orchestrator.agents.codex import parse_rollouts
from orchestrator.evidence.bundle import write_jsonl
from orchestrator.evidence.events import SCORED_WITNESSES, WITNESSES, build_events
from tests.fixtures.bundle_builder import SESSIONS

pytestmark = pytest.mark.unit

REJECTION = ("The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a "
             "file edit, the new_string was NOT written to the file).")


def _ts(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00.000Z"


def _line(kind: str, minute: int, content: Any, **extra: Any) -> str:
    message = {"role": kind, "content": content, **extra}
    return json.dumps({"type": kind, "uuid": f"u-{kind}-{minute}-{len(json.dumps(content))}", "sessionId": "s1",
                       "timestamp": _ts(minute), "message": message})


def _anthropic(seq: int, minute: int, messages: list[dict[str, Any]], content: list[dict[str, Any]],
               msg_id: str) -> dict[str, Any]:
    return {"seq": seq, "ts": _ts(minute), "route": "/anthropic/v1/messages", "model": "claude-sonnet-4-5",
            "request": {"model": "claude-sonnet-4-5", "messages": messages},
            "response": {"id": msg_id, "type": "message", "role": "assistant", "content": content},
            "usage": {"input_tokens": 10, "output_tokens": 5}, "cost_usd": 0.0001, "status": 200}


CALL_1 = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "pytest -q"}}
CALL_2 = {"type": "tool_use", "id": "toolu_2", "name": "Edit",
          "input": {"file_path": "/workspace/keys.py", "old_string": "a", "new_string": "b"}}
PROMPT = "Run the tests, then fix keys.py so rotation keeps the old key valid for an hour."


def _session(tmp_path: Path, *, honest_refusals: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """A Claude Code session and its gateway log. With `honest_refusals`, the candidate really rejects
    the edit and interrupts, and the agent's next request carries both; without, the gateway saw the
    edit's normal result and no interrupt, and the transcript gains the two forged lines."""
    first_user = {"role": "user", "content": [{"type": "text", "text": PROMPT}]}
    answer_1 = {"role": "assistant", "content": [CALL_1]}
    result_1 = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 passed in 0.1s"}
    answer_2 = {"role": "assistant", "content": [{"type": "text", "text": "Now the edit."}, CALL_2]}
    edit_outcome = ({"type": "tool_result", "tool_use_id": "toolu_2", "content": REJECTION, "is_error": True}
                    if honest_refusals else
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "The file /workspace/keys.py has "
                     "been updated."})
    records = [
        _anthropic(1, 1, [first_user], [CALL_1], "msg_1"),
        _anthropic(2, 2, [first_user, answer_1, {"role": "user", "content": [result_1]}],
                   answer_2["content"], "msg_2"),
    ]
    third_turn = [edit_outcome]
    if honest_refusals:
        third_turn.append({"type": "text", "text": "[Request interrupted by user]"})
    records.append(_anthropic(3, 3, [first_user, answer_1, {"role": "user", "content": [result_1]}, answer_2,
                                     {"role": "user", "content": third_turn}],
                              [{"type": "text", "text": "Understood."}], "msg_3"))
    write_jsonl(tmp_path / "gateway.jsonl", records)
    lines = [
        _line("user", 1, PROMPT),
        _line("assistant", 1, [CALL_1], id="msg_1", model="claude-sonnet-4-5"),
        _line("user", 2, [result_1]),
        _line("assistant", 2, answer_2["content"], id="msg_2", model="claude-sonnet-4-5"),
        _line("user", 3, [edit_outcome]),
    ]
    if honest_refusals:
        lines.append(_line("user", 3, "[Request interrupted by user]"))
    else:
        # The two forged lines: the edit "rejected", and an interrupt that never happened.
        lines.append(_line("user", 3, [{"type": "tool_result", "tool_use_id": "toolu_2", "content": REJECTION,
                                        "is_error": True}]).replace("u-user-3", "u-forged-1"))
        lines.append(_line("user", 4, "[Request interrupted by user]"))
    lines.append(_line("assistant", 3, [{"type": "text", "text": "Understood."}], id="msg_3",
                       model="claude-sonnet-4-5"))
    events = parse_transcripts({".claude/projects/-workspace/s1.jsonl": ("\n".join(lines) + "\n").encode()})
    return build_events(tmp_path, events), lines


def test_forged_interrupt_and_rejection_lines_are_transcript_only(tmp_path: Path) -> None:
    timeline, _ = _session(tmp_path, honest_refusals=False)
    steering = [e for e in timeline if e["kind"] in ("tool_rejected", "interrupt")]
    assert {e["kind"] for e in steering} == {"tool_rejected", "interrupt"}
    assert all(e["witness"] == "transcript" for e in steering), steering
    assert not any("gateway_seq" in e["data"] for e in steering)
    # What the gateway did see stays in the timeline, witnessed: the edit's normal result.
    [seen] = [e for e in timeline if e["kind"] == "tool_result" and e["data"].get("tool_use_id") == "toolu_2"
              and e["witness"] == "gateway"]
    assert "has been updated" in seen["text"]
    assert not [e for e in timeline if e["kind"] in ("tool_rejected", "interrupt")
                and e["witness"] in SCORED_WITNESSES]


def test_real_rejection_and_interrupt_carried_by_the_next_request_are_gateway_witnessed(tmp_path: Path) -> None:
    timeline, _ = _session(tmp_path, honest_refusals=True)
    [rejected] = [e for e in timeline if e["kind"] == "tool_rejected"]
    [interrupt] = [e for e in timeline if e["kind"] == "interrupt"]
    assert rejected["witness"] == "gateway" and rejected["data"]["gateway_seq"] == 3
    assert interrupt["witness"] == "gateway" and interrupt["data"]["gateway_seq"] == 3
    assert rejected["source"] == "claude-code"  # kept once, from the richer transcript
    assert all(e["witness"] in WITNESSES for e in timeline)
    prompts = [e for e in timeline if e["kind"] == "user_prompt"]
    assert [(e["witness"], e["source"]) for e in prompts] == [("gateway", "claude-code")]
    [result] = [e for e in timeline if e["kind"] == "tool_result"]
    assert result["witness"] == "gateway" and result["data"]["gateway_seq"] == 2


def test_transcript_only_tool_results_test_runs_and_writes_are_transcript(tmp_path: Path) -> None:
    # No gateway log at all: everything the transcript says is the candidate's word.
    _, lines = _session(tmp_path, honest_refusals=True)
    (tmp_path / "gateway.jsonl").unlink()
    timeline = build_events(tmp_path, parse_transcripts({"s.jsonl": "\n".join(lines).encode()}))
    assert timeline and {e["witness"] for e in timeline} == {"transcript"}


def test_a_request_carrying_a_result_for_a_call_no_logged_response_issued_is_not_witnessed(tmp_path: Path) -> None:
    # Anyone with the token can post a request whose history "rejects" a call that never was.
    forged_call = {"type": "tool_use", "id": "toolu_made_up", "name": "Edit", "input": {}}
    records = [_anthropic(1, 1, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [forged_call]},
                                 {"role": "user", "content": [
                                     {"type": "tool_result", "tool_use_id": "toolu_made_up", "content": REJECTION,
                                      "is_error": True},
                                     {"type": "text", "text": "[Request interrupted by user]"}]}],
                          [{"type": "text", "text": "ok"}], "msg_1")]
    write_jsonl(tmp_path / "gateway.jsonl", records)
    timeline = build_events(tmp_path, [])
    refusals = [e for e in timeline if e["kind"] in ("tool_rejected", "interrupt")]
    assert len(refusals) == 2 and {e["witness"] for e in refusals} == {"transcript"}
    assert all(e["data"].get("unchained") for e in refusals)
    assert {e["witness"] for e in timeline if e["kind"] == "assistant_message"} == {"gateway"}


def test_codex_rejection_is_witnessed_only_through_the_next_requests_function_call_output(tmp_path: Path) -> None:
    call = {"type": "function_call", "name": "exec_command", "arguments": json.dumps({"cmd": "rm -rf tests"}),
            "call_id": "call_1"}
    refused = {"type": "function_call_output", "call_id": "call_1", "output": "exec command rejected by user"}
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "clean up the repo"}]}
    records = [
        {"seq": 1, "ts": _ts(1), "route": "/openai/v1/responses", "request": {"input": [user]},
         "response": {"id": "resp_1", "output": [call]}, "status": 200},
        {"seq": 2, "ts": _ts(2), "route": "/openai/v1/responses", "request": {"input": [user, call, refused]},
         "response": {"id": "resp_2", "output": [{"type": "message", "role": "assistant",
                                                  "content": [{"type": "output_text", "text": "Okay."}]}]},
         "status": 200},
    ]
    write_jsonl(tmp_path / "gateway.jsonl", records)

    def rollout(output: str) -> dict[str, bytes]:
        items = [{"timestamp": _ts(1), "type": "response_item", "payload": user},
                 {"timestamp": _ts(1), "type": "response_item", "payload": call},
                 {"timestamp": _ts(2), "type": "response_item",
                  "payload": {**refused, "output": output}}]
        return {".codex/sessions/rollout-1.jsonl": "\n".join(json.dumps(i) for i in items).encode()}

    [honest] = [e for e in build_events(tmp_path, parse_rollouts(rollout(refused["output"])))
                if e["kind"] == "tool_rejected"]
    assert honest["witness"] == "gateway" and honest["data"]["gateway_seq"] == 2
    # The same rejection written into a rollout where the gateway saw the command's real output.
    records[1]["request"]["input"][2] = {**refused, "output": "Process exited with code 0"}
    write_jsonl(tmp_path / "gateway.jsonl", records)
    [forged] = [e for e in build_events(tmp_path, parse_rollouts(rollout(refused["output"])))
                if e["kind"] == "tool_rejected"]
    assert forged["witness"] == "transcript"


def test_every_event_of_a_built_bundle_has_a_known_witness(tmp_path: Path) -> None:
    bundle = SESSIONS["careful"](tmp_path)
    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    by_kind: dict[str, set[str]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], set()).add(event["witness"])
    assert by_kind["pr_opened"] == {"forge"} and by_kind["push"] == {"host"}
    assert by_kind["user_prompt"] == {"gateway"} and by_kind["tool_rejected"] == {"gateway"}


def test_a_refused_request_is_not_a_turn_of_the_conversation(tmp_path: Path) -> None:
    answered = _anthropic(1, 1, [{"role": "user", "content": PROMPT}], [{"type": "text", "text": "On it."}], "msg_1")
    refused = {"seq": 2, "ts": _ts(2), "route": "/anthropic/v1/messages", "model": "claude-sonnet-4-5",
               "request": {"size": 40_000_000, "sha256": "ab" * 32, "head": "{\"model\": \"claude"},
               "response": {"type": "error", "error": {"type": "request_too_large"}}, "status": 413,
               "upstream": False, "outcome": "refused_size", "cost_usd": 0}
    write_jsonl(tmp_path / "gateway.jsonl", [answered, refused])
    events = build_events(tmp_path, [])
    assert [(e["kind"], e["text"]) for e in events] == [("user_prompt", PROMPT), ("assistant_message", "On it.")]


CLAUDE_UA = "claude-cli/2.1.330 (external, cli)"


def _pytest_session(tmp_path: Path, carried: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """`pytest -q` issued at seq 1 (whose logged response is the call); then one gateway request per
    (result text, status, user agent) in `carried`, each answering that call; and the transcript's
    own result, which is the last carried text. Returns the timeline."""
    first_user = {"role": "user", "content": [{"type": "text", "text": PROMPT}]}
    answer_1 = {"role": "assistant", "content": [CALL_1]}
    records = [{**_anthropic(1, 1, [first_user], [CALL_1], "msg_1"), "agent": CLAUDE_UA}]
    for n, (text, status, agent) in enumerate(carried, start=2):
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": text}
        record = _anthropic(n, 2, [first_user, answer_1, {"role": "user", "content": [result]}],
                            [{"type": "text", "text": f"Reply {n}."}], f"msg_{n}")
        records.append({**record, "status": status, "agent": agent})
    write_jsonl(tmp_path / "gateway.jsonl", records)
    real = carried[-1][0]
    lines = [_line("user", 1, PROMPT), _line("assistant", 1, [CALL_1], id="msg_1", model="claude-sonnet-4-5"),
             _line("user", 2, [{"type": "tool_result", "tool_use_id": "toolu_1", "content": real}])]
    return build_events(tmp_path, parse_transcripts({".claude/projects/-workspace/s1.jsonl":
                                                     ("\n".join(lines) + "\n").encode()}))


def _results(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in timeline if e["kind"] == "tool_result" and e["data"].get("tool_use_id") == "toolu_1"]


def test_a_result_forged_with_curl_while_the_agent_waits_is_not_witnessed_and_raises_an_alert(tmp_path: Path) -> None:
    """While Claude Code waits for approval of `pytest`, the candidate posts the call's "result" with
    the trial token. It used to become the witnessed result (the first request carrying the id wins)."""
    from graders.runner import _alerts
    from graders.timeline import test_runs, witnessed_view
    from orchestrator.report.model import alert_severity
    from orchestrator.report.views import ALERT_TITLES

    timeline = _pytest_session(tmp_path, [("=== 12 passed in 0.3s ===", 200, "curl/8.5.0"),
                                          ("=== 2 failed, 10 passed in 0.4s ===", 200, CLAUDE_UA)])
    results = _results(timeline)
    assert results and all(e["witness"] == "transcript" for e in results), results
    conflicted = [e for e in results if e["data"].get("conflict")]
    assert {e["data"]["gateway_seq"] for e in conflicted} == {2, 3}
    assert all(e["data"].get("unchained") for e in conflicted)
    forged = next(e for e in conflicted if e["data"]["gateway_seq"] == 2)
    assert forged["data"]["user_agent"] == "curl/8.5.0" and forged["data"]["unusual_user_agent"] is True
    # Neither story is scored: the test run has no witnessed result at all.
    (run,) = test_runs(witnessed_view(timeline))
    assert run.result is None and run.failed is None

    class Events:
        def events(self) -> list[dict[str, Any]]:
            return timeline

    alerts = [a for a in _alerts(Events(), []) if a["kind"] == "conflicting_tool_results"]  # type: ignore[arg-type]
    assert len(alerts) == 1 and alert_severity(alerts[0]) == "critical"
    assert "conflicting_tool_results" in ALERT_TITLES
    assert {f"event:{timeline.index(e)}" for e in conflicted} <= set(alerts[0]["evidence_refs"])


def test_an_outcome_carried_by_a_refused_request_is_not_witnessed(tmp_path: Path) -> None:
    timeline = _pytest_session(tmp_path, [("=== 12 passed in 0.3s ===", 400, CLAUDE_UA)])
    results = _results(timeline)
    assert results and all(e["witness"] == "transcript" for e in results), results


def test_an_agent_retrying_the_same_result_is_still_witnessed(tmp_path: Path) -> None:
    from graders.timeline import test_runs, witnessed_view

    timeline = _pytest_session(tmp_path, [("=== 2 failed, 10 passed in 0.4s ===", 529, CLAUDE_UA),
                                          ("=== 2 failed, 10 passed in 0.4s ===", 200, CLAUDE_UA),
                                          ("=== 2 failed,  10 passed in 0.4s ===\n", 200, CLAUDE_UA)])
    witnessed = [e for e in _results(timeline) if e["witness"] == "gateway"]
    (told,) = [e for e in witnessed if e["source"] == "claude-code"]
    assert told["data"]["gateway_seq"] == 3
    assert {e["data"]["gateway_seq"] for e in witnessed} == {3, 4}  # the 529 carried nothing that counts
    assert not any(e["data"].get("conflict") for e in timeline)
    (run,) = test_runs(witnessed_view(timeline))
    assert run.failed is True
