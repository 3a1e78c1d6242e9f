"""Request bodies: bytes → JSON object → validated pydantic model, or a 4xx naming the problem.

Routes never touch `current_request.json_body` (Chalice answers bad JSON there in its own
shape); they call `parse(model, raw_body)`.
"""
from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.errors import BadRequest, PayloadTooLarge, Unprocessable

MAX_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def json_object(raw_body: bytes | None) -> dict[str, Any]:
    if raw_body is not None and len(raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            "Request body too large", {"limit_bytes": MAX_BODY_BYTES, "size": len(raw_body)}
        )
    if not raw_body:
        raise BadRequest("Request body must be a JSON object", {"body": "empty"})
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest("Request body is not valid JSON", {"body": str(err)[:200]}) from None
    if not isinstance(data, dict):
        raise BadRequest(
            "Request body must be a JSON object", {"body": f"got {type(data).__name__}"}
        )
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = [_problem(e) for e in err.errors(include_url=False, include_input=False)]
        first = problems[0]
        raise Unprocessable(f"Invalid field '{first['field']}': {first['message']}", problems) from None


def parse(model: type[M], raw_body: bytes | None) -> M:
    return validate(model, json_object(raw_body))


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    problem = {"field": field, "message": error["msg"]}
    limits = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, (int, float, str))}
    if limits:
        problem["limit"] = limits
    return problem


def int_param(query: dict[str, str], name: str, *, default: int) -> int:
    """An integer query parameter; a 422 naming it when it is not one."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Unprocessable(f"Query parameter '{name}' must be an integer", {"field": name}) from None
