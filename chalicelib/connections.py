"""WebSocket connections: who is connected, where to post to them, and five per user.

A connection record (`ConnectionModel`, key `connection_id`) holds its user, the callback
endpoint of the API Gateway `@connections` API that reaches it, `connected_at`, and a `ttl`:
two hours (API Gateway closes every connection after two hours, so a record older than
that is dead even if its `$disconnect` never arrived), or sooner when the token that opened
it expires sooner. A record past its `ttl` gets no events, and its next message closes it.

The per-user limit is a counter item in the same table (`connection_id = "user#<id>"`,
`count`, and `connected_at` = the time of the latest connect). It carries no `user_id`, so
the `user` GSI lists connection records only. Every change of the counter happens in one
TransactWriteItems with the record it counts, under the named conditions below, never by
read-then-write:
- connect: put the record `IF NEW_CONNECTION` and `ADD count 1 IF has_room(limit)`;
  concurrent connects of one user get exactly `limit` successes;
- disconnect: delete the record `IF still_connected(user)` and `ADD count -1`; a duplicate
  `$disconnect` (or a 410 cleanup racing it) finds the record gone and decrements nothing.

Self-healing counter. A record whose socket is gone without a `$disconnect` reaching us
(a failed `$disconnect` Lambda, DynamoDB's TTL deleting an expired record, a restarted dev
stack) would keep counting. So when a connect fails for the limit, `heal_counter` looks at
the user's records on the GSI and then the connect is tried once more:
- an expired record (past its `ttl`), or one older than `SETTLE` whose socket the caller's
  `is_gone` probe finds gone (API Gateway's `GetConnection` answers 410), is removed like a
  disconnect, decrement included (exact, and idempotent like any disconnect);
- records DynamoDB's TTL already deleted left no trace but the count: if the counter is
  still above the live records, it is set to their number `IF counter_unchanged(seen)`, so
  a connect or disconnect in between wins.
The GSI is eventually consistent, so a record put a moment ago may be missing from it, and a
socket mid-handshake is not yet reachable: both corrections skip anything younger than
`SETTLE` (a refused client retries later). A counter can only be too high (it refuses)
until the next heal, never too low.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib import clock, config, writes
from chalicelib.errors import Conflict, TooManyRequests
from chalicelib.tables import ConnectionModel

log = logging.getLogger(__name__)

CONNECTION_TTL = timedelta(hours=2)  # API Gateway's longest WebSocket connection
SETTLE = timedelta(seconds=10)  # generous bound on the GSI's propagation delay
LIMIT_SETTING = "WS_MAX_CONNECTIONS_PER_USER"
DEFAULT_LIMIT = 5


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    endpoint: str
    expires_at: datetime | None = None  # the record's `ttl`

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def limit() -> int:
    return config.int_setting(LIMIT_SETTING, DEFAULT_LIMIT)


def counter_key(user_id: str) -> str:
    """The counter item's key. User ids are uuid4 hex and API Gateway connection ids are
    base64 without `#`, so this never collides with a connection."""
    return f"user#{user_id}"


# --- the rules, each stated once ------------------------------------------------------------

NEW_CONNECTION = ConnectionModel.connection_id.does_not_exist()


def has_room(max_connections: int) -> Condition:
    """The counter admits one more: absent (a user's first connect) or below the limit."""
    return ConnectionModel.open_count.does_not_exist() | (ConnectionModel.open_count < max_connections)


def still_connected(user_id: str) -> Condition:
    """The record exists and is this user's: only the one remover that finds it decrements."""
    return ConnectionModel.connection_id.exists() & (ConnectionModel.user_id == user_id)


def counter_unchanged(count: float | None, connected_at: str | None) -> Condition:
    """Nobody connected or disconnected since the heal read the counter."""
    same_count = (
        ConnectionModel.open_count.does_not_exist() if count is None else ConnectionModel.open_count == count
    )
    same_time = (
        ConnectionModel.connected_at.does_not_exist()
        if connected_at is None
        else ConnectionModel.connected_at == connected_at
    )
    return same_count & same_time


# --- connect and disconnect ------------------------------------------------------------------


def register(
    connection_id: str,
    user_id: str,
    endpoint: str,
    *,
    expires_at: datetime | None = None,
    is_gone: Callable[[Connection], bool] | None = None,
) -> Connection:
    """Record a new connection of `user_id`, or raise `TooManyRequests` at the limit.

    `expires_at`: when the token that opened it expires (the record lasts no longer).
    `is_gone` probes whether an older connection's socket still exists (see the module
    docstring). A repeated `$connect` of the same connection and user is accepted as is.
    """
    ends = clock.now() + CONNECTION_TTL
    if expires_at is not None:
        ends = min(ends, expires_at)
    for attempt in range(2):
        failed = _add(connection_id, user_id, endpoint, ends)
        if not failed:
            return Connection(connection_id, user_id, endpoint, ends)
        if "record" in failed:
            existing = get(connection_id)
            if existing is not None and existing.user_id == user_id:
                return existing
            raise Conflict("Connection id already in use")
        if attempt == 0 and heal_counter(user_id, is_gone=is_gone):
            continue
        break
    raise TooManyRequests(
        f"Too many WebSocket connections (at most {limit()} per user)", {"limit": limit()}
    )


def _add(connection_id: str, user_id: str, endpoint: str, ends: datetime) -> set[str]:
    """The connect transaction; returns the labels whose condition failed ({} if applied)."""
    now = clock.now()
    record = ConnectionModel(
        connection_id,
        user_id=user_id,
        endpoint=endpoint,
        connected_at=clock.iso(now),
        ttl=ends,
    )
    return set(
        writes.Tx()
        .put("record", record, NEW_CONNECTION)
        .update(
            "counter",
            ConnectionModel(counter_key(user_id)),
            [ConnectionModel.open_count.add(1), ConnectionModel.connected_at.set(clock.iso(now))],
            has_room(limit()),
        )
        .commit()
    )


def unregister(connection_id: str, user_id: str | None = None) -> bool:
    """Delete the record and give its place back; True if this call removed it.

    `user_id` saves a read when the caller knows it (the notifier, from the GSI item).
    """
    if user_id is None:
        existing = get(connection_id)
        if existing is None:
            return False
        user_id = existing.user_id
    failed = (
        writes.Tx()
        .delete("record", ConnectionModel(connection_id), still_connected(user_id))
        .update("counter", ConnectionModel(counter_key(user_id)), [ConnectionModel.open_count.add(-1)])
        .commit()
    )
    return not failed


# --- reading -------------------------------------------------------------------------------


def get(connection_id: str) -> Connection | None:
    """The connection (strongly consistent: a message may follow its `$connect` at once)."""
    try:
        item = ConnectionModel.get(connection_id, consistent_read=True)
    except DoesNotExist:
        return None
    if item.user_id is None or item.endpoint is None:  # a counter item
        return None
    return Connection(item.connection_id, item.user_id, item.endpoint, item.ttl)


def of_user(user_id: str, *, expired: bool = False) -> list[Connection]:
    """The user's live connections (GSI); with `expired`, also those past their `ttl`
    (dead by API Gateway's limit, or their token expired: they get no events)."""
    now = clock.now()
    found = (
        Connection(item.connection_id, item.user_id, item.endpoint, item.ttl)
        for item in ConnectionModel.by_user.query(user_id)
        if item.endpoint
    )
    return [c for c in found if expired or not c.expired(now)]


# --- the self-healing counter ---------------------------------------------------------------


def heal_counter(user_id: str, *, is_gone: Callable[[Connection], bool] | None = None) -> bool:
    """Free the places of the user's dead connections; True if any place was freed.

    See the module docstring for why this is safe to run at any time.
    """
    now = clock.now()
    try:
        counter = ConnectionModel.get(counter_key(user_id), consistent_read=True)
    except DoesNotExist:
        return False
    seen_count, seen_at = counter.open_count, counter.connected_at
    live, freed = 0, False
    for item in ConnectionModel.by_user.query(user_id):
        connection = Connection(item.connection_id, item.user_id, item.endpoint or "", item.ttl)
        if connection.expired(now) or (
            is_gone is not None and _settled(item.connected_at, now) and is_gone(connection)
        ):
            freed = unregister(item.connection_id, item.user_id) or freed
        else:
            live += 1
    if freed:
        return True
    if not _settled(seen_at, now):
        return False  # a connect this recent may not be on the GSI yet
    if seen_count is not None and live >= seen_count:
        return False
    if not writes.update_if(
        ConnectionModel(counter_key(user_id)),
        [ConnectionModel.open_count.set(live)],
        counter_unchanged(seen_count, seen_at),
    ):
        return False
    log.info("connection counter of %s healed: %s -> %s", user_id, seen_count, live)
    return True


def _settled(moment: str | None, now: datetime) -> bool:
    """Older than `SETTLE`: on the GSI by now, and past its handshake."""
    return moment is None or clock.parse(moment) <= now - SETTLE
