import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from prefs.server import create_server


@pytest.fixture()
def api() -> Iterator[http.client.HTTPConnection]:
    server = create_server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    server.shutdown()
    server.server_close()


def call(api: http.client.HTTPConnection, method: str, path: str, body: object = None) -> tuple[int, object]:
    api.request(method, path, body=None if body is None else json.dumps(body))
    response = api.getresponse()
    return response.status, json.loads(response.read())


def test_health(api: http.client.HTTPConnection) -> None:
    assert call(api, "GET", "/healthz") == (200, {"ok": True})


def test_preferences_round_trip(api: http.client.HTTPConnection) -> None:
    prefs = {"opt_out": [{"category": "marketing", "channel": "email"}],
             "quiet_hours": {"start": "13:00", "end": "15:00"}}
    assert call(api, "PUT", "/users/ada/preferences", prefs) == (200, prefs)
    assert call(api, "GET", "/users/ada/preferences") == (200, prefs)
