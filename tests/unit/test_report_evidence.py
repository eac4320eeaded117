"""What a reviewer sees first and what they can click: alerts by severity at the top, what each
grader trusts, what collection left out, pushes after the deadline, and every evidence ref
linked to report.html's anchors or the forge's commit page."""

from __future__ import annotations

import json
import re

import pytest

from graders.base import Criterion, GradeContext, GraderResult
from graders.runner import grade_bundle
from orchestrator.catalog import load_template
from orchestrator.evidence.bundle import Bundle
from orchestrator.report.collection import collection_notes
from orchestrator.report.html import render_html
from orchestrator.report.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from orchestrator.report.model import MARKER, GraderEntry, Report, alert_severity
from tests.fixtures.bundle_builder import MINI_TEMPLATE, SESSIONS

pytestmark = pytest.mark.unit

HTML_URL = "http://trial.example.test:7717/reports/t-careful/0123456789abcdef0123456789abcdef/report.html"
HIDDEN_ID = "hidden_tests/test_calc.py::test_precedence[2 + 3 * 4]"


@pytest.fixture(scope="module")
def careful(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Report]:
    bundle = Bundle(SESSIONS["careful"](tmp_path_factory.mktemp("careful")))
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    # What helpers H4 and H7 record in the manifest, in the shapes they may take.
    manifest["left_out"] = [{"what": "transcripts/claude-code", "why": "folder over the 256 MB cap"},
                            "branch refs/heads/<script>x</script>: not a valid ref name"]
    manifest["transcripts_left_out"] = ["session-2.jsonl: nesting deeper than 200 levels"]
    manifest["late_pushes"] = [{"ts": "2025-03-03T10:05:00+00:00", "ref": "refs/heads/feature",
                                "after": "f" * 40, "pusher": "carol"}]
    (bundle.path / "manifest.json").write_text(json.dumps(manifest))
    report = grade_bundle(bundle, load_template(MINI_TEMPLATE), GradeContext(), html_url=HTML_URL)
    return bundle, report


def _with(report: Report, **changes: object) -> Report:
    data = report.to_json()
    data.update(changes)
    return Report.from_json(data)


TAMPERED = {"kind": "hidden_tests_tampered", "severity": "critical",
            "message": "Canary test_zz_must_fail passed: the run was rewritten. Hidden tests score 0.",
            "evidence_refs": [f"test:{HIDDEN_ID}", "event:3", "commit:" + "c" * 40]}
RUNNER = {"kind": "reaches_for_test_runner", "message": "conftest.py imports _pytest internals",
          "evidence_refs": ["commit:" + "d" * 40]}
ONLY_TRANSCRIPT = {"kind": "transcript_only_events", "message": "3 events only the transcript saw",
                   "evidence_refs": ["event:2"]}


def test_alert_severity_is_kept_or_filled_in_for_older_alerts() -> None:
    assert alert_severity({"kind": "missing_from_gateway"}) == "critical"
    assert alert_severity({"kind": "test_harness_tampered"}) == "critical"
    assert alert_severity({"kind": "transcript_only_events"}) == "warning"
    assert alert_severity({"kind": "reaches_for_test_runner"}) == "info"
    assert alert_severity({"kind": "reaches_for_test_runner", "severity": "critical"}) == "critical"
    # A kind this renderer does not know is shown as the worst it could be, never milder.
    assert alert_severity({"kind": "something_new"}) == "critical"
    assert alert_severity({"kind": "something_new", "severity": "bogus"}) == "critical"
    report = Report(trial={}, bundle_sha256="", alerts=[{"kind": "reaches_for_test_runner", "message": "m",
                                                         "evidence_refs": []}])
    assert report.to_json()["alerts"][0]["severity"] == "info"
    assert Report.from_json(report.to_json()).alerts[0]["severity"] == "info"


