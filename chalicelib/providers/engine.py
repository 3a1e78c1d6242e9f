"""The benchmark engine: one streaming request per model, measured and classified.

``run_model`` is the only entry the runner needs. It speaks one of three wire formats
(``openai``, ``anthropic``, ``gemini``; see the sibling modules) over httpx, reads the
SSE stream as raw bytes through :mod:`.sse`, and turns what it saw into the result
record of DESIGN §4. It never raises for anything a provider or the network does: every
such problem becomes ``success: False`` with a classified ``error_type`` and an
``error`` string that never contains the API key.

Measurement rules (DESIGN §4) and why they are what they are:

- ``t0`` is ``time.perf_counter()`` taken after the request object is built and just
  before it is handed to httpx, so JSON encoding and client construction are not billed
  to the provider, while connecting (the first request of a run has no warm-up) is.
- A chunk's arrival time is taken once per network read, right after ``iter_bytes``
  yields it; every event parsed out of that read shares it (they did arrive together).
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

Timeouts are read from the environment on every call (never at import):
``PROVIDER_CONNECT_TIMEOUT_S`` (10), ``PROVIDER_READ_TIMEOUT_S`` (60, the longest
silence allowed between two reads), ``PROVIDER_TOTAL_TIMEOUT_S`` (300, one model).
The total timeout and the caller's ``deadline`` are enforced by a watchdog timer that
shuts the socket down when they pass, so a stream that trickles one byte every 59 s
still ends on time; both end as ``timeout``.

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
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from .sse import SSEParser

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = [
    "ModelTarget",
    "RunSettings",
    "WireFormat",
    "StreamState",
    "ProviderError",
    "ERROR_TYPES",
    "TEXT",
    "REASONING",
    "run_model",
    "compute_metrics",
    "percentile",
    "scrub",
    "classify_status",
    "provider_timeouts",
    "wire_format",
]

log = logging.getLogger(__name__)

#: Every ``error_type`` a result can carry (``http_<status>`` stands for the family).
ERROR_TYPES = (
    "rate_limited",
    "auth_failed",
    "timeout",
    "http_<status>",
    "network",
    "bad_response",
    "cancelled",
)

#: Content flags a wire format's ``parse_event`` returns for one event.
TEXT = 1
REASONING = 2

_MESSAGE_LIMIT = 300
_ERROR_BODY_LIMIT = 64 * 1024


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


class ProviderError(Exception):
    """A classified failure raised inside the engine and its wire formats.

    Carries the final ``error_type`` and the provider's (unscrubbed, untrimmed)
    message; ``run_model`` turns it into a failure record.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


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
        raise ProviderError("bad_response", f"unknown provider kind {kind!r}")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return module.WIRE


# --------------------------------------------------------------------------- timeouts


@dataclass(frozen=True)
class ProviderTimeouts:
    connect_s: float
    read_s: float
    total_s: float


def _env_seconds(name: str, default: float) -> float:
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
        connect_s=_env_seconds("PROVIDER_CONNECT_TIMEOUT_S", 10.0),
        read_s=_env_seconds("PROVIDER_READ_TIMEOUT_S", 60.0),
        total_s=_env_seconds("PROVIDER_TOTAL_TIMEOUT_S", 300.0),
    )


_ssl_lock = threading.Lock()
_ssl_context: Any = None


def _shared_ssl_context() -> Any:
    """One verified SSL context for every client this module makes.

    Building one loads the CA bundle (~25 ms); a context is safe to share between
    clients and threads, and the runner may call ``run_model`` dozens of times.
    """
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            import httpx

            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


# ------------------------------------------------------------------ error handling


_MASKED = re.compile(r"[A-Za-z0-9_\-]*\*{4,}[A-Za-z0-9_\-]*")


