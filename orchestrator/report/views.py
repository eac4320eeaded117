"""What the Markdown and HTML templates show, computed once from a Report.

The templates only lay things out; every number, label and link is decided here, so both
renderings say the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.report.links import Links, fragment_for_test
from orchestrator.report.model import SEVERITIES, GraderEntry, Report, alert_severity

TITLES = {"hidden_tests": "Hidden tests", "steering": "Steering the agent", "spec_quality": "Spec quality",
          "commits": "Commits", "pull_request": "Pull request", "provenance": "Provenance"}
REVIEWER_ALIASES = {"tests": "hidden_tests", "hidden": "hidden_tests", "spec": "spec_quality",
                    "pr": "pull_request", "overall": "overall"}


def title(grader: str) -> str:
    return TITLES.get(grader, grader.replace("_", " ").capitalize())


@dataclass
class CriterionView:
    id: str
    title: str
    score: float
    max: float
    rationale: str
    refs: list[tuple[str, str | None]]

    @property
    def fraction(self) -> float:
        return self.score / self.max if self.max else 0.0

    @property
    def icon(self) -> str:
        return "✅" if self.fraction >= 0.75 else "🟡" if self.fraction >= 0.4 else "❌"


@dataclass
class GraderView:
    grader: str
    title: str
    weight: float
    status: str
    score: float
    max: float
    fraction: float | None
    summary: str
    criteria: list[CriterionView] = field(default_factory=list)
    trusts: str = ""
    """One line from the grader: which evidence its score rests on, and who could have written it."""

    @property
    def score_text(self) -> str:
        if self.status != "ok":
            return "not scored" if self.status == "infra_error" else self.status
        return f"{self.score:g}/{self.max:g} ({self.fraction:.0%})" if self.fraction is not None else "—"


def grader_views(report: Report, links: Links, *, in_html: bool, max_refs: int) -> list[GraderView]:
    return [_grader_view(entry, links, in_html, max_refs) for entry in report.entries]


def _grader_view(entry: GraderEntry, links: Links, in_html: bool, max_refs: int) -> GraderView:
    result = entry.result
    criteria = [CriterionView(c.id, c.title, c.score, c.max, c.rationale,
                              [links.resolve(ref, in_html=in_html) for ref in c.evidence_refs[:max_refs]])
                for c in result.criteria]
    trusts = result.details.get("trusts")
    return GraderView(entry.grader, title(entry.grader), entry.weight, result.status, result.score, result.max,
                      result.fraction, result.summary, criteria,
                      " ".join(trusts.split()) if isinstance(trusts, str) else "")


ALERT_TITLES = {"hidden_tests_tampered": "Hidden tests tampered with",
                "test_harness_tampered": "Test harness changed",
                "missing_from_gateway": "Transcript events the gateway never saw",
                "transcript_only_events": "Transcript-only events (shown, never scored)",
                "reaches_for_test_runner": "Code reaches for the test runner",
                "hidden_tests_missing": "Hidden-test results missing",
                "conflicting_tool_results": "Tool results told two ways at the gateway"}
TAMPERING = frozenset({"hidden_tests_tampered", "test_harness_tampered", "missing_from_gateway"})
ALERT_LABELS = {"critical": "Alert", "warning": "Warning", "info": "For review"}
GITHUB_ALERT = {"critical": "CAUTION", "warning": "WARNING", "info": "NOTE"}
"""GitHub's Markdown alert types: CAUTION renders red, WARNING amber, NOTE blue."""


@dataclass(frozen=True)
class EvidenceItem:
    """One record from an alert's structured `evidence` (a tampering finding, a flagged line, a run
    that left no results), as a title, its sentence, a link where there is one and the raw detail."""

    title: str
    text: str
    url: str | None = None
    detail: str = ""


@dataclass
class AlertView:
    kind: str
    severity: str
    title: str
    message: str
    refs: list[tuple[str, str | None]]
    more_refs: int
    items: list[EvidenceItem] = field(default_factory=list)
    more_items: int = 0

    @property
    def label(self) -> str:
        return "Tampering" if self.kind in TAMPERING and self.severity == "critical" else ALERT_LABELS[self.severity]

    @property
    def github_type(self) -> str:
        return GITHUB_ALERT[self.severity]


