"""A fake LLM provider on loopback speaking the real wire formats, streaming included.

Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`) and OpenAI Chat
Completions, Responses and Models (`/v1/chat/completions`, `/v1/responses`,
`/v1/responses/compact`, `/v1/models`), with the event types, their order and where usage appears as the
providers document them:

- Anthropic stream: message_start (usage with input and cache counts) → per block
  content_block_start / *_delta (text_delta, input_json_delta) / content_block_stop →
  message_delta (stop_reason, cumulative usage.output_tokens) → message_stop; a `ping`
  after the first block starts; errors as `event: error`.
- OpenAI chat stream: `data:` chunks, role first, content or tool_calls deltas, a
  finish_reason chunk, then (only with stream_options.include_usage) a chunk with empty
  choices and the usage (every other chunk carrying "usage": null), then `data: [DONE]`.
- OpenAI Responses stream: response.created, response.in_progress, output_item.added,
  content_part.added, output_text.delta…, output_text.done, content_part.done,
  output_item.done (function_call_arguments.delta/done for tool calls), response.completed
  with the usage; every event with a sequence_number.

Answers are deterministic functions of the request (ids from its hash, a fixed
`created`), so a client talking to the fake directly and one going through the gateway
get equal results. It checks the upstream key like a provider does and records every
request it receives for tests to inspect.

Knobs (`FakeUpstream.knobs`, or per request as JSON in an `x-fake-knobs` header): error
status, slow first byte and slow chunks, a disconnect after N events, an in-stream error
event, tool calls, cache token counts, answers that report no usage.

Responses with `"background": true` answer as the API does: at once, `status: "queued"`,
no output and `usage: null` (the work, and its bill, happen after the exchange).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

ANTHROPIC_KEY = "sk-ant-fake-upstream-key-0123456789"
OPENAI_KEY = "sk-fake-openai-upstream-key-0123456789"
CREATED = 1767225600  # fixed, so answers compare equal across calls
MODELS = ("gpt-5.4", "gpt-5.4-mini", "gpt-4.1", "o4-mini")
TOOL = {"name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}}

_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_OPENAI_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
                  429: ("rate_limit_exceeded", "rate_limit_exceeded"), 500: ("server_error", None),
                  503: ("server_error", None)}


@dataclass(frozen=True)
class Knobs:
    text: str | None = None
    """Reply text; default: a greeting that quotes the last user message."""
    tool_call: bool = False
    """Answer with a get_weather tool call after the text."""
    fail_status: int | None = None
    """Answer with this HTTP error, in the provider's error shape."""
    first_byte_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    disconnect_after_events: int | None = None
    """Close the connection mid-stream after this many events (no terminating chunk)."""
    error_event_after: int | None = None
    """Anthropic streams: send `event: error` (overloaded) after this many events, then stop."""
    input_tokens: int | None = None
    """Override the input token count (default: request JSON length / 4)."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    omit_usage: bool = False
    """Answer without usage (whole answers and streams), as a billed call sometimes does."""


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    """The bytes as they arrived (what a provider's own parser would read)."""


@dataclass
class FakeUpstream:
    anthropic_key: str = ANTHROPIC_KEY
    openai_key: str = OPENAI_KEY
    knobs: Knobs = field(default_factory=Knobs)
    requests: list[Recorded] = field(default_factory=list)
    record: bool = True
    """Keep every request (turn off for benchmarks)."""
    set_cookie: str | None = None
    """A Set-Cookie header on every whole answer, as a provider's load balancer adds (Cloudflare's __cf_bm)."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._cookies])
        app.router.add_post("/v1/messages", self._anthropic_messages)
        app.router.add_post("/v1/messages/count_tokens", self._anthropic_count_tokens)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/v1/responses", self._openai_responses)
        app.router.add_post("/v1/responses/compact", self._openai_compact)
        app.router.add_get("/v1/models", self._openai_models)
        return app

    # -- plumbing -----------------------------------------------------------------------
    @web.middleware
    async def _cookies(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if self.set_cookie is not None and not response.prepared:
            response.headers.add("Set-Cookie", self.set_cookie)
        return response

    async def _begin(self, request: web.Request, provider: str) -> tuple[dict[str, Any], Knobs, web.Response | None]:
        raw = await request.read()
        body: Any = json.loads(raw) if raw else {}
        if self.record:
            self.requests.append(Recorded(request.method, request.path, request.query_string,
                                          dict(request.headers), body, raw))
        knobs = self.knobs
        if request.headers.get("x-fake-knobs"):
            knobs = replace(knobs, **json.loads(request.headers["x-fake-knobs"]))
        if provider == "anthropic":
            # The documented x-api-key, or a bearer (what the current Python SDK sends an API key as).
            ok = self.anthropic_key in (request.headers.get("x-api-key"),
                                        request.headers.get("Authorization", "").removeprefix("Bearer "))
        else:
            ok = request.headers.get("Authorization") == f"Bearer {self.openai_key}"
        if not ok:
            return body, knobs, _error(provider, 401, "invalid x-api-key" if provider == "anthropic"
                                       else "Incorrect API key provided.")
        if knobs.fail_status is not None:
            return body, knobs, _error(provider, knobs.fail_status, "the fake upstream was told to fail")
        if knobs.first_byte_delay_s:
            await asyncio.sleep(knobs.first_byte_delay_s)
        return body if isinstance(body, dict) else {}, knobs, None

    async def _stream(self, request: web.Request, knobs: Knobs, events: list[bytes],
                      headers: dict[str, str], provider: str) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                           "Cache-Control": "no-cache", **headers})
        await response.prepare(request)
        for number, event in enumerate(events):
            if knobs.disconnect_after_events is not None and number >= knobs.disconnect_after_events:
                assert request.transport is not None
                request.transport.close()
                return response
            if knobs.error_event_after is not None and number >= knobs.error_event_after and provider == "anthropic":
                await response.write(_sse("error", {"type": "error", "error": {
                    "type": "overloaded_error", "message": "Overloaded"}}))
                break
            if knobs.chunk_delay_s and number:
                await asyncio.sleep(knobs.chunk_delay_s)
            try:
                await response.write(event)
            except ConnectionError:  # the client (or the gateway) hung up: a provider just stops
                return response
        await response.write_eof()
        return response

    # -- Anthropic ----------------------------------------------------------------------
    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        body, knobs, refusal = await self._begin(request, "anthropic")
        if refusal is not None:
            return refusal
        ident = _ident(body)
        model = str(body.get("model", "claude-sonnet-5-5"))
        text = knobs.text if knobs.text is not None else _reply(body)
        pieces = _pieces(text)
        input_tokens = knobs.input_tokens if knobs.input_tokens is not None else _count(body)
        output_tokens = len(pieces) + (len(_tool_json_parts()) if knobs.tool_call else 0)
        usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": knobs.cache_write_tokens,
                 "cache_read_input_tokens": knobs.cache_read_tokens, "output_tokens": output_tokens}
        stop_reason = "tool_use" if knobs.tool_call else "end_turn"
        headers = {"request-id": f"req_fake_{ident}"}
        tool_id = f"toolu_{ident}"
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": text}]
            if knobs.tool_call:
                content.append({"type": "tool_use", "id": tool_id, "name": TOOL["name"], "input": TOOL["input"]})
            whole = {"id": f"msg_{ident}", "type": "message", "role": "assistant", "model": model,
                     "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}
            if knobs.omit_usage:
                del whole["usage"]
            return web.json_response(whole, headers=headers)
        start_usage = {**usage, "output_tokens": 1}
        events = [_sse("message_start", {"type": "message_start", "message": {
            "id": f"msg_{ident}", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
            _sse("ping", {"type": "ping"})]
        events += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": piece}}) for piece in pieces]
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if knobs.tool_call:
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": tool_id, "name": TOOL["name"], "input": {}}}))
            events += [_sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                    "delta": {"type": "input_json_delta", "partial_json": part}})
                       for part in ["", *_tool_json_parts()]]
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
        events.append(_sse("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}}))
        if knobs.omit_usage:
            events = [_without_usage(event) for event in events]
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return await self._stream(request, knobs, events, headers, "anthropic")

    async def _anthropic_count_tokens(self, request: web.Request) -> web.Response:
        body, knobs, refusal = await self._begin(request, "anthropic")
        if refusal is not None:
            return refusal
        return web.json_response({"input_tokens": knobs.input_tokens if knobs.input_tokens is not None
                                  else _count(body)})

    # -- OpenAI chat --------------------------------------------------------------------
    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body, knobs, refusal = await self._begin(request, "openai")
        if refusal is not None:
            return refusal
        ident = _ident(body)
        model = str(body.get("model", "gpt-5.4"))
        text = knobs.text if knobs.text is not None else _reply(body)
        pieces = _pieces(text)
        prompt = (knobs.input_tokens if knobs.input_tokens is not None else _count(body)) + knobs.cache_read_tokens
        completion = len(pieces) + (len(_tool_json_parts()) if knobs.tool_call else 0)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": knobs.cache_read_tokens, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        finish = "tool_calls" if knobs.tool_call else "stop"
        head = {"id": f"chatcmpl-{ident}", "created": CREATED, "model": model, "system_fingerprint": "fp_fake",
                "service_tier": "default"}
        headers = {"x-request-id": f"req_fake_{ident}"}
        tool_call = {"id": f"call_{ident}", "type": "function",
                     "function": {"name": TOOL["name"], "arguments": json.dumps(TOOL["input"])}}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            if knobs.tool_call:
                message["tool_calls"] = [tool_call]
            whole = {**head, "object": "chat.completion", "choices": [{
                "index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage}
            if knobs.omit_usage:
                del whole["usage"]
            return web.json_response(whole, headers=headers)
        options = body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage")) and not knobs.omit_usage

        def chunk(choices: list[dict[str, Any]], usage_value: Any = None) -> bytes:
            data: dict[str, Any] = {**head, "object": "chat.completion.chunk", "choices": choices}
            if with_usage:
                data["usage"] = usage_value
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def delta(value: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": value, "logprobs": None, "finish_reason": finish_reason}]

        events = [chunk(delta({"role": "assistant", "content": "", "refusal": None}))]
        events += [chunk(delta({"content": piece})) for piece in pieces]
        if knobs.tool_call:
            events.append(chunk(delta({"tool_calls": [{"index": 0, "id": tool_call["id"], "type": "function",
                                                       "function": {"name": TOOL["name"], "arguments": ""}}]})))
            events += [chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
                       for part in _tool_json_parts()]
        events.append(chunk(delta({}, finish)))
        if with_usage:
            events.append(chunk([], usage))
        events.append(b"data: [DONE]\n\n")
        return await self._stream(request, knobs, events, headers, "openai")

    # -- OpenAI responses ---------------------------------------------------------------
    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        body, knobs, refusal = await self._begin(request, "openai")
        if refusal is not None:
            return refusal
        ident = _ident(body)
        model = str(body.get("model", "gpt-5.4"))
        text = knobs.text if knobs.text is not None else _reply(body)
        pieces = _pieces(text)
        prompt = (knobs.input_tokens if knobs.input_tokens is not None else _count(body)) + knobs.cache_read_tokens
        output = len(pieces) + (len(_tool_json_parts()) if knobs.tool_call else 0)
        usage: dict[str, Any] | None = {
            "input_tokens": prompt, "input_tokens_details": {"cached_tokens": knobs.cache_read_tokens},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + output}
        if knobs.omit_usage:
            usage = None
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": f"msg_{ident}", "type": "message", "status": "completed", "role": "assistant",
                   "content": [part]}
        call = {"id": f"fc_{ident}", "type": "function_call", "status": "completed", "call_id": f"call_{ident}",
                "name": TOOL["name"], "arguments": json.dumps(TOOL["input"])}
        items: list[dict[str, Any]] = [message, *([call] if knobs.tool_call else [])]

        def response(status: str, output_items: list[dict[str, Any]], usage_value: Any) -> dict[str, Any]:
            return {"id": f"resp_{ident}", "object": "response", "created_at": CREATED, "status": status,
                    "model": model, "output": output_items, "usage": usage_value, "error": None,
                    "incomplete_details": None, "instructions": body.get("instructions"), "metadata": {},
                    "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto",
                    "tools": body.get("tools", []), "text": {"format": {"type": "text"}},
                    "reasoning": {"effort": None, "summary": None}, "store": True}

        headers = {"x-request-id": f"req_fake_{ident}"}
        if body.get("background") and not body.get("stream"):
            return web.json_response({**response("queued", [], None), "background": True}, headers=headers)
        if not body.get("stream"):
            return web.json_response(response("completed", items, usage), headers=headers)
        sequence = iter(range(1_000_000))

        def event(kind: str, **data: Any) -> bytes:
            return _sse(kind, {"type": kind, "sequence_number": next(sequence), **data})

        in_progress = response("in_progress", [], None)
        events = [event("response.created", response=in_progress), event("response.in_progress", response=in_progress),
                  event("response.output_item.added", output_index=0,
                        item={**message, "status": "in_progress", "content": []}),
                  event("response.content_part.added", item_id=message["id"], output_index=0, content_index=0,
                        part={**part, "text": ""})]
        events += [event("response.output_text.delta", item_id=message["id"], output_index=0, content_index=0,
                         delta=piece, logprobs=[]) for piece in pieces]
        events += [event("response.output_text.done", item_id=message["id"], output_index=0, content_index=0,
                         text=text, logprobs=[]),
                   event("response.content_part.done", item_id=message["id"], output_index=0, content_index=0,
                         part=part),
                   event("response.output_item.done", output_index=0, item=message)]
        if knobs.tool_call:
            events.append(event("response.output_item.added", output_index=1,
                                item={**call, "status": "in_progress", "arguments": ""}))
            events += [event("response.function_call_arguments.delta", item_id=call["id"], output_index=1,
                             delta=piece) for piece in _tool_json_parts()]
            events += [event("response.function_call_arguments.done", item_id=call["id"], output_index=1,
                             arguments=call["arguments"]),
                       event("response.output_item.done", output_index=1, item=call)]
        events.append(event("response.completed", response=response("completed", items, usage)))
        return await self._stream(request, knobs, events, headers, "openai")

    async def _openai_compact(self, request: web.Request) -> web.Response:
        body, knobs, refusal = await self._begin(request, "openai")
        if refusal is not None:
            return refusal
        ident = _ident(body)
        prompt = (knobs.input_tokens if knobs.input_tokens is not None else _count(body)) + knobs.cache_read_tokens
        summary = "Summary of the conversation so far."
        output = len(_pieces(summary))
        return web.json_response({
            "id": f"cmp_{ident}", "object": "response.compaction", "created_at": CREATED,
            "output": [{"id": f"cmpi_{ident}", "type": "compaction", "encrypted_content": summary}],
            "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": knobs.cache_read_tokens},
                      "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": prompt + output}}, headers={"x-request-id": f"req_fake_{ident}"})

    async def _openai_models(self, request: web.Request) -> web.Response:
        _, _, refusal = await self._begin(request, "openai")
        if refusal is not None:
            return refusal
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": CREATED, "owned_by": "openai"} for name in MODELS]})


# -- helpers ------------------------------------------------------------------------------

def _without_usage(event: bytes) -> bytes:
    """An Anthropic stream event with its usage (top level or in the message) taken out."""
    head, _, data = event.partition(b"data: ")
    value = json.loads(data)
    value.pop("usage", None)
    if isinstance(value.get("message"), dict):
        value["message"].pop("usage", None)
    return head + b"data: " + json.dumps(value).encode() + b"\n\n"


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _error(provider: str, status: int, message: str) -> web.Response:
    if provider == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": _ANTHROPIC_ERRORS.get(status, "api_error"),
                                                           "message": message}, "request_id": "req_fake_error"}
        headers = {"request-id": "req_fake_error"}
    else:
        kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        headers = {"x-request-id": "req_fake_error"}
    if status == 429:
        headers["retry-after"] = "0"
    return web.json_response(body, status=status, headers=headers)


def _ident(body: dict[str, Any]) -> str:
    # stream_options is left out (the gateway may add include_usage on the client's behalf), and
    # so is stream: the same question gets the same ids streamed or not.
    stable = {key: value for key, value in body.items() if key not in ("stream_options", "stream")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:24]


def _count(body: dict[str, Any]) -> int:
    prompt = {key: body.get(key) for key in ("system", "messages", "input", "instructions", "tools")}
    return max(1, len(json.dumps(prompt)) // 4)


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("input"), str):
        return str(body["input"])
    for message in reversed(body.get("messages") or body.get("input") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _reply(body: dict[str, Any]) -> str:
    return f"Hello from the fake upstream. You said: {_last_user_text(body)[:80]}"


def _pieces(text: str) -> list[str]:
    """Split into word-sized deltas that rejoin to exactly `text`."""
    pieces: list[str] = []
    current = ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces or [""]


def _tool_json_parts() -> list[str]:
    encoded = json.dumps(TOOL["input"])
    return [encoded[i:i + 7] for i in range(0, len(encoded), 7)]


# -- running it ---------------------------------------------------------------------------

class ServerThread:
    """Serve an aiohttp app on 127.0.0.1 from a background thread with its own loop."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0, *,
                 handler_cancellation: bool = False) -> None:
        self.app, self.host, self.port = app, host, port
        self.handler_cancellation = handler_cancellation
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=self.handler_cancellation)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def call(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop (e.g. to inspect app state) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextmanager
def serve_in_thread(app: web.Application) -> Iterator[ServerThread]:
    server = ServerThread(app).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.fakes.llm_upstream [--port N] [--knobs JSON]`: serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--knobs", default="{}", help="JSON of Knobs fields")
    args = parser.parse_args(argv)
    fake = FakeUpstream(knobs=Knobs(**json.loads(args.knobs)), record=False)

    async def run() -> None:
        runner = web.AppRunner(fake.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"READY http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def knobs_header(**values: Any) -> dict[str, str]:
    """Per-request knobs for a client's extra headers."""
    replace(Knobs(), **values)  # rejects unknown knob names here rather than in the fake
    return {"x-fake-knobs": json.dumps(values)}


if __name__ == "__main__":
    main(sys.argv[1:])
