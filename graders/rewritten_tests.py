"""Tests rewritten by hand after the agent wrote them: proven by running both versions on the shipped code.

The attack: the agent's tests fail on its change; the candidate declines the fix and, in their
own terminal (no agent turn, no witnessed test run), rewrites the tests' expected values to
what the code returns, or takes failing cases out, then claims the behaviour is tested. The
weakening signals in graders.outcomes need a witnessed run before and after, so none fires.

What the host and gateway did witness: the agent's tool calls that wrote each test file (the
gateway log: Write, Edit, MultiEdit, apply_patch, a shell heredoc) and the shipped tree. For
each test file whose last agent-written content can be rebuilt whole from those calls (on the
starter's version, which the host holds) and differs from the shipped file (or is gone from it,
or runs under configuration changed since: a conftest, a pytest.ini), both versions run on the
shipped code in verifier containers (graders.verifier: fresh, no network, root-owned workspace,
canaries), the agent's with the configuration the agent left. Tests that fail (an assertion,
not a collection or set-up error) in the agent's version and pass, are skipped, or are gone in
the shipped version, on the same code, were changed to pass: a critical alert cites the agent's
write (event), the shipped commit and both runs' per-test results. A file that cannot be rebuilt
(an edit whose base is unknown, a shell command that names it) is listed with the reason, never
guessed at.

Whether the change hid a defect or corrected a wrong test is settled by the template's reference
solution: the agent's version runs on it too. Tests that pass there expected what the brief
specifies; those are `weakened`, the rewritten route of the integrity cap (graders.integrity,
docs/threat-model.md), which also needs a false success claim. The rest only inform reviewers.
Honest changes do not alert: a test corrected together with the code (the agent's version then
passes on the shipped code), tests added, tests renamed or moved with their content kept (their
outcome moves with them), a test removed with the feature it tested (it no longer imports).
"""

from __future__ import annotations

import posixpath
import re
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graders.junit import TestCase
from graders.outcomes import TEST_PATH
from graders.repo import Repo
from graders.timeline import (
    _HEREDOC,
    _REDIRECT_TARGET,
    Event,
    command_of,
    is_revert_command,
    parse_patch,
    results_by_tool_use,
    shell_writes_files,
    tool_input,
    tool_name,
    tool_use_id,
    witnessed_view,
)
from graders.verifier import Job, VerifierFailure, make_canaries, run_library, workspace_tar
from orchestrator.logging import get_logger
from orchestrator.sandbox.base import SandboxBackend

log = get_logger(component="graders.rewritten_tests")
KIND = "tests_changed_to_pass"
_WHOLE = {"write", "write_file", "create"}
_EDITORS = {"write", "edit", "multiedit", "create", "str_replace_based_edit_tool", "str_replace_editor",
            "write_file", "edit_file", "replace"}
_SHELL = {"bash", "shell", "exec_command", "run_terminal_cmd", "local_shell", "container.exec"}
_FAILING = ("failed",)
"""An assertion that failed. Collection and set-up errors are left out: the agent's tests then do
not run against the shipped code at all (an API the candidate changed), which proves nothing."""
_HIDDEN_BY = ("passed", "skipped")
_API_MISMATCH = re.compile(r"^(E\s+)?(AttributeError|ImportError|ModuleNotFoundError|NameError|TypeError)\b")
"""How a test fails when the code it calls has another shape (the message JUnit carries)."""
_VALUED = {"-p", "-k", "-m", "-c", "-o", "-W", "--rootdir", "--confcutdir", "--tb", "--ignore", "--deselect"}


@dataclass
class AgentVersion:
    """The last witnessed content of one test file: as the agent wrote it through witnessed tool
    calls, or (`starter`) as the starter had it, for a test module the agent never wrote."""

    path: str
    text: str | None
    """None: not rebuildable from the log (`gap` says why)."""
    event: int
    """Index of the agent's last write of the file (the real timeline's); -1 for the starter's."""
    writes: list[int] = field(default_factory=list)
    gap: str = ""
    starter: str = ""
    """The starter commit, when this is the starter's version (the host pushed it at launch)."""

    @property
    def source(self) -> str:
        return (f"as the starter had it (commit {self.starter[:10]})" if self.starter
                else f"as the agent last wrote it (event {self.event})")

    @property
    def ref(self) -> str:
        return f"commit:{self.starter}" if self.starter else f"event:{self.event}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "event": self.event, "writes": self.writes[-10:]}
        if self.starter:
            data["starter"] = self.starter
        if self.gap:
            data["not_reconstructed"] = self.gap
        return data


