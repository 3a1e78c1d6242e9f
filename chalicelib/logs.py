"""The app's logging, configured once per process by `app.py` (every Lambda imports it).

Lambda's Python runtime leaves the root logger at WARNING, so without this every INFO line
of `chalicelib` (the tick's summary, a dispatch that failed) would be dropped. The level of
the package's loggers is the setting `LOG_LEVEL` (default INFO); the handler stays the
runtime's, which writes to CloudWatch — as JSON when the function's `LoggingConfig` says so
(the template does), with every extra attribute of a record as a field of its own.

A job's context: `context(job_id=...)` at a Lambda entry and `bind(user_id=...,
schedule_id=...)` once they are known put those fields on every record logged while the
job runs, by any logger. Worker threads do not inherit a `ContextVar`, so a record logged
outside any context takes the context of the process's only running job, when there is
exactly one (a Lambda container runs one invocation at a time); with several at once (the
dev stack runs runners in threads) such a record carries no ids rather than wrong ones.
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

PACKAGE_LOGGERS = ("chalicelib", "benchmark-scheduler")  # the package and Chalice's `app.log`
CONTEXT_FIELDS = ("job_id", "user_id", "schedule_id")

_current: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)
_running: dict[int, dict[str, Any]] = {}
_running_lock = threading.Lock()
_factory_lock = threading.Lock()
_installed = False


def configure() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    for name in PACKAGE_LOGGERS:
        logging.getLogger(name).setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    _install_record_factory()


@contextmanager
def context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Log `fields` (and whatever `bind` adds) on every record until the block ends."""
    current = {k: v for k, v in fields.items() if v is not None}
    token = _current.set(current)
    with _running_lock:
        _running[id(current)] = current
    try:
        yield current
    finally:
        with _running_lock:
            _running.pop(id(current), None)
        _current.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context (no-op outside one)."""
    current = _current.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def current_fields() -> dict[str, Any]:
    found = _current.get()
    if found is None:
        with _running_lock:
            found = next(iter(_running.values())) if len(_running) == 1 else None
    return dict(found or {})


def _install_record_factory() -> None:
    global _installed
    with _factory_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            for key, value in current_fields().items():
                if not hasattr(record, key):
                    setattr(record, key, value)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
