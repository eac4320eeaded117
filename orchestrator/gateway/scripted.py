"""The scripted model: the gateway answers from a script instead of a provider.

`[gateway] provider = "script:FILE"` (operator setting, template field or `trial launch
--provider`) makes the gateway serve a trial's agent from FILE. Everything else is as with
a real provider: the agent gets the provider's own wire format (Anthropic Messages,
OpenAI Responses or Chat Completions, streamed or not), and the exchange goes through the
gateway's relay path, so it is logged, priced and budgeted like any other; its record
carries a `script` field saying which step answered. Template authors use it to prove a
template with a real agent, `make demo` and the calibration corpus to play sessions of
known quality through the real agents, offline.

The script (TOML, or JSON of the same shape)::

    model = "claude-sonnet-4-5"     # optional: the model the replies name (default: the requested one)
    workdir = "/workspace"          # optional: relative paths in portable calls are under it
    side_reply = "Scripted session" # optional: the answer to side requests (see below)

    [[step]]
    id = "read-first"                        # optional: names the step in the log and in errors
    when = { prompt = "store the keys" }     # optional: what the request must end with
    text = "I'll read the store first."      # optional: the reply's text
    calls = [{ read = "keyservice/store.py" }]

    [[step]]
    when = { tool_result = "class KeyStore" }
    text = "Hashing with SHA-256 now."
    calls = [
      { edit = "keyservice/store.py", old = "key TEXT", new = "key_hash TEXT" },
      { bash = "python3 -m pytest -q", id = "toolu_tests" },
      { tool = "TodoWrite", input = { todos = [] } },   # any tool, by the agent's own name
    ]

Matching. Each request that carries the main conversation is answered by the next step
whose `when` it meets; steps are used in order, each once. `when` looks at the end of the
conversation: `prompt = "…"` (the last user turn is a typed prompt containing the text),
`tool_result = "…"` (it is a tool result containing the text), `regex = "…"` (a Python
regular expression searched in that last turn); matching is case-insensitive, all given
conditions must hold, an empty string matches any turn of that kind, no `when` matches
anything. A request that does not meet the next step's `when`, or that arrives after the
last step, is answered with a plain message saying so (to the agent, as the model's text,
and in the log record's `script.problem`), and the script stays where it was.

Calls. `bash = CMD`, `read = PATH`, `write = PATH` (with `content` or `content_file`,
relative to the script) and `edit = PATH` (with `old` and `new`) are portable: they
become Claude Code's `Bash`/`Read`/`Write`/`Edit`, or Codex's `exec_command` and
`apply_patch` (a freeform patch; through exec_command as an `apply_patch` command when Codex
offers no apply_patch tool, as for models it has no metadata for; `read` becomes `cat`).
`tool = NAME` with `input` sends any tool call verbatim (a string `input` is a freeform
tool's text). `id` fixes the call id; by default it is derived from the trial, the step and
the call. Claude Code writes only files it has read in the same session: read first.

Side requests (Claude Code's title and summary calls, quota probes, token counting) carry
no tools, or are not messages at all; they are answered with `side_reply` (as JSON fitting
the schema when the request asks for structured output, as the title request does) or
sizes, and use no step. Chat Completions requests always count as the main conversation (Aider sends no
tools). A retried request (byte-for-byte the same conversation) gets the same reply again
without using a step. The position in the script survives a restart of the host service:
it is read back from the trial's gateway log.

A `[[candidate]]` table may sit in the same file for the candidate player
(orchestrator/candidate_script.py); the gateway ignores it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from orchestrator.errors import ConfigError, UsageError
from orchestrator.gateway import scripted_wire as wire
from orchestrator.gateway.log import log_path
from orchestrator.gateway.provider_errors import error_body
from orchestrator.gateway.urls import Route
from orchestrator.logging import get_logger

SCRIPT_PREFIX = "script:"
PROVIDER_PATTERN = r"^(anthropic|openai|script:.+)$"
"""What `[gateway] provider` accepts, in the operator settings and in template.toml."""
PROVIDER_HELP = "use anthropic, openai or script:FILE"
_SHOWN = 160
"""Characters of the conversation's last turn quoted in a problem message."""
_REPLAYS = 64
"""Recent replies kept per trial, to answer a retried request the same way."""
_MATCH_LIMIT = 200_000
"""Characters of the last turn a `when` looks at: a pasted megabyte must not make a regex crawl."""
_PATCH_END = "TRIAL_PATCH_END"
"""Here-document delimiter of a patch sent through Codex's shell tool."""
# Context Codex and Claude Code put into user turns themselves: not the candidate's prompt.
_INJECTED = ("<environment_context>", "<user_instructions>", "<turn_aborted>", "# AGENTS.md instructions",
             "<user_shell_command>", "<skills_instructions>", "<system-reminder>")

