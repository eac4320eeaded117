"""Provenance: which agent turn wrote which lines of each commit, and what reached the PR.

Each commit's added lines (and so each diff hunk) are matched against the lines the
agent's file-writing tool calls put into the same file before that commit, and against
the text of its shell commands (`cat > f <<EOF`, `python -c`, `sed -i`, `tee`): what the
agent wrote through its shell is the agent's too, wherever it landed. A hunk belongs to
the tool call that wrote most of its lines, and through it to the candidate prompt that
led to it. Lines no logged tool call wrote have "no logged origin": the candidate may
have typed them, or pasted them from anywhere; nothing here says which. Over the whole
pull request, every line an agent wrote is either in the final diff unchanged, there but
edited, or dropped before it shipped.

The grader scores one thing: that the agent lines in the PR trace to exchanges the gateway
logged (lines from a transcript turn the gateway never saw came from a model reached some
other way, or from an edited transcript).
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from graders.base import Criterion, GradeContext, GraderResult
from graders.repo import AddedLine, Repo, Revision, choose_revision, open_repo
from graders.timeline import Event, FileWrite, file_writes
from orchestrator.errors import EvidenceError
from orchestrator.evidence.bundle import Bundle

_EDITED_RATIO = 0.6
_MAX_LISTED = 50


def _key(text: str) -> str:
    return " ".join(text.split())


def meaningful(text: str) -> bool:
    """Lines worth attributing: not blank, not a lone bracket or keyword anyone would type."""
    key = _key(text)
    return len(key) >= 4 and any(ch.isalnum() for ch in key)


@dataclass
class Hunk:
    path: str
    start: int
    end: int
    lines: int
    turn: int | None
    """Event index of the tool call that wrote most of the hunk; None: no logged origin."""
    prompt: int | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CommitProvenance:
    sha: str
    subject: str
    event: int | None
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def turns(self) -> list[int]:
        return sorted({h.turn for h in self.hunks if h.turn is not None})

    @property
    def prompts(self) -> list[int]:
        return sorted({h.prompt for h in self.hunks if h.prompt is not None})

    @property
    def agent_lines(self) -> int:
        return sum(h.lines for h in self.hunks if h.turn is not None)

    @property
    def own_lines(self) -> int:
        """Lines of no logged origin (the name is kept for callers; it proves no authorship)."""
        return sum(h.lines for h in self.hunks if h.turn is None)

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "subject": self.subject, "event": self.event, "turns": self.turns,
                "prompts": self.prompts, "agent_lines": self.agent_lines, "no_logged_origin_lines": self.own_lines,
                # Alias read by the report templates until they show "no logged origin".
                "own_lines": self.own_lines,
                "hunks": [h.to_json() for h in self.hunks[:_MAX_LISTED]]}


@dataclass
class Provenance:
    revision: Revision
    commits: list[CommitProvenance]
    pr_lines: int
    agent_unchanged: int
    agent_edited: int
    agent_dropped: int
    own_lines: int
    unverified_lines: int
    unverified_turns: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision.to_json(), "commits": [c.to_json() for c in self.commits],
                "lines": {"pr_added": self.pr_lines, "agent_unchanged": self.agent_unchanged,
                          "agent_edited": self.agent_edited, "agent_dropped": self.agent_dropped,
                          "no_logged_origin": self.own_lines, "own": self.own_lines,
                          "agent_unverified": self.unverified_lines},
                "unverified_turns": self.unverified_turns}


def _prompt_before(events: list[Event], index: int) -> int | None:
    for position in range(index - 1, -1, -1):
        if events[position]["kind"] == "user_prompt":
            return position
    return None


def _attribute(lines: list[AddedLine], writes: list[FileWrite]) -> dict[tuple[str, int], FileWrite]:
    """(path, line number) → the latest write that put that text into that file."""
    by_path: dict[str, list[tuple[FileWrite, set[str]]]] = defaultdict(list)
    for write in writes:
        # A shell write whose file is unknown ("" path) may have put its lines into any file.
        by_path[write.path].append((write, {_key(text) for text in write.lines}))
    anywhere = by_path.get("", [])
    found: dict[tuple[str, int], FileWrite] = {}
    for line in lines:
        if not meaningful(line.text):
            continue
        key = _key(line.text)
        candidates = sorted([*by_path.get(line.path, []), *anywhere], key=lambda item: item[0].index)
        for write, keys in reversed(candidates):
            if key in keys or any(_key(fragment) in key for fragment in write.fragments):
                found[(line.path, line.line)] = write
                break
    return found


def _hunks(lines: list[AddedLine], owners: dict[tuple[str, int], FileWrite], events: list[Event]) -> list[Hunk]:
    hunks: list[Hunk] = []
    group: list[AddedLine] = []

    def close() -> None:
        if not group:
            return
        votes: dict[int, int] = defaultdict(int)
        counted = 0
        for line in group:
            owner = owners.get((line.path, line.line))
            if owner is not None:
                votes[owner.index] += 1
            if meaningful(line.text):
                counted += 1
        turn = max(votes, key=lambda index: (votes[index], index)) if votes else None
        if turn is not None and votes[turn] * 2 < max(counted, 1):
            turn = None  # the agent wrote only a minority of it: the candidate's hunk
        hunks.append(Hunk(group[0].path, group[0].line, group[-1].line, len(group), turn,
                          _prompt_before(events, turn) if turn is not None else None))
        group.clear()

    for line in lines:
        if group and (line.path != group[-1].path or line.line != group[-1].line + 1):
            close()
        group.append(line)
    close()
    return hunks


def build_provenance(bundle: Bundle, repo: Repo, events: list[Event]) -> Provenance:
    revision = choose_revision(bundle, repo)
    writes = [w for w in file_writes(events) if w.applied]
    commit_events = {str(e["data"].get("sha")): i for i, e in enumerate(events) if e["kind"] == "commit"}
    commits: list[CommitProvenance] = []
    for sha in repo.rev_list(revision.base_sha, revision.sha):
        at = commit_events.get(sha)
        before = [w for w in writes if at is None or w.index < at]
        added = repo.commit_added_lines(sha)
        subject = repo.git("show", "-s", "--format=%s", sha).strip()
        commits.append(CommitProvenance(sha, subject, at, _hunks(added, _attribute(added, before), events)))

    final = [line for line in repo.added_lines(revision.base_sha, revision.sha) if meaningful(line.text)]
    final_keys: dict[str, set[str]] = defaultdict(set)
    for line in final:
        final_keys[line.path].add(_key(line.text))
    owners = _attribute(final, writes)
    edited = dropped = 0
    seen: set[tuple[str, str]] = set()
    base_keys: dict[str, set[str]] = {}
    for write in writes:
        if not write.path:
            continue  # command text, not file lines: only what reached the diff is counted
        if write.path not in base_keys:
            # A whole-file write repeats lines the starter already had: those are nobody's new work.
            starter_text = repo.show(revision.base_sha, write.path) or ""
            base_keys[write.path] = {_key(text) for text in starter_text.splitlines()}
        for text in write.lines:
            key = _key(text)
            if not meaningful(text) or (write.path, key) in seen or key in base_keys[write.path]:
                continue
            seen.add((write.path, key))
            if key in final_keys[write.path]:
                continue  # counted below, once per line of the final diff
            if difflib.get_close_matches(key, list(final_keys[write.path]), n=1, cutoff=_EDITED_RATIO):
                edited += 1
            else:
                dropped += 1
    unchanged = len(owners)
    unverified = [owner for owner in owners.values() if not owner.verified]
    return Provenance(revision=revision, commits=commits, pr_lines=len(final), agent_unchanged=unchanged,
                      agent_edited=edited, agent_dropped=dropped, own_lines=len(final) - len(owners),
                      unverified_lines=len(unverified), unverified_turns=sorted({w.index for w in unverified}))


class ProvenanceGrader:
    name = "provenance"

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
        events = bundle.events()
        try:
            with open_repo(bundle) as repo:
                provenance = build_provenance(bundle, repo, events)
        except EvidenceError as exc:
            return GraderResult(self.name, status="infra_error", summary=exc.one_line())
        agent_in_pr = provenance.pr_lines - provenance.own_lines
        refs = [f"event:{i}" for c in provenance.commits for i in c.turns][:_MAX_LISTED]
        details = {**provenance.to_json(), "trusts": TRUSTS}
        if agent_in_pr == 0:
            # Nothing to trace is neither good nor bad: leave it out of the overall score.
            return GraderResult(self.name, status="skipped", summary="No agent-written line reached the pull "
                                "request: " + _summary(provenance), details=details)
        traced = agent_in_pr - provenance.unverified_lines
        score = round(4.0 * traced / agent_in_pr, 2)
        rationale = f"{traced} of {agent_in_pr} agent-written lines in the PR come from turns the gateway logged."
        if provenance.unverified_lines:
            rationale += (f" {provenance.unverified_lines} come from transcript turns the gateway never saw "
                          f"(events {', '.join(map(str, provenance.unverified_turns[:10]))}).")
            refs = [f"event:{i}" for i in provenance.unverified_turns][:_MAX_LISTED] + refs
        summary = _summary(provenance)
        return GraderResult(self.name, criteria=[Criterion("traceable", "Agent lines trace to logged exchanges",
                                                           score, 4.0, rationale, refs)],
                            summary=summary, details=details)


def _summary(provenance: Provenance) -> str:
    linked = sum(1 for c in provenance.commits if c.turns)
    return (f"{linked} of {len(provenance.commits)} commits link to agent turns. Of {provenance.pr_lines} lines the "
            f"PR adds, {provenance.agent_unchanged} are the agent's as written and {provenance.own_lines} have no "
            f"logged origin (typed or pasted by the candidate, or written by a model the gateway never saw); "
            f"{provenance.agent_edited} agent lines were edited before shipping and {provenance.agent_dropped} "
            f"dropped.")


TRUSTS = ("The repo bundle (host) for what shipped; agent tool calls the gateway logged (file writes and shell "
          "command text) for who wrote it; transcript-only writes are counted as unverified.")
