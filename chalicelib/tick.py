"""The one-minute tick: reap dead jobs, claim due schedules, dispatch one runner per job.

Safe to run twice at once and to be retried by EventBridge: a due schedule is claimed by ONE
transaction that advances its `next_run` only if it still holds the value this tick saw and
creates the job only if its id — derived from (schedule id, due time seen) — is new. Whoever
loses either condition created nothing.
"""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib import clock, config, dispatch, jobs, logs, metrics, schedules, writes
from chalicelib.tables import ScheduleModel

log = logging.getLogger(__name__)

# Shard queries and claims are I/O bound; DynamoDB takes this many in flight with ease.
MAX_PARALLEL = 32


@dataclass(frozen=True)
class Due:
    """A due schedule as the `due` index shows it (keys + interval: all a claim needs)."""

    user_id: str
    schedule_id: str
    next_run: str
    interval_hours: int


@dataclass
class TickReport:
    reaped_redispatched: int = 0
    due: int = 0
    claimed: list[str] = field(default_factory=list)
    dispatched: int = 0

    def summary(self) -> dict:
        return {
            "redispatched": self.reaped_redispatched,
            "due": self.due,
            "claimed": len(self.claimed),
            "dispatched": self.dispatched,
        }


def run(now: datetime | None = None) -> TickReport:
    now = now or clock.now()
    report = TickReport()
    lost = jobs.reap(now)
    report.reaped_redispatched = dispatch.invoke_runners(job.job_id for job in lost)
    due = find_due(now)
    report.due = len(due)
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        claimed = [job_id for job_id in pool.map(lambda d: _claim_logged(d, now), due) if job_id]
    report.claimed = claimed
    report.dispatched = dispatch.invoke_runners(claimed)
    log.info("tick: %s", report.summary())
    metrics.tick(report.summary(), min((d.next_run for d in due), default=None), now)
    return report


def find_due(now: datetime) -> list[Due]:
    """Every enabled schedule with `next_run <= now`: one query per shard, in parallel,
    paginated by PynamoDB. Never a scan: items read grow with the due, not the total."""
    cutoff = clock.iso(now)

    def shard(number: int) -> list[Due]:
        return [
            Due(item.user_id, item.schedule_id, item.next_run, int(item.interval_hours))
            for item in ScheduleModel.due.query(number, ScheduleModel.next_run <= cutoff)
        ]

    shards = range(config.due_shards())
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(shards))) as pool:
        return [due for found in pool.map(shard, shards) for due in found]


def job_id_for(schedule_id: str, due_time: str) -> str:
    """The same (schedule, due time) always names the same job: the claim's idempotency key."""
    return hashlib.sha256(f"{schedule_id}|{due_time}".encode()).hexdigest()[:32]


def _claim_logged(due: Due, now: datetime) -> str | None:
    """One schedule's failure (throttling, say) must not stop the others: the next tick
    sees it still due and claims it then."""
    with logs.context(schedule_id=due.schedule_id, user_id=due.user_id, job_id=job_id_for(due.schedule_id, due.next_run)):
        try:
            return claim(due, now)
        except Exception:
            log.exception("tick: claiming schedule %s failed", due.schedule_id)
            return None


def claim(due: Due, now: datetime) -> str | None:
    """Advance the schedule and create its job in one transaction; the job id, or None when
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
    if failed:
        return None
    jobs.announce_created(job)
    return job.job_id
