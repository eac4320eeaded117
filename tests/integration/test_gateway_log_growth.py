"""A 200-turn agent session through the real gateway: its log grows with its content, not its square.

The session has Claude Code's shape (a system prompt and tools resent every turn, the whole
conversation resent every turn, the cache_control marker moved to the newest message, a
tool result of a few KB per turn). Its log must stay within 2x of its distinct content (the
last request, which holds every message, plus every response), store each tool result once,
pass `trial verify`, catch a one-byte change in a block, and read back, through the one
reader, exactly what the provider received and the same exchanges and events as a log of the
same session written in the old whole-request format.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.evidence.bundle import GATEWAY_LOG
from orchestrator.evidence.events import build_events
from orchestrator.evidence.exchanges import read_log
from orchestrator.gateway.blocks import canonical
from orchestrator.gateway.log import read_records, verify_chain
from tests.fakes.llm_upstream import Knobs
from tests.fixtures.long_session import distinct_bytes, rewrite_whole, run_session
from tests.integration.gateway_harness import running_gateway

pytestmark = pytest.mark.unit  # loopback sockets only, no Docker

TURNS = 200


def test_a_200_turn_session_logs_linearly_and_reads_back_exactly(tmp_path: Path) -> None:
    with running_gateway(budget_usd=1000.0) as gw:
        gw.fake.knobs = Knobs(tool_call=True, input_tokens=200)
        sent, _ = run_session(gw.urls["anthropic"], gw.token, TURNS)
        received = [recorded.body for recorded in gw.fake.requests]
        log = tmp_path / "new" / GATEWAY_LOG
        log.parent.mkdir()
        shutil.copyfile(gw.log, log)

    records = list(read_records(log))
    assert len(records) == TURNS
    # Byte for byte the canonical JSON the agent sent and the provider received.
    assert [canonical(r["request"]) for r in records] == [canonical(b) for b in received] == \
        [canonical(b) for b in sent]

    raw = log.read_bytes()
    stored = [json.loads(line) for line in raw.splitlines()]
    names = [name for record in stored for name in record.get("blocks", {})]
    assert len(names) == len(set(names))  # each block stored once
    for turn in range(1, TURNS):
        assert raw.count(f"marker-{turn:04d}".encode()) == 1  # each tool result once, in a 200-turn session
    distinct = distinct_bytes(records)

    old = tmp_path / "old" / GATEWAY_LOG
    rewrite_whole(log, old)
    ratio = len(raw) / distinct
    print(f"\n200-turn session: log {len(raw):,} B ({len(raw) // TURNS:,} B/turn), distinct content "
          f"{distinct:,} B, ratio {ratio:.2f}; whole-request log {old.stat().st_size:,} B "
          f"({old.stat().st_size // TURNS:,} B/turn, {old.stat().st_size / len(raw):.0f}x)")
    assert ratio <= 2.0

    assert verify_chain(log).ok and verify_chain(old).ok
    for path in (log, old):
        result = CliRunner().invoke(cli, ["verify", "--log", str(path), "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["data"]["ok"] is True

    # The graders' view: the same exchanges, the same timeline, from either format.
    assert list(read_log(log)) == list(read_log(old))
    assert build_events(log.parent, []) == build_events(old.parent, [])
    assert [r["request"] for r in read_records(old)] == [r["request"] for r in records]

    # One byte of one stored tool result changed: `trial verify` names that record.
    at = raw.index(b"marker-0150") + 30
    log.write_bytes(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:])
    result = CliRunner().invoke(cli, ["verify", "--log", str(log), "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    verdict = json.loads(result.output)["data"]
    assert verdict["ok"] is False and verdict["first_bad_seq"] == 151
