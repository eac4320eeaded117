"""The scripted model's replies in each provider's own wire format, streamed or whole.

Given one reply (text and tool calls), these functions produce the exact bytes a provider
would send: Anthropic Messages (SSE events message_start … message_stop, or the message
JSON), OpenAI Responses (response.created … response.completed, every event numbered) and
OpenAI Chat Completions (`data:` chunks up to `[DONE]`). Event order, ids and where usage
appears follow the providers' documentation, so the real agents and the official SDKs
parse them, and the gateway's own assemblers read them back exactly as they read a real
provider's stream.

Usage is computed from sizes, as the gateway estimates a provider that never reported:
the prompt at one token per `BYTES_PER_INPUT_TOKEN` bytes of request, the output at one
token per `CHARS_PER_OUTPUT_TOKEN` characters of text and tool arguments.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from orchestrator.gateway.usage import BYTES_PER_INPUT_TOKEN, CHARS_PER_OUTPUT_TOKEN

CREATED = 1767225600
"""A fixed `created` time: the same conversation gets the same reply bytes."""
_JSON_PART = 512
"""Tool arguments are streamed in parts of this many characters, as providers stream them."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    """The call id the agent echoes in its tool result (toolu_… or call_…)."""
    name: str
    arguments: dict[str, Any] | str
    """JSON arguments, or the raw text of a freeform (custom) tool such as Codex's apply_patch."""

    @property
    def freeform(self) -> bool:
        return isinstance(self.arguments, str)

    @property
    def encoded(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    ident: str
    """Hex seed of every id in the reply (message, items)."""
    model: str
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    request_bytes: int = 0

    @property
    def input_tokens(self) -> int:
        return max(1, math.ceil(self.request_bytes / BYTES_PER_INPUT_TOKEN))

    @property
    def output_tokens(self) -> int:
        chars = len(self.text) + sum(len(call.name) + len(call.encoded) for call in self.calls)
        return max(1, math.ceil(chars / CHARS_PER_OUTPUT_TOKEN))


@dataclass
class Encoded:
    content_type: str
    chunks: list[bytes] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def pieces(text: str) -> list[str]:
    """Word-sized deltas that rejoin to exactly `text` (long words split at 64 characters)."""
    out: list[str] = []
    current = ""
    for char in text:
        current += char
        if char in " \n" or len(current) >= 64:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def _parts(encoded: str) -> list[str]:
    return [encoded[i:i + _JSON_PART] for i in range(0, len(encoded), _JSON_PART)]


def _json(data: Any, headers: dict[str, str]) -> Encoded:
    return Encoded("application/json", [json.dumps(data).encode()], headers)


# -- Anthropic Messages ------------------------------------------------------------------------

def anthropic(reply: Reply, *, stream: bool) -> Encoded:
    headers = {"request-id": f"req_script_{reply.ident[:24]}"}
    message_id = f"msg_script_{reply.ident[:24]}"
    stop = "tool_use" if reply.calls else "end_turn"
    usage = {"input_tokens": reply.input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": reply.output_tokens}
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text or not reply.calls else []
    blocks += [{"type": "tool_use", "id": call.id, "name": call.name,
                "input": call.arguments if isinstance(call.arguments, dict) else {"input": call.arguments}}
               for call in reply.calls]
    if not stream:
        return _json({"id": message_id, "type": "message", "role": "assistant", "model": reply.model,
                      "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}, headers)
    events = [_sse("message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": reply.model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
        else:
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {**block, "input": {}}}))
            deltas = [{"type": "input_json_delta", "partial_json": part}
                      for part in ["", *_parts(json.dumps(block["input"]))]]
        if index == 0:
            events.append(_sse("ping", {"type": "ping"}))
        events += [_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                   for delta in deltas]
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop,
                                                                            "stop_sequence": None},
                                         "usage": {"output_tokens": reply.output_tokens}}))
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return Encoded("text/event-stream; charset=utf-8", events, {**headers, "Cache-Control": "no-cache"})


def anthropic_count_tokens(request_bytes: int) -> Encoded:
    return _json({"input_tokens": max(1, math.ceil(request_bytes / BYTES_PER_INPUT_TOKEN))}, {})


# -- OpenAI Chat Completions -------------------------------------------------------------------