log = get_logger(component="gateway.script")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    prompt: str | None = None
    """The last user turn is a typed prompt containing this (case-insensitive; "" = any prompt)."""
    tool_result: str | None = None
    """The last user turn holds tool results containing this (case-insensitive; "" = any result)."""
    regex: str | None = None
    """A Python regular expression searched (case-insensitive) in the last user turn."""

    @model_validator(mode="after")
    def _compiles(self) -> When:
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from exc
        if self.prompt is not None and self.tool_result is not None:
            raise ValueError("a step answers either a prompt or a tool result, not both")
        return self


class Call(_Strict):
    tool: str | None = None
    """Any tool, by the name the agent gave it; `input` is sent verbatim."""
    input: dict[str, Any] | str | None = None
    bash: str | None = None
    """A shell command (Claude Code: Bash; Codex: exec_command)."""
    read: str | None = None
    """A file to read (Claude Code: Read; Codex: exec_command cat)."""
    write: str | None = None
    """A file to write whole (Claude Code: Write; Codex: apply_patch), from `content` or `content_file`."""
    content: str | None = None
    content_file: str | None = None
    """A file whose text is the content, relative to the script."""
    edit: str | None = None
    """A file to edit (Claude Code: Edit; Codex: apply_patch): `old` replaced by `new`."""
    old: str | None = None
    new: str | None = None
    description: str | None = None
    """Claude Code's Bash `description`."""
    id: str | None = None
    """The call id (default: derived from the trial, the step and the call)."""

    @model_validator(mode="after")
    def _one_action(self) -> Call:
        actions = [name for name in ("tool", "bash", "read", "write", "edit") if getattr(self, name) is not None]
        if len(actions) != 1:
            raise ValueError("a call names exactly one of tool, bash, read, write, edit "
                             f"(got {', '.join(actions) or 'none'})")
        if self.write is not None and (self.content is None) == (self.content_file is None):
            raise ValueError(f"write {self.write!r} needs exactly one of content, content_file")
        if self.edit is not None and (self.old is None or self.new is None):
            raise ValueError(f"edit {self.edit!r} needs old and new")
        if self.tool is not None and self.input is None:
            raise ValueError(f"tool {self.tool!r} needs an input")
        return self


class Step(_Strict):
    id: str | None = None
    when: When = When()
    text: str = ""
    calls: tuple[Call, ...] = ()

    @model_validator(mode="after")
    def _says_something(self) -> Step:
        if not self.text and not self.calls:
            raise ValueError("a step needs a text, calls or both")
        return self


class Script(_Strict):
    model: str | None = None
    """The model the replies name; default: the one the agent asked for (and is priced as)."""
    workdir: str = "/workspace"
    """Where relative paths of portable calls are (Claude Code wants absolute paths)."""
    side_reply: str = "Scripted session"
    """The answer to side requests: titles, summaries, quota probes."""
    description: str = ""
    step: tuple[Step, ...] = ()
    candidate: tuple[dict[str, Any], ...] = ()
    """The candidate's side of a played session (read by orchestrator/candidate_script.py)."""


@dataclass(frozen=True)
class LoadedScript:
    path: Path
    sha256: str
    script: Script
    files: Mapping[str, str]
    """Text of every `content_file`, by the name the script gives it."""


class ScriptError(ConfigError):
    """The script file cannot be used (missing, not TOML/JSON, or not the format)."""


