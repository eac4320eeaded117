"""The host's push log: one tab-separated line per ref update the host witnessed.

Both forges write it in the same format, so a push's time is witnessed by the host on
either: the local forge's post-receive hook appends to `<bare repo>/trial-pushes.tsv`,
and the host service's git proxy for GitHub appends to `<data>/forge/github/<trial>.pushes.tsv`
after GitHub reported the ref update as accepted. A ref name cannot hold a tab or any
control character (git check-ref-format), so the format needs no quoting.

    ts (UTC, microseconds, +00:00; older logs: seconds) \t ref \t before \t after \t forced (true|false) \t pusher
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ZERO_SHA = "0" * 40
FIELDS = ("ts", "ref", "before", "after", "forced", "pusher")


def line(ref: str, before: str, after: str, *, forced: bool, pusher: str, at: datetime | None = None) -> str:
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    return "\t".join((moment, ref, before, after, "true" if forced else "false", pusher)) + "\n"


def append(path: Path, lines: list[str]) -> None:
    """Append whole lines with one write and fsync: a crash leaves at most a cut last line."""
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(lines).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete line as {ts, ref, before, after, forced, pusher, witness: host}, in file order."""
    if not path.exists():
        return []
    events = []
    for raw in path.read_text(errors="replace").splitlines():
        fields = raw.split("\t")
        if len(fields) != len(FIELDS):
            continue  # a line cut short by a crash mid-write
        ts, ref, before, after, forced, pusher = fields
        events.append({"ts": ts, "ref": ref, "before": before, "after": after, "forced": forced == "true",
                       "pusher": pusher, "witness": "host"})
    return events
