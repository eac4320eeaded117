"""Finding an agent's transcripts in the sandbox home and keeping them raw in the bundle.

Globs are matched fnmatch-style against paths relative to the home, where `*` also
crosses `/` (so `.codex/sessions/*.jsonl` finds `.codex/sessions/2026/11/24/rollout-….jsonl`).
Collect copies out only the folders the globs can reach, never the whole home: it also
holds the candidate's SSH keys and the trial token.
"""

from __future__ import annotations

import fnmatch
import io
import multiprocessing
import tarfile
import time
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath

from orchestrator.agents.base import AgentSpec, Event
from orchestrator.agents.events import jsonl_records
from orchestrator.errors import EvidenceError, SandboxError
from orchestrator.evidence.bundle import TRANSCRIPTS_DIR
from orchestrator.sandbox.base import HOME, SandboxBackend, SandboxRef

MAX_TRANSCRIPT_BYTES = 512 * 1024 * 1024
"""A runaway agent must not fill the evidence disk; no real session comes near this."""


def matches(rel: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in globs)


def glob_roots(globs: Iterable[str]) -> list[str]:
    """The deepest folder of each glob without wildcards: what must be copied out to match it."""
    roots: set[str] = set()
    for pattern in globs:
        fixed: list[str] = []
        for part in PurePosixPath(pattern).parts[:-1]:
            if any(char in part for char in "*?["):
                break
            fixed.append(part)
        roots.add("/".join(fixed) or ".")
    # A root inside another root is copied with it.
    return sorted(root for root in roots
                  if not any(root != other and (other == "." or root.startswith(other + "/")) for other in roots))


def select(files: Mapping[str, bytes], globs: Iterable[str]) -> dict[str, bytes]:
    patterns = tuple(globs)
    return {rel: data for rel, data in files.items() if matches(rel, patterns)}


def read_tree(root: Path, globs: Iterable[str]) -> dict[str, bytes]:
    """Transcripts under a folder laid out like the sandbox home (a bundle's copy, a fixture).

    Regular files only: a symlink is never followed (it could point anywhere on the host)."""
    patterns = tuple(globs)
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_symlink() and path.is_file() and matches(rel, patterns):
            found[rel] = path.read_bytes()
    return found


def collect(backend: SandboxBackend, ref: SandboxRef, agent: AgentSpec,
            problems: list[str] | None = None) -> dict[str, bytes]:
    """The agent's transcripts from the sandbox home (works on a stopped container).

    A folder over the size cap is left out and named in `problems` rather than failing the
    collect: the candidate controls those folders, and must not be able to block collection.
    """
    files: dict[str, bytes] = {}
    for root in glob_roots(agent.transcript_globs):
        source = HOME if root == "." else f"{HOME}/{root}"
        try:
            # The tar adds headers and padding: allow some room over the transcripts' own cap.
            archive = backend.copy_out(ref, source, max_bytes=MAX_TRANSCRIPT_BYTES + (16 << 20))
            files.update(_untar(archive, root, agent.transcript_globs, problems))
        except tarfile.TarError as exc:
            if problems is None:
                raise EvidenceError(f"the copy of ~/{root} is not a readable archive: {exc}") from exc
            problems.append(f"~/{root}: the copy is not a readable archive ({exc}); its transcripts were left out")
        except SandboxError as exc:
            if isinstance(exc, LookupError):
                continue  # the agent was never started: no folder, no transcripts
            if problems is None:
                raise
            problems.append(exc.message)
        except EvidenceError as exc:
            if problems is None:
                raise
            problems.append(exc.message)
    return files


