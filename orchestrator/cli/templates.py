"""`trial templates list|check|new`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out, progress
from orchestrator.errors import ExitCode, UsageError


@click.group()
def templates() -> None:
    """Trial templates: list them, prove one works, start a new one."""


@templates.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
@pass_state
def list_templates(state: CliState, as_json: bool) -> None:
    """List the templates in the catalog."""
    catalog = state.services.catalog
    items = catalog.all()
    if as_json:
        emit_json("templates list", [{"name": t.name, "title": t.config.title, "language": t.config.language,
                                      "track": t.config.track, "shape": t.config.tests.shape,
                                      "hours": t.config.hours, "agent": t.config.agent,
                                      "budget_usd": t.config.budget_usd} for t in items])
        return
    if not items:
        out.print(f"no templates in {catalog.root}")
        return
    table = Table("name", "track", "title", "language", "hours", "agent", box=None)
    for t in items:
        table.add_row(t.name, t.config.track or "-", t.config.title, t.config.language, f"{t.config.hours:g}",
                      t.config.agent)
    out.print(table)


@templates.command("check")
@click.argument("name", required=False)
@click.option("--all", "check_every", is_flag=True, help="Check every template in the catalog.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
@pass_state
@click.pass_context
def check(ctx: click.Context, state: CliState, name: str | None, check_every: bool, as_json: bool) -> None:
    """Prove a template: image builds, starter tests pass, hidden tests fail on the starter
    and pass with the reference solution, the planted defect's tests fail on the starter and
    on the reference with the defect put back."""
    from orchestrator.template_check import check_all, check_template

    if bool(name) == check_every:
        raise UsageError("check needs a template NAME or --all", "e.g. trial templates check api-keys")
    services = state.services
    with progress(f"checking {name or 'every template'}", quiet=as_json) as say:
        services.progress = say
        results = check_all(services) if check_every else [check_template(services, name or "")]
    if as_json:
        payload = [r.to_json() for r in results]
        emit_json("templates check", payload if check_every else payload[0])
    else:
        for result in results:
            if check_every:
                out.print(f"[bold]{result.template}[/]")
            for item in result.checks:
                mark = "[green]✓[/]" if item.ok else "[red]✗[/]"
                out.print(f"{mark} {item.name}: {item.detail}")
            out.print(f"[bold green]{result.template}: template OK[/]" if result.ok
                      else f"[bold red]{result.template}: template has problems[/]")
    if not all(result.ok for result in results):
        ctx.exit(int(ExitCode.FAILURE))


@templates.command("new")
@click.argument("name")
@click.option("--language", required=True, type=click.Choice(["python", "go", "typescript"]),
              help="Language of the starter codebase.")
@click.option("--track", required=True, type=click.Choice(["builder", "specialist", "design"]),
              help="Which kind of trial this is.")
@click.option("--into", "into", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to create it in (default: the catalog's templates_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")
@pass_state
def new(state: CliState, name: str, language: str, track: str, into: Path | None, as_json: bool) -> None:
    """Scaffold a template NAME that passes `trial templates check` as it is; replace what its
    comments say (brief, starter, hidden tests, reference, defect)."""
    from orchestrator.scaffold import scaffold

    root = into if into is not None else state.services.settings.templates_dir
    path = scaffold(root, name, language, track)
    if as_json:
        emit_json("templates new", {"name": name, "path": str(path), "language": language, "track": track})
        return
    out.print(f"[bold green]created[/] {path}")
    out.print(f"  next: read {path / 'README.md'}, then `trial templates check {name}`")
