"""`trial grade ID [--post]`."""

from __future__ import annotations

import click

from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out, progress
from orchestrator.grading import grade as grade_trial
from orchestrator.report.access import report_url


@click.command()
@click.argument("trial_id")
@click.option("--post", is_flag=True, help="Create or update the report comment on the candidate's PR.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
@pass_state
@click.pass_context
def grade(ctx: click.Context, state: CliState, trial_id: str, post: bool, as_json: bool) -> None:
    """Run the graders on a collected trial's evidence and write report.json/md/html."""
    services = state.services
    with progress("grading", quiet=as_json) as say:
        services.progress = say
        outcome = grade_trial(services, trial_id, post=post)
    link = report_url(services.settings, services.store, outcome.trial_id)
    if as_json:
        emit_json("grade", {**outcome.to_json(), "report_url": link})
    else:
        report = outcome.report
        out.print(f"[bold]graded[/] {outcome.trial_id}: overall {report.get('overall', {}).get('percent', '?')}")
        for result in report.get("graders", []):
            out.print(f"  {result['grader']}: {result['status']} — {result.get('summary', '')}")
        for name, path in outcome.to_json()["files"].items():
            out.print(f"  {name}: {path}")
        if link:
            out.print(f"  reviewers' link: {link} (served by `trial serve`)")
        elif services.settings.review.report_links:
            out.print("  reviewers' link: none; set [review] report_base_url to where reviewers reach `trial serve`")
        if outcome.comment_url:
            out.print(f"  posted: {outcome.comment_url}")
    if outcome.exit_code:
        ctx.exit(int(outcome.exit_code))
