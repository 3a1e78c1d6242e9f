"""The one enumeration of error types (chalicelib/providers/errors.py)."""
from __future__ import annotations

import pytest

from chalicelib.providers import errors


@pytest.mark.parametrize(
    "value",
    ["rate_limited", "auth_failed", "timeout", "network", "bad_response", "cancelled", "deadline",
     "unknown_model", "http_100", "http_404", "http_529", "http_599"],
)
def test_documented_types_are_error_types(value):
    assert errors.is_error_type(value)


@pytest.mark.parametrize(
    "value", ["", "http_", "http_99", "http_600", "http_5000", "http_50x", "HTTP_500", "rate-limited", None, 500]
)
def test_anything_else_is_not(value):
    assert not errors.is_error_type(value)


def test_status_classification():
    assert errors.classify_status(401) == errors.classify_status(403) == errors.AUTH_FAILED
    assert errors.classify_status(429) == errors.RATE_LIMITED
    assert errors.classify_status(500) == "http_500" and errors.classify_status(529) == "http_529"
    assert all(errors.is_error_type(errors.classify_status(s)) for s in range(100, 600))


def test_the_module_docstring_lists_every_named_type():
    assert all(f"``{name}``" in (errors.__doc__ or "") for name in errors.NAMED_ERROR_TYPES)
