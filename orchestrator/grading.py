"""`trial grade`: verify the bundle, run the template's rubric, write the reports, post to the PR.

Grading needs nothing but the bundle (and, for hidden tests, a fresh verifier container
from the trial's image), so it can run again at any time and gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import EvidenceError, ExitCode, StateError
from orchestrator.evidence.bundle import Bundle
from orchestrator.forge.base import RepoRef
from orchestrator.report.access import report_url
from orchestrator.services import Services

REPORT_MARKER = "<!-- trial-report -->"


@dataclass
class GradeOutcome:
    trial_id: str
    bundle: Path
    report: dict[str, Any]
    comment_url: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        results = self.report.get("graders", [])
        if any(r.get("status") == "infra_error" for r in results):
            return ExitCode.PARTIAL
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "bundle": str(self.bundle), "report": self.report,
                "comment_url": self.comment_url,
                "files": {name: str(self.bundle / name) for name in ("report.json", "report.md", "report.html")
                          if (self.bundle / name).exists()}}


def grade(services: Services, trial_id: str, *, post: bool = False) -> GradeOutcome:
    store = services.store
    trial = store.get_trial(trial_id)
    from graders.base import GradeContext
    from graders.runner import grade_bundle

    if trial.state not in ("collected", "graded", "closed"):
        raise StateError(f"trial {trial.id} is {trial.state}; grade needs a collected trial",
                         f"run `trial collect {trial.id}` first")
    bundle = Bundle(services.settings.evidence_dir / trial.id)
    problems = bundle.verify()
    if problems:
        raise EvidenceError(f"evidence bundle of {trial.id} fails its manifest: {problems[0]}"
                            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                            "the bundle was changed after collect; re-collect from the forge or restore it")
    template = services.catalog.get(trial.template)
    context = GradeContext(template=template, sandbox=services.sandbox, image=trial.data.get("image"))
    report = grade_bundle(bundle, template, context, html_url=report_url(services.settings, store, trial.id))
    data = report.to_json()
    comment_url = None
    if post:
        comment_url = post_report(services, trial.data.get("repo"), bundle, data)
    if trial.state != "closed":
        store.update_trial(trial.id, state="graded")
    store.add_event(trial.id, "trial.graded", {"comment_url": comment_url})
    return GradeOutcome(trial.id, bundle.path, data, comment_url)


def post_report(services: Services, repo_data: dict[str, Any] | None, bundle: Bundle,
                report: dict[str, Any]) -> str | None:
    from orchestrator.report.post import post_report as post

    if not repo_data:
        raise StateError("this trial has no repository to post to")
    pulls = bundle.pulls()
    if not pulls:
        raise StateError("the candidate opened no pull request: nothing to post the report on",
                         "read report.md in the bundle instead")
    newest = pulls[-1]
    repo = RepoRef.from_json(repo_data)
    markdown = (bundle.path / "report.md").read_text()
    url: str = post(services.forge, repo, newest["number"], markdown)
    # A GitHub App can also show the grade as a check on the PR's head; others have no checks.
    check_run = getattr(services.forge, "post_check_run", None)
    if callable(check_run) and newest.get("head_sha"):
        overall = report.get("overall", {}).get("percent", "?")
        check_run(repo, newest["head_sha"], name="trial report", conclusion="neutral",
                  title=f"Trial report: overall {overall}", summary=f"{markdown[:60000]}\n\n[Report comment]({url})")
    return url
