"""Loopback LLM provider servers speaking the OpenAI, Anthropic and Gemini stream formats.

Why it exists: the engine's tests, the fidelity benchmark and the local stack's
``demo`` provider all need a provider whose timing is known exactly and whose
failures can be ordered on demand, without network or keys. One threaded HTTP/1.1
server (stdlib ``ThreadingHTTPServer``: one thread per connection, so concurrent
streams are independent) serves all three formats, told apart by the request path:

- OpenAI-compatible: ``POST …/chat/completions`` (``base_url_for("openai")`` is
  ``…/openai/v1``; ``…/v1`` also works and is what the ``demo`` provider uses);
- Anthropic: ``POST …/messages`` (``…/anthropic/v1``);
- Gemini: ``POST …/models/{model}:streamGenerateContent?alt=sse`` (``…/gemini/v1beta``).

Behaviour is chosen per request from the model name, so one server covers every test
case: a preset name optionally followed by ``+key=value`` options, e.g. ``fast``,
``slow``, ``err-429``, ``cut``, ``stall+stall=3+at=2``, ``t+ttft=150+itl=20+tokens=50``.
Presets (see :data:`PRESETS` and :func:`behaviour_for`):

=====================  =====================================================
``fast`` / ``slow``    the demo models (module constants below)
``t``                  plain stream, defaults of :class:`Behaviour`
``reasoning``          reasoning chunks first, then text
``nousage``            no usage reported
``norole``             no content-free first chunk
``err-<status>``       that HTTP status with the provider's real error body
                       (401, 403, 404, 429, 500, 529, 400 …)
``err-400-key``        Gemini's 400 ``API_KEY_INVALID`` (other formats: their 400)
``err-echo-key``       a 400 whose message echoes the API key (scrubbing tests)
``malformed``          one chunk of broken JSON after ``at`` tokens
``cut``                socket closed after ``at`` tokens, no terminator
``noterm``             body ends cleanly but without the terminator
``stall``              silence for ``stall`` seconds after ``at`` tokens
``midstream-error``    the format's in-stream error event after ``at`` tokens
``json``               a complete non-streaming JSON answer (200, application/json)
=====================  =====================================================

The request's output limit (OpenAI ``max_tokens``/``max_completion_tokens``, Anthropic
``max_tokens``, Gemini ``generationConfig.maxOutputTokens``) caps the tokens streamed, as
real APIs stop at it: a schedule's ``max_tokens`` 8 gets 8 tokens of ``demo/slow``, not 64.

Options: ``ttft`` (ms), ``itl`` (ms between content chunks), ``tokens``,
``reasoning`` (count of reasoning chunks, before the text), ``usage`` (0/1), ``role``
(0/1), ``at`` (content chunks before a fault), ``stall`` (seconds).
A server may also map exact model names to behaviours (``models=``) and set a
``default`` for unknown names (otherwise 404 with the provider's body), and may require
an ``api_key`` (then a wrong key gets the format's real auth error), and may serve
HTTPS with a given server ``tls`` context (``sni_names`` then records the names
clients asked for in TLS SNI).

Timing: every chunk is scheduled from the moment the request body was read (first
content at ``+ttft``, then every ``itl``), so delays do not accumulate; each SSE event
goes out in one ``send`` with ``TCP_NODELAY``. The content-free first chunk
(``role``: OpenAI's role-only delta, Anthropic's ``message_start`` +
``content_block_start`` + ``ping``, Gemini's empty-text chunk) is sent at once.

Use::

    with FakeProviderServer() as srv:
        srv.base_url_for("openai")        # http://127.0.0.1:<port>/openai/v1
    serve_demo("127.0.0.1", 8503)         # blocking, for the dev stack
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

__all__ = [
    "Behaviour",
    "FakeProviderServer",
    "RecordedRequest",
    "PRESETS",
    "PATH_PREFIXES",
    "behaviour_for",
    "count_prompt_tokens",
    "serve_demo",
    "demo_server",
    "DEMO_FAST_TTFT_S",
    "DEMO_FAST_TOKENS_PER_S",
    "DEMO_FAST_TOKENS",
    "DEMO_SLOW_TTFT_S",
    "DEMO_SLOW_TOKENS_PER_S",
    "DEMO_SLOW_TOKENS",
    "DEMO_MODELS",
]

log = logging.getLogger(__name__)

DEMO_FAST_TTFT_S = 0.100
DEMO_FAST_TOKENS_PER_S = 100.0
DEMO_FAST_TOKENS = 64
DEMO_SLOW_TTFT_S = 0.600
DEMO_SLOW_TOKENS_PER_S = 20.0
DEMO_SLOW_TOKENS = 64

_WORDS = (
    "the quick brown fox jumps over a lazy dog while seven benchmarks measure "
    "every token that streams from the model to the client"
).split()


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one request. Times are seconds."""

    ttft_s: float = 0.02
    itl_s: float = 0.002
    tokens: int = 12
    reasoning_tokens: int = 0
    role_chunk: bool = True
    usage: bool = True
    error_status: int | None = None
    error_variant: str | None = None  # "key_invalid" | "echo_key"
    malformed_at: int | None = None
    cut_at: int | None = None
    noterm: bool = False
    stall_at: int | None = None
    stall_s: float = 0.0
    stream_error_at: int | None = None
    non_streaming: bool = False

    @property
    def output_tokens(self) -> int:
        return self.reasoning_tokens + self.tokens


