"""The report: every grader's result, weighted into one overall score, in a versioned schema.

`report.json` is `Report.to_json()`; `report.md` (the PR comment) and `report.html` (the
self-contained page) are rendered from the same object. Nothing in it depends on the
clock, so grading the same bundle twice writes the same report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graders.base import Criterion, GraderResult

SCHEMA = "trial.report/v1"
MARKER = "<!-- trial-report -->"
"""First line of the PR comment: how the forge finds its own earlier comment to update."""

SEVERITIES = ("critical", "warning", "info")
"""critical: the evidence or a result was tampered with (red); warning: shown, never scored; info: for review."""
KIND_SEVERITY = {"hidden_tests_tampered": "critical", "test_harness_tampered": "critical",
                 "hidden_tests_missing": "critical",
                 "missing_from_gateway": "critical", "transcript_only_events": "warning",
                 "reaches_for_test_runner": "info", "conflicting_tool_results": "critical",
                 "integrity": "critical", "tests_changed_to_pass": "critical"}


def alert_severity(alert: dict[str, Any]) -> str:
    """The alert's own severity, else its kind's; an unknown kind is critical, so that an alert
    from a grader newer than this table is never shown milder than it may be."""
    given = alert.get("severity")
    if given in SEVERITIES:
        return str(given)
    return KIND_SEVERITY.get(str(alert.get("kind", "")), "critical")


@dataclass
class GraderEntry:
    grader: str
    weight: float
    result: GraderResult

    def to_json(self) -> dict[str, Any]:
        return {**self.result.to_json(), "grader": self.grader, "weight": self.weight}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraderEntry:
        criteria = [Criterion(id=c["id"], title=c["title"], score=float(c["score"]), max=float(c["max"]),
                              rationale=c.get("rationale", ""), evidence_refs=list(c.get("evidence_refs") or []))
                    for c in data.get("criteria") or []]
        result = GraderResult(grader=data["grader"], status=data.get("status", "ok"), criteria=criteria,
                              summary=data.get("summary", ""), details=dict(data.get("details") or {}))
        return cls(grader=data["grader"], weight=float(data.get("weight", 1.0)), result=result)


@dataclass
class Report:
    trial: dict[str, Any]
    bundle_sha256: str
    entries: list[GraderEntry] = field(default_factory=list)
    repo: dict[str, Any] | None = None
    revision: dict[str, Any] | None = None
    pull_request: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """What a reviewer must see first: {kind, severity, message, evidence_refs}, e.g. transcript turns
    the gateway never saw, or a tampered test harness. `severity` may be missing (older graders):
    `alert_severity` fills it in."""
    collection: dict[str, Any] | None = None
    """What collection left out and pushes after the deadline (`collection_notes` of the manifest)."""
    cap: float | None = None
    """The most the overall score may be: set by an integrity finding (graders/integrity.py), shown as an alert."""
    schema: str = SCHEMA

    @property
    def status(self) -> str:
        """complete, or partial when a grader hit an infrastructure failure (never the candidate's fault)."""
        return "partial" if any(e.result.status == "infra_error" for e in self.entries) else "complete"

    @property
    def scored(self) -> list[GraderEntry]:
        return [e for e in self.entries if e.result.fraction is not None and e.weight > 0]

    @property
    def overall(self) -> float | None:
        """Weighted mean of the scored graders' fractions; graders that could not run are left out."""
        weights = sum(e.weight for e in self.scored)
        if not weights:
            return None
        overall = sum(e.weight * (e.result.fraction or 0.0) for e in self.scored) / weights
        return overall if self.cap is None else min(overall, self.cap)

    def entry(self, grader: str) -> GraderEntry | None:
        return next((e for e in self.entries if e.grader == grader), None)

    def to_json(self) -> dict[str, Any]:
        overall = self.overall
        return {
            "schema": self.schema,
            "trial": self.trial,
            "repo": self.repo,
            "revision": self.revision,
            "pull_request": self.pull_request,
            "bundle_sha256": self.bundle_sha256,
            "status": self.status,
            "alerts": [{**alert, "severity": alert_severity(alert)} for alert in self.alerts],
            "collection": self.collection,
            "overall": {
                "fraction": round(overall, 4) if overall is not None else None,
                "percent": f"{overall:.0%}" if overall is not None else "n/a",
                "graders_scored": [e.grader for e in self.scored],
                "graders_not_scored": [e.grader for e in self.entries if e not in self.scored],
                **({"cap": self.cap} if self.cap is not None else {}),
            },
            "graders": [e.to_json() for e in self.entries],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA:
            from orchestrator.errors import EvidenceError

            raise EvidenceError(f"report schema {data.get('schema')!r} is not {SCHEMA}",
                                "re-grade the trial with this version: `trial grade ID`")
        return cls(trial=dict(data.get("trial") or {}), bundle_sha256=str(data.get("bundle_sha256", "")),
                   entries=[GraderEntry.from_json(item) for item in data.get("graders") or []],
                   repo=data.get("repo"), revision=data.get("revision"), pull_request=data.get("pull_request"),
                   alerts=list(data.get("alerts") or []), collection=data.get("collection"),
                   cap=(data.get("overall") or {}).get("cap"))
