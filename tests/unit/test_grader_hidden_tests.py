"""The hidden-tests grader's pure parts: JUnit parsing, what goes into the verifier, collateral damage.

The verifier run itself is in tests/integration/test_hidden_tests_grader.py (real Docker).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from graders.base import GradeContext
from graders.collateral import find_collateral
from graders.hidden_tests import HiddenTestsGrader, hidden_files, pass_to_pass_command, workspace_tar
from graders.junit import JUnitError, lookup, node_key, parse_junit
from graders.repo import choose_revision, open_repo
from orchestrator.catalog import load_template
from orchestrator.evidence.bundle import Bundle
from tests.fixtures.bundle_builder import MINI_TEMPLATE, SESSIONS, SPOOF_CONFTEST

pytestmark = pytest.mark.unit

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" failures="1" errors="1" skipped="1">
<testcase classname="hidden_tests.test_hidden" name="test_multiply" time="0.001"/>
<testcase classname="hidden_tests.test_hidden" name="test_divide">
<failure message="assert 3 == 3.5">x</failure></testcase>
<testcase classname="hidden_tests.test_hidden.TestGroup" name="test_case[1]"><error message="boom"/></testcase>
<testcase classname="hidden_tests.test_hidden" name="test_skip"><skipped message="later"/></testcase>
<system-out>hidden_tests/test_hidden.py::test_divide PASSED</system-out>
</testsuite></testsuites>"""


def test_junit_outcomes_come_from_the_xml_not_from_printed_text() -> None:
    cases = parse_junit(JUNIT)
    assert lookup(cases, "hidden_tests/test_hidden.py::test_multiply").outcome == "passed"  # type: ignore[union-attr]
    divide = lookup(cases, "hidden_tests/test_hidden.py::test_divide")
    assert divide is not None and divide.outcome == "failed" and divide.message == "assert 3 == 3.5"
    assert lookup(cases, "hidden_tests/test_hidden.py::TestGroup::test_case[1]").outcome == "error"  # type: ignore[union-attr]
    assert lookup(cases, "hidden_tests/test_hidden.py::test_skip").outcome == "skipped"  # type: ignore[union-attr]
    assert lookup(cases, "hidden_tests/test_hidden.py::test_missing") is None


def test_junit_ids_match_across_rootdirs_and_refuse_entities() -> None:
    assert node_key("a/b/test_x.py::Cls::test_y[p]") == "a.b.test_x.Cls.test_y[p]"
    cases = parse_junit('<testsuite><testcase classname="workspace.hidden_tests.test_x" name="test_y"/></testsuite>')
    assert lookup(cases, "hidden_tests/test_x.py::test_y") is not None
    with pytest.raises(JUnitError):
        parse_junit('<!DOCTYPE x [<!ENTITY a "b">]><testsuite/>')
    with pytest.raises(JUnitError):
        parse_junit("<html>not junit</html>")
    twice = parse_junit('<testsuite><testcase classname="m" name="t"/><testcase classname="m" name="t">'
                        '<failure/></testcase></testsuite>')
    assert twice["m.t"].outcome == "failed"  # a rerun that passed does not hide the failure


