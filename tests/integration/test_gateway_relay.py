"""The official SDKs through the real gateway get what they get from the provider directly.

Every test runs a real gateway (aiohttp on loopback, real store, real log files) in front
of the fake upstream, and compares with the same SDK call made to the fake directly.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import anthropic
import openai
import pytest

from orchestrator.gateway.log import read_records, verify_chain
from orchestrator.store import utcnow
from tests.fakes.llm_upstream import ANTHROPIC_KEY, OPENAI_KEY, FakeUpstream, Knobs, knobs_header
from tests.integration.gateway_harness import Harness, running_gateway

pytestmark = pytest.mark.unit  # loopback sockets only, no Docker

MESSAGES = [{"role": "user", "content": "What's the weather in Paris?"}]
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture
def gw() -> Iterator[Harness]:
    with running_gateway() as harness:
        yield harness


def anthropic_pair(gw: Harness) -> tuple[anthropic.Anthropic, anthropic.Anthropic]:
    direct = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=gw.upstream.url, max_retries=0, timeout=20)
    # Claude Code sends the token as a bearer (ANTHROPIC_AUTH_TOKEN); so does this client.
    via = anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"], max_retries=0,
                              timeout=20)
    return direct, via


def openai_pair(gw: Harness) -> tuple[openai.OpenAI, openai.OpenAI]:
    direct = openai.OpenAI(api_key=OPENAI_KEY, base_url=gw.upstream.url + "/v1", max_retries=0, timeout=20)
    via = openai.OpenAI(api_key=gw.openai_token, base_url=gw.urls["openai"], max_retries=0, timeout=20)
    return direct, via


def records(gw: Harness, provider: str = "anthropic") -> list[dict[str, Any]]:
    """The log of the harness's Anthropic (Claude Code) trial, or of its OpenAI (Codex) one."""
    path = gw.log if provider == "anthropic" else gw.openai_log
    return list(read_records(path))  # requests whole, however the log stores them


@pytest.mark.parametrize("tool_call", [False, True])
def test_anthropic_messages_equal_direct_streaming_or_not(gw: Harness, tool_call: bool) -> None:
    gw.fake.knobs = Knobs(tool_call=tool_call, cache_read_tokens=7, cache_write_tokens=3)
    results = []
    for client in anthropic_pair(gw):
        whole = client.messages.create(model="claude-sonnet-5-5", max_tokens=256, messages=MESSAGES, tools=TOOLS)
        with client.messages.stream(model="claude-sonnet-5-5", max_tokens=256, messages=MESSAGES,
                                    tools=TOOLS) as stream:
            events = [event.model_dump() for event in stream]
            final = stream.get_final_message()
        results.append((whole.model_dump(), events, final.model_dump()))
    assert results[0] == results[1]
    whole, _, final = results[1]
    assert [block["type"] for block in final["content"]] == (["text", "tool_use"] if tool_call else ["text"])
    assert final["content"] == whole["content"]

    logged = records(gw)
    assert [(r["route"], r["stream"], r["status"], r["outcome"]) for r in logged] == [
        ("/anthropic/v1/messages", False, 200, "ok"), ("/anthropic/v1/messages", True, 200, "ok")]
    # The tee assembled the stream into the very message the non-streamed call returned.
    assert logged[1]["response"]["content"] == logged[0]["response"]["content"]
    assert logged[1]["response"]["content"] == [{k: v for k, v in block.items() if v is not None}
                                                 for block in whole["content"]]
    assert logged[1]["usage"] == logged[0]["usage"]
    assert logged[1]["usage"]["cache_read_tokens"] == 7 and logged[1]["usage"]["cache_write_tokens"] == 3
    assert logged[1]["cost_usd"] == logged[0]["cost_usd"] > 0
    assert logged[1]["request"]["messages"] == MESSAGES and logged[1]["request"]["stream"] is True
    assert logged[1]["agent"].startswith("Anthropic/Python")
    assert verify_chain(gw.log).ok


