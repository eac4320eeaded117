"""Read one gateway log record: what the candidate's side sent and what the model answered.

The gateway logs the raw request body and the assembled response in the provider's own
wire format (Anthropic Messages, OpenAI Chat Completions or OpenAI Responses). This
module turns any of the three into one `Exchange`, so the timeline builder and the
graders never branch on wire formats. `read_log` reads a whole log (either storage format:
requests whole, or as content-addressed blocks) through the gateway log's one reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator.agents.events import tool_arguments

Wire = Literal["anthropic", "openai-chat", "openai-responses", "unknown"]

# Claude Code wraps harness chatter it injects into user turns in these tags; it is not
# something the candidate typed.
_HARNESS_TEXT = re.compile(r"^\s*<(system-reminder|command-name|command-message|local-command-stdout)>", re.S)
# What Claude Code sends back to the model when the candidate refuses a tool use.
# Claude Code's words for a refusal by the candidate or its permission layer, then Codex's.
_REJECTION = re.compile(r"(tool use was rejected|doesn't want to (proceed|take this action)|"
                        r"user denied|permission denied by user|haven't granted it yet|"
                        r"rejected by (the )?user|user (declined|rejected)|approval (was )?denied)", re.I)
# Claude Code's marker, and the context Codex sends after the candidate aborts a turn.
_INTERRUPT = re.compile(r"\[Request interrupted by user|^\s*<turn_aborted>", re.I)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    """A tool result the request carried back to the model (the previous turn's tool call)."""

    tool_use_id: str
    text: str
    is_error: bool
    rejected: bool


@dataclass(frozen=True)
class Exchange:
    seq: int
    ts: str
    wire: Wire
    model: str | None
    prompt: str | None
    """The newest text the user typed, or None when the request only carries tool results."""
    interrupted: bool
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)
    response_id: str | None = None
    response_text: str = ""
    tool_uses: list[ToolUse] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    status: int | None = None
    agent: str | None = None
    history_keys: frozenset[str] = frozenset()
    """What the request repeats from earlier turns (prompts, tool call ids): its chain to earlier exchanges."""

    @property
    def own_keys(self) -> frozenset[str]:
        """What this exchange adds that a later request of the same conversation repeats."""
        keys = {tool_key(use.id) for use in self.tool_uses if use.id}
        if self.prompt:
            keys.add(prompt_key(self.prompt))
        return frozenset(keys)


def prompt_key(text: str) -> str:
    return "p:" + _SPACES.sub(" ", text).strip()


def tool_key(tool_id: str) -> str:
    return "t:" + tool_id


