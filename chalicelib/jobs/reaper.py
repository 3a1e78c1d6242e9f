"""The tick's sweep: end running jobs whose runner is gone, and hand back jobs nobody ran.

Every live job (pending, queued, running) carries `active_shard` and `lease_until`, which
put it in the sparse, keys-only `active` GSI; terminal jobs drop both. `lease_until` is the
moment the tick must look at the job again:
- running: min(last renewal + JOB_LEASE_SECONDS, timeout_at). Past it, the runner stopped
  renewing (crash, Lambda timeout, lost host) or the job ran out of time.
- pending/queued: created (or queued) + DISPATCH_GRACE_SECONDS. Past it, the runner
  invocation was probably lost (or a queued job's wake-up was), so the tick dispatches it
  again; the deadline is pushed back so it is not re-dispatched every minute.

So `reap` is one Query per shard (`lease_until < now`, never a Scan) plus one BatchGetItem
for what it found; the GSI being eventually consistent, each candidate is judged on the
item itself, and every change is conditioned on the status and lease it saw.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from chalicelib import clock, writes
from chalicelib.jobs import events, lifecycle, rules
from chalicelib.tables import JobModel, SlotModel


def reap(now: datetime | None = None) -> list[JobModel]:
    """Interrupt (or fail, on timeout) expired running jobs, releasing their slots and
    telling their clients; return the jobs the tick should dispatch to a runner again:
    lost pending/queued jobs and, for each user whose slot a reaped job freed, the oldest
    queued one."""
    now = now or clock.now()
    now_iso = clock.iso(now)
    dispatch: dict[str, JobModel] = {}
    for job in _expired(now_iso):
        if job.status == rules.RUNNING:
            if _end_running(job, now):
                waiting = lifecycle.next_queued(job.user_id)
                if waiting is not None:
                    dispatch.setdefault(waiting.job_id, waiting)
        elif job.status in (rules.PENDING, rules.QUEUED):
            if _postpone(job, now):
                dispatch[job.job_id] = job
    return list(dispatch.values())


def _expired(now_iso: str) -> Iterator[JobModel]:
    for shard in range(rules.active_shards()):
        keys = [
            key.job_id
            for key in JobModel.active.query(shard, JobModel.lease_until < now_iso)
        ]
        if not keys:
            continue
        for job in JobModel.batch_get(keys, consistent_read=True):
            if job.status in rules.ACTIVE_STATUSES and job.lease_until and job.lease_until < now_iso:
                yield job


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
            job,
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
    """Push the re-dispatch time back, if nobody touched the job since we read it (then the
    one tick that did this is the one that dispatches it)."""
    return writes.update_if(
        job,
        [JobModel.lease_until.set(clock.iso(rules.redispatch_at(now)))],
        rules.IS[job.status] & rules.lease_is(job.lease_until),
    )
