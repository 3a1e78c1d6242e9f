"""Who may call the dev stack's AWS endpoints: whoever holds the stack's own credentials.

moto answers any request, and with CORS headers echoing any `Origin`; so would the stack's
Lambda `Invoke` and `@connections` APIs without a check. A web page the developer visits,
or any process on the machine, could then read the JWT secret (Secrets Manager), decrypt
stored provider keys (KMS), rewrite tables or invoke the runner. So:

- at its first start the stack generates random credentials, keeps them in
  `.devstack/credentials.json` (mode 0600) and gives them to the app as
  `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`;
- the moto server (behind `SignedOnly`), the Lambda `Invoke` API and the `@connections`
  API accept only requests carrying a valid AWS Signature Version 4 by that key: botocore's
  own signer recomputes it over the method, path, query, the headers the client signed
  (`host` and `x-amz-date` among them) and the body; `X-Amz-Date` must be within 15
  minutes of now (AWS's window), so a captured request cannot be replayed later;
- none of them answers CORS headers: a browser cannot read an answer, and cannot sign a
  request without the secret anyway.

Anyone who can read `.devstack/` holds the credentials: that is the developer (README,
"Trust boundary").
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from devstack import durable

CREDENTIALS = "credentials.json"
MAX_SKEW = timedelta(minutes=15)
MAX_BODY = 32 * 1024 * 1024  # read before the signature is checked: bounded
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(?P<fields>.+)$", re.S)
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class CredentialsError(Exception):
    """The credentials file exists but cannot be used."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused (always a 403), in AWS's terms."""

    error_type: str
    message: str


def generate() -> Credentials:
    """An access key shaped like AWS's (`AKIA` + 16 base32 characters) and a 40-character
    secret."""
    access = "AKIA" + "".join(secrets.choice(_BASE32) for _ in range(16))
    return Credentials(access, secrets.token_urlsafe(30))


def load_or_create(directory: Path | None) -> Credentials:
    """The stack's credentials, kept in `directory` (created there at the first start);
    fresh ones for this run only when `directory` is None."""
    if directory is None:
        return generate()
    path = directory / CREDENTIALS
    try:
        doc = json.loads(path.read_bytes())
        return Credentials(str(doc["aws_access_key_id"]), str(doc["aws_secret_access_key"]))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CredentialsError(f"{path} cannot be used ({err!r}); delete it to get new credentials") from None
    created = generate()
    doc = {"aws_access_key_id": created.access_key, "aws_secret_access_key": created.secret_key}
    durable.write_atomic(path, json.dumps(doc, indent=1).encode("utf-8"))
    return created


def lower_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header name (lower case) → value, repeated headers joined by commas as SigV4 does."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def verify(
    credentials: Credentials,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
) -> Refusal | None:
    """None when the request is signed by `credentials`; else why not. `target` is the path
    and query exactly as received; `headers` as `lower_headers` gives them."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    parsed = _authorization(headers)
    if parsed is None:
        return Refusal("MissingAuthenticationTokenException", "Missing Authentication Token")
    scope, signed, signature = parsed
    if len(scope) != 5 or scope[4] != "aws4_request" or not signature:
        return Refusal("IncompleteSignatureException", "Malformed Authorization header")
    access_key, day, region, service, _ = scope
    if not hmac.compare_digest(access_key.encode(), credentials.access_key.encode()):
        return Refusal("UnrecognizedClientException", "The security token included in the request is invalid.")
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return Refusal("IncompleteSignatureException", "X-Amz-Date is missing or malformed")
    if abs((now or datetime.now(timezone.utc)) - signed_at) > MAX_SKEW or day != stamp[:8]:
        return Refusal("InvalidSignatureException", "Signature expired: X-Amz-Date is not within 15 minutes of now")
    if not {"host", "x-amz-date"} <= set(signed) or any(name not in headers for name in signed):
        return Refusal("InvalidSignatureException", "The signed headers must include host and x-amz-date and be present")
    digest = headers.get("x-amz-content-sha256")
    if "x-amz-content-sha256" in signed and digest != hashlib.sha256(body).hexdigest():
        return Refusal("InvalidSignatureException", "The payload was not signed")
    request = AWSRequest(
        method=method.upper(),
        url=f"http://{headers['host']}{target}",
        headers={name: headers[name] for name in signed},
        data=body,
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(BotocoreCredentials(credentials.access_key, credentials.secret_key), service, region)
    try:
        canonical = signer.canonical_request(request)
        if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(signed):
            return Refusal("InvalidSignatureException", "Unexpected signed headers")
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
    except (ValueError, TypeError, UnicodeError):  # a request no client could have signed
        return Refusal("InvalidSignatureException", "The request cannot be canonicalized")
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return Refusal("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
    return None


def _authorization(headers: Mapping[str, str]) -> tuple[list[str], list[str], str] | None:
    """(credential scope, signed header names, signature) of a SigV4 Authorization header."""
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return None
    fields = dict(part.strip().split("=", 1) for part in match["fields"].split(",") if "=" in part)
    return fields.get("Credential", "").split("/"), fields.get("SignedHeaders", "").split(";"), fields.get("Signature", "")


# --- the moto server's middleware ----------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


SERVICE = "devstack.signed_service"  # the WSGI environ key naming the service a request was signed for


def signed_only(credentials: Credentials) -> Callable[[WSGIApp], WSGIApp]:
    """A WSGI middleware: requests not signed by `credentials` get a 403, the others reach
    the application (with the service they were signed for in `environ[SERVICE]`), and no
    answer carries `Access-Control-*` headers."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY:
                return _refuse(start_response, "413 Request Entity Too Large",
                               Refusal("RequestEntityTooLarge", f"bodies are limited to {MAX_BODY} bytes"))
            stream = environ["wsgi.input"]
            body = stream.read(length) if length else (stream.read(MAX_BODY) if environ.get("wsgi.input_terminated") else b"")
            target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/"
            headers = _environ_headers(environ)
            refusal = verify(credentials, environ["REQUEST_METHOD"], target, headers, body)
            if refusal is not None:
                return _refuse(start_response, "403 Forbidden", refusal)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ[SERVICE] = _authorization(headers)[0][3]  # type: ignore[index]
            environ.pop("HTTP_X_MOTO_ACCOUNT_ID", None)  # one account: the journaled one

            def no_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
                return start_response(status, kept, exc_info)

            return app(environ, no_cors)

        return application

    return wrap


def _environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    pairs = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            pairs.append((key[5:].replace("_", "-"), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            pairs.append((key.replace("_", "-"), value))
    return lower_headers(pairs)


def _refuse(start_response: Callable[..., Any], status: str, refusal: Refusal) -> list[bytes]:
    body = json.dumps({"__type": refusal.error_type, "message": refusal.message}).encode("utf-8")
    start_response(status, [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", refusal.error_type),
        ("Content-Length", str(len(body))),
    ])
    return [body]
