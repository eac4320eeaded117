"""Hidden tests: run the template's hidden tests against the graded commit, in fresh verifiers.

Never in the candidate's sandbox: each run gets a new container from the template image
(graders.verifier), with the candidate's tree at the graded SHA, the hidden tests and the
starter's own versions of the pass-to-pass test files and of any test-harness file the
candidate changed, all owned by root and read-only to the uid that runs the tests. Service
templates run the candidate's program in its own container and the tests in another; library
templates run the tests beside the code under per-run canaries. Results come from the JUnit
XML only; stdout is kept for reviewers but never scored, so printing "PASSED" earns nothing.

Scored: the template's FAIL_TO_PASS tests (they must now pass); its PASS_TO_PASS tests (they
must still pass) and collateral damage (graders.collateral), both in proportion to the share
of FAIL_TO_PASS tests that pass, so that changing nothing real earns nothing. Detected
tampering (a canary that came back wrong, a test missing, hidden files changed) scores the
whole grader 0 and lists its evidence under details["tampering"]; results missing after the
candidate's code ran are failures, listed under details["missing_results"]. Only a failure of
the machinery (no engine, the image missing, the runner not found before any of the
candidate's code was there) is an `infra_error`, never scored against the candidate.
"""

from __future__ import annotations

import posixpath
from typing import Any

from graders import rewritten_tests
from graders.base import Criterion, GradeContext, GraderResult
from graders.collateral import Collateral, find_collateral, kept_share, progress_credit
from graders.junit import TestCase, lookup
from graders.repo import Repo, TreeTooLarge, choose_revision, open_repo
from graders.runner_reach import find_reaches
from graders.verifier import (
    Job,
    Run,
    ServiceSpec,
    VerifierFailure,
    make_canaries,
    run_library,
    run_service,
    workspace_tar,
)
from orchestrator.catalog import Template
from orchestrator.errors import EvidenceError
from orchestrator.evidence.bundle import Bundle
from orchestrator.logging import get_logger
from orchestrator.sandbox.base import SandboxBackend

TRUSTS = {
    "library": ("The JUnit XML of fresh verifier containers from the trial image, holding the graded commit from the "
                "host-collected repo bundle; the hidden tests, per-run canaries and restored harness files are owned "
                "by root and checksummed by root before and after each run. The tests import the candidate's code, "
                "so that code runs in the test process: the canaries catch blanket forgery of the results, not a "
                "forgery of only the tests it knows by name (diffs that reach for the runner are flagged for "
                "review). Printed output never scores."),
    "service": ("The JUnit XML of the hidden tests' own container, which holds none of the candidate's code and "
                "reaches the candidate's program (the graded commit from the host-collected repo bundle, in another "
                "container) only over a private network made for the run; hidden files checksummed by root before "
                "and after. The starter's own tests, which import the code, run as in a library template. Printed "
                "output never scores."),
}
F2P_MAX, P2P_MAX, COLLATERAL_MAX = 6.0, 2.0, 2.0
log = get_logger(component="graders.hidden_tests")


def hidden_files(template: Template) -> dict[str, bytes]:
    root = template.hidden_tests_dir
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def pass_to_pass_command(template: Template, options: dict[str, Any]) -> str | None:
    """The command that runs the starter's tests writing JUnit XML, or None when we cannot know one."""
    configured = options.get("pass_to_pass_command")
    if isinstance(configured, str) and "{junit}" in configured:
        return configured
    starter = template.config.tests.starter
    if "{junit}" in starter:
        return starter
    if "pytest" in starter:
        return f"{starter} --junitxml={{junit}}"
    return None


def run_hidden_tests(sandbox: SandboxBackend, image: str, trial_id: str, template: Template, tree: bytes,
                     replace: dict[str, str | None]) -> Run:
    """The hidden tests against `tree`, in the template's shape (graders.verifier); VerifierFailure: infra."""
    tests = template.config.tests
    hidden = hidden_files(template)
    hidden_prefix = tests.hidden_dir.strip("/") + "/"
    protected = {hidden_prefix + path: data for path, data in hidden.items()}
    expected = tuple(t for t in (*tests.fail_to_pass, *tests.pass_to_pass) if t.startswith(hidden_prefix))
    if tests.shape == "service" and tests.service is not None:
        # The tests' container holds the hidden tests and nothing of the candidate's.
        job = Job("hidden", tests.hidden, tests.timeout_s, workspace_tar(None, {}, hidden, tests.hidden_dir),
                  protected, sealed=(tests.hidden_dir.strip("/"),), expected=expected)
        program = workspace_tar(tree, replace, {}, tests.hidden_dir)
        service = ServiceSpec(tests.service.command, tests.service.port, tests.service.ready_timeout_s, program)
        return run_service(sandbox, image, trial_id, job, service)
    canaries = make_canaries(tests.hidden_dir)
    protected.update(canaries.files)
    protected.update({path: content.encode() for path, content in replace.items() if content is not None})
    job = Job("hidden", tests.hidden, tests.timeout_s,
              workspace_tar(tree, replace, hidden, tests.hidden_dir, extra=canaries.files), protected,
              sealed=(tests.hidden_dir.strip("/"),), expected=expected, canaries=canaries)
    return run_library(sandbox, image, trial_id, job)

