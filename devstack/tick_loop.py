"""The dev stack's EventBridge `rate(1 minute)` rule: a thread calling the app's `tick`.

The tick is called through its Lambda entry point (`app.tick(event, context)`, the
`@app.schedule` wrapper Chalice deploys) with the event EventBridge sends, so the code that
runs is the deployed one. `TICK_SECONDS` shortens the period (tests use 1 s).

One tick at a time, on a fixed rate: a tick that overruns the period is followed at once by
the next, never by two at once (EventBridge could overlap them; the tick is safe either
way, this only keeps the console quiet). The first tick runs right at start, as a rule's
first firing lands somewhere within its first minute; a schedule that fell due while the
stack was down runs without waiting a full period.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

log = logging.getLogger("devstack.tick")

TickCall = Callable[[dict[str, Any]], Any]


def scheduled_event(region: str, account: str, rule_arn: str) -> dict[str, Any]:
    """The event EventBridge delivers for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def did_something(summary: Any) -> bool:
    """A tick's summary (`{"redispatched", "due", "claimed", "dispatched"}`) with any
    non-zero count: worth one console line; idle ticks stay silent."""
    return isinstance(summary, dict) and any(
        isinstance(value, (int, float)) and value for value in summary.values()
    )


class TickLoop:
    def __init__(self, call: TickCall, period_s: float, *, region: str, account: str, rule_arn: str) -> None:
        self._call = call
        self.period_s = period_s
        self._region, self._account, self._rule_arn = region, account, rule_arn
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tick", daemon=True)

    def start(self) -> "TickLoop":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """No new tick starts; a running one may finish (it is a few DynamoDB calls)."""
        self._stopped.set()
        self._thread.join(timeout_s)

    def tick_once(self) -> Any:
        started = time.monotonic()
        summary = self._call(scheduled_event(self._region, self._account, self._rule_arn))
        if did_something(summary):
            log.info("tick: %s in %.0f ms", _describe(summary), 1000 * (time.monotonic() - started))
        return summary

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stopped.is_set():
            try:
                self.tick_once()
            except Exception:  # a failed tick is logged; the next one tries again
                log.exception("tick failed")
            next_at = max(next_at + self.period_s, time.monotonic())
            self._stopped.wait(max(0.0, next_at - time.monotonic()))


def _describe(summary: dict[str, Any]) -> str:
    return ", ".join(f"{value} {name}" for name, value in summary.items() if value)
