"""Outcome signals: what the witnessed timeline proves about how the candidate steered the agent.

Every finding here is an outcome, never a word count: an agent edit followed by a failing
test run or a false success claim, and what the candidate did next (corrected it, rejected
it, or accepted it and moved on); a push and whether the pushed tree was tested after the
last edit, weighed by how risky the change was; out-of-scope agent writes and whether they
shipped; who named the template's planted defect first. Words in prompts may label a
finding; they never create one.

Input is `timeline.witnessed_view(events)`: transcript-only events are blanked, so a forged
line cannot make or break a finding. Findings cite event indexes of the real timeline.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from fnmatch import fnmatch
from functools import lru_cache
from typing import Any

from graders.timeline import (
    Event,
    FileWrite,
    TestRun,
    command_of,
    file_writes,
    results_by_tool_use,
    test_runs,
    tool_input,
    tool_name,
    tool_use_id,
)

_I = re.I
CLAIM = re.compile(r"(\ball (\d+ )?(tests|checks) (now )?pass|\btests? (now |all )?pass(es|ing)?\b|\b\d+ passed\b|"
                   r"\b(implementation|it|everything|the (task|feature|work|change)|this) is (now )?"
                   r"(complete|done|finished|working|ready)\b|^\s*done\b|\bdone[.!]|\bfixed\b|\bworks now\b|"
                   r"\beverything works\b|\bshould (now )?work\b|\bready for review\b|\bcompleted?\b|"
                   # Paraphrases: "Implemented: …", "everything in the issue is implemented", "the acceptance
                   # criteria are addressed", "all edge cases covered", "ready to merge", "production-ready".
                   r"^\s*implemented\b|\b(is|are|has been|have been) (now )?(fully )?implemented\b|"
                   r"\b(criteri\w+|requirements?|edge[- ]cases?) (are |is |have been )?(all )?(met|addressed|covered|"
                   r"handled|satisfied)\b|\bready to (merge|ship|push)\b|\bproduction[- ](ready|grade)\b|"
                   r"\bgood to go\b|\bworks as expected\b|\ball set\b)", _I | re.M)
# Markers that silence a test rather than fix the code under it.
SKIP_MARKER = re.compile(r"(pytest\.mark\.(skip|skipif|xfail)\b|pytest\.(skip|xfail)\(|@unittest\.skip|"
                         r"\bunittest\.(skip|expectedFailure)|@expectedFailure\b|\bt\.Skip(Now|f)?\(|"
                         r"\b(it|test|describe)\.(skip|todo)\(|\bxit\(|"
                         r"\bxdescribe\(|#\[ignore\]|@Disabled\b|@Ignore\b|\.skip\(\s*['\"]|"
                         # Tests taken out of the run by configuration rather than marked one by one.
                         r"\bcollect_ignore(_glob)?\b|--deselect\b|--ignore(-glob)?[= ]|\s-k\s*['\"]?not\b)")
ASSERTION = re.compile(r"(\bassert\b|\bself\.assert\w+\(|\bexpect\(|\bassert_\w+\(|\bt\.(Error|Fatal)f?\(|"
                       r"\bpytest\.raises\(|\bshould\.)")
DEFAULT_RISK = re.compile(r"(auth|crypt|secur|token|secret|passw|credential|permission|scope|session|login|"
                          r"sign|hmac|cipher|acl|access|keys?\b|keys?[._/-]|migrat|payment|billing)", _I)
_LOW_RISK_PATH = re.compile(r"\.(md|rst|txt)$|(^|/)docs?/|(^|/)(LICENSE|CHANGELOG|\.gitignore)", _I)


@dataclass
class Finding:
    kind: str
    """mistake | false_claim | unverified_claim | push | scope | defect | rework."""
    index: int
    outcome: str
    evidence: list[int] = field(default_factory=list)
    note: str = ""
    credit: float = 0.0
    """0..1: how well the candidate handled it."""
    until: int | None = None
    """For checks taken out: the run that checked as much again (later pushes are vouched for)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timeline:
    """The witnessed view, indexed the ways the signals need."""

    events: list[Event]
    prompts: list[int]
    writes: list[FileWrite]
    edits: list[int]
    runs: list[TestRun]
    rejections: list[int]
    pushes: list[int]
    prs: list[int]
    claims: list[int]

    @classmethod
    def of(cls, view: list[Event]) -> Timeline:
        writes = [w for w in with_replaced_lines(view, file_writes(view)) if w.applied]
        return cls(
            events=view,
            prompts=[i for i, e in enumerate(view) if e["kind"] == "user_prompt"],
            writes=writes,
            edits=sorted({w.index for w in writes}),
            runs=[r for r in test_runs(view) if r.result is not None and r.failed is not None],
            rejections=[i for i, e in enumerate(view) if e["kind"] in ("tool_rejected", "interrupt")],
            pushes=[i for i, e in enumerate(view) if e["kind"] == "push"],
            prs=[i for i, e in enumerate(view) if e["kind"] == "pr_opened"],
            claims=[i for i, e in enumerate(view) if e["kind"] == "assistant_message" and CLAIM.search(e["text"])],
        )

    def candidate_actions(self) -> list[int]:
        return sorted({*self.prompts, *self.rejections, *self.pushes, *self.prs})

    def shipped(self) -> list[int]:
        """Moments the work left the sandbox: pushes, else the pull request."""
        return self.pushes or self.prs

    def points_at(self, prompt: int, failure: set[str]) -> bool:
        """Whether a prompt points at something concrete: the failing run (a test or error name
        in its output) or code the agent wrote before it (its file or a name in it). "continue"
        and "fix it" point at nothing: the agent that then fixes its failure fixed it alone."""
        said = _names(self.events[prompt]["text"]) | _words(self.events[prompt]["text"])
        if said & failure:
            return True
        return any(said & _names_in(w) for w in self.writes if w.index < prompt)

    def next_after(self, indexes: list[int], start: int, end: int | None = None) -> int | None:
        return next((i for i in indexes if i > start and (end is None or i < end)), None)


