"""One-time WebSocket tickets: the JWT stays out of the WebSocket URL.

Browsers cannot set headers on a WebSocket handshake, so a token would travel in the
query string, where access logs and proxies keep it. Instead a client asks
`POST /api/ws-ticket` (with its bearer token) and connects with `?ticket=`:
- a ticket is 32 random bytes, valid `TTL` (30 s), good for one `$connect`;
- only its SHA-256 is stored, with the user, the version and the expiry of the token that
  asked for it (a logout in between refuses the ticket; the connection ends when that
  token would have expired);
- `$connect` consumes it with a conditional delete (`IF it exists and has not expired`):
  of two connects racing with one ticket, exactly one wins;
- a user may ask for `WS_TICKETS_PER_MINUTE` (default 30) per minute: the ticket and the
  minute's count are one transaction, the count `ADD 1 IF below the limit`.
Items carry a TTL, so the table empties itself.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib import auth, clock, config, writes
from chalicelib.errors import TooManyRequests, Unauthorized
from chalicelib.tables import TicketModel

TTL = timedelta(seconds=30)
_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


@dataclass(frozen=True)
class Redeemed:
    user: auth.User
    token_expires_at: datetime  # the connection must not outlive the token behind it


def per_minute() -> int:
    return config.int_setting("WS_TICKETS_PER_MINUTE", 30)


def issue(user: auth.User, token_expires_at: datetime) -> str:
    """A fresh ticket for `user`, bound to the token (version and expiry) that asked."""
    now = clock.now()
    ticket = secrets.token_urlsafe(32)
    expires_at = min(now + TTL, token_expires_at)
    item = TicketModel(
        _hash(ticket),
        user_id=user.id,
        token_version=user.token_version,
        token_expires_at=clock.iso(token_expires_at),
        expires_at=clock.iso(expires_at),
        ttl=now + TTL + timedelta(hours=1),
    )
    minute = int(now.timestamp() // 60)
    failed = (
        writes.Tx()
        .put("ticket", item, _NEW)
        .update(
            "rate",
            TicketModel(f"rate#{user.id}#{minute}"),
            [TicketModel.issued.add(1), TicketModel.ttl.set(now + timedelta(hours=1))],
            _below(per_minute()),
        )
        .commit()
    )
    if failed:
        wait = 60 - int(now.timestamp()) % 60
        raise TooManyRequests(
            f"Too many WebSocket tickets (at most {per_minute()} a minute)",
            {"limit": per_minute()},
            headers={"Retry-After": str(wait)},
        )
    return ticket


def redeem(ticket: str) -> Redeemed:
    """The user a ticket was issued to; `Unauthorized` for an unknown, used or expired
    ticket, or one whose token was revoked since. Consumes it."""
    if not isinstance(ticket, str) or not _SHAPE.fullmatch(ticket):
        raise _refused()
    key = _hash(ticket)
    try:
        item = TicketModel.get(key, consistent_read=True)
    except DoesNotExist:
        raise _refused() from None
    if item.user_id is None or not writes.delete_if(TicketModel(key), _unused(clock.now())):
        raise _refused()
    user = auth.user_of({"sub": item.user_id, "ver": int(item.token_version or 0)})
    return Redeemed(user, clock.parse(item.token_expires_at or item.expires_at or ""))


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("ascii")).hexdigest()


def _refused() -> Unauthorized:
    return Unauthorized("Invalid or expired ticket")


# The rules of tickets, each stated once.
_NEW = TicketModel.ticket_hash.does_not_exist()


def _unused(now: datetime) -> Condition:
    """Still there (nobody consumed it) and not expired."""
    return TicketModel.ticket_hash.exists() & (TicketModel.expires_at > clock.iso(now))


def _below(limit: int) -> Condition:
    return TicketModel.issued.does_not_exist() | (TicketModel.issued < limit)
