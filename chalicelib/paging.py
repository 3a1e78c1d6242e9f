"""Paged lists: `?limit=&cursor=` in, `next_cursor` out.

A list route's query is a `PageQuery` subclass that says how many items a page may hold
at most (`most`: the user's cap, so the default page — which is that many — still returns
everything a client that knows nothing of paging used to get) and what a cursor's key looks
like. `take` cuts the page, also by size: a page stops before `PAGE_BYTES` of JSON (Lambda
answers at most 6 MB, and 200 schedules with 50,000-character prompts would be 10 MB).

A cursor is opaque to clients: base64url of `{"k": <the last key of the page>}`. It holds
only a key of the caller's own items, and the user is always the caller, so a cursor
copied from another user's answer pages through the caller's own items, never theirs.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, Callable, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

PAGE_BYTES = 4 * 1024 * 1024
_MAX_CURSOR_CHARS = 512

Item = dict[str, Any]


class PageQuery(BaseModel):
    """`?limit=&cursor=`; subclasses set `KEY` and `most`."""

    model_config = ConfigDict(extra="forbid")

    KEY: ClassVar[re.Pattern[str]]  # the shape of a cursor's key

    limit: Annotated[int, Field(ge=1)] | None = None
    cursor: str | None = None

    @classmethod
    def most(cls) -> int:
        raise NotImplementedError

    @field_validator("limit")
    @classmethod
    def _at_most(cls, value: int | None) -> int | None:
        if value is not None and value > cls.most():
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to {le}", {"le": cls.most()}
            )
        return value

    @field_validator("cursor")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None:
            cls.key_of(value)
        return value

    @classmethod
    def key_of(cls, cursor: str) -> str:
        """The key a cursor holds; `ValueError` for anything this API did not give out."""
        try:
            if len(cursor) > _MAX_CURSOR_CHARS:
                raise ValueError
            padded = cursor + "=" * (-len(cursor) % 4)
            key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["k"]
            if not isinstance(key, str) or not cls.KEY.fullmatch(key):
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError, RecursionError):
            raise ValueError("not a cursor this API gave out") from None
        return key

    def size(self) -> int:
        return self.limit or self.most()

    def after(self) -> str | None:
        """The key the page starts after (None: from the start)."""
        return self.key_of(self.cursor) if self.cursor is not None else None


def cursor_for(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def take(items: Iterable[Item], limit: int, key: Callable[[Item], str]) -> tuple[list[Item], str | None]:
    """The first `limit` items (fewer when they would pass `PAGE_BYTES`; always at least
    one), and the cursor of the rest, or None when nothing is left. Reads one item past the
    page at most."""
    page: list[Item] = []
    used = 0
    for item in items:
        cost = len(json.dumps(item, default=str))
        if len(page) == limit or (page and used + cost > PAGE_BYTES):
            return page, cursor_for(key(page[-1]))
        page.append(item)
        used += cost
    return page, None
