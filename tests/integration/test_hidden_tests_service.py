"""Service-shaped hidden tests on the real engine: the candidate's program in one container, the
hidden tests in another, on a private network the grader makes and removes.

The template is tests/fixtures/service_template (a stdlib HTTP greeter). Whatever the candidate's
program does to its own container, the tests' process and its JUnit XML are out of its reach.
The fixture is sound as the tests below use it (its reference passes every hidden test, its
starter's program fails FAIL_TO_PASS and passes PASS_TO_PASS); `trial templates check` on a
service-shaped template is proven by the Python scaffold (test_template_scaffold.py) and the
web template (test_template_check_all.py), so it is not run a third time on this fixture.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import docker
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
from tests.conftest import BASE_IMAGE
from tests.fixtures.bundle_builder import SessionBuilder

pytestmark = pytest.mark.docker

SERVICE_TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "service_template"


@pytest.fixture(scope="module")
def setup(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[DockerBackend, Template, str]:
    home = tmp_path_factory.mktemp("service-home")
    settings = load_settings(env={"TRIAL_HOME": str(home), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE}, cwd=home)
    backend = DockerBackend(settings.sandbox, instance=instance_id(settings))  # out of other stores' gc
    template = load_template(SERVICE_TEMPLATE)
    return backend, template, build_sandbox_image(backend, template, get_agent("none"), settings).tag


def _bundle(root: Path, trial_id: str, *, patch: bool = False, edits: dict[str, str] | None = None) -> Bundle:
    # A suffix of its own: concurrent runs on one engine never share a trial id (or its containers).
    session = SessionBuilder(root, trial_id=f"{trial_id}-{uuid.uuid4().hex[:6]}", template_dir=SERVICE_TEMPLATE)
    if patch:
        subprocess.run(["git", "apply", str(SERVICE_TEMPLATE / "reference" / "solution.patch")], cwd=session.work,
                       check=True)
    for path, code in (edits or {}).items():
        session.human_write(path, session.read(path) + code)
    session.commit(10, "Add /sum")
    session.push(11)
    session.open_pr(12, "Add /sum", "Adds the endpoint.")
    return Bundle(session.build())


def _grade(bundle: Bundle, setup: tuple[DockerBackend, Template, str]) -> GraderResult:
    backend, template, image = setup
    result = HiddenTestsGrader().grade(bundle, {}, GradeContext(template=template, sandbox=backend, image=image))
    trial_id = str(bundle.trial["id"])
    # Verifier and service containers have names of their own: found by label, as teardown finds them.
    left = docker.from_env().containers.list(all=True, filters={"label": f"trial.id={trial_id}"})
    assert left == []
    networks = docker.from_env().networks.list(filters={"label": f"trial.id={trial_id}"})
    assert networks == []  # the private network is gone with the run
    return result


def test_the_reference_program_passes_over_the_private_network(setup: tuple[DockerBackend, Template, str],
                                                               tmp_path: Path) -> None:
    result = _grade(_bundle(tmp_path, "t-svc-ref", patch=True), setup)
    assert result.status == "ok", result.summary
    assert result.details["shape"] == "service"
    assert result.details["fail_to_pass"]["passed"] == 2 == result.details["fail_to_pass"]["total"]
    assert result.details["pass_to_pass"]["passed"] == 2
    assert result.fraction == 1.0
    assert not result.details["tampering"] and not result.details["missing_results"]
    assert "canaries" not in result.details["hidden_run"]  # nothing of the candidate's ran beside the tests
    assert "private network" in result.details["trusts"]


FORGER = '''
import atexit, glob, os, sys

print("hidden_tests/test_sum.py::test_sum_adds_two_integers PASSED", flush=True)
for path in glob.glob("/workspace/hidden_tests/*.py") + glob.glob("/var/tmp/trial-*/*"):
    try:
        with open(path, "w") as handle:
            handle.write("<testsuites><testsuite><testcase classname='hidden_tests.test_sum' "
                         "name='test_sum_adds_two_integers'/></testsuite></testsuites>")
    except OSError:
        pass
atexit.register(lambda: os._exit(0))
'''


def test_a_program_that_forges_everything_it_can_reach_earns_nothing(
        setup: tuple[DockerBackend, Template, str], tmp_path: Path) -> None:
    result = _grade(_bundle(tmp_path, "t-svc-forge", edits={"greeter/__init__.py": FORGER}), setup)
    assert result.status == "ok"
    assert result.details["fail_to_pass"]["passed"] == 0
    assert result.details["pass_to_pass"]["outcomes"]["hidden_tests/test_sum.py::test_greeting_still_works"] == (
        "passed")  # the starter's program, really tested over HTTP
    assert result.score == 0.0


def test_a_program_that_will_not_start_fails_its_tests_and_is_not_infrastructure(
        setup: tuple[DockerBackend, Template, str], tmp_path: Path) -> None:
    result = _grade(_bundle(tmp_path, "t-svc-crash", edits={"greeter/__init__.py": "raise SystemExit(3)\n"}), setup)
    assert result.status == "ok", result.summary
    assert result.details["fail_to_pass"]["passed"] == 0 and result.score == 0.0
    assert "did not stay up" in result.details["hidden_run"]["problem"]


def test_a_program_that_crashes_while_starting_is_reported_at_once_with_its_exit(
        setup: tuple[DockerBackend, Template, str], tmp_path: Path) -> None:
    # Up past the engine's start check (0.5 s), then gone before it listens: the wait used to last
    # the whole ready_timeout_s (20 s here) and say only that nothing answered within it.
    crash = "import sys, time\ntime.sleep(1.5)\nprint('boom: GREETER_DB is not set', file=sys.stderr)\nsys.exit(4)\n"
    result = _grade(_bundle(tmp_path, "t-svc-late", edits={"greeter/__init__.py": crash}), setup)
    assert result.status == "ok", result.summary
    assert result.details["fail_to_pass"]["passed"] == 0 and result.score == 0.0
    problem = result.details["hidden_run"]["problem"]
    assert "the program exited before accepting connections on port 8080: exit code 4" in problem, problem
    assert "boom: GREETER_DB is not set" in problem
