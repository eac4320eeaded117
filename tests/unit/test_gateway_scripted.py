"""The scripted model, served by the real gateway, read by the official SDKs.

Each test runs the real gateway on loopback (real store, real log files) with
`[gateway] provider = "script:FILE"`: the replies must parse with the `anthropic` and
`openai` SDKs exactly as a provider's would, follow the script through a conversation,
and be logged, priced and budgeted like a real upstream's. A script that runs out or does
not match says so, to the agent and in the log.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from orchestrator.catalog import load_template
from orchestrator.config import load_settings
from orchestrator.errors import ConfigError, TemplateError, UsageError
from orchestrator.gateway.log import verify_chain
from orchestrator.gateway.scripted import (
    Call,
    ScriptedModels,
    ScriptError,
    apply_patch_text,
    load_script,
    read_anthropic,
    read_responses,
    resolve_provider,
)
from tests.integration.gateway_harness import Harness, running_gateway

pytestmark = pytest.mark.unit  # loopback sockets only, no Docker

CLAUDE_TOOLS = [{"name": name, "description": name, "input_schema": {"type": "object", "properties": {}}}
                for name in ("Bash", "Read", "Write", "Edit")]
CODEX_TOOLS: list[Any] = [
    {"type": "function", "name": "exec_command", "description": "run", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
]
CHAT_TOOLS: list[Any] = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]

SCRIPT = """\
description = "unit test session"

[[step]]
id = "look"
when = { prompt = "hash the keys" }
text = "I'll look first."
calls = [{ bash = "ls keyservice", description = "List the package" }]

[[step]]
id = "write"
when = { tool_result = "store.py" }
text = "Writing the hashing module."
calls = [
  { write = "keyservice/hashing.py", content_file = "files/hashing.py" },
  { edit = "keyservice/store.py", old = "key TEXT", new = "key_hash TEXT", id = "toolu_fixed_id" },
]

[[step]]
when = { regex = "(passed|written)" }
text = "Done: keys are stored as HMAC-SHA256."
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "session.toml"
    path.write_text(SCRIPT)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "hashing.py").write_text("import hmac\n\n\ndef key_hash(secret, key):\n    ...\n")
    return path


@pytest.fixture
def gw(script: Path) -> Iterator[Harness]:
    with running_gateway(**{"gateway.provider": f"script:{script}"}) as harness:
        yield harness


def claude(gw: Harness) -> anthropic.Anthropic:
    return anthropic.Anthropic(auth_token=gw.token, api_key=None, base_url=gw.urls["anthropic"], max_retries=0,
                               timeout=20)


def codex(gw: Harness) -> openai.OpenAI:
    # The harness's second trial (a Codex one) when tokens open one provider's routes each.
    token = getattr(gw, "openai_token", "") or gw.token
    return openai.OpenAI(api_key=token, base_url=gw.urls["openai"], max_retries=0, timeout=20)


def records(gw: Harness, provider: str = "anthropic") -> list[dict[str, Any]]:
    path = gw.openai_log if provider == "openai" and getattr(gw, "openai_token", "") else gw.log
    return [json.loads(line) for line in path.read_text().splitlines()]