@pytest.fixture(scope="module")
def spoof(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return Bundle(SESSIONS["spoofing"](tmp_path_factory.mktemp("spoof")))


def test_collateral_damage_of_the_spoofing_session(spoof: Bundle) -> None:
    with open_repo(spoof) as repo:
        revision = choose_revision(spoof, repo)
        found = find_collateral(repo, revision, ("calc/**", "tests/**"), "hidden_tests")
    assert found.harness_changed == ["conftest.py"] and found.harness_restores == {"conftest.py": None}
    assert [w["path"] for w in found.weakened_tests] == ["tests/test_calc.py"]
    assert found.weakened_tests[0]["assertions"][1] < found.weakened_tests[0]["assertions"][0]
    assert sorted(found.ci_or_git) == [".github/pull_request_template.md", ".github/workflows/ci.yml"]
    assert found.suspicious and found.deleted_tests == []


def _members(payload: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        return {m.name: m for m in archive.getmembers()}


def test_the_verifier_gets_the_tree_without_the_tampered_harness_and_with_the_hidden_tests(spoof: Bundle) -> None:
    template = load_template(MINI_TEMPLATE)
    with open_repo(spoof) as repo:
        revision = choose_revision(spoof, repo)
        tree = repo.archive(revision.sha)
        starter_tests = repo.show(revision.starter_sha, "tests/test_calc.py")
    payload = workspace_tar(tree, {"conftest.py": None, "tests/test_calc.py": starter_tests},
                            hidden_files(template), "hidden_tests")
    members = _members(payload)
    assert "workspace/conftest.py" not in members
    assert "workspace/hidden_tests/test_hidden.py" in members and "workspace/calc/ops.py" in members
    # Root owns all of it: the uid that runs the tests can neither edit nor rename nor replace a file.
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert all(not m.mode & 0o022 for m in members.values())
    assert members["workspace"].isdir()
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        restored = archive.extractfile("workspace/tests/test_calc.py").read().decode()  # type: ignore[union-attr]
    assert restored == starter_tests and "pytest.raises(CalcError)" in restored


def test_files_planted_where_the_hidden_tests_go_are_dropped() -> None:
    tree = io.BytesIO()
    with tarfile.open(fileobj=tree, mode="w") as archive:
        for name, data in (("hidden_tests/test_hidden.py", b"def test_multiply(): pass\n"),
                           ("hidden_tests/conftest.py", b"x = 1\n"), ("calc/ops.py", b"ok\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    members = _members(workspace_tar(tree.getvalue(), {}, {"test_hidden.py": b"real\n"}, "hidden_tests"))
    assert "workspace/hidden_tests/conftest.py" not in members
    assert members["workspace/hidden_tests/test_hidden.py"].size == len(b"real\n")


def test_the_spoofing_conftest_really_fakes_a_pass_when_left_in_place(tmp_path: Path) -> None:
    """Why the harness is restored: the candidate's conftest turns every failure into a pass."""
    (tmp_path / "test_fail.py").write_text("def test_fails():\n    assert 1 == 2\n")
    (tmp_path / "conftest.py").write_text(SPOOF_CONFTEST)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    str(tmp_path)], cwd=tmp_path, capture_output=True, check=False, timeout=120)
    assert parse_junit(junit.read_text())["test_fail.test_fails"].outcome == "passed"


def test_pass_to_pass_command_is_derived_or_configured() -> None:
    template = load_template(MINI_TEMPLATE)
    assert pass_to_pass_command(template, {}) == ("python3 -m pytest -q -p no:cacheprovider tests "
                                                  "--junitxml={junit}")
    assert pass_to_pass_command(template, {"pass_to_pass_command": "make test JUNIT={junit}"}) == (
        "make test JUNIT={junit}")


def test_without_a_sandbox_or_template_hidden_tests_are_an_infrastructure_failure(spoof: Bundle) -> None:
    no_sandbox = HiddenTestsGrader().grade(spoof, {}, GradeContext(template=load_template(MINI_TEMPLATE)))
    no_template = HiddenTestsGrader().grade(spoof, {}, GradeContext())
    for result in (no_sandbox, no_template):
        assert result.status == "infra_error" and result.fraction is None and result.criteria == []
    assert "verifier container" in no_sandbox.summary and "template" in no_template.summary


def test_a_conftest_beside_the_candidates_tests_is_restored_for_the_starter_run_but_no_finding(
        tmp_path: Path) -> None:
    from tests.fixtures.bundle_builder import SessionBuilder

    s = SessionBuilder(tmp_path, trial_id="t-conftest")
    s.human_write("tests/conftest.py", "import pytest\n\n\n@pytest.fixture\ndef numbers():\n    return [1, 2]\n")
    s.human_write("calc/helpers/conftest.py", "x = 1\n")
    s.commit(5, "Add a numbers fixture for the new tests")
    bundle = Bundle(s.build())
    with open_repo(bundle) as repo:
        revision = choose_revision(bundle, repo)
        found = find_collateral(repo, revision, ("calc/**", "tests/**"), "hidden_tests", ("tests/test_calc.py",))
    assert found.findings == {} and not found.suspicious
    assert found.support_restored == ["tests/conftest.py"] and found.harness_restores == {"tests/conftest.py": None}


def test_dotfiles_keep_their_names_in_the_verifier() -> None:
    # `.conftest.py` must not become the harness file `conftest.py`, nor `.github/` become `github/`.
    tree = io.BytesIO()
    with tarfile.open(fileobj=tree, mode="w") as archive:
        for name in ("./.conftest.py", ".pytest.ini", ".github/workflows/ci.yml", "./calc/ops.py"):
            info = tarfile.TarInfo(name)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"ok\n"))
    members = _members(workspace_tar(tree.getvalue(), {}, {}, "hidden_tests"))
    files = sorted(name for name, info in members.items() if info.isfile())
    assert files == ["workspace/.conftest.py", "workspace/.github/workflows/ci.yml", "workspace/.pytest.ini",
                     "workspace/calc/ops.py"]


