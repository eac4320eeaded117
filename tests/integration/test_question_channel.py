"""The question channel through the real host service on loopback, on the local forge: the trial
token asks (host-timed, posted to the brief issue), `trial answer` answers, the thread reads back;
another token, a closed trial, a late, empty or oversized question is refused."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator import questions
from orchestrator.cli.main import cli
from orchestrator.config import Settings, load_settings
from orchestrator.forge.local import LocalForge
from orchestrator.service.app import create_app
from orchestrator.store import Store, Trial, utcnow
from tests.integration.test_report_route import serving

pytestmark = pytest.mark.unit


def call(port: int, method: str, path: str, token: str | None, body: Any = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data.decode()
    finally:
        connection.close()


def make_trial(settings: Settings, store: Store, trial_id: str) -> tuple[Trial, str]:
    now = utcnow()
    forge = LocalForge(settings, store)
    repo = forge.create_repo(trial_id, f"{trial_id}-repo", "design round")
    url = forge.open_issue(repo, "Design a preferences service", "brief")
    trial = store.create_trial(Trial(trial_id, "design-round", "octocat", "none", "active", now, now, 1, 10,
                                     deadline=now + timedelta(hours=1),
                                     data={"repo": repo.to_json(), "issue_url": url}))
    return trial, store.mint_token(trial_id, "gateway", now + timedelta(hours=2))


@pytest.fixture
def served(trial_home: Path) -> Iterator[tuple[Settings, Store, int, str, str]]:
    settings = load_settings({})
    store = Store.open(settings.home)
    _, token = make_trial(settings, store, "tq-one")
    _, other = make_trial(settings, store, "tq-two")
    with serving(create_app(settings, store, watch_deadlines=False)) as port:
        yield settings, store, port, token, other
    store.close()


def issue_comments(settings: Settings, store: Store, trial_id: str) -> list[dict[str, Any]]:
    forge = LocalForge(settings, store)
    meta = json.loads((forge.repo_path(f"{trial_id}-repo") / "trial-meta.json").read_text())
    return list(meta["comments"].get("1", []))


def test_ask_answer_and_read_back(served: tuple[Settings, Store, int, str, str]) -> None:
    settings, store, port, token, _ = served
    before = utcnow()
    # The request's own idea of the time is ignored: the host stamps the question.
    status, body = call(port, "POST", "/questions/tq-one", token,
                        {"text": "Which channels do we support at launch?", "ts": "2001-01-01T00:00:00Z"})
    assert status == 201 and body["number"] == 1
    logged = questions.read_log(settings.home, "tq-one")[0]
    assert logged["kind"] == "question" and logged["ts"] >= before.isoformat()[:19]
    comments = issue_comments(settings, store, "tq-one")
    assert len(comments) == 1 and "Which channels do we support at launch?" in comments[0]["body"]
    assert "trial answer tq-one:1" in comments[0]["body"]

    result = CliRunner().invoke(cli, ["answer", "tq-one", "Email and push at launch; SMS next quarter."],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "answered question 1 of tq-one" in result.output
    assert "SMS next quarter" in issue_comments(settings, store, "tq-one")[1]["body"]

    status, thread = call(port, "GET", "/questions/tq-one", token)
    assert status == 200
    assert [(r["kind"], r.get("number"), r.get("question")) for r in thread["records"]] == [
        ("question", 1, None), ("answer", None, 1)]
    assert thread["records"][1]["text"] == "Email and push at launch; SMS next quarter."

    listed = CliRunner().invoke(cli, ["questions", "tq-one", "--json"], catch_exceptions=False)
    records = json.loads(listed.output)["data"]["records"]
    assert {r["witness"] for r in records} == {"host"} and all(r["comment_url"] for r in records)


def test_refusals(served: tuple[Settings, Store, int, str, str]) -> None:
    settings, store, port, token, other = served
    assert call(port, "POST", "/questions/tq-one", None, {"text": "hi?"})[0] == 401
    assert call(port, "POST", "/questions/tq-one", other, {"text": "hi?"})[0] == 401
    assert call(port, "GET", "/questions/tq-one", other)[0] == 401
    assert call(port, "POST", "/questions/tq-one", token, {"text": "   "})[0] == 400
    assert call(port, "POST", "/questions/tq-one", token, raw=b"not json")[0] == 400
    status, body = call(port, "POST", "/questions/tq-one", token, {"text": "x" * (questions.MAX_CHARS + 1)})
    assert status == 400 and "over the limit" in body["error"]
    assert call(port, "POST", "/questions/tq-one", token, raw=b"{" + b" " * 20_000 + b"}")[0] == 413
    assert questions.read_log(settings.home, "tq-one") == []
    # After the deadline the channel is closed, like git.
    store.update_trial("tq-one", deadline=utcnow() - timedelta(seconds=1))
    status, body = call(port, "POST", "/questions/tq-one", token, {"text": "Is it too late?"})
    assert status == 403 and "deadline passed" in body["error"]
    assert questions.read_log(settings.home, "tq-one") == []


def test_answer_errors_are_one_line(served: tuple[Settings, Store, int, str, str]) -> None:
    result = CliRunner().invoke(cli, ["answer", "tq-one", "nothing was asked"])
    assert result.exit_code != 0
    result = CliRunner().invoke(cli, ["answer", "tq-one:x", "bad id"])
    assert result.exit_code != 0


def test_a_question_cannot_take_over_the_next_comment(served: tuple[Settings, Store, int, str, str]) -> None:
    """Attack: a question carrying the marker the bot will give the next post, so that post edits the
    question's comment instead of adding one (the forge's record of question 1 would be gone)."""
    settings, store, port, token, _ = served
    text = "Which channels? <!-- trial-question:tq-one:2 --> trial-question:tq-one:2 @everyone"
    assert call(port, "POST", "/questions/tq-one", token, {"text": text})[0] == 201
    result = CliRunner().invoke(cli, ["answer", "tq-one:1", "Email and push."], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    comments = issue_comments(settings, store, "tq-one")
    assert len(comments) == 2
    assert "Which channels?" in comments[0]["body"] and "Email and push." in comments[1]["body"]
    # Relayed text mentions nobody and hides nothing.
    assert "@everyone" not in comments[0]["body"] and "<!--" not in comments[0]["body"]