def tool_result(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": text}]}


def test_claude_code_conversation_follows_the_script_streamed_and_logged(gw: Harness) -> None:
    client = claude(gw)
    messages: list[dict[str, Any]] = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\ncontext Claude Code adds\n</system-reminder>"},
        {"type": "text", "text": "Please hash the keys in keyservice/"}]}]
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=1024, messages=messages,
                                tools=CLAUDE_TOOLS) as stream:  # type: ignore[arg-type]
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use" and first.model == "claude-sonnet-5-5"
    assert first.content[0].type == "text" and first.content[0].text == "I'll look first."
    bash = first.content[1]
    assert bash.type == "tool_use" and bash.name == "Bash"
    assert bash.input == {"command": "ls keyservice", "description": "List the package"}
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0

    messages += [{"role": "assistant", "content": [block.model_dump() for block in first.content]},
                 tool_result(bash.id, "__init__.py\nstore.py\n")]
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=1024, messages=messages,
                                tools=CLAUDE_TOOLS) as stream:  # type: ignore[arg-type]
        second = stream.get_final_message()
    write, edit = second.content[1], second.content[2]
    assert write.type == "tool_use" and write.name == "Write"
    assert write.input == {"file_path": "/workspace/keyservice/hashing.py",
                           "content": "import hmac\n\n\ndef key_hash(secret, key):\n    ...\n"}
    assert edit.type == "tool_use" and edit.name == "Edit" and edit.id == "toolu_fixed_id"
    assert edit.input == {"file_path": "/workspace/keyservice/store.py", "old_string": "key TEXT",
                          "new_string": "key_hash TEXT"}
    assert write.id != bash.id

    messages += [{"role": "assistant", "content": [block.model_dump() for block in second.content]},
                 {"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": write.id, "content": "File written"},
                     {"type": "tool_result", "tool_use_id": edit.id, "content": "File edited"}]}]
    third = client.messages.create(model="claude-sonnet-5-5", max_tokens=1024, messages=messages,
                                   tools=CLAUDE_TOOLS)  # type: ignore[arg-type]
    assert third.stop_reason == "end_turn" and third.content[0].type == "text"
    assert third.content[0].text == "Done: keys are stored as HMAC-SHA256."

    logged = records(gw)
    assert [r["script"]["status"] for r in logged] == ["matched"] * 3
    assert [(r["script"]["step"], r["script"]["step_id"]) for r in logged] == [(1, "look"), (2, "write"), (3, None)]
    assert all(r["status"] == 200 and r["outcome"] == "ok" and r["cost_usd"] > 0 for r in logged)
    # The tee assembled the scripted stream like a provider's: the log holds the whole message.
    assert logged[1]["response"]["content"][1]["input"]["file_path"] == "/workspace/keyservice/hashing.py"
    assert logged[0]["usage"]["input_tokens"] == first.usage.input_tokens
    assert logged[0]["usage"]["output_tokens"] == first.usage.output_tokens
    assert logged[0]["response"]["id"] == first.id
    assert verify_chain(gw.log).ok


def test_side_requests_and_token_counts_use_no_step(gw: Harness) -> None:
    client = claude(gw)
    title = client.messages.create(model="claude-haiku-5-5", max_tokens=64,
                                   messages=[{"role": "user", "content": "Write a title for: hash the keys"}])
    assert title.content[0].type == "text" and title.content[0].text == "Scripted session"
    counted = client.messages.count_tokens(model="claude-sonnet-5-5", messages=[
        {"role": "user", "content": "hash the keys"}], tools=CLAUDE_TOOLS)  # type: ignore[arg-type]
    assert counted.input_tokens > 0
    main = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                  messages=[{"role": "user", "content": "hash the keys"}])
    assert main.content[1].type == "tool_use"  # still step 1
    assert [r["script"]["status"] for r in records(gw)] == ["side", "count_tokens", "matched"]


def test_a_retried_request_gets_the_same_reply_without_using_a_step(gw: Harness) -> None:
    client = claude(gw)
    ask = {"model": "claude-sonnet-5-5", "max_tokens": 64, "tools": CLAUDE_TOOLS,
           "messages": [{"role": "user", "content": "hash the keys"}]}
    first = client.messages.create(**ask)  # type: ignore[call-overload]
    again = client.messages.create(**ask)  # type: ignore[call-overload]
    assert again.model_dump() == first.model_dump()
    assert [r["script"]["status"] for r in records(gw)] == ["matched", "replayed"]


def test_a_mismatch_says_so_to_the_agent_and_in_the_log_and_the_script_waits(gw: Harness) -> None:
    client = claude(gw)
    wrong = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                   messages=[{"role": "user", "content": "Tell me a joke"}])
    assert wrong.stop_reason == "end_turn" and len(wrong.content) == 1 and wrong.content[0].type == "text"
    said = wrong.content[0].text
    assert "does not match" in said and "'look'" in said and "'hash the keys'" in said and "Tell me a joke" in said
    right = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                   messages=[{"role": "user", "content": "now hash the keys"}])
    assert right.content[1].type == "tool_use"
    logged = records(gw)
    assert logged[0]["script"]["status"] == "mismatch" and logged[0]["error"] == said
    assert logged[0]["script"]["problem"] == said and logged[0]["status"] == 200
    assert logged[1]["script"] == {**logged[1]["script"], "status": "matched", "step": 1}


