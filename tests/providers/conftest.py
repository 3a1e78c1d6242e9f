"""Fixtures for the engine tests: one loopback fake provider server per module.

The server is real HTTP over 127.0.0.1 (devstack/fake_providers.py), so the engine is
tested through httpx's real transport, never a mocked one.
"""
from __future__ import annotations

import socket
from typing import Callable, Iterator

import pytest

from chalicelib.providers import ModelTarget, RunSettings
from devstack.fake_providers import FakeProviderServer

KINDS = ("openai", "anthropic", "gemini")

#: How much later than scheduled a loopback measurement may come on a loaded 2-core
#: machine. The engine's own bias is small: bench/fidelity.py measures TTFT at +3–5 ms
#: over the configured value (the same as a bare httpx loop). Here the fake server
#: runs in the test's own process (one GIL) while other suites load the machine: 90
#: runs of a 150 ms TTFT at load 6 came in up to 143 ms late (median 3 ms, p95 29 ms).
#: So a time may be this much late, never early: the server schedules every chunk
#: from when it read the request, after the engine's t0. Which chunks the times come
#: from is tested exactly, without a clock, in test_engine_units.py.
LATE_MARGIN_MS = 250.0
#: Slack for "never early": the server's time.monotonic() and the engine's
#: time.perf_counter() are different clocks.
CLOCK_SLACK_MS = 2.0
API_KEY = "sk-test-SUPERSECRET-0123456789abcdef"
SETTINGS = RunSettings(prompt="Write a short story about a benchmark. " * 4, max_tokens=256, temperature=0.7)


PROVIDER_SETTINGS = (
    "PROVIDER_CONNECT_TIMEOUT_S",
    "PROVIDER_READ_TIMEOUT_S",
    "PROVIDER_TOTAL_TIMEOUT_S",
    "PROVIDER_MAX_EVENT_BYTES",
    "PROVIDER_MAX_RESPONSE_BYTES",
)


@pytest.fixture(autouse=True)
def _provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Known timeouts and default caps for every test, whatever the developer's shell says."""
    for name in PROVIDER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "10")
    monkeypatch.setenv("PROVIDER_TOTAL_TIMEOUT_S", "20")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as srv:
        yield srv


@pytest.fixture
def target(server: FakeProviderServer) -> Callable[..., ModelTarget]:
    """``target(kind, model, prices=(in, out))`` pointed at the module's server."""

    def make(kind: str, model: str, prices: tuple[float | None, float | None] = (None, None)) -> ModelTarget:
        return ModelTarget(
            provider_key=f"fake-{kind}",
            kind=kind,
            base_url=server.base_url_for(kind),
            model=model,
            name=f"fake-{kind}/{model}",
            input_cost_per_mtok=prices[0],
            output_cost_per_mtok=prices[1],
        )

    return make


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
