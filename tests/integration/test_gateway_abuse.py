"""The gateway as a hostile-input boundary: each abuse a candidate with the trial token could try.

Real gateway, real sockets, real log files, the fake upstream speaking the providers' wire
formats. Each test is an attack first: it failed against the gateway before these defences.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import openai
import pytest

from orchestrator.catalog import load_template
from orchestrator.gateway.log import read_records, usage_summary, verify_chain
from orchestrator.gateway.usage import BYTES_PER_INPUT_TOKEN
from tests.fakes.llm_upstream import Knobs
from tests.integration.gateway_harness import Harness, create_trial, running_gateway

pytestmark = pytest.mark.unit  # loopback sockets only, no Docker

MESSAGES = [{"role": "user", "content": "Refactor the parser"}]
ROOT = Path(__file__).resolve().parents[2]


def records(path: Path, at_least: int = 0) -> list[dict[str, Any]]:
    """The log's records; waits (bounded) for `at_least` of them: a client that stops reading at
    a stream's last event may be done before the gateway has appended the exchange's record."""
    deadline = time.monotonic() + 10
    while True:
        found = list(read_records(path))  # requests whole, however the log stores them
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def post(url: str, path: str, token: str, body: bytes, *, header: str = "Authorization",
         extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """POST raw bytes; the status, headers and parsed JSON body of the answer."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    auth = token if header == "x-api-key" else f"Bearer {token}"
    connection.request("POST", parts.path + path, body, {"Content-Type": "application/json", header: auth,
                                                         "anthropic-version": "2023-06-01", **(extra or {})})
    try:
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data) if data else None
    finally:
        connection.close()


def anthropic_client(gw: Harness, retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"],
                               max_retries=retries, timeout=30)


def openai_client(gw: Harness, token: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=token or gw.openai_token, base_url=gw.urls["openai"], max_retries=0, timeout=30)


# -- size -----------------------------------------------------------------------------------

def test_refused_requests_are_logged_capped_and_hashed_never_whole() -> None:
    with running_gateway(budget_usd=0.0) as gw:
        gw.app_gateway.limits = replace(gw.app_gateway.limits, max_request_bytes=200_000)
        secret_marker = "CANDIDATE-SECRET-" + "y" * 50
        huge = json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [
            {"role": "user", "content": secret_marker + "z" * 400_000}]}).encode()
        status, headers, body = post(gw.urls["anthropic"], "/v1/messages", gw.token, huge)
        assert status == 413 and body["error"]["type"] == "request_too_large"
        assert headers["x-should-retry"] == "false"

        # Within the size limit but refused (the budget is $0): not logged whole either. Its
        # hash is of the bytes sent, however they were laid out, not of the gateway's re-serialization.
        fits = json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [
            {"role": "user", "content": secret_marker + "w" * 150_000}]}, indent=1).encode()
        status, _, body = post(gw.urls["anthropic"], "/v1/messages", gw.token, fits, header="x-api-key")
        assert status == 429 and body["error"]["type"] == "rate_limit_error"

        garbage = b"{not json " + b"q" * 50_000
        status, _, body = post(gw.urls["anthropic"], "/v1/messages", gw.token, garbage)
        assert status == 400 and body["error"]["type"] == "invalid_request_error"
        assert not gw.fake.requests

        too_large, budget, bad = records(gw.log)
        assert (too_large["outcome"], budget["outcome"], bad["outcome"]) == ("too_large", "refused_budget",
                                                                             "bad_request")
        for record, sent in ((budget, fits), (bad, garbage)):
            assert record["request"]["sha256"] == hashlib.sha256(sent).hexdigest()
            assert record["request"]["bytes"] == len(sent) and record["request"]["complete"] is True
            assert len(record["request"]["head"]) <= 2048 and sent.decode().startswith(record["request"]["head"])
        assert too_large["request"]["complete"] is False and len(too_large["request"]["head"]) <= 2048
        assert budget["model"] == "claude-sonnet-5-5"
        text = gw.log.read_text()
        assert len(text) < 20_000  # 600 kB were refused; the log holds summaries
        assert gw.token not in text and "authorization" not in text.lower() and "x-api-key" not in text.lower()
        assert verify_chain(gw.log).ok


# -- log quota -----------------------------------------------------------------------------