def test_an_exhausted_script_says_so(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text('[[step]]\ntext = "Only answer."\n')
    with running_gateway(**{"gateway.provider": f"script:{path}"}) as gw:
        client = claude(gw)
        first = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                       messages=[{"role": "user", "content": "one"}])
        assert first.content[0].type == "text" and first.content[0].text == "Only answer."
        second = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                        messages=[{"role": "user", "content": "two"}])
        assert second.content[0].type == "text"
        assert "has run out" in second.content[0].text and "all 1 steps" in second.content[0].text
        assert [r["script"]["status"] for r in records(gw)] == ["matched", "exhausted"]
        assert "has run out" in records(gw)[1]["error"]


def test_the_position_survives_a_restart_of_the_gateway(gw: Harness, script: Path) -> None:
    claude(gw).messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                               messages=[{"role": "user", "content": "hash the keys"}])
    # What a new service process has: no memory of the trial, only its log.
    gw.app_gateway.scripts = ScriptedModels(gw.settings.home, f"script:{script}")
    after = claude(gw).messages.create(
        model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "hash the keys"},
                  {"role": "assistant", "content": "..."}, tool_result("toolu_x", "store.py")])
    assert [block.type for block in after.content] == ["text", "tool_use", "tool_use"]
    assert records(gw)[-1]["script"]["step"] == 2


def test_codex_responses_stream_with_exec_command_and_a_freeform_apply_patch(gw: Harness) -> None:
    client = codex(gw)
    items: list[Any] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                          "text": "<environment_context>cwd</environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hash the keys please"}]}]
    with client.responses.stream(model="gpt-5.5", input=items, tools=CODEX_TOOLS) as stream:
        events = [event.type for event in stream]
        first = stream.get_final_response()
    assert events[0] == "response.created" and events[-1] == "response.completed"
    message, call = first.output
    assert message.type == "message" and message.content[0].type == "output_text"
    assert message.content[0].text == "I'll look first."
    assert call.type == "function_call" and call.name == "exec_command"
    assert json.loads(call.arguments) == {"cmd": "ls keyservice", "workdir": "/workspace"}
    assert first.usage is not None and first.usage.output_tokens > 0

    items += [item.model_dump(exclude_none=True) for item in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "Output:\nstore.py\n"})
    second = client.responses.create(model="gpt-5.5", input=items, tools=CODEX_TOOLS, stream=True)
    done = [event for event in second if event.type == "response.completed"]
    output = done[0].response.output
    patches = [item for item in output if item.type == "custom_tool_call"]
    assert [p.name for p in patches] == ["apply_patch", "apply_patch"]
    assert patches[0].input == ("*** Begin Patch\n*** Add File: keyservice/hashing.py\n+import hmac\n+\n+\n"
                                "+def key_hash(secret, key):\n+    ...\n*** End Patch\n")
    assert patches[1].input == ("*** Begin Patch\n*** Update File: keyservice/store.py\n@@\n-key TEXT\n"
                                "+key_hash TEXT\n*** End Patch\n")
    assert patches[1].call_id == "toolu_fixed_id"
    logged = records(gw, "openai")
    assert [r["script"]["step"] for r in logged] == [1, 2] and all(r["cost_usd"] > 0 for r in logged)
    assert logged[1]["response"]["output"][1]["type"] == "custom_tool_call"


