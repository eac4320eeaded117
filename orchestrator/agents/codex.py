"""Codex CLI: the static musl `codex` binary, pointed at the gateway's /openai route.

Codex ignores OPENAI_BASE_URL (it would try the public host over WebSockets), so it is
configured through `~/.codex/config.toml` with a custom provider on the Responses wire
API. Its own sandbox (landlock/seccomp helpers) cannot start in a container without
capabilities, and every tool call would fail; the container is the sandbox, so Codex runs
with `sandbox_mode = "danger-full-access"`. Transcripts:
`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orchestrator.agents import cache
from orchestrator.agents.base import Event
from orchestrator.agents.events import as_text, event, jsonl_records, normalize_usage, sort_events, tool_arguments

VERSION = "0.169.0"
PACKAGE = "@openai/codex"
PLATFORM_VERSION = f"{VERSION}-linux-x64"
SOURCE = "codex"
TARBALL = "codex.tgz"
TOKEN_VAR = "OPENAI_API_KEY"  # noqa: S105 - the name of the variable, not a secret
# A model Codex 0.169 knows by name: for an unknown one (e.g. "gpt-5-codex") it falls back to
# default metadata and offers the model no apply_patch tool, so every edit goes through the shell.
DEFAULT_MODEL = "gpt-5.5"
VENDOR = "/opt/codex/package/vendor/x86_64-unknown-linux-musl"

DOCKERFILE = f"""\
# Codex CLI {VERSION}: the static musl binary from the npm platform package.
ADD agent/{TARBALL} /opt/codex/
RUN ln -sf {VENDOR}/bin/codex /usr/local/bin/codex \\
 && (command -v rg >/dev/null || ln -sf {VENDOR}/codex-path/rg /usr/local/bin/rg) \\
 && codex --version >/dev/null
"""

CONFIG = """\
# Written by trial: Codex reaches models only through the trial's gateway.
model = "{model}"
model_provider = "trial"
# The container is the sandbox: Codex's own cannot start without capabilities.
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.trial]
name = "trial gateway"
base_url = "{base_url}"
env_key = "{token_var}"
wire_api = "responses"

[projects."/workspace"]
trust_level = "trusted"

[analytics]
enabled = false

