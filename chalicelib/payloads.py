"""What clients send: bytes → JSON → validated pydantic model, or a 4xx naming the problem.

Routes never touch `current_request.json_body` (Chalice answers bad JSON there in its own
shape) nor `query_params` directly: they call `parse(model, raw_body)` and
`query(model, params)`. WebSocket messages go through `loads` too. Every validation error
is a 422 whose `detail` lists each problem as `{field, message, limit?}`.

JSON is bounded twice: by size (`MAX_BODY_BYTES`) and by nesting (`MAX_JSON_DEPTH`).
Python's decoder recurses once per level, so `[` × 100,000 would otherwise end in a
`RecursionError` (a 500); no body or message of this API nests deeper than a few levels.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.errors import BadRequest, PayloadTooLarge, Unprocessable

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32

M = TypeVar("M", bound=BaseModel)

# Pydantic prefixes the messages of custom validators; people read the rest.
_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def loads(text: bytes | str) -> Any:
    """JSON within `MAX_JSON_DEPTH`; `BadRequest` for anything else (never RecursionError)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest("Request body is not valid JSON", {"body": str(err)[:200]}) from None
    if depth(data) > MAX_JSON_DEPTH:
        raise _too_deep()
    return data


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0); iterative, so any
    depth the decoder produced can be measured."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children if isinstance(child, (dict, list)))
    return deepest


def _too_deep() -> BadRequest:
    return BadRequest(
        f"JSON nests too deeply (at most {MAX_JSON_DEPTH} levels)",
        {"body": "too deep", "limit": {"max_depth": MAX_JSON_DEPTH}},
    )


def json_object(raw_body: bytes | None) -> dict[str, Any]:
    if raw_body is not None and len(raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            "Request body too large", {"limit_bytes": MAX_BODY_BYTES, "size": len(raw_body)}
        )
    if not raw_body:
        raise BadRequest("Request body must be a JSON object", {"body": "empty"})
    data = loads(raw_body)
    if not isinstance(data, dict):
        raise BadRequest(
            "Request body must be a JSON object", {"body": f"got {type(data).__name__}"}
        )
    return data


def validate(model: type[M], data: Mapping[str, Any], *, parameters: bool = False) -> M:
    """`model` from `data`, or a 422 listing every problem (the first in the message)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = [_problem(e) for e in err.errors(include_url=False, include_input=False)]
        first = problems[0]
        what = "query parameter" if parameters else "field"
        raise Unprocessable(f"Invalid {what} '{first['field']}': {first['message']}", problems) from None


def parse(model: type[M], raw_body: bytes | None) -> M:
    return validate(model, json_object(raw_body))


def query(model: type[M], params: Mapping[str, str] | None) -> M:
    """A route's query string as `model` (its fields are the parameters; unknown ones are
    refused when the model forbids extras)."""
    return validate(model, dict(params or {}), parameters=True)


def _problem(error: Any) -> dict[str, Any]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    problem: dict[str, Any] = {"field": field, "message": _PYDANTIC_PREFIX.sub("", error["msg"])}
    limits = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, (int, float, str))}
    if limits:
        problem["limit"] = limits
    return problem