def test_chat_completions_stream_raw_tool_calls_and_refuse_portable_ones(tmp_path: Path) -> None:
    path = tmp_path / "chat.toml"
    path.write_text(textwrap.dedent("""\
        [[step]]
        text = "Running it."
        calls = [{ tool = "run", input = { argv = ["pytest", "-q"] } }]
        [[step]]
        calls = [{ bash = "ls" }]
        """))
    with running_gateway(**{"gateway.provider": f"script:{path}"}) as gw:
        client = codex(gw)
        chunks = list(client.chat.completions.create(model="gpt-5.4", stream=True, tools=CHAT_TOOLS,
                                                     messages=[{"role": "user", "content": "test it"}],
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Running it."
        calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
        assert calls[0].function is not None and calls[0].function.name == "run"
        assert json.loads("".join(t.function.arguments or "" for t in calls if t.function)) == {
            "argv": ["pytest", "-q"]}
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        plain = client.chat.completions.create(model="gpt-5.4", messages=[
            {"role": "user", "content": "test it"}, {"role": "tool", "tool_call_id": "x", "content": "ok"}])
        said = plain.choices[0].message.content or ""
        assert "cannot be played with this agent" in said and "portable calls" in said
        assert [r["script"]["status"] for r in records(gw, "openai")] == ["matched", "invalid"]


def test_the_scripted_model_is_budgeted_like_a_provider(script: Path) -> None:
    with running_gateway(budget_usd=0.0, **{"gateway.provider": f"script:{script}"}) as gw:
        with pytest.raises(anthropic.RateLimitError):
            claude(gw).messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                       messages=[{"role": "user", "content": "hash the keys"}])
        logged = records(gw)
        assert logged[0]["status"] == 429 and logged[0]["outcome"].startswith("refused_budget")
        assert "script" not in logged[0]  # refused before the script was asked


def test_an_unusable_script_is_a_provider_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "gone.toml"
    with running_gateway(**{"gateway.provider": f"script:{path}"}) as gw:
        with pytest.raises(anthropic.InternalServerError) as caught:
            claude(gw).messages.create(model="claude-sonnet-5-5", max_tokens=64, tools=CLAUDE_TOOLS,  # type: ignore[arg-type]
                                       messages=[{"role": "user", "content": "hi"}])
        assert str(path) in str(caught.value)
        assert records(gw)[0]["script"]["status"] == "error"


# -- the format, without a gateway ----------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('[[step]]\nwhen = { prompt = "a", tool_result = "b" }\ntext = "x"\n', "either a prompt or a tool result"),
    ('[[step]]\ntext = ""\n', "needs a text, calls or both"),
    ('[[step]]\ntext = "x"\ncalls = [{ bash = "ls", read = "a" }]\n', "exactly one of tool, bash"),
    ('[[step]]\ntext = "x"\ncalls = [{ write = "a.py" }]\n', "needs exactly one of content, content_file"),
    ('[[step]]\ntext = "x"\ncalls = [{ edit = "a.py", old = "x" }]\n', "needs old and new"),
    ('[[step]]\nwhen = { regex = "(" }\ntext = "x"\n', "does not compile"),
    ('[[step]]\ntext = "x"\nsay = "y"\n', "step.0.say"),
    ('[[step]]\ntext = "x"\ncalls = [{ write = "a.py", content_file = "missing.py" }]\n', "missing.py"),
    ("[[step]\n", "not valid TOML"),
])
def test_a_bad_script_is_one_line_naming_the_file_and_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert expected in caught.value.message and str(path) in caught.value.message
    assert "\n" not in caught.value.one_line()


def test_json_scripts_and_provider_values(tmp_path: Path, script: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"step": [{"text": "hi", "calls": [{"read": "README.md"}]}]}))
    assert load_script(path).script.step[0].calls[0].read == "README.md"
    assert resolve_provider("anthropic", tmp_path) == "anthropic"
    assert resolve_provider("script:session.toml", script.parent) == f"script:{script}"
    with pytest.raises(UsageError, match="not one the gateway knows"):
        resolve_provider("gemini", tmp_path)
    with pytest.raises(ScriptError, match="cannot be read"):
        resolve_provider("script:nope.toml", tmp_path)
    with pytest.raises(ConfigError, match=r"gateway\.provider"):
        load_settings(env={"TRIAL_GATEWAY_PROVIDER": "bogus", "TRIAL_HOME": str(tmp_path)}, cwd=tmp_path)
    assert load_settings(env={"TRIAL_GATEWAY_PROVIDER": "script:x.toml", "TRIAL_HOME": str(tmp_path)},
                         cwd=tmp_path).gateway.provider == "script:x.toml"


