"""What a hostile endpoint can make the engine do: bounded memory, bounded work, no key.

Every answer here comes from a real loopback server (``hostile.HostileServer``) through
httpx. Memory is the peak tracemalloc sees across the whole call, the server thread's
allocations included, with the default caps (``PROVIDER_MAX_EVENT_BYTES`` 1 MiB,
``PROVIDER_MAX_RESPONSE_BYTES`` 32 MiB) unless a test sets one.
"""
from __future__ import annotations

import itertools
import json
import tracemalloc
import zlib
from typing import Any, Callable, Iterator
from urllib.parse import unquote

import pytest

from chalicelib.providers import ModelTarget, run_model
from chalicelib.providers.engine import scrub

from .conftest import SETTINGS
from .hostile import Answer, HostileServer, Request

MiB = 1 << 20
KEY = "sk-live-Q7vZ3kP9wR2mX8tL5nB1cF4hJ6dG0yT"
SSE = (("Content-Type", "text/event-stream"),)


def target(url: str, kind: str = "openai", model: str = "m") -> ModelTarget:
    return ModelTarget("hostile", kind, url, model, f"hostile/{model}")


def openai_stream(tokens: int = 5) -> list[bytes]:
    """A correct OpenAI stream, one event per chunk."""

    def event(doc: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    return [
        event({"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
        *(event({"choices": [{"delta": {"content": f" w{i}"}}]}) for i in range(tokens)),
        event({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
        event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": tokens}}),
        b"data: [DONE]\n\n",
    ]


def traced(call: Callable[[], dict]) -> tuple[dict, int]:
    """The call's result and the peak of traced memory while it ran."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """One ordinary run first, so imports and the shared SSL context are not counted."""
    with HostileServer(lambda request: Answer(chunks=openai_stream())) as srv:
        assert run_model(target(srv.url), SETTINGS, KEY)["success"]


def assert_bad_response(result: dict, naming: str) -> None:
    assert result["success"] is False, result
    assert result["error_type"] == "bad_response", result
    assert naming in result["error"], result


# ------------------------------------------------------------------- memory caps


def test_data_lines_without_a_blank_line_stop_at_the_event_cap():
    line = b"data: " + b"x" * 1000 + b"\n"
    endless = itertools.repeat(line * 64, 1024)  # 64 MiB of one event that never ends
    with HostileServer(lambda request: Answer(chunks=endless)) as srv:
        result, peak = traced(lambda: run_model(target(srv.url), SETTINGS, KEY))
    assert_bad_response(result, "PROVIDER_MAX_EVENT_BYTES")
    assert "1048576 bytes" in result["error"]
    assert peak < 3 * MiB, peak


def test_a_body_without_a_newline_stops_at_the_line_cap():
    no_newline = itertools.repeat(b"a" * 65536, 1600)  # 100 MiB, one line
    with HostileServer(lambda request: Answer(chunks=no_newline)) as srv:
        result, peak = traced(lambda: run_model(target(srv.url), SETTINGS, KEY))
    assert_bad_response(result, "PROVIDER_MAX_EVENT_BYTES")
    assert "line" in result["error"]
    assert peak < 3 * MiB, peak


def _gzip(chunks: Iterator[bytes], wbits: int = 31) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return b"".join(packer.compress(chunk) for chunk in chunks) + packer.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> list[bytes]:
    """64 MiB of SSE comment lines in ~64 KiB of gzip, in 16 KiB chunks."""
    block = (b": " + b"z" * 1021 + b"\n") * 1024  # 1 MiB
    bomb = _gzip(itertools.repeat(block, 64))
    return [bomb[i : i + 16384] for i in range(0, len(bomb), 16384)]


def test_a_gzip_bomb_stops_at_the_response_cap(gzip_bomb):
    headers = SSE + (("Content-Encoding", "gzip"),)
    with HostileServer(lambda request: Answer(headers=headers, chunks=gzip_bomb)) as srv:
        result, peak = traced(lambda: run_model(target(srv.url), SETTINGS, KEY))
    assert_bad_response(result, "PROVIDER_MAX_RESPONSE_BYTES")
    assert f"{32 * MiB} bytes" in result["error"]
    assert peak < 3 * MiB, peak


def test_a_gzip_bomb_as_an_error_body_is_read_only_in_part(gzip_bomb):
    headers = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
    with HostileServer(lambda request: Answer(500, headers, gzip_bomb)) as srv:
        result, peak = traced(lambda: run_model(target(srv.url), SETTINGS, KEY))
    assert result["error_type"] == "http_500", result
    assert peak < 3 * MiB, peak


def test_the_caps_are_settings(monkeypatch):
    monkeypatch.setenv("PROVIDER_MAX_EVENT_BYTES", "4096")
    content = json.dumps({"choices": [{"delta": {"content": "y" * 5000}}]}).encode()
    chunks = [b"data: " + content + b"\n\n"]
    with HostileServer(lambda request: Answer(chunks=chunks)) as srv:
        too_big = run_model(target(srv.url), SETTINGS, KEY)
    assert_bad_response(too_big, "PROVIDER_MAX_EVENT_BYTES (")
    assert "4096 bytes" in too_big["error"]

    monkeypatch.setenv("PROVIDER_MAX_EVENT_BYTES", "8192")
    monkeypatch.setenv("PROVIDER_MAX_RESPONSE_BYTES", "600")
    with HostileServer(lambda request: Answer(chunks=openai_stream(20))) as srv:
        too_long = run_model(target(srv.url), SETTINGS, KEY)
    assert_bad_response(too_long, "PROVIDER_MAX_RESPONSE_BYTES (600 bytes")


# ---------------------------------------------------------------- compressed streams


def _sync_flushed(chunks: list[bytes], wbits: int) -> list[bytes]:
    """Each chunk compressed and flushed on its own, as a streaming server sends it."""
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    out = [packer.compress(chunk) + packer.flush(zlib.Z_SYNC_FLUSH) for chunk in chunks]
    out[-1] += packer.flush()
    return out


@pytest.mark.parametrize(("coding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compressed_streams_are_measured_like_plain_ones(coding, wbits):
    chunks = _sync_flushed(openai_stream(12), wbits)
    headers = SSE + (("Content-Encoding", coding),)
    with HostileServer(lambda request: Answer(headers=headers, chunks=chunks)) as srv:
        result = run_model(target(srv.url), SETTINGS, KEY)
        sent = srv.requests[-1]
    assert result["success"] is True, result
    assert result["output_tokens"] == 12 and result["usage_reported"] is True
    assert sent.headers["accept-encoding"] == "gzip, deflate"


def test_an_encoding_not_asked_for_is_a_bad_response():
    headers = SSE + (("Content-Encoding", "br"),)
    with HostileServer(lambda request: Answer(headers=headers, chunks=openai_stream())) as srv:
        result = run_model(target(srv.url), SETTINGS, KEY)
    assert_bad_response(result, "unsupported Content-Encoding 'br'")


def test_a_corrupt_gzip_body_is_a_bad_response():
    headers = SSE + (("Content-Encoding", "gzip"),)
    with HostileServer(lambda request: Answer(headers=headers, chunks=[b"not gzip at all"])) as srv:
        result = run_model(target(srv.url), SETTINGS, KEY)
    assert_bad_response(result, "undecodable compressed body")


# ------------------------------------------------------------- scrub, then trim


def _key_echoes(request: Request) -> Answer:
    """The answer named by the model ``<case>:<pad>``: the key after ``pad`` characters."""
    if "/models/" in request.path:  # Gemini names the model in the path
        model = unquote(request.path.split("/models/")[1].split(":streamGenerateContent")[0])
    else:
        model = request.body["model"]
    case, pad = model.split(":")
    text = "x" * int(pad) + KEY
    sse = lambda doc, event=b"": event + b"data: " + json.dumps(doc).encode() + b"\n\n"  # noqa: E731
    if case == "chunk":  # unparseable chunk
        return Answer(chunks=[b"data: {" + text.encode() + b"\n\n"])
    if case == "json":  # a non-streaming answer
        return Answer(200, (("Content-Type", "application/json"),), [json.dumps({"pad": text}).encode()])
    if case == "openai-error":  # an in-stream error without a message
        return Answer(chunks=[sse({"error": {"code": "zzz", "pad": text}})])
    if case == "anthropic-error":
        return Answer(chunks=[sse({"type": "error", "error": {"type": "zzz", "pad": text}}, b"event: error\n")])
    if case == "gemini-error":
        return Answer(chunks=[sse({"error": {"code": "zzz", "pad": text}})])
    if case == "detail":  # a FastAPI-style error body
        return Answer(422, (("Content-Type", "application/json"),), [json.dumps({"detail": [{"msg": text}]}).encode()])
    if case == "message":  # a plain error message
        return Answer(400, (("Content-Type", "application/json"),), [json.dumps({"error": {"message": text}}).encode()])
    if case == "encoding":  # a header echoing the key
        return Answer(200, SSE + (("Content-Encoding", text),), openai_stream())
    raise AssertionError(case)


CASES = {
    "chunk": "openai", "json": "openai", "openai-error": "openai", "anthropic-error": "anthropic",
    "gemini-error": "gemini", "detail": "openai", "message": "openai", "encoding": "openai",
}


@pytest.mark.parametrize("case", CASES)
def test_no_piece_of_the_key_survives_any_cut(case):
    """The key starts every 11 characters from 0 to 620, so it straddles every place a
    message was once cut (120, 200, 300 and 600 characters) and the final trim."""
    kind = CASES[case]
    fragments = {KEY[i : i + 6] for i in range(len(KEY) - 5)}
    with HostileServer(_key_echoes) as srv:
        base = srv.url if kind == "openai" else srv.url.replace("/v1", f"/{kind}")
        for pad in range(0, 621, 11):
            result = run_model(target(base, kind, f"{case}:{pad}"), SETTINGS, KEY)
            assert result["success"] is False, (pad, result)
            leaked = [f for f in fragments if f in result["error"]]
            assert not leaked, (pad, leaked, result["error"])
            assert len(result["error"]) <= 320


@pytest.mark.timeout(20)
def test_scrubbing_a_long_run_of_key_characters_is_linear():
    """A masked-key pattern after a megabyte of key characters: a regex retried at every
    position of the run would take hours here; the result shows it ran once."""
    text = "a" * MiB + " sk-live-****" + KEY[-4:]
    assert scrub(text, KEY) == "a" * MiB + " ***"


@pytest.mark.parametrize("status", [200, 500])
def test_deeply_nested_json_is_a_bad_response_not_a_crash(status):
    """json.loads recurses per level: a chunk (or error body) of 100,000 `[` must be a
    classified failure of this model, never a RecursionError escaping into the runner."""
    deep = b"[" * 100_000
    chunks = [b"data: " + deep + b"\n\n"] if status == 200 else [deep]
    with HostileServer(lambda request: Answer(status, SSE, chunks)) as srv:
        result = run_model(target(srv.url), SETTINGS, KEY)
    assert result["success"] is False
    assert result["error_type"] == ("bad_response" if status == 200 else "http_500")


def test_headers_trickled_a_byte_at_a_time_end_at_the_total_timeout(monkeypatch):
    """httpx's timeouts bound each read; the cutoff bounds the whole request from the
    connect on, so a server that never finishes its headers cannot hold a model."""
    import socket
    import threading

    monkeypatch.setenv("PROVIDER_TOTAL_TIMEOUT_S", "1")
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "5")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(100):  # 10 s of header bytes, unless the client hangs up
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(b"X")
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        result = run_model(target(url), SETTINGS, KEY)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert result["error_type"] == "timeout", result["error"]
    assert "PROVIDER_TOTAL_TIMEOUT_S" in result["error"]
