"""`trial scores ID` and `trial scores --all --csv`: reviewers' scores beside the automatic ones."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.report.scores import TrialScores


@click.command()
@click.argument("trial_id", required=False)
@click.option("--all", "all_trials", is_flag=True, help="Every graded trial.")
@click.option("--cohort", help="Every graded trial of this cohort.")
@click.option("--csv", "as_csv", is_flag=True, help="One CSV row per score, on stdout.")
@click.option("--offline", is_flag=True, help="Read PR comments from the evidence bundle, not the forge.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
@pass_state
def scores(state: CliState, trial_id: str | None, all_trials: bool, cohort: str | None, as_csv: bool,
           offline: bool, as_json: bool) -> None:
    """Gather every reviewer's `/score` lines from the PR with the automatic scores.

    Only reviewers count ([review] reviewers; by default the repo's admins and maintainers
    on GitHub, the operator on the local forge); other lines are listed as ignored, with why.
    """
    if [bool(trial_id), all_trials, cohort is not None].count(True) != 1:
        raise UsageError("give one TRIAL_ID, --all or --cohort NAME",
                         "e.g. `trial scores 3f2a` or `trial scores --cohort spring --csv`")
    from orchestrator.report.scores import graded_trial_ids, to_csv, trial_scores  # heavy; only this command

    services = state.services
    if cohort is not None:
        services.store.get_cohort(cohort)
        graded = set(graded_trial_ids(services.settings, services.store))
        ids = [t.id for t in services.store.list_trials(cohort=cohort) if t.id in graded]
    else:
        ids = graded_trial_ids(services.settings, services.store) if all_trials else [str(trial_id)]
    forge = None if offline else services.forge
    results = [trial_scores(services.settings, services.store, ident, forge) for ident in ids]
    if as_csv:
        sys.stdout.write(to_csv(results))
    elif as_json:
        emit_json("scores", [r.to_json() for r in results])
    else:
        for result in results:
            _print(result)


def _print(result: TrialScores) -> None:
    out.print(f"[bold]{result.trial_id}[/] {result.candidate} · {result.template}", markup=True)
    if result.reviewers is not None:
        out.print(f"  reviewers: {result.reviewers.source}", markup=False)
    for key, line in result.summary().items():
        auto = f"{line['auto']:.0%}" if line["auto"] is not None else "—"
        human = f"{line['reviewers']:.0%} ({line['reviewer_count']})" if line["reviewers"] is not None else "—"
        out.print(f"  {key:<14} auto {auto:>5}   reviewers {human}", markup=False)
    for row in result.rows:
        if row.source == "reviewer":
            out.print(f"    {row.by}: {row.key} {row.score:g}/{row.max:g} {row.reason}", markup=False)
    for note in result.ignored:
        out.print(f"  ignored: {note}", markup=False)
