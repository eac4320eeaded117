"""Outcome signals on hand-built sessions, and the attacks on them.

Each test scripts a session with the bundle builder (real git, a hash-chained gateway log,
the events an agent parser emits) and checks what the graders make of it: mistakes caught
or accepted, claims checked, pushes tested, forged transcript lines, backdated commits,
shell-written agent code, false PR claims, weakened tests, and keyword stuffing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import CommitsGrader
from graders.intents import TurnLabels, classify
from graders.provenance import ProvenanceGrader
from graders.pull_request import PullRequestGrader
from graders.pushback import find_episodes, verified_prompts
from graders.spec_quality import SpecQualityGrader
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import (
    CAREFUL_OPS,
    CAREFUL_TESTS,
    SessionBuilder,
    _Tool,
    bash,
    bash_write,
    edit,
    write,
)

pytestmark = pytest.mark.unit


def read(path: str) -> _Tool:
    """Claude Code's Read tool: the result shows the file with line numbers."""
    return _Tool("Read", {"file_path": f"/workspace/{path}"})

BROKEN_OPS = CAREFUL_OPS.replace('    if op == "/":\n        return left / right',
                                 '    if op == "/":\n        return left // right')
FAILING = ("F.....\nFAILED tests/test_calc.py::test_multiply_and_divide - assert 3 == 3.5\n"
           "1 failed, 5 passed in 0.03s")
PASSING = "......\n6 passed in 0.03s"
TESTS_OLD = '        evaluate("1 +")\n'
PR_BODY = """## Problem
calc.evaluate handled only + and -, the brief asks for * and / with precedence.

## Approach
Two passes over the tokens, the first folds * and / into terms, the second adds them up.

## Trade-offs
No parentheses: the brief does not ask for them and a parser would change far more code.

## Testing
{testing}
"""


def _grade(grader: object, bundle: Bundle, context: GradeContext | None = None) -> GraderResult:
    result = grader.grade(bundle, {}, context or GradeContext())  # type: ignore[attr-defined]
    assert result.status == "ok", result.summary
    return result


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def _has(result: GraderResult, ident: str) -> bool:
    return any(c.id == ident for c in result.criteria)


def _mistake_session(root: Path, *, caught: bool) -> Bundle:
    """The agent's division is wrong and the tests say so; the candidate catches it, or ships it."""
    s = SessionBuilder(root, trial_id="t-caught" if caught else "t-shipped")
    s.prompt(1, "Implement * and / in calc/ops.py with precedence; 7 / 2 must be 3.5.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", BROKEN_OPS),
                                            edit("tests/test_calc.py", TESTS_OLD, TESTS_OLD + CAREFUL_TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, tests, "File updated")
    [run] = s.reply(4, "Running the tests.", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, FAILING, error=True)
    if caught:
        s.reply(6, "Done: the implementation is complete.")
        s.prompt(7, "It fails: assert 3 == 3.5 in test_multiply_and_divide. Division must be true division.")
        [fix] = s.reply(8, "Fixing _apply.", [edit("calc/ops.py", "left // right", "left / right")])
        s.tool_result(9, fix, "File updated")
        [again] = s.reply(10, "", [bash("python3 -m pytest -q tests")])
        s.tool_result(11, again, PASSING)
        s.reply(12, "All 6 tests pass.")
    else:
        s.reply(6, "Done: the implementation is complete.")
        s.prompt(7, "ok")
        s.reply(8, "Great.")
    s.commit(13, "Add * and / to calc.evaluate")
    s.push(14)
    s.open_pr(15, "Add * and /", PR_BODY.format(testing="All tests pass (6 passed), run with pytest -q tests."))
    return Bundle(s.build())


def test_a_mistake_caught_earns_and_one_shipped_costs(tmp_path: Path) -> None:
    caught = _grade(SteeringGrader(), _mistake_session(tmp_path / "a", caught=True))
    shipped = _grade(SteeringGrader(), _mistake_session(tmp_path / "b", caught=False))
    assert _criterion(caught, "mistakes_caught").score == 4.0
    assert _criterion(shipped, "mistakes_caught").score == 0.0
    assert "accepted" in _criterion(shipped, "mistakes_caught").rationale
    # "Done" after a failing run: caught in one session, accepted against the evidence in the other.
    assert _criterion(caught, "claims_checked").score == 4.0
    assert _criterion(shipped, "claims_checked").score == 0.0
    assert "accepted against a failing run" in _criterion(shipped, "claims_checked").rationale
    assert _criterion(caught, "verification").score == 4.0
    assert _criterion(shipped, "verification").score == 0.0  # pushed while the last run failed
    assert caught.fraction is not None and shipped.fraction is not None
    assert caught.fraction > shipped.fraction + 0.5
    findings = shipped.details["findings"]["pushes"]
    assert findings[0]["outcome"] == "pushed_failing"


