"""Deadlines: `extend` moves one before it passes; `reap` collects each due trial once; `watch` wakes on time."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import deadlines
from orchestrator.cli.main import cli
from orchestrator.errors import ExitCode, ForgeError, StateError, UsageError
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit

ZERO = "0" * 40


@pytest.fixture
def store(trial_home: Path) -> Store:
    opened = Store.open(trial_home)
    yield opened  # type: ignore[misc]
    opened.close()


def add_trial(store: Store, trial_id: str, deadline: datetime | None, state: str = "active") -> Trial:
    now = utcnow()
    trial = store.create_trial(Trial(trial_id, "api-keys", "octocat", "none", state, now, now, 4.0, 10.0,
                                     deadline=deadline))
    store.mint_token(trial_id, "sandbox", expires_at=deadline)
    return trial


class Collector:
    """Stands in for lifecycle.collect: records the call and the state it found, then marks collected."""

    def __init__(self, store: Store, failing: tuple[str, ...] = ()) -> None:
        self.store = store
        self.failing = failing
        self.seen: list[tuple[str, str]] = []

    def __call__(self, trial_id: str) -> object:
        self.seen.append((trial_id, self.store.get_trial(trial_id).state))
        if trial_id in self.failing:
            raise ForgeError(f"GitHub answered 502 while collecting {trial_id}", "rerun")
        return self.store.update_trial(trial_id, state="collected")


def test_extend_moves_the_deadline_and_the_gateway_tokens_expiry(store: Store) -> None:
    deadline = utcnow().replace(microsecond=0) + timedelta(hours=1)
    add_trial(store, "tactive01", deadline)
    result = deadlines.extend(store, "tactive", 2.5)  # a unique prefix is enough
    assert (result.old_deadline, result.new_deadline) == (deadline, deadline + timedelta(hours=2.5))
    trial = store.get_trial("tactive01")
    assert trial.deadline == deadline + timedelta(hours=2.5) and trial.hours == 6.5
    assert [t.expires_at for t in store.tokens("tactive01")] == [trial.deadline]
    assert store.events("tactive01")[-1]["kind"] == "trial.extended"


def test_extend_refuses_once_the_deadline_passed_or_the_trial_is_not_active(store: Store) -> None:
    add_trial(store, "tpassed01", utcnow() - timedelta(minutes=1))
    with pytest.raises(StateError, match="passed at"):
        deadlines.extend(store, "tpassed01", 1)
    add_trial(store, "tdone0001", utcnow() + timedelta(hours=1), state="collected")
    with pytest.raises(StateError, match="is collected"):
        deadlines.extend(store, "tdone0001", 1)
    add_trial(store, "tnew00001", None, state="provisioning")
    with pytest.raises(StateError, match="is provisioning"):
        deadlines.extend(store, "tnew00001", 1)


@pytest.mark.parametrize("hours", [0, -1, float("nan"), float("inf"), 24 * 15])
def test_extend_refuses_hours_that_do_not_move_it_sensibly(store: Store, hours: float) -> None:
    add_trial(store, "tactive01", utcnow() + timedelta(hours=1))
    with pytest.raises(UsageError, match="--hours must be more than 0"):
        deadlines.extend(store, "tactive01", hours)


def test_reap_collects_each_trial_past_its_deadline_once_after_claiming_it(store: Store) -> None:
    now = utcnow()
    add_trial(store, "tdue00001", now - timedelta(hours=2))
    add_trial(store, "tdue00002", now - timedelta(seconds=1))
    add_trial(store, "tlater001", now + timedelta(hours=1))
    add_trial(store, "tgraded01", now - timedelta(hours=5), state="graded")
    collect = Collector(store)
    report = deadlines.reap(store, collect, now=now)
    assert collect.seen == [("tdue00001", "expired"), ("tdue00002", "expired")]
    assert [(o.trial_id, o.collected) for o in report.outcomes] == [("tdue00001", True), ("tdue00002", True)]
    assert deadlines.reap(store, collect, now=now).outcomes == []  # once
    assert store.get_trial("tlater001").state == "active"


def test_one_failed_collect_does_not_stop_the_others_and_is_reported(store: Store) -> None:
    now = utcnow()
    add_trial(store, "tfails001", now - timedelta(hours=1))
    add_trial(store, "tworks001", now - timedelta(minutes=1))
    report = deadlines.reap(store, Collector(store, failing=("tfails001",)), now=now)
    assert [(o.trial_id, o.collected) for o in report.outcomes] == [("tfails001", False), ("tworks001", True)]
    assert report.failed[0].error is not None and "502" in report.failed[0].error
    assert report.to_json()["failed"] == 1


def test_an_extension_that_lands_first_wins_over_the_reaper(store: Store) -> None:
    deadline = utcnow() + timedelta(seconds=30)
    add_trial(store, "trace0001", deadline)
    deadlines.extend(store, "trace0001", 1, now=deadline - timedelta(seconds=1))
    # The reaper's claim is a compare-and-set on the deadline it saw: it no longer holds.
    assert store.update_trial_if("trace0001", ("active",), deadline_by=deadline, state="expired") is None
    assert deadlines.reap(store, Collector(store), now=deadline + timedelta(seconds=1)).outcomes == []


def test_an_expired_trial_whose_reaper_died_is_reaped_again_later(store: Store) -> None:
    now = utcnow()
    add_trial(store, "torphan01", now - timedelta(hours=1), state="expired")
    collect = Collector(store)
    assert deadlines.reap(store, collect, now=now).outcomes == []  # another reaper may still be on it
    report = deadlines.reap(store, collect, now=now + deadlines.STALE_CLAIM + timedelta(seconds=1))
    assert [o.trial_id for o in report.outcomes] == ["torphan01"]


def test_watch_wakes_at_the_next_deadline_and_stops_when_told(store: Store) -> None:
    add_trial(store, "tsoon0001", utcnow() + timedelta(seconds=1))
    collect = Collector(store)
    stop = threading.Event()
    reports: list[deadlines.ReapReport] = []

    def on_report(report: deadlines.ReapReport) -> None:
        reports.append(report)
        if report.outcomes or len(reports) > 10:
            stop.set()

    guard = threading.Timer(15, stop.set)  # the loop ends by itself even if the test is wrong
    guard.start()
    started = time.monotonic()
    passes = deadlines.watch(store, collect, interval_s=60, stop=stop, on_report=on_report)
    guard.cancel()
    assert [o.trial_id for o in reports[-1].outcomes] == ["tsoon0001"]
    assert passes == 2 and time.monotonic() - started < 5  # woke at the deadline, not after 60 s


def test_heads_at_replays_ref_updates_up_to_the_moment() -> None:
    events = [
        {"ts": "2026-01-05T10:00:00+00:00", "ref": "refs/heads/main", "before": ZERO, "after": "a" * 40},
        {"ts": "2026-01-05T11:00:00Z", "ref": "refs/heads/feature", "before": ZERO, "after": "b" * 40},
        {"ts": "2026-01-05T12:00:00+00:00", "ref": "refs/heads/feature", "before": "b" * 40, "after": "c" * 40},
        {"ts": "2026-01-05T13:00:00+00:00", "ref": "refs/heads/feature", "before": "c" * 40, "after": ZERO},
    ]
    at = datetime.fromisoformat
    assert deadlines.heads_at(events, at("2026-01-05T09:00:00+00:00")) == {}
    assert deadlines.heads_at(events, at("2026-01-05T12:30:00+00:00")) == {
        "refs/heads/main": "a" * 40, "refs/heads/feature": "c" * 40}
    assert deadlines.heads_at(events, at("2026-01-05T13:00:00+00:00")) == {"refs/heads/main": "a" * 40}


def test_a_push_in_the_deadlines_own_second_is_late(tmp_path: Path) -> None:
    """The deadline is a whole second; a push 0.4 s after it was once logged at that same whole
    second (the log kept seconds only) and graded as in time. Both writers keep microseconds."""
    import subprocess

    from orchestrator.forge import local, pushlog

    deadline = datetime.fromisoformat("2026-01-05T12:00:00+00:00")
    written = pushlog.line("refs/heads/late", ZERO, "a" * 40, forced=False, pusher="trial:t1",
                           at=deadline + timedelta(milliseconds=400))
    hook = tmp_path / "post-receive"
    hook.write_text(local.POST_RECEIVE)
    hook.chmod(0o755)
    subprocess.run([str(hook)], input=f"{ZERO} {'b' * 40} refs/heads/hooked\n", text=True, check=True,
                   env={"GIT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    events = pushlog.read(tmp_path / local.PUSH_LOG)
    (tmp_path / "proxy.tsv").write_text(written)
    events += pushlog.read(tmp_path / "proxy.tsv")
    assert [e["ts"] for e in events][1] == "2026-01-05T12:00:00.400000+00:00"
    assert "." in events[0]["ts"]  # the hook's own clock, to the microsecond
    assert deadlines.late_pushes(events, deadline) == events
    assert deadlines.heads_at(events[1:], deadline) == {}


def test_trial_extend_and_trial_reap_commands(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_trial(store, "tcli00001", utcnow() + timedelta(hours=1))
    runner = CliRunner()
    result = runner.invoke(cli, ["extend", "tcli00001", "--hours", "1", "--json"], catch_exceptions=False)
    envelope = json.loads(result.stdout)
    assert envelope["ok"] is True and envelope["data"]["hours"] == 1.0

    result = runner.invoke(cli, ["reap"], catch_exceptions=False)
    assert result.exit_code == 0 and "no trial is past its deadline" in result.output

    # `trial reap` hands each due trial to lifecycle.collect; here a stand-in that fails one.
    add_trial(store, "tcli00002", utcnow() - timedelta(minutes=5))
    called: list[str] = []

    def collect(services: object, trial_id: str) -> object:
        called.append(trial_id)
        raise ForgeError("GitHub answered 502", "rerun")

    monkeypatch.setattr("orchestrator.lifecycle.collect", collect)
    result = runner.invoke(cli, ["reap", "--json"], catch_exceptions=False, standalone_mode=False)
    assert called == ["tcli00002"] and result.return_value == int(ExitCode.PARTIAL)
    assert json.loads(result.stdout)["data"]["failed"] == 1


def test_trial_extend_of_a_passed_deadline_exits_with_a_usage_code(store: Store) -> None:
    from orchestrator.cli.main import main

    add_trial(store, "tlate0001", utcnow() - timedelta(minutes=1))
    with pytest.raises(SystemExit) as exited:
        main(["extend", "tlate0001", "--hours", "1"])
    assert exited.value.code == int(ExitCode.USAGE)


def test_trial_reap_watch_passes_until_sigterm_then_exits_cleanly(trial_home: Path) -> None:
    import os
    import select
    import signal
    import subprocess
    import sys

    # Into a pipe, as a service manager or a script reads it: each pass's report must arrive as it
    # is made, not when stdout's buffer fills (PYTHONUNBUFFERED, set in some shells, hid that).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "reap", "--watch", "--interval", "3600",
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the first pass's report did not reach the pipe while the watcher ran"
        assert proc.stdout.readline().strip() == "{"  # the first pass reported
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_collect_killed_midway_is_reaped_again_once_stale(tmp_path: Path) -> None:
    from datetime import timedelta

    from orchestrator.deadlines import STALE_CLAIM, due

    store = Store.open(tmp_path)
    now = utcnow()
    store.create_trial(Trial("tstuck001", "api-keys", "octocat", "none", "collecting", now, now, 1, 1,
                             deadline=now - timedelta(hours=1)))
    assert [t.id for t in due(store, now)] == []  # a collect may still be running
    assert [t.id for t in due(store, now + STALE_CLAIM + timedelta(seconds=1))] == ["tstuck001"]