DEMO_MODELS: dict[str, Behaviour] = {
    "fast": Behaviour(
        ttft_s=DEMO_FAST_TTFT_S, itl_s=1.0 / DEMO_FAST_TOKENS_PER_S, tokens=DEMO_FAST_TOKENS
    ),
    "slow": Behaviour(
        ttft_s=DEMO_SLOW_TTFT_S, itl_s=1.0 / DEMO_SLOW_TOKENS_PER_S, tokens=DEMO_SLOW_TOKENS
    ),
}

PRESETS: dict[str, Behaviour] = {
    **DEMO_MODELS,
    "t": Behaviour(),
    "reasoning": Behaviour(reasoning_tokens=8, tokens=8),
    "nousage": Behaviour(usage=False),
    "norole": Behaviour(role_chunk=False),
    "err-400-key": Behaviour(error_status=400, error_variant="key_invalid"),
    "err-echo-key": Behaviour(error_status=400, error_variant="echo_key"),
    "malformed": Behaviour(malformed_at=3),
    "cut": Behaviour(cut_at=3),
    "noterm": Behaviour(noterm=True),
    "stall": Behaviour(stall_at=2, stall_s=5.0),
    "midstream-error": Behaviour(stream_error_at=3),
    "json": Behaviour(non_streaming=True),
}

_OPTION_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "ttft": ("ttft_s", lambda v: float(v) / 1000.0),
    "itl": ("itl_s", lambda v: float(v) / 1000.0),
    "tokens": ("tokens", int),
    "reasoning": ("reasoning_tokens", int),
    "usage": ("usage", lambda v: v not in ("0", "false", "no")),
    "role": ("role_chunk", lambda v: v not in ("0", "false", "no")),
    "stall": ("stall_s", float),
}
_AT_FIELDS = ("malformed_at", "cut_at", "stall_at", "stream_error_at")


def behaviour_for(model: str) -> Behaviour | None:
    """Parse ``preset[+key=value…]``; ``None`` if the preset is unknown or malformed."""
    name, *options = model.split("+")
    base = PRESETS.get(name)
    if base is None and name.startswith("err-") and name[4:].isdigit():
        base = Behaviour(error_status=int(name[4:]))
    if base is None:
        return None
    changes: dict[str, Any] = {}
    try:
        for option in options:
            key, _, value = option.partition("=")
            if key == "at":
                for at_field in _AT_FIELDS:
                    if getattr(base, at_field) is not None:
                        changes[at_field] = int(value)
            elif key in _OPTION_FIELDS:
                attr, convert = _OPTION_FIELDS[key]
                changes[attr] = convert(value)
            else:
                return None
    except ValueError:
        return None
    return replace(base, **changes)


