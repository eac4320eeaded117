"""Unknown-token lockout for the host service's sandbox-facing routes (git, questions).

Every presented token costs a SQLite lookup in a worker thread, and the sandbox is the
adversary's shell: left alone it could guess tokens as fast as the service answers,
filling the log and slowing every other trial's git and question traffic. Per source
address (a sandbox cannot change its own: no NET_ADMIN), within `WINDOW_S`:

- the first `FREE` unknown tokens are answered at once (a mistyped credential is normal);
- each one after that is answered `DELAY_STEP_S` × (failures past `FREE`) later, capped at
  `MAX_DELAY_S`: guessing slows down, one request at a time;
- from `ALLOWED` on, tokens from that address are not looked up at all: a 429 with
  Retry-After until the window ends.

A request counts as a failure from the moment it is admitted (undone if its token is
good), so a burst of parallel guesses cannot all slip past the check before the first
answer. A token that has verified before is always looked up, even from a locked-out
address: the guesser cannot lock the real trial out, and the lookup (not a cache) still
decides, so a revoked token stops working at once. Known tokens are kept by HMAC digest,
never in clear. This mirrors the gateway's lockout (orchestrator/gateway/auth.py), which
keeps its own counts because it also caches grants.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_S = 60.0
FREE = 3
ALLOWED = 10
DELAY_STEP_S = 0.1
MAX_DELAY_S = 1.0
_LIMIT = 4096
"""Addresses and known digests kept at most; past that the tables start afresh (bounded memory)."""


class TokenGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, tuple[float, int]] = {}
        """Source address → (start of its window, failures counted in it, pending included)."""
        self._known: set[str] = set()
        """Digests of tokens that verified at least once."""

    def admit(self, remote: str, digest: str) -> tuple[float, bool]:
        """(0, counted) if this token may be looked up now, where `counted` says whether the
        attempt was counted against the address; (seconds until it may try again, False) if not."""
        if digest in self._known:
            return 0.0, False
        now = self._clock()
        start, count = self._window(remote, now)
        if count >= ALLOWED:
            return start + WINDOW_S - now, False
        if len(self._failures) >= _LIMIT and remote not in self._failures:
            self._failures.clear()
        self._failures[remote] = (start, count + 1)
        return 0.0, True

    def succeeded(self, remote: str, digest: str, counted: bool) -> None:
        """The token was good: its attempt no longer counts, and it passes any lockout from now on."""
        if counted and remote in self._failures:
            start, count = self._failures[remote]
            self._failures[remote] = (start, max(count - 1, 0))
        if digest not in self._known:
            if len(self._known) >= _LIMIT:
                self._known.clear()
            self._known.add(digest)

    def failed(self, remote: str, digest: str) -> float:
        """Seconds to hold the refusal of this unknown token (0 within the free allowance)."""
        if digest in self._known:  # revoked or expired since; not a guess
            return 0.0
        _start, count = self._window(remote, self._clock())
        return min(DELAY_STEP_S * max(count - FREE, 0), MAX_DELAY_S)

    def locked_out(self, remote: str) -> bool:
        return self._window(remote, self._clock())[1] >= ALLOWED

    def _window(self, remote: str, now: float) -> tuple[float, int]:
        start, count = self._failures.get(remote, (now, 0))
        if now - start >= WINDOW_S:
            return now, 0
        return start, count
