from datetime import UTC, datetime

import pytest

from prefs.quiet_hours import in_quiet_hours, parse_hhmm


def test_a_moment_inside_an_afternoon_window_is_quiet() -> None:
    assert in_quiet_hours("13:00", "15:00", datetime(2026, 3, 2, 14, 30, tzinfo=UTC))


def test_the_window_end_is_not_quiet() -> None:
    assert not in_quiet_hours("13:00", "15:00", datetime(2026, 3, 2, 15, 0, tzinfo=UTC))


def test_times_are_hh_mm() -> None:
    with pytest.raises(ValueError):
        parse_hhmm("7pm")