def test_openai_chat_equal_direct_and_a_stream_without_usage_is_still_billed(gw: Harness) -> None:
    gw.fake.knobs = Knobs(tool_call=True)
    results = []
    for client in openai_pair(gw):
        whole = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        plain = [chunk.model_dump() for chunk in client.chat.completions.create(
            model="gpt-5.4", messages=MESSAGES, stream=True)]
        with_usage = [chunk.model_dump() for chunk in client.chat.completions.create(
            model="gpt-5.4", messages=MESSAGES, stream=True, stream_options={"include_usage": True})]
        results.append((whole.model_dump(), plain, with_usage))
    assert results[0] == results[1]
    _, plain, with_usage = results[1]
    # The client that did not ask for usage never sees the usage-only chunk (chunk.choices[0] stays safe)…
    assert all(chunk["choices"] for chunk in plain) and all(chunk["usage"] is None for chunk in plain)
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"]["completion_tokens"] > 0

    logged = records(gw, "openai")
    # …yet the gateway asked for it upstream, so that stream has real usage and a real cost.
    assert gw.fake.requests[-2].body["stream_options"] == {"include_usage": True}
    assert logged[1]["request"].get("stream_options") is None  # the log holds what the client sent
    assert logged[0]["usage"] == logged[1]["usage"] == logged[2]["usage"]
    assert logged[0]["cost_usd"] == logged[1]["cost_usd"] == logged[2]["cost_usd"] > 0
    call = logged[1]["response"]["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}


def test_openai_responses_equal_direct_streaming_or_not(gw: Harness) -> None:
    results = []
    for client in openai_pair(gw):
        whole = client.responses.create(model="gpt-5.4", input="Hi there")
        # warnings=False: the SDK's parsed-response unions trip pydantic's serializer warnings.
        with client.responses.stream(model="gpt-5.4", input="Hi there") as stream:
            events = [event.model_dump(warnings=False) for event in stream]
            final = stream.get_final_response()
        results.append((whole.model_dump(), events, final.model_dump(warnings=False)))
    assert results[0] == results[1]
    assert results[1][2]["output"][0]["content"][0]["text"].startswith("Hello from the fake upstream")
    logged = records(gw, "openai")
    assert logged[1]["response"]["status"] == "completed" and logged[1]["usage"] == logged[0]["usage"]
    assert logged[1]["cost_usd"] > 0


def test_responses_compaction_is_relayed_and_billed(gw: Harness) -> None:
    results = [client.responses.compact(model="gpt-5.4", input="a long conversation").model_dump()
               for client in openai_pair(gw)]
    assert results[0] == results[1] and results[1]["usage"]["output_tokens"] > 0
    (logged,) = records(gw, "openai")
    assert logged["route"] == "/openai/v1/responses/compact" and logged["cost_usd"] > 0
    assert logged["usage"]["output_tokens"] == results[1]["usage"]["output_tokens"]


def test_models_and_count_tokens_are_relayed_and_free(gw: Harness) -> None:
    (a_direct, a_via), (o_direct, o_via) = anthropic_pair(gw), openai_pair(gw)
    assert [m.id for m in o_via.models.list()] == [m.id for m in o_direct.models.list()]
    counted = [c.messages.count_tokens(model="claude-sonnet-5-5", messages=MESSAGES).input_tokens
               for c in (a_direct, a_via)]
    assert counted[0] == counted[1] > 0
    assert [(r["route"], r["cost_usd"]) for r in records(gw, "openai")] == [("/openai/v1/models", 0.0)]
    assert [(r["route"], r["cost_usd"]) for r in records(gw)] == [("/anthropic/v1/messages/count_tokens", 0.0)]


def test_upstream_sees_the_real_key_never_the_trial_token(gw: Harness) -> None:
    _, a_via = anthropic_pair(gw)
    _, o_via = openai_pair(gw)
    a_via.beta.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=MESSAGES,
                               betas=["context-1m-2025-08-07"], extra_query={"beta": "true"},
                               extra_headers={"OpenAI-Organization": "org-other", "X-Forwarded-For": "10.0.0.9"})
    o_via.chat.completions.create(model="gpt-5.4", messages=MESSAGES,
                                  extra_headers={"OpenAI-Organization": "org-other", "OpenAI-Project": "p"})
    beta, chat = gw.fake.requests
    assert beta.headers["x-api-key"] == ANTHROPIC_KEY and "Authorization" not in beta.headers
    assert beta.query == "beta=true" and beta.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert beta.headers["anthropic-version"] and beta.headers["User-Agent"].startswith("Anthropic/Python")
    assert chat.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    for recorded in (beta, chat):
        for token in (gw.token, gw.openai_token):
            assert token not in json.dumps(recorded.headers) + json.dumps(recorded.body)
        assert not {"OpenAI-Organization", "OpenAI-Project", "X-Forwarded-For"} & set(recorded.headers)
    text = gw.log.read_text() + gw.openai_log.read_text()
    assert gw.token not in text and gw.openai_token not in text and ANTHROPIC_KEY not in text and OPENAI_KEY not in text
    assert "authorization" not in text.lower() and "x-api-key" not in text.lower()