# An assertion that cannot fail: `assert True`, `assert x or True`, `assertTrue(1)`, `expect(true).toBe(true)`.
_VACUOUS = re.compile(r"^\s*(assert\s*\(?\s*(True|1|not\s+(False|None|0))\s*\)?\s*(,.*)?$|"
                      r"assert\b.*\bor\s+(True|1)\s*\)?\s*(,.*)?$|self\.assert(True|Equal)\(\s*(True|1)\s*\)|"
                      r"self\.assertEqual\(\s*(?P<same>\w+)\s*,\s*(?P=same)\s*\)|expect\(\s*true\s*\)\.toBe\(\s*true\s*\))",
                      re.I)
TEST_PATH = re.compile(r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]+$|_test\.\w+$|\.(test|spec)\.\w+$", re.I)
"""Test files (a conftest.py outside tests/ is configuration: graders.commits reads it for skips)."""


def live_assertion(line: str) -> bool:
    """An assertion that can fail: not commented out, not vacuous."""
    code = line.strip()
    if not code or code.startswith(("#", "//", "--")) or not ASSERTION.search(code):
        return False
    return not _VACUOUS.match(code)


# An assertion that compares with something (a value, a type, a membership), and one that only
# checks truthiness or existence: `assert x == 42` → `assert x is not None` is a loosening.
_COMPARES = re.compile(r"==|!=|<=|>=|(?<![-=<>])[<>](?![=>])|\bnot in\b|\bin\b|\bis (?!not None\b)|pytest\.approx|"
                       r"\.assert(Equal|NotEqual|In|NotIn|Is|IsNot|Less|Greater|Almost|Count|Regex|Raises)|"
                       r"\bpytest\.raises\(|\.to(Be|Equal|StrictEqual|Match|Throw|Contain)\b")


def _loose(line: str) -> bool:
    return live_assertion(line) and not _COMPARES.search(line)


def weakening_counts(added: list[str] | tuple[str, ...], removed: list[str] | tuple[str, ...]) -> tuple[int, int]:
    """(skip markers added, assertions taken out net): commented out, loosened into ones that
    cannot fail (`assert True`, `... or True`), or from a comparison into a mere truthiness or
    existence check (`assert x == 42` → `assert x is not None`) count as taken out."""
    skips = sum(1 for line in added if SKIP_MARKER.search(line) and not line.strip().startswith(("#", "//")))
    lost = sum(1 for line in removed if live_assertion(line)) - sum(1 for line in added if live_assertion(line))
    comparisons = sum(1 for line in removed if live_assertion(line) and not _loose(line)) - sum(
        1 for line in added if live_assertion(line) and not _loose(line))
    loosened = min(comparisons, sum(1 for line in added if _loose(line)) - sum(1 for line in removed if _loose(line)))
    return skips, max(0, lost) + max(0, loosened)


@dataclass(frozen=True)
class Rewrite(FileWrite):
    """A whole file written again over content the timeline showed: `lines` is the new file,
    `changed` only the lines that were not in it before."""

    changed: tuple[str, ...] = ()


def weakens_tests(write: FileWrite) -> bool:
    """A write that adds a skip marker or takes live assertions out of a test file (or of some
    file a shell command wrote) without putting others in."""
    added = write.changed if isinstance(write, Rewrite) else write.lines
    skips, lost = weakening_counts(added, write.removed)
    return bool(skips) or (bool(lost) and (not write.path or bool(TEST_PATH.search(write.path))))


READ_COMMAND = re.compile(r"^\s*(?:(?:ba)?sh\s+-l?c\s+['\"]?)?(?:cat|head|tail|nl|less|more|sed\s+-n\s+\S+)"
                          r"(?:\s+-\S+)*\s+['\"]?([\w./-]+)['\"]?\s*['\"]?\s*$")
"""A shell command that shows (part of) one file: `cat f`, `sed -n '1,200p' f`, `bash -lc "cat f"`.
Part of a file is enough to see lines a later whole write leaves out."""
_LINE_NUMBER = re.compile(r"^\s*\d+(?:→|\t)")
_WHOLE_FILE_TOOLS = {"write", "write_file", "create"}


