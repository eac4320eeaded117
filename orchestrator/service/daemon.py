"""Running the host service: in the foreground (`trial serve`), detached (on launch), stopped.

The service must outlive the operator's terminal, so launch starts it in its own session
with its output in `<home>/logs/service.log` and its pid in `<home>/service.pid`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.errors import PrerequisiteError
from orchestrator.logging import get_logger

log = get_logger(component="service")
HEALTH_TIMEOUT_S = 20.0


def pid_path(settings: Settings) -> Path:
    return settings.home / "service.pid"


def local_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.service.port}"


def sandbox_url(settings: Settings) -> str:
    """How containers reach the service (host.docker.internal → the bridge gateway)."""
    return f"http://{settings.service.sandbox_host}:{settings.service.port}"


def health(settings: Settings, timeout: float = 2.0) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"{local_url(settings)}/healthz", timeout=timeout) as response:  # noqa: S310
            data: dict[str, object] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def docker_bridge_gateway() -> str | None:
    """The address containers on the default bridge reach the host at (host-gateway)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            config = client.networks.get("bridge").attrs["IPAM"]["Config"]
        finally:
            client.close()
        for entry in config:
            if entry.get("Gateway"):
                return str(ipaddress.ip_address(entry["Gateway"]))
            if entry.get("Subnet"):
                # Docker gives the bridge the subnet's first host address when IPAM names no gateway.
                subnet = ipaddress.ip_network(entry["Subnet"])
                if subnet.version == 4:
                    return str(next(subnet.hosts()))
    except Exception:
        return None
    return None


def bind_addresses(settings: Settings) -> list[str]:
    if settings.service.bind:
        return list(settings.service.bind)
    addresses = ["127.0.0.1"]
    bridge = docker_bridge_gateway()
    if bridge:
        addresses.append(bridge)
    return addresses


def serve_forever(settings: Settings) -> None:
    """Run the service in this process until SIGTERM/SIGINT."""
    import asyncio  # here, not at the top: `trial launch` imports this module only to find or start the service

    from aiohttp import web

    from orchestrator.service.app import create_app
    from orchestrator.store import Store

    store = Store.open(settings.home)
    app = create_app(settings, store)
    addresses = bind_addresses(settings)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        for host in addresses:
            await web.TCPSite(runner, host, settings.service.port, reuse_address=True).start()
        # The pid file only once the port is ours: a second service started while one already
        # serves (a health check that timed out on a loaded host) fails to bind, and must not
        # have replaced, then removed, the pid file that `stop` needs to find the first one.
        pid_file.write_text(str(os.getpid()))
        from orchestrator.gateway.server import tune_gc  # loaded already, by create_app

        tune_gc()
        log.info("service.listening", addresses=addresses, port=settings.service.port, home=str(settings.home))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    pid_file = pid_path(settings)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(main())
    finally:
        with contextlib.suppress(FileNotFoundError):
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        store.close()


def ensure_running(settings: Settings) -> dict[str, object]:
    """Start the service detached unless one for this data dir already answers."""
    status = health(settings)
    if status is not None:
        if status.get("home") != str(settings.home):
            raise PrerequisiteError(
                f"port {settings.service.port} is served by a trial service for {status.get('home')}",
                "set service.port (TRIAL_SERVICE_PORT) to a free port, or stop that service",
            )
        return status
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TRIAL_HOME": str(settings.home), "TRIAL_SERVICE_PORT": str(settings.service.port),
           "TRIAL_TEMPLATES_DIR": str(settings.templates_dir)}
    with (settings.logs_dir / "service.log").open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.main", "--log-format", "json", "serve"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        status = health(settings, timeout=1.0)
        if status is not None:
            log.info("service.started", url=local_url(settings))
            return status
        time.sleep(0.2)
    raise PrerequisiteError(f"the host service did not answer on {local_url(settings)} within "
                            f"{HEALTH_TIMEOUT_S:.0f} s", f"see {settings.logs_dir / 'service.log'}")


def stop(settings: Settings, timeout_s: float = 10.0) -> bool:
    """Stop the detached service of this data dir; False if none was running."""
    try:
        pid = int(pid_path(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_path(settings).unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _exited(pid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_path(settings).unlink(missing_ok=True)
    return True


def _exited(pid: int) -> bool:
    """Whether the service process is gone. A service this very process started (a launch in the
    same process: tests, scripts) stays a zombie until reaped, and a zombie still answers kill(0):
    it is reaped here, or stop would wait its whole timeout for a process that already ended."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return True
    except ChildProcessError:
        pass  # not our child: its parent (or init) reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
