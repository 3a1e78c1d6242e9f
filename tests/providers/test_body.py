"""Decoding a response body within a byte budget (chalicelib/providers/body.py)."""
from __future__ import annotations

import os
import zlib

import httpx
import pytest

from chalicelib.providers.body import PIECE_BYTES, body_pieces
from chalicelib.providers.errors import ProviderError


class _Reads(httpx.SyncByteStream):
    """A response body arriving in given network reads; ``served`` counts reads handed out."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads
        self.served = 0

    def __iter__(self):
        for read in self.reads:
            self.served += 1
            yield read


def response(reads: list[bytes], coding: str | None) -> tuple[httpx.Response, _Reads]:
    stream = _Reads(reads)
    headers = {"content-encoding": coding} if coding else {}
    return httpx.Response(200, headers=headers, stream=stream), stream


@pytest.mark.parametrize("size", [PIECE_BYTES - 3, PIECE_BYTES])
def test_a_read_yields_all_it_can_decode_before_the_next(size):
    """A full inflate step can leave output inside zlib (the rest of a long match) with
    no input left: it must come out with its own read, not when the next one arrives.
    Two reads, split at every byte: the first yields what inflating without a bound
    yields from the same bytes."""
    data = b"a" * size + b"tail"
    compressed = zlib.compress(data, 9)
    for cut in range(1, len(compressed)):
        resp, stream = response([compressed[:cut], compressed[cut:]], "deflate")
        first = 0
        for _, piece in body_pieces(resp, 1 << 30):
            assert len(piece) <= PIECE_BYTES
            if stream.served == 1:
                first += len(piece)
        assert first == len(zlib.decompressobj().decompress(compressed[:cut])), cut


def test_pieces_of_one_read_share_its_arrival_time():
    data = os.urandom(3 * PIECE_BYTES)
    resp, _ = response([zlib.compress(data)], "deflate")
    pieces = list(body_pieces(resp, 1 << 30))
    assert len(pieces) >= 3 and len({at for at, _ in pieces}) <= 2  # the read, then the flush
    assert b"".join(piece for _, piece in pieces) == data


def test_the_budget_counts_decoded_bytes():
    resp, _ = response([zlib.compress(b"x" * 10_000)], "deflate")
    with pytest.raises(ProviderError) as caught:
        list(body_pieces(resp, 9_999))
    assert caught.value.error_type == "bad_response" and "PROVIDER_MAX_RESPONSE_BYTES (9999 bytes" in caught.value.message
    plain, _ = response([b"y" * 100, b"y" * 100], None)
    with pytest.raises(ProviderError):
        list(body_pieces(plain, 150))