def _untar(archive: bytes, root: str, globs: tuple[str, ...], problems: list[str] | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    # `docker cp` names members after the copied folder's own name: map them back under home.
    parent = PurePosixPath(root).parent.as_posix()
    parent = "" if parent == "." else parent
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if root == ".":
                rel = name.split("/", 1)[1] if "/" in name else name  # drop the home folder's own name
            else:
                rel = f"{parent}/{name}" if parent else name
            if not matches(rel, globs):
                continue
            if not member.isfile() or ".." in PurePosixPath(rel).parts or rel.startswith("/"):
                # Links could point anywhere, fifos and devices hold no transcript, and a name
                # that climbs out of home would be written outside the bundle.
                if problems is not None and not member.isdir():
                    problems.append(f"~/{rel}: {_member_kind(member)}, not a plain file under home; left out")
                continue
            total += member.size
            if total > MAX_TRANSCRIPT_BYTES:
                raise EvidenceError(f"transcripts under ~/{root} exceed {MAX_TRANSCRIPT_BYTES >> 20} MiB",
                                    "inspect the sandbox home by hand; the raw files were not collected")
            handle = tar.extractfile(member)
            if handle is not None:
                files[rel] = handle.read()
    return files


def write_raw(bundle_dir: Path, agent_name: str, files: Mapping[str, bytes],
              problems: list[str] | None = None) -> list[Path]:
    """Store transcripts as `transcripts/<agent>/<path under home>`, byte for byte.

    A name that would land outside that folder is left out (named in `problems`), never written."""
    base = bundle_dir / TRANSCRIPTS_DIR / agent_name
    base.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, data in sorted(files.items()):
        target = (base / rel).resolve()
        if not target.is_relative_to(base.resolve()) or target == base.resolve():
            if problems is None:
                raise EvidenceError(f"transcript path {rel!r} leaves {base}", "a transcript name must stay under home")
            problems.append(f"~/{rel}: the name leaves the transcripts folder; left out")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def read_raw(bundle_dir: Path, agent: AgentSpec) -> dict[str, bytes]:
    return read_tree(bundle_dir / TRANSCRIPTS_DIR / agent.name, agent.transcript_globs)


def parse_raw(bundle_dir: Path, agent: AgentSpec, problems: list[str] | None = None) -> list[Event]:
    """Normalized events from the raw transcripts in a bundle (re-runnable: `trial grade` needs no sandbox)."""
    return safe_parse(agent, read_raw(bundle_dir, agent), problems)


# What a parser may raise on input it was not written for; anything else is our bug and surfaces.
_PARSE_ERRORS = (RecursionError, ValueError, TypeError, KeyError, AttributeError, IndexError, UnicodeError)
PARSE_TIMEOUT_S = 300.0
"""One parse of an agent's transcripts may take this long (a regex fed a crafted line can take hours)."""
FILE_TIMEOUT_S = 60.0
ISOLATION_BUDGET_S = 600.0
"""When the whole parse failed: the time spent finding, file by file, what the parser cannot read."""
MAX_EVENTS = 100_000
"""Events kept from transcripts: far more than any session; past it the timeline stays readable."""


class _ParseFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def safe_parse(agent: AgentSpec, files: Mapping[str, bytes], problems: list[str] | None = None, *,
               timeout_s: float = PARSE_TIMEOUT_S, file_timeout_s: float = FILE_TIMEOUT_S) -> list[Event]:
    """The agent's events from its transcripts, whatever the candidate put in them, in bounded time.

    Lines that are not sane JSON records are skipped (and counted in `problems`). The parser
    runs in a child process under a timeout; if it fails or runs out of time, each file is
    tried alone, what the parser cannot read (or not in time) is left out and named, and the
    rest is parsed without it: no transcript can stop or stall a collect or a grade.
    """
    notes = problems if problems is not None else []
    for rel, data in sorted(files.items()):
        if rel.endswith(".jsonl"):
            skipped: list[str] = []
            jsonl_records(data, skipped)
            if skipped:
                shown = "; ".join(skipped[:3]) + (f"; … {len(skipped) - 3} more" if len(skipped) > 3 else "")
                notes.append(f"~/{rel}: {len(skipped)} line(s) skipped ({shown})")
    try:
        return _capped(_parse_bounded(agent, dict(files), timeout_s), notes)
    except _ParseFailed:
        pass
    usable = dict(files)
    budget_ends = time.monotonic() + ISOLATION_BUDGET_S
    for rel in sorted(files):
        if time.monotonic() > budget_ends:
            notes.append(f"~/{rel}: not parsed in time (the transcripts took over {ISOLATION_BUDGET_S:g}s); left out")
            usable.pop(rel)
            continue
        try:
            _parse_bounded(agent, {rel: files[rel]}, file_timeout_s)
        except _ParseFailed as exc:
            notes.append(f"~/{rel}: the {agent.name} parser {exc.reason}; left out")
            usable.pop(rel)
    try:
        return _capped(_parse_bounded(agent, usable, timeout_s), notes)
    except _ParseFailed as exc:
        notes.append(f"the {agent.name} transcripts could not be read together (the parser {exc.reason}); "
                     "all left out of the timeline (the raw files are in the bundle)")
        return []


def _capped(events: list[Event], notes: list[str]) -> list[Event]:
    if len(events) <= MAX_EVENTS:
        return events
    notes.append(f"{len(events) - MAX_EVENTS} of {len(events)} transcript events left out of the timeline "
                 f"(at most {MAX_EVENTS:,} are kept, the earliest)")
    return events[:MAX_EVENTS]


def _parse_bounded(agent: AgentSpec, files: dict[str, bytes], timeout_s: float) -> list[Event]:
    """`agent.parse(files)` in a forked child, killed after `timeout_s`."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_parse_child, args=(agent, files, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            raise _ParseFailed(f"did not finish within {timeout_s:g}s")
        try:
            outcome = receive.recv()
        except EOFError as exc:
            raise _ParseFailed("crashed") from exc
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if isinstance(outcome, str):
        raise _ParseFailed(f"could not read it ({outcome})")
    events: list[Event] = outcome
    return events


def _parse_child(agent: AgentSpec, files: dict[str, bytes], send: Connection) -> None:
    try:
        result: list[Event] | str = agent.parse(files)
    except _PARSE_ERRORS as exc:
        result = type(exc).__name__
    except Exception as exc:  # the parent reports it; a child must not die silently
        result = f"{type(exc).__name__}: {exc}"[:200]
    send.send(result)
    send.close()


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        return f"a link to {member.linkname!r}"
    if member.isfifo():
        return "a fifo"
    if member.ischr() or member.isblk():
        return "a device"
    return "a name outside home" if member.isfile() else "not a regular file"
