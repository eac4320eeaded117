"""Spec quality: how clearly the candidate told the agent what to build, and whether that made corrections unnecessary.

Material: the candidate's prompts that the gateway saw (transcript-only prompts are left
out: they may be forged), any spec or design file the candidate added or changed in the
repo (SPEC.md, DESIGN.md, PLAN.md, docs/…, ADRs) and the agent's witnessed reads of such
files. The spec is what the agent had been told before each of its edits: before its first
edit, the prompts sent before it and the spec files the host saw pushed before it or the
agent read before it (a SPEC.md the candidate pointed it at); then every prompt that started
another piece of work (a spec given piece by piece). A spec file written afterwards describes
the work; it shaped nothing. A requirement counts only when the shipped work (code, tests, a
witnessed run) carries it; items the agent put forward itself and the candidate only
approved ("sha256 is fine") are the agent's design, not the candidate's spec.

Plain words and code terms alike: a piece of work (the agent's writes between two prompts) is
built as told when no later prompt had lines of it taken back out for something it had not
been told, and what shipped passes every must-pass hidden test of the brief. That outcome,
not the wording, shows the telling was clear. Scored on outcomes:

- upfront: a spec file with concrete requirements that reached the agent before it built,
  or prompts before its first edit that carried concrete requirements (code, endpoints,
  values, the planted defect, and then names of code in the starter); or the share of the
  pieces built as told (at most 3: each piece was built without knowing the rest); nothing
  when the agent built nothing;
- acceptance_checked: concrete acceptance items of the spec (`evaluate("1 / 0")`,
  `404`, `/v1/keys`, `KeyError`, `test_rotation`) that the work later checked: found in
  the tests the candidate shipped or in a test run the gateway saw; or pieces built as told
  that came with tests a witnessed run passed;
- defect_specified (templates with a planted defect): the spec named the defect before the
  agent built, so nobody had to catch it; a quarter when its hidden tests still fail;
- constraints_honoured: checkable constraints (files not to touch, "only change …", a
  "Scope:" line, no new dependencies or only a named one) and whether what shipped respected
  them (weighs half);
- rework_avoided: rounds in which the candidate sent the agent back to its code (the prompt
  names the code, or the next piece takes out lines the agent wrote) bringing something it
  had not been told (the spec left it open), or agent questions whose answer supplied a
  requirement the spec lacked. A correction that holds the agent to what it had been told
  (the same item, or a run of the same words, the brief's included), or a question the agent
  asks after its own work failed a run, is the agent straying from the spec: steering's
  catch, never a cost here.

Length and rubric words ("acceptance criteria", "must", "robust", "production-grade", "==")
score nothing on their own. The LLM judge, when configured, reads the same material with a
fixed rubric and moves each criterion by a bounded amount, quotes checked.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import TEST_PATH
from graders.judge import configured, consult, judge_moves, not_done
from graders.outcomes import READ_COMMAND, Timeline, rework_rounds
from graders.pushback import forbidden_paths
from graders.repo import Repo, Revision, choose_revision, open_repo
from graders.timeline import (
    Event,
    FileWrite,
    command_of,
    commit_times,
    results_by_tool_use,
    test_runs,
    tool_input,
    tool_name,
    tool_use_id,
    transcript_only,
    unverifiable,
    without_agent,
    witnessed,
    witnessed_view,
    words,
)
from orchestrator.errors import EvidenceError
from orchestrator.evidence.bundle import Bundle
from orchestrator.evidence.events import parse_ts

SPEC_FILE = re.compile(r"(^|/)(spec|specification|design|plan|proposal|adr|rfc|requirements|tasks?)[^/]*\.(md|txt|rst)$"
                       r"|(^|/)(docs|adr|design|specs?)/[^/]+\.(md|txt|rst)$|\.spec\.md$", re.I)
_IDENTIFIER_DEF = re.compile(
    r"^\s*(?:async\s+)?(?:def|class|func|function|fn|interface|struct|type)\s+([A-Za-z_]\w{2,})", re.M)
_TOKEN = re.compile(r"[A-Za-z_][\w./-]*\w")
# Concrete acceptance items: code in backticks, calls compared with a value, endpoints,
# HTTP statuses next to a word that makes them one, exception and test names.
_ITEMS = (
    re.compile(r"`([^`\n]{1,80})`"),
    re.compile(r"(\b\w+\([^()\n]{0,60}\)\s*(?:==|->|returns?|raises?)\s*[^\s,;]+)"),
    re.compile(r"(?:GET|POST|PUT|PATCH|DELETE)\s+(/[\w{}/.:-]+)"),
    re.compile(r"(?<![\w/])(/v\d+/[\w{}/.:-]+)"),
    re.compile(r"\b(?:status|answers?|returns?|gets?|responds? with|code)\s+(?:an?\s+)?([1-5]\d\d)\b", re.I),
    re.compile(r"\b([1-5]\d\d)\s+(?:status|response|error|for|when|if|on)\b", re.I),
    re.compile(r"\b([A-Z]\w*(?:Error|Exception))\b"),
    re.compile(r"(?<![/\w])(test_\w{3,})\b(?!\.\w)"),  # a test's name, not a test module's path
)
# Named things a spec pins down that the work can carry: environment variables and constants,
# algorithms and formats, sizes with their unit, snake_case fields and parameters, signatures.
# They count only when the shipped work (code, tests or a witnessed run) carries them: a name
# nobody built or checked shaped nothing, and stuffing names moves no score.
_NAMED = (
    re.compile(r"\b([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)\b"),
    re.compile(r"\b([A-Z]{2,}[A-Z0-9]*(?:-[A-Z0-9]+)+)\b"),
    re.compile(r"\b(hmac|sha-?\d{3}|aes-?gcm|aes-?\d{3}|rsa|ecdsa|ed25519|bcrypt|scrypt|argon2(?:id)?|pbkdf2|hkdf|"
               r"chacha20(?:-poly1305)?|base64|uuid4?|jwt|iso[- ]?8601)\b", re.I),
    re.compile(r"\b(\d+\+?[ -]?(?:bytes?|bits?|char(?:acter)?s?|seconds?|minutes?|hours?|days?|ms))\b", re.I),
    re.compile(r"(?<![/\w.])([a-z][a-z0-9]*(?:_[a-z0-9]+)+_?)(?![\w/]|\.\w)"),
    re.compile(r"\b([A-Za-z_]\w*\([^()\n]{2,80}\))"),
)
_NO_NEW_DEPS = re.compile(r"\bno new (dependenc\w*|librar\w*|packages?|deps)\b|\b(don'?t|do not|never) add "
                          r"(any )?(new )?(dependenc\w*|librar\w*|packages?)\b", re.I)
# A named allowance: "cryptography is the only new dependency", "no (new) dependency besides
# cryptography" (also except / other than / apart from / beyond): checkable against the names
# the shipped dependency files add, and specific enough to count when honoured.
_ONLY_DEP = re.compile(r"\b([A-Za-z][\w.-]*) (?:is|as) the only (?:new |extra |added )?(?:dependenc\w*|librar\w*|"
                       r"packages?|deps?)\b|\bno (?:new |other |extra )?(?:dependenc\w*|librar\w*|packages?|deps?) "
                       r"(?:besides|except(?: for)?|other than|apart from|beyond|but) ([A-Za-z][\w.-]*)"
                       r"|\bonly (?:new |extra |added )?(?:dependenc\w*|librar\w*|packages?|deps?)\s*(?::|is|=)\s*`?"
                       r"([A-Za-z][\w.-]*)", re.I)
# A dependency spec in an added line: "cryptography>=42", cryptography==42.0, left-pad: ^1.0.
_DEP_SPEC = re.compile(r"""^\s*["']?([A-Za-z][\w.-]*)(?:\[[\w,\s-]+\])?\s*(?:[<>=~!^]=?|["']?\s*:|;|["']?\s*,?\s*$)""")
_DEP_QUOTED = re.compile(r"""["']([A-Za-z][\w.-]*)(?:\[[\w,\s-]+\])?\s*(?:[<>=~!^]=?[^"']*)?["']""")
# "tests/test_x.py is the acceptance test …; leave it as it is": the sentence's first path stays.
_LEAVE_IT = re.compile(r"\b(?:leave it|keep it|it stays?|it must stay|it remains?)\s*(?:as it is|alone|unchanged|"
                       r"untouched|as is)\b|\b(?:stays?|remains?|must stay) (?:unchanged|as (?:it )?is)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")
_ONLY_CHANGE = re.compile(r"\bonly (?:change|touch|modify|edit)\s+((?:[^.;\n]|\.(?=\S)){1,160})"
                          r"|^[\s#*-]*(?:scope|in scope|files in scope)\s*:\s*((?:[^.;\n]|\.(?=\S)){1,160})",
                          re.I | re.M)
_PATHISH = re.compile(r"[\w./-]+\.\w+|[\w-]+/[\w./-]*")
DEPENDENCY_FILES = re.compile(r"(^|/)(pyproject\.toml|requirements[^/]*\.txt|setup\.(py|cfg)|Pipfile(\.lock)?|"
                              r"poetry\.lock|uv\.lock|package(-lock)?\.json|yarn\.lock|pnpm-lock\.yaml|go\.(mod|sum)|"
                              r"Cargo\.(toml|lock)|Gemfile(\.lock)?)$")
_LADDER = (0.0, 2.0, 3.0, 4.0)
TRUSTS = ("Gateway-witnessed prompts and agent edits, test runs the gateway saw, spec files and the shipped diff from "
          "the repo bundle (host), spec push times from the host's push log. Transcript-only prompts are left out.")


@dataclass(frozen=True)
class Source:
    ref: str
    """Evidence ref: `event:<i>` for a prompt, `commit:<sha>` for a spec file."""
    label: str
    text: str


def _ladder(hits: int) -> float:
    return _LADDER[min(max(hits, 0), len(_LADDER) - 1)]


def _norm(text: str) -> str:
    return " ".join(text.replace("'", '"').split()).lower()


def concrete_items(text: str, carried: set[str] | None = None) -> set[str]:
    """The concrete, checkable things a spec says; rubric words alone yield none. With
    `carried` (the tokens of the shipped work), also the named things the work carries."""
    found: set[str] = set()
    for pattern in _ITEMS + (_NAMED if carried is not None else ()):
        for match in pattern.finditer(text):
            item = _norm(match.group(1))
            # Backticks make nothing concrete on their own: `robust` in backticks is still a word.
            if any(ch.isalnum() for ch in item) and len(item) >= 3 and (
                    carried is None or _carried(item, carried)):
                found.add(item)
    return found


def added_dependencies(lines: list[str]) -> frozenset[str]:
    """Package names that added lines of dependency files declare (not keys such as `version`)."""
    names: set[str] = set()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("["):
            continue
        key, sep, value = text.partition("=")
        if sep and not key.strip().startswith(("'", '"')) and re.fullmatch(r"[\w.-]+", key.strip()) \
                and not value.startswith("="):
            # `dependencies = ["cryptography>=42"]`: only quoted specs in a list count.
            if value.strip().startswith("[") and re.search(r"depend|require", key, re.I):
                names.update(m.group(1).lower() for m in _DEP_QUOTED.finditer(value))
            continue
        quoted = [m.group(1).lower() for m in _DEP_QUOTED.finditer(text)]
        if quoted:
            names.update(quoted[:1] if ":" in text else quoted)
        elif (spec := _DEP_SPEC.match(text)) is not None:
            names.add(spec.group(1).lower())
    return frozenset(names)


def left_as_is(text: str) -> set[str]:
    """Paths a spec says to leave as they are: the first path of a sentence that says so."""
    found: set[str] = set()
    for sentence in _SENTENCE.split(text):
        if _LEAVE_IT.search(sentence):
            paths = _PATHISH.findall(sentence)
            if paths:
                found.add(paths[0].rstrip(".,:;)`'\"").strip("`'\""))
    return found


def work_tokens(text: str) -> set[str]:
    """Lower-case names and numbers of the shipped work, for `concrete_items(carried=…)`."""
    return set(re.findall(r"[a-z0-9_]+", text.lower()))


def _carried(item: str, tokens: set[str]) -> bool:
    """Whether the work carries a named item: a size by its number, a signature by its name,
    anything else whole ("aesgcm") or by all its parts ("hmac-sha256": hmac, sha256)."""
    size = re.match(r"(\d+)\+?[ -]?[a-z]", item)
    if size:
        return size.group(1) in tokens
    name = item.split("(", 1)[0]
    parts = re.findall(r"[a-z0-9_]+", name)
    return bool(parts) and (re.sub(r"[^a-z0-9_]", "", name) in tokens or all(p in tokens for p in parts))


def starter_vocabulary(repo: Repo, revision: Revision) -> set[str]:
    """Paths, module names and defined identifiers of the starter: what a reference can point at."""
    vocabulary: set[str] = set()
    for path in repo.files(revision.starter_sha):
        vocabulary.add(path)
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if len(stem) > 2 and stem != "__init__":
            vocabulary.add(stem)
        if path.count("/") and path.endswith(".py"):
            vocabulary.add(path[:-3].replace("/", ".").removesuffix(".__init__"))
        text = repo.show(revision.starter_sha, path) or ""
        if len(text) < 200_000:
            vocabulary.update(_IDENTIFIER_DEF.findall(text))
    return {item for item in vocabulary if len(item) > 2}


def spec_sources(repo: Repo, revision: Revision, commits: list[dict[str, Any]]) -> list[Source]:
    changed = {path for status, path in repo.changes(revision.base_sha, revision.sha) if status != "D"}
    sources = []
    for path in sorted(changed):
        if not SPEC_FILE.search(path):
            continue
        text = repo.show(revision.sha, path) or ""
        first = next((c["sha"] for c in commits if any(f.get("path") == path for f in c.get("files") or [])),
                     revision.sha)
        sources.append(Source(f"commit:{first}", path, text))
    return sources


def prompt_sources(events: list[Event]) -> tuple[list[Source], list[int]]:
    kept, excluded = [], []
    for index, event in enumerate(events):
        if event["kind"] != "user_prompt":
            continue
        if witnessed(event):
            kept.append(Source(f"event:{index}", f"prompt {index}", event["text"]))
        else:
            excluded.append(index)
    return kept, excluded


@dataclass
class _Shipped:
    changed: set[str]
    test_lines: str
    """Added lines of test files in the shipped diff, normalized."""
    starter: frozenset[str] = frozenset()
    """The starter's files: a constraint on a file that does not exist constrains nothing."""
    new_dependencies: frozenset[str] = frozenset()
    """Package names the shipped diff adds to dependency files (lower case)."""


