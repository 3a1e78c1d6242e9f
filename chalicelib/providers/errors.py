"""Every ``error_type`` a model's result can carry, and the exception that carries one.

A failed result says ``error_type`` (one of the values below) and ``error`` =
``"[<error_type>] <message>"`` (DESIGN §6). The engine and the runner both name their
failures with these constants, so a client can rely on this list being complete:

``rate_limited``   the provider answered 429 (or said so in the stream)
``auth_failed``    401/403, Gemini's ``API_KEY_INVALID``, a missing or undecryptable key
``timeout``        connect or read timeout, or ``PROVIDER_TOTAL_TIMEOUT_S``
``http_<status>``  any other HTTP status, e.g. ``http_500``, ``http_529``
``network``        connection refused or cut mid-stream, an endpoint the guard refuses
``bad_response``   a body that is not the wire format: junk JSON, no terminator, no
                   content, a non-streaming answer, a line/event/body over its cap
``cancelled``      the user cancelled the job before or while the model ran
``deadline``       the runner stopped before its Lambda deadline
``unknown_model``  the model no longer resolves (its user provider was deleted)

Nothing here imports httpx: the runner and ``app.py`` import this module freely.
"""

from __future__ import annotations

import re

RATE_LIMITED = "rate_limited"
AUTH_FAILED = "auth_failed"
TIMEOUT = "timeout"
NETWORK = "network"
BAD_RESPONSE = "bad_response"
CANCELLED = "cancelled"
DEADLINE = "deadline"
UNKNOWN_MODEL = "unknown_model"

#: The fixed members; ``http_<status>`` is the open family next to them.
NAMED_ERROR_TYPES = frozenset(
    {RATE_LIMITED, AUTH_FAILED, TIMEOUT, NETWORK, BAD_RESPONSE, CANCELLED, DEADLINE, UNKNOWN_MODEL}
)

_HTTP = re.compile(r"http_[1-5][0-9][0-9]")


def http_error(status: int) -> str:
    """The ``http_<status>`` type of an HTTP status without a named class."""
    return f"http_{status}"


def is_error_type(value: object) -> bool:
    """True for a named type or an ``http_<status>`` with a three-digit status 100–599."""
    return isinstance(value, str) and (value in NAMED_ERROR_TYPES or _HTTP.fullmatch(value) is not None)


def classify_status(status: int) -> str:
    """DESIGN §4's status rule: 401/403 auth, 429 rate limit, anything else by number."""
    if status in (401, 403):
        return AUTH_FAILED
    if status == 429:
        return RATE_LIMITED
    return http_error(status)


class ProviderError(Exception):
    """A classified failure inside the engine and its wire formats.

    Carries the ``error_type`` and the provider's message as received (neither scrubbed
    nor trimmed: the engine scrubs the key out first and trims after, once, so a cut can
    never leave part of a key behind).
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