def run_starter_tests(sandbox: SandboxBackend, image: str, trial_id: str, template: Template, tree: bytes,
                      replace: dict[str, str | None], command: str, starter_files: tuple[str, ...],
                      starter_ids: tuple[str, ...]) -> Run:
    """The starter's own tests (they import the code whatever the shape), under canaries of their own."""
    tests = template.config.tests
    canaries = make_canaries(posixpath.dirname(starter_files[0]))
    protected = {path: content.encode() for path, content in replace.items() if content is not None}
    protected.update(canaries.files)
    job = Job("pass_to_pass", command, tests.timeout_s,
              workspace_tar(tree, replace, {}, tests.hidden_dir, extra=canaries.files), protected,
              expected=starter_ids, canaries=canaries)
    return run_library(sandbox, image, trial_id, job)


class HiddenTestsGrader:
    name = "hidden_tests"

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
        template = context.template
        if template is None:
            return self._infra("no template in the grading context: the hidden tests live in the template")
        if context.sandbox is None or not context.image:
            return self._infra("no sandbox backend or image in the grading context: hidden tests run in a "
                               "verifier container (is the Docker engine up?)")
        tests = template.config.tests
        hidden_prefix = tests.hidden_dir.strip("/") + "/"
        # Pass-to-pass ids under the hidden folder run with the hidden tests; the others are
        # the starter's own tests and need the starter's command.
        starter_ids = tuple(t for t in tests.pass_to_pass if not t.startswith(hidden_prefix))
        try:
            with open_repo(bundle) as repo:
                revision = choose_revision(bundle, repo)
                repo.check_tree(revision.sha)  # before any diff or archive reads the tree in full
                starter_files = tuple(sorted({test_id.split("::", 1)[0] for test_id in starter_ids}))
                collateral = find_collateral(repo, revision, tuple(template.config.scope), tests.hidden_dir,
                                             starter_files)
                reaches = find_reaches(repo, revision, tests.hidden_dir)
                tree = repo.archive(revision.sha)
                replace: dict[str, str | None] = dict(collateral.harness_restores)
                # Starter tests must keep passing as the starter wrote them, not as the candidate left them.
                for path in starter_files:
                    replace[path] = repo.show(revision.starter_sha, path)
                rewritten = _prepare_rewritten(bundle, repo, revision.starter_sha, revision.sha)
        except TreeTooLarge as exc:
            return self._too_large(exc, revision.to_json(), tests.fail_to_pass, bool(tests.pass_to_pass))
        except EvidenceError as exc:
            return self._infra(exc.one_line())
        trial_id = str(bundle.trial.get("id") or bundle.path.name)
        p2p_command = pass_to_pass_command(template, options) if starter_ids else None
        details: dict[str, Any] = {"revision": revision.to_json(), "image": context.image, "shape": tests.shape,
                                   "collateral": collateral.to_json(), "restored_before_run": sorted(replace),
                                   "reaches_for_test_runner": reaches, "trusts": TRUSTS[tests.shape]}
        try:
            hidden_run = run_hidden_tests(context.sandbox, context.image, trial_id, template, tree, replace)
            p2p_run = (run_starter_tests(context.sandbox, context.image, trial_id, template, tree, replace,
                                     p2p_command, starter_files, starter_ids) if p2p_command else None)
        except VerifierFailure as exc:
            return self._infra(str(exc), details)
        runs = [run for run in (hidden_run, p2p_run) if run is not None]
        details["hidden_run"] = hidden_run.to_json()
        if p2p_run:
            details["pass_to_pass_run"] = p2p_run.to_json()
        details["tampering"] = [entry for run in runs for entry in run.tampering]
        details["missing_results"] = [run.missing for run in runs if run.missing]
        details["rewritten_tests"] = _check_rewritten(rewritten, context.sandbox, context.image, trial_id, template,
                                                      tree)
        f2p = self._fail_to_pass(tests.fail_to_pass, hidden_run, details)
        criteria = [f2p]
        progress = f2p.score / f2p.max if f2p.max else 0.0
        if tests.pass_to_pass:
            criteria.append(self._pass_to_pass(tests.pass_to_pass, hidden_prefix, hidden_run, p2p_run,
                                               bool(starter_ids), progress, details))
        criteria.append(self._collateral(collateral, progress, details))
        summary = _summary(details, revision.sha, revision.source, collateral)
        if details["tampering"]:
            for criterion in criteria:
                criterion.score = 0.0
                criterion.rationale = "Results tampered with: scored 0 (see the alert). " + criterion.rationale
        return GraderResult(self.name, criteria=criteria, summary=summary + ".", details=details)

    # ----- scoring --------------------------------------------------------------------------------
    def _fail_to_pass(self, expected: tuple[str, ...], run: Run, details: dict[str, Any]) -> Criterion:
        cases = run.cases or {}
        ids = list(expected) or sorted(cases)
        outcomes = {test_id: _outcome(lookup(cases, test_id) if expected else cases.get(test_id)) for test_id in ids}
        passed = [t for t, o in outcomes.items() if o == "passed"]
        details["fail_to_pass"] = {"total": len(ids), "passed": len(passed), "outcomes": outcomes,
                                   "messages": _messages(cases, ids, outcomes)}
        failing = [t for t in ids if t not in passed]
        why = f"{len(passed)} of {len(ids)} must-pass hidden tests pass (JUnit XML)."
        if failing:
            why += " Failing: " + ", ".join(f"{t} ({outcomes[t]})" for t in failing[:8])
        if run.problem:
            why += f" {run.problem}."
        score = round(F2P_MAX * len(passed) / len(ids), 2) if ids else 0.0
        return Criterion("fail_to_pass", "Hidden tests now pass", score, F2P_MAX, why,
                         [f"test:{t}" for t in failing + passed][:30])

    def _pass_to_pass(self, expected: tuple[str, ...], hidden_prefix: str, hidden_run: Run, run: Run | None,
                      needs_starter_run: bool, progress: float, details: dict[str, Any]) -> Criterion:
        if needs_starter_run and run is None:
            details["pass_to_pass"] = {"total": len(expected), "passed": 0, "outcomes": {},
                                       "note": "no JUnit-writing starter command: set rubric option "
                                               "pass_to_pass_command"}
            return Criterion("pass_to_pass", "Starter tests still pass", 0.0, P2P_MAX,
                             "Not measured: the template's starter command writes no JUnit XML.", [])
        outcomes = {}
        for test_id in expected:
            source = hidden_run if test_id.startswith(hidden_prefix) else run
            outcomes[test_id] = _outcome(lookup(source.cases or {}, test_id) if source else None)
        passed = [t for t, o in outcomes.items() if o == "passed"]
        cases = {**(hidden_run.cases or {}), **((run.cases or {}) if run else {})}
        details["pass_to_pass"] = {"total": len(expected), "passed": len(passed), "outcomes": outcomes,
                                   "messages": _messages(cases, list(expected), outcomes)}
        broken = [t for t in expected if t not in passed]
        why = (f"{len(passed)} of {len(expected)} tests that passed on the starter still pass; credit scales "
               f"with the share of hidden tests that now pass ({progress:.0%}).")
        if broken:
            why += " Broken: " + ", ".join(f"{t} ({outcomes[t]})" for t in broken[:8])
        score = progress_credit(P2P_MAX, len(passed) / len(expected), progress)
        return Criterion("pass_to_pass", "Starter tests still pass", score, P2P_MAX, why,
                         [f"test:{t}" for t in broken + passed][:30])

    def _collateral(self, collateral: Collateral, progress: float, details: dict[str, Any]) -> Criterion:
        findings = collateral.findings
        kept = kept_share(collateral, COLLATERAL_MAX)  # tampering or weakened tests void it
        why = ("No collateral damage." if not findings else
               "; ".join(f"{key.replace('_', ' ')}: " + ", ".join(
                   item if isinstance(item, str) else str(item.get("path")) for item in value[:5])
                   for key, value in findings.items()))
        why += f" Credit scales with the share of hidden tests that now pass ({progress:.0%})."
        details["progress"] = round(progress, 4)
        return Criterion("collateral", "No collateral damage", progress_credit(COLLATERAL_MAX, kept, progress),
                         COLLATERAL_MAX, why, [])

    def _too_large(self, exc: TreeTooLarge, revision: dict[str, Any], expected: tuple[str, ...],
                   has_pass_to_pass: bool) -> GraderResult:
        """The candidate's tree is too big to run: their failure (not infrastructure), with an alert."""
        message = (f"The graded commit's tree expands to more than {exc.cap >> 20} MiB (every path's file "
                   "counted, one blob repeated at many paths counted each time): the hidden tests were not run. "
                   "Scored as failing.")
        missing = {"run": "hidden", "message": message,
                   "evidence": {"tree_bytes_at_least": exc.size, "cap_bytes": exc.cap, "sha": revision["sha"]}}
        criteria = [Criterion("fail_to_pass", "Hidden tests now pass", 0.0, F2P_MAX, message,
                              [f"test:{t}" for t in expected][:30])]
        if has_pass_to_pass:
            criteria.append(Criterion("pass_to_pass", "Starter tests still pass", 0.0, P2P_MAX, message, []))
        criteria.append(Criterion("collateral", "No collateral damage", 0.0, COLLATERAL_MAX, message, []))
        return GraderResult(self.name, criteria=criteria, summary=f"Not run: {message}",
                            details={"revision": revision, "missing_results": [missing], "tampering": [],
                                     "tree_too_large": missing["evidence"]})

    def _infra(self, message: str, details: dict[str, Any] | None = None) -> GraderResult:
        return GraderResult(self.name, status="infra_error", summary=f"Not graded (infrastructure): {message}",
                            details=details or {})