class SpecQualityGrader:
    name = "spec_quality"

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
        skipped = without_agent(bundle, self.name, "no prompts to judge")
        if skipped:
            return skipped
        events = bundle.events()
        prompts, excluded = prompt_sources(events)
        if excluded and not bundle.gateway_records():
            return GraderResult(self.name, status="infra_error", details={"excluded_prompts": excluded},
                                summary=unverifiable(len(excluded)))
        try:
            with open_repo(bundle) as repo:
                revision = choose_revision(bundle, repo)
                files = spec_sources(repo, revision, bundle.commits())
                vocabulary = starter_vocabulary(repo, revision)
                starter_files = frozenset(repo.files(revision.starter_sha))
                changed = {path for _, path in repo.changes(revision.base_sha, revision.sha)}
                added = repo.added_lines(revision.base_sha, revision.sha)
                tests = " ".join(_norm(line.text) for line in added if TEST_PATH.search(line.path))
                carried = work_tokens(" ".join(line.text for line in added if not SPEC_FILE.search(line.path)))
        except EvidenceError as exc:
            return GraderResult(self.name, status="infra_error", summary=exc.one_line())
        shipped = _Shipped(changed, tests, starter_files,
                           added_dependencies([line.text for line in added if DEPENDENCY_FILES.search(line.path)]))
        timeline = Timeline.of(witnessed_view(events))
        first_edit = timeline.edits[0] if timeline.edits else None
        read = spec_reads(timeline.events, first_edit, starter_files)
        seen = seen_first(bundle, timeline, files, read)
        # The spec: what reached the agent before its first edit: the prompts sent before it, the
        # spec files the host saw pushed before it or the agent read before it. A spec file
        # written afterwards describes the work; it did not shape it.
        initial = seen + read + [p for p in prompts if first_edit is None or int(p.ref.split(":")[1]) < first_edit]
        sources = files + read + prompts
        carried |= work_tokens(" ".join(str(timeline.events[i]["text"]) for r in test_runs(timeline.events)
                                        for i in (r.call, r.result) if i is not None))
        # What the agent had been told before each of its edits: the spec before its first edit, then
        # every prompt that preceded more of its work (a spec given piece by piece). Items the agent
        # itself had put forward before the prompt ("sha256 is fine" after it offered SHA-256) are its
        # design approved, not the candidate's spec.
        told = ToldBefore(timeline, seen + read, prompts, carried, _brief(context))
        first_items = told.before(first_edit if first_edit is not None else len(timeline.events))
        last_write = max((w.index for w in timeline.writes), default=-1)
        # Only names of code count as references (a path, a module, an identifier), never an
        # English word the starter happens to define ("keys", "create", "store").
        references = {t.strip("./") for s in initial for t in _TOKEN.findall(s.text)} & vocabulary
        references = {r for r in references if _code_name(r)}
        pieces = built_pieces(timeline, told, context.results.get("hidden_tests"), frozenset(references))
        # A requirement given after the agent's first edit counts when the piece it started was
        # built as told: an instruction that led to work the brief's hidden tests reject (talking
        # the agent out of correct code, having tests loosened) specified nothing worth having.
        spec_items = first_items.union(*(items for q, items in told.prompt_items.items()
                                         if first_edit is not None and q > first_edit
                                         and _led_to(pieces, q)))
        details: dict[str, Any] = {"trusts": TRUSTS, "revision": revision.to_json(),
                                   "sources": [{"ref": s.ref, "label": s.label, "words": words(s.text)}
                                               for s in sources],
                                   "excluded_prompts": excluded, "transcript_only": transcript_only(events),
                                   "spec_items": sorted(spec_items)[:60], "references": sorted(references)[:40],
                                   "echoed_from_the_agent": sorted(told.echoed)[:20],
                                   "pieces": [p.to_json() for p in pieces]}
        told_sources = initial + [p for p in prompts if int(p.ref.split(":")[1]) < last_write and p not in initial]
        defect = _defect_of(options, context)
        specified = self._defect(timeline, initial, defect, context, details) if defect is not None else None
        # The planted defect named before the agent built is a requirement too (its hidden tests
        # check it), in whatever words the template's description recognises.
        marks = {"the planted defect"} if specified is not None and specified.score > 0 else set()
        criteria = [
            # Naming files is a little of a spec: at most two references count next to the requirements,
            # and none without a requirement (naming a file is not saying what it should do).
            self._upfront(timeline, seen + read, prompts,
                          first_items | marks | (set(sorted(references)[:2]) if first_items | marks else set()),
                          carried, pieces),
            self._acceptance(timeline, told_sources, spec_items, shipped, details, pieces),
            self._constraints(timeline, sources, shipped, details),
            self._rework(timeline, told, references, carried, details, pieces, spec_items | marks),
        ]
        if specified is not None:
            criteria.insert(2, specified)
        self._judge(options, sources, criteria, details, shaped=_shaped(timeline, context.results.get("hidden_tests")))
        summary = (f"{len(prompts)} prompt(s) and {len(files)} spec file(s) read; {len(spec_items)} concrete "
                   f"requirement(s) before the agent's first edit"
                   + (f"; {len(excluded)} transcript prompt(s) the gateway never saw were left out" if excluded
                      else "") + ".")
        return GraderResult(self.name, criteria=criteria, summary=summary, details=details)

    # ----- criteria -----------------------------------------------------------------------------
    def _upfront(self, timeline: Timeline, files: list[Source], prompts: list[Source], concrete: set[str],
                 carried: set[str], pieces: list[Piece]) -> Criterion:
        """`files`: the spec files (and agent reads of them) that reached the agent before it built.
        A spec given piece by piece counts too, in plain words or code terms alike, by what it led
        to: the share of the pieces built as told (never sent back for something the agent had
        not been told, and what shipped passes the brief's hidden tests), worth at most 3 (the
        agent built each piece without knowing the rest)."""
        title = "Specified before building"
        if not timeline.writes:
            return Criterion("upfront", title, 0.0, 4.0, "The agent built nothing: no spec shaped any work.", [])
        by_pieces = _piece_share(pieces)
        if by_pieces > 0:
            counted = _counted(pieces)
            told = [p for p in counted if p.as_told]
            strayed = len(pieces) - len(counted)
            piecewise = Criterion(
                "upfront", title, round(3.0 * by_pieces, 2), 4.0,
                f"Specified piece by piece: {len(told)} of {len(counted)} piece(s) of the agent's work were built "
                "as it had been told (never sent back for something it had not been told; what shipped passes the "
                "brief's hidden tests)" + (f"; {strayed} more sent back only for straying from what it had been "
                                           "told" if strayed else "") + ".",
                [f"event:{p.prompt}" for p in told][:20])
            first = self._upfront(timeline, files, prompts, concrete, carried, [])
            return piecewise if piecewise.score > first.score else first
        first_edit = timeline.edits[0]
        for spec in files:
            if len(concrete_items(spec.text, carried)) >= 3:
                how = ("the agent read it" if spec.ref.startswith("event:") else "the host's push log saw it")
                return Criterion("upfront", title, 4.0, 4.0,
                                 f"{spec.label} reached the agent before its first edit ({how}), with concrete "
                                 "requirements the work carries.", [spec.ref])
        before = [p for p in prompts if int(p.ref.split(":")[1]) < first_edit]
        if not before and not files:
            return Criterion("upfront", title, 0.0, 4.0, "No prompt reached the agent before it built.", [])
        count = len(concrete)
        score = 3.0 if count >= 6 else 2.0 if count >= 3 else 1.0 if count >= 1 else 0.0
        why = (f"Before the agent's first edit the spec carried {count} concrete requirement(s) or reference(s)"
               + (f" ({', '.join(sorted(concrete)[:5])})" if concrete else ": the agent was left to guess") + ".")
        return Criterion("upfront", title, score, 4.0, why, [s.ref for s in [*files, *before]][:20])

    def _defect(self, timeline: Timeline, initial: list[Source], defect: dict[str, Any], context: GradeContext,
                details: dict[str, Any]) -> Criterion:
        """The template's planted defect, specified before the agent built (and then fixed): the
        spec made its catch unnecessary. Its keywords only find the sentence; the hidden tests
        that catch it decide what it was worth."""
        title = "The spec named the planted defect"
        try:
            patterns = [re.compile(str(k), re.I) for k in defect.get("keywords") or []]
        except re.error:
            patterns = []  # the steering grader reports a bad pattern as a configuration error
        named = [s for s in initial if any(p.search(s.text) for p in patterns)]
        details["defect_specified"] = [s.ref for s in named]
        if not timeline.writes:
            return Criterion("defect_specified", title, 0.0, 4.0, "The agent built nothing.", [])
        if not named:
            return Criterion("defect_specified", title, 0.0, 4.0,
                             "Nothing the agent got before its first edit named the planted defect.", [])
        hidden = context.results.get("hidden_tests")
        tests = [str(t) for t in defect.get("tests") or []]
        outcomes = ((hidden.details.get("fail_to_pass") or {}).get("outcomes") or {}) \
            if hidden is not None and hidden.status == "ok" else {}
        fixed = None if not tests or not outcomes else all(outcomes.get(t) == "passed" for t in tests)
        score = 1.0 if fixed is False else 4.0
        why = (f"{named[0].label} named it before the agent's first edit"
               + ("; its hidden tests pass" if fixed else "; yet its hidden tests fail" if fixed is False else "")
               + ".")
        return Criterion("defect_specified", title, score, 4.0, why, [s.ref for s in named][:20])

    def _acceptance(self, timeline: Timeline, initial: list[Source], items: set[str], shipped: _Shipped,
                    details: dict[str, Any], pieces: list[Piece]) -> Criterion:
        """Concrete items the work checked; or, in plain words or code terms alike, pieces built as
        told whose own tests a witnessed run then passed (each piece's result was checked)."""
        title = "Acceptance criteria the work then checked"
        checked_pieces = [p for p in _counted(pieces) if p.as_told and p.checked and p.revised_by is None]
        if checked_pieces:
            by_items = self._acceptance(timeline, initial, items, shipped, details, [])
            score = _ladder(len(checked_pieces))
            if score > by_items.score:
                return Criterion("acceptance_checked", title, score, 4.0,
                                 f"{len(checked_pieces)} piece(s) built as told came with tests that a witnessed "
                                 "run then passed.",
                                 [f"event:{p.prompt}" for p in checked_pieces][:20])
            return by_items
        runs = test_runs(timeline.events)
        run_text = " ".join(_norm(timeline.events[i]["text"]) for r in runs for i in (r.call, r.result)
                            if i is not None)
        checked = sorted(item for item in items if item in shipped.test_lines or item in run_text
                         or _core(item) in shipped.test_lines)
        details["acceptance_checked"] = checked[:40]
        if not items:
            return Criterion("acceptance_checked", title, 0.0, 4.0,
                             "The spec named no concrete, checkable result before the agent built.", [])
        refs = [s.ref for s in initial if any(item in _norm(s.text) for item in checked)]
        why = (f"{len(checked)} of {len(items)} concrete item(s) were checked by shipped tests or a witnessed run"
               + (f": {', '.join(checked[:5])}" if checked else "") + ".")
        return Criterion("acceptance_checked", title, _ladder(len(checked)), 4.0, why, refs[:20])

    def _constraints(self, timeline: Timeline, sources: list[Source], shipped: _Shipped,
                     details: dict[str, Any]) -> Criterion:
        title = "Constraints the agent then honoured"
        honoured: list[str] = []
        broken: list[str] = []
        refs: list[str] = []
        for source in sources:
            said_at = int(source.ref.split(":")[1]) if source.ref.startswith("event:") else -1

            def changed(path: str, since: int = said_at) -> bool:
                # A starter file: changed in what shipped. A file the candidate added (an acceptance
                # test written first): an agent write to it after the constraint was said.
                if path in shipped.starter:
                    return path in shipped.changed
                return any(w.path == path and w.index > since for w in timeline.writes)

            kept = forbidden_paths(source.text) | left_as_is(source.text)
            for path in sorted(p for p in kept
                               if not SPEC_FILE.search(p) and (p in shipped.starter or p in shipped.changed)):
                (broken if changed(path) else honoured).append(f"leave {path} alone")
                refs.append(source.ref)
            for match in _ONLY_CHANGE.finditer(source.text):
                allowed = {p.rstrip(".,:;)`'\"").strip("`'\"")
                           for p in _PATHISH.findall(match.group(1) or match.group(2))}
                if not allowed or not any(a in shipped.starter or any(f.startswith(a.rstrip("/") + "/")
                                                                       for f in shipped.starter) for a in allowed):
                    continue
                outside = sorted(p for p in shipped.changed if not SPEC_FILE.search(p)
                                 and not any(p == a or fnmatch(p, a) or p.startswith(a.rstrip("/") + "/")
                                             for a in allowed))
                (broken if outside else honoured).append(f"only change {', '.join(sorted(allowed))}")
                refs.append(source.ref)
            allowed = {next(g for g in m.groups() if g).lower().rstrip(".,;:`")
                       for m in _ONLY_DEP.finditer(source.text)}
            # "Only new dependency: none" is the stock phrase again, not a named allowance.
            allowed -= {"none", "nothing", "no", "n/a", "any"}
            if allowed:
                extra = sorted(shipped.new_dependencies - allowed)
                label = f"no new dependency besides {', '.join(sorted(allowed))}"
                (broken if extra else honoured).append(label + (f" (added {', '.join(extra[:3])})" if extra else ""))
                refs.append(source.ref)
            # "No new dependencies" costs when broken; honoured it earns nothing: a stock phrase.
            elif _NO_NEW_DEPS.search(source.text) and any(DEPENDENCY_FILES.search(p) for p in shipped.changed):
                broken.append("no new dependencies")
                refs.append(source.ref)
        honoured = sorted(set(honoured))
        broken = sorted(set(broken))
        details["constraints"] = {"honoured": honoured, "broken": broken}
        if not honoured and not broken:
            return Criterion("constraints_honoured", title, 0.0, 2.0,
                             "No checkable constraint (a file to leave alone, the files to change, no new "
                             "dependencies) was stated.", [])
        # Worth less than the requirements: a spec need not constrain much, and one stated
        # constraint honoured is as good as several (counting them would pay for listing them).
        score = max(0.0, (2.0 if honoured else 0.0) - 1.0 * len(broken))
        why = (f"{len(honoured)} constraint(s) held in what shipped" + (f" ({'; '.join(honoured[:4])})" if honoured
                                                                          else "")
               + (f"; {len(broken)} broken: {'; '.join(broken[:4])}" if broken else "") + ".")
        return Criterion("constraints_honoured", title, score, 2.0, why, sorted(set(refs))[:20])

    def _rework(self, timeline: Timeline, told: ToldBefore, references: set[str], carried: set[str],
                details: dict[str, Any], pieces: list[Piece], items: set[str]) -> Criterion:
        title = "The spec made corrections unnecessary"
        if not timeline.writes:
            return Criterion("rework_avoided", title, 0.0, 4.0, "The agent built nothing from the spec.", [])
        failures = [r.result for r in timeline.runs if r.failed and r.result is not None]

        def deviation(prompt: int) -> bool:
            """The candidate holds the agent to a requirement it had been told before: the agent's
            mistake (steering's catch), not a gap in the spec."""
            return told.holds_to(prompt)

        open_rounds, deviations = [], []
        # Rounds that sent the agent back to its code: named by the prompt (rework_rounds), or any
        # later piece that took out lines an earlier one wrote, whatever the prompt's words.
        for index in sorted({f.index for f in rework_rounds(timeline)}
                            | {p.revised_by for p in pieces if p.revised_by is not None}):
            # A round that only repeats what the spec said is the agent ignoring it, not a gap in it.
            if deviation(index):
                deviations.append(index)
            elif told.leaves_open(index, references):
                open_rounds.append(index)
        questions: list[int] = []
        permissions: list[int] = []
        for i, e in enumerate(timeline.events):
            answer = timeline.next_after(timeline.prompts, i)
            if (e["kind"] != "assistant_message" or not e["text"].rstrip().endswith("?") or answer is None
                    or not any(w.index > i for w in timeline.writes)):
                continue
            last_edit = max((w.index for w in timeline.writes if w.index < i), default=None)
            # Asked after its own work failed a run (e.g. "shall I change the test?"), or answered
            # with what the spec already said: the agent strayed from the spec, the spec was not open.
            if (last_edit is not None and any(last_edit < f < i for f in failures)) or deviation(answer):
                deviations.append(i)
            elif told.prompt_items.get(answer, set()) - told.before(answer) - references:
                # The answer supplied a requirement the spec had not: the spec left it open.
                questions.append(i)
            else:
                permissions.append(i)  # "Shall I go ahead?" "Yes": nothing was missing from the spec
        rounds = sorted({*open_rounds, *questions})
        details["rework_rounds"] = rounds
        details["deviations_from_spec"] = sorted(set(deviations))
        details["questions_answered_without_a_new_requirement"] = permissions
        # Without concrete requirements there was no spec to make rework unnecessary (naming
        # files is not specifying what they should do).
        # Plain words have substance too when what they led to shows it: a piece built as told.
        substance = 1.0 if any(p.as_told for p in _counted(pieces)) else min(1.0, len(items) / 3)
        score = round(max(0.0, 4.0 - 1.0 * len(rounds)) * substance, 2)
        why = (f"{len(rounds)} round(s) of clarification or rework on what the spec left open"
               + (f" (events {', '.join(map(str, rounds[:6]))})" if rounds else "")
               + f"; the spec carried {len(items)} concrete requirement(s).")
        return Criterion("rework_avoided", title, score, 4.0, why, [f"event:{i}" for i in rounds][:20])

    # ----- the judge ----------------------------------------------------------------------------
    def _judge(self, options: dict[str, Any], sources: list[Source], criteria: list[Criterion],
               details: dict[str, Any], shaped: bool = True) -> None:
        """`shaped`: whether the words shaped any work the outcomes can credit; when not, the
        judge's reading of them may lower the rule scores, never raise them."""
        config = configured(options, details)
        if config is None:
            if "judge" not in details:
                details["judge"] = not_done()
            return
        if not sources:
            details["judge"] = {"status": "not_done", "note": "No witnessed prompt or spec file: nothing to read."}
            return
        material = "\n\n".join(f"### {s.ref} ({s.label})\n{s.text}" for s in sources)
        consulted = consult(config, JUDGE_SYSTEM, f"## Material\n\n{material}", details)
        if consulted is None:
            return
        answer, usage = consulted
        moves = judge_moves(criteria, answer, material, aliases=JUDGE_ALIASES, raise_ok=shaped)
        details["judge"] = {"status": "ok", "model": config.model, "summary": str(answer.get("summary", ""))[:500],
                            "usage": usage.to_json(), **moves}
        by_id = {c.id: c for c in criteria}
        for dimension in moves["dimensions"].values():
            criterion = by_id[dimension["criterion"]]
            cited = {s.ref for s in sources for q in dimension["quotes"]
                     if " ".join(q.split()).lower() in " ".join(s.text.split()).lower()}
            criterion.evidence_refs = sorted({*criterion.evidence_refs, *cited})


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_RUN = 6
"""Words in a row a correction must share with what the agent had been told to repeat it."""


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _runs(text: str) -> set[tuple[str, ...]]:
    found = _WORD.findall(text.lower())
    return {tuple(found[i:i + _RUN]) for i in range(len(found) - _RUN + 1)}