def alert_views(report: Report, links: Links, *, in_html: bool, max_refs: int) -> list[AlertView]:
    """Alerts, most severe first (critical, warning, info), each with its evidence resolved to links."""
    views = []
    sha = str((report.revision or {}).get("sha") or "")
    for alert in report.alerts:
        kind = str(alert.get("kind") or "alert")
        refs = [str(ref) for ref in alert.get("evidence_refs") or []]
        raw = alert.get("evidence")
        records = raw if isinstance(raw, list) else [raw] if raw else []
        items = [_evidence_item(record, links, sha) for record in records]
        views.append(AlertView(kind, alert_severity(alert), ALERT_TITLES.get(kind, title(kind)),
                               str(alert.get("message") or ""),
                               [links.resolve(ref, in_html=in_html) for ref in refs[:max_refs]],
                               max(0, len(refs) - max_refs), items[:max_refs], max(0, len(items) - max_refs)))
    return sorted(views, key=lambda view: SEVERITIES.index(view.severity))


_DETAIL_LIMIT = 4000


def _evidence_item(record: Any, links: Links, sha: str) -> EvidenceItem:
    if not isinstance(record, dict):
        return EvidenceItem("", " ".join(str(record).split()))
    if record.get("path"):  # a flagged file or line of the submission
        path, line = str(record["path"]), _int(record.get("line"))
        where = f"{path}:{line}" if line > 0 else path
        text = " · ".join(str(record[key]) for key in ("pattern", "text") if record.get(key))
        return EvidenceItem(where, text, links.file_at(sha, path, line))
    heading = " ".join(str(record[key]).replace("_", " ") for key in ("kind", "run") if record.get(key))
    rest = record.get("evidence", {k: v for k, v in record.items() if k not in ("kind", "run", "message")})
    detail = json.dumps(rest, indent=1, sort_keys=True, default=str) if rest else ""
    return EvidenceItem(heading, str(record.get("message") or ""), None,
                        detail[:_DETAIL_LIMIT] + ("…" if len(detail) > _DETAIL_LIMIT else ""))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def hidden_test_rows(entry: GraderEntry) -> list[dict[str, str]]:
    """Per-test outcomes of a hidden-tests result, each with the anchor `test:<id>` refs point at."""
    rows = []
    for group, caption in (("fail_to_pass", "must pass"), ("pass_to_pass", "kept passing")):
        outcomes = (entry.result.details.get(group) or {}).get("outcomes") or {}
        if isinstance(outcomes, dict):
            rows += [{"id": str(test_id), "anchor": fragment_for_test(str(test_id)), "group": caption,
                      "outcome": str(outcome)} for test_id, outcome in outcomes.items()]
    return rows


def collection_view(report: Report, max_items: int) -> dict[str, Any]:
    notes = report.collection or {}
    left_out = list(notes.get("left_out") or [])
    late = list(notes.get("late_pushes") or [])
    return {"left_out": left_out[:max_items],
            "more_left_out": max(0, len(left_out) - max_items) + int(notes.get("more_left_out") or 0),
            "late_pushes": late[:max_items],
            "more_late_pushes": max(0, len(late) - max_items) + int(notes.get("more_late_pushes") or 0)}


def links_for(report: Report, html_url: str | None) -> Links:
    repo = report.repo or {}
    pr = report.pull_request or {}
    return Links.create(repo.get("web_url"), html_url, pr.get("url"))


def steering_details(report: Report) -> dict[str, Any]:
    entry = report.entry("steering")
    return entry.result.details if entry and entry.result.status == "ok" else {}


def provenance_rows(report: Report) -> list[dict[str, Any]]:
    entry = report.entry("provenance")
    if not entry or entry.result.status != "ok":
        return []
    rows: list[dict[str, Any]] = entry.result.details.get("commits") or []
    return rows


def reviewer_keys(report: Report) -> list[str]:
    return [e.grader for e in report.entries] + ["overall"]


def bar(share: float, width: int = 10) -> str:
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled)
