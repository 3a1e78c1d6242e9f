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
API_KEY = "sk-test-SUPERSECRET-0123456789abcdef"
SETTINGS = RunSettings(prompt="Write a short story about a benchmark. " * 4, max_tokens=256, temperature=0.7)


@pytest.fixture(autouse=True)
def _provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Known timeouts for every test, whatever the developer's shell says."""
    for name in ("PROVIDER_CONNECT_TIMEOUT_S", "PROVIDER_READ_TIMEOUT_S", "PROVIDER_TOTAL_TIMEOUT_S"):
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
