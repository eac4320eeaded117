"""The gateway's request handling: authenticate, admit, relay, price, log.

One `Gateway` per service process, attached to the aiohttp app by `setup_gateway`. Per
exchange: the trial token is resolved (cached, see auth.py); the route must belong to the
trial's agent's provider; the trial's log must be under its quota and its requests in
flight under their cap (limits.py); the body is read (size-limited) and parsed;
`background` responses are refused and remote tools stripped (remote_tools.py); the
trial's ledger reserves the request's worst case or refuses it (budget.py); the request
goes upstream with the real key; the answer comes back either whole (JSON) or as an event
stream relayed chunk by chunk while a tee assembles it; its usage is priced (a billed
answer without usage at its output cap, never at $0); one record is appended to the
trial's log and fsynced; only then does the response complete.

A refused request is logged as its size, sha256 and first characters, never whole: the
refusal is the witnessed event, and a refusal must not fill the disk on the candidate's
behalf. Auth headers are never logged.

The gateway never completes a response it could not log: a non-streamed answer becomes a
500, a stream is cut off before its terminal event (message_stop, [DONE],
response.completed), which is held back until the record is on disk (see _Tee).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiohttp import web

from orchestrator.config import Settings
from orchestrator.errors import TrialError
from orchestrator.gateway import fastjson
from orchestrator.gateway.assemble import Assembler, for_route
from orchestrator.gateway.auth import Grant, LockedOut, TokenCache
from orchestrator.gateway.blocks import canonical
from orchestrator.gateway.budget import Budgets, Ledger
from orchestrator.gateway.headers import downstream_headers, upstream_headers
from orchestrator.gateway.limits import Limits
from orchestrator.gateway.log import Encoded, GatewayLogs, TrialLog
from orchestrator.gateway.prices import PriceTable
from orchestrator.gateway.provider_errors import Provider, error_response
from orchestrator.gateway.remote_tools import fetched_urls, searches_by_itself, strip_remote_tools
from orchestrator.gateway.scripted import ScriptedModels
from orchestrator.gateway.sse import SSEParser
from orchestrator.gateway.urls import ANTHROPIC_PREFIX, OPENAI_PREFIX, ROUTES, Route, upstream_base
from orchestrator.gateway.usage import (
    Usage,
    estimate,
    from_anthropic,
    from_openai_chat,
    from_openai_responses,
    output_cap,
    prompt_estimate,
)
from orchestrator.logging import get_logger
from orchestrator.store import Store

MAX_REQUEST_BYTES = Limits().max_request_bytes
"""Largest request body relayed by default (see limits.py)."""
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# Non-JSON error bodies (an HTML page from a proxy) are logged only up to this length.
_TEXT_LOG_LIMIT = 10_000
Refusal = tuple[int, str, str, bool]
"""(status, message, outcome, retryable): a request the gateway answers itself."""

log = get_logger(component="gateway")
# Allocations between the collector's young-generation passes in a serving process (CPython's
# default is 700). Each exchange allocates a few thousand objects, nearly all freed by
# reference counting; at 700 a hundred concurrent exchanges set off a pass every few requests,
# each walking whatever those exchanges still hold. Cyclic garbage waits at most this many
# allocations longer (a bounded, small amount of memory).
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """For a process that serves the gateway, once its modules are loaded: fewer collector passes.

    What is alive at start (imported modules, the app) is frozen out of collection, so the
    rare full passes no longer walk it, and young passes run every GC_YOUNG_THRESHOLD
    allocations. Measured in the bench's throughput phase (3,000 requests at 100 concurrent):
    time in the collector 0.27 s -> 0.09 s; CPU per request 680 -> 620 and 690 -> 570 us
    (two runs, each gateway against the previous one's interleaved). Not called by `setup_gateway`: it is
    process-wide, so only the entry points that own their process (the service daemon and
    `python -m orchestrator.gateway`) call it.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class _Clock:
    """A record's `ts`: `datetime.now(UTC).isoformat(timespec="milliseconds")`, the date and
    time of day formatted once a second instead of on every exchange (a sixth of the cost)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._text}.{int((now - second) * 1000):03d}+00:00"


_clock = _Clock()


@dataclass(slots=True)
class Exchange:
    """What one record will say; filled in as the exchange proceeds."""

    route: Route
    ts: str
    started: float
    agent: str | None
    trial_id: str = ""
    request: Any = None
    model: str | None = None
    stream: bool = False
    status: int = 0
    outcome: str = "ok"
    upstream: bool = True
    usage: Usage | None = None
    cost_usd: float = 0.0
    pricing: dict[str, Any] | None = None
    upstream_request_id: str | None = None
    response: Any = None
    error: str | None = None
    settled: bool = False
    reserved_usd: float = 0.0
    """The worst case the ledger holds for this exchange until it settles."""
    output_cap: int = 0
    """Output tokens the request may be billed for (its max_tokens, or the default)."""
    body: bytes | None = None
    """The request body as received (not logged: `request` holds it parsed)."""
    forward: bytes | None = None
    """What goes upstream when not `body`: the payload the checks read, re-serialized."""
    request_json: str | None = None
    """The canonical JSON of `request`, encoded once to go upstream: the record splices it in."""
    body_summary: dict[str, Any] | None = None
    """Size, sha256 and start of the body: what a refused request is logged as."""
    request_bytes: int = 0
    response_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "ts": self.ts, "trial_id": self.trial_id, "route": self.route.path, "provider": self.route.provider,
            "model": self.model, "stream": self.stream, "status": self.status, "outcome": self.outcome,
            "upstream": self.upstream, "latency_ms": round((time.monotonic() - self.started) * 1000, 2),
            "usage": self.usage.to_json() if self.usage else {}, "cost_usd": self.cost_usd,
            "pricing": self.pricing, "agent": self.agent, "upstream_request_id": self.upstream_request_id,
            "error": self.error, "request_bytes": self.request_bytes,
            "request": self.request if self.request_json is None else Encoded(self.request, self.request_json),
            "response": self.response, **self.extra,
        }

    @property
    def size_hint(self) -> int:
        return self.request_bytes + self.response_bytes


class Gateway:
    def __init__(self, settings: Settings, store: Store, env: Mapping[str, str]) -> None:
        config = settings.gateway
        self.prices = PriceTable.load(config.price_table)
        self.tokens = TokenCache(store, templates_dir=settings.templates_dir)
        self.logs = GatewayLogs(settings.home)
        self.budgets = Budgets()
        self.limits = Limits(max_request_bytes=config.max_request_bytes,
                             max_in_flight=config.max_in_flight_per_trial,
                             log_quota_bytes=config.log_quota_bytes)
        self.trial_in_flight: dict[str, int] = {}
        """Exchanges being handled right now, per trial (the cap of limits.max_in_flight)."""
        self.unlogged_refusals: dict[str, int] = {}
        """Refusals of trials past their log quota and its slack, counted instead of logged."""
        self.keys = {provider: env.get(name) or None for provider, name in KEY_ENV.items()}
        self.scripts = ScriptedModels(settings.home, config.provider)
        """Trials whose `[gateway] provider` is `script:FILE` are answered from it (scripted.py)."""
        self.bases = {"anthropic": upstream_base(config.anthropic_base_url),
                      "openai": upstream_base(config.openai_base_url)}
        self.timeout = aiohttp.ClientTimeout(total=config.upstream_timeout_s,
                                             sock_connect=min(30.0, config.upstream_timeout_s))
        self._session: aiohttp.ClientSession | None = None
        self._unpriced_warned: set[str] = set()
        self.in_flight = 0
        """Exchanges being handled right now, all trials together."""

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, _: web.Application) -> None:
        # One pooled session: connections to the provider are reused across exchanges.
        # No cookie jar: the session is shared by every trial, and a cookie one trial's answer
        # set (a provider's load balancer sets them) must not ride on another trial's requests.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                                              timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar())

    async def stop(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
        await self.logs.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("gateway used before its app started")
        return self._session

    def handler(self, route: Route) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.in_flight += 1
            try:
                return await self.handle(request, route)
            finally:
                self.in_flight -= 1
        return handle

    # -- one exchange -------------------------------------------------------------------
    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse:
        ex = Exchange(route, _clock.now(), time.monotonic(), request.headers.get("User-Agent"))
        try:
            grant = await self.tokens.resolve(request)
        except LockedOut as locked:
            return error_response(route.provider, 429, f"too many unknown trial tokens from {request.remote}; "
                                  f"tokens are checked again in {locked.seconds:.0f} s", retryable=True)
        if grant is None:
            log.info("gateway.unauthorized", route=route.path, remote=request.remote)
            return error_response(route.provider, 401, "invalid, revoked or expired trial token "
                                  "(send it as x-api-key or Authorization: Bearer)")
        ex.trial_id = grant.trial_id
        try:
            trial_log = self.logs.cached(grant.trial_id) or await self.logs.get(grant.trial_id)
        except TrialError as exc:
            log.error("gateway.log_unavailable", trial_id=grant.trial_id, error=exc.one_line())
            return error_response(route.provider, 500, f"the gateway cannot record this exchange: {exc.message}")
        trial_id = grant.trial_id
        self.trial_in_flight[trial_id] = self.trial_in_flight.get(trial_id, 0) + 1
        try:
            return await self._admit_and_relay(request, ex, grant, trial_log)
        finally:
            left = self.trial_in_flight[trial_id] - 1
            if left:
                self.trial_in_flight[trial_id] = left
            else:
                del self.trial_in_flight[trial_id]

    async def _admit_and_relay(self, request: web.Request, ex: Exchange, grant: Grant,
                               trial_log: TrialLog) -> web.StreamResponse:
        route = ex.route
        # Refusals that need no body are decided first, so the body is then only hashed, not kept.
        refusal = self._before_body(ex, grant, trial_log)
        body_refusal = await self._read_request(request, ex, keep=refusal is None)
        refusal = refusal or body_refusal or self._after_body(ex, grant, trial_log)
        if refusal is not None:
            response = await self._refuse(ex, trial_log, *refusal)
            if not request.content.at_eof():
                # The rest of an oversized body is not wanted: answer, then hang up, as the
                # providers' front ends do (aiohttp would otherwise linger reading it).
                await response.prepare(request)
                await response.write_eof()
                if request.transport is not None:
                    request.transport.close()
            return response
        key = self.keys[route.provider]
        script = self.scripts.script_for(self.scripts.provider(grant.provider))
        if not key and script is None:
            return await self._refuse(ex, trial_log, 500, f"the gateway has no {KEY_ENV[route.provider]} in its "
                                      "environment; the operator must set it and restart `trial serve`",
                                      "no_upstream_key", False)
        if route.billed:
            ledger = self._ledger(grant, trial_log)
            ex.output_cap, _ = output_cap(route.kind, ex.request, self.limits.default_output_tokens)
            reserve = self.prices.worst_case(ex.model, self._prompt_reserve(ex), ex.output_cap)
            if not ledger.admit(reserve):
                log.info("gateway.budget_refused", trial_id=grant.trial_id, spent=ledger.spent_usd,
                         reserved=ledger.reserved_usd, cap=ledger.cap_usd)
                return await self._refuse(ex, trial_log, 429, ledger.refusal(),
                                          "refused_budget" if ledger.exhausted else "refused_budget_reserved",
                                          not ledger.exhausted)
            ex.reserved_usd = reserve
            ex.extra["reserved_usd"] = reserve
        try:
            return await self._relay(request, ex, key or "", trial_log, script)
        except asyncio.CancelledError:
            # Only when the server cancels handlers of clients that hang up (aiohttp's
            # handler_cancellation): the provider may already have read the prompt, so the
            # exchange is recorded, priced on an estimate, before the cancellation goes on.
            if not ex.settled:
                ex.outcome = "client_disconnect"
                self._price(ex, estimate(ex.usage, request_bytes=ex.request_bytes, output_chars=0))
                self._settle(ex)
                await self._append_quietly(ex, trial_log)
            raise
        finally:
            self._settle(ex)

    def _prompt_reserve(self, ex: Exchange) -> int:
        """Prompt tokens to reserve: the body's size, or a provider-held context's worst case."""
        prompt = prompt_estimate(ex.request_bytes)
        payload = ex.request if isinstance(ex.request, dict) else {}
        if ex.route.kind == "openai.responses" and (payload.get("previous_response_id") or payload.get("conversation")):
            prompt = max(prompt, self.limits.server_context_tokens)
        return prompt

    def _before_body(self, ex: Exchange, grant: Grant, trial_log: TrialLog) -> Refusal | None:
        route = ex.route
        if route.provider not in grant.providers:
            opened = ", ".join(f"/{provider}" for provider in grant.providers) or "no model routes"
            return (403, f"trial {grant.trial_id} runs agent '{grant.agent}', whose token opens {opened}; "
                    f"{route.path} is not one of them", "refused_provider", False)
        if trial_log.state.size >= self.limits.log_quota_bytes:
            return self._quota_refusal(grant.trial_id)
        if self.trial_in_flight.get(grant.trial_id, 0) > self.limits.max_in_flight:
            return (429, f"trial {grant.trial_id} already has {self.limits.max_in_flight} requests in flight, "
                    "the most the gateway relays at once for one trial; retry when one finishes",
                    "refused_in_flight", True)
        return None

    def _after_body(self, ex: Exchange, grant: Grant, trial_log: TrialLog) -> Refusal | None:
        route = ex.route
        if trial_log.state.size + ex.request_bytes >= self.limits.log_quota_bytes:
            return self._quota_refusal(grant.trial_id)
        payload = ex.request
        if not isinstance(payload, dict):
            return None
        if route.kind == "openai.responses" and payload.get("background") not in (None, False):
            # A background response runs on after this exchange ends and is fetched later by
            # id: its output and usage would never pass through the gateway (nor its budget).
            return (400, "background responses are not relayed: they finish outside the exchange, where the "
                    "trial gateway can neither log nor bill them; send the request without \"background\"",
                    "refused_background", False)
        if not grant.allow_remote_tools and searches_by_itself(route.provider, ex.model):
            return (400, f"model {ex.model} searches the web by itself, which this trial's template does not "
                    "allow (allow_remote_tools); use a model without built-in search", "refused_remote_model", False)
        fetched = [] if grant.allow_remote_tools else fetched_urls(route.kind, payload)
        if fetched:
            return (400, f"the provider would fetch {fetched[0]} from the internet, which this trial's template "
                    "does not allow (allow_remote_tools); send the content inline (base64)", "refused_remote_content",
                    False)
        if not grant.allow_remote_tools:
            clean, stripped = strip_remote_tools(route.kind, payload)
            # Upstream gets the payload these checks read, re-serialized, never the candidate's
            # bytes: a provider's parser may read duplicate keys or odd encodings otherwise.
            encoded = canonical(clean)
            ex.forward = encoded.encode("ascii")
            if clean is payload:  # nothing stripped: the record's request is what went upstream
                ex.request_json = encoded
            if stripped:
                ex.extra["stripped_tools"] = stripped
                log.info("gateway.remote_tools_stripped", trial_id=grant.trial_id, stripped=stripped)
        return None

    def _quota_refusal(self, trial_id: str) -> Refusal:
        return (429, f"trial {trial_id}'s gateway log reached its quota of {self.limits.log_quota_bytes} bytes; "
                "no further model requests are recorded or relayed (ask the trial's operator)",
                "refused_log_quota", False)

    def _ledger(self, grant: Grant, trial_log: TrialLog) -> Ledger:
        ledger = self.budgets.open(grant.trial_id, grant.budget_usd, trial_log.state.spent_usd)
        ledger.cap_usd = grant.budget_usd  # the operator may have changed it since
        return ledger

    async def _read_request(self, request: web.Request, ex: Exchange, *, keep: bool) -> Refusal | None:
        """Read the body (at most max_request_bytes) and parse it; without `keep`, only its summary."""
        if request.method == "GET":
            ex.request = dict(request.query) or None
            return None
        limit = self.limits.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            ex.body_summary = {"bytes": None, "declared_bytes": request.content_length, "sha256": None,
                               "head": "", "complete": False}
            return 413, f"request body of {request.content_length} bytes exceeds {limit}", "too_large", False
        # Read to the end ourselves: content.read(n) returns only what has arrived so far, and
        # request.read() would apply whatever client_max_size the hosting app happens to have.
        chunks: list[bytes] = []
        digest, head, size = None if keep else hashlib.sha256(), b"", 0  # a kept body is hashed only if refused
        head_max = self.limits.refused_head_chars * 4  # bytes enough for that many characters
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                chunks.append(chunk[:limit - size + len(chunk)])
                ex.body_summary = self._summary(b"".join(chunks), digest or hashlib.sha256(), head, complete=False,
                                                size=limit)
                return 413, f"request body exceeds {limit} bytes", "too_large", False
            if digest is None:
                chunks.append(chunk)
            else:
                digest.update(chunk)
                if len(head) < head_max:
                    head += chunk[:head_max - len(head)]
        ex.request_bytes = size
        if digest is not None:
            ex.body_summary = self._summary(b"", digest, head, complete=True, size=size)
            return None
        ex.body = b"".join(chunks)
        return _parse_body(ex)

    def _summary(self, tail: bytes, digest: Any, head: bytes, *, complete: bool,
                 size: int | None = None) -> dict[str, Any]:
        """What a refused body is logged as: its size, its sha256 and its first characters."""
        digest.update(tail)
        head = head or tail[:self.limits.refused_head_chars * 4]
        text = head.decode("utf-8", "replace")[:self.limits.refused_head_chars]
        return {"bytes": size, "sha256": digest.hexdigest(), "head": text, "complete": complete}

    async def _refuse(self, ex: Exchange, trial_log: TrialLog, status: int, message: str,
                      outcome: str, retryable: bool) -> web.Response:
        ex.status, ex.outcome, ex.upstream, ex.error = status, outcome, False, message
        if ex.body_summary is None and ex.body is not None:
            ex.body_summary = self._summary(ex.body, hashlib.sha256(), b"", complete=True, size=len(ex.body))
        if ex.body_summary is not None:
            ex.request = ex.body_summary  # never the whole body: see the module docstring
        ex.request_json = None  # what is logged is no longer what would have gone upstream
        ex.extra.pop("stripped_tools", None)  # nothing went upstream, stripped or not
        if trial_log.state.size < self.limits.log_quota_bytes + self.limits.refusal_slack_bytes:
            try:
                await trial_log.append(ex.record(), 0, alone=self.in_flight == 1)
            except TrialError as exc:
                log.error("gateway.log_failed", trial_id=ex.trial_id, error=exc.one_line())
        else:
            count = self.unlogged_refusals[ex.trial_id] = self.unlogged_refusals.get(ex.trial_id, 0) + 1
            if count == 1 or count % 1000 == 0:
                log.warning("gateway.refusals_unlogged", trial_id=ex.trial_id, count=count, outcome=outcome,
                            hint="the trial's log is past its quota; refusals are counted, not logged")
        return error_response(ex.route.provider, status, message, retryable=retryable)

    async def _relay(self, request: web.Request, ex: Exchange, key: str, trial_log: TrialLog,
                     script: Path | None = None) -> web.StreamResponse:
        route = ex.route
        body, injected = ex.body if ex.forward is None else ex.forward, False
        if route.kind == "openai.chat" and ex.stream and isinstance(ex.request, dict):
            body, injected = _with_usage_option(ex.request, body)
        url = self.bases[route.provider] + route.upstream_path
        if request.query_string:
            url += "?" + request.query_string
        headers = upstream_headers(request.headers, route.provider, key)
        try:
            if script is not None:
                upstream = self._scripted(ex, body, injected, script)
            else:
                upstream = await self.session.request(route.method, url, data=body, headers=headers,
                                                      allow_redirects=False)
        except TimeoutError:
            return await self._gateway_error(ex, trial_log, 504, "upstream_timeout",
                                             f"the {route.provider} API did not answer in time")
        except aiohttp.ClientError as exc:
            return await self._gateway_error(ex, trial_log, 502, "upstream_unreachable",
                                             f"the {route.provider} API could not be reached ({exc})")
        ex.status = upstream.status
        ex.upstream_request_id = upstream.headers.get("request-id") or upstream.headers.get("x-request-id")
        try:
            if upstream.content_type == "text/event-stream":
                ex.stream = True
                return await self._relay_stream(request, upstream, ex, trial_log, injected)
            return await self._relay_body(upstream, ex, trial_log)
        finally:
            if upstream.content.at_eof():
                upstream.release()  # back to the pool
            else:
                upstream.close()  # an unfinished answer: hang up so the provider stops generating

    def _scripted(self, ex: Exchange, body: bytes | None, injected: bool, script: Path) -> aiohttp.ClientResponse:
        """The scripted model's answer to what a provider would get, read by the relay as the provider's would be."""
        payload = json.loads(body or b"{}") if injected else ex.request
        answer = self.scripts.respond(ex.trial_id, ex.route, payload, body, script)
        ex.extra["script"] = answer.info
        ex.error = answer.info.get("problem")
        # Duck-typed like aiohttp's response (status, headers, content, read, release, close).
        return cast(aiohttp.ClientResponse, answer)

    async def _relay_body(self, upstream: aiohttp.ClientResponse, ex: Exchange,
                          trial_log: TrialLog) -> web.StreamResponse:
        try:
            data = await upstream.read()
        except TimeoutError:
            return await self._gateway_error(ex, trial_log, 504, "upstream_timeout",
                                             f"the {ex.route.provider} API did not finish its answer in time")
        except aiohttp.ClientError as exc:
            return await self._gateway_error(ex, trial_log, 502, "upstream_disconnect",
                                             f"the {ex.route.provider} API broke off its answer ({exc})")
        ex.response_bytes = len(data)
        try:
            ex.response = fastjson.loads(data) if data else None
        except ValueError:
            ex.response = data[:_TEXT_LOG_LIMIT].decode("utf-8", "replace")
        if upstream.status >= 400:
            ex.outcome = "upstream_error"
        if isinstance(ex.response, dict):
            ex.model = ex.response.get("model") if isinstance(ex.response.get("model"), str) else ex.model
            if ex.route.billed and upstream.status < 400:
                self._price(ex, _usage_of(ex.route.kind, ex.response.get("usage")))
        self._settle(ex)
        try:
            await trial_log.append(ex.record(), ex.size_hint, alone=self.in_flight == 1)
        except TrialError as exc:
            log.error("gateway.log_failed", trial_id=ex.trial_id, error=exc.one_line())
            return error_response(ex.route.provider, 500, f"the gateway could not record this exchange: {exc.message}")
        return web.Response(status=upstream.status, body=data, headers=downstream_headers(upstream.headers))

    async def _relay_stream(self, request: web.Request, upstream: aiohttp.ClientResponse, ex: Exchange,
                            trial_log: TrialLog, injected: bool) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=downstream_headers(upstream.headers))
        await response.prepare(request)
        tee = _Tee(for_route(ex.route.kind, drop_usage_chunk=injected), filtering=injected)
        ex.outcome = "client_disconnect"  # what it was if the pump is cancelled (handler_cancellation)
        try:
            ex.outcome = await _pump(upstream, response, tee)
        finally:
            # Also on cancellation: the exchange happened and may have cost money.
            if tee.assembler.error is not None and ex.outcome == "ok":
                ex.outcome = "upstream_error_event"
            elif not tee.assembler.done and ex.outcome == "ok":
                ex.outcome = "upstream_incomplete"
            ex.response_bytes = tee.relayed_bytes
            ex.response = tee.assembler.result()
            if isinstance(ex.response, dict) and isinstance(ex.response.get("model"), str):
                ex.model = ex.response["model"]
            if tee.assembler.error is not None:
                ex.error = json.dumps(tee.assembler.error)[:_TEXT_LOG_LIMIT]
            usage = tee.assembler.usage()
            if not tee.assembler.done:
                usage = estimate(usage, request_bytes=ex.request_bytes,
                                 output_chars=tee.assembler.output_chars)
            self._price(ex, usage)
            self._settle(ex)
            logged = await self._append_quietly(ex, trial_log)
        if logged and ex.outcome in ("ok", "upstream_error_event", "upstream_incomplete"):
            with contextlib.suppress(ConnectionError, aiohttp.ClientConnectionError):  # the client may be gone
                if tee.held:
                    await response.write(tee.held)
                await response.write_eof()
        elif request.transport is not None:
            # Mirror the break: the client sees the stream cut off, as it would have directly.
            request.transport.close()
        return response

    async def _append_quietly(self, ex: Exchange, trial_log: TrialLog) -> bool:
        try:
            await trial_log.append(ex.record(), ex.size_hint, alone=self.in_flight == 1)
        except TrialError as exc:
            log.error("gateway.log_failed", trial_id=ex.trial_id, error=exc.one_line())
            return False
        return True

    async def _gateway_error(self, ex: Exchange, trial_log: TrialLog, status: int, outcome: str,
                             message: str) -> web.Response:
        ex.status, ex.outcome, ex.error = status, outcome, message
        self._settle(ex)
        log.warning("gateway.upstream_failed", trial_id=ex.trial_id, route=ex.route.path, outcome=outcome,
                    error=message)
        await self._append_quietly(ex, trial_log)
        return error_response(ex.route.provider, status, message)

    def _price(self, ex: Exchange, usage: Usage | None) -> None:
        if not ex.route.billed or (usage is None and not 200 <= ex.status < 300):
            ex.usage = usage
            return
        basis = "usage"
        if usage is None:
            # A billed answer that reports no usage (a background response, a provider change, a
            # proxy that drops it) cost something all the same: price its worst case, never $0.
            usage = Usage(input_tokens=prompt_estimate(ex.request_bytes), output_tokens=ex.output_cap,
                          estimated=True)
            basis = "max_tokens"
        priced = self.prices.price(ex.model, usage)
        ex.usage, ex.cost_usd, ex.pricing = usage, priced.cost_usd, priced.to_json()
        if basis != "usage":
            ex.pricing["basis"] = basis
        if priced.price_key is None and (ex.model or "") not in self._unpriced_warned:
            self._unpriced_warned.add(ex.model or "")
            log.warning("gateway.unpriced_model", model=ex.model, trial_id=ex.trial_id,
                        hint="priced at the table's highest rates; add it to gateway.price_table")

    def _settle(self, ex: Exchange) -> None:
        if ex.route.billed and not ex.settled:
            ledger = self.budgets.get(ex.trial_id)
            if ledger is not None:
                ledger.settle(ex.cost_usd, ex.reserved_usd)
            ex.settled = True


def _parse_body(ex: Exchange) -> Refusal | None:
    try:
        payload = fastjson.loads(ex.body or b"")
    except ValueError as exc:
        return 400, f"request body is not valid JSON ({exc})", "bad_request", False
    if not isinstance(payload, dict):
        return 400, "request body must be a JSON object", "bad_request", False
    ex.request = payload
    ex.model = payload.get("model") if isinstance(payload.get("model"), str) else None
    ex.stream = payload.get("stream") is True
    return None


class _Tee:
    """Feeds relayed bytes to the assembler; when filtering, also decides what is relayed.

    The chunk that completes the answer (message_stop, [DONE], response.completed) and
    anything after it are held back, not relayed: a client that has the terminal event
    treats the answer as complete, so it gets it only once the exchange's record is on disk
    (`held`, written by the caller after the append). Every earlier chunk goes out as it
    arrives.
    """

    def __init__(self, assembler: Assembler, *, filtering: bool) -> None:
        self.assembler = assembler
        self.filtering = filtering
        self.parser = SSEParser()
        self.relayed_bytes = 0
        self.held = b""

    def feed(self, chunk: bytes) -> bytes:
        self.relayed_bytes += len(chunk)
        was_done = self.assembler.done
        events = self.parser.feed(chunk)
        kept: list[bytes] = []
        held: list[bytes] = []
        end: int | None = None  # index of the terminal event in this chunk
        for index, event in enumerate(events):
            relayed = self.assembler.on_event(event)
            ended = was_done or self.assembler.done
            if ended and end is None:
                end = index
            if self.filtering and relayed:
                (held if ended else kept).append(event.raw)
        if self.filtering:
            self.held += b"".join(held)
            return b"".join(kept)
        if was_done:
            self.held += chunk
            return b""
        if end is None:
            return chunk
        # Relay the chunk up to where the terminal event starts (the whole of it when that
        # event began in an earlier chunk); hold the rest.
        tail = sum(len(event.raw) for event in events[end:]) + self.parser.buffered
        split = max(len(chunk) - tail, 0)
        self.held += chunk[split:]
        return chunk[:split]

    def close(self) -> bytes:
        was_done = self.assembler.done
        events = self.parser.close()
        kept = [event.raw for event in events if self.assembler.on_event(event)]
        out = b"".join(kept) if self.filtering else b""
        if was_done or self.assembler.done:
            self.held += out
            return b""
        return out


async def _pump(upstream: aiohttp.ClientResponse, response: web.StreamResponse, tee: _Tee) -> str:
    """Relay until the provider ends the stream; the outcome names who broke it, if anyone did."""
    while True:
        try:
            chunk = await upstream.content.readany()
        except TimeoutError:
            return "upstream_timeout"
        except aiohttp.ClientError:
            return "upstream_disconnect"
        out = tee.feed(chunk) if chunk else tee.close()
        if out:
            try:
                await response.write(out)
            except (ConnectionError, aiohttp.ClientConnectionError):
                return "client_disconnect"
        if not chunk:
            return "ok"


def _with_usage_option(payload: dict[str, Any], body: bytes | None) -> tuple[bytes | None, bool]:
    """Ask for the final usage chunk if the client did not: without it a stream costs $0."""
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    upstream_payload = dict(payload)
    upstream_payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return canonical(upstream_payload).encode("ascii"), True


def _usage_of(kind: str, raw: Any) -> Usage | None:
    data = raw if isinstance(raw, dict) else None
    if kind == "anthropic.messages":
        return from_anthropic(data)
    if kind == "openai.chat":
        return from_openai_chat(data)
    if kind == "openai.responses":
        return from_openai_responses(data)
    return None


def setup_gateway(app: web.Application, settings: Settings, store: Store,
                  env: Mapping[str, str] | None = None) -> Gateway:
    """Mount the gateway's routes on `app`; upstream keys come from this process's environment."""
    gateway = Gateway(settings, store, os.environ if env is None else env)
    app[GATEWAY_KEY] = gateway
    for route in ROUTES:
        app.router.add_route(route.method, route.path, gateway.handler(route))
    # Anything else under a provider's prefix: a 404 its SDK can parse, not aiohttp's text page.
    app.router.add_route("*", ANTHROPIC_PREFIX + "/{tail:.*}", _not_relayed("anthropic"))
    app.router.add_route("*", OPENAI_PREFIX + "/{tail:.*}", _not_relayed("openai"))
    if not any(getattr(resource, "canonical", None) == "/healthz" for resource in app.router.resources()):
        app.router.add_get("/healthz", _healthz)
    app.on_startup.append(gateway.start)
    app.on_cleanup.append(gateway.stop)
    return gateway


def _not_relayed(provider: Provider) -> Any:
    allowed = ", ".join(f"{route.method} {route.path}" for route in ROUTES if route.provider == provider)

    async def not_relayed(request: web.Request) -> web.Response:
        return error_response(provider, 404, f"the trial gateway does not relay {request.method} {request.path}; "
                                             f"it relays {allowed}")
    return not_relayed


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"service": "trial-gateway", "ok": True})


GATEWAY_KEY = web.AppKey("trial.gateway", Gateway)
