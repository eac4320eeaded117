"""`trial templates check` schedules its trees' runs side by side (template_check.RUN_SLOTS at most, across
every template of `--all`) and reports exactly as a one-after-the-other check would: templates in the
catalog's order, each template's checks in the trees' order. The runs themselves are stood in for here
(what each run proves is test_template_check_all.py's, on real Docker); this is the scheduling alone."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from graders.junit import Outcome, TestCase, node_key
from graders.verifier import Run
from orchestrator import template_check
from orchestrator.catalog import Template
from orchestrator.config import load_settings
from orchestrator.sandbox.base import ImageRef
from orchestrator.sandbox.images import SandboxImage
from orchestrator.services import Services

pytestmark = pytest.mark.unit


class _Engine:
    def ping(self) -> None:
        return None


class _Runs:
    """Stand-ins for the verifier runs: each takes a moment, counts who else runs, and passes or fails as
    the tree's label says (hidden tests fail on the starter, pass elsewhere), so every check is reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.started: list[str] = []

    def _run(self, what: str, command: str, cases: dict[str, Any] | None) -> Run:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.started.append(what)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return Run(command, 0, 0.05, "", cases)

    def command(self, _sandbox: object, _image: str, trial_id: str, _workspace: bytes, command: str,
                _timeout_s: int) -> Run:
        return self._run(f"plain {trial_id}", command, None)

    def hidden(self, _sandbox: object, _image: str, trial_id: str, template: Template, tree: bytes,
               _replace: dict[str, str | None]) -> Run:
        tests = template.config.tests
        outcome: Outcome = "failed" if tree == template_check.tree_tar(template.starter_dir) else "passed"
        cases = {node_key(t): TestCase(node_key(t), outcome, "") for t in tests.fail_to_pass}
        cases.update({node_key(t): TestCase(node_key(t), "passed", "") for t in tests.pass_to_pass})
        return self._run(f"hidden {trial_id}", tests.hidden, cases)


def test_check_all_runs_two_trees_at_once_and_reports_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _Runs()
    image = SandboxImage(ImageRef("tpl:x", "1"), ImageRef("sandbox:x", "2"))
    monkeypatch.setattr("orchestrator.sandbox.images.build_sandbox_image", lambda *_a, **_k: image)
    monkeypatch.setattr(template_check, "run_command", runs.command)
    monkeypatch.setattr(template_check, "run_hidden_tests", runs.hidden)
    services = Services.from_settings(load_settings(), sandbox=_Engine())  # type: ignore[arg-type]
    try:
        results = template_check.check_all(services)
    finally:
        services.close()
    names = services.catalog.names()
    assert [r.template for r in results] == names
    assert runs.most == template_check.RUN_SLOTS  # side by side, and never more
    assert len(runs.started) == 5 * len(names)  # every run made, none twice: plain + hidden on two trees, one more
    for result in results:
        checked = [c.name for c in result.checks]
        assert checked[:2] == ["template.toml", "image builds"]
        assert checked.index("starter tests pass on the starter") < checked.index(
            "starter tests pass on the reference") < checked.index(
            "defect's tests fail on the reference with the defect put back"), checked
        assert checked.index("hidden tests fail on the starter") < checked.index(
            "defect's tests fail on the starter") < checked.index("results can be trusted on the starter"), checked


def test_an_interrupted_check_starts_no_more_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during `check --all`: the runs under way end (their containers removed), nothing else starts."""
    runs = _Runs()
    image = SandboxImage(ImageRef("tpl:x", "1"), ImageRef("sandbox:x", "2"))
    monkeypatch.setattr("orchestrator.sandbox.images.build_sandbox_image", lambda *_a, **_k: image)

    def interrupting(*args: Any) -> Run:
        if not runs.started:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)  # Ctrl-C
        return runs.command(*args)

    monkeypatch.setattr(template_check, "run_command", interrupting)
    monkeypatch.setattr(template_check, "run_hidden_tests", runs.hidden)
    services = Services.from_settings(load_settings(), sandbox=_Engine())  # type: ignore[arg-type]
    try:
        with pytest.raises(KeyboardInterrupt):
            template_check.check_all(services)
    finally:
        services.close()
    # The two trees under way finish their runs (two each at most); no other tree, no other template starts.
    assert len(runs.started) <= 2 * template_check.RUN_SLOTS, runs.started
    assert runs.now == 0
