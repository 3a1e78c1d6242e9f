"""API Gateway WebSocket, the app's side (DESIGN §5): the three routes and the notifier.

- `connect(event)`: `$connect` authenticates `?ticket=` (one-time, from
  `POST /api/ws-ticket`: `chalicelib.tickets`) or, for existing clients, `?token=` (the JWT
  itself), and registers the connection with the callback endpoint of the API that
  carries it (`endpoint_of`) until that token expires (2 h at most);
- `receive(event)`: `$default` answers ping/sync/cancel, and anything else with an
  `error` message without closing the connection; a connection whose token has expired
  is told so and closed;
- `close_user(user_id)`: closes every connection of the user (logout);
- `disconnect(event)`: `$disconnect` forgets the connection;
- `ApiGatewayNotifier`: `send_to_user` for the job registry, to each of the user's
  connections at once.

Every message to a client leaves through `post` (replies and events alike): one client per
callback endpoint, `post_to_connection` through boto3, a 410 Gone deletes the connection,
and no error ever reaches the caller. The endpoint always comes from the connection's
record, so the same code posts to AWS or to the dev stack's gateway without knowing which.
Chalice's `app.websocket_api.send` is not used: it derives one endpoint from the api id,
which is neither the local gateway's nor a custom domain's.

Nothing here imports boto3 until a message is sent: `import app` stays cheap.
"""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from chalicelib import auth, aws_clients, clock, connections, metrics, payloads, tickets
from chalicelib.errors import ApiError, Unauthorized

log = logging.getLogger(__name__)

Message = dict[str, Any]
Event = dict[str, Any]

_MAX_JOB_ID_CHARS = 128
MAX_MESSAGE_CHARS = 32 * 1024  # API Gateway allows 128 KB; no client message needs more
# API Gateway drops, without a word, a message to a client over 128 KB; the `sync` answer
# is kept below it (with room for the frame).
MAX_REPLY_BYTES = 127 * 1024
_MAX_ECHO_CHARS = 64


# --- the callback endpoint ------------------------------------------------------------------


def endpoint_of(event: Event) -> str:
    """`https://{domainName}/{stage}`: where the `@connections` API of this connection is.

    That is AWS's documented rule. The scheme is the `X-Forwarded-Proto` of the `$connect`
    request when it is `http` or `https`: API Gateway always says `https`; the dev stack's
    gateway, which has no TLS, says `http`. So one rule serves both, with no local branch.
    """
    context = event["requestContext"]
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    scheme = headers.get("x-forwarded-proto", "https")
    if scheme not in ("http", "https"):
        scheme = "https"
    return f"{scheme}://{context['domainName']}/{context['stage']}"


def _connection_id(event: Event) -> str:
    return event["requestContext"]["connectionId"]


# --- the three routes --------------------------------------------------------------------


def connect(event: Event) -> connections.Connection:
    """`$connect`: raises `Unauthorized` (bad, used or missing ticket or token) or
    `TooManyRequests` (sixth connection); the handler turns either into a refused upgrade."""
    query = event.get("queryStringParameters") or {}
    ticket, token = query.get("ticket"), query.get("token")
    if ticket:
        redeemed = tickets.redeem(ticket)
        user, expires_at = redeemed.user, redeemed.token_expires_at
    elif token:
        claims = auth.verify_token(token)
        user, expires_at = auth.user_of(claims), auth.expiry_of(claims)
    else:
        raise Unauthorized("Missing ticket")
    return connections.register(
        _connection_id(event), user.id, endpoint_of(event), expires_at=expires_at, is_gone=is_gone
    )


def disconnect(event: Event) -> None:
    """`$disconnect`: idempotent (a duplicate finds the record gone and does nothing)."""
    connections.unregister(_connection_id(event))


def receive(event: Event) -> None:
    """`$default`: answer the message on the connection it came from.

    The user is the connection's (from its record): API Gateway sends no identity with a
    message, and a client cannot choose whose jobs it acts on.
    """
    connection = connections.get(_connection_id(event))
    if connection is None:
        # No record: disconnected, expired or never registered. Without a record there is
        # no endpoint to answer on; the client's next connect starts afresh.
        log.info("message from unregistered connection %s dropped", _connection_id(event))
        return
    if connection.expired(clock.now()):
        post(connection, error("Token expired: connect again with a new ticket"))
        close(connection)
        return
    if event.get("isBase64Encoded"):
        reply = error("Binary messages are not supported")
    else:
        reply = handle(connection.user_id, event.get("body"))
    post(connection, reply)


# --- messages --------------------------------------------------------------------------


def error(text: str, **fields: Any) -> Message:
    return {"type": "error", "error": text, **fields}


def handle(user_id: str, body: str | None) -> Message:
    """The reply to one client message; every failure is an `error` message, never raised."""
    if body is not None and len(body) > MAX_MESSAGE_CHARS:
        return error(f"Message too large (at most {MAX_MESSAGE_CHARS} characters)")
    try:
        request = payloads.loads(body or "")
    except ApiError as err:
        return error("Invalid JSON" if "not valid JSON" in err.error else err.error)
    if not isinstance(request, dict):
        return error('A message must be a JSON object like {"type": "ping"}')
    kind = request.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        shown = str(kind)[:_MAX_ECHO_CHARS]
        return error(f"Unknown message type: {shown!r} (expected ping, sync or cancel)")
    try:
        return handler(user_id, request)
    except ApiError as err:
        return error(err.error, **_job_field(request))
    except Exception:  # noqa: BLE001 - a client message must never crash the handler
        log.exception("websocket %s message failed", kind)
        return error("Internal error", **_job_field(request))