# ----- canaries and the tampering verdict --------------------------------------------------------

from graders.collateral import progress_credit  # noqa: E402
from graders.junit import TestCase  # noqa: E402
from graders.runner_reach import find_reaches  # noqa: E402
from graders.verifier import Canaries, judge_results, make_canaries, split_canaries  # noqa: E402


def test_canaries_are_fresh_unguessable_and_really_pass_and_fail(tmp_path: Path) -> None:
    first, second = make_canaries("hidden_tests"), make_canaries("hidden_tests")
    assert not set(first.files) & set(second.files) and not set(first.must_pass) & set(second.must_pass)
    assert all(path.startswith("hidden_tests/test_") for path in first.files)
    assert len(first.must_pass) == len(first.must_fail) == 2
    for path, source in first.files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(source)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    "hidden_tests"], cwd=tmp_path, capture_output=True, check=False, timeout=120)
    real, found = split_canaries(parse_junit(junit.read_text()), first)
    assert real == {}
    assert {found[t].outcome for t in first.must_pass} == {"passed"}  # type: ignore[union-attr]
    assert {found[t].outcome for t in first.must_fail} == {"failed"}  # type: ignore[union-attr]
    assert judge_results("hidden", real, found, first, ()) == []


CANARIES = Canaries({"hidden_tests/test_aa11.py": b"", "hidden_tests/test_bb22.py": b""},
                    ("hidden_tests/test_aa11.py::test_p1", "hidden_tests/test_bb22.py::test_p2"),
                    ("hidden_tests/test_aa11.py::test_f1", "hidden_tests/test_bb22.py::test_f2"))
REAL = ("hidden_tests/test_x.py::test_one", "hidden_tests/test_x.py::test_two")


def _cases(**outcomes: str) -> dict[str, TestCase]:
    keys = {"p1": "hidden_tests.test_aa11.test_p1", "p2": "hidden_tests.test_bb22.test_p2",
            "f1": "hidden_tests.test_aa11.test_f1", "f2": "hidden_tests.test_bb22.test_f2",
            "one": "hidden_tests.test_x.test_one", "two": "hidden_tests.test_x.test_two"}
    return {keys[name]: TestCase(keys[name], outcome, "collection failure" if outcome == "error" else "")  # type: ignore[arg-type]
            for name, outcome in outcomes.items()}


def _verdict(cases: dict[str, TestCase]) -> set[str]:
    real, found = split_canaries(cases, CANARIES)
    return {entry["kind"] for entry in judge_results("hidden", real, found, CANARIES, REAL)}


