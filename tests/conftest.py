"""Shared fixtures: an isolated moto AWS per test, the app's tables, a clock, and a client.

Every test runs against moto (in-process) with fake credentials and no AWS endpoint from
the developer's shell, so nothing can reach a real account or the internet.
"""
from __future__ import annotations

import contextlib
import os
from datetime import datetime, timezone
from pathlib import Path

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


def pytest_collection_modifyitems(config, items):
    """`make test` runs two pytest-xdist workers (`--dist loadgroup`): each test file stays on
    one worker, so its module fixtures (a browser, a seeded account) are built once, and all of
    tests/deploy shares one worker and so one packaged bundle per stage."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    root = Path(config.rootpath)
    for item in items:
        where = Path(item.path).relative_to(root)
        group = "tests/deploy" if where.parts[:2] == ("tests", "deploy") else where.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in _DROP:
            monkeypatch.delenv(name)
    for name, value in _ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def _moto_session():
    """One moto account for the whole session, with every table created once.

    Creating eight tables costs ~25 requests; per test that was most of the suite's time.
    Each test still starts from empty tables and a fresh Secrets Manager (`aws` below).
    """
    from unittest import mock

    from moto import mock_aws

    from chalicelib import tables

    serialize_dynamodb()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL") and k not in _DROP}
    with mock.patch.dict(os.environ, {**clean, **_ENV}, clear=True), mock_aws():
        tables.create_tables()
        yield


def _empty_aws() -> None:
    """Forget every item, secret and @connections post of the session's moto account (and
    bring the tables back if a `fresh_moto()` removed them). KMS keys stay: moto makes an RSA
    key pair for every key it creates (~70 ms here), and ciphertexts are bound to their user
    by the encryption context, not by a key per test."""
    from moto.backends import get_backend
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib import config, tables

    present = set()
    for regions in dynamodb_backends.values():
        for backend in regions.values():
            for name, table in backend.tables.items():
                table.items.clear()
                present.add(name)
    if not {config.table_name(t) for t in config.TABLE_ENV} <= present:
        tables.create_tables()
    for service in ("secretsmanager", "apigatewaymanagementapi"):
        for regions in get_backend(service).values():
            for backend in regions.values():
                backend.reset()


@contextlib.contextmanager
def fresh_moto():
    """A moto holding nothing at all, as a restarted dev stack finds it — also inside the
    session's moto (nested mocks share one state, so this empties it, and `aws` rebuilds)."""
    from moto import mock_aws
    from moto.core.base_backend import BackendDict

    with mock_aws():
        BackendDict.reset()
        try:
            yield
        finally:
            BackendDict.reset()


_kms_key: list[str] = []


def _session_kms_key() -> str:
    """The session's KMS key, made again only when a `fresh_moto()` removed it."""
    import boto3

    kms = boto3.client("kms")
    if _kms_key:
        try:
            kms.describe_key(KeyId=_kms_key[0])
            return _kms_key[0]
        except kms.exceptions.NotFoundException:
            _kms_key.clear()
    _kms_key.append(kms.create_key()["KeyMetadata"]["KeyId"])
    return _kms_key[0]


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """scrypt at N=2^10 instead of 2^14 in tests (~70 ms a registration here otherwise); the
    parameters travel with each hash, so verification works either way."""
    from chalicelib import auth

    monkeypatch.setattr(auth, "_SCRYPT_N", 2**10)


@pytest.fixture
def aws(aws_env, _moto_session, monkeypatch):
    """Empty tables of the app and the session's KMS key (`KMS_KEY_ID`), in moto."""
    from chalicelib import aws_clients

    _empty_aws()
    aws_clients.reset()
    monkeypatch.setenv("KMS_KEY_ID", _session_kms_key())
    yield
    aws_clients.reset()


