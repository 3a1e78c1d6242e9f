"""The dev stack's Lambda Invoke API, spoken to by boto3 exactly as the app speaks to it.

In-process and fast: the endpoint serves stand-in functions; what is checked is the part of
Lambda's contract the app and botocore rely on (status codes, error shapes, async events in
worker threads, the concurrency limit, the remaining time a function sees).
"""
from __future__ import annotations

import json
import os
import threading
import time

import boto3
import pytest
from botocore.config import Config

from devstack.lambda_endpoint import Function, LambdaEndpoint, app_functions
from devstack.sigv4 import Credentials
from tests.signed_requests import raw_request


def env_credentials() -> Credentials:
    """What boto3 signs with in the tests (the stack gives the app its own the same way)."""
    return Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.remaining: list[float] = []
        self.done = threading.Event()
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def echo(self, event, context):
        self.events.append(event)
        self.remaining.append(context.get_remaining_time_in_millis())
        self.done.set()
        return {"echo": event, "function": context.function_name}

    def boom(self, event, context):
        raise ValueError("no good")

    def hold(self, event, context):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.release.wait(10)
        with self.lock:
            self.running -= 1
        self.events.append(event)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def endpoint(recorder):
    served = LambdaEndpoint(
        [
            Function("app-local-runner", recorder.echo, timeout_s=900),
            Function("app-local-boom", recorder.boom),
            Function("app-local-hold", recorder.hold),
        ],
        credentials=env_credentials(),
        concurrency=3,
    ).start()
    yield served
    recorder.release.set()
    served.stop(drain_s=2)


@pytest.fixture
def lam(endpoint):
    return boto3.client(
        "lambda", endpoint_url=endpoint.url, config=Config(retries={"max_attempts": 1})
    )


def test_an_event_invocation_answers_202_and_runs_in_a_worker(lam, recorder):
    answer = lam.invoke(FunctionName="app-local-runner", InvocationType="Event", Payload=b'{"job_id": "j1"}')
    assert answer["StatusCode"] == 202
    assert recorder.done.wait(5)
    assert recorder.events == [{"job_id": "j1"}]
    # The runner sees the remaining time of a 900 s Lambda.
    assert 899_000 < recorder.remaining[0] <= 900_000


def test_a_request_response_invocation_returns_the_result(lam):
    answer = lam.invoke(FunctionName="app-local-runner", Payload=json.dumps({"job_id": "j2"}))
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert json.loads(answer["Payload"].read()) == {"echo": {"job_id": "j2"}, "function": "app-local-runner"}


def test_function_names_may_be_arns_and_qualified(lam):
    for name in (
        "arn:aws:lambda:us-east-1:123456789012:function:app-local-runner",
        "123456789012:function:app-local-runner",
        "app-local-runner:$LATEST",
    ):
        assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_an_unknown_function_is_resource_not_found(lam):
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as missing:
        lam.invoke(FunctionName="nope", InvocationType="Event", Payload=b"{}")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope" in str(missing.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="app-local-runner", Qualifier="7", Payload=b"{}")


def test_a_raising_function_is_a_function_error_not_an_http_error(lam):
    answer = lam.invoke(FunctionName="app-local-boom", Payload=b"{}")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "no good"


def test_bad_json_and_dry_run(lam):
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="app-local-runner", Payload=b"{not json")
    assert lam.invoke(FunctionName="app-local-runner", InvocationType="DryRun")["StatusCode"] == 204


def test_events_beyond_the_concurrency_limit_wait_their_turn(lam, recorder, endpoint):
    for number in range(7):
        lam.invoke(FunctionName="app-local-hold", InvocationType="Event", Payload=json.dumps({"n": number}))
    deadline = time.monotonic() + 5
    while recorder.running < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert recorder.peak == 3  # never more than the limit at once
    # A synchronous call finds no free slot: Lambda's throttle.
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName="app-local-runner", Payload=b"{}")
    recorder.release.set()
    deadline = time.monotonic() + 5
    while len(recorder.events) < 7 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(e["n"] for e in recorder.events) == list(range(7))


@pytest.mark.parametrize("signer", ["none", "other-key", "wrong-secret"])
def test_an_invoke_not_signed_with_the_stacks_key_is_refused_and_runs_nothing(endpoint, recorder, signer):
    mine = env_credentials()
    credentials = {
        "other-key": Credentials("AKIAOTHERKEY00000000", mine.secret_key),
        "wrong-secret": Credentials(mine.access_key, "not-the-secret"),
    }.get(signer)
    url = f"{endpoint.url}/2015-03-31/functions/app-local-runner/invocations"

    status, headers, _ = raw_request("POST", url, b'{"job_id": "forged"}', credentials, "lambda")

    assert status == 403
    assert "access-control-allow-origin" not in headers
    assert recorder.events == []


def test_a_signed_invoke_carries_no_cors_headers(lam, endpoint):
    status, headers, _ = raw_request(
        "POST", f"{endpoint.url}/2015-03-31/functions/app-local-runner/invocations", b"{}", env_credentials(), "lambda"
    )
    assert status == 200
    assert not [name for name in headers if name.startswith("access-control-")]


def test_stop_closes_the_port(recorder):
    import socket

    served = LambdaEndpoint([Function("f", recorder.echo)], credentials=env_credentials()).start()
    port = served.port
    served.stop(drain_s=1)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_app_functions_are_served_under_their_deployed_names():
    import app as app_module

    functions = {f.name: f for f in app_functions(app_module, "local")}
    assert set(functions) == {"benchmark-scheduler-local-runner", "benchmark-scheduler-local-tick"}
    assert functions["benchmark-scheduler-local-runner"].timeout_s == 900
    assert functions["benchmark-scheduler-local-tick"].timeout_s == 60
    assert functions["benchmark-scheduler-local-runner"].handler is app_module.runner