@pytest.mark.parametrize(("cases", "kinds"), [
    # An honest run, passing or failing: nothing.
    (_cases(p1="passed", p2="passed", f1="failed", f2="failed", one="passed", two="failed"), set()),
    (_cases(p1="passed", p2="passed", f1="failed", f2="failed", one="failed", two="failed"), set()),
    # Everything rewritten to pass (report monkeypatch, XML rewrite).
    (_cases(p1="passed", p2="passed", f1="passed", f2="passed", one="passed", two="passed"), {"canary_passed"}),
    # Results rewritten to name only the known tests.
    (_cases(one="passed", two="passed"), {"canary_missing"}),
    # Everything skipped but the known tests.
    (_cases(p1="skipped", p2="skipped", f1="skipped", f2="skipped", one="passed", two="passed"),
     {"canary_missing"}),
    # A known test dropped from results that otherwise look honest.
    (_cases(p1="passed", p2="passed", f1="failed", f2="failed", one="passed"), {"tests_missing"}),
    # Cut short at collection (an import error in the candidate's code): nothing passed, nothing earned.
    ({"hidden_tests.test_x": TestCase("hidden_tests.test_x", "error", "collection failure")}, set()),
    # No results of any kind but a must-fail canary passing: still forged.
    (_cases(f1="passed"), {"canary_passed"}),
])
def test_the_tampering_verdict(cases: dict[str, TestCase], kinds: set[str]) -> None:
    assert _verdict(cases) == kinds


def test_a_real_test_in_a_file_that_failed_to_collect_is_not_tampering() -> None:
    cases = _cases(p1="passed", p2="passed", f1="failed", f2="failed", two="passed")
    cases["hidden_tests.test_y"] = TestCase("hidden_tests.test_y", "error", "collection failure")
    real, found = split_canaries(cases, CANARIES)
    assert judge_results("hidden", real, found, CANARIES, ("hidden_tests/test_y.py::test_three",)) == []
    assert "hidden_tests.test_aa11.test_p1" not in real and "hidden_tests.test_x.test_two" in real


def test_regression_and_collateral_credit_scale_with_real_progress() -> None:
    assert progress_credit(2.0, 1.0, 0.0) == 0.0  # everything kept, nothing done: nothing earned
    assert progress_credit(2.0, 1.0, 1.0) == 2.0
    assert progress_credit(2.0, 0.5, 0.5) == 0.5
    assert progress_credit(2.0, 3.0, -1.0) == 0.0


def test_lines_that_reach_for_the_test_runner_are_flagged(tmp_path: Path) -> None:
    from tests.fixtures.bundle_builder import SessionBuilder

    s = SessionBuilder(tmp_path, trial_id="t-reach")
    s.human_write("calc/ops.py", s.read("calc/ops.py") + "\nimport atexit, os, sys\n"
                  "atexit.register(lambda: os._exit(0))\nsys.modules.pop('x', None)\n"
                  "frame = sys._getframe(1)\nimport _pytest.reports\nimport pytest\nHIDDEN = 'hidden_tests'\n")
    s.human_write("tests/test_more.py", "import pytest\n\n\ndef test_more():\n    assert True\n")
    s.human_write("conftest.py", "x = 1\n")
    s.commit(5, "work")
    bundle = Bundle(s.build())
    with open_repo(bundle) as repo:
        flags = find_reaches(repo, choose_revision(bundle, repo), "hidden_tests")
    found = {(f["path"], f["pattern"]) for f in flags}
    assert {("calc/ops.py", p) for p in ("atexit", "os._exit", "sys.modules", "frame tricks", "pytest internals",
                                         "pytest imported by non-test code", "names the hidden tests' folder")} <= found
    assert ("conftest.py", "runner file") in found
    assert not any(path == "tests/test_more.py" for path, _ in found)  # a test importing pytest is ordinary
    assert all(f["line"] > 0 for f in flags if f["path"] == "calc/ops.py")


