"""Reviewers grade in the PR with `/score` lines; `trial scores` gathers them with the automatic ones."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from graders.base import GradeContext
from graders.runner import grade_bundle
from orchestrator.catalog import load_template
from orchestrator.cli.main import cli
from orchestrator.config import load_settings
from orchestrator.errors import UsageError
from orchestrator.evidence.bundle import Bundle
from orchestrator.forge.base import PullRequest, RepoRef
from orchestrator.forge.local import LocalForge
from orchestrator.report.model import MARKER
from orchestrator.report.post import post_report
from orchestrator.report.scores import CSV_FIELDS, Reviewers, gather, reviewers_for, to_csv
from orchestrator.store import Store, Trial, utcnow
from tests.fixtures.bundle_builder import MINI_TEMPLATE, careful_session

pytestmark = pytest.mark.unit


def _comment(author: str, body: str, at: str, kind: str = "comments") -> dict[str, Any]:
    return {"kind": kind, "author": author, "body": body, "created_at": at, "updated_at": at,
            "url": f"https://github.com/acme/t/pull/1#c-{at}"}


def _pull(*items: dict[str, Any]) -> dict[str, Any]:
    pull: dict[str, Any] = {"number": 1, "url": "https://github.com/acme/t/pull/1", "comments": [], "reviews": [],
                            "review_comments": []}
    for item in items:
        pull[item.pop("kind")].append(item)
    return pull


REVIEWERS = Reviewers.named(["rita", "sam", "carol"], "test", explicit=True)

REPORT = {"schema": "trial.report/v1", "trial": {"id": "t1", "candidate": "carol", "template": "mini"},
          "overall": {"fraction": 0.8},
          "graders": [{"grader": "steering", "status": "ok", "score": 15, "max": 18, "summary": "good"},
                      {"grader": "spec_quality", "status": "ok", "score": 20, "max": 20, "summary": "clear"},
                      {"grader": "hidden_tests", "status": "infra_error", "score": 0, "max": 0, "summary": "x"}]}


def test_reviewer_lines_are_parsed_and_the_latest_per_reviewer_wins() -> None:
    pulls = [_pull(
        _comment("trial-bot", f"{MARKER}\n/score steering 4 the report's own example", "2025-01-01T10:00:00Z"),
        _comment("rita", "Nice work.\n/score steering 2 too few prompts\n/score spec 3/5 good SPEC.md",
                 "2025-01-01T11:00:00Z"),
        _comment("rita", "/score steering 3 after a second look", "2025-01-01T12:00:00Z", kind="reviews"),
        _comment("sam", "> /score overall 4 quoted from an email\n/score tests 9 far too high\n"
                        "/score vibes 4 unknown key", "2025-01-01T13:00:00Z", kind="review_comments"),
        _comment("carol", "/score steering 4 I did great", "2025-01-01T14:00:00Z"),
    )]
    scores = gather(REPORT, pulls, REVIEWERS)
    reviewer = {(r.by, r.key): r for r in scores.rows if r.source == "reviewer"}
    assert set(reviewer) == {("rita", "steering"), ("rita", "spec_quality"), ("sam", "overall")}
    assert (reviewer["rita", "steering"].score, reviewer["rita", "steering"].reason) == (3.0, "after a second look")
    assert (reviewer["rita", "spec_quality"].score, reviewer["rita", "spec_quality"].max) == (3.0, 5.0)
    assert len(scores.ignored) == 3
    notes = [str(note) for note in scores.ignored]
    assert any("carol (the candidate)" in note for note in notes)  # even though listed as a reviewer
    assert any("above the maximum" in note for note in notes)
    assert any("unknown key 'vibes'" in note for note in notes)
    auto = {r.key: r for r in scores.rows if r.source == "auto"}
    assert set(auto) == {"steering", "spec_quality", "overall"}  # infra errors carry no automatic score
    summary = scores.summary()
    assert summary["steering"] == {"auto": round(15 / 18, 4), "reviewers": 0.75, "reviewer_count": 1}


def test_scores_as_csv() -> None:
    pulls = [_pull(_comment("rita", "/score steering 3 ok", "2025-01-01T11:00:00Z"))]
    rows = list(csv.DictReader(io.StringIO(to_csv([gather(REPORT, pulls, REVIEWERS)]))))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [(r["source"], r["by"], r["key"]) for r in rows] == [
        ("auto", "trial", "steering"), ("auto", "trial", "spec_quality"), ("auto", "trial", "overall"),
        ("reviewer", "rita", "steering")]
    assert rows[-1]["fraction"] == "0.75"


def _graded_trial(home: Path) -> tuple[Store, str]:
    settings = load_settings()
    store = Store.open(settings.home)
    now = utcnow()
    repo = {"forge": "github", "name": "t-careful", "full_name": "acme/t-careful",
            "web_url": "https://github.com/acme/t-careful", "default_branch": "main", "trial_id": "t-careful"}
    store.create_trial(Trial(id="t-careful", template="mini_template", candidate="carol", agent="claude-code",
                             state="graded", created_at=now, updated_at=now, hours=1.0, budget_usd=1.0,
                             data={"repo": repo}))
    built = careful_session(home.parent / "work")
    bundle_dir = settings.evidence_dir / "t-careful"
    bundle_dir.parent.mkdir(parents=True, exist_ok=True)
    built.rename(bundle_dir)
    grade_bundle(Bundle(bundle_dir), load_template(MINI_TEMPLATE), GradeContext())
    return store, "t-careful"


def test_trial_scores_cli_offline_and_all_as_csv(trial_home: Path) -> None:
    store, trial_id = _graded_trial(trial_home)
    store.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["scores", trial_id, "--offline", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [data] = json.loads(result.output)["data"]
    assert data["trial_id"] == trial_id and data["summary"]["steering"]["auto"] > 0.8
    result = runner.invoke(cli, ["scores", "--all", "--csv", "--offline"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.splitlines()[0] == ",".join(CSV_FIELDS)
    assert all(line.startswith(f"{trial_id},carol,") for line in result.output.splitlines()[1:])
    refused = runner.invoke(cli, ["scores"])
    assert refused.exit_code != 0


class PullsFromTheForge:
    """A forge that answers pull_requests with what reviewers wrote after collect."""

    name = "fake"

    def __init__(self, pulls: list[PullRequest], maintainers: tuple[str, ...] = ("rita",)) -> None:
        self.pulls = pulls
        self.asked: list[RepoRef] = []
        self._maintainers = list(maintainers)

    def pull_requests(self, repo: RepoRef) -> list[PullRequest]:
        self.asked.append(repo)
        return self.pulls

    def maintainers(self, repo: RepoRef) -> list[str]:
        return self._maintainers


def test_trial_scores_reads_fresh_comments_from_the_forge(trial_home: Path) -> None:
    from orchestrator.report.scores import trial_scores

    store, trial_id = _graded_trial(trial_home)
    fresh = PullRequest(number=1, title="t", body="", state="open", head_ref="feature", head_sha="a" * 40,
                        base_ref="main", base_sha="b" * 40, author="carol", created_at="", updated_at="", url="u",
                        comments=[{"author": "rita", "body": "/score pr 4 great description",
                                   "created_at": "2025-03-04T09:00:00Z", "url": "u#1"}])
    forge = PullsFromTheForge([fresh])
    scores = trial_scores(load_settings(), store, trial_id, forge)  # type: ignore[arg-type]
    assert forge.asked[0].full_name == "acme/t-careful"
    [row] = [r for r in scores.rows if r.source == "reviewer"]
    assert (row.by, row.key, row.score) == ("rita", "pull_request", 4.0)
    store.close()


def test_posting_creates_then_updates_one_marked_comment(trial_home: Path, tmp_path: Path) -> None:
    settings = load_settings()
    forge = LocalForge(settings)
    repo = forge.create_repo("t-post", "t-post", "posting test")
    work = tmp_path / "work"
    work.mkdir()
    for argv in (["init", "-q", "-b", "main"], ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q",
                                                 "--allow-empty", "-m", "starter"]):
        subprocess.run(["git", *argv], cwd=work, check=True)
    forge.push(repo, work, "main")
    (work / "f.txt").write_text("x\n")
    subprocess.run(["git", "checkout", "-q", "-b", "feature"], cwd=work, check=True)
    subprocess.run(["git", "add", "f.txt"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=c", "-c", "user.email=c@x", "commit", "-q", "-m", "work"], cwd=work,
                   check=True)
    forge.push(repo, work, "feature")
    [pull] = forge.pull_requests(repo)
    first = post_report(forge, repo, pull.number, "## Trial report\nfirst")
    second = post_report(forge, repo, pull.number, f"{MARKER}\n## Trial report\nsecond")
    assert first == second
    [comment] = forge.pull_requests(repo)[0].comments
    assert comment["body"] == f"{MARKER}\n## Trial report\nsecond"
    with pytest.raises(UsageError, match="65536"):
        post_report(forge, repo, pull.number, "x" * 70_000)


def test_a_score_from_a_bot_or_a_non_reviewer_is_ignored_and_says_why() -> None:
    pulls = [_pull(
        _comment("github-actions[bot]", "CI done.\n/score overall 4 all green", "2025-01-01T10:00:00Z"),
        _comment("drive-by", "/score steering 4 lgtm", "2025-01-01T10:30:00Z", kind="reviews"),
        _comment("Rita", "/score steering 2 missed the defect", "2025-01-01T11:00:00Z"),
        _comment("carol", "/score overall 4 I did great", "2025-01-01T12:00:00Z"),
    )]
    admins = Reviewers.named(["rita", "carol", "github-actions[bot]"], "admins and maintainers of acme/t")
    scores = gather(REPORT, pulls, admins)
    assert [(r.by, r.key, r.score) for r in scores.rows if r.source == "reviewer"] == [("Rita", "steering", 2.0)]
    reasons = {note.by: note.reason for note in scores.ignored}
    assert reasons == {"github-actions[bot]": "a bot, not a reviewer (admins and maintainers of acme/t)",
                       "drive-by": "not a reviewer (admins and maintainers of acme/t)",
                       "carol": "the candidate"}
    data = scores.to_json()
    assert data["reviewers"]["source"] == "admins and maintainers of acme/t"
    assert {i["by"] for i in data["ignored"]} == set(reasons) and all(i["line"] for i in data["ignored"])
    # A bot the operator names on purpose does count.
    named = gather(REPORT, pulls, Reviewers.named(["github-actions[bot]"], "[review] reviewers", explicit=True))
    assert [r.by for r in named.rows if r.source == "reviewer"] == ["github-actions[bot]"]


def test_without_a_known_reviewer_list_nobody_scores(trial_home: Path) -> None:
    settings = load_settings()
    github_repo = {"forge": "github", "full_name": "acme/t"}
    offline = reviewers_for(settings, github_repo, None)
    assert offline.logins is None
    pulls = [_pull(_comment("rita", "/score steering 3 ok", "2025-01-01T11:00:00Z"))]
    scores = gather(REPORT, pulls, offline)
    assert not [r for r in scores.rows if r.source == "reviewer"]
    [note] = scores.ignored
    assert "drop --offline or set [review] reviewers" in note.reason
    local = reviewers_for(load_settings({"review.operator": "olga"}), {"forge": "local"}, None)
    assert local.logins == frozenset({"olga"}) and "operator" in local.source
    listed = reviewers_for(load_settings({"review.reviewers": ["Rita", "sam"]}), github_repo, None)
    assert listed.logins == frozenset({"rita", "sam"})
