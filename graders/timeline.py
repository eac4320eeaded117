"""Read the normalized timeline (events.jsonl) the way graders need it.

Agents name their tools differently (Claude Code `Write`/`Edit`, the Anthropic text editor
tool, Codex `apply_patch`/`exec_command`, Aider's SEARCH/REPLACE blocks in plain text),
and they also write files through their shell tool (`cat > f <<EOF`, `sed -i`, `tee`,
`python -c`); this module hides that, so graders ask "which files did this turn write"
or "was this a test run, and did it fail" without knowing the agent.

It also says who witnessed each event (`witness`): scores use only what the gateway, the
host or the forge saw; the candidate could have written a transcript-only event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graders.base import GraderResult
from orchestrator.evidence.bundle import Bundle
from orchestrator.evidence.events import MISSING_FROM_GATEWAY, SCORED_WITNESSES, WITNESSES, parse_ts

Event = dict[str, Any]

_TEST_COMMAND = re.compile(
    r"(\bpytest\b|\bpy\.test\b|-m unittest\b|\btox\b|\bnox\b|\bgo test\b|\bcargo test\b|\bnpm (run )?test\b|"
    r"\byarn test\b|\bpnpm test\b|\bjest\b|\bvitest\b|\bmvn test\b|\bgradle test\b|\bmake (check|test)\b|"
    r"\brspec\b|\bphpunit\b|\bctest\b)")
_FAILED = re.compile(r"(\b\d+ (failed|errors?)\b|^FAILED\b|^ERROR\b|Traceback \(most recent call last\)|"
                     r"\bAssertionError\b|\bFAIL:|^--- FAIL|\btest result: FAILED\b|\bTests?:\s+\d+ failed)",
                     re.M)
_PASSED = re.compile(r"(\b\d+ passed\b|^OK\b|\bok\s+\S+\s+[\d.]+s\b|\btest result: ok\b|\bTests?:\s+\d+ passed)",
                     re.M)
_REVERT_COMMAND = re.compile(r"\bgit (revert|checkout\s+(--\s+)?\S+|restore|reset\s+--hard|stash)\b")
_SEARCH_REPLACE = re.compile(r"^(?P<path>[^\n`]+?)\n```[^\n]*\n<<<<<<< SEARCH\n(?P<old>.*?)^=======\n"
                             r"(?P<new>.*?)^>>>>>>> REPLACE", re.M | re.S)
_PATCH_FILE = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+)$")
# A shell command that changes files: redirection into a file (not a descriptor or
# /dev/null), heredocs, in-place editors, tee, inline Python, copies and patches.
_SHELL_WRITE = re.compile(
    r"(<<-?\s*['\"]?\w+|\bsed\s+(?:-\w+\s+)*-i|\bsed\s+--in-place|\bperl\s+-\w*i|\btee\b|"
    r"(?<![<>0-9&])>>?\s*(?!&|/dev/null)['\"]?[\w./~-]|"
    r"\b(cp|mv|rm|touch|truncate|install|ln)\s|\bgit\s+(?:(?:apply|am|restore|revert)\b|checkout\s+--\s|"
    r"reset\s+--hard\b|stash\s+(?:pop|apply)\b)|\bpatch\s+-p|\bapply_patch\b)")
# Inline Python or Node writes files only when it says so; `python3 -c "import x"` is a check.
_INLINE_CODE = re.compile(r"\b(python3?\s+(?:-\w+\s+)*-c|node\s+-e)\b")
_INLINE_WRITE = re.compile(r"open\([^)]*['\"][wax]b?\+?['\"]|\.write(_text|_bytes)?\(|writeFileSync|\bos\.(replace|"
                           r"rename|remove|unlink)\(|shutil\.|\.unlink\(|\.rename\(")
_HEREDOC = re.compile(r"^(?P<head>[^\n]*?)<<-?\s*(?P<q>['\"]?)(?P<tag>\w+)(?P=q)(?P<rest>[^\n]*)\n"
                      r"(?P<body>.*?)^\s*(?P=tag)\s*$", re.M | re.S)
_REDIRECT_TARGET = re.compile(r"(?:(?<![<>0-9&])>>?|\btee\s+(?:-a\s+)?)\s*['\"]?([^\s'\"<>|;&()]+)")
_SED_REPLACEMENT = re.compile(r"\bs(?P<d>[/|#,:@])(?:\\.|(?!(?P=d)).)*(?P=d)(?P<new>(?:\\.|(?!(?P=d)).)*)(?P=d)")
_MIN_FRAGMENT = 10
_WRITE_TOOLS = {"write", "edit", "multiedit", "create", "str_replace_based_edit_tool", "str_replace_editor",
                "apply_patch", "notebookedit", "write_file", "edit_file", "replace"}
_SHELL_TOOLS = {"bash", "shell", "exec_command", "run_terminal_cmd", "local_shell", "container.exec"}


def tool_name(event: Event) -> str:
    data = event.get("data") or {}
    return str(data.get("tool") or data.get("name") or data.get("tool_name") or event.get("text") or "")


def tool_input(event: Event) -> dict[str, Any]:
    data = event.get("data") or {}
    value = data.get("input", data.get("arguments"))
    return value if isinstance(value, dict) else {"input": value} if value is not None else {}


def tool_use_id(event: Event) -> str:
    data = event.get("data") or {}
    return str(data.get("tool_use_id") or data.get("call_id") or data.get("id") or "")


def command_of(event: Event) -> str:
    """The shell command of a tool call, or "" when it is not a shell call."""
    arguments = tool_input(event)
    value = arguments.get("command") or arguments.get("cmd")
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    if isinstance(value, str):
        return value
    return ""


_SOURCE_WITNESS = {"gateway": "gateway", "git": "host", "forge": "forge", "host": "host"}
UNWITNESSED = "unwitnessed"
"""The kind an event takes in `witnessed_view` when only a transcript shows it."""


def witness(event: Event) -> str:
    """Who saw this event happen: gateway, host, forge, or only the (candidate-writable) transcript.

    The collector stamps `witness` on every event; bundles collected before it did are read
    by source: gateway records, git and forge events are witnessed, and a transcript event
    is the gateway's only when the cross-check found it in the log (`data.gateway_seq`).
    """
    stamped = event.get("witness")
    if stamped in WITNESSES:
        return str(stamped)
    source = str(event.get("source") or "")
    if source in _SOURCE_WITNESS:
        return _SOURCE_WITNESS[source]
    data = event.get("data") or {}
    if data.get("gateway_seq") is not None and not data.get(MISSING_FROM_GATEWAY):
        return "gateway"
    return "transcript"


def witnessed(event: Event) -> bool:
    return witness(event) in SCORED_WITNESSES


def verified(event: Event) -> bool:
    """True when a party other than the candidate witnessed the event (see `witness`)."""
    return witnessed(event)


def witnessed_view(events: list[Event]) -> list[Event]:
    """The timeline with every transcript-only event blanked out, indexes kept.

    Graders compute scores on this view, so a forged transcript line (an interrupt, a
    rejection, a passing test run) cannot move a score, while event indexes still cite
    the real timeline.
    """
    return [event if witnessed(event) else {"ts": event.get("ts"), "source": event.get("source"),
                                            "kind": UNWITNESSED, "session": event.get("session"), "text": "",
                                            "data": {"was": event.get("kind")}}
            for event in events]


def transcript_only(events: list[Event]) -> list[dict[str, Any]]:
    """Transcript-only events, listed for reviewers and marked: shown, never scored."""
    return [{"index": i, "kind": e.get("kind"), "source": e.get("source"), "witness": "transcript",
             "text": str(e.get("text") or "")[:160], "scored": False}
            for i, e in enumerate(events) if not witnessed(e)][:100]


def seconds_between(earlier: Event, later: Event) -> float | None:
    left, right = parse_ts(earlier.get("ts")), parse_ts(later.get("ts"))
    return (right - left).total_seconds() if left and right else None


def results_by_tool_use(events: list[Event]) -> dict[str, int]:
    """tool_use_id → index of its result or rejection."""
    found: dict[str, int] = {}
    for index, event in enumerate(events):
        if event["kind"] in ("tool_result", "tool_rejected") and tool_use_id(event):
            found.setdefault(tool_use_id(event), index)
    return found


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest class

    call: int
    result: int | None
    command: str
    failed: bool | None
    """None when the output says neither (still running, or an unknown runner)."""


def test_runs(events: list[Event]) -> list[TestRun]:
    results = results_by_tool_use(events)
    runs: list[TestRun] = []
    for index, event in enumerate(events):
        if event["kind"] != "tool_call":
            continue
        command = command_of(event)
        if not command or not _TEST_COMMAND.search(command):
            continue
        result_index = results.get(tool_use_id(event))
        outcome: bool | None = None
        if result_index is not None:
            result = events[result_index]
            text = result.get("text") or ""
            data = result.get("data") or {}
            exit_code = data.get("exit_code")
            if result["kind"] == "tool_rejected":
                outcome = None
            elif _FAILED.search(text) or (isinstance(exit_code, int) and exit_code != 0):
                outcome = True
            elif _PASSED.search(text) or exit_code == 0:
                outcome = False
            elif data.get("is_error"):
                outcome = True
        runs.append(TestRun(index, result_index, command, outcome))
    return runs


def is_revert_command(event: Event) -> bool:
    return event["kind"] == "tool_call" and bool(_REVERT_COMMAND.search(command_of(event)))


@dataclass(frozen=True)
class FileWrite:
    index: int
    """Event index of the tool call (or assistant message, for edit blocks in plain text)."""
    path: str
    lines: tuple[str, ...]
    """The lines this write put into the file (new text only)."""
    applied: bool
    """False when the candidate rejected the call or it failed."""
    verified: bool
    session: Any = None
    gateway_seq: int | None = None
    tool: str = ""
    removed: tuple[str, ...] = field(default=())
    fragments: tuple[str, ...] = field(default=())
    """Pieces of lines (a `sed` replacement) the write put somewhere into the file."""
    via_shell: bool = False
    """Written through the shell tool: `path` may be "" (some file, not known which)."""


def _relative(path: str) -> str:
    path = path.strip()
    for prefix in ("/workspace/", "./"):
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path


def _lines(text: Any) -> tuple[str, ...]:
    return tuple(str(text).splitlines()) if text else ()


def _writes_of_call(arguments: dict[str, Any], name: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(path, added lines, removed lines) for each file one tool call writes."""
    lowered = name.lower()
    path = arguments.get("file_path") or arguments.get("path") or arguments.get("filename") or ""
    if lowered in ("write", "write_file", "create") or arguments.get("command") == "create":
        return [(_relative(str(path)), _lines(arguments.get("content") or arguments.get("file_text")), ())]
    if lowered == "multiedit":
        edits = arguments.get("edits") or []
        added = tuple(line for edit in edits if isinstance(edit, dict) for line in _lines(edit.get("new_string")))
        removed = tuple(line for edit in edits if isinstance(edit, dict) for line in _lines(edit.get("old_string")))
        return [(_relative(str(path)), added, removed)]
    if "new_string" in arguments or "new_str" in arguments:
        return [(_relative(str(path)), _lines(arguments.get("new_string") or arguments.get("new_str")),
                 _lines(arguments.get("old_string") or arguments.get("old_str")))]
    if arguments.get("command") == "insert":
        return [(_relative(str(path)), _lines(arguments.get("new_str")), ())]
    patch = arguments.get("patch") or arguments.get("input")
    if isinstance(patch, str) and "*** Begin Patch" in patch:
        return _patch_writes(patch)
    return []