def test_a_cookie_a_provider_sets_is_never_sent_upstream_again() -> None:
    """One connection pool serves every trial: a cookie one trial's answer set (a provider's load
    balancer sets them) must not ride on that trial's next request, nor on another trial's."""
    fake = FakeUpstream(set_cookie="__cf_bm=session-of-trial-one; Path=/; HttpOnly")
    with running_gateway(fake=fake, upstream_host="localhost") as gw:  # jars ignore cookies from bare IPs
        _, a_via = anthropic_pair(gw)
        _, o_via = openai_pair(gw)
        for _ in range(2):
            answer = a_via.messages.with_raw_response.create(model="claude-sonnet-5-5", max_tokens=16,
                                                             messages=MESSAGES)
            assert "set-cookie" not in answer.headers  # nor does the agent get it
        o_via.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert len(fake.requests) == 3
    assert [recorded.headers.get("Cookie") for recorded in fake.requests] == [None, None, None]


def test_unknown_revoked_and_expired_tokens_get_401_in_provider_shape(gw: Harness) -> None:
    clients = {"anthropic": lambda token: anthropic.Anthropic(
        api_key=token, base_url=gw.urls["anthropic"], max_retries=3, timeout=10),
        "openai": lambda token: openai.OpenAI(api_key=token, base_url=gw.urls["openai"], max_retries=3, timeout=10)}

    def refused(provider: str, token: str) -> Any:
        client = clients[provider](token)
        started = time.monotonic()
        with pytest.raises((anthropic.AuthenticationError, openai.AuthenticationError)) as caught:
            if provider == "anthropic":
                client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
            else:
                client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        assert time.monotonic() - started < 2  # x-should-retry: false, so no backoff retries
        assert caught.value.response.headers["x-should-retry"] == "false"
        return caught.value.body

    assert refused("anthropic", "trl_" + "x" * 43)["error"]["type"] == "authentication_error"
    assert refused("openai", "not-even-a-trial-token")["code"] == "invalid_api_key"

    expired = gw.store.mint_token(gw.trial_id, "sandbox", expires_at=utcnow() - timedelta(seconds=1))
    assert refused("anthropic", expired)["error"]["type"] == "authentication_error"

    _, via = anthropic_pair(gw)
    via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)  # cached as good
    gw.store.revoke_tokens(gw.trial_id)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        except anthropic.AuthenticationError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a revoked token still worked after 3 s")
    assert len(gw.fake.requests) <= 1 + 12  # refused tokens never reached the upstream
    assert all(r["status"] == 200 for r in records(gw))  # refusals without a trial are not in its log


