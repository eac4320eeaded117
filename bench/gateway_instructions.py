"""Benchmark: CPU instructions per request of the gateway and of the bare relay, which load does not move.

gateway_bench.py times requests, and on a shared two-core machine its CPU figures move by
±20 % from one run to the next (other processes evict caches and preempt), more than any
one change to the gateway's hot path makes. This counts the instructions the server
process executes instead (valgrind's callgrind, user space only), the same on a busy
machine as on a quiet one, so a change of a few per cent shows.

Each server (the bare relay of gateway_bench.py, this checkout's gateway and, with
--against DIR, the gateway of another checkout, e.g. a worktree of the previous commit)
runs twice under callgrind in front of the fake upstream, serving 50 warm-up requests
then N1 or N2 non-streamed requests at a fixed concurrency; instructions per request are
(count at N2 - count at N1) / (N2 - N1), so start-up and shut-down cancel out. The servers
run side by side (the counts do not depend on timing), each against its own fake upstream.

Precision, measured: the relay gives the same count to 0.3 % run after run (779.5k and
781.5k); two copies of one gateway differ by up to 4 % (1,262k to 1,323k), because some of
its work goes by wall time, which valgrind stretches (the token cache's background re-check
every half second, how many records one write batches). A change smaller than that needs
repeated runs.

Caveats: valgrind emulates a CPU without some extensions (SHA among them), so hashing
weighs more than on the real machine; system calls are not counted (the fdatasync of each
record costs the disk's time, not instructions); threads are run one at a time, so batch
sizes may differ from a real run. It measures work, not latency: the timed bench stays
the judge of the targets. Needs valgrind on PATH; loops are bounded; traffic stays on
127.0.0.1.
Usage: python bench/gateway_instructions.py [--against DIR] [--requests N2] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WARM_UP = 50


def _count(callgrind_out: Path) -> int:
    """Total instructions from a callgrind output file (its `summary:` or `totals:` line)."""
    for line in callgrind_out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"{callgrind_out}: no instruction total (did valgrind finish?)")


def _serve_and_count(tree: Path | None, requests: int, concurrency: int, scratch: Path) -> int:
    """Instructions one server executes: start, WARM_UP + `requests` requests, stop. None: the relay."""
    import aiohttp
    import gateway_bench as bench

    from tests.fakes.llm_upstream import ANTHROPIC_KEY

    home = Path(tempfile.mkdtemp(prefix="trial-instructions-", dir=scratch))
    env = {**os.environ, "TRIAL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    out = home / "callgrind.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    common = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    fake, fake_url = bench.spawn([sys.executable, "-m", "tests.fakes.llm_upstream"], env)
    server: subprocess.Popen[str] | None = None
    try:
        if tree is None:
            argv = [*valgrind, sys.executable, str(ROOT / "bench" / "gateway_bench.py"), "--relay", fake_url]
            server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True)
            path, headers = "/v1/messages", {**common, "x-api-key": ANTHROPIC_KEY}
        else:
            token = bench.make_trial(home)
            server_env = {**env, "PYTHONPATH": str(tree), "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
                          "TRIAL_GATEWAY_ANTHROPIC_BASE_URL": fake_url, "TRIAL_GATEWAY_OPENAI_BASE_URL": fake_url,
                          "TRIAL_GATEWAY_MAX_IN_FLIGHT_PER_TRIAL": str(concurrency * 2)}
            argv = [*valgrind, sys.executable, "-m", "orchestrator.gateway"]
            server = subprocess.Popen(argv, cwd=tree, env=server_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
            path, headers = "/anthropic/v1/messages", {**common, "Authorization": f"Bearer {token}"}
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"{' '.join(argv)} did not start under valgrind: {line!r}")
        target = ("server", line.split()[1] + path, headers, server.pid)

        async def drive() -> None:
            def session() -> Any:
                return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

            async with session() as client:
                remaining = WARM_UP + requests

                async def worker() -> None:
                    nonlocal remaining
                    while remaining > 0:
                        remaining -= 1
                        await bench.one(client, target, stream=False)

                await asyncio.gather(*(worker() for _ in range(concurrency)))

        asyncio.run(drive())
        server.terminate()
        server.wait(timeout=120)
        server = None
        return _count(out)
    finally:
        for process in (server, fake):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def per_request(tree: Path | None, low: int, high: int, concurrency: int, scratch: Path) -> float:
    """Instructions per request: the difference of two runs, so start-up cancels out."""
    return (_serve_and_count(tree, high, concurrency, scratch)
            - _serve_and_count(tree, low, concurrency, scratch)) / (high - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout whose gateway is counted too")
    parser.add_argument("--requests", type=int, default=600, help="requests in the longer run (default 600)")
    parser.add_argument("--concurrency", type=int, default=20, help="clients at once (default 20)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("gateway instructions: valgrind is not on PATH; install it (apt-get install valgrind)", file=sys.stderr)
        return 2
    against = args.against.resolve() if args.against else None
    if against is not None and not (against / "orchestrator" / "gateway" / "__main__.py").is_file():
        print(f"gateway instructions: {against} holds no orchestrator/gateway; give a checkout of this project",
              file=sys.stderr)
        return 2
    if args.requests < 30 or args.concurrency < 1:
        print("gateway instructions: --requests must be at least 30 and --concurrency at least 1", file=sys.stderr)
        return 2
    high, low = args.requests, args.requests // 3
    targets: dict[str, Path | None] = {"relay": None, "gateway": ROOT}
    if against is not None:
        targets[f"gateway at {against}"] = against
    scratch = Path(tempfile.mkdtemp(prefix="trial-instructions-"))
    try:
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            futures = {name: pool.submit(per_request, tree, low, high, args.concurrency, scratch)
                       for name, tree in targets.items()}
            counts = {name: future.result() for name, future in futures.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"instructions per non-streamed request (callgrind, runs of {low} and {high} requests at "
          f"{args.concurrency} concurrent; load average {os.getloadavg()[0]:.2f}, which does not move them)")
    for name, count in counts.items():
        print(f"  {name:40s} {count / 1000:8.1f} k   {count / counts['relay']:5.2f}x relay")
    return 0


if __name__ == "__main__":
    sys.exit(main())