def test_the_runner_raises_alerts_from_the_hidden_tests_evidence() -> None:
    from graders.base import GraderResult
    from graders.runner import _alerts
    from orchestrator.report.model import GraderEntry

    class _NoEvents:
        def events(self) -> list[dict[str, object]]:
            return []

    details = {"tampering": [{"kind": "canary_passed", "message": "A canary passed.", "evidence": {"run": "hidden"}}],
               "missing_results": [{"run": "pass_to_pass", "message": "No results.", "evidence": {"exit_code": 0}}],
               "reaches_for_test_runner": [{"path": "calc/ops.py", "line": 3, "pattern": "atexit", "text": "x"}]}
    entry = GraderEntry("hidden_tests", 1.0, GraderResult("hidden_tests", details=details))
    alerts = {a["kind"]: a for a in _alerts(_NoEvents(), [entry])}  # type: ignore[arg-type]
    assert alerts["hidden_tests_tampered"]["evidence"] == details["tampering"]
    assert "A canary passed." in alerts["hidden_tests_tampered"]["message"]
    assert alerts["hidden_tests_missing"]["severity"] == "critical"
    from orchestrator.report.model import alert_severity

    assert alert_severity(alerts["reaches_for_test_runner"]) != "critical"  # for review, never scored
    assert alert_severity(alerts["hidden_tests_tampered"]) == "critical"
    assert "atexit in calc/ops.py" in alerts["reaches_for_test_runner"]["message"]


# ----- the template declares its shape -----------------------------------------------------------

from orchestrator.errors import TemplateError  # noqa: E402

SHAPED = """title = "T"
summary = "S"
language = "python"
[tests]
starter = "python3 -m pytest tests"
hidden = "python3 -m pytest --junitxml={junit} hidden_tests"
"""


def _shaped(tmp_path: Path, extra: str, hidden: str | None = None) -> Path:
    path = tmp_path / "shaped"
    for folder in ("starter", "hidden_tests"):
        (path / folder).mkdir(parents=True, exist_ok=True)
    (path / "brief.md").write_text("# Brief\n")
    (path / "Dockerfile").write_text("ARG BASE_IMAGE=debian:bookworm\nFROM ${BASE_IMAGE}\n")
    toml = SHAPED if hidden is None else SHAPED.replace(
        'hidden = "python3 -m pytest --junitxml={junit} hidden_tests"', f'hidden = "{hidden}"')
    (path / "template.toml").write_text(toml + extra)
    return path


def test_the_shape_is_library_unless_declared_and_api_keys_declares_it(tmp_path: Path) -> None:
    from tests.conftest import REPO_ROOT

    assert load_template(_shaped(tmp_path, "")).config.tests.shape == "library"
    api_keys = (REPO_ROOT / "trial_templates" / "api-keys" / "template.toml").read_text()
    assert '\nshape = "library"\n' in api_keys
    assert load_template(REPO_ROOT / "trial_templates" / "api-keys").config.tests.shape == "library"


def test_a_service_shape_needs_its_program_and_port(tmp_path: Path) -> None:
    path = _shaped(tmp_path, "")
    (path / "template.toml").write_text(SHAPED.replace("[tests]\n", '[tests]\nshape = "service"\n')
                                        + '[tests.service]\ncommand = "python3 -m app"\nport = 8080\n')
    service = load_template(path).config.tests.service
    assert service is not None and service.port == 8080 and service.ready_timeout_s == 30
    (path / "template.toml").write_text(SHAPED.replace("[tests]\n", '[tests]\nshape = "service"\n'))
    with pytest.raises(TemplateError, match=r"template\.toml: field 'tests\.service': required when tests\.shape"):
        load_template(path)
    (path / "template.toml").write_text(SHAPED.replace("[tests]\n", '[tests]\nshape = "mesh"\n'))
    with pytest.raises(TemplateError, match=r"template\.toml: field 'tests\.shape'"):
        load_template(path)
    (path / "template.toml").write_text(SHAPED + '[tests.service]\ncommand = "x"\nport = 1\n')
    with pytest.raises(TemplateError, match=r"field 'tests\.service': only for tests\.shape = \"service\""):
        load_template(path)


