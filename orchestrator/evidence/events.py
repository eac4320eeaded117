"""The normalized timeline: every source merged into one list of events sorted by time.

Sources: the gateway log (what really reached a model, outside the candidate's reach),
the agents' own transcripts (already parsed into events: richer, since they show what the
candidate approved, rejected and interrupted, but written inside the sandbox), git
commits, forge push events and pull requests.

An event is `{ts, source, kind, session, text, data}` (DESIGN.md); its position in the
returned list (and in `events.jsonl`) is the event index that evidence refs cite.

Cross-check: a transcript event that also reached the gateway is kept once, from the
transcript, with `data.gateway_seq` naming the gateway record. Transcript prompts, answers
and tool calls the gateway never saw are kept and flagged `data.missing_from_gateway`:
they mean a model was reached some other way, or the transcript was edited. Gateway
traffic that no transcript shows is kept with source `gateway`.

Witness (`event["witness"]`, a contract the graders rely on): who saw the event happen,
so who could have made it up.
- `gateway`: the LLM gateway logged it (a gateway record, or a transcript event matched to
  one: `data.gateway_seq`). Tool results, rejections and interrupts count only where a
  request carried them for a tool call an earlier logged response issued (or, for an
  interrupt without a tool call, in a request that continues a logged conversation), the
  provider answered that request (2xx), no other request told the same call's outcome
  differently (`data.conflict`: the token is the candidate's, who can post one with curl
  while the agent waits), and the transcript's text agrees with what the gateway saw. A witnessed transcript event's
  time is held to the gateway's (`data.transcript_ts` keeps the transcript's own claim).
- `host`: the host saw it (the local forge's push hook, the host service's git proxy).
  A commit's time is when it first reached the forge (`data.pushed_at`); `committed_at`
  is only the commit's claim.
- `forge`: the forge's own record (GitHub's activity log, pull requests, comments).
- `transcript`: only the sandbox said so (agent transcripts live in the candidate's home),
  or the gateway carried it without a chain to a logged response: shown, never scored.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.evidence.bundle import COMMITS, GATEWAY_LOG, PULLS_DIR, PUSHES, read_jsonl
from orchestrator.evidence.exchanges import Exchange, ToolOutcome, log_records, read_exchange
from orchestrator.logging import redact_text

Event = dict[str, Any]

WITNESSES = ("gateway", "host", "forge", "transcript")
SCORED_WITNESSES = frozenset({"gateway", "host", "forge"})
"""Events a score may rest on; `transcript` ones are shown and marked only."""
KINDS = ("user_prompt", "assistant_message", "tool_call", "tool_result", "tool_rejected", "interrupt",
         "commit", "push", "pr_opened", "pr_comment", "review")
MISSING_FROM_GATEWAY = "missing_from_gateway"
_EXCHANGE_KINDS = ("user_prompt", "assistant_message", "tool_call")
_MESSAGE_ID_KEYS = ("message_id", "response_id", "msg_id")
_TOOL_ID_KEYS = ("tool_use_id", "call_id", "id")
_SPACES = re.compile(r"\s+")
# Transcript and gateway clocks are the same host's, but a transcript stamps a prompt when
# it is typed and the gateway when the request arrives: allow for that gap.
_TEXT_MATCH_WINDOW_S = 600.0
_MIN_CONTAINED = 20
_COMPARED_CHARS = 2000
_INTERRUPTED = re.compile(r"interrupted by user|<turn_aborted>|\baborted\b", re.I)


def build_events(bundle_dir: Path, agent_events: list[Event]) -> list[Event]:
    """Merge gateway records, agent events, commits, pushes and PR activity into one timeline."""
    # A refused request (budget, size, route, quota) never reached a model: it is in the log as
    # evidence of the attempt, not as a turn of the conversation.
    exchanges = sorted((read_exchange(record) for record in log_records(bundle_dir / GATEWAY_LOG)
                        if record.get("upstream", True)), key=lambda exchange: exchange.seq)
    chain = _Chain(exchanges)
    gateway_events = [event for exchange in exchanges for event in _exchange_events(exchange, chain)]
    agent = [_normalize(dict(event)) for event in agent_events]
    dropped = _cross_check(agent, exchanges, chain)
    kept_gateway = [event for event in gateway_events if _gateway_key(event) not in dropped]

    timeline = kept_gateway + agent
    commits = read_jsonl(bundle_dir / COMMITS)
    pushes = read_jsonl(bundle_dir / PUSHES)
    first_push = first_pushes(commits, pushes)
    timeline += [_commit_event(record, first_push.get(str(record.get("sha")))) for record in commits]
    timeline += [_push_event(record) for record in pushes]
    pulls_dir = bundle_dir / PULLS_DIR
    if pulls_dir.is_dir():
        for path in sorted(pulls_dir.glob("*.json")):
            timeline += _pull_events(json.loads(path.read_text()))
    # Stable sort: events with the same instant keep the order their source gave them.
    timeline.sort(key=lambda event: _sort_key(event["ts"]))
    return [_redacted(event) for event in timeline]


def parse_ts(value: Any) -> datetime | None:
    """An ISO 8601 string (with Z or an offset) or epoch seconds/milliseconds, as aware UTC."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sort_key(ts: str) -> tuple[int, datetime]:
    moment = parse_ts(ts)
    # Undated events go last rather than pretending to be first.
    return (0, moment) if moment else (1, datetime.max.replace(tzinfo=UTC))


