"""Cohorts: many candidates launched from one file, and collected, graded and torn down together.

A cohort file is CSV (a header row, one candidate per row) or TOML (`[cohort]`, `[defaults]`
and `[[candidates]]` tables); both name the same fields: candidate, template, agent, hours,
budget, ssh_keys, provider. A row's value wins over a command-line default, which wins over the
TOML `[defaults]`, which win over the template's own.

The whole file is checked before anything is created, and a bad row stops everything with one
line naming the file, the row and the field. Launches then run a few at a time; one row's
failure is reported and the others go on.

Re-running the same file is safe: a (cohort, candidate) pair has at most one trial (a unique
index in the store), so a row whose trial exists is skipped, a row whose launch stopped half-way
(failed, or its process was killed) is resumed at its failed step, and only the missing rows are
launched. One process launches a cohort at a time (a lock file the kernel releases when that
process dies, even by `kill -9`).
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import functools
import io
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import lifecycle
from orchestrator.errors import StateError, TrialError, UsageError
from orchestrator.logging import get_logger
from orchestrator.services import Services
from orchestrator.store import DuplicateTrialError, Trial

log = get_logger(component="cohort")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FIELDS = ("candidate", "template", "track", "agent", "hours", "budget", "ssh_keys", "provider")
ALIASES = {"login": "candidate", "budget_usd": "budget", "ssh_key": "ssh_keys", "keys": "ssh_keys"}
KEY_SPLIT = re.compile(r"[;\n]")
DEFAULT_PARALLEL = 2
"""Launches at once: each one builds, clones and starts a container; two keep a 2-core host busy."""

Update = Callable[[str, str], None]
"""(candidate, what is happening now): progress for a display."""


# -- the file -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CohortRow:
    row: int
    """1-based position among the file's candidates (what an error names)."""
    candidate: str
    template: str
    agent: str | None = None
    hours: float | None = None
    budget_usd: float | None = None
    ssh_keys: tuple[str, ...] = ()
    provider: str | None = None

    def request(self, cohort: str, again: bool) -> lifecycle.LaunchRequest:
        return lifecycle.LaunchRequest(template=self.template, candidate=self.candidate, hours=self.hours,
                                       agent=self.agent, budget_usd=self.budget_usd, ssh_keys=self.ssh_keys,
                                       provider=self.provider, again=again, cohort=cohort)


@dataclass(frozen=True)
class CohortPlan:
    name: str
    source: Path
    rows: tuple[CohortRow, ...]


@dataclass(frozen=True)
class Defaults:
    """Command-line fallbacks for cells a file leaves empty."""

    template: str | None = None
    agent: str | None = None
    hours: float | None = None
    budget_usd: float | None = None
    provider: str | None = None


class _RowError(Exception):
    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field_name = field_name
        self.problem = problem


def read_plan(services: Services, path: Path, *, name: str | None = None,
              defaults: Defaults | None = None) -> CohortPlan:
    """Parse and check the whole file; the first bad row raises one UsageError naming file, row and field."""
    defaults = defaults or Defaults()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{path}: cannot read the cohort file ({reason})",
                         "pass a readable .csv or .toml file") from exc
    if path.suffix.lower() == ".toml":
        file_name, file_defaults, raw_rows = _toml_rows(path, text)
    elif path.suffix.lower() == ".csv":
        file_name, file_defaults, raw_rows = None, {}, _csv_rows(path, text)
    else:
        raise UsageError(f"{path}: a cohort file is .csv or .toml", "rename it, e.g. spring.csv")
    cohort = name or file_name or path.stem
    if not NAME_RE.match(cohort):
        raise UsageError(f"'{cohort}' is not a cohort name (letters, digits, '.', '_', '-'; at most 64)",
                         "pass --name NAME")
    if not raw_rows:
        raise UsageError(f"{path}: no candidates in the file", "add one row per candidate")
    rows: list[CohortRow] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_rows, start=1):
        try:
            row = _check_row(services, path, number, raw, file_defaults, defaults)
        except _RowError as exc:
            who = f" ({raw.get('candidate')})" if isinstance(raw.get("candidate"), str) and raw.get("candidate") else ""
            raise UsageError(f"{path} row {number}{who}, field '{exc.field_name}': {exc.problem}",
                             "fix that row; nothing was launched") from None
        key = row.candidate.lower()
        if key in seen:
            raise UsageError(f"{path} row {number}, field 'candidate': {row.candidate} is also row {seen[key]}",
                             "one row per candidate in a cohort; nothing was launched")
        seen[key] = number
        rows.append(row)
    return CohortPlan(cohort, path.resolve(), tuple(rows))


