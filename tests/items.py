"""Read what the job registry stored, as DynamoDB holds it (strongly consistent)."""
from __future__ import annotations

from chalicelib.tables import JobModel, SlotModel


def slot(user_id: str) -> dict:
    """The slot item as stored ({} if none yet)."""
    try:
        return SlotModel.get(user_id, consistent_read=True).attribute_values
    except SlotModel.DoesNotExist:
        return {}


def status_of(job_id: str) -> str:
    return JobModel.get(job_id, consistent_read=True).status