def _rel(path: Any) -> str:
    text = str(path or "").strip().strip("'\"")
    for prefix in ("/workspace/", "./"):
        text = text.removeprefix(prefix)
    return text


def _apply_hunks(base: str, hunks: tuple[tuple[str, ...], ...]) -> str | None:
    """An apply_patch update's hunks (" ", "-", "+" lines, graders.timeline.parse_patch) on `base`; None if one
    does not fit."""
    lines = base.split("\n")
    start = 0
    for hunk in hunks:
        old = [line[1:] for line in hunk if line[:1] in (" ", "-") or line == ""]
        new = [line[1:] for line in hunk if line[:1] in (" ", "+") or line == ""]
        at = next((i for i in range(start, len(lines) - len(old) + 1) if lines[i:i + len(old)] == old), None)
        if at is None:
            return None
        lines[at:at + len(old)] = new
        start = at + len(new)
    return "\n".join(lines)


class _State:
    def __init__(self, starter: dict[str, str | None]) -> None:
        self.starter = starter
        self.files: dict[str, AgentVersion] = {}

    def base(self, path: str) -> tuple[str | None, str]:
        if path in self.files:
            version = self.files[path]
            return version.text, version.gap
        if path in self.starter and self.starter[path] is not None:
            return self.starter[path], ""
        return None, "edited before any witnessed whole write, and not in the starter"

    def set(self, path: str, index: int, text: str | None, gap: str = "") -> None:
        version = self.files.setdefault(path, AgentVersion(path, None, index))
        version.text, version.event, version.gap = text, index, gap if text is None else ""
        version.writes.append(index)

    def edit(self, path: str, index: int, pairs: list[tuple[str, str, bool]]) -> None:
        text, gap = self.base(path)
        for old, new, every in pairs:
            if text is None:
                break
            if not old or old not in text:
                text, gap = None, f"the edit at event {index} does not fit the rebuilt file (its old text is not there)"
                break
            text = text.replace(old, new) if every else text.replace(old, new, 1)
        self.set(path, index, text, gap or f"the edit at event {index} has no known base")

    def lose(self, path: str, index: int, why: str) -> None:
        self.set(path, index, None, why)


_CONFIG = {"conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini"}
"""Files that choose which tests run and how (pytest reads them wherever the run starts)."""


def _tracked(path: str) -> bool:
    return bool(path) and ((bool(TEST_PATH.search(path)) and path.endswith(".py"))
                           or posixpath.basename(path) in _CONFIG)


def _shell(state: _State, index: int, command: str, starter: dict[str, str | None]) -> None:
    heredoc_targets: list[str] = []
    for match in _HEREDOC.finditer(command):
        redirect = match.group("head") + " " + match.group("rest")
        target = _REDIRECT_TARGET.search(redirect)
        path = _rel(target.group(1)) if target else ""
        if not _tracked(path):
            continue
        heredoc_targets.append(path)
        body = match.group("body")
        if not match.group("q") and re.search(r"[$`\\]", body):
            state.lose(path, index, f"the heredoc at event {index} is unquoted: the shell expanded its text")
        elif re.search(r">>\s*['\"]?" + re.escape(target.group(1) if target else path), redirect):
            base, gap = state.base(path)
            if base is None:
                state.lose(path, index, gap or f"appended to at event {index} with no known base")
            else:
                state.set(path, index, base + body)
        else:
            state.set(path, index, body)
    # What remains of the command once the heredocs are taken out: any other mention of a test file
    # (sed -i, python -c, cp, git checkout -- f, rm) leaves its content unknown from here on.
    rest = _HEREDOC.sub(lambda m: m.group("head") + m.group("rest"), command)
    if is_revert_command({"kind": "tool_call", "data": {"input": {"command": rest}}}) and not re.search(
            r"--\s+\S", rest):
        for path in list(state.files):
            state.lose(path, index, f"the shell command at event {index} may have reverted it ({rest[:80]!r})")
        return
    if not shell_writes_files(rest):
        return
    for path in sorted(set(state.files) | set(starter)):
        mentions = len(re.findall(r"(?<![\w.-])" + re.escape(posixpath.basename(path)) + r"(?![\w.-])", rest))
        if mentions > heredoc_targets.count(path):
            state.lose(path, index, f"the shell command at event {index} names it and may have changed it "
                                    "in a way the log does not spell out")


