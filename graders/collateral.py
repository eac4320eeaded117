"""Collateral damage: what the candidate changed besides the work, that a passing test run would hide.

Compared with the starter (the default branch's first commit): starter tests deleted or
weakened (fewer tests or assertions, new skip/xfail markers), the test harness changed
(conftest.py, pytest/tox config, sitecustomize, .pth files: code that can rewrite test
outcomes), files planted where the hidden tests will be copied, CI or git metadata
tampered with, and files outside the brief's scope.

`harness_restores` lists what the verifier must put back to the starter's version (or
remove) before the hidden tests run, so a changed harness cannot fake a pass.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from graders.commits import TEST_PATH
from graders.pull_request import in_scope
from graders.repo import Repo, Revision

# Files that change how every test run behaves: root-level test configuration, and what
# Python itself loads at start-up wherever it lies.
# A pytest.ini or tox.ini in a folder of tests wins pytest's search for its configuration when
# the run names that folder (`pytest tests`), so they count wherever they lie.
HARNESS = re.compile(r"^(conftest\.py|pytest\.ini|tox\.ini|setup\.cfg|noxfile\.py|\.coveragerc)$|"
                     r"(^|/)(site|user)customize\.py$|\.pth$|(^|/)(pytest|tox)\.ini$")
CONFTEST = re.compile(r"(^|/)conftest\.py$")
CI_OR_GIT = re.compile(r"(^|/)\.git(/|$)|^\.github/|^\.gitlab-ci\.yml$|^\.circleci/|^Jenkinsfile$|^\.gitattributes$|"
                       r"^\.gitmodules$|^\.githooks/|^\.husky/|^\.pre-commit-config\.yaml$|^azure-pipelines\.yml$")
_TEST_DEF = re.compile(r"^\s*(async\s+)?def test_|^\s*(it|test)\(|^\s*func Test|^\s*#\[test\]", re.M)
_ASSERTION = re.compile(r"\bassert\w*\b|\bexpect\(|pytest\.raises|\.should\b|\bt\.(Error|Fatal)", re.M)
_SKIP = re.compile(r"pytest\.mark\.(skip|xfail)|@unittest\.skip|pytest\.skip\(|\.skip\(|t\.Skip\(|@Disabled|xit\(")


@dataclass
class Collateral:
    deleted_tests: list[str] = field(default_factory=list)
    weakened_tests: list[dict[str, Any]] = field(default_factory=list)
    harness_changed: list[str] = field(default_factory=list)
    planted_hidden: list[str] = field(default_factory=list)
    ci_or_git: list[str] = field(default_factory=list)
    outside_scope: list[str] = field(default_factory=list)
    harness_restores: dict[str, str | None] = field(default_factory=dict)
    """Path → starter content to put back, or None to remove, before the hidden tests run."""
    support_restored: list[str] = field(default_factory=list)
    """conftest.py files beside the starter's tests, put back for the pass-to-pass run only: a
    candidate may change them for their own tests, so this is no finding."""

    @property
    def findings(self) -> dict[str, list[Any]]:
        return {key: value for key, value in asdict(self).items()
                if value and key not in ("harness_restores", "support_restored")}

    @property
    def suspicious(self) -> bool:
        """Changes that can fake a test result, rather than merely damage the codebase."""
        return bool(self.harness_changed or self.planted_hidden)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["harness_restores"] = sorted(self.harness_restores)
        data["suspicious"] = self.suspicious
        return data


def _counts(text: str) -> tuple[int, int, int]:
    return len(_TEST_DEF.findall(text)), len(_ASSERTION.findall(text)), len(_SKIP.findall(text))


def _pytest_section(text: str) -> str:
    match = re.search(r"^\[tool\.pytest[^\]]*\](.*?)(?=^\[|\Z)", text, re.M | re.S)
    return match.group(0) if match else ""


def _governs(conftest: str, paths: tuple[str, ...]) -> bool:
    """A conftest.py applies to tests in its folder and below."""
    folder = conftest.rsplit("/", 1)[0] + "/" if "/" in conftest else ""
    return any(path.startswith(folder) for path in paths)


def find_collateral(repo: Repo, revision: Revision, scope: tuple[str, ...], hidden_dir: str,
                    starter_tests: tuple[str, ...] = ()) -> Collateral:
    """Compare the graded tree with the starter; `starter_tests` are the files the pass-to-pass run uses."""
    found = Collateral()
    starter, head = revision.starter_sha, revision.sha
    hidden_prefix = hidden_dir.strip("/") + "/"
    for status, path in repo.changes(starter, head):
        old = repo.show(starter, path) if status != "A" else None
        new = repo.show(head, path) if status != "D" else None
        if path.startswith(hidden_prefix):
            found.planted_hidden.append(path)
            continue
        if TEST_PATH.search(path) and old is not None:
            if new is None:
                found.deleted_tests.append(path)
            else:
                (old_tests, old_asserts, old_skips), (new_tests, new_asserts, new_skips) = _counts(old), _counts(new)
                if old_tests and (new_tests < old_tests or new_asserts < old_asserts or new_skips > old_skips):
                    found.weakened_tests.append({"path": path, "tests": [old_tests, new_tests],
                                                 "assertions": [old_asserts, new_asserts],
                                                 "skips": [old_skips, new_skips]})
        if HARNESS.search(path) or ((path == "pyproject.toml" or path.endswith("/pyproject.toml"))
                                    and _pytest_section(old or "") != _pytest_section(new or "")):
            found.harness_changed.append(path)
            found.harness_restores[path] = old
        elif CONFTEST.search(path) and _governs(path, starter_tests):
            found.support_restored.append(path)
            found.harness_restores[path] = old
        if CI_OR_GIT.search(path):
            found.ci_or_git.append(path)
        elif new is not None and not in_scope(path, scope) and not HARNESS.search(path) \
                and not CONFTEST.search(path):
            found.outside_scope.append(path)
    return found


def kept_share(collateral: Collateral, maximum: float) -> float:
    """The share of collateral credit a submission keeps before scaling by progress.

    A tampered harness voids it (an attempt on the result itself), and so do starter tests
    deleted or weakened (skip markers, fewer tests or assertions): a passing run over
    weakened tests proves nothing, and silencing them is the damage this criterion is for.
    Other findings cost half a point each."""
    if collateral.suspicious or collateral.weakened_tests or collateral.deleted_tests:
        return 0.0
    return max(0.0, maximum - 0.5 * len(collateral.findings)) / maximum


def progress_credit(maximum: float, kept: float, progress: float) -> float:
    """Credit for keeping things intact, in proportion to the real work done.

    `kept` is the share of what was to be kept that was kept (starter tests still passing, or
    1 minus the collateral penalties); `progress` the share of the hidden FAIL_TO_PASS tests
    that now pass. Keeping the starter intact is no achievement on its own: a submission that
    changes nothing real keeps everything and would otherwise earn this credit for free.
    """
    return round(maximum * max(0.0, min(1.0, kept)) * max(0.0, min(1.0, progress)), 2)
