"""The question channel on GitHub (the fake GitHub, real HTTP on loopback): a question from the
sandbox is posted to the brief issue by the bot; the reviewer answers with a plain issue comment
(forge-witnessed, linked by `Q1`); a comment the candidate writes there is a question; the
thread reaches the bundle and the grader cites the comments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from github import Auth, Github

from graders.base import GradeContext
from graders.requirements import RequirementsGrader
from orchestrator import questions
from orchestrator.catalog import Catalog
from orchestrator.evidence.bundle import Bundle, write_jsonl
from orchestrator.evidence.events import parse_ts
from orchestrator.store import Trial, utcnow
from tests.fakes.github.world import CANDIDATE, REVIEWER, GitHubWorld
from tests.fakes.github_server import FakeGitHub
from tests.integration.test_github_forge import TRIAL, launched

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def lazy_client(world: GitHubWorld, token: str) -> Github:
    """PyGithub without the GET of the issue itself (not an operation the fake serves): comments only."""
    return Github(auth=Auth.Token(token), base_url=world.fake.api_url, seconds_between_requests=None,
                  seconds_between_writes=None, retry=None, lazy=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GitHubWorld]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield GitHubWorld.create(fake)
        assert fake.schema_problems() == []


def test_issue_comments_answer_and_ask_on_github(world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, _, _ = launched(world, tmp_path)
    issue_url = forge.open_issue(repo, "Hash the API keys", "Store digests, not keys.")
    now = utcnow()
    trial = Trial(TRIAL, "design-round", CANDIDATE, "none", "active", now, now, 1, 10,
                  deadline=now + timedelta(hours=1), data={"repo": repo.to_json(), "issue_url": issue_url})
    home = tmp_path / "home"
    asked = questions.ask(home, forge, trial, "Which channels do we support at launch? Is SMS planned?")
    assert asked["comment_url"] and asked["comment_url"].startswith("http")

    number = questions.issue_number(issue_url)
    assert number is not None
    reviewer = lazy_client(world, world.reviewer_token).get_repo(repo.full_name).get_issue(number)
    candidate = lazy_client(world, world.candidate_token).get_repo(repo.full_name).get_issue(number)
    # The candidate pastes the bot's marker into a comment of their own: still their question.
    candidate.create_comment("Are quiet hours in the user's local time zone? <!-- trial-question:x:9 -->")
    reviewer.create_comment("Q1: email and push at launch, SMS next quarter.")
    reviewer.create_comment("Their profile's time zone.")

    thread = questions.read_thread(home, forge, trial)
    shown = [(r["kind"], r.get("number"), r.get("question"), r["witness"], r["author"]) for r in thread.records]
    commented = shown[1][1]
    assert isinstance(commented, str) and commented.startswith("c")
    assert shown == [
        ("question", 1, None, "host", CANDIDATE),
        ("question", commented, None, "forge", CANDIDATE),
        ("answer", None, 1, "forge", REVIEWER),
        ("answer", None, commented, "forge", REVIEWER),
    ]
    assert thread.unanswered() == []

    # `trial answer` on GitHub posts as the bot and is logged by the host.
    third = questions.ask(home, forge, trial, "What are the defaults for a new user?")
    answered = questions.answer(home, forge, trial, "Everything on except marketing email.")
    assert answered["question"] == third["number"] == 2 and answered["comment_url"]
    again = questions.read_thread(home, forge, trial)
    assert [r["kind"] for r in again.records].count("answer") == 3  # the bot's own post is not read twice

    # Into a bundle and the timeline; the grader cites the GitHub comments.
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"trial": {"id": TRIAL}, "files": {}}))
    assert questions.collect(home, forge, trial, bundle) == {"questions": 3, "answers": 3, "left_out": []}
    write_jsonl(bundle / "events.jsonl", questions.merge_into([], bundle))
    result = RequirementsGrader().grade(Bundle(bundle), {}, GradeContext(
        template=Catalog(ROOT / "trial_templates").get("design-round")))
    by_id = {c.id: c for c in result.criteria}
    assert by_id["unknown.channels"].score == 1.0 and by_id["unknown.time_zones"].score == 1.0
    comment_refs = [r for r in by_id["unknown.time_zones"].evidence_refs if r.startswith("comment:")]
    assert len(comment_refs) == 2 and all("github" in r or "http" in r for r in comment_refs)
    assert by_id["unknown.defaults"].score == 1.0


def test_a_closed_trial_takes_no_question(tmp_path: Path) -> None:
    now = utcnow()
    trial = Trial("tclosed1", "design-round", "octocat", "none", "active", now, now, 1, 10,
                  deadline=now - timedelta(seconds=1))
    with pytest.raises(Exception, match="deadline passed"):
        questions.ask(tmp_path, None, trial, "Too late?")
    assert questions.read_log(tmp_path, "tclosed1") == []


def test_a_question_edited_later_counts_from_the_edit(world: GitHubWorld, tmp_path: Path) -> None:
    """Attack: ask something vague early as an issue comment, then edit every term into it after
    building started. The forge's record of the edit is the question's time."""
    forge, repo, _, _ = launched(world, tmp_path)
    issue_url = forge.open_issue(repo, "Hash the API keys", "Store digests, not keys.")
    now = utcnow()
    trial = Trial(TRIAL, "design-round", CANDIDATE, "none", "active", now, now, 1, 10,
                  deadline=now + timedelta(hours=1), data={"repo": repo.to_json(), "issue_url": issue_url})
    number = questions.issue_number(issue_url)
    assert number is not None
    issue = lazy_client(world, world.candidate_token).get_repo(repo.full_name).get_issue(number)
    comment = issue.create_comment("Hello, anything I should know?")
    world.fake.advance_clock(timedelta(minutes=30))
    comment.edit("Which channels at launch? SMS? Time zone? Defaults? Audit history?")
    [record] = questions.read_thread(tmp_path / "home", forge, trial).records
    assert record["text"].startswith("Which channels") and record["edited"] is True
    assert parse_ts(record["ts"]) == parse_ts(comment.updated_at.isoformat())
    assert parse_ts(record["ts"]) != parse_ts(comment.created_at.isoformat())



class _UnreadableIssue:
    """A forge whose issue comments cannot be read (GitHub down at collect)."""

    def issue_comments(self, repo: object, number: int) -> list[dict[str, object]]:
        from orchestrator.errors import ForgeError

        raise ForgeError("GitHub answered 502 reading the comments", "try again")


def test_unreadable_issue_comments_are_named_in_left_out(tmp_path: Path) -> None:
    now = utcnow()
    trial = Trial("tleft001", "design-round", "octocat", "none", "active", now, now, 1, 10,
                  deadline=now + timedelta(hours=1),
                  data={"repo": {"forge": "github", "name": "r", "full_name": "org/r", "web_url": "x"},
                        "issue_url": "https://github.example/org/r/issues/1"})
    questions.ask(tmp_path, None, trial, "Which channels?")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    got = questions.collect(tmp_path, _UnreadableIssue(), trial, bundle)  # type: ignore[arg-type]
    assert got["questions"] == 1 and "502" in got["left_out"][0]