def count_prompt_tokens(text: str) -> int:
    """The input token count the fake servers report: one per 4 characters, at least 1."""
    return max(1, len(text) // 4)


def _output_limit(body: dict[str, Any]) -> int | None:
    """The most output tokens the request allows, in whichever format's field it uses."""
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    for value in (body.get("max_completion_tokens"), body.get("max_tokens"), config.get("maxOutputTokens")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _within_limit(behaviour: Behaviour | None, limit: int | None) -> Behaviour | None:
    """The behaviour with its output cut to `limit` tokens (reasoning first, as models spend it)."""
    if behaviour is None or limit is None or behaviour.output_tokens <= limit:
        return behaviour
    reasoning = min(behaviour.reasoning_tokens, limit)
    return replace(behaviour, reasoning_tokens=reasoning, tokens=limit - reasoning)


def _token_text(i: int) -> str:
    return " " + _WORDS[i % len(_WORDS)]


# ---------------------------------------------------------------- wire formats


@dataclass
class _Call:
    """One request as a wire format sees it."""

    model: str
    prompt_tokens: int
    behaviour: Behaviour
    include_usage: bool
    api_key: str


def _sse(doc: Any, event: str | None = None) -> bytes:
    data = json.dumps(doc, separators=(",", ":")).encode()
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


def _mask(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "***"


class _OpenAIFormat:
    """OpenAI chat.completion.chunk stream."""

    kind = "openai"

    def _chunk(self, call: _Call, delta: dict[str, Any], finish: str | None = None) -> bytes:
        doc: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": call.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if call.include_usage:
            doc["usage"] = None
        return _sse(doc)

    def opening(self, call: _Call) -> list[bytes]:
        return [self._chunk(call, {"role": "assistant", "content": "", "refusal": None})]

    def token(self, call: _Call, i: int, reasoning: bool, first: bool) -> bytes:
        key = "reasoning_content" if reasoning else "content"
        return self._chunk(call, {key: _token_text(i)})

    def closing(self, call: _Call, terminator: bool) -> list[bytes]:
        out = [self._chunk(call, {}, "stop")] if terminator else []
        b = call.behaviour
        if b.usage and call.include_usage:
            out.append(
                _sse(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 1700000000,
                        "model": call.model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": call.prompt_tokens,
                            "completion_tokens": b.output_tokens,
                            "total_tokens": call.prompt_tokens + b.output_tokens,
                            "completion_tokens_details": {"reasoning_tokens": b.reasoning_tokens},
                        },
                    }
                )
            )
        if terminator:
            out.append(b"data: [DONE]\n\n")
        return out

    def malformed(self, call: _Call) -> bytes:
        return b'data: {"id":"chatcmpl-fake","choices":[{"index":0,"delta":{"content":"oops"\n\n'

    def stream_error(self, call: _Call) -> bytes:
        return _sse(
            {
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )

    def full_answer(self, call: _Call) -> dict[str, Any]:
        b = call.behaviour
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1700000000,
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(_token_text(i) for i in range(b.tokens))},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": b.output_tokens,
                "total_tokens": call.prompt_tokens + b.output_tokens,
            },
        }

    def error_body(self, call: _Call, status: int, variant: str | None) -> dict[str, Any]:
        key = call.api_key
        if variant == "echo_key":
            return {"error": {"message": f"Invalid API key {key} for this deployment", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
        bodies = {
            400: ("Invalid value for 'temperature': expected a number between 0 and 2.", "invalid_request_error", "temperature", "invalid_value"),
            401: (f"Incorrect API key provided: {_mask(key)}. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", None, "invalid_api_key"),
            403: ("Country, region, or territory not supported", "request_forbidden", None, "unsupported_country_region_territory"),
            404: (f"The model `{call.model}` does not exist or you do not have access to it.", "invalid_request_error", None, "model_not_found"),
            429: (f"Rate limit reached for {call.model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.", "requests", "requests", "rate_limit_exceeded"),
            500: ("The server had an error while processing your request. Sorry about that!", "server_error", None, None),
        }
        message, etype, param, code = bodies.get(
            status, (f"Upstream error {status}", "server_error", None, None)
        )
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}


class _AnthropicFormat:
    """Anthropic messages event stream."""

    kind = "anthropic"

    def __init__(self) -> None:
        self._block: dict[int, str] = {}

    def _start(self, call: _Call) -> bytes:
        usage: dict[str, Any] = {"output_tokens": 1}
        if call.behaviour.usage:
            usage = {
                "input_tokens": call.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            }
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if call.behaviour.usage:
            message["usage"] = usage
        return _sse({"type": "message_start", "message": message}, "message_start")

    @staticmethod
    def _block_start(index: int, reasoning: bool) -> bytes:
        block = {"type": "thinking", "thinking": "", "signature": ""} if reasoning else {"type": "text", "text": ""}
        return _sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")

    def opening(self, call: _Call) -> list[bytes]:
        first_reasoning = call.behaviour.reasoning_tokens > 0
        return [self._start(call), self._block_start(0, first_reasoning), _sse({"type": "ping"}, "ping")]

    def token(self, call: _Call, i: int, reasoning: bool, first: bool) -> bytes:
        b = call.behaviour
        head = b""
        if first and not b.role_chunk:
            head = b"".join(self.opening(call))
        index = 0 if (reasoning or b.reasoning_tokens == 0) else 1
        if not reasoning and i == b.reasoning_tokens and b.reasoning_tokens > 0:
            head += _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}}, "content_block_delta")
            head += _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            head += self._block_start(1, False)
        if reasoning:
            delta = {"type": "thinking_delta", "thinking": _token_text(i)}
        else:
            delta = {"type": "text_delta", "text": _token_text(i)}
        return head + _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")

    def closing(self, call: _Call, terminator: bool) -> list[bytes]:
        b = call.behaviour
        index = 1 if b.reasoning_tokens else 0
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
        if b.usage:
            delta["usage"] = {"output_tokens": b.output_tokens}
        out = [_sse({"type": "content_block_stop", "index": index}, "content_block_stop"), _sse(delta, "message_delta")]
        if terminator:
            out.append(_sse({"type": "message_stop"}, "message_stop"))
        return out

    def malformed(self, call: _Call) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"oo\n\n'

    def stream_error(self, call: _Call) -> bytes:
        return _sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")

    def full_answer(self, call: _Call) -> dict[str, Any]:
        b = call.behaviour
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [{"type": "text", "text": "".join(_token_text(i) for i in range(b.tokens))}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": call.prompt_tokens, "output_tokens": b.output_tokens},
        }

    def error_body(self, call: _Call, status: int, variant: str | None) -> dict[str, Any]:
        if variant == "echo_key":
            return {"type": "error", "error": {"type": "invalid_request_error", "message": f"x-api-key {call.api_key} is not valid for this workspace"}}
        bodies = {
            400: ("invalid_request_error", "max_tokens: Field required"),
            401: ("authentication_error", "invalid x-api-key"),
            403: ("permission_error", "Your API key does not have permission to use the specified resource."),
            404: ("not_found_error", f"model: {call.model}"),
            413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            429: ("rate_limit_error", "This request would exceed the rate limit for your organization (fake-org) of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."),
            500: ("api_error", "Internal server error"),
            529: ("overloaded_error", "Overloaded"),
        }
        etype, message = bodies.get(status, ("api_error", f"Upstream error {status}"))
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_fake0123456789"}


