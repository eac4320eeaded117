"""`trial cohort launch|status|collect|grade|teardown|report|ls`: parse, call orchestrator.cohort, render."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator import cohort as cohorts
from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, err, out
from orchestrator.errors import ExitCode

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
parallel_option = click.option("--parallel", type=click.IntRange(min=1), default=cohorts.DEFAULT_PARALLEL,
                               show_default=True, help="Trials worked on at once.")
FINAL = ("launched", "resumed", "exists", "failed", "collected", "graded", "closed")


@click.group()
def cohort() -> None:
    """Many candidates from one file: launch, then status, collect, grade, teardown and report together."""


@contextmanager
def _display(title: str, names: list[str], *, quiet: bool) -> Iterator[Callable[[str, str], None]]:
    """One line per candidate with what it is doing now, and a bar for the whole cohort; plain
    lines on stderr when not on a terminal; nothing with --json."""
    if quiet:
        yield lambda _who, _what: None
        return
    if not err.is_terminal:
        def say(who: str, what: str) -> None:
            err.print(f"[dim]·[/dim] {who}: {what}", markup=True, highlight=False)
        yield say
        return
    lock = threading.Lock()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        total = bar.add_task(f"[bold]{title}", total=len(names))
        tasks: dict[str, TaskID] = {name: bar.add_task(f"  {name}", total=1, start=False) for name in names}
        finished: set[str] = set()

        def update(who: str, what: str) -> None:
            with lock:
                task = tasks.get(who)
                if task is None:
                    return
                done = what.split(" ", 1)[0].rstrip(":") in FINAL
                bar.start_task(task)  # no-op once started; a finished task needs a start time
                bar.update(task, description=f"  {who}: {what}", completed=1 if done else 0)
                if done and who not in finished:
                    finished.add(who)
                    bar.advance(total)
        yield update


@cohort.command("launch")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Cohort name (default: [cohort] name in a TOML file, else the file's name).")
@click.option("--template", help="Template for rows that name none.")
@click.option("--agent", help="Agent for rows that name none.")
@click.option("--hours", type=float, help="Trial length for rows that name none.")
@click.option("--budget", "budget_usd", type=float, help="LLM budget (USD) for rows that name none.")
@click.option("--provider", help="Model source for rows that name none (anthropic, openai, script:FILE).")
@click.option("--again", is_flag=True,
              help="Launch even for candidates with a live trial of the template outside this cohort.")
@parallel_option
@json_option
@pass_state
def launch(state: CliState, file: Path, name: str | None, template: str | None, agent: str | None,
           hours: float | None, budget_usd: float | None, provider: str | None, again: bool, parallel: int,
           as_json: bool) -> None:
    """Launch a trial for every candidate in FILE (CSV or TOML) that has none in the cohort yet.

    \b
    CSV: a header row naming the columns, then one candidate per row:
      candidate,template,agent,hours,budget,ssh_keys
      octocat,api-keys,claude-code,4,10,keys/octocat.pub
    TOML: [cohort] name = "spring"; [defaults] template = "api-keys" (any field
    but candidate); then one [[candidates]] table per candidate with the same fields.
    Fields: candidate, template or track, agent, hours, budget, ssh_keys (key lines or
    .pub files relative to FILE, ';' between them), provider. An empty cell takes the
    flag below, then [defaults], then the template's own value.

    \b
    The whole file is checked first; nothing is launched if a row is bad. Run it again after
    a failure or an interruption: existing trials are kept, half-made ones resume, the rest launch.
    """
    services = state.services
    plan = cohorts.read_plan(services, file, name=name, defaults=cohorts.Defaults(
        template=template, agent=agent, hours=hours, budget_usd=budget_usd, provider=provider))
    with _display(f"cohort {plan.name}", [row.candidate for row in plan.rows], quiet=as_json) as update:
        result = cohorts.launch_cohort(services, plan, parallel=parallel, again=again, update=update)
    if as_json:
        emit_json("cohort launch", result.to_json())
    else:
        table = Table("row", "candidate", "result", "trial", "state", box=None)
        for row in result.outcomes:
            table.add_row(str(row.row), row.candidate, row.action, row.trial_id or "-", row.state or "-")
        out.print(table)
        counts = ", ".join(f"{n} {action}" for action, n in result.counts().items())
        out.print(f"[bold]cohort {result.cohort}[/]: {counts}")
        for row in result.failed:
            err.print(f"row {row.row} ({row.candidate}): {row.error}", markup=False)
        if result.failed:
            err.print("run the same command again to retry what failed", markup=False)
    if result.failed:
        click.get_current_context().exit(int(ExitCode.PARTIAL))


def _over(state: CliState, name: str, operation: str, parallel: int, as_json: bool, **options: object) -> None:
    services = state.services
    names = [t.candidate for t in cohorts.cohort_trials(services, name)]
    with _display(f"{operation} {name}", names, quiet=as_json) as update:
        run = cohorts.run_over_cohort(services, name, operation, parallel=parallel, update=update,
                                      **options)  # type: ignore[arg-type]
    if as_json:
        emit_json(f"cohort {operation}", run.to_json())
    else:
        table = Table("candidate", "trial", "state", "result", box=None)
        for item in run.outcomes:
            table.add_row(item.candidate, item.trial_id, item.state,
                          item.detail if item.ok else f"[red]{item.error}[/]")
        out.print(table if run.outcomes else f"cohort {name} has no trials")
        if run.report:
            out.print(f"cohort report: {run.report}")
    if run.failed:
        click.get_current_context().exit(int(ExitCode.PARTIAL))


@cohort.command("status")
@click.argument("name")
@parallel_option
@json_option
@pass_state
def status(state: CliState, name: str, parallel: int, as_json: bool) -> None:
    """Every trial of the cohort: state, sandbox, time left, overall score."""
    _over(state, name, "status", parallel, as_json)


@cohort.command("collect")
@click.argument("name")
@parallel_option
@json_option
@pass_state
def collect(state: CliState, name: str, parallel: int, as_json: bool) -> None:
    """Collect every trial of the cohort (each resumable; one failure does not stop the others)."""
    _over(state, name, "collect", parallel, as_json)


@cohort.command("grade")
@click.argument("name")
@click.option("--post", is_flag=True, help="Also post each report on its trial's pull request.")
@parallel_option
@json_option
@pass_state
def grade(state: CliState, name: str, post: bool, parallel: int, as_json: bool) -> None:
    """Grade every collected trial of the cohort, then write the cohort report."""
    _over(state, name, "grade", parallel, as_json, post=post)


@cohort.command("teardown")
@click.argument("name")
@click.option("--delete-repo", is_flag=True, help="Delete the repositories instead of archiving them.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@parallel_option
@json_option
@pass_state
def teardown(state: CliState, name: str, delete_repo: bool, yes: bool, parallel: int, as_json: bool) -> None:
    """Remove every trial's containers, volumes, tokens and repo (evidence is kept)."""
    live = [t for t in cohorts.cohort_trials(state.services, name) if t.state in ("active", "provisioning")]
    if live and not yes and not as_json:
        click.confirm(f"{len(live)} trials of cohort {name} are still running; tear them all down now?",
                      abort=True, err=True)
    _over(state, name, "teardown", parallel, as_json, repo_action="delete" if delete_repo else None)


