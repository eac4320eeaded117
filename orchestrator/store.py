"""SQLite store (the embedded default): trials, lifecycle steps, audit events and tokens.

Migrations are forward-only: each is a list of statements applied once, in order, and
recorded in `schema_migrations`. Tokens are stored only as HMAC-SHA256 under a server
secret kept in the data dir, so a copy of the database alone cannot authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import NotFoundError, UsageError

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE trials (
            id TEXT PRIMARY KEY,
            template TEXT NOT NULL,
            candidate TEXT NOT NULL,
            agent TEXT NOT NULL,
            state TEXT NOT NULL,
            failed_step TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deadline TEXT,
            hours REAL NOT NULL,
            budget_usd REAL NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE steps (
            trial_id TEXT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
            operation TEXT NOT NULL,
            name TEXT NOT NULL,
            seq INTEGER NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            result TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            PRIMARY KEY (trial_id, operation, name)
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            trial_id TEXT,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX events_trial ON events(trial_id, id)",
        """CREATE TABLE tokens (
            digest TEXT PRIMARY KEY,
            trial_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT
        )""",
        "CREATE INDEX tokens_trial ON tokens(trial_id)",
    ],
    [
        # Cohorts: one launch file for many candidates. The unique index is the idempotency key:
        # a re-run (or a second process) can never make a second trial for one (cohort, candidate),
        # and GitHub logins are case-insensitive, so neither can a change of case.
        """CREATE TABLE cohorts (
            name TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "ALTER TABLE trials ADD COLUMN cohort TEXT REFERENCES cohorts(name)",
        "CREATE UNIQUE INDEX trials_cohort_candidate ON trials(cohort, lower(candidate)) WHERE cohort IS NOT NULL",
    ],
]

TOKEN_PREFIX = "trl_"  # noqa: S105 - a prefix, not a secret


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass
class Trial:
    id: str
    template: str
    candidate: str
    agent: str
    state: str
    created_at: datetime
    updated_at: datetime
    hours: float
    budget_usd: float
    deadline: datetime | None = None
    failed_step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    cohort: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cohort": self.cohort,
            "template": self.template,
            "candidate": self.candidate,
            "agent": self.agent,
            "state": self.state,
            "failed_step": self.failed_step,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "deadline": iso(self.deadline),
            "hours": self.hours,
            "budget_usd": self.budget_usd,
            "data": self.data,
        }


@dataclass(frozen=True)
class Cohort:
    name: str
    source: str
    """The launch file it was first made from (informative: a re-run may name a moved copy)."""
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "created_at": iso(self.created_at), "data": self.data}


class DuplicateTrialError(UsageError):
    """A launch would make a second live trial of one template for one candidate (or a second
    trial of one candidate in one cohort); `existing` is the trial already there."""

    def __init__(self, message: str, hint: str, existing: Trial) -> None:
        super().__init__(message, hint)
        self.existing = existing


@dataclass(frozen=True)
class StepRecord:
    operation: str
    name: str
    seq: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class TokenRecord:
    trial_id: str
    purpose: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


