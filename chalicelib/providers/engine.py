"""The benchmark engine: one streaming request per model, measured and classified.

``run_model`` is the only entry the runner needs. It speaks one of three wire formats
(``openai``, ``anthropic``, ``gemini``; see the sibling modules) over httpx, reads the
body through :mod:`.body` (bounded decompression) and :mod:`.sse` (bounded parsing),
connects to vetted addresses only when asked (:mod:`.pinning`), and turns what it saw
into the result record of DESIGN §4. It never raises for anything a provider or the
network does: every such problem becomes ``success: False`` with a classified
``error_type`` (:mod:`.errors`) and an ``error`` string that never contains the API key.

Measurement rules (DESIGN §4) and why they are what they are:

- ``t0`` is ``time.perf_counter()`` taken after the request object is built and just
  before it is handed to httpx, so JSON encoding and client construction are not billed
  to the provider, while connecting (every call opens its own connection) is.
- A chunk's arrival time is taken once per network read, right after ``iter_raw``
  yields it (before any decompression); every event parsed out of that read shares it
  (they did arrive together).
- TTFT is the arrival of the first chunk carrying content, text or reasoning. An empty
  role-only chunk, which OpenAI-compatible servers send at once, is not content.
  ``ttfo_ms`` is the first non-reasoning content. ITL percentiles use the gaps between
  content-chunk arrivals.
- Tokens are the provider's reported usage. Where a provider reports none, output
  tokens are the number of content chunks (roughly one token each on OpenAI-compatible
  servers, more per chunk on Gemini) and input tokens are ``0`` (unknown, not
  estimated); ``usage_reported`` is then False and ``input_tokens_per_second`` None
  (also when a provider reports output tokens but no input count). ``cost`` then
  covers the counted output only; ``cost_known`` speaks of prices alone.
- ``total_time_s`` runs from ``t0`` to the end of the stream (its terminator, or end of
  body for Gemini).
- A failed result carries ``total_time_s`` (time until the failure) and leaves every
  other metric ``None``/0, so no average can silently include half a measurement.

Timeouts and size caps are read from the environment on every call (never at
import): ``PROVIDER_CONNECT_TIMEOUT_S`` (10), ``PROVIDER_READ_TIMEOUT_S`` (60, the
longest silence allowed between two reads), ``PROVIDER_TOTAL_TIMEOUT_S`` (300, one
model); ``PROVIDER_MAX_EVENT_BYTES`` (1 MiB, one SSE line or event) and
``PROVIDER_MAX_RESPONSE_BYTES`` (32 MiB, one response body after decompression).
The total timeout and the caller's ``deadline`` are enforced by a :class:`.cutoff.Cutoff`
that shuts the request's socket down when they pass (from the connect on, headers
included), so a stream that trickles one byte every 59 s still ends on time; both end
as ``timeout``. A body or event over its cap ends as
``bad_response``: whatever an endpoint sends, one model's run holds a bounded amount
of memory and parses in time linear in what it received.

Error messages are the provider's own words with the API key scrubbed out first and
the result trimmed after, once, in ``_failure``: nothing upstream cuts a message, so no
cut can leave a prefix of the key behind.

httpx is imported lazily so that importing this package (e.g. for ``ModelTarget``)
stays cheap for ``app.py``.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import quote

from chalicelib.percentiles import percentile

from .body import ACCEPT_ENCODING, body_pieces
from .cutoff import Cutoff
from .errors import BAD_RESPONSE, CANCELLED, NETWORK, TIMEOUT, ProviderError, classify_status
from .sse import MAX_EVENT_BYTES, SSELimitExceeded, SSEParser

if TYPE_CHECKING:  # pragma: no cover

    import httpx

__all__ = [
    "ModelTarget",
    "RunSettings",
    "WireFormat",
    "StreamState",
    "TEXT",
    "REASONING",
    "run_model",
    "compute_metrics",
    "percentile",
    "scrub",
    "provider_timeouts",
    "provider_limits",
    "wire_format",
]

log = logging.getLogger(__name__)

#: Content flags a wire format's ``parse_event`` returns for one event.
TEXT = 1
REASONING = 2

_MESSAGE_LIMIT = 300
_ERROR_BODY_LIMIT = 64 * 1024
#: Default of ``PROVIDER_MAX_RESPONSE_BYTES``: a long answer (128k tokens of a few
#: hundred bytes of JSON each) stays well below it.
MAX_RESPONSE_BYTES = 32 << 20


@dataclass(frozen=True)
class ModelTarget:
    """One model to benchmark, resolved by the catalog (who, where, what, how much)."""

    provider_key: str
    kind: str
    base_url: str
    model: str
    name: str
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None


@dataclass(frozen=True)
class RunSettings:
    """The schedule's request parameters, identical for every model of a run."""

    prompt: str
    max_tokens: int
    temperature: float


