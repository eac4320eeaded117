"""Token usage in one shape, whatever wire format reported it.

Anthropic reports uncached input apart from cache reads and writes; OpenAI reports a
prompt total that includes the cached part. `Usage` holds disjoint counts so that every
token is priced exactly once. When a stream ends before the provider reported usage
(a disconnect, a timeout), the counts are estimated from what was relayed and marked so:
an exchange is never free because its usage line never arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Conservative token estimates for when the provider never said: code and JSON run at
# about three characters a token, English prose at about four; a request body carries
# JSON structure besides the text, so bytes/4 over-counts its prompt a little.
CHARS_PER_OUTPUT_TOKEN = 3
BYTES_PER_INPUT_TOKEN = 4


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    """Prompt tokens read at the full input rate (cache reads and writes excluded)."""
    output_tokens: int = 0
    """Generated tokens, reasoning/thinking included."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    """Prompt tokens written to a 5-minute cache (or a cache of unstated lifetime)."""
    cache_write_1h_tokens: int = 0
    estimated: bool = False
    """True when some count was estimated because the provider never reported it."""

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.cache_write_1h_tokens

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens}
        if self.estimated:
            data["estimated"] = True
        return data


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def from_anthropic(raw: dict[str, Any] | None) -> Usage | None:
    if not isinstance(raw, dict) or ("output_tokens" not in raw and "input_tokens" not in raw):
        return None
    cache_write = _int(raw.get("cache_creation_input_tokens"))
    write_1h = 0
    split = raw.get("cache_creation")
    if isinstance(split, dict):
        # The split by lifetime, when present, is authoritative; the 1-hour write costs more.
        write_1h = _int(split.get("ephemeral_1h_input_tokens"))
        cache_write = max(cache_write - write_1h, _int(split.get("ephemeral_5m_input_tokens")))
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
    )


def from_openai_chat(raw: dict[str, Any] | None) -> Usage | None:
    if not isinstance(raw, dict) or "prompt_tokens" not in raw:
        return None
    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _int(raw.get("prompt_tokens"))
    return Usage(input_tokens=max(prompt - cached, 0), output_tokens=_int(raw.get("completion_tokens")),
                 cache_read_tokens=min(cached, prompt))


def from_openai_responses(raw: dict[str, Any] | None) -> Usage | None:
    if not isinstance(raw, dict) or "input_tokens" not in raw:
        return None
    details = raw.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _int(raw.get("input_tokens"))
    return Usage(input_tokens=max(prompt - cached, 0), output_tokens=_int(raw.get("output_tokens")),
                 cache_read_tokens=min(cached, prompt))


def estimate(known: Usage | None, *, request_bytes: int, output_chars: int) -> Usage:
    """Usage of an exchange that ended before its final usage report: what the provider had
    said so far (Anthropic's message_start gives the prompt), raised to what was relayed,
    never lowered, and marked estimated."""
    estimated_output = math.ceil(output_chars / CHARS_PER_OUTPUT_TOKEN)
    if known is None:
        return Usage(input_tokens=math.ceil(request_bytes / BYTES_PER_INPUT_TOKEN),
                     output_tokens=estimated_output, estimated=True)
    return Usage(known.input_tokens, max(known.output_tokens, estimated_output), known.cache_read_tokens,
                 known.cache_write_tokens, known.cache_write_1h_tokens, estimated=True)


# Where each wire format puts the cap on generated tokens (thinking and reasoning included).
_OUTPUT_CAP_FIELDS = {
    "anthropic.messages": ("max_tokens",),
    "openai.chat": ("max_completion_tokens", "max_tokens"),
    "openai.responses": ("max_output_tokens",),
}


def output_cap(kind: str, payload: dict[str, Any], default: int) -> tuple[int, bool]:
    """The most output tokens a request may be billed for, and whether the request said so.

    `n` choices (chat completions) each get the cap. A request without a usable cap gets
    `default`: the provider's own ceiling is the model's maximum output, which the gateway
    does not know.
    """
    cap, stated = default, False
    for name in _OUTPUT_CAP_FIELDS.get(kind, ()):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            cap, stated = value, True
            break
    choices = payload.get("n") if kind == "openai.chat" else None
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        cap *= choices
    return cap, stated


def prompt_estimate(request_bytes: int) -> int:
    """Prompt tokens assumed for a request body of this size (an over-count for JSON)."""
    return math.ceil(request_bytes / BYTES_PER_INPUT_TOKEN)