def _read_path(event: Event) -> str:
    """The file a read-only call shows (some of): Claude Code's Read, or `cat`, `sed -n`… in a shell."""
    if tool_name(event).lower() in ("read", "read_file", "view"):
        arguments = tool_input(event)
        return str(arguments.get("file_path") or arguments.get("path") or "").removeprefix("/workspace/")
    match = READ_COMMAND.match(command_of(event))
    return match.group(1).removeprefix("/workspace/").removeprefix("./") if match else ""


def _shown(text: str) -> list[str]:
    lines = text.splitlines()
    if lines and all(_LINE_NUMBER.match(line) or not line.strip() for line in lines):
        return [_LINE_NUMBER.sub("", line, count=1) for line in lines]
    return lines


def asdict_shallow(write: FileWrite) -> dict[str, Any]:
    return {f.name: getattr(write, f.name) for f in fields(write)}


def with_replaced_lines(view: list[Event], writes: list[FileWrite]) -> list[FileWrite]:
    """Writes of whole files get the lines they took out (`removed`), from what the timeline
    showed of the file before: an earlier whole write (edits applied to it) or a witnessed
    read of it. Rewriting a test file without its assertions is then seen as taking them out,
    as an edit that deletes them is."""
    results = results_by_tool_use(view)
    known: dict[str, list[str]] = {}
    by_index: dict[int, list[FileWrite]] = {}
    for write in writes:
        by_index.setdefault(write.index, []).append(write)
    out: list[FileWrite] = []
    for index, event in enumerate(view):
        if event["kind"] == "tool_call" and index not in by_index:
            path = _read_path(event)
            result = results.get(tool_use_id(event))
            if path and result is not None and view[result]["kind"] == "tool_result" \
                    and not (view[result].get("data") or {}).get("is_error"):
                known[path] = _shown(str(view[result].get("text") or ""))
        for original in by_index.get(index, []):
            write = original
            call = command_of(event) or str(tool_input(event).get("input") or tool_input(event).get("patch") or "")
            whole = write.tool.lower() in _WHOLE_FILE_TOOLS or f"*** Add File: {write.path}\n" in call or bool(
                write.via_shell and write.path and re.search(
                    r"(?<![>0-9&])>\s*['\"]?" + re.escape(write.path), call.replace("/workspace/", "")))
            if whole and not write.removed and write.path in known:
                gone = Counter(known[write.path]) - Counter(write.lines)
                new = Counter(write.lines) - Counter(known[write.path])
                write = Rewrite(**{**asdict_shallow(write), "removed": tuple(gone.elements()),
                                   "changed": tuple(new.elements())})
            if write.applied and write.path:
                if whole:
                    known[write.path] = list(write.lines)
                elif write.path in known and write.removed:
                    text = "\n".join(known[write.path]).replace("\n".join(write.removed), "\n".join(write.lines), 1)
                    known[write.path] = text.splitlines()
            out.append(write)
    return out


# ----- passes that prove nothing -------------------------------------------------------------------

_RUN_COUNT = re.compile(r"\b(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b", _I)
_TEST_SETUP = re.compile(r"(^|/)(conftest\.py|pytest\.ini|tox\.ini|setup\.cfg)$")
"""Files that decide which tests run (pyproject.toml also holds the code's dependencies: not here)."""


def run_counts(text: str) -> dict[str, int]:
    """pytest's closing tally ("4 failed, 66 passed, 1 skipped"): how many tests ran and how many were set aside."""
    counts: dict[str, int] = {}
    for number, word in _RUN_COUNT.findall(text):
        key = {"error": "errors", "xfailed": "skipped", "deselected": "skipped"}.get(word.lower(), word.lower())
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def _ran(counts: dict[str, int]) -> int:
    return counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0) + counts.get("xpassed", 0)


# pytest options that change how a run reports or stops, never which tests it selects (with or
# without a value); anything else (paths, -k, -m, --deselect, --ignore, -c, unknown) selects.
_PYTEST_QUIET = re.compile(r"^(-[qvsxl]+|-r\w*|--(quiet|verbose|no-header|no-summary|showlocals|disable-warnings|"
                           r"strict-markers|exitfirst|capture=\S+|tb=\S+|color=\S+|durations=\d+|maxfail=\d+|"
                           r"code-highlight=\S+)|-W\S+|-p\S+|-n\S+|--numprocesses=\S+)$")
_PYTEST_QUIET_VALUE = frozenset({"-W", "-p", "-n", "--tb", "--color", "--durations", "--maxfail", "--capture",
                                 "--numprocesses"})
_RUNNER = re.compile(r"(^|/)(py\.test|pytest)$")


