"""Claude Code: the native `claude` binary, pointed at the gateway's /anthropic route.

The npm package `@anthropic-ai/claude-code` is a thin wrapper; the platform package
`@anthropic-ai/claude-code-linux-x64` holds one self-contained binary, so the image needs
no Node.js. Its transcripts are `~/.claude/projects/<cwd, '/' as '->/<session>.jsonl`
(subagents below a session folder), one JSON record per line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orchestrator.agents import cache
from orchestrator.agents.base import Event
from orchestrator.agents.events import as_text, event, jsonl_records, normalize_usage, sort_events
from orchestrator.sandbox.base import WORKSPACE

VERSION = "2.1.330"
PACKAGE = "@anthropic-ai/claude-code-linux-x64"
SOURCE = "claude-code"
TARBALL = "claude-code.tgz"

# `ADD` unpacks a local tarball in the same layer, so the 380 MB binary is not stored twice.
DOCKERFILE = """\
# Claude Code {version}: one native binary from the npm platform package (no Node.js needed).
ADD agent/{tarball} /opt/claude-code/
RUN ln -sf /opt/claude-code/package/claude /usr/local/bin/claude && claude --version >/dev/null
"""

INTERRUPT_MARKERS = ("[Request interrupted by user", "[Request interrupted by user for tool use]")
# Refusals are a sentence at the start of a tool result; reading only the head keeps a huge,
# candidate-shaped output from making these patterns backtrack for seconds.
_REFUSAL_HEAD = 2000
# Claude Code's own words when a tool use is refused: by the permission system in -p mode
# ("needs approval", "was blocked"), or by the person at the prompt ("doesn't want to proceed").
DENIAL = re.compile(
    r"needs approval|was blocked|doesn't want to (proceed|take this action)|tool use was rejected"
    r"|permission to use [^\n]{0,300}? (has been|was) denied|requires approval|not allowed by|denied by",
    re.IGNORECASE)
# Sentences only Claude Code's permission layer writes, at the start of the tool result:
# a refusal even when the record does not set is_error (some versions do not), and never
# mistaken for a command's own output such as `ls: Permission denied`.
OWN_REFUSAL = re.compile(
    r"^\s*(The user doesn't want to (proceed with|take) this (tool use|action)|The tool use was rejected"
    r"|Claude requested permissions? to (use|write|edit|read) .*(haven't|have not) granted"
    r"|Permission to use \S+ (with command .* )?(has been|was) denied"
    r"|Permission for this tool use was denied|\S+ in '[^']*' needs approval)",
    re.IGNORECASE)


class ClaudeCode:
    name = SOURCE
    version = VERSION
    command = "claude"
    """What the candidate types to start it."""
    transcript_globs: tuple[str, ...] = (".claude/projects/*.jsonl",)
    """`*` crosses folders: sessions and their subagents' sidechains alike."""

    def fetch(self, cache_dir: Path, *, offline: bool = False) -> None:
        cache.npm_pack(PACKAGE, VERSION, cache_dir, offline=offline)

    def context_files(self, cache_dir: Path) -> dict[str, Path]:
        return {TARBALL: cache_dir / cache.npm_tarball_name(PACKAGE, VERSION)}

    def dockerfile_snippet(self) -> str:
        return DOCKERFILE.format(version=VERSION, tarball=TARBALL)

    def env(self, gateway_url: str, token: str) -> dict[str, str]:
        return {
            "ANTHROPIC_BASE_URL": f"{gateway_url.rstrip('/')}/anthropic",
            # AUTH_TOKEN is sent as `Authorization: Bearer`, and skips the API-key approval prompt.
            "ANTHROPIC_AUTH_TOKEN": token,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
        }

    def home_files(self, gateway_url: str, token: str) -> dict[str, tuple[str, int]]:
        # Onboarding (theme, login) and the folder-trust question are done for the candidate;
        # the same env in settings.json reaches shells that did not source ~/.trial/env.sh.
        state = {
            "hasCompletedOnboarding": True,
            "autoUpdates": False,
            "projects": {WORKSPACE: {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
        }
        settings = {"env": self.env(gateway_url, token)}
        return {
            ".claude.json": (json.dumps(state, indent=2) + "\n", 0o600),
            ".claude/settings.json": (json.dumps(settings, indent=2) + "\n", 0o600),
        }

    def run_once_argv(self, prompt: str) -> list[str]:
        """A non-interactive run (smoke tests, template checks)."""
        return ["claude", "-p", prompt]

    def parse(self, files: dict[str, bytes]) -> list[Event]:
        return parse_transcripts(files)


def parse_transcripts(files: dict[str, bytes]) -> list[Event]:
    events: list[Event] = []
    seen_records: set[str] = set()
    seen_messages: set[str] = set()
    records: list[tuple[str, dict[str, Any]]] = []
    for path, raw in sorted(files.items()):
        records.extend((path, record) for record in jsonl_records(raw))
    # A resumed session may copy earlier records (same uuid) into a new file: keep the first.
    records.sort(key=lambda item: str(item[1].get("timestamp", "")))
    for path, record in records:
        kind = record.get("type")
        if kind not in ("user", "assistant"):
            continue  # attachments, queue operations, api-request bookkeeping, summaries…
        uid = record.get("uuid")
        if isinstance(uid, str):
            if uid in seen_records:
                continue
            seen_records.add(uid)
        message = record.get("message")
        if not isinstance(message, dict):
            continue
        common = {"ts": record.get("timestamp"), "session": str(record.get("sessionId") or Path(path).stem)}
        extra = {"sidechain": True} if record.get("isSidechain") else {}
        if kind == "user":
            events.extend(_user_events(record, message, common, extra))
        else:
            events.extend(_assistant_events(message, common, extra, seen_messages))
    return sort_events(events)


def _user_events(record: dict[str, Any], message: dict[str, Any], common: dict[str, Any],
                 extra: dict[str, Any]) -> list[Event]:
    ts, session = common["ts"], common["session"]
    if record.get("isMeta") or record.get("isCompactSummary"):
        return []  # injected by Claude Code itself, not typed by the candidate
    content = message.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    found: list[Event] = []
    texts: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            output = as_text(block.get("content"))
            call = block.get("tool_use_id")
            if _is_interrupt(output):
                found.append(event(ts, SOURCE, "interrupt", session, output, tool_use_id=call, **extra))
            elif (block.get("is_error") and DENIAL.search(output[:_REFUSAL_HEAD])) or OWN_REFUSAL.search(
                    output[:_REFUSAL_HEAD]):
                found.append(event(ts, SOURCE, "tool_rejected", session, output, tool_use_id=call, **extra))
            else:
                found.append(event(ts, SOURCE, "tool_result", session, output, tool_use_id=call,
                                   is_error=bool(block.get("is_error")), **extra))
        elif block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
    prompt = "\n".join(text for text in texts if text.strip())
    if prompt.strip():
        if _is_interrupt(prompt):
            found.append(event(ts, SOURCE, "interrupt", session, prompt, **extra))
        else:
            found.append(event(ts, SOURCE, "user_prompt", session, prompt,
                               permission_mode=record.get("permissionMode"), **extra))
    return found


def _assistant_events(message: dict[str, Any], common: dict[str, Any], extra: dict[str, Any],
                      seen_messages: set[str]) -> list[Event]:
    ts, session = common["ts"], common["session"]
    model = message.get("model")
    message_id = message.get("id") if isinstance(message.get("id"), str) else None
    synthetic = model == "<synthetic>"
    # Claude Code may write one record per content block of the same API message, each
    # repeating its usage: count the usage once per message.
    first = message_id is None or message_id not in seen_messages
    if message_id:
        seen_messages.add(message_id)
    meta: dict[str, Any] = {"model": model, **extra}
    if synthetic:
        meta["synthetic"] = True  # written by Claude Code (errors, "no response"), never a model exchange
    elif message_id:
        meta["message_id"] = message_id
    usage = normalize_usage(message.get("usage")) if first else None
    found: list[Event] = []
    content = message.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    text = "\n".join(str(block.get("text") or "") for block in blocks
                     if isinstance(block, dict) and block.get("type") == "text")
    if text.strip():
        found.append(event(ts, SOURCE, "assistant_message", session, text, usage=usage, **meta))
        usage = None
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            raw_input = block.get("input")
            tool_input: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
            summary = _describe_call(str(block.get("name")), tool_input)
            found.append(event(ts, SOURCE, "tool_call", session, summary, tool=block.get("name"),
                               input=tool_input, tool_use_id=block.get("id"), usage=usage, **meta))
            usage = None
    return found


def _describe_call(tool: str, tool_input: dict[str, Any]) -> str:
    for key in ("command", "file_path", "path", "pattern", "url", "prompt"):
        if isinstance(tool_input.get(key), str):
            return f"{tool}: {tool_input[key]}"
    return f"{tool}: {json.dumps(tool_input, sort_keys=True)}"


def _is_interrupt(text: str) -> bool:
    return text.strip().startswith(INTERRUPT_MARKERS)
