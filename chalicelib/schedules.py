"""Schedules: validation, CRUD, and the one place that computes `next_run`.

A schedule is due when `next_run <= now`. Only enabled schedules carry `due_shard`, which
puts them in the sparse `due` GSI the tick queries; disabling removes it.

A user has at most `quotas.SCHEDULES` (200) schedules: each create and delete counts in
the same transaction. Schedule ids sort by creation time (`new_id`), so the table's own
key order is the list's order (newest first) and a page is one Query from a cursor.
"""
from __future__ import annotations

import re
import secrets
import zlib
from datetime import datetime, timedelta
from typing import Annotated, Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from pynamodb.expressions.condition import Condition
from pynamodb.exceptions import DoesNotExist

from chalicelib import catalog, clock, config, paging, quotas, summaries, user_providers, writes
from chalicelib.errors import NotFound, invalid
from chalicelib.tables import ScheduleModel

# The job type of a schedule's run, ticked or triggered.
JOB_TYPE = "scheduled_benchmark"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=50_000)]
# A run item holds the prompt beside up to 20 models × 10 results, and DynamoDB refuses an
# item over 400 KB: 50,000 four-byte characters would not fit, so bytes are bounded too.
PROMPT_MAX_BYTES = 100_000
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Models = Annotated[list[ModelName], Field(min_length=1, max_length=20)]
MaxTokens = Annotated[int, Field(ge=1, le=128_000)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
IntervalHours = Annotated[int, Field(ge=1, le=720)]


class SettingsBody(BaseModel):
    """A request body carrying benchmark settings (schedules, on-demand benchmarks): one set
    of rules for both."""

    # strict: "512" is not a number and true is not 1; unknown fields are typos, not noise.
    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("prompt", check_fields=False)
    @classmethod
    def _prompt_fits(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        if value is not None and len(value.encode("utf-8", "surrogatepass")) > PROMPT_MAX_BYTES:
            raise PydanticCustomError(
                "prompt_bytes", "must be at most {max_bytes} bytes in UTF-8", {"max_bytes": PROMPT_MAX_BYTES}
            )
        return value


class ScheduleCreate(SettingsBody):
    name: Name
    models: Models
    prompt: Prompt
    max_tokens: MaxTokens = 512
    temperature: Temperature = 0.7
    interval_hours: IntervalHours
    enabled: bool = True


class ScheduleUpdate(SettingsBody):
    """Any subset; an explicit null is refused like any other wrong type."""

    name: Name = None  # type: ignore[assignment]
    models: Models = None  # type: ignore[assignment]
    prompt: Prompt = None  # type: ignore[assignment]
    max_tokens: MaxTokens = None  # type: ignore[assignment]
    temperature: Temperature = None  # type: ignore[assignment]
    interval_hours: IntervalHours = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]


# --- next_run -------------------------------------------------------------------------


def first_run(now: datetime, interval_hours: int) -> datetime:
    """A new (or re-timed) schedule first runs one interval from now."""
    return now + timedelta(hours=interval_hours)


def next_on_phase(due: datetime, interval_hours: int, now: datetime) -> datetime:
    """The first `due + k*interval` strictly after `now` (k ≥ 1).

    Keeps the schedule's phase (no drift by the run's duration) and collapses any number of
    missed runs into one.
    """
    interval = timedelta(hours=interval_hours)
    if due > now:
        return due + interval
    missed = (now - due) // interval
    return due + (missed + 1) * interval


def still_due_at(seen: str) -> Condition:
    """The tick's claim rule: the schedule still exists, is enabled, and still has the due
    time the tick saw (so two ticks, a retry, an edit or a disable: at most one claim)."""
    return (ScheduleModel.next_run == seen) & (ScheduleModel.enabled == True)  # noqa: E712


def due_shard(schedule_id: str) -> int:
    return zlib.crc32(schedule_id.encode()) % config.due_shards()


# --- CRUD -----------------------------------------------------------------------------


def new_id(now: datetime) -> str:
    """32 hex digits that sort by creation time: 13 of microseconds since the epoch (good
    until 2112), then 19 random ones."""
    micros = int(now.timestamp() * 1_000_000)
    return f"{micros:013x}{secrets.token_hex(10)[:19]}"


def create(user_id: str, body: ScheduleCreate) -> dict[str, Any]:
    """One transaction: the schedule, and one more of the user's `quotas.SCHEDULES`."""
    check_models(user_id, body.models)
    now = clock.now()
    schedule_id = new_id(now)
    item = ScheduleModel(
        user_id,
        schedule_id,
        name=body.name,
        prompt=body.prompt,
        models=body.models,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        interval_hours=body.interval_hours,
        enabled=body.enabled,
        last_run=None,
        next_run=clock.iso(first_run(now, body.interval_hours)),
        created_at=clock.iso(now),
        updated_at=clock.iso(now),
        due_shard=due_shard(schedule_id) if body.enabled else None,
    )
    tx = writes.Tx().put("schedule", item, ScheduleModel.schedule_id.does_not_exist())
    failed = quotas.SCHEDULES.take(tx, user_id).commit()
    # The id is fresh: if it exists, this very transaction was applied by an earlier
    # attempt of the same request (a retried call whose answer was lost), count included.
    if failed and "schedule" not in failed:
        raise quotas.SCHEDULES.exceeded()
    return to_public(item)


class ListQuery(paging.PageQuery):
    """`GET /api/schedules?limit=&cursor=` (default: up to the cap, i.e. all of them)."""

    KEY = re.compile(r"[0-9a-f]{32}")

    @classmethod
    def most(cls) -> int:
        return quotas.SCHEDULES.limit()


def list_for(user_id: str, query: ListQuery) -> dict[str, Any]:
    """`{schedules, next_cursor}`, newest first."""
    after = query.after()
    items = ScheduleModel.query(
        user_id,
        scan_index_forward=False,
        last_evaluated_key={"user_id": {"S": user_id}, "schedule_id": {"S": after}} if after else None,
        page_size=query.size() + 1,
    )
    page, next_cursor = paging.take((to_public(item) for item in items), query.size(), lambda s: s["id"])
    return {"schedules": page, "next_cursor": next_cursor}


def names_of(user_id: str, schedule_ids: Iterable[str]) -> dict[str, str]:
    """The current names of some of the user's schedules (BatchGetItem, keyed by the caller:
    never another user's); ids of deleted schedules are simply absent."""
    keys = [(user_id, schedule_id) for schedule_id in dict.fromkeys(schedule_ids)]
    if not keys:
        return {}
    found = ScheduleModel.batch_get(keys, attributes_to_get=["schedule_id", "name"])
    return {item.schedule_id: item.name for item in found}


def get(user_id: str, schedule_id: str) -> ScheduleModel:
    """The caller's schedule; another user's id is exactly as unknown as a missing one."""
    try:
        return ScheduleModel.get(user_id, schedule_id)
    except DoesNotExist:
        raise _not_found(schedule_id) from None


def update(user_id: str, schedule_id: str, body: ScheduleUpdate) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise invalid("body", "nothing to update: send at least one field")
    if "models" in changes:
        check_models(user_id, changes["models"])
    now = clock.now()
    actions = [getattr(ScheduleModel, field).set(value) for field, value in changes.items()]
    actions.append(ScheduleModel.updated_at.set(clock.iso(now)))
    if "interval_hours" in changes:
        actions.append(ScheduleModel.next_run.set(clock.iso(first_run(now, changes["interval_hours"]))))
    if changes.get("enabled") is True:
        actions.append(ScheduleModel.due_shard.set(due_shard(schedule_id)))
    elif changes.get("enabled") is False:
        actions.append(ScheduleModel.due_shard.remove())
    item = ScheduleModel(user_id, schedule_id)
    if not writes.update_if(item, actions, _EXISTS):
        raise _not_found(schedule_id)
    return to_public(item)


def delete(user_id: str, schedule_id: str) -> None:
    """One transaction: the delete, and one of the user's `quotas.SCHEDULES` given back."""
    tx = writes.Tx().delete("schedule", ScheduleModel(user_id, schedule_id), _EXISTS)
    if quotas.SCHEDULES.give_back(tx, user_id).commit():
        raise _not_found(schedule_id)


# Updates and deletes act only on a schedule that exists (never upsert a deleted one).
_EXISTS = ScheduleModel.schedule_id.exists()


def to_public(item: ScheduleModel) -> dict[str, Any]:
    models = list(item.models or [])
    return {
        "id": item.schedule_id,
        "name": item.name,
        "prompt": item.prompt,
        "models": models,
        "models_json": models,
        "max_tokens": int(item.max_tokens),
        "temperature": float(item.temperature),
        "interval_hours": int(item.interval_hours),
        "enabled": bool(item.enabled),
        "last_run": item.last_run,
        "last_result": item.last_result,
        "next_run": item.next_run,
        "created_at": item.created_at,
    }


def last_result(run_id: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run at a glance, kept on the schedule so the list shows each schedule's
    health without reading its history: `{run_id, status, models: [{model, success,
    error_type, ttft_ms, output_speed_tps}]}`, one entry per result (a scheduled run has one
    per model). Bounded by the schedule's model count; figures are null for a failure."""
    return {"run_id": run_id, "status": summaries.run_status(results), "models": [_glance(r) for r in results]}


def _glance(result: dict[str, Any]) -> dict[str, Any]:
    ok = bool(result.get("success"))
    return {
        "model": result.get("model"),
        "success": ok,
        "error_type": None if ok else result.get("error_type"),
        "ttft_ms": result.get("ttft_ms") if ok else None,
        "output_speed_tps": result.get("output_speed_tps") if ok else None,
    }


def check_models(user_id: str, models: list[str]) -> None:
    """Each model listed once and resolvable for this user (their own providers included);
    a 422 naming the first that is not."""
    seen: set[str] = set()
    for name in models:
        if name in seen:
            raise invalid("models", f"{name!r} is listed twice", model=name)
        seen.add(name)
    catalog.resolve_all(models, user_providers.providers_for(user_id))


def _not_found(schedule_id: str) -> NotFound:
    return NotFound("Schedule not found", {"schedule_id": schedule_id})
