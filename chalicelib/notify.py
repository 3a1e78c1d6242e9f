"""One way out for events to a user's clients: `send_to_user(user_id, message)`.

The job registry and the runner emit DESIGN §5 events through this module and never know
how they travel: `app.py` plugs in the API Gateway `@connections` notifier
(`chalicelib.websocket`) with `use(...)`; until something is plugged in, events are only
logged. This module imports nothing of the app, so any module may emit events.

A notifier failure never fails the caller: an event is a courtesy to a browser tab, while
the registry operation that emitted it has already been committed to DynamoDB. So
`send_to_user` logs and swallows whatever the notifier raises.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)

Message = dict[str, Any]


class Notifier(Protocol):
    def send_to_user(self, user_id: str, message: Message) -> None: ...


class LoggingNotifier:
    """Until a notifier is plugged in, events only reach the debug log."""

    def send_to_user(self, user_id: str, message: Message) -> None:
        log.debug("event for %s: %s", user_id, message)


_current: Notifier = LoggingNotifier()
_current_lock = threading.Lock()


def use(notifier: Notifier | None) -> Notifier:
    """Make `notifier` the one events go to (None: only logged); returns the old one."""
    global _current
    with _current_lock:
        previous, _current = _current, notifier or LoggingNotifier()
    return previous


def current() -> Notifier:
    return _current


def send_to_user(user_id: str, message: Message) -> None:
    """Forward to the current notifier; never raises (see the module docstring)."""
    try:
        _current.send_to_user(user_id, message)
    except Exception:  # noqa: BLE001 - an event must never undo or fail a committed change
        log.warning("notifier failed for %s (%s)", user_id, message.get("type"), exc_info=True)
