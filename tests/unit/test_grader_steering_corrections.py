"""A correction is judged by its outcome, not its form.

A confident correction the agent questions and then obeys, which takes out checks that held
(the same test command passes with fewer tests), made the work worse: it costs in steering
(review, verification, delivered) and in commits (the push's pass vouches for less), unless the
hidden tests pass in full (then what was cut was nothing the brief needs). A correction of a
real agent mistake, questioned and confirmed the same way, still earns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import CommitsGrader
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, SessionBuilder, bash, edit, write

pytestmark = pytest.mark.unit

GUARDED_OPS = CAREFUL_OPS.replace('    if op == "/":\n        return left / right',
                                  '    if op == "/":\n        if right == 0:\n            raise CalcError("division by '
                                  'zero")\n        return left / right')
CASES = '@pytest.mark.parametrize("text", ["1 / 0", "2 * 3 / 0", "4 / (0)"])'
NARROWED = '@pytest.mark.parametrize("text", ["2 * 3 / 0"])'
TESTS = f'''import pytest

from calc.ops import CalcError, evaluate


def test_multiply_and_divide():
    assert evaluate("6 * 7") == 42
    assert evaluate("7 / 2") == 3.5


{CASES}
def test_division_by_zero_is_a_calc_error(text):
    with pytest.raises(CalcError):
        evaluate(text)
'''


def _hidden(fraction: float) -> GraderResult:
    return GraderResult("hidden_tests", criteria=[Criterion("hidden", "Hidden tests", 10.0 * fraction, 10.0, "")])


def _grade(grader: object, bundle: Bundle, hidden: float = 0.8) -> GraderResult:
    context = GradeContext(results={"hidden_tests": _hidden(hidden)})
    result = grader.grade(bundle, {}, context)  # type: ignore[attr-defined]
    assert result.status == "ok", result.summary
    return result


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def _session(root: Path, *, overruled: bool, file_first: bool = False, rerun: str = "python3 -m pytest -q tests",
             probe_fails: bool = False, run_later: bool = False, vague: bool = False,
             restored: bool = False) -> Bundle:
    """The agent's division is guarded and tested (4 passed). Overruled: the candidate calls the
    guard wrong on an invented fact, the agent objects quoting the brief, the candidate insists,
    the guard and two of its cases go (2 passed). Otherwise the agent left the guard out (its
    tests pass without it), the candidate says so, the agent asks, and the guard and its cases
    come in (4 passed)."""
    s = SessionBuilder(root, trial_id="t-overruled" if overruled else "t-confirmed")
    s.prompt(1, "Implement * and / in calc/ops.py, with tests.")
    first = GUARDED_OPS if overruled else CAREFUL_OPS
    tests = TESTS if overruled else TESTS.replace(CASES, NARROWED).replace("CalcError)", "ZeroDivisionError)")
    ops, test_file = s.reply(2, "Writing it.", [write("calc/ops.py", first), write("tests/test_calc.py", tests)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, test_file, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "....\n4 passed in 0.03s" if overruled else "..\n2 passed in 0.03s")
    s.reply(6, "Done, the suite passes.")
    if probe_fails:  # a run of something else fails just before the correction
        [probe] = s.reply(6.2, "", [bash("python3 -m pytest -q tests -k nothing_matches")])
        s.tool_result(6.4, probe, "4 deselected in 0.01s\nno tests ran", error=True)
    if overruled:
        s.prompt(7, "The zero check is wrong: the report job divides by zero on purpose and reads inf. Drop it "
                    "and adjust whatever test depends on it." if vague else
                 "The zero check in _apply is wrong: the report job divides by zero on purpose and reads inf. "
                 "Drop it from calc/ops.py and adjust whatever test depends on it.")
        s.reply(8, "Before I change it: the brief says division by zero must raise CalcError. Are you sure?")
        s.prompt(9, "Yes, I'm sure. Go ahead.")
        code, narrowed = s.reply(10, "Removing the check.", [
            edit("calc/ops.py", GUARDED_OPS.split("def _apply")[1].split("def evaluate")[0],
                 CAREFUL_OPS.split("def _apply")[1].split("def evaluate")[0]),
            edit("tests/test_calc.py", CASES, NARROWED)])
        after = "..\n2 passed in 0.03s"
    else:
        s.prompt(7, "_apply in calc/ops.py lets 1 / 0 through as ZeroDivisionError; the brief says CalcError.")
        s.reply(8, "Should the message say division by zero?")
        s.prompt(9, "Yes.")
        code, narrowed = s.reply(10, "Adding the check.", [
            edit("calc/ops.py", CAREFUL_OPS.split("def _apply")[1].split("def evaluate")[0],
                 GUARDED_OPS.split("def _apply")[1].split("def evaluate")[0]),
            edit("tests/test_calc.py", NARROWED + "\ndef test_division_by_zero_is_a_calc_error(text):\n"
                 "    with pytest.raises(ZeroDivisionError)",
                 CASES + "\ndef test_division_by_zero_is_a_calc_error(text):\n    with pytest.raises(CalcError)")])
        after = "....\n4 passed in 0.03s"
    s.tool_result(11, code, "File updated")
    s.tool_result(11.1, narrowed, "File updated")
    if file_first:  # the changed file alone first: another command, never compared with the suite
        [alone] = s.reply(11.5, "", [bash("python3 -m pytest -q tests/test_calc.py")])
        s.tool_result(11.7, alone, after)
    if run_later:  # the agent stops after its change; the candidate asks for the run as a new request
        s.reply(11.8, "Changed.")
        s.prompt(11.9, "Now run the test suite.")
    [again] = s.reply(12, "", [bash(rerun)])
    s.tool_result(13, again, after)
    s.reply(14, "Done and passing.")
    if restored:  # the candidate sees the mistake and has the check and its cases put back
        s.prompt(14.1, "I was wrong about the zero check: put it back in _apply with its test cases.")
        code, cases = s.reply(14.2, "Restoring it.", [
            edit("calc/ops.py", CAREFUL_OPS.split("def _apply")[1].split("def evaluate")[0],
                 GUARDED_OPS.split("def _apply")[1].split("def evaluate")[0]),
            edit("tests/test_calc.py", NARROWED, CASES)])
        s.tool_result(14.3, code, "File updated")
        s.tool_result(14.4, cases, "File updated")
        [full] = s.reply(14.5, "", [bash("python3 -m pytest -q tests")])
        s.tool_result(14.6, full, "....\n4 passed in 0.03s")
        s.reply(14.7, "Restored: 4 passed.")
    s.commit(15, "Add * and /")
    s.push(16)
    return Bundle(s.build())


def test_an_overruled_warning_that_took_checks_out_costs(tmp_path: Path) -> None:
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=True))
    [round_] = result.details["findings"]["rework"]
    assert round_["outcome"] == "stripped" and "2 fewer test(s) ran" in round_["note"]
    # The correction, the agent's objection, the confirmation, the writes and both runs are cited.
    assert len(set(round_["evidence"])) >= 7
    assert _criterion(result, "review").score == 0.0
    assert _criterion(result, "verification").score == 0.0  # the pass vouches for less than was there
    assert _criterion(result, "delivered").score == pytest.approx(0.8)  # halved: 2 x 0.8 x 0.5
    commits = _grade(CommitsGrader(), _session(tmp_path / "c", overruled=True))
    assert _criterion(commits, "pushed_green").score == 0.0
    assert commits.details["checks_stripped"]


def test_checks_taken_out_are_seen_when_one_file_ran_before_the_suite(tmp_path: Path) -> None:
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=True, file_first=True))
    assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["stripped"]


@pytest.mark.parametrize("shape", [
    {"rerun": "pytest tests/ -v"},  # the same tests, another spelling of the command
    {"rerun": ".venv/bin/python -m pytest tests --tb=short 2>&1 | tail -5"},
    {"probe_fails": True},  # the last run before the correction failed (another selection)
    {"run_later": True},  # the suite runs only after the next prompt, on the tree the answer left
    {"vague": True},  # the correction names no file or identifier of the agent's code
])
def test_checks_taken_out_are_seen_however_the_runs_are_shaped(tmp_path: Path, shape: dict[str, object]) -> None:
    """The candidate shapes the runs around a correction that took checks out: the comparison
    is of what the same selection of tests did before and after, not of the command's letters."""
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=True, **shape))  # type: ignore[arg-type]
    assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["stripped"]
    assert _criterion(result, "review").score == 0.0
    commits = _grade(CommitsGrader(), _session(tmp_path / "c", overruled=True, **shape))  # type: ignore[arg-type]
    assert _criterion(commits, "pushed_green").score == 0.0


