"""report.md (the PR comment) and report.html (the self-contained page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.runner import grade_bundle
from orchestrator.catalog import load_template
from orchestrator.evidence.bundle import Bundle
from orchestrator.report.html import render_html
from orchestrator.report.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from orchestrator.report.model import MARKER, GraderEntry, Report
from tests.fixtures.bundle_builder import MINI_TEMPLATE, SESSIONS, SessionBuilder

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Bundle, Report]]:
    template = load_template(MINI_TEMPLATE)
    found = {}
    for name in ("careful", "spoofing"):
        bundle = Bundle(SESSIONS[name](tmp_path_factory.mktemp(name)))
        found[name] = (bundle, grade_bundle(bundle, template, GradeContext()))
    return found


def test_the_comment_links_commits_events_and_the_html(graded: dict[str, tuple[Bundle, Report]]) -> None:
    bundle, report = graded["careful"]
    text = render_markdown(report, html_url="https://reports.example.test/t-careful/report.html")
    assert text.startswith(MARKER + "\n")
    for commit in bundle.commits()[1:]:
        assert f"https://github.com/acme/t-careful/commit/{commit['sha']}" in text
    assert "[event 7](https://reports.example.test/t-careful/report.html#event-7)" in text
    assert "(https://reports.example.test/t-careful/report.html)" in text
    assert re.search(r"\| Steering the agent \| 2 \| [\d.]+/\d+ \(\d+%\) \|", text)  # the number is steering's
    assert "Inaccurate self-reporting → **corrected**" in text
    assert "`/score steering 3" in text and "trial scores t-careful" in text
    assert "Only reviewers' lines count" in text
    # Without a place for the HTML, events are named but not linked.
    plain = render_markdown(report)
    assert "event 7" in plain and "#event-7" not in plain and "`report.html` in the evidence bundle" in plain
    assert (bundle.path / "report.md").read_text() == plain


def test_evidence_text_cannot_inject_markup_into_the_comment(tmp_path: Path) -> None:
    s = SessionBuilder(tmp_path, trial_id="t-inject")
    s.prompt(1, "No, that's not what I asked @acme/reviewers <img src=x onerror=alert(1)> [win](https://evil.test)")
    s.reply(2, "ok")
    s.human_write("calc/x.py", "x = 1\n")
    s.commit(3, "Add <script>alert(1)</script> and [link](https://evil.test) @acme/everyone")
    s.open_pr(4, "Title with <b>html</b> | pipes", "## Problem\n<img src=x> @octocat\n")
    text = render_markdown(grade_bundle(Bundle(s.build()), load_template(MINI_TEMPLATE), GradeContext()))
    assert "<img" not in text and "<script" not in text and "<b>html" not in text
    assert "[win](https://evil.test)" not in text and "[link](https://evil.test)" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "@acme/reviewers" not in text and "@\u200bacme/reviewers" in text
    assert "@octocat" not in text


def _huge_report() -> Report:
    episodes = [{"index": i, "forms": ["S5"], "form_names": ["Faulty implementation"], "triggers": [i - 1],
                 "resolution": "corrected", "resolved_at": i + 1, "quote": "still failing " * 30,
                 "resolution_text": "x", "evidence": [i]} for i in range(1, 3000)]
    steering = GraderResult("steering", criteria=[
        Criterion(f"c{i}", f"Criterion {i}", 1.0, 4.0, "because " * 200, [f"event:{j}" for j in range(40)])
        for i in range(60)], summary="long " * 100,
        details={"episodes": episodes, "profile": {"turns": 3000, "categories": {
            "Code Authoring": {"turns": 3000, "share": 1.0}}}})
    provenance = GraderResult("provenance", criteria=[Criterion("traceable", "T", 4.0, 4.0, "ok")],
                              details={"commits": [{"sha": f"{i:040x}", "subject": "s" * 200, "turns": [1, 2],
                                                    "prompts": [0], "agent_lines": 3, "own_lines": 1, "event": 1}
                                                   for i in range(2000)]})
    return Report(trial={"id": "t-huge", "candidate": "dana", "template": "mini"}, bundle_sha256="0" * 64,
                  entries=[GraderEntry("steering", 1.0, steering), GraderEntry("provenance", 1.0, provenance)],
                  repo={"web_url": "https://github.com/acme/t-huge"}, revision={"sha": "a" * 40})


def test_the_comment_fits_github_whatever_the_session_held() -> None:
    report = _huge_report()
    text = render_markdown(report)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.startswith(MARKER) and "| Steering the agent |" in text
    assert "For reviewers" in text  # shortened rather than cut: the rubric instructions survive
    tiny = render_markdown(report, limit=2000)
    assert len(tiny) <= 2000 and tiny.startswith(MARKER) and "cut to fit a GitHub comment" in tiny


def test_the_html_is_self_contained_and_every_evidence_link_resolves(
        graded: dict[str, tuple[Bundle, Report]]) -> None:
    bundle, _ = graded["careful"]
    html = (bundle.path / "report.html").read_text()
    lowered = html.lower()
    assert "<script" not in lowered and "<link" not in lowered and "src=" not in lowered
    assert "url(" not in lowered and "@import" not in lowered
    assert "content-security-policy" in lowered and "default-src 'none'" in html
    assert '<meta name="referrer" content="no-referrer">' in html  # served under a capability link
    events = bundle.events()
    anchors = set(re.findall(r'id="event-(\d+)"', html))
    assert anchors == {str(i) for i in range(len(events))}
    linked = set(re.findall(r'href="#event-(\d+)"', html))
    assert linked and linked <= anchors
    marks = re.findall(r'<a href="#event-\d+"><rect ', html)
    assert len(marks) == len(events)  # every event of this session sits on a timeline lane
    assert 'href="https://github.com/acme/t-careful/commit/' in html
    assert "Pushback episodes" in html and "Intent profile" in html


def test_the_html_escapes_evidence_and_flags_what_the_gateway_never_saw(
        graded: dict[str, tuple[Bundle, Report]], tmp_path: Path) -> None:
    bundle, report = graded["spoofing"]
    html = (bundle.path / "report.html").read_text()
    assert html.count('class="flagged"') == 2 and 'stroke-dasharray="3 2"' in html
    events = [{"ts": "2025-01-01T00:00:00Z", "source": "claude-code", "kind": "user_prompt", "session": "s",
               "text": "<script>alert(1)</script>", "data": {}}]
    rendered = render_html(report, events)
    assert "<script>alert" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_alerts_come_first_in_both_renderings(graded: dict[str, tuple[Bundle, Report]]) -> None:
    bundle, report = graded["spoofing"]
    [alert] = [a for a in report.alerts if a["kind"] == "missing_from_gateway"]
    flagged = [f"event:{i}" for i, e in enumerate(bundle.events()) if e["data"].get("missing_from_gateway")]
    assert alert["evidence_refs"] == flagged and len(flagged) == 2
    text = (bundle.path / "report.md").read_text()
    assert text.index("never reached the gateway") < text.index("| Grader |")
    assert text.index("[!CAUTION]") < text.index("**Overall:")  # before the score itself
    html = (bundle.path / "report.html").read_text()
    assert html.index('class="alert critical"') < html.index('class="overall"') < html.index('id="timeline"')
    careful, careful_report = graded["careful"]
    assert careful_report.alerts == [] and 'class="alert' not in (careful.path / "report.html").read_text()
    assert "[!CAUTION]" not in (careful.path / "report.md").read_text()
