"""The user's benchmark history (`benchmark_runs`): saving a run, listing, reading, deleting.

A run's id starts with its creation time, so the table's sort key orders runs by time and
"newest first" is a backwards query. A scheduled run's id also carries its job id, so a
runner that saves twice (a retry) writes one run, not two.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import clock, writes
from chalicelib.errors import BadRequest, NotFound, Unprocessable
from chalicelib.tables import RunModel

SOURCES = ("schedule", "manual")
MAX_LIMIT = 100
_RUN_ID = re.compile(r"^[0-9TZ.:-]{1,40}-[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class NewRun:
    user_id: str
    job_id: str
    prompt: str
    max_tokens: int
    temperature: float
    results: list[dict[str, Any]]
    metadata: dict[str, Any]
    source: str = "schedule"


def run_id_for(created_at: str, job_id: str) -> str:
    compact = created_at.replace("-", "").replace(":", "")
    return f"{compact}-{job_id}"


def save(run: NewRun, *, created_at: str | None = None) -> str:
    """Store the run once; returns its id (the job's `result_ref`)."""
    created_at = created_at or clock.now_iso()
    run_id = run_id_for(created_at, run.job_id)
    item = RunModel(
        run.user_id,
        run_id,
        created_at=created_at,
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


def list_runs(
    user_id: str, *, source: str | None = None, limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """Newest first, optionally one source, `limit` at most; `next_cursor` continues it."""
    if source is not None and source not in SOURCES:
        raise Unprocessable(f"Invalid source: {source!r} (one of {', '.join(SOURCES)})", {"field": "source"})
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"limit must be between 1 and {MAX_LIMIT}", {"field": "limit", "limit": {"ge": 1, "le": MAX_LIMIT}})
    query = RunModel.query(
        user_id,
        scan_index_forward=False,
        filter_condition=(RunModel.source == source) if source else None,
        last_evaluated_key=_decode_cursor(user_id, cursor) if cursor else None,
        page_size=limit + 1,
    )
    runs: list[RunModel] = []
    for item in query:  # one more than asked tells whether a next page exists
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


def _decode_cursor(user_id: str, cursor: str) -> dict[str, Any]:
    """The cursor holds only a run id; the user is always the caller, so a cursor copied
    from another user's answer pages through the caller's own runs, never theirs."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))["r"]
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("Invalid cursor", {"field": "cursor"}) from None
    return {"user_id": {"S": user_id}, "run_id": {"S": run_id}}


def _not_found(run_id: str) -> NotFound:
    return NotFound("Run not found", {"run_id": run_id})
