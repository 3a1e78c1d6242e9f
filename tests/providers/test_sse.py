"""The SSE parser: framing rules, and the same events whatever the byte slicing."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.providers.sse import SSELimitExceeded, SSEParser, iter_events


def parse(*chunks: bytes) -> list:
    return list(iter_events(chunks))


def test_data_lines_and_blank_line_dispatch():
    assert parse(b"data: {\"a\":1}\n\ndata: [DONE]\n\n") == [(None, b'{"a":1}'), (None, b"[DONE]")]


def test_event_names_comments_crlf_and_fields():
    stream = b": keep-alive\r\nevent: ping\r\ndata: {}\r\nid: 7\r\n\r\nevent:x\ndata:no-space\n\n"
    assert parse(stream) == [(b"ping", b"{}"), (b"x", b"no-space")]


def test_multi_line_data_is_joined_and_only_one_space_dropped():
    assert parse(b"data: a\ndata:  b\ndata\n\n") == [(None, b"a\n b\n")]


def test_event_name_resets_after_dispatch():
    assert parse(b"event: e\ndata: 1\n\ndata: 2\n\n") == [(b"e", b"1"), (None, b"2")]


def test_blank_lines_without_data_dispatch_nothing():
    assert parse(b"\n\n: c\n\nevent: lonely\n\n") == []


def test_incomplete_tail_waits_for_more_bytes():
    parser = SSEParser()
    assert parser.feed(b"data: {\"a\"") == []
    assert parser.feed(b":1}\n") == []
    assert parser.feed(b"\n") == [(None, b'{"a":1}')]


def test_close_flushes_an_event_missing_its_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: last") == []
    assert parser.close() == [(None, b"last")]
    assert parser.close() == []


_payload = st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
_event = st.tuples(st.one_of(st.none(), st.sampled_from([b"message_start", b"ping", b"error"])), _payload)


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(_event, min_size=1, max_size=12),
    crlf=st.booleans(),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_any_slicing_gives_the_same_events(events, crlf, comments, cuts):
    eol = b"\r\n" if crlf else b"\n"
    stream = b""
    for name, data in events:
        if comments:
            stream += b": comment" + eol
        if name is not None:
            stream += b"event: " + name + eol
        stream += b"data: " + data + eol + eol
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    expected = [(name, data) for name, data in events]
    assert parse(*pieces) == expected
    assert parse(stream) == expected


def test_a_line_past_the_cap_is_refused_however_it_is_sliced():
    parser = SSEParser(max_event_bytes=100)
    assert parser.feed(b"data: " + b"x" * 50) == []
    with pytest.raises(SSELimitExceeded) as caught:
        for _ in range(10):
            parser.feed(b"x" * 10)  # no newline: the line only grows
    assert caught.value.what == "line" and caught.value.limit == 100


def test_a_line_under_the_cap_arriving_in_many_pieces_is_one_line():
    body = b"data: " + b"z" * 5000 + b"\r\n\r\n"
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert list(iter_events(pieces, max_event_bytes=5010)) == [(None, b"z" * 5000)]


def test_an_event_past_the_cap_is_refused_even_with_short_lines():
    with pytest.raises(SSELimitExceeded) as caught:
        parse_capped(100, b"data: " + b"y" * 60 + b"\n" + b"data: " + b"y" * 60 + b"\n")
    assert caught.value.what == "event"
    with pytest.raises(SSELimitExceeded):
        parse_capped(100, b"data\n" * 101)  # empty data lines still cost their newline


def test_an_event_at_the_cap_passes_and_the_count_restarts_per_event():
    at_cap = b"data: " + b"a" * 99 + b"\n\n"  # 99 bytes and the joining newline
    assert parse_capped(100, at_cap * 3) == [(None, b"a" * 99)] * 3


def parse_capped(limit: int, *chunks: bytes) -> list:
    return list(iter_events(chunks, max_event_bytes=limit))
