"""The registry's rules, each stated once: statuses, transitions, and the DynamoDB
conditions that enforce them.

Every state change of a job is a conditional write whose condition names the status the
writer saw (`IS[status]`, e.g. `IS_RUNNING`), never a read followed by an unconditional
write: two runners, a runner and the reaper, or a cancel racing a start can then all try,
and DynamoDB lets exactly one of them through. `leaving(current, to)` is the one door:
it refuses (in code) a transition the table below does not allow, and returns the
condition that refuses it (in DynamoDB) if the job is no longer `current`.

The slot rules read the slot item as DynamoDB sees it: the item may not exist yet (a user
who never ran a job), `active` may be absent (counts as 0) and `limit` may be absent (the
default from `DEFAULT_MAX_CONCURRENT`).
"""
from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from pynamodb.expressions.condition import Condition

from chalicelib import config
from chalicelib.tables import JobModel, SlotModel

PENDING = "pending"
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"

STATUSES: tuple[str, ...] = (PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE_STATUSES = frozenset({PENDING, QUEUED, RUNNING})
TERMINAL_STATUSES = frozenset({DONE, FAILED, CANCELLED, INTERRUPTED})

# DESIGN §2: the only moves a job makes.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({QUEUED, RUNNING, CANCELLED}),
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({DONE, FAILED, CANCELLED, INTERRUPTED}),
}

TIMEOUT_ERROR = "Timeout exceeded"
LEASE_LOST_ERROR = "Interrupted: the runner stopped renewing its lease (crashed, timed out or lost)"

# --- job conditions --------------------------------------------------------------------------

IS_NEW = JobModel.job_id.does_not_exist()
IS_PENDING = JobModel.status == PENDING
IS_QUEUED = JobModel.status == QUEUED
IS_RUNNING = JobModel.status == RUNNING
IS: dict[str, Condition] = {PENDING: IS_PENDING, QUEUED: IS_QUEUED, RUNNING: IS_RUNNING}


class InvalidTransition(ValueError):
    """A programming error: code asked for a move DESIGN §2 does not allow."""


def leaving(current: str, to: str) -> Condition:
    """The condition under which a job may move `current` → `to` (the job is still `current`)."""
    if to not in TRANSITIONS.get(current, ()):
        raise InvalidTransition(f"a job never moves {current} → {to}")
    return IS[current]


def owned_by(user_id: str) -> Condition:
    return JobModel.user_id == user_id


def lease_is(seen: str | None) -> Condition:
    """The lease is still the one the reaper saw: a renewal racing the reaper wins."""
    return JobModel.lease_until == seen


# --- slot conditions -------------------------------------------------------------------------


def slot_has_room() -> Condition:
    """`active < limit`, with an absent item/`active` as 0 and an absent `limit` the default."""
    default = config.default_max_concurrent()
    return (
        SlotModel.active.does_not_exist()
        | (SlotModel.limit.exists() & (SlotModel.active < SlotModel.limit))
        | (SlotModel.limit.does_not_exist() & (SlotModel.active < default))
    )


def slot_is_full() -> Condition:
    return ~slot_has_room()


def waiting_below(cap: int) -> Condition:
    """The user has fewer than `cap` counted pending/queued jobs (an absent count is 0)."""
    return SlotModel.waiting.does_not_exist() | (SlotModel.waiting < cap)


def room_of(slot: SlotModel | None) -> int:
    """How many more jobs the user may start now (the slot rules above, read in code)."""
    if slot is None:
        return config.default_max_concurrent()
    limit = slot.limit if slot.limit is not None else config.default_max_concurrent()
    return max(0, int(limit) - int(slot.active or 0))


# Nobody of this user is queued: `finish` then has no next job to look up (saves a query).
NOTHING_QUEUED = SlotModel.queued.does_not_exist() | (SlotModel.queued <= 0)


# --- settings and derived values -------------------------------------------------------------


def lease_seconds() -> int:
    return config.int_setting("JOB_LEASE_SECONDS", 180)


def lease_renew_seconds() -> float:
    """How often a runner renews its lease (`JOB_LEASE_RENEW_SECONDS`, default 30). Each
    renewal rewrites the job item and its `active` index entry, so it is rare; it is held
    to at most a third of the lease, so two renewals may fail before the reaper steps in."""
    return min(config.float_setting("JOB_LEASE_RENEW_SECONDS", 30.0), lease_seconds() / 3)


def cancel_poll_seconds() -> float:
    """How often a runner looks for a cancel request (`RUNNER_POLL_SECONDS`, default 2): a
    cancel stops the job's streams within this period plus one chunk."""
    return config.float_setting("RUNNER_POLL_SECONDS", 2.0)


def max_waiting_per_user() -> int:
    """At most this many pending + queued jobs per user from the API
    (`MAX_WAITING_JOBS_PER_USER`, default 20); the tick's scheduled jobs do not count."""
    return config.int_setting("MAX_WAITING_JOBS_PER_USER", 20)


def ttl_days() -> int:
    """A finished job is deleted by DynamoDB's TTL this many days after it ended
    (`JOB_TTL_DAYS`, default 30). Runs in the history are not jobs: they stay."""
    return config.int_setting("JOB_TTL_DAYS", 30)


def timeout_seconds() -> int:
    return config.int_setting("JOB_TIMEOUT_SECONDS", 900)


def dispatch_grace_seconds() -> int:
    return config.int_setting("DISPATCH_GRACE_SECONDS", 120)


def active_shards() -> int:
    """How many partition keys the `active` index is spread over (`ACTIVE_SHARDS`, default
    16). One DynamoDB partition takes 1,000 write units a second; a run writes its `active`
    entry about five times (created; started and renewed: a key change is a delete and a
    put; ended), so 100,000 hourly schedules average ~140 writes/s, and a backlog drained at
    the tick's pace (~200 claims/s, each started at once, bench/tick.py) peaks near 1,000:
    16 keys keep each under a tenth of its limit. Only ever raise it: a live job keeps its
    shard, and the sweep reads shards 0 .. ACTIVE_SHARDS-1."""
    return max(1, config.int_setting("ACTIVE_SHARDS", 16))


def shard_of(job_id: str) -> int:
    """Stable across processes (unlike `hash`), so every Lambda puts a job in the same shard."""
    return zlib.crc32(job_id.encode()) % active_shards()


def redispatch_at(now: datetime) -> datetime:
    """When the tick looks again at a job nobody has picked up (pending or queued)."""
    return now + timedelta(seconds=dispatch_grace_seconds())


def timeout_at(started: datetime) -> datetime:
    return started + timedelta(seconds=timeout_seconds())


def lease_until(now: datetime, timeout: datetime | None) -> datetime:
    """A running job's lease: renewed by the runner, never past its timeout, so the reaper's
    one query on `lease_until` also finds the jobs that ran out of time."""
    lease = now + timedelta(seconds=lease_seconds())
    return min(lease, timeout) if timeout is not None else lease