def _patch(state: _State, index: int, patch: str) -> None:
    for change in parse_patch(patch):
        path, target = change.path, change.move_to or change.path
        if not (_tracked(path) or _tracked(target)):
            continue
        if change.action == "Add":
            state.set(path, index, "\n".join(change.added) + "\n")
        elif change.action == "Delete":
            state.lose(path, index, f"deleted by the patch at event {index}")
        else:
            base, gap = state.base(path)
            text = _apply_hunks(base, change.hunks) if base is not None else None
            if target != path and _tracked(path):
                state.lose(path, index, f"moved to {target} by the patch at event {index}")
            if _tracked(target):
                state.set(target, index, text, gap or f"the patch at event {index} does not fit the rebuilt file")


def _editor(state: _State, index: int, name: str, arguments: dict[str, Any]) -> None:
    """Write, Edit, MultiEdit and the text-editor tool's create / str_replace / insert."""
    path = _rel(arguments.get("file_path") or arguments.get("path") or arguments.get("filename"))
    if not _tracked(path):
        return
    sub = arguments.get("command")
    if name.lower() in _WHOLE or sub == "create":
        content = arguments.get("content", arguments.get("file_text"))
        if isinstance(content, str):
            state.set(path, index, content)
        else:
            state.lose(path, index, f"the write at event {index} carries no text")
    elif name.lower() == "multiedit":
        edits = [e for e in arguments.get("edits") or [] if isinstance(e, dict)]
        state.edit(path, index, [(str(e.get("old_string") or ""), str(e.get("new_string") or ""),
                                  bool(e.get("replace_all"))) for e in edits])
    elif "old_string" in arguments or "old_str" in arguments:
        state.edit(path, index, [(str(arguments.get("old_string", arguments.get("old_str")) or ""),
                                  str(arguments.get("new_string", arguments.get("new_str")) or ""),
                                  bool(arguments.get("replace_all")))])
    elif sub == "insert":
        base, gap = state.base(path)
        line = arguments.get("insert_line")
        if base is None or not isinstance(line, int):
            state.lose(path, index, gap or f"the insert at event {index} has no line")
        else:
            lines = base.split("\n")
            lines[line:line] = str(arguments.get("new_str") or "").split("\n")
            state.set(path, index, "\n".join(lines))
    else:
        state.lose(path, index, f"the {name} call at event {index} is of a shape not rebuilt here")


def agent_versions(events: list[Event], starter: dict[str, str | None]) -> dict[str, AgentVersion]:
    """Each test file the agent wrote through witnessed tool calls → its last content, rebuilt whole.

    `starter`: path → the starter's content (None: not in the starter), the base an edit of a file
    the agent never wrote whole applies to. Transcript-only events are ignored (witnessed_view)."""
    view = witnessed_view(events)
    results = results_by_tool_use(view)
    state = _State(starter)
    for index, event in enumerate(view):
        if event["kind"] != "tool_call":
            continue
        outcome = results.get(tool_use_id(event))
        if outcome is not None and (view[outcome]["kind"] == "tool_rejected"
                                    or (view[outcome].get("data") or {}).get("is_error")):
            continue  # refused or failed: nothing was written
        name = tool_name(event)
        arguments = tool_input(event)
        command = command_of(event)
        patch = command if "*** Begin Patch" in command else str(arguments.get("patch") or arguments.get("input")
                                                                 or "")
        if "*** Begin Patch" in patch:
            _patch(state, index, patch)
        elif name.lower() in _SHELL:
            if command and (shell_writes_files(command) or _HEREDOC.search(command)):
                _shell(state, index, command, state.starter)
        elif name.lower() in _EDITORS or "file_path" in arguments:
            _editor(state, index, name, arguments)
    return state.files


