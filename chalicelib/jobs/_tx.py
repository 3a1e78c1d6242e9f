"""A TransactWriteItems whose cancellation reasons can be read by name.

DynamoDB answers a cancelled transaction with one reason per item, in request order, and
PynamoDB orders items by kind (condition checks, deletes, puts, updates) rather than by
call order. This wrapper labels each item and maps the reasons back to labels, so callers
ask "did the job's condition fail, or the slot's?" instead of counting positions.

`TransactionConflict` (another transaction held one of the items) and throttling are
retried here: nothing was applied, so the same conditional request is safe to send again.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pynamodb.exceptions import CancellationReason, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import tables

CHECK_FAILED = "ConditionalCheckFailed"
_RETRIES = 5
_KIND_ORDER = ("check", "put", "update")  # PynamoDB's order in TransactItems

Failures = dict[str, CancellationReason]


@dataclass
class Tx:
    _ops: list[tuple[str, str, Callable[[TransactWrite], None]]] = field(default_factory=list)

    def put(self, label: str, model: Model, condition: Condition) -> Tx:
        self._ops.append(("put", label, lambda tx: tx.save(model, condition=condition)))
        return self

    def update(
        self,
        label: str,
        model: Model,
        actions: list[Action],
        condition: Condition | None = None,
        *,
        return_old: bool = False,
    ) -> Tx:
        """`return_old`: on a failed condition the reason carries the item as it is now."""
        returns = "ALL_OLD" if return_old else None
        self._ops.append(
            ("update", label, lambda tx: tx.update(model, actions, condition, returns))
        )
        return self

    def check(self, label: str, model_cls: type[Model], hash_key: Any, condition: Condition) -> Tx:
        self._ops.append(
            ("check", label, lambda tx: tx.condition_check(model_cls, hash_key, condition=condition))
        )
        return self

    def commit(self) -> Failures:
        """Send it; returns {} when applied, else the items whose condition failed."""
        for attempt in range(_RETRIES):
            try:
                with tables.transact_write() as tx:
                    for _kind, _label, add in self._ops:
                        add(tx)
                return {}
            except TransactWriteError as err:
                reasons = err.cancellation_reasons
                if not reasons:
                    raise
                by_label = {
                    label: reason
                    for label, reason in zip(self._labels(), reasons)
                    if reason is not None
                }
                failed = {k: r for k, r in by_label.items() if r.code == CHECK_FAILED}
                if failed and len(failed) == len(by_label):
                    return failed
                if attempt == _RETRIES - 1:
                    raise
                # A conflict or throttle: back off a little (not a wait for time to pass).
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    def _labels(self) -> list[str]:
        ordered = sorted(self._ops, key=lambda op: _KIND_ORDER.index(op[0]))
        return [label for _kind, label, _add in ordered]
