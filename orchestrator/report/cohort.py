"""The cohort report: one self-contained HTML page comparing every candidate of a cohort.

One row per trial with its overall score and each grader's, alerts and state; the column
headers sort the table (a few lines of inline script, nothing fetched), and each row links to
the trial's own report.html by a path relative to the page, so the page works straight from
disk. `#sort=<column>&dir=asc|desc` in the address sorts on opening (links can share an order).
Jinja2 autoescaping keeps every value from a bundle inert.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from orchestrator.services import Services
from orchestrator.store import utcnow

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class CohortEntry:
    trial_id: str
    candidate: str
    template: str
    state: str
    overall: float | None
    graders: dict[str, float | None] = field(default_factory=dict)
    """Each grader's score as a fraction of its maximum; None when it did not score."""
    alerts: int = 0
    report: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "candidate": self.candidate, "template": self.template,
                "state": self.state, "overall": self.overall, "graders": self.graders, "alerts": self.alerts,
                "report": str(self.report) if self.report else None}


def cohort_entries(services: Services, name: str) -> list[CohortEntry]:
    from orchestrator.cohort import cohort_trials

    entries = []
    for trial in cohort_trials(services, name):
        path = services.settings.evidence_dir / trial.id / "report.json"
        report: dict[str, Any] = {}
        if path.is_file():
            try:
                report = json.loads(path.read_text())
            except ValueError:
                report = {}
        graders: dict[str, float | None] = {}
        for grader in report.get("graders") or []:
            ok = grader.get("status") == "ok" and grader.get("max")
            graders[str(grader.get("grader"))] = round(float(grader["score"]) / float(grader["max"]), 4) if ok else None
        overall = (report.get("overall") or {}).get("fraction")
        html = path.with_name(REPORT_FILE)
        entries.append(CohortEntry(trial.id, trial.candidate, trial.template, trial.state,
                                   float(overall) if isinstance(overall, int | float) else None, graders,
                                   len(report.get("alerts") or []), html if html.is_file() else None))
    return entries


def default_path(services: Services, name: str) -> Path:
    return services.settings.home / "cohorts" / name / REPORT_FILE


def render_cohort_html(name: str, entries: list[CohortEntry], page: Path) -> str:
    graders = list(dict.fromkeys(g for entry in entries for g in entry.graders))
    rows = []
    for entry in entries:
        link = os.path.relpath(entry.report, page.parent) if entry.report else None
        rows.append({"entry": entry, "link": link,
                     "cells": [entry.graders.get(g) for g in graders]})
    env = Environment(loader=PackageLoader("orchestrator.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda value: "—" if value is None else f"{value:.0%}"
    env.filters["sortkey"] = lambda value: "" if value is None else f"{value:.4f}"
    return env.get_template("cohort.html.j2").render(
        name=name, rows=rows, graders=graders, generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"))


def write_cohort_report(services: Services, name: str, out: Path | None = None) -> Path:
    page = (out or default_path(services, name)).resolve()
    html = render_cohort_html(name, cohort_entries(services, name), page)
    page.parent.mkdir(parents=True, exist_ok=True)
    tmp = page.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(page)
    return page