def _normalize(event: Event, witness: str = "transcript") -> Event:
    """The event's fields in one form; an agent event is `transcript`-witnessed until the gateway vouches."""
    moment = parse_ts(event.get("ts"))
    data = event.get("data")
    return {
        "ts": format_ts(moment) if moment else str(event.get("ts") or ""),
        "source": str(event.get("source") or "agent"),
        "kind": str(event.get("kind") or ""),
        "session": event.get("session"),
        "text": str(event.get("text") or ""),
        "data": dict(data) if isinstance(data, dict) else {},
        "witness": witness,
    }


def _make(ts: str, source: str, kind: str, text: str, data: dict[str, Any], session: Any = None, *,
          witness: str) -> Event:
    return _normalize({"ts": ts, "source": source, "kind": kind, "session": session, "text": text, "data": data},
                      witness)


UNCHAINED = ("a request carried it, but not for a tool call or conversation the gateway logged before: "
             "anyone holding the token could have sent it")
CONFLICTING = ("requests carried different outcomes for this tool call: anyone holding the token can post one "
               "while the agent waits, so neither is the gateway's word")
REFUSED_EXCHANGE = "carried by a request the model's provider refused (not 2xx): it was no turn of the conversation"


class _Chain:
    """Which exchanges continue a logged conversation, and which tool call each outcome answers."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.issued: dict[str, int] = {}
        self.continuing: set[int] = set()
        seen: set[str] = set()
        for exchange in exchanges:  # in seq order
            if exchange.history_keys & seen:
                self.continuing.add(exchange.seq)
            seen |= exchange.own_keys
            for use in exchange.tool_uses:
                if use.id:
                    self.issued.setdefault(use.id, exchange.seq)
        # The agent's own user agent is the one most requests carry; a request with another (curl,
        # a script) is marked for reviewers, not scored on: the header is the sender's to choose.
        agents = [exchange.agent for exchange in exchanges if exchange.agent]
        self.usual_agent = max(set(agents), key=agents.count) if agents else None
        # Every 2xx request carrying an outcome for a logged call, by tool call and by what it said.
        # An agent's retry repeats the same outcome; two different ones mean someone else posted one
        # (the trial token is the candidate's), and the gateway cannot tell which the agent sent.
        stories: dict[str, dict[tuple[str, bool], list[int]]] = {}
        for exchange in exchanges:
            if not _ok(exchange):
                continue
            for outcome in exchange.tool_outcomes:
                if outcome.tool_use_id and self.answers_logged_call(exchange, outcome.tool_use_id):
                    told = stories.setdefault(outcome.tool_use_id, {})
                    told.setdefault((_squash(outcome.text), outcome.is_error), []).append(exchange.seq)
        self.conflicts: dict[str, list[int]] = {
            tool_id: sorted(seq for seqs in told.values() for seq in seqs)
            for tool_id, told in stories.items() if len(told) > 1}

    def answers_logged_call(self, exchange: Exchange, tool_use_id: str) -> bool:
        """The outcome is for a tool call that an earlier logged response issued."""
        issuer = self.issued.get(tool_use_id)
        return issuer is not None and issuer < exchange.seq

    def unwitnessed(self, exchange: Exchange, tool_use_id: str) -> str | None:
        """Why the gateway cannot vouch for this request's outcome of the call, or None when it can."""
        if not _ok(exchange):
            return REFUSED_EXCHANGE
        if not self.answers_logged_call(exchange, tool_use_id):
            return UNCHAINED
        if tool_use_id in self.conflicts:
            return CONFLICTING
        return None


