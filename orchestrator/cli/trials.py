"""Trial commands: launch, ls, status, shell, collect, teardown, gc. Parse, call, render."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from orchestrator import lifecycle
from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, err, out, progress
from orchestrator.errors import PrerequisiteError, UsageError

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.command()
@click.argument("template", required=False)
@click.option("--candidate", help="The candidate's GitHub login.")
@click.option("--hours", type=float, help="Trial length (default: the template's).")
@click.option("--agent", help="claude-code, codex, aider or none (default: the template's).")
@click.option("--budget", "budget_usd", type=float, help="LLM spend cap in USD (default: the template's).")
@click.option("--ssh-key", "ssh_key_files", multiple=True, type=click.Path(dir_okay=False),
              help="A public key file for the candidate (repeatable; on the local forge the only source).")
@click.option("--resume", "resume_id", metavar="ID", help="Resume a launch that failed, at its failed step.")
@click.option("--provider", help="Where the agent's models come from: anthropic, openai or script:FILE "
              "(default: the template's, else [gateway] provider).")
@click.option("--track", type=click.Choice(["builder", "specialist", "design"]),
              help="Launch the team's template for this track ([templates] default_for_track) instead of TEMPLATE.")
@click.option("--again", is_flag=True, help="Launch even if the candidate has a live trial of this template.")
@json_option
@pass_state
def launch(state: CliState, template: str | None, candidate: str | None, hours: float | None, agent: str | None,
           budget_usd: float | None, ssh_key_files: tuple[str, ...], resume_id: str | None, provider: str | None,
           track: str | None, again: bool, as_json: bool) -> None:
    """Launch a trial of TEMPLATE (or of the team's template for --track) for a candidate."""
    services = state.services
    if track is not None and not resume_id:
        if template:
            raise UsageError("give a TEMPLATE or --track, not both", f"e.g. trial launch --track {track} "
                             "--candidate octocat")
        template = services.settings.templates.default_for_track.get(track)  # type: ignore[call-overload]
        if template is None:
            raise UsageError(f"no default template for the {track} track",
                             f"set [templates] default_for_track = {{{track} = \"NAME\"}} in trial.toml, "
                             "or name the template")
    with progress("launching", quiet=as_json) as say:
        services.progress = say
        if resume_id:
            result = lifecycle.resume_launch(services, resume_id)
        else:
            if not template or not candidate:
                raise UsageError("launch needs a TEMPLATE and --candidate LOGIN",
                                 "e.g. trial launch api-keys --candidate octocat")
            keys = tuple(_read_key_file(path) for path in ssh_key_files)
            result = lifecycle.launch(services, lifecycle.LaunchRequest(
                template=template, candidate=candidate, hours=hours, agent=agent, budget_usd=budget_usd,
                ssh_keys=keys, provider=provider, again=again))
    if as_json:
        emit_json("launch", result.to_json())
        return
    trial = result.trial
    out.print(f"[bold green]launched[/] trial [bold]{trial.id}[/] — {trial.template} for {trial.candidate} "
              f"until {trial.deadline:%Y-%m-%d %H:%M} UTC" if trial.deadline else f"trial {trial.id}")
    out.print(f"  repo:   {result.repo_url}")
    out.print(f"  brief:  {result.issue_url}")
    out.print(f"  image:  {result.image}")
    if result.ssh_command:
        out.print(f"  ssh:    {result.ssh_command}")
        out.print("  host entry for ~/.ssh/config:")
        for line in (result.ssh_config or "").splitlines():
            out.print(f"    {line}")
    out.print(f"  shell:  trial shell {trial.id}")


def _read_key_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"--ssh-key {path}: {exc.strerror}", "pass a readable .pub file") from exc


@click.command("ls")
@click.option("--state", "states", multiple=True, help="Only trials in this state (repeatable).")
@click.option("--cohort", help="Only the trials of this cohort.")
@json_option
@pass_state
def ls(state: CliState, states: tuple[str, ...], cohort: str | None, as_json: bool) -> None:
    """List trials."""
    if cohort is not None:
        state.store.get_cohort(cohort)  # an unknown name is an error, not an empty list
    trials = state.store.list_trials(states, cohort=cohort)
    if as_json:
        emit_json("ls", [t.to_json() for t in trials])
        return
    if not trials:
        out.print("no trials yet — start one with `trial launch TEMPLATE --candidate LOGIN`")
        return
    from rich.table import Table  # rich only when a table is shown

    table = Table("id", "template", "candidate", "agent", "state", "deadline", box=None)
    for trial in trials:
        state_text = trial.state + (f" ({trial.failed_step})" if trial.failed_step else "")
        table.add_row(trial.id, trial.template, trial.candidate, trial.agent, state_text,
                      f"{trial.deadline:%Y-%m-%d %H:%M}" if trial.deadline else "-")
    out.print(table)


@click.command()
@click.argument("trial_id")
@json_option
@pass_state
def status(state: CliState, trial_id: str, as_json: bool) -> None:
    """Show one trial: state, steps, sandbox, time left, how to connect."""
    from orchestrator.status import trial_status  # with deadlines: ~9 ms launch does not need

    report = trial_status(state.services, trial_id)
    if as_json:
        emit_json("status", report)
        return
    from rich.markup import escape

    trial = report["trial"]
    # The state may carry a cut-off error's text: escaped, so brackets in it are not read as markup.
    state_shown = escape(report["state"])
    out.print(f"[bold]{trial['id']}[/] {trial['template']} for {trial['candidate']} — [bold]{state_shown}[/]"
              + (f" (failed at {trial['failed_step']})" if trial["failed_step"] else ""))
    for key in ("time_left", "sandbox", "ssh", "repo", "issue", "bundle", "report"):
        if report.get(key):
            out.print(f"  {key.replace('_', ' ')}: {report[key]}")
    for step in report["steps"]:
        mark = {"done": "[green]✓[/]", "failed": "[red]✗[/]", "running": "[yellow]…[/]"}.get(step["status"], " ")
        line = f"  {mark} {step['operation']}:{step['name']}"
        if step.get("error"):
            line += f" — {step['error']}"
        out.print(line)