def test_a_tampering_alert_is_red_and_first_with_its_evidence_linked(careful: tuple[Bundle, Report]) -> None:
    bundle, report = careful
    report = _with(report, alerts=[RUNNER, ONLY_TRANSCRIPT, TAMPERED])  # most severe listed last on purpose
    text = render_markdown(report, html_url=HTML_URL)
    head = text[: text.index("**Overall:")]
    # GitHub renders [!CAUTION] red, [!WARNING] amber, [!NOTE] blue: tampering first, before the score.
    assert head.index("[!CAUTION]") < head.index("[!WARNING]") < head.index("[!NOTE]")
    assert "**Tampering: Hidden tests tampered with.**" in head
    tampered = head[head.index("[!CAUTION]"):head.index("[!WARNING]")]
    assert f"]({HTML_URL}#test-" in tampered and f"[event 3]({HTML_URL}#event-3)" in tampered
    assert "(https://github.com/acme/t-careful/commit/" + "c" * 40 + ")" in tampered
    html = render_html(report, bundle.events(), html_url=HTML_URL)
    assert html.index('class="alert critical"') < html.index('class="alert warning"') \
        < html.index('class="alert info"') < html.index('class="overall"')
    critical = html[html.index('class="alert critical"'):html.index('class="alert warning"')]
    test_anchor = re.search(r'href="#(test-[0-9a-f]{16})"', critical)
    assert test_anchor and 'href="#event-3"' in critical


def test_alerts_keep_their_evidence_when_the_comment_is_shortened(careful: tuple[Bundle, Report]) -> None:
    _, report = careful
    many = {**TAMPERED, "evidence_refs": [f"event:{i}" for i in range(40)]}
    report = _with(report, alerts=[many])
    tiny = render_markdown(report, html_url=HTML_URL, limit=6000)
    assert len(tiny) <= 6000 and "[!CAUTION]" in tiny and f"[event 0]({HTML_URL}#event-0)" in tiny
    assert "more" in tiny[tiny.index("[!CAUTION]"):tiny.index("**Overall:")]


def test_each_grader_says_what_it_trusts(careful: tuple[Bundle, Report]) -> None:
    bundle, report = careful
    data = report.to_json()
    data["graders"][0]["details"]["trusts"] = "JUnit XML from a fresh verifier container, under canaries"
    data["graders"][1]["details"]["trusts"] = "Gateway-witnessed prompts only; <transcript-only> never"
    trusted = Report.from_json(data)
    text = render_markdown(trusted)
    assert "*Trusts:* JUnit XML from a fresh verifier container, under canaries" in text
    assert "*Trusts:* Gateway-witnessed prompts only; &lt;transcript-only&gt; never" in text
    html = render_html(trusted, bundle.events())
    assert '<p class="trusts"><b>Trusts:</b> JUnit XML from a fresh verifier container' in html
    assert "&lt;transcript-only&gt;" in html
    # Shortened to the last level, the comment still says it, in one list.
    tiny = render_markdown(trusted, limit=6000)
    assert len(tiny) <= 6000 and "<details>" not in tiny and "What each score trusts:" in tiny
    assert "- **Hidden tests**: JUnit XML from a fresh verifier container, under canaries" in tiny


def test_left_out_items_and_late_pushes_are_listed(careful: tuple[Bundle, Report]) -> None:
    bundle, report = careful
    assert report.collection is not None
    whats = [item["what"] for item in report.collection["left_out"]]
    assert whats == ["transcripts/claude-code", "", "transcripts"]
    text = (bundle.path / "report.md").read_text()
    assert "**Collection left out 3 item(s)**" in text
    assert "transcripts/claude-code: folder over the 256 MB cap" in text
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "**1 push(es) after the deadline**: shown, not graded" in text
    assert "refs/heads/feature → [ffffffff](https://github.com/acme/t-careful/commit/" + "f" * 40 in text
    assert text.index("Collection left out") < text.index("| Grader |")
    html = (bundle.path / "report.html").read_text()
    assert 'id="left-out"' in html and 'id="late-pushes"' in html and "&lt;script&gt;x" in html


