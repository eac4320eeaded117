"""The per-trial budget through the real gateway: sequential, 20-way concurrent, across restarts."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import anthropic
import pytest

from orchestrator.gateway.log import usage_summary, verify_chain
from tests.fakes.llm_upstream import Knobs
from tests.fakes.llm_upstream import ServerThread as Server
from tests.integration.gateway_harness import Harness, gateway_app, running_gateway

pytestmark = pytest.mark.unit  # loopback sockets only, no Docker

MESSAGES = [{"role": "user", "content": "Refactor the parser"}]
# 15,000 input tokens at claude-sonnet-5-5's $2/M make every exchange cost a little over $0.03.
KNOBS = Knobs(input_tokens=15_000)


def records(gw: Harness) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.log.read_text().splitlines()]


def ask(client: anthropic.Anthropic, stream: bool) -> None:
    if stream:
        with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=MESSAGES) as events:
            events.get_final_message()
    else:
        client.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=MESSAGES)


def test_sequential_requests_are_refused_once_the_cap_is_spent() -> None:
    with running_gateway(budget_usd=0.1) as gw:
        gw.fake.knobs = KNOBS
        client = anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"],
                                     max_retries=2, timeout=20)
        served = 0
        for n in range(10):
            try:
                ask(client, stream=n % 2 == 1)  # streamed spend counts just like the rest
                served += 1
            except anthropic.RateLimitError as refused:
                started = time.monotonic()
                assert refused.body["error"]["type"] == "rate_limit_error"
                assert "budget" in refused.message and "$0.10" in refused.message and gw.trial_id in refused.message
                assert refused.response.headers["x-should-retry"] == "false"
                assert time.monotonic() - started < 1
                break
        cost = records(gw)[0]["cost_usd"]
        assert cost == pytest.approx(0.03 + 9 * 10 / 1e6, rel=0.05)
        assert served == 4  # spent 0, 0.03, 0.06, 0.09 < 0.10 before each: admitted; then 0.12
        summary = usage_summary(gw.log)
        assert (summary["requests"], summary["refused"]) == (4, 1)
        overshoot = summary["cost_usd"] - 0.1
        assert 0 <= overshoot < cost  # one request in flight at the cap: at most its cost
        assert len(gw.fake.requests) == 4  # the refused request never reached the provider
        ledger = gw.ledger()
        assert ledger is not None and ledger.spent_usd == pytest.approx(summary["cost_usd"])


def test_twenty_concurrent_clients_overshoot_by_at_most_one_reservation() -> None:
    cap = 0.25
    # A real prompt of about 15,000 tokens (the fake counts a body's characters / 4): each exchange
    # costs about $0.03 and reserves about $0.06 (the prompt as a 1-hour cache write, and max_tokens).
    big = [{"role": "user", "content": "Refactor the parser. " + "x" * 60_000}]
    with running_gateway(budget_usd=cap) as gw:
        gw.fake.knobs = Knobs(chunk_delay_s=0.01, first_byte_delay_s=0.02)
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(20)

        def worker(number: int) -> None:
            client = anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"],
                                         max_retries=0, timeout=30)
            start.wait()
            for attempt in range(200):  # bounded: each worker stops at its first final refusal
                try:
                    if attempt % 2:
                        client.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=big)
                    else:
                        with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64,
                                                    messages=big) as events:
                            events.get_final_message()
                    with lock:
                        outcomes["served"] += 1
                except anthropic.RateLimitError as refused:
                    if refused.response.headers.get("x-should-retry") == "true":
                        with lock:
                            outcomes["held"] += 1  # the rest of the budget is reserved by others
                        time.sleep(0.01)
                        continue
                    with lock:
                        outcomes["refused"] += 1
                    return
            with lock:
                outcomes["never_refused"] += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)

        assert outcomes["refused"] == 20 and outcomes["never_refused"] == 0
        assert outcomes["held"] > 0
        # A streaming client may finish at message_stop, just before the gateway appends the record.
        deadline = time.monotonic() + 10
        while sum(r["upstream"] for r in records(gw)) < outcomes["served"] and time.monotonic() < deadline:
            time.sleep(0.02)
        logged = records(gw)
        billed = [r for r in logged if r["upstream"]]
        assert len(billed) == outcomes["served"] and all(r["cost_usd"] > 0 for r in billed)
        assert all(r["cost_usd"] <= r["reserved_usd"] for r in billed)
        spent = sum(r["cost_usd"] for r in billed)
        ledger = gw.ledger()
        assert ledger is not None and ledger.in_flight == 0 and ledger.reserved_usd == 0
        assert ledger.spent_usd == pytest.approx(spent) and ledger.overshoot_usd == 0
        assert ledger.peak_in_flight > 1  # the requests really overlapped
        # The documented bound (budget.py): spend < cap + one request's reservation.
        assert cap <= spent < cap + ledger.largest_reservation_usd
        # Nothing was admitted after the cap was reached. Records are appended as exchanges end, so
        # the cap fell when the record that crossed it ended (its arrival + latency); every billed
        # request arrived before that (ts has millisecond precision).
        running, crossed_at = 0.0, None
        for record in billed:
            running += record["cost_usd"]
            if running >= cap:
                crossed_at = datetime.fromisoformat(record["ts"]) + timedelta(milliseconds=record["latency_ms"])
                break
        assert crossed_at is not None
        assert all(datetime.fromisoformat(r["ts"]) <= crossed_at + timedelta(milliseconds=2) for r in billed)
        assert verify_chain(gw.log).records == len(logged)


def test_spend_survives_a_restart_and_a_raised_budget_reopens_the_tap() -> None:
    with running_gateway(budget_usd=0.05) as gw:
        gw.fake.knobs = KNOBS
        client = anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"],
                                     max_retries=0, timeout=20)
        ask(client, stream=False)
        ask(client, stream=True)  # spent ≈ 0.06 ≥ 0.05
        gw.gateway.stop()

        # A new gateway process: the spend comes back from the log, not from memory.
        restarted = Server(gateway_app(gw.settings, gw.store)).start()
        try:
            client = anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=restarted.url + "/anthropic",
                                         max_retries=0, timeout=20)
            with pytest.raises(anthropic.RateLimitError):
                ask(client, stream=False)
            gw.store.update_trial(gw.trial_id, budget_usd=1.0)  # the operator raises the cap
            deadline = time.monotonic() + 3
            while True:
                try:
                    ask(client, stream=False)
                    break
                except anthropic.RateLimitError:
                    assert time.monotonic() < deadline, "a raised budget was not picked up within 3 s"
                    time.sleep(0.1)
        finally:
            restarted.stop()
        logged = [json.loads(line) for line in gw.log.read_text().splitlines()]
        assert [r["seq"] for r in logged] == list(range(1, len(logged) + 1))
        assert verify_chain(gw.log).ok
        assert logged[-1]["outcome"] == "ok" and logged[2]["outcome"] == "refused_budget"
