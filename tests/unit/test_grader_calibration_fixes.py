"""Grader fixes found by the calibration corpus (issue 12), each on a hand-built timeline.

Each test is the corpus's finding in miniature: it failed on the graders before the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.spec_quality import SpecQualityGrader
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


BARE_OPS = CAREFUL_OPS  # the agent's first version: no zero check, so the zero test fails


def _corrected_session(root: Path, correction: str, answer: list[object] | None = None) -> Path:
    """The agent's edit fails the acceptance test; it offers to relax the test; the candidate
    answers with `correction`; the agent rewrites (or `answer`) and the suite passes."""
    s = SessionBuilder(root, trial_id="t-review", candidate="erin")
    s.prompt(3, "Implement * and / in calc/ops.py; `evaluate(\"1 / 0\")` raises CalcError. Keep "
                "tests/test_calc.py as it is.")
    ops, tests = s.reply(4, "Implementing.", [write("calc/ops.py", BARE_OPS), edit(
        "tests/test_calc.py", "        evaluate(\"1 +\")\n", "        evaluate(\"1 +\")\n" + CAREFUL_TESTS)])
    s.tool_result(4.5, ops, "File created successfully at: /workspace/calc/ops.py")
    s.tool_result(4.6, tests, "The file /workspace/tests/test_calc.py has been updated.")
    [run] = s.reply(5, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(5.5, run, "....F.\nFAILED tests/test_calc.py::test_division_by_zero_is_a_calc_error - "
                            "ZeroDivisionError: division by zero\n1 failed, 5 passed in 0.03s", error=True)
    s.reply(6, "test_division_by_zero_is_a_calc_error fails: _apply divides directly. Shall I change the "
               "test to expect ZeroDivisionError?")
    s.prompt(7, correction)
    tools = answer if answer is not None else [edit("calc/ops.py", "    if op == \"/\":\n        return left / right",
                                                    "    if op == \"/\":\n        if right == 0:\n            raise "
                                                    "CalcError(\"division by zero\")\n        return left / right")]
    [fix] = s.reply(8, "Fixing.", tools)  # type: ignore[arg-type]
    s.tool_result(8.5, fix, "The file has been updated.")
    [run2] = s.reply(9, "", [bash("python3 -m pytest -q tests")])
    s.tool_result(9.5, run2, "......\n6 passed in 0.03s")
    s.reply(10, "6 passed.")
    s.commit(11, "Add * and / to calc.evaluate")
    s.push(12)
    s.open_pr(13, "Add * and /", "Adds * and /; 6 tests pass.")
    return s.build()


def test_a_correction_naming_the_agents_code_after_its_failing_run_counts_as_review(tmp_path: Path) -> None:
    # s01: the candidate refuses to relax the test and names what is wrong in the agent's code.
    bundle = _corrected_session(tmp_path / "named", "No: the test stays. _apply divides without checking the "
                                                    "right operand; raise CalcError there.")
    review = _criterion(SteeringGrader().grade(Bundle(bundle), {}, GradeContext()), "review")
    assert review.score >= 1.5, review.rationale
    assert "1 time(s) the candidate sent the agent back" in review.rationale
    # "fix it" names nothing: the agent that then fixes its failure fixed it alone.
    vague = _corrected_session(tmp_path / "vague", "ok fix it")
    assert _criterion(SteeringGrader().grade(Bundle(vague), {}, GradeContext()), "review").score == 0.0


def test_a_correction_answered_by_skipping_the_failing_test_is_no_review(tmp_path: Path) -> None:
    skip = edit("tests/test_calc.py", "def test_division_by_zero_is_a_calc_error():",
                "@pytest.mark.skip(reason=\"later\")\ndef test_division_by_zero_is_a_calc_error():")
    bundle = _corrected_session(tmp_path, "test_division_by_zero_is_a_calc_error is in the way; get it green.",
                                [skip])
    review = _criterion(SteeringGrader().grade(Bundle(bundle), {}, GradeContext()), "review")
    assert review.score == 0.0, review.rationale


def test_correcting_a_deviation_from_the_spec_costs_the_spec_nothing(tmp_path: Path) -> None:
    # s01: the spec asked for it; the agent did otherwise and asked to relax the test; the
    # candidate held it to the spec. The agent's mistake, not what the spec left open.
    bundle = _corrected_session(tmp_path, "No: the test stays. As I said, `evaluate(\"1 / 0\")` raises CalcError: "
                                          "check the right operand in _apply.")
    result = SpecQualityGrader().grade(Bundle(bundle), {}, GradeContext())
    rework = _criterion(result, "rework_avoided")
    assert rework.rationale.startswith("0 round(s)"), rework.rationale
    assert result.details["deviations_from_spec"]
    # A question the spec really left open still costs.
    open_question = _corrected_session(tmp_path / "open", "In _apply, also support powers: "
                                                          "`evaluate(\"2 ** 3\") == 8`.")
    rework = _criterion(SpecQualityGrader().grade(Bundle(open_question), {}, GradeContext()), "rework_avoided")
    assert not rework.rationale.startswith("0 round(s)"), rework.rationale


NAMED_OPS = CAREFUL_OPS + '''

import hashlib
import hmac
import os


def checksum(text, secret=None):
    """HMAC-SHA256 of an expression, keyed with CALC_SECRET; a 12-byte salt first."""
    salt = os.urandom(12)
    key = secret or os.environ["CALC_SECRET"].encode()
    return salt + hmac.new(key, text.encode(), hashlib.sha256).digest()
'''


def _named_spec_session(root: Path, prompt: str) -> Path:
    s = SessionBuilder(root, trial_id="t-named", candidate="finn")
    s.prompt(3, prompt)
    [ops] = s.reply(4, "Implementing.", [write("calc/ops.py", NAMED_OPS)])
    s.tool_result(4.5, ops, "File created successfully at: /workspace/calc/ops.py")
    s.commit(7, "Add * and / and a checksum")
    s.push(8)
    return s.build()


def test_named_algorithms_env_vars_and_sizes_the_work_carries_are_concrete_requirements(tmp_path: Path) -> None:
    # s01: "HMAC-SHA256 ... keyed with KEYSERVICE_HMAC_SECRET ... 12-byte random nonce" are a spec.
    named = _named_spec_session(tmp_path / "named", "Add checksum(text) to calc/ops.py: an HMAC-SHA256 keyed with "
                                                    "CALC_SECRET, after a 12-byte random salt.")
    upfront = _criterion(SpecQualityGrader().grade(Bundle(named), {}, GradeContext()), "upfront")
    assert upfront.score >= 2.0, upfront.rationale
    for item in ("hmac-sha256", "calc_secret", "12-byte"):
        assert item in upfront.rationale or item in json.dumps(
            SpecQualityGrader().grade(Bundle(named), {}, GradeContext()).details["spec_items"])
    # The same kind of names that the work never carries shaped nothing: no credit for naming them.
    stuffed = _named_spec_session(tmp_path / "stuffed", "Add checksum(text) to calc/ops.py. Use RSA-4096, "
                                                        "BLAKE_KEY_SIZE, argon2id and a 64-bit pepper.")
    result = SpecQualityGrader().grade(Bundle(stuffed), {}, GradeContext())
    assert not {"rsa-4096", "blake_key_size", "argon2id", "64-bit"} & set(result.details["spec_items"])
    assert _criterion(result, "upfront").score <= 1.0


def _dependency_session(root: Path, prompt: str, requirements: str) -> Path:
    s = SessionBuilder(root, trial_id="t-deps", candidate="gail")
    s.prompt(3, prompt)
    ops, reqs = s.reply(4, "Implementing.", [write("calc/ops.py", NAMED_OPS), write("requirements.txt", requirements)])
    s.tool_result(4.5, ops, "File created successfully at: /workspace/calc/ops.py")
    s.tool_result(4.6, reqs, "File created successfully at: /workspace/requirements.txt")
    s.commit(7, "Add * and / and a checksum")
    s.push(8)
    return s.build()


@pytest.mark.parametrize("wording", [
    "cryptography is the only new dependency.",
    "No new dependency besides cryptography.",
    "No dependency other than cryptography.",
])
def test_a_named_dependency_allowance_honoured_counts_and_is_not_read_as_no_new_dependencies(
        tmp_path: Path, wording: str) -> None:
    # s01 and H3: the spec allowed cryptography; cryptography was added, nothing else.
    prompt = ("Implement * and / in calc/ops.py. tests/test_calc.py is the acceptance test; leave it as it is. "
              + wording)
    honoured = _criterion(SpecQualityGrader().grade(Bundle(_dependency_session(
        tmp_path / "ok", prompt, "cryptography>=42\n")), {}, GradeContext()), "constraints_honoured")
    assert honoured.score == honoured.max and "broken" not in honoured.rationale, honoured.rationale
    assert "leave tests/test_calc.py alone" in honoured.rationale
    assert "no new dependency besides cryptography" in honoured.rationale
    broken = _criterion(SpecQualityGrader().grade(Bundle(_dependency_session(
        tmp_path / "extra", prompt, "cryptography>=42\nrequests==2.31\n")), {}, GradeContext()),
        "constraints_honoured")
    assert "broken" in broken.rationale and "requests" in broken.rationale
    assert broken.score < honoured.score


@pytest.mark.parametrize("agent_edits_it", [False, True])
def test_an_acceptance_test_the_candidate_wrote_first_and_said_to_leave_is_checked_against_the_agent(
        tmp_path: Path, agent_edits_it: bool) -> None:
    # s01: the candidate's own acceptance test ships as an added file; only an agent write breaks "leave it".
    s = SessionBuilder(tmp_path, trial_id="t-accept", candidate="hana")
    s.human_write("tests/test_accept.py", "from calc import evaluate\n\n\ndef test_mul():\n"
                                          "    assert evaluate(\"6 * 7\") == 42\n")
    s.commit(1, "Acceptance test first")
    s.prompt(3, "Implement * and / in calc/ops.py. tests/test_accept.py is the acceptance test; leave it as it is.")
    tools = [write("calc/ops.py", CAREFUL_OPS)]
    if agent_edits_it:
        tools.append(write("tests/test_accept.py", "def test_mul():\n    pass\n"))
    ids = s.reply(4, "Implementing.", tools)
    for minute, tool_id in enumerate(ids):
        s.tool_result(4.5 + minute / 10, tool_id, "File written")
    s.commit(7, "Add * and /")
    s.push(8)
    constraints = _criterion(SpecQualityGrader().grade(Bundle(s.build()), {}, GradeContext()),
                             "constraints_honoured")
    assert "leave tests/test_accept.py alone" in constraints.rationale
    assert ("broken" in constraints.rationale) is agent_edits_it, constraints.rationale


def test_weakened_starter_tests_forfeit_collateral_credit_however_much_else_works(tmp_path: Path) -> None:
    # s10: the agent's change failed its tests; the candidate skipped them and shipped. 77% of the
    # hidden tests pass, but a skip marker on a starter test is the damage collateral is for.
    from graders.collateral import find_collateral, kept_share, progress_credit
    from graders.repo import choose_revision, open_repo

    s = SessionBuilder(tmp_path, trial_id="t-weak", candidate="ivan")
    s.human_write("calc/ops.py", CAREFUL_OPS)
    test_file = s.read("tests/test_calc.py")
    first_test = test_file.index("def test_")
    s.human_write("tests/test_calc.py", "import pytest\n" + test_file[:first_test]
                  + "@pytest.mark.skip(reason=\"flaky\")\n" + test_file[first_test:] + CAREFUL_TESTS)
    s.commit(5, "Add * and /")
    s.push(6)
    bundle = Bundle(s.build())
    with open_repo(bundle) as repo:
        found = find_collateral(repo, choose_revision(bundle, repo), ("calc/**", "tests/**"), "hidden_tests")
    assert [w["path"] for w in found.weakened_tests] == ["tests/test_calc.py"]
    assert kept_share(found, 2.0) == 0.0
    assert progress_credit(2.0, kept_share(found, 2.0), 17 / 22) == 0.0


def test_commits_credit_pushes_that_left_the_tests_passing_not_how_many_commits(tmp_path: Path) -> None:
    # Tau 0.15: one-commit sessions scored like careful ones. A push after a passing witnessed run
    # of the last edit is an outcome; the number of commits plays no part.
    from graders.commits import CommitsGrader

    tested, _ = _tested_push_session(tmp_path / "tested")
    green = _criterion(CommitsGrader().grade(Bundle(tested), {}, GradeContext()), "pushed_green")
    assert green.score == green.max, green.rationale

    s = SessionBuilder(tmp_path / "untested", trial_id="t-untested", candidate="jo")
    s.prompt(3, "Implement * and / in calc/ops.py.")
    [ops] = s.reply(4, "Implementing.", [write("calc/ops.py", CAREFUL_OPS)])
    s.tool_result(4.5, ops, "File created successfully at: /workspace/calc/ops.py")
    s.reply(5, "Done.")
    for minute in (6, 7, 8):  # three commits, never a test run
        s.human_write("README.md", s.read("README.md") + f"\nnote {minute}\n")
        s.commit(minute, f"Add * and / (part {minute})")
    s.push(9)
    untested = _criterion(CommitsGrader().grade(Bundle(s.build()), {}, GradeContext()), "pushed_green")
    assert untested.score == 0.0 and "untested" in untested.rationale