@lru_cache(maxsize=4096)
def selection(command: str) -> str:
    """Which tests a command runs, for comparing two runs' tallies: a pytest run is its selecting
    arguments (paths without `./` or a trailing `/`, -k, -m, …) whatever spells the runner
    (`pytest`, `python3 -m pytest`, `.venv/bin/pytest`) and whatever only changes its report
    (-q, -v, --tb, a pipe into `tail`); a directory it `cd`s into first is kept. Other runners:
    the command with its spacing normalised. Spelling the same run differently must not hide
    fewer tests, and a narrower selection (one file, `-k`) must not look like fewer tests."""
    plain = " ".join(command.split())
    try:
        tokens = shlex.split(command, posix=True)
    except ValueError:
        return plain
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in ("&&", ";", "||", "|"):
            segments.append([])
        else:
            segments[-1].append(token)
    places = [cd[1] for cd in segments if len(cd) == 2 and cd[0] == "cd"]
    for segment in segments:
        start = next((i + 1 for i, token in enumerate(segment) if _RUNNER.search(token)), None)
        if start is not None:
            return "pytest " + " ".join([*(f"cd:{p}" for p in places), *_selecting(segment[start:])])
    return plain


def _selecting(arguments: list[str]) -> list[str]:
    """A pytest command's arguments less those that only change its report, paths normalised."""
    picked: list[str] = []
    skip = False
    for token in arguments:
        if skip:
            skip = False
        elif token in _PYTEST_QUIET_VALUE or re.match(r"^\d*[<>]+&?$", token):
            skip = True  # the option's value, or a redirection's target, is the next word
        elif _PYTEST_QUIET.match(token) or re.match(r"^\d*[<>]", token):
            continue  # a report option, or a redirection (`2>&1`, `>out.txt`)
        elif token.startswith("-"):
            picked.append(token)
        else:
            picked.append(token.removeprefix("./").rstrip("/") or ".")
    return picked


def silenced_passes(t: Timeline) -> list[Finding]:
    """Passing runs that prove nothing, from outcomes rather than syntax: after a failing run of
    the agent's change, only the tests changed (no other file was written) and the next run
    passed with fewer tests run, more set aside (skipped, xfailed, deselected), or assertions
    taken out or loosened. However it was written (an edit, a patch, a whole file, a marker),
    a test that failed on the change and then passes without the code changing, having lost
    checks, was weakened. A test corrected one assertion for another (the test was wrong) or
    changed together with the code (the spec changed) is not: nothing was set aside."""
    findings: list[Finding] = []
    runs = sorted(t.runs, key=lambda r: r.result or 0)
    for position, run in enumerate(runs):
        if not run.failed or run.result is None or not any(e < run.call for e in t.edits):
            continue
        passing = next((r for r in runs[position + 1:] if r.failed is False), None)
        if passing is None or passing.result is None:
            continue
        if any(r.failed for r in runs[position + 1:] if r.call < passing.call):
            continue  # a later failing run opens its own window
        window = [w for w in t.writes if run.result < w.index < passing.call]
        tests = [w for w in window if w.path and (TEST_PATH.search(w.path) or _TEST_SETUP.search(w.path))]
        if not tests or len(tests) < len(window):
            continue  # nothing changed, or the code changed too: the code may have been fixed
        before = run_counts(str(t.events[run.result].get("text") or ""))
        after = run_counts(str(t.events[passing.result].get("text") or ""))
        reasons: list[str] = []
        # Tallies compare only when the same command ran both times: a rerun of one file is not fewer tests.
        if selection(run.command) != selection(passing.command):
            before, after = {}, {}
        if _ran(before) and _ran(after) < _ran(before):
            reasons.append(f"{_ran(before) - _ran(after)} fewer test(s) ran "
                           f"({_ran(before)} before, {_ran(after)} after)")
        if after.get("skipped", 0) > before.get("skipped", 0):
            reasons.append(f"{after['skipped'] - before.get('skipped', 0)} more test(s) set aside")
        lost = [w for w in tests if weakens_tests(w)]
        if lost:
            reasons.append("assertions taken out or loosened, or skip markers added, in "
                           + ", ".join(sorted({w.path for w in lost})))
        if reasons:
            evidence = [run.call, run.result, *(w.index for w in tests[:5]), passing.call, passing.result]
            findings.append(Finding("weakened", passing.result, "silenced", sorted(set(evidence)),
                                    "the failing tests passed only after the tests changed and the code did not: "
                                    + "; ".join(reasons), 0.0))
    return findings


# ----- mistakes and claims ------------------------------------------------------------------------

