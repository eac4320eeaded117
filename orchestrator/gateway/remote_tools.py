"""Provider-side tools that reach beyond the sandbox, removed from requests unless allowed.

The sandbox's network stops at the host service, but a model can fetch for it: Anthropic's
server tools (`web_search_*`, `web_fetch_*`), its MCP connector (`mcp_servers`, `mcp_toolset`
tools), OpenAI's `web_search*` and `mcp` tools and `file_search` (which reads vector stores
of the company's account), and chat completions' `web_search_options`. Any of them would
let the candidate pull in outside help or send the codebase out, at the provider, where
the gateway sees only a summary. So they are stripped from the request before it goes
upstream, unless the trial's template says `allow_remote_tools = true`; the log record
names what was stripped. Function (client-side) tools are never touched: the agent runs
those inside the sandbox, where everything they do is the sandbox's.

A `tool_choice` that names a stripped tool is dropped with it (the provider would refuse
the request otherwise); a tool list left empty is removed with its choice. Some OpenAI
models search the web by themselves, with no tool in the request (`gpt-4o-search-preview`,
`gpt-5-search-api`, the `deep-research` models): there is nothing to strip, so requests
for them are refused instead, on the same condition. So are requests whose content the
provider would fetch from a URL itself (Anthropic image and document blocks with a `url`
source, OpenAI `image_url`/`input_image` parts with an http(s) URL and `input_file` with a
`file_url`): the log would show the address, never what the model read there.
"""

from __future__ import annotations

from typing import Any

_ANTHROPIC_PREFIXES = ("web_search_", "web_fetch_", "mcp_toolset")
_OPENAI_PREFIXES = ("web_search", "mcp", "file_search")
_TOP_LEVEL = {"anthropic.messages": ("mcp_servers",), "openai.chat": ("web_search_options",),
              "openai.responses": ()}


def searches_by_itself(provider: str, model: str | None) -> bool:
    """A model that reaches the internet whatever the request says (OpenAI's search models)."""
    if provider != "openai" or not model:
        return False
    parts = model.lower().replace("_", "-").split("-")
    return "search" in parts or "deep-research" in model.lower()


def _remote(kind: str, tool: Any) -> bool:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        return False
    prefixes = _ANTHROPIC_PREFIXES if kind == "anthropic.messages" else _OPENAI_PREFIXES
    return str(tool["type"]).startswith(prefixes)


def strip_remote_tools(kind: str, payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The payload without remote tools (a new dict; `payload` is untouched) and what was removed."""
    if kind not in _TOP_LEVEL:
        return payload, []
    stripped: list[str] = [name for name in _TOP_LEVEL[kind] if name in payload]
    tools = payload.get("tools")
    kept: list[Any] = []
    removed_names: set[str] = set()
    removed_types: set[str] = set()
    if isinstance(tools, list):
        for index, tool in enumerate(tools):
            if _remote(kind, tool):
                stripped.append(f"tools[{index}]:{tool['type']}")
                removed_types.add(str(tool["type"]))
                if isinstance(tool.get("name"), str):
                    removed_names.add(tool["name"])
            else:
                kept.append(tool)
    if not stripped:
        return payload, []
    clean = {key: value for key, value in payload.items() if key not in _TOP_LEVEL[kind]}
    if isinstance(tools, list) and len(kept) != len(tools):
        choice = clean.get("tool_choice")
        if isinstance(choice, dict) and (choice.get("name") in removed_names or choice.get("type") in removed_types):
            clean.pop("tool_choice")
            stripped.append("tool_choice")
        if kept:
            clean["tools"] = kept
        else:
            clean.pop("tools")
            if "tool_choice" in clean:
                clean.pop("tool_choice")
                stripped.append("tool_choice")
    return clean, stripped


_LISTS = {"anthropic.messages": "messages", "openai.chat": "messages", "openai.responses": "input"}
_FOUND_LIMIT = 5


def fetched_urls(kind: str, payload: dict[str, Any]) -> list[str]:
    """Content parts the provider would fetch from the internet itself, named by their place.

    Read from the parsed payload, never the raw bytes: JSON escapes (`\\u0068ttps`) hide a URL
    from a byte search, and the gateway forwards the payload it checked (see the server)."""
    if kind not in _LISTS:
        return []
    found: list[str] = []
    items = payload.get(_LISTS[kind])
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            _scan_parts(item.get("content"), f"{_LISTS[kind]}[{index}].content", found)
            _scan_parts(item.get("output"), f"{_LISTS[kind]}[{index}].output", found)  # function_call_output
        if len(found) >= _FOUND_LIMIT:
            break
    return found


def _scan_parts(parts: Any, where: str, found: list[str], depth: int = 0) -> None:
    if not isinstance(parts, list) or depth > 2:
        return
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        url = _part_url(part)
        if url is not None:
            found.append(f"{where}[{index}]:{part.get('type')} {url[:200]}")
        # An Anthropic tool_result carries its own content blocks, images included.
        _scan_parts(part.get("content"), f"{where}[{index}].content", found, depth + 1)


def _part_url(part: dict[str, Any]) -> str | None:
    source = part.get("source")
    if isinstance(source, dict) and source.get("type") == "url":  # Anthropic image / document
        return str(source.get("url"))
    for key in ("image_url", "file_url"):  # OpenAI chat image_url {url}, Responses input_image / input_file
        value = part.get(key)
        url = value.get("url") if isinstance(value, dict) else value
        if isinstance(url, str) and url.lower().startswith(("http:", "https:")):
            return url
    return None
