"""The hash-chained gateway log: appends, verification, tampering, torn tails, summaries."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import EvidenceError, UsageError
from orchestrator.gateway.log import (
    GENESIS,
    GatewayLogs,
    TrialLog,
    log_path,
    record_hash,
    usage_summary,
    verify_chain,
)

pytestmark = pytest.mark.unit


def exchange(n: int, **extra: Any) -> dict[str, Any]:
    return {"ts": f"2026-11-24T10:00:{n:02d}.000+00:00", "trial_id": "t1", "route": "/anthropic/v1/messages",
            "model": "claude-sonnet-4-5", "status": 200, "outcome": "ok", "upstream": True,
            "usage": {"input_tokens": 10 * n, "output_tokens": n, "cache_read_tokens": 0, "cache_write_tokens": 0},
            "cost_usd": 0.001 * n, "request": {"messages": [{"role": "user", "content": f"question {n} — é"}]},
            "response": {"content": [{"type": "text", "text": f"answer {n}"}]}, **extra}


def write(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        log = TrialLog.open(path)
        try:
            return [await log.append(fields) for fields in records]
        finally:
            await log.close()
    return asyncio.run(run())


def test_records_chain_from_genesis_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    written = write(path, [exchange(n) for n in range(1, 4)])
    assert [record["seq"] for record in written] == [1, 2, 3]
    assert written[0]["prev_hash"] == GENESIS
    assert written[1]["prev_hash"] == written[0]["hash"] == record_hash(GENESIS, written[0])
    lines = path.read_bytes().splitlines()
    assert all(line.isascii() for line in lines)  # one fixed, ASCII serialization
    assert json.loads(lines[2]) == written[2]
    result = verify_chain(path)
    assert result.ok and result.records == 3 and result.first_bad_seq is None and result.head == written[2]["hash"]


def test_reopening_continues_the_chain_and_recovers_the_spend(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(1), exchange(2)])
    log = TrialLog.open(path)
    assert (log.state.seq, log.state.spent_usd) == (2, pytest.approx(0.003))
    asyncio.run(log.close())
    write(path, [exchange(3)])
    assert verify_chain(path).records == 3


def test_changing_any_single_byte_of_a_record_breaks_the_chain_at_that_record(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(n) for n in range(1, 5)])
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    start = len(lines[0]) + len(lines[1])  # record 3
    for offset in range(start, start + len(lines[2]) - 1):  # every byte but its newline
        tampered = bytearray(original)
        tampered[offset] = ord("E") if tampered[offset] != ord("E") else ord("e")
        path.write_bytes(bytes(tampered))
        result = verify_chain(path)
        assert not result.ok, f"byte {offset - start} of record 3 changed unnoticed"
        assert result.first_bad_seq == 3 and result.records == 2
        assert "record 3" in result.reason


def test_a_value_preserving_edit_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(1, cost_usd=1e-05)])
    text = path.read_text()
    assert "1e-05" in text
    path.write_text(text.replace("1e-05", "1E-05"))  # same number once parsed
    result = verify_chain(path)
    assert not result.ok and result.first_bad_seq == 1 and "serialization" in result.reason


def test_removing_or_reordering_records_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(n) for n in range(1, 5)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], lines[2], lines[3]]))
    assert verify_chain(path).first_bad_seq == 2
    path.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))
    assert verify_chain(path).first_bad_seq == 2
    # Recomputing a record's own hash after editing it does not help: the next record points at the old one.
    record = json.loads(lines[1])
    record["response"]["content"][0]["text"] = "a nicer answer"
    record["hash"] = record_hash(record["prev_hash"], record)
    forged = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join([lines[0], forged, lines[2], lines[3]]))
    result = verify_chain(path)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_torn_last_line_verifies_and_is_cut_when_the_writer_reopens(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(1), exchange(2)])
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[1][:57])  # a write that died half way
    result = verify_chain(path)
    # Bytes after the last complete record are not the chain: a torn write and a forged tail look
    # alike to a reader, so the copy fails verification; the live writer cuts them when it reopens.
    assert not result.ok and result.torn_tail and result.records == 2
    assert (result.first_bad_seq, result.offset) == (3, len(whole))
    write(path, [exchange(3)])
    assert path.read_bytes().startswith(whole)
    after = verify_chain(path)
    assert after.ok and not after.torn_tail and after.records == 3


def test_concurrent_appends_share_writes_and_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"

    async def run() -> list[dict[str, Any]]:
        log = TrialLog.open(path)
        try:
            return list(await asyncio.gather(*(log.append(exchange(n % 60)) for n in range(200))))
        finally:
            await log.close()

    records = asyncio.run(run())
    assert sorted(record["seq"] for record in records) == list(range(1, 201))
    assert verify_chain(path).records == 200


@pytest.mark.parametrize("mode", ["alone", "busy", "busy_large"])
def test_an_append_returns_only_once_its_record_is_written_and_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The promise behind every answer: its record is on disk (fdatasync) before the append returns.

    Whichever way the record goes: written from the loop by an exchange alone in flight,
    chained on the loop and flushed by the writer thread for a busy gateway, or serialized
    in the thread too when large.
    """
    from orchestrator.gateway import log as log_module

    path = tmp_path / "t1.jsonl"
    flushed: list[int] = []  # the file's size at each flush, in order
    real_flush = log_module._flush

    def spy(fd: int) -> None:
        real_flush(fd)
        flushed.append(os.fstat(fd).st_size)

    monkeypatch.setattr(log_module, "_flush", spy)
    seen: dict[int, int] = {}  # seq -> the largest flushed size when its append returned

    async def run() -> None:
        log = TrialLog.open(path)
        hint = 200_000 if mode == "busy_large" else 100

        async def one(n: int) -> None:
            record = await log.append(exchange(n % 60), hint, alone=mode == "alone")
            seen[record["seq"]] = max(flushed, default=0)

        try:
            if mode == "alone":
                for n in range(30):
                    await one(n)
            else:
                await asyncio.gather(*(one(n) for n in range(120)))
        finally:
            await log.close()

    asyncio.run(run())
    ends = list(itertools.accumulate(len(line) for line in path.read_bytes().splitlines(keepends=True)))
    assert sorted(seen) == list(range(1, len(ends) + 1))
    assert all(seen[seq] >= ends[seq - 1] for seq in seen)  # its line was inside a completed flush
    assert verify_chain(path).ok


