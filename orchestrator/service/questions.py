"""The host service's question channel: `/questions/<trial>` for the sandbox's `trial-ask`.

POST asks (JSON `{"text": …}`), GET reads the thread back (questions and their answers).
Both take the trial's own token like the git endpoint (HTTP Basic password or Bearer) and
only while the trial is open and before its deadline. The host stamps each question with its
own clock (orchestrator.questions), so the candidate cannot date a question earlier than it
was asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from orchestrator import questions
from orchestrator.config import Settings
from orchestrator.errors import TrialError
from orchestrator.logging import get_logger
from orchestrator.service.git_http import authenticated_trial, install_token_guard, refusal
from orchestrator.store import Store, Trial

MAX_BODY = 16 * 1024
"""Bytes in one request: room for MAX_CHARS of any script in JSON escapes, no more."""
log = get_logger(component="questions-http")


class QuestionRoute:
    def __init__(self, settings: Settings, store: Store, forge: Callable[[], Any]) -> None:
        self.settings = settings
        self.store = store
        self.forge_factory = forge
        self._forge: Any = None

    def forge(self) -> Any:
        if self._forge is None:
            self._forge = self.forge_factory()
        return self._forge

    async def _admit(self, request: web.Request) -> web.Response | Trial:
        trial_id = request.match_info["trial"]
        trial = await authenticated_trial(self.store, request, trial_id, ask="the trial token",
                                          refused_event="questions.auth_refused", trial=trial_id)
        if isinstance(trial, web.Response):
            return trial
        closed = refusal(trial)
        if closed is not None:
            return web.json_response({"error": closed.replace("git access", "the question channel")}, status=403)
        return trial

    async def ask(self, request: web.Request) -> web.Response:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": f"request over {MAX_BODY} bytes"}, status=413)
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return web.json_response({"error": f"request over {MAX_BODY} bytes"}, status=413)
        try:
            text = json.loads(body)["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'send JSON {"text": "your question"}'}, status=400)
        try:
            record = await asyncio.to_thread(self._ask, admitted, text)
        except TrialError as exc:
            return web.json_response({"error": exc.one_line()}, status=400)
        return web.json_response({k: record.get(k) for k in ("number", "ts", "comment_url")}, status=201)

    def _ask(self, trial: Trial, text: str) -> dict[str, Any]:
        forge = self._forge_or_none(trial)
        return questions.ask(self.settings.home, forge, trial, text)

    def _forge_or_none(self, trial: Trial) -> Any:
        try:
            return self.forge()
        except TrialError as exc:  # the log is the record; the issue comment is a courtesy
            log.warning("questions.no_forge", trial_id=trial.id, error=exc.one_line())
            return None

    async def thread(self, request: web.Request) -> web.Response:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        thread = await asyncio.to_thread(questions.read_thread, self.settings.home,
                                         self._forge_or_none(admitted), admitted)
        shown = [{k: r.get(k) for k in ("kind", "number", "question", "ts", "text")} for r in thread.records]
        return web.json_response({"trial_id": admitted.id, "records": shown})


def setup_question_route(app: web.Application, settings: Settings, store: Store, forge: Callable[[], Any]) -> None:
    install_token_guard(app)
    route = QuestionRoute(settings, store, forge)
    app.router.add_post(r"/questions/{trial:[A-Za-z0-9._-]+}", route.ask)
    app.router.add_get(r"/questions/{trial:[A-Za-z0-9._-]+}", route.thread)
