"""A cohort of five on real Docker and the local forge, through the real CLI in subprocesses.

The cohort command is killed with SIGKILL while its launches are under way, then run again:
the re-run resumes what was half-made, launches what is missing, and leaves exactly five
trials and five sandbox containers (counted by label). A plain `trial launch` for one of the
candidates then refuses (exit 2). The cohort is collected and graded, its report is opened
in headless Chromium (five rows, sorted by the page's own script, every link reaching a
report.html), `trial scores --cohort --csv` lists the five, and teardown leaves nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import docker
import pytest

from orchestrator.sandbox.base import LABEL_INSTANCE, LABEL_ROLE, LABEL_TRIAL

pytestmark = pytest.mark.e2e
CANDIDATES = ("cand-a", "cand-b", "cand-c", "cand-d", "cand-e")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


def trial(*args: str, expect: int = 0, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout, check=False)
    assert done.returncode == expect, \
        f"trial {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]} {done.stdout[-3000:]}"
    return done


def data(done: subprocess.CompletedProcess[str]) -> Any:
    envelope = json.loads(done.stdout)
    assert envelope["ok"], envelope
    return envelope["data"]


@pytest.fixture
def stop_service() -> Any:
    yield
    subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], capture_output=True,
                   env=os.environ.copy(), timeout=60, check=False)


def _cohort_trials(home: Path) -> list[dict[str, Any]]:
    db = home / "trial.db"
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT id, candidate, state FROM trials WHERE cohort = 'spring'").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [dict(row) for row in rows]


class _Rows(HTMLParser):
    """Rows of the cohort table as the browser left them: (candidate, trial id, link)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.sorted_by: list[tuple[str, str]] = []
        self._cell = -1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("class") == "trial":
            self.rows.append({"trial": values.get("data-trial") or ""})
            self._cell = -1
        elif tag == "td" and self.rows:
            self._cell += 1
            if self._cell == 0:
                self.rows[-1]["candidate"] = values.get("data-value") or ""
        elif tag == "a" and self.rows and values.get("class") == "report":
            self.rows[-1]["href"] = values.get("href") or ""
        elif tag == "th" and values.get("aria-sort"):
            self.sorted_by.append((values.get("data-col") or "", values.get("aria-sort") or ""))


def _browser_rows(page: Path, fragment: str, profile: Path) -> _Rows:
    done = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                           page.as_uri() + fragment], capture_output=True, text=True, timeout=180, check=False)
    parser = _Rows()
    parser.feed(done.stdout)
    assert parser.rows, done.stderr[-2000:]
    return parser


def test_cohort_of_five_survives_kill_9_and_is_graded(tmp_path: Path, trial_home: Path, service_port: int,
                                                      stop_service: None) -> None:
    cohort_file = tmp_path / "spring.csv"
    cohort_file.write_text("candidate,template,agent,hours\n"
                           + "".join(f"{login},api-keys,none,1\n" for login in CANDIDATES))
    argv = [sys.executable, "-m", "orchestrator.cli.main", "cohort", "launch", str(cohort_file), "--parallel", "2",
            "--json"]

    # First run: killed with SIGKILL once the parallel launches are under way.
    first = subprocess.Popen(argv, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        rows = _cohort_trials(trial_home)
        if len(rows) >= 3 and any(row["state"] == "provisioning" for row in rows):
            break
        time.sleep(0.2)
    assert first.poll() is None, "the cohort launch ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    killed = _cohort_trials(trial_home)
    assert any(row["state"] == "provisioning" for row in killed), killed  # left half-made by the kill

    # Second run: the same file; only what is missing is launched, what was half-made resumes.
    rerun = data(trial(*argv[3:]))
    actions = {row["candidate"]: row["action"] for row in rerun["rows"]}
    assert sorted(actions) == sorted(CANDIDATES)
    assert "failed" not in actions.values(), rerun
    assert sum(action == "launched" for action in actions.values()) == len(CANDIDATES) - len(killed)
    rows = _cohort_trials(trial_home)
    assert sorted(row["candidate"] for row in rows) == sorted(CANDIDATES)
    assert {row["state"] for row in rows} == {"active"}
    ids = {row["id"] for row in rows}

    # Exactly one sandbox container per trial, and none of any other trial of this data dir.
    engine = docker.from_env()
    [instance] = {c.labels[LABEL_INSTANCE] for c in engine.containers.list(
        all=True, filters={"label": f"{LABEL_TRIAL}={next(iter(ids))}"})}
    ours = engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"})
    assert sorted(c.labels[LABEL_TRIAL] for c in ours) == sorted(ids)
    assert {c.labels[LABEL_ROLE] for c in ours} == {"sandbox"}

    # A third run launches nothing; a plain launch for a cohort candidate refuses, naming the trial.
    again = data(trial(*argv[3:]))
    assert {row["action"] for row in again["rows"]} == {"exists"}
    refused = trial("launch", "api-keys", "--candidate", "cand-c", "--agent", "none", "--hours", "1", expect=2)
    [existing] = [row["id"] for row in rows if row["candidate"] == "cand-c"]
    assert existing in refused.stderr and "--again" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert len(data(trial("ls", "--cohort", "spring", "--json"))) == len(CANDIDATES)

    status = data(trial("cohort", "status", "spring", "--json"))
    assert status["failed"] == 0 and all("running" in t["data"]["sandbox"] for t in status["trials"]), status
    # Per-trial errors: grading before collecting fails for each trial, and each says why.
    early = json.loads(trial("cohort", "grade", "spring", "--json", expect=4).stdout)["data"]
    assert early["failed"] == len(CANDIDATES) and all("collect" in t["error"] for t in early["trials"]), early

    collected = data(trial("cohort", "collect", "spring", "--json"))
    assert collected["failed"] == 0 and {t["state"] for t in collected["trials"]} == {"collected"}, collected
    graded = data(trial("cohort", "grade", "spring", "--json"))
    assert graded["failed"] == 0 and {t["state"] for t in graded["trials"]} == {"graded"}, graded
    page = Path(graded["report"])

    scores = list(csv.DictReader(io.StringIO(trial("scores", "--cohort", "spring", "--csv", "--offline").stdout)))
    assert {row["trial_id"] for row in scores} == ids
    assert {row["candidate"] for row in scores if row["key"] == "overall"} == set(CANDIDATES)

    # The page in a real browser: five rows, sorted by its script, each link reaching a report.html.
    opened = _browser_rows(page, "", tmp_path / "profile")
    assert len(opened.rows) == len(CANDIDATES)
    assert opened.sorted_by == [("overall", "descending")]  # the script ran: it marks the sorted column
    for row in opened.rows:
        target = (page.parent / unquote(row["href"])).resolve()
        assert target == (trial_home / "evidence" / row["trial"] / "report.html").resolve()
        assert re.search(r"<html", target.read_text()[:500], re.I)
        shown = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=180,
                               check=False).stdout
        assert row["trial"] in shown
        assert urlparse(target.as_uri()).scheme == "file"
    by_name = _browser_rows(page, "#sort=candidate&dir=asc", tmp_path / "profile")
    assert [row["candidate"] for row in by_name.rows] == sorted(CANDIDATES)
    backwards = _browser_rows(page, "#sort=candidate&dir=desc", tmp_path / "profile")
    assert [row["candidate"] for row in backwards.rows] == sorted(CANDIDATES, reverse=True)

    torn = data(trial("cohort", "teardown", "spring", "--yes", "--delete-repo", "--json"))
    assert torn["failed"] == 0, torn
    assert engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}) == []