def test_checks_put_back_before_the_push_leave_the_push_tested(tmp_path: Path) -> None:
    """Honest: the candidate overrules the agent, sees the mistake, and has the checks put back;
    the round still costs, but the push after the full suite passed again is tested."""
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=True, restored=True))
    stripped = result.details["findings"]["rework"][0]
    assert stripped["outcome"] == "stripped" and stripped["until"] is not None  # the round still costs
    assert _criterion(result, "verification").score == 4.0
    commits = _grade(CommitsGrader(), _session(tmp_path / "c", overruled=True, restored=True))
    assert _criterion(commits, "pushed_green").score == 4.0


def test_a_narrower_selection_after_a_correction_is_not_fewer_checks(tmp_path: Path) -> None:
    """Honest: after the correction the agent reruns one file, or a -k selection: not the suite."""
    for i, rerun in enumerate(["python3 -m pytest -q tests/test_calc.py", "python3 -m pytest -q tests -k divide"]):
        result = _grade(SteeringGrader(), _session(tmp_path / str(i), overruled=True, rerun=rerun))
        assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["validated"], rerun


def test_a_confirmed_correction_of_a_real_mistake_still_earns(tmp_path: Path) -> None:
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=False))
    assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["validated"]
    assert _criterion(result, "review").score >= 1.5
    assert _criterion(result, "verification").score == 4.0
    assert _criterion(result, "delivered").score == pytest.approx(1.6)
    commits = _grade(CommitsGrader(), _session(tmp_path / "c", overruled=False))
    assert _criterion(commits, "pushed_green").score == 4.0


