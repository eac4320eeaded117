"""The hidden-tests grader on the real engine: a fresh verifier container per grade, JUnit only.

Sessions come from tests/fixtures/bundle_builder.py; the template is the tiny mini_template
(its image is the base image plus nothing, so it builds in a second and is cached).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from graders.base import GradeContext, GraderResult
from graders.hidden_tests import HiddenTestsGrader
from graders.repo import choose_revision, open_repo
from orchestrator.catalog import Template, load_template
from orchestrator.config import SandboxSettings
from orchestrator.evidence.bundle import Bundle
from orchestrator.sandbox.base import BuildRequest, SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from tests.conftest import BASE_IMAGE
from tests.fixtures.bundle_builder import MINI_TEMPLATE, SESSIONS

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def backend(docker_engine: None) -> DockerBackend:
    # Labelled as an instance of its own: a `trial gc` run by another test on the shared engine
    # removes unlabelled containers as its own leftovers.
    return DockerBackend(SandboxSettings(), instance=f"hidden-tests-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def image(backend: DockerBackend, tmp_path_factory: pytest.TempPathFactory) -> str:
    dockerfile = (MINI_TEMPLATE / "Dockerfile").read_bytes()
    tag = f"trial-tpl-mini-test:{hashlib.sha256(dockerfile + BASE_IMAGE.encode()).hexdigest()[:12]}"
    context = tmp_path_factory.mktemp("mini-image")
    (context / "Dockerfile").write_bytes(dockerfile)
    return backend.build(BuildRequest(context_dir=context, tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE})).tag


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    return {name: Bundle(build(tmp_path_factory.mktemp(name))) for name, build in SESSIONS.items()}


def _grade(bundle: Bundle, backend: DockerBackend, image: str, template: Template | None = None) -> GraderResult:
    context = GradeContext(template=template or load_template(MINI_TEMPLATE), sandbox=backend, image=image)
    result = HiddenTestsGrader().grade(bundle, {}, context)
    # Whatever happened, the verifier is gone afterwards (names are the run's own: found by label).
    # This run's own (its instance label): another test run on the shared engine may be grading the same trial ids.
    assert not [r for r in backend.list_managed() if r.kind == "container" and r.trial_id == bundle.trial["id"]
                and r.instance == backend.instance]
    return result


def _scores(result: GraderResult) -> dict[str, float]:
    return {c.id: c.score for c in result.criteria}


def test_a_correct_solution_passes_every_hidden_test(bundles: dict[str, Bundle], backend: DockerBackend,
                                                     image: str) -> None:
    result = _grade(bundles["careful"], backend, image)
    assert result.status == "ok" and result.fraction == 1.0
    assert result.details["fail_to_pass"]["passed"] == 4 and result.details["pass_to_pass"]["passed"] == 3
    assert result.details["revision"]["source"] == "pull_request"
    assert result.details["hidden_run"]["tests"] == 4 and "output_tail" not in result.details["hidden_run"]


def test_a_partial_solution_gets_partial_credit_with_the_failure_message(bundles: dict[str, Bundle],
                                                                          backend: DockerBackend, image: str) -> None:
    result = _grade(bundles["agent-only"], backend, image)
    outcomes = result.details["fail_to_pass"]["outcomes"]
    assert outcomes["hidden_tests/test_hidden.py::test_division_by_zero"] == "failed"
    assert sum(o == "passed" for o in outcomes.values()) == 3
    assert "ZeroDivisionError" in result.details["fail_to_pass"]["messages"][
        "hidden_tests/test_hidden.py::test_division_by_zero"]
    assert _scores(result)["fail_to_pass"] == pytest.approx(6.0 * 3 / 4)


def test_printing_passed_and_rewriting_outcomes_earn_nothing(bundles: dict[str, Bundle], backend: DockerBackend,
                                                             image: str, tmp_path: Path) -> None:
    spoof = bundles["spoofing"]
    # The candidate's code really prints PASSED for every hidden test...
    with open_repo(spoof) as repo:
        revision = choose_revision(spoof, repo)
        checkout = tmp_path / "checkout"
        checkout.mkdir()
        subprocess.run(["tar", "-x", "-C", str(checkout)], input=repo.archive(revision.sha), check=True)
    printed = subprocess.run([sys.executable, "-c", "import calc"], cwd=checkout, capture_output=True, text=True,
                             check=True, timeout=60).stdout
    assert "hidden_tests/test_hidden.py::test_multiply PASSED" in printed
    # ...and ships a conftest.py that turns every failure into a pass. Neither counts.
    result = _grade(spoof, backend, image)
    assert result.status == "ok"
    assert _scores(result)["fail_to_pass"] == 0.0
    assert set(result.details["fail_to_pass"]["outcomes"].values()) == {"failed"}
    assert result.details["collateral"]["suspicious"] is True and _scores(result)["collateral"] == 0.0
    assert "conftest.py" in result.details["restored_before_run"]
    assert "harness" in result.summary


def test_nothing_submitted_scores_nothing(bundles: dict[str, Bundle], backend: DockerBackend, image: str) -> None:
    result = _grade(bundles["empty"], backend, image)
    assert result.status == "ok" and result.score == 0.0
    assert result.details["pass_to_pass"]["passed"] == 3  # the starter's tests do pass: no credit for it


def _variant(tmp_path: Path, hidden: str) -> Template:
    folder = tmp_path / "mini_template"
    shutil.copytree(MINI_TEMPLATE, folder)
    toml = folder / "template.toml"
    original = 'hidden = "python3 -m pytest -q -p no:cacheprovider --junitxml={junit} hidden_tests"'
    assert original in toml.read_text()
    toml.write_text(toml.read_text().replace(original, f'hidden = "{hidden}"'))
    return load_template(folder)


@pytest.mark.parametrize(("hidden", "reason"), [
    ("no-such-test-runner --junit {junit}", "command not found"),
    ("python3 -m no_such_runner --junitxml={junit} hidden_tests", "no module `no_such_runner`"),
])
def test_broken_machinery_is_infrastructure_never_the_candidates_fault(
        bundles: dict[str, Bundle], backend: DockerBackend, image: str, tmp_path: Path, hidden: str,
        reason: str) -> None:
    result = _grade(bundles["careful"], backend, image, _variant(tmp_path, hidden))
    assert result.status == "infra_error" and result.fraction is None and result.criteria == []
    assert reason in result.summary


def test_a_run_that_writes_no_results_is_a_failure_with_an_alert_not_infrastructure(
        bundles: dict[str, Bundle], backend: DockerBackend, image: str, tmp_path: Path) -> None:
    # The runner was found before the candidate's code was there: whatever happened next is theirs.
    result = _grade(bundles["careful"], backend, image, _variant(tmp_path, "true"))
    assert result.status == "ok" and result.score == 0.0
    assert result.details["missing_results"][0]["run"] == "hidden"
    assert "no JUnit XML was written" in result.details["missing_results"][0]["message"]


def test_a_missing_image_is_infrastructure(bundles: dict[str, Bundle], backend: DockerBackend) -> None:
    result = _grade(bundles["careful"], backend, "trial-tpl-never-built:0")
    assert result.status == "infra_error" and "trial-tpl-never-built" in result.summary


def test_a_leftover_verifier_is_replaced_by_a_fresh_one(bundles: dict[str, Bundle], backend: DockerBackend,
                                                        image: str) -> None:
    trial_id = str(bundles["careful"].trial["id"])
    import time

    from graders.verifier import STALE_AFTER_S

    # Named as a grader that died long ago left it: the next grade of the trial removes it, never reuses it.
    left_at = f"{int(time.time()) - STALE_AFTER_S - 60:x}-dddddd"
    stale = backend.start(backend.create(SandboxSpec(trial_id=trial_id, image=image, role="verifier",
                                                     network_disabled=True, command=("sleep", "infinity"),
                                                     user="1000:1000", workdir="/", read_only_root=False,
                                                     name_suffix=left_at)))
    # A stale verifier must not be reused: this conftest would make every test in it error.
    planted = backend.exec(stale, ["sh", "-c", "mkdir -p /workspace && printf '%s\\n' 'import pytest' "
                                   "'@pytest.fixture(autouse=True)' 'def _stale():' "
                                   "'    raise RuntimeError(\"stale verifier\")' > /workspace/conftest.py"],
                           user="0:0")
    assert planted.ok, planted.stderr
    result = _grade(bundles["careful"], backend, image)
    assert result.fraction == 1.0


def test_the_hidden_files_are_out_of_the_test_uids_reach_and_checksummed(backend: DockerBackend, image: str) -> None:
    from graders.verifier import AS_ROOT, AS_TESTS, Job, Verifier, workspace_tar

    source = b"def test_a():\n    pass\n"
    job = Job("hidden", "true", 60, workspace_tar(None, {}, {"test_a.py": source}, "hidden_tests"),
              {"hidden_tests/test_a.py": source}, sealed=("hidden_tests",))
    with Verifier(backend, image, "t-inventory") as verifier:
        verifier.load(job.workspace)
        assert verifier.inventory(job) == []
        for attempt in ("echo x >> hidden_tests/test_a.py", "mv hidden_tests elsewhere",
                        "touch hidden_tests/conftest.py", "rm -rf hidden_tests", "mkdir .hidden && echo x > .hidden/y",
                        "chmod 777 hidden_tests"):
            code, out = verifier._exec(["sh", "-c", attempt], user=AS_TESTS, workdir="/workspace")
            assert code != 0, (attempt, out)
        assert verifier.inventory(job) == []
        # Root alone could: and the after-run check names what changed and what was planted.
        verifier._exec(["sh", "-c", "echo x >> hidden_tests/test_a.py && touch hidden_tests/conftest.py"],
                       user=AS_ROOT, workdir="/workspace")
        problems = {p["path"]: p["found"] for p in verifier.inventory(job)}
    assert set(problems) == {"hidden_tests/test_a.py", "hidden_tests/conftest.py"}
    assert problems["hidden_tests/test_a.py"].startswith("sha256 ")
    assert backend.find("t-inventory", "verifier") is None
