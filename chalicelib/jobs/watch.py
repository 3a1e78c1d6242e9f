"""A running job's watch: keeps its lease alive and notices a cancel request or the deadline.

The runner starts one per job while models stream (DESIGN §2: running jobs hold a lease;
the tick reaps those whose lease ran out).
"""
from __future__ import annotations

import logging
import threading
import time

from chalicelib import config
from chalicelib.jobs import lifecycle

log = logging.getLogger(__name__)


class Watch:
    """Keeps the lease alive while models stream and notices a cancel request.

    The cancel flag lives in DynamoDB; a stream cannot read it per chunk, so this thread
    renews the lease every `RUNNER_POLL_SECONDS` and learns the flag from that same write.
    Streams poll `should_stop` after every chunk, so they stop within one chunk of it.
    """

    def __init__(self, job_id: str, deadline: float | None):
        self.job_id = job_id
        self.deadline = deadline
        self._cancelled = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{job_id[:8]}", daemon=True)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def should_stop(self) -> bool:
        return self._cancelled.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        period = config.float_setting("RUNNER_POLL_SECONDS", 3.0)
        while not self._stopped.wait(period):
            try:
                if lifecycle.heartbeat(self.job_id):
                    self.cancel()
            except Exception:
                log.warning("runner: heartbeat of %s failed", self.job_id, exc_info=True)
