"""Each real agent, installed offline from the host cache, runs once inside a hardened sandbox.

The agent talks to the real gateway (`trial serve`), which relays to a scripted fake
upstream on loopback speaking the Anthropic and OpenAI wire formats. Each test asserts
that the gateway logged the exchange, that the agent's own transcript (collected from
the home volume) parses to the prompt we typed, and that the real provider key (a canary
given to the gateway only) is nowhere inside the sandbox: environment, files, process
arguments, image layers.

The agent artefacts (~170 MB each, compressed) are fetched once into the shared agent
cache (`TRIAL_AGENT_CACHE`, default ~/.cache/trial/agents) and images are tagged by
content, so only the first run on a machine pays for downloads and builds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from orchestrator.agents import AgentSpec, get_agent
from orchestrator.agents.cache import agent_cache_root
from orchestrator.agents.transcripts import collect
from orchestrator.catalog import Template
from orchestrator.config import Settings, load_settings
from orchestrator.gateway.log import log_path, read_records
from orchestrator.sandbox.base import HOME, WORKSPACE, SandboxRef
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.store import Store, Trial, utcnow
from tests.conftest import BASE_IMAGE, free_port, trial_serve
from tests.integration.agent_sandboxes import agent_image, probe_template, start_agent_sandbox

pytestmark = pytest.mark.docker

CANARY = "sk-REAL-PROVIDER-KEY-canary-6f1d2c"
"""The gateway's upstream key: it must never be seen inside a sandbox."""
RUN_TIMEOUT_S = 240


# ---- a scripted upstream: Anthropic Messages, OpenAI Responses and Chat Completions ----------

