"""Client-facing errors: every one becomes `{"error": ..., "detail": ...}` with its status.

Raised anywhere in `chalicelib`; `app.py` turns them into responses in one place, so no route
builds an error body by hand.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400

    def __init__(
        self,
        error: str,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str | list[str]] | None = None,
    ):
        super().__init__(error)
        self.error = error
        self.detail = detail
        self.headers: dict[str, str | list[str]] = headers or {}
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class Unprocessable(ApiError):
    """422: the request is well-formed but a field (or query parameter) is not acceptable.

    `detail` is always a list of problems `{field, message, limit?, ...}`, so a client
    reads every validation error of every route the same way."""

    status = 422


def invalid(field: str, message: str, *, parameter: bool = False, **extra: object) -> Unprocessable:
    """The 422 of one bad field (or query `parameter`), named with what is wrong."""
    what = "query parameter" if parameter else "field"
    problem = {"field": field, "message": message, **extra}
    return Unprocessable(f"Invalid {what} '{field}': {message}", [problem])


class TooManyRequests(ApiError):
    status = 429