def log_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a gateway log (or a bundle's copy) in file order, each request whole."""
    from orchestrator.gateway.log import read_records  # light, but only evidence readers need it

    return read_records(path)


def read_log(path: Path) -> Iterator[Exchange]:
    """The exchanges of a gateway log (or a bundle's copy), in file order."""
    for record in log_records(path):
        yield read_exchange(record)


def read_exchange(record: dict[str, Any]) -> Exchange:
    request = record.get("request") if isinstance(record.get("request"), dict) else {}
    response = record.get("response") if isinstance(record.get("response"), dict) else {}
    assert isinstance(request, dict) and isinstance(response, dict)  # noqa: S101 - narrowed above
    wire = _wire(record, request, response)
    prompt, outcomes, interrupted = _read_request(wire, request)
    history = _history_keys(wire, request)
    text, tool_uses = _read_response(wire, response)
    cost = record.get("cost_usd")
    status = record.get("status")
    return Exchange(
        seq=int(record.get("seq", 0)),
        ts=str(record.get("ts", "")),
        wire=wire,
        model=record.get("model") or response.get("model") or request.get("model"),
        prompt=prompt,
        interrupted=interrupted,
        tool_outcomes=outcomes,
        response_id=response.get("id") if isinstance(response.get("id"), str) else None,
        response_text=text,
        tool_uses=tool_uses,
        usage=dict(record.get("usage") or response.get("usage") or {}),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        status=int(status) if isinstance(status, int) else None,
        agent=record.get("agent"),
        history_keys=history,
    )


def _wire(record: dict[str, Any], request: dict[str, Any], response: dict[str, Any]) -> Wire:
    route = str(record.get("route", ""))
    if "responses" in route or "output" in response or ("input" in request and "messages" not in request):
        return "openai-responses"
    if "chat/completions" in route or "choices" in response:
        return "openai-chat"
    if "anthropic" in route or "messages" in request or response.get("type") == "message":
        return "anthropic"
    return "unknown"


def _block_text(content: Any) -> list[str]:
    """Text parts of a message content that is a string or a list of typed blocks."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif isinstance(block, dict) and block.get("type") in ("text", "input_text", "output_text"):
                texts.append(str(block.get("text", "")))
    return texts


def _typed_prompt(texts: list[str]) -> tuple[str | None, bool]:
    kept = [t for t in texts if t.strip() and not _HARNESS_TEXT.match(t)]
    interrupted = any(_INTERRUPT.search(t) for t in kept)
    kept = [t for t in kept if not _INTERRUPT.search(t)]
    return ("\n\n".join(kept).strip() or None), interrupted


def _outcome(tool_use_id: Any, content: Any, is_error: bool) -> ToolOutcome:
    text = "\n".join(_block_text(content)) if not isinstance(content, str) else content
    return ToolOutcome(tool_use_id=str(tool_use_id or ""), text=text, is_error=is_error,
                       rejected=bool(_REJECTION.search(text)))


def _read_request(wire: Wire, request: dict[str, Any]) -> tuple[str | None, list[ToolOutcome], bool]:
    if wire == "openai-responses":
        return _read_responses_input(request.get("input"))
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, [], False
    outcomes: list[ToolOutcome] = []
    index = len(messages) - 1
    # Agents may append instructions after the user's turn (Claude Code 2.1 sends its
    # environment as a trailing `system` message): they are not what the candidate typed.
    while index > 0 and isinstance(messages[index], dict) and messages[index].get("role") in ("system", "developer"):
        index -= 1
    # OpenAI chat puts each tool result in its own trailing `tool` message.
    while wire == "openai-chat" and index >= 0 and isinstance(messages[index], dict) \
            and messages[index].get("role") == "tool":
        tool_msg = messages[index]
        outcomes.insert(0, _outcome(tool_msg.get("tool_call_id"), tool_msg.get("content"), False))
        index -= 1
    if outcomes:
        return None, outcomes, False
    last = messages[index]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None, [], False
    content = last.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                outcomes.append(_outcome(block.get("tool_use_id"), block.get("content"),
                                         bool(block.get("is_error"))))
    prompt, interrupted = _typed_prompt(_block_text(content))
    return prompt, outcomes, interrupted


def _read_responses_input(items: Any) -> tuple[str | None, list[ToolOutcome], bool]:
    if isinstance(items, str):
        return _typed_prompt([items])[0], [], False
    if not isinstance(items, list):
        return None, [], False
    # Only the trailing run of items is new in this request: everything before it was
    # already sent in an earlier exchange.
    tail: list[dict[str, Any]] = []
    for item in reversed(items):
        if not isinstance(item, dict):
            break
        if item.get("role") in ("assistant", "system", "developer") or item.get("type") in (
                "function_call", "custom_tool_call", "reasoning"):
            break
        tail.insert(0, item)
    outcomes: list[ToolOutcome] = []
    texts: list[str] = []
    for item in tail:
        if item.get("type") in ("function_call_output", "custom_tool_call_output"):
            outcomes.append(_outcome(item.get("call_id"), item.get("output"), False))
        elif item.get("role") == "user":
            texts.extend(_block_text(item.get("content")))
    prompt, interrupted = _typed_prompt(texts)
    return prompt, outcomes, interrupted


def _history_keys(wire: Wire, request: dict[str, Any]) -> frozenset[str]:
    """Prompts and tool call ids of the turns a request repeats (all but its newest user turn)."""
    keys: set[str] = set()
    items = request.get("input") if wire == "openai-responses" else request.get("messages")
    if not isinstance(items, list):
        return frozenset()
    start = len(items)
    # The trailing run of user turns, tool results and instructions is what this request adds.
    while start > 0 and isinstance(items[start - 1], dict) and (
            items[start - 1].get("role") in ("user", "tool", "system", "developer")
            or items[start - 1].get("type") in ("function_call_output", "custom_tool_call_output")):
        start -= 1
    for item in items[:start]:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "user":
            prompt, _ = _typed_prompt(_block_text(item.get("content")))
            if prompt:
                keys.add(prompt_key(prompt))
        elif item.get("role") == "assistant":
            content = item.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("id"):
                    keys.add(tool_key(str(block["id"])))
            for call in item.get("tool_calls") or []:
                if isinstance(call, dict) and call.get("id"):
                    keys.add(tool_key(str(call["id"])))
        elif item.get("type") in ("function_call", "custom_tool_call", "local_shell_call") and item.get("call_id"):
            keys.add(tool_key(str(item["call_id"])))
    return frozenset(keys)


def _read_response(wire: Wire, response: dict[str, Any]) -> tuple[str, list[ToolUse]]:
    reader = {"anthropic": _anthropic_response, "openai-chat": _chat_response,
              "openai-responses": _responses_response}.get(wire)
    if reader is None:
        return "", []
    texts, uses = reader(response)
    return "\n\n".join(t for t in texts if t).strip(), uses


def _anthropic_response(response: dict[str, Any]) -> tuple[list[str], list[ToolUse]]:
    texts: list[str] = []
    uses: list[ToolUse] = []
    for block in response.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") in ("tool_use", "server_tool_use"):
            uses.append(ToolUse(str(block.get("id", "")), str(block.get("name", "")),
                                tool_arguments(block.get("input"))))
    return texts, uses


def _chat_response(response: dict[str, Any]) -> tuple[list[str], list[ToolUse]]:
    texts: list[str] = []
    uses: list[ToolUse] = []
    for choice in response.get("choices") or []:
        message = (choice.get("message") or {}) if isinstance(choice, dict) else {}
        texts.extend(_block_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            uses.append(ToolUse(str(call.get("id", "")), str(function.get("name", "")),
                                tool_arguments(function.get("arguments"))))
    return texts, uses


def _responses_response(response: dict[str, Any]) -> tuple[list[str], list[ToolUse]]:
    texts: list[str] = []
    uses: list[ToolUse] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        call_id = str(item.get("call_id") or item.get("id", ""))
        if item.get("type") == "message":
            texts.extend(_block_text(item.get("content")))
        elif item.get("type") == "function_call":
            uses.append(ToolUse(call_id, str(item.get("name", "")), tool_arguments(item.get("arguments"))))
        elif item.get("type") == "custom_tool_call":
            uses.append(ToolUse(call_id, str(item.get("name", "")), {"input": item.get("input", "")}))
    return texts, uses