def scrub(text: str, secret: str | None) -> str:
    """Remove ``secret`` (and its URL-encoded form) from ``text``.

    Applied to every string that leaves the engine, before trimming, so a cut can
    never leave half a key behind. Also removes a provider's own masked echo of the
    key (OpenAI's 401 says ``sk-proj-****…abcd``): prefix and last four are still
    pieces of the key, and the message reads as well without them.
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


def classify_status(status: int) -> str:
    """DESIGN §4's status rule: 401/403 auth, 429 rate limit, anything else by number."""
    if status in (401, 403):
        return "auth_failed"
    if status == 429:
        return "rate_limited"
    return f"http_{status}"


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
            return json.dumps(value)[:_MESSAGE_LIMIT * 2]
    return None


def _read_error_body(response: "httpx.Response") -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return bytes(body[:_ERROR_BODY_LIMIT])


def _http_error(wire: WireFormat, response: "httpx.Response") -> ProviderError:
    status = response.status_code
    try:
        body = _read_error_body(response)
    except Exception as exc:  # the body is a nicety; the status is the error
        body = f"(error body unreadable: {type(exc).__name__})".encode()
    doc: Any = None
    try:
        doc = json.loads(body)
    except ValueError:
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
        return ProviderError("timeout", f"connect timed out after {timeouts.connect_s:g} s")
    if isinstance(exc, httpx.ReadTimeout):
        return ProviderError(
            "timeout", f"no data for {timeouts.read_s:g} s (PROVIDER_READ_TIMEOUT_S)"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("timeout", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.DecodingError):
        return ProviderError("bad_response", f"undecodable body: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError("network", f"connection closed mid-stream: {exc}")
    detail = str(exc) or type(exc).__name__
    return ProviderError("network", f"{type(exc).__name__}: {detail}")


# ---------------------------------------------------------------------- watchdog


class _Watchdog:
    """Ends a stream at an absolute deadline, even while a read is blocked.

    httpx applies its read timeout per read, so a stream that keeps trickling data
    could outlive the total timeout or the caller's deadline indefinitely. The timer
    thread shuts the socket down (``shutdown`` wakes a blocked ``recv``; ``close``
    would not), and ``fired`` tells ``run_model`` the resulting error is a timeout.
    """

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._sock: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def arm(self, response: "httpx.Response") -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return  # unknown transport: httpx's own timeouts still bound each read
        self._sock = sock
        self._timer = threading.Timer(max(0.0, self.at - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done or self._sock is None:
                return
            self.fired = True
            try:  # socket.socket.shutdown, not SSLSocket's, which drops its SSL object
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def disarm(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


# ----------------------------------------------------------------------- metrics


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (NumPy's default), ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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
        if known
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
) -> None:
    """Read the SSE body, timestamping content; raise ProviderError on any failure."""
    parser = SSEParser()
    feed = parser.feed
    parse_event = wire.parse_event
    arrivals = stream.arrivals
    perf = time.perf_counter
    chunks = response.iter_bytes()
    eof = False
    while True:
        raw = next(chunks, None)
        now = perf()
        if raw is None:
            eof = True
            events = parser.close()
        else:
            events = feed(raw)
        flags_seen = 0
        for event, data in events:
            try:
                flags = parse_event(event, data, state)
            except ProviderError:
                raise
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                snippet = data[:120].decode("utf-8", "replace")
                raise ProviderError(
                    "bad_response", f"unparseable {wire.kind} chunk ({type(exc).__name__}): {snippet}"
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
        if state.stop_reading or eof:
            break
        if should_stop():
            raise ProviderError("cancelled", "stopped on request")
        if time.monotonic() >= deadline_at:
            raise _DeadlineReached()
    if not state.finished:
        raise ProviderError(
            "bad_response", f"stream ended without its terminator ({wire.terminator})"
        )


class _DeadlineReached(Exception):
    """Internal: the deadline passed between two reads."""


def run_model(
    target: ModelTarget,
    settings: RunSettings,
    api_key: str | None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    deadline: float | None = None,
    client: "httpx.Client | None" = None,
) -> dict[str, Any]:
    """Stream one model once and return its DESIGN §4 result record.

    ``should_stop`` is polled before the request and after every network read (a
    cancel lands within one chunk, or at the read timeout during a stall).
    ``deadline`` is a ``time.monotonic()`` value; with ``PROVIDER_TOTAL_TIMEOUT_S`` it
    bounds the whole call. ``client`` lets the runner share a client; without it a
    client is made for this call and closed after, so every model pays connection
    setup alike (no warm-up, DESIGN §4). Reading stops at ``[DONE]``/``message_stop``
    and that connection is then closed rather than pooled, for the same reason.
    Provider and network problems are returned as failure records, never raised.
    """
    timeouts = provider_timeouts()
    started = time.monotonic()
    deadline_at = started + timeouts.total_s
    deadline_reason = f"total timeout of {timeouts.total_s:g} s (PROVIDER_TOTAL_TIMEOUT_S)"
    if deadline is not None and deadline < deadline_at:
        deadline_at, deadline_reason = deadline, "deadline reached"
    t0 = time.perf_counter()

    def fail(err: ProviderError) -> dict[str, Any]:
        return _failure(target, err, time.perf_counter() - t0, api_key)

    if should_stop():
        return fail(ProviderError("cancelled", "stopped on request before sending"))
    remaining = deadline_at - time.monotonic()
    if remaining <= 0:
        return fail(ProviderError("timeout", f"{deadline_reason} before the request was sent"))

    import httpx

    try:
        wire = wire_format(target.kind)
        url, headers, body = wire.build_request(target, settings, api_key)
    except ProviderError as err:
        return fail(err)

    own_client = client is None
    try:
        if own_client:
            client = httpx.Client(follow_redirects=False, verify=_shared_ssl_context())
        request = client.build_request(
            "POST",
            url,
            headers=headers,
            json=body,
            timeout=httpx.Timeout(
                connect=min(timeouts.connect_s, remaining),
                read=min(timeouts.read_s, remaining),
                write=min(timeouts.read_s, remaining),
                pool=min(timeouts.connect_s, remaining),
            ),
        )
    except Exception as exc:  # bad URL and the like: nothing was sent
        if own_client and client is not None:
            client.close()
        return fail(ProviderError("network", f"cannot send the request: {type(exc).__name__}: {exc}"))

    state = StreamState()
    stream = _Stream()
    watchdog = _Watchdog(deadline_at)
    try:
        t0 = time.perf_counter()
        response = client.send(request, stream=True)
        try:
            watchdog.arm(response)
            if response.status_code != 200:
                raise _http_error(wire, response)
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith("application/json"):
                head = _read_error_body(response)[:200].decode("utf-8", "replace")
                raise ProviderError(
                    "bad_response",
                    f"expected a text/event-stream, got a non-streaming {content_type} answer: {head}",
                )
            _consume(response, wire, state, stream, should_stop, deadline_at)
            t_end = time.perf_counter()
        finally:
            watchdog.disarm()
            response.close()
    except ProviderError as err:
        if watchdog.fired and err.error_type in ("network", "bad_response"):
            err = ProviderError("timeout", deadline_reason)
        return fail(err)
    except _DeadlineReached:
        return fail(ProviderError("timeout", deadline_reason))
    except (httpx.HTTPError, OSError) as exc:
        if watchdog.fired or (
            isinstance(exc, httpx.ReadTimeout) and time.monotonic() >= deadline_at - 0.01
        ):
            return fail(ProviderError("timeout", deadline_reason))
        return fail(_transport_error(exc, timeouts))
    finally:
        if own_client:
            client.close()

    if stream.first_content is None:
        reason = f" (finish reason: {state.finish_reason})" if state.finish_reason else ""
        return fail(ProviderError("bad_response", f"stream finished without any content{reason}"))

    usage_reported = state.output_tokens is not None
    record = _base_record(target)
    record.update(
        compute_metrics(
            t0=t0,
            t_end=t_end,
            first_content=stream.first_content,
            first_output=stream.first_output,
            arrivals=stream.arrivals,
            input_tokens=state.input_tokens if usage_reported else None,
            output_tokens=state.output_tokens if usage_reported else len(stream.arrivals),
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