# ----- the decision ---------------------------------------------------------------------------------

def changed_to_pass(shipped: dict[str, TestCase], agents: dict[str, TestCase]) -> dict[str, Any]:
    """Per-test comparison of the two runs on the same shipped code.

    `flipped`: failing in the agent's version, passing or skipped in the shipped one; `dropped`:
    failing in the agent's version and gone from the shipped one, beyond what tests only the
    shipped version has, and that fail too, account for (a renamed test keeps its outcome)."""
    flipped = sorted(k for k, c in agents.items() if c.outcome in _FAILING and k in shipped
                     and shipped[k].outcome in _HIDDEN_BY)
    gone = sorted(k for k, c in agents.items() if c.outcome in _FAILING and k not in shipped)
    renamed_failing = [k for k, c in shipped.items() if k not in agents and c.outcome in _FAILING]
    dropped = gone if len(gone) > len(renamed_failing) else []
    return {"flipped": flipped, "dropped": dropped, "proven": bool(flipped or dropped)}


# ----- the runs ---------------------------------------------------------------------------------------

def _command(starter: str, files: list[str]) -> str | None:
    """The template's own pytest (its interpreter and flags) on the given files, writing JUnit XML."""
    words = starter.split()
    if "pytest" not in words:
        return None
    head = words[:words.index("pytest") + 1]
    flags: list[str] = []
    for word in words[len(head):]:
        # Options and their values stay; the paths the starter runs give way to the files compared.
        if (word.startswith("-") or (flags and flags[-1] in _VALUED)) and "junit" not in word:
            flags.append(word)
    if "no:cacheprovider" not in words:
        flags += ["-p", "no:cacheprovider"]  # the workspace is read-only to the tests' uid
    return " ".join([*head, *flags, "--junitxml={junit}", *(shlex.quote(f) for f in files)])


def _job(tree: bytes, hidden_dir: str, files: dict[str, str], starter_command: str, timeout_s: int,
         support: dict[str, str | None] | None = None) -> Job:
    """One run of `files` (path → content) on `tree`, under canaries run beside them; `support`
    (conftest, helpers, configuration) put in place, or taken out where None, but not run."""
    canaries = make_canaries(posixpath.dirname(sorted(files)[0]))
    command = _command(starter_command, [*sorted(files), *sorted(canaries.files)])
    if command is None:
        raise ValueError(f"not a pytest command: {starter_command!r}")
    replace: dict[str, str | None] = {**(support or {}), **files}
    protected = {path: text.encode() for path, text in files.items()}
    protected.update(canaries.files)
    return Job("rewritten_tests", command, timeout_s, workspace_tar(tree, replace, {}, hidden_dir,
                                                                    extra=canaries.files),
               protected, canaries=canaries)


def _module_cases(cases: dict[str, TestCase] | None, path: str) -> dict[str, TestCase]:
    # The module's own key too: a collection error is reported under it (shown, never proof).
    module = path[:-3].replace("/", ".")
    return {k: c for k, c in (cases or {}).items() if k == module or k.startswith(module + ".")}


def _is_module(path: str) -> bool:
    name = posixpath.basename(path)
    return name.startswith("test_") or name.endswith("_test.py")


def _defined(name: str, texts: list[str]) -> bool:
    """Whether a test function of this name (parameters stripped) is defined in any of the texts."""
    bare = name.rsplit(".", 1)[-1].split("[", 1)[0]
    return any(re.search(r"^\s*(async\s+)?def\s+" + re.escape(bare) + r"\s*\(", text, re.M) for text in texts)


@dataclass
class Compared:
    """What `prepare` read from the repository: the agent's versions and the shipped files."""

    sha: str
    versions: dict[str, AgentVersion]
    shipped: dict[str, str | None]
    support: dict[str, str] = field(default_factory=dict)
    """Every other test-tree file at the graded commit (conftest, helpers, other test modules): the
    reference run puts them in place so the agent's tests find what they import."""
    setting: dict[str, str | None] = field(default_factory=dict)
    """What the agent's tests ran with: each configuration and helper file (conftest, pytest.ini,
    pyproject.toml, setup.cfg, tox.ini, helpers beside the tests) as the agent last wrote it, else as
    the starter had it, else None (the candidate added it). A file the agent wrote that cannot be
    rebuilt stays as shipped (unknown, never guessed)."""


