"""Spec quality and steering from outcomes, on hand-built timelines: the attacks first, then paraphrases.

Issue 12 (calibration, H2): a spec is judged by what reached the agent before it built and what
that made unnecessary (the planted defect named up front, requirements the work carries), never
by its vocabulary; a PR section resting on a claim the verified results contradict pays nothing;
pushback answered by rewriting a test file without its assertions is no review. Each signal is
also tested with wording the calibration corpus does not use (a SPEC.md the agent is pointed at,
rubric words such as "robust" and "production-grade", Codex's apply_patch).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.outcomes import CLAIM
from graders.pull_request import PullRequestGrader
from graders.spec_quality import SpecQualityGrader
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, CAREFUL_TESTS, SessionBuilder, _Tool, bash, edit, write

pytestmark = pytest.mark.unit

OLD = '        evaluate("1 +")\n'
PASSING = "......\n6 passed in 0.03s"
SPEC = ("# SPEC\n- `evaluate(\"2 + 3 * 4\") == 14`\n- `evaluate(\"7 / 2\") == 3.5`\n"
        "- `evaluate(\"1 / 0\")` raises `CalcError`: division by zero must never escape as ZeroDivisionError\n"
        "- Add the tests to tests/test_calc.py.\n")
DEFECT = {"keywords": [r"division by zero"], "tests": ["hidden_tests/test_hidden.py::test_division_by_zero"]}


def _grade(grader: object, bundle: Bundle, options: dict[str, object] | None = None,
           context: GradeContext | None = None) -> GraderResult:
    result = grader.grade(bundle, options or {}, context or GradeContext())  # type: ignore[attr-defined]
    assert result.status == "ok", result.summary
    return result


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def read(path: str) -> _Tool:
    return _Tool("Read", {"file_path": f"/workspace/{path}"})


def patch_add(path: str, content: str) -> _Tool:
    """Codex's apply_patch writing a whole file (`*** Add File:`), over an existing one or not."""
    body = "".join(f"+{line}\n" for line in content.splitlines())
    return _Tool("apply_patch", {"input": f"*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\n"},
                 (path, "", content))