def mistakes(t: Timeline, weakened_paths: frozenset[str] = frozenset()) -> list[Finding]:
    """Agent mistakes shown by a failing test run after an agent edit, and what happened next.

    An episode opens at the first failing run after an edit and closes at the next passing
    run or when the work ships. `caught`: the candidate stepped in (a prompt or a rejection)
    and a passing run followed before anything shipped. `pushed_back`: the candidate stepped
    in but nothing passed before it shipped or the session ended. `accepted`: it shipped
    while the run was still failing. `silenced`: the run passed only after a test was
    skipped or its assertions removed (seen in the write, or `weakened_paths`: test files the
    shipped diff weakens). `self_fixed` (the agent fixed its own failure with no help) is
    listed and not counted. Stepping in means something changed: a rejection, or a prompt
    the agent answered with an edit; an "ok" that let the failure ship is accepting it.
    """
    findings: list[Finding] = []
    shipped = t.shipped()
    position = 0
    runs = sorted(t.runs, key=lambda r: r.result or 0)
    hollow = {f.index for f in silenced_passes(t)}
    while position < len(runs):
        run = runs[position]
        position += 1
        assert run.result is not None  # noqa: S101 - filtered in Timeline.of
        if not run.failed or not any(e < run.call for e in t.edits):
            continue
        passing = next((r for r in runs[position:] if r.failed is False), None)
        end_pass = passing.result if passing else None
        ship = t.next_after(shipped, run.result)
        end = min(x for x in (end_pass, ship, len(t.events)) if x is not None)
        failure = _names(t.events[run.result]["text"])
        stepped_in = [i for i in t.rejections if run.result < i < end] + [
            p for p in t.prompts if run.result < p < end and any(p < e < end for e in t.edits)
            and t.points_at(p, failure)]
        silenced = [w.index for w in t.writes if run.result < w.index < end
                    and (weakens_tests(w) or w.path in weakened_paths)]
        evidence = [run.call, run.result, *stepped_in[:3]]
        if (silenced or end_pass in hollow) and end_pass is not None and end == end_pass:
            outcome, credit, note = "silenced", 0.0, "the failing run passed only after tests were weakened"
            evidence += [*silenced[:3], end_pass]
        elif end_pass is not None and end == end_pass:
            outcome = "caught" if stepped_in else "self_fixed"
            credit = 1.0
            note = ("the candidate stepped in and the tests then passed" if stepped_in
                    else "the agent fixed its own failure")
            evidence.append(end_pass)
        elif ship is not None and end == ship:
            outcome = "pushed_back" if stepped_in else "accepted"
            credit = 0.5 if stepped_in else 0.0
            note = "shipped while the last test run was failing"
            evidence.append(ship)
        else:
            outcome = "pushed_back" if stepped_in else "abandoned"
            credit = 0.5 if stepped_in else 0.0
            note = "no passing run followed"
        findings.append(Finding("mistake", run.result, outcome, sorted(set(evidence)), note, credit))
        # Later failures before the episode closed belong to it.
        while position < len(runs) and (runs[position].result or 0) < end:
            position += 1
    return findings


def claims(t: Timeline) -> list[Finding]:
    """Agent success claims checked against the witnessed runs, and what the candidate did next.

    A claim after a failing run (with no passing run since) is false; a claim after an
    edit with no run since is unverified. Either is `caught` when the candidate's next
    move is a prompt or rejection that a passing run follows before the work ships,
    `checked` (unverified claims) when a run follows before shipping, and `accepted` when
    the work shipped or the session ended on the claim.
    """
    findings: list[Finding] = []
    shipped = t.shipped()
    hollow = silenced_passes(t)
    for claim in t.claims:
        last_run = next((r for r in sorted(t.runs, key=lambda r: -(r.result or 0)) if (r.result or 0) < claim), None)
        # A pass over weakened tests backs nothing: the claim rests on the failure it hid.
        weakened_before = next((f for f in hollow if f.index < claim), None)
        last_edit = next((e for e in reversed(t.edits) if e < claim), None)
        if last_edit is None:
            continue  # nothing was built yet: a plan, not a claim about work
        over_weakened = weakened_before is not None and last_run is not None and last_run.failed is False
        if over_weakened or (last_run is not None and last_run.failed and last_run.call > last_edit):
            kind = "false_claim"
        elif last_run is None or last_run.call < last_edit:
            kind = "unverified_claim"
        else:
            continue  # backed by a passing run after the last edit
        ship = t.next_after(shipped, claim)
        limit = ship if ship is not None else len(t.events)
        hollow_at = {f.index for f in hollow}
        later_pass = next((r.result for r in t.runs if r.failed is False and claim < (r.result or 0) < limit
                           and r.result not in hollow_at), None)
        silenced_after = next((f for f in hollow if claim < f.index < limit), None)
        failure = _names(t.events[last_run.result]["text"]) if last_run and last_run.result is not None else set()
        actions = [i for i in t.rejections if claim < i < limit] + [
            p for p in t.prompts if claim < p < limit and any(p < e < limit for e in t.edits)
            and t.points_at(p, failure)]
        evidence = [claim] + ([last_run.result] if last_run and last_run.result is not None else [])
        if later_pass is not None and (actions or kind == "unverified_claim"):
            outcome, credit = ("caught" if actions else "checked"), 1.0
            evidence += [*actions[:2], later_pass]
        elif silenced_after is not None or (weakened_before is not None and kind == "false_claim"):
            # "Get it green" answered by weakening the tests is acceptance of the failure, not a catch.
            outcome, credit = "silenced", 0.0
            evidence += (silenced_after or weakened_before or Finding("", 0, "")).evidence[:4]
        elif actions and kind == "false_claim":
            outcome, credit = "pushed_back", 0.5
            evidence += actions[:2]
        else:
            outcome, credit = "accepted", 0.0
            if ship is not None:
                evidence.append(ship)
        note = ("the agent claimed success backed only by a run over weakened tests"
                if weakened_before is not None and kind == "false_claim"
                else "the agent claimed success after a failing run" if kind == "false_claim"
                else "the agent claimed success with no test run since its last edit")
        findings.append(Finding(kind, claim, outcome, sorted(set(evidence)), note, credit))
    return findings


