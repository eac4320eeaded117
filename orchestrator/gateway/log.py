"""The gateway log: one hash-chained JSONL file per trial, outside the candidate's reach.

Each line is one exchange. `hash = sha256(prev_hash + canonical JSON of the record
without prev_hash and hash)`, the first record chaining from 64 zeros, so changing,
removing or reordering any record breaks the chain at that record. The canonical JSON is
the record's one fixed serialization: compact, ASCII only, keys in the order written
(`seq` first, `prev_hash` and `hash` last). `verify_chain` also demands that each line be
exactly that serialization of what it parses to, so a byte changed anywhere is caught,
even one that would not change the parsed value (`1e-05` → `1E-05`).

Writing: records are appended by one writer per trial file and flushed to disk
(fdatasync) before the exchange's response completes. Concurrent exchanges of a trial
share one write and one flush (group commit): small records are chained on the event loop
and the batch is written and flushed by a worker thread, so the loop keeps relaying
meanwhile. A small record of the only exchange in flight (the idle case, where latency
matters) is written and flushed from the event loop itself: no exchange is waiting on the
loop then, and handing the record to a thread costs two wake-ups, which on a loaded
machine take longer than the flush. Large records, a busy gateway and a disk whose
flushes take tens of milliseconds go to the thread. Each batch goes out in a single write(2); if the
process dies inside one, the unfinished line has no newline and is cut off the next time
the file is opened (it was never acknowledged to anyone). `verify_chain` fails on such a
tail all the same: to a reader, a write torn by a crash and bytes added or a newline
removed by hand look alike, and a copy that verifies must be byte for byte what the
gateway wrote. It names the record and the byte offset where the file stops matching.

Requests are stored as content-addressed blocks (blocks.py): each record holds what is new
since the log's earlier requests, so a session's log grows with its content, not with the
square of its length. `read_records` is the one way to read records back with their
requests whole; `verify_chain` also checks that every record's blocks reconstruct. Logs
written before that format (whole requests) read and verify as they are.

Limits: the chain cannot show that records were cut off the end; whoever holds the last
hash (the collected bundle's manifest) can. One gateway process writes a trial's file at
a time, enforced with an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import EvidenceError, UsageError
from orchestrator.gateway.blocks import BlockError, Packer, Unpacker, packed_record
from orchestrator.gateway.blocks import canonical as _canonical

GENESIS = "0" * 64
LOG_DIR_NAME = "gateway"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def log_dir(home: Path) -> Path:
    return home / LOG_DIR_NAME


def log_path(home: Path, trial_id: str) -> Path:
    if not _SAFE_ID.match(trial_id) or ".." in trial_id:
        raise UsageError(f"trial id {trial_id!r} cannot name a log file", "trial ids are letters, digits, . _ -")
    return log_dir(home) / f"{trial_id}.jsonl"


def canonical(value: Any) -> str:
    """The log's one serialization (blocks.py holds it, so blocks are named by the same bytes)."""
    return _canonical(value)


def record_hash(prev_hash: str, record: dict[str, Any]) -> str:
    rest = {key: value for key, value in record.items() if key not in ("prev_hash", "hash")}
    return hashlib.sha256((prev_hash + canonical(rest)).encode("ascii")).hexdigest()


def serialize(record: dict[str, Any]) -> bytes:
    """The one on-disk form of a record: its canonical JSON and a newline."""
    return canonical(record).encode("ascii") + b"\n"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record's `request` with its canonical JSON, when the caller encoded it already.

    The gateway encodes every request once to send it upstream; a record given this as its
    request splices that text into its line instead of encoding the request again (the same
    encoder gives the same bytes). The record itself, and any packed form, hold `value`.
    """

    value: Any
    text: str


def _chain(seq: int, fields: dict[str, Any], head: str,
           request_json: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The record after `head`, and its line, serializing the (possibly large) fields once.

    With `request_json` (the canonical JSON of fields["request"]) that text is spliced in
    where the request goes, between the fields before it and those after it.
    """
    if request_json is None:
        body = _canonical({"seq": seq, **fields})
    else:
        before: dict[str, Any] = {"seq": seq}
        after: dict[str, Any] = {}
        side = before
        for key, value in fields.items():
            if key == "request":
                side = after
            else:
                side[key] = value
        rest = _canonical(after)
        body = f'{_canonical(before)[:-1]},"request":{request_json}{"," + rest[1:] if after else "}"}'
    digest = hashlib.sha256((head + body).encode("ascii")).hexdigest()
    line = f'{body[:-1]},"prev_hash":"{head}","hash":"{digest}"}}\n'.encode("ascii")
    return {"seq": seq, **fields, "prev_hash": head, "hash": digest}, line


