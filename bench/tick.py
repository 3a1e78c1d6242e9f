"""Tick benchmark against moto: what one tick reads, how fast it claims and dispatches, and
how many ticks a backlog takes to drain.

1. DynamoDB items read per tick (the `ScannedCount` DynamoDB bills, summed over the tick's
   queries) with 10,000 and 100,000 schedules of which 100 are due. The sparse `due` GSI
   means it must not grow with the total.
2. Claiming and dispatching 1,000 due schedules: the tick as written (parallel) against
   the same work one at a time. moto answers in microseconds and serializes DynamoDB, so
   both runs add the network latency AWS has (`BENCH_DDB_MS`, default 8 ms per DynamoDB
   request; `BENCH_INVOKE_MS`, default 25 ms per async Invoke) by sleeping in a botocore
   hook; the ratio is what the parallelism buys.

3. A backlog: `BENCH_BACKLOG` (20,000) schedules all due at once, drained by ticks one
   simulated minute apart, each given a Lambda's 60 s (`remaining_ms`, as `app.tick` passes
   it) and the default margin; target: drained in ≤ 3 ticks, every job dispatched exactly
   once. The tick's clock is `bench/lambda_clock.py`'s: what a tick Lambda with one vCPU
   (1,769 MB) would spend, not this process's wall time (moto's work excluded; the wall
   time is printed too).

Run: `python bench/tick.py` (`BENCH_BIG=0` skips the 100,000-schedule case, ~2 min;
`BENCH_PARTS=3` runs only the backlog, ~15 min here).
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

from moto_env import isolate

isolate()

from moto import mock_aws  # noqa: E402

from chalicelib import aws_clients, clock, dispatch, schedules, tables, tick  # noqa: E402
from chalicelib.tables import JobModel, ScheduleModel  # noqa: E402
from devstack.moto_serial import serialize_dynamodb  # noqa: E402
from lambda_clock import MOTO, LambdaClock  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DDB_MS = float(os.environ.get("BENCH_DDB_MS", "8"))
INVOKE_MS = float(os.environ.get("BENCH_INVOKE_MS", "25"))
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "20000"))
LAMBDA_TIMEOUT_MS = 60_000  # the tick function's timeout (.chalice/config.json)


class Meter:
    """Counts DynamoDB requests and items read, and adds simulated AWS latency."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.items_read = 0
        self.invokes = 0
        self.invoked: dict[str, int] = {}
        self.latency = False
        self.clock = LambdaClock(parallel=tick.MAX_PARALLEL)

    def before_ddb(self, **_) -> None:
        with self.lock:
            self.requests += 1
        if self.latency:
            self.clock.wait(DDB_MS)

    def after_ddb(self, parsed, **_) -> None:
        scanned = parsed.get("ScannedCount")
        if scanned is None:
            scanned = 1 if parsed.get("Item") else 0
        with self.lock:
            self.items_read += scanned

    def invoke(self, params, **_):
        from botocore.awsrequest import AWSResponse

        if self.latency:
            self.clock.wait(INVOKE_MS)
        job_id = json.loads(params["body"])["job_id"]
        with self.lock:
            self.invokes += 1
            self.invoked[job_id] = self.invoked.get(job_id, 0) + 1
        return AWSResponse("", 202, {}, None), {"StatusCode": 202}

    def reset(self) -> None:
        self.requests = self.items_read = self.invokes = 0
        self.invoked: dict[str, int] = {}


def install(meter: Meter) -> None:
    client = tables._shared_connection().client  # every table's and transaction's
    client.meta.events.register("before-call.dynamodb", meter.before_ddb)
    client.meta.events.register("after-call.dynamodb", meter.after_ddb)
    aws_clients.reset()
    dispatch.lambda_client().meta.events.register("before-call.lambda.Invoke", meter.invoke)


def seed(total: int, due: int) -> None:
    """`total` enabled schedules of which `due` are due at NOW (the rest due later)."""
    with ScheduleModel.batch_write() as batch:
        for i in range(total):
            schedule_id = f"{i:032x}"
            next_run = NOW - timedelta(minutes=1) if i < due else NOW + timedelta(hours=1 + i % 700)
            batch.save(ScheduleModel(
                f"user{i % 500}", schedule_id, name=f"s{i}", prompt="p", models=["demo/fast"],
                max_tokens=16, temperature=0.0, interval_hours=24, enabled=True,
                next_run=clock.iso(next_run), created_at=clock.iso(NOW), updated_at=clock.iso(NOW),
                due_shard=schedules.due_shard(schedule_id),
            ))


