"""The deadline watcher: the host service ends each trial's access at its deadline, at the second.

It holds nothing of its own: every pass reads the store, so a restart recomputes what is
due, a `trial extend` (another process) moves the next wake, and a trial launched while
it sleeps is seen on the next pass. Passes are at most `tick_s` apart and land on the
soonest deadline. The work itself (`deadlines.cut_off`) is blocking (Docker, GitHub), so
it runs in a thread and the gateway's streams go on meanwhile.

The same loop watches the trials' volumes against `sandbox.volume_quota_mb` every
`quota_every_s` (Docker cannot cap volumes here: see `orchestrator.sandbox.quota`), so a
candidate filling the disk is alerted within that interval whether or not anyone asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestrator import deadlines
from orchestrator.logging import get_logger
from orchestrator.sandbox import quota
from orchestrator.store import Store, utcnow

log = get_logger(component="deadline-watch")
TICK_S = 1.0
RETRY_S = 5.0
"""A part that failed (engine or GitHub down) is tried again this much later."""
QUOTA_EVERY_S = 60.0


class DeadlineWatcher:
    def __init__(self, store: Store, forge: Callable[[], Any], sandbox: Callable[[], Any], *,
                 tick_s: float = TICK_S, clock: Callable[[], datetime] = utcnow, quota_mb: float = 0.0,
                 quota_every_s: float = QUOTA_EVERY_S) -> None:
        self.store = store
        self._forge_factory = forge
        self._sandbox_factory = sandbox
        self._forge: Any = None
        self._sandbox: Any = None
        self.tick_s = tick_s
        self.clock = clock
        self._retry_at: dict[str, float] = {}
        self.quota_mb = quota_mb
        self.quota_every_s = quota_every_s
        self._quota_due = 0.0

    def forge(self) -> Any:
        if self._forge is None:
            self._forge = self._forge_factory()
        return self._forge

    def sandbox(self) -> Any:
        if self._sandbox is None:
            self._sandbox = self._sandbox_factory()
        return self._sandbox

    async def run(self) -> None:
        log.info("deadline_watch.started")
        while True:
            try:
                wait = await self.pass_once()
            except Exception:  # the watcher must outlive one bad pass (a locked store, a bug)
                log.exception("deadline_watch.pass_failed")
                wait = self.tick_s
            await asyncio.sleep(wait)

    async def pass_once(self) -> float:
        """Cut off every trial past its deadline; returns how long to sleep before the next pass."""
        loop = asyncio.get_running_loop()
        now = self.clock()
        for trial in await asyncio.to_thread(deadlines.due_for_cutoff, self.store, now):
            if self._retry_at.get(trial.id, 0.0) > loop.time():
                continue
            record = await asyncio.to_thread(deadlines.cut_off, self.store, trial.id, self.forge, self.sandbox,
                                             now=now)
            if record.get("errors"):
                self._retry_at[trial.id] = loop.time() + RETRY_S
            else:
                self._retry_at.pop(trial.id, None)
        if self.quota_mb > 0 and loop.time() >= self._quota_due:
            self._quota_due = loop.time() + self.quota_every_s
            await asyncio.to_thread(quota.check, self.store, self.sandbox(), self.quota_mb)
        ahead = await asyncio.to_thread(deadlines.seconds_to_next_deadline, self.store, self.clock())
        if ahead is None:
            return self.tick_s
        return max(0.05, min(self.tick_s, ahead + 0.01))