# fdatasync: the data and the file size, without the timestamps fsync would also wait for.
_flush = getattr(os, "fdatasync", os.fsync)
# One warm thread does the threaded writes of every trial log: the disk serializes them anyway.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-log")
# A lone record up to this size is written from the event loop while flushes take less than
# INLINE_MAX_FLUSH_S (a moving average). The bound is for a disk in trouble: an ordinary
# loaded disk's flushes vary from 0.2 to a few ms, and a thread's two wake-ups cost more
# there than a request arriving during the flush waits (same run, 1,200-1,500 sequential
# requests: p50 0.07-0.24 ms lower than with a 2 ms bound).
INLINE_MAX_BYTES = 64 * 1024
INLINE_MAX_FLUSH_S = 0.020
# A request body under this size (the record's request_bytes) is stored whole: references
# would save at most a few KB, and packing costs more than serializing on the hot path.
PACK_MIN_BYTES = 4096
# What a failed append raises: the disk (OSError), a record that is not JSON (ValueError,
# TypeError) or is nested too deep to serialize (RecursionError).
_WRITE_ERRORS = (OSError, ValueError, TypeError, RecursionError)


# -- writing ------------------------------------------------------------------------------

@dataclass
class LogState:
    seq: int = 0
    head: str = GENESIS
    spent_usd: float = 0.0
    torn_bytes: int = 0
    """Bytes of an unfinished last line cut off when the file was opened."""
    size: int = 0
    """Bytes of complete records in the file (what the trial's log quota counts)."""
    packer: Packer = field(default_factory=Packer)
    """Names of the request blocks the file already stores."""