class ToldBefore:
    """What the agent had been told before a moment: the spec files that reached it before its
    first edit, then each witnessed prompt. A prompt's concrete items that the agent's own messages
    had already put forward (it offered SHA-256, "sha256 is fine") are its design approved, not
    the candidate's spec: they are left out (`echoed`)."""

    def __init__(self, timeline: Timeline, files: list[Source], prompts: list[Source], carried: set[str],
                 brief: str = "") -> None:
        self.timeline = timeline
        self.carried = carried
        # The brief is the task the agent was set: a correction holding it to the brief is its
        # straying from what it was given, not a gap in the candidate's spec. It is never counted
        # as the candidate's requirements.
        self.brief_items = concrete_items(brief, carried) if brief else set()
        self.brief_runs = _runs(brief) if brief else set()
        self.file_items: set[str] = set().union(*(concrete_items(f.text, carried) for f in files)) if files else set()
        self.texts: list[tuple[int, str]] = [(-1, f.text) for f in files]
        self.prompt_items: dict[int, set[str]] = {}
        self.echoed: set[str] = set()
        agent: list[str] = []  # the agent's own messages so far, compacted
        at = 0
        for prompt in sorted(prompts, key=lambda p: int(p.ref.split(":")[1])):
            index = int(prompt.ref.split(":")[1])
            for event in timeline.events[at:index]:
                if event["kind"] == "assistant_message":
                    agent.append(_compact(str(event.get("text") or "")))
            at = max(at, index)
            items = concrete_items(prompt.text, carried)
            echoed = {item for item in items if len(_compact(item)) >= 3
                      and any(_compact(item) in said for said in agent)}
            self.prompt_items[index] = items - echoed
            self.echoed |= echoed
            self.texts.append((index, prompt.text))
        # In how many of the candidate's texts (spec files, prompts) each run of words occurs.
        self._said: Counter[tuple[str, ...]] = Counter(run for _, t in self.texts for run in _runs(t))

    def before(self, moment: int) -> set[str]:
        """The concrete requirements told before event `moment`."""
        return self.file_items.union(*(items for i, items in self.prompt_items.items() if i < moment))

    def holds_to(self, prompt: int) -> bool:
        """Whether a correction holds the agent to what it had been told before: it repeats a
        requirement already stated (the same concrete item, or a run of words of the spec, in plain
        words too). Then the rework was the agent straying from a clear spec, not a gap in it."""
        text = str(self.timeline.events[prompt].get("text") or "")
        if concrete_items(text, self.carried) & (self.before(prompt) | self.brief_items):
            return True
        earlier = self.brief_runs.union(*(_runs(t) for i, t in self.texts if i < prompt))
        # A run of words repeats a requirement when it was said once before and names something
        # the work carries (one of its longer words is a name in the shipped code, tests or runs).
        # Boilerplate the candidate pastes into every message ("robust, production-grade, …")
        # holds the agent to nothing.
        return any(self._said[run] <= 2 and any(len(w) >= 4 and w in self.carried for w in run)
                   for run in _runs(text) & earlier)

    def leaves_open(self, prompt: int, references: set[str]) -> bool:
        """A correction that brought something the agent had not been told (a new requirement, or
        plain words naming nothing told before): the spec left it open."""
        said = concrete_items(str(self.timeline.events[prompt].get("text") or ""), self.carried)
        return not self.holds_to(prompt) and (not said or not said <= self.before(prompt) | references)


