"""A loopback HTTP server that answers with whatever bytes a test scripts.

The fake providers (devstack/fake_providers.py) speak the wire formats correctly;
this one exists to break them: endless events, bodies without a newline, gzip bombs,
messages that echo the key at a chosen offset. A test gives it ``respond(request)``,
which returns the status, headers and an iterable of body chunks; chunks are sent
with chunked transfer encoding as they come, until the client goes away.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/event-stream"),)
    chunks: Iterable[bytes] = ()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null"))
        self.server.requests.append(request)
        answer = self.server.respond(request)
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in answer.chunks:
                if chunk:  # size line and data written apart: no copy of a big chunk
                    self.wfile.write(b"%x\r\n" % len(chunk))
                    self.wfile.write(chunk)
                    self.wfile.write(b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading, as it should


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], respond: Callable[[Request], Answer]) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class HostileServer:
    """``with HostileServer(respond) as srv: srv.url`` — one scripted answer per request."""

    def __init__(self, respond: Callable[[Request], Answer], host: str = "127.0.0.1") -> None:
        self._server = _Server((host, 0), respond)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def __enter__(self) -> "HostileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