def load_script(path: Path) -> LoadedScript:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"script {path}: cannot be read ({exc.strerror})",
                          "check [gateway] provider = \"script:FILE\" and that the file exists") from exc
    try:
        text = raw.decode()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ScriptError(f"script {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc})",
                          "fix the syntax") from exc
    try:
        script = Script.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ScriptError(f"script {path}: {where or 'top level'}: {first['msg']}",
                          "see the format in orchestrator/gateway/scripted.py") from exc
    files: dict[str, str] = {}
    for number, step in enumerate(script.step, 1):
        for call in step.calls:
            if call.content_file is not None and call.content_file not in files:
                source = path.parent / call.content_file
                try:
                    files[call.content_file] = source.read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise ScriptError(f"script {path}: step {number}: content_file {call.content_file!r} "
                                      f"cannot be read ({exc})", f"put the file at {source}") from exc
    digest = hashlib.sha256(raw + b"".join(files[name].encode() for name in sorted(files))).hexdigest()
    return LoadedScript(path=path, sha256=digest, script=script, files=files)


def script_path(provider: str | None) -> Path | None:
    """The script file a `[gateway] provider` value names, or None for a real provider."""
    if provider and provider.startswith(SCRIPT_PREFIX):
        return Path(provider[len(SCRIPT_PREFIX):]).expanduser()
    return None


def resolve_provider(provider: str, base: Path) -> str:
    """A provider value with its script path made absolute (relative to `base`) and the script checked."""
    if not re.match(PROVIDER_PATTERN, provider):
        raise UsageError(f"provider {provider!r} is not one the gateway knows", PROVIDER_HELP)
    path = script_path(provider)
    if path is None:
        return provider
    path = path if path.is_absolute() else (base / path).resolve()
    load_script(path)
    return SCRIPT_PREFIX + str(path)


# -- what a request says -------------------------------------------------------------------------

TurnKind = Literal["prompt", "tool_result", "none"]


@dataclass(frozen=True)
class Turn:
    """The end of the conversation a request carries, and the tools it offers."""

    kind: TurnKind
    text: str
    main: bool
    """The main conversation (it offers tools), not a side request."""
    tools: frozenset[str] = frozenset()
    freeform: frozenset[str] = frozenset()
    """Tools that take raw text (OpenAI custom tools, such as Codex's apply_patch)."""

    def shown(self) -> str:
        label = {"prompt": "a prompt", "tool_result": "a tool result", "none": "nothing the script can match"}
        text = " ".join(self.text.split())
        quoted = text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
        return f"{label[self.kind]}: {quoted!r}" if self.kind != "none" else label[self.kind]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(part for part in (_text(item) for item in value) if part)
    if isinstance(value, dict):
        for key in ("text", "content", "output"):
            if key in value:
                return _text(value[key])
        return ""
    return json.dumps(value)


def _typed(text: str) -> bool:
    return bool(text.strip()) and not text.lstrip().startswith(_INJECTED)


