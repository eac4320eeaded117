"""`python -m orchestrator.gateway`: the gateway alone, without the rest of the host service.

For debugging and for tests that must kill a gateway process; operators run `trial serve`.
Settings come from trial.toml and TRIAL_* as usual; upstream keys from this environment.
Prints `READY <url>` once listening; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from orchestrator.config import load_settings
from orchestrator.gateway.server import MAX_REQUEST_BYTES, setup_gateway, tune_gc
from orchestrator.store import Store


async def serve(host: str, port: int) -> None:
    settings = load_settings()
    store = Store.open(settings.home)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    setup_gateway(app, settings, store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    tune_gc()
    bound = runner.addresses[0][1]
    print(f"READY http://{host}:{bound}", flush=True)  # the line a parent process waits for
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
