"""The dev stack's AWS Lambda `Invoke` API: the app's functions, run in worker threads.

The app starts a runner with `boto3.client("lambda").invoke(FunctionName=…,
InvocationType="Event", Payload=…)` (chalicelib/dispatch.py). With `AWS_ENDPOINT_URL_LAMBDA`
pointing here that same call, unchanged, reaches this server, which speaks the part of the
Lambda REST API botocore uses for it:

    POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=$LATEST]
      X-Amz-Invocation-Type: Event            → 202, the function runs in a worker thread
      X-Amz-Invocation-Type: RequestResponse  → 200 with the function's result as JSON
                                                (a raised error: 200 + X-Amz-Function-Error)
      X-Amz-Invocation-Type: DryRun           → 204
      unknown function                        → 404 ResourceNotFoundException

Only requests signed (SigV4) with the stack's credentials are served; others get Lambda's
403 (devstack/sigv4.py).

`FunctionName` may be a name, a partial ARN (`123456789012:function:name`) or a full ARN,
as Lambda accepts. Functions are called the way Lambda calls them — `handler(event,
context)` with a context whose `get_remaining_time_in_millis()` counts down from the
function's timeout (900 s for the runner) — so the app's own Lambda entry points (the
`@app.lambda_function` and `@app.schedule` wrappers in app.py) run, not a shortcut.

Deliberate approximations: at most `concurrency` invocations run at once (Lambda's
concurrency limit; a synchronous call beyond it gets Lambda's 429); asynchronous events wait
in an unbounded in-memory queue, and one that raises is logged, not retried (the runner is
idempotent, and on AWS the retry count is the deploy's setting); queued events that had not
started when the stack stops are dropped — their jobs stay `pending`, which the tick's
re-dispatch of lost dispatches is there for, exactly as after a lost Lambda event.
"""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from devstack.http_server import BackgroundServer
from devstack.sigv4 import Credentials, lower_headers, verify

log = logging.getLogger("devstack.lambda")

Handler = Callable[[Any, Any], Any]

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
# name | 123456789012:function:name | arn:aws:lambda:region:123456789012:function:name,
# each optionally followed by :qualifier.
_FUNCTION_REF = re.compile(
    r"^(?:arn:[^:]+:lambda:[^:]*:)?(?:\d{12}:function:)?(?P<name>[A-Za-z0-9_-]{1,140})"
    r"(?::(?P<qualifier>[A-Za-z0-9_$-]+))?$"
)
MAX_EVENT_PAYLOAD = 256 * 1024  # Lambda's limit for an asynchronous invocation
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # … and for a synchronous one
ACCOUNT_ID = "123456789012"  # moto's default account: the one the stack's ARNs name


@dataclass(frozen=True)
class Function:
    """One Lambda function as deployed: its name, entry point and timeout."""

    name: str
    handler: Handler
    timeout_s: int = 900
    memory_mb: int = 1024


@dataclass(frozen=True)
class _Event:
    function: Function
    payload: Any
    request_id: str


