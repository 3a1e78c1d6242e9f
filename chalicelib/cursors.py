"""Paging through a DynamoDB query: a page of `limit` items, and an opaque cursor to the next.

A cursor holds only the sort key of the last item shown, never the partition key: the
partition is always the caller's, so a cursor copied from another user's answer pages
through the caller's own items. It is validated like any other query parameter (a 422
for one this API did not give out), by a pydantic type: `Annotated[str, key_in(PATTERN)]`
reads as the sort key itself.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Callable, Iterable, TypeVar

from pydantic import AfterValidator

T = TypeVar("T")


MAX_CURSOR_CHARS = 512  # far more than any key this API pages by


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode(cursor: str, pattern: re.Pattern[str]) -> str:
    """The sort key a cursor holds, which must match `pattern`; `ValueError` for anything
    this API did not give out."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["k"]
        if not isinstance(key, str) or not pattern.fullmatch(key):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise ValueError("not a cursor this API gave out") from None
    return key


def key_in(pattern: re.Pattern[str]) -> AfterValidator:
    """A validator turning a cursor into the sort key it holds, which must match `pattern`."""
    return AfterValidator(lambda cursor: decode(cursor, pattern))


def page(items: Iterable[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The first `limit` items, and a cursor when there are more (one more is read to know)."""
    found: list[T] = []
    for item in items:
        found.append(item)
        if len(found) > limit:
            break
    if len(found) <= limit:
        return found, None
    return found[:limit], encode(key(found[limit - 1]))
