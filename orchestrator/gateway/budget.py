"""Per-trial spend against its cap, with the worst case of every request reserved up front.

Rule: a billed request is admitted only while the trial's recorded spend plus what the
requests in flight have reserved is below the cap. At admission a request reserves its
worst case: its prompt (estimated from the body's size, at the model's dearest input
rate) plus its output cap (`max_tokens`, `max_output_tokens`… × `n`) at the output rate.
When it ends, its reservation is released and its real cost (from the provider's usage,
or an estimate when the provider never said) is added to the spend.

Bound: when the last request was admitted, spend + reserved < cap; every request in
flight then costs at most what it reserved, so

    final spend  <  cap + (reservation of one request)

however many requests run at once: twenty parallel requests cannot each overshoot by
their own cost, since each one's reservation counts against the others' admission. The
bound holds as far as a request costs no more than it reserved: a prompt that tokenizes
to more than one token per `BYTES_PER_INPUT_TOKEN` bytes can exceed its reservation, and
a request that names no output cap is reserved at the gateway's default cap (limits.py).
`overshoot_usd` records how far real costs exceeded reservations, so tests and operators
can check the bound on real traffic.

A request refused only because others have reserved the remainder is told to retry (the
reservations may settle lower); one refused because the spend itself reached the cap is
told not to.

The spend starts from the trial's log (the sum of its records' cost_usd), so a restart
of the gateway does not reset a budget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ledger:
    trial_id: str
    cap_usd: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    """Worst-case cost of the billed requests in flight."""
    in_flight: int = 0
    peak_in_flight: int = 0
    largest_reservation_usd: float = 0.0
    overshoot_usd: float = 0.0
    """Sum over settled requests of what they cost beyond their reservation."""

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.cap_usd

    @property
    def committed(self) -> bool:
        """Spend plus reservations reached the cap: nothing more is admitted for now."""
        return self.spent_usd + self.reserved_usd >= self.cap_usd

    def admit(self, reserve_usd: float = 0.0) -> bool:
        if self.committed:
            return False
        self.reserved_usd += reserve_usd
        self.largest_reservation_usd = max(self.largest_reservation_usd, reserve_usd)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return True

    def settle(self, cost_usd: float, reserved_usd: float = 0.0) -> None:
        """The admitted request finished (in any way), cost this much and held that much."""
        self.reserved_usd = max(self.reserved_usd - reserved_usd, 0.0)
        if self.in_flight <= 1:
            self.reserved_usd = 0.0  # no float residue once nothing is in flight
        self.spent_usd += cost_usd
        self.overshoot_usd += max(cost_usd - reserved_usd, 0.0)
        self.in_flight = max(self.in_flight - 1, 0)

    def refusal(self) -> str:
        if not self.exhausted:
            return (f"trial {self.trial_id} has spent ${self.spent_usd:.4f} of its ${self.cap_usd:.2f} LLM budget "
                    f"and requests in flight hold ${self.reserved_usd:.4f} of the rest (their max_tokens at the "
                    "model's price); retry when they finish, or ask for fewer output tokens")
        return (f"trial {self.trial_id} has spent ${self.spent_usd:.4f} of its ${self.cap_usd:.2f} LLM budget; "
                "no further model requests are allowed (ask the trial's operator to raise the budget)")


class Budgets:
    def __init__(self) -> None:
        self._ledgers: dict[str, Ledger] = {}

    def get(self, trial_id: str) -> Ledger | None:
        return self._ledgers.get(trial_id)

    def open(self, trial_id: str, cap_usd: float, spent_usd: float) -> Ledger:
        ledger = self._ledgers.get(trial_id)
        if ledger is None:
            ledger = self._ledgers[trial_id] = Ledger(trial_id, cap_usd, spent_usd)
        return ledger
