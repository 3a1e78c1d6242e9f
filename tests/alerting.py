"""What the alert tests share: a loopback webhook receiver that can misbehave, and runs
saved the way the runner saves them."""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib import clock, history


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1. `answers` is the status of each next POST (the last
    one repeats); `stall_s` holds every answer back that long (the client gives up first);
    `trickle` answers a header a byte every 0.05 s, until `release` is set."""

    answers: list[int] = field(default_factory=lambda: [204])
    stall_s: float = 0.0
    trickle: bool = False
    location: str | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def take(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.received.append(Received(path, headers, body))
            index = len(self.received) - 1
        return self.answers[min(index, len(self.answers) - 1)]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.take(self.path, dict(self.headers.items()), body)
            if receiver.trickle:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                while not receiver.release.wait(0.05):  # a header that never ends
                    self.wfile.write(b"a")
                    self.wfile.flush()
                return
            if receiver.stall_s:
                receiver.release.wait(receiver.stall_s)
            self.send_response(status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    return Handler


def result(model: str, **figures: Any) -> dict[str, Any]:
    """One model's result as the engine records it (success unless `error_type` is given)."""
    failed = "error_type" in figures
    record: dict[str, Any] = {
        "provider": model.partition("/")[0], "model": model, "model_id": model.partition("/")[2],
        "run": 1, "runs": 1, "context_tokens": 0, "ttft_ms": None, "ttfo_ms": None,
        "total_time_s": 1.0, "output_tokens": 0 if failed else 100, "input_tokens": 10,
        "tokens_per_second": None, "input_tokens_per_second": None, "output_speed_tps": None,
        "itl_ms": None, "itl_p50_ms": None, "itl_p99_ms": None, "cost": 0.0, "cost_known": True,
        "usage_reported": True, "success": not failed, "error_type": None, "error": None,
    }
    record.update(figures)
    if failed:
        record["error"] = figures.get("error") or f"[{figures['error_type']}] it broke"
    return record


def save_run(fake_clock: Any, user_id: str, schedule_id: str | None, results: list[dict[str, Any]], *,
             source: str = "schedule") -> dict[str, Any]:
    """Save a run as the runner does, an hour after the previous one on the test's clock,
    and answer it as `alert_eval.evaluate` receives it."""
    fake_clock.advance(hours=1)
    metadata = {"source": source, "schedule_id": schedule_id, "schedule_name": "s", "job_id": uuid.uuid4().hex}
    run_id = history.save(history.NewRun(
        user_id=user_id, job_id=metadata["job_id"], started_at=clock.now_iso(), prompt="p", max_tokens=32,
        temperature=0.0, results=results, metadata=metadata, source=source,
    ))
    return {"id": run_id, "source": source, "results": results, "metadata": metadata}


def wait_until(check, timeout_s: float = 10.0) -> bool:
    """For servers in other threads: poll `check` until true (never a fixed sleep)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False
