"""Run a template's rubric on a bundle and write report.json, report.md and report.html into it.

Every grader named in the rubric runs with its options; a grader that cannot do its job
(no Docker for the hidden tests, a plugin that crashes) yields an `infra_error` result,
which the report shows as such and leaves out of the overall score. Nothing here reads
the clock or the network beyond what a grader itself needs, so re-grading a bundle writes
the same report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from graders.base import GradeContext, Grader, GraderResult
from graders.integrity import integrity_finding
from graders.registry import get_grader, load_graders
from graders.repo import choose_revision, open_repo
from orchestrator.catalog import Template
from orchestrator.errors import EvidenceError, TrialError
from orchestrator.evidence.bundle import MANIFEST, Bundle
from orchestrator.evidence.events import MISSING_FROM_GATEWAY
from orchestrator.logging import get_logger
from orchestrator.report.collection import collection_notes
from orchestrator.report.model import GraderEntry, Report

log = get_logger(component="graders.runner")


def grade_bundle(bundle: Bundle, template: Template, context: GradeContext, *,
                 graders: dict[str, Grader] | None = None, html_url: str | None = None) -> Report:
    """Grade the bundle with the template's rubric; writes the three report files and returns the report."""
    registry = load_graders() if graders is None else graders
    rubric = template.config.rubric
    chosen = {entry.grader: get_grader(entry.grader, registry) for entry in rubric}  # unknown names fail first
    context = context if context.template is not None else replace(context, template=template)
    entries: list[GraderEntry] = []
    for entry in rubric:
        log.info("grade.start", grader=entry.grader, trial_id=bundle.path.name)
        earlier = replace(context, results={done.grader: done.result for done in entries})
        result = _run(chosen[entry.grader], entry.grader, bundle, dict(entry.options), earlier)
        log.info("grade.done", grader=entry.grader, status=result.status, score=result.score, max=result.max)
        entries.append(GraderEntry(entry.grader, entry.weight, result))
    revision = _revision(bundle)
    integrity = integrity_finding(entries)  # proven dishonesty caps the total (graders/integrity.py)
    report = Report(trial=_trial(bundle), bundle_sha256=_manifest_digest(bundle), entries=entries,
                    repo=_repo(bundle), revision=revision, pull_request=_pull_request(bundle, revision),
                    alerts=([integrity] if integrity else []) + _alerts(bundle, entries),
                    collection=collection_notes(bundle.manifest()),
                    cap=float(integrity["cap"]) if integrity else None)
    write_report(bundle, report, html_url=html_url)
    return report