def test_a_template_may_name_its_provider(tmp_path: Path) -> None:
    root = tmp_path / "probe"
    (root / "starter").mkdir(parents=True)
    (root / "hidden_tests").mkdir()
    (root / "brief.md").write_text("b\n")
    (root / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\n")
    toml = 'title = "t"\nsummary = "s"\nlanguage = "py"\n[tests]\nstarter = "true"\nhidden = "true"\n'
    (root / "template.toml").write_text(toml + '[gateway]\nprovider = "script:demo/session.toml"\n')
    assert load_template(root).config.gateway.provider == "script:demo/session.toml"
    (root / "template.toml").write_text(toml + '[gateway]\nprovider = "gemini"\n')
    with pytest.raises(TemplateError, match=r"gateway\.provider"):
        load_template(root)


def test_what_claude_code_and_codex_requests_end_with() -> None:
    # Claude Code 2.1 wraps context in system-reminder blocks and may end with a system message.
    claude_code = {"tools": CLAUDE_TOOLS, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>\ngit status\n</system-reminder>"},
                                     {"type": "text", "text": "fix the bug"}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}]}
    turn = read_anthropic(claude_code)
    assert (turn.kind, turn.text, turn.main) == ("prompt", "fix the bug", True)
    assert read_anthropic({"messages": [{"role": "user", "content": "title?"}]}).main is False
    codex_turn = read_responses({"tools": CODEX_TOOLS, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "do it"}]},
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "exit 0"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "Success. Updated: a.py"}]})
    assert codex_turn.kind == "tool_result" and codex_turn.text == "exit 0\nSuccess. Updated: a.py"
    assert codex_turn.freeform == {"apply_patch"}


def test_apply_patch_text_for_a_new_file_and_an_edit() -> None:
    assert apply_patch_text(Call(write="/workspace/a/b.py", content="x = 1\n"), "x = 1\n", "/workspace") == (
        "*** Begin Patch\n*** Add File: a/b.py\n+x = 1\n*** End Patch\n")
    assert apply_patch_text(Call(edit="c.py", old="a\nb", new="c"), None, "/workspace") == (
        "*** Begin Patch\n*** Update File: c.py\n@@\n-a\n-b\n+c\n*** End Patch\n")


def test_launch_with_an_unusable_provider_is_one_line_and_creates_nothing(trial_home: Path, tmp_path: Path) -> None:
    from tests.unit.test_cli_errors import assert_nothing_created, assert_one_line_error, trial

    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\ntext = ""\n')
    # Checked before Docker or the forge is asked anything: an unreachable engine is never reached.
    env = {"DOCKER_HOST": "tcp://127.0.0.1:1"}
    for provider, fragments in ((f"script:{bad}", (str(bad), "needs a text, calls or both")),
                                (f"script:{tmp_path / 'none.toml'}", ("cannot be read",)),
                                ("gemini", ("provider 'gemini' is not one the gateway knows", "script:FILE"))):
        result = trial("launch", "api-keys", "--candidate", "octocat", "--provider", provider, env=env)
        assert_one_line_error(result, 2, *fragments)
    assert_nothing_created(trial_home)


def test_a_side_request_for_json_gets_json_that_fits_its_schema(gw: Harness) -> None:
    # What Claude Code 2.1 asks for a session title: structured output, no tools.
    title = claude(gw).messages.create(
        model="claude-haiku-5-5", max_tokens=64, messages=[{"role": "user", "content": "Please make the file"}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["title", "n"], "additionalProperties": False}}}})
    assert title.content[0].type == "text"
    assert json.loads(title.content[0].text) == {"title": "Scripted session", "n": 0}
    assert records(gw)[0]["script"]["status"] == "side"


def test_codex_without_an_apply_patch_tool_gets_the_patch_through_its_shell(gw: Harness) -> None:
    shell_only = CODEX_TOOLS[:1]
    items: list[Any] = [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "hash the keys"}]}]
    codex(gw).responses.create(model="gpt-5-codex", input=items, tools=shell_only)
    items.append({"type": "function_call_output", "call_id": "c1", "output": "store.py"})
    second = codex(gw).responses.create(model="gpt-5-codex", input=items, tools=shell_only)
    calls = [item for item in second.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["exec_command", "exec_command"]
    command = json.loads(calls[1].arguments)["cmd"]
    assert command == ("apply_patch <<'TRIAL_PATCH_END'\n*** Begin Patch\n*** Update File: keyservice/store.py\n@@\n"
                       "-key TEXT\n+key_hash TEXT\n*** End Patch\nTRIAL_PATCH_END\n")