class _GeminiFormat:
    """Gemini streamGenerateContent with ``alt=sse``."""

    kind = "gemini"

    @staticmethod
    def _doc(call: _Call, parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        doc: dict[str, Any] = {"candidates": [cand]}
        if usage is not None and call.behaviour.usage:
            doc["usageMetadata"] = usage
        doc["modelVersion"] = call.model
        doc["responseId"] = "fake-response"
        return _sse(doc)

    def opening(self, call: _Call) -> list[bytes]:
        return [self._doc(call, [{"text": ""}], usage={"promptTokenCount": call.prompt_tokens, "totalTokenCount": call.prompt_tokens})]

    def token(self, call: _Call, i: int, reasoning: bool, first: bool) -> bytes:
        b = call.behaviour
        part: dict[str, Any] = {"text": _token_text(i)}
        if reasoning:
            part["thought"] = True
        last = i == b.output_tokens - 1
        if last and not b.noterm:
            usage = {
                "promptTokenCount": call.prompt_tokens,
                "candidatesTokenCount": b.tokens,
                "totalTokenCount": call.prompt_tokens + b.output_tokens,
            }
            if b.reasoning_tokens:
                usage["thoughtsTokenCount"] = b.reasoning_tokens
            return self._doc(call, [part], "STOP", usage)
        return self._doc(call, [part], usage={"promptTokenCount": call.prompt_tokens, "totalTokenCount": call.prompt_tokens})

    def closing(self, call: _Call, terminator: bool) -> list[bytes]:
        return []  # the last token chunk carries finishReason and usage; the body just ends

    def malformed(self, call: _Call) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "oo\n\n'

    def stream_error(self, call: _Call) -> bytes:
        return _sse({"error": {"code": 500, "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", "status": "INTERNAL"}})

    def full_answer(self, call: _Call) -> dict[str, Any]:
        b = call.behaviour
        return {
            "candidates": [
                {
                    "content": {"parts": [{"text": "".join(_token_text(i) for i in range(b.tokens))}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": call.prompt_tokens,
                "candidatesTokenCount": b.tokens,
                "totalTokenCount": call.prompt_tokens + b.tokens,
            },
        }

    def error_body(self, call: _Call, status: int, variant: str | None) -> dict[str, Any]:
        key = call.api_key
        if variant == "echo_key":
            return {"error": {"code": 400, "message": f"API key {key} is not valid for project fake.", "status": "INVALID_ARGUMENT"}}
        if status == 400 and variant == "key_invalid":
            return {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"},
                        },
                        {
                            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                            "locale": "en-US",
                            "message": "API key not valid. Please pass a valid API key.",
                        },
                    ],
                }
            }
        if status == 403:
            return {
                "error": {
                    "code": 403,
                    "message": f"Permission denied: Consumer 'api_key:{key}' has been suspended.",
                    "status": "PERMISSION_DENIED",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "CONSUMER_SUSPENDED",
                            "domain": "googleapis.com",
                            "metadata": {"consumer": "projects/123456789", "service": "generativelanguage.googleapis.com"},
                        }
                    ],
                }
            }
        bodies = {
            400: ("Request contains an invalid argument.", "INVALID_ARGUMENT"),
            401: ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "UNAUTHENTICATED"),
            404: (f"models/{call.model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.", "NOT_FOUND"),
            429: ("You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.", "RESOURCE_EXHAUSTED"),
            500: ("An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", "INTERNAL"),
            503: ("The model is overloaded. Please try again later.", "UNAVAILABLE"),
        }
        message, status_name = bodies.get(status, (f"Upstream error {status}", "UNKNOWN"))
        return {"error": {"code": status, "message": message, "status": status_name}}