class StreamState:
    """What a wire format learned from the events so far; mutated by ``parse_event``.

    ``finished``: the stream's own end marker was seen (OpenAI ``finish_reason`` or
    ``[DONE]``, Anthropic ``message_stop``, Gemini ``finishReason``); a body ending
    cleanly without it is a ``bad_response``. ``stop_reading``: the marker is the last
    thing the protocol sends (``[DONE]``, ``message_stop``), so reading stops at once.
    """

    __slots__ = ("input_tokens", "output_tokens", "finished", "stop_reading", "finish_reason")

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finished = False
        self.stop_reading = False
        self.finish_reason: str | None = None


@dataclass(frozen=True)
class WireFormat:
    """The three things that differ between providers; everything else is shared.

    - ``build_request(target, settings, api_key) -> (url, headers, json_body)``
    - ``parse_event(event_name, data, state) -> TEXT|REASONING flags`` (0 = no content);
      raises ``ProviderError`` for an in-stream error, ``ValueError`` & co. for junk.
    - ``classify_http(status, error_doc) -> error_type | None`` to override the status
      rule for a provider quirk (Gemini's 400 ``API_KEY_INVALID``).
    """

    kind: str
    terminator: str
    build_request: Callable[[ModelTarget, RunSettings, "str | None"], "tuple[str, dict[str, str], dict[str, Any]]"]
    parse_event: Callable[["bytes | None", bytes, StreamState], int]
    classify_http: Callable[[int, Any], "str | None"] = lambda status, doc: None


_WIRE_MODULES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}


def wire_format(kind: str) -> WireFormat:
    """Import the wire format lazily (the modules import this one)."""
    module_name = _WIRE_MODULES.get(kind)
    if module_name is None:
        raise ProviderError(BAD_RESPONSE, f"unknown provider kind {kind!r}")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return module.WIRE


# --------------------------------------------------------------------------- timeouts


@dataclass(frozen=True)
class ProviderTimeouts:
    connect_s: float
    read_s: float
    total_s: float


@dataclass(frozen=True)
class ProviderLimits:
    max_event_bytes: int
    max_response_bytes: int


def _env_positive(name: str, default: float) -> float:
    """A positive finite number from the environment; the default (with a warning) for
    anything else, so a typo in a setting never disables a bound."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not a number", name, raw)
        return default
    return value if value > 0 and math.isfinite(value) else default


def provider_timeouts() -> ProviderTimeouts:
    """Read the three provider timeouts from the environment, now."""
    return ProviderTimeouts(
        connect_s=_env_positive("PROVIDER_CONNECT_TIMEOUT_S", 10.0),
        read_s=_env_positive("PROVIDER_READ_TIMEOUT_S", 60.0),
        total_s=_env_positive("PROVIDER_TOTAL_TIMEOUT_S", 300.0),
    )


def provider_limits() -> ProviderLimits:
    """Read the two size caps of one model's response from the environment, now."""
    return ProviderLimits(
        max_event_bytes=int(_env_positive("PROVIDER_MAX_EVENT_BYTES", MAX_EVENT_BYTES)),
        max_response_bytes=int(_env_positive("PROVIDER_MAX_RESPONSE_BYTES", MAX_RESPONSE_BYTES)),
    )


