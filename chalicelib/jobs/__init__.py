"""The job registry: statuses, per-user concurrency slots, the queue, cancel and leases.

DESIGN §2 invariants live here, each kept by a DynamoDB condition (see `rules`):
`slots.active` = the user's running jobs (changed only in the transaction that moves a job
into or out of running), jobs move only along the allowed transitions, running jobs hold a
lease the tick's `reap` enforces. Events go out through `chalicelib.notify`.

    submit / build_job (+ NEW_JOB) + announce_created             create (API / tick)
    start → progress / heartbeat, cancel_requested → finish        the runner
    cancel, get_job, list_jobs, active_and_recent, to_public       the owner (REST / WS)
    reap                                                           the tick
    set_limit                                                      admins
"""
from chalicelib.jobs.lifecycle import (
    DuplicateJob,
    announce_created,
    build_job,
    cancel,
    cancel_requested,
    finish,
    heartbeat,
    next_queued,
    progress,
    start,
    submit,
)
from chalicelib.jobs.reaper import ReapReport, reap
from chalicelib.jobs.rules import (
    ACTIVE_STATUSES,
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    QUEUED,
    RUNNING,
    STATUSES,
    TERMINAL_STATUSES,
    TIMEOUT_ERROR,
    InvalidTransition,
)
from chalicelib.jobs.rules import IS_NEW as NEW_JOB
from chalicelib.jobs.views import (
    LimitsUpdate,
    active_and_recent,
    get_job,
    list_jobs,
    JobsQuery,
    set_limit,
    to_public,
)

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED",
    "DONE",
    "DuplicateJob",
    "FAILED",
    "INTERRUPTED",
    "InvalidTransition",
    "NEW_JOB",
    "LimitsUpdate",
    "PENDING",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "TERMINAL_STATUSES",
    "TIMEOUT_ERROR",
    "active_and_recent",
    "announce_created",
    "build_job",
    "cancel",
    "cancel_requested",
    "finish",
    "get_job",
    "heartbeat",
    "list_jobs",
    "next_queued",
    "JobsQuery",
    "progress",
    "ReapReport",
    "reap",
    "set_limit",
    "start",
    "submit",
    "to_public",
]
