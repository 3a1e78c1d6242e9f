"""The job events of DESIGN §5, built in one place and sent through `chalicelib.notify`.

Each is emitted only after the write it reports has been committed, and only by the caller
whose conditional write succeeded, so a client sees each transition once. `notify` swallows
notifier failures: an event never fails a registry operation.
"""
from __future__ import annotations

from chalicelib import metrics, notify
from chalicelib.jobs import rules
from chalicelib.tables import JobModel


def created(job: JobModel) -> None:
    notify.send_to_user(
        job.user_id,
        {
            "type": "job_created",
            "job_id": job.job_id,
            "job_type": job.job_type,
            "status": job.status,
            "progress_detail": job.progress_detail,
            "created_at": job.created_at,
        },
    )


def started(user_id: str, job_id: str) -> None:
    notify.send_to_user(user_id, {"type": "job_started", "job_id": job_id})


def progress(user_id: str, job_id: str, pct: float, detail: str | None) -> None:
    notify.send_to_user(
        user_id,
        {"type": "job_progress", "job_id": job_id, "progress_pct": pct, "progress_detail": detail},
    )


def ended(user_id: str, job_id: str, status: str, *, result_ref: str | None, error: str | None) -> None:
    """The event for a job that reached `status`: completed, failed (incl. interrupted) or
    cancelled."""
    if status == rules.DONE:
        message = {"type": "job_completed", "job_id": job_id, "result_ref": result_ref}
    elif status == rules.CANCELLED:
        message = {"type": "job_cancelled", "job_id": job_id}
    else:
        message = {"type": "job_failed", "job_id": job_id, "error": error}
    metrics.job_ended(status)
    notify.send_to_user(user_id, message)
