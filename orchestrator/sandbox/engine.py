"""A small Docker Engine API client for the calls a launch makes, without the Docker SDK.

The SDK costs a launch ~50-110 ms of imports (requests, urllib3, charset_normalizer, idna: CPU
on a host that other trials share) and a `GET /version` per client, for the dozen requests a launch
sends: inspect, create, start, put archive, exec, the logs of a start that failed. `DockerBackend`
sends those through `Engine`; everything else (builds, gc listings, stop and remove, copy out)
still goes through the SDK, imported when first needed.

Transport: a local `unix://` socket or a plain `tcp://` address straight over `http.client`.
Any other engine (`ssh://`, TLS through DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) goes through the
SDK's own session, so every engine the SDK reaches is reached the same way.

Paths are unversioned: the engine answers in its own API version, as the SDK's `version="auto"`
did after asking for it. A status of 400 or more raises `EngineError` with the engine's own
message; an address that does not answer raises `EngineUnreachable`, an answer slower than the
timeout `EngineTimeout` (the caller says which).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

FRAME_HEADER = struct.Struct(">BxxxL")
"""A multiplexed stream's frame: stream (1 stdout, 2 stderr), three zero bytes, payload length."""


class EngineError(Exception):
    """The engine refused a request (status >= 400)."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status}: {explanation}")
        self.status = status
        self.explanation = explanation

    @property
    def not_found(self) -> bool:
        return self.status == 404


class EngineUnreachable(Exception):
    """The engine's address did not answer (refused, missing socket, connection dropped)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(detail)
        self.url = url