# ----- verification before each push ---------------------------------------------------------------

def risk_of(paths: list[str], risk_globs: tuple[str, ...]) -> str:
    """high (auth, crypto, keys… or the template's risk globs), low (docs only), else normal."""
    if not paths:
        return "normal"  # what the push carried is unknown (history rewritten since): no benefit of the doubt
    code = [p for p in paths if not _LOW_RISK_PATH.search(p)]
    if not code:
        return "low"
    if risk_globs:
        return "high" if any(fnmatch(p, g) for p in code for g in risk_globs) else "normal"
    return "high" if any(DEFAULT_RISK.search(p) for p in code) else "normal"


def pushes_verified(t: Timeline, pushed_paths: dict[int, list[str]], risk_globs: tuple[str, ...],
                    weakened: dict[int, bool]) -> list[Finding]:
    """For each push: was the pushed tree tested after the agent's last edit before it?

    `pushed_paths`: event index of a push → paths the push changed; `weakened`: push →
    whether the pushed tree skips or strips tests (a passing run then proves nothing).
    """
    findings: list[Finding] = []
    for push in t.shipped():
        last_edit = next((e for e in reversed(t.edits) if e < push), None)
        runs_before = [r for r in t.runs if (r.result or 0) < push]
        after_edit = [r for r in runs_before if last_edit is None or r.call > last_edit]
        risk = risk_of(pushed_paths.get(push, []), risk_globs)
        last = after_edit[-1] if after_edit else None
        evidence = [push] + ([last_edit] if last_edit is not None else [])
        if last is not None and last.result is not None:
            evidence.append(last.result)
        if last is not None and last.failed:
            outcome, credit = "pushed_failing", 0.0
        elif last is not None and weakened.get(push):
            outcome, credit = "tests_weakened", 0.0
        elif last is not None:
            outcome, credit = "tested", 1.0
        elif risk == "low":
            continue  # docs only: nothing to test, and no evidence of anything either way
        else:
            outcome = f"untested_{risk}_risk"
            credit = {"normal": 0.25, "high": 0.0}[risk]
        note = f"{risk}-risk change ({', '.join(pushed_paths.get(push, [])[:4]) or 'no file'})"
        findings.append(Finding("push", push, outcome, sorted(set(evidence)), note, credit))
    return findings


# ----- scope ---------------------------------------------------------------------------------------

def scope_held(t: Timeline, allowed: tuple[str, ...], forbidden: set[str], shipped_paths: set[str],
               rejected_writes: list[FileWrite]) -> list[Finding]:
    """Agent writes outside the brief's scope or to paths the candidate ruled out: stopped, reverted or shipped."""
    findings: list[Finding] = []

    def outside(path: str) -> bool:
        if not path:
            return False
        if path in forbidden:
            return True
        return bool(allowed) and not any(fnmatch(path, g) or fnmatch(path, g.rstrip("*").rstrip("/") + "/*")
                                         for g in allowed)

    seen: set[str] = set()
    for write in rejected_writes:
        if outside(write.path) and write.path not in seen:
            seen.add(write.path)
            findings.append(Finding("scope", write.index, "stopped", [write.index], write.path, 1.0))
    for write in t.writes:
        if outside(write.path) and write.path not in seen:
            seen.add(write.path)
            shipped = write.path in shipped_paths
            findings.append(Finding("scope", write.index, "shipped" if shipped else "reverted", [write.index],
                                    write.path, 0.0 if shipped else 1.0))
    return findings


# ----- the planted defect --------------------------------------------------------------------------

def defect_named(t: Timeline, keywords: list[re.Pattern[str]], spec_times: list[tuple[datetime, str]],
                 first_agent_time: datetime | None) -> Finding:
    """Who named the template's planted defect first: a candidate prompt (or a spec the host saw
    pushed) before any agent output did, the agent, or nobody."""
    def names(text: str) -> bool:
        return any(pattern.search(text) for pattern in keywords)

    candidate = next((i for i in t.prompts if names(t.events[i]["text"])), None)
    agent = next((i for i, e in enumerate(t.events)
                  if e["kind"] in ("assistant_message", "tool_call") and names(_call_text(e))), None)
    spec_first = any(first_agent_time is None or moment < first_agent_time for moment, text in spec_times
                     if names(text))
    if spec_first or (candidate is not None and (agent is None or candidate < agent)):
        evidence = [candidate] if candidate is not None else []
        return Finding("defect", candidate if candidate is not None else -1, "candidate_first", evidence,
                       "the candidate named the defect before the agent did", 1.0)
    if agent is not None and candidate is not None:
        return Finding("defect", agent, "agent_first_followed_up", [agent, candidate],
                       "the agent named it; the candidate followed it up", 0.5)
    if agent is not None:
        return Finding("defect", agent, "agent_only", [agent], "only the agent named it", 0.25)
    return Finding("defect", -1, "nobody", [], "nobody named the planted defect", 0.0)


def _call_text(event: Event) -> str:
    if event["kind"] == "tool_call":
        return str(event["text"]) + " " + str((event.get("data") or {}).get("input") or "")
    return str(event["text"])