def _prepare_rewritten(bundle: Bundle, repo: Repo, starter_sha: str, sha: str) -> rewritten_tests.Compared | str:
    # Informs reviewers, scores nothing: whatever goes wrong here must not cost the hidden tests' result.
    try:
        return rewritten_tests.prepare(bundle.events(), repo, starter_sha, sha)
    except Exception as exc:  # a bug here is reported, never scored
        log.exception("rewritten_tests.prepare_failed")
        return f"not checked: {type(exc).__name__}: {exc}"


def _check_rewritten(compared: rewritten_tests.Compared | str, sandbox: SandboxBackend, image: str, trial_id: str,
                     template: Template, tree: bytes) -> dict[str, Any]:
    """graders.rewritten_tests: the agent's tests against the shipped ones on the shipped code (never scored)."""
    if isinstance(compared, str):
        return {"not_run": compared, "alerts": []}
    tests = template.config.tests
    try:
        return rewritten_tests.check(compared, tree, sandbox=sandbox, image=image, trial_id=trial_id,
                                     starter_command=tests.starter, hidden_dir=tests.hidden_dir,
                                     timeout_s=tests.timeout_s,
                                     reference=lambda: rewritten_tests.reference_tree(template))
    except Exception as exc:  # VerifierFailure or a bug: reported, never scored
        log.exception("rewritten_tests.check_failed")
        return {"not_run": f"not checked: {type(exc).__name__}: {exc}", "alerts": []}


