"""Every conditional DynamoDB write of the app goes through here.

A conditional write is how this app keeps its invariants (DESIGN §2): the condition is the
rule, and a failed condition is an answer ("someone else got there first"), not an error.
So each helper returns that answer instead of raising it:

- `put_if`, `update_if`, `delete_if`: one item; True when applied, False when the
  condition failed. Anything else (throttling beyond botocore's retries, a bad request)
  raises.
- `Tx`: one TransactWriteItems whose items carry labels. DynamoDB answers a cancelled
  transaction with one reason per item, in request order, and PynamoDB orders items by
  kind (condition checks, deletes, puts, updates), not by call order; `commit` maps the
  reasons back to labels, so callers ask "did the job's condition fail, or the slot's?"
  instead of counting positions.

Retry policy, stated once. Throttling and 5xx are retried by botocore's standard mode
(PynamoDB configures it on the shared connection). A transaction cancelled only because
another transaction held one of its items (`TransactionConflict`) applied nothing, so the
same conditional request is sent again after a short jittered pause, up to `TX_ATTEMPTS`.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pynamodb.exceptions import (
    CancellationReason,
    DeleteError,
    PutError,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import tables

CHECK_FAILED = "ConditionalCheckFailed"
_CHECK_FAILED_EXCEPTION = "ConditionalCheckFailedException"
TX_ATTEMPTS = 6
_KIND_ORDER = ("check", "delete", "put", "update")  # PynamoDB's order in TransactItems

Failures = dict[str, CancellationReason]


# --- one item -----------------------------------------------------------------------------


def put_if(model: Model, condition: Condition | None) -> bool:
    """Put `model` if `condition` holds; False when it did not (nothing was written)."""
    try:
        model.save(condition=condition)
    except PutError as err:
        if err.cause_response_code == _CHECK_FAILED_EXCEPTION:
            return False
        raise
    return True


def update_if(model: Model, actions: Sequence[Action], condition: Condition | None) -> bool:
    """Update `model` if `condition` holds; on success `model` holds the item as written
    (PynamoDB asks for ALL_NEW). False when the condition failed."""
    try:
        model.update(actions=list(actions), condition=condition)
    except UpdateError as err:
        if err.cause_response_code == _CHECK_FAILED_EXCEPTION:
            return False
        raise
    return True


def delete_if(model: Model, condition: Condition | None) -> bool:
    """Delete `model` if `condition` holds; False when it did not."""
    try:
        model.delete(condition=condition)
    except DeleteError as err:
        if err.cause_response_code == _CHECK_FAILED_EXCEPTION:
            return False
        raise
    return True


# --- transactions --------------------------------------------------------------------------


@dataclass
class Tx:
    """A labelled TransactWriteItems: build with put/update/delete/check, then `commit`."""

    _ops: list[tuple[str, str, Callable[[TransactWrite], None]]] = field(default_factory=list)

    def put(self, label: str, model: Model, condition: Condition | None = None) -> Tx:
        return self._add("put", label, lambda tx: tx.save(model, condition=condition))

    def update(
        self,
        label: str,
        model: Model,
        actions: Sequence[Action],
        condition: Condition | None = None,
        *,
        return_old: bool = False,
    ) -> Tx:
        """`return_old`: on a failed condition the reason carries the item as it is now."""
        returns = "ALL_OLD" if return_old else None
        return self._add("update", label, lambda tx: tx.update(model, list(actions), condition, returns))

    def delete(self, label: str, model: Model, condition: Condition | None = None) -> Tx:
        return self._add("delete", label, lambda tx: tx.delete(model, condition=condition))

    def check(
        self,
        label: str,
        model_cls: type[Model],
        hash_key: Any,
        condition: Condition,
        range_key: Any = None,
    ) -> Tx:
        return self._add(
            "check",
            label,
            lambda tx: tx.condition_check(model_cls, hash_key, range_key, condition=condition),
        )

    def commit(self) -> Failures:
        """Send it; {} when applied, else the labelled items whose condition failed."""
        for attempt in range(TX_ATTEMPTS):
            try:
                with tables.transact_write() as tx:
                    for _kind, _label, add in self._ops:
                        add(tx)
                return {}
            except TransactWriteError as err:
                by_label = self._reasons(err)
                failed = {k: r for k, r in by_label.items() if r.code == CHECK_FAILED}
                if failed and len(failed) == len(by_label):
                    return failed
                if attempt == TX_ATTEMPTS - 1 or not by_label:
                    raise
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    def _add(self, kind: str, label: str, add: Callable[[TransactWrite], None]) -> Tx:
        if any(existing == label for _k, existing, _a in self._ops):
            raise ValueError(f"label {label!r} used twice in one transaction")
        self._ops.append((kind, label, add))
        return self

    def _reasons(self, err: TransactWriteError) -> dict[str, CancellationReason]:
        reasons = err.cancellation_reasons or []
        ordered = sorted(self._ops, key=lambda op: _KIND_ORDER.index(op[0]))
        return {
            label: reason
            for (_kind, label, _add), reason in zip(ordered, reasons)
            if reason is not None
        }