# ----- review of the agent's code ------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}")
_DEFINED = re.compile(r"^\s*(?:async\s+)?(?:def|class|func|function|fn|const|let|var|type)\s+([A-Za-z_]\w{3,})|"
                      r"^\s*([A-Za-z_]\w{3,})\s*[:=]", re.M)


def _identifier(name: str) -> bool:
    """A name only code has: snake_case, camelCase, CONSTANT or letters with digits (sha256,
    base64), not an English word."""
    return "_" in name.strip("_") or name.startswith("_") or (any(c.isupper() for c in name[1:])
                                                              and not name.isupper()) or name.isupper() \
        or (any(c.isdigit() for c in name) and any(c.isalpha() for c in name))


def _names(text: str) -> set[str]:
    """Identifiers in a text (test names, error classes, snake_case and CamelCase names, file names)."""
    found = {n.lower() for n in _NAME.findall(text) if _identifier(n)}
    found |= {m.lower() for m in re.findall(r"[\w-]+\.(?:py|js|ts|go|rs|rb|java)\b", text)}
    return found


def _words(text: str) -> set[str]:
    """Words as written, and technical ones also as code spells them ("SHA-256" is sha256)."""
    found = {w.lower().strip("`'\".,:;()[]") for w in text.split()}
    return found | {re.sub(r"[^a-z0-9_]", "", w) for w in found if any(c.isdigit() for c in w)}


def _names_in(write: FileWrite) -> set[str]:
    """What a prompt can point at in an agent write: the file's name, the names the write
    defines, and the identifiers it uses (never plain words such as "return")."""
    names = {n.lower() for line in write.lines for n in _NAME.findall(line) if _identifier(n)}
    names |= {(m.group(1) or m.group(2)).lower() for m in _DEFINED.finditer("\n".join(write.lines))}
    if write.path:
        base = write.path.rsplit("/", 1)[-1]
        names |= {base.lower(), base.rsplit(".", 1)[0].lower()}
    return {n for n in names if len(n) >= 4}


def _answered_at(t: Timeline, prompt: int) -> int | None:
    """The prompt that closes the exchange a correction opens: the agent may first ask back with
    words only ("are you sure? the brief says…") and act after the candidate's answer, so the
    exchange runs on through each prompt that answers an agent question asked with no write
    since; any other prompt (a new request) closes it."""
    current = prompt
    while True:
        nxt = t.next_after(t.prompts, current)
        if nxt is None or any(current < e < nxt for e in t.edits):
            return nxt
        last_word = next((t.events[i] for i in range(nxt - 1, current, -1)
                          if t.events[i]["kind"] == "assistant_message"), None)
        if last_word is None or not str(last_word["text"]).rstrip().endswith("?"):
            return nxt
        current = nxt


def _fewer_checks(before: TestRun, after: TestRun, texts: list[Event]) -> str:
    """Why the passing run after a correction checks less than the passing run before it (the
    same command ran fewer tests or set more aside), or "" when it does not."""
    if before.result is None or after.result is None or before.failed is not False or after.failed is not False:
        return ""
    if selection(before.command) != selection(after.command):
        return ""  # a rerun of one file is not fewer tests
    was = run_counts(str(texts[before.result].get("text") or ""))
    now = run_counts(str(texts[after.result].get("text") or ""))
    if _ran(was) and _ran(now) < _ran(was):
        return f"{_ran(was) - _ran(now)} fewer test(s) ran ({_ran(was)} before, {_ran(now)} after)"
    if now.get("skipped", 0) > was.get("skipped", 0):
        return f"{now['skipped'] - was.get('skipped', 0)} more test(s) set aside"
    return ""


def _checks_lost(t: Timeline, prompt: int, rewrite: int, nxt: int | None) -> tuple[str, TestRun | None,
                                                                               TestRun | None]:
    """Each run of the tree the answer left (until the next write after the exchange, whoever asked
    for the run), against the last run of the same selection of tests before the correction, when
    that run passed: which command ran last before it, or first after, changes nothing. Returns why
    it checks less ("" when none does), that earlier run and the run that checks less."""
    changed = next((w.index for w in t.writes if w.index >= (nxt or len(t.events))), len(t.events))
    for run in (r for r in t.runs if rewrite < r.call < changed):
        same = next((r for r in reversed(t.runs) if (r.result or 0) < prompt
                     and selection(r.command) == selection(run.command)), None)
        fewer = _fewer_checks(same, run, t.events) if same is not None else ""
        if fewer:
            return fewer, same, run
    return "", None, None


