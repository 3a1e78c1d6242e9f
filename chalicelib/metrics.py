"""The app's CloudWatch metrics, in Embedded Metric Format (EMF).

An emit is one JSON line on stdout; CloudWatch Logs turns the lines of a Lambda's log into
metrics. No PutMetricData call: no IAM permission, no latency, nothing to fail. The
namespace is the setting `METRICS_NAMESPACE` (the template sets `benchmark-scheduler-
<stage>`); without it nothing is written, so the dev stack's and the tests' output stays
clean. Metrics carry no dimensions: one stack, one namespace; alarms name them as below.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator, Mapping

from chalicelib import clock

NAMESPACE_SETTING = "METRICS_NAMESPACE"

# The tick, once per run.
TICK_RUNS = "TickRuns"  # 1 per completed tick: the "no tick for 5 minutes" alarm
DUE = "Due"
CLAIMED = "Claimed"
DISPATCHED = "Dispatched"
REDISPATCHED = "Redispatched"  # lost jobs the tick handed to a runner again
TICK_LAG = "TickLagSeconds"  # now − the oldest `next_run` the tick found due
# Jobs, once per job that ends, by how.
JOB_ENDED = {
    "done": "JobsDone",
    "failed": "JobsFailed",
    "cancelled": "JobsCancelled",
    "interrupted": "JobsInterrupted",
}
RUNNER_DURATION = "RunnerDurationSeconds"  # per runner invocation
WEBSOCKET_POST_FAILURES = "WebSocketPostFailures"  # a post that failed other than 410 Gone
WEBHOOK_FAILURES = "WebhookFailures"  # a webhook alert that could not be delivered

UNITS = {TICK_LAG: "Seconds", RUNNER_DURATION: "Seconds"}  # every other metric is a Count

_lock = threading.Lock()


def emit(values: Mapping[str, float]) -> None:
    """Write one EMF document with these metric values (nothing without a namespace)."""
    namespace = os.environ.get(NAMESPACE_SETTING)
    if not namespace or not values:
        return
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": UNITS.get(name, "Count")} for name in values],
            }],
        },
        **{name: value for name, value in values.items()},
    }
    line = json.dumps(document, separators=(",", ":")) + "\n"
    with _lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def count(name: str, value: float = 1) -> None:
    emit({name: value})


def tick(summary: Mapping[str, int], oldest_due: str | None, now: datetime) -> None:
    """The tick's run: `summary` as `TickReport.summary()` gives it; `oldest_due` is the
    earliest `next_run` it found due (None: nothing was due)."""
    values: dict[str, float] = {
        TICK_RUNS: 1,
        DUE: summary.get("due", 0),
        CLAIMED: summary.get("claimed", 0),
        DISPATCHED: summary.get("dispatched", 0),
        REDISPATCHED: summary.get("redispatched", 0),
    }
    if oldest_due is not None:
        values[TICK_LAG] = round(max(0.0, (now - clock.parse(oldest_due)).total_seconds()), 3)
    emit(values)


def job_ended(status: str) -> None:
    name = JOB_ENDED.get(status)
    if name:
        count(name)


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Emit the block's duration in seconds as `name`, however it ends."""
    started = time.monotonic()
    try:
        yield
    finally:
        count(name, round(time.monotonic() - started, 3))
