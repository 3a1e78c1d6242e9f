"""Reading jobs for their owner (REST and the WebSocket `sync`), and the per-user limit."""
from __future__ import annotations

from typing import Annotated, Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.expressions.condition import Condition

from chalicelib.errors import NotFound, Unprocessable
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


def list_jobs(user_id: str, statuses: list[str] | None = None, limit: int = DEFAULT_LIST) -> list[JobModel]:
    """The user's jobs, newest first, optionally only some statuses; pages through the
    `user` GSI until `limit` jobs matched (a status filter may leave pages nearly empty)."""
    _check_statuses(statuses)
    if not 1 <= limit <= MAX_LIST:
        raise _bad_param("limit", f"must be between 1 and {MAX_LIST}")
    return _newest(user_id, _status_in(statuses), limit)


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


def parse_list_query(params: Mapping[str, str] | None) -> tuple[list[str] | None, int]:
    """`?status=running,queued&limit=20` → (statuses, limit); a 422 naming the bad param."""
    params = params or {}
    statuses = None
    raw_status = params.get("status")
    if raw_status is not None:
        statuses = [part.strip() for part in raw_status.split(",") if part.strip()] or None
        _check_statuses(statuses)
    raw_limit = params.get("limit")
    limit = DEFAULT_LIST
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise _bad_param("limit", "must be an integer") from None
        if not 1 <= limit <= MAX_LIST:
            raise _bad_param("limit", f"must be between 1 and {MAX_LIST}")
    return statuses, limit


def set_limit(user_id: str, max_concurrent: Any) -> dict[str, Any]:
    """Set how many jobs the user may run at once. Lowering it below the running count
    stops new starts until enough finish; running jobs are not touched."""
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
        raise _bad_field("max_concurrent", "must be an integer")
    if not MIN_LIMIT <= max_concurrent <= MAX_LIMIT:
        raise _bad_field("max_concurrent", f"must be between {MIN_LIMIT} and {MAX_LIMIT}")
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


def _check_statuses(statuses: list[str] | None) -> None:
    unknown = [s for s in statuses or [] if s not in rules.STATUSES]
    if unknown:
        raise _bad_param(
            "status", f"unknown status '{unknown[0]}' (one of: {', '.join(rules.STATUSES)})"
        )


def _bad_param(name: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"Invalid query parameter '{name}': {message}", [{"field": name, "message": message}]
    )


def _bad_field(name: str, message: str) -> Unprocessable:
    return Unprocessable(f"Invalid field '{name}': {message}", [{"field": name, "message": message}])
