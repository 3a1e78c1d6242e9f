"""Webhook delivery (issue 15, item 3) over real loopback HTTP: the signature a receiver
verifies with the rule's secret, the Slack format, retries and timeouts counted by the
receiver (never by the wall clock), redirects not followed, the endpoint guard applied
again at delivery, and connections made only to the addresses it vetted."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time

import pytest

from chalicelib import alert_delivery, alert_eval, alerts, webhooks
from chalicelib.alert_rules import Condition
from chalicelib.tables import AlertEventModel
from tests.alerting import Receiver, result, save_run

USER = "u-" + "d" * 30
THRESHOLD = {"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300}


@pytest.fixture
def fast_webhooks(monkeypatch):
    """Short timeouts and backoffs, so a stalled receiver costs a test little; the
    receivers are on loopback, which only the local stack's setting allows."""
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "0.3")
    monkeypatch.setenv("WEBHOOK_BACKOFF_S", "0.01")


@pytest.fixture
def receiver(fast_webhooks):
    served = Receiver().start()
    yield served
    served.stop()


@pytest.fixture
def user(aws, clock, recorded_events):
    return USER


def make_rule(url: str, *, webhook_format: str = "json", name: str = "slow start", condition=THRESHOLD) -> tuple[str, str]:
    alert, secret = alerts.create(USER, alerts.AlertCreate(
        name=name, model="openai/x", condition=Condition.model_validate(condition),
        webhook_url=url, webhook_format=webhook_format,
    ))
    return alert["id"], secret


def fire(clock, ttft_ms: float = 900.0) -> list[alert_eval.Sent]:
    run = save_run(clock, USER, "a" * 32, [result("openai/x", ttft_ms=ttft_ms)])
    return alert_eval.evaluate(USER, run)


def deliveries() -> list[str]:
    return [item.delivery for item in AlertEventModel.query(USER, consistent_read=True)]


