"""Raw HTTP requests to the dev stack's AWS endpoints, SigV4-signed by botocore or not: what
a browser page or another local process could send (tests of devstack/sigv4.py)."""
from __future__ import annotations

import urllib.error
import urllib.request

from devstack.sigv4 import Credentials

TIMEOUT = 30


def raw_request(
    method: str,
    url: str,
    body: bytes,
    credentials: Credentials | None,
    service: str,
    headers: dict[str, str] | None = None,
    origin: str = "http://evil.example",
) -> tuple[int, dict[str, str], bytes]:
    """One request with a foreign `Origin`, signed with `credentials` when given;
    (status, lower-cased headers, body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    sent = {"Origin": origin, "Content-Type": "application/x-amz-json-1.0", **(headers or {})}
    if credentials is not None:
        request = AWSRequest(method=method, url=url, data=body, headers=sent)
        signer = BotocoreCredentials(credentials.access_key, credentials.secret_key)
        SigV4Auth(signer, service, "us-east-1").add_auth(request)
        sent = dict(request.headers.items())
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body or None, headers=sent, method=method),
                                    timeout=TIMEOUT) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, {k.lower(): v for k, v in refused.headers.items()}, refused.read()
