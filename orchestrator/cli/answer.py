"""`trial answer ID[:N] TEXT` and `trial questions ID`: the reviewer's side of the question channel."""

from __future__ import annotations

import click

from orchestrator import questions
from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.command()
@click.argument("answer_id", metavar="ID[:N]")
@click.argument("text")
@json_option
@pass_state
def answer(state: CliState, answer_id: str, text: str, as_json: bool) -> None:
    """Answer the candidate's question N of trial ID (no :N: the oldest unanswered one).

    The answer is logged with the host's time, posted to the brief issue, and reaches the
    sandbox (`trial-ask --wait`, `trial-answers`).
    """
    trial_id, number = questions.parse_answer_id(answer_id)
    services = state.services
    trial = services.store.get_trial(trial_id)
    record = questions.answer(services.settings.home, services.forge, trial, text, number)
    if as_json:
        emit_json("answer", {"trial_id": trial.id, **record})
        return
    where = f" ({record['comment_url']})" if record.get("comment_url") else ""
    out.print(f"answered question {record['question']} of {trial.id}{where}")


@click.command(name="questions")
@click.argument("trial_id", metavar="ID")
@json_option
@pass_state
def list_questions(state: CliState, trial_id: str, as_json: bool) -> None:
    """Show a trial's questions and answers (the host's log and the brief issue's comments)."""
    services = state.services
    trial = services.store.get_trial(trial_id)
    thread = questions.read_thread(services.settings.home, services.forge, trial)
    if as_json:
        emit_json("questions", thread.to_json())
        return
    for record in thread.records:
        label = f"Q{record['number']}" if record["kind"] == "question" else f"A{record.get('question')}"
        out.print(f"{record['ts']}  {label}  [{record['witness']}]  {record['text']}", markup=False)
    if not thread.records:
        out.print("no questions yet")
