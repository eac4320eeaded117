"""`trial templates check NAME`: prove a template before any candidate sees it.

Each fact from fresh verifier containers from the template's own image, the same runs the
hidden-tests grader makes (graders.hidden_tests), in the template's shape: the image builds;
the starter's tests pass on the starter; the hidden tests' FAIL_TO_PASS ids fail on the
starter (and its PASS_TO_PASS ids pass); with the reference solution applied, the starter's
tests and every listed hidden test pass; the planted defect's tests fail on the starter and on
the reference with reference/defect.patch applied (the fix taken back out, so the tests catch
the defect itself and not only a missing feature); and on each, the runs show no sign of tampering
(for a library template: its per-run canaries come back as written, which proves the
hidden command collects them and leaves nothing out).

The three trees (and, with --all, the templates) are checked side by side, RUN_SLOTS trees' runs at
once: each run still gets its own fresh containers, so nothing is shared but the machine's cores.
"""

from __future__ import annotations

import io
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from graders.hidden_tests import pass_to_pass_command, run_hidden_tests, run_starter_tests
from graders.junit import TestCase, lookup
from graders.verifier import Run, VerifierFailure, run_command, workspace_tar
from orchestrator.agents import get_agent
from orchestrator.catalog import Template, require_complete
from orchestrator.errors import TemplateError, TrialError
from orchestrator.services import Services

RUN_SLOTS = 2
"""Trees whose tests run at once, across every check in this process: each verifier container has a one-CPU
quota (SandboxSpec.cpus), so one run at a time leaves one of CI's two cores idle, and more would only queue."""
_RUN_SLOTS = threading.BoundedSemaphore(RUN_SLOTS)
_STOPPING = threading.Event()
"""Set when the caller is interrupted (Ctrl-C): trees waiting for a slot are not started."""
T = TypeVar("T")


class _Stopped(Exception):
    """A tree not started because the check was interrupted (never reported: the interrupt goes on)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class TemplateCheck:
    template: str
    image: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "image": self.image, "ok": self.ok,
                "checks": [check.to_json() for check in self.checks]}


def tree_tar(folder: Path) -> bytes:
    """A tar of a folder's files, paths relative to it (what `git archive` would give)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".git" not in path.relative_to(folder).parts and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def reference_tree(template: Template, into: Path) -> Path:
    """The starter with reference/solution.patch applied by `git apply`, in a scratch folder."""
    if not template.reference_patch.is_file():
        raise TemplateError(f"{template.reference_patch} is missing",
                            "a template needs a reference solution as a patch against starter/")
    work = into / "reference"
    shutil.copytree(template.starter_dir, work)
    done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(template.reference_patch)], cwd=work,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TemplateError(f"{template.reference_patch} does not apply to starter/: "
                            f"{done.stderr.strip().splitlines()[-1:] or done.returncode}",
                            "regenerate the patch against the current starter")
    return work


def defect_tree(template: Template, reference: Path, into: Path) -> Path:
    """The reference with reference/defect.patch applied: the planted defect put back."""
    if not template.defect_patch.is_file():
        raise TemplateError(f"{template.defect_patch} is missing",
                            "add a patch against the reference that re-introduces the planted defect")
    work = into / "defect"
    shutil.copytree(reference, work)
    done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(template.defect_patch)], cwd=work,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TemplateError(f"{template.defect_patch} does not apply to the reference: "
                            f"{done.stderr.strip().splitlines()[-1:] or done.returncode}",
                            "regenerate it against starter/ + reference/solution.patch")
    return work


def _defect_check(label: str, template: Template, hidden_run: Run) -> Check:
    """The planted defect's tests must fail where the defect is (the starter, the reference with it back)."""
    ids = template.config.defect.tests if template.config.defect else ()  # require_complete: never empty
    if hidden_run.cases is None:
        return Check(f"defect's tests fail on the {label}", False, hidden_run.problem or "no results")
    status = _status(ids, hidden_run)
    passing = [t for t, outcome in status.items() if outcome in ("passed", "missing")]
    return Check(f"defect's tests fail on the {label}", not passing,
                 f"{len(status) - len(passing)}/{len(status)} fail"
                 + (f"; passing or missing: {', '.join(passing[:5])}" if passing else ""))


