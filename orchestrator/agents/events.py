"""Building normalized timeline events from agent transcripts (shared by the parsers).

Every event is `{ts, source, kind, session, text, data}` (DESIGN.md). Timestamps are
normalized to ISO 8601 in UTC with milliseconds (`2026-11-24T10:07:11.049Z`), the form
`orchestrator.evidence.events` writes, so events from different sources sort as strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from orchestrator.agents.base import Event

Kind = Literal["user_prompt", "assistant_message", "tool_call", "tool_result", "tool_rejected", "interrupt"]

EPOCH = "1970-01-01T00:00:00.000Z"
"""Stands in for a record without a usable time, so it sorts first instead of breaking the sort."""

MAX_TEXT = 20_000
"""Tool output can be megabytes; the raw transcript stays in the bundle, the timeline gets a head."""


def normalize_ts(value: Any) -> str:
    """ISO 8601 UTC with milliseconds from an ISO string (with or without zone) or epoch seconds/ms."""
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        moment = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            # Agents without a zone write the container's local time, which is UTC.
            moment = moment.replace(tzinfo=UTC)
    if moment is None:
        return EPOCH
    return format_ts(moment)


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters in the raw transcript]"


def as_text(value: Any) -> str:
    """Text of a message content: a string, or the text parts of a list of content blocks."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict):
                if isinstance(item.get("text"), str):
                    parts.append(item["text"])
                elif "content" in item:
                    parts.append(as_text(item["content"]))
        return "\n".join(part for part in parts if part)
    if isinstance(value, dict):
        return as_text(value.get("text") or value.get("content"))
    return json.dumps(value, sort_keys=True)


def normalize_usage(raw: Any) -> dict[str, int] | None:
    """Token counts under one set of names, whichever agent or provider reported them."""
    if not isinstance(raw, dict):
        return None
    names = {
        "input_tokens": ("input_tokens", "prompt_tokens"),
        "output_tokens": ("output_tokens", "completion_tokens"),
        "cached_tokens": ("cache_read_input_tokens", "cached_input_tokens", "cache_hit_tokens",
                          "cached_tokens"),
        "cache_write_tokens": ("cache_creation_input_tokens", "cache_write_input_tokens",
                               "cache_write_tokens"),
        "reasoning_tokens": ("reasoning_output_tokens", "reasoning_tokens"),
    }
    usage: dict[str, int] = {}
    for name, candidates in names.items():
        for candidate in candidates:
            value = raw.get(candidate)
            if isinstance(value, int | float) and not isinstance(value, bool):
                usage[name] = int(value)
                break
    return usage or None


def event(ts: Any, source: str, kind: Kind, session: str, text: str, **data: Any) -> Event:
    return {
        "ts": normalize_ts(ts),
        "source": source,
        "kind": kind,
        "session": session,
        "text": clip(text),
        "data": {key: value for key, value in data.items() if value is not None},
    }


def sort_events(events: list[Event]) -> list[Event]:
    """Stable sort by time: events with equal stamps keep the order the transcript gave them."""
    return sorted(events, key=lambda item: item["ts"])


MAX_LINE_BYTES = 16 << 20
"""A transcript line longer than this is skipped: no real record comes near it."""
MAX_DEPTH = 64
"""Records nested deeper are skipped: real ones are a few levels deep, and deep ones break recursion."""


def jsonl_records(raw: bytes, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Records of a JSONL file. A line that is not one sane JSON object (torn by a killed agent,
    binary, huge, nested past MAX_DEPTH: the candidate writes these files) is skipped, never fatal;
    `skipped` gets a reason per skipped line."""
    records = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        reason = ""
        if len(line) > MAX_LINE_BYTES:
            reason = f"longer than {MAX_LINE_BYTES >> 20} MiB"
        else:
            try:
                record = json.loads(line.decode("utf-8", errors="replace"))
            except RecursionError:
                reason = "nested too deep to parse"
            except ValueError:
                reason = "not JSON"
            else:
                if not isinstance(record, dict):
                    reason = "not a JSON object"
                elif too_deep(record, MAX_DEPTH):
                    reason = f"nested deeper than {MAX_DEPTH} levels"
                else:
                    records.append(record)
        if reason and skipped is not None:
            skipped.append(f"line {number}: {reason}")
    return records


def too_deep(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def tool_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict: OpenAI sends a JSON string, Anthropic an object."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return {"input": raw}
        return parsed if isinstance(parsed, dict) else {"input": parsed}
    return {}