@dataclass
class Piece:
    """Agent work between one candidate prompt and the next: what it was told before it (the
    prompt and everything earlier), whether a later prompt had it taken back out, whether it was
    checked, and whether what shipped is right."""

    prompt: int
    writes: list[FileWrite]
    revised_by: int | None = None
    left_open: bool = False
    """Revised for something the agent had not been told (not its own straying from the spec)."""
    checked: bool = False
    """Tests were written in it and a witnessed run after its last write passed."""
    shipped_right: bool | None = None
    """Every must-pass hidden test passes on what shipped (None: the hidden tests did not run)."""

    @property
    def as_told(self) -> bool:
        """Built from what the agent had been told with no correction the spec made necessary:
        not sent back for something left open, and what shipped passes the brief's hidden tests.
        Plain words or code terms alike: the outcome, not the wording, shows the telling was clear."""
        return not self.left_open and self.shipped_right is True

    def to_json(self) -> dict[str, Any]:
        return {"prompt": f"event:{self.prompt}", "writes": [f"event:{w.index}" for w in self.writes][:10],
                "revised_by": None if self.revised_by is None else f"event:{self.revised_by}",
                "left_open": self.left_open, "checked": self.checked, "as_told": self.as_told}


def built_pieces(timeline: Timeline, told: ToldBefore, hidden: GraderResult | None,
                 references: frozenset[str] = frozenset()) -> list[Piece]:
    """The agent's work piece by piece (the writes after each witnessed prompt, up to the next).
    A piece is revised when a later piece takes out lines it wrote (vocabulary plays no part)."""
    outcomes = ((hidden.details.get("fail_to_pass") or {}).get("outcomes") or {}) \
        if hidden is not None and hidden.status == "ok" else {}
    right = None if not outcomes else all(v == "passed" for v in outcomes.values())
    events = timeline.events
    pieces: list[Piece] = []
    for k, prompt in enumerate(timeline.prompts):
        end = timeline.prompts[k + 1] if k + 1 < len(timeline.prompts) else len(events)
        writes = [w for w in timeline.writes if prompt < w.index < end]
        if not writes:
            continue
        last = max(w.index for w in writes)
        runs = [r for r in timeline.runs if last < r.call < end]
        tests = any(TEST_PATH.search(w.path) for w in writes if w.path)
        pieces.append(Piece(prompt, writes, checked=bool(tests and runs and runs[-1].failed is False),
                            shipped_right=right))
    for i, piece in enumerate(pieces):
        written = {(w.path, line.strip()) for w in piece.writes for line in w.lines if len(line.strip()) >= 8}
        for later in pieces[i + 1:]:
            if any((w.path, line.strip()) in written for w in later.writes
                   for line in (Counter(w.removed) - Counter(w.lines)).elements()):
                piece.revised_by = later.prompt
                piece.left_open = told.leaves_open(later.prompt, set(references))
                break
    return pieces