@dataclass(frozen=True)
class PatchFile:
    """One file of a Codex apply_patch envelope (`*** Begin Patch` … `*** End Patch`)."""

    action: str
    """"Add", "Update" or "Delete"."""
    path: str
    move_to: str | None
    """`*** Move to:` under an Update: the file's new path."""
    hunks: tuple[tuple[str, ...], ...]
    """Add: one hunk of its "+" lines. Update: each `@@` hunk's " ", "-" and "+" lines (an empty
    line is empty context). Delete: none."""

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(line[1:] for hunk in self.hunks for line in hunk if line.startswith("+"))

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(line[1:] for hunk in self.hunks for line in hunk if line.startswith("-"))


def parse_patch(patch: str) -> list[PatchFile]:
    """The files of a Codex apply_patch, each with its hunks; the one parser every grader reads patches with."""
    found: list[PatchFile] = []
    action, path, move_to = "", "", None
    hunks: list[list[str]] = []

    def close() -> None:
        if action:
            found.append(PatchFile(action, _relative(path), _relative(move_to) if move_to else None,
                                   tuple(tuple(h) for h in hunks if h)))

    for line in patch.splitlines():
        head = _PATCH_FILE.match(line)
        if head:
            close()
            action, path, move_to, hunks = head.group(1), head.group(2), None, [[]]
        elif line.startswith("*** End Patch"):
            break
        elif not action or line.startswith("*** Begin Patch"):
            continue
        elif line.startswith("*** Move to: "):
            move_to = line[len("*** Move to: "):]
        elif line.startswith("@@"):
            hunks.append([])  # the text after @@ names where the hunk is, it is no line of the file
        elif line.startswith("*** End of File"):
            continue
        elif action != "Delete":
            hunks[-1].append(line)
    close()
    return found