def _canonical(key: str) -> str:
    key = key.strip().lower()
    return ALIASES.get(key, key)


def _csv_rows(path: Path, text: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue  # blank lines and comment lines
        if header is None:
            header = [_canonical(cell) for cell in cells]
            unknown = [h for h in header if h not in FIELDS]
            if unknown:
                raise UsageError(f"{path}: unknown column '{unknown[0]}'", f"columns: {', '.join(FIELDS)}")
            if "candidate" not in header:
                raise UsageError(f"{path}: no 'candidate' column in the header row",
                                 f"the first line names the columns, e.g. {','.join(FIELDS[:4])}")
            continue
        if len(cells) > len(header):
            raise UsageError(f"{path} row {len(rows) + 1}: {len(cells)} cells for {len(header)} columns",
                             "quote a cell that holds a comma")
        rows.append({key: cell.strip() for key, cell in zip(header, cells, strict=False) if cell.strip()})
    return rows


def _toml_rows(path: Path, text: str) -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", "see `trial cohort launch --help` for the format") from exc
    unknown = set(data) - {"cohort", "defaults", "candidates"}
    if unknown:
        raise UsageError(f"{path}: unknown table '{sorted(unknown)[0]}'",
                         "tables: [cohort], [defaults], [[candidates]]")
    cohort = data.get("cohort", {})
    if not isinstance(cohort, dict) or set(cohort) - {"name"}:
        raise UsageError(f"{path}: [cohort] holds only name", 'e.g. [cohort] name = "spring-2027"')
    name = cohort.get("name")
    if name is not None and not isinstance(name, str):
        raise UsageError(f"{path}: [cohort] name must be a string", 'e.g. name = "spring-2027"')
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"{path}: [defaults] must be a table", "e.g. [defaults] template = \"api-keys\"")
    defaults = {_canonical(k): v for k, v in defaults.items()}
    bad = sorted(set(defaults) - set(FIELDS) | ({"candidate"} & set(defaults)))
    if bad:
        raise UsageError(f"{path}: [defaults] cannot hold '{bad[0]}'", f"fields: {', '.join(FIELDS[1:])}")
    candidates = data.get("candidates", [])
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise UsageError(f"{path}: candidates must be [[candidates]] tables",
                         'e.g. [[candidates]] candidate = "octocat"')
    rows = []
    for number, table in enumerate(candidates, start=1):
        row = {_canonical(k): v for k, v in table.items()}
        unknown_fields = sorted(set(row) - set(FIELDS))
        if unknown_fields:
            raise UsageError(f"{path} row {number}, field '{unknown_fields[0]}': unknown field",
                             f"fields: {', '.join(FIELDS)}")
        rows.append(row)
    return name, defaults, rows


def _check_row(services: Services, path: Path, number: int, raw: dict[str, Any], file_defaults: dict[str, Any],
               flags: Defaults) -> CohortRow:
    def pick(key: str, flag: Any) -> Any:
        if raw.get(key) not in (None, ""):
            return raw[key]
        return flag if flag is not None else file_defaults.get(key)

    candidate = raw.get("candidate")
    if not isinstance(candidate, str) or not candidate:
        raise _RowError("candidate", "missing")
    try:
        lifecycle.validate_login(candidate)
    except UsageError as exc:
        raise _RowError("candidate", exc.message) from None
    template = pick("template", flags.template)
    track = raw.get("track") or (None if template else file_defaults.get("track"))
    if track is not None:
        if raw.get("template"):
            raise _RowError("track", "a row names a template or a track, not both")
        template = _track_template(services, track)
    if not isinstance(template, str) or not template:
        raise _RowError("template", "missing (a template or track column, [defaults], or --template)")
    try:
        services.catalog.get(template)
    except TrialError as exc:
        raise _RowError("template", exc.one_line()) from None
    agent = pick("agent", flags.agent)
    if agent is not None:
        if not isinstance(agent, str):
            raise _RowError("agent", "must be a name")
        from orchestrator.agents import get_agent

        try:
            get_agent(agent)
        except TrialError as exc:
            raise _RowError("agent", exc.one_line()) from None
    hours = _number(pick("hours", flags.hours), "hours", positive=True)
    budget = _number(pick("budget", flags.budget_usd), "budget", positive=False)
    provider = pick("provider", flags.provider)
    if provider is not None:
        from orchestrator.gateway.scripted import resolve_provider

        if not isinstance(provider, str):
            raise _RowError("provider", "must be a string")
        try:
            provider = resolve_provider(provider, path.parent.resolve())
        except TrialError as exc:
            raise _RowError("provider", exc.one_line()) from None
    keys = _keys(path, pick("ssh_keys", None))
    return CohortRow(number, candidate, template, agent, hours, budget, keys, provider)


