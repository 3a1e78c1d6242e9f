"""The history of alert events (`alert_events`): what was sent, and how it went.

An event is stored, with the state change that caused it, before it is sent (in one
transaction: see `alert_eval`), as `pending`; its delivery outcome replaces that once
known. Its key is `<run id>#<event id>`: newest first is a backwards query, and the same
transition evaluated twice has the same key. Events expire after `ALERT_EVENTS_TTL_DAYS`
(90), so a user's history stays bounded however long their rules fire.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import alerts, clock, config, cursors, writes
from chalicelib.alert_delivery import FIELDS
from chalicelib.tables import AlertEventModel

MAX_LIMIT = 100
PENDING = "pending"
_EVENT_KEY = re.compile(r"^[0-9TZ.:-]{1,40}-[0-9a-f]{1,64}#[0-9a-f]{32}$")
_ALERT_ID = re.compile(r"^[0-9a-f]{32}$")

# An event is written once: a second put of the same key means the transition was
# evaluated twice, and the transaction holding it must not apply.
NEW = AlertEventModel.event_key.does_not_exist()


def event_key(run_id: str, event_id: str) -> str:
    return f"{run_id}#{event_id}"


def new_item(user_id: str, event: Mapping[str, Any]) -> AlertEventModel:
    ttl_days = config.int_setting("ALERT_EVENTS_TTL_DAYS", 90)
    return AlertEventModel(
        user_id,
        event_key(str(event["run_id"]), str(event["event_id"])),
        alert_id=str(event["alert_id"]),
        event=dict(event),
        delivery=PENDING,
        expires_at=clock.now() + timedelta(days=ttl_days),
    )


def record_delivery(user_id: str, key: str, delivery: str) -> None:
    """Replace `pending` with the outcome (once: a late duplicate changes nothing)."""
    writes.update_if(
        AlertEventModel(user_id, key),
        [AlertEventModel.delivery.set(delivery)],
        AlertEventModel.delivery == PENDING,
    )


class EventsQuery(BaseModel):
    """`GET /api/alerts/events?alert_id=&limit=20&cursor=` (`cursor` reads as an event key)."""

    model_config = ConfigDict(extra="forbid")

    alert_id: Annotated[str, Field(pattern=_ALERT_ID.pattern)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 20
    cursor: Annotated[str, cursors.key_in(_EVENT_KEY)] | None = None


def list_events(user_id: str, query: EventsQuery) -> dict[str, Any]:
    """Newest first, of one rule or all; another user's rule is not found (404)."""
    if query.alert_id is not None:
        alerts.get(user_id, query.alert_id)
    start = {"user_id": {"S": user_id}, "event_key": {"S": query.cursor}} if query.cursor else None
    if query.alert_id:
        items = AlertEventModel.by_alert.query(
            query.alert_id,
            scan_index_forward=False,
            filter_condition=AlertEventModel.user_id == user_id,
            last_evaluated_key={**start, "alert_id": {"S": query.alert_id}} if start else None,
            page_size=query.limit + 1,
        )
    else:
        items = AlertEventModel.query(
            user_id, scan_index_forward=False, last_evaluated_key=start, page_size=query.limit + 1
        )
    found, next_cursor = cursors.page(items, query.limit, lambda item: item.event_key)
    return {"events": [to_public(item) for item in found], "next_cursor": next_cursor}


def to_public(item: AlertEventModel) -> dict[str, Any]:
    event = item.event or {}
    shown = {name: event.get(name) for name in FIELDS if name != "event_id"}
    return {"id": event.get("event_id"), **shown, "delivery": item.delivery}