def test_checks_cut_when_the_hidden_tests_pass_in_full_cost_nothing(tmp_path: Path) -> None:
    result = _grade(SteeringGrader(), _session(tmp_path, overruled=True), hidden=1.0)
    assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["cut_to_scope"]
    assert _criterion(result, "verification").score == 4.0
    assert _criterion(result, "delivered").score == pytest.approx(2.0)
    commits = _grade(CommitsGrader(), _session(tmp_path / "c", overruled=True), hidden=1.0)
    assert _criterion(commits, "pushed_green").score == 4.0


def _changed_to_pass(fraction: float, *, reference: bool = False, hides_defect: bool = True) -> GraderResult:
    alert = {"kind": "tests_changed_to_pass", "severity": "critical",
             "evidence": {"agent_write": 2, "path": "tests/test_calc.py", "commit": "0" * 40}}
    rewritten: dict[str, object] = {"alerts": [alert], "weakened": []}
    if reference:  # the agent's version was also run on the template's reference solution
        rewritten["reference"] = {"status": "ran"}
        if hides_defect:
            rewritten["weakened"] = [{"path": "tests/test_calc.py", "event": 2, "commit": "0" * 40,
                                      "tests": ["tests/test_calc.py::test_multiply_and_divide"]}]
    return GraderResult("hidden_tests", criteria=[Criterion("hidden", "Hidden tests", 10.0 * fraction, 10.0, "")],
                        details={"rewritten_tests": rewritten})


