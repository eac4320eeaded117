"""The web template (trial_templates/web): its test ids name real tests, and its JUnit reporter
(bookworm's Node 18 has none built in) writes XML the hidden-tests grader reads back as those ids.

The template's full proof (image, starter, hidden tests on starter / reference / reference with
the defect put back) is `trial templates check --all` in tests/integration/test_template_check_all.py.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from graders.junit import lookup, parse_junit
from orchestrator.catalog import load_template, require_complete
from orchestrator.config import load_settings
from orchestrator.sandbox import instance_id
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.sandbox.images import template_request
from tests.conftest import BASE_IMAGE, REPO_ROOT

WEB = REPO_ROOT / "trial_templates" / "web"
HIDDEN_FILE = "hidden_tests/board.test.mjs"


@pytest.mark.unit
def test_every_listed_id_names_a_hidden_test_and_every_hidden_test_is_listed() -> None:
    template = load_template(WEB)
    require_complete(template)
    tests = template.config.tests
    assert tests.shape == "service"
    names = re.findall(r'^test\("([^"]+)"', (WEB / HIDDEN_FILE).read_text(), re.MULTILINE)
    listed = [*tests.fail_to_pass, *tests.pass_to_pass]
    assert sorted(listed) == sorted(f"{HIDDEN_FILE}::{name}" for name in names)
    assert len(set(listed)) == len(listed)
    assert template.config.defect is not None
    assert set(template.config.defect.tests) <= set(tests.fail_to_pass)


SAMPLE = """
import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
test("plain_pass", () => {});
test('fails <with> & "quotes"', () => { assert.equal(1, 2, "one is not two"); });
test("skipped_one", { skip: true }, () => {});
describe("outer", () => { it("inner", () => {}); });
"""


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def node_image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The template's own image (Debian's nodejs), the same tag `templates check` builds."""
    home = tmp_path_factory.mktemp("web-home")
    settings = load_settings(env={"TRIAL_HOME": str(home), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE}, cwd=home)
    backend = DockerBackend(settings.sandbox, instance=instance_id(settings))
    with tempfile.TemporaryDirectory() as workdir:
        return backend.build(template_request(load_template(WEB), BASE_IMAGE, Path(workdir))).tag


@pytest.fixture
def container(node_image: str) -> Iterator[docker.models.containers.Container]:
    client = docker.from_env()
    box = client.containers.create(node_image, ["sleep", "120"], network_mode="none", working_dir="/w",
                                   labels={"trial.test": "web-junit-reporter"},
                                   name=f"web-reporter-{uuid.uuid4().hex[:8]}")
    try:
        box.start()
        yield box
    finally:
        box.remove(force=True)


@pytest.mark.docker
def test_the_junit_reporter_names_cases_as_the_template_ids(container: docker.models.containers.Container) -> None:
    reporter = (WEB / "hidden_tests" / "junit_reporter.mjs").read_text()
    container.exec_run(["mkdir", "-p", "/w/hidden_tests"])
    container.put_archive("/w/hidden_tests", _tar({"junit_reporter.mjs": reporter, "sample.test.mjs": SAMPLE,
                                                   "broken.test.mjs": "this is not javascript (\n"}))
    result = container.exec_run(["node", "--test", "--test-reporter=./hidden_tests/junit_reporter.mjs",
                                 "--test-reporter-destination=/w/junit.xml",
                                 "hidden_tests/sample.test.mjs", "hidden_tests/broken.test.mjs"])
    assert result.exit_code == 1, result.output.decode()[-2000:]  # a test failed: the run says so
    stream, _ = container.get_archive("/w/junit.xml")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("junit.xml")
        assert member is not None
        cases = parse_junit(member.read().decode())

    def outcome(test_id: str) -> str:
        case = lookup(cases, test_id)
        assert case is not None, (test_id, sorted(cases))
        return case.outcome

    assert outcome("hidden_tests/sample.test.mjs::plain_pass") == "passed"
    assert outcome('hidden_tests/sample.test.mjs::fails <with> & "quotes"') == "failed"
    failed = lookup(cases, 'hidden_tests/sample.test.mjs::fails <with> & "quotes"')
    assert failed is not None and "one is not two" in failed.message
    assert outcome("hidden_tests/sample.test.mjs::skipped_one") == "skipped"
    assert outcome("hidden_tests/sample.test.mjs::outer > inner") == "passed"
    # A file that does not load is an error of its own, so its tests cannot go missing unseen.
    assert outcome("hidden_tests/broken.test.mjs::(load)") == "error"