# ------------------------------------------------------------------ error handling


# A masked token starts at the start of a run of key characters (the look-behind keeps
# the match from being retried at every position of a long run: linear, not quadratic).
_MASKED = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]*\*{4,}[A-Za-z0-9_\-]*")


def scrub(text: str, secret: str | None) -> str:
    """Remove ``secret`` (and its URL-encoded form) from ``text``.

    Applied to every string that leaves the engine, whole and before trimming, so a
    cut can never leave part of a key behind. Also removes a provider's own masked
    echo of the key (OpenAI's 401 says ``sk-proj-****…abcd``): prefix and last four
    are still pieces of the key, and the message reads as well without them.
    """
    if not secret or not text:
        return text
    for form in {secret, quote(secret, safe=""), quote(secret)}:
        if form and form in text:
            text = text.replace(form, "***")
    if "****" in text and len(secret) >= 8:
        tail = secret[-4:]
        text = _MASKED.sub(lambda m: "***" if m.group().endswith(tail) else m.group(), text)
    return text


_WS = re.compile(r"\s+")


def _trim(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_message_from_doc(doc: Any) -> str | None:
    """The human message inside a provider's JSON error body, whatever its dialect.

    OpenAI/Anthropic/Gemini nest it in ``error.message``; Gemini's non-SSE errors
    come wrapped in a list; OpenAI-compatible servers use ``{"error": "..."}``
    (Ollama), ``{"detail": ...}`` (FastAPI-based) or ``{"message": ...}``.
    """
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        return None
    err = doc.get("error", doc)
    if isinstance(err, str):
        return err
    if isinstance(err, dict):
        for key in ("message", "detail", "msg"):
            value = err.get(key)
            if isinstance(value, str) and value:
                return value
    for key in ("message", "detail"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value
        if value:
            return json.dumps(value)
    return None


def _read_error_body(response: "httpx.Response", limits: ProviderLimits) -> bytes:
    """The first ``_ERROR_BODY_LIMIT`` decoded bytes of a body that is not a stream."""
    body = bytearray()
    for _, piece in body_pieces(response, limits.max_response_bytes):
        body += piece
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return bytes(body[:_ERROR_BODY_LIMIT])


def _http_error(wire: WireFormat, response: "httpx.Response", limits: ProviderLimits) -> ProviderError:
    status = response.status_code
    try:
        body = _read_error_body(response, limits)
    except Exception as exc:  # the body is a nicety; the status is the error
        body = f"(error body unreadable: {type(exc).__name__})".encode()
    doc: Any = None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        pass
    message = error_message_from_doc(doc) or body.decode("utf-8", "replace").strip()
    message = message or (response.reason_phrase or "no error body")
    error_type = wire.classify_http(status, doc) or classify_status(status)
    if not error_type.startswith("http_"):
        message = f"HTTP {status}: {message}"
    return ProviderError(error_type, message)


def _transport_error(exc: BaseException, timeouts: ProviderTimeouts) -> ProviderError:
    """Map an httpx/OS exception onto the taxonomy, with a message saying what ran out."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderError(TIMEOUT, f"connect timed out after {timeouts.connect_s:g} s")
    if isinstance(exc, httpx.ReadTimeout):
        return ProviderError(TIMEOUT, f"no data for {timeouts.read_s:g} s (PROVIDER_READ_TIMEOUT_S)")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(TIMEOUT, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError(NETWORK, f"connection closed mid-stream: {exc}")
    detail = str(exc) or type(exc).__name__
    return ProviderError(NETWORK, f"{type(exc).__name__}: {detail}")


# ----------------------------------------------------------------------- metrics


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def compute_metrics(
    *,
    t0: float,
    t_end: float,
    first_content: float,
    first_output: float | None,
    arrivals: list[float],
    input_tokens: int | None,
    output_tokens: int,
    usage_reported: bool,
    input_cost_per_mtok: float | None,
    output_cost_per_mtok: float | None,
) -> dict[str, Any]:
    """DESIGN §4's formulas over raw ``perf_counter`` times; pure, for testing.

    ``tokens_per_second = output/total``, ``output_speed_tps = output/(total-TTFT)``,
    ``itl_ms = (total-TTFT)/(output-1)``, ``input_tokens_per_second = input/TTFT``.
    A rate with a zero or undefined denominator, or an unknown (``None``) input count,
    is ``None``; an unknown input count is recorded as 0 tokens and costs nothing.
    """
    known_input = input_tokens
    input_tokens = input_tokens or 0
    total = t_end - t0
    ttft = first_content - t0
    gen = total - ttft
    gaps = [(b - a) * 1000.0 for a, b in zip(arrivals, arrivals[1:])]
    known = input_cost_per_mtok is not None and output_cost_per_mtok is not None
    cost = (
        input_tokens * input_cost_per_mtok / 1e6 + output_tokens * output_cost_per_mtok / 1e6
        if input_cost_per_mtok is not None and output_cost_per_mtok is not None
        else 0.0
    )
    return {
        "ttft_ms": _r(ttft * 1000.0, 2),
        "ttfo_ms": _r(None if first_output is None else (first_output - t0) * 1000.0, 2),
        "total_time_s": _r(total, 4),
        "output_tokens": output_tokens,
        "input_tokens": input_tokens,
        "tokens_per_second": _r(output_tokens / total if total > 0 else None, 2),
        "input_tokens_per_second": _r(
            known_input / ttft if known_input is not None and ttft > 0 else None, 2
        ),
        "output_speed_tps": _r(output_tokens / gen if gen > 0 else None, 2),
        "itl_ms": _r(gen / (output_tokens - 1) * 1000.0 if output_tokens >= 2 else None, 2),
        "itl_p50_ms": _r(percentile(gaps, 50), 2),
        "itl_p99_ms": _r(percentile(gaps, 99), 2),
        "usage_reported": usage_reported,
        "cost": round(cost, 8),
        "cost_known": known,
    }


def _base_record(target: ModelTarget) -> dict[str, Any]:
    return {
        "provider": target.provider_key,
        "model": target.name,
        "model_id": target.model,
        "run": 1,
        "runs": 1,
        "context_tokens": 0,
    }


def _failure(target: ModelTarget, err: ProviderError, elapsed_s: float, api_key: str | None) -> dict[str, Any]:
    message = _trim(scrub(err.message, api_key))
    record = _base_record(target)
    record.update(
        ttft_ms=None,
        ttfo_ms=None,
        total_time_s=round(max(elapsed_s, 0.0), 4),
        output_tokens=0,
        input_tokens=0,
        tokens_per_second=None,
        input_tokens_per_second=None,
        output_speed_tps=None,
        itl_ms=None,
        itl_p50_ms=None,
        itl_p99_ms=None,
        usage_reported=False,
        cost=0.0,
        cost_known=False,
        success=False,
        error_type=err.error_type,
        error=f"[{err.error_type}] {message}",
    )
    return record


# -------------------------------------------------------------------------- run


class _Stream:
    """Accumulates content arrivals for one request; the hot loop's only state."""

    __slots__ = ("first_content", "first_output", "arrivals")

    def __init__(self) -> None:
        self.first_content: float | None = None
        self.first_output: float | None = None
        self.arrivals: list[float] = []


def _consume(
    response: "httpx.Response",
    wire: WireFormat,
    state: StreamState,
    stream: _Stream,
    should_stop: Callable[[], bool],
    deadline_at: float,
    limits: ProviderLimits,
) -> None:
    """Read the SSE body, timestamping content; raise ProviderError on any failure."""
    parser = SSEParser(limits.max_event_bytes)
    feed = parser.feed
    parse_event = wire.parse_event
    arrivals = stream.arrivals
    pieces = body_pieces(response, limits.max_response_bytes)
    try:
        while True:
            piece = next(pieces, None)
            if piece is None:
                now = time.perf_counter()
                events = parser.close()
            else:
                now, chunk = piece
                events = feed(chunk)
            flags_seen = 0
            for event, data in events:
                try:
                    flags = parse_event(event, data, state)
                except ProviderError:
                    raise
                except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
                    raise ProviderError(
                        BAD_RESPONSE,
                        f"unparseable {wire.kind} chunk ({type(exc).__name__}): "
                        + data.decode("utf-8", "replace"),
                    ) from None
                if flags:
                    arrivals.append(now)
                    flags_seen |= flags
                    if stream.first_output is None and flags & TEXT:
                        stream.first_output = now
                if state.stop_reading:
                    break
            if flags_seen and stream.first_content is None:
                stream.first_content = now
            if state.stop_reading or piece is None:
                break
            if should_stop():
                raise ProviderError(CANCELLED, "stopped on request")
            if time.monotonic() >= deadline_at:
                raise _DeadlineReached()
    except SSELimitExceeded as exc:
        raise ProviderError(
            BAD_RESPONSE, f"an SSE {exc.what} longer than PROVIDER_MAX_EVENT_BYTES ({exc.limit} bytes)"
        ) from None
    if not state.finished:
        raise ProviderError(BAD_RESPONSE, f"stream ended without its terminator ({wire.terminator})")


class _DeadlineReached(Exception):
    """Internal: the deadline passed between two reads."""


def _new_client(url: str, connect_to: Sequence[str] | None) -> "httpx.Client":
    """A client for one request: pinned to ``connect_to`` when given, else resolving."""
    import httpx

    from .pinning import parse_addresses, pinned_client, shared_ssl_context

    if not connect_to:
        return httpx.Client(follow_redirects=False, verify=shared_ssl_context())
    host = httpx.URL(url).raw_host.decode("ascii")
    return pinned_client(host, parse_addresses(connect_to), shared_ssl_context())


def run_model(
    target: ModelTarget,
    settings: RunSettings,
    api_key: str | None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    deadline: float | None = None,
    connect_to: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Stream one model once and return its DESIGN §4 result record.

    One call is one measured request on a connection of its own, opened for the call
    and closed after it (reading stops at ``[DONE]``/``message_stop`` and that
    connection is closed, not pooled): calling it N times in a row measures N requests
    alike, each paying connection setup, and a warm-up is a call whose result is
    dropped.

    ``should_stop`` is polled before the request and after every network read (a
    cancel lands within one chunk, or at the read timeout during a stall).
    ``deadline`` is a ``time.monotonic()`` value; with ``PROVIDER_TOTAL_TIMEOUT_S`` it
    bounds the whole call. ``connect_to`` holds the IP addresses vetted for the target's
    host (``user_providers.check_endpoint``'s answer): the TCP connection goes to one
    of them, tried in order, never to a second DNS answer, while the ``Host`` header,
    TLS SNI and the certificate check keep the URL's name. Empty or ``None`` resolves
    the host normally (built-in providers, or private endpoints allowed).
    Provider and network problems are returned as failure records, never raised.
    """
    timeouts = provider_timeouts()
    limits = provider_limits()
    started = time.monotonic()
    deadline_at = started + timeouts.total_s
    deadline_reason = f"total timeout of {timeouts.total_s:g} s (PROVIDER_TOTAL_TIMEOUT_S)"
    if deadline is not None and deadline < deadline_at:
        deadline_at, deadline_reason = deadline, "deadline reached"
    t0 = time.perf_counter()

    def fail(err: ProviderError) -> dict[str, Any]:
        return _failure(target, err, time.perf_counter() - t0, api_key)

    if should_stop():
        return fail(ProviderError(CANCELLED, "stopped on request before sending"))
    remaining = deadline_at - time.monotonic()
    if remaining <= 0:
        return fail(ProviderError(TIMEOUT, f"{deadline_reason} before the request was sent"))

    import httpx

    try:
        wire = wire_format(target.kind)
        url, headers, body = wire.build_request(target, settings, api_key)
    except ProviderError as err:
        return fail(err)

    client: httpx.Client | None = None
    cutoff = Cutoff(deadline_at)
    try:
        client = _new_client(url, connect_to)
        request = client.build_request(
            "POST",
            url,
            headers={**headers, "Accept-Encoding": ACCEPT_ENCODING},
            json=body,
            timeout=httpx.Timeout(
                connect=min(timeouts.connect_s, remaining),
                read=min(timeouts.read_s, remaining),
                write=min(timeouts.read_s, remaining),
                pool=min(timeouts.connect_s, remaining),
            ),
            extensions={"trace": cutoff.trace},
        )
    except Exception as exc:  # bad URL or address and the like: nothing was sent
        if client is not None:
            client.close()
        return fail(ProviderError(NETWORK, f"cannot send the request: {type(exc).__name__}: {exc}"))

    state = StreamState()
    stream = _Stream()
    try:
        with cutoff:
            t0 = time.perf_counter()
            response = client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise _http_error(wire, response, limits)
                content_type = response.headers.get("content-type", "").lower()
                if content_type.startswith("application/json"):
                    head = _read_error_body(response, limits).decode("utf-8", "replace")
                    raise ProviderError(
                        BAD_RESPONSE,
                        f"expected a text/event-stream, got a non-streaming {content_type} answer: {head}",
                    )
                _consume(response, wire, state, stream, should_stop, deadline_at, limits)
                t_end = time.perf_counter()
            finally:
                response.close()
    except ProviderError as err:
        if cutoff.fired and err.error_type in (NETWORK, BAD_RESPONSE):
            err = ProviderError(TIMEOUT, deadline_reason)
        return fail(err)
    except _DeadlineReached:
        return fail(ProviderError(TIMEOUT, deadline_reason))
    except (httpx.HTTPError, OSError) as exc:
        if cutoff.fired or (
            isinstance(exc, httpx.ReadTimeout) and time.monotonic() >= deadline_at - 0.01
        ):
            return fail(ProviderError(TIMEOUT, deadline_reason))
        return fail(_transport_error(exc, timeouts))
    finally:
        client.close()

    if stream.first_content is None:
        reason = f" (finish reason: {state.finish_reason})" if state.finish_reason else ""
        return fail(ProviderError(BAD_RESPONSE, f"stream finished without any content{reason}"))

    reported_output = state.output_tokens
    usage_reported = reported_output is not None
    record = _base_record(target)
    record.update(
        compute_metrics(
            t0=t0,
            t_end=t_end,
            first_content=stream.first_content,
            first_output=stream.first_output,
            arrivals=stream.arrivals,
            input_tokens=state.input_tokens if usage_reported else None,
            output_tokens=reported_output if reported_output is not None else len(stream.arrivals),
            usage_reported=usage_reported,
            input_cost_per_mtok=target.input_cost_per_mtok,
            output_cost_per_mtok=target.output_cost_per_mtok,
        )
    )
    record.update(success=True, error_type=None, error=None)
    return record


def failure_record(target: ModelTarget, error_type: str, message: str) -> dict[str, Any]:
    """The result of a model that was never requested (no key, unknown model, cancelled or
    out of time before its turn): the same record as a failed request, with no timings."""
    return _failure(target, ProviderError(error_type, message), 0.0, None)
