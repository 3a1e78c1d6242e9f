"""OpenAI chat completions streaming, for OpenAI and any OpenAI-compatible server.

Request: ``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options: {include_usage: true}`` so the last chunk before ``[DONE]`` carries
``usage`` (servers that ignore the option make the engine fall back to counting).

Content: ``delta.content`` is text; ``delta.reasoning_content`` (DeepSeek, vLLM, LM
Studio) and ``delta.reasoning`` (OpenRouter, Ollama, Groq) are reasoning. Both count
as tokens; an empty string or a role-only delta does not.

Terminator: ``data: [DONE]``. A body that ends cleanly after a ``finish_reason`` but
without ``[DONE]`` is accepted (a few compatible servers omit it; nothing was lost).

Parameter quirks of api.openai.com: the reasoning families (o1, o3, o4, gpt-5) reject
``max_tokens`` and any temperature but the default, so for that host the request uses
``max_completion_tokens`` (accepted by every OpenAI model) and drops ``temperature``
for those families. Other hosts get the classic ``max_tokens``, which every
compatible server understands.

In-stream errors (``data: {"error": {...}}``, sent by OpenRouter and vLLM when a
stream fails after its headers) are classified by their numeric ``code`` when there
is one, otherwise as ``rate_limited`` / ``http_500`` by their type, else
``bad_response``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from .engine import REASONING, TEXT, ModelTarget, RunSettings, StreamState, WireFormat, error_message_from_doc
from .errors import BAD_RESPONSE, RATE_LIMITED, ProviderError, classify_status, http_error

_DONE = b"[DONE]"
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
_loads = json.loads


def build_request(
    target: ModelTarget, settings: RunSettings, api_key: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and JSON body of a streaming chat completion."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body: dict[str, Any] = {
        "model": target.model,
        "messages": [{"role": "user", "content": settings.prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    official = (urlsplit(target.base_url).hostname or "").lower() == "api.openai.com"
    if official:
        body["max_completion_tokens"] = settings.max_tokens
        if not _REASONING_MODEL.match(target.model):
            body["temperature"] = settings.temperature
    else:
        body["max_tokens"] = settings.max_tokens
        body["temperature"] = settings.temperature
    return target.base_url.rstrip("/") + "/chat/completions", headers, body


def _stream_error(err: Any) -> ProviderError:
    message = error_message_from_doc({"error": err}) or json.dumps(err)
    if isinstance(err, dict):
        code = err.get("code")
        if isinstance(code, int) and 100 <= code <= 599:
            return ProviderError(classify_status(code), message)
        kind = f"{err.get('type')} {code}".lower()
        if "rate_limit" in kind or "tokens" == err.get("type") or "requests" == err.get("type"):
            return ProviderError(RATE_LIMITED, message)
        if "server_error" in kind or "internal" in kind:
            return ProviderError(http_error(500), message)
    return ProviderError(BAD_RESPONSE, message)


def parse_event(event: bytes | None, data: bytes, state: StreamState) -> int:
    """Update ``state`` from one ``data:`` payload; return its content flags."""
    if data == _DONE:
        state.finished = True
        state.stop_reading = True
        return 0
    doc = _loads(data)
    flags = 0
    choices = doc.get("choices")
    if choices:
        for choice in choices:
            delta = choice.get("delta")
            if delta:
                if delta.get("content"):
                    flags |= TEXT
                if delta.get("reasoning_content") or delta.get("reasoning"):
                    flags |= REASONING
            reason = choice.get("finish_reason")
            if reason:
                state.finish_reason = reason
                state.finished = True
    usage = doc.get("usage")
    if usage:
        completion = usage.get("completion_tokens")
        if isinstance(completion, int):
            state.output_tokens = completion
        prompt = usage.get("prompt_tokens")
        if isinstance(prompt, int):
            state.input_tokens = prompt
    if not flags and "error" in doc and doc["error"]:
        raise _stream_error(doc["error"])
    return flags


WIRE = WireFormat(
    kind="openai",
    terminator="data: [DONE]",
    build_request=build_request,
    parse_event=parse_event,
)