# ----------------------------------------------------------------------- server


@dataclass(frozen=True)
class RecordedRequest:
    """What a client sent, for assertions (headers lower-cased)."""

    kind: str
    path: str
    headers: dict[str, str]
    body: Any


class _Stopped(Exception):
    """The server is stopping: abandon the stream."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    # -- small writers -------------------------------------------------------------

    def _json(self, status: int, doc: Any, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _sleep_until(self, at: float) -> None:
        stop = self.server.stopping
        while True:
            left = at - time.monotonic()
            if stop.is_set():
                raise _Stopped()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    # -- routing ---------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.endswith("/models"):
            names = sorted(self.server.models) or sorted(DEMO_MODELS)
            self._json(200, {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "fake"} for n in names]})
        elif path.endswith("/health"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": f"no route for GET {path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        received = time.monotonic()
        path = unquote(urlsplit(self.path).path)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._json(400, {"error": {"message": "request body is not JSON"}})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        fmt: Any
        if path.endswith("/chat/completions"):
            fmt, model, key = _OpenAIFormat(), str(body.get("model", "")), headers.get("authorization", "").removeprefix("Bearer ")
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages") or [])
        elif path.endswith("/messages"):
            fmt, model, key = _AnthropicFormat(), str(body.get("model", "")), headers.get("x-api-key", "")
            include_usage = True
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages") or [])
        elif ":streamgeneratecontent" in path.lower() or ":generatecontent" in path.lower():
            fmt, key = _GeminiFormat(), headers.get("x-goog-api-key", "")
            model = path.rsplit("/models/", 1)[-1].split(":", 1)[0]
            include_usage = True
            prompt = " ".join(
                str(p.get("text", "")) for c in body.get("contents") or [] for p in c.get("parts") or []
            )
        else:
            self._json(404, {"error": {"message": f"no route for POST {path}"}})
            return
        self.server.record(RecordedRequest(fmt.kind, self.path, headers, body))
        behaviour = _within_limit(self.server.behaviour(model), _output_limit(body))
        call = _Call(model, count_prompt_tokens(prompt), behaviour or Behaviour(), include_usage, key)
        if self.server.api_key is not None and key != self.server.api_key:
            status = 400 if fmt.kind == "gemini" else 401
            self._json(status, fmt.error_body(call, status, "key_invalid"))
            return
        if behaviour is None:
            self._json(404, fmt.error_body(call, 404, None))
            return
        if behaviour.error_status is not None:
            extra = {"retry-after": "20"} if behaviour.error_status == 429 else None
            self._json(behaviour.error_status, fmt.error_body(call, behaviour.error_status, behaviour.error_variant), extra)
            return
        if behaviour.non_streaming or (fmt.kind == "openai" and body.get("stream") is False):
            self._sleep_until(received + behaviour.ttft_s + behaviour.itl_s * behaviour.output_tokens)
            self._json(200, fmt.full_answer(call))
            return
        try:
            self._stream(fmt, call, received)
        except (_Stopped, ConnectionError, OSError):
            self.close_connection = True

    def _stream(self, fmt: Any, call: _Call, received: float) -> None:
        b = call.behaviour
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()  # headers go out now, before the first chunk, as real APIs do
        if b.role_chunk:
            self._chunk(b"".join(fmt.opening(call)))
        shift = 0.0
        for i in range(b.output_tokens):
            if i == b.stall_at:
                shift += b.stall_s
            self._sleep_until(received + b.ttft_s + i * b.itl_s + shift)
            if i == b.cut_at:
                self._cut()
                return
            if i == b.malformed_at:
                self._chunk(fmt.malformed(call))
            if i == b.stream_error_at:
                self._chunk(fmt.stream_error(call))
                self.wfile.write(b"0\r\n\r\n")
                return
            reasoning = i < b.reasoning_tokens
            self._chunk(fmt.token(call, i, reasoning, i == 0))
        if b.output_tokens == 0 and not b.role_chunk:
            self._chunk(b"".join(fmt.opening(call)))
        closing = b"".join(fmt.closing(call, not b.noterm))
        if closing:
            self._chunk(closing)
        self.wfile.write(b"0\r\n\r\n")

    def _cut(self) -> None:
        """Close the connection mid-body: no terminator, no final empty chunk."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops SYNs when many streams start at once,
    # and the kernel retries them 1 s later: a fake TTFT of +1000 ms.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: "FakeProviderServer") -> None:
        self.owner = owner
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """With TLS, wrap each accepted connection; its handshake then runs in the
        connection's own thread (on first read), never in the accept loop."""
        conn, address = super().get_request()
        tls = self.owner.tls
        if tls is not None:
            conn = tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    @property
    def api_key(self) -> str | None:
        return self.owner.api_key

    @property
    def models(self) -> dict[str, Behaviour]:
        return self.owner.models

    def behaviour(self, model: str) -> Behaviour | None:
        return self.owner.behaviour_for(model)

    def record(self, request: RecordedRequest) -> None:
        self.owner._record(request)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_all(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, _Stopped, OSError)):
            return  # a client that went away, or we are stopping
        super().handle_error(request, client_address)


