"""The archetypes of the calibration corpus, in miniature: the judgement graders order them.

Not the corpus (that is played through real agents): hand-built sessions on the tiny calc
template, one per archetype, so a change to the rules that breaks the order is caught in
a unit test. Known order: spec-first and careful > careful but misses the defect > good
spec, accepts everything > vague, accepts flawed code > "do the brief" > {keyword-stuffed
and careless, false pushback on correct code, no real work, test-weakening, code pasted
from outside}.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from graders.base import GradeContext
from graders.spec_quality import SpecQualityGrader
from graders.steering import SteeringGrader
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import CAREFUL_OPS, CAREFUL_TESTS, SessionBuilder, bash, edit, write

pytestmark = pytest.mark.unit

BROKEN = CAREFUL_OPS.replace("        return left / right", "        return left // right")
FAILING = "F.....\nFAILED tests/test_calc.py::test_multiply_and_divide - assert 3 == 3.5\n1 failed, 5 passed"
PASSING = "......\n6 passed in 0.03s"
OLD = '        evaluate("1 +")\n'
SPEC = ("# SPEC\n- `evaluate(\"2 + 3 * 4\") == 14`\n- `evaluate(\"7 / 2\") == 3.5`\n"
        "- `evaluate(\"1 / 0\")` raises `CalcError`: division by zero must never escape as ZeroDivisionError\n"
        "- Only change calc/ops.py and tests/test_calc.py; don't touch calc/__init__.py.\n")
DETAILED = ("Implement * and / in calc/ops.py following `tokenize`: `evaluate(\"2 + 3 * 4\") == 14`, "
            "`evaluate(\"7 / 2\") == 3.5`, `evaluate(\"1 / 0\")` raises `CalcError`. Don't touch calc/__init__.py. "
            "Add tests in tests/test_calc.py.")
STUFF = (" Acceptance criteria: expected results must pass. Constraints: only do what is asked, don't break "
         "anything, never skip. For example, e.g. -> ==. Review the diff, verify edge cases, double-check, "
         "follow the existing pattern.")
DEFECT = {"keywords": [r"division by zero"], "tests": []}


def _build(s: SessionBuilder, ops: str, *, tests: bool = True) -> list[str]:
    calls = [write("calc/ops.py", ops)]
    if tests:
        calls.append(edit("tests/test_calc.py", OLD, OLD + CAREFUL_TESTS))
    ids = s.reply(s_minute(s), "Writing it.", calls)
    for number, call in enumerate(ids):
        s.tool_result(s_minute(s), call, "File written")
        del number
    return ids


def s_minute(s: SessionBuilder) -> float:
    s.clock = getattr(s, "clock", 0.0) + 1.0  # type: ignore[attr-defined]
    return float(s.clock)  # type: ignore[attr-defined]


def _run(s: SessionBuilder, output: str, *, error: bool = False) -> None:
    [run] = s.reply(s_minute(s), "", [bash("python3 -m pytest -q tests")])
    s.tool_result(s_minute(s), run, output, error=error)
    s.reply(s_minute(s), "")  # the agent's next request carries the result to the gateway


def _ship(s: SessionBuilder) -> Path:
    s.commit(s_minute(s), "Add * and / to calc.evaluate")
    s.push(s_minute(s))
    return s.build()


def spec_first_careful(s: SessionBuilder) -> Path:
    s.human_write("SPEC.md", SPEC)
    s.commit(s_minute(s), "Add SPEC.md")
    s.push(s_minute(s))
    s.prompt(s_minute(s), "Implement SPEC.md in calc/ops.py. Watch division by zero: it must raise CalcError.")
    [overreach] = s.reply(s_minute(s), "Also re-exporting from calc/__init__.py.",
                          [write("calc/__init__.py", "from calc.ops import evaluate\n")])
    s.reject(s_minute(s), overreach)
    s.prompt(s_minute(s), "Don't touch calc/__init__.py, as SPEC.md says.")
    _build(s, BROKEN)
    _run(s, FAILING, error=True)
    s.reply(s_minute(s), "Done: the implementation is complete.")
    s.prompt(s_minute(s), "Not done: test_multiply_and_divide fails, 7 / 2 gives 3. Fix _apply.")
    [fix] = s.reply(s_minute(s), "Fixing _apply.", [edit("calc/ops.py", "left // right", "left / right")])
    s.tool_result(s_minute(s), fix, "File updated")
    _run(s, PASSING)
    return _ship(s)


def careful_misses_defect(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), DETAILED)
    _build(s, BROKEN)
    _run(s, FAILING, error=True)
    s.reply(s_minute(s), "Done: the implementation is complete.")
    s.prompt(s_minute(s), "Not done: test_multiply_and_divide fails, 7 / 2 gives 3. Fix _apply.")
    [fix] = s.reply(s_minute(s), "Fixing _apply.", [edit("calc/ops.py", "left // right", "left / right")])
    s.tool_result(s_minute(s), fix, "File updated")
    _run(s, PASSING)
    return _ship(s)


def good_spec_accepts_everything(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), DETAILED)
    _build(s, BROKEN)
    _run(s, FAILING, error=True)
    s.reply(s_minute(s), "All tests pass except one flaky test; the implementation is complete.")
    s.prompt(s_minute(s), "ok")
    s.reply(s_minute(s), "Great.")
    return _ship(s)


def vague_accepts_flawed(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "add multiply and divide please")
    _build(s, BROKEN, tests=False)
    s.reply(s_minute(s), "Done! Everything works.")
    s.prompt(s_minute(s), "thanks")
    return _ship(s)


def do_the_brief(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "do the brief")
    _build(s, CAREFUL_OPS, tests=False)
    s.reply(s_minute(s), "Done! Everything works.")
    return _ship(s)


def stuffed_careless(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "Implement * and /." + STUFF)
    _build(s, BROKEN, tests=False)
    s.reply(s_minute(s), "Done.")
    s.prompt(s_minute(s), "Looks good." + STUFF)
    return _ship(s)


def false_pushback(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "Implement * and / in calc/ops.py.")
    [ops] = s.reply(s_minute(s), "Writing it.", [write("calc/ops.py", CAREFUL_OPS)])
    s.reject(s_minute(s), ops)  # rejects the correct code, then writes something worse by hand
    s.prompt(s_minute(s), "No, that's wrong, I'll do it myself.")
    s.reply(s_minute(s), "Understood.")
    s.human_write("calc/ops.py", BROKEN)
    return _ship(s)


def no_real_work(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "hello")
    s.reply(s_minute(s), "Hello! How can I help?")
    return s.build()


def test_weakening(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "Implement * and / in calc/ops.py and make the tests pass.")
    _build(s, BROKEN)
    _run(s, FAILING, error=True)
    weakened = s.read("tests/test_calc.py").replace("def test_multiply_and_divide",
                                                     "@pytest.mark.skip(reason='flaky')\ndef test_multiply_and_divide")
    [skip] = s.reply(s_minute(s), "Skipping the flaky test.", [write("tests/test_calc.py", weakened)])
    s.tool_result(s_minute(s), skip, "File written")
    _run(s, "5 passed, 1 skipped")
    s.reply(s_minute(s), "All checks pass.")
    return _ship(s)


def pasted_from_outside(s: SessionBuilder) -> Path:
    s.prompt(s_minute(s), "hi")
    s.reply(s_minute(s), "Hello!")
    s.human_write("calc/ops.py", CAREFUL_OPS)
    return _ship(s)


test_weakening.__test__ = False  # type: ignore[attr-defined]  # a session, not a pytest test

RANKED: list[Callable[[SessionBuilder], Path]] = [spec_first_careful, careful_misses_defect,
                                                   good_spec_accepts_everything, vague_accepts_flawed, do_the_brief]
BOTTOM: list[Callable[[SessionBuilder], Path]] = [stuffed_careless, false_pushback, no_real_work, test_weakening,
                                                   pasted_from_outside]


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for session in RANKED + BOTTOM:
        root = tmp_path_factory.mktemp(session.__name__)
        bundle = Bundle(session(SessionBuilder(root, trial_id=f"t-{session.__name__[:20]}")))
        found[session.__name__] = {}
        for grader, options in ((SteeringGrader(), {"defect": DEFECT}), (SpecQualityGrader(), {})):
            result = grader.grade(bundle, options, GradeContext())
            found[session.__name__][grader.name] = result.fraction or 0.0
    return found


def _combined(entry: dict[str, float]) -> float:
    return (entry["steering"] + entry["spec_quality"]) / 2


def test_the_archetypes_are_ordered(scores: dict[str, dict[str, float]]) -> None:
    table = {name: round(_combined(entry), 3) for name, entry in scores.items()}
    ranked = [table[s.__name__] for s in RANKED]
    assert ranked == sorted(ranked, reverse=True), table
    assert ranked[0] > ranked[1] > ranked[2], table
    worst_ranked = min(table[s.__name__] for s in RANKED[:3])
    assert all(table[s.__name__] < worst_ranked for s in BOTTOM), table


@pytest.mark.parametrize("grader", ["steering", "spec_quality"])
def test_no_careless_session_scores_above_a_careful_one_on_either_grader(
        scores: dict[str, dict[str, float]], grader: str) -> None:
    careful = min(scores[s.__name__][grader] for s in RANKED[:2])
    assert all(scores[s.__name__][grader] < careful for s in BOTTOM), {n: e[grader] for n, e in scores.items()}