@pytest.mark.parametrize(("provider", "status", "error_class"), [
    ("anthropic", 529, "OverloadedError"), ("anthropic", 429, "RateLimitError"),
    ("openai", 500, "InternalServerError"), ("openai", 400, "BadRequestError")])
def test_upstream_errors_reach_the_client_as_sent(gw: Harness, provider: str, status: int, error_class: str) -> None:
    gw.fake.knobs = Knobs(fail_status=status)
    seen = []
    for client in (anthropic_pair(gw) if provider == "anthropic" else openai_pair(gw)):
        try:
            if provider == "anthropic":
                client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
            else:
                client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        except (anthropic.APIStatusError, openai.APIStatusError) as exc:
            seen.append((type(exc).__name__, exc.status_code, exc.body, exc.response.headers.get("retry-after")))
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0][:2] == (error_class, status)
    (logged,) = records(gw, provider)
    assert (logged["status"], logged["outcome"], logged["cost_usd"]) == (status, "upstream_error", 0.0)
    assert logged["response"] == seen[1][2] or logged["response"]["error"] == seen[1][2].get("error", seen[1][2])


def test_unreachable_and_slow_upstreams_become_502_and_504() -> None:
    with running_gateway(**{"gateway.anthropic_base_url": "http://127.0.0.1:9",
                            "gateway.upstream_timeout_s": 0.5}) as gw:
        _, via = anthropic_pair(gw)
        with pytest.raises(anthropic.APIStatusError) as unreachable:
            via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        assert unreachable.value.status_code == 502 and unreachable.value.body["error"]["type"] == "api_error"

        gw.fake.knobs = Knobs(first_byte_delay_s=1.5)
        _, o_via = openai_pair(gw)
        with pytest.raises(openai.APIStatusError) as slow:
            o_via.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        assert slow.value.status_code == 504 and slow.value.body["code"] == "timeout"
        assert [(r["status"], r["outcome"], r["upstream"]) for r in records(gw) + records(gw, "openai")] == [
            (502, "upstream_unreachable", True), (504, "upstream_timeout", True)]


def test_mid_stream_disconnect_reaches_the_client_as_a_broken_stream_and_is_billed(gw: Harness) -> None:
    gw.fake.knobs = Knobs(disconnect_after_events=6, text="one two three four five six seven eight nine ten")
    failures = []
    for client in anthropic_pair(gw):
        received: list[str] = []
        try:
            with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=MESSAGES) as stream:
                received.extend(stream.text_stream)
        except Exception as exc:  # whatever the SDK raises, it must be the same both ways
            failures.append((type(exc).__name__, received))
    assert len(failures) == 2 and failures[0] == failures[1]
    assert failures[1][1] == ["one ", "two ", "three "]  # what arrived before the break reached the client
    (logged,) = records(gw)
    assert logged["outcome"] == "upstream_disconnect" and logged["status"] == 200
    assert logged["usage"]["estimated"] is True and logged["usage"]["output_tokens"] >= 4
    assert logged["cost_usd"] > 0
    assert logged["response"]["content"][0]["text"] == "one two three "


def test_error_event_inside_a_stream_is_relayed_and_logged(gw: Harness) -> None:
    gw.fake.knobs = Knobs(error_event_after=5)
    outcomes = []
    for client in anthropic_pair(gw):
        stream = client.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=MESSAGES)
        with pytest.raises(anthropic.APIStatusError) as caught, stream as events:
            events.get_final_message()
        outcomes.append((type(caught.value).__name__, caught.value.body))
    assert outcomes[0] == outcomes[1]
    # The client raises at the error event; the gateway appends the record just after it.
    deadline = time.monotonic() + 10
    while not records(gw) and time.monotonic() < deadline:
        time.sleep(0.05)
    (logged,) = records(gw)
    assert logged["outcome"] == "upstream_error_event" and "overloaded_error" in logged["error"]


