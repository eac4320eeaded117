"""The question channel of a trial: the candidate asks from the sandbox, a reviewer answers.

The host keeps each trial's thread in `<home>/questions/<trial-id>.jsonl`, written only by host
processes (the service's `/questions/<trial>` route for questions, `trial answer` for answers),
each record stamped with the host's clock: those are `host`-witnessed. Every question and
answer is also posted to the brief issue, so the conversation is where reviewers read it. On
GitHub a reviewer may answer with a plain comment on the brief issue instead: the forge's own
record (author, `created_at`) makes that answer `forge`-witnessed; a comment the candidate
writes there themselves is a question the same way.

Record: `{seq, ts, kind: question|answer, number, text, via: sandbox|cli|issue, author,
comment_url, question}` where `number` numbers the questions 1.. and an answer's `question`
names the one it answers.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ForgeError, NotFoundError, StateError, TrialError, UsageError
from orchestrator.forge.base import RepoRef
from orchestrator.logging import get_logger
from orchestrator.store import Trial, iso, utcnow

if TYPE_CHECKING:
    from orchestrator.forge.base import Forge

MAX_CHARS = 4000
"""Longest question or answer: a question is a question, not a paste of the repository."""
MAX_QUESTIONS = 100
"""Per trial: the brief issue must stay readable, and the channel is not a chat."""
QUESTIONS_FILE = "questions.jsonl"
"""The thread as collected into the evidence bundle."""
MARKER = "trial-question"
log = get_logger(component="questions")
_ISSUE_NUMBER = re.compile(r"(?:/issues/|#issue-)(\d+)$")
_REFERS = re.compile(r"\b(?:Q|question\s*#?)\s*(\d{1,3})\b", re.I)


@dataclass(frozen=True)
class Thread:
    trial_id: str
    records: list[dict[str, Any]]
    left_out: list[str] = field(default_factory=list)
    """What could not be read (the forge's issue comments), for the manifest's left_out."""

    def questions(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "question"]

    def answers(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "answer"]

    def unanswered(self) -> list[dict[str, Any]]:
        answered = {r.get("question") for r in self.answers()}
        return [q for q in self.questions() if q["number"] not in answered]

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "records": self.records}


def log_path(home: Path, trial_id: str) -> Path:
    return home / "questions" / f"{trial_id}.jsonl"


def read_log(home: Path, trial_id: str) -> list[dict[str, Any]]:
    path = log_path(home, trial_id)
    return _records(path.read_text()) if path.exists() else []


def _records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash: the rest stands
        if isinstance(record, dict):
            records.append(record)
    return records


def _append(home: Path, trial_id: str, make: Any) -> dict[str, Any]:
    """Append one record under an exclusive lock (service and CLI may write at once), fsynced."""
    path = log_path(home, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        existing = _records(handle.read())
        record: dict[str, Any] = make(existing)
        record["seq"] = len(existing) + 1
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return record


def _set_comment_url(home: Path, trial_id: str, seq: int, url: str) -> None:
    """Record where the forge put the comment (a separate line: the log is append-only)."""
    path = log_path(home, trial_id)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps({"kind": "posted", "of": seq, "comment_url": url}, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _clean(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise UsageError(f"the {what} is empty", f"write the {what} as one argument in quotes")
    if len(text) > MAX_CHARS:
        raise UsageError(f"the {what} is {len(text)} characters, over the limit of {MAX_CHARS}",
                         f"shorten it, or split it into separate {what}s")
    return text


def issue_number(url: str | None) -> int | None:
    match = _ISSUE_NUMBER.search(url or "")
    return int(match.group(1)) if match else None


def closed_reason(trial: Trial) -> str | None:
    """Why the candidate may no longer ask: the trial's access ended, as for git."""
    from orchestrator.service.git_http import refusal

    return refusal(trial)


def ask(home: Path, forge: Forge | None, trial: Trial, text: str) -> dict[str, Any]:
    """Log a candidate's question (host time) and post it to the brief issue."""
    closed = closed_reason(trial)
    if closed is not None:
        raise StateError(closed.replace("git access", "the question channel"),
                         "write what is still open into DESIGN.md as assumptions")
    text = _clean(text, "question")

    def make(existing: list[dict[str, Any]]) -> dict[str, Any]:
        asked = [r for r in existing if r.get("kind") == "question"]
        if len(asked) >= MAX_QUESTIONS:
            raise UsageError(f"this trial already has {MAX_QUESTIONS} questions, the limit",
                             "gather what is left into one question, or write your assumptions down")
        return {"ts": iso(utcnow()), "kind": "question", "number": len(asked) + 1, "text": text,
                "via": "sandbox", "author": trial.candidate}

    record = _append(home, trial.id, make)
    log.info("questions.asked", trial_id=trial.id, number=record["number"], chars=len(text))
    body = (f"**Question {record['number']}** from the candidate (asked from the sandbox at {record['ts']}):\n\n"
            f"{_quoted(text)}\n\nAnswer with `trial answer {trial.id}:{record['number']} \"…\"`"
            " (or a comment here that says `Q{n}`).".replace("{n}", str(record["number"])))
    _post(home, forge, trial, record, body)
    return record


def answer(home: Path, forge: Forge | None, trial: Trial, text: str,
           question: int | str | None = None) -> dict[str, Any]:
    """Log a reviewer's answer (host time), post it to the brief issue; `question` None: the oldest unanswered."""
    text = _clean(text, "answer")
    thread = read_thread(home, forge, trial)  # answers given as issue comments count as given
    numbers = [q["number"] for q in thread.questions()]
    if question is None:
        open_ones = thread.unanswered()
        if not open_ones:
            raise NotFoundError(f"trial {trial.id} has no unanswered question",
                                f"name one: `trial answer {trial.id}:N \"…\"` (asked: {numbers or 'none'})")
        question = open_ones[0]["number"]
    elif question not in numbers:
        raise NotFoundError(f"trial {trial.id} has no question {question}", f"asked so far: {numbers or 'none'}")
    asked = question
    record = _append(home, trial.id, lambda _existing: {
        "ts": iso(utcnow()), "kind": "answer", "question": asked, "text": text, "via": "cli", "author": "reviewer"})
    log.info("questions.answered", trial_id=trial.id, question=asked, chars=len(text))
    _post(home, forge, trial, record, f"**Answer to question {asked}:**\n\n{_quoted(text)}")
    return record


def _quoted(text: str) -> str:
    """The text as a quote that pings nobody and hides nothing (no @-mentions, no HTML comments)."""
    safe = text.replace("@", "@\u200b").replace("<!--", "&lt;!--")
    return "\n".join("> " + line for line in safe.splitlines())


def _post(home: Path, forge: Forge | None, trial: Trial, record: dict[str, Any], body: str) -> None:
    """Post to the brief issue; a forge that fails leaves the logged record standing (and says so)."""
    repo, number = _brief_issue(trial)
    if forge is None or repo is None or number is None:
        return
    # Unguessable: forges update the comment carrying a marker, and the candidate writes question text.
    marker = f"{MARKER}:{trial.id}:{record['seq']}:{secrets.token_hex(8)}"
    try:
        url = forge.post_comment(repo, number, body, marker)
    except TrialError as exc:
        log.warning("questions.not_posted", trial_id=trial.id, seq=record["seq"], error=exc.one_line())
        return
    record["comment_url"] = url
    _set_comment_url(home, trial.id, int(record["seq"]), url)


def _brief_issue(trial: Trial) -> tuple[RepoRef | None, int | None]:
    data = trial.data
    repo = RepoRef.from_json(data["repo"]) if data.get("repo") else None
    return repo, issue_number(data.get("issue_url"))


def read_thread(home: Path, forge: Forge | None, trial: Trial) -> Thread:
    """The host's log, plus (with a forge that lists issue comments) answers and questions made as
    comments on the brief issue, each with the forge's own time and author."""
    raw = read_log(home, trial.id)
    urls = {r["of"]: r["comment_url"] for r in raw if r.get("kind") == "posted"}
    records = [{**r, "witness": "host", "comment_url": urls.get(r["seq"], r.get("comment_url"))}
               for r in raw if r.get("kind") in ("question", "answer")]
    left_out: list[str] = []
    if forge is not None:
        records += _issue_comments(forge, trial, records, left_out)
    records.sort(key=lambda r: _moment(r["ts"]))
    return Thread(trial.id, records, left_out)


def _issue_comments(forge: Forge, trial: Trial, logged: list[dict[str, Any]],
                    left_out: list[str]) -> list[dict[str, Any]]:
    listing = getattr(forge, "issue_comments", None)
    repo, number = _brief_issue(trial)
    if listing is None or repo is None or number is None:
        return []
    try:
        comments: list[dict[str, Any]] = listing(repo, number)
    except ForgeError as exc:
        log.warning("questions.comments_unread", trial_id=trial.id, error=exc.one_line())
        left_out.append(f"the brief issue's comments (questions and answers given there): {exc.one_line()}")
        return []
    posted = {r.get("comment_url") for r in logged}
    questions = [r for r in logged if r["kind"] == "question"]
    extra: list[dict[str, Any]] = []
    for comment in sorted(comments, key=lambda c: _moment(c["created_at"])):
        author = str(comment.get("author") or "")
        body = str(comment.get("body") or "")
        # Our own posts (questions relayed, answers from `trial answer`) are already in the host's log.
        if comment.get("mine") or comment.get("url") in posted:
            continue
        # An edited comment is as old as its last edit: the text we read is the edit's, and an
        # early "any questions?" must not become a full interview after building started.
        created, updated = str(comment["created_at"]), str(comment.get("updated_at") or comment["created_at"])
        edited = _moment(updated) > _moment(created)
        base = {"ts": updated if edited else created, "text": body.strip()[:MAX_CHARS], "via": "issue",
                "author": author, "comment_url": comment.get("url"), "witness": "forge", "edited": edited,
                "created_at": created}
        if author.lower() == trial.candidate.lower():
            # Numbered apart from the host's 1, 2, …, which are given out as questions arrive.
            record = {**base, "kind": "question", "number": f"c{comment.get('id')}"}
            questions.append(record)
        else:
            record = {**base, "kind": "answer", "question": _answered(body, str(comment["created_at"]), questions)}
        extra.append(record)
    return extra


def _answered(body: str, ts: str, questions: list[dict[str, Any]]) -> int | str | None:
    """The question a comment answers: the one it names (`Q2`), else the last asked before it."""
    named = _REFERS.search(body)
    numbers = {q["number"] for q in questions}
    if named and int(named.group(1)) in numbers:
        return int(named.group(1))
    # GitHub times have whole seconds: a question in the same second counts as before.
    before = [q for q in questions if _moment(q["ts"]) <= _moment(ts) + timedelta(seconds=1)]
    if not before:
        return None
    last: int | str = before[-1]["number"]
    return last


def _moment(value: Any) -> datetime:
    from orchestrator.evidence.events import parse_ts

    return parse_ts(value) or datetime.max.replace(tzinfo=UTC)


def parse_answer_id(value: str) -> tuple[str, int | str | None]:
    """`TRIAL`, `TRIAL:N` (a question asked from the sandbox) or `TRIAL:cID` (one asked as an issue comment)."""
    trial_id, sep, number = value.partition(":")
    if not sep:
        return trial_id, None
    if number.isdigit():
        return trial_id, int(number)
    if re.fullmatch(r"c\d+", number):
        return trial_id, number
    raise UsageError(f"'{value}' is not TRIAL:N", "name the question by its number, e.g. t-1a2b:3 "
                     "(`trial questions ID` lists them)")


def events(bundle_dir: Path) -> list[dict[str, Any]]:
    """Timeline events (`question`, `answer`) from the bundle's questions.jsonl."""
    path = bundle_dir / QUESTIONS_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        data = {k: record.get(k) for k in ("number", "question", "via", "author", "comment_url", "edited",
                                           "created_at") if k in record}
        out.append({"ts": record["ts"], "source": "host" if record["witness"] == "host" else "forge",
                    "kind": record["kind"], "session": None, "text": record["text"], "data": data,
                    "witness": record["witness"]})
    return out


def merge_into(timeline: list[dict[str, Any]], bundle_dir: Path) -> list[dict[str, Any]]:
    """The timeline with the question events in time order (stable for equal times)."""
    from orchestrator.evidence.events import parse_ts
    from orchestrator.logging import redact_text

    def redacted(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "text": redact_text(event["text"])}

    added = [redacted(e) for e in events(bundle_dir)]
    merged = timeline + added
    dated = [e for e in merged if parse_ts(e.get("ts")) is not None]
    undated = [e for e in merged if parse_ts(e.get("ts")) is None]
    return sorted(dated, key=lambda e: parse_ts(e.get("ts"))) + undated  # type: ignore[arg-type,return-value]


def collect(home: Path, forge: Forge | None, trial: Trial, bundle_dir: Path) -> dict[str, Any]:
    """Write the thread into the bundle (`questions.jsonl`); issue comments that cannot be read are named."""
    thread = read_thread(home, forge, trial)
    path = bundle_dir / QUESTIONS_FILE
    if not thread.records:
        path.unlink(missing_ok=True)
        return {"questions": 0, "answers": 0, "left_out": thread.left_out}
    with path.open("w") as handle:
        for record in thread.records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    return {"questions": len(thread.questions()), "answers": len(thread.answers()), "left_out": thread.left_out}
