"""The dev stack's small HTTP endpoints (Lambda `Invoke`, the webhook sink): a stdlib
threaded server, serving from a daemon thread until `stop()`."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How often an idle server loop looks for a stop: `shutdown()` waits up to that long (the
# stdlib's default, half a second, is most of a stack's Ctrl-C otherwise).
POLL_S = 0.05


class BackgroundServer:
    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._name = name

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, args=(POLL_S,), name=self._name, daemon=True).start()

    def stop(self) -> None:
        """Stop accepting and close the port (requests in progress finish in their threads)."""
        self._server.shutdown()
        self._server.server_close()
