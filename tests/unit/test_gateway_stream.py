"""SSE parsing at any chunk boundary, and assembling each provider's stream into its final answer."""

from __future__ import annotations

import itertools
import json

import pytest

from orchestrator.gateway.assemble import AnthropicAssembler, OpenAIChatAssembler, OpenAIResponsesAssembler
from orchestrator.gateway.sse import SSEEvent, SSEParser
from orchestrator.gateway.usage import Usage

pytestmark = pytest.mark.unit


def sse(name: str | None, data: object) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


ANTHROPIC_STREAM = b"".join([
    sse("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0,
                  "output_tokens": 1}}}),
    sse("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "thinking", "thinking": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "thinking_delta", "thinking": "Let me check. "}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "signature_delta", "signature": "sig=="}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    sse("ping", {"type": "ping"}),
    sse("content_block_start", {"type": "content_block_start", "index": 1,
                                "content_block": {"type": "text", "text": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                "delta": {"type": "text_delta", "text": "Héllo 👋 "}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                "delta": {"type": "text_delta", "text": "world"}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    sse("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
        "type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 2,
                                "delta": {"type": "input_json_delta", "partial_json": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 2,
                                "delta": {"type": "input_json_delta", "partial_json": '{"command": "ls'}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 2,
                                "delta": {"type": "input_json_delta", "partial_json": ' -la"}'}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 2}),
    sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                          "usage": {"output_tokens": 42}}),
    sse("message_stop", {"type": "message_stop"}),
])


def parse_all(stream: bytes, cut: int | None = None) -> list[SSEEvent]:
    parser = SSEParser()
    if cut is None:
        return parser.feed(stream) + parser.close()
    return parser.feed(stream[:cut]) + parser.feed(stream[cut:]) + parser.close()


def test_parser_gives_the_same_events_whatever_the_chunking() -> None:
    whole = parse_all(ANTHROPIC_STREAM)
    assert [event.event for event in whole][:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert b"".join(event.raw for event in whole) == ANTHROPIC_STREAM
    for cut in range(len(ANTHROPIC_STREAM)):  # every split point, inside UTF-8 characters included
        assert parse_all(ANTHROPIC_STREAM, cut) == whole


def test_parser_handles_crlf_comments_multiline_data_and_an_unterminated_last_event() -> None:
    stream = b": keep-alive\r\n\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\ndata: tail"
    events = parse_all(stream)
    assert [(event.event, event.data) for event in events] == [("a", "one\ntwo"), ("", "tail")]
    assert b"".join(event.raw for event in events) == stream  # no byte lost, comments included


def test_anthropic_stream_assembles_to_the_final_message() -> None:
    assembler = AnthropicAssembler()
    for event in parse_all(ANTHROPIC_STREAM):
        assert assembler.on_event(event) is True
    message = assembler.result()
    assert assembler.done and assembler.error is None
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me check. ", "signature": "sig=="},
        {"type": "text", "text": "Héllo 👋 world"},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}},
    ]
    assert message["usage"]["output_tokens"] == 42  # message_delta's cumulative count wins
    assert assembler.usage() == Usage(input_tokens=25, output_tokens=42, cache_read_tokens=100)


def test_anthropic_stream_cut_short_keeps_what_arrived() -> None:
    cut = ANTHROPIC_STREAM.index(b"event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 2")
    assembler = AnthropicAssembler()
    for event in SSEParser().feed(ANTHROPIC_STREAM[:cut]):
        assembler.on_event(event)
    message = assembler.result()
    assert not assembler.done
    assert message["content"][2]["input"] == {"command": "ls -la"}
    assert assembler.usage() == Usage(input_tokens=25, output_tokens=1, cache_read_tokens=100)
    assert assembler.output_chars == len("Let me check. Héllo 👋 world") + len('{"command": "ls -la"}')


def test_anthropic_error_event_is_kept() -> None:
    assembler = AnthropicAssembler()
    for event in parse_all(sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                    "message": "Overloaded"}})):
        assembler.on_event(event)
    assert assembler.error == {"type": "overloaded_error", "message": "Overloaded"}


def chat_chunk(choices: list[dict[str, object]], usage: object = None) -> bytes:
    return sse(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.4",
                      "choices": choices, "usage": usage})


