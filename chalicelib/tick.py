"""The one-minute tick: claim due schedules and dispatch their jobs, and sweep dead jobs.

Safe to run twice at once and to be retried by EventBridge: a due schedule is claimed by ONE
transaction that advances its `next_run` only if it still holds the value this tick saw and
creates the job only if its id — derived from (schedule id, due time seen) — is new. Whoever
loses either condition created nothing.

Keeping up, whatever one user does:
- Claims come first: the sweep of dead and lost jobs (`jobs.reap`, bounded on its own) runs
  beside them in one thread, never before them.
- Each job is dispatched by the worker that claimed it, as soon as it is claimed; its
  `job_created` event goes to a separate small pool, off the claim path.
- Claiming starts with the first page of the `due` index, not after the last: each
  shard's reader hands its schedules (oldest first) to the claim workers as they arrive.
- Nothing new starts once the Lambda's remaining time falls below `TICK_DEADLINE_MARGIN_S`
  (10 s): what is not claimed stays due for the next tick, and unsent `job_created` events
  are dropped (the job's later events still go out).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator

from chalicelib import clock, config, dispatch, jobs, logs, metrics, schedules, writes
from chalicelib.tables import JobModel, ScheduleModel

log = logging.getLogger(__name__)

# Shard queries and claims are I/O bound; DynamoDB takes this many in flight with ease.
MAX_PARALLEL = 32
# Announcing is a courtesy to browser tabs: a few threads of its own, off the claims' path.
ANNOUNCERS = 4


@dataclass(frozen=True)
class Due:
    """A due schedule as the `due` index shows it (keys + interval: all a claim needs)."""

    user_id: str
    schedule_id: str
    next_run: str
    interval_hours: int


class Budget:
    """The tick's time: Lambda's remaining time (`remaining_ms`, from the context) less a
    margin to finish what is in flight and return. Without a context, no limit."""

    def __init__(self, remaining_ms: Callable[[], int] | None):
        self.remaining_ms = remaining_ms
        self.margin_ms = 1000 * config.float_setting("TICK_DEADLINE_MARGIN_S", 10.0)

    def spent(self) -> bool:
        return self.remaining_ms is not None and self.remaining_ms() <= self.margin_ms


@dataclass
class TickReport:
    due: int = 0  # due schedules read (reading stops too when time runs out)
    claimed: list[str] = field(default_factory=list)
    dispatched: int = 0
    left_due: int = 0  # read but not tried before the deadline: the next tick's
    announced: int = 0
    reaped: int = 0
    redispatched: int = 0
    oldest_claimed: str | None = None  # the earliest `next_run` claimed: the tick's lag

    def summary(self) -> dict:
        return {
            "due": self.due,
            "claimed": len(self.claimed),
            "dispatched": self.dispatched,
            "left_due": self.left_due,
            "announced": self.announced,
            "reaped": self.reaped,
            "redispatched": self.redispatched,
        }


def run(now: datetime | None = None, remaining_ms: Callable[[], int] | None = None) -> TickReport:
    now = now or clock.now()
    budget = Budget(remaining_ms)
    report = TickReport()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reap") as sweeper:
        sweep = sweeper.submit(_sweep, now, budget, report)
        _claim_and_dispatch(now, budget, report)
        sweep.result()
    log.info("tick: %s", report.summary())
    metrics.tick(report.summary(), report.oldest_claimed, now)
    return report


def due_in(shard: int, now: datetime) -> Iterator[Due]:
    """The enabled schedules of one `due` shard with `next_run <= now`, oldest first, page by
    page. Never a scan: items read grow with the due, not the total."""
    for item in ScheduleModel.due.query(shard, ScheduleModel.next_run <= clock.iso(now)):
        yield Due(item.user_id, item.schedule_id, item.next_run, int(item.interval_hours))


def find_due(now: datetime) -> list[Due]:
    """Every due schedule, oldest first (the tick itself claims them as the pages arrive)."""
    found = [due for shard in range(config.due_shards()) for due in due_in(shard, now)]
    return sorted(found, key=lambda due: due.next_run)


def job_id_for(schedule_id: str, due_time: str) -> str:
    """The same (schedule, due time) always names the same job: the claim's idempotency key."""
    return hashlib.sha256(f"{schedule_id}|{due_time}".encode()).hexdigest()[:32]


