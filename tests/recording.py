"""Recorders the tests plug into the app: every event sent to users, every DynamoDB call."""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

from chalicelib import tables

Message = dict[str, Any]


class RecordingNotifier:
    """A `chalicelib.notify` notifier that keeps every `(user_id, message)` in the order
    sent; safe to share between threads."""

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


class DynamoCalls:
    """Counts DynamoDB API calls by name, from botocore's `before-call` event, and the items
    they read (what DynamoDB bills a read on: a Query's `ScannedCount`, a found GetItem's
    item), from `after-call`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: Counter[str] = Counter()
        self.items_read = 0

    def __call__(self, model=None, **_) -> None:
        with self._lock:
            self.by_name[model.name] += 1

    def answered(self, parsed=None, **_) -> None:
        read = parsed.get("ScannedCount", 1 if parsed.get("Item") else 0)
        with self._lock:
            self.items_read += read

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_name.values())

    def reset(self) -> None:
        with self._lock:
            self.by_name.clear()
            self.items_read = 0


@contextmanager
def counting_dynamodb_calls() -> Iterator[DynamoCalls]:
    """Hook the botocore client every table (and every transaction) talks through."""
    counter = DynamoCalls()
    client = tables._shared_connection().client
    client.meta.events.register("before-call.dynamodb", counter)
    client.meta.events.register("after-call.dynamodb", counter.answered)
    try:
        yield counter
    finally:
        client.meta.events.unregister("before-call.dynamodb", counter)
        client.meta.events.unregister("after-call.dynamodb", counter.answered)
