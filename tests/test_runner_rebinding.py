"""The runner connects a user endpoint only to addresses the SSRF guard vetted.

The guard is on (``ALLOW_PRIVATE_ENDPOINTS=false``) and this test owns the resolver and
the guard's verdicts: 127.0.0.2 (a "legit" provider) is public, 127.0.0.1 (an
"internal service" on the same port) is refused. The name ``rebind.test`` answers the
legit address to the first lookup and the internal one to every later lookup — DNS
rebinding between the runner's check and the connect.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterator

import pytest

from chalicelib import clock as app_clock
from chalicelib import schedules, tick, user_providers
from chalicelib.tables import ProviderModel, RunModel
from devstack.fake_providers import FakeProviderServer

USER = "u-" + "r" * 30
LEGIT, INTERNAL = "127.0.0.2", "127.0.0.1"


@pytest.fixture
def servers() -> Iterator[tuple[FakeProviderServer, FakeProviderServer]]:
    """The legit provider and the internal service, on one port at two addresses."""
    for _ in range(20):
        legit = FakeProviderServer(host=LEGIT).start()
        internal = FakeProviderServer(host=INTERNAL, port=legit.port)
        try:
            internal.start()
        except OSError:  # that port is taken on 127.0.0.1: try another
            legit.stop()
            continue
        try:
            yield legit, internal
        finally:
            internal.stop()
            legit.stop()
        return
    pytest.fail("no port free on both loopback addresses")


@pytest.fixture
def guard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "false")
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    monkeypatch.setattr(
        user_providers, "refusal",
        lambda address: None if address == ipaddress.ip_address(LEGIT) else "an internal address",
    )


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """``rebind.test`` answers ``answers[0]``, then ``answers[1]`` forever; numeric hosts
    resolve as usual. Returns every answer given for the name."""
    given: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = answers[min(len(given), 1)]
        given.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return given


def run_once(port: int, clock, lambda_invokes) -> dict:
    """A schedule of the user endpoint's one model, run by the tick; its result."""
    ProviderModel(
        USER, "mine", kind="openai", base_url=f"http://rebind.test:{port}/openai/v1",
        models=[{"id": "t"}], updated_at=app_clock.now_iso(),
    ).save()
    schedules.create(USER, schedules.ScheduleCreate(
        name="rebinding", models=["mine/t"], prompt="Say hello.", max_tokens=16, temperature=0.0,
        interval_hours=1,
    ))
    clock.advance(hours=1)
    assert len(tick.run().claimed) == 1
    lambda_invokes.run_pending()
    [run] = RunModel.query(USER)
    [result] = run.results
    return result


def test_a_name_rebound_after_the_check_still_reaches_only_the_vetted_address(
    servers, guard_on, monkeypatch, clock, aws, lambda_invokes
):
    legit, internal = servers
    given = rebinding_dns(monkeypatch, [LEGIT, INTERNAL])

    result = run_once(legit.port, clock, lambda_invokes)

    assert result["success"] is True, result
    assert internal.requests == []
    [sent] = legit.requests
    assert sent.headers["host"] == f"rebind.test:{legit.port}"
    assert given == [LEGIT]  # the runner's check; the connect asked no one


def test_a_name_pointing_inside_at_request_time_is_refused_unsent(
    servers, guard_on, monkeypatch, clock, aws, lambda_invokes
):
    legit, internal = servers
    rebinding_dns(monkeypatch, [INTERNAL, INTERNAL])

    result = run_once(legit.port, clock, lambda_invokes)

    assert result["error_type"] == "network", result
    assert f"resolves to {INTERNAL}" in result["error"]
    assert internal.requests == [] and legit.requests == []
