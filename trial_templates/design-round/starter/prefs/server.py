"""The preferences HTTP API (standard library only).

    GET  /healthz
    GET  /users/<user>/preferences
    PUT  /users/<user>/preferences   {"opt_out": [{"category": c, "channel": h}], "quiet_hours": {"start", "end"} | null}
    GET  /users/<user>/decision?category=c&channel=h&at=ISO-8601   (not built yet)
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prefs.quiet_hours import parse_hhmm
from prefs.store import PreferenceStore

_USER_PATH = re.compile(r"^/users/([A-Za-z0-9_.-]{1,64})/(preferences|decision)$")
MAX_BODY = 64 * 1024


class BadRequest(ValueError):
    pass


def validate(prefs: Any) -> dict[str, Any]:
    if not isinstance(prefs, dict) or set(prefs) - {"opt_out", "quiet_hours"}:
        raise BadRequest("preferences are an object with opt_out and quiet_hours")
    opt_out = prefs.get("opt_out", [])
    if not isinstance(opt_out, list) or not all(
            isinstance(o, dict) and set(o) == {"category", "channel"} and all(isinstance(v, str) and v
                                                                              for v in o.values())
            for o in opt_out):
        raise BadRequest("opt_out is a list of {category, channel}")
    quiet = prefs.get("quiet_hours")
    if quiet is not None:
        if not isinstance(quiet, dict) or set(quiet) != {"start", "end"}:
            raise BadRequest("quiet_hours is {start, end} or null")
        try:
            parse_hhmm(quiet["start"])
            parse_hhmm(quiet["end"])
        except (ValueError, TypeError) as exc:
            raise BadRequest(str(exc)) from exc
    return {"opt_out": opt_out, "quiet_hours": quiet}


class Handler(BaseHTTPRequestHandler):
    store: PreferenceStore

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str] | None:
        match = _USER_PATH.match(urlsplit(self.path).path)
        return (match.group(1), match.group(2)) if match else None

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if urlsplit(self.path).path == "/healthz":
            self._send(200, {"ok": True})
            return
        route = self._route()
        if route is None:
            self._send(404, {"error": "not found"})
        elif route[1] == "preferences":
            self._send(200, self.store.get(route[0]))
        else:
            self._send(501, {"error": "decisions are not built yet"})

    def do_PUT(self) -> None:  # noqa: N802 - http.server's name
        route = self._route()
        if route is None or route[1] != "preferences":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        try:
            prefs = validate(json.loads(self.rfile.read(length) or b"null"))
        except (ValueError, BadRequest) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, self.store.put(route[0], prefs))


def create_server(host: str = "127.0.0.1", port: int = 0, store: PreferenceStore | None = None) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"store": store or PreferenceStore()})
    return ThreadingHTTPServer((host, port), handler)