def prepare(events: list[Event], repo: Repo, starter_sha: str, sha: str) -> Compared:
    """The agent's last version of each test file it wrote, and that file at the graded commit."""
    starter = {path: repo.show(starter_sha, path) for path in repo.files(starter_sha) if _tracked(path)}
    versions = agent_versions(events, starter)
    shipped_files = [path for path in repo.files(sha) if _tracked(path)]
    # The starter's own test modules the agent never wrote: their witnessed version is the starter's.
    for path, text in starter.items():
        if path not in versions and text is not None and _is_module(path) and path.endswith(".py"):
            versions[path] = AgentVersion(path, text, -1, starter=starter_sha)
    support = {path: text for path in shipped_files if path not in versions
               for text in [repo.show(sha, path)] if text is not None}
    return Compared(sha, versions, {path: repo.show(sha, path) for path in versions}, support,
                    setting(versions, starter, shipped_files))


def setting(versions: dict[str, AgentVersion], starter: dict[str, str | None],
            shipped_files: list[str]) -> dict[str, str | None]:
    """Compared.setting: the configuration and helpers the agent's version of the tests runs with.

    The candidate owns the shipped configuration: a conftest that skips tests by name, a pytest.ini
    that deselects them, would otherwise hide the agent's failing tests from both runs alike."""
    found: dict[str, str | None] = {}
    for path in sorted(set(starter) | set(shipped_files) | set(versions)):
        if _is_module(path) and posixpath.basename(path) not in _CONFIG:
            continue  # test modules are what is compared, not what they run with
        version = versions.get(path)
        if version is not None:
            if version.text is not None:
                found[path] = version.text
        else:
            found[path] = starter.get(path)
    return found


Reference = Callable[[], "bytes | None"]
"""The template's reference solution as a tree tar (None: the template has none)."""


def reference_tree(template: Any) -> bytes | None:
    """The starter with the template's reference/solution.patch applied, as a tar (the tree
    `trial templates check` proves every hidden test passes on)."""
    if not template.reference_patch.is_file():
        return None
    # orchestrator.template_check imports the graders: imported here, when they are loaded.
    from orchestrator.template_check import reference_tree as build
    from orchestrator.template_check import tree_tar

    with tempfile.TemporaryDirectory(prefix="trial-reference-") as scratch:
        return tree_tar(build(template, Path(scratch)))


def _differing(versions: dict[str, AgentVersion], shipped: dict[str, str | None], details: dict[str, Any], *,
               every_module: bool = False) -> dict[str, AgentVersion]:
    """The rebuilt versions to compare: changed since the agent's last write, or a test module the agent
    wrote that the shipped tree lacks (`every_module`: each one it wrote); the others are listed in
    `details` as they are."""
    differing: dict[str, AgentVersion] = {}
    for path, version in sorted(versions.items()):
        if version.text is None:
            details["not_reconstructed"].append(version.to_json())
        elif every_module and _is_module(path) and path.endswith(".py"):
            differing[path] = version
        elif shipped.get(path) == version.text:
            details["files"].append({**version.to_json(), "shipped": "as the agent wrote it"})
        elif not path.endswith(".py"):
            continue  # configuration: what the agent's tests run with (Compared.setting), not a test file
        elif shipped.get(path) is None and not _is_module(path):
            details["files"].append({**version.to_json(), "shipped": "absent"})
        else:
            differing[path] = version
    return differing


