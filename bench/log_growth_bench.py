"""Benchmark: gateway log bytes per turn of a long agent session, stored as blocks vs whole requests.

One session in Claude Code's shape (tests/fixtures/long_session.py: system prompt, tools and
the whole conversation resent every turn, a new tool result of 1-4 KB per turn) runs through
the real gateway (in-process, loopback) in front of the fake upstream. The same records are
then written again in the format before blocks (each request whole) for comparison.

Figures: total log bytes and bytes per turn for both formats, the bytes the last tenth of the
turns added per turn (flat when the log is linear; it climbs with the turn number when each
record repeats the conversation), and the log's size over the session's distinct content
(its last request plus every response).

Target (exit 1 when missed): the block log ≤ 2 × the distinct content.
Knob: BENCH_LOG_TURNS (200). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TURNS = int(os.environ.get("BENCH_LOG_TURNS", "200"))
MAX_TIMES_DISTINCT = 2.0


def per_turn(path: Path, first: int, last: int) -> float:
    """Mean bytes of records first..last-1 (0-based): what those turns each added to the log."""
    with path.open("rb") as handle:
        sizes = [len(line) for line in handle]
    return sum(sizes[first:last]) / max(1, last - first)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="trial-log-bench-") as scratch:
        os.environ["TRIAL_HOME"] = str(Path(scratch) / "home")  # the harness's store and logs live here
        from orchestrator.gateway.log import read_records, verify_chain
        from tests.fakes.llm_upstream import Knobs
        from tests.fixtures.long_session import distinct_bytes, rewrite_whole, run_session
        from tests.integration.gateway_harness import running_gateway

        with running_gateway(budget_usd=1_000_000.0) as gw:
            gw.fake.knobs = Knobs(tool_call=True, input_tokens=200)
            gw.fake.record = False
            run_session(gw.urls["anthropic"], gw.token, TURNS)
            blocks_log = gw.log
            whole_log = Path(scratch) / "whole.jsonl"
            rewrite_whole(blocks_log, whole_log)
            records = list(read_records(blocks_log))
            distinct = distinct_bytes(records)
            new_size, old_size = blocks_log.stat().st_size, whole_log.stat().st_size
            tail = TURNS - max(1, TURNS // 10)
            chain = verify_chain(blocks_log)
            print(f"gateway log growth, {TURNS}-turn session (distinct content {distinct:,} B):")
            print(f"  blocks: {new_size:>13,} B  {new_size / TURNS:>9,.0f} B/turn  last tenth "
                  f"{per_turn(blocks_log, tail, TURNS):>9,.0f} B/turn  {new_size / distinct:.2f}x distinct")
            print(f"  whole:  {old_size:>13,} B  {old_size / TURNS:>9,.0f} B/turn  last tenth "
                  f"{per_turn(whole_log, tail, TURNS):>9,.0f} B/turn  {old_size / distinct:.2f}x distinct")
            print(f"  blocks log: {chain.reason}; {old_size / new_size:.0f}x smaller than whole requests")
    ok = chain.ok and new_size <= MAX_TIMES_DISTINCT * distinct
    if not ok:
        print(f"MISSED: block log must verify and be ≤ {MAX_TIMES_DISTINCT}x its distinct content")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