def test_a_flusher_cancelled_mid_write_lets_the_write_finish_before_the_next_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.gateway import log as log_module

    path = tmp_path / "t1.jsonl"
    real_flush = log_module._flush

    def slow(fd: int) -> None:
        time.sleep(0.2)  # in the writer thread
        real_flush(fd)

    monkeypatch.setattr(log_module, "_flush", slow)

    async def run() -> None:
        log = TrialLog.open(path)
        try:
            first = [asyncio.ensure_future(log.append(exchange(n), 100)) for n in range(5)]
            await asyncio.sleep(0.05)  # the batch is in the writer thread
            assert log._flusher is not None
            log._flusher.cancel()
            await asyncio.sleep(0)
            # Appended meanwhile: must chain after the batch still being written, not from the old head.
            await asyncio.gather(*(log.append(exchange(n), 100) for n in range(5, 10)))
            for waiting in first:  # their flusher is gone (only loop teardown cancels it): so is their answer
                waiting.cancel()
        finally:
            await log.close()

    asyncio.run(run())
    result = verify_chain(path)
    assert result.ok and result.records == 10, result.reason


def test_one_writer_per_file(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    first = TrialLog.open(path)
    with pytest.raises(EvidenceError, match="held by another gateway"):
        TrialLog.open(path)
    asyncio.run(first.close())
    asyncio.run(TrialLog.open(path).close())


def test_logs_registry_opens_each_trial_once(tmp_path: Path) -> None:
    async def run() -> None:
        logs = GatewayLogs(tmp_path)
        first, second = await asyncio.gather(logs.get("t1"), logs.get("t1"))
        assert first is second and first.path == tmp_path / "gateway" / "t1.jsonl"
        await logs.close()

    asyncio.run(run())


def test_log_path_refuses_ids_that_would_escape_the_directory(tmp_path: Path) -> None:
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(UsageError):
            log_path(tmp_path, bad)


def test_verify_reports_a_missing_file_and_garbage(tmp_path: Path) -> None:
    assert not verify_chain(tmp_path / "nope.jsonl").ok
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    result = verify_chain(path)
    assert (result.ok, result.first_bad_seq) == (False, 1) and "not valid JSON" in result.reason


def test_usage_summary_totals_by_model_and_counts_refusals(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [
        exchange(1),
        exchange(2, model="gpt-5.4", usage={"input_tokens": 5, "output_tokens": 7, "cache_read_tokens": 3,
                                             "cache_write_tokens": 0, "estimated": True}),
        exchange(3, model="mystery", pricing={"key": None, "fallback": True}),
        exchange(4, status=429, outcome="refused_budget", upstream=False, usage={}, cost_usd=0.0),
        exchange(5, status=529, outcome="upstream_error", usage={}, cost_usd=0.0),
    ])
    summary = usage_summary(path)
    assert summary["requests"] == 4 and summary["refused"] == 1 and summary["errors"] == 1
    assert summary["input_tokens"] == 10 + 5 + 30
    assert summary["output_tokens"] == 1 + 7 + 3
    assert summary["cache_read_tokens"] == 3
    assert summary["cost_usd"] == pytest.approx(0.001 + 0.002 + 0.003)
    assert summary["estimated"] == 1
    assert summary["unpriced_models"] == ["mystery"]
    assert summary["models"]["gpt-5.4"]["requests"] == 1
    assert summary["first_ts"].endswith(":01.000+00:00") and summary["last_ts"].endswith(":05.000+00:00")
    assert usage_summary(tmp_path / "none.jsonl")["requests"] == 0


@pytest.mark.parametrize(("name", "edit"), [
    ("final newline removed", lambda data: data[:-1]),
    ("final newline doubled", lambda data: data + b"\n"),
    ("trailing garbage", lambda data: data + b"x"),
    ("trailing garbage line", lambda data: data + b"{}\n"),
    ("final newline as CRLF", lambda data: data[:-1] + b"\r\n"),
])
def test_any_change_at_the_end_of_the_log_fails_with_record_and_offset(tmp_path: Path, name: str,
                                                                       edit: Any) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(n) for n in range(1, 4)])
    original = path.read_bytes()
    path.write_bytes(edit(original))
    result = verify_chain(path)
    assert not result.ok, f"{name}: passed as intact"
    last_start = len(original) - len(original.splitlines(keepends=True)[-1])
    # The record that no longer matches is named, with the byte where it starts.
    if name in ("final newline removed", "final newline as CRLF"):
        assert (result.first_bad_seq, result.offset, result.records) == (3, last_start, 2), name
    else:
        assert (result.first_bad_seq, result.offset, result.records) == (4, len(original), 3), name
    assert f"offset {result.offset}" in result.reason


