"""The calibration run's second grading: the LLM judge, reached through the scripted model.

The judge (graders/judge.py) talks to the gateway like any client. Here its "model" is the
scripted model: a judge trial in the store whose `[gateway] provider` is
`script:calibration/judge/NAME.toml`, whose `side_reply` is the verdict a careful reader gives
for that session (the judge's request offers no tools, so the scripted model answers it as a
side request). The verdict must quote the session verbatim, or graders/judge.py discards it:
the pass measures what the judge's bounded moves do to the order, with the same checks as a
real provider's answer. Hidden tests are not run again: their result from the first grading
is replayed, and the first grading's report files are put back afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from calibration.corpus import ROOT, TEMPLATE, Entry, scores_of


class _Replay:
    """A grader that gives back a result from an earlier grading of the same bundle."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self._entry = entry

    def grade(self, bundle: Any, options: dict[str, Any], context: Any) -> Any:
        from orchestrator.report.model import GraderEntry

        return GraderEntry.from_json(self._entry).result


def judge_pass(services: Any, entry: Entry, bundle_dir: Path, workdir: Path) -> dict[str, float | None]:
    """Grade the bundle again with the judge on; returns the scores (empty without a judge script)."""
    script = ROOT / "judge" / f"{entry.name}.toml"
    if not script.is_file():
        return {}
    from graders.base import GradeContext
    from graders.registry import load_graders
    from graders.runner import grade_bundle
    from orchestrator.evidence.bundle import Bundle
    from orchestrator.lifecycle import new_trial_id
    from orchestrator.service import daemon
    from orchestrator.store import Trial, utcnow

    first = json.loads((bundle_dir / "report.json").read_text())
    saved = {name: (bundle_dir / name).read_bytes() for name in ("report.json", "report.md", "report.html")
             if (bundle_dir / name).is_file()}
    now = utcnow()
    judge_id = "j" + new_trial_id()[1:]
    services.store.create_trial(Trial(id=judge_id, template=TEMPLATE, candidate="calibration-judge",
                                      agent="claude-code", state="active", created_at=now, updated_at=now,
                                      hours=1.0, budget_usd=5.0,
                                      data={"gateway_provider": f"script:{script.resolve()}"}))
    token = services.store.mint_token(judge_id, "sandbox")
    daemon.ensure_running(services.settings)
    graders = load_graders()
    for result in first.get("graders", []):
        if result.get("grader") == "hidden_tests":
            graders["hidden_tests"] = _Replay(result)  # type: ignore[assignment]
    os.environ["TRIAL_JUDGE_URL"] = daemon.local_url(services.settings)
    os.environ["TRIAL_JUDGE_TOKEN"] = token
    try:
        template = services.catalog.get(TEMPLATE)
        report = grade_bundle(Bundle(bundle_dir), template, GradeContext(template=template), graders=graders)
        data = report.to_json()
    finally:
        os.environ.pop("TRIAL_JUDGE_URL", None)
        os.environ.pop("TRIAL_JUDGE_TOKEN", None)
        services.store.revoke_tokens(judge_id)
        services.store.update_trial(judge_id, state="closed")
    (workdir / "report.judge.json").write_text(json.dumps(data, indent=2, default=str))
    for name, content in saved.items():
        (bundle_dir / f".{name}.restore").write_bytes(content)
        shutil.move(bundle_dir / f".{name}.restore", bundle_dir / name)
    statuses = {r["grader"]: (r.get("details") or {}).get("judge", {}).get("status")
                for r in data.get("graders", []) if r.get("grader") in ("spec_quality", "steering")}
    if any(status != "ok" for status in statuses.values()):
        print(f"  judge pass of {entry.name}: judge status {statuses}", flush=True)
    return scores_of(data)
