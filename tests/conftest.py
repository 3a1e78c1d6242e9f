"""Shared fixtures: an isolated moto AWS per test, the app's tables, a clock, and a client.

Every test runs against moto (in-process) with fake credentials and no AWS endpoint from
the developer's shell, so nothing can reach a real account or the internet.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from devstack.moto_serial import serialize_dynamodb

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "test",
    "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
}
_DROP = ("AWS_PROFILE", "JWT_SECRET_ARN")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in _DROP:
            monkeypatch.delenv(name)
    for name, value in _ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws(aws_env):
    """A fresh moto account holding every table of the app."""
    from moto import mock_aws

    from chalicelib import tables

    serialize_dynamodb()
    with mock_aws():
        tables.create_tables()
        yield


class FakeClock:
    """An injectable clock: tests move time with `advance`, never by sleeping."""

    def __init__(self, start: datetime):
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta) -> datetime:
        from datetime import timedelta

        self.moment += timedelta(**delta)
        return self.moment


@pytest.fixture
def clock():
    from chalicelib import clock as app_clock

    fake = FakeClock(datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc))
    app_clock.use(fake)
    yield fake
    app_clock.use(None)


@pytest.fixture
def client(aws):
    """`chalice.test.Client` on the app, with API Gateway's authorizer semantics."""
    from chalice.test import Client

    from app import app
    from devstack.apigateway import emulate_authorizer_errors

    emulate_authorizer_errors()
    with Client(app, stage_name="test") as test_client:
        yield test_client
