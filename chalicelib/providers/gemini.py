"""Gemini ``streamGenerateContent`` over SSE.

Request: ``POST {base_url}/models/{model}:streamGenerateContent?alt=sse`` with the key
in the ``x-goog-api-key`` header — never in the URL, where httpx exceptions and logs
would carry it.

Chunks are ``GenerateContentResponse`` objects: ``candidates[].content.parts[]`` with
``text`` (a part with ``thought: true`` is reasoning), ``finishReason`` on the last
chunk, ``usageMetadata`` (cumulative; the last one wins): input is
``promptTokenCount``, output is ``candidatesTokenCount + thoughtsTokenCount`` (thinking
tokens are billed as output but not included in the candidates count).

There is no ``[DONE]``: the stream is complete when a ``finishReason`` was seen and
the body then ends; reading continues to the end because usage may follow.
A ``promptFeedback.blockReason`` without candidates (prompt refused) is a
``bad_response`` naming the reason.

Errors: a 400 whose ``details`` carry ``reason: API_KEY_INVALID`` is ``auth_failed``
(Gemini does not use 401 for a bad key). An ``{"error": {...}}`` object in the stream
is classified by its ``code``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from .engine import REASONING, TEXT, ModelTarget, RunSettings, StreamState, WireFormat, error_message_from_doc
from .errors import AUTH_FAILED, BAD_RESPONSE, ProviderError, classify_status

_AUTH_REASONS = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
_loads = json.loads


def build_request(
    target: ModelTarget, settings: RunSettings, api_key: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL (no key in it), headers and JSON body of a streaming generateContent."""
    model = target.model.removeprefix("models/")
    url = f"{target.base_url.rstrip('/')}/models/{quote(model, safe='-._~')}:streamGenerateContent?alt=sse"
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["x-goog-api-key"] = api_key
    body = {
        "contents": [{"role": "user", "parts": [{"text": settings.prompt}]}],
        "generationConfig": {
            "maxOutputTokens": settings.max_tokens,
            "temperature": settings.temperature,
        },
    }
    return url, headers, body


def _error(err: Any) -> ProviderError:
    message = error_message_from_doc({"error": err}) or json.dumps(err)
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and 100 <= code <= 599:
        return ProviderError(_classify(code, {"error": err}), message)
    return ProviderError(BAD_RESPONSE, message)


def parse_event(event: bytes | None, data: bytes, state: StreamState) -> int:
    """Update ``state`` from one chunk; return its content flags."""
    doc = _loads(data)
    flags = 0
    candidates = doc.get("candidates")
    if candidates:
        for cand in candidates:
            content = cand.get("content")
            if content:
                for part in content.get("parts") or ():
                    if part.get("text"):
                        flags |= REASONING if part.get("thought") else TEXT
            reason = cand.get("finishReason")
            if reason:
                state.finish_reason = reason
                state.finished = True
    usage = doc.get("usageMetadata")
    if usage:
        prompt = usage.get("promptTokenCount")
        if isinstance(prompt, int):
            state.input_tokens = prompt
        out = usage.get("candidatesTokenCount")
        thoughts = usage.get("thoughtsTokenCount")
        if isinstance(out, int) or isinstance(thoughts, int):
            state.output_tokens = (out if isinstance(out, int) else 0) + (
                thoughts if isinstance(thoughts, int) else 0
            )
    if not candidates:
        if doc.get("error"):
            raise _error(doc["error"])
        block = (doc.get("promptFeedback") or {}).get("blockReason")
        if block:
            raise ProviderError(BAD_RESPONSE, f"prompt blocked by Gemini: {block}")
    return flags


def _reasons(doc: Any) -> set[str]:
    if isinstance(doc, list) and doc:
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    if not isinstance(details, list):
        return set()
    return {d["reason"] for d in details if isinstance(d, dict) and isinstance(d.get("reason"), str)}


def _classify(status: int, doc: Any) -> str:
    override = classify_http(status, doc)
    return override or classify_status(status)


def classify_http(status: int, doc: Any) -> str | None:
    """A 400 that is really a bad key (``API_KEY_INVALID``) is ``auth_failed``."""
    if status == 400 and _reasons(doc) & _AUTH_REASONS:
        return AUTH_FAILED
    return None


WIRE = WireFormat(
    kind="gemini",
    terminator="a candidate's finishReason",
    build_request=build_request,
    parse_event=parse_event,
    classify_http=classify_http,
)