def read_anthropic(payload: dict[str, Any]) -> Turn:
    tools = frozenset(str(t.get("name")) for t in payload.get("tools") or [] if isinstance(t, dict))
    users = [m for m in payload.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return Turn("none", "", bool(tools), tools)
    content = users[-1].get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    results = [_text(b.get("content")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    prompts = [str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    typed = "\n".join(text for text in prompts if _typed(text))
    if results:
        return Turn("tool_result", "\n".join([*results, typed]).strip(), bool(tools), tools)
    return Turn("prompt" if typed else "none", typed, bool(tools), tools)


def _responses_tools(tools: Any) -> tuple[frozenset[str], frozenset[str]]:
    names: set[str] = set()
    freeform: set[str] = set()
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            inner = _responses_tools(tool.get("tools"))
            names |= inner[0]
            freeform |= inner[1]
        elif isinstance(tool.get("name"), str):
            names.add(tool["name"])
            if tool.get("type") == "custom":
                freeform.add(tool["name"])
    return frozenset(names), frozenset(freeform)


def read_responses(payload: dict[str, Any]) -> Turn:
    tools, freeform = _responses_tools(payload.get("tools"))
    items = payload.get("input")
    if isinstance(items, str):
        return Turn("prompt", items, bool(tools), tools, freeform)
    results: list[str] = []
    for item in reversed(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind in ("function_call_output", "custom_tool_call_output"):
            results.append(_text(item.get("output")))
            continue
        if results:
            break
        if kind == "message" and item.get("role") == "user":
            text = _text(item.get("content"))
            if _typed(text):
                return Turn("prompt", text, bool(tools), tools, freeform)
            continue
        if kind == "message" and item.get("role") in ("developer", "system"):
            continue
        break  # an assistant turn, a call or reasoning: the conversation ends with the model
    if results:
        return Turn("tool_result", "\n".join(reversed(results)), bool(tools), tools, freeform)
    return Turn("none", "", bool(tools), tools, freeform)


def read_chat(payload: dict[str, Any]) -> Turn:
    tools = frozenset(str((t.get("function") or {}).get("name")) for t in payload.get("tools") or []
                      if isinstance(t, dict))
    messages = [m for m in payload.get("messages") or [] if isinstance(m, dict)]
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "tool":
            results.append(_text(message.get("content")))
            continue
        if results:
            break
        if message.get("role") == "user":
            return Turn("prompt", _text(message.get("content")), True, tools)
        break
    if results:
        return Turn("tool_result", "\n".join(reversed(results)), True, tools)
    return Turn("none", "", True, tools)


def read_turn(kind: str, payload: dict[str, Any]) -> Turn:
    if kind == "anthropic.messages":
        return read_anthropic(payload)
    if kind == "openai.chat":
        return read_chat(payload)
    return read_responses(payload)


def matches(when: When, turn: Turn) -> bool:
    text = turn.text[:_MATCH_LIMIT]
    if when.prompt is not None and (turn.kind != "prompt" or when.prompt.lower() not in text.lower()):
        return False
    if when.tool_result is not None and (turn.kind != "tool_result" or when.tool_result.lower() not in text.lower()):
        return False
    return when.regex is None or re.search(when.regex, text, re.IGNORECASE | re.DOTALL) is not None


def describe(when: When) -> str:
    parts = []
    if when.prompt is not None:
        parts.append(f"a prompt containing {when.prompt!r}" if when.prompt else "a prompt")
    if when.tool_result is not None:
        parts.append(f"a tool result containing {when.tool_result!r}" if when.tool_result else "a tool result")
    if when.regex is not None:
        parts.append(f"text matching /{when.regex}/")
    return " and ".join(parts) or "anything"


# -- turning a step into tool calls of the agent at hand ------------------------------------------

class CallError(ValueError):
    """A step's call cannot be made with the tools this request offers."""


def _absolute(workdir: str, path: str) -> str:
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(workdir, path))


def _patch_path(workdir: str, path: str) -> str:
    prefix = workdir.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _lines(text: str, sign: str) -> list[str]:
    return [sign + line for line in text.split("\n")] if text else []


def apply_patch_text(call: Call, content: str | None, workdir: str) -> str:
    """Codex's patch format (`*** Begin Patch` … `*** End Patch`) for a portable write or edit."""
    if call.write is not None:
        body = (content or "").removesuffix("\n")
        hunk = [f"*** Add File: {_patch_path(workdir, call.write)}", *_lines(body, "+")]
    else:
        hunk = [f"*** Update File: {_patch_path(workdir, call.edit or '')}", "@@",
                *_lines((call.old or "").removesuffix("\n"), "-"), *_lines((call.new or "").removesuffix("\n"), "+")]
    return "\n".join(["*** Begin Patch", *hunk, "*** End Patch"]) + "\n"


def _need(turn: Turn, name: str, what: str) -> None:
    if turn.tools and name not in turn.tools:
        raise CallError(f"{what} needs the agent's {name} tool, which this request does not offer "
                        f"(it offers {', '.join(sorted(turn.tools)) or 'none'})")


def agent_call(call: Call, route_kind: str, turn: Turn, loaded: LoadedScript, call_id: str) -> wire.ToolCall:
    if call.tool is not None:
        return wire.ToolCall(call_id, call.tool, call.input if call.input is not None else {})
    content = loaded.files.get(call.content_file) if call.content_file is not None else call.content
    if route_kind == "anthropic.messages":
        return _claude_code_call(call, turn, loaded.script.workdir, content, call_id)
    if route_kind == "openai.responses":
        return _codex_call(call, turn, loaded.script.workdir, content, call_id)
    raise CallError("portable calls (bash, read, write, edit) need an agent with tools; "
                    "use `tool = NAME` with `input` for a Chat Completions agent")


def _claude_code_call(call: Call, turn: Turn, workdir: str, content: str | None, call_id: str) -> wire.ToolCall:
    if call.bash is not None:
        _need(turn, "Bash", "bash")
        arguments: dict[str, Any] = {"command": call.bash}
        if call.description:
            arguments["description"] = call.description
        return wire.ToolCall(call_id, "Bash", arguments)
    if call.read is not None:
        _need(turn, "Read", "read")
        return wire.ToolCall(call_id, "Read", {"file_path": _absolute(workdir, call.read)})
    if call.write is not None:
        _need(turn, "Write", "write")
        return wire.ToolCall(call_id, "Write", {"file_path": _absolute(workdir, call.write), "content": content or ""})
    _need(turn, "Edit", "edit")
    return wire.ToolCall(call_id, "Edit", {"file_path": _absolute(workdir, call.edit or ""),
                                           "old_string": call.old, "new_string": call.new})


def _codex_call(call: Call, turn: Turn, workdir: str, content: str | None, call_id: str) -> wire.ToolCall:
    if call.bash is not None or call.read is not None:
        _need(turn, "exec_command", "bash" if call.bash is not None else "read")
        command = call.bash if call.bash is not None else f"cat {shlex.quote(call.read or '')}"
        return wire.ToolCall(call_id, "exec_command", {"cmd": command, "workdir": workdir})
    patch = apply_patch_text(call, content, workdir)
    if "apply_patch" not in turn.tools and "exec_command" in turn.tools:
        # Codex offers no apply_patch tool for models it has no metadata for; its shell tool
        # still applies a patch given to an `apply_patch` command, as that model would send it.
        command = f"apply_patch <<'{_PATCH_END}'\n{patch}{_PATCH_END}\n"
        return wire.ToolCall(call_id, "exec_command", {"cmd": command, "workdir": workdir})
    _need(turn, "apply_patch", "write" if call.write is not None else "edit")
    return wire.ToolCall(call_id, "apply_patch", patch if "apply_patch" in turn.freeform else {"input": patch})


# -- the gateway side: one state per trial --------------------------------------------------------

@dataclass
class _TrialState:
    sha256: str
    cursor: int = 0
    replies: OrderedDict[str, tuple[wire.Reply, dict[str, Any]]] = field(default_factory=OrderedDict)


class ScriptedResponse:
    """An upstream answer produced here, shaped like the aiohttp response the relay reads."""

    def __init__(self, status: int, encoded: wire.Encoded, info: dict[str, Any]) -> None:
        self.status = status
        self.content_type = encoded.content_type.split(";")[0].strip()
        self.headers = CIMultiDictProxy(CIMultiDict({"Content-Type": encoded.content_type, **encoded.headers}))
        self.content = _Content(list(encoded.chunks))
        self.info = info

    async def read(self) -> bytes:
        return b"".join(self.content.drain())

    def release(self) -> None:
        return None

    def close(self) -> None:
        self.content.drain()


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def at_eof(self) -> bool:
        return not self._chunks

    def drain(self) -> list[bytes]:
        chunks, self._chunks = self._chunks, []
        return chunks


class ScriptedModels:
    """The scripts the gateway serves, and where each trial is in its script."""

    def __init__(self, home: Path, default_provider: str | None, base: Path | None = None) -> None:
        self.home = home
        self.default_provider = default_provider
        self.base = base or Path.cwd()
        self._scripts: dict[Path, tuple[tuple[int, int], LoadedScript]] = {}
        self._trials: dict[str, _TrialState] = {}

    def provider(self, trial_provider: str | None) -> str | None:
        """The trial's own choice (recorded at launch), else the operator's."""
        return trial_provider or self.default_provider

    def script_for(self, provider: str | None) -> Path | None:
        path = script_path(provider)
        if path is None or path.is_absolute():
            return path
        return (self.base / path).resolve()

    def _load(self, path: Path) -> LoadedScript:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._scripts.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        loaded = load_script(path)
        self._scripts[path] = (key, loaded)
        return loaded

    def respond(self, trial_id: str, route: Route, payload: Any, body: bytes | None,
                path: Path) -> ScriptedResponse:
        """The answer to one request of a trial served from the script at `path`."""
        info: dict[str, Any] = {"file": str(path)}
        try:
            loaded = self._load(path)
        except (OSError, ScriptError) as exc:
            message = exc.one_line() if isinstance(exc, ScriptError) else f"script {path}: {exc}"
            info.update(status="error", problem=message)
            log.error("gateway.script_unusable", trial_id=trial_id, error=message)
            return _error(route, 500, message, info)
        info["sha256"] = loaded.sha256
        request = payload if isinstance(payload, dict) else {}
        size = len(body or b"")
        if route.kind in ("anthropic.count_tokens", "openai.models"):
            info["status"] = route.kind.partition(".")[2]
            encoded = (wire.anthropic_count_tokens(size) if route.kind == "anthropic.count_tokens"
                       else wire.openai_models([loaded.script.model or "scripted"]))
            return ScriptedResponse(200, encoded, info)
        return self._conversation(trial_id, route, request, size, loaded, info)

    def _conversation(self, trial_id: str, route: Route, request: dict[str, Any], size: int, loaded: LoadedScript,
                      info: dict[str, Any]) -> ScriptedResponse:
        path, model = loaded.path, loaded.script.model or str(request.get("model") or "scripted")
        turn = read_turn(route.kind, request)
        fingerprint = _fingerprint(request)
        state = self._state(trial_id, loaded)
        if route.upstream_path.endswith("/compact") or not turn.main:
            info["status"] = "side"
            schema = _json_schema(route.kind, request)
            text = (loaded.script.side_reply if schema is None
                    else json.dumps(_from_schema(schema, loaded.script.side_reply)))
            reply = wire.Reply(_ident(trial_id, loaded.sha256, "side", fingerprint), model, text,
                               request_bytes=size)
            return self._encode(route, reply, request, info)
        replay = state.replies.get(fingerprint)
        if replay is not None:
            info.update(replay[1], status="replayed")
            return self._encode(route, replay[0], request, info)
        steps = loaded.script.step
        ident = _ident(trial_id, loaded.sha256, str(state.cursor), fingerprint)
        if state.cursor >= len(steps):
            problem = (f"[scripted model] The script has run out: all {len(steps)} steps were answered, and "
                       f"nothing answers this request, which ends with {turn.shown()}. Script: {path}.")
            return self._problem(route, request, info, "exhausted", problem, ident, model, size, trial_id)
        step = steps[state.cursor]
        name = f"step {state.cursor + 1}" + (f" ({step.id!r})" if step.id else "")
        info.update(step=state.cursor + 1, step_id=step.id, steps=len(steps))
        if not matches(step.when, turn):
            problem = (f"[scripted model] The script does not match this request: {name} of {len(steps)} expects "
                       f"{describe(step.when)}, but the request ends with {turn.shown()}. Nothing was done; "
                       f"the script waits at {name}. Script: {path}.")
            return self._problem(route, request, info, "mismatch", problem, ident, model, size, trial_id)
        try:
            calls = tuple(agent_call(call, route.kind, turn, loaded,
                                     call.id or _call_id(route.kind, ident, position))
                          for position, call in enumerate(step.calls))
        except CallError as exc:
            problem = f"[scripted model] {name} cannot be played with this agent: {exc}. Script: {path}."
            return self._problem(route, request, info, "invalid", problem, ident, model, size, trial_id)
        reply = wire.Reply(ident, model, step.text, calls, request_bytes=size)
        state.cursor += 1
        info["status"] = "matched"
        state.replies[fingerprint] = (reply, {k: info[k] for k in ("step", "step_id", "steps")})
        while len(state.replies) > _REPLAYS:
            state.replies.popitem(last=False)
        return self._encode(route, reply, request, info)

    def _problem(self, route: Route, request: dict[str, Any], info: dict[str, Any], status: str, problem: str,
                 ident: str, model: str, size: int, trial_id: str) -> ScriptedResponse:
        info.update(status=status, problem=problem)
        log.warning("gateway.script_" + status, trial_id=trial_id, problem=problem)
        return self._encode(route, wire.Reply(ident, model, problem, request_bytes=size), request, info)

    def _encode(self, route: Route, reply: wire.Reply, request: dict[str, Any],
                info: dict[str, Any]) -> ScriptedResponse:
        stream = request.get("stream") is True
        if route.kind == "anthropic.messages":
            return ScriptedResponse(200, wire.anthropic(reply, stream=stream), info)
        if route.kind == "openai.chat":
            options = request.get("stream_options")
            include = isinstance(options, dict) and options.get("include_usage") is True
            return ScriptedResponse(200, wire.openai_chat(reply, stream=stream, include_usage=include), info)
        if route.upstream_path.endswith("/compact"):
            return ScriptedResponse(200, wire.openai_compact(reply), info)
        return ScriptedResponse(200, wire.openai_responses(reply, stream=stream, request=request), info)

    def _state(self, trial_id: str, loaded: LoadedScript) -> _TrialState:
        state = self._trials.get(trial_id)
        if state is None or state.sha256 != loaded.sha256:
            state = _TrialState(loaded.sha256, cursor=self._recovered_cursor(trial_id, loaded.sha256))
            self._trials[trial_id] = state
        return state

    def _recovered_cursor(self, trial_id: str, sha256: str) -> int:
        """Where an earlier gateway process left this trial in this script: its log says."""
        cursor = 0
        try:
            with log_path(self.home, trial_id).open("rb") as lines:  # line by line: a log may be large
                for line in lines:
                    if b'"script"' not in line:
                        continue
                    try:
                        script = json.loads(line).get("script") or {}
                    except ValueError:
                        continue
                    if script.get("sha256") == sha256 and script.get("status") == "matched":
                        cursor = max(cursor, int(script.get("step") or 0))
        except (OSError, ValueError):
            pass  # no log yet (or an unreadable one): the script starts at its first step
        return cursor


def _json_schema(route_kind: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks the answer to follow (Claude Code's title request does)."""
    if route_kind == "anthropic.messages":
        config = request.get("output_config")
        found = (config.get("format") if isinstance(config, dict) else None) or request.get("output_format")
    elif route_kind == "openai.chat":
        found = request.get("response_format")
        found = found.get("json_schema") if isinstance(found, dict) else None
    else:
        text = request.get("text")
        found = text.get("format") if isinstance(text, dict) else None
    if not isinstance(found, dict) or found.get("type", "json_schema") != "json_schema":
        return None
    schema = found.get("schema")
    return schema if isinstance(schema, dict) else None


def _from_schema(schema: dict[str, Any], text: str) -> Any:
    """A small value that fits the schema: strings are `text`, the rest empty or zero."""
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or isinstance(schema.get("properties"), dict):
        raw_properties, raw_required = schema.get("properties"), schema.get("required")
        properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
        required: list[Any] = raw_required if isinstance(raw_required, list) else list(properties)
        return {str(name): _from_schema(properties.get(name) or {}, text) for name in required}
    return {"array": [], "integer": 0, "number": 0, "boolean": False, "null": None}.get(str(kind), text)


def _fingerprint(request: dict[str, Any]) -> str:
    stable = {key: value for key, value in request.items() if key not in ("stream", "stream_options")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def _ident(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _call_id(route_kind: str, ident: str, position: int) -> str:
    prefix = "toolu_script" if route_kind == "anthropic.messages" else "call_script"
    return f"{prefix}{ident[:20]}{position:02d}"


def _error(route: Route, status: int, message: str, info: dict[str, Any]) -> ScriptedResponse:
    encoded = wire.Encoded("application/json", [json.dumps(error_body(route.provider, status, message)).encode()])
    return ScriptedResponse(status, encoded, info)
