"""The history of alert events (`alert_events`): what was sent, and how it went.

An event is stored, with the state change that caused it, before it is sent (in one
transaction: see `alert_eval`), as `pending`; its delivery outcome replaces that once
known. Its key is `<run id>#<event id>`: newest first is a backwards query, and the same
transition evaluated twice has the same key. Events expire after `ALERT_EVENTS_TTL_DAYS`
(90), so a user's history stays bounded however long their rules fire.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib import alerts, clock, config, writes
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
    """`GET /api/alerts/events?alert_id=&limit=20&cursor=`."""

    model_config = ConfigDict(extra="forbid")

    alert_id: Annotated[str, Field(pattern=_ALERT_ID.pattern)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 20
    cursor: str | None = None

    @field_validator("cursor")
    @classmethod
    def _readable_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            _cursor_key(value)
        return value


def list_events(user_id: str, query: EventsQuery) -> dict[str, Any]:
    """Newest first, of one rule or all; another user's rule is not found (404)."""
    if query.alert_id is not None:
        alerts.get(user_id, query.alert_id)
    start: dict[str, dict[str, Any]] | None = None
    if query.cursor:
        start = {"user_id": {"S": user_id}, "event_key": {"S": _cursor_key(query.cursor)}}
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
    found: list[AlertEventModel] = []
    for item in items:  # one more than asked tells whether a next page exists
        found.append(item)
        if len(found) > query.limit:
            break
    more = len(found) > query.limit
    found = found[: query.limit]
    return {
        "events": [to_public(item) for item in found],
        "next_cursor": _encode_cursor(found[-1].event_key) if more else None,
    }


def to_public(item: AlertEventModel) -> dict[str, Any]:
    event = item.event or {}
    shown = {name: event.get(name) for name in FIELDS if name != "event_id"}
    return {"id": event.get("event_id"), **shown, "delivery": item.delivery}


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"e": key}).encode()).decode().rstrip("=")


def _cursor_key(cursor: str) -> str:
    """The event key a cursor holds; the user is always the caller, so another user's
    cursor pages through the caller's own events."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))["e"]
        if not isinstance(key, str) or not _EVENT_KEY.match(key):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValueError("not a cursor this API gave out") from None
    return key
