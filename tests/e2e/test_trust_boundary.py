"""End to end: what a web page or another local process can do with the running stack.

The AWS endpoints (moto, Lambda Invoke, `@connections`) answer only requests signed with
the stack's own credentials (`<state dir>/credentials.json`) and never answer CORS; the
REST API answers no CORS either (the UI is served from the same origin). See the README's
"Trust boundary".
"""
from __future__ import annotations

import json
import stat
from urllib.parse import urlsplit

import httpx
import pytest

from devstack.sigv4 import Credentials
from tests.signed_requests import raw_request

pytestmark = pytest.mark.timeout(120)

EVIL = "http://evil.example"
LIST_TABLES = {"X-Amz-Target": "DynamoDB_20120810.ListTables"}
GET_SECRET = {"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1"}


@pytest.fixture
def stack(local_stack):
    local_stack.start()  # a restart test elsewhere may have left it stopped
    return local_stack


def stack_credentials(stack) -> Credentials:
    doc = json.loads((stack.state_dir / "credentials.json").read_text())
    return Credentials(doc["aws_access_key_id"], doc["aws_secret_access_key"])


def no_cors(headers: dict[str, str]) -> bool:
    return not [name for name in headers if name.startswith("access-control-")]


def test_the_credentials_are_private_and_are_the_apps(stack):
    path = stack.state_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    exports = stack.exports()
    assert exports["AWS_ACCESS_KEY_ID"] == stack_credentials(stack).access_key


def test_every_server_listens_on_loopback(stack):
    exports = stack.exports()
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "DEMO_PROVIDER_URL", "DEVSTACK_WEBHOOK_URL", "WS_URL"):
        assert urlsplit(exports[name]).hostname == "127.0.0.1", name


def test_the_app_reads_private_endpoints_and_its_websocket_url_from_the_stack(stack):
    exports = stack.exports()
    assert exports["ALLOW_PRIVATE_ENDPOINTS"] == "true"
    assert exports["WS_URL"] == stack.ws_url


@pytest.mark.parametrize("signer", ["none", "other key", "wrong secret"])
def test_moto_refuses_a_request_not_signed_with_the_stacks_key(stack, signer):
    mine = stack_credentials(stack)
    credentials = {
        "other key": Credentials("AKIAOTHERKEY00000000", mine.secret_key),
        "wrong secret": Credentials(mine.access_key, "a-guess"),
    }.get(signer)
    secret_arn = stack.exports()["JWT_SECRET_ARN"]
    body = json.dumps({"SecretId": secret_arn}).encode()

    status, headers, answer = raw_request("POST", stack.exports()["AWS_ENDPOINT_URL"] + "/", body, credentials,
                                          "secretsmanager", headers=GET_SECRET, origin=EVIL)

    assert status == 403
    assert no_cors(headers)
    assert b"SecretString" not in answer


def test_moto_answers_the_stacks_own_signature_without_cors(stack):
    status, headers, answer = raw_request("POST", stack.exports()["AWS_ENDPOINT_URL"] + "/", b"{}",
                                          stack_credentials(stack), "dynamodb", headers=LIST_TABLES, origin=EVIL)
    assert status == 200
    assert no_cors(headers)
    assert any(name.endswith("-schedules") for name in json.loads(answer)["TableNames"])


def test_no_endpoint_answers_a_cors_preflight(stack):
    exports = stack.exports()
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    for url in (
        exports["AWS_ENDPOINT_URL"] + "/",
        exports["AWS_ENDPOINT_URL_LAMBDA"] + "/2015-03-31/functions/x/invocations",
        f"{stack.rest_url}/api/schedules",
        f"{stack.rest_url}/api/auth/login",
    ):
        answer = httpx.options(url, headers=preflight)
        assert "access-control-allow-origin" not in answer.headers, url


def test_the_rest_api_answers_no_cors(stack):
    answer = httpx.post(f"{stack.rest_url}/api/auth/login", json={"email": "a@example.com", "password": "x" * 10},
                        headers={"Origin": EVIL})
    assert answer.status_code == 401
    assert "access-control-allow-origin" not in answer.headers


def test_lambda_and_connections_refuse_unsigned_requests(stack):
    exports = stack.exports()
    runner = exports["RUNNER_FUNCTION_NAME"]
    status, headers, _ = raw_request("POST", f"{exports['AWS_ENDPOINT_URL_LAMBDA']}/2015-03-31/functions/{runner}/invocations",
                                     b'{"job_id": "x"}', None, "lambda", origin=EVIL)
    assert status == 403 and no_cors(headers)
    connections = stack.ws_url.replace("ws://", "http://") + "/@connections/abc%3D"
    status, headers, _ = raw_request("POST", connections, b"{}", None, "execute-api", origin=EVIL)
    assert status == 403 and no_cors(headers)
    status, _, _ = raw_request("POST", connections, b"{}", stack_credentials(stack), "execute-api")
    assert status == 410  # signed: the API answers (that connection is gone)


def test_the_webhook_sink_receives_and_lists(stack):
    url = stack.exports()["DEVSTACK_WEBHOOK_URL"]
    assert httpx.post(url, json={"alert": "e2e"}, headers={"X-Event-Id": "e2e-1"}).status_code == 200
    events = httpx.get(url.rsplit("/", 1)[0] + "/events").json()
    assert any(e["headers"].get("X-Event-Id") == "e2e-1" for e in events)
    assert "webhook /hook event=e2e-1" in stack.log()
