"""An incremental server-sent-events parser that keeps each event's raw bytes.

Chunks arrive split anywhere (inside a line, inside a UTF-8 character); the parser holds
the unfinished tail and returns whole events. Each event keeps the exact bytes it was
made of, so a relay that must drop one event can pass every other byte through unchanged.
Lines end in LF or CRLF (what the providers send); a bare CR is not treated as an end.
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):  # a tuple: built for every event of every stream, a frozen dataclass costs twice
    event: str
    """The `event:` field, or "" when the event had none (OpenAI Chat Completions)."""
    data: str
    """The `data:` lines joined by newlines."""
    raw: bytes
    """The event's bytes as received, blank terminating line included."""


class SSEParser:
    """Holds the bytes of the event still arriving; each line is parsed once, copied once."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        """The unfinished event's bytes, as received (its parsed lines and the unparsed tail)."""
        self._scanned = 0
        """Offset in `_buffer` of the first line not parsed yet."""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer
        buffer += chunk
        events: list[SSEEvent] = []
        start, line_start = 0, self._scanned  # `start`: where the next event's bytes begin
        while (end := buffer.find(b"\n", line_start)) >= 0:
            line_end = end - 1 if end > line_start and buffer[end - 1] == 0x0D else end  # CRLF or LF
            if line_end == line_start:
                if self._data or self._event:
                    events.append(self._take(bytes(buffer[start:end + 1])))
                    start = end + 1
                # A blank line with nothing before it (keep-alive) stays with the next event's bytes.
            elif buffer[line_start] != 0x3A:  # a line starting with ':' is a comment
                self._field(bytes(buffer[line_start:line_end]))
            line_start = end + 1
        if start:
            del buffer[:start]  # once per chunk, not once per event
        self._scanned = line_start - start
        return events

    @property
    def buffered(self) -> int:
        """Bytes fed that belong to no returned event yet (an event still arriving)."""
        return len(self._buffer)

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream: a last event that lacks its blank line still counts."""
        events: list[SSEEvent] = []
        buffer = self._buffer
        if self._scanned < len(buffer):
            line = bytes(buffer[self._scanned:]).removesuffix(b"\r")
            self._scanned = len(buffer)
            if not line:
                if self._data or self._event:
                    events.append(self._take(bytes(buffer)))
                    buffer.clear()
            elif not line.startswith(b":"):
                self._field(line)
        if self._data or self._event or buffer:
            # Trailing comments or blank lines come out as an empty event, so no byte is lost.
            events.append(self._take(bytes(buffer)))
            buffer.clear()
        self._scanned = 0
        return events

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def _take(self, raw: bytes) -> SSEEvent:
        event = SSEEvent(self._event, "\n".join(self._data), raw)
        self._event, self._data = "", []
        return event
