"""Disk quotas of a trial's volumes (workspace, home): watched and alerted, because Docker cannot
enforce them on this kind of host.

What was tried on Docker 20.10 with overlay2 on ext4 (the supported Debian setup):
- the local volume driver with `type=tmpfs,o=size=…` caps a volume, but keeps it in memory and
  empties it when the container stops, and collect reads stopped sandboxes: unusable;
- the local driver with `type=ext4,o=loop` on an image file is refused (`loop: invalid
  argument`: the driver calls mount(2), and loop set-up is mount(8)'s, not the kernel's);
- overlay2's `--storage-opt size=` needs xfs with project quotas, and covers only the
  container's own layer, which is read-only in a sandbox anyway.
So the engine measures each volume (as root on the host: a directory the candidate makes
unreadable still counts) and a volume over the limit is reported once: a warning in the log and
a `sandbox.quota_exceeded` event in the trial's record in the store. The candidate can still
fill the host's disk between two checks; the check's interval bounds by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.logging import get_logger
from orchestrator.sandbox.base import SandboxBackend
from orchestrator.store import Store

EVENT = "sandbox.quota_exceeded"
MIB = 1 << 20
log = get_logger(component="sandbox.quota")


@dataclass(frozen=True)
class Overage:
    trial_id: str
    volume: str
    used_bytes: int
    limit_bytes: int
    new: bool
    """First time seen over (the event was recorded by this check)."""

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "volume": self.volume, "used_mb": round(self.used_bytes / MIB, 1),
                "limit_mb": round(self.limit_bytes / MIB, 1), "new": self.new}


def check(store: Store, backend: SandboxBackend, limit_mb: float) -> list[Overage]:
    """Every volume of a trial this store knows that is over `limit_mb` (0: no limit). The first
    time a volume is seen over, an event is recorded and a warning logged; later checks only list it."""
    if limit_mb <= 0:
        return []
    limit = int(limit_mb * MIB)
    known = {trial.id for trial in store.list_trials()}
    over: list[Overage] = []
    for usage in backend.volume_usage():
        if usage.trial_id is None or usage.trial_id not in known or usage.size_bytes <= limit:
            continue
        seen = any(event["kind"] == EVENT and event["data"].get("volume") == usage.name
                   for event in store.events(usage.trial_id))
        item = Overage(usage.trial_id, usage.name, usage.size_bytes, limit, new=not seen)
        if item.new:
            store.add_event(usage.trial_id, EVENT, item.to_json())
            log.warning("sandbox.quota_exceeded", trial_id=usage.trial_id, volume=usage.name,
                        used_mb=item.to_json()["used_mb"], limit_mb=item.to_json()["limit_mb"])
        over.append(item)
    return over