def _scan(path: Path) -> LogState:
    """Last seq, last hash and total cost of a log; cuts an unfinished last line."""
    state = LogState()
    if not path.exists():
        return state
    good_end = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            good_end += len(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                state.seq = int(record.get("seq", state.seq))
                state.packer.learn(record)
                state.head = str(record.get("hash", state.head))
                cost = record.get("cost_usd")
                if isinstance(cost, int | float):
                    state.spent_usd += float(cost)
    size = path.stat().st_size
    state.size = good_end
    if size > good_end:
        state.torn_bytes = size - good_end
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return state


_Learned = tuple[set[str], set[str]]
"""Block and prefix names a batch taught the packer: forgotten again if the batch is not written."""


@dataclass
class _Chained:
    """A batch chained after the file's head, not yet written."""

    seq: int
    head: str
    records: list[dict[str, Any]]
    data: bytes


class TrialLog:
    """Appends one trial's records; `append` returns once the record is on disk."""

    def __init__(self, path: Path, fd: int, state: LogState, *, pack: bool = True) -> None:
        self.path = path
        self.state = state
        self.pack = pack
        """Store requests as blocks (False writes whole requests, the format before blocks: benchmarks, tests)."""
        self._fd = fd
        self._pending: list[tuple[dict[str, Any], int, bool, asyncio.Future[dict[str, Any]]]] = []
        """Records waiting for the next batch: (fields, size hint, appended alone, the caller's future)."""
        self._flusher: asyncio.Task[None] | None = None
        self._committing: asyncio.Future[None] | None = None
        """The batch the writer thread is writing now: nothing is chained until it is done."""
        self._flush_s = 0.0
        """Recent time one write+flush took (moving average): decides inline or threaded."""

    @classmethod
    def open(cls, path: Path, *, pack: bool = True) -> TrialLog:
        """Blocking: lock the file, read where the chain stands. Call from a worker thread."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise EvidenceError(f"{path} is held by another gateway process",
                                "run one `trial serve` per data directory") from exc
        try:
            state = _scan(path)
        except (OSError, ValueError) as exc:
            os.close(fd)
            raise EvidenceError(f"{path}: cannot read the gateway log ({exc})", "check the file") from exc
        return cls(path, fd, state, pack=pack)

    async def append(self, fields: dict[str, Any], size_hint: int = 0, *, alone: bool = False) -> dict[str, Any]:
        """Chain, write and flush one record; concurrent callers share the write.

        `fields` must not hold seq, prev_hash or hash; `size_hint` is roughly how many
        bytes the record will take (its request and response bodies); `alone` says that no
        other exchange is in flight, so writing from the event loop delays nobody.
        """
        if alone and not self._pending and self._idle() and size_hint <= INLINE_MAX_BYTES \
                and self._flush_s <= INLINE_MAX_FLUSH_S:
            # The idle case, where latency matters: written and flushed right here, with no
            # task, future or loop turn between the answer and its record.
            try:
                return self._write([fields])[0]
            except _WRITE_ERRORS as exc:
                raise self._append_error(exc) from exc
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((fields, size_hint, alone, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        # A caller cancelled here (its client hung up) cancels only its wait: the record is
        # already in the batch and gets written.
        return await future

    def _idle(self) -> bool:
        return (self._flusher is None or self._flusher.done()) and (
            self._committing is None or self._committing.done())

    def _append_error(self, exc: BaseException) -> EvidenceError:
        return EvidenceError(f"{self.path}: cannot append to the gateway log ({exc})",
                             "check the disk and the data directory's permissions")

    async def _flush_pending(self) -> None:
        if self._committing is not None and not self._committing.done():
            await asyncio.wait([self._committing])  # left by a flusher cancelled mid-write
        while self._pending:
            batch, self._pending = self._pending, []
            fields = [entry[0] for entry in batch]
            small = sum(entry[1] for entry in batch) <= INLINE_MAX_BYTES
            inline = small and len(batch) == 1 and batch[0][2] and self._flush_s <= INLINE_MAX_FLUSH_S
            try:
                if inline:
                    records = self._write(fields)
                elif small:
                    # Chained on the loop (microseconds a record), written and flushed by the
                    # writer thread, which holds the interpreter only to start each syscall.
                    records = await self._write_threaded(fields)
                else:
                    # Large records are also serialized in the thread: that takes milliseconds.
                    records = await asyncio.get_running_loop().run_in_executor(_WRITER, self._write, fields)
            except _WRITE_ERRORS as exc:
                error = self._append_error(exc)
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (*_, future), record in zip(batch, records, strict=True):
                if not future.done():
                    future.set_result(record)
            if inline:
                await asyncio.sleep(0)  # let the answers go out before the next batch

    def _write(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain, write and flush a batch, here and now."""
        # Later records of a batch may use blocks an earlier one stores; all are taken back
        # if the batch is not written, so the known blocks stay what the file holds.
        learned: _Learned = (set(), set())
        try:
            chained = self._chain_batch(batch, learned)
            self._commit(chained)
        except BaseException:
            self._forget(learned)
            raise
        return chained.records

    async def _write_threaded(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        learned: _Learned = (set(), set())
        try:
            chained = self._chain_batch(batch, learned)
        except BaseException:
            self._forget(learned)
            raise
        committing = asyncio.get_running_loop().run_in_executor(_WRITER, self._commit, chained)
        self._committing = committing
        # Whatever becomes of this coroutine, the blocks are forgotten if and only if the write
        # failed; shielded, so a cancelled flusher leaves the thread's write to finish (and
        # no batch is chained after it until it has).
        committing.add_done_callback(
            lambda done: None if done.cancelled() or done.exception() is None else self._forget(learned))
        await asyncio.shield(committing)
        return chained.records

    def _forget(self, learned: _Learned) -> None:
        self.state.packer.blocks -= learned[0]
        self.state.packer.prefixes -= learned[1]

    def _chain_batch(self, batch: list[dict[str, Any]], learned: _Learned) -> _Chained:
        """The batch's records and lines after the file's head; the state moves only in `_commit`."""
        seq, head = self.state.seq, self.state.head
        records: list[dict[str, Any]] = []
        lines: list[bytes] = []
        packer = self.state.packer
        for given in batch:
            seq += 1
            request_json, fields = None, given
            if isinstance(given.get("request"), Encoded):
                request_json = given["request"].text
                fields = {**given, "request": given["request"].value}
            size = fields.get("request_bytes")
            small = isinstance(size, int) and size < PACK_MIN_BYTES
            packed = packer.pack(fields.get("request")) if self.pack and not small else None
            stored = fields
            if packed is not None:
                stored = packed_record(fields, packed)
                learned[0].update(packed.known - packer.blocks)
                learned[1].update(set(packed.new_prefixes) - packer.prefixes)
                packer.commit(packed)
            record, line = _chain(seq, stored, head, request_json if stored is fields else None)
            head = record["hash"]
            records.append(record)
            lines.append(line)
        return _Chained(seq, head, records, b"".join(lines))

    def _commit(self, chained: _Chained) -> None:
        """Write the batch's lines in one write(2), flush them, and move the state to them."""
        started = time.perf_counter()
        size_before = os.fstat(self._fd).st_size
        view = memoryview(chained.data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            _flush(self._fd)
        except OSError:
            # A full disk mid-write: take the partial lines back so the chain on disk stays whole.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size_before)
            raise
        self._flush_s = 0.8 * self._flush_s + 0.2 * (time.perf_counter() - started)
        self.state.seq, self.state.head = chained.seq, chained.head
        self.state.size = size_before + len(chained.data)

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._committing is not None:
            with contextlib.suppress(Exception):
                await self._committing  # never close the file under the writer thread
        if self._fd >= 0:
            os.close(self._fd)  # also releases the lock
            self._fd = -1


class GatewayLogs:
    """The open trial logs of one gateway process, opened on first use."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._open: dict[str, TrialLog] = {}
        self._opening: dict[str, asyncio.Future[TrialLog]] = {}

    def cached(self, trial_id: str) -> TrialLog | None:
        return self._open.get(trial_id)

    async def get(self, trial_id: str) -> TrialLog:
        log = self._open.get(trial_id)
        if log is not None:
            return log
        waiting = self._opening.get(trial_id)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[TrialLog] = asyncio.get_running_loop().create_future()
        self._opening[trial_id] = future
        try:
            log = await asyncio.to_thread(TrialLog.open, log_path(self.home, trial_id))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: callers waiting on it re-raise it themselves
            raise
        finally:
            del self._opening[trial_id]
        self._open[trial_id] = log
        future.set_result(log)
        return log

    async def close(self) -> None:
        logs, self._open = list(self._open.values()), {}
        for log in logs:
            await log.close()


# -- reading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    """Complete records read (up to the first broken one, when broken)."""
    first_bad_seq: int | None = None
    """Seq of the first record that fails (seqs are positions: line n holds seq n)."""
    reason: str = ""
    head: str = GENESIS
    """Hash of the last good record: what a later check compares against."""
    torn_tail: bool = False
    """The file ends in bytes without a newline: a write torn by a crash, or an edit."""
    offset: int | None = None
    """Byte offset where the first failing record starts (where the good prefix ends)."""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq,
                "offset": self.offset, "reason": self.reason, "head": self.head, "torn_tail": self.torn_tail}


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a log in order, each request whole: the one way evidence reads a log.

    Lines that are not JSON objects are skipped (verify_chain is what judges a log). A
    record whose blocks do not reconstruct keeps `request: null` and says why in
    `request_error`, so a damaged copy still shows everything else it holds. Requests share
    the values they repeat (the same message is one object in every request that holds it):
    read them, do not change them.
    """
    if not path.exists():
        return
    unpacker = Unpacker()
    for line in _lines(path):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        try:
            yield unpacker.unpack(record)
        except BlockError as exc:
            rest = {key: value for key, value in record.items() if key not in ("packed", "blocks")}
            yield {**rest, "request": None, "request_error": str(exc)}


def verify_chain(path: Path) -> VerifyResult:
    """Check every record's seq, prev_hash, hash, exact bytes and request blocks; name the first bad one."""
    if not path.exists():
        return VerifyResult(False, 0, None, f"{path} does not exist")
    head, count, offset = GENESIS, 0, 0
    # Every block is checked against its name and every reference resolved, so the requests
    # the graders read are the ones the gateway received, even in a chain rebuilt by hand.
    unpacker = Unpacker()
    for position, line in enumerate(_lines(path), start=1):
        # Seqs run 1, 2, 3… in file order, so a record's position is the seq it must carry.
        if not line.endswith(b"\n"):
            # Whatever it holds (a torn write, a record whose newline was removed, appended
            # bytes), it is not what the gateway acknowledged: the copy is not the log.
            return VerifyResult(False, count, position, f"record {position} (offset {offset}): {len(line)} "
                                "byte(s) without a final newline after the last complete record (a write torn "
                                "by a crash, or an edit)", head, torn_tail=True, offset=offset)
        problem, record = _check_line(line, position, head)
        if problem:
            return VerifyResult(False, count, position, f"record {position} (offset {offset}): {problem}", head,
                                offset=offset)
        assert isinstance(record, dict)  # noqa: S101 - _check_line returned a record without a problem
        try:
            unpacker.unpack(record, build=False)
        except BlockError as exc:
            return VerifyResult(False, count, position, f"record {position} (offset {offset}): {exc}", head,
                                offset=offset)
        head = str(record["hash"])
        count += 1
        offset += len(line)
    return VerifyResult(True, count, None, f"{count} records, chain intact", head)


def _check_line(line: bytes, position: int, head: str) -> tuple[str, dict[str, Any] | None]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        return f"not valid JSON ({exc})", None
    if not isinstance(record, dict):
        return "not a JSON object", None
    if record.get("seq") != position:
        problem = f"seq is {record.get('seq')!r}, expected {position}"
    elif record.get("prev_hash") != head:
        problem = "prev_hash does not match the previous record's hash"
    elif record.get("hash") != record_hash(head, record):
        problem = "hash does not match the record's content"
    elif serialize(record) != line:
        problem = "bytes differ from the record's own serialization"
    else:
        problem = ""
    return problem, record


@dataclass
class _Tally:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, record: dict[str, Any]) -> None:
        self.requests += 1
        usage = record.get("usage") if isinstance(record.get("usage"), dict) else {}
        assert isinstance(usage, dict)  # noqa: S101 - narrowed above
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        self.cache_read_tokens += int(usage.get("cache_read_tokens") or 0)
        self.cache_write_tokens += int(usage.get("cache_write_tokens") or 0) + int(
            usage.get("cache_write_1h_tokens") or 0)
        cost = record.get("cost_usd")
        self.cost_usd += float(cost) if isinstance(cost, int | float) else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens, "cost_usd": round(self.cost_usd, 6)}


@dataclass
class _Summary:
    total: _Tally = field(default_factory=_Tally)
    models: dict[str, _Tally] = field(default_factory=dict)
    refused: int = 0
    errors: int = 0
    estimated: int = 0
    unpriced_models: set[str] = field(default_factory=set)
    first_ts: str | None = None
    last_ts: str | None = None


def usage_summary(path: Path) -> dict[str, Any]:
    """Tokens, cost and request counts of one trial's log, in total and per model.

    `requests` counts exchanges that reached the provider; refusals (budget, auth shape
    errors answered by the gateway itself) are counted apart and cost nothing.
    """
    summary = _Summary()
    if path.exists():
        for line in _lines(path):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                _tally(summary, record)
    return {
        **summary.total.to_json(),
        "refused": summary.refused,
        "errors": summary.errors,
        "estimated": summary.estimated,
        "unpriced_models": sorted(summary.unpriced_models),
        "first_ts": summary.first_ts,
        "last_ts": summary.last_ts,
        "models": {name: tally.to_json() for name, tally in sorted(summary.models.items())},
    }


def _tally(summary: _Summary, record: dict[str, Any]) -> None:
    ts = record.get("ts")
    if isinstance(ts, str):
        summary.first_ts = summary.first_ts or ts
        summary.last_ts = ts
    if not record.get("upstream", True):
        summary.refused += 1
        return
    summary.total.add(record)
    model = str(record.get("model") or "unknown")
    summary.models.setdefault(model, _Tally()).add(record)
    status = record.get("status")
    if record.get("outcome") not in (None, "ok") or (isinstance(status, int) and status >= 400):
        summary.errors += 1
    usage = record.get("usage")
    if isinstance(usage, dict) and usage.get("estimated"):
        summary.estimated += 1
    pricing = record.get("pricing")
    if isinstance(pricing, dict) and pricing.get("fallback"):
        summary.unpriced_models.add(model)