def _ok(exchange: Exchange) -> bool:
    """The provider answered the request (2xx): a refused one was no turn the agent went on from."""
    return exchange.status is not None and 200 <= exchange.status < 300


def _exchange_events(exchange: Exchange, chain: _Chain) -> list[Event]:
    """One gateway record as events, in the order they happened: results, prompt, answer, calls."""
    base = {"gateway_seq": exchange.seq}
    events: list[Event] = []
    if exchange.interrupted:
        chained = exchange.seq in chain.continuing
        events.append(_make(exchange.ts, "gateway", "interrupt", "[interrupted by user]",
                            dict(base) if chained else {**base, "unchained": UNCHAINED},
                            witness="gateway" if chained else "transcript"))
    for outcome in exchange.tool_outcomes:
        kind = "tool_rejected" if outcome.rejected else "tool_result"
        why_not = chain.unwitnessed(exchange, outcome.tool_use_id)
        data: dict[str, Any] = {**base, "tool_use_id": outcome.tool_use_id, "is_error": outcome.is_error,
                                "user_agent": exchange.agent}
        if exchange.agent != chain.usual_agent:
            data["unusual_user_agent"] = True
        if why_not is not None:
            data["unchained"] = why_not
        if why_not == CONFLICTING:
            data["conflict"] = {"gateway_seqs": chain.conflicts[outcome.tool_use_id]}
        events.append(_make(exchange.ts, "gateway", kind, outcome.text, data,
                            witness="transcript" if why_not else "gateway"))
    if exchange.prompt:
        events.append(_make(exchange.ts, "gateway", "user_prompt", exchange.prompt, dict(base), witness="gateway"))
    events.append(_make(exchange.ts, "gateway", "assistant_message", exchange.response_text, {
        **base, "model": exchange.model, "usage": exchange.usage, "cost_usd": exchange.cost_usd,
        "status": exchange.status, "message_id": exchange.response_id, "agent": exchange.agent,
        "wire": exchange.wire, "tool_uses": len(exchange.tool_uses)}, witness="gateway"))
    for use in exchange.tool_uses:
        events.append(_make(exchange.ts, "gateway", "tool_call", _tool_summary(use.name, use.input),
                            {**base, "tool": use.name, "input": use.input, "tool_use_id": use.id},
                            witness="gateway"))
    return events


def _tool_summary(name: str, arguments: dict[str, Any]) -> str:
    for key in ("command", "cmd", "file_path", "path", "pattern"):
        value = arguments.get(key)
        if value:
            shown = " ".join(value) if isinstance(value, list) else str(value)
            return f"{name}: {shown}"
    return name