CHAT_STREAM = b"".join([
    chat_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
    chat_chunk([{"index": 0, "delta": {"content": "Hi "}, "finish_reason": None}]),
    chat_chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                       "function": {"name": "read", "arguments": ""}}]}}]),
    chat_chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]}}]),
    chat_chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "a.py"}'}}]}}]),
    chat_chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
    chat_chunk([], {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102,
                    "prompt_tokens_details": {"cached_tokens": 64}}),
    b"data: [DONE]\n\n",
])


@pytest.mark.parametrize("drop", [False, True])
def test_chat_stream_assembles_and_can_hide_the_usage_chunk(drop: bool) -> None:
    assembler = OpenAIChatAssembler(drop_usage_chunk=drop)
    kept = [event for event in parse_all(CHAT_STREAM) if assembler.on_event(event)]
    assert assembler.done
    assert len(kept) == 8 - drop
    assert all(b'"choices": []' not in event.raw for event in kept) == drop
    result = assembler.result()
    assert result["choices"] == [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Hi ",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "read", "arguments": '{"path": "a.py"}'}}]}}]
    assert assembler.usage() == Usage(input_tokens=26, output_tokens=12, cache_read_tokens=64)


def responses_event(kind: str, **data: object) -> bytes:
    return sse(kind, {"type": kind, **data})


def test_responses_stream_takes_the_completed_response_or_rebuilds_a_partial_one() -> None:
    final = {"id": "resp_1", "status": "completed", "model": "gpt-5.4",
             "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hey you"}]}],
             "usage": {"input_tokens": 50, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 10}}}
    head = [
        responses_event("response.created", response={"id": "resp_1", "status": "in_progress", "output": []}),
        responses_event("response.output_item.added", output_index=0,
                        item={"type": "message", "id": "msg_1", "content": []}),
        responses_event("response.content_part.added", output_index=0, content_index=0,
                        part={"type": "output_text", "text": ""}),
        responses_event("response.output_text.delta", output_index=0, content_index=0, delta="Hey "),
        responses_event("response.output_text.delta", output_index=0, content_index=0, delta="you"),
    ]
    complete = OpenAIResponsesAssembler()
    for event in parse_all(b"".join([*head, responses_event("response.completed", response=final)])):
        complete.on_event(event)
    assert complete.done and complete.result() == final
    assert complete.usage() == Usage(input_tokens=40, output_tokens=3, cache_read_tokens=10)

    partial = OpenAIResponsesAssembler()
    for event in parse_all(b"".join(head)):
        partial.on_event(event)
    assert not partial.done and partial.usage() is None
    rebuilt = partial.result()
    assert rebuilt["status"] == "interrupted"
    assert rebuilt["output"][0]["content"][0]["text"] == "Hey you"
    assert partial.output_chars == len("Hey you")


@pytest.mark.parametrize(("stream", "kind", "filtering", "terminal"), [
    (ANTHROPIC_STREAM, "anthropic.messages", False, sse("message_stop", {"type": "message_stop"})),
    (CHAT_STREAM, "openai.chat", False, b"data: [DONE]\n\n"),
    (CHAT_STREAM, "openai.chat", True, b"data: [DONE]\n\n"),
])
def test_the_tee_relays_every_byte_but_holds_the_terminal_event_whatever_the_chunking(
        stream: bytes, kind: str, filtering: bool, terminal: bytes) -> None:
    from orchestrator.gateway.assemble import for_route
    from orchestrator.gateway.server import _Tee

    assert stream.endswith(terminal)
    expected = stream if not filtering else b"".join(
        event.raw for event in parse_all(stream) if b'"choices": []' not in event.raw)
    for size in (1, 7, 64, len(stream)):
        for offset in range(min(size, 13)):  # chunk boundaries everywhere
            tee = _Tee(for_route(kind, drop_usage_chunk=filtering), filtering=filtering)
            cuts = [0, *range(offset or size, len(stream), size), len(stream)]
            relayed = b"".join(tee.feed(stream[a:b]) for a, b in itertools.pairwise(cuts) if b > a)
            relayed += tee.close()
            assert tee.assembler.done
            assert relayed + tee.held == expected  # nothing lost, nothing reordered
            # The client gets everything before the terminal event as it comes; the terminal event
            # itself only once the record is written (held), unless it began in an earlier chunk.
            assert expected.endswith(tee.held) and len(tee.held) >= 1
            start = len(expected) - len(terminal)
            assert len(relayed) <= start or size == 1 or len(tee.held) < len(terminal)
            assert terminal not in relayed
