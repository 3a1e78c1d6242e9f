"""The fake provider server itself: presets, the demo models, clean stops."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from chalicelib.providers import ModelTarget, RunSettings, run_model
from devstack import fake_providers as fp

from .conftest import CLOCK_SLACK_MS, LATE_MARGIN_MS, SETTINGS


def test_presets_and_options():
    assert fp.behaviour_for("fast") == fp.DEMO_MODELS["fast"]
    b = fp.behaviour_for("t+ttft=150+itl=20+tokens=50+usage=0+role=0+reasoning=3")
    assert (b.ttft_s, b.itl_s, b.tokens, b.usage, b.role_chunk, b.reasoning_tokens) == (0.15, 0.02, 50, False, False, 3)
    assert fp.behaviour_for("stall+stall=2.5+at=4") == fp.Behaviour(stall_at=4, stall_s=2.5)
    assert fp.behaviour_for("err-418").error_status == 418
    assert fp.behaviour_for("nope") is None
    assert fp.behaviour_for("t+bogus=1") is None and fp.behaviour_for("t+tokens=x") is None


def test_demo_constants():
    fast, slow = fp.DEMO_MODELS["fast"], fp.DEMO_MODELS["slow"]
    assert (fast.ttft_s, 1 / fast.itl_s, fast.tokens) == (0.1, 100.0, 64)
    assert (slow.ttft_s, 1 / slow.itl_s, slow.tokens) == (0.6, 20.0, 64)


def test_demo_server_speaks_openai_with_fast_model():
    srv = fp.demo_server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    assert srv.ready.wait(5)
    try:
        base = srv.base_url_for("demo")
        assert base.endswith("/v1")
        listed = httpx.get(base + "/models").json()
        assert {m["id"] for m in listed["data"]} == {"fast", "slow"}
        r = run_model(ModelTarget("demo", "openai", base, "fast", "demo/fast", 0.0, 0.0), SETTINGS, None)
        assert r["success"] is True, r
        assert r["output_tokens"] == fp.DEMO_FAST_TOKENS
        assert 100 - CLOCK_SLACK_MS <= r["ttft_ms"] <= 100 + LATE_MARGIN_MS
        # 63 gaps of 10 ms between first and last token, less or more one late chunk
        gen_ms = 630
        assert 64 / (gen_ms + LATE_MARGIN_MS) * 1000 <= r["output_speed_tps"] <= 64 / (gen_ms - LATE_MARGIN_MS) * 1000
        assert r["cost"] == 0.0 and r["cost_known"] is True
    finally:
        srv.stop()
    thread.join(5)
    assert not thread.is_alive()


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_the_requests_max_tokens_caps_what_is_streamed(server, kind):
    few = RunSettings(prompt=SETTINGS.prompt, max_tokens=5, temperature=0.7)
    r = run_model(ModelTarget("x", kind, server.base_url_for(kind), "t+tokens=40+itl=1", "x/t"), few, "k")
    assert r["success"] is True, r
    assert r["output_tokens"] == 5
    plenty = run_model(ModelTarget("x", kind, server.base_url_for(kind), "t+tokens=40+itl=1", "x/t"), SETTINGS, "k")
    assert plenty["output_tokens"] == 40


def test_a_capped_reasoning_model_spends_the_limit_on_reasoning_first():
    capped = fp._within_limit(fp.Behaviour(reasoning_tokens=8, tokens=8), 5)
    assert (capped.reasoning_tokens, capped.tokens) == (5, 0)
    assert fp._within_limit(fp.Behaviour(tokens=3), 5) == fp.Behaviour(tokens=3)


def test_unknown_model_gets_the_providers_404(server):
    for kind in ("openai", "anthropic", "gemini"):
        r = run_model(ModelTarget("x", kind, server.base_url_for(kind), "no-such-model", "x/y"), SETTINGS, "k")
        assert r["error_type"] == "http_404", r


def test_server_config_models_and_default():
    custom = fp.Behaviour(ttft_s=0.01, itl_s=0.001, tokens=3)
    with fp.FakeProviderServer(models={"mine": custom}, default=fp.Behaviour(tokens=2)) as srv:
        base = srv.base_url_for("openai")
        mine = run_model(ModelTarget("x", "openai", base, "mine", "x/mine"), SETTINGS, None)
        other = run_model(ModelTarget("x", "openai", base, "whatever", "x/w"), SETTINGS, None)
        srv.set_behaviour("late", fp.Behaviour(tokens=4))
        late = run_model(ModelTarget("x", "openai", base, "late", "x/late"), SETTINGS, None)
    assert (mine["output_tokens"], other["output_tokens"], late["output_tokens"]) == (3, 2, 4)


def test_stop_ends_stalled_streams_promptly():
    srv = fp.FakeProviderServer().start()
    results: list[dict] = []
    t = ModelTarget("x", "anthropic", srv.base_url_for("anthropic"), "stall+stall=60+at=1", "x/s")
    worker = threading.Thread(target=lambda: results.append(run_model(t, SETTINGS, "k")))
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 2.0
    worker.join(5)
    assert results and results[0]["success"] is False
    assert results[0]["error_type"] in ("network", "bad_response")
    with pytest.raises(RuntimeError):
        srv.root_url
    srv.stop()  # idempotent


def test_many_concurrent_streams(server):
    base = server.base_url_for("openai")
    t = ModelTarget("x", "openai", base, "t+ttft=300+itl=10+tokens=10", "x/t")
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(run_model(t, SETTINGS, None))) for _ in range(16)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 16 and all(r["success"] for r in results)
    assert all(r["ttft_ms"] < 300 + 700 for r in results)
    assert time.monotonic() - started < 3.0  # serially this would take ~6.5 s