def _job_field(request: Message) -> Message:
    job_id = request.get("job_id")
    return {"job_id": job_id} if isinstance(job_id, str) and job_id else {}


def _ping(user_id: str, request: Message) -> Message:
    return {"type": "pong"}


def _sync(user_id: str, request: Message) -> Message:
    from chalicelib import jobs  # the registry loads only when a client asks for it

    view = jobs.active_and_recent(user_id)
    return _within_limit(
        {"type": "sync", "active_jobs": view["active_jobs"], "recent_jobs": view["recent_jobs"]}
    )


def _within_limit(reply: Message) -> Message:
    """The `sync` reply, or, when it would pass `MAX_REPLY_BYTES`, the newest jobs that fit
    (the oldest recent ones go first, then the oldest active ones) with `truncated: true`."""
    if len(encode(reply)) <= MAX_REPLY_BYTES:
        return reply
    active, recent = list(reply["active_jobs"]), list(reply["recent_jobs"])
    trimmed = {**reply, "active_jobs": active, "recent_jobs": recent, "truncated": True}
    while (active or recent) and len(encode(trimmed)) > MAX_REPLY_BYTES:
        (recent or active).pop()  # both lists are newest first
    return trimmed


def _cancel(user_id: str, request: Message) -> Message:
    job_id = request.get("job_id")
    if not isinstance(job_id, str) or not job_id or len(job_id) > _MAX_JOB_ID_CHARS:
        return error("job_id is required (a string)")
    from chalicelib import jobs

    jobs.cancel(job_id, user_id)  # NotFound for another user's job: only one's own
    return {"type": "cancelled", "job_id": job_id}


_HANDLERS: dict[str, Callable[[str, Message], Message]] = {
    "ping": _ping,
    "sync": _sync,
    "cancel": _cancel,
}


# --- sending: the one place ------------------------------------------------------------------


SENT, GONE, FAILED = "sent", "gone", "failed"


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def post(connection: connections.Connection, message: Message | bytes) -> str:
    """Send one message to one connection: `SENT`, `GONE` (410: the record is deleted) or
    `FAILED` (logged). Never raises: a client going away must not fail a job."""
    data = message if isinstance(message, bytes) else encode(message)
    try:
        client = management_client(connection.endpoint)
        client.post_to_connection(ConnectionId=connection.connection_id, Data=data)
        return SENT
    except Exception as err:  # noqa: BLE001 - see the docstring
        code = _error_code(err)
        if code == "GoneException":
            _forget(connection)
            return GONE
        # Short: the id and the error, never the message (it is the client's business).
        log.warning(
            "post to %s failed: %s", connection.connection_id, code or type(err).__name__, exc_info=code is None
        )
        metrics.count(metrics.WEBSOCKET_POST_FAILURES)
        return FAILED


def close(connection: connections.Connection) -> None:
    """Close the socket (`@connections` DELETE) and forget the connection. Never raises:
    if API Gateway cannot be reached, the record is gone anyway, so the socket gets no
    events and its messages are dropped until API Gateway closes it."""
    try:
        management_client(connection.endpoint).delete_connection(ConnectionId=connection.connection_id)
    except Exception as err:  # noqa: BLE001 - see the docstring
        if _error_code(err) != "GoneException":
            log.warning("could not close connection %s: %s", connection.connection_id, err)
    _forget(connection)


def close_user(user_id: str) -> int:
    """Close every connection of the user, expired ones included; how many there were."""
    found = connections.of_user(user_id, expired=True)
    for connection in found:
        close(connection)
    return len(found)


def is_gone(connection: connections.Connection) -> bool:
    """Whether API Gateway says the connection no longer exists (`GetConnection` → 410).
    Any other answer or error counts as "still there": only a 410 frees a place."""
    try:
        management_client(connection.endpoint).get_connection(ConnectionId=connection.connection_id)
    except Exception as err:  # noqa: BLE001 - see the docstring
        return _error_code(err) == "GoneException"
    return False


def _error_code(err: Exception) -> str | None:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _forget(connection: connections.Connection) -> None:
    try:
        connections.unregister(connection.connection_id, connection.user_id)
    except Exception as err:  # noqa: BLE001 - the TTL and the counter's heal catch up
        log.warning("could not delete gone connection %s: %s", connection.connection_id, err)


def management_client(endpoint: str) -> Any:
    """The `apigatewaymanagementapi` client of a callback endpoint (cached per endpoint)."""
    from botocore.config import Config

    config = Config(
        connect_timeout=3,
        read_timeout=5,
        # standard mode retries throttling (429 LimitExceededException), never a 410
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=16,
    )
    return aws_clients.client("apigatewaymanagementapi", endpoint_url=endpoint, config=config)


# --- the notifier behind `chalicelib.notify` -------------------------------------------------


class ApiGatewayNotifier:
    """`send_to_user`: one message to every live connection of the user, posted
    concurrently when there are several, returning when all posts are done (so one
    connection sees a job's events in the order they were sent)."""

    def __init__(self, max_workers: int = 8) -> None:
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def send_to_user(self, user_id: str, message: Message) -> None:
        try:
            targets = connections.of_user(user_id)
            if not targets:
                return
            data = encode(message)
            if len(targets) == 1:
                post(targets[0], data)
            else:
                list(self._executor().map(lambda target: post(target, data), targets))
        except Exception as err:  # noqa: BLE001 - an event must never fail its sender
            log.warning("events for %s not sent: %s", user_id, err, exc_info=True)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self._max_workers, thread_name_prefix="ws-post"
                    )
        return self._pool


# The notifier `chalicelib.notify` uses by default: one per container, so one thread pool.
notifier = ApiGatewayNotifier()
