"""The shape of every id a path can carry, and the 404 of an id that cannot exist.

Real DynamoDB refuses a key longer than its limits (2,048 bytes for a partition key, 1,024
for a sort key) with a `ValidationException`, which would surface as a 500; moto does not
enforce those limits, so only a rule in the app keeps it from happening. An id that does
not have the shape of the ids this app creates names nothing, so it is answered exactly
like a missing one (404), before any table is read. The one exception is an id the client
chooses for what it creates (`PUT /api/providers/{provider_key}`): there a bad one is a
bad field, a 422 saying what the id must look like.

`route` in `app.py` checks every view argument named in `SHAPES`; a route whose path
parameter is not named here fails `tests/test_path_ids.py`, so a new kind of id is one
line below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from chalicelib.errors import NotFound, invalid
from chalicelib.user_providers import PROVIDER_KEY_PATTERN, PROVIDER_KEY_RULE

# uuid4().hex, and the tick's 32-hex-digit job ids; schedule ids are 32 hex digits too.
_HEX32 = r"[0-9a-f]{32}"
# How much of an unknown id a 404 repeats.
MAX_ECHO_CHARS = 128


@dataclass(frozen=True)
class Shape:
    pattern: re.Pattern[str]
    missing: str  # the 404 of an id of this kind that does not exist
    rule: str = ""  # what the id must look like, for the 422 of a client-chosen one

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None


def _shape(pattern: str, missing: str, rule: str = "") -> Shape:
    return Shape(re.compile(pattern.strip("^$")), missing, rule)


SHAPES: dict[str, Shape] = {
    "schedule_id": _shape(_HEX32, "Schedule not found"),
    "job_id": _shape(_HEX32, "Job not found"),
    "run_id": _shape(r"[0-9TZ.:-]{1,40}-[0-9a-f]{1,64}", "Run not found"),
    "provider_key": _shape(PROVIDER_KEY_PATTERN, "Provider not found", PROVIDER_KEY_RULE),
    "target_user_id": _shape(_HEX32, "User not found"),
    "alert_id": _shape(_HEX32, "Alert not found"),
    "name": _shape(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "No such UI file"),
}


def check(arguments: Mapping[str, Any], *, chosen: frozenset[str] = frozenset()) -> None:
    """`NotFound` for the first argument named in `SHAPES` whose value lacks its shape; a
    422 instead when the argument is in `chosen` (the client names what it creates)."""
    for name, value in arguments.items():
        shape = SHAPES.get(name)
        if shape is None or shape.matches(value):
            continue
        shown = str(value)
        if len(shown) > MAX_ECHO_CHARS:
            shown = shown[:MAX_ECHO_CHARS] + "..."
        if name in chosen:
            raise invalid(name, shape.rule, value=shown)
        raise NotFound(shape.missing, {name: shown})
