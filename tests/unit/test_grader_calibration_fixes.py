"""Grader fixes found by the calibration corpus (issue 12), each on a hand-built timeline.

Each test is the corpus's finding in miniature: it failed on the graders before the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle, read_jsonl, write_jsonl
from orchestrator.evidence.events import build_events
from tests.fixtures.bundle_builder import BOT, CAREFUL_OPS, CAREFUL_TESTS, SessionBuilder, bash, edit, write

pytestmark = pytest.mark.unit


def _criterion(result: GraderResult, ident: str) -> Criterion:
    return next(c for c in result.criteria if c.id == ident)


def _as_collected(bundle: Path, starter_sha: str) -> Path:
    """What the real collector writes and the builder does not: the bot's push of the starter at
    launch in the push log, and `git log %D` decorations ("HEAD -> main") on the commits."""
    pushes = read_jsonl(bundle / "pushes.jsonl")
    launch = {"ts": "2025-03-03T09:00:05Z", "ref": "refs/heads/main", "before": "0" * 40, "after": starter_sha,
              "forced": False, "pusher": BOT[0]}
    write_jsonl(bundle / "pushes.jsonl", [launch, *pushes])
    commits = read_jsonl(bundle / "commits.jsonl")
    for commit in commits:
        commit["refs"] = ["HEAD -> " + r if r == "main" else r for r in commit.get("refs") or []]
    write_jsonl(bundle / "commits.jsonl", commits)
    agent = read_jsonl(bundle / "transcripts" / "claude-code" / "session-events.jsonl")
    write_jsonl(bundle / "events.jsonl", build_events(bundle, agent))
    return bundle


def _tested_push_session(root: Path) -> tuple[Path, str]:
    s = SessionBuilder(root, trial_id="t-launch", candidate="dana")
    s.prompt(3, "Implement * and / in calc/ops.py with precedence; division by zero raises CalcError.")
    ops, tests = s.reply(4, "Implementing.", [write("calc/ops.py", CAREFUL_OPS.replace(
        "    if op == \"/\":\n        return left / right",
        "    if op == \"/\":\n        if right == 0:\n            raise CalcError(\"division by zero\")\n"
        "        return left / right")),
        edit("tests/test_calc.py", "        evaluate(\"1 +\")\n", "        evaluate(\"1 +\")\n" + CAREFUL_TESTS)])
    s.tool_result(4.5, ops, "File created successfully at: /workspace/calc/ops.py")
    s.tool_result(4.6, tests, "The file /workspace/tests/test_calc.py has been updated.")
    [run] = s.reply(5, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5.5, run, "......\n6 passed in 0.03s")
    s.reply(6, "6 passed.")
    s.commit(7, "Add * and / to calc.evaluate")
    s.push(8)
    s.open_pr(9, "Add * and /", "Adds * and / with precedence; 6 tests pass.")
    return s.build(), s.starter_sha


def test_the_bots_starter_push_at_launch_is_not_judged_as_the_candidates(tmp_path: Path) -> None:
    bundle, starter = _tested_push_session(tmp_path)
    bundle = _as_collected(bundle, starter)
    events = Bundle(bundle).events()
    assert [e["data"]["pusher"] for e in events if e["kind"] == "push"] == [BOT[0], "dana"]
    result = SteeringGrader().grade(Bundle(bundle), {}, GradeContext())
    verification = _criterion(result, "verification")
    # Only the candidate's push, tested after the last edit: full marks.
    assert verification.score == verification.max, verification.rationale
    assert "1 push(es)" in verification.rationale
    assert json.dumps(result.details["findings"]["pushes"]).count('"push"') == 1