def test_a_trial_that_fills_its_log_quota_is_refused_and_the_refusals_stop_growing_the_log() -> None:
    with running_gateway() as gw:
        gw.app_gateway.limits = replace(gw.app_gateway.limits, log_quota_bytes=60_000, refusal_slack_bytes=8_000)
        filler = [{"role": "user", "content": "p" * 9_000}]
        client = anthropic_client(gw)
        served = 0
        with pytest.raises(anthropic.RateLimitError) as refused:
            for n in range(40):  # bounded; each prompt new, as the log stores a repeated one once
                client.messages.create(model="claude-sonnet-5-5", max_tokens=8,
                                       messages=[{"role": "user", "content": f"{n:02d}" + "p" * 9_000}])
                served += 1
        assert "quota" in refused.value.message and refused.value.response.headers["x-should-retry"] == "false"
        assert 3 <= served < 10 and len(gw.fake.requests) == served
        for _ in range(60):  # a flood of refusals: logged until the slack is used, then only counted
            with pytest.raises(anthropic.RateLimitError):
                client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=filler)
        assert len(gw.fake.requests) == served
        size = gw.log.stat().st_size
        assert size < 60_000 + 8_000 + 4_000
        logged = records(gw.log)
        refusals = [r for r in logged if r["outcome"] == "refused_log_quota"]
        assert refusals and len(refusals) < 61 and all(not r["upstream"] for r in refusals)
        assert gw.app_gateway.unlogged_refusals[gw.trial_id] == 61 - len(refusals)
        assert verify_chain(gw.log).ok
        # Another trial's log is its own: the OpenAI trial is untouched by this one's quota.
        openai_client(gw).chat.completions.create(model="gpt-5.4", messages=MESSAGES)


# -- billed answers without usage, background responses ------------------------------------

# (An Anthropic stream always carries usage, and the SDK cannot read one without it.)
@pytest.mark.parametrize("call", ["anthropic", "chat", "chat_stream", "responses", "responses_stream"])
def test_a_billed_answer_without_usage_is_priced_at_its_max_tokens(call: str) -> None:
    with running_gateway() as gw:
        gw.fake.knobs = Knobs(omit_usage=True)
        if call.startswith("anthropic"):
            anthropic_client(gw).messages.create(model="claude-sonnet-5-5", max_tokens=4000, messages=MESSAGES)
            log, rate_out = gw.log, 10.0
        else:
            o_client = openai_client(gw)
            if call.startswith("chat"):
                result = o_client.chat.completions.create(model="gpt-5.4", messages=MESSAGES,
                                                          max_completion_tokens=4000, stream=call == "chat_stream")
                if call == "chat_stream":
                    list(result)  # type: ignore[arg-type]
            elif call == "responses":
                o_client.responses.create(model="gpt-5.4", input="Hi", max_output_tokens=4000)
            else:
                with o_client.responses.stream(model="gpt-5.4", input="Hi", max_output_tokens=4000) as stream:
                    stream.get_final_response()
            log, rate_out = gw.openai_log, 10.0
        (record,) = records(log, at_least=1)
        assert record["status"] == 200 and record["usage"]["estimated"] is True
        assert record["usage"]["output_tokens"] == 4000 and record["pricing"]["basis"] == "max_tokens"
        assert record["cost_usd"] >= 4000 * rate_out / 1e6 > 0
        assert record["usage"]["input_tokens"] >= record["request_bytes"] // BYTES_PER_INPUT_TOKEN


def test_fifty_usage_less_answers_cannot_spend_past_a_tiny_cap() -> None:
    with running_gateway(budget_usd=0.01) as gw:
        gw.fake.knobs = Knobs(omit_usage=True)
        client = openai_client(gw)
        served = 0
        for _ in range(50):
            try:
                client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)  # no max_tokens at all
                served += 1
            except openai.RateLimitError as refused:
                assert refused.body["code"] == "insufficient_quota"
        assert served == 1 and len(gw.fake.requests) == 1  # the first one's worst case spent the cap
        summary = usage_summary(gw.openai_log)
        assert summary["cost_usd"] >= 0.01 and summary["refused"] == 49


