"""Requests stored as content-addressed blocks: exact reconstruction, each block once, tampering caught."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.gateway.blocks import block_name, canonical
from orchestrator.gateway.log import (
    GENESIS,
    TrialLog,
    read_records,
    record_hash,
    serialize,
    verify_chain,
)

pytestmark = pytest.mark.unit

SYSTEM = [{"type": "text", "text": "You are a coding agent. " * 40, "cache_control": {"type": "ephemeral"}}]
TOOLS = [{"name": f"tool{n}", "description": f"Tool number {n}. " * 20,
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}} for n in range(5)]


def conversation(turns: int) -> list[dict[str, Any]]:
    """Claude Code's shape: the cache_control marker moves to the newest user message every turn."""
    requests: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for turn in range(turns):
        if history:
            last = history[-1]
            last["content"] = [{k: v for k, v in part.items() if k != "cache_control"} for part in last["content"]]
            history.append({"role": "assistant", "content": [
                {"type": "text", "text": f"Reading file {turn}."},
                {"type": "tool_use", "id": f"toolu_{turn:04d}", "name": "tool1", "input": {"path": f"f{turn}.py"}}]})
            part: dict[str, Any] = {"type": "tool_result", "tool_use_id": f"toolu_{turn:04d}",
                                    "content": f"# file {turn}\n" + f"line {turn} é\n" * 60}
        else:
            part = {"type": "text", "text": "Fix the parser, please."}
        history.append({"role": "user", "content": [{**part, "cache_control": {"type": "ephemeral"}}]})
        requests.append(json.loads(json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": SYSTEM,
                                               "tools": TOOLS, "messages": history, "stream": True})))
    return requests


def fields(n: int, request: Any) -> dict[str, Any]:
    return {"ts": f"2026-11-24T10:{n // 60:02d}:{n % 60:02d}.000+00:00", "trial_id": "t1",
            "route": "/anthropic/v1/messages", "model": "claude-sonnet-4-5", "status": 200, "outcome": "ok",
            "upstream": True, "usage": {"input_tokens": 10, "output_tokens": 2}, "cost_usd": 0.001,
            "request": request, "response": {"type": "message", "content": [{"type": "text", "text": f"ok {n}"}]}}


def write(path: Path, requests: list[Any], *, pack: bool = True) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        log = TrialLog.open(path, pack=pack)
        try:
            return [await log.append(fields(n, request)) for n, request in enumerate(requests)]
        finally:
            await log.close()
    return asyncio.run(run())


def rechain(path: Path, records: list[dict[str, Any]]) -> None:
    """What someone who rewrites the file would do: recompute every hash so the chain itself holds."""
    head, lines = GENESIS, []
    for record in records:
        rest = {key: value for key, value in record.items() if key not in ("prev_hash", "hash")}
        chained = {**rest, "prev_hash": head, "hash": record_hash(head, rest)}
        head = chained["hash"]
        lines.append(serialize(chained))
    path.write_bytes(b"".join(lines))


def test_requests_come_back_byte_for_byte_and_each_block_is_stored_once(tmp_path: Path) -> None:
    requests = conversation(30)
    path = tmp_path / "t1.jsonl"
    write(path, requests)
    assert verify_chain(path).ok
    back = list(read_records(path))
    assert [canonical(record["request"]) for record in back] == [canonical(request) for request in requests]
    raw = [json.loads(line) for line in path.read_bytes().splitlines()]
    names = [name for record in raw for name in record["blocks"]]
    assert len(names) == len(set(names))  # no block is written twice
    # The system prompt, the tools and the old messages are never written again: a turn adds
    # its new messages' skeletons and texts, and references.
    assert all("packed" in record and record["request"]["messages"] is None for record in raw)
    assert max(len(line) for line in path.read_bytes().splitlines()[5:]) < 5_000
    assert path.stat().st_size < 0.5 * sum(len(canonical(request)) for request in requests)


def test_old_logs_with_whole_requests_read_and_verify_the_same(tmp_path: Path) -> None:
    requests = conversation(12)
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    write(old, requests, pack=False)
    write(new, requests)
    assert all("packed" not in json.loads(line) for line in old.read_bytes().splitlines())
    assert verify_chain(old).ok and verify_chain(new).ok
    strip = ("prev_hash", "hash")
    assert [{k: v for k, v in r.items() if k not in strip} for r in read_records(old)] == \
        [{k: v for k, v in r.items() if k not in strip} for r in read_records(new)]


def test_a_reopened_log_keeps_using_the_blocks_it_holds(tmp_path: Path) -> None:
    requests = conversation(6)
    path = tmp_path / "t1.jsonl"
    write(path, requests[:5])
    write(path, requests[5:])
    last = json.loads(path.read_bytes().splitlines()[-1])
    assert last["packed"]["messages"]["prefix"] != GENESIS  # continues from the prefix the file holds
    assert len(last["packed"]["messages"]["items"]) == 3  # previous user turn (marker moved), reply, new turn
    assert block_name(SYSTEM) not in canonical(last["blocks"])
    assert verify_chain(path).ok
    assert canonical(list(read_records(path))[-1]["request"]) == canonical(requests[5])


