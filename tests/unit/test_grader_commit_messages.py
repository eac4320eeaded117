"""Commit messages: specific and true, not short.

A precise subject naming what changed is often over 72 characters: that is style, not a weak
message (the careful sessions wrote such subjects and scored 0.5 of 4 while "Do the brief" scored
4). A message claiming success the verified results contradict is weak, however well formed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import CommitsGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, SessionBuilder, bash, write

pytestmark = pytest.mark.unit

PRECISE = ("Evaluate * and / before + and -, raise CalcError on division by zero, test precedence and zero\n\n"
           "Two passes over the tokens; _apply raises CalcError instead of ZeroDivisionError.")
CLAIMING = "Calculator: all acceptance criteria met\n\nImplemented every requirement of the brief."


def _messages(root: Path, message: str) -> Criterion:
    s = SessionBuilder(root, trial_id="t-messages")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "......\n6 passed in 0.03s")
    s.commit(6, message)
    s.push(7)
    hidden = GraderResult("hidden_tests", criteria=[Criterion("hidden", "Hidden tests", 8.0, 10.0, "")],
                          details={"fail_to_pass": {"total": 10, "passed": 8}})
    result = CommitsGrader().grade(Bundle(s.build()), {}, GradeContext(results={"hidden_tests": hidden}))
    return next(c for c in result.criteria if c.id == "messages")


def test_a_long_precise_subject_is_not_a_weak_message(tmp_path: Path) -> None:
    assert len(PRECISE.splitlines()[0]) > 72
    assert _messages(tmp_path, PRECISE).score == 4.0


def test_a_message_claiming_what_the_hidden_tests_contradict_is_weak(tmp_path: Path) -> None:
    criterion = _messages(tmp_path, CLAIMING)
    assert criterion.score <= 0.5 and "contradict" in criterion.rationale


def test_a_message_speaks_for_its_own_push_not_for_runs_after_it(tmp_path: Path) -> None:
    """Honest: 'tests pass' was true when the commit was pushed (a witnessed passing run); the
    agent broke something later, on work pushed after. Without hidden-test results, the message
    is checked against the last run before its push, not the session's last run."""
    s = SessionBuilder(tmp_path, trial_id="t-message-time")
    s.prompt(1, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(2, "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(3, ops, "File written")
    [run] = s.reply(4, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5, run, "......\n6 passed in 0.03s")
    s.commit(6, "Evaluate * and / in calc/ops.py; all tests pass")
    s.push(7)
    s.prompt(8, "Now add a power operator.")
    [more] = s.reply(9, "Adding it.", [write("calc/ops.py", CAREFUL_OPS + "\n\ndef power(a, b):\n    return a ** b\n")])
    s.tool_result(10, more, "File written")
    [again] = s.reply(11, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(12, again, "..F...\n1 failed, 5 passed in 0.03s")
    s.reply(13, "One test fails.")
    s.commit(14, "Add a power operator to calc/ops.py (work in progress)")
    s.push(15)
    result = CommitsGrader().grade(Bundle(s.build()), {}, GradeContext(results={}))
    assert result.details["message_problems"] == {}
    assert next(c for c in result.criteria if c.id == "messages").score == 3.5  # no body: 0.5 less
