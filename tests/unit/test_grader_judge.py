"""The optional LLM judge, through the real gateway to the fake upstream on loopback.

The judge must quote its evidence: a score backed by a quote that is not in the material
is discarded. It is off by default, its cost is reported, and when it cannot be reached
that is reported as infrastructure, never as a score.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from graders.base import GradeContext
from graders.judge import JudgeConfig, quote_found
from graders.spec_quality import SpecQualityGrader
from graders.steering import SteeringGrader
from orchestrator.errors import ConfigError
from orchestrator.evidence.bundle import Bundle
from orchestrator.gateway.log import read_records
from tests.fakes.llm_upstream import FakeUpstream, Knobs
from tests.fixtures.bundle_builder import SESSIONS
from tests.integration.gateway_harness import Harness, running_gateway

pytestmark = pytest.mark.unit

REAL_QUOTE = "raises `CalcError`, never `ZeroDivisionError`"
MADE_UP = "all inputs are validated with a JSON schema"
VERDICT = {"acceptance": {"score": 4, "quotes": [REAL_QUOTE]},
           "constraints": {"score": 3, "quotes": [MADE_UP]},
           "completeness": {"score": 0, "quotes": []},
           "upfront": {"score": 2, "quotes": ["`2 + 3 * 4` -> terms [2, 12]"]},
           "summary": "Clear acceptance criteria."}


@pytest.fixture(scope="module")
def careful(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return Bundle(SESSIONS["careful"](tmp_path_factory.mktemp("careful")))


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    fake = FakeUpstream(knobs=Knobs(text="Here is my verdict:\n```json\n" + json.dumps(VERDICT) + "\n```"))
    with running_gateway(fake=fake) as harness:
        monkeypatch.setenv("TRIAL_JUDGE_TOKEN", harness.token)
        yield harness


def _options(url: str) -> dict:
    return {"judge": {"enabled": True, "url": url, "model": "claude-sonnet-5-5", "price_in_per_mtok": 3.0,
                      "price_out_per_mtok": 15.0}}


def test_judge_scores_only_what_it_can_quote_moves_a_bounded_amount_and_reports_its_cost(
        careful: Bundle, gateway: Harness) -> None:
    rules = {c.id: c.score for c in SpecQualityGrader().grade(careful, {"judge": {"enabled": False}},
                                                               GradeContext()).criteria}
    result = SpecQualityGrader().grade(careful, _options(gateway.gateway.url), GradeContext())
    scores = {c.id: c.score for c in result.criteria}
    dimensions = result.details["judge"]["dimensions"]
    assert dimensions["acceptance"]["quotes"] == [REAL_QUOTE] and dimensions["acceptance"]["agree"]
    # Its only constraints quote is nowhere in the material: scored 0, so it moves the rules' 4 down by
    # at most a quarter of the range, and the disagreement is shown.
    assert dimensions["constraints"]["judge"] == 0.0 and dimensions["constraints"]["rejected_quotes"] == [MADE_UP]
    assert dimensions["constraints"]["agree"] is False
    assert scores["constraints_honoured"] == rules["constraints_honoured"] - 0.5  # a quarter of its 2
    assert scores["rework_avoided"] == rules["rework_avoided"] - 1.0  # "completeness" 0: bounded too
    assert scores["upfront"] == rules["upfront"] - 1.0  # judged 2 of 4, moved by 1 at most
    assert scores["acceptance_checked"] == rules["acceptance_checked"]
    assert all(abs(scores[k] - rules[k]) <= 1.0 for k in rules)
    assert "agree with the rule-based signals" in result.details["judge"]["agreement"]
    spec_commit = next(c["sha"] for c in careful.commits() if c["message"].startswith("Add SPEC.md"))
    acceptance = next(c for c in result.criteria if c.id == "acceptance_checked")
    assert f"commit:{spec_commit}" in acceptance.evidence_refs
    usage = result.details["judge"]["usage"]
    assert usage["calls"] == 1 and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["cost_usd"] == pytest.approx((usage["input_tokens"] * 3 + usage["output_tokens"] * 15) / 1e6)
    # It went through the gateway: logged there, with the fixed rubric prompt and the material.
    [record] = read_records(gateway.log)  # requests whole, however the log stores them
    assert "review how clearly a software engineer specified" in record["request"]["system"]
    assert "Acceptance criteria" in record["request"]["messages"][0]["content"]


def test_a_key_makes_the_judge_the_primary_reader(careful: Bundle, gateway: Harness,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAL_JUDGE_URL", gateway.gateway.url)
    result = SpecQualityGrader().grade(careful, {}, GradeContext())  # no judge table: the key is enough
    assert result.details["judge"]["status"] == "ok"
    off = SpecQualityGrader().grade(careful, {"judge": {"enabled": False}}, GradeContext())
    assert off.details["judge"]["status"] == "not_done"


def test_without_prices_the_judge_reports_what_the_gateway_charged(careful: Bundle, gateway: Harness) -> None:
    options = {"judge": {"enabled": True, "url": gateway.gateway.url, "model": "claude-sonnet-5-5"}}
    result = SpecQualityGrader().grade(careful, options, GradeContext())
    [record] = read_records(gateway.log)  # requests whole, however the log stores them
    assert record["cost_usd"] > 0
    assert result.details["judge"]["usage"]["cost_usd"] == pytest.approx(record["cost_usd"], rel=1e-6)


def test_judge_relabels_intents_with_valid_codes_only(careful: Bundle, gateway: Harness) -> None:
    prompts = [i for i, e in enumerate(careful.events()) if e["kind"] == "user_prompt"]
    labels = {str(prompts[0]): ["3.1", "4.2"], str(prompts[1]): ["9.9"]}
    gateway.fake.knobs = Knobs(text=json.dumps({"labels": labels}))
    result = SteeringGrader().grade(careful, _options(gateway.gateway.url), GradeContext())
    turns = {t["index"]: t for t in result.details["turns"]}
    assert (turns[prompts[0]]["labels"], turns[prompts[0]]["source"]) == (["3.1", "4.2"], "llm")
    assert (turns[prompts[1]]["labels"][0], turns[prompts[1]]["source"]) == ("1.3", "rules")  # 9.9 is no code
    assert result.details["judge"]["rule_labels"][str(prompts[0])][0] == "1.1"


def test_without_a_key_the_report_says_the_semantic_reading_was_not_done(
        careful: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIAL_JUDGE_URL", raising=False)
    monkeypatch.delenv("TRIAL_JUDGE_TOKEN", raising=False)
    for grader in (SpecQualityGrader(), SteeringGrader()):
        result = grader.grade(careful, {}, GradeContext())
        assert result.details["judge"]["status"] == "not_done"
        assert "Semantic reading not done" in result.details["judge"]["note"]
    assert JudgeConfig.from_options({"judge": {"enabled": False}}) is None


def test_an_unreachable_judge_is_infrastructure_not_a_score(careful: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TRIAL_JUDGE_TOKEN", "trl_judge_token_for_the_test_0001")
    result = SpecQualityGrader().grade(careful, _options(f"http://127.0.0.1:{port}"), GradeContext())
    assert result.status == "ok"
    assert result.details["judge"]["status"] == "infra_error"
    assert "did not answer" in result.details["judge"]["error"]
    assert "trl_judge_token" not in json.dumps(result.details)


def test_judge_configuration_errors_name_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIAL_JUDGE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="TRIAL_JUDGE_TOKEN"):
        JudgeConfig.from_options({"judge": {"enabled": True, "url": "http://127.0.0.1:1"}}, env={})
    with pytest.raises(ConfigError, match=r"judge\.url"):
        JudgeConfig.from_options({"judge": {"enabled": True, "url": "ftp://x"}}, env={"TRIAL_JUDGE_TOKEN": "t"})
    config = JudgeConfig.from_options({"judge": {"enabled": True}},
                                      env={"TRIAL_JUDGE_URL": "http://127.0.0.1:9", "TRIAL_JUDGE_TOKEN": "secret-x"})
    assert config is not None and "secret-x" not in repr(config)


def test_quotes_must_be_verbatim_and_long_enough() -> None:
    material = "Division by zero raises CalcError,\n never ZeroDivisionError."
    assert quote_found("raises CalcError, never ZeroDivisionError", material)
    assert not quote_found("CalcError", material)  # too short to prove anything
    assert not quote_found("raises ValueError, never ZeroDivisionError", material)



def test_the_steering_judge_moves_criteria_a_bounded_amount_with_checked_quotes(careful: Bundle,
                                                                                gateway: Harness) -> None:
    rules = {c.id: c.score for c in SteeringGrader().grade(careful, {"judge": {"enabled": False}},
                                                            GradeContext()).criteria}
    verdict = {"review": {"score": 4, "quotes": ["Review the diff for edge cases"]},
               "claims_checked": {"score": 0, "quotes": []},
               "mistakes_caught": {"score": 4, "quotes": ["the candidate fixed every bug by hand"]},
               "summary": "Careful."}
    gateway.fake.knobs = Knobs(text=json.dumps(verdict))
    result = SteeringGrader().grade(careful, _options(gateway.gateway.url), GradeContext())
    scores = {c.id: c.score for c in result.criteria}
    judge = result.details["judge"]
    assert judge["status"] == "ok" and judge["usage"]["calls"] == 1
    assert scores["review"] == min(4.0, rules["review"] + 1.0)  # moved up by at most a quarter
    assert scores["claims_checked"] == rules["claims_checked"] - 1.0  # the judge's 0 pulls it down, bounded
    # The mistakes quote is nowhere in the session: scored 0, shown, and the disagreement reported.
    assert judge["dimensions"]["mistakes_caught"]["rejected_quotes"] == ["the candidate fixed every bug by hand"]
    assert judge["dimensions"]["mistakes_caught"]["agree"] is False
    assert set(scores) == set(rules) and all(abs(scores[k] - rules[k]) <= 1.0 for k in rules)
    assert "dimension(s) agree" in judge["agreement"]