def _defect_put_back(services: Services, image: str, template: Template, label: str, tree: bytes) -> list[Check]:
    services.progress(f"hidden tests on the {label}")
    try:
        hidden_run = run_hidden_tests(services.sandbox, image, f"check-{secrets.token_hex(4)}", template, tree, {})
    except VerifierFailure as exc:
        return [Check(f"tests on the {label}", False, str(exc))]
    return [_defect_check(label, template, hidden_run), _trust(label, template.config.tests.shape, [hidden_run])]


def _outcome(case: TestCase | None) -> str:
    return case.outcome if case else "missing"


def _status(ids: tuple[str, ...], run: Run) -> dict[str, str]:
    return {test_id: _outcome(lookup(run.cases or {}, test_id)) for test_id in ids}


def check_template(services: Services, name: str) -> TemplateCheck:
    _STOPPING.clear()  # cleared here and in check_all only, never in a worker: an interrupt must stay seen
    return _check_template(services, name)


def _check_template(services: Services, name: str) -> TemplateCheck:
    from orchestrator.sandbox.images import build_sandbox_image

    if _STOPPING.is_set():  # a template picked up as the interrupt came: not even its image
        raise _Stopped(f"not checked: interrupted before {name}")
    template = services.catalog.get(name)
    result = TemplateCheck(template.name)
    try:
        require_complete(template)
    except TemplateError as exc:
        result.checks.append(Check("template.toml", False, exc.one_line()))
        return result
    result.checks.append(Check("template.toml", True, f"{template.config.title} ({template.config.language}, "
                               f"{template.config.track} track, {template.config.tests.shape})"))
    services.sandbox.ping()
    try:
        image = build_sandbox_image(services.sandbox, template, get_agent("none"), services.settings,
                                    progress=services.progress)
    except TrialError as exc:
        result.checks.append(Check("image builds", False, exc.one_line()))
        return result
    result.image = image.tag
    result.checks.append(Check("image builds", True, image.tag))
    with tempfile.TemporaryDirectory(prefix="trial-check-") as tmp:
        try:
            reference = reference_tree(template, Path(tmp))
        except TemplateError as exc:
            result.checks.append(Check("reference applies", False, exc.one_line()))
            reference = None
        trees = [("starter", tree_tar(template.starter_dir))]
        if reference is not None:
            trees.append(("reference", tree_tar(reference)))
            try:
                trees.append(("reference with the defect put back",
                              tree_tar(defect_tree(template, reference, Path(tmp)))))
            except TemplateError as exc:
                result.checks.append(Check("defect patch applies", False, exc.one_line()))
        # The trees' runs are independent (each in fresh verifiers under its own trial id): they run side by
        # side within RUN_SLOTS, and their checks are listed in the trees' order whatever finishes first.
        for checks in _side_by_side([partial(_tree_checks, services, image.tag, template, label, tree)
                                     for label, tree in trees]):
            result.checks += checks
    return result


def _tree_checks(services: Services, image: str, template: Template, label: str, tree: bytes) -> list[Check]:
    """Every check on one tree (the starter, the reference, the reference with the defect put back)."""
    with _RUN_SLOTS:
        if _STOPPING.is_set():
            raise _Stopped(f"not checked: interrupted before the tests on the {label}")
        if label.endswith("put back"):
            return _defect_put_back(services, image, template, label, tree)
        tests = template.config.tests
        services.progress(f"tests on the {label}")
        try:
            # Its own verifier names: two checks of one template may run at once.
            trial_id = f"check-{secrets.token_hex(4)}"
            starter_run = run_command(services.sandbox, image, trial_id,
                                      workspace_tar(tree, {}, {}, tests.hidden_dir), tests.starter, tests.timeout_s)
            hidden_run = run_hidden_tests(services.sandbox, image, trial_id, template, tree, {})
            runs = [hidden_run, *_starter_runs(services, image, trial_id, template, tree)]
        except VerifierFailure as exc:
            return [Check(f"tests on the {label}", False, str(exc))]
    # PASS_TO_PASS ids outside the hidden folder are the starter's own: the starter run covers them.
    hidden_p2p = tuple(t for t in tests.pass_to_pass if t.startswith(tests.hidden_dir.strip("/") + "/"))
    checks = _judge(label, tests.fail_to_pass, hidden_p2p, starter_run, hidden_run)
    if label == "starter":
        checks.append(_defect_check(label, template, hidden_run))
    checks.append(_trust(label, template.config.tests.shape, runs))
    return checks


