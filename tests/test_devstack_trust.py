"""The dev stack's trust boundary, piece by piece: the signature check of its AWS endpoints
(devstack/sigv4.py), its credentials file, its refusal of non-loopback hosts.

Signatures are made by botocore itself, as the app's clients make them."""
from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from werkzeug.test import Client
from werkzeug.wrappers import Response

from devstack import sigv4
from devstack.stack import parse_args

MINE = sigv4.Credentials("AKIAMINE000000000000", "my-secret-key")
URL = "http://127.0.0.1:4566/"
BODY = b'{"TableName": "t"}'


def signed(credentials: sigv4.Credentials = MINE, body: bytes = BODY, url: str = URL,
           service: str = "dynamodb") -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
    })
    SigV4Auth(BotocoreCredentials(credentials.access_key, credentials.secret_key), service, "us-east-1").add_auth(request)
    return request


def check(request: AWSRequest, body: bytes | None = None, target: str = "/", now: datetime | None = None,
          drop: str | None = None) -> sigv4.Refusal | None:
    headers = sigv4.lower_headers(request.headers.items())
    headers["host"] = "127.0.0.1:4566"
    if drop:
        del headers[drop]
    return sigv4.verify(MINE, request.method, target, headers, request.body if body is None else body, now)


def test_a_request_botocore_signed_with_the_stacks_key_passes():
    assert check(signed()) is None


def test_a_signature_covers_the_path_and_query():
    request = signed(url="http://127.0.0.1:4566/2015-03-31/functions/f%3A1/invocations?Qualifier=%24LATEST", service="lambda")
    target = "/2015-03-31/functions/f%3A1/invocations?Qualifier=%24LATEST"
    assert check(request, target=target) is None
    assert check(request, target=target.replace("f%3A1", "g%3A1")).error_type == "InvalidSignatureException"
    assert check(request, target=target.replace("%24LATEST", "7")).error_type == "InvalidSignatureException"


@pytest.mark.parametrize("case, error", [
    ("unsigned", "MissingAuthenticationTokenException"),
    ("other key", "UnrecognizedClientException"),
    ("wrong secret", "InvalidSignatureException"),
    ("tampered body", "InvalidSignatureException"),
    ("a signed header missing", "InvalidSignatureException"),
    ("signed 16 minutes ago", "InvalidSignatureException"),
])
def test_requests_not_signed_with_the_stacks_key_are_refused(case, error):
    request = signed(sigv4.Credentials("AKIAOTHER00000000000", MINE.secret_key) if case == "other key"
                     else sigv4.Credentials(MINE.access_key, "guess") if case == "wrong secret" else MINE)
    if case == "unsigned":
        del request.headers["Authorization"]
    refusal = check(
        request,
        body=b'{"TableName": "other"}' if case == "tampered body" else None,
        drop="x-amz-target" if case == "a signed header missing" else None,
        now=datetime.now(timezone.utc) + timedelta(minutes=16) if case == "signed 16 minutes ago" else None,
    )
    assert refusal is not None and refusal.error_type == error


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
    "AWS4-HMAC-SHA256 Credential=AKIAMINE000000000000/x/y/z/aws4_request, SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=AKIAMÏNE000000000000/20261202/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=ÿÿ",
    "AWS4-HMAC-SHA256 Credential=AKIAMINE000000000000/20261202/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=zz",
    "Basic dXNlcjpwYXNz",
])
def test_a_malformed_authorization_header_is_a_refusal_never_an_error(authorization):
    request = signed()
    del request.headers["Authorization"]
    request.headers["Authorization"] = authorization
    assert isinstance(check(request), sigv4.Refusal)


def test_a_payload_digest_header_must_match_the_body():
    request = signed()
    request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(BotocoreCredentials(MINE.access_key, MINE.secret_key), "dynamodb", "us-east-1").add_auth(request)
    assert check(request).error_type == "InvalidSignatureException"


# --- the moto server's middleware ------------------------------------------------------------------


def moto_stand_in(calls: list):
    def application(environ, start_response):
        calls.append(environ)
        return Response(b"{}", headers={"Access-Control-Allow-Origin": "http://evil.example",
                                        "Access-Control-Allow-Credentials": "true"})(environ, start_response)
    return application


def send(client: Client, request: AWSRequest, origin: str = "http://evil.example"):
    headers = {k: v for k, v in request.headers.items()}
    headers["Origin"] = origin
    return client.post("/", data=request.body, headers=headers, base_url="http://127.0.0.1:4566")


def test_the_middleware_passes_signed_requests_without_cors_headers():
    calls: list = []
    client = Client(sigv4.signed_only(MINE)(moto_stand_in(calls)))

    answer = send(client, signed())

    assert answer.status_code == 200
    assert not [h for h in answer.headers.keys() if h.lower().startswith("access-control-")]
    assert calls[0]["wsgi.input"].read() == BODY  # moto still reads the body


def test_the_middleware_refuses_unsigned_requests_and_preflights_before_moto():
    calls: list = []
    client = Client(sigv4.signed_only(MINE)(moto_stand_in(calls)))
    unsigned = signed()
    del unsigned.headers["Authorization"]

    refused = send(client, unsigned)
    preflight = client.options("/", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})

    assert refused.status_code == 403 == preflight.status_code
    assert json.loads(refused.data)["__type"] == "MissingAuthenticationTokenException"
    assert "Access-Control-Allow-Origin" not in refused.headers and "Access-Control-Allow-Origin" not in preflight.headers
    assert calls == []


def test_the_middleware_keeps_requests_in_the_stacks_one_account():
    calls: list = []
    client = Client(sigv4.signed_only(MINE)(moto_stand_in(calls)))
    request = signed()
    request.headers["X-Moto-Account-Id"] = "999999999999"  # unsigned header: not covered
    send(client, request)
    assert "HTTP_X_MOTO_ACCOUNT_ID" not in calls[0]


# --- credentials and hosts -------------------------------------------------------------------------


def test_credentials_are_made_once_private_and_kept(tmp_path):
    first = sigv4.load_or_create(tmp_path)
    again = sigv4.load_or_create(tmp_path)

    assert first == again
    assert first.access_key.startswith("AKIA") and len(first.access_key) == 20 and len(first.secret_key) >= 40
    assert stat.S_IMODE((tmp_path / sigv4.CREDENTIALS).stat().st_mode) == 0o600
    assert sigv4.load_or_create(None) != first  # --no-state: this run's own


def test_an_unusable_credentials_file_stops_the_start(tmp_path):
    (tmp_path / sigv4.CREDENTIALS).write_text("{}")
    with pytest.raises(sigv4.CredentialsError, match="delete it"):
        sigv4.load_or_create(tmp_path)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_a_host_other_machines_reach_needs_allow_remote(host, capsys):
    with pytest.raises(SystemExit) as refused:
        parse_args(["--host", host])
    assert refused.value.code == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert parse_args(["--host", host, "--allow-remote"]).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_no_flag(host):
    assert parse_args(["--host", host]).host == host