def test_a_batch_that_fails_to_write_forgets_its_blocks(tmp_path: Path) -> None:
    requests = conversation(3)
    path = tmp_path / "t1.jsonl"

    async def run() -> None:
        log = TrialLog.open(path)
        try:
            await log.append(fields(0, requests[0]))
            with pytest.raises(Exception, match="cannot append"):
                await log.append({**fields(1, requests[1]), "bad": {1, 2}})  # not JSON: the batch is refused
            await log.append(fields(1, requests[1]))
            await log.append(fields(2, requests[2]))
        finally:
            await log.close()
    asyncio.run(run())
    assert verify_chain(path).ok
    assert [canonical(r["request"]) for r in read_records(path)] == [canonical(r) for r in requests]


def packed_lines(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "t1.jsonl"
    write(path, conversation(4))
    return path, [json.loads(line) for line in path.read_bytes().splitlines()]


def test_one_byte_changed_in_a_block_is_caught_even_with_the_chain_rebuilt(tmp_path: Path) -> None:
    path, records = packed_lines(tmp_path)
    raw = path.read_bytes()
    target = records[2]["blocks"]
    name = next(n for n, value in target.items() if isinstance(value, str) and "line 2" in value)
    start = raw.index(f'"{name}":"'.encode()) + 70
    path.write_bytes(raw[:start] + bytes([raw[start] ^ 1]) + raw[start + 1:])
    result = verify_chain(path)
    assert not result.ok and result.first_bad_seq == 3 and "hash does not match" in result.reason

    target[name] = target[name].replace("line 2", "line 3", 1)
    rechain(path, records)
    result = verify_chain(path)
    assert not result.ok and result.first_bad_seq == 3
    assert "does not match its content" in result.reason and name[:16] in result.reason


def test_a_block_removed_or_a_value_swapped_with_the_chain_rebuilt_is_caught(tmp_path: Path) -> None:
    path, records = packed_lines(tmp_path)
    name = next(iter(records[1]["blocks"]))
    del records[1]["blocks"][name]
    rechain(path, records)
    result = verify_chain(path)
    assert not result.ok and result.first_bad_seq == 2 and "is not stored" in result.reason
    readable = list(read_records(path))
    assert readable[1]["request"] is None and "is not stored" in readable[1]["request_error"]

    path, records = packed_lines(tmp_path / "second")
    item = records[3]["packed"]["messages"]["items"][-1]
    text = records[3]["blocks"][item["holes"][0][1]]
    forged = text.replace("line 3", "line 9")
    records[3]["blocks"][block_name(forged)] = forged
    item["holes"][0][1] = block_name(forged)  # a consistent block, but not the value the name promises
    rechain(path, records)
    result = verify_chain(path)
    assert not result.ok and result.first_bad_seq == 4 and "does not rebuild" in result.reason


def test_a_log_begun_with_whole_requests_continues_with_blocks(tmp_path: Path) -> None:
    requests = conversation(8)
    path = tmp_path / "t1.jsonl"
    write(path, requests[:4], pack=False)  # written by a gateway from before blocks
    write(path, requests[4:])
    kinds = ["packed" in json.loads(line) for line in path.read_bytes().splitlines()]
    assert kinds == [False] * 4 + [True] * 4
    assert verify_chain(path).ok
    assert [canonical(r["request"]) for r in read_records(path)] == [canonical(r) for r in requests]


def test_a_request_nested_deeper_than_python_recurses_is_stored_whole(tmp_path: Path) -> None:
    deep: Any = "x" * 300
    for _ in range(900):  # json parses and serializes this; a recursive walk in Python would not
        deep = [deep]
    request = {"model": "m", "messages": [{"role": "user", "content": deep}]}
    path = tmp_path / "t1.jsonl"
    write(path, [request])
    assert verify_chain(path).ok
    assert canonical(next(read_records(path))["request"]) == canonical(request)


def test_a_small_request_is_stored_whole_and_a_large_one_as_blocks(tmp_path: Path) -> None:
    requests = conversation(3)
    sizes = [100, 50_000, 60_000]  # request_bytes as the gateway records them
    path = tmp_path / "t1.jsonl"

    async def run() -> None:
        log = TrialLog.open(path)
        try:
            for n, (request, size) in enumerate(zip(requests, sizes, strict=True)):
                await log.append({**fields(n, request), "request_bytes": size})
        finally:
            await log.close()
    asyncio.run(run())
    assert ["packed" in json.loads(line) for line in path.read_bytes().splitlines()] == [False, True, True]
    assert verify_chain(path).ok
    assert [canonical(r["request"]) for r in read_records(path)] == [canonical(r) for r in requests]