def verify(secret: str, body: bytes, header: str) -> bool:
    """What the README tells a receiver to do."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


# --- what is sent ------------------------------------------------------------------------------


def test_the_json_body_is_signed_with_the_rules_secret(user, clock, receiver, recorded_events):
    alert_id, secret = make_rule(receiver.url)

    [sent] = fire(clock)

    [got] = receiver.received
    assert verify(secret, got.body, got.headers["X-Signature-256"])
    assert not verify(secret, got.body + b" ", got.headers["X-Signature-256"])
    assert not verify("whsec_other", got.body, got.headers["X-Signature-256"])
    body = got.json()
    assert got.headers["X-Event-Id"] == body["event_id"] == sent.event["event_id"]
    assert got.headers["Content-Type"] == "application/json" and got.path == "/hook"
    [live] = recorded_events.messages("alert_fired", user_id=USER)
    assert body == live  # the webhook and the WebSocket carry the same event
    assert body["type"] == "alert_fired" and body["alert_id"] == alert_id and body["value"] == 900.0
    assert set(body) == set(alert_delivery.FIELDS)
    assert secret not in got.body.decode()
    assert sent.delivery == "delivered" and deliveries() == ["delivered"]


def test_the_slack_format_posts_text_only(user, clock, receiver):
    _, secret = make_rule(receiver.url, webhook_format="slack", name="<!channel> & co")

    fire(clock, 612.5)
    fire(clock, 100.0)

    fired, resolved = [r.json() for r in receiver.received]
    assert set(fired) == {"text"} and set(resolved) == {"text"}
    assert fired["text"].startswith(":rotating_light: Alert *&lt;!channel&gt; &amp; co* fired: openai/x ttft_ms = 612.5")
    assert "alert when above 300" in fired["text"]
    assert resolved["text"].startswith(":white_check_mark: Alert *&lt;!channel&gt; &amp; co* resolved: openai/x ttft_ms = 100")
    assert all(verify(secret, r.body, r.headers["X-Signature-256"]) for r in receiver.received)


def test_slack_text_for_failures_and_regressions():
    failure = {"type": "alert_fired", "name": "n", "model": "m/x", "value": "http_500", "detail": "[http_500] <b>",
               "condition": {"kind": "failure"}, "run_id": "r1"}
    assert alert_delivery.slack_text(failure) == ":rotating_light: Alert *n* fired: m/x failed (http_500): [http_500] &lt;b&gt; · run r1"
    regression = {"type": "alert_fired", "name": "n", "model": "m/x", "metric": "ttft_ms", "value": 300.0,
                  "baseline": 100.0, "run_id": "r2",
                  "condition": {"kind": "regression", "metric": "ttft_ms", "percent": 50.0, "baseline_runs": 5}}
    assert "median of the last 5 runs 100, alert when 50.0 % worse" in alert_delivery.slack_text(regression)


# --- retries and timeouts ------------------------------------------------------------------------


def test_a_500_is_retried_twice_then_recorded_as_failed(user, clock, receiver):
    receiver.answers = [500]
    make_rule(receiver.url)

    [sent] = fire(clock)

    assert len(receiver.received) == 3
    assert len({r.headers["X-Event-Id"] for r in receiver.received}) == 1  # the same event each time
    assert sent.delivery == "failed: HTTP 500 after 3 attempts" == deliveries()[0]


def test_a_retry_that_succeeds_is_delivered(user, clock, receiver):
    receiver.answers = [503, 429, 200]
    make_rule(receiver.url)
    [sent] = fire(clock)
    assert len(receiver.received) == 3 and sent.delivery == "delivered"


def test_a_stalled_receiver_is_given_up_on_after_each_timeout(user, clock, receiver):
    receiver.stall_s = 30
    make_rule(receiver.url)

    [sent] = fire(clock)

    assert len(receiver.received) == 3
    assert sent.delivery == "failed: timeout after 3 attempts"


def test_an_answer_trickled_a_byte_at_a_time_is_cut_off_at_the_timeout(receiver):
    receiver.trickle = True  # each byte comes well within the read timeout: only the cut-off ends it
    policy = webhooks.Policy(timeout_s=0.5, retries=0, backoff_s=0)
    hang_guard = threading.Timer(20, receiver.release.set)  # without the cut-off, only this ends it
    hang_guard.start()
    try:
        outcome = webhooks.post(receiver.url, b"{}", secret="s", event_id="e", deadline=time.monotonic() + 60,
                                policy=policy)
        ended_by_the_guard = receiver.release.is_set()
    finally:
        hang_guard.cancel()

    assert not ended_by_the_guard
    assert outcome == webhooks.Outcome(False, "timeout after 1 attempt", 1)


def test_backoff_doubles_and_no_attempt_starts_past_the_deadline(receiver):
    receiver.answers = [500]
    pauses: list[float] = []
    policy = webhooks.Policy(timeout_s=1, retries=2, backoff_s=0.25)

    outcome = webhooks.post(receiver.url, b"{}", secret="s", event_id="e", deadline=time.monotonic() + 60,
                            policy=policy, sleep=pauses.append)
    assert pauses == [0.25, 0.5] and outcome.attempts == 3

    receiver.received.clear()
    outcome = webhooks.post(receiver.url, b"{}", secret="s", event_id="e", deadline=time.monotonic() + 0.2,
                            policy=policy, sleep=pauses.append)
    assert outcome.attempts == 1 and len(receiver.received) == 1  # a 0.25 s pause would pass the deadline
    outcome = webhooks.post(receiver.url, b"{}", secret="s", event_id="e", deadline=time.monotonic() - 1, policy=policy)
    assert outcome == webhooks.Outcome(False, "not sent: no time left before the delivery deadline", 0)
    assert len(receiver.received) == 1


def test_the_evaluation_budget_bounds_every_delivery(user, clock, receiver, monkeypatch):
    receiver.stall_s = 30
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "5")
    monkeypatch.setenv("ALERT_DELIVERY_BUDGET_S", "0.3")
    make_rule(receiver.url)

    [sent] = fire(clock)

    assert len(receiver.received) == 1  # cut at the budget, and no retry started after it
    assert sent.delivery == "failed: timeout after 1 attempt"


def test_a_client_error_is_not_retried_and_a_redirect_not_followed(user, clock, fast_webhooks):
    target = Receiver().start()
    redirecting = Receiver(answers=[302], location=target.url).start()
    refusing = Receiver(answers=[404]).start()
    try:
        make_rule(redirecting.url, name="redirect")
        make_rule(refusing.url, name="gone")

        sent = {s.event["name"]: s.delivery for s in fire(clock)}

        assert sent == {"redirect": "failed: HTTP 302 (redirects are not followed)", "gone": "failed: HTTP 404"}
        assert len(redirecting.received) == 1 and len(refusing.received) == 1 and target.received == []
    finally:
        for served in (target, redirecting, refusing):
            served.stop()


def test_deliveries_of_one_evaluation_run_in_parallel(user, clock, fast_webhooks, monkeypatch):
    """Each receiver answers 200 only once the other's request has arrived too: one after
    the other, the first would time out waiting."""
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "5")
    monkeypatch.setenv("WEBHOOK_RETRIES", "0")
    both = threading.Barrier(2, timeout=3)

    class Meeting(Receiver):
        def take(self, path, headers, body):
            super().take(path, headers, body)
            try:
                both.wait()
                return 200
            except threading.BrokenBarrierError:
                return 500

    first, second = Meeting().start(), Meeting().start()
    try:
        make_rule(first.url, name="one")
        make_rule(second.url, name="two")
        assert sorted(s.delivery for s in fire(clock)) == ["delivered", "delivered"]
    finally:
        first.stop()
        second.stop()


# --- where it may connect ------------------------------------------------------------------------


def test_a_webhook_to_a_private_address_is_refused_at_delivery_with_the_guard_on(user, clock, receiver, monkeypatch):
    make_rule(receiver.url)  # saved while the local stack's setting allowed it
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "false")

    [sent] = fire(clock)

    assert sent.delivery == "failed: refused: must be an https:// URL"
    assert receiver.received == []


def test_a_name_that_rebinds_to_loopback_is_refused_at_delivery(user, clock, monkeypatch):
    real = socket.getaddrinfo
    answers = {"hooks.example.com": "93.184.216.34"}

    def resolve(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    make_rule("https://hooks.example.com/hook")
    answers["hooks.example.com"] = "127.0.0.1"

    [sent] = fire(clock)

    assert sent.delivery == (
        "failed: refused: host 'hooks.example.com' resolves to 127.0.0.1, a loopback address"
    )


def test_the_connection_goes_only_to_the_vetted_address(receiver, monkeypatch):
    """The name is never resolved again after the guard vetted it: here it resolves to
    nothing at all, and the request still reaches the vetted address, named by its host."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        if host == "hooks.invalid":
            raise socket.gaierror("no such name")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(webhooks, "check_url", lambda url: ["127.0.0.1"])
    url = f"http://hooks.invalid:{receiver.port}/hook"

    outcome = webhooks.post(url, b"{}", secret="s", event_id="e", deadline=time.monotonic() + 10)

    assert outcome.delivered, outcome
    [got] = receiver.received
    assert got.headers["Host"] == f"hooks.invalid:{receiver.port}"
    assert "hooks.invalid" not in lookups


def test_a_pinned_client_refuses_any_other_host(receiver):
    with webhooks._client("http://hooks.invalid/hook", ["127.0.0.1"]) as client:
        with pytest.raises(Exception, match="no vetted address"):
            client.post(f"http://other.invalid:{receiver.port}/hook", content=b"{}")
    assert receiver.received == []


def test_no_provider_key_token_or_secret_is_in_any_payload(user, clock, receiver, kms):
    from chalicelib import keys

    provider_key = "sk-proj-THISMUSTNEVERLEAK0000000000000"
    keys.put_key(USER, "openai", provider_key)
    _, secret = make_rule(receiver.url, condition={"kind": "failure"})
    failing = result("openai/x", error_type="auth_failed", error="[auth_failed] Incorrect API key provided: sk-pr****0000")
    alert_eval.evaluate(USER, save_run(clock, USER, "a" * 32, [failing]))

    [got] = receiver.received
    text = got.body.decode()
    assert provider_key not in text and secret not in text and "Bearer" not in text
    assert json.loads(text)["detail"] == failing["error"]
