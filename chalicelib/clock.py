"""The one clock of the app, replaceable in tests so that no test sleeps for time to pass.

Timestamps are ISO-8601 UTC strings of one fixed width ending in `Z`, so that they sort as
strings in DynamoDB keys and conditions (`2026-11-30T09:10:00.000000Z`). Always call
`clock.now()` through the module (not `from clock import now`) so a test's clock is seen.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _system_now() -> datetime:
    return datetime.now(timezone.utc)


_source: Callable[[], datetime] = _system_now


def now() -> datetime:
    return _source()


def use(source: Callable[[], datetime] | None) -> None:
    """Make `now()` answer from `source` (None: the system clock again)."""
    global _source
    _source = source or _system_now


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(_FORMAT)


def parse(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=timezone.utc)


def now_iso() -> str:
    return iso(now())
