"""A webhook receiver on loopback: where the app's alert webhooks land in the local stack.

- `POST <any path>`: answered 200 and logged as one console line,
  `webhook <path> event=<X-Event-Id> <the body's first 300 characters>`;
- `GET /events`: the last 100 deliveries, oldest first, as JSON
  `[{path, headers, body, received_at}]` (for tests, and for a curious developer).

Bounded: a body over 1 MiB is refused with 413 before it is read, and only the last 100
deliveries are kept. Its URL (`http://127.0.0.1:<port>/hook`) is exported to the app as
`DEVSTACK_WEBHOOK_URL`.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from devstack.http_server import BackgroundServer

log = logging.getLogger("devstack.webhook")

MAX_BODY = 1024 * 1024
KEPT = 100
LOGGED_CHARS = 300


class WebhookSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self._server = BackgroundServer(host, port, _make_handler(self), "webhook-sink")

    @property
    def url(self) -> str:
        """The URL to configure as a webhook."""
        return f"{self._server.url}/hook"

    def start(self) -> WebhookSink:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        event = {
            "path": path,
            "headers": headers,
            "body": text,
            "received_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        with self._lock:
            self._events.append(event)
        shown = "".join(c if c.isprintable() else " " for c in text[:LOGGED_CHARS])
        log.info("webhook %s event=%s %s", path, headers.get("X-Event-Id", "-"), shown)


def _make_handler(sink: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devstack-webhook"
        # Headers and body leave as two writes: with Nagle on, the second waits for the
        # client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            raw = self.headers.get("Content-Length")
            if raw is None or not raw.isdigit():
                self._answer(411, {"error": "Content-Length is required"}, close=True)
                return
            if int(raw) > MAX_BODY:
                self._answer(413, {"error": f"Body too large: the limit is {MAX_BODY} bytes"}, close=True)
                return
            body = self.rfile.read(int(raw))
            sink.receive(self.path, dict(self.headers.items()), body)
            self._answer(200, {"status": "ok"})

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] == "/events":
                self._answer(200, sink.events())
            else:
                self._answer(404, {"error": "Not found: GET /events lists what was received"})

        def do_PUT(self) -> None:  # noqa: N802
            self._answer(405, {"error": "POST a webhook, or GET /events"}, close=True)

        do_DELETE = do_PATCH = do_OPTIONS = do_PUT  # noqa: N815

        def _answer(self, status: int, doc: Any, close: bool = False) -> None:
            data = json.dumps(doc).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:  # the unread body must not be taken for the next request
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

    return Handler