def _gateway_key(event: Event) -> tuple[int, str, str]:
    data = event["data"]
    ident = str(data.get("tool_use_id") or "") if event["kind"] != "user_prompt" else ""
    return (int(data.get("gateway_seq", -1)), event["kind"], ident)


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class _Index:
    """The gateway exchanges, looked up the ways a transcript event can name one."""

    def __init__(self, exchanges: list[Exchange], chain: _Chain) -> None:
        self.exchanges = exchanges
        self.chain = chain
        self.by_response = {ex.response_id: ex for ex in exchanges if ex.response_id}
        self.by_tool_use = {use.id: ex for ex in exchanges for use in ex.tool_uses if use.id}
        # Only outcomes the gateway vouches for (2xx, chained to the logged call they answer, told one
        # way only); the first request that carried each.
        self.by_outcome: dict[str, tuple[Exchange, ToolOutcome]] = {}
        for ex in exchanges:
            for outcome in ex.tool_outcomes:
                if outcome.tool_use_id and chain.unwitnessed(ex, outcome.tool_use_id) is None:
                    self.by_outcome.setdefault(outcome.tool_use_id, (ex, outcome))
        self.prompts_taken: set[int] = set()
        self.interrupts_taken: set[int] = set()
        # Text matches look only at exchanges within the match window, found by bisection, and
        # squash each text once: a transcript of a million forged lines stays a linear pass.
        dated = sorted(((moment, ex.seq) for ex in exchanges if (moment := parse_ts(ex.ts))), key=lambda p: p[0])
        self._moments = [moment for moment, _ in dated]
        self._by_seq = {ex.seq: ex for ex in exchanges}
        self._dated_seqs = [seq for _, seq in dated]
        self.prompt_text = {ex.seq: _squash(ex.prompt or "") for ex in exchanges}
        self.response_text = {ex.seq: _squash(ex.response_text) for ex in exchanges}

    def nearby(self, event: Event) -> list[Exchange]:
        moment = parse_ts(event["ts"])
        if moment is None:
            return []
        window = timedelta(seconds=_TEXT_MATCH_WINDOW_S)
        low, high = bisect_left(self._moments, moment - window), bisect_right(self._moments, moment + window)
        return [self._by_seq[seq] for seq in self._dated_seqs[low:high]]

    def match(self, event: Event) -> tuple[Exchange | None, set[tuple[int, str, str]]]:
        """The exchange that carried this transcript event, and the gateway events it makes redundant."""
        kind, data = event["kind"], event["data"]
        tool_id = _first(data, _TOOL_ID_KEYS) or ""
        exchange: Exchange | None = None
        keys: set[tuple[str, str]] = set()
        if kind == "assistant_message":
            exchange = self.by_response.get(_first(data, _MESSAGE_ID_KEYS) or "") or self._answer(event)
            keys = {("assistant_message", "")}
        elif kind == "tool_call":
            exchange = self.by_tool_use.get(tool_id) or self.by_response.get(_first(data, _MESSAGE_ID_KEYS) or "")
            keys = {("tool_call", tool_id)}
            if exchange and not exchange.response_text.strip():
                # A bare tool request: the transcript's tool call already says all it said.
                keys.add(("assistant_message", ""))
        elif kind == "user_prompt":
            exchange = self._prompt(event)
            if exchange:
                self.prompts_taken.add(exchange.seq)
            keys = {("user_prompt", "")}
        elif kind in ("tool_result", "tool_rejected") or (kind == "interrupt" and tool_id):
            exchange = self._outcome(event, tool_id)
            keys = {("tool_result", tool_id), ("tool_rejected", tool_id)}
            if exchange is None and kind == "interrupt":
                exchange = self._interrupt(event)
                keys = {("interrupt", "")}
        elif kind == "interrupt":
            exchange = self._interrupt(event)
            keys = {("interrupt", "")}
        if exchange is None:
            return None, set()
        return exchange, {(exchange.seq, kind_, ident) for kind_, ident in keys}


    def _outcome(self, event: Event, tool_id: str) -> Exchange | None:
        """The request that carried this tool's outcome back, if it says what the transcript says."""
        found = self.by_outcome.get(tool_id)
        if found is None:
            return None
        exchange, outcome = found
        if not _same_text(event["text"], outcome.text):
            return None  # the transcript tells another story than the request did
        if event["kind"] != "tool_result" and exchange.wire == "anthropic" and not (
                outcome.is_error or _INTERRUPTED.search(outcome.text)):
            return None  # the same words, but the request did not mark them as a refusal
        return exchange

    def _interrupt(self, event: Event) -> Exchange | None:
        """A request that carried an interrupt and continues a logged conversation, near this one."""
        free = [ex for ex in self.nearby(event) if ex.interrupted and ex.seq in self.chain.continuing
                and ex.seq not in self.interrupts_taken]
        exchange = _closest(event, free)
        if exchange is not None:
            self.interrupts_taken.add(exchange.seq)
        return exchange

    def _answer(self, event: Event) -> Exchange | None:
        text = _squash(event["text"])
        if not text:
            return None
        return _closest(event, [ex for ex in self.nearby(event) if text in self.response_text[ex.seq]])

    def _prompt(self, event: Event) -> Exchange | None:
        text = _squash(event["text"])
        if not text:
            return None
        free = [ex for ex in self.nearby(event) if ex.seq not in self.prompts_taken and ex.prompt]
        exact = _closest(event, [ex for ex in free if self.prompt_text[ex.seq] == text])
        if exact or len(text) < _MIN_CONTAINED:
            return exact
        # Agents add to what the candidate typed (attached file contents, mode hints) or trim it;
        # a long enough prompt found inside the request, or the request's inside it, is the same turn.
        return _closest(event, [ex for ex in free if len(self.prompt_text[ex.seq]) >= _MIN_CONTAINED
                                and (text in self.prompt_text[ex.seq] or self.prompt_text[ex.seq] in text)])