def test_collection_notes_read_any_manifest_shape() -> None:
    assert collection_notes({}) == {"left_out": [], "more_left_out": 0, "late_pushes": [], "more_late_pushes": 0}
    notes = collection_notes({"left_out": {"pulls": "a thousand branches: only the first 200 read"},
                              "transcripts_left_out": ["x", "x"], "late_pushes": ["not a record", {"sha": "a"}]})
    assert notes["left_out"] == [{"what": "pulls", "why": "a thousand branches: only the first 200 read"},
                                 {"what": "transcripts", "why": "x"}]
    assert notes["late_pushes"] == [{"ref": "", "sha": "a", "at": "", "by": ""}]
    many = collection_notes({"left_out": [f"file {i}" for i in range(80)]})
    assert len(many["left_out"]) == 50 and many["more_left_out"] == 30


def test_every_link_in_the_comment_lands_on_an_anchor_of_the_html(careful: tuple[Bundle, Report]) -> None:
    bundle, _ = careful
    text = (bundle.path / "report.md").read_text()
    html = (bundle.path / "report.html").read_text()
    assert f"[full report with timeline]({HTML_URL})" in text
    fragments = set(re.findall(re.escape(HTML_URL) + r"#([\w-]+)\)", text))
    assert any(f.startswith("event-") for f in fragments)
    anchors = set(re.findall(r'id="([\w-]+)"', html))
    assert fragments <= anchors, fragments - anchors


def test_hidden_test_refs_land_on_their_row() -> None:
    criterion = Criterion("fail_to_pass", "Hidden tests now pass", 2.0, 4.0, "1 of 2",
                          [f"test:{HIDDEN_ID}", "test:hidden_tests/t.py::b"])
    result = GraderResult("hidden_tests", criteria=[criterion],
                          details={"fail_to_pass": {"outcomes": {HIDDEN_ID: "passed",
                                                                 "hidden_tests/t.py::b": "failed"}}})
    report = Report(trial={"id": "t1"}, bundle_sha256="", entries=[GraderEntry("hidden_tests", 3.0, result)])
    html = render_html(report, [])
    linked = re.findall(r'href="#(test-[0-9a-f]+)"', html)
    assert len(linked) == 2 and all(f'id="{anchor}"' in html for anchor in linked)
    text = render_markdown(report, html_url=HTML_URL)
    assert f"]({HTML_URL}#{linked[0]})" in text


def test_on_the_local_forge_commits_link_to_their_row_in_the_html(careful: tuple[Bundle, Report]) -> None:
    bundle, report = careful
    local = _with(report, repo={"forge": "local", "name": "t-careful", "full_name": "t-careful",
                                "web_url": "file:///srv/trial/forge/t-careful.git"})
    text = render_markdown(local, html_url=HTML_URL)
    html = render_html(local, bundle.events(), html_url=HTML_URL)
    assert "file://" not in text
    shas = [c["sha"] for c in bundle.commits()[1:]]
    for sha in shas:
        assert f"]({HTML_URL}#commit-{sha})" in text
        assert f'id="commit-{sha}"' in html and f'href="#commit-{sha}"' in html
    # Without a served HTML the comment names commits without a dead link.
    assert "#commit-" not in render_markdown(local)


def test_links_keep_the_comment_under_githubs_limit() -> None:
    episodes = [{"index": i, "forms": ["S5"], "form_names": ["Faulty implementation"], "triggers": [i - 1],
                 "resolution": "corrected", "resolved_at": i + 1, "quote": "q " * 50, "resolution_text": "x",
                 "evidence": [i]} for i in range(1, 3000)]
    steering = GraderResult("steering", criteria=[
        Criterion(f"c{i}", f"Criterion {i}", 1.0, 4.0, "because " * 200, [f"event:{j}" for j in range(40)])
        for i in range(60)], details={"episodes": episodes, "trusts": "gateway " * 100})
    report = Report(trial={"id": "t-huge"}, bundle_sha256="0" * 64, entries=[GraderEntry("steering", 1.0, steering)],
                    repo={"forge": "local", "web_url": "file:///x"}, revision={"sha": "a" * 40},
                    alerts=[{**TAMPERED, "evidence_refs": [f"event:{i}" for i in range(500)]}],
                    collection=collection_notes({"left_out": [f"file {i} " * 20 for i in range(500)]}))
    text = render_markdown(report, html_url=HTML_URL)
    assert len(text) <= GITHUB_COMMENT_LIMIT and text.startswith(MARKER)
    assert text.index("[!CAUTION]") < text.index("**Overall:") and "For reviewers" in text


