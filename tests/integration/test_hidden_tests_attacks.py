"""Attacks on the hidden-tests verdict, each played against the real verifier on the real engine.

The candidate owns the code the hidden tests import, so every attack here is code they could
push: it runs inside the test process (or beside it) in the verifier container. Each test
grades a bundle built from a real git history with `HiddenTestsGrader`, on images built the
way `trial launch` builds them (the sandbox layer included, so /workspace in the image is
the candidate's).

What is asserted is the verdict a reviewer sees: no hidden-test credit, and an alert with
evidence wherever the forgery can be detected. One test pins down what canaries cannot catch
(a forgery of only the tests the candidate knows by name), and that reviewers are told.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from graders.base import GradeContext, GraderResult
from graders.hidden_tests import HiddenTestsGrader
from orchestrator.agents import get_agent
from orchestrator.catalog import Template, load_template
from orchestrator.config import load_settings
from orchestrator.evidence.bundle import Bundle
from orchestrator.sandbox import instance_id
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.sandbox.images import build_sandbox_image
from tests.conftest import BASE_IMAGE, REPO_ROOT
from tests.fixtures.bundle_builder import MINI_TEMPLATE, SessionBuilder

pytestmark = pytest.mark.docker

API_KEYS = REPO_ROOT / "trial_templates" / "api-keys"


@pytest.fixture(scope="module")
def backend(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> DockerBackend:
    home = tmp_path_factory.mktemp("attacks-home")
    settings = load_settings(env={"TRIAL_HOME": str(home), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE}, cwd=home)
    # Labelled with this data dir: a `trial gc` run by another test on the shared engine leaves it be.
    return DockerBackend(settings.sandbox, instance=instance_id(settings))


def _image(backend: DockerBackend, template: Template, home: Path) -> str:
    settings = load_settings(env={"TRIAL_HOME": str(home), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE}, cwd=home)
    return build_sandbox_image(backend, template, get_agent("none"), settings).tag


@pytest.fixture(scope="module")
def mini(backend: DockerBackend, tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, str]:
    template = load_template(MINI_TEMPLATE)
    return template, _image(backend, template, tmp_path_factory.mktemp("mini-home"))


@pytest.fixture(scope="module")
def api_keys(backend: DockerBackend, tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, str]:
    template = load_template(API_KEYS)
    return template, _image(backend, template, tmp_path_factory.mktemp("api-keys-home"))


def _unique(trial_id: str) -> str:
    """A suffix of its own: concurrent runs on one engine never share a trial id (or its containers)."""
    return f"{trial_id}-{uuid.uuid4().hex[:6]}"


def _bundle(root: Path, trial_id: str, template_dir: Path, edits: dict[str, str], *, append: bool = True) -> Bundle:
    session = SessionBuilder(root, trial_id=_unique(trial_id), template_dir=template_dir)
    for path, code in edits.items():
        session.human_write(path, (session.read(path) if append else "") + code)
    session.commit(10, "Implement the brief")
    session.push(11)
    session.open_pr(12, "Implement the brief", "Done.")
    return Bundle(session.build())


def _grade(bundle: Bundle, backend: DockerBackend, template_image: tuple[Template, str]) -> GraderResult:
    template, image = template_image
    result = HiddenTestsGrader().grade(bundle, {}, GradeContext(template=template, sandbox=backend, image=image))
    # Nothing left running: verifier and service names are the run's own, so found by label.
    # This run's own (its instance label): another test run on the shared engine may be grading the same trial ids.
    assert not [r for r in backend.list_managed() if r.kind == "container" and r.trial_id == bundle.trial["id"]
                and r.instance == backend.instance]
    return result


def _tampering(result: GraderResult) -> set[str]:
    return {entry["kind"] for entry in result.details.get("tampering", [])}


def _no_credit(result: GraderResult) -> None:
    assert result.status == "ok", result.summary  # the candidate's doing is never "infrastructure"
    assert result.score == 0.0, [(c.id, c.score) for c in result.criteria]
    if not result.details["tampering"]:  # tampered results say what they were forged to say
        assert result.details["fail_to_pass"]["passed"] == 0


# ----- the attack from the issue: rewrite the hidden tests when the package is imported ------------

REWRITE_ON_IMPORT = '''
import glob as _glob, os as _os, re as _re
for _path in _glob.glob(_os.path.join(_os.getcwd(), "hidden_tests", "test_*.py")):
    try:
        with open(_path) as _file:
            _names = _re.findall(r"^def (test_\\w+)", _file.read(), _re.M)
        with open(_path, "w") as _file:
            _file.write("".join(f"def {_name}():\\n    pass\\n" for _name in _names))
    except OSError:
        pass
'''


def test_rewriting_the_hidden_tests_on_import_earns_nothing(backend: DockerBackend, api_keys: tuple[Template, str],
                                                            tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "t-rewrite", API_KEYS, {"keyservice/__init__.py": REWRITE_ON_IMPORT})
    result = _grade(bundle, backend, api_keys)
    _no_credit(result)
    assert result.details["fail_to_pass"]["total"] == 22
    # The files were out of reach: the run was an honest one of the starter's code.
    assert "hidden_files_changed" not in _tampering(result)
    assert any(flag["path"] == "keyservice/__init__.py" for flag in result.details["reaches_for_test_runner"])


# ----- forging the JUnit XML from inside the test process ---------------------------------------

ATEXIT_REWRITE = '''
import atexit as _atexit, re as _re, sys as _sys


def _forge():
    for _arg in _sys.argv:
        if _arg.startswith("--junitxml="):
            _path = _arg.split("=", 1)[1]
            try:
                with open(_path) as _file:
                    _xml = _file.read()
                _xml = _re.sub(r"<(failure|error)\\b[^>]*?(/>|>.*?</\\1>)", "", _xml, flags=_re.S)
                with open(_path, "w") as _file:
                    _file.write(_xml)
            except OSError:
                pass


_atexit.register(_forge)
'''

REPORT_MONKEYPATCH = '''
try:
    import _pytest.reports as _reports

    _original = _reports.TestReport.__init__

    def _always_passed(self, *args, **kwargs):
        _original(self, *args, **kwargs)
        self.outcome = "passed"
        self.longrepr = None

    _reports.TestReport.__init__ = _always_passed
except ImportError:
    pass
'''


@pytest.mark.parametrize(("name", "code"), [("atexit", ATEXIT_REWRITE), ("report-monkeypatch", REPORT_MONKEYPATCH)])
def test_blanket_forgery_of_the_results_is_caught_by_the_canaries(backend: DockerBackend, mini: tuple[Template, str],
                                                                  tmp_path: Path, name: str, code: str) -> None:
    bundle = _bundle(tmp_path, f"t-{name}", MINI_TEMPLATE, {"calc/__init__.py": code})
    result = _grade(bundle, backend, mini)
    _no_credit(result)
    assert "canary_passed" in _tampering(result)
    evidence = next(e for e in result.details["tampering"] if e["kind"] == "canary_passed")
    assert evidence["message"] and evidence["evidence"]
    assert "tampered" in result.summary.lower()


KNOWN_NAMES_ONLY = ATEXIT_REWRITE.replace(
    """_xml = _re.sub(r"<(failure|error)\\b[^>]*?(/>|>.*?</\\1>)", "", _xml, flags=_re.S)""",
    """_xml = _re.sub(r'(<testcase classname="hidden_tests\\.test_hidden" name="test_\\w+"[^>/]*)>.*?</testcase>',
                      r"\\1 />", _xml, flags=_re.S)""")


def test_forging_only_the_known_tests_is_not_caught_by_canaries_but_is_flagged(
        backend: DockerBackend, mini: tuple[Template, str], tmp_path: Path) -> None:
    """The limit of canaries (docs/threat-model.md): the bundled hidden tests are public, so code in
    the test process can forge exactly those by name. What reviewers get is the flag."""
    assert KNOWN_NAMES_ONLY != ATEXIT_REWRITE
    bundle = _bundle(tmp_path, "t-known-names", MINI_TEMPLATE, {"calc/__init__.py": KNOWN_NAMES_ONLY})
    result = _grade(bundle, backend, mini)
    assert result.details["fail_to_pass"]["passed"] == 4 and not _tampering(result)
    flags = {flag["pattern"] for flag in result.details["reaches_for_test_runner"]}
    assert "atexit" in flags


# ----- ending the run before the results are written ---------------------------------------------

OS_EXIT = '''
import os as _os, sys as _sys
if "_pytest" in _sys.modules:
    _os._exit({code})
'''


@pytest.mark.parametrize("code", [0, 127])
def test_exiting_before_the_results_are_written_is_a_failure_never_infrastructure(
        backend: DockerBackend, mini: tuple[Template, str], tmp_path: Path, code: int) -> None:
    # 127 is what a missing test runner returns: it must not pass for a broken machine either.
    bundle = _bundle(tmp_path, f"t-exit{code}", MINI_TEMPLATE, {"calc/__init__.py": OS_EXIT.format(code=code)})
    result = _grade(bundle, backend, mini)
    _no_credit(result)
    missing = result.details["missing_results"]
    assert missing and missing[0]["run"] == "hidden" and missing[0]["evidence"]["exit_code"] == code


# ----- a process left running between the hidden run and the starter-tests run -----------------

LINGERING = '''
import os as _os, sys as _sys, time as _time
if "_pytest" in _sys.modules and _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _null = _os.open(_os.devnull, _os.O_RDWR)
        for _fd in (0, 1, 2):
            _os.dup2(_null, _fd)
        _stubs = "".join(f"def {_n}():\\n    pass\\n" for _n in ("test_add", "test_subtract", "test_rejects_garbage"))
        _end = _time.monotonic() + 120
        while _time.monotonic() < _end:
            try:
                with open(_os.path.join("/workspace", "tests", "test_calc.py"), "w") as _file:
                    _file.write(_stubs)
            except OSError:
                pass
            _time.sleep(0.05)
    _os._exit(0)
'''


def test_a_process_left_running_cannot_rewrite_the_starter_tests_of_the_next_run(
        backend: DockerBackend, mini: tuple[Template, str], tmp_path: Path) -> None:
    # The candidate breaks addition, then leaves a process behind to stub out the starter's tests.
    with_broken_add = _bundle(tmp_path, "t-linger", MINI_TEMPLATE, {
        "calc/__init__.py": LINGERING,
        "calc/ops.py": "\n_real = evaluate\n\n\ndef evaluate(text):\n    return _real(text.replace('+', '-'))\n"})
    result = _grade(with_broken_add, backend, mini)
    outcomes = result.details["pass_to_pass"]["outcomes"]
    assert outcomes["tests/test_calc.py::test_add"] == "failed", outcomes
    assert result.score == 0.0


FORK_TO_THE_LIMIT = '''
import os as _os, sys as _sys
if "_pytest" in _sys.modules:
    for _ in range(2000):
        try:
            _pid = _os.fork()
        except OSError:
            break  # the pids limit: nothing more can start in this container, an exec included
        if _pid == 0:
            _os.setsid()
            _os.execvp("sleep", ["sleep", "600"])
'''


def test_processes_forked_to_the_pids_limit_neither_survive_nor_make_it_infrastructure(
        backend: DockerBackend, mini: tuple[Template, str], tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "t-forks", MINI_TEMPLATE, {"calc/__init__.py": FORK_TO_THE_LIMIT})
    result = _grade(bundle, backend, mini)
    _no_credit(result)
    assert not result.details["tampering"]


# ----- printed PASSED lines --------------------------------------------------------------------

PRINT_PASSED = '''
for _name in ("test_multiply", "test_divide", "test_precedence", "test_division_by_zero"):
    print(f"hidden_tests/test_hidden.py::{_name} PASSED")
'''


def test_printing_passed_lines_earns_nothing(backend: DockerBackend, mini: tuple[Template, str],
                                             tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "t-print", MINI_TEMPLATE, {"calc/__init__.py": PRINT_PASSED})
    result = _grade(bundle, backend, mini)
    _no_credit(result)


# ----- honest work still scores ----------------------------------------------------------------

def _reference_bundle(root: Path) -> Bundle:
    session = SessionBuilder(root, trial_id=_unique("t-reference"), template_dir=API_KEYS)
    subprocess.run(["git", "apply", str(API_KEYS / "reference" / "solution.patch")], cwd=session.work, check=True)
    session.commit(30, "Hash keys, encrypted copy, rotation and scopes")
    session.push(31)
    session.open_pr(32, "Hash keys, encrypted copy, rotation and scopes", "See the commits.")
    return Bundle(session.build())


def test_the_reference_solution_still_scores_every_hidden_test(backend: DockerBackend,
                                                               api_keys: tuple[Template, str],
                                                               tmp_path: Path) -> None:
    result = _grade(_reference_bundle(tmp_path), backend, api_keys)
    assert result.status == "ok", result.summary
    assert result.details["fail_to_pass"]["passed"] == 22 == result.details["fail_to_pass"]["total"]
    assert result.details["pass_to_pass"]["passed"] == 7 == result.details["pass_to_pass"]["total"]
    scores = {c.id: (c.score, c.max) for c in result.criteria}
    assert scores["fail_to_pass"][0] == scores["fail_to_pass"][1]
    assert scores["pass_to_pass"][0] == scores["pass_to_pass"][1]
    assert not result.details["tampering"] and not result.details["missing_results"]
    assert "canaries" in result.details["trusts"] and result.details["hidden_run"]["canaries"]["must_fail"] == 2


def test_the_starter_still_fails_the_hidden_tests(backend: DockerBackend, api_keys: tuple[Template, str],
                                                  tmp_path: Path) -> None:
    result = _grade(Bundle(SessionBuilder(tmp_path, trial_id=_unique("t-starter"), template_dir=API_KEYS).build()),
                    backend, api_keys)
    assert result.status == "ok"
    assert result.details["fail_to_pass"]["passed"] == 0
    assert result.details["pass_to_pass"]["passed"] == 7  # kept, but nothing was submitted
    assert result.score == 0.0 and not result.details["tampering"]
