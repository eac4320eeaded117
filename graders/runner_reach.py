"""Code in a submission that reaches for the test runner: shown to reviewers, never scored.

Library templates run the hidden tests in the same process as the candidate's code, and code
there can forge that process's results, selectively for tests it knows by name, which per-run
canaries do not catch. Honest code rarely needs pytest's internals, `atexit`, `os._exit`,
`sys.modules`, frame inspection, or files that shadow the runner, so each such line added by
the submission is listed for a reviewer to read. A hit is a question, not a verdict.
"""

from __future__ import annotations

import re
from typing import Any

from graders.commits import TEST_PATH
from graders.repo import Repo, Revision

_LIMIT = 40
_TEXT = 160

# (label, pattern): what a line added outside the hidden tests' folder may not quietly do.
_LINE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pytest internals", re.compile(r"\b_pytest\b|\bTestReport\b|\bCollectReport\b|\bjunitxml\b|\bLogXML\b")),
    ("pytest hook", re.compile(r"\bpytest_(runtest|collection|collect|sessionfinish|sessionstart|configure|"
                               r"unconfigure|report|terminal|make|load_initial|plugin|addoption|cmdline)\w*")),
    ("atexit", re.compile(r"\batexit\b")),
    ("os._exit", re.compile(r"\bos\._exit\b|\b_exit\s*\(")),
    ("sys.modules", re.compile(r"\bsys\.modules\b")),
    ("frame tricks", re.compile(r"\bsys\._getframe\b|\binspect\.(stack|currentframe|getouterframes|trace)\b|"
                                r"\bf_back\b|\bf_globals\b|\bf_locals\b|\bsys\.settrace\b|\bsys\.setprofile\b")),
)
_PYTEST_IMPORT = re.compile(r"^\s*(import pytest\b|from pytest\b)")
# Files that shadow the runner or change how it starts, wherever they lie.
_RUNNER_FILES = re.compile(r"(^|/)(conftest\.py|pytest\.ini|pytest\.py|_pytest\.py|sitecustomize\.py|"
                           r"usercustomize\.py)$|(^|/)_?pytest/|\.pth$")


def find_reaches(repo: Repo, revision: Revision, hidden_dir: str) -> list[dict[str, Any]]:
    """Lines and files the submission added that reach for the test runner, in path order."""
    flags: list[dict[str, Any]] = []
    hidden = hidden_dir.strip("/")
    hidden_pattern = re.compile(rf"\b{re.escape(hidden)}\b") if hidden else None
    for status, path in sorted(repo.changes(revision.starter_sha, revision.sha), key=lambda change: change[1]):
        if status == "D":
            continue
        if _RUNNER_FILES.search(path):
            flags.append({"path": path, "line": 0, "pattern": "runner file", "text": f"adds or changes {path}"})
        new = repo.show(revision.sha, path)
        if new is None or "\0" in new[:4096]:
            continue
        old = set((repo.show(revision.starter_sha, path) or "").splitlines()) if status != "A" else set()
        is_test = bool(TEST_PATH.search(path))
        for number, line in enumerate(new.splitlines(), 1):
            if line in old:
                continue
            hits = [label for label, pattern in _LINE_PATTERNS if pattern.search(line)]
            if not is_test and _PYTEST_IMPORT.search(line):
                hits.append("pytest imported by non-test code")
            if not is_test and hidden_pattern is not None and hidden_pattern.search(line):
                hits.append("names the hidden tests' folder")
            flags += [{"path": path, "line": number, "pattern": label, "text": line.strip()[:_TEXT]} for label in hits]
        if len(flags) >= _LIMIT:
            break
    return flags[:_LIMIT]