def test_background_responses_are_refused_in_openai_shape() -> None:
    with running_gateway() as gw:
        client = openai_client(gw)
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="gpt-5.4", input="Write the whole thing", background=True)
        assert "background" in refused.value.message and "bill" in refused.value.message
        assert refused.value.body["type"] == "invalid_request_error"
        assert refused.value.response.headers["x-should-retry"] == "false"
        assert not gw.fake.requests
        (record,) = records(gw.openai_log)
        assert (record["status"], record["outcome"], record["upstream"]) == (400, "refused_background", False)
        client.responses.create(model="gpt-5.4", input="Hi", background=False)  # said explicitly: fine
        assert len(gw.fake.requests) == 1


# -- reservation and in-flight cap -----------------------------------------------------------

def test_twenty_parallel_large_requests_cannot_each_overshoot_the_cap() -> None:
    cap = 0.1
    # About 10,000 prompt tokens each (~$0.02 at $2/M) with max_tokens 4096 ($0.04 at $10/M): without
    # a reservation, twenty admitted at once spend $0.40, four times the cap.
    big = [{"role": "user", "content": "Review this. " + "x" * 40_000}]
    with running_gateway(budget_usd=cap) as gw:
        gw.app_gateway.limits = replace(gw.app_gateway.limits, max_in_flight=20)  # the budget is under test here
        gw.fake.knobs = Knobs(first_byte_delay_s=0.5)  # all twenty are in flight together
        statuses: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(20)

        def one() -> None:
            client = anthropic_client(gw)
            start.wait()
            try:
                client.messages.create(model="claude-sonnet-5-5", max_tokens=4096, messages=big)
                outcome = "served"
            except anthropic.RateLimitError as refused:
                outcome = "held" if refused.response.headers.get("x-should-retry") == "true" else "refused"
            with lock:
                statuses[outcome] += 1

        threads = [threading.Thread(target=one) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sum(statuses.values()) == 20
        billed = [r for r in records(gw.log) if r["upstream"]]
        spent = sum(r["cost_usd"] for r in billed)
        largest = max(r["reserved_usd"] for r in billed)
        assert len(gw.fake.requests) == statuses["served"] == len(billed) < 20
        assert statuses["held"] == 20 - statuses["served"]  # held by reservations, worth a retry
        assert spent < cap + largest  # one request's worst case at most, not one per request in flight
        held = [r for r in records(gw.log) if r["outcome"] == "refused_budget_reserved"]
        assert len(held) == statuses["held"]


def test_requests_in_flight_per_trial_are_capped_with_a_retryable_429() -> None:
    with running_gateway() as gw:
        gw.app_gateway.limits = replace(gw.app_gateway.limits, max_in_flight=3)
        gw.fake.knobs = Knobs(first_byte_delay_s=1.0)
        results: list[tuple[int, dict[str, str], Any]] = []
        lock = threading.Lock()
        start = threading.Barrier(8)
        body = json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": MESSAGES}).encode()

        def one() -> None:
            start.wait()
            result = post(gw.urls["anthropic"], "/v1/messages", gw.token, body)
            with lock:
                results.append(result)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        statuses = Counter(status for status, _, _ in results)
        assert statuses == {200: 3, 429: 5}
        assert len(gw.fake.requests) == 3
        for status, headers, answer in results:
            if status == 429:
                assert answer["error"]["type"] == "rate_limit_error" and "in flight" in answer["error"]["message"]
                assert headers["x-should-retry"] == "true" and headers["retry-after"] == "1"
        assert Counter(r["outcome"] for r in records(gw.log)) == {"ok": 3, "refused_in_flight": 5}
        # The OpenAI shape of the same refusal is a rate limit, not an exhausted quota.
        gw.app_gateway.limits = replace(gw.app_gateway.limits, max_in_flight=0)
        with pytest.raises(openai.RateLimitError) as caught:
            openai_client(gw).chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        assert caught.value.body["code"] == "rate_limit_exceeded"


# -- provider routes -------------------------------------------------------------------------

def test_a_trial_token_works_only_on_its_agents_provider_routes() -> None:
    with running_gateway() as gw:
        aider = create_trial(gw.store, "tgw00003", agent="aider")
        nobody = create_trial(gw.store, "tgw00004", agent="none")
        # Claude Code's token on the OpenAI routes: a 403 in OpenAI's shape.
        with pytest.raises(openai.PermissionDeniedError) as wrong:
            openai_client(gw, gw.token).chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        assert "claude-code" in wrong.value.message and "/anthropic" in wrong.value.message
        assert wrong.value.response.headers["x-should-retry"] == "false"
        # Codex's token on the Anthropic route: a 403 in Anthropic's shape.
        codex_on_anthropic = anthropic.Anthropic(api_key=gw.openai_token, base_url=gw.urls["anthropic"],
                                                 max_retries=0)
        with pytest.raises(anthropic.PermissionDeniedError) as other:
            codex_on_anthropic.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        assert other.value.body["error"]["type"] == "permission_error"
        # No agent, no model; aider speaks OpenAI.
        for provider in ("anthropic", "openai"):
            path = "/v1/messages" if provider == "anthropic" else "/chat/completions"
            status, _, _ = post(gw.urls[provider], path, nobody, json.dumps(
                {"model": "m", "max_tokens": 8, "messages": MESSAGES}).encode())
            assert status == 403
        assert not gw.fake.requests
        openai_client(gw, aider).chat.completions.create(model="gpt-5.4", messages=MESSAGES)
        status, _, _ = post(gw.urls["anthropic"], "/v1/messages", aider, b"{}")
        assert status == 403
        assert len(gw.fake.requests) == 1
        (refused,) = records(gw.log)
        assert (refused["status"], refused["outcome"], refused["upstream"]) == (403, "refused_provider", False)
        assert records(gw.openai_log)[0]["outcome"] == "refused_provider"
        # The right routes still work for each.
        anthropic_client(gw).messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        openai_client(gw).responses.create(model="gpt-5.4", input="Hi")


# -- remote tools ----------------------------------------------------------------------------

ANTHROPIC_REMOTE = {
    "model": "claude-sonnet-5-5", "max_tokens": 64, "messages": MESSAGES,
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
              {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}},
              {"type": "web_fetch_20250910", "name": "web_fetch"},
              {"type": "mcp_toolset", "mcp_server_name": "outside"}],
    "mcp_servers": [{"type": "url", "url": "https://example.invalid/mcp", "name": "outside"}],
    "tool_choice": {"type": "tool", "name": "web_search"},
}
RESPONSES_REMOTE = {
    "model": "gpt-5.4", "input": "Find the answer online",
    "tools": [{"type": "web_search_preview"}, {"type": "web_search"},
              {"type": "mcp", "server_label": "outside", "server_url": "https://example.invalid/mcp"},
              {"type": "file_search", "vector_store_ids": ["vs_company_docs"]},
              {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "web_search_preview"},
}
CHAT_REMOTE = {"model": "gpt-5.4", "messages": MESSAGES, "web_search_options": {"search_context_size": "high"}}


def _send_remote_tools(gw: Harness) -> None:
    assert post(gw.urls["anthropic"], "/v1/messages", gw.token, json.dumps(ANTHROPIC_REMOTE).encode())[0] == 200
    assert post(gw.urls["openai"], "/responses", gw.openai_token, json.dumps(RESPONSES_REMOTE).encode())[0] == 200
    assert post(gw.urls["openai"], "/chat/completions", gw.openai_token, json.dumps(CHAT_REMOTE).encode())[0] == 200


def test_provider_side_tools_that_reach_the_internet_are_stripped_and_the_log_says_so() -> None:
    with running_gateway() as gw:
        _send_remote_tools(gw)
        messages, responses, chat = (request.body for request in gw.fake.requests)
        assert [tool.get("name") for tool in messages["tools"]] == ["get_weather"]
        assert "mcp_servers" not in messages and "tool_choice" not in messages
        assert [tool["type"] for tool in responses["tools"]] == ["function"] and "tool_choice" not in responses
        assert "web_search_options" not in chat and chat["messages"] == MESSAGES
        (a_record,) = records(gw.log)
        assert a_record["stripped_tools"] == ["mcp_servers", "tools[0]:web_search_20250305",
                                              "tools[2]:web_fetch_20250910", "tools[3]:mcp_toolset", "tool_choice"]
        assert a_record["request"] == ANTHROPIC_REMOTE  # the log keeps what the agent asked for
        r_record, c_record = records(gw.openai_log)
        assert r_record["stripped_tools"] == ["tools[0]:web_search_preview", "tools[1]:web_search", "tools[2]:mcp",
                                              "tools[3]:file_search", "tool_choice"]
        assert c_record["stripped_tools"] == ["web_search_options"]
        # A model that searches by itself has nothing to strip: it is refused.
        for model in ("gpt-4o-search-preview", "gpt-5-search-api", "o4-mini-deep-research"):
            with pytest.raises(openai.BadRequestError) as refused:
                openai_client(gw).chat.completions.create(model=model, messages=MESSAGES)
            assert "searches the web" in refused.value.message
        assert len(gw.fake.requests) == 3
        assert records(gw.openai_log)[-1]["outcome"] == "refused_remote_model"
        assert verify_chain(gw.log).ok and verify_chain(gw.openai_log).ok


def test_a_template_may_allow_remote_tools(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "trial_templates" / "api-keys", templates / "api-keys")  # the harness trial's template
    toml = templates / "api-keys" / "template.toml"
    toml.write_text("allow_remote_tools = true\n" + toml.read_text())
    assert load_template(templates / "api-keys").config.allow_remote_tools is True  # the catalog knows the field
    with running_gateway(templates_dir=str(templates)) as gw:
        _send_remote_tools(gw)
        messages, responses, chat = (request.body for request in gw.fake.requests)
        assert messages == ANTHROPIC_REMOTE and responses == RESPONSES_REMOTE and chat == CHAT_REMOTE
        assert "stripped_tools" not in records(gw.log)[0]
        openai_client(gw).chat.completions.create(model="gpt-4o-search-preview", messages=MESSAGES)


def test_content_the_provider_would_fetch_from_a_url_is_refused_unless_allowed() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.invalid/solution.png"}}
    document = {"type": "document", "source": {"type": "url", "url": "https://example.invalid/answer.pdf"}}
    inline = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with running_gateway() as gw:
        a_client = anthropic_client(gw)
        for blocks in ([image], [{"type": "text", "text": "see"}, document],
                       [{"type": "tool_result", "tool_use_id": "t1", "content": [image]}]):
            with pytest.raises(anthropic.BadRequestError) as refused:
                a_client.messages.create(model="claude-sonnet-5-5", max_tokens=8,
                                         messages=[{"role": "user", "content": blocks}])  # type: ignore[misc]
            assert "example.invalid" in refused.value.message and "inline" in refused.value.message
        a_client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[  # base64 is the sandbox's own
            {"role": "user", "content": [inline, {"type": "text", "text": "http://localhost is just text"}]}])
        o_client = openai_client(gw)
        with pytest.raises(openai.BadRequestError):
            o_client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}}]}])
        with pytest.raises(openai.BadRequestError):
            o_client.responses.create(model="gpt-5.4", input=[{"role": "user", "content": [
                {"type": "input_file", "file_url": "https://example.invalid/answer.pdf"}]}])
        o_client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
        assert len(gw.fake.requests) == 2
        refused_records = [r for r in records(gw.log) + records(gw.openai_log)
                           if r["outcome"] == "refused_remote_content"]
        assert len(refused_records) == 5 and all(not r["upstream"] for r in refused_records)