def openai_chat(reply: Reply, *, stream: bool, include_usage: bool) -> Encoded:
    headers = {"x-request-id": f"req_script_{reply.ident[:24]}"}
    head = {"id": f"chatcmpl-script{reply.ident[:24]}", "created": CREATED, "model": reply.model,
            "system_fingerprint": "fp_script"}
    finish = "tool_calls" if reply.calls else "stop"
    usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
             "total_tokens": reply.input_tokens + reply.output_tokens,
             "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    calls = [{"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.encoded}}
             for call in reply.calls]
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return _json({**head, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage}, headers)

    def chunk(choices: list[dict[str, Any]], usage_value: Any = None) -> bytes:
        data: dict[str, Any] = {**head, "object": "chat.completion.chunk", "choices": choices}
        if include_usage:
            data["usage"] = usage_value
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    def delta(value: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": value, "logprobs": None, "finish_reason": finish_reason}]

    events = [chunk(delta({"role": "assistant", "content": "", "refusal": None}))]
    events += [chunk(delta({"content": piece})) for piece in pieces(reply.text)]
    for position, call in enumerate(reply.calls):
        events.append(chunk(delta({"tool_calls": [{"index": position, "id": call.id, "type": "function",
                                                   "function": {"name": call.name, "arguments": ""}}]})))
        events += [chunk(delta({"tool_calls": [{"index": position, "function": {"arguments": part}}]}))
                   for part in _parts(call.encoded)]
    events.append(chunk(delta({}, finish)))
    if include_usage:
        events.append(chunk([], usage))
    events.append(b"data: [DONE]\n\n")
    return Encoded("text/event-stream; charset=utf-8", events, {**headers, "Cache-Control": "no-cache"})


# -- OpenAI Responses --------------------------------------------------------------------------

def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {"input_tokens": reply.input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": reply.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.input_tokens + reply.output_tokens}


def openai_responses(reply: Reply, *, stream: bool, request: dict[str, Any]) -> Encoded:
    headers = {"x-request-id": f"req_script_{reply.ident[:24]}"}
    part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
    items: list[dict[str, Any]] = []
    if reply.text or not reply.calls:
        items.append({"id": f"msg_script{reply.ident[:24]}", "type": "message", "status": "completed",
                      "role": "assistant", "content": [part]})
    for position, call in enumerate(reply.calls):
        if call.freeform:
            items.append({"id": f"ctc_script{reply.ident[:16]}{position:04d}", "type": "custom_tool_call",
                          "status": "completed", "call_id": call.id, "name": call.name, "input": call.encoded})
        else:
            items.append({"id": f"fc_script{reply.ident[:16]}{position:04d}", "type": "function_call",
                          "status": "completed", "call_id": call.id, "name": call.name,
                          "arguments": call.encoded})

    def response(status: str, output: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
        return {"id": f"resp_script{reply.ident[:24]}", "object": "response", "created_at": CREATED,
                "status": status, "model": reply.model, "output": output, "usage": usage, "error": None,
                "incomplete_details": None, "instructions": request.get("instructions"), "metadata": {},
                "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)), "temperature": 1.0,
                "top_p": 1.0, "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools", []),
                "text": {"format": {"type": "text"}}, "reasoning": {"effort": None, "summary": None},
                "store": bool(request.get("store", False))}

    final = response("completed", items, _responses_usage(reply))
    if not stream:
        return _json(final, headers)
    sequence = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(sequence), **data})

    started = response("in_progress", [], None)
    events = [event("response.created", response=started), event("response.in_progress", response=started)]
    for index, item in enumerate(items):
        if item["type"] == "message":
            events.append(event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "content": []}))
            events.append(event("response.content_part.added", item_id=item["id"], output_index=index,
                                content_index=0, part={**part, "text": ""}))
            events += [event("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0,
                             delta=piece, logprobs=[]) for piece in pieces(reply.text)]
            events += [event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                             text=reply.text, logprobs=[]),
                       event("response.content_part.done", item_id=item["id"], output_index=index,
                             content_index=0, part=part)]
        elif item["type"] == "custom_tool_call":
            events.append(event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "input": ""}))
            events += [event("response.custom_tool_call_input.delta", item_id=item["id"], output_index=index,
                             delta=chunk) for chunk in _parts(item["input"])]
            events.append(event("response.custom_tool_call_input.done", item_id=item["id"], output_index=index,
                                input=item["input"]))
        else:
            events.append(event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "arguments": ""}))
            events += [event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                             delta=chunk) for chunk in _parts(item["arguments"])]
            events.append(event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                arguments=item["arguments"]))
        events.append(event("response.output_item.done", output_index=index, item=item))
    events.append(event("response.completed", response=final))
    return Encoded("text/event-stream; charset=utf-8", events, {**headers, "Cache-Control": "no-cache"})


def openai_compact(reply: Reply) -> Encoded:
    """Server-side compaction (`/v1/responses/compact`): the summary is the reply's text."""
    return _json({"id": f"cmp_script{reply.ident[:24]}", "object": "response.compaction", "created_at": CREATED,
                  "output": [{"id": f"cmpi_script{reply.ident[:24]}", "type": "compaction",
                              "encrypted_content": reply.text}],
                  "usage": _responses_usage(reply)}, {"x-request-id": f"req_script_{reply.ident[:24]}"})


def openai_models(names: list[str]) -> Encoded:
    return _json({"object": "list", "data": [{"id": name, "object": "model", "created": CREATED,
                                              "owned_by": "trial-script"} for name in names]}, {})