def claim(due: Due, now: datetime) -> JobModel | None:
    """Advance the schedule and create its job in one transaction; the job, or None when
    another tick, a retry, an edit or a disable got there first."""
    seen = clock.parse(due.next_run)
    following = schedules.next_on_phase(seen, due.interval_hours, now)
    job = jobs.build_job(
        schedules.JOB_TYPE,
        due.user_id,
        {"schedule_id": due.schedule_id, "due": due.next_run},
        job_id=job_id_for(due.schedule_id, due.next_run),
        schedule_id=due.schedule_id,
    )
    failed = (
        writes.Tx()
        .update(
            "schedule",
            ScheduleModel(due.user_id, due.schedule_id),
            [ScheduleModel.next_run.set(clock.iso(following))],
            schedules.still_due_at(due.next_run),
        )
        .put("job", job, jobs.NEW_JOB)
        .commit()
    )
    return None if failed else job


def _claim_and_dispatch(now: datetime, budget: Budget, report: TickReport) -> None:
    """Read every `due` shard in parallel, each handing its schedules to the claim workers
    as its pages arrive (oldest first per shard): claiming starts with the first page, not
    after the last. Stops reading, and claiming, when the budget is spent."""
    lock = threading.Lock()
    announcer = _Announcer()

    def one(item: Due) -> None:
        if budget.spent():
            with lock:
                report.left_due += 1
            return
        job = _claim_logged(item, now)
        if job is None:
            return
        sent = dispatch.invoke_runner(job.job_id)
        with lock:
            report.claimed.append(job.job_id)
            report.dispatched += int(sent)
            report.oldest_claimed = min(filter(None, (report.oldest_claimed, item.next_run)))
        announcer.submit(job)

    try:
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="claim") as claims:

            def read(shard: int) -> None:
                try:
                    for item in due_in(shard, now):
                        if budget.spent():
                            return  # the rest of the shard stays due, unread
                        with lock:
                            report.due += 1
                        claims.submit(one, item)
                except Exception:  # one shard's failure must not cost the others their claims
                    log.exception("tick: reading due shard %d failed", shard)

            shards = range(config.due_shards())
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(shards)), thread_name_prefix="due") as readers:
                list(readers.map(read, shards))
    finally:
        report.announced = announcer.drain(budget)


class _Announcer:
    """`job_created` for each claimed job, sent by a few threads of its own."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=ANNOUNCERS, thread_name_prefix="announce")
        self._futures: list[Future] = []
        self._lock = threading.Lock()

    def submit(self, job: JobModel) -> None:
        future = self._pool.submit(jobs.announce_created, job)
        with self._lock:
            self._futures.append(future)

    def drain(self, budget: Budget) -> int:
        """Wait for the events still queued while time remains, drop the rest; returns how
        many were sent."""
        for future in self._futures:
            while not budget.spent() and not future.done():
                wait([future], timeout=0.05)
            if budget.spent():
                break
        self._pool.shutdown(wait=False, cancel_futures=True)
        sent = sum(1 for future in self._futures if future.done() and not future.cancelled())
        if sent < len(self._futures):
            log.warning("tick: out of time, %d job_created events not sent", len(self._futures) - sent)
        return sent


def _claim_logged(due: Due, now: datetime) -> JobModel | None:
    """One schedule's failure (throttling, say) must not stop the others: the next tick
    sees it still due and claims it then."""
    with logs.context(schedule_id=due.schedule_id, user_id=due.user_id, job_id=job_id_for(due.schedule_id, due.next_run)):
        try:
            return claim(due, now)
        except Exception:
            log.exception("tick: claiming schedule %s failed", due.schedule_id)
            return None


def _sweep(now: datetime, budget: Budget, report: TickReport) -> None:
    """The reaper beside the claims; its failure is logged, never the tick's."""
    try:
        swept = jobs.reap(now, dispatch=dispatch.invoke_runner, out_of_time=budget.spent)
    except Exception:
        log.exception("tick: the sweep of dead and lost jobs failed")
        return
    report.reaped = swept.interrupted
    report.redispatched = len(swept.redispatched)
