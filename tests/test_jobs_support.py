"""Fixtures and helpers shared by the job registry's tests (no tests here).

Imported by tests/test_jobs*.py: `from tests.test_jobs_support import *`-style names.
"""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import pytest

from chalicelib import notify, tables
from chalicelib.jobs import lifecycle
from chalicelib.tables import JobModel, SlotModel


@pytest.fixture
def events(aws, clock, monkeypatch) -> Iterator[notify.RecordingNotifier]:
    """Fresh tables, the frozen clock, and every event the registry sends, in order.

    Also gives each test a clean memory of job owners (tests reuse job ids across moto
    accounts, which production never does)."""
    monkeypatch.setattr(lifecycle, "_owners", lifecycle._Owners())
    recorder = notify.RecordingNotifier()
    previous = notify.use(recorder)
    yield recorder
    notify.use(previous)


class DynamoCalls:
    """Counts DynamoDB API calls by name, from botocore's `before-call` event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: Counter[str] = Counter()

    def __call__(self, model=None, **_) -> None:
        with self._lock:
            self.by_name[model.name] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_name.values())

    def reset(self) -> None:
        with self._lock:
            self.by_name.clear()


@contextmanager
def counting_dynamodb_calls() -> Iterator[DynamoCalls]:
    """Hook the botocore client every table (and every transaction) talks through."""
    counter = DynamoCalls()
    client = tables._shared_connection().client
    client.meta.events.register("before-call.dynamodb", counter)
    try:
        yield counter
    finally:
        client.meta.events.unregister("before-call.dynamodb", counter)


def slot(user_id: str) -> dict:
    """The slot item as stored ({} if none yet)."""
    try:
        return SlotModel.get(user_id, consistent_read=True).attribute_values
    except SlotModel.DoesNotExist:
        return {}


def status_of(job_id: str) -> str:
    return JobModel.get(job_id, consistent_read=True).status
