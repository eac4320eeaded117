"""`trial verify` and `trial usage` through the real `trial` Click group, on real log files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.errors import NotFoundError
from orchestrator.gateway.log import TrialLog, log_path
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


def add_trial(home: Path, trial_id: str, budget: float, records: list[dict[str, Any]]) -> Path:
    store = Store.open(home)
    now = utcnow()
    store.create_trial(Trial(id=trial_id, template="demo", candidate="octocat", agent="none", state="active",
                             created_at=now, updated_at=now, hours=1, budget_usd=budget))
    store.close()
    path = log_path(home, trial_id)

    async def write() -> None:
        log = TrialLog.open(path)
        for record in records:
            await log.append(record)
        await log.close()

    asyncio.run(write())
    return path


def record(cost: float, model: str = "claude-sonnet-4-5", **extra: Any) -> dict[str, Any]:
    return {"ts": "2026-11-24T10:00:00.000+00:00", "model": model, "status": 200, "outcome": "ok",
            "upstream": True, "usage": {"input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 5,
                                        "cache_write_tokens": 0},
            "cost_usd": cost, "request": {}, "response": {}, **extra}


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_verify_ok_then_broken_after_tampering(trial_home: Path) -> None:
    path = add_trial(trial_home, "tabc0001", 5.0, [record(0.01), record(0.02), record(0.03)])
    result = run("verify", "tabc")  # a unique prefix is enough
    assert result.exit_code == 0, result.output
    assert "3 records, chain intact" in result.output

    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"cost_usd":0.02', b'"cost_usd":0.00')
    path.write_bytes(b"".join(lines))
    result = run("verify", "tabc0001")
    assert result.exit_code == 1
    assert "record 2" in result.output and "first 1 records verify" in result.output

    result = run("verify", "tabc0001", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)["data"]
    assert (data["ok"], data["first_bad_seq"], data["records"]) == (False, 2, 1)


@pytest.mark.parametrize("edit", [lambda data: data[:-1], lambda data: data + b"\n", lambda data: data + b"x"])
def test_verify_fails_when_the_last_newline_changes_or_bytes_follow(trial_home: Path, edit: Any) -> None:
    path = add_trial(trial_home, "tabc0003", 5.0, [record(0.01), record(0.02)])
    original = path.read_bytes()
    path.write_bytes(edit(original))
    result = run("verify", "tabc0003")
    assert result.exit_code == 1, result.output
    assert "broken" in result.output and "offset" in result.output
    data = json.loads(run("verify", "tabc0003", "--json").output)["data"]
    assert data["ok"] is False and data["offset"] in (len(original.splitlines(keepends=True)[0]), len(original))


def test_verify_a_copied_log_and_unknown_trials(trial_home: Path, tmp_path: Path) -> None:
    path = add_trial(trial_home, "tabc0002", 5.0, [record(0.01)])
    copy = tmp_path / "gateway.jsonl"
    copy.write_bytes(path.read_bytes())
    result = run("verify", "--log", str(copy), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["data"]["records"] == 1
    with pytest.raises(NotFoundError):
        run("verify", "tnothere")


def test_usage_lists_every_trial_with_cost_against_budget(trial_home: Path) -> None:
    add_trial(trial_home, "tuse0001", 1.0, [record(0.25), record(0.5, model="mystery",
                                                                   pricing={"key": None, "fallback": True}),
                                            record(0.0, status=429, outcome="refused_budget", upstream=False)])
    add_trial(trial_home, "tuse0002", 2.0, [])
    result = run("usage", "--json")
    assert result.exit_code == 0
    rows = {row["trial_id"]: row for row in json.loads(result.output)["data"]["trials"]}
    first = rows["tuse0001"]
    assert (first["requests"], first["refused"], first["input_tokens"], first["output_tokens"]) == (2, 1, 200, 20)
    assert first["cost_usd"] == pytest.approx(0.75) and first["remaining_usd"] == pytest.approx(0.25)
    assert first["unpriced_models"] == ["mystery"]
    assert rows["tuse0002"]["requests"] == 0 and rows["tuse0002"]["budget_usd"] == 2.0

    text = run("usage", "tuse0001").output
    assert "tuse0001" in text and "$0.7500" in text and "$1.00" in text and "tuse0002" not in text
    assert "2 (+1 refused)" in text and "200/20" in text
    assert "mystery not in the price table" in text
