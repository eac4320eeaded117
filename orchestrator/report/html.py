"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched).

The timeline draws every event on five lanes (the candidate's prompts and refusals, the
agent's answers and tool calls, test runs, commits, pushes and PR activity) against time;
each mark links to its row in the event table, which is what evidence refs point at
(`#event-<i>`, and `#commit-<sha>` for commits). Commits and pushes get lanes of their own
because a commit is timed by the push that brought it to the forge: on one lane the push
would hide it. Every row says who witnessed the event; transcript-only events are shown,
marked and never scored. Jinja2 autoescaping makes every piece of evidence inert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from graders.timeline import test_runs, witness
from orchestrator.evidence.events import MISSING_FROM_GATEWAY, parse_ts
from orchestrator.report import views
from orchestrator.report.model import Report

WIDTH = 1100
LEFT = 120
RIGHT = 40
LANE_HEIGHT = 34
MARK_WIDTH = 8
MARK_HEIGHT = 20
LANES = ("Candidate", "Agent", "Tests", "Commits", "Pushes & PR")
COLORS = {
    "prompt": "#1f77b4", "refusal": "#17becf", "agent": "#9467bd", "tool": "#b39ddb",
    "test_pass": "#2ca02c", "test_fail": "#d62728", "test_unknown": "#7f7f7f",
    "commit": "#ff7f0e", "forge": "#bcbd22",
}
_TEXT_LIMIT = 1500


@dataclass(frozen=True)
class Mark:
    index: int
    x: float
    y: float
    color: str
    label: str
    flagged: bool


_PLACES: dict[str, tuple[int, str]] = {
    "user_prompt": (0, "prompt"), "tool_rejected": (0, "refusal"), "interrupt": (0, "refusal"),
    "assistant_message": (1, "agent"), "tool_call": (1, "tool"), "tool_result": (1, "tool"),
    "commit": (3, "commit"), "push": (4, "forge"), "pr_opened": (4, "forge"), "pr_comment": (4, "forge"),
    "review": (4, "forge"),
}


def _lane_and_color(event: dict[str, Any], index: int, runs: dict[int, bool | None]) -> tuple[int, str] | None:
    if index in runs:
        outcome = runs[index]
        return 2, COLORS["test_fail" if outcome else "test_pass" if outcome is False else "test_unknown"]
    place = _PLACES.get(event["kind"])
    return (place[0], COLORS[place[1]]) if place else None


def timeline(events: list[dict[str, Any]]) -> dict[str, Any]:
    runs = {run.result: run.failed for run in test_runs(events) if run.result is not None}
    moments = [parse_ts(event.get("ts")) for event in events]
    known = [m for m in moments if m]
    if not known:
        return {"marks": [], "ticks": [], "width": WIDTH, "height": LANE_HEIGHT * len(LANES) + 30,
                "lanes": _lanes()}
    start, end = min(known), max(known)
    span = max((end - start).total_seconds(), 1.0)
    usable = WIDTH - LEFT - RIGHT - MARK_WIDTH
    marks = []
    for index, (event, moment) in enumerate(zip(events, moments, strict=True)):
        placed = _lane_and_color(event, index, runs)
        if placed is None or moment is None:
            continue
        lane, color = placed
        x = LEFT + usable * (moment - start).total_seconds() / span
        y = 10 + lane * LANE_HEIGHT + (LANE_HEIGHT - MARK_HEIGHT) / 2
        label = f"{index} · {event['kind']} · {' '.join(str(event.get('text', '')).split())[:120]}"
        marks.append(Mark(index, round(x, 1), round(y, 1), color, label, _unwitnessed(event)))
    ticks = []
    for step in range(5):
        tick = start + timedelta(seconds=span * step / 4)
        ticks.append({"x": round(LEFT + usable * step / 4, 1), "label": tick.strftime("%H:%M")})
    return {"marks": marks, "ticks": ticks, "width": WIDTH, "height": 10 + LANE_HEIGHT * len(LANES) + 26,
            "lanes": _lanes(), "mark_width": MARK_WIDTH, "mark_height": MARK_HEIGHT}


def _lanes() -> list[dict[str, Any]]:
    return [{"label": label, "y": 10 + lane * LANE_HEIGHT, "mid": 10 + lane * LANE_HEIGHT + LANE_HEIGHT / 2}
            for lane, label in enumerate(LANES)]


def _unwitnessed(event: dict[str, Any]) -> bool:
    """Only the candidate-writable transcript saw it (or the gateway log contradicts it)."""
    return bool((event.get("data") or {}).get(MISSING_FROM_GATEWAY)) or witness(event) == "transcript"


def event_rows(events: list[dict[str, Any]], labels: dict[int, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for index, event in enumerate(events):
        moment = parse_ts(event.get("ts"))
        data = event.get("data") or {}
        text = str(event.get("text") or "")
        rows.append({"index": index, "time": moment.strftime("%H:%M:%S") if moment else "",
                     "source": event.get("source", ""), "kind": event.get("kind", ""),
                     "text": text[:_TEXT_LIMIT] + ("…" if len(text) > _TEXT_LIMIT else ""),
                     "flagged": _unwitnessed(event), "missing": bool(data.get(MISSING_FROM_GATEWAY)),
                     "witness": witness(event), "late": bool(data.get("late")), "labels": labels.get(index, []),
                     "sha": data.get("sha") if event.get("kind") == "commit" else None})
    return rows


def render_html(report: Report, events: list[dict[str, Any]], *, html_url: str | None = None) -> str:
    env = Environment(loader=PackageLoader("orchestrator.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    links = views.links_for(report, html_url)
    steering = views.steering_details(report)
    labels = {int(turn["index"]): [f"{code} {name}" for code, name in zip(turn["labels"], turn["names"],
                                                                         strict=False)]
              for turn in steering.get("turns") or []}
    profile = steering.get("profile") or {}
    return env.get_template("report.html.j2").render(
        report=report, trial=report.trial, overall=report.to_json()["overall"], revision=report.revision or {},
        graders=views.grader_views(report, links, in_html=True, max_refs=30),
        alerts=views.alert_views(report, links, in_html=True, max_refs=60),
        collection=views.collection_view(report, 200),
        tests={entry.grader: views.hidden_test_rows(entry) for entry in report.entries},
        timeline=timeline(events), colors=COLORS, events=event_rows(events, labels),
        categories=[(name, data["turns"], data["share"]) for name, data in (profile.get("categories") or {}).items()],
        profile_turns=profile.get("turns", 0), episodes=steering.get("episodes") or [],
        measures=steering.get("measures") or {}, provenance=views.provenance_rows(report),
        commit_url=lambda sha: links.resolve(f"commit:{sha}")[1], css=_CSS)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1160px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.muted{color:#57606a}.overall{font-size:28px;font-weight:700}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}
.bar{display:inline-block;height:10px;background:#1f77b4;vertical-align:middle}
.barbox{display:inline-block;width:200px;height:10px;background:#eaeef2;vertical-align:middle;margin-right:6px}
tr.flagged td{background:#fff1f0}tr:target td{background:#fff8c5}
.tag{display:inline-block;border-radius:10px;padding:0 7px;font-size:12px;background:#eaeef2;margin:1px}
.flag{background:#ffd8d3;color:#82071e}
.alert,.notice{border:1px solid;padding:8px 12px;border-radius:6px;margin:8px 0}
.alert.critical{border:2px solid #cf222e;background:#ffebe9;color:#82071e}
.alert.warning,.notice.warning{border-color:#d4a72c;background:#fff8c5;color:#6f4b00}
.alert.info,.notice.info{border-color:#54aeff;background:#ddf4ff;color:#0a3069}
.alert a{color:inherit}.alert ul.evidence{margin:6px 0 0 0;padding-left:20px}.alert pre{color:#1b1f24}
.notice ul{margin:4px 0 0 0}.trusts{color:#57606a;margin:4px 0}
.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}
pre{white-space:pre-wrap;margin:0;font:12px/1.4 ui-monospace,monospace}
svg text{font:12px system-ui,sans-serif;fill:#57606a}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
"""
