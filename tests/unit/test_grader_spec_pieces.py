"""Spec quality for specs given piece by piece, on hand-built timelines (issue 12, session 18).

What the agent had been told before each of its edits is the spec, in plain words or code terms
alike: a candidate who has the work done in pieces and says in plain words what each must do is
judged by what those words led to (pieces never sent back for something they had not said, and
what shipped passes the brief's hidden tests), never by their vocabulary. Items the agent put
forward itself and the candidate only approved ("sha256 is fine") are not the candidate's spec;
naming a file is not saying what it should do; a correction that repeats what the agent had been
told is the agent straying, not a gap in the spec. Honest work keeps what it earned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.spec_quality import SpecQualityGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, CAREFUL_TESTS, SessionBuilder, bash, edit, write

pytestmark = pytest.mark.unit

OLD_TEST = '        evaluate("1 +")\n'
PASSING = "......\n6 passed in 0.03s"
FLOORED = CAREFUL_OPS.replace("        return left / right", "        return left // right")
ZERO_OLD = '    if op == "/":\n        return left / right'
ZERO_NEW = '    if op == "/":\n        if right == 0:\n            raise CalcError("division by zero")\n' \
           '        return left / right'
STUFFING = (" Requirements: robust, production-grade, secure by default, thoroughly tested, edge cases handled, "
            "acceptance criteria met, best practices, `robust` `production-grade`.")
HIDDEN_TEST = "hidden_tests/test_hidden.py::test_division_by_zero"


def _hidden(passed: bool) -> GradeContext:
    outcome = "passed" if passed else "failed"
    return GradeContext(results={"hidden_tests": GraderResult("hidden_tests", details={"fail_to_pass": {
        "total": 2, "passed": 2 if passed else 1,
        "outcomes": {HIDDEN_TEST: outcome, "hidden_tests/test_hidden.py::test_precedence": "passed"}}})})


def _grade(bundle: Bundle, context: GradeContext | None = None) -> GraderResult:
    result = SpecQualityGrader().grade(bundle, {}, context or GradeContext())
    assert result.status == "ok", result.summary
    return result


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def _scores(result: GraderResult) -> list[tuple[str, float, str]]:
    return [(c.id, c.score, c.rationale) for c in result.criteria]


def _run(s: SessionBuilder, minute: float, output: str = PASSING) -> None:
    [run] = s.reply(minute, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(minute + 0.1, run, output)


def _plain_words_pieces(root: Path, *, stuffed: bool = False) -> Bundle:
    """s20's shape on calc: no spec up front; the work done in pieces, each read and corrected in
    plain words that name no code; the last piece comes with tests the agent runs green."""
    extra = STUFFING if stuffed else ""
    s = SessionBuilder(root, trial_id="t-pieces-stuffed" if stuffed else "t-pieces")
    s.prompt(1, "Hi! Could you take on the issue in small pieces? First piece: only the arithmetic part. "
                "Stop there and tell me when it's ready." + extra)
    [ops] = s.reply(2, "Writing the arithmetic.", [write("calc/ops.py", FLOORED)])
    s.tool_result(2.1, ops, "File written")
    s.reply(3, "The first piece is ready.")
    s.prompt(4, "I read it, and dividing seven by two gives three there; people expect three and a half, as a "
                "pocket calculator shows. Could you change that?" + extra)
    [fix] = s.reply(5, "Changing it.", [edit("calc/ops.py", "        return left // right",
                                              "        return left / right")])
    s.tool_result(5.1, fix, "File updated")
    s.reply(6, "Done.")
    s.prompt(7, "Thanks. One more thing: dividing by nothing lets the language's own error escape to whoever "
                "called us. It should come back as the same error bad input gets. Please add tests that try "
                "exactly that and show me them passing." + extra)
    zero, tests = s.reply(8, "Adding the check and the tests.", [
        edit("calc/ops.py", ZERO_OLD, ZERO_NEW), edit("tests/test_calc.py", OLD_TEST, OLD_TEST + CAREFUL_TESTS)])
    s.tool_result(8.1, zero, "File updated")
    s.tool_result(8.2, tests, "File updated")
    _run(s, 9)
    s.reply(10, "They pass.")
    s.commit(11, "Add * and / to calc.evaluate")
    s.push(12)
    return Bundle(s.build())


def test_a_spec_given_piece_by_piece_in_plain_words_counts_by_what_it_led_to(tmp_path: Path) -> None:
    result = _grade(_plain_words_pieces(tmp_path), _hidden(True))
    pieces = result.details["pieces"]
    assert [p["prompt"] for p in pieces] == ["event:0", "event:5", "event:10"]
    # The first piece was taken back out after a prompt that brought what it had not said.
    assert pieces[0]["revised_by"] == "event:5" and pieces[0]["left_open"]
    assert [p["as_told"] for p in pieces] == [False, True, True]
    upfront, acceptance = _criterion(result, "upfront"), _criterion(result, "acceptance_checked")
    assert upfront.score == 2.0 and "2 of 3 piece(s)" in upfront.rationale, _scores(result)
    assert "piece by piece" in upfront.rationale
    assert acceptance.score == 2.0 and acceptance.evidence_refs == ["event:10"], _scores(result)
    rework = _criterion(result, "rework_avoided")
    assert rework.score == 3.0 and "event:5" in rework.evidence_refs, _scores(result)  # one round left open
    assert result.fraction is not None and result.fraction >= 0.35, _scores(result)


def test_pieces_that_shipped_what_the_brief_rejects_earn_nothing(tmp_path: Path) -> None:
    # The same words, but what shipped fails a must-pass hidden test: the pieces were accepted,
    # not built as told. Nothing to show the words said what to build.
    result = _grade(_plain_words_pieces(tmp_path), _hidden(False))
    assert not any(p["as_told"] for p in result.details["pieces"])
    assert result.score == 0.0, _scores(result)


def test_rubric_words_added_to_plain_pieces_move_the_score_by_at_most_the_bound(tmp_path: Path) -> None:
    plain = _grade(_plain_words_pieces(tmp_path / "plain"), _hidden(True))
    stuffed = _grade(_plain_words_pieces(tmp_path / "stuffed", stuffed=True), _hidden(True))
    assert plain.fraction is not None and stuffed.fraction is not None
    assert abs(stuffed.fraction - plain.fraction) <= 0.05, (_scores(plain), _scores(stuffed))


def _approval(root: Path, *, who_first: str) -> Bundle:
    """The agent offers a choice and the candidate approves it, or the candidate states it first."""
    s = SessionBuilder(root, trial_id=f"t-approve-{who_first}")
    if who_first == "agent":
        s.prompt(1, "pls do the issue")
        s.reply(2, 'One choice first: should `evaluate("7 / 2") == 3.5` or floor it? I would return 3.5.')
        s.prompt(3, '`evaluate("7 / 2") == 3.5` is fine')
    else:
        s.prompt(1, 'pls do the issue; `evaluate("7 / 2") == 3.5`')
        s.reply(2, "Going ahead.")
        s.prompt(3, "ok")
    ops, tests = s.reply(4, "Writing it.", [write("calc/ops.py", CAREFUL_OPS),
                                            edit("tests/test_calc.py", OLD_TEST, OLD_TEST + CAREFUL_TESTS)])
    s.tool_result(4.1, ops, "File written")
    s.tool_result(4.2, tests, "File updated")
    s.commit(6, "Add * and /")
    s.push(7)
    return Bundle(s.build())


def test_approving_what_the_agent_proposed_is_not_the_candidates_spec(tmp_path: Path) -> None:
    approved = _grade(_approval(tmp_path / "agent", who_first="agent"))
    stated = _grade(_approval(tmp_path / "candidate", who_first="candidate"))
    assert 'evaluate("7 / 2") == 3.5' in approved.details["echoed_from_the_agent"]
    assert approved.details["spec_items"] == [] and approved.score == 0.0, _scores(approved)
    # Honest: the same words said before the agent offered them are the candidate's requirement.
    assert 'evaluate("7 / 2") == 3.5' in stated.details["spec_items"]
    assert _criterion(stated, "upfront").score >= 1.0 and stated.score > approved.score, _scores(stated)


def test_naming_a_file_without_saying_what_it_should_do_specifies_nothing(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-file-only")
    s.prompt(1, "Update calc/ops.py for the issue.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(2.1, ops, "File written")
    s.commit(3, "Add * and /")
    s.push(4)
    result = _grade(Bundle(s.build()))
    assert result.details["references"] == ["calc/ops.py"]
    assert _criterion(result, "upfront").score == 0.0, _scores(result)


def test_a_scope_line_and_an_only_new_dependency_line_are_checkable_constraints(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-scope")
    s.human_write("SPEC.md", "# Design note\n\nScope: calc/, tests/. This note stays out of the PR.\n\n"
                             '- `evaluate("7 / 2") == 3.5`\n- `evaluate("2 + 3 * 4") == 14`\n'
                             "- Only new dependency: cryptography.\n")
    s.commit(0.5, "Design note")
    s.push(0.6)
    s.prompt(1, "SPEC.md is my design note; implement it.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS),
                                            edit("tests/test_calc.py", OLD_TEST, OLD_TEST + CAREFUL_TESTS)])
    s.tool_result(2.1, ops, "File written")
    s.tool_result(2.2, tests, "File updated")
    s.commit(3, "Add * and /")
    s.push(4)
    result = _grade(Bundle(s.build()))
    honoured = result.details["constraints"]["honoured"]
    assert "only change calc/, tests/" in honoured and "no new dependency besides cryptography" in honoured
    assert _criterion(result, "constraints_honoured").score == 2.0, _scores(result)


def test_only_new_dependency_none_is_the_stock_phrase_and_earns_nothing_when_honoured(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-dep-none")
    s.prompt(1, 'Implement * and / in calc/ops.py: `evaluate("7 / 2") == 3.5`. Only new dependency: none.')
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(2.1, ops, "File written")
    s.commit(3, "Add * and /")
    s.push(4)
    result = _grade(Bundle(s.build()))
    assert result.details["constraints"] == {"honoured": [], "broken": []}, result.details["constraints"]


def test_a_correction_repeating_the_spec_in_its_own_words_is_the_agent_straying_not_a_gap(tmp_path: Path) -> None:
    rule = "dividing by zero raises the calculator's own error rather than the language's"
    s = SessionBuilder(tmp_path, trial_id="t-repeat")
    s.prompt(1, 'Implement * and / in calc/ops.py: `evaluate("7 / 2") == 3.5`, `evaluate("2 + 3 * 4") == 14`, '
                f"and {rule}.")
    sloppy = CAREFUL_OPS.replace("        return left / right",
                                 "        return left / right if right else float('inf')")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", sloppy)])
    s.tool_result(2.1, ops, "File written")
    s.reply(3, "Done.")
    s.prompt(4, f"Please read my first message again: {rule}. Not infinity.")
    [fix] = s.reply(5, "Fixing.", [edit("calc/ops.py", "        return left / right if right else float('inf')",
                                        '        if right == 0:\n            raise CalcError("division by zero")\n'
                                        "        return left / right")])
    s.tool_result(5.1, fix, "File updated")
    s.commit(6, "Add * and /")
    s.push(7)
    result = _grade(Bundle(s.build()), _hidden(True))
    [correction] = [p["revised_by"] for p in result.details["pieces"] if p["revised_by"]]
    assert [f"event:{i}" for i in result.details["deviations_from_spec"]] == [correction]
    assert result.details["rework_rounds"] == []
    assert _criterion(result, "rework_avoided").score == 4.0, _scores(result)


def _corrected(root: Path, *, right: bool) -> Bundle:
    """A vague start, then an instruction in code terms after the agent built: right (true
    division, as the brief wants) or wrong (talking the agent into floor division)."""
    s = SessionBuilder(root, trial_id=f"t-corrected-{right}")
    s.prompt(1, "do the issue")
    start = FLOORED if right else CAREFUL_OPS
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", start)])
    s.tool_result(2.1, ops, "File written")
    s.reply(3, "Done.")
    wanted, old, new = (("left / right", "left // right", "left / right") if right
                        else ("left // right", "left / right", "left // right"))
    s.prompt(4, f"`_apply` must compute `{wanted}` for /, and `tokenize_strict()` must reject blanks.")
    [fix] = s.reply(5, "Changing it.", [edit("calc/ops.py", f"        return {old}", f"        return {new}")])
    s.tool_result(5.1, fix, "File updated")
    s.commit(6, "Add * and /")
    s.push(7)
    return Bundle(s.build())


def test_an_instruction_that_led_to_work_the_hidden_tests_reject_specified_nothing(tmp_path: Path) -> None:
    wrong = _grade(_corrected(tmp_path / "wrong", right=False), _hidden(False))
    right = _grade(_corrected(tmp_path / "right", right=True), _hidden(True))
    assert wrong.details["spec_items"] == [] and wrong.score == 0.0, _scores(wrong)
    # Honest: the same kind of instruction that led to the work the brief wanted is a requirement.
    assert "left / right" in right.details["spec_items"], right.details["spec_items"]
    assert right.score > wrong.score


def test_the_planted_defect_named_up_front_is_a_requirement_that_makes_named_files_count(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-defect-named")
    s.prompt(1, "Before you build on calc/ops.py: find out what division by zero does there, and make it fail "
                "the way bad input fails.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS.replace(ZERO_OLD, ZERO_NEW)),
                                            edit("tests/test_calc.py", OLD_TEST, OLD_TEST + CAREFUL_TESTS)])
    s.tool_result(2.1, ops, "File written")
    s.tool_result(2.2, tests, "File updated")
    s.commit(3, "Add * and /")
    s.push(4)
    bundle = Bundle(s.build())
    defect = {"keywords": [r"division by zero"], "tests": [HIDDEN_TEST]}
    # No hidden-test result: the pieces cannot show what the words led to; the named defect can.
    named = SpecQualityGrader().grade(bundle, {"defect": defect}, GradeContext())
    plain = SpecQualityGrader().grade(bundle, {}, GradeContext())
    assert _criterion(named, "defect_specified").score == 4.0
    assert _criterion(named, "upfront").score > _criterion(plain, "upfront").score, (_scores(named),
                                                                                     _scores(plain))
    assert _criterion(named, "rework_avoided").score > 0.0, _scores(named)


def test_do_the_brief_then_continue_is_no_spec_given_in_pieces_even_when_the_agent_got_it_right(
        tmp_path: Path) -> None:
    # The agent builds it right in two pieces; the candidate only says "do the issue" and "continue":
    # nothing the candidate said changed the work, so the pieces show no telling at all.
    s = SessionBuilder(tmp_path, trial_id="t-continue")
    s.prompt(1, "do the issue")
    [ops] = s.reply(2, "Writing the arithmetic.", [write("calc/ops.py", CAREFUL_OPS.replace(ZERO_OLD, ZERO_NEW))])
    s.tool_result(2.1, ops, "File written")
    s.reply(3, "Arithmetic done; tests next?")
    s.prompt(4, "continue")
    [tests] = s.reply(5, "Adding tests.", [edit("tests/test_calc.py", OLD_TEST, OLD_TEST + CAREFUL_TESTS)])
    s.tool_result(5.1, tests, "File updated")
    _run(s, 6)
    s.commit(7, "Add * and /")
    s.push(8)
    result = _grade(Bundle(s.build()), _hidden(True))
    assert len(result.details["pieces"]) == 2
    assert result.score == 0.0, _scores(result)


class _Usage:
    def to_json(self) -> dict[str, object]:
        return {"input_tokens": 1, "output_tokens": 1}


class _Config:
    model = "scripted"


def _with_judge(monkeypatch: pytest.MonkeyPatch, verdict: dict[str, object]) -> None:
    from graders import spec_quality

    monkeypatch.setattr(spec_quality, "configured", lambda options, details: _Config())
    monkeypatch.setattr(spec_quality, "consult", lambda config, system, user, details: (verdict, _Usage()))


def _readme_only(root: Path) -> Bundle:
    s = SessionBuilder(root, trial_id="t-readme-only")
    s.prompt(1, "Plan the change for the issue carefully and write the plan into the README, nothing else.")
    [plan] = s.reply(2, "Writing the plan.", [edit("README.md", s.read("README.md").splitlines()[0],
                                                    s.read("README.md").splitlines()[0] + "\n\nPlan: * and /.")])
    s.tool_result(2.1, plan, "File updated")
    s.commit(3, "Plan")
    s.push(4)
    return Bundle(s.build())


def test_the_judge_cannot_raise_spec_quality_for_words_that_shaped_nothing_of_the_brief(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A careful reader may like the words; the outcomes show they led to nothing of the brief
    # (every must-pass hidden test fails), so the judge's reading may lower, never raise.
    quote = "Plan the change for the issue carefully"
    _with_judge(monkeypatch, {"upfront": {"score": 4, "quotes": [quote]},
                              "completeness": {"score": 4, "quotes": [quote]}})
    nothing = GradeContext(results={"hidden_tests": GraderResult("hidden_tests", details={"fail_to_pass": {
        "total": 1, "passed": 0, "outcomes": {HIDDEN_TEST: "failed"}}})})
    result = _grade(_readme_only(tmp_path), nothing)
    assert result.details["judge"]["status"] == "ok"
    assert _criterion(result, "upfront").score == 0.0 and result.score == 0.0, _scores(result)


def test_the_judge_still_moves_spec_quality_for_words_that_shaped_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quote = "dividing seven by two gives three there"
    rules = _grade(_plain_words_pieces(tmp_path / "rules"), _hidden(True))
    _with_judge(monkeypatch, {"upfront": {"score": 4, "quotes": [quote]}})
    judged = _grade(_plain_words_pieces(tmp_path / "judged"), _hidden(True))
    assert _criterion(judged, "upfront").score == _criterion(rules, "upfront").score + 1.0
