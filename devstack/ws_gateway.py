"""The dev stack's API Gateway WebSocket API: `ws://<host>:<port>/api?token=…`.

One `websockets` server plays both halves of API Gateway for the app's handlers:
- the WebSocket API: each socket event becomes the event API Gateway would send the
  app's Lambda (`$connect` with headers and `queryStringParameters`, `$default` with the
  message `body`, `$disconnect`), and the SAME Chalice app object's handler for that route
  is called with it, as Lambda calls it (`app.handler_map[<handler name>](event, context)`);
  a `$connect` answering non-2xx refuses the upgrade with that status and body;
- the `@connections` management API on the same port: `POST|GET|DELETE
  /{stage}/@connections/{id}` (botocore's path when the endpoint is `http://host:port/{stage}`),
  answering unknown connections with 410 and AWS's `GoneException` error shape, so the app's
  boto3 `post_to_connection` talks to it unchanged.

The `$connect` event says `domainName = <host>:<port>`, `stage = api` and
`X-Forwarded-Proto: http` (API Gateway says https; there is no TLS here), so the app's one
endpoint rule yields `http://<host>:<port>/api`, which is this server.

The management API serves only requests signed (SigV4) with the stack's credentials, and
answers no CORS headers (devstack/sigv4.py).

Deliberate approximations: messages of one connection reach the app one after another
(API Gateway may invoke concurrently); binary frames are refused with close code 1003;
there is no 2-hour or idle limit.

Threads: the server runs its own event loop in a daemon thread; the app's handlers do
blocking boto3 calls, so they run in a small thread pool, never on the loop.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import http
import json
import logging
import os
import re
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from devstack.sigv4 import Credentials, lower_headers, verify

log = logging.getLogger(__name__)

STAGE = "api"  # Chalice's default API Gateway stage: wss://…/api
API_ID = "devstack"
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's limit for a message (and for a post)
_MAX_HTTP_HEAD = 64 * 1024
_MAX_HTTP_BODY = 1024 * 1024  # larger management bodies are dropped, not buffered
_OPEN_WAIT_S = 5.0  # a post may race the end of the handshake it follows
_MANAGEMENT_PATH = re.compile(r"^(?:/(?P<stage>[^/@]+))?/@connections/(?P<id>[^/]+)$")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*(?=\r?$)")

_EVENT_TYPES = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}


# --- API Gateway's events ---------------------------------------------------------------------


def new_connection_id() -> str:
    """An id shaped like API Gateway's (`L0SM9cOFvHcCIhw=`: base64 of 11 random bytes)."""
    return base64.b64encode(os.urandom(11)).decode("ascii")