def _build_and_test(s: SessionBuilder, minute: float) -> None:
    ops, tests = s.reply(minute, "Writing it.", [write("calc/ops.py", CAREFUL_OPS),
                                                 edit("tests/test_calc.py", OLD, OLD + CAREFUL_TESTS)])
    s.tool_result(minute + 0.1, ops, "File written")
    s.tool_result(minute + 0.2, tests, "File updated")
    [run] = s.reply(minute + 1, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(minute + 1.1, run, PASSING)
    s.reply(minute + 2, "6 passed.")


# ----- attacks -------------------------------------------------------------------------------------

def _spec_file_session(root: Path, how: str, name: str = "SPEC.md") -> Bundle:
    """The same SPEC.md: pushed first, pointed at (the agent reads it first), or written afterwards."""
    s = SessionBuilder(root, trial_id=f"t-spec-{how}")
    if how == "pushed":
        s.human_write("SPEC.md", SPEC)
        s.commit(0.5, "Add SPEC.md")
        s.push(0.6)
    if how == "pointed":
        s.human_write(name, SPEC)  # written in the sandbox, not pushed: the agent's read shows it
        s.prompt(1, f"Implement what {name} says.")
        [look] = s.reply(1.5, "Reading the spec.", [read(name)])
        s.tool_result(1.6, look, "\n".join(f"{n:>6}→{line}" for n, line in enumerate(SPEC.splitlines(), 1)))
    else:
        s.prompt(1, "Implement * and / in calc/ops.py.")
    _build_and_test(s, 2)
    if how == "afterwards":
        s.human_write("SPEC.md", SPEC)  # the work described after the fact
    s.commit(10, "Add * and / to calc.evaluate")
    s.push(11)
    return Bundle(s.build())


def test_a_spec_file_written_after_the_work_shaped_nothing(tmp_path: Path) -> None:
    after = _grade(SpecQualityGrader(), _spec_file_session(tmp_path / "after", "afterwards"))
    pushed = _grade(SpecQualityGrader(), _spec_file_session(tmp_path / "pushed", "pushed"))
    assert _criterion(pushed, "upfront").score == 4.0
    assert _criterion(after, "upfront").score <= 1.0, _criterion(after, "upfront").rationale
    assert _criterion(after, "acceptance_checked").score == 0.0
    assert after.fraction is not None and pushed.fraction is not None and after.fraction < pushed.fraction - 0.4


@pytest.mark.parametrize("name", ["SPEC.md", "NOTES.md", "acceptance.txt"])
def test_a_spec_file_the_agent_was_pointed_at_and_read_first_is_the_spec(tmp_path: Path, name: str) -> None:
    pointed = _grade(SpecQualityGrader(), _spec_file_session(tmp_path, "pointed", name))
    upfront = _criterion(pointed, "upfront")
    assert upfront.score == 4.0 and "the agent read it" in upfront.rationale
    assert upfront.evidence_refs and upfront.evidence_refs[0].startswith("event:")
    assert 'evaluate("1 / 0")' in pointed.details["acceptance_checked"]


STUFFING = ("Requirements: robust, production-grade, enterprise-ready, secure by default, thoroughly tested, "
            "battle-tested. Handle all edge cases and corner cases, full test coverage, best practices, clean "
            "architecture, SOLID, idiomatic, maintainable, scalable, performant, observable. `robust` "
            "`production-grade` `edge cases` `thoroughly tested`. Definition of done: every acceptance criterion "
            "met, nothing broken, 100% coverage.")


def _stuffable(root: Path, *, stuffed: bool) -> Bundle:
    s = SessionBuilder(root, trial_id="t-robust" if stuffed else "t-plain")
    if stuffed:
        s.human_write("SPEC.md", "# Spec\n\n" + STUFFING + "\n")
        s.commit(0.5, "Spec")
        s.push(0.6)
    s.prompt(1, "Implement * and / in calc/ops.py: `evaluate(\"7 / 2\") == 3.5`."
             + (" " + STUFFING if stuffed else ""))
    _build_and_test(s, 2)
    s.prompt(5, "push it" + (". " + STUFFING if stuffed else ""))
    s.reply(6, "Pushing.")
    s.commit(7, "Add * and / to calc.evaluate")
    s.push(8)
    return Bundle(s.build())


@pytest.mark.parametrize("grader", [SpecQualityGrader(), SteeringGrader()], ids=lambda g: g.name)
def test_new_rubric_words_in_prompts_and_a_spec_file_move_no_score_by_more_than_the_bound(
        tmp_path: Path, grader: object) -> None:
    plain = _grade(grader, _stuffable(tmp_path / "plain", stuffed=False))
    stuffed = _grade(grader, _stuffable(tmp_path / "stuffed", stuffed=True))
    assert plain.fraction is not None and stuffed.fraction is not None
    assert abs(stuffed.fraction - plain.fraction) <= 0.05, (
        [(c.id, c.score) for c in plain.criteria], [(c.id, c.score) for c in stuffed.criteria])


def _defect_spec(root: Path, when: str) -> Bundle:
    s = SessionBuilder(root, trial_id=f"t-dspec-{when}")
    first = "Implement * and / in calc/ops.py."
    if when == "spec":
        first += " Division by zero must raise CalcError, never ZeroDivisionError."
    s.prompt(1, first)
    _build_and_test(s, 2)
    if when == "later":
        s.prompt(6, "And division by zero: make it raise CalcError.")
        [fix] = s.reply(7, "Done.", [edit("calc/ops.py", "        return left / right",
                                          "        if right == 0:\n            raise CalcError('zero')\n"
                                          "        return left / right")])
        s.tool_result(7.1, fix, "File updated")
    s.commit(10, "Add * and /")
    s.push(11)
    return Bundle(s.build())


def _hidden(passed: bool) -> GradeContext:
    outcome = "passed" if passed else "failed"
    return GradeContext(results={"hidden_tests": GraderResult("hidden_tests", details={"fail_to_pass": {
        "total": 4, "passed": 4 if passed else 3, "outcomes": {DEFECT["tests"][0]: outcome}}})})


def test_the_spec_that_names_the_planted_defect_before_the_agent_builds_earns_and_a_later_catch_does_not(
        tmp_path: Path) -> None:
    options = {"defect": DEFECT}
    up_front = _grade(SpecQualityGrader(), _defect_spec(tmp_path / "a", "spec"), options, _hidden(True))
    later = _grade(SpecQualityGrader(), _defect_spec(tmp_path / "b", "later"), options, _hidden(True))
    shipped = _grade(SpecQualityGrader(), _defect_spec(tmp_path / "c", "spec"), options, _hidden(False))
    assert _criterion(up_front, "defect_specified").score == 4.0
    assert _criterion(up_front, "defect_specified").evidence_refs == ["event:0"]
    assert _criterion(later, "defect_specified").score == 0.0  # steering's catch, not the spec's
    assert _criterion(shipped, "defect_specified").score == 1.0  # named, yet it shipped
    # Without a planted defect in the template the criterion is not there at all.
    assert all(c.id != "defect_specified" for c in _grade(SpecQualityGrader(), _defect_spec(tmp_path / "d",
                                                                                               "spec")).criteria)


def test_a_question_with_no_work_behind_it_is_no_spec(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-question")
    s.prompt(1, "How does calc/ops.py handle CalcError today? Just explain.")
    s.reply(2, "It raises CalcError for unknown operators.")
    s.human_write("README.md", s.read("README.md") + "\nTODO: * and /\n")
    s.commit(3, "Add TODO")
    s.push(4)
    result = _grade(SpecQualityGrader(), Bundle(s.build()))
    assert result.score == 0.0, [(c.id, c.score, c.rationale) for c in result.criteria]
    assert "built nothing" in _criterion(result, "upfront").rationale


def test_plain_words_the_starter_defines_are_not_references(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-words")
    s.prompt(1, "Please evaluate and tokenize things properly, see the issue.")
    _build_and_test(s, 2)
    s.commit(5, "Add * and /")
    s.push(6)
    result = _grade(SpecQualityGrader(), Bundle(s.build()))
    assert result.details["references"] == []
    assert _criterion(result, "upfront").score == 0.0


# ----- pushback answered by rewriting the tests without their assertions ---------------------------

@pytest.mark.parametrize("tool", ["claude", "codex"])
def test_pushback_answered_by_rewriting_a_test_file_without_its_assertions_is_no_review(
        tmp_path: Path, tool: str) -> None:
    s = SessionBuilder(tmp_path, trial_id=f"t-rewrite-{tool}")
    s.prompt(1, "Implement * and / in calc/ops.py with tests.")
    full = s.read("tests/test_calc.py") + CAREFUL_TESTS
    whole = write if tool == "claude" else patch_add
    ops, tests = s.reply(2, "Writing it.", [whole("calc/ops.py", CAREFUL_OPS), whole("tests/test_calc.py", full)])
    s.tool_result(2.1, ops, "File written")
    s.tool_result(2.2, tests, "File written")
    [run] = s.reply(3, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(3.1, run, PASSING)
    s.reply(4, "6 passed.")
    s.prompt(5, "test_division_by_zero_is_a_calc_error is pointless, drop it from tests/test_calc.py.")
    dropped = full.replace('    with pytest.raises(CalcError):\n        evaluate("1 / 0")\n', "    pass\n")
    [again] = s.reply(6, "Dropping it.", [whole("tests/test_calc.py", dropped)])
    s.tool_result(6.1, again, "File written")
    [rerun] = s.reply(7, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(7.1, rerun, "......\n6 passed in 0.03s")
    s.commit(8, "Add * and /")
    s.push(9)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    rework = result.details["findings"]["rework"]
    assert [f["outcome"] for f in rework] == ["weakened"], rework
    assert _criterion(result, "review").score == 0.0


# ----- claims, in words the corpus does not use ---------------------------------------------------

@pytest.mark.parametrize("text", [
    "Implemented: hashing, rotation and scopes, with tests.",
    "Everything in the issue is implemented and the acceptance criteria are addressed.",
    "All edge cases are covered.", "This is production-ready.", "Good to go!", "Ready to merge."])
def test_an_agents_success_claim_in_other_words_is_a_claim(text: str) -> None:
    assert CLAIM.search(text), text


def _claiming_pr(root: Path, testing: str, approach: str) -> Bundle:
    s = SessionBuilder(root, trial_id="t-claim-pr")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(2.1, ops, "File written")
    s.commit(3, "Add * and /")
    s.push(4)
    s.open_pr(5, "Add * and /", f"## Problem\ncalc.evaluate handled only + and -, the brief asks for * and /.\n\n"
                                f"## Approach\n{approach}\n\n## Trade-offs\nNo parentheses: the brief does not ask "
                                f"for them and a parser would change far more code.\n\n## Testing\n{testing}\n")
    return Bundle(s.build())


@pytest.mark.parametrize("claim", [
    "Implemented every acceptance criterion and constraint, two passes over the tokens as in tokenize.",
    "A production-grade two-pass evaluator over the tokens, robust and thoroughly tested everywhere.",
    "Two passes over the tokens; all edge cases are handled by the second pass over the terms."])
def test_an_approach_resting_on_a_claim_the_hidden_tests_contradict_pays_nothing(tmp_path: Path,
                                                                                  claim: str) -> None:
    honest = "Two passes over the tokens: the first folds * and / into terms, the second adds them up."
    failing = GradeContext(results={"hidden_tests": GraderResult("hidden_tests", details={"fail_to_pass": {
        "total": 22, "passed": 17}})})
    plain = _grade(PullRequestGrader(), _claiming_pr(tmp_path / "plain", "Not run yet.", honest), context=failing)
    claimed = _grade(PullRequestGrader(), _claiming_pr(tmp_path / "claimed", "Not run yet.", claim),
                     context=failing)
    assert _criterion(plain, "approach").score > 0  # scaled by the 17/22 progress (graders.pull_request)
    assert _criterion(claimed, "approach").score == 0.0 and "contradict" in _criterion(claimed, "approach").rationale
    assert _criterion(claimed, "claims").score == 0.0
    assert claimed.fraction is not None and plain.fraction is not None and claimed.fraction < plain.fraction - 0.2


# ----- questions the agent had to ask -------------------------------------------------------------

def _asked(root: Path, answer: str) -> Bundle:
    s = SessionBuilder(root, trial_id="t-asked")
    s.prompt(1, "Implement * and / in calc/ops.py: `evaluate(\"2 + 3 * 4\") == 14`, `evaluate(\"7 / 2\") == 3.5`, "
                "tests in tests/test_calc.py.")
    [ops] = s.reply(2, "Writing the multiplication.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(2.1, ops, "File written")
    s.reply(3, "Multiplication is in. How should division by zero behave?")
    s.prompt(4, answer)
    [tests] = s.reply(5, "Adding tests.", [edit("tests/test_calc.py", OLD, OLD + CAREFUL_TESTS)])
    s.tool_result(5.1, tests, "File updated")
    [run] = s.reply(6, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(6.1, run, PASSING)
    s.commit(8, "Add * and /")
    s.push(9)
    return Bundle(s.build())


def test_a_question_the_spec_left_open_costs_and_a_go_ahead_does_not(tmp_path: Path) -> None:
    opened = _grade(SpecQualityGrader(), _asked(tmp_path / "open", "It must raise `CalcError`, never "
                                                                    "ZeroDivisionError."))
    go_ahead = _grade(SpecQualityGrader(), _asked(tmp_path / "go", "Yes, go ahead, whatever you think."))
    assert opened.details["rework_rounds"] and _criterion(opened, "rework_avoided").score == 3.0
    assert not go_ahead.details["rework_rounds"] and _criterion(go_ahead, "rework_avoided").score == 4.0
    assert go_ahead.details["questions_answered_without_a_new_requirement"]


@pytest.mark.parametrize("config", [("pytest.ini", "[pytest]\naddopts = --deselect tests/test_calc.py::test_x\n"),
                                    ("conftest.py", "collect_ignore = ['tests/test_calc.py']\n")])
def test_tests_taken_out_of_the_run_by_configuration_are_weakened(tmp_path: Path, config: tuple[str, str]) -> None:
    from graders.commits import CommitsGrader

    s = SessionBuilder(tmp_path, trial_id="t-deselect")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    _build_and_test(s, 2)
    s.human_write(*config)
    s.commit(8, "Add * and /")
    s.push(9)
    tests = _criterion(_grade(CommitsGrader(), Bundle(s.build())), "tests")
    assert tests.score == 0.0 and "skip marker" in tests.rationale, tests.rationale


def test_a_correction_naming_the_agents_primitive_as_prose_spells_it_is_review(tmp_path: Path) -> None:
    """"Not a bare SHA-256" points at `hashlib.sha256(...)` in the agent's code; "looks fine" does not."""
    def session(root: Path, answer: str) -> Bundle:
        s = SessionBuilder(root, trial_id="t-prose")
        s.prompt(1, "Add calc/digest.py with a keyed digest of the expression text.")
        [first] = s.reply(2, "Writing it.", [write("calc/digest.py", "import hashlib\n\n\ndef digest(text, key):\n"
                                                                      "    return hashlib.sha256(text.encode())"
                                                                      ".hexdigest()\n")])
        s.tool_result(2.1, first, "File written")
        s.prompt(3, answer)
        [second] = s.reply(4, "Rewriting it.", [write("calc/digest.py", "import hashlib\nimport hmac\n\n\n"
                                                                        "def digest(text, key):\n    return hmac.new("
                                                                        "key, text.encode(), hashlib.sha256)"
                                                                        ".hexdigest()\n")])
        s.tool_result(4.1, second, "File written")
        [run] = s.reply(5, "", [bash("python3 -m pytest -q tests")])
        s.tool_result(5.1, run, PASSING)
        s.reply(5.5, "6 passed.")  # the next request carries the run's result to the gateway
        s.commit(6, "Add a keyed digest")
        s.push(7)
        return Bundle(s.build())

    review = _grade(SteeringGrader(), session(tmp_path / "a", "Not a bare SHA-256: key it with an HMAC."))
    accepted = _grade(SteeringGrader(), session(tmp_path / "b", "Looks fine, carry on with the rest."))
    assert [f["outcome"] for f in review.details["findings"]["rework"]] == ["validated"]
    assert _criterion(review, "review").score > 0
    assert review.details["findings"]["rework"] and not accepted.details["findings"]["rework"]


def test_a_defect_the_agent_named_and_that_shipped_anyway_earns_steering_nothing(tmp_path: Path) -> None:
    from tests.unit.test_grader_outcomes import DEFECT as CALC_DEFECT
    from tests.unit.test_grader_outcomes import _defect_session

    failing = GraderResult("hidden_tests", details={"fail_to_pass": {"total": 4, "passed": 3, "outcomes": {
        CALC_DEFECT["tests"][0]: "failed"}}})
    context = GradeContext(results={"hidden_tests": failing})
    followed = _grade(SteeringGrader(), _defect_session(tmp_path / "agent", "agent"), {"defect": CALC_DEFECT}, context)
    first = _grade(SteeringGrader(), _defect_session(tmp_path / "cand", "candidate"), {"defect": CALC_DEFECT}, context)
    assert _criterion(followed, "defect").score == 0.0  # the agent said it, the candidate answered, it shipped
    assert _criterion(first, "defect").score == 1.0  # the candidate saw it first: a quarter, since it shipped