def spec_reads(events: list[Event], before: int | None, starter: frozenset[str] = frozenset()) -> list[Source]:
    """Spec or design files the agent read (a witnessed tool result) before its first edit: a
    spec the candidate wrote in the sandbox and pointed the agent at reached it this way. Any
    document not in the starter counts, whatever its name (NOTES.md, acceptance.txt): before
    the agent's first edit, only the candidate can have put it there."""
    results = results_by_tool_use(events)
    found: list[Source] = []
    for index, event in enumerate(events):
        if before is not None and index >= before:
            break
        if event["kind"] != "tool_call":
            continue
        arguments = tool_input(event)
        path = str(arguments.get("file_path") or arguments.get("path") or "") \
            if tool_name(event).lower() in ("read", "read_file", "view") else ""
        if not path and (match := READ_COMMAND.match(command_of(event))):
            path = match.group(1)
        path = path.removeprefix("/workspace/").removeprefix("./")
        result = results.get(tool_use_id(event))
        document = SPEC_FILE.search(path) or (_DOCUMENT.search(path) and path not in starter)
        if not path or not document or result is None or events[result]["kind"] != "tool_result":
            continue
        found.append(Source(f"event:{result}", f"{path} (read by the agent)", str(events[result].get("text") or "")))
    return found


_DOCUMENT = re.compile(r"\.(md|markdown|txt|rst)$", re.I)