class LambdaEndpoint:
    """A threaded HTTP server for `Invoke`, plus the worker threads that run async events.

    Workers are daemon threads: stopping the stack must not wait for a 15-minute runner
    (on AWS a host restart does not either; the job's lease then lapses and the tick marks
    it interrupted).
    """

    def __init__(
        self,
        functions: list[Function],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: Credentials,
        region: str = "us-east-1",
        concurrency: int = 8,
    ) -> None:
        self.functions = {f.name: f for f in functions}
        self.credentials = credentials
        self.region = region
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._events: queue.Queue[_Event | None] = queue.Queue()
        self._running = 0
        self._running_lock = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._server = BackgroundServer(host, port, _make_handler(self), "lambda-endpoint")

    # --- addresses ---

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    # --- lifecycle ---

    def start(self) -> "LambdaEndpoint":
        for number in range(self.concurrency):
            worker = threading.Thread(target=self._work, name=f"lambda-worker-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._server.start()
        return self

    def stop(self, drain_s: float = 5.0) -> None:
        """Refuse new invocations, let running ones finish for up to `drain_s`, drop the
        rest of the queue, close the port."""
        self._server.stop()
        dropped = 0
        while True:
            try:
                if self._events.get_nowait() is not None:
                    dropped += 1
            except queue.Empty:
                break
        for _ in self._workers:
            self._events.put(None)
        if not self.wait_idle(drain_s):
            log.warning("lambda: stopping with %d invocation(s) still running", self._running)
        if dropped:
            log.warning("lambda: dropped %d queued invocation(s) (their jobs stay pending)", dropped)

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no invocation is running (queued ones are not counted)."""
        deadline = time.monotonic() + timeout_s
        with self._running_lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._running_lock.wait(left)
        return True

    # --- invoking ---

    def resolve(self, reference: str, qualifier: str | None) -> Function | None:
        """The function a `FunctionName` (+ `Qualifier`) names; only `$LATEST` exists here."""
        match = _FUNCTION_REF.match(reference)
        if match is None:
            return None
        version = qualifier or match["qualifier"]
        if version not in (None, "$LATEST"):
            return None
        return self.functions.get(match["name"])

    def enqueue(self, function: Function, payload: Any) -> str:
        request_id = str(uuid.uuid4())
        self._events.put(_Event(function, payload, request_id))
        return request_id

    def call(self, function: Function, payload: Any, request_id: str | None = None) -> Any:
        """Run the function in the calling thread as Lambda would; its exception propagates."""
        from chalice.local import LambdaContext

        context = LambdaContext(function.name, function.memory_mb, max_runtime_ms=function.timeout_s * 1000)
        context.aws_request_id = request_id or context.aws_request_id
        context.invoked_function_arn = self.arn(function.name)
        with self._running_lock:
            self._running += 1
        try:
            return function.handler(payload, context)
        finally:
            with self._running_lock:
                self._running -= 1
                self._running_lock.notify_all()

    def try_acquire_slot(self) -> bool:
        return self._slots.acquire(blocking=False)

    def release_slot(self) -> None:
        self._slots.release()

    def _work(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            with self._slots:
                try:
                    self.call(event.function, event.payload, event.request_id)
                except Exception:
                    log.exception("lambda: %s (request %s) raised; not retried", event.function.name, event.request_id)


# --- HTTP ---------------------------------------------------------------------------------


def _make_handler(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # botocore keeps connections alive
        server_version = "devstack-lambda"
        # Headers and body leave as two writes: with Nagle on, the second waits for the
        # client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.address_string(), *args)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            body = self._signed_body()
            if body is not None:
                self._send(*_invoke(endpoint, self.path, self.headers, body))

        def do_GET(self) -> None:  # noqa: N802
            if self._signed_body() is not None:
                self._send(*_error(404, "UnknownOperationException", "Only Invoke is served here"))

        do_PUT = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

        def _signed_body(self) -> bytes | None:
            """The body of a request signed with the stack's credentials; None once a
            refusal is sent."""
            raw = self.headers.get("Content-Length") or "0"
            if not raw.isdigit():
                self.close_connection = True
                self._send(*_error(400, "InvalidRequestContentException", "Content-Length must be a number"))
                return None
            length = int(raw)
            if length > MAX_SYNC_PAYLOAD:
                self.close_connection = True
                self._send(*_error(413, "RequestTooLargeException", f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes"))
                return None
            body = self.rfile.read(length)
            refusal = verify(endpoint.credentials, self.command, self.path, lower_headers(self.headers.items()), body)
            if refusal is not None:
                self._send(*_error(403, refusal.error_type, refusal.message))
                return None
            return body

        def _send(self, status: int, headers: dict[str, str], answer: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return InvokeHandler


def _invoke(endpoint: LambdaEndpoint, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One `Invoke` request → (status, headers, body), Lambda's answers and error shapes."""
    parts = urlsplit(raw_path)
    match = INVOKE_PATH.match(parts.path)
    if match is None:
        return _error(404, "UnknownOperationException", f"Unknown operation {parts.path}")
    reference = unquote(match["name"])
    qualifier = (parse_qs(parts.query).get("Qualifier") or [None])[0]
    function = endpoint.resolve(reference, qualifier)
    if function is None:
        name = _FUNCTION_REF.match(reference)
        shown = endpoint.arn(name["name"]) if name else reference
        return _error(404, "ResourceNotFoundException", f"Function not found: {shown}")
    kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if kind not in ("Event", "RequestResponse", "DryRun"):
        return _error(400, "InvalidParameterValueException", f"Unsupported invocation type {kind}")
    limit = MAX_EVENT_PAYLOAD if kind == "Event" else MAX_SYNC_PAYLOAD
    if len(body) > limit:
        return _error(413, "RequestTooLargeException", f"Request must be smaller than {limit} bytes for the {kind} invocation type")
    try:
        payload = json.loads(body or b"{}")
    except ValueError as err:
        return _error(400, "InvalidRequestContentException", f"Could not parse request body into json: {err}")
    if kind == "DryRun":
        return 204, {}, b""
    if kind == "Event":
        request_id = endpoint.enqueue(function, payload)
        return 202, {"x-amzn-RequestId": request_id}, b""
    return _call_sync(endpoint, function, payload)


def _call_sync(endpoint: LambdaEndpoint, function: Function, payload: Any) -> tuple[int, dict[str, str], bytes]:
    if not endpoint.try_acquire_slot():
        return _error(429, "TooManyRequestsException", "Rate Exceeded.")
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": request_id}
    try:
        result = endpoint.call(function, payload, request_id)
    except Exception as err:  # Lambda's answer to an unhandled error: 200 + a marker
        log.exception("lambda: %s (request %s) raised", function.name, request_id)
        doc = {
            "errorMessage": str(err),
            "errorType": type(err).__name__,
            "stackTrace": traceback.format_tb(err.__traceback__),
        }
        return 200, {**headers, "X-Amz-Function-Error": "Unhandled"}, json.dumps(doc).encode()
    finally:
        endpoint.release_slot()
    return 200, headers, json.dumps(result, default=str).encode()


def _error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """Lambda's rest-json error: the type in `x-amzn-ErrorType`, `{Type, message}` as body."""
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": error_type,
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return status, headers, json.dumps({"Type": "User", "message": message}).encode()


# --- the app's functions ------------------------------------------------------------------


def app_functions(app_module: Any, stage: str, timeouts: dict[str, int] | None = None) -> list[Function]:
    """Every Lambda function of the Chalice app other than the API handlers, under the name
    Chalice deploys it as (`<app_name>-<stage>-<name>`), with its Lambda entry point.

    Timeouts follow the deploy (runner 900 s, tick 60 s) unless `timeouts` says otherwise.
    """
    chalice_app = app_module.app
    known = {"runner": 900, "tick": 60, **(timeouts or {})}
    found: list[Function] = []
    for resource in [*chalice_app.pure_lambda_functions, *chalice_app.event_sources]:
        name = getattr(resource, "name", None)
        handler_string = getattr(resource, "handler_string", "")
        if not name or not handler_string.startswith("app."):
            continue
        handler = getattr(app_module, handler_string.split(".", 1)[1], None)
        if handler is None:
            continue
        found.append(Function(f"{chalice_app.app_name}-{stage}-{name}", handler, known.get(name, 900)))
    return found