@click.command()
@click.argument("trial_id")
@pass_state
def shell(state: CliState, trial_id: str) -> None:
    """Open a shell in the trial's sandbox (as the candidate, in /workspace)."""
    services = state.services
    trial = services.store.get_trial(trial_id)
    ref = services.sandbox.find(trial.id)
    if ref is None or services.sandbox.status(ref) != "running":
        raise UsageError(f"the sandbox of trial {trial.id} is not running", "see `trial status ID`")
    docker = shutil.which("docker")
    if docker is None:
        raise PrerequisiteError("the docker CLI is not installed", "install docker.io (it provides `docker exec`)")
    os.execv(docker, [docker, "exec", "-it", "-w", "/workspace", ref.name, "bash", "-l"])  # noqa: S606


@click.command()
@click.argument("trial_id")
@json_option
@pass_state
def restart(state: CliState, trial_id: str, as_json: bool) -> None:
    """Bring an active trial back after a host reboot: host service, then sandbox."""
    result = lifecycle.restart(state.services, trial_id)
    if as_json:
        emit_json("restart", result.to_json())
        return
    done = ", ".join(result.restarted) or "nothing: everything was running"
    out.print(f"[bold]{result.trial.id}[/] restarted {done}")
    if result.ssh_command:
        out.print(f"  ssh:    {result.ssh_command}")


@click.command()
@click.argument("trial_id")
@json_option
@pass_state
def collect(state: CliState, trial_id: str, as_json: bool) -> None:
    """Freeze the trial and gather its evidence bundle (resumable)."""
    services = state.services
    with progress("collecting", quiet=as_json) as say:
        services.progress = say
        result = lifecycle.collect(services, trial_id)
    if as_json:
        emit_json("collect", result.to_json())
        return
    out.print(f"[bold green]collected[/] {result.trial.id}: {result.files} files in {result.bundle}")
    for problem in result.problems:
        err.print(f"[red]bundle problem:[/] {problem}")


@click.command()
@click.argument("trial_id")
@click.option("--delete-repo", is_flag=True, help="Delete the repository instead of archiving it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_state
def teardown(state: CliState, trial_id: str, delete_repo: bool, yes: bool, as_json: bool) -> None:
    """Remove the trial's containers, volumes, tokens and repo (the evidence is kept)."""
    trial = state.store.get_trial(trial_id)
    if not yes and not as_json and trial.state in ("active", "provisioning"):
        click.confirm(f"trial {trial.id} is {trial.state}; tear it down now?", abort=True, err=True)
    result = lifecycle.teardown(state.services, trial.id, repo_action="delete" if delete_repo else None)
    if as_json:
        emit_json("teardown", result.to_json())
        return
    out.print(f"[bold]closed[/] {result.trial_id}" + ("" if result.removed else " (nothing left to remove)"))
    for item in result.removed:
        out.print(f"  removed {item}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list leftovers.")
@click.option("--unknown-repos", is_flag=True,
              help="Also delete GitHub repos of trials this store does not know (shared orgs: careful).")
@json_option
@pass_state
def gc(state: CliState, dry_run: bool, unknown_repos: bool, as_json: bool) -> None:
    """Find and remove leftovers: containers, volumes, repos and forge files of unknown or closed trials,
    and containers interrupted image builds left."""
    leftovers = lifecycle.gc(state.services, remove=not dry_run, unknown_repos=unknown_repos)
    if as_json:
        emit_json("gc", [item.to_json() for item in leftovers])
        return
    if not leftovers:
        out.print("no leftovers")
    for item in leftovers:
        verb = "removed" if item.removed else "found"
        out.print(f"{verb} {item.kind} {item.name} — {item.reason}")


@click.command("candidate-push", hidden=True)
@click.argument("trial_id")
@click.option("--patch", "patch_file", type=click.Path(exists=True, dir_okay=False),
              help="A unified diff to apply in /workspace (omit for an empty commit).")
@click.option("--branch", default="candidate-work", show_default=True)
@click.option("--message", default="Candidate work", show_default=True)
@json_option
@pass_state
def candidate_push(state: CliState, trial_id: str, patch_file: str | None, branch: str, message: str,
                   as_json: bool) -> None:
    """Stand in for the candidate (demo, tests): commit a patch inside the sandbox and push it."""
    from orchestrator.simulate import push_work

    patch = Path(patch_file).read_text() if patch_file else None
    pushed = push_work(state.services, trial_id, patch=patch, branch=branch, message=message)
    if as_json:
        emit_json("candidate-push", {"branch": pushed.branch, "sha": pushed.sha})
    else:
        out.print(f"pushed {pushed.branch} at {pushed.sha[:12]} from inside the sandbox")


@click.command("candidate-play", hidden=True)
@click.argument("trial_id")
@click.argument("session", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_state
def candidate_play(state: CliState, trial_id: str, session: str, as_json: bool) -> None:
    """Stand in for the candidate (demo, corpus): play a session's [[candidate]] prompts and commands."""
    from orchestrator.candidate_script import play

    with progress("playing the candidate", quiet=as_json) as say:
        results = play(state.services, trial_id, Path(session), say)
    if as_json:
        emit_json("candidate-play", [result.to_json() for result in results])
    else:
        out.print(f"played {len(results)} candidate actions inside the sandbox")
