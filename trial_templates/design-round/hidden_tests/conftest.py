"""The hidden tests drive the prototype only through the contract the brief states:
prefs.server.create_server() and the HTTP API (decision, preferences)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from prefs.server import create_server

Call = Callable[..., tuple[int, Any]]


@pytest.fixture()
def api() -> Iterator[Call]:
    server = create_server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body))
            response = connection.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            connection.close()

    yield call
    server.shutdown()
    server.server_close()


def decision(call: Call, user: str, **params: str) -> tuple[int, Any]:
    return call("GET", f"/users/{user}/decision?{urlencode(params)}")