def load_or_create_secret(path: Path) -> bytes:
    """The server secret for token HMACs: 32 random bytes, created once, mode 0600."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(key)
    try:
        # link() fails if another process won the race: then use its key.
        path.hardlink_to(tmp)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class Store:
    def __init__(self, path: Path, secret: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._secret = secret
        self._lock = threading.RLock()
        self._deferred = 0
        """Open `deferred_sync` blocks; `_sync_before` is the setting the first one found."""
        self._sync_before = 2
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self.migrate()

    @classmethod
    def open(cls, home: Path) -> Store:
        return cls(home / "trial.db", load_or_create_secret(home / "secret.key"))

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Commits inside are not each flushed to disk (SQLite's synchronous=NORMAL under WAL: they
        survive this process dying, not the host), and all of them are on disk when the block ends.

        For a run of recorded, resumable steps (a launch): one fsync per commit cost more than most
        of its steps, and a step record the host lost only means that step runs again on resume.
        Blocks may overlap (a cohort's launches share this store from several threads): the
        connection goes back to its own setting when the last one ends."""
        with self._lock:
            if self._deferred == 0:
                self._sync_before = int(self._db.execute("PRAGMA synchronous").fetchone()[0])
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._deferred += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferred -= 1
                if self._deferred == 0:
                    self._db.execute(f"PRAGMA synchronous={self._sync_before}")
                # The WAL holds every commit of the block, in order: one fsync makes all of them durable.
                wal = self.path.with_name(self.path.name + "-wal")
                with suppress(FileNotFoundError), wal.open("rb") as log:
                    os.fsync(log.fileno())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- migrations -------------------------------------------------------------------
    def migrate(self) -> int:
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
            )
            applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            newest = max(applied, default=0)
            if newest > len(MIGRATIONS):
                raise UsageError(
                    f"{self.path} was written by a newer trial (schema {newest} > {len(MIGRATIONS)})",
                    "upgrade trial, or point TRIAL_HOME elsewhere",
                )
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version in applied:
                    continue
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, iso(utcnow())))
        return len(MIGRATIONS)

    def schema_version(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- trials -----------------------------------------------------------------------
    def create_trial(self, trial: Trial, *, unless_live: tuple[str, ...] = ()) -> Trial:
        """Insert the trial. With `unless_live`, refuse (DuplicateTrialError) when the candidate
        already has a trial of this template in one of those states: checked in the same
        transaction as the insert, so two launches at once cannot both pass."""
        with self.transaction() as db:
            if unless_live:
                marks = ",".join("?" * len(unless_live))
                row = db.execute(
                    f"SELECT * FROM trials WHERE template = ? AND lower(candidate) = lower(?) "  # noqa: S608
                    f"AND state IN ({marks}) ORDER BY created_at DESC LIMIT 1",
                    (trial.template, trial.candidate, *unless_live)).fetchone()
                if row is not None:
                    existing = _trial_from_row(row)
                    raise DuplicateTrialError(
                        f"{trial.candidate} already has a live trial {existing.id} of {trial.template} "
                        f"({existing.state})",
                        f"pass --again to launch another, or see `trial status {existing.id}`", existing)
            try:
                db.execute(
                    "INSERT INTO trials (id, template, candidate, agent, state, failed_step, created_at, "
                    "updated_at, deadline, hours, budget_usd, data, cohort) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (trial.id, trial.template, trial.candidate, trial.agent, trial.state, trial.failed_step,
                     iso(trial.created_at), iso(trial.updated_at), iso(trial.deadline), trial.hours,
                     trial.budget_usd, json.dumps(trial.data), trial.cohort),
                )
            except sqlite3.IntegrityError:
                row = db.execute("SELECT * FROM trials WHERE cohort = ? AND lower(candidate) = lower(?)",
                                 (trial.cohort, trial.candidate)).fetchone()
                if row is None:
                    raise
                existing = _trial_from_row(row)
                raise DuplicateTrialError(
                    f"{trial.candidate} already has trial {existing.id} in cohort {trial.cohort}",
                    f"see `trial status {existing.id}`", existing) from None
        self.add_event(trial.id, "trial.created", {"template": trial.template, "candidate": trial.candidate})
        return trial

    def get_trial(self, trial_id: str) -> Trial:
        """Exact id or a unique prefix of one."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchall()
            if not rows and trial_id:
                rows = self._db.execute(
                    "SELECT * FROM trials WHERE id LIKE ? ESCAPE '\\'", (_like_prefix(trial_id),)
                ).fetchall()
        if not rows:
            raise NotFoundError(f"no trial '{trial_id}'", "list trials with `trial ls`")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows[:5])
            raise UsageError(f"'{trial_id}' matches several trials ({ids})", "type more of the id")
        return _trial_from_row(rows[0])

    def list_trials(self, states: tuple[str, ...] = (), *, cohort: str | None = None) -> list[Trial]:
        conditions: list[str] = []
        params: list[Any] = []
        if states:
            conditions.append(f"state IN ({','.join('?' * len(states))})")
            params += states
        if cohort is not None:
            conditions.append("cohort = ?")
            params.append(cohort)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM trials{where} ORDER BY created_at", params).fetchall()  # noqa: S608
        return [_trial_from_row(row) for row in rows]

    # -- cohorts ----------------------------------------------------------------------
    def ensure_cohort(self, name: str, source: str, data: dict[str, Any] | None = None) -> Cohort:
        """The cohort of that name, made now if new: running one launch file again reuses it."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO cohorts (name, source, created_at, data) VALUES (?,?,?,?)",
                       (name, source, iso(utcnow()), json.dumps(data or {})))
        return self.get_cohort(name)

    def get_cohort(self, name: str) -> Cohort:
        with self._lock:
            row = self._db.execute("SELECT * FROM cohorts WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no cohort '{name}'", "list cohorts with `trial cohort ls`")
        return Cohort(row["name"], row["source"], parse_iso(row["created_at"]) or utcnow(), json.loads(row["data"]))

    def list_cohorts(self) -> list[Cohort]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM cohorts ORDER BY created_at, name").fetchall()
        return [Cohort(r["name"], r["source"], parse_iso(r["created_at"]) or utcnow(), json.loads(r["data"]))
                for r in rows]

    def cohort_trial(self, cohort: str, candidate: str) -> Trial | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM trials WHERE cohort = ? AND lower(candidate) = lower(?)",
                                   (cohort, candidate)).fetchone()
        return _trial_from_row(row) if row is not None else None

    def update_trial(self, trial_id: str, **fields: Any) -> Trial:
        allowed = {"state", "failed_step", "deadline", "hours", "budget_usd", "agent"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        values["updated_at"] = iso(utcnow())
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self.transaction() as db:
            db.execute(f"UPDATE trials SET {assignments} WHERE id = ?", (*values.values(), trial_id))  # noqa: S608
        if "state" in fields:
            self.add_event(trial_id, "trial.state", {"state": fields["state"],
                                                     "failed_step": fields.get("failed_step")})
        return self.get_trial(trial_id)

    def update_trial_if(self, trial_id: str, states: tuple[str, ...], *, deadline_after: datetime | None = None,
                        deadline_by: datetime | None = None, **fields: Any) -> Trial | None:
        """`update_trial`, but only while the trial is in one of `states` and, if given, its
        deadline is later than `deadline_after` / no later than `deadline_by`: a compare-and-set,
        so a cron `trial reap`, a `trial reap --watch` and a `trial extend` never act on one
        trial at once. Returns None when the condition no longer held."""
        allowed = {"state", "failed_step", "deadline", "hours", "budget_usd", "agent"}
        unknown = set(fields) - allowed
        if unknown or not states:
            raise ValueError(f"cannot update {sorted(unknown)}" if unknown else "states must not be empty")
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        values["updated_at"] = iso(utcnow())
        assignments = ", ".join(f"{key} = ?" for key in values)
        condition = f"id = ? AND state IN ({','.join('?' * len(states))})"
        params: tuple[Any, ...] = (*values.values(), trial_id, *states)
        # iso() writes every moment in UTC with one format, so text order is time order.
        if deadline_after is not None:
            condition += " AND deadline IS NOT NULL AND deadline > ?"
            params += (iso(deadline_after),)
        if deadline_by is not None:
            condition += " AND deadline IS NOT NULL AND deadline <= ?"
            params += (iso(deadline_by),)
        with self.transaction() as db:
            changed = db.execute(f"UPDATE trials SET {assignments} WHERE {condition}", params).rowcount  # noqa: S608
        if not changed:
            return None
        if "state" in fields:
            self.add_event(trial_id, "trial.state", {"state": fields["state"],
                                                     "failed_step": fields.get("failed_step")})
        return self.get_trial(trial_id)

    def merge_data(self, trial_id: str, values: dict[str, Any]) -> Trial:
        """Merge adapter references (repo, sandbox, image…) into the trial's JSON data."""
        with self.transaction() as db:
            row = db.execute("SELECT data FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no trial '{trial_id}'")
            data = json.loads(row["data"])
            data.update(values)
            db.execute("UPDATE trials SET data = ?, updated_at = ? WHERE id = ?",
                       (json.dumps(data), iso(utcnow()), trial_id))
        return self.get_trial(trial_id)

    def delete_trial(self, trial_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tokens WHERE trial_id = ?", (trial_id,))
            db.execute("DELETE FROM steps WHERE trial_id = ?", (trial_id,))
            db.execute("DELETE FROM trials WHERE id = ?", (trial_id,))

    # -- steps ------------------------------------------------------------------------
    def steps(self, trial_id: str, operation: str) -> list[StepRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM steps WHERE trial_id = ? AND operation = ? ORDER BY seq", (trial_id, operation)
            ).fetchall()
        return [
            StepRecord(row["operation"], row["name"], row["seq"], row["status"], parse_iso(row["started_at"]),
                       parse_iso(row["finished_at"]), json.loads(row["result"]), row["error"])
            for row in rows
        ]

    def step_result(self, trial_id: str, operation: str, name: str) -> dict[str, Any] | None:
        """The recorded result of a finished step, or None if it has not finished."""
        for step in self.steps(trial_id, operation):
            if step.name == name and step.status == "done":
                return step.result
        return None

    def record_step(self, trial_id: str, operation: str, name: str, seq: int, status: str,
                    result: dict[str, Any] | None = None, error: str | None = None) -> None:
        now = iso(utcnow())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO steps (trial_id, operation, name, seq, status, started_at, result, error) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(trial_id, operation, name) DO UPDATE SET "
                "status = excluded.status, error = excluded.error, result = excluded.result, "
                "finished_at = CASE WHEN excluded.status IN ('done', 'failed') THEN ? ELSE NULL END, "
                "started_at = CASE WHEN excluded.status = 'running' THEN ? ELSE steps.started_at END",
                (trial_id, operation, name, seq, status, now, json.dumps(result or {}), error, now, now),
            )
        if status != "running":
            self.add_event(trial_id, f"step.{status}", {"operation": operation, "step": name, "error": error})

    def reset_steps(self, trial_id: str, operation: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM steps WHERE trial_id = ? AND operation = ?", (trial_id, operation))

    # -- audit events -----------------------------------------------------------------
    def add_event(self, trial_id: str | None, kind: str, data: dict[str, Any] | None = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO events (trial_id, ts, kind, data) VALUES (?,?,?,?)",
                       (trial_id, iso(utcnow()), kind, json.dumps(data or {}, default=str)))

    def events(self, trial_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM events WHERE trial_id = ? ORDER BY id",
                                    (trial_id,)).fetchall()
        return [{"id": r["id"], "ts": r["ts"], "kind": r["kind"], "data": json.loads(r["data"])} for r in rows]

    # -- tokens -----------------------------------------------------------------------
    def digest(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def mint_token(self, trial_id: str, purpose: str, expires_at: datetime | None = None) -> str:
        """Create a token and return it; only its HMAC is kept, so this is the one time it is seen."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.transaction() as db:
            db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,NULL)",
                       (self.digest(token), trial_id, purpose, iso(utcnow()), iso(expires_at)))
        self.add_event(trial_id, "token.minted", {"purpose": purpose})
        return token

    def lookup_token(self, token: str) -> TokenRecord | None:
        """The record behind a presented token, usable or not; None if unknown."""
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE digest = ?", (self.digest(token),)).fetchone()
        if row is None:
            return None
        return TokenRecord(row["trial_id"], row["purpose"], parse_iso(row["created_at"]) or utcnow(),
                           parse_iso(row["expires_at"]), parse_iso(row["revoked_at"]))

    def verify_token(self, token: str, purpose: str | None = None) -> TokenRecord | None:
        """The token's record if it is known, unrevoked, unexpired (and of that purpose)."""
        record = self.lookup_token(token)
        if record is None or not record.usable():
            return None
        if purpose is not None and record.purpose != purpose:
            return None
        return record

    def revoke_tokens(self, trial_id: str, purpose: str | None = None) -> int:
        with self.transaction() as db:
            query = "UPDATE tokens SET revoked_at = ? WHERE trial_id = ? AND revoked_at IS NULL"
            params: tuple[Any, ...] = (iso(utcnow()), trial_id)
            if purpose:
                query += " AND purpose = ?"
                params += (purpose,)
            count = db.execute(query, params).rowcount
        if count:
            self.add_event(trial_id, "token.revoked", {"count": count, "purpose": purpose})
        return count

    def set_token_expiry(self, trial_id: str, expires_at: datetime) -> None:
        with self.transaction() as db:
            db.execute("UPDATE tokens SET expires_at = ? WHERE trial_id = ? AND revoked_at IS NULL",
                       (iso(expires_at), trial_id))

    def tokens(self, trial_id: str) -> list[TokenRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM tokens WHERE trial_id = ?", (trial_id,)).fetchall()
        return [TokenRecord(r["trial_id"], r["purpose"], parse_iso(r["created_at"]) or utcnow(),
                            parse_iso(r["expires_at"]), parse_iso(r["revoked_at"])) for r in rows]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _trial_from_row(row: sqlite3.Row) -> Trial:
    return Trial(
        id=row["id"], template=row["template"], candidate=row["candidate"], agent=row["agent"],
        state=row["state"], created_at=parse_iso(row["created_at"]) or utcnow(),
        updated_at=parse_iso(row["updated_at"]) or utcnow(), hours=row["hours"], budget_usd=row["budget_usd"],
        deadline=parse_iso(row["deadline"]), failed_step=row["failed_step"], data=json.loads(row["data"]),
        cohort=row["cohort"],
    )
