"""Evidence commands: `trial verify` (the whole signed bundle) and `trial key export`. Parse, call, render."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli import gateway
from orchestrator.cli.context import CliState, pass_state
from orchestrator.cli.render import emit_json, out
from orchestrator.errors import ExitCode

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON envelope for scripts.")


@click.command()
@click.argument("trial_id", required=False)
@click.option("--bundle", "bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Verify this copy of an evidence bundle (no trial store needed).")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check the signature with this exported key (`trial key export`); default: this data dir's.")
@click.option("--gateway-only", is_flag=True,
              help="Check only the trial's live gateway log (its hash chain), as before collect.")
@click.option("--log", "log_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check only this copy of a gateway log's hash chain.")
@json_option
@pass_state
@click.pass_context
def verify(ctx: click.Context, state: CliState, trial_id: str | None, bundle_dir: Path | None,
           public_key: Path | None, gateway_only: bool, log_file: Path | None, as_json: bool) -> None:
    """Prove a trial's evidence is what was collected: signature, every file, the gateway chain.

    \b
    trial verify ID                      the collected bundle (the live gateway log before collect)
    trial verify --bundle DIR --public-key operator.pem   a copy, by a third party
    trial verify ID --gateway-only       the live gateway log's chain only
    """
    from orchestrator.evidence.bundle import MANIFEST
    from orchestrator.evidence.verify import verify_trial_bundle

    collected = bundle_dir is not None or (
        trial_id is not None and not gateway_only and log_file is None
        and (state.settings.evidence_dir / state.store.get_trial(trial_id).id / MANIFEST).is_file())
    if not collected:
        ctx.invoke(gateway.verify, trial_id=trial_id, log_file=log_file, as_json=as_json)
        return
    verdict = verify_trial_bundle(state.settings, None if bundle_dir else state.store, trial_id,
                                  bundle_dir=bundle_dir, public_key=public_key)
    if as_json:
        emit_json("verify", verdict.to_json())
    elif verdict.ok:
        out.print(f"[bold green]ok[/] {verdict.bundle}: signed by {verdict.key}; {len(verdict.findings)} checks "
                  "passed (signature, every file's sha256, nothing unlisted, gateway chain and head)")
    else:
        out.print(f"[bold red]differs[/] {verdict.bundle}: {verdict.first_difference}")
        for finding in verdict.problems[1:10]:
            out.print(f"  also: {finding.detail}")
        if len(verdict.problems) > 10:
            out.print(f"  and {len(verdict.problems) - 10} more")
    if not verdict.ok:
        ctx.exit(int(ExitCode.FAILURE))


@click.group()
def key() -> None:
    """The operator's signing key (ed25519, made on first use under the data dir)."""


@key.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the public key to this file instead of printing it.")
@json_option
@pass_state
def export(state: CliState, output: Path | None, as_json: bool) -> None:
    """Print the public key that checks this operator's bundles (give it to whoever must verify them)."""
    from orchestrator.evidence.signing import fingerprint, operator_key, public_pem

    public = operator_key(state.settings.home).public_key()
    pem = public_pem(public)
    if output is not None:
        output.write_text(pem)
    if as_json:
        emit_json("key export", {"fingerprint": fingerprint(public), "public_key": pem,
                                 "written_to": str(output) if output else None})
    elif output is not None:
        out.print(f"wrote {output} ({fingerprint(public)})")
    else:
        out.print(pem.rstrip("\n"))