def check(compared: Compared, tree: bytes, *, sandbox: SandboxBackend, image: str, trial_id: str,
          starter_command: str, hidden_dir: str, timeout_s: int, reference: Reference | None = None) -> dict[str, Any]:
    """details["rewritten_tests"] for the hidden-tests grader: what was compared, and the alerts if proven.

    `weakened` lists the proven changes whose tests, as the agent wrote them, pass on the template's
    reference solution: the agent's expectation was the specified behaviour, the shipped code fails
    it, and the test was changed so it no longer says so (graders.integrity reads it).
    Raises graders.verifier.VerifierFailure on infrastructure."""
    sha, versions, shipped = compared.sha, compared.versions, compared.shipped
    details: dict[str, Any] = {"commit": sha, "files": [], "not_reconstructed": [], "alerts": [], "weakened": []}
    # Configuration that is not what the agent's tests ran with (a conftest added by hand, a pytest.ini
    # that deselects): every test module the agent wrote is compared, however it was shipped.
    reconfigured = sorted(p for p, text in compared.setting.items()
                          if text != (shipped.get(p) if p in versions else compared.support.get(p)))
    differing = _differing(versions, shipped, details, every_module=bool(reconfigured))
    if reconfigured and differing:
        details["configuration_changed"] = reconfigured
    if not differing:
        return details
    if _command(starter_command, []) is None:
        details["not_run"] = f"the template's test command is not pytest ({starter_command!r}): not compared"
        return details
    present = {p: str(shipped[p]) for p in differing if shipped.get(p) is not None}
    shipped_run = run_library(sandbox, image, trial_id, _job(tree, hidden_dir, present, starter_command, timeout_s)
                              ) if present else None
    agent_run = run_library(sandbox, image, trial_id, _job(
        tree, hidden_dir, {p: str(v.text) for p, v in differing.items()}, starter_command, timeout_s,
        compared.setting))
    tampered = (shipped_run.tampering if shipped_run else []) + agent_run.tampering
    shipped_texts = [text for path, text in [*compared.support.items(), *present.items()] if text]
    proven: dict[str, dict[str, Any]] = {}
    for path, version in differing.items():
        mine = _module_cases(shipped_run.cases if shipped_run else {}, path)
        theirs = _module_cases(agent_run.cases, path)
        verdict: dict[str, Any] = changed_to_pass(mine, theirs) if not tampered else {"proven": False}
        if verdict["proven"] and path not in present:
            # The file is gone: a test still defined elsewhere in the shipped tests was moved, not dropped.
            verdict["dropped"] = [t for t in verdict["dropped"] if not _defined(t, shipped_texts)]
            verdict["proven"] = bool(verdict["flipped"] or verdict["dropped"])
        who = "the starter had it" if version.starter else "the agent wrote it"
        how = ("deleted" if path not in present else f"as {who}, configuration changed"
               if present[path] == version.text else "changed after the agent's last write" if not version.starter
               else "changed since the starter")
        # A test that fails on the shipped code because the API it calls is not there (renamed, changed
        # signature) proves no behaviour is missing: shown, never the cap's evidence.
        verdict["api_mismatch"] = sorted(t for t in [*verdict.get("flipped", []), *verdict.get("dropped", [])]
                                         if _API_MISMATCH.match(theirs[t].message))
        entry = {**version.to_json(), "shipped": how,
                 **verdict, "shipped_run": {k: c.outcome for k, c in sorted(mine.items())},
                 "agent_run": {k: c.outcome for k, c in sorted(theirs.items())}}
        details["files"].append(entry)
        if verdict["proven"]:
            proven[path] = entry
    if proven and reference is not None:
        details["reference"] = _against_reference(proven, differing, compared, reference, sandbox=sandbox,
                                                  image=image, trial_id=trial_id, starter_command=starter_command,
                                                  hidden_dir=hidden_dir, timeout_s=timeout_s)
    for path, entry in proven.items():
        details["alerts"].append(_alert(path, differing[path], sha, entry))
        if entry.get("hides_defect"):
            details["weakened"].append({
                "path": path, "event": differing[path].event, "commit": sha, "tests": entry["hides_defect"],
                "shipped": entry["shipped"], "source": differing[path].source, "source_ref": differing[path].ref,
                "runs": {t: {"agent": entry["agent_run"].get(t), "shipped": entry["shipped_run"].get(t, "gone"),
                             "reference": entry["reference_run"].get(t)} for t in entry["hides_defect"][:10]}})
    if tampered:
        details["tampering"] = tampered
        details["alerts"].append({"kind": KIND, "severity": "critical", "evidence_refs": [f"commit:{sha}"],
                                  "evidence": tampered[:5],
                                  "message": "tests changed to pass: not compared, the runs of the agent's and the "
                                             "shipped versions of the tests were tampered with. " + " ".join(
                                                 str(t.get("message", "")) for t in tampered[:2])})
    details["runs"] = {"agent": agent_run.to_json(), **({"shipped": shipped_run.to_json()} if shipped_run else {})}
    return details