@contextmanager
def seeded(total: int, due: int) -> Iterator[Meter]:
    """A fresh moto holding `total` schedules, `due` of them due; its meter reset."""
    with mock_aws():
        tables.create_tables()
        meter = Meter()
        install(meter)
        started = time.perf_counter()
        seed(total, due)
        print(f"  seeded {total:,} schedules ({due:,} due) in {time.perf_counter() - started:.0f} s", flush=True)
        meter.reset()
        yield meter


def items_read_per_tick(total: int, due: int = 100) -> tuple[int, int, int]:
    with seeded(total, due) as meter:
        report = tick.run(NOW)
        assert len(report.claimed) == due, report.summary()
        print(f"  {total:>7,} schedules, {due} due: items read by the tick {meter.items_read:>4}, "
              f"DynamoDB requests {meter.requests}, claimed {len(report.claimed)}", flush=True)
        return meter.items_read, meter.requests, len(report.claimed)


def claim_and_dispatch(due: int, parallel: bool) -> float:
    with mock_aws():
        tables.create_tables()
        meter = Meter()
        install(meter)
        seed(due, due)
        meter.latency = True
        saved = tick.MAX_PARALLEL, dispatch.MAX_PARALLEL_INVOKES
        if not parallel:
            tick.MAX_PARALLEL = dispatch.MAX_PARALLEL_INVOKES = 1
        try:
            started = time.perf_counter()
            report = tick.run(NOW)
            elapsed = time.perf_counter() - started
        finally:
            tick.MAX_PARALLEL, dispatch.MAX_PARALLEL_INVOKES = saved
        assert len(report.claimed) == due and meter.invokes == due
        return elapsed


def drain_backlog(total: int, max_ticks: int = 6) -> None:
    """`total` schedules all due; ticks a minute apart until none is due."""
    with seeded(total, total) as meter:
        meter.latency = True
        os.environ["DISPATCH_GRACE_SECONDS"] = "3600"  # measure the claims: no job counts as lost
        claimed = 0
        for number in range(1, max_ticks + 1):
            now = NOW + timedelta(minutes=number - 1)
            clock.use(lambda now=now: now)
            lambda_time = meter.clock
            lambda_time.start()
            report = tick.run(now, remaining_ms=lambda: int(LAMBDA_TIMEOUT_MS - 1000 * lambda_time.elapsed()))
            claimed += len(report.claimed)
            print(f"  tick {number}: due read {report.due:>6,}  claimed {len(report.claimed):>6,}  "
                  f"dispatched {report.dispatched:>6,}  left due {report.left_due:>6,}  "
                  f"Lambda time {lambda_time.elapsed():5.1f} s (tick CPU {lambda_time.cpu():5.1f} s, "
                  f"moto CPU {lambda_time.moto():5.1f} s, wall {lambda_time.wall():5.1f} s)", flush=True)
            if report.due == 0 or claimed >= total:
                break
        clock.use(None)
        twice = sum(1 for count in meter.invoked.values() if count > 1)
        jobs_made = JobModel.count()
        drained = claimed == total == jobs_made == len(meter.invoked)
        verdict = "PASS" if drained and twice == 0 and number <= 3 else "FAIL"
        print(f"  drained in {number} ticks: {claimed:,} claimed, {jobs_made:,} jobs, "
              f"{len(meter.invoked):,} dispatched, {twice} dispatched twice ({verdict}: ≤ 3 ticks, none twice)")


def main() -> None:
    MOTO.install()
    serialize_dynamodb()
    parts = os.environ.get("BENCH_PARTS", "123")
    if "1" in parts:
        print("1. DynamoDB items read per tick (must not grow with the total)")
        small = items_read_per_tick(10_000)
        if os.environ.get("BENCH_BIG", "1") != "0":
            big = items_read_per_tick(100_000)
            verdict = "PASS" if big[0] == small[0] else "FAIL"
            print(f"  10,000 → 100,000 schedules: items read {small[0]} → {big[0]} ({verdict})")
    if "2" in parts:
        print(f"2. Claim and dispatch 1,000 due schedules (simulated latency: DynamoDB {DDB_MS:g} ms, "
              f"Invoke {INVOKE_MS:g} ms)")
        parallel = claim_and_dispatch(1000, parallel=True)
        print(f"  tick (parallel):  {parallel:6.1f} s")
        serial = claim_and_dispatch(1000, parallel=False)
        print(f"  one at a time:    {serial:6.1f} s")
        print(f"  ratio: {serial / parallel:.1f}x faster in parallel "
              f"({'PASS' if parallel < 60 else 'FAIL'}: within one tick's 60 s)")
    if "3" in parts:
        print(f"3. A backlog of {BACKLOG:,} due schedules, one tick a minute (60 s Lambda, "
              f"latency as in 2)")
        drain_backlog(BACKLOG)


if __name__ == "__main__":
    main()