def rework_rounds(t: Timeline) -> list[Finding]:
    """Candidate prompts that sent the agent back to code it had written: the prompt points at
    that code (its file or a name in it) and the agent then rewrote the same file; after a
    failing run, a prompt that names the failure or the code and is answered by any rewrite
    (that correction is also a caught mistake). A rewrite that skips or strips tests is
    `weakened`, never credit. Length and wording play
    no part: "continue" points at nothing, a page of rubric words neither.

    A correction is judged by what it did to the work, not by its form: one made to code whose
    tests passed, answered by a change after which the same test command passes with fewer
    tests (or more set aside), took out checks that held: `stripped`, a cost like pushback that
    broke passing tests. The exchange runs until the agent acts, so a correction the agent first
    questions and the candidate then confirms is one round (the agent's objection is cited)."""
    findings: list[Finding] = []
    failures = {r.result for r in t.runs if r.failed}
    answered: set[int] = set()
    for prompt in t.prompts:
        before = [w for w in t.writes if w.index < prompt]
        if not before or prompt in answered:
            continue
        previous_prompt = max((p for p in t.prompts if p < prompt), default=-1)
        failed_before = [f for f in failures if f is not None and previous_prompt < f < prompt]
        nxt = _answered_at(t, prompt)
        words = _words(t.events[prompt]["text"]) | _names(t.events[prompt]["text"])
        pointed = {w.path for w in before if w.path and _names_in(w) & words}
        # A correction after a failing run is review too when it names the agent's code or the
        # failure (a test, an error): the candidate read what the agent did; "fix it" reads nothing.
        answers_failure = bool(failed_before) and t.points_at(
            prompt, set().union(*(_names(t.events[f]["text"]) for f in failed_before)))
        rewrite = next((w for w in t.writes if prompt < w.index < (nxt or len(t.events))
                        and (w.path in pointed or answers_failure)), None)
        # Wording earns credit, never dodges a cost: an answer that rewrote code the agent had
        # written and took out checks that held is stripping however the prompt was put ("drop the
        # zero check" names no file or identifier). Such a prompt is judged for that alone, and
        # only when code changed with the tests: tests merged into fewer cases check no less.
        unpointed = rewrite is None
        if unpointed:
            mine = {w.path for w in before if w.path and not TEST_PATH.search(w.path)}
            rewrite = next((w for w in t.writes if prompt < w.index < (nxt or len(t.events)) and w.path in mine),
                           None)
        if rewrite is None:
            continue
        window = [w for w in t.writes if prompt < w.index < (nxt or len(t.events))]
        if not unpointed:
            # Prompts inside the exchange (the candidate's answer to the agent's question) belong to it.
            answered |= {p for p in t.prompts if prompt < p < rewrite.index}
        if not unpointed and any(weakens_tests(w) for w in window):
            findings.append(Finding("rework", prompt, "weakened", sorted({prompt, *(w.index for w in window[:3])}),
                                    "the agent answered by skipping or stripping tests", 0.0))
            continue
        before_run = next((r for r in reversed(t.runs) if (r.result or 0) < prompt), None)
        after_run = next((r for r in t.runs if r.call > rewrite.index), None)
        note = f"{'asked for a change to' if unpointed else 'sent the agent back to'} {rewrite.path or 'its code'}"
        fewer, same, compared = _checks_lost(t, prompt, rewrite.index, nxt)
        if unpointed and not fewer:
            continue
        if fewer and not any(w.path and not (TEST_PATH.search(w.path) or _TEST_SETUP.search(w.path))
                             for w in window):
            # Only tests changed: the code is what the last full run before tested, so nothing it
            # vouched for was lost (tests merged into fewer cases check no less). Neither cost nor credit.
            answered |= {p for p in t.prompts if prompt < p < rewrite.index}
            findings.append(Finding("rework", prompt, "tests_reduced", sorted({prompt, rewrite.index}),
                                    note + f"; only tests changed, the code as last tested: {fewer}", 0.0))
            continue
        if fewer and compared is not None and same is not None:
            answered |= {p for p in t.prompts if prompt < p < rewrite.index}
            # The agent's answers between the correction and its change (an objection, a question).
            said = [i for i in range(prompt + 1, rewrite.index) if t.events[i]["kind"] == "assistant_message"
                    and not any(prompt < w.index < i for w in t.writes)]
            # A later passing run of the same selection that checks as much as before put them back.
            back = next((r.result for r in t.runs if (r.result or 0) > (compared.result or 0)
                         and selection(r.command) == selection(same.command) and r.failed is False
                         and not _fewer_checks(same, r, t.events)), None)
            findings.append(Finding("rework", prompt, "stripped",
                                    sorted({prompt, *said[:2], *(p for p in answered if prompt < p < rewrite.index),
                                            *(w.index for w in window[:3]), same.result or 0,
                                            compared.result or 0}),
                                    note + f"; the tests passed before and the answer took checks out: {fewer}"
                                    + (f" (put back: event {back})" if back is not None else ""), 0.0, back))
            continue
        if before_run is not None and before_run.failed is False and after_run is not None and after_run.failed:
            # The code passed its tests before the candidate's pushback and fails after it.
            findings.append(Finding("rework", prompt, "regressed",
                                    sorted({prompt, rewrite.index, before_run.result or 0, after_run.result or 0}),
                                    note + "; tests that passed before now fail", 0.0))
            continue
        passing = after_run.result if after_run is not None and after_run.failed is False else None
        findings.append(Finding("rework", prompt, "validated" if passing else "unvalidated",
                                sorted({prompt, rewrite.index, *([passing] if passing else [])}),
                                note, 1.0 if passing else 0.25))
    return findings
