"""Make moto's DynamoDB behave like DynamoDB where the app's invariants depend on it.

1. One request at a time. moto's DynamoDB backend is not thread-safe: two threads'
   conditional writes on one item can both succeed (seen: 8 threads doing
   `SET active = active + 1 IF active < 2` reached 3), and an item can briefly be seen
   without an attribute. Real DynamoDB serializes the writes to an item, so the app's
   invariants rest on that. One lock around moto's request handler models it: race tests
   then fail only for the app's reasons, never for moto's.
2. Transactions that cost what DynamoDB's cost. To be able to roll back, moto deep-copies
   every table a TransactWriteItems touches, whole, before applying it: a transaction costs
   O(table size), so tests slow down as they write and the dev stack slows down as its
   history grows. Under the lock of (1) it is enough to remember the few items the
   transaction names and put them back if it is cancelled, which is what this does.

The tests' fixture and the dev stack both call `serialize_dynamodb()`; this is the only copy
of these shims.
"""
from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_INSTALLED = False


def serialize_dynamodb() -> None:
    """Install both shims (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        _serialize_requests()
        _roll_back_items_not_tables()
        _INSTALLED = True


def _serialize_requests() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self, *args, **kwargs):
        with _LOCK:
            return original(self, *args, **kwargs)

    DynamoHandler.call_action = call_action


def _roll_back_items_not_tables() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            saved = _snapshot(self, transact_items)
            # moto's own whole-table backup becomes a reference (no copy) for this call.
            Table.__deepcopy__ = lambda table, memo: table  # type: ignore[method-assign]
            try:
                return original(self, transact_items)
            except Exception:
                _restore(self, saved)
                raise
            finally:
                del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict, Any]]:
    """(table, key, a copy of the item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op = next(iter(entry.values()))
            table_name = op["TableName"]
            table = backend.get_table(table_name)
            key = op.get("Key") or {
                name: op["Item"][name]
                for name in (table.hash_key_attr, table.range_key_attr)
                if name is not None
            }
            current = backend.get_item(table_name, key)
        except Exception:
            continue  # a malformed entry: moto rejects it before changing anything
        saved.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    return saved


def _restore(backend: Any, saved: list[tuple[str, dict, Any]]) -> None:
    for table_name, key, attributes in reversed(saved):
        if attributes is None:
            if backend.get_item(table_name, key) is not None:
                backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, attributes)
