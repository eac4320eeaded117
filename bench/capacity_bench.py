"""Benchmark: how many trials one host holds at once — launched as a cohort, held, collected.

N trials (`--agent none`, default 20) are launched with `trial cohort launch` (after one
warm-up launch that builds the image, not counted), held for a while, checked to be all
running, then collected with `trial cohort collect` and torn down. Printed figures:
cohort launch throughput (trials per minute), memory per idle sandbox (docker stats) and
the host's available memory before and while holding them, collect throughput.

Targets (the script exits 1 when one is missed): every trial launched, still running
after the hold, and collected; idle sandbox memory ≤ 30 MiB each.
Knobs: BENCH_CAPACITY_TRIALS (20), BENCH_CAPACITY_PARALLEL (4), BENCH_HOLD_S (30),
BENCH_TEMPLATE (api-keys). Not part of `make test`: it takes minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from launch_bench import MAX_IDLE_MIB, free_port, idle_memory_mib, trial  # noqa: E402

TRIALS = int(os.environ.get("BENCH_CAPACITY_TRIALS", "20"))
PARALLEL = int(os.environ.get("BENCH_CAPACITY_PARALLEL", "4"))
HOLD_S = float(os.environ.get("BENCH_HOLD_S", "30"))
TEMPLATE = os.environ.get("BENCH_TEMPLATE", "api-keys")
COHORT = "capacity"


def cohort(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run `trial cohort ARGS --json`; exit code and the envelope's data (a partial run still answers)."""
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "cohort", *args, "--json"], env=env,
                          capture_output=True, text=True, check=False)
    try:
        data: dict[str, Any] = json.loads(done.stdout).get("data") or {}
    except json.JSONDecodeError:
        raise SystemExit(f"trial cohort {' '.join(args)} failed: {done.stderr.strip()[-500:]}") from None
    return done.returncode, data


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def running(names: list[str]) -> set[str]:
    done = subprocess.run(["docker", "ps", "--filter", "status=running", "--format", "{{.Names}}"],
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split()) & set(names)


def hold(names: list[str], free_before: float) -> list[str]:
    """Hold the sandboxes, then check they all run and how much memory they take."""
    missed: list[str] = []
    time.sleep(HOLD_S)
    up = running(names)
    free_holding = available_mib()
    memory = idle_memory_mib(sorted(up)) if up else {}
    print(f"held {HOLD_S:.0f} s: {len(up)}/{len(names)} sandboxes running")
    if memory:
        print(f"idle sandbox memory: median {statistics.median(memory.values()):.1f} MiB, "
              f"max {max(memory.values()):.1f} MiB, total {sum(memory.values()):.0f} MiB")
    print(f"host MemAvailable: {free_before:.0f} MiB before, {free_holding:.0f} MiB holding them "
          f"({(free_before - free_holding) / max(len(up), 1):.1f} MiB per trial; host-wide, so other work "
          "on the host moves it)")
    if len(up) != len(names) or not names:
        missed.append("every trial running after the hold")
    if memory and max(memory.values()) > MAX_IDLE_MIB:
        missed.append("idle memory")
    return missed


def collect_all(env: dict[str, str], ids: list[str]) -> list[str]:
    """Collect the whole cohort; the targets missed."""
    missed: list[str] = []
    started = time.perf_counter()
    code, collected = cohort(env, "collect", COHORT, "--parallel", str(PARALLEL))
    collect_s = time.perf_counter() - started
    outcomes = collected.get("trials") or []
    ok = [o for o in outcomes if o.get("ok")]
    for outcome in outcomes:
        if not outcome.get("ok"):
            print(f"  collect failed: {outcome.get('trial_id')}: {outcome.get('error')}", file=sys.stderr)
    print(f"cohort collect: {len(ok)}/{len(ids)} trials in {collect_s:.1f} s "
          f"({len(ok) / collect_s * 60:.1f} trials/min; exit {code})")
    if len(ok) != len(ids) or not ids:
        missed.append("every trial collected")
    return missed


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="trial-capacity-bench-"))
    env = {**os.environ, "TRIAL_HOME": str(home), "TRIAL_SERVICE_PORT": str(free_port()),
           "TRIAL_TEMPLATES_DIR": os.environ.get("TRIAL_TEMPLATES_DIR", str(ROOT / "trial_templates")),
           "TRIAL_SANDBOX_BASE_IMAGE": os.environ.get("TRIAL_BASE_IMAGE", "trial-base:bookworm"),
           "TRIAL_FORGE_ON_TEARDOWN": "delete"}
    plan = home / f"{COHORT}.csv"
    plan.write_text("candidate\n" + "".join(f"capacity-{n:02d}\n" for n in range(TRIALS)))
    warm_id: str | None = None
    missed: list[str] = []
    try:
        warm = trial(env, "launch", TEMPLATE, "--candidate", "capacity-warmup", "--agent", "none")
        warm_id = str(warm["trial"]["id"])
        free_before = available_mib()

        started = time.perf_counter()
        code, launched = cohort(env, "launch", str(plan), "--template", TEMPLATE, "--agent", "none",
                                "--parallel", str(PARALLEL))
        launch_s = time.perf_counter() - started
        rows = launched.get("rows") or []
        ids = [str(row["trial_id"]) for row in rows if row.get("action") in ("launched", "resumed")]
        for row in rows:
            if row.get("action") == "failed":
                print(f"  launch failed: {row.get('candidate')}: {row.get('error')}", file=sys.stderr)
        names = [f"trial-{trial_id}-sandbox" for trial_id in ids]
        print(f"cohort launch: {len(ids)}/{TRIALS} trials in {launch_s:.1f} s at --parallel {PARALLEL} "
              f"({len(ids) / launch_s * 60:.1f} trials/min; exit {code})")
        if len(ids) != TRIALS:
            missed.append("every trial launched")

        missed += hold(names, free_before)
        missed += collect_all(env, ids)

        print("\ntargets")
        for target in ("every trial launched", "every trial running after the hold", "idle memory",
                       "every trial collected"):
            print(f"  {target:36s} {'MISSED' if target in missed else 'ok'}")
        if missed:
            print(f"capacity bench: target missed: {', '.join(missed)}", file=sys.stderr)
            return 1
        return 0
    finally:
        cohort(env, "teardown", COHORT, "--delete-repo", "--yes", "--parallel", str(PARALLEL))
        if warm_id:
            subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "teardown", warm_id, "--yes",
                            "--delete-repo"], env=env, capture_output=True, check=False)
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], env=env,
                       capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
