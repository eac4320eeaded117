"""Deadline commands: `trial extend ID --hours H` and `trial reap [--watch]`. Parse, call, render."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import click

from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, err, out
from orchestrator.errors import ExitCode
from orchestrator.store import iso

if TYPE_CHECKING:
    from orchestrator import deadlines

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.command()
@click.argument("trial_id", metavar="ID")
@click.option("--hours", type=float, required=True, help="How many hours to add to the deadline.")
@json_option
@pass_state
def extend(state: CliState, trial_id: str, hours: float, as_json: bool) -> None:
    """Move an active trial's deadline later (only before it has passed)."""
    from orchestrator import deadlines  # only these commands need it

    result = deadlines.extend(state.store, trial_id, hours)
    if as_json:
        emit_json("extend", result.to_json())
        return
    out.print(f"trial [bold]{result.trial_id}[/] now ends {iso(result.new_deadline)} "
              f"(was {iso(result.old_deadline)})")


@click.command()
@click.option("--watch", is_flag=True, help="Keep reaping: wake at each deadline (Ctrl-C to stop).")
@click.option("--interval", "interval_s", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="With --watch: the longest pause between passes, in seconds.")
@json_option
@pass_state
def reap(state: CliState, watch: bool, interval_s: float, as_json: bool) -> int:
    """Collect every trial past its deadline, each once.

    \b
    From cron:   */5 * * * *  trial reap --json >> ~/trial-reap.log
    Or stay up:  trial reap --watch   (wakes at each deadline; SIGTERM or Ctrl-C ends it)
    """
    from orchestrator import deadlines  # only these commands need it
    from orchestrator.lifecycle import collect

    services = state.services

    def collect_one(trial_id: str) -> object:
        return collect(services, trial_id)

    def render(report: deadlines.ReapReport) -> None:
        if as_json:
            emit_json("reap", report.to_json())
            return
        for outcome in report.outcomes:
            if outcome.collected:
                out.print(f"collected {outcome.trial_id} (deadline {iso(outcome.deadline)})")
            else:
                err.print(f"[red]failed[/] {outcome.trial_id}: {outcome.error}")
        if not report.outcomes and not watch:
            out.print("no trial is past its deadline")

    if watch:
        stop = threading.Event()
        # A service manager stops a watcher with SIGTERM: finish the current pass, then leave.
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            deadlines.watch(services.store, collect_one, interval_s=interval_s, stop=stop, on_report=render)
        except KeyboardInterrupt:
            err.print("reaper stopped")
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0
    report = deadlines.reap(services.store, collect_one)
    render(report)
    return int(ExitCode.PARTIAL) if report.failed else 0