def seen_first(bundle: Bundle, timeline: Timeline, files: list[Source], read: list[Source]) -> list[Source]:
    """The spec files that reached the agent before its first edit: pushed before it (the host's
    push log) or read by it. Without any agent edit, every spec file counts."""
    if not timeline.edits:
        return files
    moment = parse_ts(timeline.events[timeline.edits[0]]["ts"])
    times = commit_times(bundle)
    read_paths = {r.label.split(" ", 1)[0] for r in read}
    kept = []
    for spec in files:
        pushed = times.get(spec.ref.split(":", 1)[1])
        if spec.label in read_paths:
            continue  # the agent's read of it is the source, timed by the gateway
        if pushed is not None and moment is not None and pushed < moment:
            kept.append(spec)
    return kept


def _brief(context: GradeContext) -> str:
    """The template's brief (host side, never the candidate's), or "" without a template."""
    path = context.template.brief_path if context.template is not None else None
    try:
        return path.read_text(encoding="utf-8")[:200_000] if path is not None and path.is_file() else ""
    except OSError:
        return ""


def _led_to(pieces: list[Piece], prompt: int) -> bool:
    """Whether the first piece of work after `prompt` was built as told."""
    after = next((p for p in pieces if p.prompt >= prompt), None)
    return after is not None and after.as_told


