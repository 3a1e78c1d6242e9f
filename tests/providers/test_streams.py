"""run_model against real loopback servers speaking each wire format.

Timings are checked against the server's schedule: never earlier than scheduled (the
server schedules every chunk from when it read the request, after the engine's t0),
and at most ``LATE_MARGIN_MS`` later (see conftest for the figures behind it). The
schedules are long enough that reading the whole body before timing it, or taking
TTFT at the end of the stream, lands outside those bounds.
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from chalicelib.providers import ModelTarget, run_model
from chalicelib.providers.errors import is_error_type
from devstack.fake_providers import FakeProviderServer, count_prompt_tokens

from .conftest import API_KEY, CLOCK_SLACK_MS, KINDS, LATE_MARGIN_MS, SETTINGS

RESULT_KEYS = {
    "provider", "model", "model_id", "run", "runs", "context_tokens", "ttft_ms",
    "total_time_s", "output_tokens", "input_tokens", "tokens_per_second",
    "input_tokens_per_second", "output_speed_tps", "itl_ms", "cost", "success", "error",
    "error_type", "ttfo_ms", "itl_p50_ms", "itl_p99_ms", "usage_reported", "cost_known",
}

pytestmark = pytest.mark.parametrize("kind", KINDS)


def run(target: ModelTarget, **kwargs) -> dict:
    result = run_model(target, SETTINGS, API_KEY, **kwargs)
    assert set(result) == RESULT_KEYS
    assert API_KEY not in json.dumps(result)
    return result


def assert_failed(result: dict, error_type: str) -> None:
    assert is_error_type(error_type)
    assert result["success"] is False, result
    assert result["error_type"] == error_type, result
    assert result["error"].startswith(f"[{error_type}] ")
    assert len(result["error"]) <= 320
    assert result["ttft_ms"] is None and result["output_speed_tps"] is None
    assert result["cost"] == 0.0


# ------------------------------------------------------------------------ success


def test_normal_stream_metrics(kind, target):
    # 150 ms to the first token, then 39 gaps of 10 ms: the stream ends at 540 ms
    t = target(kind, "t+ttft=150+itl=10+tokens=40", prices=(3.0, 15.0))
    r = run(t)
    assert r["success"] is True and r["error"] is None and r["error_type"] is None
    assert (r["provider"], r["model"], r["model_id"]) == (t.provider_key, t.name, t.model)
    assert (r["run"], r["runs"], r["context_tokens"]) == (1, 1, 0)
    # the role-only / message_start / empty-text chunk is sent at once and must not count
    assert 150 - CLOCK_SLACK_MS <= r["ttft_ms"] <= 150 + LATE_MARGIN_MS
    assert r["ttfo_ms"] == r["ttft_ms"]
    assert r["usage_reported"] is True
    assert r["output_tokens"] == 40
    assert r["input_tokens"] == count_prompt_tokens(SETTINGS.prompt)
    total, ttft_s = r["total_time_s"], r["ttft_ms"] / 1000
    assert 0.540 - CLOCK_SLACK_MS / 1000 <= total <= 0.540 + LATE_MARGIN_MS / 1000
    assert r["tokens_per_second"] == pytest.approx(40 / total, rel=1e-2)
    assert r["output_speed_tps"] == pytest.approx(40 / (total - ttft_s), rel=1e-2)
    assert r["itl_ms"] == pytest.approx((total - ttft_s) / 39 * 1000, rel=1e-2)
    # the 390 ms between first and last token, less or more one late chunk, over 39 gaps
    assert (390 - LATE_MARGIN_MS) / 39 <= r["itl_ms"] <= (390 + LATE_MARGIN_MS) / 39
    assert r["input_tokens_per_second"] == pytest.approx(r["input_tokens"] / ttft_s, rel=1e-2)
    assert 0 <= r["itl_p50_ms"] <= r["itl_p99_ms"] <= 10 + LATE_MARGIN_MS
    assert r["cost_known"] is True
    assert r["cost"] == round(r["input_tokens"] * 3.0 / 1e6 + 40 * 15.0 / 1e6, 8)


def test_reasoning_counts_for_ttft_not_ttfo(kind, target):
    r = run(target(kind, "reasoning+ttft=50+itl=20+reasoning=5+tokens=5"))
    assert r["success"] is True, r
    assert r["output_tokens"] == 10  # usage includes reasoning (Gemini: thoughtsTokenCount)
    # five reasoning chunks, 20 ms apart, come first: text is scheduled at 50 + 5 × 20 ms
    # (the server's schedule is absolute, so a late first chunk cannot make text early;
    # a reader late by 100 ms may get reasoning and text in one read, hence >=)
    assert r["ttfo_ms"] >= r["ttft_ms"]
    assert 150 - CLOCK_SLACK_MS <= r["ttfo_ms"] <= 150 + LATE_MARGIN_MS
    assert 50 - CLOCK_SLACK_MS <= r["ttft_ms"] <= 50 + LATE_MARGIN_MS


def test_usage_absent_falls_back_to_counting(kind, target):
    r = run(target(kind, "nousage+tokens=12", prices=(1.0, 1.0)))
    assert r["success"] is True, r
    assert r["usage_reported"] is False
    assert r["output_tokens"] == 12
    assert r["input_tokens"] == 0 and r["input_tokens_per_second"] is None
    assert r["cost_known"] is True and r["cost"] == round(12 / 1e6, 8)


def test_without_role_chunk(kind, target):
    r = run(target(kind, "norole+ttft=120"))
    assert r["success"] is True, r
    assert 120 - CLOCK_SLACK_MS <= r["ttft_ms"] <= 120 + LATE_MARGIN_MS


def test_unknown_price_costs_nothing(kind, target):
    r = run(target(kind, "t", prices=(None, 2.0)))
    assert r["success"] is True and r["cost"] == 0.0 and r["cost_known"] is False


def test_single_token_has_no_itl(kind, target):
    r = run(target(kind, "t+tokens=1"))
    assert r["success"] is True, r
    assert r["output_tokens"] == 1
    assert r["itl_ms"] is None and r["itl_p50_ms"] is None and r["itl_p99_ms"] is None


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, "auth_failed"), (403, "auth_failed"), (429, "rate_limited"), (500, "http_500"), (404, "http_404")],
)
def test_http_errors_keep_provider_message(kind, target, status, error_type):
    expected = {
        ("openai", 401): "Incorrect API key provided",
        ("openai", 403): "Country, region, or territory not supported",
        ("openai", 429): "Rate limit reached for",
        ("openai", 500): "The server had an error while processing your request",
        ("openai", 404): "does not exist or you do not have access to it",
        ("anthropic", 401): "invalid x-api-key",
        ("anthropic", 403): "does not have permission to use the specified resource",
        ("anthropic", 429): "would exceed the rate limit",
        ("anthropic", 500): "Internal server error",
        ("anthropic", 404): "model: err-404",
        ("gemini", 401): "Request had invalid authentication credentials",
        ("gemini", 403): "Permission denied: Consumer 'api_key:***' has been suspended",
        ("gemini", 429): "You exceeded your current quota",
        ("gemini", 500): "An internal error has occurred",
        ("gemini", 404): "is not found for API version v1beta",
    }[(kind, status)]
    r = run(target(kind, f"err-{status}"))
    assert_failed(r, error_type)
    assert expected in r["error"]


def test_gemini_api_key_invalid_is_auth_failed(kind, target):
    r = run(target(kind, "err-400-key"))
    if kind == "gemini":
        assert_failed(r, "auth_failed")
        assert "API key not valid" in r["error"]
    else:
        assert_failed(r, "http_400")


def test_midstream_error_event(kind, target):
    r = run(target(kind, "midstream-error"))
    expected = {"openai": "http_500", "anthropic": "http_529", "gemini": "http_500"}[kind]
    assert_failed(r, expected)


def test_malformed_json_chunk(kind, target):
    assert_failed(run(target(kind, "malformed")), "bad_response")


def test_stream_cut_midway_is_not_success(kind, target):
    r = run(target(kind, "cut+at=3"))
    assert_failed(r, "network")
    assert "mid-stream" in r["error"]


def test_stream_without_terminator_is_not_success(kind, target):
    r = run(target(kind, "noterm"))
    assert_failed(r, "bad_response")
    assert "terminator" in r["error"]


def test_non_streaming_answer_is_bad_response(kind, target):
    r = run(target(kind, "json+ttft=10+itl=1"))
    assert_failed(r, "bad_response")
    assert "non-streaming" in r["error"]


def test_stall_past_read_timeout(kind, target, monkeypatch):
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "0.3")
    started = time.monotonic()
    r = run(target(kind, "stall+stall=5+at=2"))
    elapsed = time.monotonic() - started
    assert_failed(r, "timeout")
    assert "PROVIDER_READ_TIMEOUT_S" in r["error"]
    assert 0.3 <= elapsed < 3.0


def test_connection_refused_is_network(kind, closed_port):
    t = ModelTarget("x", kind, f"http://127.0.0.1:{closed_port}/v1", "m", "x/m")
    assert_failed(run(t), "network")


def test_silent_server_hits_read_timeout(kind, silent_port, monkeypatch):
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "0.3")
    t = ModelTarget("x", kind, f"http://127.0.0.1:{silent_port}/v1", "m", "x/m")
    started = time.monotonic()
    assert_failed(run(t), "timeout")
    assert time.monotonic() - started < 3.0


# ------------------------------------------------------------ cancel and deadlines


def test_should_stop_stops_within_one_chunk(kind, target):
    calls: list[float] = []
    stopped_at: list[float] = []

    def should_stop() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 3:  # before sending, after the role chunk, after the first token
            stopped_at.append(time.monotonic())
            return True
        return False

    # tokens every 300 ms: if the engine read one more chunk after the True, it would
    # take ~300 ms to return
    r = run(target(kind, "t+ttft=50+itl=300+tokens=6"), should_stop=should_stop)
    returned = time.monotonic()
    assert_failed(r, "cancelled")
    assert len(calls) == 3
    assert returned - stopped_at[0] < 0.25


def test_should_stop_before_sending_sends_nothing(kind, target, server):
    before = len(server.requests)
    r = run(target(kind, "t"), should_stop=lambda: True)
    assert_failed(r, "cancelled")
    assert len(server.requests) == before


def test_deadline_ends_a_stalled_stream(kind, target):
    started = time.monotonic()
    r = run(target(kind, "stall+stall=5+at=2"), deadline=started + 0.3)
    elapsed = time.monotonic() - started
    assert_failed(r, "timeout")
    assert "deadline" in r["error"]
    assert 0.29 <= elapsed < 2.5


def test_deadline_before_headers(kind, silent_port):
    t = ModelTarget("x", kind, f"http://127.0.0.1:{silent_port}/v1", "m", "x/m")
    started = time.monotonic()
    r = run(t, deadline=started + 0.3)
    assert_failed(r, "timeout")
    assert time.monotonic() - started < 2.0


def test_deadline_already_passed(kind, target, server):
    before = len(server.requests)
    assert_failed(run(target(kind, "t"), deadline=time.monotonic() - 1), "timeout")
    assert len(server.requests) == before


def test_total_timeout_ends_a_trickling_stream(kind, target, monkeypatch):
    """Chunks every 100 ms never trip the read timeout; the total timeout still ends it."""
    monkeypatch.setenv("PROVIDER_TOTAL_TIMEOUT_S", "0.3")
    started = time.monotonic()
    r = run(target(kind, "t+ttft=10+itl=100+tokens=100"))
    assert_failed(r, "timeout")
    assert "PROVIDER_TOTAL_TIMEOUT_S" in r["error"]
    assert time.monotonic() - started < 2.5


# ------------------------------------------------------------------------ secrets


ERROR_MODELS = ["err-401", "err-403", "err-429", "err-500", "err-400-key", "err-echo-key",
                "malformed", "cut", "noterm", "midstream-error", "json+ttft=1+itl=1"]


def test_api_key_never_in_any_result(kind, target):
    for model in ERROR_MODELS + ["t"]:
        result = run_model(target(kind, model), SETTINGS, API_KEY)
        dumped = json.dumps(result)
        assert API_KEY not in dumped, (model, result)
        assert "SUPERSECRET" not in dumped, (model, result)
        assert "*" + API_KEY[-4:] not in dumped, (model, result)  # OpenAI's masked echo


def test_requests_carry_the_key_only_in_the_provider_header(kind, target, server):
    run(target(kind, "t"))
    sent = server.requests[-1]
    assert sent.kind == kind
    assert API_KEY not in sent.path
    header = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}[kind]
    assert API_KEY in sent.headers[header]
    if kind == "openai":
        assert sent.body["stream"] is True
        assert sent.body["stream_options"] == {"include_usage": True}
        assert sent.body["max_tokens"] == SETTINGS.max_tokens
    elif kind == "anthropic":
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.body["stream"] is True and sent.body["max_tokens"] == SETTINGS.max_tokens
    else:
        assert sent.path.endswith(":streamGenerateContent?alt=sse")
        assert sent.body["generationConfig"]["maxOutputTokens"] == SETTINGS.max_tokens


def test_wrong_key_against_a_key_checking_server(kind):
    with FakeProviderServer(api_key="right-key-123456") as srv:
        t = ModelTarget("x", kind, srv.base_url_for(kind), "t", "x/t")
        ok = run_model(t, SETTINGS, "right-key-123456")
        bad = run_model(t, SETTINGS, "wrong-key-654321")
        missing = run_model(t, SETTINGS, None)
    assert ok["success"] is True, ok
    assert_failed(bad, "auth_failed")
    assert_failed(missing, "auth_failed")
    assert "wrong-key-654321" not in json.dumps(bad)


def test_concurrent_runs_are_independent(kind, target):
    """Several models stream at once (the runner runs providers concurrently)."""
    results: list[dict] = []
    t = target(kind, "t+ttft=200+itl=20+tokens=10")

    def work() -> None:
        results.append(run_model(t, SETTINGS, API_KEY))

    threads = [threading.Thread(target=work) for _ in range(5)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r["success"] for r in results) and len(results) == 5
    assert time.monotonic() - started < 1.6  # one run takes ~0.4 s; serial would be 2 s
