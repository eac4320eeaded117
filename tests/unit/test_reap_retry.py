"""A failed collect is not the end: `trial reap` tries it again, resuming at the failed step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator import deadlines
from orchestrator.errors import EvidenceError
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


def test_a_trial_whose_collect_failed_is_collected_again_by_reap(trial_home: Path) -> None:
    store = Store.open(trial_home)
    now = utcnow()
    store.create_trial(Trial("tfailed01", "api-keys", "octocat", "none", "failed", now, now, 1, 1,
                             deadline=now - timedelta(hours=2), failed_step="collect:transcripts"))
    store.create_trial(Trial("tlaunch01", "api-keys", "octocat", "none", "failed", now, now, 1, 1,
                             failed_step="launch:build_image"))
    attempts: list[str] = []

    def collect(trial_id: str) -> object:
        attempts.append(trial_id)
        if len(attempts) == 1:
            store.update_trial(trial_id, state="failed", failed_step="collect:transcripts")
            raise EvidenceError("the sandbox engine went away mid-copy")
        return store.update_trial(trial_id, state="collected", failed_step=None)

    assert deadlines.reap(store, collect, now=now).outcomes == []  # just failed: not hammered
    later = now + deadlines.COLLECT_RETRY + timedelta(seconds=1)
    first = deadlines.reap(store, collect, now=later)
    assert [(o.trial_id, o.collected) for o in first.outcomes] == [("tfailed01", False)]
    second = deadlines.reap(store, collect, now=utcnow() + deadlines.COLLECT_RETRY + timedelta(seconds=1))
    assert [(o.trial_id, o.collected) for o in second.outcomes] == [("tfailed01", True)]
    assert attempts == ["tfailed01", "tfailed01"]  # a failed launch is not the reaper's to retry
    assert store.get_trial("tfailed01").state == "collected"
    store.close()
