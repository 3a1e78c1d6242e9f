"""A provider's response body, decompressed within a byte budget.

Why not ``httpx.Response.iter_bytes``: it inflates each network read in one call, with
no bound on the output, so a few kilobytes of gzip from a hostile endpoint become
gigabytes in memory before the caller sees a byte. Here the body is read raw and
inflated at most :data:`PIECE_BYTES` at a time, counting every decompressed byte
against ``max_bytes``; past it the read fails as a ``bad_response``.

Only the codings the engine asks for (:data:`ACCEPT_ENCODING`) are accepted; anything
else (``br``, ``zstd``, stacked codings) is a ``bad_response`` rather than a body
passed on still encoded.
"""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Iterator

from .errors import BAD_RESPONSE, ProviderError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = ["ACCEPT_ENCODING", "PIECE_BYTES", "body_pieces"]

#: What the engine sends as ``Accept-Encoding`` (httpx's own default without brotli).
ACCEPT_ENCODING = "gzip, deflate"

#: Most bytes one inflate step may produce: the unit memory grows by.
PIECE_BYTES = 64 * 1024


class _Inflater:
    """gzip or deflate, inflated in bounded steps.

    ``deflate`` is meant to be zlib-wrapped, but some servers send raw deflate; as
    httpx does, the first bytes decide.
    """

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._obj = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16)
        self._started = False

    def inflate(self, data: bytes) -> Iterator[bytes]:
        # Drain until the input is used up and the last step did not fill its piece: a
        # full piece may leave output pending inside zlib (the rest of a long match),
        # which must not wait for the next network read.
        while True:
            try:
                out = self._obj.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                if self._deflate and not self._started:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise ProviderError(BAD_RESPONSE, f"undecodable compressed body: {exc}") from None
            self._started = True
            if out:
                yield out
            data = self._obj.unconsumed_tail
            if not data and len(out) < PIECE_BYTES:
                return

    def flush(self) -> bytes:
        try:
            return self._obj.flush()
        except zlib.error as exc:
            raise ProviderError(BAD_RESPONSE, f"undecodable compressed body: {exc}") from None


def _inflater(content_encoding: str) -> _Inflater | None:
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if coding == "deflate" else "gzip")
    raise ProviderError(
        BAD_RESPONSE, f"unsupported Content-Encoding {content_encoding!r} (asked for {ACCEPT_ENCODING})"
    )


def _too_large(max_bytes: int) -> ProviderError:
    return ProviderError(
        BAD_RESPONSE,
        f"response body larger than PROVIDER_MAX_RESPONSE_BYTES ({max_bytes} bytes, decompressed)",
    )


def body_pieces(response: "httpx.Response", max_bytes: int) -> Iterator[tuple[float, bytes]]:
    """``(arrival, bytes)`` pieces of the decoded body, in order.

    ``arrival`` is ``time.perf_counter()`` right after the network read that carried the
    piece (every piece inflated from one read shares it: they arrived together).
    Raises ``ProviderError`` (``bad_response``) past ``max_bytes`` decoded bytes, for an
    unsupported coding or a corrupt compressed body.
    """
    inflater = _inflater(response.headers.get("content-encoding", ""))
    perf = time.perf_counter
    total = 0
    if inflater is None:
        for raw in response.iter_raw():
            now = perf()
            total += len(raw)
            if total > max_bytes:
                raise _too_large(max_bytes)
            yield now, raw
        return
    for raw in response.iter_raw():
        now = perf()
        for piece in inflater.inflate(raw):
            total += len(piece)
            if total > max_bytes:
                raise _too_large(max_bytes)
            yield now, piece
    rest = inflater.flush()
    if rest:
        total += len(rest)
        if total > max_bytes:
            raise _too_large(max_bytes)
        yield perf(), rest