@pytest.fixture
def kms(aws):
    """The id of the app's KMS key in this test's moto account (`KMS_KEY_ID`)."""
    return os.environ["KMS_KEY_ID"]


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
    """`chalice.test.Client` on the app."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as test_client:
        yield test_client


class Api:
    """JSON over `chalice.test.Client`, as one signed-in user (or anonymous)."""

    def __init__(self, test_client, token: str | None = None, user: dict | None = None):
        self.client = test_client
        self.token = token
        self.user = user or {}

    @property
    def id(self) -> str:
        return self.user["id"]

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"content-type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def call(self, method: str, path: str, json_body=None, *, raw: bytes | None = None,
             headers: dict | None = None):
        import json

        body = raw if raw is not None else (b"" if json_body is None else json.dumps(json_body).encode())
        response = self.client.http.request(method, path, headers=self.headers(headers), body=body)
        try:
            data = json.loads(response.body) if response.body else None
        except ValueError:
            data = response.body
        return response.status_code, data

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.call("POST", path, json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self.call("PUT", path, json_body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def anonymous(client) -> Api:
    return Api(client)


@pytest.fixture
def make_user(client):
    """Register a user and return an `Api` signed in as them."""
    counter = iter(range(1_000_000))

    def make(email: str | None = None, password: str = "password123") -> Api:
        email = email or f"user{next(counter)}@example.com"
        status, data = Api(client).post("/api/auth/register", {"email": email, "password": password})
        assert status == 200, data
        return Api(client, data["access_token"], data["user"])

    return make


@pytest.fixture
def alice(make_user) -> Api:
    return make_user("alice@example.com")


@pytest.fixture
def bob(make_user) -> Api:
    return make_user("bob@example.com")


class LambdaInvokes:
    """Lambda as the tests see it: every async `Invoke` the app makes is recorded (botocore
    short-circuits the call at `before-call`, so nothing leaves the process), and
    `run_pending()` then delivers them to the runner, like Lambda's event queue would."""

    def __init__(self):
        import threading

        self.payloads: list[dict] = []
        self.function_names: list[str] = []
        self._delivered = 0
        self._lock = threading.Lock()

    def record(self, params, **_):
        import json

        from botocore.awsrequest import AWSResponse

        with self._lock:
            self.payloads.append(json.loads(params["body"]))
            self.function_names.append(params["url_path"].split("/")[3])
        return AWSResponse("", 202, {}, None), {"StatusCode": 202}

    @property
    def job_ids(self) -> list[str]:
        return [p["job_id"] for p in self.payloads]

    def run_pending(self, remaining_ms=None) -> list[dict]:
        """Deliver every not yet delivered invoke (and those they cause) to the runner."""
        from chalicelib import runner

        outcomes = []
        while True:
            with self._lock:
                if self._delivered >= len(self.payloads):
                    return outcomes
                payload = self.payloads[self._delivered]
                self._delivered += 1
            outcomes.append(runner.handle(payload, remaining_ms))


@pytest.fixture
def lambda_invokes(aws):
    from chalicelib import aws_clients, dispatch

    aws_clients.reset()
    invokes = LambdaInvokes()
    dispatch.lambda_client().meta.events.register("before-call.lambda.Invoke", invokes.record)
    yield invokes
    aws_clients.reset()


@pytest.fixture
def recorded_events():
    """Every event the app sends to users' clients, in order."""
    from chalicelib import notify
    from tests.recording import RecordingNotifier

    recorder = RecordingNotifier()
    previous = notify.use(recorder)
    yield recorder
    notify.use(previous)


@pytest.fixture
def events(aws, clock, monkeypatch, recorded_events):
    """The job registry's tests: fresh tables, the frozen clock, and every event sent.

    Also gives each test a clean memory of job owners (tests reuse job ids across moto
    accounts, which production never does)."""
    from chalicelib.jobs import lifecycle

    monkeypatch.setattr(lifecycle, "_owners", lifecycle._Owners())
    return recorded_events


@pytest.fixture(scope="session")
def provider_server():
    """One loopback server speaking the OpenAI, Anthropic and Gemini stream formats."""
    from devstack.fake_providers import FakeProviderServer

    with FakeProviderServer() as server:
        yield server
