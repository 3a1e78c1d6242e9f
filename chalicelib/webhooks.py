"""Signed webhook delivery: one POST of an alert to a user's URL, guarded and bounded.

A webhook URL is a place the service connects to on a user's word, so it is vetted like a
provider endpoint (`user_providers.check_endpoint`, the SSRF guard) when the rule is saved
and again right before each delivery (DNS may answer differently by then), and the
connection goes only to the addresses that check vetted: resolving the name a second
time could answer an internal address (DNS rebinding). It must be `https://`; `http://`
only where private endpoints are allowed (the local stack's sink on 127.0.0.1).

A delivery never holds its caller beyond a bound it is given: every attempt ends at
`WEBHOOK_TIMEOUT_S` (5) from its start — a timer shuts the socket down, so a server that
trickles its answer a byte at a time is cut off too — and none starts or waits past the
caller's deadline. Failed attempts (network, timeout, 408/429/5xx) are retried
`WEBHOOK_RETRIES` (2) times after `WEBHOOK_BACKOFF_S` (0.5), then twice that. Redirects
are not followed and no byte of the answer's body is read.

The body is signed: `X-Signature-256: sha256=<hex HMAC-SHA256 of the exact body>` with
the rule's secret, and `X-Event-Id` lets a receiver drop a duplicate.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence
from urllib.parse import urlsplit

from chalicelib import config, user_providers
from chalicelib.providers.cutoff import Cutoff

if TYPE_CHECKING:  # pragma: no cover
    import httpx

USER_AGENT = "benchmark-scheduler-webhooks/1"
SIGNATURE_HEADER = "X-Signature-256"
EVENT_ID_HEADER = "X-Event-Id"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookRefused(Exception):
    """The URL may not be called (scheme, or the SSRF guard); `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    timeout_s: float  # one attempt, from connecting to the answer's status line
    retries: int
    backoff_s: float  # before the first retry; doubled before each next one

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            timeout_s=max(0.01, config.float_setting("WEBHOOK_TIMEOUT_S", 5.0)),
            retries=max(0, config.int_setting("WEBHOOK_RETRIES", 2)),
            backoff_s=max(0.0, config.float_setting("WEBHOOK_BACKOFF_S", 0.5)),
        )


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    detail: str  # "HTTP 204", "HTTP 500 after 3 attempts", "timeout after 3 attempts"...
    attempts: int


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> list[str]:
    """The addresses `url` may be connected to ([] when private endpoints are allowed: the
    name is then resolved as usual); `WebhookRefused` when it may not be called at all."""
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    allowed = ("https", "http") if config.allow_private_endpoints() else ("https",)
    if scheme not in allowed:
        raise WebhookRefused("must be an https:// URL")
    try:
        return user_providers.check_endpoint(url)
    except user_providers.EndpointRefused as err:
        raise WebhookRefused(err.reason) from None


def post(
    url: str,
    body: bytes,
    *,
    secret: str,
    event_id: str,
    deadline: float,
    policy: Policy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST `body` to `url`, signed; retried per `policy`, never past `deadline` (a
    `time.monotonic()` moment). Never raises for anything the URL or the network does."""
    policy = policy or Policy.from_settings()
    try:
        addresses = check_url(url)
    except WebhookRefused as err:
        return Outcome(False, f"refused: {err.reason}", 0)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, body),
        EVENT_ID_HEADER: event_id,
    }
    attempts, detail = 0, ""
    with _client(url, addresses) as client:
        for attempt in range(1 + policy.retries):
            if attempt:
                pause = policy.backoff_s * 2 ** (attempt - 1)
                if time.monotonic() + pause >= deadline:
                    break
                sleep(pause)
            now = time.monotonic()
            if now >= deadline:
                break
            attempts += 1
            status, detail, retry = _attempt(client, url, body, headers, min(now + policy.timeout_s, deadline))
            if status is not None and 200 <= status < 300:
                return Outcome(True, detail, attempts)
            if not retry:
                return Outcome(False, detail, attempts)
    if not attempts:
        return Outcome(False, "not sent: no time left before the delivery deadline", 0)
    return Outcome(False, f"{detail} after {attempts} attempt{'s' if attempts != 1 else ''}", attempts)


def _attempt(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], until: float
) -> tuple[int | None, str, bool]:
    """One POST: (status or None, what happened, worth retrying)."""
    import httpx

    left = max(0.001, until - time.monotonic())
    cutoff = Cutoff(until)
    try:
        request = client.build_request(
            "POST", url, content=body, headers=headers,
            timeout=httpx.Timeout(left), extensions={"trace": cutoff.trace},
        )
        with cutoff:
            response = client.send(request, stream=True)
            response.close()  # the status is the answer: no byte of the body is read
    except httpx.TimeoutException:
        return None, "timeout", True
    except (httpx.HTTPError, OSError) as err:
        if cutoff.fired:
            return None, "timeout", True
        return None, f"network error ({type(err).__name__})", True
    status = response.status_code
    if 300 <= status < 400:
        return status, f"HTTP {status} (redirects are not followed)", False
    retry = status >= 500 or status in _RETRYABLE_STATUS
    return status, f"HTTP {status}", retry


# --- the connection: to vetted addresses only ------------------------------------------------

def _client(url: str, addresses: Sequence[str]) -> httpx.Client:
    """A client for one delivery: no redirects, no proxy from the environment, and, when
    the guard vetted addresses, connections to those addresses only (the provider
    engine's pinning: one way to connect to a user's URL)."""
    import httpx

    from chalicelib.providers.pinning import parse_addresses, pinned_client, shared_ssl_context

    if not addresses:
        return httpx.Client(follow_redirects=False, trust_env=False, verify=shared_ssl_context())
    host = httpx.URL(url).raw_host.decode("ascii")
    return pinned_client(host, parse_addresses(addresses), shared_ssl_context())
