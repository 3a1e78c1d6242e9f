"""Pure parts of the engine: formulas, percentiles, scrubbing, classification, env."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.providers import engine
from chalicelib.providers.anthropic import parse_event as anthropic_event
from chalicelib.providers.engine import (
    REASONING,
    TEXT,
    ModelTarget,
    RunSettings,
    StreamState,
    compute_metrics,
    error_message_from_doc,
    percentile,
    provider_timeouts,
    scrub,
)
from chalicelib.providers.errors import ProviderError
from chalicelib.providers.gemini import classify_http as gemini_classify
from chalicelib.providers.gemini import parse_event as gemini_event
from chalicelib.providers.openai import build_request as openai_request
from chalicelib.providers.openai import parse_event as openai_event

ROOT = Path(__file__).resolve().parents[2]


def metrics(**overrides):
    args = dict(
        t0=10.0,
        t_end=12.0,
        first_content=10.5,
        first_output=10.7,
        arrivals=[10.5, 10.6, 10.8, 11.1],
        input_tokens=100,
        output_tokens=31,
        usage_reported=True,
        input_cost_per_mtok=2.5,
        output_cost_per_mtok=10.0,
    )
    args.update(overrides)
    return compute_metrics(**args)


def test_formulas_of_design_section_4():
    m = metrics()
    assert m["ttft_ms"] == 500.0 and m["ttfo_ms"] == 700.0
    assert m["total_time_s"] == 2.0
    assert m["tokens_per_second"] == 15.5  # 31 / 2
    assert m["output_speed_tps"] == round(31 / 1.5, 2)
    assert m["itl_ms"] == 50.0  # 1.5 s / 30
    assert m["input_tokens_per_second"] == 200.0  # 100 / 0.5
    assert m["itl_p50_ms"] == pytest.approx(200.0)
    assert m["itl_p99_ms"] == pytest.approx(298.0)
    assert m["cost"] == round(100 * 2.5 / 1e6 + 31 * 10.0 / 1e6, 8) and m["cost_known"] is True


def test_undefined_rates_are_none():
    m = metrics(output_tokens=1, arrivals=[10.5], t_end=10.5, first_output=None, input_tokens=None)
    assert m["itl_ms"] is None and m["itl_p50_ms"] is None and m["itl_p99_ms"] is None
    assert m["output_speed_tps"] is None and m["ttfo_ms"] is None
    assert m["input_tokens_per_second"] is None and m["input_tokens"] == 0


def test_missing_price_means_unknown_cost():
    for prices in ((None, 1.0), (1.0, None)):
        m = metrics(input_cost_per_mtok=prices[0], output_cost_per_mtok=prices[1])
        assert m["cost"] == 0.0 and m["cost_known"] is False


def test_percentile_interpolates_like_numpy():
    assert percentile([], 50) is None
    assert percentile([4.0], 99) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == pytest.approx(3.97)


def test_scrub_removes_key_encoded_and_masked_forms():
    key = "sk-proj-abc/def+ghi=1234"
    text = f"bad {key} or sk-proj-abc%2Fdef%2Bghi%3D1234 or sk-proj-****************1234 and ****"
    out = scrub(text, key)
    assert "abc" not in out and "1234" not in out and out.endswith("and ****")
    assert scrub("nothing", None) == "nothing" and scrub("", key) == ""


def test_gemini_api_key_invalid_reason():
    doc = {"error": {"code": 400, "details": [{"reason": "API_KEY_INVALID"}]}}
    assert gemini_classify(400, doc) == "auth_failed"
    assert gemini_classify(400, [doc]) == "auth_failed"  # non-SSE errors come in a list
    assert gemini_classify(400, {"error": {"code": 400}}) is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"error": {"message": "m1", "type": "x"}}, "m1"),
        ({"type": "error", "error": {"type": "api_error", "message": "m2"}}, "m2"),
        ([{"error": {"code": 400, "message": "m3"}}], "m3"),
        ({"error": "model not found"}, "model not found"),
        ({"detail": "m5"}, "m5"),
        ({"message": "m6"}, "m6"),
        ("just a string", None),
    ],
)
def test_error_message_dialects(doc, message):
    assert error_message_from_doc(doc) == message


def test_timeouts_are_read_from_env_when_used(monkeypatch):
    monkeypatch.delenv("PROVIDER_CONNECT_TIMEOUT_S", raising=False)
    monkeypatch.delenv("PROVIDER_READ_TIMEOUT_S", raising=False)
    monkeypatch.delenv("PROVIDER_TOTAL_TIMEOUT_S", raising=False)
    assert provider_timeouts() == engine.ProviderTimeouts(10.0, 60.0, 300.0)
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "2.5")
    monkeypatch.setenv("PROVIDER_CONNECT_TIMEOUT_S", "nonsense")
    monkeypatch.setenv("PROVIDER_TOTAL_TIMEOUT_S", "-1")
    assert provider_timeouts() == engine.ProviderTimeouts(10.0, 2.5, 300.0)


def test_openai_content_flags_and_usage():
    state = StreamState()
    assert openai_event(None, b'{"choices":[{"delta":{"role":"assistant","content":""}}]}', state) == 0
    assert openai_event(None, b'{"choices":[{"delta":{"reasoning_content":"hm"}}]}', state) == REASONING
    assert openai_event(None, b'{"choices":[{"delta":{"reasoning":"hm"}}]}', state) == REASONING
    assert openai_event(None, b'{"choices":[{"delta":{"content":"hi"}}]}', state) == TEXT
    assert openai_event(None, b'{"choices":[{"delta":{},"finish_reason":"length"}]}', state) == 0
    assert state.finished and not state.stop_reading and state.finish_reason == "length"
    openai_event(None, b'{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}', state)
    assert (state.input_tokens, state.output_tokens) == (5, 9)
    openai_event(None, b"[DONE]", state)
    assert state.stop_reading


def test_openai_in_stream_errors():
    for doc, error_type in [
        (b'{"error":{"code":502,"message":"upstream"}}', "http_502"),
        (b'{"error":{"code":"rate_limit_exceeded","message":"slow down"}}', "rate_limited"),
        (b'{"error":{"type":"server_error","message":"oops"}}', "http_500"),
        (b'{"error":{"message":"?"}}', "bad_response"),
    ]:
        with pytest.raises(ProviderError) as caught:
            openai_event(None, doc, StreamState())
        assert caught.value.error_type == error_type


def test_openai_official_host_uses_max_completion_tokens():
    settings = RunSettings("hi", 100, 0.5)
    official = ModelTarget("openai", "openai", "https://api.openai.com/v1", "o3-mini", "o3-mini")
    _, _, body = openai_request(official, settings, "k")
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body and "temperature" not in body
    gpt = ModelTarget("openai", "openai", "https://api.openai.com/v1", "gpt-4o-mini", "gpt-4o-mini")
    assert openai_request(gpt, settings, "k")[2]["temperature"] == 0.5
    local = ModelTarget("vllm", "openai", "http://10.0.0.5:8000/v1/", "o3-mini", "vllm/o3-mini")
    url, headers, body = openai_request(local, settings, None)
    assert url == "http://10.0.0.5:8000/v1/chat/completions" and "Authorization" not in headers
    assert body["max_tokens"] == 100 and body["temperature"] == 0.5


def test_anthropic_events():
    state = StreamState()
    anthropic_event(b"message_start", b'{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}', state)
    assert state.input_tokens == 15 and state.output_tokens is None
    assert anthropic_event(None, b'{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"x"}}', state) == REASONING
    assert anthropic_event(None, b'{"type":"content_block_delta","delta":{"type":"signature_delta","signature":"x"}}', state) == 0
    assert anthropic_event(None, b'{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}', state) == TEXT
    assert anthropic_event(None, b'{"type":"ping"}', state) == 0
    anthropic_event(None, b'{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":42}}', state)
    assert state.output_tokens == 42 and state.finish_reason == "max_tokens" and not state.finished
    anthropic_event(None, b'{"type":"message_stop"}', state)
    assert state.finished and state.stop_reading
    with pytest.raises(ProviderError) as caught:
        anthropic_event(b"error", b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}', state)
    assert caught.value.error_type == "rate_limited"


def test_gemini_parts_and_usage():
    state = StreamState()
    chunk = b'{"candidates":[{"content":{"parts":[{"text":"a","thought":true},{"text":"b"}]}}]}'
    assert gemini_event(None, chunk, state) == TEXT | REASONING
    last = b'{"candidates":[{"content":{"parts":[{"text":"c"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":20,"thoughtsTokenCount":12}}'
    assert gemini_event(None, last, state) == TEXT
    assert (state.input_tokens, state.output_tokens, state.finished) == (7, 32, True)
    with pytest.raises(ProviderError) as caught:
        gemini_event(None, b'{"promptFeedback":{"blockReason":"SAFETY"}}', StreamState())
    assert caught.value.error_type == "bad_response" and "SAFETY" in caught.value.message


def test_unknown_kind_is_a_failure_record():
    t = ModelTarget("x", "cohere", "http://127.0.0.1:9/v1", "m", "x/m")
    r = engine.run_model(t, RunSettings("hi", 10, 0.1), "key")
    assert r["success"] is False and r["error_type"] == "bad_response"


def test_bad_url_is_a_failure_record():
    t = ModelTarget("x", "openai", "not a url", "m", "x/m")
    r = engine.run_model(t, RunSettings("hi", 10, 0.1), "key")
    assert r["success"] is False and r["error_type"] == "network"


def test_importing_the_package_does_not_import_httpx():
    code = "import sys, chalicelib.providers; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ------------------------------------------------- which chunks the times come from


#: Bytes found in every content chunk of the fake server's streams and in no other
#: (OpenAI's role chunk has ``"content":""``, Gemini's first chunk ``"text":""``).
CONTENT_MARKERS = {"openai": b'"delta":{"content":"', "anthropic": b'"text_delta"', "gemini": b'"text":" '}


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class _ScriptedResponse:
    """An uncompressed response whose chunks arrive at scripted ``perf_counter`` times."""

    headers: dict[str, str] = {}

    def __init__(self, timed: list[tuple[float, bytes]], clock: _Clock) -> None:
        self._timed = timed
        self._clock = clock

    def iter_raw(self):
        for at, chunk in self._timed:
            self._clock.now = at
            yield chunk
        self._clock.now += 0.001  # end of body


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_ttft_and_itl_are_taken_from_content_chunks_only(kind, server, monkeypatch):
    """The fake server's real stream, one event per read: content-free events (role
    chunk, message_start, ping, finish, usage) at other times than the content. TTFT
    must be the first content chunk's time, the ITL gaps those between content chunks."""
    import httpx

    target = ModelTarget("x", kind, server.base_url_for(kind), "t+ttft=0+itl=0+tokens=6", "x/t")
    url, headers, body = engine.wire_format(kind).build_request(target, RunSettings("hi", 10, 0.0), "k")
    events = [e + b"\n\n" for e in httpx.post(url, headers=headers, json=body).content.split(b"\n\n") if e]
    content = [CONTENT_MARKERS[kind] in e for e in events]
    assert sum(content) == 6 and not content[0]
    token_times = iter([10.150 + 0.010 * i for i in range(6)])
    timed, last = [], 10.0
    for event, is_content in zip(events, content):
        last = next(token_times) if is_content else last + 0.003
        timed.append((last, event))

    clock = _Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    state, stream = StreamState(), engine._Stream()
    engine._consume(
        _ScriptedResponse(timed, clock), engine.wire_format(kind), state, stream,
        lambda: False, time.monotonic() + 60, engine.provider_limits(),
    )
    m = compute_metrics(
        t0=10.0, t_end=clock.now, first_content=stream.first_content, first_output=stream.first_output,
        arrivals=stream.arrivals, input_tokens=state.input_tokens, output_tokens=state.output_tokens,
        usage_reported=True, input_cost_per_mtok=None, output_cost_per_mtok=None,
    )
    assert stream.arrivals == [at for (at, _), c in zip(timed, content) if c]
    assert m["ttft_ms"] == m["ttfo_ms"] == 150.0
    assert m["itl_p50_ms"] == m["itl_p99_ms"] == 10.0
    assert m["output_tokens"] == 6
