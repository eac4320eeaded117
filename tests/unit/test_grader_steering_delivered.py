"""Steering's `delivered` criterion: what the direction led to, from the host's hidden tests.

It separates the middle and the bottom by outcome, never by words: accepting everything earns
what the agent delivered; pushback that broke passing tests costs; shipping nothing, code with
no agent turn behind it, or a pass bought by weakening the tests earns nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, CAREFUL_TESTS, SessionBuilder, bash, edit, write
from tests.unit.test_grader_integrity import _session as weakening_session

pytestmark = pytest.mark.unit

TESTS_OLD = '        evaluate("1 +")\n'
HIDDEN = GraderResult("hidden_tests", criteria=[Criterion("hidden", "Hidden tests", 8.0, 10.0, "8 of 10")])


def _steering(bundle: Bundle, hidden: GraderResult | None = HIDDEN) -> GraderResult:
    result = SteeringGrader().grade(bundle, {}, GradeContext(results={"hidden_tests": hidden} if hidden else {}))
    assert result.status == "ok", result.summary
    return result


def _delivered(result: GraderResult) -> Criterion | None:
    return next((c for c in result.criteria if c.id == "delivered"), None)


def _agent_builds(root: Path, *, pushback: bool) -> Bundle:
    s = SessionBuilder(root, trial_id="t-push" if pushback else "t-accept")
    s.prompt(1, "Do the brief.")
    ops, tests = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS),
                                            edit("tests/test_calc.py", TESTS_OLD, TESTS_OLD + CAREFUL_TESTS)])
    s.tool_result(3, ops, "File written")
    s.tool_result(3.1, tests, "File updated")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "......\n6 passed in 0.03s")
    if pushback:  # false pushback: correct code called wrong, the agent made to break it
        s.prompt(6, "_apply in calc/ops.py is wrong: use left // right for division.")
        [change] = s.reply(7, "Changing it.", [edit("calc/ops.py", "left / right", "left // right")])
        s.tool_result(8, change, "File updated")
        [again] = s.reply(9, "", [bash("python3 -m pytest -q tests")])
        s.tool_result(10, again, "F.....\nFAILED tests/test_calc.py::test_multiply_and_divide\n1 failed, 5 passed",
                      error=True)
        s.reply(10.5, "Division is floor division now.")  # carries the failing result through the gateway
    else:
        s.prompt(6, "ok push it")
    s.commit(11, "Add * and /")
    s.push(12)
    return Bundle(s.build())


def test_accepting_everything_earns_what_the_agent_delivered_and_false_pushback_less(tmp_path: Path) -> None:
    accepted = _delivered(_steering(_agent_builds(tmp_path / "a", pushback=False)))
    pushed = _delivered(_steering(_agent_builds(tmp_path / "b", pushback=True)))
    assert accepted is not None and pushed is not None
    assert accepted.score == pytest.approx(1.6)  # 80% of the hidden tests, all of it the agent's
    assert 0.0 < pushed.score < accepted.score and "broke or stripped tests" in pushed.rationale


def test_nothing_shipped_pasted_code_or_weakened_tests_deliver_nothing(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path / "n", trial_id="t-nothing")
    s.prompt(1, "What does this repo do?")
    s.reply(2, "It evaluates arithmetic expressions.")
    s.human_write("calc/ops.py", CAREFUL_OPS)  # pasted: no agent turn behind it
    s.commit(3, "Add * and /")
    s.push(4)
    pasted = _delivered(_steering(Bundle(s.build())))
    assert pasted is not None and pasted.score == 0.0
    weakened = _delivered(_steering(weakening_session(tmp_path / "w", "loosened")))
    assert weakened is not None and weakened.score == 0.0 and "weakened" in weakened.rationale


def test_without_the_hidden_tests_the_criterion_is_left_out(tmp_path: Path) -> None:
    assert _delivered(_steering(_agent_builds(tmp_path, pushback=False), hidden=None)) is None