def _shaped(timeline: Timeline, hidden: GraderResult | None) -> bool:
    """Whether the candidate's words shaped any work worth reading them for: the agent built
    something, and (when the hidden tests ran) at least one must-pass hidden test passes on it."""
    if not timeline.writes:
        return False
    outcomes = ((hidden.details.get("fail_to_pass") or {}).get("outcomes") or {}) \
        if hidden is not None and hidden.status == "ok" else {}
    return not outcomes or any(v == "passed" for v in outcomes.values())


def given_in_pieces(pieces: list[Piece]) -> bool:
    """Whether the candidate gave the spec piece by piece: the work came in two pieces or more
    and the candidate's words changed it at least once (a later prompt had lines of an earlier
    piece taken out). "Do the brief", then "continue" until done, shaped nothing observable."""
    return len(pieces) >= 2 and any(p.revised_by is not None for p in pieces)


def _counted(pieces: list[Piece]) -> list[Piece]:
    """The pieces that tell how clear the spec was: pieces revised only for the agent's own
    straying count for neither side (the spec had said it)."""
    return [p for p in pieces if p.revised_by is None or p.left_open] if given_in_pieces(pieces) else []


def _piece_share(pieces: list[Piece]) -> float:
    counted = _counted(pieces)
    return sum(p.as_told for p in counted) / len(counted) if counted else 0.0


