"""A running job's watch: keeps its lease alive and notices a cancel request or the deadline.

The runner starts one per job while models stream (DESIGN §2: running jobs hold a lease;
the tick reaps those whose lease ran out).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

from chalicelib.jobs import lifecycle, rules

log = logging.getLogger(__name__)


class Watch:
    """Keeps the lease alive while models stream and notices a cancel request.

    Two periods, because the two things cost differently. Every `RUNNER_POLL_SECONDS`
    (2 s) it reads the job's small cancel signal: one read unit, so a cancel reaches the
    streams within that period. Every `JOB_LEASE_RENEW_SECONDS` (30 s) it renews the lease
    instead, a write of the job item and its `active` index entry, which also answers
    "still running, not cancelled?". Streams poll `should_stop` after every chunk, so they
    stop within one chunk of the flag.

    `wait(seconds)` is how the loop waits between polls (True: stop watching); tests pass
    their own to drive the loop without sleeping.
    """

    def __init__(self, job_id: str, deadline: float | None, *, wait: Callable[[float], bool] | None = None):
        self.job_id = job_id
        self.deadline = deadline
        self._cancelled = threading.Event()
        self._stopped = threading.Event()
        self._wait = wait or self._stopped.wait
        self._thread = threading.Thread(target=self.watch, name=f"watch-{job_id[:8]}", daemon=True)

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

    def watch(self) -> None:
        """The loop: poll, and on every n-th wake renew the lease instead (n = the renewal
        period in polls), until `wait` says stop."""
        poll = rules.cancel_poll_seconds()
        renew_every = max(1, math.floor(rules.lease_renew_seconds() / poll))
        wakes = 0
        while not self._wait(poll):
            wakes += 1
            try:
                if wakes % renew_every == 0:
                    stop = lifecycle.heartbeat(self.job_id)
                else:
                    stop = not self.cancelled and lifecycle.cancel_requested(self.job_id)
            except Exception:
                log.warning("runner: watch of %s failed", self.job_id, exc_info=True)
                continue
            if stop:
                self.cancel()