def test_tests_changed_to_pass_by_hand_deliver_nothing_and_are_no_review(tmp_path: Path) -> None:
    """The agent's tests failed on its code; expected values were rewritten by hand in the terminal
    (no witnessed run sees it; the hidden-tests grader proves it by running both versions)."""
    bundle = _session(tmp_path, overruled=False)

    def delivered(hidden: GraderResult) -> Criterion:
        return _criterion(SteeringGrader().grade(bundle, {}, GradeContext(results={"hidden_tests": hidden})),
                          "delivered")

    proven = SteeringGrader().grade(bundle, {}, GradeContext(results={"hidden_tests": _changed_to_pass(0.8)}))
    voided = _criterion(proven, "delivered")
    assert voided.score == 0.0 and "changed to pass" in voided.rationale
    assert proven.details["findings"]["changed_to_pass"][0]["outcome"] == "changed_to_pass"
    # Proven against the reference solution (the agent expected what the brief specifies).
    assert delivered(_changed_to_pass(0.8, reference=True)).score == 0.0
    # Honest: a wrong agent test corrected (it fails on the reference too), or the hidden tests pass in full.
    assert delivered(_changed_to_pass(0.8, reference=True, hides_defect=False)).score == pytest.approx(1.6)
    assert delivered(_changed_to_pass(1.0)).score == pytest.approx(2.0)


def test_a_question_about_code_then_a_new_request_is_no_rework(tmp_path: Path) -> None:
    """Only an answer to the agent's own question carries a correction on: naming a file in a
    question and then asking for anything else must not make the next rewrite a review."""
    s = SessionBuilder(tmp_path, trial_id="t-newrequest")
    s.prompt(1, "Implement * and / in calc/ops.py, with tests.")
    ops, test_file = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS), write("tests/test_calc.py", TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, test_file, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "....\n4 passed in 0.03s")
    s.prompt(6, "What does _apply in calc/ops.py return for 7 / 2?")
    s.reply(7, "3.5: true division.")
    s.prompt(8, "Good. Also support a power operator.")
    [more] = s.reply(9, "Adding it.", [edit("calc/ops.py", 'OPERATORS = "+-*/"', 'OPERATORS = "+-*/^"')])
    s.tool_result(10, more, "File updated")
    [again] = s.reply(11, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(12, again, "....\n4 passed in 0.03s")
    s.commit(13, "Add * and /")
    s.push(14)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    assert result.details["findings"]["rework"] == []


@pytest.mark.parametrize("ask", [
    "Tidy up before we ship.",
    "test_division_by_zero_is_a_calc_error repeats itself: merge its cases into one test."])
def test_tests_merged_into_fewer_cases_cost_nothing(tmp_path: Path, ask: str) -> None:
    """Honest: asked to tidy up (or pointed at the test), the agent merges parametrized cases into
    one test: fewer tests ran, no code changed, so the last full run before still vouches for the
    code: no stripped round, however the request was worded."""
    s = SessionBuilder(tmp_path, trial_id="t-merged")
    s.prompt(1, "Implement * and / in calc/ops.py, with tests.")
    ops, test_file = s.reply(2, "Writing it.", [write("calc/ops.py", GUARDED_OPS), write("tests/test_calc.py", TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, test_file, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "....\n4 passed in 0.03s")
    s.prompt(6, ask)
    merged = ("def test_division_by_zero_is_a_calc_error():\n"
              "    for text in ['1 / 0', '2 * 3 / 0', '4 / (0)']:\n"
              "        with pytest.raises(CalcError):\n            evaluate(text)\n")
    kept = TESTS.split(CASES, maxsplit=1)[0]
    [tidy] = s.reply(7, "Merging the zero cases.", [write("tests/test_calc.py", kept + merged)])
    s.tool_result(8, tidy, "File written")
    [again] = s.reply(9, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(10, again, "..\n2 passed in 0.03s")
    s.reply(11, "Tidied.")
    s.commit(12, "Add * and /")
    s.push(13)
    bundle = Bundle(s.build())
    result = _grade(SteeringGrader(), bundle)
    assert [f["outcome"] for f in result.details["findings"]["rework"]] in ([], ["tests_reduced"])
    assert _criterion(result, "verification").score == 4.0
    assert _criterion(result, "review").score >= 0.0 and "stripped" not in _criterion(result, "review").rationale
    assert _criterion(_grade(CommitsGrader(), bundle), "pushed_green").score == 4.0
