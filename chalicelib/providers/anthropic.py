"""Anthropic messages streaming.

Request: ``POST {base_url}/messages`` with ``x-api-key`` and
``anthropic-version: 2023-06-01``. Anthropic accepts temperatures 0–1 only, while a
schedule allows 0–2, so the temperature is clamped to 1.0 rather than failing the run.

Events (the JSON ``type`` is authoritative; the SSE ``event:`` line repeats it):
``message_start`` (usage.input_tokens, plus cache creation/read input tokens, which are
input the model processed too), ``content_block_start``, ``content_block_delta``
(``text_delta`` is text, ``thinking_delta`` is reasoning; ``signature_delta`` and
``input_json_delta`` are not content), ``content_block_stop``, ``message_delta``
(usage.output_tokens, cumulative; stop_reason), ``message_stop`` (terminator),
``ping`` (ignored), ``error``.

An ``error`` event mid-stream ends the run with the class its error type has as an
HTTP answer (Anthropic documents one status per type): ``overloaded_error`` →
``http_529``, ``api_error`` → ``http_500``, ``rate_limit_error`` → ``rate_limited``,
``authentication_error``/``permission_error`` → ``auth_failed``, and so on; an
unknown type is ``bad_response``.
"""

from __future__ import annotations

import json
from typing import Any

from .engine import REASONING, TEXT, ModelTarget, RunSettings, StreamState, WireFormat, error_message_from_doc
from .errors import AUTH_FAILED, BAD_RESPONSE, RATE_LIMITED, ProviderError, http_error

ANTHROPIC_VERSION = "2023-06-01"

#: Anthropic's error types and the error_type their documented HTTP status maps to.
ERROR_TYPE_CLASSES = {
    "invalid_request_error": http_error(400),
    "authentication_error": AUTH_FAILED,
    "permission_error": AUTH_FAILED,
    "not_found_error": http_error(404),
    "request_too_large": http_error(413),
    "rate_limit_error": RATE_LIMITED,
    "api_error": http_error(500),
    "overloaded_error": http_error(529),
}

_loads = json.loads


def build_request(
    target: ModelTarget, settings: RunSettings, api_key: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and JSON body of a streaming messages request."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    if api_key:
        headers["x-api-key"] = api_key
    body = {
        "model": target.model,
        "max_tokens": settings.max_tokens,
        "temperature": min(max(settings.temperature, 0.0), 1.0),
        "messages": [{"role": "user", "content": settings.prompt}],
        "stream": True,
    }
    return target.base_url.rstrip("/") + "/messages", headers, body


def _usage_input(usage: dict[str, Any]) -> int | None:
    parts = [
        usage.get(k)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    ints = [p for p in parts if isinstance(p, int)]
    return sum(ints) if ints else None


def parse_event(event: bytes | None, data: bytes, state: StreamState) -> int:
    """Update ``state`` from one event; return its content flags."""
    doc = _loads(data)
    kind = doc.get("type")
    if kind == "content_block_delta":
        delta = doc.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta":
            return TEXT if delta.get("text") else 0
        if dtype == "thinking_delta":
            return REASONING if delta.get("thinking") else 0
        return 0
    if kind == "message_delta":
        usage = doc.get("usage") or {}
        output = usage.get("output_tokens")
        if isinstance(output, int):
            state.output_tokens = output
        inp = _usage_input(usage)
        if inp is not None and inp > (state.input_tokens or 0):
            state.input_tokens = inp
        reason = (doc.get("delta") or {}).get("stop_reason")
        if reason:
            state.finish_reason = reason
        return 0
    if kind == "message_start":
        usage = (doc.get("message") or {}).get("usage") or {}
        state.input_tokens = _usage_input(usage)
        return 0
    if kind == "message_stop":
        state.finished = True
        state.stop_reading = True
        return 0
    if kind == "error":
        err = doc.get("error") or {}
        etype = err.get("type") if isinstance(err, dict) and isinstance(err.get("type"), str) else None
        message = error_message_from_doc(doc) or json.dumps(doc)
        if etype:
            message = f"{message} ({etype})"
        raise ProviderError(ERROR_TYPE_CLASSES.get(etype or "", BAD_RESPONSE), message)
    return 0  # ping, content_block_start/stop and future event types


WIRE = WireFormat(
    kind="anthropic",
    terminator="event: message_stop",
    build_request=build_request,
    parse_event=parse_event,
)
