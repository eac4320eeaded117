"""The ledger's admission rule and the overshoot bound it documents."""

from __future__ import annotations

import random

import pytest

from orchestrator.gateway.budget import Budgets, Ledger

pytestmark = pytest.mark.unit


def test_sequential_requests_stop_once_spend_reaches_the_cap() -> None:
    ledger = Ledger("t1", cap_usd=1.0)
    admitted = 0
    while ledger.admit():
        admitted += 1
        ledger.settle(0.3)
    assert admitted == 4  # 0, 0.3, 0.6, 0.9 were all below the cap
    assert ledger.spent_usd == pytest.approx(1.2)
    assert ledger.spent_usd - ledger.cap_usd < 0.3  # overshoot below one request's cost
    assert "spent $1.2000 of its $1.00" in ledger.refusal()


def test_reservations_bound_the_overshoot_to_one_request_however_many_run_at_once() -> None:
    rng = random.Random(7)
    for _ in range(200):
        ledger = Ledger("t1", cap_usd=1.0)
        in_flight: list[tuple[float, float]] = []  # (cost, reserved)
        largest = 0.0
        for _ in range(1000):  # interleaved arrivals and completions, like concurrent agents
            reserve = rng.uniform(0.01, 0.2)
            if in_flight and rng.random() < 0.3:
                ledger.settle(*in_flight.pop(rng.randrange(len(in_flight))))
            elif ledger.admit(reserve):
                largest = max(largest, reserve)
                in_flight.append((rng.uniform(0, reserve), reserve))  # a request costs at most what it reserved
            elif in_flight:
                ledger.settle(*in_flight.pop(rng.randrange(len(in_flight))))
            else:
                break
        for cost, reserved in in_flight:
            ledger.settle(cost, reserved)
        assert ledger.in_flight == 0 and ledger.reserved_usd == 0 and ledger.overshoot_usd == 0
        assert ledger.spent_usd - ledger.cap_usd < largest  # one request's worth, not one per request in flight
        assert ledger.peak_in_flight > 1


def test_twenty_simultaneous_requests_are_not_all_admitted() -> None:
    ledger = Ledger("t1", cap_usd=1.0)
    admitted = sum(ledger.admit(0.3) for _ in range(20))
    assert admitted == 4  # reserved 0, 0.3, 0.6, 0.9 < 1.0 before each
    assert not ledger.exhausted and ledger.committed
    assert "retry when they finish" in ledger.refusal()  # held, not spent: worth a retry
    for _ in range(admitted):
        ledger.settle(0.05, 0.3)  # they cost far less than their max_tokens
    assert ledger.spent_usd == pytest.approx(0.2) and ledger.admit(0.3)
    ledger.settle(0.9, 0.3)
    assert ledger.exhausted and "no further model requests" in ledger.refusal()
    assert ledger.overshoot_usd == pytest.approx(0.6)


def test_free_requests_never_exhaust_and_budgets_keep_one_ledger_per_trial() -> None:
    budgets = Budgets()
    ledger = budgets.open("t1", cap_usd=0.5, spent_usd=0.25)
    assert budgets.open("t1", cap_usd=99, spent_usd=0) is ledger  # opened once; the caller updates the cap
    assert budgets.get("t2") is None
    for _ in range(10):
        assert ledger.admit()
        ledger.settle(0.0)
    assert not ledger.exhausted
    ledger.cap_usd = 0.25
    assert not ledger.admit()