def _same_text(transcript: str, gateway: str) -> bool:
    """The transcript's text is the gateway's, as far as the shorter goes (transcripts clip long output)."""
    left, right = _squash(transcript), _squash(gateway)
    if not left or not right:
        return left == right
    span = min(len(left), len(right), _COMPARED_CHARS)
    return left[:span] == right[:span]


def _cross_check(agent: list[Event], exchanges: list[Exchange], chain: _Chain) -> set[tuple[int, str, str]]:
    """Annotate agent events with the gateway record that carried them; return gateway events to drop."""
    index = _Index(exchanges, chain)
    by_seq = {exchange.seq: exchange for exchange in exchanges}
    dropped: set[tuple[int, str, str]] = set()
    for event in agent:
        exchange, redundant = index.match(event)
        if exchange:
            event["data"]["gateway_seq"] = exchange.seq
            event["witness"] = "gateway"
            _hold_to_gateway_time(event, by_seq[exchange.seq])
            dropped |= redundant
        elif event["kind"] in _EXCHANGE_KINDS:
            event["data"][MISSING_FROM_GATEWAY] = True
    return dropped


def _hold_to_gateway_time(event: Event, exchange: Exchange) -> None:
    """A witnessed event's time within the match window of the gateway's (the transcript's clock is
    the candidate's): what a response said comes after its request, what a request carried before it."""
    claimed, witnessed = parse_ts(event["ts"]), parse_ts(exchange.ts)
    if witnessed is None:
        return
    window = timedelta(seconds=_TEXT_MATCH_WINDOW_S)
    if event["kind"] in ("assistant_message", "tool_call"):
        low, high = witnessed, witnessed + window
    else:
        low, high = witnessed - window, witnessed
    held = min(max(claimed, low), high) if claimed else witnessed
    if claimed != held:
        event["data"]["transcript_ts"] = event["ts"]
        event["ts"] = format_ts(held)


def _near(event: Event, exchange: Exchange) -> bool:
    left, right = parse_ts(event["ts"]), parse_ts(exchange.ts)
    return bool(left and right and abs((left - right).total_seconds()) <= _TEXT_MATCH_WINDOW_S)


