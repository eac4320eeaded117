"""Quiet hours: a daily window ("22:00" to "07:00") in which a user wants no notifications.

Shared with the mobile team's client, which uses the same helper to grey out the bell icon.
"""

from __future__ import annotations

import re
from datetime import datetime, time

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    """"HH:MM" (24-hour) as a time; ValueError otherwise."""
    match = _HHMM.match(value or "")
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def in_quiet_hours(start: str, end: str, moment: datetime) -> bool:
    """True when `moment` (its clock time, in UTC for now) falls in the window [start, end)."""
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    clock = moment.time().replace(second=0, microsecond=0)
    return begin <= clock < finish
