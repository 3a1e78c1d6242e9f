"""Tickets and logout through the dev stack's WebSocket gateway with a real client."""
from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.test_websocket_gateway import TIMEOUT, gateway, ping  # noqa: F401 - fixture


def test_a_browser_connects_with_a_ticket_and_logout_closes_its_socket(gateway, alice):  # noqa: F811
    status, data = alice.post("/api/ws-ticket")
    assert status == 200

    with connect(f"{gateway}?ticket={data['ticket']}", open_timeout=TIMEOUT) as ws:
        assert ping(ws) == {"type": "pong"}
        assert alice.post("/api/auth/logout") == (200, {"status": "ok", "connections_closed": 1})
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)

    with pytest.raises(InvalidStatus) as refused:  # the ticket was used
        connect(f"{gateway}?ticket={data['ticket']}", open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 401
