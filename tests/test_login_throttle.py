"""Failed-login throttling (`chalicelib.throttle`): per account and per source, in DynamoDB.

Time is the injected clock: "8 attempts a second" is the clock advancing 125 ms between
attempts, never a sleep.
"""
from __future__ import annotations

import json
import threading

import pytest

from chalicelib import auth, throttle
from chalicelib.errors import TooManyRequests, Unauthorized
from chalicelib.tables import LoginFailuresModel

EMAIL, PASSWORD = "carol@example.com", "s3cret-pass"


def login(client, email: str, password: str) -> tuple[int, dict, dict]:
    response = client.http.post(
        "/api/auth/login",
        headers={"content-type": "application/json"},
        body=json.dumps({"email": email, "password": password}).encode(),
    )
    return response.status_code, json.loads(response.body), response.headers


@pytest.fixture
def carol(make_user):
    return make_user(EMAIL, PASSWORD)


def test_sixty_wrong_passwords_at_8_per_second_then_the_right_one_is_refused(clock, client, carol):
    statuses = []
    for _ in range(60):
        clock.advance(milliseconds=125)
        status, data, headers = login(client, EMAIL, "wrong-password")
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            assert data == {"error": f"Too many failed logins: try again in {headers['Retry-After']} seconds"}

    status, data, headers = login(client, EMAIL, PASSWORD)

    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert statuses[:5] == [401] * 5
    # after the fifth failure each one locks twice as long: 1, 2, 4 s ... within 7.5 s
    assert statuses.count(401) <= 8
    assert statuses.count(429) >= 52


def test_the_lock_lasts_its_retry_after_then_the_right_password_works_and_clears_the_count(clock, client, carol):
    for _ in range(5):
        assert login(client, EMAIL, "wrong-password")[0] == 401
    status, _, headers = login(client, EMAIL, PASSWORD)
    assert (status, headers["Retry-After"]) == (429, "1")

    clock.advance(seconds=1)
    assert login(client, EMAIL, PASSWORD)[0] == 200
    assert LoginFailuresModel.count(throttle.account_key(EMAIL), consistent_read=True) == 0
    # counting starts over: four more failures lock nothing
    for _ in range(4):
        assert login(client, EMAIL, "wrong-password")[0] == 401
    assert login(client, EMAIL, PASSWORD)[0] == 200


def test_each_further_failure_doubles_the_lock_up_to_the_maximum(clock, aws, monkeypatch):
    monkeypatch.setenv("LOGIN_LOCKOUT_MAX_S", "30")
    waits = []
    for _ in range(12):
        with pytest.raises(Unauthorized):
            auth.login("nobody@example.com", "wrong-password")
        try:
            throttle.check([throttle.account_key("nobody@example.com")])
            waits.append(0)
        except TooManyRequests as refused:
            waits.append(int(refused.headers["Retry-After"]))
            with pytest.raises(TooManyRequests):  # the lock holds until its last second
                clock.advance(seconds=waits[-1] - 0.5)
                auth.login("nobody@example.com", "wrong-password")
            clock.advance(seconds=0.5)
    # the 5th failure locks 1 s; each of the next 7 doubles it; then the maximum holds
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30, 30]


def test_an_unknown_email_is_throttled_exactly_like_a_known_one(clock, client, carol):
    def sequence(email: str) -> list[tuple[int, str | None]]:
        seen = []
        for _ in range(9):
            status, _, headers = login(client, email, "wrong-password")
            seen.append((status, headers.get("Retry-After")))
            clock.advance(milliseconds=500)
        return seen

    known = sequence(EMAIL)
    unknown = sequence("nobody@example.com")
    assert known == unknown
    assert [status for status, _ in known].count(429) > 0


def test_an_unknown_email_still_costs_one_password_verification(aws, monkeypatch):
    verified = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda p, s: verified.append(s) or real(p, s))
    with pytest.raises(Unauthorized):
        auth.login("nobody@example.com", "wrong-password")
    assert verified == [auth._DUMMY_HASH]


def test_one_source_failing_on_many_accounts_is_locked_and_others_are_not(clock, aws, make_user):
    make_user(EMAIL, PASSWORD)
    for i in range(20):
        with pytest.raises(Unauthorized):
            auth.login(f"victim{i}@example.com", "guess", source_ip="198.51.100.7")
    # the 21st attempt from that source is refused, even with another account's password
    with pytest.raises(TooManyRequests):
        auth.login(EMAIL, PASSWORD, source_ip="198.51.100.7")
    # another source, and the same account from it, are not
    assert auth.login(EMAIL, PASSWORD, source_ip="203.0.113.9")


def test_the_rest_api_throttles_by_the_requests_source_ip(clock, client, carol, monkeypatch):
    monkeypatch.setenv("LOGIN_MAX_FAILURES_PER_SOURCE", "3")
    for i in range(3):
        assert login(client, f"other{i}@example.com", "guess")[0] == 401
    assert login(client, EMAIL, PASSWORD)[0] == 429  # chalice's local source, 127.0.0.1


def test_concurrent_failures_are_each_counted_once(clock, aws):
    barrier = threading.Barrier(10)

    def fail() -> None:
        barrier.wait()
        throttle.failed(throttle.account_key("race@example.com"), throttle.Policy(max_failures=100))

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    item = LoginFailuresModel.get(throttle.account_key("race@example.com"), consistent_read=True)
    assert item.failures == 10 and item.locked_until is None


def test_failures_older_than_the_window_are_forgotten(clock, aws, monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURE_WINDOW_S", "600")
    for _ in range(4):
        with pytest.raises(Unauthorized):
            auth.login("quiet@example.com", "wrong-password")
    clock.advance(seconds=601)
    for _ in range(4):
        with pytest.raises(Unauthorized):
            auth.login("quiet@example.com", "wrong-password")
    item = LoginFailuresModel.get(throttle.account_key("quiet@example.com"), consistent_read=True)
    assert item.failures == 4 and item.locked_until is None


def test_a_lock_only_ever_extends(clock, aws):
    key = throttle.account_key("x@example.com")
    policy = throttle.Policy(max_failures=1)
    for _ in range(4):
        throttle.failed(key, policy)  # locks of 1, 2, 4, 8 s, all from the same moment
    longest = LoginFailuresModel.get(key, consistent_read=True).locked_until
    throttle.failed(key, throttle.Policy(max_failures=1000))  # counts, locks nothing
    assert LoginFailuresModel.get(key, consistent_read=True).locked_until == longest


def test_the_table_holds_no_email_or_address(clock, aws):
    with pytest.raises(Unauthorized):
        auth.login("private@example.com", "wrong-password", source_ip="198.51.100.7")
    stored = json.dumps([item.attribute_values for item in LoginFailuresModel.scan()], default=str)
    assert "private" not in stored and "198.51" not in stored
    assert all(item.ttl is not None for item in LoginFailuresModel.scan())