[feedback]
enabled = false
"""

# Context Codex injects as user-role messages; the candidate did not type these.
INJECTED = ("<environment_context>", "<user_instructions>", "<turn_aborted>", "# AGENTS.md instructions",
            "<user_shell_command>", "<skills_instructions>")
# Codex's approval layer: `exec command rejected by user`, `patch rejected by user`, and the
# denial it reports when the candidate answers "no" (or "no, and tell Codex what to do").
REJECTED = re.compile(
    r"rejected by (the )?user|user (declined|denied|rejected)|not approved|approval (was )?denied"
    r"|denied by (the )?user|the user (chose not to|did not approve)|aborted by (the )?user",
    re.IGNORECASE)
TOOL_CALLS = {"function_call", "custom_tool_call", "local_shell_call"}
TOOL_OUTPUTS = {"function_call_output", "custom_tool_call_output"}


class Codex:
    name = SOURCE
    version = VERSION
    command = "codex"
    transcript_globs: tuple[str, ...] = (".codex/sessions/*.jsonl",)

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model = model

    def fetch(self, cache_dir: Path, *, offline: bool = False) -> None:
        cache.npm_pack(PACKAGE, PLATFORM_VERSION, cache_dir, offline=offline)

    def context_files(self, cache_dir: Path) -> dict[str, Path]:
        return {TARBALL: cache_dir / cache.npm_tarball_name(PACKAGE, PLATFORM_VERSION)}

    def dockerfile_snippet(self) -> str:
        return DOCKERFILE

    def env(self, gateway_url: str, token: str) -> dict[str, str]:
        base = f"{gateway_url.rstrip('/')}/openai/v1"
        # OPENAI_BASE_URL is for the candidate's own scripts and SDKs; Codex reads config.toml.
        return {TOKEN_VAR: token, "OPENAI_BASE_URL": base}

    def home_files(self, gateway_url: str, token: str) -> dict[str, tuple[str, int]]:
        config = CONFIG.format(model=self.model, base_url=f"{gateway_url.rstrip('/')}/openai/v1",
                               token_var=TOKEN_VAR)
        return {".codex/config.toml": (config, 0o600)}

    def run_once_argv(self, prompt: str) -> list[str]:
        return ["codex", "exec", "--skip-git-repo-check", prompt]

    def parse(self, files: dict[str, bytes]) -> list[Event]:
        return parse_rollouts(files)


def parse_rollouts(files: dict[str, bytes]) -> list[Event]:
    events: list[Event] = []
    seen: set[str] = set()
    for path, raw in sorted(files.items()):
        events.extend(_parse_rollout(Path(path).stem, jsonl_records(raw), seen))
    return sort_events(events)


def _parse_rollout(fallback_session: str, records: list[dict[str, Any]], seen: set[str]) -> list[Event]:
    session = fallback_session
    model: str | None = None
    found: list[Event] = []
    awaiting_usage: list[Event] = []
    has_usage_records = any(r.get("type") == "token_usage_record" for r in records)
    for record in records:
        # A resumed or forked session may replay earlier records: the same record counts once.
        key = json.dumps([record.get("timestamp"), record.get("type"), record.get("payload")], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        kind = record.get("type")
        raw_payload = record.get("payload")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        ts = record.get("timestamp")
        if kind == "session_meta":
            session = str(payload.get("id") or payload.get("session_id") or session)
        elif kind == "turn_context":
            model = payload.get("model") or model
        elif kind == "response_item":
            new = _response_item(payload, ts, session, model)
            found.extend(new)
            awaiting_usage.extend(e for e in new if e["kind"] in ("assistant_message", "tool_call"))
        elif kind == "token_usage_record" or (kind == "event_msg" and payload.get("type") == "token_count"
                                              and not has_usage_records):
            _attach_usage(awaiting_usage, payload)
            awaiting_usage = []
        elif kind == "event_msg" and payload.get("type") == "turn_aborted":
            reason = str(payload.get("reason") or "interrupted")
            found.append(event(ts, SOURCE, "interrupt", session, f"turn aborted: {reason}", reason=reason))
    return found


def _message(item: dict[str, Any], ts: Any, session: str, model: str | None) -> list[Event]:
    role = item.get("role")
    text = as_text(item.get("content"))
    if role == "user" and text.strip() and not text.lstrip().startswith(INJECTED):
        return [event(ts, SOURCE, "user_prompt", session, text)]
    if role == "assistant" and text.strip():
        return [event(ts, SOURCE, "assistant_message", session, text, model=model, item_id=item.get("id"))]
    return []  # developer/system instructions and injected context


def _response_item(item: dict[str, Any], ts: Any, session: str, model: str | None) -> list[Event]:
    kind = item.get("type")
    if kind == "message":
        return _message(item, ts, session, model)
    if kind in TOOL_CALLS:
        name = str(item.get("name") or kind)
        arguments = _arguments(item)
        return [event(ts, SOURCE, "tool_call", session, _describe_call(name, arguments), tool=name,
                      input=arguments, tool_use_id=item.get("call_id"), model=model)]
    if kind in TOOL_OUTPUTS:
        output = _output_text(item.get("output"))
        call = item.get("call_id")
        if REJECTED.search(output):
            return [event(ts, SOURCE, "tool_rejected", session, output, tool_use_id=call)]
        return [event(ts, SOURCE, "tool_result", session, output, tool_use_id=call,
                      is_error=_exit_code(output) not in (None, 0))]
    return []  # reasoning, web search calls and future item types carry no timeline event yet


def _attach_usage(pending: list[Event], payload: dict[str, Any]) -> None:
    """A usage record closes one model response: its id and usage go to what that response said."""
    if not pending:
        return
    raw = payload.get("usage")
    if raw is None and isinstance(payload.get("info"), dict):
        raw = payload["info"].get("last_token_usage")
    usage = normalize_usage(raw)
    response_id = payload.get("response_id")
    for position, item in enumerate(pending):
        if response_id:
            item["data"]["message_id"] = response_id
        if position == 0 and usage:
            item["data"]["usage"] = usage


def _arguments(item: dict[str, Any]) -> dict[str, Any]:
    return tool_arguments(item.get("arguments", item.get("input", item.get("action"))))


def _output_text(output: Any) -> str:
    if isinstance(output, dict):
        return as_text(output.get("content") or output.get("output") or output)
    return as_text(output)


def _exit_code(output: str) -> int | None:
    match = re.search(r"(?:Process exited with code|Exit code:?)\s*(-?\d+)", output)
    return int(match.group(1)) if match else None


def _describe_call(tool: str, arguments: dict[str, Any]) -> str:
    for key in ("cmd", "command", "input", "path"):
        value = arguments.get(key)
        if isinstance(value, str):
            return f"{tool}: {value}"
        if isinstance(value, list) and all(isinstance(part, str) for part in value):
            return f"{tool}: {' '.join(value)}"
    return f"{tool}: {json.dumps(arguments, sort_keys=True)}"
