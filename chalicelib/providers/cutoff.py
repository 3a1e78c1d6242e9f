"""One deadline for a whole HTTP request, whatever the server trickles."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

__all__ = ["Cutoff"]


class Cutoff:
    """Ends a request at `until` (a `time.monotonic()` moment), even while a read is blocked.

    httpx's timeouts bound each read, not the request, so an answer trickled a byte at a
    time — headers or body — could hold a model's stream or a webhook delivery for
    minutes. httpcore reports each connection it opens to the request's `trace` extension
    (pass `extensions={"trace": cutoff.trace}`); while the cutoff is entered, a timer shuts
    that socket down when the time is up (`shutdown` wakes a blocked `recv`, `close` would
    not), and `fired` then tells the caller the resulting error is a timeout.
    """

    def __init__(self, until: float):
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._done = False
        self._timer = threading.Timer(max(0.0, until - time.monotonic()), self._fire)
        self._timer.daemon = True

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock
            if self._done:
                self._fire()

    def __enter__(self) -> Cutoff:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._sock = None

    def _fire(self) -> None:
        with self._lock:
            self._done = True
            if self._sock is None:
                return
            self.fired = True
            try:  # socket.socket.shutdown, not SSLSocket's, which drops its SSL object
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass
