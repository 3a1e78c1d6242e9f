"""The tick's sweep: end running jobs whose runner is gone, and hand back jobs nobody ran.

Every live job (pending, queued, running) carries `active_shard` and `lease_until`, which
put it in the sparse `active` GSI; terminal jobs drop both. `lease_until` is the moment
the tick must look at the job again:
- running: min(last renewal + JOB_LEASE_SECONDS, timeout_at). Past it, the runner stopped
  renewing (crash, Lambda timeout, lost host) or the job ran out of time.
- pending/queued: created (or queued) + DISPATCH_GRACE_SECONDS. Past it, the runner
  invocation was probably lost (or a queued job's wake-up was), so the tick dispatches it
  again; the deadline is pushed back so it is not re-dispatched every minute.

One user cannot make this sweep expensive for everyone:
- The index projects status, owner and timeout, so triage reads index entries only (one
  Query per shard, in parallel), never the job items.
- A queued job's wake-up can only have been lost if its user has room now (else the
  finish of a running job hands it out). So overdue queued jobs are re-dispatched only for
  users whose slot (one BatchGetItem for all of them) has room, and only as many as fit;
  the queued jobs of a user at their limit are left alone: no write, no invoke. (Their
  index entries are read again each tick: about 150 bytes apiece.)
- At most `REAPER_MAX_REDISPATCH` (200) jobs are re-dispatched per tick, oldest first, by a
  pool of threads; the rest stay overdue for the next tick. Work stops once `out_of_time`.

The GSI is eventually consistent, so every change is conditioned on the item itself: the
status and lease seen in the index.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from chalicelib import clock, config, writes
from chalicelib.jobs import events, lifecycle, rules
from chalicelib.tables import JobModel, SlotModel

# The sweep's writes and invokes are I/O bound; this many run at once.
MAX_PARALLEL = 16


def max_redispatch() -> int:
    return config.int_setting("REAPER_MAX_REDISPATCH", 200)


@dataclass
class ReapReport:
    interrupted: int = 0  # running jobs ended (interrupted, or failed on timeout)
    redispatched: list[str] = field(default_factory=list)  # handed to `dispatch` again
    left_for_later: int = 0  # overdue and worth a dispatch, beyond the cap or the time


def reap(
    now: datetime | None = None,
    *,
    dispatch: Callable[[str], object] | None = None,
    out_of_time: Callable[[], bool] = lambda: False,
) -> ReapReport:
    """Interrupt (or fail, on timeout) expired running jobs, releasing their slots and
    telling their clients; then dispatch again (`dispatch(job_id)`, as soon as each is
    decided) the jobs nobody ran: lost pending jobs, and for each user with room their
    oldest overdue queued jobs, or the next queued one when a reaped job freed the slot."""
    now = now or clock.now()
    report = ReapReport()
    expired = _expired(clock.iso(now), out_of_time)

    def end(job: JobModel) -> bool:
        return not out_of_time() and _end_running(job, now)

    def redispatch(job: JobModel) -> bool | None:
        """True: dispatched; False: someone else moved it (not ours); None: out of time."""
        if out_of_time():
            return None
        if job.lease_until is not None and not _postpone(job, now):
            return False
        if dispatch is not None:
            dispatch(job.job_id)
        return True

    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        running = [job for job in expired if job.status == rules.RUNNING]
        ended = [job for job, ok in zip(running, pool.map(end, running)) if ok]
        cap = max_redispatch()
        waiting = _worth_dispatching(expired, {job.user_id for job in ended}, cap, pool)
        batch = waiting[:cap]
        outcomes = list(pool.map(redispatch, batch))
    report.interrupted = len(ended)
    report.redispatched = [job.job_id for job, sent in zip(batch, outcomes) if sent]
    report.left_for_later = len(waiting) - len(batch) + outcomes.count(None)
    return report


def _expired(now_iso: str, out_of_time: Callable[[], bool]) -> list[JobModel]:
    """Every live job whose lease ran out, as the `active` index shows it (oldest first)."""

    def shard(number: int) -> list[JobModel]:
        found = []
        for entry in JobModel.active.query(number, JobModel.lease_until < now_iso):
            found.append(entry)
            if out_of_time():
                break
        return found

    shards = range(rules.active_shards())
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(shards))) as pool:
        entries = [job for found in pool.map(shard, shards) for job in found]
    return sorted(entries, key=lambda job: job.lease_until or "")


def _worth_dispatching(
    expired: Iterable[JobModel], freed: set[str], cap: int, pool: ThreadPoolExecutor
) -> list[JobModel]:
    """The overdue jobs a dispatch could start now, oldest first: every pending one, and
    for each user with room and somebody queued, the head of their queue (as many as fit;
    the queues of at most `cap` users are read, in parallel).

    Only users with an overdue queued job, or whose slot this sweep freed, are looked at;
    a head that is not overdue itself is dispatched without touching its lease."""
    pending = [job for job in expired if job.status == rules.PENDING]
    overdue = {job.job_id: job for job in expired if job.status == rules.QUEUED}
    users = sorted({job.user_id for job in overdue.values()} | freed)
    slots = {slot.user_id: slot for slot in SlotModel.batch_get(users, consistent_read=True)} if users else {}
    rooms = {
        user_id: rules.room_of(slot)
        for user_id, slot in slots.items()
        if (slot.queued or 0) > 0 and rules.room_of(slot) > 0
    }
    chosen: list[JobModel] = []
    for heads in pool.map(lambda user_id: lifecycle.queue_heads(user_id, rooms[user_id]), sorted(rooms)[:cap]):
        for head in heads:
            if head.job_id in overdue:
                chosen.append(overdue[head.job_id])
            else:
                head.lease_until = None
                chosen.append(head)
    return sorted(pending + chosen, key=lambda job: job.lease_until or "")


def _end_running(job: JobModel, now: datetime) -> bool:
    """running → failed (past timeout_at) or interrupted (lease ran out), with the slot;
    only if the job still holds the lease seen here: a renewal racing the reaper wins, and so
    does a finish (its status condition)."""
    timed_out = bool(job.timeout_at) and job.timeout_at <= clock.iso(now)
    status, error = (
        (rules.FAILED, rules.TIMEOUT_ERROR) if timed_out else (rules.INTERRUPTED, rules.LEASE_LOST_ERROR)
    )
    failed = (
        writes.Tx()
        .update(
            "job",
            JobModel(job.job_id),
            lifecycle.ending_actions(status, now, error=error),
            rules.leaving(rules.RUNNING, status) & rules.lease_is(job.lease_until),
        )
        .update("slot", SlotModel(job.user_id), [SlotModel.active.add(-1)])
        .commit()
    )
    if failed:
        return False
    events.ended(job.user_id, job.job_id, status, result_ref=None, error=error)
    job.status, job.error_msg = status, error
    return True


def _postpone(job: JobModel, now: datetime) -> bool:
    """Push the re-dispatch time back, if nobody touched the job since the index showed it
    (then the one tick that did this is the one that dispatches it)."""
    return writes.update_if(
        JobModel(job.job_id),
        [JobModel.lease_until.set(clock.iso(rules.redispatch_at(now)))],
        rules.IS[job.status] & rules.lease_is(job.lease_until),
    )
