"""report.md: the PR comment. Under GitHub's 65,536-character limit whatever the session held.

Every piece of text that comes from the evidence (prompts, commit subjects, PR titles) is
made inert first (`md_text`): a candidate cannot inject links, HTML or @-mentions into the
reviewers' comment. When the full rendering is too long, it is rendered again with fewer
evidence links and shorter rationales, and only as a last resort cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from orchestrator.report import views
from orchestrator.report.links import Links, md_link, md_text
from orchestrator.report.model import MARKER, Report

GITHUB_COMMENT_LIMIT = 65_536


@dataclass(frozen=True)
class _Level:
    refs: int
    """Evidence links per criterion."""
    rationale: int
    episodes: int
    provenance: int
    sections: bool
    """Per-grader sections with every criterion."""
    alert_refs: int
    """Evidence links per alert: never none, an alert without its evidence cannot be checked."""
    collection: int
    """Left-out items and late pushes listed."""


# Levels of detail, richest first.
_LEVELS = (_Level(6, 600, 30, 30, True, 12, 20), _Level(3, 240, 10, 10, True, 6, 10),
           _Level(0, 120, 5, 0, False, 3, 5))
_TRUNCATED = "\n\n_…cut to fit a GitHub comment: the full report is report.html in the evidence bundle._\n"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("orchestrator.report", "templates"), autoescape=False,  # noqa: S701 - Markdown, escaped by md_text
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.filters.update(md=md_text, link=lambda pair: md_link(*pair), bar=views.bar)
    return env


def render_markdown(report: Report, *, html_url: str | None = None, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    template = _environment().get_template("report.md.j2")
    links = views.links_for(report, html_url)
    text = ""
    for level in _LEVELS:
        text = template.render(**_context(report, links, level, html_url))
        if len(text) <= limit:
            return text
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED


def _context(report: Report, links: Links, level: _Level, html_url: str | None) -> dict[str, Any]:
    steering = views.steering_details(report)
    revision = report.revision or {}
    sha = str(revision.get("sha", ""))
    prof = steering.get("profile") or {}
    categories = [(name, data["turns"], data["share"]) for name, data in (prof.get("categories") or {}).items()
                  if data.get("turns")]
    return {
        "marker": MARKER,
        "report": report,
        "trial": report.trial,
        "overall": report.to_json()["overall"],
        "graders": views.grader_views(report, links, in_html=False, max_refs=level.refs),
        "rationale_limit": level.rationale,
        "alerts": views.alert_views(report, links, in_html=False, max_refs=level.alert_refs),
        "collection": views.collection_view(report, level.collection),
        "max_refs": level.refs,
        "sections": level.sections,
        "revision": revision,
        "sha_link": md_link(sha[:8], links.resolve(f"commit:{sha}")[1]) if sha else "",
        "html_note": (f"[full report with timeline]({html_url})" if html_url
                      else "full report with timeline: `report.html` in the evidence bundle"),
        "profile_turns": prof.get("turns", 0),
        "categories": categories,
        "episodes": (steering.get("episodes") or [])[:level.episodes],
        "episodes_total": len(steering.get("episodes") or []),
        "event": lambda index: md_link(f"event {index}", links.resolve(f"event:{index}")[1]),
        "commit": lambda sha_: md_link(sha_[:8], links.resolve(f"commit:{sha_}")[1]),
        "provenance": views.provenance_rows(report)[:level.provenance],
        "reviewer_keys": views.reviewer_keys(report),
        "aliases": views.REVIEWER_ALIASES,
    }