def test_a_response_that_continues_a_provider_held_context_reserves_a_whole_context() -> None:
    with running_gateway(budget_usd=0.5) as gw:
        client = openai_client(gw)
        first = client.responses.create(model="gpt-5.4", input="Hi", max_output_tokens=100)
        client.responses.create(model="gpt-5.4", input="And then?", previous_response_id=first.id,
                                max_output_tokens=100)
        plain, continued = records(gw.openai_log)
        assert plain["reserved_usd"] < 0.01
        # 400,000 prompt tokens at gpt-5.4's $2.50/M: a tiny body can carry a whole context window.
        assert continued["reserved_usd"] >= 400_000 * 2.5 / 1e6


def test_a_flood_of_made_up_tokens_costs_a_bounded_number_of_store_lookups() -> None:
    from orchestrator.gateway.auth import FAILURES_ALLOWED

    with running_gateway() as gw:
        client = anthropic_client(gw)
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)  # verified and cached
        before = gw.app_gateway.tokens.lookups
        body = json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": MESSAGES}).encode()
        statuses: Counter[int] = Counter()
        for n in range(60):
            status, headers, answer = post(gw.urls["anthropic"], "/v1/messages", f"trl_made-up-{n:040d}", body)
            statuses[status] += 1
            if status == 429:
                assert headers["x-should-retry"] == "true" and "unknown trial tokens" in answer["error"]["message"]
        assert statuses == {401: FAILURES_ALLOWED, 429: 60 - FAILURES_ALLOWED}
        assert gw.app_gateway.tokens.lookups - before == FAILURES_ALLOWED
        # The token verified before the flood still works while its check is fresh.
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=MESSAGES)
        assert not [r for r in records(gw.log) if r["status"] in (401, 429)]


