"""Intent labels ("Programming by Chat" codebook) and pushback episodes ("How Coding Agents Fail Their Users")."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.intents import TAXONOMY, TurnLabels, classify, profile
from graders.pushback import FORMS, find_episodes, forbidden_paths, verified_prompts
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import SESSIONS, SessionBuilder, bash, write

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "expected"), [
    ("do the brief", ("7.4",)),
    ("fix it", ("7.3",)),
    ("ok", ("7.1",)),
    ("continue", ("7.2",)),
    ("thanks!", ("7.5",)),
    ("Add a rate limiter to the login endpoint", ("1.1",)),
    ("Use a dataclass instead of the dict", ("1.2",)),
    ("No, that's not what I asked: keep the old endpoint", ("1.3",)),
    ("Traceback (most recent call last):\n  File \"x.py\", line 3\nZeroDivisionError: division by zero",
     ("2.1",)),
    ("The button doesn't do anything when clicked.", ("2.2",)),
    ("It still fails after your last fix", ("2.3",)),
    ("Should we use Redis or an in-memory cache here?", ("3.1",)),
    ("How is the search functionality implemented?", ("3.2",)),
    ("What is OAuth?", ("3.3",)),
    ("Review my changes for security risks", ("5.1",)),
    ("Look at the terminal and tell me if the tests passed", ("5.2",)),
    ("Write down the changes in PROGRESS.md", ("6.1", "4.1")),
    ("Run the tests", ("6.2",)),
    ("", ("8.1",)),
])
def test_codebook_examples(text: str, expected: tuple[str, ...]) -> None:
    assert classify(text) == expected


def test_a_message_with_several_intents_gets_several_labels_dominant_first() -> None:
    labels = classify("Read SPEC.md first. Implement `*` in calc.evaluate. Don't add dependencies.")
    assert labels[0] == "1.1" and {"4.1", "4.2"} <= set(labels)
    assert all(code in TAXONOMY for code in labels)


def test_profile_shares_by_primary_label() -> None:
    turns = [TurnLabels(0, ("1.1", "4.2")), TurnLabels(1, ("1.3",)), TurnLabels(2, ("5.1",)),
             TurnLabels(3, ("7.4",))]
    shares = profile(turns)
    assert shares["turns"] == 4
    assert shares["categories"]["Code Authoring"] == {"turns": 2, "share": 0.5}
    assert shares["categories"]["Validation"]["turns"] == 1
    assert shares["codes"] == {"1.1": 1, "1.3": 1, "4.2": 1, "5.1": 1, "7.4": 1}


def test_forbidden_paths_are_read_from_constraints() -> None:
    assert forbidden_paths("Don't touch calc/__init__.py and do not modify `setup.cfg`.") == {
        "calc/__init__.py", "setup.cfg"}
    assert forbidden_paths("Touch whatever you need") == set()


def _episodes(bundle: Path) -> list:
    events = Bundle(bundle).events()
    turns = [TurnLabels(i, classify(events[i]["text"])) for i in verified_prompts(events)]
    return find_episodes(events, turns), events


def test_careful_session_episodes_name_forms_triggers_and_resolution(tmp_path: Path) -> None:
    episodes, events = _episodes(SESSIONS["careful"](tmp_path))
    assert len(episodes) == 2
    first, second = episodes
    # The candidate rejected a write to the file their first prompt had ruled out, and said so.
    assert events[first.index]["text"].startswith("No, that's not what I asked")
    assert {"S2", "S3", "S4"} <= set(first.forms)
    assert [events[t]["kind"] for t in first.triggers] == ["tool_rejected"]
    # The agent changed course (it wrote again); the commit that followed carries the host's push time.
    assert first.resolution == "corrected"
    assert first.resolved_at is None or events[first.resolved_at]["kind"] in ("commit", "tool_result")
    # The agent claimed success after a failing run: inaccurate self-reporting and faulty code.
    assert set(second.forms) == {"S5", "S7"}
    trigger_kinds = [events[t]["kind"] for t in second.triggers]
    assert trigger_kinds == ["tool_result", "assistant_message"]
    assert second.resolution == "corrected" and "6 passed" in events[second.resolved_at]["text"]
    assert all(form in FORMS for e in episodes for form in e.forms)


def test_agent_only_session_has_no_episode(tmp_path: Path) -> None:
    episodes, _ = _episodes(SESSIONS["agent-only"](tmp_path))
    assert episodes == []


def test_a_rejection_the_agent_moved_on_from_stands_alone_and_an_ignored_failure_is_unresolved(
        tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-blocked")
    s.prompt(1, "Implement * in calc/ops.py")
    [call] = s.reply(2, "Refactoring everything.", [write("calc/__init__.py", "x = 1\n")])
    s.reject(3, call)
    [ops] = s.reply(4, "Understood.", [write("calc/ops.py", s.read("calc/ops.py") + "\n# multiply\n")])
    s.tool_result(5, ops, "File written")
    s.prompt(6, "The multiplication is broken, it returns the wrong result")
    [run] = s.reply(7, "Checking.", [bash("python3 -m pytest -q")])
    s.tool_result(8, run, "1 failed, 2 passed", error=True)
    episodes, events = _episodes(s.build())
    assert [e.resolution for e in episodes] == ["corrected", "unresolved"]
    assert episodes[0].forms == ("S4",)  # a refused write to a file nobody ruled out: overreach
    assert events[episodes[0].index]["kind"] == "tool_rejected"
    assert "S5" in episodes[1].forms


def test_a_rejection_at_the_end_of_the_session_is_blocked(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-end")
    s.prompt(1, "Implement * in calc/ops.py and don't touch calc/__init__.py")
    [call] = s.reply(2, "Also cleaning up the package.", [write("calc/__init__.py", "x = 1\n")])
    s.reject(3, call)
    episodes, events = _episodes(s.build())
    [episode] = episodes
    assert events[episode.index]["kind"] == "tool_rejected"
    assert episode.forms == ("S3",) and episode.resolution == "blocked"
