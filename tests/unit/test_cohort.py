"""Cohort files, the idempotency keys in the store, the live-trial refusal, and the cohort page."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cohort import Defaults, _launch_lock, launch_cohort, read_plan
from orchestrator.config import load_settings
from orchestrator.errors import StateError, UsageError
from orchestrator.lifecycle import LIVE_STATES
from orchestrator.report.cohort import CohortEntry, render_cohort_html
from orchestrator.services import Services
from orchestrator.store import MIGRATIONS, DuplicateTrialError, Store, Trial, utcnow

pytestmark = pytest.mark.unit
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGFyZSBub3QgcmVhbCBrZXlzIGF0IGFsbA octo@laptop"


@pytest.fixture
def services(trial_home: Path) -> Iterator[Services]:
    services = Services.from_settings(load_settings({}))
    yield services
    services.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def trial(ident: str, candidate: str, state: str = "active", cohort: str | None = None,
          template: str = "api-keys") -> Trial:
    return Trial(ident, template, candidate, "none", state, utcnow(), utcnow(), 4, 10, cohort=cohort)


# -- the file -------------------------------------------------------------------------------

def test_csv_rows_with_defaults_from_flags_and_keys_inline_or_from_files(services: Services, tmp_path: Path) -> None:
    write(tmp_path / "b.pub", KEY + "\n")
    path = write(tmp_path / "spring.csv", "candidate,agent,hours,budget,ssh_keys\n"
                                          f"octocat,none,2,5,{KEY}\n"
                                          "hubot,,,,b.pub\n"
                                          "\n# a comment line\n"
                                          "mona-lisa,codex,,,\n")
    plan = read_plan(services, path, defaults=Defaults(template="api-keys", hours=3))
    assert plan.name == "spring" and plan.source == path.resolve()
    octo, hubot, mona = plan.rows
    assert (octo.row, octo.candidate, octo.template, octo.agent, octo.hours, octo.budget_usd) == \
        (1, "octocat", "api-keys", "none", 2.0, 5.0)
    assert octo.ssh_keys == (KEY,) and hubot.ssh_keys == (KEY,)
    assert (hubot.agent, hubot.hours, hubot.budget_usd) == (None, 3.0, None)  # None: the template's own
    assert (mona.row, mona.agent) == (3, "codex")


def test_toml_with_a_name_defaults_and_per_row_overrides(services: Services, tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[cohort]\nname = "spring-2027"\n'
                                      '[defaults]\ntemplate = "api-keys"\nagent = "none"\nhours = 4\n'
                                      '[[candidates]]\ncandidate = "octocat"\n'
                                      f'[[candidates]]\ncandidate = "hubot"\nhours = 6\nssh_keys = ["{KEY}"]\n')
    plan = read_plan(services, path)
    assert plan.name == "spring-2027"
    assert [(r.candidate, r.template, r.agent, r.hours) for r in plan.rows] == \
        [("octocat", "api-keys", "none", 4.0), ("hubot", "api-keys", "none", 6.0)]
    assert plan.rows[1].ssh_keys == (KEY,)
    assert read_plan(services, path, name="other").name == "other"


@pytest.mark.parametrize(("body", "message"), [
    ("candidate,template\nocto cat,api-keys\n", "row 1 (octo cat), field 'candidate': 'octo cat' is not a valid"),
    ("candidate,template\noctocat,no-such\n", "row 1 (octocat), field 'template': unknown template 'no-such'"),
    ("candidate,template,hours\noctocat,api-keys,4\nhubot,api-keys,-1\n", "row 2 (hubot), field 'hours': must be "
                                                                          "positive"),
    ("candidate,template,hours\noctocat,api-keys,four\n", "row 1 (octocat), field 'hours': not a number"),
    ("candidate,template,budget\noctocat,api-keys,-3\n", "row 1 (octocat), field 'budget': must be zero or more"),
    ("candidate,template,agent\noctocat,api-keys,clippy\n", "row 1 (octocat), field 'agent': unknown agent 'clippy'"),
    ("candidate,template\noctocat,api-keys\nOctoCat,api-keys\n", "row 2, field 'candidate': OctoCat is also row 1"),
    ("candidate,template,hourz\noctocat,api-keys,4\n", "unknown column 'hourz'"),
    ("template\napi-keys\n", "no 'candidate' column"),
    ("candidate,template\n", "no candidates in the file"),
    ("candidate,template,ssh_keys\noctocat,api-keys,missing.pub\n", "row 1 (octocat), field 'ssh_keys': cannot "
                                                                    "read"),
    ("candidate,template,ssh_keys\noctocat,api-keys,notakey.pub\n", "field 'ssh_keys': "),
    ("candidate\noctocat\n", "row 1 (octocat), field 'template': missing"),
    ("candidate,template,track\noctocat,api-keys,builder\n", "field 'track': a row names a template or a track"),
    ("candidate,template\noctocat,api-keys,extra\n", "3 cells for 2 columns"),
])
def test_a_bad_row_is_one_line_naming_file_row_and_field(services: Services, tmp_path: Path, body: str,
                                                         message: str) -> None:
    write(tmp_path / "notakey.pub", "hello\n")
    path = write(tmp_path / "spring.csv", body)
    with pytest.raises(UsageError) as caught:
        read_plan(services, path)
    line = caught.value.one_line()
    assert message in line and str(path) in line and "\n" not in line


def test_a_track_picks_the_teams_template(trial_home: Path, tmp_path: Path) -> None:
    settings = load_settings({}, cwd=write_dir(tmp_path / "ops", "trial.toml",
                                                '[templates]\ndefault_for_track = {builder = "api-keys"}\n'))
    services = Services.from_settings(settings)
    path = write(tmp_path / "spring.csv", "candidate,track\noctocat,builder\nhubot,design\n")
    with pytest.raises(UsageError, match=r"row 2 \(hubot\), field 'track': no template for track 'design'"):
        read_plan(services, path)
    plan = read_plan(services, write(path, "candidate,track\noctocat,builder\n"))
    assert plan.rows[0].template == "api-keys"
    services.close()


def write_dir(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize(("body", "message"), [
    ('[cohort]\nname = "x"\nwhen = 1\n', "[cohort] holds only name"),
    ('[defaults]\ncandidate = "octocat"\n', "[defaults] cannot hold 'candidate'"),
    ('[[candidates]]\ncandidate = "octocat"\ntemplate = "api-keys"\nhourz = 3\n', "row 1, field 'hourz': unknown"),
    ('[[candidates]]\ncandidate = "octocat"\ntemplate = "api-keys"\nhours = "a lot"\n', "field 'hours': not a number"),
    ("[[candidates]\n", "not valid TOML"),
    ('[cohort]\nname = "no spaces"\n[[candidates]]\ncandidate = "octocat"\n', "is not a cohort name"),
])
def test_a_bad_toml_file_is_one_line(services: Services, tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        read_plan(services, write(tmp_path / "spring.toml", body))
    assert message in caught.value.one_line()


def test_only_csv_or_toml(services: Services, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"a cohort file is \.csv or \.toml"):
        read_plan(services, write(tmp_path / "spring.xlsx", "x"))


# -- idempotency keys -----------------------------------------------------------------------

def test_one_trial_per_cohort_and_candidate_whatever_the_case(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.ensure_cohort("spring", "/x/spring.csv")
    assert store.ensure_cohort("spring", "/elsewhere.csv").source == "/x/spring.csv"  # made once, then reused
    first = store.create_trial(trial("t1", "octocat", cohort="spring"))
    with pytest.raises(DuplicateTrialError) as caught:
        store.create_trial(trial("t2", "OctoCat", cohort="spring"))
    assert caught.value.existing.id == "t1" and "t1" in caught.value.one_line()
    store.create_trial(trial("t3", "octocat", state="closed"))  # outside the cohort: another key
    store.ensure_cohort("autumn", "/x/autumn.csv")
    store.create_trial(trial("t4", "octocat", cohort="autumn"))
    assert [t.id for t in store.list_trials(cohort="spring")] == [first.id]
    assert store.cohort_trial("spring", "OCTOCAT") is not None and store.cohort_trial("spring", "hubot") is None
    assert {t.id for t in store.list_trials()} == {"t1", "t3", "t4"}


def test_the_migration_keeps_older_trials(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "trial.db")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO schema_migrations VALUES (1, 'then')")
    db.execute("INSERT INTO trials (id, template, candidate, agent, state, created_at, updated_at, hours, budget_usd) "
               "VALUES ('told', 'api-keys', 'octocat', 'none', 'active', '2026-01-01T00:00:00+00:00', "
               "'2026-01-01T00:00:00+00:00', 4, 10)")
    db.commit()
    db.close()
    store = Store.open(tmp_path)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.get_trial("told").cohort is None


@pytest.mark.parametrize("state", LIVE_STATES)
def test_a_live_trial_of_the_template_refuses_a_plain_launch(tmp_path: Path, state: str) -> None:
    store = Store.open(tmp_path)
    store.create_trial(trial("t1", "octocat", state=state))
    with pytest.raises(DuplicateTrialError) as caught:
        store.create_trial(trial("t2", "OctoCat", state="provisioning"), unless_live=LIVE_STATES)
    line = caught.value.one_line()
    assert "t1" in line and "--again" in line and caught.value.exit_code == 2
    assert [t.id for t in store.list_trials()] == ["t1"]
    store.create_trial(trial("t2", "octocat", state="provisioning"))  # --again: no check
    assert len(store.list_trials()) == 2


@pytest.mark.parametrize("state", ["collected", "graded", "closed"])
def test_a_finished_trial_or_another_template_does_not_refuse(tmp_path: Path, state: str) -> None:
    store = Store.open(tmp_path)
    store.create_trial(trial("t1", "octocat", state=state))
    store.create_trial(trial("t2", "octocat", template="other"))
    store.create_trial(trial("t3", "octocat", state="provisioning"), unless_live=LIVE_STATES)
    assert len(store.list_trials()) == 3


def test_rerunning_a_launched_cohort_launches_nothing(services: Services, tmp_path: Path) -> None:
    path = write(tmp_path / "spring.csv", "candidate,template,agent\noctocat,api-keys,none\nhubot,api-keys,none\n")
    plan = read_plan(services, path)
    services.store.ensure_cohort("spring", str(path))
    services.store.create_trial(trial("t1", "octocat", cohort="spring"))
    services.store.create_trial(trial("t2", "hubot", state="graded", cohort="spring"))
    seen: list[tuple[str, str]] = []
    result = launch_cohort(services, plan, update=lambda who, what: seen.append((who, what)))
    assert [(o.candidate, o.action, o.trial_id) for o in result.outcomes] == \
        [("octocat", "exists", "t1"), ("hubot", "exists", "t2")]
    assert len(services.store.list_trials()) == 2 and len(seen) == 2


def test_one_launcher_per_cohort(services: Services, tmp_path: Path) -> None:
    plan = read_plan(services, write(tmp_path / "spring.csv", "candidate,template\noctocat,api-keys\n"))
    with _launch_lock(services, "spring"), pytest.raises(StateError, match="being launched by pid"):
        launch_cohort(services, plan)
    assert services.store.list_trials() == []
    with pytest.raises(UsageError, match="--parallel must be at least 1"):
        launch_cohort(services, plan, parallel=0)


# -- the page -------------------------------------------------------------------------------

def test_the_cohort_page_links_each_row_relative_and_escapes_everything(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    entries = [CohortEntry(f"t{i}", f"cand-{i}", "api-keys", "graded", i / 10, {"<script>x</script>": 0.5},
                           report=evidence / f"t{i}" / "report.html") for i in range(3)]
    entries.append(CohortEntry("t9", "cand-9", "api-keys", "active", None))
    html = render_cohort_html("spring", entries, tmp_path / "cohorts" / "spring" / "report.html")
    assert html.count('<tr class="trial"') == 4
    assert 'href="../../evidence/t1/report.html"' in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "(no report)" in html and "http" not in html.split("<script>")[0].split("</style>")[1]


def test_work_runs_at_most_parallel_at_once_and_every_job_finishes() -> None:
    import functools
    import threading
    import time

    from orchestrator.cohort import _in_parallel

    lock = threading.Lock()
    running = {"now": 0, "most": 0}
    # The first three jobs meet at a barrier: they can only pass it if three really run at once,
    # however loaded the machine (a sleep-based overlap is timing luck).
    first_three = threading.Barrier(3, timeout=30)

    def job(index: int) -> int:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        if index < 3:
            first_three.wait()
        time.sleep(0.01)
        with lock:
            running["now"] -= 1
        return index

    results = _in_parallel([functools.partial(job, i) for i in range(7)], 3)
    assert sorted(results) == list(range(7)) and running["most"] == 3