@pytest.mark.parametrize(("provider", "path", "body", "terminal"), [
    ("anthropic", "/v1/messages", {"model": "claude-sonnet-5-5", "max_tokens": 64, "stream": True,
                                   "messages": MESSAGES}, b"message_stop"),
    ("openai", "/chat/completions", {"model": "gpt-5.4", "stream": True, "messages": MESSAGES}, b"[DONE]"),
    ("openai", "/responses", {"model": "gpt-5.4", "stream": True, "input": "Hi"}, b"response.completed"),
])
def test_a_stream_the_gateway_could_not_log_never_reaches_its_terminal_event(
        provider: str, path: str, body: dict[str, Any], terminal: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_gateway() as gw:
        token = gw.token if provider == "anthropic" else gw.openai_token
        log = gw.log if provider == "anthropic" else gw.openai_log
        raw = json.dumps(body).encode()
        assert post(gw.urls[provider], path, token, json.dumps({**body, "stream": False}).encode())[0] == 200
        trial_log = gw.app_gateway.logs.cached(gw.trial_id if provider == "anthropic" else gw.openai_trial_id)
        assert trial_log is not None

        def disk_full(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(trial_log, "_write", disk_full)  # the disk fills between two exchanges
        parts = urlsplit(gw.urls[provider])
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        connection.request("POST", parts.path + path, raw, {"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {token}",
                                                            "anthropic-version": "2023-06-01"})
        response = connection.getresponse()
        assert response.status == 200
        received = b""
        with pytest.raises(http.client.IncompleteRead) as cut:  # the stream is cut off, not ended
            while piece := response.read1(65536):
                received += piece
        received += cut.value.partial
        connection.close()
        assert b"Hello" in received or b"Hello".lower() in received.lower()  # the answer was relayed as it came
        assert terminal not in received  # but never its end: the client cannot take it as complete
        assert len(records(log)) == 1


def test_an_answer_the_gateway_could_not_log_is_a_500_never_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})
    with running_gateway() as gw:
        assert post(gw.urls["anthropic"], "/v1/messages", gw.token, body.encode())[0] == 200
        trial_log = gw.app_gateway.logs.cached(gw.trial_id)
        assert trial_log is not None

        def disk_full(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(trial_log, "_write", disk_full)  # the exchange is alone: written from the loop
        status, _, answer = post(gw.urls["anthropic"], "/v1/messages", gw.token, body.encode())
        assert status == 500 and answer["type"] == "error" and "could not record" in answer["error"]["message"]
        assert "Hello" not in json.dumps(answer)  # the provider's answer never reached the client
        assert len(gw.fake.requests) == 2 and len(records(gw.log)) == 1


def test_a_url_hidden_by_json_escapes_or_duplicate_keys_is_still_refused_or_never_forwarded() -> None:
    escaped = (b'{"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": ['
               b'{"type": "document", "source": {"type": "url", "url": "\\u0068ttps://example.invalid/a.pdf"}}]}]}')
    # Python keeps the last of two equal keys; a provider's parser may keep the first.
    first_wins = (b'{"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": ['
                  b'{"type": "document", "source": {"type": "url", "url": "https://example.invalid/b.pdf"}}]}], '
                  b'"messages": [{"role": "user", "content": "hello"}]}')
    with running_gateway() as gw:
        status, _, body = post(gw.urls["anthropic"], "/v1/messages", gw.token, escaped)
        assert status == 400 and "example.invalid/a.pdf" in body["error"]["message"]
        status, _, _ = post(gw.urls["anthropic"], "/v1/messages", gw.token, first_wins)
        assert status == 200
        [forwarded] = gw.fake.requests
        assert b"example.invalid" not in forwarded.raw and forwarded.body["messages"][0]["content"] == "hello"