@pytest.mark.parametrize("option", ["-x", "--maxfail=1", "-k smoke", "--exitfirst"])
def test_a_library_run_that_would_cut_the_canaries_is_refused(tmp_path: Path, option: str) -> None:
    path = _shaped(tmp_path, "", hidden=f"python3 -m pytest {option} --junitxml={{junit}} hidden_tests")
    with pytest.raises(TemplateError, match=r"field 'tests\.hidden': .* stops or narrows the run"):
        load_template(path)


def test_hidden_files_changed_during_a_run_is_tampering_and_no_results_is_a_failure() -> None:
    from graders.verifier import Job, _judge, _Outcome

    job = Job("hidden", "pytest", 60, b"", {}, expected=REAL, canaries=CANARIES)
    xml = ('<testsuite><testcase classname="hidden_tests.test_x" name="test_one"/>'
           '<testcase classname="hidden_tests.test_aa11" name="test_p1"/>'
           '<testcase classname="hidden_tests.test_bb22" name="test_p2"/>'
           '<testcase classname="hidden_tests.test_aa11" name="test_f1"><failure/></testcase>'
           '<testcase classname="hidden_tests.test_bb22" name="test_f2"><failure/></testcase>'
           '<testcase classname="hidden_tests.test_x" name="test_two"><failure/></testcase></testsuite>')
    honest = _judge(job, _Outcome(1, 1.0, "", xml), [])
    assert honest.tampering == [] and honest.missing is None and set(honest.cases or {}) == {
        "hidden_tests.test_x.test_one", "hidden_tests.test_x.test_two"}
    changed = _judge(job, _Outcome(1, 1.0, "", xml), [{"path": "hidden_tests/test_x.py", "found": "sha256 0"}])
    assert [t["kind"] for t in changed.tampering] == ["hidden_files_changed"]
    assert changed.tampering[0]["evidence"]["changes"][0]["path"] == "hidden_tests/test_x.py"
    nothing = _judge(job, _Outcome(0, 1.0, "bye", None, "no JUnit XML was written (exit 0)"), [])
    assert nothing.cases is None and nothing.tampering == []
    assert nothing.missing is not None and nothing.missing["evidence"]["exit_code"] == 0
    garbage = _judge(job, _Outcome(0, 1.0, "", "<html/>"), [])
    assert garbage.missing is not None and "not JUnit XML" in garbage.missing["message"]


def test_a_runner_configuration_in_a_folder_of_tests_is_harness_and_put_back(tmp_path: Path) -> None:
    # `pytest tests` would read tests/pytest.ini first: an `addopts = -x` there cuts the run short.
    from tests.fixtures.bundle_builder import SessionBuilder

    s = SessionBuilder(tmp_path, trial_id="t-nested-ini")
    s.human_write("tests/pytest.ini", "[pytest]\naddopts = -x\n")
    s.human_write("tests/pyproject.toml", "[tool.pytest.ini_options]\naddopts = '-k smoke'\n")
    s.commit(5, "Configure the tests")
    bundle = Bundle(s.build())
    with open_repo(bundle) as repo:
        found = find_collateral(repo, choose_revision(bundle, repo), ("calc/**", "tests/**"), "hidden_tests",
                                ("tests/test_calc.py",))
    assert sorted(found.harness_changed) == ["tests/pyproject.toml", "tests/pytest.ini"] and found.suspicious
    assert found.harness_restores == {"tests/pyproject.toml": None, "tests/pytest.ini": None}


# ----- a tree that expands past the cap ---------------------------------------------------------------

