"""Steering and spec quality: the careful session beats the agent-only one, citing the events why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.spec_quality import SpecQualityGrader
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import SESSIONS, SessionBuilder

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    return {name: Bundle(build(tmp_path_factory.mktemp(name))) for name, build in SESSIONS.items()}


def _grade(grader: SteeringGrader | SpecQualityGrader, bundle: Bundle) -> GraderResult:
    result = grader.grade(bundle, {}, GradeContext())
    assert result.status == "ok"
    return result


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def test_careful_steers_better_than_agent_only_and_cites_why(bundles: dict[str, Bundle]) -> None:
    careful = _grade(SteeringGrader(), bundles["careful"])
    lazy = _grade(SteeringGrader(), bundles["agent-only"])
    assert careful.fraction is not None and lazy.fraction is not None
    assert careful.fraction > 0.75
    assert lazy.fraction < 0.1
    events = bundles["careful"].events()
    # The outcome, not the words: a failing run after the agent's edit, the false claim, the
    # candidate stepping in, and the passing run that followed.
    caught = _criterion(careful, "mistakes_caught")
    assert caught.score == caught.max
    cited = {int(ref.split(":")[1]) for ref in caught.evidence_refs}
    assert {"tool_result", "user_prompt"} <= {events[i]["kind"] for i in cited}
    assert any(events[i]["text"].startswith("That's not true") for i in cited)
    assert any("6 passed" in events[i]["text"] for i in cited)
    claim = _criterion(careful, "claims_checked")
    assert claim.score == claim.max and "after a failing run" in claim.rationale
    assert _criterion(careful, "scope").score == 2.0  # the rejected write to calc/__init__.py
    # The lazy session: the agent's unbacked "Done! Everything works" was shipped untested.
    assert _criterion(lazy, "claims_checked").score == 0
    assert "accepted" in _criterion(lazy, "claims_checked").rationale
    assert _criterion(lazy, "review").score == 0
    assert all(c.id != "mistakes_caught" for c in lazy.criteria)  # no mistake surfaced: not scored either way


def test_steering_details_carry_profile_episodes_and_measures(bundles: dict[str, Bundle]) -> None:
    details = _grade(SteeringGrader(), bundles["careful"]).details
    assert details["profile"]["turns"] == 4
    assert details["profile"]["categories"]["Code Authoring"]["turns"] == 3
    assert [e["resolution"] for e in details["episodes"]] == ["corrected", "corrected"]
    measures = details["measures"]
    assert measures["user_turns"] == 4 and measures["sessions"] == 1
    assert measures["time_to_first_prompt_s"] == 600
    assert len(measures["rejected_tool_uses"]) == 1 and len(measures["corrections_after_failure"]) == 1
    assert measures["test_runs"] == {"total": 2, "failed": 1, "passed": 1}
    assert measures["lines"]["agent_edited"] == 1 and measures["lines"]["no_logged_origin"] > 0
    gateway = [json.loads(line) for line in bundles["careful"].file("gateway.jsonl").read_text().splitlines()]
    assert measures["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in gateway))
    assert [t["labels"][0] for t in details["turns"]] == ["1.1", "1.3", "1.3", "5.1"]


def test_forged_transcript_prompts_earn_nothing(bundles: dict[str, Bundle]) -> None:
    spoof = _grade(SteeringGrader(), bundles["spoofing"])
    assert len(spoof.details["excluded_prompts"]) == 1
    assert spoof.fraction is not None and spoof.fraction < 0.2
    assert "missing from the gateway" in spoof.summary
    listed = spoof.details["transcript_only"]
    assert any(item["index"] == spoof.details["excluded_prompts"][0] and not item["scored"] for item in listed)
    spec = _grade(SpecQualityGrader(), bundles["spoofing"])
    assert spec.score == 0 and spec.details["excluded_prompts"] == spoof.details["excluded_prompts"]


def test_empty_session_scores_zero(bundles: dict[str, Bundle]) -> None:
    assert _grade(SteeringGrader(), bundles["empty"]).score == 0
    assert _grade(SpecQualityGrader(), bundles["empty"]).score == 0


def test_careful_specifies_better_than_agent_only_and_cites_why(bundles: dict[str, Bundle]) -> None:
    careful = _grade(SpecQualityGrader(), bundles["careful"])
    lazy = _grade(SpecQualityGrader(), bundles["agent-only"])
    assert careful.fraction is not None and careful.fraction > 0.9 and lazy.fraction == 0.0
    spec_commit = next(c["sha"] for c in bundles["careful"].commits() if c["message"].startswith("Add SPEC.md"))
    upfront = _criterion(careful, "upfront")
    assert upfront.evidence_refs == [f"commit:{spec_commit}"]
    for name in ("calc/ops.py", "CalcError"):  # names of code that exist in the starter
        assert name in careful.details["references"]
    for word in ("tokenize", "evaluate"):  # identifiers, but plain words too: naming them specifies nothing
        assert word not in careful.details["references"]
    # Acceptance items the spec named were checked by the tests that shipped.
    assert 'evaluate("1 / 0")' in careful.details["acceptance_checked"]
    events = bundles["careful"].events()
    constraints = _criterion(careful, "constraints_honoured")
    assert "leave calc/__init__.py alone" in constraints.rationale and "broken" not in constraints.rationale
    cited = [int(r.split(":")[1]) for r in constraints.evidence_refs if r.startswith("event:")]
    assert cited and all(events[i]["kind"] == "user_prompt" for i in cited)
    assert "left to guess" in _criterion(lazy, "upfront").rationale
    assert careful.details["judge"]["status"] == "not_done" and "not done" in careful.details["judge"]["note"]


def test_a_transcript_without_any_gateway_log_is_not_scored(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-no-log")
    s.prompt(1, "Read SPEC.md first. Implement * in calc/ops.py. Don't change calc/__init__.py.")
    s.reply(2, "Sure.")
    s.gateway.clear()  # the log never made it into the bundle (or the agent bypassed the gateway)
    bundle = Bundle(s.build())
    for grader in (SteeringGrader(), SpecQualityGrader()):
        result = grader.grade(bundle, {}, GradeContext())
        assert result.status == "infra_error" and result.fraction is None
        assert "no gateway log" in result.summary


def test_a_trial_without_an_agent_is_not_scored_on_steering_or_spec(tmp_path: Path) -> None:
    session = SessionBuilder(tmp_path / "s", trial_id="tnoagent1", agent="none")
    session.human_write("calc/extra.py", "VALUE = 1\n")
    session.commit(5, "Add a value")
    session.push(6)
    bundle = Bundle(session.build())
    for grader in (SteeringGrader(), SpecQualityGrader()):
        result = grader.grade(bundle, {}, GradeContext())
        assert result.status == "skipped" and "No coding agent" in result.summary