def _run(grader: Grader, name: str, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
    try:
        result = grader.grade(bundle, options, context)
    except TrialError as exc:
        return GraderResult(name, status="infra_error", summary=f"Not graded: {exc.one_line()}")
    except Exception as exc:  # a plugin's bug must not cost the other graders' results
        log.exception("grade.crashed", grader=name)
        return GraderResult(name, status="infra_error",
                            summary=f"Not graded: the grader crashed ({type(exc).__name__}: {exc})")
    result.grader = name
    return result


def write_report(bundle: Bundle, report: Report, *, html_url: str | None = None) -> None:
    from orchestrator.report.html import render_html
    from orchestrator.report.markdown import render_markdown

    data = report.to_json()
    files = {"report.json": json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
             "report.md": render_markdown(report, html_url=html_url),
             "report.html": render_html(report, bundle.events(), html_url=html_url)}
    for name, text in files.items():
        temporary = bundle.path / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(bundle.path / name)


def _alerts(bundle: Bundle, entries: list[GraderEntry]) -> list[dict[str, Any]]:
    alerts = []
    events = bundle.events()
    unseen = [i for i, e in enumerate(events) if (e.get("data") or {}).get(MISSING_FROM_GATEWAY)]
    if unseen:
        alerts.append({"kind": "missing_from_gateway", "evidence_refs": [f"event:{i}" for i in unseen[:30]],
                       "message": f"{len(unseen)} transcript event(s) never reached the gateway: a model was "
                                  "reached some other way, or the transcript was edited. They earned nothing."})
    conflicted = [i for i, e in enumerate(events) if (e.get("data") or {}).get("conflict")]
    if conflicted:
        calls = {str((events[i].get("data") or {}).get("tool_use_id")) for i in conflicted}
        agents = sorted({str((events[i].get("data") or {}).get("user_agent"))[:60] for i in conflicted})
        alerts.append({"kind": "conflicting_tool_results", "severity": "critical",
                       "evidence_refs": [f"event:{i}" for i in conflicted[:30]],
                       "message": f"{len(calls)} tool call(s) got different results in different gateway requests "
                                  f"(user agents: {', '.join(agents[:4])}): someone posted a result with the trial "
                                  "token besides the agent. Neither result was scored; read both."})
    for entry in entries:
        alerts += _hidden_test_alerts(entry.result.details)
        collateral = entry.result.details.get("collateral")
        if isinstance(collateral, dict) and collateral.get("suspicious"):
            changed = [*collateral.get("harness_changed", []), *collateral.get("planted_hidden", [])]
            alerts.append({"kind": "test_harness_tampered", "evidence_refs": [],
                           "message": "Test harness changed (" + ", ".join(changed[:8]) + "): restored before the "
                                      "hidden tests ran; review these files."})
    return alerts


def _hidden_test_alerts(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The hidden-tests grader's evidence (graders.verifier), carried as it is into the report."""
    alerts = []
    if details.get("tampering"):
        alerts.append({"kind": "hidden_tests_tampered", "evidence_refs": [], "evidence": details["tampering"],
                       "message": "Hidden-test results were tampered with; hidden tests scored 0. "
                                  + " ".join(str(t.get("message", "")) for t in details["tampering"][:3])})
    if details.get("missing_results"):
        alerts.append({"kind": "hidden_tests_missing", "severity": "critical", "evidence_refs": [],
                       "evidence": details["missing_results"],
                       "message": " ".join(str(m.get("message", "")) for m in details["missing_results"][:2])})
    if details.get("reaches_for_test_runner"):
        flags = details["reaches_for_test_runner"]
        alerts.append({"kind": "reaches_for_test_runner", "evidence": flags,
                       "evidence_refs": [],
                       "message": f"{len(flags)} added line(s) or file(s) reach for the test runner (" + ", ".join(
                           sorted({f"{f['pattern']} in {f['path']}" for f in flags})[:6]) + "): not scored; read "
                           "them, code in the test process can forge the results of tests it knows by name."})
    alerts += list((details.get("rewritten_tests") or {}).get("alerts") or [])  # graders.rewritten_tests
    return alerts


def _manifest_digest(bundle: Bundle) -> str:
    path = bundle.path / MANIFEST
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _trial(bundle: Bundle) -> dict[str, Any]:
    trial = dict(bundle.trial)
    trial.pop("repo", None)
    manifest = bundle.manifest()
    for key in ("template", "candidate"):
        if key not in trial and manifest.get(key):
            trial[key] = manifest[key]
    return trial


def _repo(bundle: Bundle) -> dict[str, Any] | None:
    repo = bundle.trial.get("repo")
    return dict(repo) if isinstance(repo, dict) else None


def _revision(bundle: Bundle) -> dict[str, Any] | None:
    """Which commit was graded, whatever the graders did with it."""
    try:
        with open_repo(bundle) as repo:
            return choose_revision(bundle, repo).to_json()
    except EvidenceError:
        return None


def _pull_request(bundle: Bundle, revision: dict[str, Any] | None) -> dict[str, Any] | None:
    pulls = bundle.pulls()
    chosen = next((p for p in pulls if p.get("number") == (revision or {}).get("pr_number")), None)
    if chosen is None:
        open_pulls = [p for p in pulls if p.get("state") == "open"] or pulls
        chosen = open_pulls[-1] if open_pulls else None
    if chosen is None:
        return None
    return {key: chosen.get(key) for key in ("number", "title", "url", "state", "head_sha", "base_sha", "author")}