def raw_stream(url: str, path: str, token: str, body: dict[str, Any], header: str,
               chunk_delay_s: float = 0.0) -> tuple[bytes, list[float]]:
    """POST and read the raw body bytes (de-chunked), noting when each piece arrived."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    headers = {"Content-Type": "application/json", header: token if header == "x-api-key" else f"Bearer {token}",
               "anthropic-version": "2023-06-01", **knobs_header(chunk_delay_s=chunk_delay_s)}
    started = time.monotonic()
    connection.request("POST", parts.path + path, json.dumps(body), headers)
    response = connection.getresponse()
    assert response.status == 200
    received, times = b"", []
    while piece := response.read1(65536):
        received += piece
        times.append(time.monotonic() - started)
    connection.close()
    return received, times


@pytest.mark.parametrize(("route", "path", "body"), [
    ("anthropic", "/v1/messages", {"model": "claude-sonnet-5-5", "max_tokens": 64, "stream": True,
                                   "messages": MESSAGES}),
    ("openai", "/chat/completions", {"model": "gpt-5.4", "stream": True, "messages": MESSAGES,
                                     "stream_options": {"include_usage": True}}),
    ("openai", "/responses", {"model": "gpt-5.4", "stream": True, "input": "Hi"}),
])
def test_streams_are_relayed_byte_for_byte_as_they_arrive(gw: Harness, route: str, path: str,
                                                          body: dict[str, Any]) -> None:
    direct_base = gw.upstream.url + ("/v1" if route == "openai" else "")
    key = ANTHROPIC_KEY if route == "anthropic" else OPENAI_KEY
    header = "x-api-key" if route == "anthropic" else "Authorization"
    direct, _ = raw_stream(direct_base, path, key, body, header)
    token = gw.token if route == "anthropic" else gw.openai_token
    via, times = raw_stream(gw.urls[route], path, token, body, header, chunk_delay_s=0.08)
    assert via == direct
    # Not buffered: pieces arrive one by one, the first long before the slow upstream finishes.
    assert len(times) >= 8 and times[0] < 0.4 * times[-1] and times[-1] > 0.6


def test_bad_requests_are_refused_in_provider_shape_and_logged(gw: Harness) -> None:
    parts = urlsplit(gw.urls["anthropic"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("POST", parts.path + "/v1/messages", b"{not json",
                       {"Authorization": f"Bearer {gw.token}", "Content-Type": "application/json"})
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 400 and body["error"]["type"] == "invalid_request_error"
    (logged,) = records(gw)
    assert (logged["status"], logged["outcome"], logged["upstream"]) == (400, "bad_request", False)
    assert not gw.fake.requests


def test_missing_upstream_key_is_a_clear_error() -> None:
    with running_gateway(env={}) as gw:
        _, via = anthropic_pair(gw)
        with pytest.raises(anthropic.APIStatusError) as caught:
            via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        assert caught.value.status_code == 500 and "ANTHROPIC_API_KEY" in caught.value.message
        assert records(gw)[0]["outcome"] == "no_upstream_key"


def test_unknown_model_is_priced_at_the_highest_rates() -> None:
    fake = FakeUpstream(knobs=Knobs(input_tokens=1000))
    with running_gateway(fake=fake) as gw:
        _, via = openai_pair(gw)
        via.chat.completions.create(model="gpt-7-preview", messages=MESSAGES)
        via.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        unknown, known = records(gw, "openai")
        assert unknown["pricing"] == {"key": None, "fallback": True}
        assert known["pricing"] == {"key": "gpt-5.4", "fallback": False}
        assert unknown["cost_usd"] > known["cost_usd"] > 0


def test_a_client_that_hangs_up_mid_stream_is_recorded_and_billed(gw: Harness) -> None:
    gw.fake.knobs = Knobs(chunk_delay_s=0.1, text="a b c d e f g h i j k l m n o p q r s t")
    parts = urlsplit(gw.urls["anthropic"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("POST", parts.path + "/v1/messages", json.dumps(
        {"model": "claude-sonnet-5-5", "max_tokens": 64, "stream": True, "messages": MESSAGES}),
        {"Authorization": f"Bearer {gw.token}", "Content-Type": "application/json"})
    response = connection.getresponse()
    assert b"message_start" in response.read1(65536)
    connection.close()  # the agent was interrupted
    deadline = time.monotonic() + 10
    while not (gw.log.exists() and gw.log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    (logged,) = records(gw)
    assert logged["outcome"] == "client_disconnect" and logged["usage"]["estimated"] is True
    assert logged["cost_usd"] > 0 and gw.ledger() is not None and gw.ledger().in_flight == 0


def test_a_cancelled_handler_still_records_its_exchange() -> None:
    """Under aiohttp's handler_cancellation, a client that hangs up cancels the handler."""
    from tests.fakes.llm_upstream import ServerThread
    from tests.integration.gateway_harness import gateway_app

    with running_gateway() as gw:
        gw.fake.knobs = Knobs(first_byte_delay_s=1.0)
        cancelling = ServerThread(gateway_app(gw.settings, gw.store), handler_cancellation=True)
        gw.gateway.stop()  # one writer per trial log: hand it over
        cancelling.start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", cancelling.port, timeout=0.3)
            connection.request("POST", "/anthropic/v1/messages", json.dumps(
                {"model": "claude-sonnet-5-5", "max_tokens": 64, "messages": MESSAGES}),
                {"Authorization": f"Bearer {gw.token}", "Content-Type": "application/json"})
            with pytest.raises(TimeoutError):
                connection.getresponse()
            connection.close()

            gw.fake.knobs = Knobs(chunk_delay_s=0.1, text="a b c d e f g h i j k l m n o p q r s t")
            connection = http.client.HTTPConnection("127.0.0.1", cancelling.port, timeout=10)
            connection.request("POST", "/anthropic/v1/messages", json.dumps(
                {"model": "claude-sonnet-5-5", "max_tokens": 64, "stream": True, "messages": MESSAGES}),
                {"Authorization": f"Bearer {gw.token}", "Content-Type": "application/json"})
            assert b"message_start" in connection.getresponse().read1(65536)
            connection.close()  # cancels the handler mid-stream
            deadline = time.monotonic() + 10
            while len(gw.log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            cancelling.stop()
        waiting, streaming = records(gw)
        for logged in (waiting, streaming):
            assert logged["outcome"] == "client_disconnect" and logged["usage"]["estimated"] is True
            assert logged["cost_usd"] > 0 and logged["usage"]["input_tokens"] > 0
        assert streaming["stream"] is True and streaming["response"]["id"].startswith("msg_")


def test_endpoints_the_gateway_does_not_relay_get_a_provider_shaped_404(gw: Harness) -> None:
    _, via = anthropic_pair(gw)
    # Message batches are billed later, outside any response: relaying them would bypass the budget.
    with pytest.raises(anthropic.NotFoundError) as caught:
        via.messages.batches.list()
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert "POST /anthropic/v1/messages" in caught.value.message
    _, o_via = openai_pair(gw)
    with pytest.raises(openai.NotFoundError):
        o_via.embeddings.create(model="text-embedding-3-small", input="x")
    assert not gw.fake.requests


def test_large_requests_arrive_whole_and_oversized_ones_are_refused(gw: Harness) -> None:
    # A long agent session: megabytes of context, arriving in many TCP segments.
    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n} " + "x" * 50_000}
               for n in range(79)]
    _, via = anthropic_pair(gw)
    via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=history)
    assert gw.fake.requests[-1].body["messages"] == history
    assert records(gw)[-1]["request_bytes"] > 3_900_000

    gw.app_gateway.limits = replace(gw.app_gateway.limits, max_request_bytes=100_000)
    with pytest.raises(anthropic.APIStatusError) as caught:
        via.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=history)
    assert caught.value.status_code == 413 and caught.value.body["error"]["type"] == "request_too_large"
    assert records(gw)[-1]["outcome"] == "too_large" and len(gw.fake.requests) == 1