def _against_reference(proven: dict[str, dict[str, Any]], differing: dict[str, AgentVersion], compared: Compared,
                       reference: Reference, *, sandbox: SandboxBackend, image: str, trial_id: str,
                       starter_command: str, hidden_dir: str, timeout_s: int) -> dict[str, Any]:
    """The agent's version of each proven file on the reference solution: `hides_defect` on each entry
    lists its changed tests that pass there (the agent expected what the brief specifies)."""
    try:
        tree = reference()
    except Exception as exc:  # a template whose patch no longer applies: the proof stands, unbacked
        log.exception("rewritten_tests.reference_failed")
        return {"not_run": f"the reference solution could not be built: {type(exc).__name__}: {exc}"}
    if tree is None:
        return {"not_run": "the template has no reference solution"}
    # The agent's tests run with what they ran with on the shipped code (Compared.setting), its other test
    # files where it wrote them, the shipped ones where it did not: what they import is there, and nothing
    # the candidate changed after the agent replaces what the agent wrote.
    support: dict[str, str | None] = {**compared.support, **compared.setting}
    support.update({p: str(v.text) for p, v in compared.versions.items() if v.text is not None and p.endswith(".py")})
    files = {p: str(differing[p].text) for p in proven}
    try:
        run = run_library(sandbox, image, trial_id, _job(tree, hidden_dir, files, starter_command, timeout_s, support))
    except VerifierFailure as exc:
        return {"not_run": f"the reference run failed: {exc}"}
    for path, entry in proven.items():
        outcomes = {k: c.outcome for k, c in sorted(_module_cases(run.cases, path).items())}
        entry["reference_run"] = outcomes
        changed = [*entry["flipped"], *entry["dropped"]]
        entry["hides_defect"] = [] if run.tampering else [t for t in changed if outcomes.get(t) == "passed"
                                                          and t not in entry.get("api_mismatch", [])]
    return {"run": run.to_json(), **({"tampering": run.tampering} if run.tampering else {})}


def _alert(path: str, version: AgentVersion, sha: str, entry: dict[str, Any]) -> dict[str, Any]:
    shown = [*entry["flipped"], *entry["dropped"]]
    who = "the starter" if version.starter else "the agent"
    parts = []
    if entry["flipped"]:
        parts.append(f"{len(entry['flipped'])} test(s) that fail as {who} wrote them pass as shipped")
    if entry["dropped"]:
        parts.append(f"{len(entry['dropped'])} failing test(s) of {who}'s are gone from the shipped "
                     + ("file" if entry["shipped"] != "deleted" else "tree (the file was deleted)"))
    reference = ""
    if "hides_defect" in entry:
        backed = entry["hides_defect"]
        reference = (f" On the template's reference solution {len(backed)} of them pass as {who} wrote them "
                     f"({', '.join(backed[:3])}): {who} expected what the brief specifies, the shipped code "
                     "does not do it, and the test no longer says so." if backed else
                     f" On the template's reference solution they fail as {who} wrote them too: those "
                     "expectations were not the brief's, so the change may be a correction.")
    changed = ("The file was changed after launch" if version.starter
               else "The file was changed outside any agent turn")
    message = (f"tests changed to pass: {path} {version.source} fails on the shipped "
               f"code ({sha[:10]}), the shipped version passes: {'; '.join(parts)} ({', '.join(shown[:4])}). "
               f"{changed} and the shipped code still fails {who}'s version."
               + (reference or f" Read both: if {who}'s expectations were wrong, the hidden tests say so."))
    return {"kind": KIND, "severity": "critical", "message": message,
            "evidence_refs": [version.ref, f"commit:{sha}", *(f"test:{t}" for t in shown[:10])],
            "evidence": {"path": path, "agent_write": version.event, "starter": version.starter or None, "commit": sha,
                         "flipped": entry["flipped"], "dropped": entry["dropped"],
                         "hides_defect": entry.get("hides_defect"), "reference_run": entry.get("reference_run"),
                         "shipped_run": entry["shipped_run"], "agent_run": entry["agent_run"]}}