def _closest(event: Event, candidates: list[Exchange]) -> Exchange | None:
    moment = parse_ts(event["ts"])
    near = [ex for ex in candidates if _near(event, ex)]
    if not near or moment is None:
        return None
    return min(near, key=lambda ex: abs(((parse_ts(ex.ts) or moment) - moment).total_seconds()))


def push_witness(record: dict[str, Any]) -> str:
    """Who logged a ref update: the host (local forge hook, the service's git proxy) or the forge."""
    declared = record.get("witness")
    if declared in ("host", "forge"):
        return str(declared)
    return "host"  # the push log format (orchestrator.forge.pushlog) is the host's own


def first_pushes(commits: list[dict[str, Any]], pushes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each commit, the first logged push that brought it to the forge (walking parents from each
    pushed head, oldest push first; linear in commits)."""
    parents = {str(c.get("sha")): [str(p) for p in c.get("parents") or []] for c in commits}
    found: dict[str, dict[str, Any]] = {}
    dated = [p for p in pushes if parse_ts(p.get("ts"))]
    for push in sorted(dated, key=lambda p: _sort_key(str(p.get("ts")))):
        stack = [str(push.get("after") or "")]
        while stack:
            sha = stack.pop()
            if sha in found or sha not in parents:
                continue
            found[sha] = push
            stack.extend(parents[sha])
    return found


def _commit_event(record: dict[str, Any], push: dict[str, Any] | None) -> Event:
    message = str(record.get("message", ""))
    data = {key: value for key, value in record.items() if key != "message"}
    data["message"] = message
    claimed = str(record.get("committed_at") or record.get("authored_at") or "")
    if push is None:
        # Never seen arriving: the only time is the commit's own claim, which the candidate sets.
        return _make(claimed, "git", "commit", message.splitlines()[0] if message else "", data,
                     witness="transcript")
    data |= {"pushed_at": str(push.get("ts")), "pushed_ref": push.get("ref")}
    return _make(str(push.get("ts")), "git", "commit", message.splitlines()[0] if message else "", data,
                 witness=push_witness(push))


def _push_event(record: dict[str, Any]) -> Event:
    before, after = str(record.get("before") or "")[:10], str(record.get("after") or "")[:10]
    forced = " (forced)" if record.get("forced") else ""
    return _make(str(record.get("ts", "")), "forge", "push",
                 f"push {record.get('ref', '?')} {before}..{after}{forced}", dict(record),
                 witness=push_witness(record))


def _pull_events(pull: dict[str, Any]) -> list[Event]:
    number = pull.get("number")
    events = [_make(str(pull.get("created_at", "")), "forge", "pr_opened", str(pull.get("title", "")), {
        "number": number, "url": pull.get("url"), "head_ref": pull.get("head_ref"),
        "head_sha": pull.get("head_sha"), "base_ref": pull.get("base_ref"), "state": pull.get("state"),
        "author": pull.get("author"), "body": pull.get("body", "")}, witness="forge")]
    for comment in pull.get("comments") or []:
        events.append(_make(str(comment.get("created_at", "")), "forge", "pr_comment",
                            str(comment.get("body", "")),
                            {"number": number, "url": comment.get("url"), "author": comment.get("author"),
                             "id": comment.get("id")}, witness="forge"))
    for comment in pull.get("review_comments") or []:
        events.append(_make(str(comment.get("created_at", "")), "forge", "pr_comment",
                            str(comment.get("body", "")),
                            {"number": number, "url": comment.get("url"), "author": comment.get("author"),
                             "path": comment.get("path"), "id": comment.get("id")}, witness="forge"))
    for review in pull.get("reviews") or []:
        events.append(_make(str(review.get("submitted_at") or review.get("created_at") or ""), "forge",
                            "review", str(review.get("body", "")),
                            {"number": number, "url": review.get("url"), "author": review.get("author"),
                             "state": review.get("state"), "id": review.get("id")}, witness="forge"))
    return events


def _redacted(value: Any) -> Any:
    """No token may reach the evidence, even one the agent printed into a tool result."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value