def _track_template(services: Services, track: Any) -> str:
    """The team's template for a track ([templates] default_for_track in trial.toml)."""
    tracks: dict[str, str] = {str(k): v for k, v in services.settings.templates.default_for_track.items()}
    template = tracks.get(track) if isinstance(track, str) else None
    if not isinstance(template, str):
        raise _RowError("track", f"no template for track {track!r}: set [templates] default_for_track = "
                                 f"{{{track} = \"NAME\"}} in trial.toml, or name the template")
    return template


def _number(value: Any, name: str, *, positive: bool) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RowError(name, f"not a number ({value!r})") from None
    if number != number or (positive and number <= 0) or number < 0:  # noqa: PLR0124 - NaN check
        raise _RowError(name, f"must be {'positive' if positive else 'zero or more'} (got {value!r})")
    return number


def _keys(path: Path, value: Any) -> tuple[str, ...]:
    """SSH keys: key lines, or .pub files relative to the cohort file; ';' or newlines between them."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else KEY_SPLIT.split(str(value))
    keys: list[str] = []
    for entry in items:
        if not isinstance(entry, str):
            raise _RowError("ssh_keys", "a list of key lines or .pub file paths")
        item = entry.strip()
        if not item:
            continue
        if lifecycle.SSH_KEY_RE.match(item):
            keys.append(item)
            continue
        key_path = Path(item).expanduser()
        key_path = key_path if key_path.is_absolute() else path.parent / key_path
        try:
            lines = [line.strip() for line in key_path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise _RowError("ssh_keys", f"cannot read {key_path} ({getattr(exc, 'strerror', None) or exc})") from None
        for line in lines:
            if not lifecycle.SSH_KEY_RE.match(line):
                raise _RowError("ssh_keys", f"{key_path} is not an SSH public key file")
            keys.append(line)
        if not lines:
            raise _RowError("ssh_keys", f"{key_path} is empty")
    return tuple(dict.fromkeys(keys))


# -- launch ---------------------------------------------------------------------------------

@dataclass
class RowOutcome:
    row: int
    candidate: str
    action: str
    """launched, resumed, exists (nothing to do) or failed."""
    trial_id: str | None = None
    state: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action != "failed"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CohortLaunch:
    cohort: str
    source: str
    outcomes: list[RowOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RowOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"cohort": self.cohort, "source": self.source, "counts": self.counts(),
                "rows": [o.to_json() for o in self.outcomes]}


def _resumable(trial: Trial) -> bool:
    """A launch that did not finish: failed at a launch step, or still `provisioning` (its process died)."""
    if trial.state == lifecycle.State.PROVISIONING:
        return True
    return trial.state == lifecycle.State.FAILED and (trial.failed_step or "launch:").startswith("launch:")


@contextmanager
def _launch_lock(services: Services, cohort: str) -> Iterator[None]:
    """One launcher per cohort: two at once could both resume the same half-made trial."""
    directory = services.settings.home / "cohorts"
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / f"{cohort}.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateError(f"cohort {cohort} is being launched by {holder}",
                             "wait for it to finish, then run this again to launch what is missing") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock (and so does the kernel if we are killed)


def launch_cohort(services: Services, plan: CohortPlan, *, parallel: int = DEFAULT_PARALLEL, again: bool = False,
                  update: Update | None = None) -> CohortLaunch:
    """Launch every row of the plan that has no trial yet and resume every half-made one.

    `again` lets a row launch although its candidate has a live trial of that template outside
    this cohort; inside the cohort a candidate never gets a second trial."""
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1 (got {parallel})", "e.g. --parallel 2")
    say = update or (lambda _who, _what: None)
    store = services.store
    result = CohortLaunch(plan.name, str(plan.source))
    with _launch_lock(services, plan.name):
        store.ensure_cohort(plan.name, str(plan.source))
        todo: list[tuple[CohortRow, Trial | None]] = []
        for row in plan.rows:
            existing = store.cohort_trial(plan.name, row.candidate)
            if existing is not None and not _resumable(existing):
                result.outcomes.append(RowOutcome(row.row, row.candidate, "exists", existing.id, existing.state))
                say(row.candidate, f"exists: {existing.id} ({existing.state})")
            else:
                todo.append((row, existing))
        if todo:
            services.sandbox.ping()
            services.forge.check()
            # The first launch runs alone: it builds the images, starts the host service and makes
            # the sandbox network, which parallel first-timers would race for.
            result.outcomes.append(_launch_row(services, plan.name, todo[0], again, say))
            result.outcomes += _in_parallel(
                [functools.partial(_launch_row, services, plan.name, item, again, say) for item in todo[1:]],
                parallel)
    result.outcomes.sort(key=lambda o: o.row)
    log.info("cohort.launch", cohort=plan.name, **result.counts())
    return result


def _launch_row(services: Services, cohort: str, item: tuple[CohortRow, Trial | None], again: bool,
                say: Update) -> RowOutcome:
    row, existing = item
    who = row.candidate
    own = dataclasses.replace(services, progress=lambda step: say(who, step))
    try:
        if existing is not None:
            say(who, f"resuming {existing.id}")
            launched = lifecycle.resume_launch(own, existing.id)
            action = "resumed"
        else:
            say(who, "launching")
            launched = lifecycle.launch(own, row.request(cohort, again))
            action = "launched"
    except DuplicateTrialError as exc:
        # Another process made this row's trial meanwhile (the unique index said so), or the
        # candidate has a live trial of the template outside the cohort (without --again).
        in_cohort = exc.existing.cohort == cohort
        outcome = RowOutcome(row.row, who, "exists" if in_cohort else "failed", exc.existing.id, exc.existing.state,
                             None if in_cohort else exc.one_line())
        say(who, exc.one_line())
        return outcome
    except TrialError as exc:
        trial = services.store.cohort_trial(cohort, who)
        say(who, f"failed: {exc.one_line()}")
        return RowOutcome(row.row, who, "failed", trial.id if trial else None, trial.state if trial else None,
                          exc.one_line())
    except Exception as exc:  # one row's bug must not abandon the others' launches
        log.exception("cohort.row.crashed", candidate=who)
        trial = services.store.cohort_trial(cohort, who)
        return RowOutcome(row.row, who, "failed", trial.id if trial else None, trial.state if trial else None,
                          f"internal error: {type(exc).__name__}: {exc}")
    say(who, f"{action} {launched.trial.id}")
    return RowOutcome(row.row, who, action, launched.trial.id, launched.trial.state)


def _in_parallel(jobs: Sequence[Callable[[], Any]], parallel: int) -> list[Any]:
    if not jobs:
        return []
    results: list[Any] = []
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="cohort")
    try:
        futures: list[Future[Any]] = [pool.submit(job) for job in jobs]
        results = [future.result() for future in as_completed(futures)]
    except BaseException:
        # Ctrl-C: start nothing new; what runs finishes its step and is resumed by the next run.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# -- over a cohort's trials -----------------------------------------------------------------

OPERATIONS = ("status", "collect", "grade", "teardown")


@dataclass
class TrialOutcome:
    trial_id: str
    candidate: str
    ok: bool
    state: str
    detail: str = ""
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CohortRun:
    cohort: str
    operation: str
    outcomes: list[TrialOutcome] = field(default_factory=list)
    report: str | None = None

    @property
    def failed(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def to_json(self) -> dict[str, Any]:
        return {"cohort": self.cohort, "operation": self.operation, "report": self.report,
                "ok": len(self.outcomes) - len(self.failed), "failed": len(self.failed),
                "trials": [o.to_json() for o in self.outcomes]}


def cohort_trials(services: Services, name: str) -> list[Trial]:
    services.store.get_cohort(name)  # a one-line error for an unknown name
    return services.store.list_trials(cohort=name)


def run_over_cohort(services: Services, name: str, operation: str, *, parallel: int = DEFAULT_PARALLEL,
                    update: Update | None = None, repo_action: str | None = None, post: bool = False) -> CohortRun:
    """status, collect, grade or teardown every trial of the cohort, `parallel` at a time; a trial's
    error is its outcome and does not stop the others. grade also writes the cohort report."""
    if operation not in OPERATIONS:
        raise UsageError(f"unknown cohort operation '{operation}'", f"one of: {', '.join(OPERATIONS)}")
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1 (got {parallel})", "e.g. --parallel 2")
    say = update or (lambda _who, _what: None)
    trials = cohort_trials(services, name)
    run = CohortRun(name, operation)
    if operation != "status" and trials:
        services.sandbox.ping()
    if operation == "collect" and trials:
        from orchestrator.evidence.signing import operator_key

        # Made once here: collects running side by side in one process would each try to create it
        # on first use (its temporary file is named by process, not by thread).
        operator_key(services.settings.home)
    jobs = [functools.partial(_one, services, t, operation, say, repo_action, post) for t in trials]
    outcomes: list[TrialOutcome] = _in_parallel(jobs, parallel)
    if operation == "teardown":
        # Teardowns share the data dir's sandbox network and its firewall rules (the last sandbox
        # out removes them), so two at once can trip over each other there. Teardown is safe to
        # repeat: a failed one runs again, alone, and its first error is kept beside the result.
        for index, outcome in enumerate(outcomes):
            if not outcome.ok:
                retried = _one(services, services.store.get_trial(outcome.trial_id), operation, say, repo_action,
                               post)
                retried.data["first_error"] = outcome.error
                outcomes[index] = retried
    run.outcomes = sorted(outcomes, key=lambda o: (o.candidate.lower(), o.trial_id))
    if operation == "grade":
        from orchestrator.report.cohort import write_cohort_report

        run.report = str(write_cohort_report(services, name))
    log.info(f"cohort.{operation}", cohort=name, ok=len(run.outcomes) - len(run.failed), failed=len(run.failed))
    return run


def _one(services: Services, trial: Trial, operation: str, say: Update, repo_action: str | None,
         post: bool) -> TrialOutcome:
    who = trial.candidate
    own = dataclasses.replace(services, progress=lambda step: say(who, step))
    say(who, f"{operation} {trial.id}")
    try:
        detail, data = _operate(own, trial, operation, repo_action, post)
    except TrialError as exc:
        say(who, f"failed: {exc.one_line()}")
        return TrialOutcome(trial.id, who, False, services.store.get_trial(trial.id).state, error=exc.one_line())
    except Exception as exc:  # one trial's bug must not abandon the others
        log.exception(f"cohort.{operation}.crashed", trial_id=trial.id)
        return TrialOutcome(trial.id, who, False, services.store.get_trial(trial.id).state,
                            error=f"internal error: {type(exc).__name__}: {exc}")
    say(who, detail)
    return TrialOutcome(trial.id, who, True, services.store.get_trial(trial.id).state, detail, data=data)


def _operate(services: Services, trial: Trial, operation: str, repo_action: str | None,
             post: bool) -> tuple[str, dict[str, Any]]:
    if operation == "status":
        from orchestrator.status import trial_status

        status = trial_status(services, trial.id)
        overall = _overall(services, trial.id)
        detail = trial.state + (f" at {trial.failed_step}" if trial.failed_step else "")
        detail += f" ({status['cutoff']['summary']})" if status.get("cutoff") else ""
        detail += f", {status['time_left']} left" if status.get("time_left") else ""
        detail += f", overall {overall:.0%}" if overall is not None else ""
        return detail, {"sandbox": status.get("sandbox"), "time_left": status.get("time_left"),
                        "overall": overall, "failed_step": trial.failed_step, "cutoff": status.get("cutoff")}
    if operation == "collect":
        collected = lifecycle.collect(services, trial.id)
        if collected.problems:
            raise StateError(f"bundle of {trial.id} has problems: {collected.problems[0]}",
                             f"see `trial verify {trial.id}`")
        return f"collected: {collected.files} files", {"bundle": str(collected.bundle), "files": collected.files}
    if operation == "grade":
        from orchestrator.grading import grade

        outcome = grade(services, trial.id, post=post)
        overall = (outcome.report.get("overall") or {}).get("fraction")
        infra = [g["grader"] for g in outcome.report.get("graders", []) if g.get("status") == "infra_error"]
        if infra:
            raise StateError(f"graded {trial.id} with infrastructure errors in {', '.join(infra)}",
                             f"see {outcome.bundle / 'report.md'}; `trial grade {trial.id}` runs it again")
        return (f"graded: overall {overall:.0%}" if isinstance(overall, int | float) else "graded",
                {"overall": overall, "report": str(outcome.bundle / "report.html"), "comment_url": outcome.comment_url})
    torn = lifecycle.teardown(services, trial.id, repo_action=repo_action)
    return f"closed ({len(torn.removed)} removed)", {"removed": torn.removed}


def _overall(services: Services, trial_id: str) -> float | None:
    import json

    path = services.settings.evidence_dir / trial_id / "report.json"
    try:
        value = (json.loads(path.read_text()).get("overall") or {}).get("fraction")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, int | float) else None