class _NoVerifier:
    """A sandbox backend the grader must never reach: the tree is refused before any container is made."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the verifier was reached ({name}) for a tree past the cap")


def _repeated_blob_commit(work: Path, paths: int, blob_bytes: int) -> str:
    """One commit naming a single blob at `paths` paths: a tiny pack, a huge archive."""
    import os

    env = {**os.environ, "GIT_AUTHOR_NAME": "Cand", "GIT_AUTHOR_EMAIL": "c@example.com",
           "GIT_COMMITTER_NAME": "Cand", "GIT_COMMITTER_EMAIL": "c@example.com"}

    def git(*args: str, data: bytes | None = None) -> str:
        return subprocess.run(["git", *args], cwd=work, input=data, capture_output=True, check=True,
                              env=env).stdout.decode().strip()

    blob = git("hash-object", "-w", "--stdin", data=b"0123456789abcde\n" * (blob_bytes // 16))
    top = git("ls-tree", "HEAD")
    sub = git("mktree", data="".join(f"100644 blob {blob}\tcopy{i:04d}.txt\n" for i in range(paths)).encode())
    tree = git("mktree", data=(top + f"\n040000 tree {sub}\tdata\n").encode())
    commit = git("commit-tree", tree, "-p", "HEAD", "-m", "Add data")
    git("update-ref", "HEAD", commit)
    return commit


def test_a_tree_of_one_blob_repeated_past_the_cap_fails_the_candidate_without_archiving(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graders import repo as repo_module
    from graders.runner import _hidden_test_alerts
    from tests.fixtures.bundle_builder import SessionBuilder

    s = SessionBuilder(tmp_path, trial_id="t-bigtree")
    s.human_write("calc/extra.py", "X = 1\n")
    s.commit(5, "Work")
    built = s.build()
    sha = _repeated_blob_commit(s.work, 300, 4 << 20)  # 1.2 GB expanded, a few KiB packed
    (built / "repo.bundle").unlink()
    subprocess.run(["git", "bundle", "create", str(built / "repo.bundle"), "--all"], cwd=s.work, check=True,
                   capture_output=True)
    assert (built / "repo.bundle").stat().st_size < 1 << 20
    monkeypatch.setattr(repo_module, "MAX_TREE_BYTES", 64 << 20)
    archived: list[str] = []
    monkeypatch.setattr(repo_module.Repo, "_run_bytes",
                        lambda self, *args: archived.append(args[0]) or (_ for _ in ()).throw(AssertionError(args)))
    bundle = Bundle(built)
    result = HiddenTestsGrader().grade(bundle, {}, GradeContext(template=load_template(MINI_TEMPLATE),
                                                                sandbox=_NoVerifier(), image="unused"))  # type: ignore[arg-type]
    assert result.status == "ok" and result.score == 0.0 and result.max > 0, result.summary
    assert archived == []  # refused on `ls-tree -l` sizes, before git archive or show
    assert result.details["revision"]["sha"] == sha
    assert result.details["tree_too_large"]["cap_bytes"] == 64 << 20
    assert result.details["tree_too_large"]["tree_bytes_at_least"] > 64 << 20
    assert "expands to more than 64 MiB" in result.summary
    [alert] = _hidden_test_alerts(result.details)
    assert alert["kind"] == "hidden_tests_missing" and "not run" in alert["message"]


def test_tree_size_counts_a_blob_at_every_path_naming_it(tmp_path: Path) -> None:
    from tests.fixtures.bundle_builder import SessionBuilder

    s = SessionBuilder(tmp_path, trial_id="t-treesize")
    sha = _repeated_blob_commit(s.work, 200, 1 << 16)
    built = s.build()
    with open_repo(Bundle(built)) as repo:
        assert repo.tree_bytes(sha) >= 200 * (1 << 16)
        assert repo.tree_bytes(sha, cap=1 << 16) <= 2 * 200 * (1 << 16)  # stops counting past the cap
