"""Gateway commands: `trial verify ID` (the log's hash chain) and `trial usage [ID]`. Parse, call, render."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out
from orchestrator.errors import ExitCode

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.command()
@click.argument("trial_id", required=False)
@click.option("--log", "log_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify this copy of a gateway log instead (e.g. a bundle's gateway.jsonl).")
@json_option
@pass_state
@click.pass_context
def verify(ctx: click.Context, state: CliState, trial_id: str | None, log_file: Path | None,
           as_json: bool) -> None:
    """Check the hash chain of a trial's gateway log; name the first broken record."""
    from orchestrator.gateway.reports import verify_trial_log

    report = verify_trial_log(state.settings, state.store, trial_id, log_file)
    result = report.result
    if as_json:
        emit_json("verify", report.to_json())
    elif result.ok:
        out.print(f"[bold green]ok[/] {report.path}: {result.records} records, chain intact (head {result.head[:16]})")
    else:
        out.print(f"[bold red]broken[/] {report.path}: {result.reason}")
        if result.first_bad_seq is not None:
            out.print(f"  the first {result.records} records verify (bytes 0-{result.offset}); record "
                      f"{result.first_bad_seq} and all after it cannot be trusted")
    if not result.ok:
        ctx.exit(int(ExitCode.FAILURE))


@click.command()
@click.argument("trial_id", required=False)
@json_option
@pass_state
def usage(state: CliState, trial_id: str | None, as_json: bool) -> None:
    """Tokens, cost and requests per trial, from the gateway logs."""
    from orchestrator.gateway.reports import usage_report

    rows = usage_report(state.settings, state.store, trial_id)
    if as_json:
        emit_json("usage", {"trials": rows})
        return
    if not rows:
        out.print("no trials yet")
        return
    table = Table("trial", "state", "requests", "tokens in/out", "cache r/w", "cost", "budget", box=None)
    for row in rows:
        budget = f"${row['budget_usd']:.2f}" if row["budget_usd"] is not None else "-"
        requests = str(row["requests"]) + (f" (+{row['refused']} refused)" if row["refused"] else "")
        table.add_row(row["trial_id"], row["state"], requests, f"{row['input_tokens']:,}/{row['output_tokens']:,}",
                      f"{row['cache_read_tokens']:,}/{row['cache_write_tokens']:,}", f"${row['cost_usd']:.4f}",
                      budget)
    out.print(table)
    for row in rows:
        if row["unpriced_models"]:
            out.print(f"[yellow]note[/] {row['trial_id']}: {', '.join(row['unpriced_models'])} not in the price "
                      "table, priced at its highest rates")
        if row["estimated"]:
            out.print(f"[yellow]note[/] {row['trial_id']}: {row['estimated']} exchange(s) ended before the "
                      "provider reported usage; their tokens are estimated")
