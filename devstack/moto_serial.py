"""Make moto's DynamoDB apply one request at a time, as DynamoDB does per item.

moto's DynamoDB backend is not thread-safe: two threads' conditional writes on one item can
both succeed (seen: 8 threads doing `SET active = active + 1 IF active < 2` reached 3), and an
item can briefly be seen without an attribute. Real DynamoDB serializes the writes to an
item, so the app's invariants rest on that. Holding one lock around moto's request handler
models it: race tests then fail only for the app's reasons, never for moto's. The tests'
fixture and the dev stack both call `serialize_dynamodb()`; it is the only copy of this shim.
"""
from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()
_INSTALLED = False


def serialize_dynamodb() -> None:
    """Wrap `DynamoHandler.call_action` in one process-wide lock (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self, *args, **kwargs):
        with _LOCK:
            return original(self, *args, **kwargs)

    DynamoHandler.call_action = call_action
    _INSTALLED = True
