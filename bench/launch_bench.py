"""Benchmark: `trial launch` against a bare hardened `docker run -d` of the same image, same run.

The api-keys image is built once first (a warm-up launch, not counted), so the figures
compare what launch adds on top of starting a container: repo, starter push, token,
home files, network, volumes, clone over the git endpoint. The baseline is not a plain
`docker run`: it carries the sandbox's own hardening, read from the warm-up container
(cap-drop, no-new-privileges, memory/swap, cpus, pids, read-only root, tmpfs, init,
user, command), so the ratio is launch's overhead and not the cost of the hardening.
Runs are interleaved so both see the same machine noise. Traffic stays on loopback and
the Docker bridge.

Targets (figures are ratios against the baseline measured in this run, or per-container
memory; the script exits 1 when one is missed):
  launch median / hardened docker run median  ≤ 4×
  idle sandbox memory (docker stats, after launch)  ≤ 30 MiB each
Knobs: BENCH_ROUNDS (default 9: a median of five moved by a tenth between runs here), BENCH_TEMPLATE (default api-keys).
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

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = os.environ.get("BENCH_TEMPLATE", "api-keys")
MAX_LAUNCH_RATIO = 4.0
MAX_IDLE_MIB = 30.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trial(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"trial {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    data: dict[str, Any] = json.loads(done.stdout)["data"]
    return data


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def hardened_flags(container: str) -> list[str]:
    """`docker run` flags giving a bare container the sandbox's hardening, read from a real one."""
    done = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
    attrs = json.loads(done.stdout)[0]
    host, config = attrs["HostConfig"], attrs["Config"]
    flags: list[str] = []
    for cap in host.get("CapDrop") or []:
        flags += ["--cap-drop", cap]
    for opt in host.get("SecurityOpt") or []:
        flags += ["--security-opt", opt]
    if host.get("Memory"):
        flags += ["--memory", str(host["Memory"]), "--memory-swap", str(host.get("MemorySwap") or host["Memory"])]
    if host.get("NanoCpus"):
        flags += ["--cpus", f"{host['NanoCpus'] / 1e9:g}"]
    if host.get("PidsLimit"):
        flags += ["--pids-limit", str(host["PidsLimit"])]
    if host.get("ReadonlyRootfs"):
        flags.append("--read-only")
    for path, options in (host.get("Tmpfs") or {}).items():
        flags += ["--tmpfs", f"{path}:{options}" if options else path]
    if host.get("Init"):
        flags.append("--init")
    if config.get("User"):
        flags += ["--user", config["User"]]
    if config.get("WorkingDir"):
        flags += ["--workdir", config["WorkingDir"]]
    return flags


def container_command(container: str) -> list[str]:
    done = subprocess.run(["docker", "inspect", "--format", "{{json .Config.Cmd}}", container],
                          capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout) or [])


def idle_memory_mib(containers: list[str]) -> dict[str, float]:
    """Memory in use per container as `docker stats` reports it (MiB)."""
    done = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *containers],
                          capture_output=True, text=True, check=True)
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "kB": 1 / 1024, "MiB": 1.0, "MB": 1.0, "GiB": 1024.0, "GB": 1024.0}
    found: dict[str, float] = {}
    for line in done.stdout.splitlines():
        name, usage = line.split(" ", 1)
        amount = usage.split("/")[0].strip()
        number = amount.rstrip("BKMGiak")
        found[name] = float(number) * units[amount[len(number):]]
    return found


def report(launch_times: list[float], docker_times: list[float], launched: list[str]) -> int:
    """Print the figures and targets; 1 when a target is missed."""
    launch_median = statistics.median(launch_times)
    docker_median = statistics.median(docker_times)
    ratio = launch_median / docker_median
    print(f"rounds: {ROUNDS}")
    print(f"trial launch            median {launch_median * 1000:8.0f} ms  (min {min(launch_times) * 1000:.0f})")
    print(f"hardened docker run -d  median {docker_median * 1000:8.0f} ms  (min {min(docker_times) * 1000:.0f})")

    time.sleep(2)  # let sshd and the init settle before reading idle memory
    memory = idle_memory_mib([f"trial-{trial_id}-sandbox" for trial_id in launched])
    worst = max(memory.values())
    print(f"idle sandbox memory (docker stats, {len(memory)} sandboxes): "
          f"median {statistics.median(memory.values()):.1f} MiB, max {worst:.1f} MiB")

    missed = []
    print("\nratios and targets")
    print(f"  launch / hardened docker run  {ratio:5.2f}x   target ≤ {MAX_LAUNCH_RATIO:.0f}x   "
          f"{'ok' if ratio <= MAX_LAUNCH_RATIO else 'MISSED'}")
    if ratio > MAX_LAUNCH_RATIO:
        missed.append("launch ratio")
    print(f"  idle sandbox memory max       {worst:5.1f} MiB  target ≤ {MAX_IDLE_MIB:.0f} MiB  "
          f"{'ok' if worst <= MAX_IDLE_MIB else 'MISSED'}")
    if worst > MAX_IDLE_MIB:
        missed.append("idle memory")
    if missed:
        print(f"launch bench: target missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="trial-bench-"))
    env = {**os.environ, "TRIAL_HOME": str(home), "TRIAL_SERVICE_PORT": str(free_port()),
           "TRIAL_TEMPLATES_DIR": os.environ.get("TRIAL_TEMPLATES_DIR", str(ROOT / "trial_templates")),
           "TRIAL_SANDBOX_BASE_IMAGE": os.environ.get("TRIAL_BASE_IMAGE", "trial-base:bookworm"),
           "TRIAL_FORGE_ON_TEARDOWN": "delete"}
    launched: list[str] = []
    containers: list[str] = []
    try:
        warm = trial(env, "launch", TEMPLATE, "--candidate", "bench-warmup", "--agent", "none")
        image = str(warm["image"])
        warm_id = str(warm["trial"]["id"])
        launched.append(warm_id)
        sandbox = f"trial-{warm_id}-sandbox"
        flags = hardened_flags(sandbox)
        command = container_command(sandbox)
        print(f"image: {image} (built by the warm-up launch, not counted)")
        print(f"baseline: docker run -d {' '.join(flags)} {image} {' '.join(command)}")
        launch_times: list[float] = []
        docker_times: list[float] = []
        for round_no in range(ROUNDS):
            def run_launch(n: int = round_no) -> None:
                data = trial(env, "launch", TEMPLATE, "--candidate", f"bench-{n}", "--agent", "none")
                launched.append(str(data["trial"]["id"]))

            def run_docker(n: int = round_no) -> None:
                name = f"trial-bench-{os.getpid()}-{n}"
                subprocess.run(["docker", "run", "-d", "--name", name, "--label", "trial.managed-by=trial",
                                *flags, image, *command], check=True, capture_output=True)
                containers.append(name)

            # Alternate which goes first so neither always follows the other's leftovers.
            if round_no % 2:
                docker_times.append(timed(run_docker))
                launch_times.append(timed(run_launch))
            else:
                launch_times.append(timed(run_launch))
                docker_times.append(timed(run_docker))
        return report(launch_times, docker_times, launched)
    finally:
        for trial_id in launched:
            subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "teardown", trial_id, "--yes",
                            "--delete-repo"], env=env, capture_output=True, check=False)
        for name in containers:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], env=env,
                       capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
