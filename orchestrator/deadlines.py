"""Deadlines for every forge: move one (`trial extend`), cut access at it (`cut_off`, run by the
host service at the second), collect the trials past theirs (`trial reap`).

A deadline is enforced by the host service itself (orchestrator/service/deadline_watch.py):
at the deadline it revokes the trial's tokens, the candidate's forge access, and stops
the sandbox (volumes kept for collect), whether or not a reaper runs; collect does the
same again before it reads anything, for a host whose service was down. `reap` claims
each due trial with a compare-and-set (active → expired) before collecting it, so a cron
`trial reap`, a `trial reap --watch` and a `trial extend` racing on one trial do not
both act: the extension wins only while the deadline has not passed, and a trial is
collected once.

`heads_at` answers "what did each branch point at when time ran out", from the ref
updates the forge logged, even when the reaper ran late; `late_pushes` names the ref
updates after it (shown in the report, never graded).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import StateError, TrialError, UsageError
from orchestrator.forge.pushlog import ZERO_SHA
from orchestrator.logging import get_logger
from orchestrator.store import Store, Trial, iso, utcnow

log = get_logger(component="deadlines")

ACTIVE = "active"
EXPIRED = "expired"
COLLECTING = "collecting"
FAILED = "failed"
COLLECT_RETRY = timedelta(minutes=10)
"""A failed collect is tried again by `trial reap` this long after its last attempt."""
MAX_EXTENSION_HOURS = 24 * 14
STALE_CLAIM = timedelta(minutes=30)
"""An `expired` trial untouched this long lost its reaper mid-way (killed): reap it again."""

Collector = Callable[[str], object]
"""Collects one trial by id (lifecycle.collect bound to its services); raises TrialError on failure."""


@dataclass(frozen=True)
class Extension:
    trial_id: str
    old_deadline: datetime
    new_deadline: datetime
    hours: float

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "old_deadline": iso(self.old_deadline),
                "new_deadline": iso(self.new_deadline), "hours": self.hours}


def extend(store: Store, trial_id: str, hours: float, *, now: datetime | None = None) -> Extension:
    """Move an active trial's deadline (and its gateway token's expiry) later, before it passes."""
    if not math.isfinite(hours) or not 0 < hours <= MAX_EXTENSION_HOURS:
        raise UsageError(f"--hours must be more than 0 and at most {MAX_EXTENSION_HOURS} (got {hours:g})",
                         "e.g. trial extend ID --hours 2")
    now = now or utcnow()
    trial = store.get_trial(trial_id)
    if trial.state != ACTIVE or trial.deadline is None:
        raise StateError(f"trial {trial.id} is {trial.state}; only an active trial's deadline can move",
                         "see `trial status ID`")
    if trial.deadline <= now:
        raise StateError(f"the deadline of trial {trial.id} passed at {iso(trial.deadline)}",
                         "a deadline can only move before it passes; `trial reap` collects the trial")
    new_deadline = trial.deadline + timedelta(hours=hours)
    moved = store.update_trial_if(trial.id, (ACTIVE,), deadline_after=now, deadline=new_deadline,
                                  hours=trial.hours + hours)
    if moved is None:
        raise StateError(f"trial {trial.id} reached its deadline or changed state while extending",
                         "see `trial status ID`")
    store.set_token_expiry(trial.id, new_deadline)
    store.add_event(trial.id, "trial.extended", {"from": iso(trial.deadline), "to": iso(new_deadline),
                                                 "hours": hours})
    log.info("deadline.extended", trial_id=trial.id, deadline=iso(new_deadline))
    return Extension(trial.id, trial.deadline, new_deadline, hours)


@dataclass(frozen=True)
class ReapOutcome:
    trial_id: str
    deadline: datetime | None
    collected: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "deadline": iso(self.deadline), "collected": self.collected,
                "error": self.error}


@dataclass
class ReapReport:
    at: datetime
    outcomes: list[ReapOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ReapOutcome]:
        return [o for o in self.outcomes if not o.collected]

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "outcomes": [o.to_json() for o in self.outcomes],
                "collected": sum(1 for o in self.outcomes if o.collected), "failed": len(self.failed)}


def due(store: Store, now: datetime) -> list[Trial]:
    """Active trials past their deadline, expired or collecting ones whose reaper or collector
    died before finishing, and ones whose collect failed (retried every COLLECT_RETRY: collect
    resumes at the failed step)."""
    found = [t for t in store.list_trials((ACTIVE,)) if t.deadline is not None and t.deadline <= now]
    found += [t for t in store.list_trials((EXPIRED, COLLECTING)) if t.updated_at <= now - STALE_CLAIM]
    found += [t for t in store.list_trials((FAILED,)) if (t.failed_step or "").startswith("collect:")
              and t.updated_at <= now - COLLECT_RETRY]
    return sorted(found, key=lambda t: (t.deadline or now, t.id))


def reap(store: Store, collect: Collector, *, now: datetime | None = None) -> ReapReport:
    """Collect every trial past its deadline, each once; one failure does not stop the others."""
    now = now or utcnow()
    report = ReapReport(now)
    for trial in due(store, now):
        if trial.state == ACTIVE:
            claimed = store.update_trial_if(trial.id, (ACTIVE,), deadline_by=now, state=EXPIRED)
        elif trial.state == EXPIRED:
            claimed = store.update_trial_if(trial.id, (EXPIRED,), state=EXPIRED)  # refresh the claim
        else:
            claimed = trial  # a collect that was killed or failed: collect itself claims the trial
        if claimed is None:
            continue  # extended in the meantime, or another reaper took it
        log.info("reap.collect", trial_id=trial.id, deadline=iso(trial.deadline))
        try:
            collect(trial.id)
        except TrialError as exc:
            log.warning("reap.failed", trial_id=trial.id, error=exc.one_line())
            report.outcomes.append(ReapOutcome(trial.id, trial.deadline, False, exc.one_line()))
            continue
        except Exception as exc:  # one broken trial must not stop the reaper for the others
            log.exception("reap.crashed", trial_id=trial.id)
            report.outcomes.append(ReapOutcome(trial.id, trial.deadline, False, f"{type(exc).__name__}: {exc}"))
            continue
        report.outcomes.append(ReapOutcome(trial.id, trial.deadline, True))
    return report


def next_wake(store: Store, now: datetime, interval_s: float) -> float:
    """Seconds until the next pass: the interval, or sooner if a deadline falls before it."""
    upcoming = [(t.deadline - now).total_seconds() for t in store.list_trials((ACTIVE,)) if t.deadline]
    soonest = min((s for s in upcoming if s >= 0), default=interval_s)
    return max(0.5, min(interval_s, soonest + 0.5))


def watch(store: Store, collect: Collector, *, interval_s: float, stop: threading.Event,
          on_report: Callable[[ReapReport], None], clock: Callable[[], datetime] = utcnow) -> int:
    """Reap until `stop` is set, waking at each deadline (or every `interval_s`); returns the passes."""
    passes = 0
    while not stop.is_set():
        report = reap(store, collect, now=clock())
        passes += 1
        on_report(report)
        stop.wait(next_wake(store, clock(), interval_s))
    return passes


CUTOFF_PARTS = ("token", "forge", "sandbox")
"""What ends at the deadline, in this order: access first, so a slow engine cannot extend it."""


class _CutoffForge(Protocol):
    def revoke(self, repo: Any, login: str) -> None: ...

    def revoke_sandbox_access(self, repo: Any, access_key_id: str | None) -> None: ...


class _CutoffSandbox(Protocol):
    def find(self, trial_id: str, role: str = "sandbox") -> Any: ...

    def stop(self, ref: Any, timeout_s: int = 10) -> None: ...


def cutoff_pending(trial: Trial) -> bool:
    """An active trial whose deadline passed and whose access is not yet all cut."""
    done = set((trial.data.get("cutoff") or {}).get("done", []))
    return trial.state == ACTIVE and not done.issuperset(CUTOFF_PARTS)


def due_for_cutoff(store: Store, now: datetime) -> list[Trial]:
    return [t for t in store.list_trials((ACTIVE,))
            if t.deadline is not None and t.deadline <= now and cutoff_pending(t)]


def seconds_to_next_deadline(store: Store, now: datetime) -> float | None:
    """Until the soonest deadline of an active trial still to be cut off, or None when there is none."""
    ahead = [(t.deadline - now).total_seconds() for t in store.list_trials((ACTIVE,))
             if t.deadline is not None and t.deadline > now and cutoff_pending(t)]
    return min(ahead, default=None)


def cut_off(store: Store, trial_id: str, forge: Callable[[], _CutoffForge],
            sandbox: Callable[[], _CutoffSandbox], *, now: datetime | None = None) -> dict[str, Any]:
    """End a trial's access at its deadline: tokens, forge access, sandbox (stopped, volumes kept).

    Each part is recorded once done (`data.cutoff`), so a part that failed (GitHub or the
    engine down) is tried again on the next call and a done one is not repeated. Does
    nothing to a trial that is no longer active or whose deadline moved (extended).
    """
    now = now or utcnow()
    trial = store.get_trial(trial_id)
    if trial.state != ACTIVE or trial.deadline is None or trial.deadline > now:
        return {"skipped": True}
    record: dict[str, Any] = dict(trial.data.get("cutoff") or {})
    record.setdefault("at", iso(now))
    done: set[str] = set(record.get("done", []))
    errors: dict[str, str] = {}
    for part in CUTOFF_PARTS:
        if part in done:
            continue
        try:
            _cut(part, store, trial, forge, sandbox)
        except TrialError as exc:
            errors[part] = exc.one_line()
            continue
        except Exception as exc:  # one broken edge must not keep the other parts, or trials, open
            log.exception("cutoff.crashed", trial_id=trial.id, part=part)
            errors[part] = f"{type(exc).__name__}: {exc}"
            continue
        done.add(part)
    record.update(done=[p for p in CUTOFF_PARTS if p in done], errors=errors, by="host service")
    if not errors:
        record["completed_at"] = iso(utcnow())
    store.merge_data(trial.id, {"cutoff": record})
    if errors:
        log.warning("cutoff.partial", trial_id=trial.id, errors=errors)
    else:
        store.add_event(trial.id, "trial.cutoff", {"deadline": iso(trial.deadline), "at": record["at"],
                                                   "completed_at": record["completed_at"]})
        log.info("cutoff.done", trial_id=trial.id, deadline=iso(trial.deadline))
    return record


def _cut(part: str, store: Store, trial: Trial, forge: Callable[[], _CutoffForge],
         sandbox: Callable[[], _CutoffSandbox]) -> None:
    from orchestrator.forge.base import RepoRef

    if part == "token":
        store.revoke_tokens(trial.id)
    elif part == "forge":
        if trial.data.get("repo"):
            repo = RepoRef.from_json(trial.data["repo"])
            edge = forge()
            edge.revoke(repo, trial.candidate)
            edge.revoke_sandbox_access(repo, trial.data.get("deploy_key_id"))
    else:
        backend = sandbox()
        ref = backend.find(trial.id)
        if ref is not None:
            backend.stop(ref)


DEADLINE_REF_PREFIX = "refs/trial/at-deadline/"
"""Where collect pins a commit a branch held at the deadline when no ref reaches it any more."""


def repo_size(git_dir: Path, quota_mb: float) -> dict[str, Any]:
    """The repository's object store in bytes against the trial's quota (checked again at collect:
    on GitHub a push the proxy did not see, e.g. from the candidate's laptop, also counts)."""
    from orchestrator import gitenv

    counts = dict(line.split(": ", 1) for line in gitenv.output(["count-objects", "-v"], cwd=git_dir).splitlines()
                  if ": " in line)
    size = (int(counts.get("size", 0)) + int(counts.get("size-pack", 0))) * 1024
    quota = int(quota_mb * 1024 * 1024)
    return {"bytes": size, "quota_bytes": quota or None, "over_quota": bool(quota) and size > quota}


def late_pushes(push_events: list[dict[str, Any]], deadline: datetime | None) -> list[dict[str, Any]]:
    """The ref updates after the deadline: recorded and shown, never graded."""
    if deadline is None:
        return []
    return [event for event in push_events if _when(event["ts"]) > deadline]


def heads_at(push_events: list[dict[str, Any]], moment: datetime) -> dict[str, str]:
    """Each ref's SHA at `moment`, replaying the forge's ref updates ({ts, ref, after}) up to it."""
    heads: dict[str, str] = {}
    for event in sorted(push_events, key=lambda e: _when(e["ts"])):
        if _when(event["ts"]) > moment:
            break
        if event["after"] == ZERO_SHA:
            heads.pop(event["ref"], None)
        else:
            heads[event["ref"]] = event["after"]
    return heads


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
