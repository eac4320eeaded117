"""One trial's status as data: record, steps, sandbox state, time left, access cut, how to connect."""

from __future__ import annotations

from typing import Any

from orchestrator.deadlines import CUTOFF_PARTS
from orchestrator.errors import TrialError
from orchestrator.lifecycle import ssh_command
from orchestrator.services import Services
from orchestrator.store import Trial, utcnow


def _time_left(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"


def access_cut(trial: Trial) -> dict[str, Any] | None:
    """What the host service's deadline cut-off has done to an active trial (None before it began).

    Between the cut-off and the reap the trial's state is still `active`, though its tokens,
    forge access and sandbox are gone: without this an operator would read it as running."""
    cutoff = trial.data.get("cutoff")
    if trial.state != "active" or not isinstance(cutoff, dict) or not cutoff.get("at"):
        return None
    done = [part for part in CUTOFF_PARTS if part in (cutoff.get("done") or [])]
    pending = [part for part in CUTOFF_PARTS if part not in done]
    raw_errors = cutoff.get("errors")
    errors: dict[str, Any] = raw_errors if isinstance(raw_errors, dict) else {}
    if pending:
        summary = (f"access being cut since {cutoff['at']}: {', '.join(pending)} not yet cut"
                   + "".join(f"; {part}: {error}" for part, error in errors.items()))
    else:
        summary = f"access cut at {cutoff['at']}"
    return {"at": cutoff["at"], "completed_at": cutoff.get("completed_at"), "done": done, "pending": pending,
            "errors": errors, "summary": summary}


def trial_status(services: Services, trial_id: str) -> dict[str, Any]:
    store = services.store
    trial = store.get_trial(trial_id)
    steps = [
        {"operation": op, "name": s.name, "status": s.status, "error": s.error,
         "finished_at": s.finished_at.isoformat() if s.finished_at else None}
        for op in ("launch", "collect") for s in store.steps(trial.id, op)
    ]
    report: dict[str, Any] = {"trial": trial.to_json(), "steps": steps, "state": trial.state}
    cutoff = access_cut(trial)
    if cutoff is not None:
        report["cutoff"] = cutoff
        report["state"] = f"{trial.state} ({cutoff['summary']}; `trial reap` collects it)"
    if trial.deadline and trial.state == "active":
        report["time_left"] = _time_left((trial.deadline - utcnow()).total_seconds())
    repo = trial.data.get("repo")
    if repo:
        report["repo"] = repo.get("web_url")
    report["issue"] = trial.data.get("issue_url")
    if trial.state not in ("closed",):
        try:
            ref = services.sandbox.find(trial.id)
            report["sandbox"] = f"{ref.name} ({services.sandbox.status(ref)})" if ref else "none"
            if ref is not None and ref.host:
                report["sandbox"] += f" on {ref.host}"
        except TrialError as exc:
            report["sandbox"] = f"unknown: {exc.message}"
    if trial.state == "active" and (cutoff is None or "sandbox" in cutoff["pending"]):
        report["ssh"] = ssh_command(services, trial.data.get("ssh_port"), trial.data.get("ssh_host"))
        pending = getattr(services.forge, "pending_invitations", None)
        if callable(pending) and repo:
            from orchestrator.forge.base import RepoRef

            try:
                report["invitations"] = pending(RepoRef.from_json(repo))
            except TrialError as exc:
                report["invitations"] = f"unknown: {exc.message}"
    bundle = services.settings.evidence_dir / trial.id
    if (bundle / "manifest.json").exists():
        report["bundle"] = str(bundle)
    if (bundle / "report.md").exists():
        report["report"] = str(bundle / "report.md")
    return report
