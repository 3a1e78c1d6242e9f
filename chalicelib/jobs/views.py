"""Reading jobs for their owner (REST and the WebSocket `sync`), and the per-user limit."""
from __future__ import annotations

from typing import Annotated, Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pynamodb.expressions.condition import Condition

from chalicelib.errors import NotFound
from chalicelib.jobs import lifecycle, rules
from chalicelib.tables import JobModel, SlotModel

MIN_LIMIT, MAX_LIMIT = 1, 20  # max concurrent jobs per user
MAX_LIST = 100
DEFAULT_LIST = 20
RECENT_JOBS = 10


class LimitsUpdate(BaseModel):
    """Body of PUT /api/admin/users/{user_id}/limits."""

    model_config = ConfigDict(strict=True, extra="forbid")

    max_concurrent: Annotated[int, Field(ge=MIN_LIMIT, le=MAX_LIMIT)]


def to_public(job: JobModel) -> dict[str, Any]:
    """A job as clients see it (DESIGN §6)."""
    return {
        "id": job.job_id,
        "job_type": job.job_type,
        "status": job.status,
        "progress_pct": job.progress_pct,
        "progress_detail": job.progress_detail,
        "schedule_id": job.schedule_id,
        "result_ref": job.result_ref,
        "error_msg": job.error_msg,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
    }


def get_job(job_id: str, user_id: str) -> JobModel:
    """The caller's job; another user's job is as unknown as a missing one (404)."""
    job = lifecycle.read(job_id)
    if job is None or job.user_id != user_id:
        raise NotFound("Job not found", {"job_id": job_id})
    return job


class JobsQuery(BaseModel):
    """`GET /api/jobs?status=running,queued&limit=20`."""

    model_config = ConfigDict(extra="forbid")

    status: list[str] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIST)] = DEFAULT_LIST

    @field_validator("status", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()] or None
        for status in value or []:
            if status not in rules.STATUSES:
                raise ValueError(f"unknown status {status[:32]!r} (one of: {', '.join(rules.STATUSES)})")
        return value


def list_jobs(user_id: str, query: JobsQuery) -> list[JobModel]:
    """The user's jobs, newest first, optionally only some statuses.

    Live statuses only (pending, queued, running) read the sparse `live` GSI, whose size is
    the user's live jobs; others page through the `user` GSI until `limit` jobs matched."""
    statuses = query.status
    if statuses and set(statuses) <= rules.ACTIVE_STATUSES:
        return list(
            JobModel.live.query(
                user_id, scan_index_forward=False, filter_condition=_status_in(statuses), limit=query.limit
            )
        )
    return _newest(user_id, _status_in(statuses), query.limit)


def active_and_recent(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """For the WebSocket `sync` answer: every live job, and the last few that ended.

    Live jobs come from the sparse `live` GSI (only pending/queued/running jobs are in it),
    so the cost does not grow with the user's history; the recent ones are the newest
    terminal jobs of the `user` GSI."""
    active = list(JobModel.live.query(user_id, scan_index_forward=False))
    recent = _newest(user_id, _status_in(sorted(rules.TERMINAL_STATUSES)), RECENT_JOBS)
    return {
        "active_jobs": [to_public(job) for job in active if job.status in rules.ACTIVE_STATUSES],
        "recent_jobs": [to_public(job) for job in recent],
    }


def set_limit(user_id: str, max_concurrent: int) -> dict[str, Any]:
    """Set how many jobs the user may run at once (validated by `LimitsUpdate`). Lowering
    it below the running count stops new starts until enough finish; running jobs are not
    touched."""
    from chalicelib import auth  # the users table's owner says whether the user exists

    auth.get_user(user_id)
    SlotModel(user_id).update(actions=[SlotModel.limit.set(max_concurrent)])
    return {"user_id": user_id, "max_concurrent": max_concurrent}


def _newest(user_id: str, condition: Condition | None, limit: int | None) -> list[JobModel]:
    return list(
        JobModel.by_user.query(
            user_id,
            scan_index_forward=False,
            filter_condition=condition,
            limit=limit,
            page_size=MAX_LIST if condition is not None else limit,
        )
    )


def _status_in(statuses: Iterable[str] | None) -> Condition | None:
    statuses = list(statuses or [])
    return JobModel.status.is_in(*statuses) if statuses else None
