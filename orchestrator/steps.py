"""Ordered, recorded, resumable steps: the engine under launch, collect and teardown.

Each step records itself in `store.steps`. Running an operation again skips the steps
already done (their recorded results are handed on) and resumes at the first undone
one. A failing step marks the trial `failed` with the step's name; nothing after it
runs, and nothing before it is redone.

`Ahead` runs some steps in a thread while others run, and records them after those, as if
they had run in order: when one of the others fails, what ran ahead is undone and never
recorded, so "nothing after a failure" still holds, on the engine as in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn

from orchestrator.errors import StepFailed, TrialError
from orchestrator.logging import get_logger
from orchestrator.store import Store

log = get_logger(component="steps")


@dataclass
class StepContext:
    trial_id: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Results of the steps done so far in this operation, by step name."""
    scratch: dict[str, Any] = field(default_factory=dict)
    """Values that live only for this run (never recorded: e.g. a freshly minted token)."""

    def result(self, step: str, key: str) -> Any:
        return self.results[step][key]


StepFn = Callable[[StepContext], dict[str, Any] | None]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn
    title: str = ""
    always: bool = False
    """Run again on resume even when done before (checks of things that can go away, like a service)."""


@dataclass(frozen=True)
class Ahead:
    """`steps`, which need nothing from `beside`, run in a thread while `beside` runs; they count as
    coming after `beside` (record order, resume). If a `beside` step fails, `undo` takes back what
    the thread made (it is never recorded), so a resume runs them again from a clean start."""

    beside: Sequence[Step]
    steps: Sequence[Step]
    undo: Callable[[StepContext], None]


def run_steps(store: Store, trial_id: str, operation: str, steps: Sequence[Step | Ahead],
              progress: Callable[[str], None] | None = None, context: StepContext | None = None,
              fail_state: str | None = "failed") -> StepContext:
    ctx = context or StepContext(trial_id)
    done = {record.name: record for record in store.steps(trial_id, operation) if record.status == "done"}
    run = _Run(store, trial_id, operation, done, ctx, progress, fail_state)
    seq = 0
    for item in steps:
        if isinstance(item, Ahead):
            run.ahead(item, seq)
            seq += len(item.beside) + len(item.steps)
        else:
            seq += 1
            run.one(item, seq)
    return ctx


@dataclass
class _Run:
    store: Store
    trial_id: str
    operation: str
    done: dict[str, Any]
    ctx: StepContext
    progress: Callable[[str], None] | None
    fail_state: str | None

    def pending(self, step: Step) -> bool:
        return step.always or step.name not in self.done

    def one(self, step: Step, seq: int) -> None:
        if not self.pending(step):
            self.ctx.results[step.name] = self.done[step.name].result
            return
        self.say(step)
        self.store.record_step(self.trial_id, self.operation, step.name, seq, "running")
        try:
            result = step.run(self.ctx) or {}
        except BaseException as exc:
            self.failed(step, seq, exc)
        self.store.record_step(self.trial_id, self.operation, step.name, seq, "done", result)
        self.ctx.results[step.name] = result
        log.debug("step.done", trial_id=self.trial_id, operation=self.operation, step=step.name)

    def ahead(self, group: Ahead, seq: int) -> None:
        beside = list(enumerate(group.beside, seq + 1))
        ahead = list(enumerate(group.steps, seq + 1 + len(beside)))
        if not any(self.pending(step) for _, step in beside) or not any(self.pending(step) for _, step in ahead):
            for number, step in beside + ahead:
                self.one(step, number)
            return
        # The thread gets its own view of the results so far (it must not read what `beside` makes).
        lane = StepContext(self.trial_id, dict(self.ctx.results), self.ctx.scratch)
        outcomes: dict[str, dict[str, Any]] = {}

        def run_lane() -> None:
            for _, step in ahead:
                if not self.pending(step):
                    lane.results[step.name] = outcomes[step.name] = self.done[step.name].result
                    continue
                self.say(step)
                lane.results[step.name] = outcomes[step.name] = step.run(lane) or {}

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.operation}-ahead") as pool:
            future: Future[None] = pool.submit(run_lane)
            try:
                for number, step in beside:
                    self.one(step, number)
            except BaseException:
                _settle(future)
                try:
                    group.undo(lane)
                except Exception as exc:  # the failure being raised is the one to report
                    log.warning("step.undo_failed", trial_id=self.trial_id, operation=self.operation,
                                error=f"{type(exc).__name__}: {exc}")
                raise
            error = _settle(future)
        for number, step in ahead:
            if step.name not in outcomes:
                # The step the thread failed at: recorded now, in its place, like any failure.
                self.store.record_step(self.trial_id, self.operation, step.name, number, "running")
                self.failed(step, number, error or RuntimeError("the step did not run"))
            if self.pending(step):
                self.store.record_step(self.trial_id, self.operation, step.name, number, "running")
                self.store.record_step(self.trial_id, self.operation, step.name, number, "done", outcomes[step.name])
            self.ctx.results[step.name] = outcomes[step.name]

    def say(self, step: Step) -> None:
        if self.progress:
            self.progress(step.title or step.name.replace("_", " "))

    def failed(self, step: Step, seq: int, exc: BaseException) -> NoReturn:
        if isinstance(exc, TrialError):
            _fail(self.store, self.trial_id, self.operation, step, seq, exc.one_line(), self.fail_state)
            log.warning("step.failed", trial_id=self.trial_id, operation=self.operation, step=step.name,
                        error=exc.one_line())
            raise StepFailed(step.name, exc) from exc
        # Unexpected (a bug, or Ctrl-C): record it so a rerun resumes here, then let it surface.
        _fail(self.store, self.trial_id, self.operation, step, seq, f"{type(exc).__name__}: {exc}", self.fail_state)
        raise exc


def _settle(future: Future[None]) -> BaseException | None:
    """Wait for the thread; what it raised, if anything."""
    try:
        future.result()
    except BaseException as exc:  # handed back, to be recorded against its step
        return exc
    return None


def _fail(store: Store, trial_id: str, operation: str, step: Step, seq: int, error: str,
          fail_state: str | None) -> None:
    store.record_step(trial_id, operation, step.name, seq, "failed", error=error)
    if fail_state:
        store.update_trial(trial_id, state=fail_state, failed_step=f"{operation}:{step.name}")
