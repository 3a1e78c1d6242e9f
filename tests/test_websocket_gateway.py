"""The dev stack's WebSocket gateway with a real `websockets` client (DESIGN §1, §5).

moto runs in-process (the `aws` fixture) and the gateway runs in a thread of this process
calling the same `app` object, so the app's DynamoDB calls hit moto, while its
`post_to_connection` calls (to `http://127.0.0.1:<port>/api`, not an AWS host) go through
moto untouched to the gateway's `@connections` API, exactly as in `make run`.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import ExitStack
from typing import Callable
from urllib.parse import quote

import boto3
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chalicelib import clock as app_clock
from chalicelib import aws_clients, connections, notify
from chalicelib.tables import ConnectionModel, ProviderModel
from devstack.sigv4 import Credentials
from devstack.stack import free_port
from devstack.ws_gateway import start_gateway
from tests.signed_requests import raw_request

TIMEOUT = 30  # seconds: generous, the machine is shared and noisy


@pytest.fixture
def gateway(aws):
    """The gateway on a free port; yields its ws:// URL. Stopped before moto goes away."""
    from app import app

    aws_clients.reset()
    port = free_port()
    stop = start_gateway("127.0.0.1", port, credentials=app_credentials(), chalice_app=app)
    yield f"ws://127.0.0.1:{port}/api"
    stop()
    aws_clients.reset()


def app_credentials() -> Credentials:
    """The credentials the app's boto3 clients sign with in the tests."""
    return Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def receive(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=TIMEOUT))


def ping(ws: ClientConnection) -> dict:
    ws.send(json.dumps({"type": "ping"}))
    return receive(ws)


def live_connections(user_id: str) -> list[str]:
    return [item.connection_id for item in ConnectionModel.by_user.query(user_id)]


# --- the socket ---------------------------------------------------------------------------


def test_ping_pong_and_errors_keep_the_socket_open(gateway, alice):
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        ws.send("{nope")
        assert receive(ws) == {"type": "error", "error": "Invalid JSON"}
        ws.send(json.dumps({"type": "sync"}))
        assert receive(ws) == {"type": "sync", "active_jobs": [], "recent_jobs": []}
        assert ping(ws) == {"type": "pong"}


@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-jwt"])
def test_a_bad_token_is_refused_at_the_handshake(gateway, alice, query):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{gateway}{query}", open_timeout=TIMEOUT)

    assert refused.value.response.status_code == 401
    assert "error" in json.loads(bytes(refused.value.response.body))
    assert live_connections(alice.id) == []


def test_the_sixth_connection_is_refused_with_429(gateway, alice):
    with ExitStack() as sockets:
        for _ in range(5):
            sockets.enter_context(connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT))
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 429
    # every close became a $disconnect: all places are free again
    assert wait_for(lambda: live_connections(alice.id) == [])
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}


def test_send_to_user_reaches_both_of_the_users_sockets_and_not_another_users(gateway, alice, bob):
    url = gateway
    with connect(f"{url}?token={alice.token}", open_timeout=TIMEOUT) as first, connect(
        f"{url}?token={alice.token}", open_timeout=TIMEOUT
    ) as second, connect(f"{url}?token={bob.token}", open_timeout=TIMEOUT) as other:
        notify.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})

        assert receive(first) == {"type": "job_started", "job_id": "j1"}
        assert receive(second) == {"type": "job_started", "job_id": "j1"}
        # send_to_user returned after every post was delivered, so anything meant for bob
        # would already be queued before this pong
        assert ping(other) == {"type": "pong"}


def test_a_closed_socket_is_disconnected_and_later_sends_skip_it(gateway, alice):
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        [connection_id] = live_connections(alice.id)
        ws.close()

    assert wait_for(lambda: connections.get(connection_id) is None)
    notify.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})  # nobody: no error


def test_a_post_to_a_vanished_socket_is_410_and_deletes_the_record(gateway, alice):
    """A socket that died without its $disconnect reaching the app (a crashed Lambda, say)."""
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        [connection_id] = live_connections(alice.id)
    assert wait_for(lambda: connections.get(connection_id) is None)
    # put the record back as if the $disconnect had been lost
    endpoint = gateway.replace("ws://", "http://")
    connections.register(connection_id, alice.id, endpoint)

    notify.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})

    assert connections.get(connection_id) is None


def test_stale_records_of_a_restarted_gateway_do_not_hold_places(gateway, clock, alice):
    """Records whose sockets this gateway never had (a dev stack restarted with its state):
    at the limit, GetConnection answers 410 for each, and their places are freed."""
    endpoint = gateway.replace("ws://", "http://")
    stale = [f"stale{i}AAAAAAAAA=" for i in range(5)]
    for connection_id in stale:
        connections.register(connection_id, alice.id, endpoint)
    clock.advance(seconds=11)

    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        [fresh] = live_connections(alice.id)
        assert fresh not in stale


