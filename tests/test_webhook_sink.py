"""The dev stack's webhook sink (devstack/webhook_sink.py), over real loopback HTTP."""
from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from devstack.webhook_sink import KEPT, MAX_BODY, WebhookSink


@pytest.fixture
def sink():
    served = WebhookSink().start()
    yield served
    served.stop()


def test_a_post_to_any_path_is_answered_logged_and_listed(sink, caplog):
    body = json.dumps({"type": "alert_fired", "text": "x" * 400})
    with caplog.at_level(logging.INFO, logger="devstack.webhook"):
        answer = httpx.post(sink.url, content=body, headers={"X-Event-Id": "ev-1", "Content-Type": "application/json"})
        other = httpx.post(sink.url.replace("/hook", "/slack/T1"), content=b"{}")

    assert answer.status_code == 200 == other.status_code
    assert sink.url.startswith("http://127.0.0.1:") and sink.url.endswith("/hook")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"webhook /hook event=ev-1 {body[:300]}"
    assert lines[1] == "webhook /slack/T1 event=- {}"
    events = httpx.get(sink.url.replace("/hook", "/events")).json()
    assert [e["path"] for e in events] == ["/hook", "/slack/T1"]
    assert events[0]["body"] == body
    assert events[0]["headers"]["X-Event-Id"] == "ev-1"
    assert events[0]["received_at"].endswith("Z")


def test_a_body_over_one_mebibyte_is_refused_and_not_kept(sink):
    answer = httpx.post(sink.url, content=b"x" * (MAX_BODY + 1))
    assert answer.status_code == 413
    assert httpx.post(sink.url, content=b"x" * MAX_BODY).status_code == 200
    assert [len(e["body"]) for e in sink.events()] == [MAX_BODY]


def test_a_body_without_a_length_is_refused(sink):
    host, port = sink.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 411 ")
    assert sink.events() == []


def test_only_the_last_hundred_deliveries_are_kept(sink):
    with httpx.Client() as client:
        for number in range(KEPT + 5):
            client.post(sink.url, content=str(number).encode())
    assert [e["body"] for e in sink.events()] == [str(n) for n in range(5, KEPT + 5)]


def test_other_methods_and_paths_are_refused(sink):
    base = sink.url.rsplit("/", 1)[0]
    assert httpx.put(sink.url, content=b"{}").status_code == 405
    assert httpx.get(f"{base}/hook").status_code == 404
    assert sink.events() == []