def _patch_writes(patch: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(path, added, removed) of each file a Codex apply_patch adds or updates (a moved file under its new path)."""
    return [(f.move_to or f.path, f.added, f.removed) for f in parse_patch(patch) if f.action != "Delete"]


def shell_writes_files(command: str) -> bool:
    """Whether a shell command (not a test run) changes files in the work tree."""
    if not command or _TEST_COMMAND.search(command):
        return False
    if _INLINE_CODE.search(command) and _INLINE_WRITE.search(command):
        return True
    return bool(_SHELL_WRITE.search(command))


def _command_lines(text: str) -> tuple[str, ...]:
    # `python -c "...\n..."` and `printf 'a\nb'` carry their lines as escaped newlines.
    return tuple(part for line in text.splitlines() for part in line.split("\\n"))


def _shell_writes(command: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """(path or "", added lines, removed lines, fragments) for what a shell command writes.

    Heredocs name their file (`cat > f <<EOF`, `tee f <<EOF`); other writes (`python -c`,
    `sed -i`, `printf >`) are attributed by content: every line of the command text is a
    line the agent may have put into some file, so a committed line equal to one of them is
    the agent's, wherever it landed.
    """
    found: list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = []
    for match in _HEREDOC.finditer(command):
        target = _REDIRECT_TARGET.search(match.group("head") + " " + match.group("rest"))
        path = _relative(target.group(1)) if target else ""
        found.append((path, _lines(match.group("body")), (), ()))
    fragments = tuple(m.group("new").replace("\\/", "/") for m in _SED_REPLACEMENT.finditer(command)
                      if len(m.group("new").strip()) >= _MIN_FRAGMENT)
    found.append(("", _command_lines(command), (), fragments))
    return found


def file_writes(events: list[Event]) -> list[FileWrite]:
    results = results_by_tool_use(events)
    writes: list[FileWrite] = []
    for index, event in enumerate(events):
        data = event.get("data") or {}
        found: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        shell: list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = []
        applied = True
        if event["kind"] == "tool_call":
            name = tool_name(event)
            arguments = tool_input(event)
            command = command_of(event)
            if "*** Begin Patch" in command:
                found = _patch_writes(command)
            elif name.lower() in _SHELL_TOOLS:
                if shell_writes_files(command):
                    shell = _shell_writes(command)
            elif name.lower() in _WRITE_TOOLS or "file_path" in arguments or "patch" in arguments:
                found = _writes_of_call(arguments, name)
            result_index = results.get(tool_use_id(event))
            if result_index is not None:
                result = events[result_index]
                applied = result["kind"] != "tool_rejected" and not (result.get("data") or {}).get("is_error")
        elif event["kind"] == "assistant_message" and "<<<<<<< SEARCH" in (event.get("text") or ""):
            for match in _SEARCH_REPLACE.finditer(event["text"]):
                found.append((_relative(match.group("path")), _lines(match.group("new")),
                               _lines(match.group("old"))))
        for path, added, removed in found:
            if path:
                writes.append(FileWrite(index=index, path=path, lines=added, applied=applied,
                                        verified=witnessed(event), session=event.get("session"),
                                        gateway_seq=data.get("gateway_seq"), tool=tool_name(event),
                                        removed=removed))
        for path, added, removed, fragments in shell:
            writes.append(FileWrite(index=index, path=path, lines=added, applied=applied,
                                    verified=witnessed(event), session=event.get("session"),
                                    gateway_seq=data.get("gateway_seq"), tool=tool_name(event),
                                    removed=removed, fragments=fragments, via_shell=True))
    return writes


def _pushed_commits(bundle: Bundle) -> list[tuple[dict[str, Any], list[str]]]:
    """Each push record with the commits it brought to the forge (oldest push first)."""
    records = bundle.commits()
    parents = {str(c.get("sha")): [str(p) for p in c.get("parents") or []] for c in records}
    # The starter (the default branch as launched) is nobody's push: stop the walk there.
    default = str(((bundle.trial.get("repo") or {}) if isinstance(bundle.trial.get("repo"), dict) else {})
                  .get("default_branch") or "main")
    # `git log --format=%D` decorates the checked-out branch as "HEAD -> main": read the name.
    stack = [str(c.get("sha")) for c in records
             if {default, f"origin/{default}"} & {str(r).split(" -> ")[-1].strip() for r in c.get("refs") or []}]
    seen: set[str] = set()
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in parents:
            continue
        seen.add(sha)
        stack.extend(parents[sha])
    found: list[tuple[dict[str, Any], list[str]]] = []
    for push in sorted(bundle.pushes(), key=lambda p: str(p.get("ts", ""))):
        stop = {str(push.get("before") or "")} | seen
        new: list[str] = []
        stack = [str(push.get("after") or "")]
        while stack and len(new) < 10_000:
            sha = stack.pop()
            if not sha or sha in stop or sha in new or sha not in parents:
                continue
            new.append(sha)
            stack.extend(parents[sha])
        seen.update(new)
        found.append((push, new))
    return found


BOT_PUSHERS = frozenset({"trial-bot"})
"""Pushers in the host's push log that are the product, not the candidate (the starter at launch)."""


def idle_pushes(bundle: Bundle, events: list[Event]) -> set[int]:
    """Event indexes of pushes that shipped no work: the starter pushed at launch, a branch
    deleted, a ref moved to commits the forge already had."""
    parents = {str(c.get("sha")) for c in bundle.commits()}
    idle_keys = {(str(push.get("ts")), str(push.get("after"))) for push, shas in _pushed_commits(bundle)
                 if str(push.get("pusher")) in BOT_PUSHERS
                 or (not shas and (str(push.get("after") or "").strip("0") == "" or str(push.get("after")) in parents))}
    found: set[int] = set()
    for index, event in enumerate(events):
        if event["kind"] == "push":
            data = event.get("data") or {}
            moment = parse_ts(data.get("ts") or event.get("ts"))
            if any(after == str(data.get("after")) and parse_ts(ts) == moment for ts, after in idle_keys):
                found.add(index)
    return found


def commit_times(bundle: Bundle) -> dict[str, datetime]:
    """sha → when the host saw the commit: the time of the first push that brought it.

    Never the commit's own date, which `GIT_COMMITTER_DATE` sets. A commit no push brought
    (read from a bundle without a push log) has no host time and is left out.
    """
    times: dict[str, datetime] = {}
    for push, shas in _pushed_commits(bundle):
        moment = parse_ts(push.get("ts"))
        if moment:
            for sha in shas:
                times.setdefault(sha, moment)
    return times


def push_paths(bundle: Bundle, events: list[Event]) -> dict[int, list[str]]:
    """Event index of each push → the paths its commits changed."""
    files = {str(c.get("sha")): [str(f.get("path")) for f in c.get("files") or []] for c in bundle.commits()}
    by_key: dict[tuple[str, str], list[str]] = {}
    for push, shas in _pushed_commits(bundle):
        by_key[(str(push.get("ts")), str(push.get("after")))] = sorted({p for sha in shas for p in files.get(sha, [])})
    found: dict[int, list[str]] = {}
    for index, event in enumerate(events):
        if event["kind"] == "push":
            data = event.get("data") or {}
            moment = parse_ts(data.get("ts") or event.get("ts"))
            for (ts, after), paths in by_key.items():
                if after == str(data.get("after")) and parse_ts(ts) == moment:
                    found[index] = paths
    return found


def words(text: str) -> int:
    return len(text.split())


def unverifiable(prompts: int) -> str:
    """Why a session with a transcript but no gateway log is not scored."""
    return (f"Not scored: the bundle holds no gateway log, so the transcript's {prompts} prompt(s) cannot be "
            "checked against what reached a model. Either the log was not collected (infrastructure) or the "
            "agent bypassed the gateway: a reviewer must look.")


def without_agent(bundle: Bundle, grader: str, reason: str) -> GraderResult | None:
    """A `skipped` result when the trial ran with no coding agent, else None.

    Not the candidate's doing: the operator launched the trial without an agent, so there
    is nothing to steer and no prompt to judge; a zero would be a wrong score.
    """
    if bundle.trial.get("agent") != "none":
        return None
    return GraderResult(grader, status="skipped", summary=f"No coding agent in this trial ({reason}).")