def test_a_false_pr_claim_costs_and_never_pays(tmp_path: Path) -> None:
    shipped = _mistake_session(tmp_path / "b", caught=False)
    caught = _mistake_session(tmp_path / "a", caught=True)
    false = _grade(PullRequestGrader(), shipped)
    true = _grade(PullRequestGrader(), caught)
    assert _criterion(false, "claims").score == 0.0 and _criterion(false, "testing").score == 0.0
    assert _criterion(true, "claims").score == 4.0 and _criterion(true, "testing").score == 2.0
    assert "contradict" in false.summary
    # Against the hidden tests when they ran first: 0 of 22 passing makes "all tests pass" false.
    hidden = GraderResult("hidden_tests", details={"fail_to_pass": {"total": 22, "passed": 0}})
    against_hidden = _grade(PullRequestGrader(), caught, GradeContext(results={"hidden_tests": hidden}))
    assert _criterion(against_hidden, "claims").score == 0.0
    assert "0/22" in _criterion(against_hidden, "claims").rationale
    # The same description without the claim scores more than with the false one.
    no_claim = GraderResult("x", criteria=[c for c in false.criteria if c.id != "claims"])
    assert false.fraction is not None and no_claim.fraction is not None and false.fraction < no_claim.fraction


def test_an_empty_pull_request_earns_nothing_on_size_and_scope(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-emptypr")
    s.commit(5, "Nothing yet")
    s.push(6)
    s.open_pr(7, "WIP", PR_BODY.format(testing="Nothing to test yet, the work has not started."))
    result = _grade(PullRequestGrader(), Bundle(s.build()))
    assert _criterion(result, "size").score == 0.0 and _criterion(result, "scope").score == 0.0


def _session_with_forgeries(root: Path, *, forged: bool) -> Bundle:
    s = SessionBuilder(root, trial_id="t-forged" if forged else "t-honest")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    [extra] = s.reply(4, "Also rewriting the package init.", [write("calc/__init__.py", "x = 1\n")])
    if forged:  # two lines added to the transcript afterwards: no request ever carried them
        s.reject(5, extra, via_gateway=False)
        s.interrupt(5.5, via_gateway=False)
    s.commit(20, "Add * and /")
    s.push(21)
    return Bundle(s.build())


def test_forged_transcript_rejections_and_interrupts_do_not_move_steering(tmp_path: Path) -> None:
    honest = _grade(SteeringGrader(), _session_with_forgeries(tmp_path / "h", forged=False))
    forged = _grade(SteeringGrader(), _session_with_forgeries(tmp_path / "f", forged=True))
    assert [(c.id, c.score) for c in forged.criteria] == [(c.id, c.score) for c in honest.criteria]
    assert forged.details["measures"]["rejected_tool_uses"] == [] and forged.details["measures"]["interrupts"] == []
    listed = {item["kind"] for item in forged.details["transcript_only"]}
    assert {"tool_rejected", "interrupt"} <= listed
    assert all(not item["scored"] for item in forged.details["transcript_only"])


def test_a_forged_passing_run_does_not_verify_a_push(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-fakepass")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "Testing.", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, PASSING, via_gateway=False)  # the session ended: no request carried it
    s.commit(6, "Add * and /")
    s.push(7)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    [push] = result.details["findings"]["pushes"]
    assert push["outcome"] != "tested"


def _spec_session(root: Path, *, backdated: bool) -> Bundle:
    """A spec that really came first, or one written after the agent built and backdated."""
    spec = "# SPEC\n- `evaluate(\"7 / 2\") == 3.5`\n- `evaluate(\"1 / 0\")` raises `CalcError`\n"
    s = SessionBuilder(root, trial_id="t-backdated" if backdated else "t-specfirst")
    if not backdated:
        s.human_write("SPEC.md", spec)
        s.commit(2, "Add SPEC.md")
        s.push(3)
    s.prompt(5, "Implement * and / in calc/ops.py as SPEC.md says.")
    [ops] = s.reply(6, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(7, ops, "File written")
    if backdated:
        s.human_write("SPEC.md", spec)
        s.commit(1, "Add SPEC.md")  # GIT_COMMITTER_DATE: minute 1, long before the agent's edit
    s.commit(30 if backdated else 20, "Add * and /")
    if backdated:
        s.commit(2, "Tidy")  # dated as if spread out over the session
    s.push(40)
    return Bundle(s.build())


def test_a_backdated_commit_changes_neither_specified_first_nor_spread(tmp_path: Path) -> None:
    first = _grade(SpecQualityGrader(), _spec_session(tmp_path / "a", backdated=False))
    late = _grade(SpecQualityGrader(), _spec_session(tmp_path / "b", backdated=True))
    assert _criterion(first, "upfront").score == 4.0
    assert _criterion(late, "upfront").score < 4.0
    commits = _grade(CommitsGrader(), _spec_session(tmp_path / "c", backdated=True))
    spread = _criterion(commits, "spread")
    assert spread.score == 0.0 and "push" in spread.rationale  # one push brought them all


def _written_by(root: Path, *, agent_shell: bool) -> Bundle:
    s = SessionBuilder(root, trial_id="t-shell" if agent_shell else "t-pasted")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    if agent_shell:
        [call] = s.reply(2, "Writing it through the shell.", [bash_write("calc/ops.py", CAREFUL_OPS)])
        s.tool_result(3, call, "")
        s.reply(4, "Written.")
    else:
        s.reply(2, "What would you like exactly?")
        s.human_write("calc/ops.py", CAREFUL_OPS)  # pasted in from outside: no logged origin
    s.commit(10, "Add * and /")
    s.push(11)
    return Bundle(s.build())


def test_shell_written_agent_code_is_the_agents_and_pasted_code_has_no_logged_origin(tmp_path: Path) -> None:
    shell = _grade(ProvenanceGrader(), _written_by(tmp_path / "a", agent_shell=True))
    lines = shell.details["lines"]
    assert lines["agent_unchanged"] > 20 and lines["no_logged_origin"] <= 2
    assert shell.criteria[0].score == 4.0  # traced to a logged exchange
    pasted = ProvenanceGrader().grade(_written_by(tmp_path / "b", agent_shell=False), {}, GradeContext())
    assert pasted.details["lines"]["agent_unchanged"] == 0 and pasted.details["lines"]["no_logged_origin"] > 20
    assert "no logged origin" in pasted.summary and "candidate's own" not in pasted.summary
    # Steering sees the shell write as the agent's edit: the untested push of it is not verified.
    steering = _grade(SteeringGrader(), _written_by(tmp_path / "c", agent_shell=True))
    assert steering.details["measures"]["lines"]["agent_unchanged"] > 20
    assert _criterion(steering, "review").score == 0.0  # shipped as written, nothing reviewed


def _weakening_session(root: Path, marker: str) -> Bundle:
    s = SessionBuilder(root, trial_id="t-weak")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", BROKEN_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "1 failed, 2 passed", error=True)
    test = s.read("tests/test_calc.py")
    [look] = s.reply(5.5, "Reading the test.", [read("tests/test_calc.py")])
    s.tool_result(5.6, look, "\n".join(f"{n:>6}→{line}" for n, line in enumerate(test.splitlines(), 1)))
    first = next(line for line in test.splitlines() if line.strip().startswith("assert "))
    if marker == "delete":
        weakened = test.replace('    with pytest.raises(CalcError):\n        evaluate("1 +")\n', "    pass\n")
    elif marker == "comment-out":  # the assertion kept as a comment
        weakened = test.replace(first, first.replace("assert ", "# assert ", 1))
    elif marker == "assert-true":  # loosened into one that cannot fail
        weakened = test.replace(first, first[:len(first) - len(first.lstrip())] + "assert True")
    elif marker == "or-true":
        weakened = test.replace(first, first + " or True")
    elif marker == "is-not-none":  # a comparison loosened into an existence check
        weakened = test.replace(first, first.split("==")[0].rstrip() + " is not None")
    elif marker == "rewrite-without":  # the whole file written again, the assertion gone
        weakened = test.replace(first + "\n", "")
    else:
        weakened = test.replace("def test_", f"{marker}\ndef test_", 1)
    [silence] = s.reply(6, "Fixing the failing test.", [write("tests/test_calc.py", weakened)])
    s.tool_result(7, silence, "File written")
    [again] = s.reply(8, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(9, again, "2 passed, 1 skipped")
    s.reply(10, "All tests pass now.")
    s.commit(11, "Add * and / with tests")
    s.push(12)
    return Bundle(s.build())


@pytest.mark.parametrize("marker", ["@pytest.mark.skip(reason='flaky')", "@pytest.mark.xfail",
                                    "@pytest.mark.skipif(True, reason='later')", "@unittest.expectedFailure",
                                    "delete", "comment-out", "assert-true", "or-true", "is-not-none",
                                    "rewrite-without"])
def test_skip_markers_and_deleted_assertions_weaken_tests(tmp_path: Path, marker: str) -> None:
    """Every form of weakening, not only skip markers: assertions deleted, commented out, loosened
    into ones that cannot fail, or left out of a file written again whole."""
    bundle = _weakening_session(tmp_path, marker)
    commits = _grade(CommitsGrader(), bundle)
    tests = _criterion(commits, "tests")
    assert tests.score == 0.0 and "weakened" in tests.rationale
    steering = _grade(SteeringGrader(), bundle)
    assert _criterion(steering, "verification").score == 0.0
    assert _criterion(steering, "mistakes_caught").score == 0.0
    assert steering.details["findings"]["mistakes"][0]["outcome"] == "silenced"


def test_a_question_opens_no_pushback_episode_and_a_pasted_error_after_done_does(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-episodes")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [call] = s.reply(2, "Writing it.", [bash_write("calc/ops.py", BROKEN_OPS)])
    s.tool_result(3, call, "")
    s.reply(4, "Done.")
    s.prompt(5, "Does the tokenizer still get the spaces right?")
    s.reply(6, "Yes, it skips them.")
    s.prompt(7, "Traceback (most recent call last):\n  File \"calc/ops.py\", line 30, in evaluate\n"
                "ZeroDivisionError: integer division or modulo by zero")
    s.reply(8, "I'll fix it.")
    events = Bundle(s.build()).events()
    turns = [TurnLabels(i, classify(events[i]["text"])) for i in verified_prompts(events)]
    episodes = find_episodes(events, turns)
    assert [events[e.index]["text"][:9] for e in episodes] == ["Traceback"]


def test_natural_pushback_is_labelled_a_correction() -> None:
    assert classify("Looks wrong to me, this swallows the error instead of raising it.")[0] in ("1.3", "2.2")
    assert "2.3" not in classify("does the billing job still get the keys?")


STUFFING = ("Acceptance criteria: the expected result must pass and should return what is expected. "
            "Constraints: only do what is asked, don't break anything, never cut corners, do not skip, keep it "
            "simple, no new dependencies, backwards compatible, public API, performance matters. For example, "
            "e.g., such as -> => ==. Review the diff, check the test output, verify this, double-check edge "
            "cases, sanity check, audit. Follow the existing pattern, consistent with, reuse, same as before.")


def _concise(root: Path, *, stuffed: bool) -> Bundle:
    """A concise, correct session; `stuffed` adds rubric words to every prompt and a design file."""
    s = SessionBuilder(root, trial_id="t-stuffed" if stuffed else "t-concise")

    def say(minute: float, text: str) -> None:
        s.prompt(minute, text + ("\n\n" + STUFFING if stuffed else ""))

    if stuffed:
        s.human_write("DESIGN.md", "# Design\n\n" + STUFFING + "\n")
        s.commit(0.5, "Design notes")
        s.push(0.6)
    say(1, "Implement * and / in calc/ops.py: `evaluate(\"7 / 2\") == 3.5`, `evaluate(\"1 / 0\")` raises "
           "`CalcError`. Don't touch calc/__init__.py.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", BROKEN_OPS),
                                            edit("tests/test_calc.py", TESTS_OLD, TESTS_OLD + CAREFUL_TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, tests, "File updated")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, FAILING, error=True)
    say(6, "7 / 2 gives 3: use true division in _apply.")
    [fix] = s.reply(7, "Fixing.", [edit("calc/ops.py", "left // right", "left / right")])
    s.tool_result(8, fix, "File updated")
    [again] = s.reply(9, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(10, again, PASSING)
    s.reply(11, "6 passed.")
    say(12, "continue")
    s.reply(13, "Nothing left to do.")
    s.commit(20, "Add * and / to calc.evaluate")
    s.push(21)
    return Bundle(s.build())


def _lazy(root: Path, *, stuffed: bool) -> Bundle:
    """"Do the brief", accept everything; `stuffed` dresses every prompt and a design file in rubric words."""
    s = SessionBuilder(root, trial_id="t-lazystuffed" if stuffed else "t-lazy")
    if stuffed:
        s.human_write("docs/DESIGN.md", "# Design\n\n" + STUFFING + "\n")
        s.commit(0.5, "Design notes")
        s.push(0.6)
    s.prompt(1, "do the brief" + (" " + STUFFING if stuffed else ""))
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", BROKEN_OPS)])
    s.tool_result(3, ops, "File written")
    s.reply(4, "Done! Everything works.")
    s.prompt(5, "great" + (" " + STUFFING if stuffed else ""))
    s.reply(6, "Thanks!")
    s.commit(7, "Implement the brief")
    s.push(8)
    return Bundle(s.build())


@pytest.mark.parametrize("session", [_concise, _lazy], ids=["concise", "lazy"])
@pytest.mark.parametrize("grader", [SteeringGrader(), SpecQualityGrader()], ids=lambda g: g.name)
def test_keyword_stuffing_moves_no_score_by_more_than_the_bound(tmp_path: Path, grader: object,
                                                                session: object) -> None:
    build = session  # a session builder function: (root, stuffed=...) -> Bundle
    plain = _grade(grader, build(tmp_path / "plain", stuffed=False))  # type: ignore[operator]
    stuffed = _grade(grader, build(tmp_path / "stuffed", stuffed=True))  # type: ignore[operator]
    assert plain.fraction is not None and stuffed.fraction is not None
    assert abs(stuffed.fraction - plain.fraction) <= 0.05, (
        [(c.id, c.score) for c in plain.criteria], [(c.id, c.score) for c in stuffed.criteria])
    for before, after in zip(plain.criteria, stuffed.criteria, strict=True):
        assert abs(after.score - before.score) <= 0.05 * plain.max, before.id


DEFECT = {"keywords": [r"division by zero", r"divid\w* by 0"],
          "tests": ["hidden_tests/test_hidden.py::test_division_by_zero"]}


def _defect_session(root: Path, who: str) -> Bundle:
    s = SessionBuilder(root, trial_id=f"t-defect-{who}")
    if who == "spec":
        s.human_write("SPEC.md", "# SPEC\n- `evaluate(\"1 / 0\")`: division by zero raises `CalcError`.\n")
        s.commit(1, "Add SPEC.md")
        s.push(2)
    first = "Implement * and / in calc/ops.py."
    if who == "candidate":
        first += " Careful: division by zero must raise CalcError, not ZeroDivisionError."
    s.prompt(3, first)
    answer = "Writing it. Note: division by zero currently raises ZeroDivisionError." if who == "agent" else "Writing."
    [ops] = s.reply(4, answer, [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(5, ops, "File written")
    if who == "agent":
        s.prompt(6, "Good catch: make division by zero raise CalcError.")
        s.reply(7, "Will do.")
    s.commit(10, "Add * and /")
    s.push(11)
    return Bundle(s.build())


@pytest.mark.parametrize(("who", "score"), [("candidate", 4.0), ("spec", 4.0), ("agent", 2.0), ("nobody", 0.0)])
def test_who_named_the_planted_defect_first(tmp_path: Path, who: str, score: float) -> None:
    result = SteeringGrader().grade(_defect_session(tmp_path, who), {"defect": DEFECT}, GradeContext())
    assert _criterion(result, "defect").score == score, _criterion(result, "defect").rationale


def test_naming_the_defect_counts_fully_only_when_its_tests_pass(tmp_path: Path) -> None:
    bundle = _defect_session(tmp_path / "c", "candidate")
    failing = GraderResult("hidden_tests", details={"fail_to_pass": {"total": 4, "passed": 3, "outcomes": {
        "hidden_tests/test_hidden.py::test_division_by_zero": "failed"}}})
    result = SteeringGrader().grade(bundle, {"defect": DEFECT}, GradeContext(results={"hidden_tests": failing}))
    # Named first but shipped anyway: a quarter of the credit; the outcome is what counts.
    assert _criterion(result, "defect").score == 1.0 and "tests fail" in _criterion(result, "defect").rationale
    nobody = _defect_session(tmp_path / "n", "nobody")
    passing = GraderResult("hidden_tests", details={"fail_to_pass": {"total": 4, "passed": 4, "outcomes": {
        "hidden_tests/test_hidden.py::test_division_by_zero": "passed"}}})
    fixed = SteeringGrader().grade(nobody, {"defect": DEFECT}, GradeContext(results={"hidden_tests": passing}))
    assert _criterion(fixed, "defect").score == 1.0  # fixed, but nothing shows anyone saw it
    assert all(c.id != "defect" for c in _grade(SteeringGrader(), nobody).criteria)  # no defect configured


def _untested_push(root: Path, path: str, content: str) -> Bundle:
    s = SessionBuilder(root, trial_id="t-risk")
    s.prompt(1, f"Write {path}.")
    [call] = s.reply(2, "Writing it.", [write(path, content)])
    s.tool_result(3, call, "File written")
    s.commit(4, f"Add {path}")
    s.push(5)
    return Bundle(s.build())


def test_verification_is_calibrated_to_the_risk_of_the_change(tmp_path: Path) -> None:
    options = {"risk_paths": ["calc/crypto*"]}
    crypto = SteeringGrader().grade(_untested_push(tmp_path / "a", "calc/crypto.py", "KEY = b'x' * 32\n"),
                                    options, GradeContext())
    normal = SteeringGrader().grade(_untested_push(tmp_path / "b", "calc/extra.py", "VALUE = 1\n"),
                                    options, GradeContext())
    docs = SteeringGrader().grade(_untested_push(tmp_path / "c", "docs/usage.md", "How to use calc.\n"),
                                  options, GradeContext())
    assert _criterion(crypto, "verification").score == 0.0
    assert "high risk" in _criterion(crypto, "verification").rationale
    assert _criterion(normal, "verification").score == 1.0
    # A docs-only push needs no test run and proves nothing either: not scored.
    assert _criterion(docs, "verification").rationale == "No code was pushed."
    # Without template globs, a path that names auth or crypto is high risk by default.
    default = _grade(SteeringGrader(), _untested_push(tmp_path / "d", "calc/auth_tokens.py", "X = 1\n"))
    assert _criterion(default, "verification").score == 0.0


def _scope_session(root: Path, *, reverted: bool) -> Bundle:
    s = SessionBuilder(root, trial_id="t-scope")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops, extra] = s.reply(2, "Writing it, and a setup.cfg.", [write("calc/ops.py", CAREFUL_OPS),
                                                                write("setup.cfg", "[metadata]\nname = calc\n")])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, extra, "File written")
    if reverted:
        s.delete("setup.cfg")
    s.commit(4, "Add * and /")
    s.push(5)
    return Bundle(s.build())


def test_out_of_scope_agent_writes_shipped_cost_and_reverted_ones_do_not(tmp_path: Path) -> None:
    options = {"scope": ["calc/**", "tests/**"]}
    shipped = SteeringGrader().grade(_scope_session(tmp_path / "a", reverted=False), options, GradeContext())
    reverted = SteeringGrader().grade(_scope_session(tmp_path / "b", reverted=True), options, GradeContext())
    assert _criterion(shipped, "scope").score == 0.0 and "shipped" in _criterion(shipped, "scope").rationale
    assert _criterion(reverted, "scope").score == 2.0 and "reverted" in _criterion(reverted, "scope").rationale


def test_sending_the_agent_back_to_named_code_is_review_and_continue_is_not(tmp_path: Path) -> None:
    def session(root: Path, prompt: str) -> Bundle:
        s = SessionBuilder(root, trial_id="t-review")
        s.prompt(1, "Implement * and / in calc/ops.py.")
        [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
        s.tool_result(3, ops, "File written")
        s.prompt(4, prompt)
        [again] = s.reply(5, "Changing it.", [edit("calc/ops.py", "return left / right", "return left / right  #")])
        s.tool_result(6, again, "File updated")
        [run] = s.reply(7, "", [bash("python3 -m pytest -q tests")])
        s.tool_result(8, run, PASSING)
        s.reply(9, "6 passed.")
        s.commit(10, "Add * and /")
        s.push(11)
        return Bundle(s.build())

    named = _grade(SteeringGrader(), session(tmp_path / "a", "_apply should check the divisor before dividing."))
    bare = _grade(SteeringGrader(), session(tmp_path / "b", "continue " + STUFFING))
    assert [f["outcome"] for f in named.details["findings"]["rework"]] == ["validated"]
    assert named.details["findings"]["rework"] and not bare.details["findings"]["rework"]
    assert _criterion(named, "review").score > _criterion(bare, "review").score


def _rework_session(root: Path, *, open_spec: bool) -> Bundle:
    """The agent builds; the candidate sends it back, with something the spec had not said, or
    only repeating what it had said (then the spec was fine and the agent ignored it)."""
    s = SessionBuilder(root, trial_id="t-rework")
    s.prompt(1, "Implement * and / in calc/ops.py: `evaluate(\"7 / 2\") == 3.5`, `evaluate(\"1 / 0\")` raises "
                "`CalcError`, and `_apply` is the one place that knows the operators.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    if open_spec:
        s.prompt(4, "In _apply, also support `%` as modulo and make `evaluate(\"7 % 2\") == 1`.")
    else:
        s.prompt(4, "In _apply, `evaluate(\"1 / 0\")` raises `CalcError`: you missed that.")
    [again] = s.reply(5, "Changing it.", [edit("calc/ops.py", "return left / right", "return left / right  #")])
    s.tool_result(6, again, "File updated")
    s.commit(7, "Add * and /")
    s.push(8)
    return Bundle(s.build())


def test_rework_on_what_the_spec_left_open_costs_and_repeating_the_spec_does_not(tmp_path: Path) -> None:
    gap = _grade(SpecQualityGrader(), _rework_session(tmp_path / "a", open_spec=True))
    ignored = _grade(SpecQualityGrader(), _rework_session(tmp_path / "b", open_spec=False))
    assert _criterion(gap, "rework_avoided").score == 3.0 and gap.details["rework_rounds"]
    assert _criterion(ignored, "rework_avoided").score == 4.0 and not ignored.details["rework_rounds"]


def test_constraints_count_by_what_shipped(tmp_path: Path) -> None:
    def session(root: Path, *, broken: bool) -> Bundle:
        s = SessionBuilder(root, trial_id="t-constraints")
        s.prompt(1, "Implement * and / in calc/ops.py. Don't touch calc/__init__.py. No new dependencies.")
        calls = [write("calc/ops.py", CAREFUL_OPS)]
        if broken:
            calls.append(write("calc/__init__.py", '"""calc."""\nfrom calc.ops import evaluate as run\n'))
        ids = s.reply(2, "Writing it.", calls)
        for number, call in enumerate(ids):
            s.tool_result(3 + number / 10, call, "File written")
        s.commit(5, "Add * and /")
        s.push(6)
        return Bundle(s.build())

    held = _criterion(_grade(SpecQualityGrader(), session(tmp_path / "a", broken=False)), "constraints_honoured")
    broke = _criterion(_grade(SpecQualityGrader(), session(tmp_path / "b", broken=True)), "constraints_honoured")
    assert held.score == 2.0 and "leave calc/__init__.py alone" in held.rationale
    assert broke.score == 0.0 and "broken" in broke.rationale


def test_acceptance_items_count_only_once_checked(tmp_path: Path) -> None:
    def session(root: Path, *, tested: bool) -> Bundle:
        s = SessionBuilder(root, trial_id="t-acceptance")
        s.prompt(1, "Implement * and / in calc/ops.py: `evaluate(\"7 / 2\") == 3.5`, `evaluate(\"1 / 0\")` "
                    "raises `CalcError`, `evaluate(\"2 + 3 * 4\") == 14`.")
        calls = [write("calc/ops.py", CAREFUL_OPS)]
        if tested:
            calls.append(edit("tests/test_calc.py", TESTS_OLD, TESTS_OLD + CAREFUL_TESTS))
        ids = s.reply(2, "Writing it.", calls)
        for number, call in enumerate(ids):
            s.tool_result(3 + number / 10, call, "File written")
        s.commit(5, "Add * and /")
        s.push(6)
        return Bundle(s.build())

    checked = _criterion(_grade(SpecQualityGrader(), session(tmp_path / "a", tested=True)), "acceptance_checked")
    unchecked = _criterion(_grade(SpecQualityGrader(), session(tmp_path / "b", tested=False)), "acceptance_checked")
    assert checked.score == 4.0
    assert unchecked.score < checked.score


def test_constraints_on_files_that_do_not_exist_earn_nothing(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-fakeconstraints")
    s.prompt(1, "Implement * and / in calc/ops.py. Don't touch legacy/billing.py, never modify vendor/lib.py, "
                "do not change old/setup.cfg.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    s.commit(4, "Add * and /")
    s.push(5)
    result = _grade(SpecQualityGrader(), Bundle(s.build()))
    assert _criterion(result, "constraints_honoured").score == 0.0


def test_a_push_that_ships_no_work_is_not_judged(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-idle")
    s.pushes.append({"ts": "2025-03-03T08:59:00Z", "ref": "refs/heads/main", "before": "0" * 40,
                     "after": s.starter_sha, "forced": False, "pusher": "trial-bot"})  # the starter, at launch
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, PASSING)
    s.reply(6, "6 passed.")
    s.commit(7, "Add * and /")
    s.push(8)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    assert [f["outcome"] for f in result.details["findings"]["pushes"]] == ["tested"]
    assert _criterion(result, "verification").score == 4.0


def test_continue_after_a_failure_is_not_a_catch(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-continue")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", BROKEN_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, FAILING, error=True)
    s.reply(6, "One test fails.")
    s.prompt(7, "continue")
    [fix] = s.reply(8, "Fixing.", [edit("calc/ops.py", "left // right", "left / right")])
    s.tool_result(9, fix, "File updated")
    [again] = s.reply(10, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(11, again, PASSING)
    s.reply(12, "6 passed.")
    s.commit(13, "Add * and /")
    s.push(14)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    assert [f["outcome"] for f in result.details["findings"]["mistakes"]] == ["self_fixed"]
    assert not _has(result, "mistakes_caught")  # the agent fixed its own failure: nothing to credit or blame


def test_a_bad_defect_pattern_is_a_configuration_error_naming_the_option(tmp_path: Path) -> None:
    from orchestrator.errors import ConfigError

    bundle = _defect_session(tmp_path, "nobody")
    with pytest.raises(ConfigError, match=r"steering\.defect\.keywords"):
        SteeringGrader().grade(bundle, {"defect": {"keywords": ["(unclosed"]}}, GradeContext())


def test_pushback_that_breaks_passing_code_is_not_review(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-falsepush")
    s.prompt(1, "Implement * and / in calc/ops.py, with tests.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS),
                                            edit("tests/test_calc.py", TESTS_OLD, TESTS_OLD + CAREFUL_TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, tests, "File updated")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, PASSING)
    s.reply(6, "6 passed.")
    s.prompt(7, "_apply is wrong: division must floor, use // in _apply.")  # the code was right
    [worse] = s.reply(8, "Changing it.", [edit("calc/ops.py", "left / right", "left // right")])
    s.tool_result(9, worse, "File updated")
    [again] = s.reply(10, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(11, again, FAILING, error=True)
    s.reply(12, "One test fails now.")
    s.commit(13, "Add * and /")
    s.push(14)
    result = _grade(SteeringGrader(), Bundle(s.build()))
    assert [f["outcome"] for f in result.details["findings"]["rework"]] == ["regressed"]
    assert _criterion(result, "review").score == 0.0
    assert "broke tests that had passed" in _criterion(result, "review").rationale
    assert _criterion(result, "verification").score == 0.0  # and it was pushed failing


def test_a_long_prompt_naming_files_is_not_a_spec(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-namedrop")
    s.prompt(1, "Please carefully read calc/ops.py, calc/__init__.py, tests/test_calc.py and README.md, look at "
                "tokenize and evaluate and the existing patterns in the codebase, and then implement everything "
                "the brief asks for in the most appropriate way, following the conventions you find there.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    s.commit(4, "Implement the brief")
    s.push(5)
    result = _grade(SpecQualityGrader(), Bundle(s.build()))
    assert _criterion(result, "upfront").score <= 1.0
    assert result.fraction is not None and result.fraction <= 0.1