def test_event_rows_say_who_witnessed_them_and_mark_late_pushes() -> None:
    events = [{"ts": "2025-03-03T09:00:00Z", "source": "claude-code", "kind": "user_prompt", "session": "s",
               "text": "typed into a transcript", "data": {}, "witness": "transcript"},
              {"ts": "2025-03-03T09:01:00Z", "source": "gateway", "kind": "user_prompt", "session": "s",
               "text": "seen by the gateway", "data": {"gateway_seq": 1}, "witness": "gateway"},
              {"ts": "2025-03-03T10:30:00Z", "source": "forge", "kind": "push", "session": "",
               "text": "push refs/heads/feature", "data": {"late": True, "after": "e" * 40}, "witness": "host"}]
    html = render_html(Report(trial={"id": "t1"}, bundle_sha256=""), events)
    rows = {int(i): row for i, row in re.findall(r'<tr id="event-(\d+)"(.*?)</tr>', html, re.S)}
    assert 'class="flagged"' in rows[0] and "transcript only: not scored" in rows[0]
    assert 'class="flagged"' not in rows[1] and "<td>gateway</td>" in rows[1]
    assert "after the deadline: not graded" in rows[2] and "<td>host</td>" in rows[2]


def test_structured_alert_evidence_is_shown_and_linked(careful: tuple[Bundle, Report]) -> None:
    """The hidden-tests grader's findings (graders.verifier, graders.runner_reach) as the runner carries them."""
    bundle, report = careful
    sha = str((report.revision or {}).get("sha"))
    tampered = {"kind": "hidden_tests_tampered", "evidence_refs": [],
                "message": "Hidden-test results were tampered with; hidden tests scored 0.",
                "evidence": [{"kind": "canary_passed", "message": "A test written to fail was reported as passing.",
                              "evidence": {"run": "hidden", "canaries": ["test_zz_canary_3f2a"]}}]}
    missing = {"kind": "hidden_tests_missing", "severity": "critical", "evidence_refs": [],
               "message": "The hidden run ended without results.",
               "evidence": [{"run": "hidden", "message": "No JUnit XML after the candidate's code ran.",
                             "evidence": {"exit_code": 0, "output_tail": "<script>alert(1)</script> bye"}}]}
    reaches = {"kind": "reaches_for_test_runner", "evidence_refs": [], "message": "2 lines reach for the runner",
               "evidence": [{"path": "calc/a (b).py", "line": 12, "pattern": "atexit", "text": "atexit.register(f)"},
                            {"path": "conftest.py", "line": 0, "pattern": "runner file",
                             "text": "adds or changes conftest.py"}]}
    alerted = _with(report, alerts=[reaches, tampered, missing])
    text = render_markdown(alerted, html_url=HTML_URL)
    head = text[: text.index("**Overall:")]
    assert head.index("**Tampering: Hidden tests tampered with.**") < head.index("[!NOTE]")
    assert "**Alert: Hidden-test results missing.**" in head  # a failure with an alert, not called tampering
    assert "canary passed: A test written to fail was reported as passing." in head
    assert f"[calc/a (b).py:12](https://github.com/acme/t-careful/blob/{sha}/calc/a%20%28b%29.py#L12)" in head
    assert f"(https://github.com/acme/t-careful/blob/{sha}/conftest.py)" in head
    assert "<script>" not in text
    html = render_html(alerted, bundle.events())
    assert "test_zz_canary_3f2a" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert f'href="https://github.com/acme/t-careful/blob/{sha}/calc/a%20%28b%29.py#L12"' in html
