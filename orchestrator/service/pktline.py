"""Just enough of git's pkt-line protocol to watch a push go by without holding it.

The git proxy reads a push's request as it streams through: the ref update commands
(before the first flush), then the pack, whose bytes it counts against the quota. It
reads the answer the same way: GitHub's report-status, inside side-band channel 1 when
the client asked for side-band, says which ref updates were accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FLUSH = 0
_DELIM = 1
_RESPONSE_END = 2


@dataclass(frozen=True)
class Command:
    before: str
    after: str
    ref: str


class PktReader:
    """Feed bytes in any chunking; pull out whole packets (None stands for a flush)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | None]:
        self._buffer += data
        packets: list[bytes | None] = []
        while len(self._buffer) >= 4:
            try:
                size = int(self._buffer[:4], 16)
            except ValueError:
                raise ProtocolError("not a pkt-line stream") from None
            if size in (FLUSH, _DELIM, _RESPONSE_END):
                del self._buffer[:4]
                packets.append(None)
                continue
            if size < 4:
                raise ProtocolError(f"bad pkt-line length {size}")
            if len(self._buffer) < size:
                break
            packets.append(bytes(self._buffer[4:size]))
            del self._buffer[:size]
        return packets


class ProtocolError(ValueError):
    """The stream is not the git protocol it claims to be."""


@dataclass
class PushRequest:
    """A receive-pack request as it streams: its commands, its client's capabilities, the pack size."""

    commands: list[Command] = field(default_factory=list)
    capabilities: set[str] = field(default_factory=set)
    pack_bytes: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _in_commands: bool = True

    def feed(self, data: bytes) -> None:
        if not self._in_commands:
            self.pack_bytes += len(data)
            return
        self._buffer += data
        while self._in_commands and len(self._buffer) >= 4:
            try:
                size = int(self._buffer[:4], 16)
            except ValueError:
                raise ProtocolError("a push must start with pkt-line commands") from None
            if size == FLUSH:
                del self._buffer[:4]
                self._in_commands = False
                break
            if size < 4:
                raise ProtocolError(f"bad pkt-line length {size}")
            if len(self._buffer) < size:
                return
            self._command(bytes(self._buffer[4:size]))
            del self._buffer[:size]
        if not self._in_commands:
            # What follows the flush is the pack (push options, if any, are counted alike).
            self.pack_bytes += len(self._buffer)
            self._buffer.clear()

    def _command(self, payload: bytes) -> None:
        text, _, caps = payload.rstrip(b"\n").partition(b"\0")
        if caps:
            self.capabilities |= set(caps.decode("latin-1").split())
        parts = text.decode("utf-8", "replace").split(" ")
        if parts[0] == "shallow" or len(parts) != 3:
            return
        self.commands.append(Command(parts[0], parts[1], parts[2]))

    @property
    def commands_read(self) -> bool:
        """The command list has ended (the flush after it arrived)."""
        return not self._in_commands

    @property
    def side_band(self) -> bool:
        return bool({"side-band", "side-band-64k"} & self.capabilities)


@dataclass
class PushReport:
    """The receive-pack answer as it streams back: `ok <ref>` / `ng <ref> <reason>` lines."""

    side_band: bool
    unpack_ok: bool | None = None
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    _outer: PktReader = field(default_factory=PktReader)
    _inner: PktReader = field(default_factory=PktReader)

    def feed(self, data: bytes) -> None:
        for packet in self._outer.feed(data):
            if packet is None:
                continue
            if not self.side_band:
                self._line(packet)
            elif packet[:1] == b"\x01":
                for line in self._inner.feed(packet[1:]):
                    if line is not None:
                        self._line(line)

    def _line(self, packet: bytes) -> None:
        text = packet.decode("utf-8", "replace").rstrip("\n")
        kind, _, rest = text.partition(" ")
        if kind == "unpack":
            self.unpack_ok = rest == "ok"
        elif kind == "ok":
            self.accepted.append(rest)
        elif kind == "ng":
            ref, _, reason = rest.partition(" ")
            self.rejected[ref] = reason
