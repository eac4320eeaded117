"""The requirements grader on hand-built timelines: asks everything up front; asks nothing and
assumes; asks what the brief already said; a late question stuffed with every term; questions
only a transcript shows; an agent edit witnessed by the gateway starts the build."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from graders.base import GradeContext, GraderResult
from graders.registry import get_grader
from graders.requirements import RequirementsGrader
from orchestrator import questions
from orchestrator.catalog import Catalog
from orchestrator.evidence.bundle import Bundle, read_jsonl, write_jsonl
from tests.fixtures.bundle_builder import SessionBuilder, _iso, write

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
UNKNOWNS = ("channels", "quiet_hours_delivery", "time_zones", "defaults", "scale_latency", "audit")
GOOD_QUESTIONS = [
    "Which channels do we support at launch, and is SMS planned?",
    "In quiet hours, should a notification be dropped or delayed until they end?",
    "Are quiet hours in the user's local time zone?",
    "What are the defaults for a new user who never set anything?",
    "How many decisions per second at peak, and what latency can callers tolerate?",
    "Do we need an audit history of preference changes, and for how long?",
]


def context() -> GradeContext:
    return GradeContext(template=Catalog(ROOT / "trial_templates").get("design-round"))


def build(tmp_path: Path, asked: list[tuple[float, str, str]], *, code_at: float | None = 60,
          design: str | None = None, answer_each: bool = True) -> Path:
    """A session: questions (minute, text, witness), a code commit pushed at `code_at`, a PR with DESIGN.md."""
    session = SessionBuilder(tmp_path, trial_id="tdesign1", candidate="alice")
    if code_at is not None:
        session.human_write("prefs_decision.py", "def decide():\n    return True\n")
        session.commit(code_at - 1, "Decision endpoint")
        session.push(code_at)
    session.human_write("DESIGN.md", design or "# Design\n\nA preferences table and a decision endpoint.\n")
    session.commit(100, "Design document")
    session.push(101)
    session.open_pr(102, "Preferences service", "## Problem\nx\n")
    bundle = session.build(tmp_path / "bundle")
    records: list[dict[str, Any]] = []
    for number, (minute, text, witness) in enumerate(asked, start=1):
        ts = _iso(session.at(minute))
        records.append({"ts": ts, "kind": "question", "number": number, "text": text, "via": "sandbox",
                        "author": "alice", "witness": witness, "comment_url": f"http://forge/issue-1#c{number}"})
        if answer_each:
            records.append({"ts": _iso(session.at(minute + 0.5)), "kind": "answer", "question": number,
                            "text": f"answer {number}", "via": "cli", "author": "reviewer", "witness": "host",
                            "comment_url": f"http://forge/issue-1#a{number}"})
    write_jsonl(bundle / questions.QUESTIONS_FILE, records)
    write_jsonl(bundle / "events.jsonl", questions.merge_into(read_jsonl(bundle / "events.jsonl"), bundle))
    return bundle


def grade(bundle: Path) -> GraderResult:
    return RequirementsGrader().grade(Bundle(bundle), {}, context())


def scores(result: GraderResult) -> dict[str, float]:
    return {c.id: c.score for c in result.criteria}


def test_registered_and_says_what_it_trusts() -> None:
    assert isinstance(get_grader("requirements"), RequirementsGrader)


def test_asks_everything_up_front(tmp_path: Path) -> None:
    bundle = build(tmp_path, [(2 + i, q, "host") for i, q in enumerate(GOOD_QUESTIONS)])
    result = grade(bundle)
    assert result.status == "ok" and result.details["trusts"]
    assert scores(result) == {**{f"unknown.{u}": 1.0 for u in UNKNOWNS}, "brief_read": 1.0}
    assert result.score == result.max
    events = Bundle(bundle).events()
    channels = next(c for c in result.criteria if c.id == "unknown.channels")
    # Every finding cites the question and answer events and their issue comments.
    cited = [int(ref.split(":")[1]) for ref in channels.evidence_refs if ref.startswith("event:")]
    assert [events[i]["kind"] for i in cited] == ["question", "answer"]
    assert "comment:http://forge/issue-1#c1" in channels.evidence_refs
    assert "comment:http://forge/issue-1#a1" in channels.evidence_refs
    assert "asked before building" in channels.rationale


def test_asks_nothing_and_assumes(tmp_path: Path) -> None:
    design = ("# Design\n\n## Assumptions\n- Email and push only; SMS later.\n"
              "- Quiet hours are in UTC for now, not the user's time zone.\n\nThe rest is a table.\n")
    result = grade(build(tmp_path, [], design=design))
    got = scores(result)
    assert got["unknown.channels"] == 0.5 and got["unknown.time_zones"] == 0.5
    assert got["unknown.defaults"] == 0 and got["unknown.audit"] == 0
    assumed = next(c for c in result.criteria if c.id == "unknown.channels")
    assert assumed.rationale.startswith("not asked; assumed in the design document")
    assert assumed.evidence_refs == ["pr:1"]
    assert got["brief_read"] == 1.0


def test_asks_what_the_brief_already_said(tmp_path: Path) -> None:
    asked = [(2, "Should security notifications bypass quiet hours and opt-outs?", "host"),
             (3, "Which language and framework should the prototype use?", "host"),
             (4, GOOD_QUESTIONS[0], "host")]
    result = grade(build(tmp_path, asked))
    got = scores(result)
    assert got["brief_read"] == 0.5
    assert got["unknown.channels"] == 1.0
    brief = next(c for c in result.criteria if c.id == "brief_read")
    assert "2 question(s) the brief already answered" in brief.rationale
    assert len([r for r in brief.evidence_refs if r.startswith("event:")]) == 4  # two questions, two answers
    assert "comment:http://forge/issue-1#c1" in brief.evidence_refs


def test_a_late_question_stuffed_with_every_term_earns_no_asked_before_building(tmp_path: Path) -> None:
    stuffed = ("Channels at launch, SMS, in-app, webhooks? Drop or delay in quiet hours? Time zone, UTC, DST? "
               "Defaults for new users, opt-in, GDPR? Scale, latency, p99, per second, outage? Audit history, "
               "retention, unsubscribe?")
    result = grade(build(tmp_path, [(90, stuffed, "host")], code_at=60))
    unknown = [c for c in result.criteria if c.id.startswith("unknown.")]
    assert all(c.score < c.max for c in unknown)
    assert all("asked before building" not in c.rationale for c in unknown)
    # One question earns credit for at most two unknowns, whatever it mentions.
    assert sum(1 for c in unknown if c.score > 0) <= 2
    assert sum(c.score for c in unknown) <= 2 * 0.25
    listed = result.details["questions"][0]
    assert len(listed["mentions"]) == len(UNKNOWNS) and listed["before_building"] is False
    # The same question asked up front is still one question: two unknowns at most.
    early = grade(build(tmp_path / "early", [(2, stuffed, "host")], code_at=60))
    assert sum(1 for c in early.criteria if c.id.startswith("unknown.") and c.score > 0) == 2


def test_questions_only_a_transcript_shows_are_listed_not_scored(tmp_path: Path) -> None:
    bundle = build(tmp_path, [(2 + i, q, "transcript") for i, q in enumerate(GOOD_QUESTIONS)])
    result = grade(bundle)
    assert all(c.score == 0 for c in result.criteria if c.id.startswith("unknown."))
    assert len(result.details["not_scored"]) == len(GOOD_QUESTIONS)
    assert all(item["scored"] is False for item in result.details["not_scored"])


def test_a_forge_witnessed_question_counts(tmp_path: Path) -> None:
    result = grade(build(tmp_path, [(2, GOOD_QUESTIONS[2], "forge")]))
    assert scores(result)["unknown.time_zones"] == 1.0


def test_a_gateway_witnessed_agent_edit_starts_the_build(tmp_path: Path) -> None:
    session = SessionBuilder(tmp_path, trial_id="tdesign2", candidate="alice")
    session.prompt(1, "Build the decision endpoint")
    session.reply(2, "Writing it.", [write("prefs/decision.py", "def decide():\n    return True\n")])
    bundle = session.build(tmp_path / "bundle")
    write_jsonl(bundle / questions.QUESTIONS_FILE, [
        {"ts": _iso(session.at(5)), "kind": "question", "number": 1, "text": GOOD_QUESTIONS[2], "via": "sandbox",
         "author": "alice", "witness": "host"}])
    write_jsonl(bundle / "events.jsonl", questions.merge_into(read_jsonl(bundle / "events.jsonl"), bundle))
    result = grade(bundle)
    assert result.details["building_started_by"].startswith("event:")
    assert scores(result)["unknown.time_zones"] == 0.25


def test_without_the_reviewer_file_it_is_skipped(tmp_path: Path) -> None:
    bundle = build(tmp_path, [])
    result = RequirementsGrader().grade(Bundle(bundle), {}, GradeContext())
    assert result.status == "skipped"
    broken = tmp_path / "broken.toml"
    broken.write_text("[[unknown]]\nid = 'x'\n")
    result = RequirementsGrader().grade(Bundle(bundle), {"questions": str(broken)}, GradeContext())
    assert result.status == "infra_error" and "field 'unknown.0.title'" in result.summary


def test_question_events_carry_their_witness_into_the_timeline(tmp_path: Path) -> None:
    bundle = build(tmp_path, [(2, GOOD_QUESTIONS[0], "host")])
    kinds = [(e["kind"], e["witness"], e["source"]) for e in Bundle(bundle).events()
             if e["kind"] in ("question", "answer")]
    assert kinds == [("question", "host", "host"), ("answer", "host", "host")]
    assert json.loads((bundle / questions.QUESTIONS_FILE).read_text().splitlines()[0])["number"] == 1


def test_one_assumption_line_stuffed_with_every_term_is_one_assumption(tmp_path: Path) -> None:
    """Attack: an Assumptions section of one line naming every unknown's terms."""
    design = ("# Design\n\n## Assumptions\n- Channels at launch incl. SMS; delay in quiet hours; UTC time zone; "
              "defaults opt-in; scale 2000 per second; audit history kept.\n")
    result = grade(build(tmp_path, [], design=design))
    assumed = [c for c in result.criteria if c.id.startswith("unknown.") and c.score > 0]
    assert len(assumed) == 1 and assumed[0].score == 0.5


