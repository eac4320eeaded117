"""What the report says about collection itself: what it left out and why, and pushes after the deadline.

The manifest is written by the collector, whose keys grow over time (`left_out`,
`transcripts_left_out`, `late_pushes`); they are read defensively here, whatever their
shape (strings, {what, why} records or a mapping of what to why), so a report never
fails on a bundle from an older or newer collector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ITEMS = 50
_WHAT_KEYS = ("what", "path", "name", "item", "file", "ref", "branch", "source", "kind")
_WHY_KEYS = ("why", "reason", "problem", "detail", "message")


def collection_notes(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """{left_out: [{what, why}], late_pushes: [{ref, sha, at, by}], more_left_out, more_late_pushes}."""
    left_out: list[dict[str, str]] = []
    for key, default in (("left_out", ""), ("transcripts_left_out", "transcripts")):
        for item in _items(manifest.get(key)):
            note = _left_out(item, default)
            if note["what"] or note["why"]:
                left_out.append(note)
    unique = list({(n["what"], n["why"]): n for n in left_out}.values())
    late = [_late_push(item) for item in _items(manifest.get("late_pushes")) if isinstance(item, Mapping)]
    return {"left_out": unique[:MAX_ITEMS], "more_left_out": max(0, len(unique) - MAX_ITEMS),
            "late_pushes": late[:MAX_ITEMS], "more_late_pushes": max(0, len(late) - MAX_ITEMS)}


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [{"what": str(k), "why": _text(v)} for k, v in value.items()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value] if isinstance(value, str) and value else []


def _first(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return next((_text(item[k]) for k in keys if item.get(k) not in (None, "")), "")


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value)
    return " ".join(str(value).split())[:300]


def _left_out(item: Any, default: str) -> dict[str, str]:
    if isinstance(item, Mapping):
        return {"what": _first(item, _WHAT_KEYS) or default, "why": _first(item, _WHY_KEYS)}
    # A bare string (today's transcripts_left_out) says both what and why in one sentence.
    return {"what": default, "why": _text(item)}


def _late_push(item: Mapping[str, Any]) -> dict[str, str]:
    return {"ref": _first(item, ("ref", "branch")), "sha": _first(item, ("after", "sha", "new", "head")),
            "at": _first(item, ("ts", "at", "time", "pushed_at")), "by": _first(item, ("pusher", "by", "login"))}
