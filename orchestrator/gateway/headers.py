"""Which headers cross the gateway, in each direction.

Toward the provider: everything the agent sent (anthropic-version, anthropic-beta,
user-agent, the SDKs' x-stainless-* telemetry, OpenAI-Beta…) except hop-by-hop headers,
the candidate's credentials (replaced by the real key) and headers that would move the
spend to another account or project. `Accept-Encoding: identity` keeps bodies
uncompressed, so the tee parses exactly the bytes that are relayed.

Back to the agent: the provider's headers (request ids, rate-limit and retry-after hints
that SDKs act on) except hop-by-hop and framing headers, which our own server sets.
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from orchestrator.gateway.provider_errors import Provider

# RFC 9110 §7.6.1 hop-by-hop headers, plus framing our side recomputes.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "proxy-connection"})
_NOT_UPSTREAM = _HOP_BY_HOP | {
    "host", "content-length", "expect", "accept-encoding", "cookie",
    # The candidate's credentials: replaced by the gateway's key, never forwarded.
    "authorization", "x-api-key",
    # Would let the sandbox bill another organisation or project of the company's account.
    "openai-organization", "openai-project", "anthropic-workspace-id",
    # Proxy bookkeeping that would leak the sandbox's addresses upstream.
    "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
}
_NOT_DOWNSTREAM = _HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie", "date", "server"}


def _listed_in_connection(headers: CIMultiDictProxy[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("connection", []):
        named.update(part.strip().lower() for part in value.split(",") if part.strip())
    return named


def _dropped(headers: CIMultiDictProxy[str], always: frozenset[str]) -> frozenset[str]:
    # Most messages name no Connection header: then the fixed set serves as it is.
    return always | _listed_in_connection(headers) if "connection" in headers else always


def upstream_headers(incoming: CIMultiDictProxy[str], provider: Provider, key: str) -> CIMultiDict[str]:
    dropped = _dropped(incoming, _NOT_UPSTREAM)
    out: CIMultiDict[str] = CIMultiDict(
        [(name, value) for name, value in incoming.items() if name.lower() not in dropped])
    out["Accept-Encoding"] = "identity"
    if provider == "anthropic":
        out["x-api-key"] = key
    else:
        out["Authorization"] = f"Bearer {key}"
    return out


def downstream_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    dropped = _dropped(upstream, _NOT_DOWNSTREAM)
    return CIMultiDict([(name, value) for name, value in upstream.items() if name.lower() not in dropped])