#: Path under the server root of each format's base_url (``demo`` is OpenAI at ``/v1``).
PATH_PREFIXES = {"openai": "/openai/v1", "anthropic": "/anthropic/v1", "gemini": "/gemini/v1beta", "demo": "/v1"}


class FakeProviderServer:
    """All three provider formats on one loopback port, in a background thread.

    ``models`` maps exact model names to behaviours (checked first), then presets
    (:func:`behaviour_for`), then ``default``; an unknown name gets the format's 404.
    ``api_key``, when set, must be presented the way each provider expects.
    ``requests`` keeps the last 1,000 requests seen.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: dict[str, Behaviour] | None = None,
        default: Behaviour | None = None,
        api_key: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.models: dict[str, Behaviour] = dict(models or {})
        self.default = default
        self.api_key = api_key
        self.tls = tls
        #: server names seen in TLS SNI, in order (``None`` for a client sending none)
        self.sni_names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni_names.append(name)
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        #: set once the port is bound (``port`` is then the real one)
        self.ready = threading.Event()

    # -- configuration ----------------------------------------------------------------

    def behaviour_for(self, model: str) -> Behaviour | None:
        if model in self.models:
            return self.models[model]
        return behaviour_for(model) or self.default

    def set_behaviour(self, model: str, behaviour: Behaviour) -> None:
        self.models[model] = behaviour

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self.requests.append(request)
            del self.requests[:-1000]

    # -- addresses ----------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def base_url_for(self, kind: str) -> str:
        """The base_url a ModelTarget of that kind (or ``demo``) should use."""
        return self.root_url + PATH_PREFIXES[kind]

    # -- lifecycle -----------------------------------------------------------------------

    def _bind(self) -> _Server:
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self.ready.set()
        return server

    def start(self) -> "FakeProviderServer":
        """Bind (port 0 = any free port) and serve in a daemon thread."""
        server = self._bind()
        self._serving.set()
        self._thread = threading.Thread(target=self._loop, args=(server, 0.05), name="fake-providers", daemon=True)
        self._thread.start()
        return self

    def _loop(self, server: _Server, poll_interval: float) -> None:
        try:
            server.serve_forever(poll_interval=poll_interval)
        finally:
            self._serving.clear()

    def serve_forever(self) -> None:
        """Bind and serve in the calling thread until :meth:`stop` (or Ctrl-C)."""
        server = self._bind()
        self._serving.set()
        try:
            self._loop(server, 0.2)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop accepting, end every open stream (stalls included) and close the port."""
        server = self._server
        if server is None:
            return
        server.stopping.set()
        if self._serving.is_set():
            server.shutdown()  # returns once serve_forever's loop has exited
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        server = self._server
        if server is None:
            return
        server.stopping.set()
        server.close_all()
        server.server_close()
        self._server = None

    def __enter__(self) -> "FakeProviderServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_server(host: str = "127.0.0.1", port: int = 0) -> FakeProviderServer:
    """The dev stack's ``demo`` provider, not yet started: OpenAI-compatible, models
    ``fast`` and ``slow`` (:data:`DEMO_MODELS`), base_url ``base_url_for("demo")``
    (``http://host:port/v1``). Every preset still works, for end-to-end tests."""
    return FakeProviderServer(host, port, models=dict(DEMO_MODELS))


def serve_demo(host: str = "127.0.0.1", port: int = 8503) -> None:
    """Run :func:`demo_server` in the calling thread until interrupted (Ctrl-C)."""
    server = demo_server(host, port)
    log.info("demo provider on http://%s:%s/v1 (models: %s)", host, port, ", ".join(DEMO_MODELS))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # python -m devstack.fake_providers [port]
    import signal

    # SIGTERM, and SIGINT even when a non-interactive shell started us with it ignored,
    # end serve_demo cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    logging.basicConfig(level=logging.INFO)
    serve_demo(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8503)