def _summary(details: dict[str, Any], sha: str, source: str, collateral: Collateral) -> str:
    summary = f"{details['fail_to_pass']['passed']}/{details['fail_to_pass']['total']} hidden tests pass at " \
              f"{sha[:10]} ({source})"
    if "pass_to_pass" in details:
        summary += f"; {details['pass_to_pass']['passed']}/{details['pass_to_pass']['total']} starter tests kept"
    if collateral.findings:
        summary += "; collateral: " + ", ".join(key.replace("_", " ") for key in collateral.findings)
    if collateral.suspicious:
        summary += " (test harness tampered: restored before the run)"
    if details["missing_results"]:
        summary += "; results missing after the candidate's code ran (scored as failing)"
    if details["tampering"]:
        kinds = sorted({entry["kind"].replace("_", " ") for entry in details["tampering"]})
        summary = ("Hidden-test results were tampered with (" + ", ".join(kinds) + "): scored 0. The forged "
                   "results claimed " + summary)
    return summary


def _messages(cases: dict[str, TestCase], ids: list[str], outcomes: dict[str, str]) -> dict[str, str]:
    found = {}
    for test_id in ids:
        case = lookup(cases, test_id) if outcomes.get(test_id) != "passed" else None
        if case and case.message:
            found[test_id] = case.message
    return found


def _outcome(case: TestCase | None) -> str:
    return case.outcome if case else "not run"