# --- the @connections management API, through boto3 ------------------------------------------


def test_the_management_api_speaks_botocores_protocol(gateway, alice):
    endpoint = gateway.replace("ws://", "http://")
    api = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        [connection_id] = live_connections(alice.id)

        info = api.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]

        api.post_to_connection(ConnectionId=connection_id, Data=b'{"type": "hello"}')
        assert receive(ws) == {"type": "hello"}

        api.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
    assert wait_for(lambda: connections.get(connection_id) is None)

    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=connection_id, Data=b"{}")
    with pytest.raises(api.exceptions.GoneException):
        api.get_connection(ConnectionId="unknown=")


@pytest.mark.parametrize("signer", ["none", "other-key", "wrong-secret"])
def test_the_management_api_refuses_requests_not_signed_with_the_stacks_key(gateway, alice, signer):
    endpoint = gateway.replace("ws://", "http://")
    with connect(f"{gateway}?token={alice.token}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        [connection_id] = live_connections(alice.id)
        url = f"{endpoint}/@connections/{quote(connection_id, safe='')}"
        mine = app_credentials()
        credentials = {
            "other-key": Credentials("AKIAOTHERKEY00000000", mine.secret_key),
            "wrong-secret": Credentials(mine.access_key, "not-the-secret"),
        }.get(signer)
        status, headers, _ = raw_request("POST", url, b'{"type": "forged"}', credentials, "execute-api")

        assert status == 403
        assert headers["x-amzn-errortype"] in ("MissingAuthenticationTokenException", "UnrecognizedClientException",
                                               "InvalidSignatureException")
        assert "access-control-allow-origin" not in headers
        # nothing reached the socket: the next message is the answer to a ping
        assert ping(ws) == {"type": "pong"}


def test_the_gateway_stops_while_a_client_still_holds_an_answered_http_connection(aws):
    """A plain HTTP answer (here a 404) closes the connection from the gateway's side:
    stopping does not wait for the client to hang up (websockets' close timeout is 10 s)."""
    from app import app

    port = free_port()
    stop = start_gateway("127.0.0.1", port, credentials=app_credentials(), chalice_app=app)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as held:
        held.sendall(f"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += held.recv(4096)
        assert answer.startswith(b"HTTP/1.1 404")
        stopped = threading.Event()
        threading.Thread(target=lambda: (stop(), stopped.set()), daemon=True).start()
        # the client still holds its socket: the stop must not depend on it
        assert stopped.wait(5), "stop() waited for a client to close an answered connection"


# --- a triggered schedule, live --------------------------------------------------------------


@pytest.fixture
def fast_runner(monkeypatch):
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the provider is on loopback
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "5")


def events_until(ws: ClientConnection, last: str) -> list[dict]:
    events = []
    while not events or events[-1]["type"] != last:
        events.append(receive(ws))
    return events


def test_a_triggered_schedules_events_reach_both_sockets_in_order(
    gateway, clock, alice, bob, provider_server, lambda_invokes, fast_runner
):
    ProviderModel(
        alice.id, "fake", kind="openai", base_url=provider_server.base_url_for("openai"),
        models=[{"id": "t", "input_cost_per_mtok": 1.0, "output_cost_per_mtok": 2.0}],
        updated_at=app_clock.now_iso(),
    ).save()
    status, created = alice.post("/api/schedules", {
        "name": "live", "models": ["fake/t"], "prompt": "Say hello.", "max_tokens": 32,
        "temperature": 0.0, "interval_hours": 1,
    })
    assert status == 200, created

    url = gateway
    with connect(f"{url}?token={alice.token}", open_timeout=TIMEOUT) as first, connect(
        f"{url}?token={alice.token}", open_timeout=TIMEOUT
    ) as second, connect(f"{url}?token={bob.token}", open_timeout=TIMEOUT) as other:
        status, triggered = alice.post(f"/api/schedules/{created['id']}/trigger")
        assert status == 200, triggered
        lambda_invokes.run_pending()  # Lambda delivers the runner's invoke

        for ws in (first, second):
            events = events_until(ws, "job_completed")
            assert {event["job_id"] for event in events} == {triggered["job_id"]}
            milestones = [e["type"] for e in events if e["type"] != "job_progress"]
            assert milestones == [
                "job_created", "job_started", "benchmark_init", "benchmark_result", "job_completed",
            ]
            assert events[0]["status"] == "pending"
            assert events[2]["data"]["context_tiers"] == [0]
            result = next(e for e in events if e["type"] == "benchmark_result")["data"]
            assert result["success"] is True and result["model"] == "fake/t"
            assert events[-1]["result_ref"]
        assert ping(other) == {"type": "pong"}  # nothing of alice's reached bob
