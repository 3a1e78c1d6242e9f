"""Paged lists: `?limit=&cursor=` in, `next_cursor` out.

A list route's query is a `PageQuery` subclass that says how many items a page may hold
at most (`most`: the user's cap, so the default page — which is that many — still returns
everything a client that knows nothing of paging used to get) and what a cursor's key looks
like. `take` cuts the page, also by size: a page stops before `PAGE_BYTES` of JSON (Lambda
answers at most 6 MB, and 200 schedules with 50,000-character prompts would be 10 MB).

Cursors are `chalicelib.cursors`' (opaque, holding only a sort key of the caller's own items).
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Callable, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from chalicelib import cursors

PAGE_BYTES = 4 * 1024 * 1024

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
        return cursors.decode(cursor, cls.KEY)

    def size(self) -> int:
        return self.limit or self.most()

    def after(self) -> str | None:
        """The key the page starts after (None: from the start)."""
        return self.key_of(self.cursor) if self.cursor is not None else None


def take(items: Iterable[Item], limit: int, key: Callable[[Item], str]) -> tuple[list[Item], str | None]:
    """The first `limit` items (fewer when they would pass `PAGE_BYTES`; always at least
    one), and the cursor of the rest, or None when nothing is left. Reads one item past the
    page at most."""
    page: list[Item] = []
    used = 0
    for item in items:
        cost = len(json.dumps(item, default=str))
        if len(page) == limit or (page and used + cost > PAGE_BYTES):
            return page, cursors.encode(key(page[-1]))
        page.append(item)
        used += cost
    return page, None