def check_all(services: Services) -> list[TemplateCheck]:
    """Every template in the catalog, in its order; each builds its own image, and two are checked at
    once (their test runs share RUN_SLOTS: while one builds or waits on the engine, another runs)."""
    _STOPPING.clear()
    return _side_by_side([partial(_check_one, services, name) for name in services.catalog.names()], RUN_SLOTS)


def _check_one(services: Services, name: str) -> TemplateCheck:
    try:
        return _check_template(services, name)
    except TemplateError as exc:  # a template that does not load is one failed check, not the end
        return TemplateCheck(name, checks=[Check("template.toml", False, exc.one_line())])


def _side_by_side(work: list[Callable[[], T]], at_once: int | None = None) -> list[T]:
    """Each piece of work's result, in the list's order, with up to `at_once` (default: all) under way.
    On an error, work not started is dropped; on an interrupt, so is every tree still waiting for a slot.
    Runs under way end as they would alone (their verifier containers removed) before the error goes on."""
    pool = ThreadPoolExecutor(max_workers=max(1, at_once or len(work)), thread_name_prefix="check")
    try:
        return [future.result() for future in [pool.submit(piece) for piece in work]]
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C: what waits for a slot, in nested work too, stays undone
            _STOPPING.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _starter_runs(services: Services, image: str, trial_id: str, template: Template, tree: bytes) -> list[Run]:
    """The grader's run of the starter's own PASS_TO_PASS tests, when the template names any."""
    tests = template.config.tests
    starter_ids = tuple(t for t in tests.pass_to_pass if not t.startswith(tests.hidden_dir.strip("/") + "/"))
    command = pass_to_pass_command(template, {}) if starter_ids else None
    if command is None:
        return []
    files = tuple(sorted({test_id.split("::", 1)[0] for test_id in starter_ids}))
    return [run_starter_tests(services.sandbox, image, trial_id, template, tree, {}, command, files, starter_ids)]


def _trust(label: str, shape: str, runs: list[Run]) -> Check:
    """On honest code the runs must look honest: a false alarm here would be one on every candidate."""
    problems = [f"{entry['kind']}: {entry['message']}" for run in runs for entry in run.tampering]
    problems += [str(run.missing["message"]) for run in runs if run.missing]
    what = "canaries come back as written" if shape == "library" else "results come from the tests' container"
    return Check(f"results can be trusted on the {label}", not problems,
                 "; ".join(problems)[:600] if problems else f"{shape} shape: {what}, hidden files unchanged")


def _judge(label: str, f2p: tuple[str, ...], p2p: tuple[str, ...], starter_run: Run,
           hidden_run: Run) -> list[Check]:
    checks = [Check(f"starter tests pass on the {label}", starter_run.exit_code == 0,
                    f"`{starter_run.command}` exited {starter_run.exit_code}"
                    + ("" if starter_run.exit_code == 0 else f": {starter_run.output_tail[-300:].strip()}"))]
    if hidden_run.cases is None:
        return [*checks, Check(f"hidden tests on the {label}", False, hidden_run.problem or "no results")]
    f2p_status = _status(f2p, hidden_run)
    p2p_status = _status(p2p, hidden_run)
    kept = [t for t, outcome in p2p_status.items() if outcome == "passed"]
    if label == "starter":
        passing = [t for t, outcome in f2p_status.items() if outcome in ("passed", "missing")]
        checks.append(Check("hidden tests fail on the starter", not passing,
                            f"{len(f2p) - len(passing)}/{len(f2p)} FAIL_TO_PASS fail"
                            + (f"; passing or missing: {', '.join(passing[:5])}" if passing else "")))
    else:
        failing = [t for t, outcome in f2p_status.items() if outcome != "passed"]
        checks.append(Check("hidden tests pass with the reference", not failing,
                            f"{len(f2p) - len(failing)}/{len(f2p)} FAIL_TO_PASS pass"
                            + (f"; not passing: {', '.join(failing[:5])}" if failing else "")))
    if p2p_status:
        broken = [t for t in p2p_status if t not in kept]
        checks.append(Check(f"PASS_TO_PASS pass on the {label}", not broken,
                            f"{len(kept)}/{len(p2p_status)} pass"
                            + (f"; not: {', '.join(broken[:5])}" if broken else "")))
    return checks
