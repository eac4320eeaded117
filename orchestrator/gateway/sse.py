"""An incremental server-sent-events parser that keeps each event's raw bytes.

Chunks arrive split anywhere (inside a line, inside a UTF-8 character); the parser holds
the unfinished tail and returns whole events. Each event keeps the exact bytes it was
made of, so a relay that must drop one event can pass every other byte through unchanged.
Lines end in LF or CRLF (what the providers send); a bare CR is not treated as an end.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    event: str
    """The `event:` field, or "" when the event had none (OpenAI Chat Completions)."""
    data: str
    """The `data:` lines joined by newlines."""
    raw: bytes
    """The event's bytes as received, blank terminating line included."""


class SSEParser:
    def __init__(self) -> None:
        self._pending = bytearray()
        self._raw = bytearray()
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._pending += chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = self._pending.find(b"\n", start)
            if end < 0:
                break
            line = self._pending[start:end + 1]
            start = end + 1
            self._raw += line
            self._line(bytes(line).rstrip(b"\n").removesuffix(b"\r"), events)
        del self._pending[:start]
        return events

    @property
    def buffered(self) -> int:
        """Bytes fed that belong to no returned event yet (an event still arriving)."""
        return len(self._raw) + len(self._pending)

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream: a last event that lacks its blank line still counts."""
        events: list[SSEEvent] = []
        if self._pending:
            self._raw += self._pending
            self._line(bytes(self._pending).removesuffix(b"\r"), events)
            self._pending.clear()
        if self._data or self._event or self._raw:
            # Trailing comments or blank lines come out as an empty event, so no byte is lost.
            events.append(self._take())
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data or self._event:
                events.append(self._take())
            # A blank line with nothing before it (keep-alive) stays with the next event's bytes.
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def _take(self) -> SSEEvent:
        event = SSEEvent(self._event, "\n".join(self._data), bytes(self._raw))
        self._event, self._data = "", []
        self._raw.clear()
        return event
