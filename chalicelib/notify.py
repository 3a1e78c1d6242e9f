"""One way out for events to a user's clients: `send_to_user(user_id, message)`.

The job registry (and later the runner) emit DESIGN §5 events through this module and
never know how they travel. The WebSocket issue plugs the API Gateway `@connections`
notifier (`chalicelib.websocket`) in as the default; tests plug in a `RecordingNotifier`
with `use(...)`, and `LoggingNotifier` stays for code that wants events only logged.

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
    """The default: nothing is connected yet, so events only reach the debug log."""

    def send_to_user(self, user_id: str, message: Message) -> None:
        log.debug("event for %s: %s", user_id, message)


class RecordingNotifier:
    """Keeps every `(user_id, message)` in the order sent; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[tuple[str, Message]] = []

    def send_to_user(self, user_id: str, message: Message) -> None:
        with self._lock:
            self._sent.append((user_id, dict(message)))

    @property
    def sent(self) -> list[tuple[str, Message]]:
        """A snapshot copy (other threads may still be sending)."""
        with self._lock:
            return list(self._sent)

    def messages(self, type_: str | None = None, *, user_id: str | None = None) -> list[Message]:
        """The messages sent, optionally only those of one `type` and/or one user."""
        return [
            message
            for user, message in self.sent
            if (type_ is None or message.get("type") == type_)
            and (user_id is None or user == user_id)
        ]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()


def _default() -> Notifier:
    """API Gateway's `@connections` API, to every connection of the user (DESIGN §5)."""
    from chalicelib import websocket

    return websocket.notifier


_current: Notifier = _default()
_current_lock = threading.Lock()


def use(notifier: Notifier | None) -> Notifier:
    """Make `notifier` the one events go to (None: the default); returns the old one."""
    global _current
    with _current_lock:
        previous, _current = _current, notifier or _default()
    return previous


def current() -> Notifier:
    return _current


def send_to_user(user_id: str, message: Message) -> None:
    """Forward to the current notifier; never raises (see the module docstring)."""
    try:
        _current.send_to_user(user_id, message)
    except Exception:  # noqa: BLE001 - an event must never undo or fail a committed change
        log.warning("notifier failed for %s (%s)", user_id, message.get("type"), exc_info=True)