@dataclass
class FakeUpstream:
    """Answers like the providers do (streamed SSE); a prompt saying `RUN: cmd` gets a shell tool call."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_route("*", "/{tail:.*}", self.other)
        return app

    async def _note(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append({"path": request.path, "auth": request.headers.get("Authorization")
                              or request.headers.get("x-api-key"), "body": body})
        return dict(body)

    async def other(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "method": request.method})
        return web.json_response({"error": {"type": "not_found", "message": "no such route"}}, status=404)

    @staticmethod
    def _command(text: str) -> str | None:
        if "RUN:" not in text:
            return None
        return text.split("RUN:", 1)[1].strip().splitlines()[0].strip()

    async def _sse(self, request: web.Request,
                   frames: list[tuple[str | None, dict[str, Any] | str]]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for name, data in frames:
            payload = data if isinstance(data, str) else json.dumps(data)
            head = f"event: {name}\n" if name else ""
            await response.write(f"{head}data: {payload}\n\n".encode())
        await response.write_eof()
        return response

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await self._note(request)
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1] if users else {}
        content = last.get("content")
        answered = isinstance(content, list) and any(b.get("type") == "tool_result" for b in content
                                                     if isinstance(b, dict))
        command = None if answered else self._command(json.dumps(content))
        if command:
            command = command.split('"')[0].split("\\")[0]
        model = body.get("model", "claude")
        block: dict[str, Any]
        if command:
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": "Bash", "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps({"command": command})}
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": "Done." if answered else "Hello from the fake upstream."}
        usage = {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 0,
                 "cache_creation_input_tokens": 0}
        if not body.get("stream"):
            filled = {"input": json.loads(delta["partial_json"])} if command else {"text": delta["text"]}
            final = dict(block, **filled)
            return web.json_response({"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
                                      "model": model, "content": [final], "stop_reason": "end_turn",
                                      "stop_sequence": None, "usage": usage})
        return await self._sse(request, [
            ("message_start", {"type": "message_start", "message": {
                "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "tool_use" if command else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7}}),
            ("message_stop", {"type": "message_stop"}),
        ])

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._note(request)
        items = [i for i in body.get("input", []) if isinstance(i, dict)]
        answered = any(i.get("type") == "function_call_output" for i in items)
        users = [i for i in items if i.get("role") == "user"]
        command = None if answered or not users else self._command(json.dumps(users[-1].get("content")))
        if command:
            command = command.split('"')[0].split("\\")[0]
        item: dict[str, Any]
        if command:
            item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:12]}",
                    "call_id": f"call_{uuid.uuid4().hex[:12]}", "name": "exec_command",
                    "arguments": json.dumps({"cmd": command}), "status": "completed"}
        else:
            item = {"type": "message", "id": f"msg_{uuid.uuid4().hex[:12]}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "annotations": [],
                                 "text": "Done." if answered else "Hello from the fake upstream."}]}
        base = {"id": f"resp_{uuid.uuid4().hex[:20]}", "object": "response", "created_at": int(time.time()),
                "model": body.get("model"), "status": "in_progress", "output": []}
        usage = {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 29}
        frames: list[dict[str, Any]] = [
            {"type": "response.created", "response": base},
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "status": "in_progress"}},
        ]
        if item["type"] == "message":
            frames.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                           "content_index": 0, "delta": item["content"][0]["text"]})
        frames += [{"type": "response.output_item.done", "output_index": 0, "item": item},
                   {"type": "response.completed",
                    "response": {**base, "status": "completed", "output": [item], "usage": usage}}]
        return await self._sse(request, [(f["type"], {**f, "sequence_number": n}) for n, f in enumerate(frames)])

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._note(request)
        ident, model = f"chatcmpl-{uuid.uuid4().hex[:20]}", body.get("model")
        text = "Hello from the fake upstream."
        usage = {"prompt_tokens": 15, "completion_tokens": 6, "total_tokens": 21}
        if not body.get("stream"):
            return web.json_response({"id": ident, "object": "chat.completion", "created": int(time.time()),
                                      "model": model, "usage": usage, "choices": [
                                          {"index": 0, "message": {"role": "assistant", "content": text},
                                           "finish_reason": "stop"}]})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        frames: list[tuple[str | None, dict[str, Any] | str]] = [
            (None, chunk({"role": "assistant", "content": ""})), (None, chunk({"content": text})),
            (None, chunk({}, "stop"))]
        if (body.get("stream_options") or {}).get("include_usage"):
            frames.append((None, {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                                  "model": model, "choices": [], "usage": usage}))
        frames.append((None, "[DONE]"))
        return await self._sse(request, frames)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(fake.app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


# ---- the real gateway, in `trial serve`, for a data dir of this module ------------------------

@dataclass
class Gateway:
    home: Path
    port: int
    settings: Settings
    store: Store

    def sandbox_url(self) -> str:
        return f"http://host.docker.internal:{self.port}"

    def new_trial(self, agent: str) -> tuple[str, str]:
        trial_id = f"agt{uuid.uuid4().hex[:8]}"
        now = utcnow()
        self.store.create_trial(Trial(id=trial_id, template="agent-probe", candidate="octocat", agent=agent,
                                      state="active", created_at=now, updated_at=now, hours=1, budget_usd=5,
                                      deadline=now + timedelta(hours=1)))
        return trial_id, self.store.mint_token(trial_id, "sandbox", now + timedelta(hours=1))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    from orchestrator.service.daemon import docker_bridge_gateway

    home = tmp_path_factory.mktemp("agents-home")
    bridge = docker_bridge_gateway()
    assert bridge, "no Docker bridge address: sandboxes could not reach the gateway"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRIAL_")}
    env.update({
        "TRIAL_HOME": str(home), "TRIAL_SERVICE_PORT": str(port), "TRIAL_SERVICE_BIND": f"127.0.0.1,{bridge}",
        "TRIAL_GATEWAY_ANTHROPIC_BASE_URL": upstream.url, "TRIAL_GATEWAY_OPENAI_BASE_URL": upstream.url,
        "ANTHROPIC_API_KEY": CANARY, "OPENAI_API_KEY": CANARY, "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE,
    })
    settings = load_settings(env=env, cwd=home)
    store = Store.open(home)
    try:
        with trial_serve(home, env, port):
            yield Gateway(home=home, port=port, settings=settings, store=store)
    finally:
        store.close()


# ---- images and sandboxes --------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return probe_template(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="module")
def shared_cache() -> Path:
    """Read before the per-test fixture clears TRIAL_* variables, so TRIAL_AGENT_CACHE is honoured."""
    return agent_cache_root()


@pytest.fixture(scope="module")
def backend(gateway: Gateway) -> DockerBackend:
    return DockerBackend(gateway.settings.sandbox)


@dataclass
class Run:
    ref: SandboxRef
    trial_id: str
    token: str
    image: str
    output: str


@pytest.fixture
def sandbox(backend: DockerBackend, gateway: Gateway, template: Template, shared_cache: Path) -> Iterator[Any]:
    started: list[SandboxRef] = []

    def run(agent: AgentSpec, prompt: str) -> Run:
        image = agent_image(backend, template, agent, gateway.settings, shared_cache)
        trial_id, token = gateway.new_trial(agent.name)
        base = gateway.sandbox_url()
        ref = start_agent_sandbox(backend, image, agent, trial_id, token, base, started,
                                  env={"TRIAL_GATEWAY_URL": base})
        # A login shell, like an SSH session: the agent must find its wiring in ~/.trial/env.sh.
        command = " ".join(_quote(part) for part in agent.run_once_argv(prompt))  # type: ignore[attr-defined]
        result = backend.exec(ref, ["bash", "-lc", f"cd /workspace && {command} </dev/null"],
                              timeout_s=RUN_TIMEOUT_S)
        assert result.ok, f"{agent.name} exit {result.exit_code}: {result.stdout[-1500:]} {result.stderr[-1500:]}"
        return Run(ref=ref, trial_id=trial_id, token=token, image=image, output=result.stdout + result.stderr)

    yield run
    for ref in started:
        backend.remove(ref, volumes=True)


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)


def gateway_records(gateway: Gateway, trial_id: str) -> list[dict[str, Any]]:
    path = log_path(gateway.home, trial_id)
    return list(read_records(path))  # requests whole, however the log stores them


def assert_no_canary_inside(backend: DockerBackend, run: Run) -> None:
    """Files, environments and process arguments, searched as root and as the candidate.

    Without capabilities root cannot read the candidate's 0600 files, hence both users. The
    pattern ends in a bracket expression so that grep's own command line does not match it.
    """
    pattern = CANARY[:-1] + f"[{CANARY[-1]}]"
    for user in ("root", "candidate"):
        files = backend.exec(run.ref, ["sh", "-c", "grep -rIl --exclude-dir=proc --exclude-dir=sys "
                                       f"--exclude-dir=dev -e '{pattern}' / 2>/dev/null; true"], user=user)
        assert files.ok and files.stdout.strip() == "", f"provider key found in {files.stdout.split()}"
        procs = backend.exec(run.ref, ["sh", "-c", "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ; done "
                                       f"2>/dev/null | tr '\\0' '\\n' | grep -c -e '{pattern}'; true"], user=user)
        assert procs.stdout.strip() == "0", f"provider key in a process's arguments or environment ({user})"
    # The same search does find the trial token where it must be: the scan itself works.
    token = run.token[:-1] + f"[{run.token[-1]}]"
    # (sshd's session environment lives in a root-owned volume now, not in ~/.ssh.)
    found = backend.exec(run.ref, ["sh", "-c", f"grep -rIl -e '{token}' {HOME}/.trial /etc/trial-ssh"])
    assert f"{HOME}/.trial/env.sh" in found.stdout, found.stderr


def assert_no_canary_in_image(image: str) -> None:
    """Every layer of the image, as `docker save` exports it."""
    needle = CANARY.encode()
    tail = b""
    scanned = 0
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 22):
            window = tail + chunk
            assert needle not in window, f"provider key found in a layer of {image}"
            tail = window[-len(needle):]
            scanned += len(chunk)
    assert proc.returncode == 0 and scanned > 10 << 20


# ---- the tests -----------------------------------------------------------------------------

def test_claude_code_runs_through_the_gateway(sandbox: Any, gateway: Gateway, backend: DockerBackend,
                                              upstream: FakeUpstream) -> None:
    agent = get_agent("claude-code")
    prompt = "Please RUN: git log --oneline"
    run = sandbox(agent, prompt)
    assert "Done." in run.output
    records = gateway_records(gateway, run.trial_id)
    assert len(records) >= 2 and all(r["route"].endswith("/v1/messages") for r in records)
    assert all(r["status"] == 200 for r in records)
    # upstream saw the real key (added by the gateway), never the trial token
    seen = [r for r in upstream.requests if r.get("auth") and run.token not in str(r.get("auth"))]
    assert seen and all(CANARY in str(r["auth"]) for r in seen)
    assert not any(run.token in str(r.get("auth")) for r in upstream.requests)
    events = agent.parse(collect(backend, run.ref, agent))
    assert [e["text"] for e in events if e["kind"] == "user_prompt"] == [prompt]
    call = next(e for e in events if e["kind"] == "tool_call")
    assert call["data"]["input"]["command"] == "git log --oneline"
    # -p without permission flags: git log is read-only, so it runs and its output comes back
    result = next(e for e in events if e["kind"] in ("tool_result", "tool_rejected"))
    assert result["data"]["tool_use_id"] == call["data"]["tool_use_id"]
    logged_ids = {str((r.get("response") or {}).get("id")) for r in records}
    assert {e["data"]["message_id"] for e in events if e["kind"] in ("assistant_message", "tool_call")} <= logged_ids
    assert_no_canary_inside(backend, run)
    assert_no_canary_in_image(run.image)


def test_codex_runs_through_the_gateway(sandbox: Any, gateway: Gateway, backend: DockerBackend) -> None:
    agent = get_agent("codex")
    prompt = "Please RUN: echo made-by-codex > codex.txt"
    run = sandbox(agent, prompt)
    records = gateway_records(gateway, run.trial_id)
    assert len(records) >= 2 and all(r["route"].endswith("/v1/responses") for r in records)
    events = agent.parse(collect(backend, run.ref, agent))
    assert [e["text"] for e in events if e["kind"] == "user_prompt"] == [prompt]
    result = next(e for e in events if e["kind"] == "tool_result")
    assert result["data"]["is_error"] is False
    # danger-full-access: the command really ran, as the candidate, in /workspace
    made = backend.exec(run.ref, ["stat", "-c", "%U %n", f"{WORKSPACE}/codex.txt"])
    assert made.ok and made.stdout.strip() == f"candidate {WORKSPACE}/codex.txt"
    logged_ids = {str((r.get("response") or {}).get("id")) for r in records}
    assert {e["data"]["message_id"] for e in events if e["kind"] in ("assistant_message", "tool_call")} <= logged_ids
    assert_no_canary_inside(backend, run)


def test_aider_runs_through_the_gateway(sandbox: Any, gateway: Gateway, backend: DockerBackend,
                                        upstream: FakeUpstream) -> None:
    agent = get_agent("aider")
    prompt = "Say hello from aider"
    before = len(upstream.requests)
    run = sandbox(agent, prompt)
    records = gateway_records(gateway, run.trial_id)
    assert len(records) == 1 and records[0]["route"].endswith("/v1/chat/completions")
    assert prompt in json.dumps(records[0]["request"])
    # nothing but the one chat completion left the sandbox (no price-map or update fetches via us)
    assert [r["path"] for r in upstream.requests[before:]] == ["/v1/chat/completions"]
    events = agent.parse(collect(backend, run.ref, agent))
    assert [e["kind"] for e in events] == ["user_prompt", "assistant_message"]
    assert events[0]["text"] == prompt and events[1]["text"] == "Hello from the fake upstream."
    # its records live in the home volume, and nothing of aider's shows up in the candidate's repo
    status = backend.exec(run.ref, ["git", "-C", WORKSPACE, "status", "--porcelain", "--ignored=no"])
    assert status.ok and status.stdout.strip() == ""
    gitignore = backend.exec(run.ref, ["test", "-e", f"{WORKSPACE}/.gitignore"])
    assert not gitignore.ok, "aider must not edit the candidate's .gitignore"
    assert_no_canary_inside(backend, run)