def test_the_question_channel_is_capped_per_trial(tmp_path: Path) -> None:
    from datetime import timedelta

    from orchestrator.errors import UsageError
    from orchestrator.store import Trial, utcnow

    now = utcnow()
    trial = Trial("tflood01", "design-round", "alice", "none", "active", now, now, 1, 10,
                  deadline=now + timedelta(hours=1))
    for index in range(questions.MAX_QUESTIONS):
        questions.ask(tmp_path, None, trial, f"question {index}?")
    with pytest.raises(UsageError, match="limit"):
        questions.ask(tmp_path, None, trial, "one more?")
    assert len(questions.read_log(tmp_path, "tflood01")) == questions.MAX_QUESTIONS


def test_a_question_after_the_deadline_is_shown_not_scored(tmp_path: Path) -> None:
    """Attack: build nothing, then ask everything as issue comments after time ran out (before collect)."""
    bundle = build(tmp_path, [(200 + i, q, "forge") for i, q in enumerate(GOOD_QUESTIONS)], code_at=None)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["trial"]["deadline"] = _iso(datetime(2025, 3, 3, 12, 0, tzinfo=UTC))  # 180 minutes after START
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = grade(bundle)
    assert all(c.score == 0 for c in result.criteria if c.id.startswith("unknown."))
    assert [item["why"] for item in result.details["not_scored"]] == ["asked after the deadline"] * 6