class EngineTimeout(Exception):
    """The engine took longer than the client's timeout to answer."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(detail)
        self.url = url


@contextmanager
def _transport_errors(url: str) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:  # socket.timeout
        raise EngineTimeout(url, str(exc) or "timed out") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise EngineUnreachable(url, f"{type(exc).__name__}: {exc}") from exc


class Response(Protocol):
    status: int

    def read(self, amount: int | None = None) -> bytes: ...

    def close(self) -> None: ...


Transport = Callable[[str, str, bytes | None, Mapping[str, str], float, bool], Response]
"""(method, path with query, body, headers, timeout, stream) -> an open response. The timeout bounds
connecting and the answer's headers; with `stream` the body is then read with no timeout (a command's
output may stay silent as long as the command works), otherwise each read is bounded too."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _ClosingResponse:
    """An `http.client` response that closes its connection with it (one connection per request:
    the calls run from several threads, and a unix socket connects in microseconds)."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
                 url: str) -> None:
        self._connection = connection
        self._response = response
        self._url = url
        self.status = response.status

    def read(self, amount: int | None = None) -> bytes:
        with _transport_errors(self._url):
            return self._response.read(amount)

    def close(self) -> None:
        self._response.close()
        self._connection.close()


def http_transport(url: str) -> Transport | None:
    """Requests over `http.client` for a unix socket or a plain tcp address; None for anything else."""
    parsed = urllib.parse.urlparse(url)
    tls = bool(os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"))
    if parsed.scheme == "unix":
        # `unix://var/run/docker.sock` is `/var/run/docker.sock`, as the SDK and the CLI read it.
        socket_path = "/" + (parsed.netloc + parsed.path).lstrip("/")

        def connect(timeout: float | None) -> http.client.HTTPConnection:
            return _UnixConnection(socket_path, timeout)
    elif parsed.scheme in ("tcp", "http") and not tls and parsed.hostname:
        host, port = parsed.hostname, parsed.port or 2375

        def connect(timeout: float | None) -> http.client.HTTPConnection:
            return http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        return None

    def send(method: str, path: str, body: bytes | None, headers: Mapping[str, str],
             timeout: float, stream: bool) -> Response:
        connection = connect(timeout)
        try:
            with _transport_errors(url):
                connection.request(method, path, body=body, headers=dict(headers))
                sock = connection.sock  # getresponse lets go of it when the answer ends the connection
                response = connection.getresponse()
                if stream and sock is not None:
                    sock.settimeout(None)
                return _ClosingResponse(connection, response, url)
        except BaseException:
            connection.close()
            raise

    return send


def sdk_transport(api: Any, url: str | None = None) -> Transport:
    """Requests through a Docker SDK `APIClient` (a requests session): ssh:// and TLS engines.
    `url`: the engine's address as configured, for errors (the session's own is `http+docker://…`)."""
    named = url or str(api.base_url)

    class _Wrapped:
        def __init__(self, response: Any) -> None:
            self._response = response
            self.status = int(response.status_code)

        def read(self, amount: int | None = None) -> bytes:
            # urllib3's own errors, as http_transport's reads raise ours (the SDK has loaded urllib3).
            from urllib3.exceptions import HTTPError, ReadTimeoutError

            try:
                return bytes(self._response.raw.read(amount))
            except ReadTimeoutError as exc:
                raise EngineTimeout(named, str(exc) or "timed out") from exc
            except (HTTPError, OSError) as exc:
                raise EngineUnreachable(named, f"{type(exc).__name__}: {exc}") from exc

        def close(self) -> None:
            self._response.close()

    def send(method: str, path: str, body: bytes | None, headers: Mapping[str, str],
             timeout: float, stream: bool) -> Response:
        # requests' read timeout covers the headers and every read alike: a stream gets none.
        response = api.request(method, f"{api.base_url}{path}", data=body, headers=dict(headers),
                               stream=True, timeout=(timeout, None) if stream else timeout)
        return _Wrapped(response)

    return send


def quote(part: str) -> str:
    """A name or id inside a path, quoted as the SDK quotes it."""
    return urllib.parse.quote(part, safe="/:")


class Engine:
    """The engine's API as JSON in, JSON out (plus the raw streams of archives and exec)."""

    def __init__(self, transport: Transport, *, timeout_s: float) -> None:
        self._send = transport
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, data: bytes | None = None, content_type: str = "application/json",
                wait: bool = False) -> Response:
        """An open response with a status below 400 (the caller reads and closes it). `wait`: no
        timeout on reading its body once the engine has answered (a stream that stays silent while
        its command works); connecting and the answer itself stay bounded (a hung engine)."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers: dict[str, str] = {}
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        response = self._send(method, target, data, headers, self.timeout_s, wait)
        if response.status >= 400:
            try:
                raw = response.read()
            finally:
                response.close()
            raise EngineError(response.status,
                              _message(raw) or f"the engine answered HTTP {response.status} with no message")
        return response

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The request's JSON answer (None for an empty one)."""
        response = self.request(method, path, **options)
        try:
            raw = response.read()
        finally:
            response.close()
        return json.loads(raw) if raw.strip() else None

    def inspect(self, kind: str, key: str) -> dict[str, Any] | None:
        """`GET /{kind}/{key}/json` (containers, images), or `/networks/{key}`; None when not found."""
        path = f"/networks/{quote(key)}" if kind == "networks" else f"/{kind}/{quote(key)}/json"
        try:
            found: dict[str, Any] = self.call("GET", path)
        except EngineError as exc:
            if exc.not_found:
                return None
            raise
        return found

    def ping(self) -> None:
        response = self.request("GET", "/_ping")
        try:
            response.read()
        finally:
            response.close()

    def put_archive(self, container: str, path: str, tar_bytes: bytes) -> bool:
        response = self.request("PUT", f"/containers/{quote(container)}/archive", params={"path": path},
                                data=tar_bytes, content_type="application/x-tar")
        try:
            response.read()
        finally:
            response.close()
        return response.status == 200

    def exec_run(self, exec_id: str) -> tuple[bytes, bytes]:
        """Start a created exec and read its stdout and stderr to the end (no timeout: the command
        itself is bounded, see `DockerBackend.exec`)."""
        response = self.request("POST", f"/exec/{quote(exec_id)}/start", body={"Detach": False, "Tty": False},
                                wait=True)
        return read_frames(response)

    def logs(self, container: str, tail: int) -> bytes:
        """The last `tail` lines of a (non-tty) container's stdout and stderr, in order."""
        response = self.request("GET", f"/containers/{quote(container)}/logs",
                                params={"stdout": 1, "stderr": 1, "tail": tail})
        out: list[bytes] = []
        for _stream, payload in _frames(response):
            out.append(payload)
        return b"".join(out)


def read_frames(response: Response) -> tuple[bytes, bytes]:
    """A multiplexed stream split into (stdout, stderr), read until the engine closes it."""
    streams: dict[int, list[bytes]] = {1: [], 2: []}
    for stream, payload in _frames(response):
        streams.setdefault(stream, []).append(payload)
    return b"".join(streams[1]), b"".join(streams[2])


def _frames(response: Response) -> Any:
    """(stream, payload) until the engine closes the stream between two frames. A stream that ends
    inside a frame was cut (the connection dropped): short output must not pass for all of it."""
    try:
        while True:
            header = _read_exactly(response, FRAME_HEADER.size)
            if not header:
                return
            if len(header) < FRAME_HEADER.size:
                raise EngineUnreachable("", "the engine's stream ended inside a frame header")
            stream, length = FRAME_HEADER.unpack(header)
            payload = _read_exactly(response, length)
            if len(payload) < length:
                raise EngineUnreachable("", f"the engine's stream ended inside a frame ({len(payload)} of "
                                            f"{length} bytes)")
            yield stream, payload
    finally:
        response.close()


def _read_exactly(source: Response, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        chunk = source.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _message(raw: bytes) -> str:
    try:
        decoded = json.loads(raw)
    except ValueError:
        return " ".join(raw.decode(errors="replace").split())
    if isinstance(decoded, dict) and "message" in decoded:
        return " ".join(str(decoded["message"]).split())
    return " ".join(raw.decode(errors="replace").split())
