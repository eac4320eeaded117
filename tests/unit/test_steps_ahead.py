"""`Ahead`: steps run in a thread beside others, recorded after them, undone when one of them fails."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ForgeError, SandboxError, StepFailed
from orchestrator.steps import Ahead, Step, StepContext, run_steps
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path)
    store.create_trial(Trial("t1", "x", "octocat", "none", "provisioning", utcnow(), utcnow(), 1, 1))
    return store


class Plan:
    """repo → [forge steps] beside [sandbox] → start; the sandbox step waits until the forge has begun,
    so it can only finish if the two really run at once."""

    def __init__(self, forge_fails: bool = False, sandbox_fails: bool = False) -> None:
        self.forge_fails = forge_fails
        self.sandbox_fails = sandbox_fails
        self.forge_began = threading.Event()
        self.ran: list[str] = []
        self.undone: list[dict[str, Any]] = []

    def steps(self) -> list[Step | Ahead]:
        def repo(ctx: StepContext) -> dict[str, Any]:
            self.ran.append("repo")
            return {"name": "r"}

        def push(ctx: StepContext) -> dict[str, Any]:
            self.ran.append("push")
            self.forge_began.set()
            return {"sha": "abc"}

        def brief(ctx: StepContext) -> dict[str, Any]:
            self.ran.append("brief")
            if self.forge_fails:
                raise ForgeError("the forge did not answer", "try again")
            return {"url": "u"}

        def sandbox(ctx: StepContext) -> dict[str, Any]:
            assert self.forge_began.wait(10), "the sandbox step did not run beside the forge steps"
            self.ran.append("sandbox")
            if self.sandbox_fails:
                raise SandboxError("engine broke", "check it")
            return {"container": "c", "repo": ctx.result("repo", "name")}

        def start(ctx: StepContext) -> dict[str, Any]:
            self.ran.append("start")
            return {"container": ctx.result("sandbox", "container")}

        return [Step("repo", repo),
                Ahead(beside=[Step("push", push), Step("brief", brief)], steps=[Step("sandbox", sandbox)],
                      undo=lambda ctx: self.undone.append(dict(ctx.results))),
                Step("start", start)]


def test_steps_ahead_run_beside_and_are_recorded_after_them(store: Store) -> None:
    plan = Plan()
    ctx = run_steps(store, "t1", "launch", plan.steps())
    assert ctx.result("start", "container") == "c" and ctx.result("sandbox", "repo") == "r"
    records = store.steps("t1", "launch")
    assert [(r.name, r.seq, r.status) for r in records] == [
        ("repo", 1, "done"), ("push", 2, "done"), ("brief", 3, "done"), ("sandbox", 4, "done"), ("start", 5, "done")]
    assert plan.undone == []


def test_a_failure_beside_undoes_what_ran_ahead_and_the_resume_makes_it_again(store: Store) -> None:
    plan = Plan(forge_fails=True)
    with pytest.raises(StepFailed, match="step 'brief' failed: the forge did not answer"):
        run_steps(store, "t1", "launch", plan.steps())
    done = [r.name for r in store.steps("t1", "launch") if r.status == "done"]
    assert done == ["repo", "push"]  # the sandbox ran, but nothing past the failure is recorded
    assert [list(results) for results in plan.undone] == [["repo", "sandbox"]]  # undone, with what it made
    assert store.get_trial("t1").failed_step == "launch:brief"

    again = Plan()
    again.forge_began.set()  # push is done: only brief runs beside the sandbox this time
    run_steps(store, "t1", "launch", again.steps())
    assert again.ran in (["brief", "sandbox", "start"], ["sandbox", "brief", "start"])
    assert all(r.status == "done" for r in store.steps("t1", "launch"))


def test_a_failure_ahead_is_recorded_in_its_place_once_the_steps_beside_are_done(store: Store) -> None:
    plan = Plan(sandbox_fails=True)
    with pytest.raises(StepFailed, match="step 'sandbox' failed: engine broke"):
        run_steps(store, "t1", "launch", plan.steps())
    statuses = {r.name: r.status for r in store.steps("t1", "launch")}
    assert statuses == {"repo": "done", "push": "done", "brief": "done", "sandbox": "failed"}
    assert store.get_trial("t1").failed_step == "launch:sandbox" and plan.undone == []
    again = Plan()
    again.forge_began.set()
    run_steps(store, "t1", "launch", again.steps())
    assert again.ran == ["sandbox", "start"]  # everything else was done: no thread needed
