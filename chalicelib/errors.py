"""Client-facing errors: every one becomes `{"error": ..., "detail": ...}` with its status.

Raised anywhere in `chalicelib`; `app.py` turns them into responses in one place, so no route
builds an error body by hand.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400

    def __init__(self, error: str, detail: Any = None, *, status: int | None = None):
        super().__init__(error)
        self.error = error
        self.detail = detail
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
    status = 422


class TooManyRequests(ApiError):
    status = 429