def _code_name(token: str) -> bool:
    """A path, module or identifier: something only code has, not an English word."""
    return bool(re.search(r"[/._]|[a-z][A-Z]", token)) or token.isupper()


def _defect_of(options: dict[str, Any], context: GradeContext) -> dict[str, Any] | None:
    defect = options.get("defect")
    if isinstance(defect, dict) and defect.get("keywords"):
        return defect
    config = context.template.config.defect if context.template is not None else None
    if config is not None and config.keywords:
        return {"keywords": list(config.keywords), "tests": list(config.tests)}
    return None


def _core(item: str) -> str:
    """The call or name at the left of a comparison: `evaluate("1 / 0") raises calcerror` → `evaluate("1 / 0")`."""
    return re.split(r"\s*(?:==|->|returns?|raises?)\s*", item, maxsplit=1)[0]


JUDGE_ALIASES = {"acceptance": "acceptance_checked", "constraints": "constraints_honoured",
                 "completeness": "rework_avoided", "upfront": "upfront"}

JUDGE_SYSTEM = """You review how clearly a software engineer specified a coding task for an AI coding agent.
You are given the engineer's prompts to the agent and any spec or design files they wrote.
Score four dimensions from 0 (absent) to 4 (thorough), using only the material:
- acceptance: testable acceptance criteria, expected results, what "done" means
- constraints: limits the agent must respect (files not to touch, dependencies, APIs, security requirements)
- completeness: the decisions an implementer needs are made (the spec does not leave the design open)
- upfront: each piece of work was specified before the agent built it (up front, or piece by piece before
  each piece), rather than corrected afterwards
For every score above 0 quote, verbatim, at least one passage of 3 or more words that justifies it.
A score without a verbatim quote counts as 0. Do not reward length, politeness or rubric words
("acceptance criteria", "must", "don't") that carry no concrete requirement.
Answer with one JSON object only:
{"acceptance": {"score": 0, "quotes": []}, "constraints": {"score": 0, "quotes": []},
 "completeness": {"score": 0, "quotes": []}, "upfront": {"score": 0, "quotes": []}, "summary": "one sentence"}"""
