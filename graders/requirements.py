"""Requirements gathering (design track): did the candidate ask about the unknowns before building?

The template's `reviewer/questions.toml` (reviewers only, never pushed, never in the image) lists
the unknowns a strong candidate asks about, each with the answer the "user" gives and terms that
recognise a question about it, and what the brief already answers. The candidate's questions
come from the question channel (orchestrator.questions): `question` events the host (service)
or the forge (a comment on the brief issue) witnessed; a question only a transcript shows is
listed, never scored.

Scores come from timing and coverage; the terms only label which unknown a question is about:
- per unknown: asked before building started (full), asked after (a quarter), not asked but
  written down as an assumption in the design document (half, labelled; a line counts for one
  unknown, the one it names most terms of), neither (nothing).
  "Building started" is the first witnessed code: the host's time of the first pushed commit
  touching anything other than documentation, or the first gateway-witnessed agent write to
  such a file, whichever came first.
- one question earns credit for at most `per_question` unknowns (the ones it names most
  terms of): a question stuffed with every term is one question, labelled with all it mentions.
- reading the brief: each question only about what the brief already answers costs a little.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import DOC_PATH
from graders.timeline import commit_times, file_writes, witnessed
from orchestrator.evidence.bundle import Bundle
from orchestrator.evidence.events import format_ts, parse_ts

TRUSTS = ("Questions and answers the host service or the forge logged (host/forge time), commits timed by the host's "
          "push log and agent writes the gateway saw; the design document from the host-collected PR diff. Terms "
          "only label a question; transcript-only questions are shown, never scored.")
QUESTIONS_FILE = Path("reviewer") / "questions.toml"
ASKED_EARLY, ASKED_LATE, ASSUMED = 1.0, 0.25, 0.5
REDUNDANT_COST = 0.25
_ASSUMPTION = re.compile(r"\bassum\w*|\bwe (will )?take it\b|\bpresum\w*", re.I)
_HEADING = re.compile(r"^#+\s*(.*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unknown(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    """Stable id, cited in criteria as `unknown.<id>`."""
    title: str
    """What is unknown, for the report."""
    ask: str
    """The question a strong candidate asks (for reviewers)."""
    answer: str
    """What the "user" answers (reviewers paste or adapt it in `trial answer`)."""
    terms: tuple[str, ...] = Field(min_length=1)
    """Regular expressions (case-insensitive) that label a question as being about this unknown."""
    weight: float = Field(default=1.0, gt=0)


class Answered(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    title: str
    """What the brief already says, for the report."""
    terms: tuple[str, ...] = Field(min_length=1)


class ReviewerQuestions(_Strict):
    unknown: tuple[Unknown, ...] = Field(min_length=1)
    answered: tuple[Answered, ...] = ()


def load_questions(path: Path) -> ReviewerQuestions:
    try:
        return ReviewerQuestions.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: field '{field}': {first['msg']}") from exc


def _mentions(text: str, terms: tuple[str, ...]) -> list[str]:
    return [term for term in terms if re.search(term, text, re.I)]


@dataclass
class _Question:
    index: int
    event: dict[str, Any]
    number: Any
    mentions: dict[str, list[str]]
    """unknown id → the terms of it the question names."""
    credited: list[str]
    redundant: list[str]


class RequirementsGrader:
    name = "requirements"

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
        path = self._questions_path(options, context)
        if path is None or not path.is_file():
            return GraderResult(self.name, status="skipped", summary="the template has no reviewer/questions.toml",
                                details={"trusts": TRUSTS})
        try:
            spec = load_questions(path)
        except ValueError as exc:
            return GraderResult(self.name, status="infra_error", summary=str(exc), details={"trusts": TRUSTS})
        per_question = int(options.get("per_question", 2))
        events = bundle.events()
        started, started_by = self._building_started(bundle, events)
        deadline = parse_ts(bundle.trial.get("deadline"))
        late = [(i, e) for i, e in enumerate(events) if e.get("kind") == "question" and witnessed(e)
                and deadline is not None and (parse_ts(e.get("ts")) or deadline) > deadline]
        # After the deadline the trial is over (an issue comment can still arrive before collect).
        for index, _ in late:
            events[index] = {**events[index], "kind": "question_after_deadline"}
        asked = self._questions(events, spec, per_question)
        answers = self._answers(events)
        doc, doc_pr = self._design_doc(bundle, tuple(options.get("design_doc", ("DESIGN.md",))))
        assumptions = _assumption_lines(doc)
        assumed = _assumed(assumptions, spec)
        criteria = [self._unknown(u, asked, answers, started, assumed.get(u.id, []), doc_pr) for u in spec.unknown]
        criteria.append(self._brief_read(spec, asked, answers))
        not_scored = [{"index": i, "text": str(e.get("text") or "")[:200], "witness": e.get("witness"),
                       "scored": False, "why": "only a transcript shows it"}
                      for i, e in enumerate(events) if e.get("kind") == "question" and not witnessed(e)]
        not_scored += [{"index": i, "text": str(e.get("text") or "")[:200], "witness": e.get("witness"),
                        "scored": False, "why": "asked after the deadline"} for i, e in late]
        details = {
            "trusts": TRUSTS,
            "building_started": format_ts(started) if started else None,
            "building_started_by": started_by,
            "questions": [{"event": f"event:{q.index}", "number": q.number, "ts": q.event.get("ts"),
                           "witness": q.event.get("witness"), "mentions": q.mentions, "credited": q.credited,
                           "redundant_with_brief": q.redundant,
                           "before_building": _before(q.event, started)} for q in asked],
            "assumptions": assumptions[:50],
            "not_scored": not_scored,
        }
        early = sum(1 for c in criteria if c.id.startswith("unknown.") and c.score >= c.max)
        summary = (f"{early} of {len(spec.unknown)} unknowns asked before building; {len(asked)} witnessed "
                   f"question(s)" + (f"; building started {details['building_started']}" if started else
                                     "; no witnessed code"))
        return GraderResult(self.name, criteria=criteria, summary=summary, details=details)

    @staticmethod
    def _questions_path(options: dict[str, Any], context: GradeContext) -> Path | None:
        if options.get("questions"):
            given = Path(str(options["questions"]))
            if given.is_absolute() or context.template is None:
                return given
            return context.template.path / given
        return context.template.path / QUESTIONS_FILE if context.template is not None else None

    @staticmethod
    def _building_started(bundle: Bundle, events: list[dict[str, Any]]) -> tuple[datetime | None, str | None]:
        """The first witnessed code: a pushed commit's host time or a gateway-seen agent write (not docs)."""
        found: list[tuple[datetime, str]] = []
        times = commit_times(bundle)
        for commit in bundle.commits():
            sha = str(commit.get("sha"))
            paths = [str(f.get("path")) for f in commit.get("files") or []]
            if sha in times and any(not DOC_PATH.search(p) for p in paths):
                found.append((times[sha], f"commit:{sha}"))
        for write in file_writes(events):
            if write.verified and write.applied and write.path and not DOC_PATH.search(write.path):
                moment = parse_ts(events[write.index].get("ts"))
                if moment:
                    found.append((moment, f"event:{write.index}"))
        if not found:
            return None, None
        return min(found)

    @staticmethod
    def _questions(events: list[dict[str, Any]], spec: ReviewerQuestions, per_question: int) -> list[_Question]:
        asked = []
        for index, event in enumerate(events):
            if event.get("kind") != "question" or not witnessed(event):
                continue
            text = str(event.get("text") or "")
            mentions = {u.id: found for u in spec.unknown if (found := _mentions(text, u.terms))}
            ranked = sorted(mentions, key=lambda uid: -len(mentions[uid]))
            redundant = [a.id for a in spec.answered if _mentions(text, a.terms)] if not mentions else []
            asked.append(_Question(index, event, (event.get("data") or {}).get("number"), mentions,
                                   ranked[:per_question], redundant))
        return asked

    @staticmethod
    def _answers(events: list[dict[str, Any]]) -> dict[Any, list[tuple[int, dict[str, Any]]]]:
        found: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
        for index, event in enumerate(events):
            if event.get("kind") == "answer" and witnessed(event):
                found.setdefault((event.get("data") or {}).get("question"), []).append((index, event))
        return found

    @staticmethod
    def _design_doc(bundle: Bundle, names: tuple[str, ...]) -> tuple[str, int | None]:
        """The design document's added lines in the last pull request that touches it, and its number."""
        text, number = "", None
        for pull in bundle.pulls():
            lines: list[str] = []
            current = ""
            for line in bundle.pull_diff(int(pull["number"])).splitlines():
                if line.startswith("+++ "):
                    current = line[4:].removeprefix("b/")
                elif line.startswith("+") and any(current == n or current.endswith("/" + n) for n in names):
                    lines.append(line[1:])
            if lines:
                text, number = "\n".join(lines), int(pull["number"])
        return text, number

    @staticmethod
    def _unknown(unknown: Unknown, asked: list[_Question], answers: dict[Any, list[tuple[int, dict[str, Any]]]],
                 started: datetime | None, assumed: list[str], doc_pr: int | None) -> Criterion:
        about = [q for q in asked if unknown.id in q.credited]
        mentioned_only = [q for q in asked if unknown.id in q.mentions and unknown.id not in q.credited]
        early = [q for q in about if _before(q.event, started)]
        refs: list[str] = []
        for q in (early or about)[:3]:
            refs.append(f"event:{q.index}")
            url = (q.event.get("data") or {}).get("comment_url")
            if url:
                refs.append(f"comment:{url}")
            for index, reply in answers.get(q.number, [])[:1]:
                refs.append(f"event:{index}")
                if (reply.get("data") or {}).get("comment_url"):
                    refs.append(f"comment:{reply['data']['comment_url']}")
        if early:
            q = early[0]
            fraction, why = ASKED_EARLY, f"asked before building (question {q.number} at {q.event.get('ts')})"
        elif about:
            q = about[0]
            fraction, why = ASKED_LATE, (f"asked only after building started (question {q.number} at "
                                         f"{q.event.get('ts')})")
        elif assumed:
            refs.append(f"pr:{doc_pr}")
            fraction, why = ASSUMED, f"not asked; assumed in the design document: \"{assumed[0][:160]}\""
        else:
            fraction, why = 0.0, "not asked and no assumption written down"
        if mentioned_only:
            why += (f"; also mentioned in question(s) {', '.join(str(q.number) for q in mentioned_only)}, "
                    "which earn credit for other unknowns")
        return Criterion(id=f"unknown.{unknown.id}", title=unknown.title, score=round(unknown.weight * fraction, 3),
                         max=unknown.weight, rationale=why, evidence_refs=refs)

    @staticmethod
    def _brief_read(spec: ReviewerQuestions, asked: list[_Question],
                    answers: dict[Any, list[tuple[int, dict[str, Any]]]]) -> Criterion:
        redundant = [q for q in asked if q.redundant]
        refs = [f"event:{q.index}" for q in redundant]
        for q in redundant:
            url = (q.event.get("data") or {}).get("comment_url")
            refs += [f"comment:{url}"] if url else []
            refs += [f"event:{i}" for i, _ in answers.get(q.number, [])[:1]]
        if not redundant:
            why = "no question asked what the brief already answers"
        else:
            titles = {a.id: a.title for a in spec.answered}
            named = "; ".join(f"question {q.number}: {titles[q.redundant[0]]}" for q in redundant[:5])
            why = f"{len(redundant)} question(s) the brief already answered ({named})"
        return Criterion(id="brief_read", title="Read the brief before asking", score=max(0.0, 1 - REDUNDANT_COST *
                         len(redundant)), max=1.0, rationale=why, evidence_refs=refs)


def _before(event: dict[str, Any], started: datetime | None) -> bool:
    moment = parse_ts(event.get("ts"))
    return moment is not None and (started is None or moment < started)


def _assumed(lines: list[str], spec: ReviewerQuestions) -> dict[str, list[str]]:
    """unknown id → the assumption lines about it; a line counts for the one unknown it names most
    terms of, so one line listing every term is one assumption."""
    found: dict[str, list[str]] = {}
    for line in lines:
        named = [(len(_mentions(line, u.terms)), -position, u.id) for position, u in enumerate(spec.unknown)]
        count, _, best = max(named)
        if count:
            found.setdefault(best, []).append(line)
    return found


def _assumption_lines(doc: str) -> list[str]:
    """Lines under a heading that says "assumption", or lines that say they assume."""
    found = []
    under = False
    for line in doc.splitlines():
        heading = _HEADING.match(line.strip())
        if heading:
            under = bool(_ASSUMPTION.search(heading.group(1)))
            continue
        if line.strip() and (under or _ASSUMPTION.search(line)):
            found.append(line.strip())
    return found
