"""Errors the gateway answers itself, in each provider's own JSON shape.

Agents and SDKs parse error bodies to decide what to show and whether to retry, so a
refusal from the gateway must look like one from the provider. `x-should-retry: false`
(honoured by the official SDKs, Claude Code included) stops clients from retrying what
retrying cannot fix: a bad token or a spent budget. A refusal that passes (too many
requests in flight, budget held by requests that have not finished) says so instead:
`retryable=True` gives a 429 the SDKs retry after `retry-after`, and an OpenAI body typed
as a rate limit rather than an exhausted quota (which Codex treats as final).
"""

from __future__ import annotations

import json
import secrets
from typing import Literal

from aiohttp import web

Provider = Literal["anthropic", "openai"]

# Anthropic's documented error types by HTTP status.
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    500: "api_error", 502: "api_error", 504: "timeout_error", 529: "overloaded_error"}
# OpenAI's (type, code) pairs for the same situations.
_OPENAI_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"), 404: ("invalid_request_error", "unknown_url"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("insufficient_quota", "insufficient_quota"), 500: ("server_error", None),
    502: ("server_error", None), 504: ("server_error", "timeout"),
}
_OPENAI_RATE_LIMIT = ("rate_limit_exceeded", "rate_limit_exceeded")
_NO_RETRY = frozenset({400, 401, 403, 404, 413, 429})
RETRY_AFTER_S = 1


def error_body(provider: Provider, status: int, message: str, *, retryable: bool = False) -> dict[str, object]:
    if provider == "anthropic":
        return {"type": "error",
                "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
                "request_id": f"req_gw_{secrets.token_hex(12)}"}
    kind, code = (_OPENAI_RATE_LIMIT if retryable and status == 429
                  else _OPENAI_TYPES.get(status, ("server_error", None)))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_response(provider: Provider, status: int, message: str, *, retryable: bool = False) -> web.Response:
    if retryable:
        headers = {"x-should-retry": "true", "retry-after": str(RETRY_AFTER_S)}
    else:
        headers = {"x-should-retry": "false"} if status in _NO_RETRY else {}
    body = error_body(provider, status, message, retryable=retryable)
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        headers=headers)
