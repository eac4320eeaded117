"""`python3 -m prefs --port 8080`: run the preferences API."""

from __future__ import annotations

import argparse

from prefs.server import create_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="prefs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = create_server(args.host, args.port)
    print(f"listening on {args.host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
