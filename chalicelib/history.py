"""The user's benchmark history (`benchmark_runs`): saving a run, listing, reading, deleting.

A run belongs to the job that ran it, and its id derives from that job alone: the moment
the job started (fixed once, when it moved to running) and the job id. So the table's sort
key orders runs by time ("newest first" is a backwards query, a time range a key
condition), and a runner that saves twice, seconds apart, writes one run: the put is
conditional on the id being new.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pynamodb.exceptions import DoesNotExist

from chalicelib import writes
from chalicelib.errors import NotFound
from chalicelib.tables import RunModel

MAX_LIMIT = 100
_RUN_ID = re.compile(r"^[0-9TZ.:-]{1,40}-[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class NewRun:
    user_id: str
    job_id: str
    started_at: str  # the job's `started_at`: the run's time
    prompt: str
    max_tokens: int
    temperature: float
    results: list[dict[str, Any]]
    metadata: dict[str, Any]
    source: str = "schedule"


def run_id_for(started_at: str, job_id: str) -> str:
    compact = started_at.replace("-", "").replace(":", "")
    return f"{compact}-{job_id}"


def save(run: NewRun) -> str:
    """Store the run once (a second save of the job's run changes nothing); its id, which
    is the job's `result_ref`."""
    run_id = run_id_for(run.started_at, run.job_id)
    item = RunModel(
        run.user_id,
        run_id,
        created_at=run.started_at,
        source=run.source,
        prompt=run.prompt,
        context_tiers=[0],
        max_tokens=run.max_tokens,
        temperature=run.temperature,
        results=run.results,
        metadata=run.metadata,
    )
    writes.put_if(item, RunModel.run_id.does_not_exist())  # False: saved before, kept as is
    return run_id


class HistoryQuery(BaseModel):
    """`GET /api/history?source=schedule&limit=20&cursor=...`."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["schedule", "manual"] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 20
    cursor: str | None = None

    @field_validator("cursor")
    @classmethod
    def _readable_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            _cursor_run_id(value)
        return value


def list_runs(user_id: str, query: HistoryQuery) -> dict[str, Any]:
    """Newest first, optionally one source, `limit` at most; `next_cursor` continues it."""
    source, limit = query.source, query.limit
    start = {"user_id": {"S": user_id}, "run_id": {"S": _cursor_run_id(query.cursor)}} if query.cursor else None
    items = RunModel.query(
        user_id,
        scan_index_forward=False,
        filter_condition=(RunModel.source == source) if source else None,
        last_evaluated_key=start,
        page_size=limit + 1,
    )
    runs: list[RunModel] = []
    for item in items:  # one more than asked tells whether a next page exists
        runs.append(item)
        if len(runs) > limit:
            break
    more = len(runs) > limit
    runs = runs[:limit]
    return {
        "runs": [to_public(run) for run in runs],
        "next_cursor": _encode_cursor(runs[-1].run_id) if more else None,
    }


def get(user_id: str, run_id: str) -> dict[str, Any]:
    try:
        return to_public(RunModel.get(user_id, run_id))
    except DoesNotExist:
        raise _not_found(run_id) from None


def delete(user_id: str, run_id: str) -> None:
    if not writes.delete_if(RunModel(user_id, run_id), RunModel.run_id.exists()):
        raise _not_found(run_id)


def to_public(run: RunModel) -> dict[str, Any]:
    return {
        "id": run.run_id,
        "created_at": run.created_at,
        "source": run.source,
        "prompt": run.prompt,
        "context_tiers": [int(t) for t in run.context_tiers or [0]],
        "max_tokens": int(run.max_tokens),
        "temperature": float(run.temperature),
        "results": run.results,
        "metadata": run.metadata,
    }


def _encode_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"r": run_id}).encode()).decode().rstrip("=")


def _cursor_run_id(cursor: str) -> str:
    """The run id a cursor holds. Only a run id: the user is always the caller, so a cursor
    copied from another user's answer pages through the caller's own runs, never theirs."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))["r"]
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValueError("not a cursor this API gave out") from None
    return run_id


def _not_found(run_id: str) -> NotFound:
    return NotFound("Run not found", {"run_id": run_id})