def ws_event(
    route_key: str,
    connection_id: str,
    *,
    domain_name: str,
    stage: str = STAGE,
    api_id: str = API_ID,
    connected_at_ms: int | None = None,
    source_ip: str = "127.0.0.1",
    user_agent: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    query: str | None = None,
    body: str | None = None,
    close_code: int | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a WebSocket route's Lambda (the fields AWS documents for
    `$connect`, `$default`/MESSAGE and `$disconnect`)."""
    now = datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": _EVENT_TYPES.get(route_key, "MESSAGE"),
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at_ms if connected_at_ms is not None else now_ms,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "requestId": uuid.uuid4().hex[:16],
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": api_id,
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if route_key == "$connect":
        single, multi = _header_maps(headers or [])
        event["headers"], event["multiValueHeaders"] = single, multi
        if query:
            values = parse_qs(query, keep_blank_values=True)
            event["queryStringParameters"] = {k: v[-1] for k, v in values.items()}
            event["multiValueQueryStringParameters"] = values
    elif route_key == "$disconnect":
        context["disconnectStatusCode"] = close_code if close_code is not None else 1006
        context["disconnectReason"] = ""
        event["headers"], event["multiValueHeaders"] = _header_maps(headers or [])
    else:
        context["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body
    return event


def _header_maps(headers: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


# --- a websockets connection that also reads plain HTTP bodies -------------------------------


class _GatewayConnection(ServerConnection):
    """websockets parses only body-less requests (a handshake has none), but `post_to_
    connection` is a POST with a body. Until the first request is complete this reads it
    here, keeps its body in `http_body`, and hands websockets the head with
    `Content-Length: 0`; `process_request` then answers it like any other request."""

    def __init__(self, *args: Any, gateway: WebSocketGateway, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = gateway
        self.connection_id: str | None = None  # set when $connect accepted this socket
        self.http_body = b""
        self._buffer = bytearray()
        self._head: bytes | None = None
        self._body_length = 0
        self._passthrough = False

    def data_received(self, data: bytes) -> None:
        if self._passthrough:
            super().data_received(data)
            return
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HTTP_HEAD:
                    self._pass(bytes(self._buffer))  # websockets refuses it
                return
            head = bytes(self._buffer[: end + 4])
            del self._buffer[: end + 4]
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if length == 0 or length > _MAX_HTTP_BODY:
                self._pass(head + bytes(self._buffer))
                return
            self._head = head[: match.start()] + b"Content-Length: 0" + head[match.end() :]
            self._body_length = length
        if len(self._buffer) >= self._body_length:
            self.http_body = bytes(self._buffer[: self._body_length])
            self._pass(self._head)

    def _pass(self, data: bytes) -> None:
        self._passthrough = True
        self._buffer = bytearray()
        super().data_received(data)

    def send_data(self) -> None:
        """After an HTTP answer that is not an upgrade (`@connections`, a refusal, a 404),
        close the connection once it is written: websockets would otherwise wait up to its
        close timeout (10 s) for the client to hang up first, and a client that keeps the
        socket (urllib's HTTPError, a browser) holds the gateway's stop that long."""
        super().send_data()
        if self.response is not None and self.response.status_code != 101:
            self.transport.close()  # flushes what is buffered, then closes

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.gateway._lost(self)


@dataclass
class _Client:
    connection_id: str
    socket: _GatewayConnection
    source_ip: str
    user_agent: str | None
    connected_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    last_active: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected_at_ms(self) -> int:
        return int(self.connected_at.timestamp() * 1000)


# --- the gateway ----------------------------------------------------------------------------


class WebSocketGateway:
    def __init__(
        self,
        chalice_app: Any,
        host: str,
        port: int,
        *,
        credentials: Credentials,
        stage: str = STAGE,
        workers: int = 8,
    ) -> None:
        self.app = chalice_app
        self.credentials = credentials
        self.host = host
        self.port = port
        self.stage = stage
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws-lambda")
        self._clients: dict[str, _Client] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://{self.domain_name}/{self.stage}"

    # --- lifecycle (any thread) ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ws-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("WebSocket gateway did not start")
        if self._error is not None:
            raise RuntimeError(f"WebSocket gateway failed to start: {self._error}")

    def stop(self) -> None:
        """Close every socket (their `$disconnect`s run), then the server."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # noqa: BLE001 - reported to start()
            self._error = err
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(
            self._session,
            self.host,
            self.port,
            process_request=self._process_request,
            create_connection=functools.partial(_GatewayConnection, gateway=self),
            max_size=MAX_MESSAGE_BYTES,
        ):
            self._ready.set()
            await self._stopping.wait()
        while self._tasks:  # the $disconnects of the sockets just closed
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._executor.shutdown(wait=True)

    # --- requests (on the loop) ---

    async def _process_request(
        self, connection: _GatewayConnection, request: Request
    ) -> Response | None:
        path, _, query = request.path.partition("?")
        managed = _MANAGEMENT_PATH.match(path)
        if managed:
            if managed["stage"] not in (None, self.stage):
                return _answer(404, {"message": "Not Found"})
            return await self._manage(connection, request, unquote(managed["id"]))
        if path != f"/{self.stage}":
            return _answer(404, {"message": "Not Found"})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None  # websockets answers a plain GET with 426 Upgrade Required
        return await self._connect(connection, request, query)

    async def _connect(
        self, connection: _GatewayConnection, request: Request, query: str
    ) -> Response | None:
        """`$connect`: accept (None) on 2xx, else refuse with the handler's status and body."""
        connection_id = new_connection_id()
        source_ip = _peer_ip(connection)
        headers = list(request.headers.raw_items()) + [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", "http"),
        ]
        user_agent = request.headers.get("User-Agent")
        event = ws_event(
            "$connect",
            connection_id,
            domain_name=self.domain_name,
            stage=self.stage,
            source_ip=source_ip,
            user_agent=user_agent,
            headers=headers,
            query=query,
        )
        answer = await self._invoke("$connect", event)
        status = int(answer.get("statusCode", 200))
        if 200 <= status < 300:
            connection.connection_id = connection_id
            self._clients[connection_id] = _Client(connection_id, connection, source_ip, user_agent)
            return None
        body = answer.get("body") or ""
        headers_out = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        return _answer(status, body.encode("utf-8") if isinstance(body, str) else body, headers_out)

    async def _session(self, connection: _GatewayConnection) -> None:
        """An open socket: each text message is a `$default` event, in order."""
        client = self._clients.get(connection.connection_id or "")
        if client is None:
            await connection.close(1011, "not registered")
            return
        client.opened.set()
        try:
            async for message in connection:
                client.last_active = datetime.now(timezone.utc)
                if isinstance(message, bytes):
                    await connection.close(1003, "Binary frames are not supported")
                    return
                await self._invoke("$default", self._client_event("$default", client, body=message))
        except ConnectionClosed:
            pass  # an abnormal close is still a close: `_lost` sends the $disconnect

    def _lost(self, connection: _GatewayConnection) -> None:
        """Every accepted socket, however it ended (even mid-handshake), gets one
        `$disconnect`."""
        client = self._clients.pop(connection.connection_id or "", None)
        if client is None or self._loop is None:
            return
        event = self._client_event(
            "$disconnect", client, headers=[("Host", self.domain_name)], close_code=connection.close_code
        )
        self._track(self._invoke("$disconnect", event))

    def _client_event(self, route_key: str, client: _Client, **extra: Any) -> dict[str, Any]:
        """An event of an accepted connection: it carries what `$connect` recorded."""
        return ws_event(
            route_key,
            client.connection_id,
            domain_name=self.domain_name,
            stage=self.stage,
            connected_at_ms=client.connected_at_ms,
            source_ip=client.source_ip,
            user_agent=client.user_agent,
            **extra,
        )

    def _track(self, coroutine: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _manage(
        self, connection: _GatewayConnection, request: Request, connection_id: str
    ) -> Response:
        """The `@connections` API: POST sends, GET describes, DELETE closes."""
        headers = lower_headers(request.headers.raw_items())
        if connection.http_body:  # the head reached websockets with Content-Length: 0
            headers["content-length"] = str(len(connection.http_body))
        refusal = verify(self.credentials, request.method, request.path, headers, connection.http_body)
        if refusal is not None:
            return _aws_error(403, refusal.error_type, refusal.message)
        client = self._clients.get(connection_id)
        if client is not None and not client.opened.is_set():
            try:
                await asyncio.wait_for(client.opened.wait(), _OPEN_WAIT_S)
            except asyncio.TimeoutError:
                client = None
        if client is None:
            return _aws_error(410, "GoneException", None)
        if request.method == "POST":
            data = connection.http_body
            if len(data) > MAX_MESSAGE_BYTES:
                return _aws_error(413, "PayloadTooLargeException", "Message too long")
            try:
                await client.socket.send(_frame(data))
            except ConnectionClosed:
                return _aws_error(410, "GoneException", None)
            return _answer(200, b"")
        if request.method == "GET":
            return _answer(
                200,
                {
                    "connectedAt": _iso(client.connected_at),
                    "identity": {"sourceIp": client.source_ip, "userAgent": client.user_agent},
                    "lastActiveAt": _iso(client.last_active),
                },
            )
        if request.method == "DELETE":
            self._track(client.socket.close(1000))
            return _answer(204, b"")
        return _answer(404, {"message": "Not Found"})

    # --- the app ---

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._executor, self._call_app, route_key, event)

    def _call_app(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        """Call the route's handler as Lambda would (the wrapped handler Chalice registered
        under the handler's name); a crash is API Gateway's 500 for `$connect`."""
        from chalice.local import LambdaContext

        config = self.app.websocket_handlers.get(route_key)
        if config is None:
            return {"statusCode": 200}
        handler = self.app.handler_map[config.name]
        context = LambdaContext(config.name, memory_size=256, max_runtime_ms=30_000)
        try:
            answer = handler(event, context)
        except Exception:  # noqa: BLE001 - the Lambda failed; the socket lives on
            log.exception("websocket %s handler failed", route_key)
            return {"statusCode": 500, "body": json.dumps({"message": "Internal server error"})}
        return answer if isinstance(answer, dict) else {"statusCode": 200}


def _frame(data: bytes) -> str | bytes:
    """API Gateway sends posted data as a text frame; bytes that are not UTF-8 go binary."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _peer_ip(connection: ServerConnection) -> str:
    try:
        return str(connection.remote_address[0])
    except (TypeError, IndexError):
        return "127.0.0.1"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _answer(
    status: int, body: bytes | dict | None, headers: dict[str, str] | None = None
) -> Response:
    raw = json.dumps(body).encode("utf-8") if isinstance(body, dict) else (body or b"")
    out = Headers()
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-length", "connection"):
            out[name] = value
    if "Content-Type" not in out:
        out["Content-Type"] = "application/json"
    out["Content-Length"] = str(len(raw))
    out["Connection"] = "close"
    out["x-amzn-RequestId"] = str(uuid.uuid4())
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(status, phrase, out, raw)


def _aws_error(status: int, error_type: str, message: str | None) -> Response:
    """AWS's rest-json error: the type in `x-amzn-ErrorType`, `{"message": …}` as the body."""
    return _answer(status, {"message": message}, {"x-amzn-ErrorType": error_type})


# --- the dev stack's entry point -----------------------------------------------------------


def start_gateway(
    host: str, port: int, *, credentials: Credentials, chalice_app: Any = None
) -> Callable[[], None]:
    """Serve the app's WebSocket handlers on ws://host:port/api; returns the stop callable.
    `credentials` sign the `@connections` calls it accepts.

    `chalice_app` defaults to the project's `app.app`, the same object `chalice local`
    serves the REST API with.
    """
    if chalice_app is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if root not in sys.path:
            sys.path.insert(0, root)
        from app import app as chalice_app
    gateway = WebSocketGateway(chalice_app, host, port, credentials=credentials)
    gateway.start()
    return gateway.stop