@cohort.command("report")
@click.argument("name")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: cohorts/NAME/report.html in the data dir).")
@json_option
@pass_state
def report(state: CliState, name: str, out_file: Path | None, as_json: bool) -> None:
    """Write the cohort's comparison page: every candidate's scores, sortable, linking to each report."""
    from orchestrator.report.cohort import cohort_entries, write_cohort_report

    page = write_cohort_report(state.services, name, out_file)
    if as_json:
        emit_json("cohort report", {"cohort": name, "report": str(page),
                                    "trials": [e.to_json() for e in cohort_entries(state.services, name)]})
    else:
        out.print(f"cohort report: {page}")


@cohort.command("ls")
@json_option
@pass_state
def ls(state: CliState, as_json: bool) -> None:
    """List cohorts with how many trials each has, by state."""
    store = state.store
    rows = []
    for item in store.list_cohorts():
        states: dict[str, int] = {}
        for trial in store.list_trials(cohort=item.name):
            states[trial.state] = states.get(trial.state, 0) + 1
        rows.append({**item.to_json(), "states": states})
    if as_json:
        emit_json("cohort ls", rows)
        return
    if not rows:
        out.print("no cohorts yet — start one with `trial cohort launch FILE`")
        return
    table = Table("cohort", "trials", "states", "source", box=None)
    for row in rows:
        table.add_row(row["name"], str(sum(row["states"].values())),
                      ", ".join(f"{n} {s}" for s, n in sorted(row["states"].items())), row["source"])
    out.print(table)