def test_every_one_byte_change_anywhere_fails(tmp_path: Path) -> None:
    path = tmp_path / "t1.jsonl"
    write(path, [exchange(n) for n in range(1, 3)])
    original = path.read_bytes()
    for offset in range(len(original)):
        tampered = bytearray(original)
        tampered[offset] = ord("\n") if tampered[offset] != ord("\n") else ord(" ")
        path.write_bytes(bytes(tampered))
        assert not verify_chain(path).ok, f"byte {offset} changed unnoticed"
    for offset in range(len(original) + 1):  # and one byte inserted anywhere
        path.write_bytes(original[:offset] + b" " + original[offset:])
        assert not verify_chain(path).ok, f"a byte inserted at {offset} went unnoticed"


@pytest.mark.parametrize("where", ["middle", "last", "packed"])
def test_a_request_given_with_its_encoding_writes_the_same_line_as_one_encoded_here(
        tmp_path: Path, where: str) -> None:
    from orchestrator.gateway.blocks import canonical
    from orchestrator.gateway.log import Encoded, read_records

    def fields(n: int) -> dict[str, Any]:
        record = exchange(n, request_bytes=10)
        if where == "last":
            record["request"] = record.pop("request")  # nothing after it: the line's closing brace follows
        if where == "packed":  # a large request: stored as blocks, the encoding unused
            record["request"] = {"system": "s" * 5000, "messages": [{"role": "user", "content": "x" * 5000}]}
            record["request_bytes"] = 10_500
        return record

    plain, spliced = tmp_path / "plain.jsonl", tmp_path / "spliced.jsonl"
    expected = write(plain, [fields(n) for n in range(1, 4)])
    given = [fields(n) for n in range(1, 4)]
    for record in given:
        record["request"] = Encoded(record["request"], canonical(record["request"]))
    written = write(spliced, given)
    assert spliced.read_bytes() == plain.read_bytes()
    assert written == expected  # callers get the request itself, never the wrapper
    assert verify_chain(spliced).ok
    assert [record["request"] for record in read_records(spliced)] == [fields(n)["request"] for n in range(1, 4)]
