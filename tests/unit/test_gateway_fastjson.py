"""The gateway's hot-path JSON parser gives what json.loads gives, and fails as json.loads fails."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import pytest

from orchestrator.gateway import fastjson
from orchestrator.gateway.server import _Clock

pytestmark = pytest.mark.unit

DOCUMENTS = [
    b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5}',
    b'{}', b'[1, 2]', b'"text"', b'3', b'null',
    b' {"a": 1}', b'{"a": 1}\n', b'{"a": 1} ', b'\n{"a":\n 1}\r\n',
    b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 BOM
    '{"a": "é"}'.encode("utf-16"), '{"a": "é"}'.encode("utf-32-le"),
    '{"a": "é ☃ \U0001f600"}'.encode(), b'{"a": "\\u00e9\\ud83d\\ude00"}',
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins, as in json.loads
    b'{"n": 1e400, "m": -0.0, "k": 12345678901234567890}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    # Failures: each must raise what json.loads raises, with its message.
    b'{"a": 1} x', b'{"a": 1}}', b'{"a": 1}{"b": 2}', b'{"a":', b'{"a": 1,}', b'{a: 1}', b'{"a": 01}',
    b'{"a": "\xff"}', b'{"a": "\x01"}', b'{', b'}', b'', b'{"a": [1, 2}', b'{"a": tru}',
    b'{' * 200_000 + b'}' * 200_000,  # deeper than the interpreter recurses
]


def _outcome(parse: object, data: bytes) -> tuple[str, object]:
    try:
        value = parse(data)  # type: ignore[operator]
    except RecursionError:
        return "RecursionError", None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return type(exc).__name__, str(exc)
    return "ok", json.dumps(value, sort_keys=True)  # NaN-safe comparison


@pytest.mark.parametrize("data", DOCUMENTS, ids=lambda data: repr(data[:24]))
def test_fastjson_matches_json_loads_on_results_and_errors(data: bytes) -> None:
    assert _outcome(fastjson.loads, data) == _outcome(json.loads, data)


def test_fastjson_keeps_floats_and_nans_as_json_loads_reads_them() -> None:
    value = fastjson.loads(b'{"x": 0.1, "y": NaN}')
    assert value["x"] == 0.1 and math.isnan(value["y"])


def test_the_record_clock_formats_as_datetime_isoformat_in_milliseconds() -> None:
    clock = _Clock()
    for _ in range(2000):  # long enough to cross a second boundary now and then
        before = datetime.now(UTC)
        stamp = clock.now()
        after = datetime.now(UTC)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
        parsed = datetime.fromisoformat(stamp)
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after
