"""Every AWS call the app makes, recorded per Lambda function and turned into IAM requests.

`Recorder` wraps botocore's `Session.create_client`, so every client made while it is on
(boto3's, PynamoDB's, the app's cached ones once reset) gets a `before-parameter-build`
hook: the hook sees the API parameters as the app passed them, before serialization, for
every service alike. `iam_requests` then says what IAM evaluates for one call: the action
and the resource ARN derived from the parameters (a TransactWriteItems is one request per
item, as IAM authorizes each item's PutItem/UpdateItem/DeleteItem/ConditionCheckItem).
"""
from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

import botocore.session

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Call:
    function: str
    service: str
    operation: str
    params: dict[str, Any]
    endpoint: str


@dataclass(frozen=True)
class IamRequest:
    """What IAM authorizes: an action on a resource, with the condition keys it knows."""

    action: str
    resource: str
    context: tuple[tuple[str, Any], ...] = ()
    call: Call | None = field(default=None, compare=False)

    def key(self, name: str) -> Any:
        return dict(self.context).get(name)

    def __str__(self) -> str:
        where = f" ({self.call.function}: {self.call.service}.{self.call.operation})" if self.call else ""
        return f"{self.action} on {self.resource}{where}"


class Recorder:
    """Records `Call`s under the function named by `as_function` (one at a time)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.client_hooks: list[Any] = []  # called with each new client
        self._function: str | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self, monkeypatch, *existing: Any) -> Iterator["Recorder"]:
        """Hook every client created from now on, and the `existing` ones, until the end."""
        original = botocore.session.Session.create_client
        hooked: list[tuple[Any, Any]] = []

        def attach(client: Any) -> Any:
            handler = functools.partial(self._record, client.meta.endpoint_url)
            client.meta.events.register("before-parameter-build", handler)
            hooked.append((client, handler))
            for hook in self.client_hooks:
                hook(client)
            return client

        def create_client(session, *args: Any, **kwargs: Any) -> Any:
            return attach(original(session, *args, **kwargs))

        monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
        for client in existing:
            attach(client)
        try:
            yield self
        finally:
            for client, handler in hooked:
                client.meta.events.unregister("before-parameter-build", handler)

    @contextlib.contextmanager
    def as_function(self, name: str) -> Iterator[None]:
        self._function = name
        try:
            yield
        finally:
            self._function = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Test setup in the middle of a function's run: not the function's own calls."""
        function, self._function = self._function, None
        try:
            yield
        finally:
            self._function = function

    def _record(self, endpoint: str, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self._function is None:  # test setup, not a function's own call
            return
        call = Call(self._function, model.service_model.service_name, model.name, dict(params), endpoint)
        with self._lock:
            self.calls.append(call)

    def of(self, function: str) -> list[Call]:
        return [c for c in self.calls if c.function == function]


# --- calls → IAM requests ------------------------------------------------------------------


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def table_arn(name: str) -> str:
    return _arn("dynamodb", f"table/{name}")


_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb(call: Call) -> list[IamRequest]:
    params, op = call.params, call.operation
    if op in ("TransactWriteItems", "TransactGetItems"):
        requests = []
        for item in params["TransactItems"]:
            (kind, body), = item.items()
            requests.append(IamRequest(f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", table_arn(body["TableName"]), call=call))
        return requests
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [IamRequest(f"dynamodb:{op}", table_arn(name), call=call) for name in params["RequestItems"]]
    resource = table_arn(params["TableName"])
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [IamRequest(f"dynamodb:{op}", resource, call=call)]


def _kms(call: Call) -> list[IamRequest]:
    key = call.params.get("KeyId")
    if key is None:
        raise AssertionError(f"{call.operation} without KeyId: IAM would see the key only from the ciphertext")
    resource = key if key.startswith("arn:") else _arn("kms", key if key.startswith("alias/") else f"key/{key}")
    context = call.params.get("EncryptionContext") or {}
    keys = [("kms:EncryptionContextKeys", tuple(sorted(context)))] if context else []
    values = [(f"kms:EncryptionContext:{k}", v) for k, v in sorted(context.items())]
    return [IamRequest(f"kms:{call.operation}", resource, tuple(keys + values), call=call)]


def _secretsmanager(call: Call) -> list[IamRequest]:
    secret = call.params["SecretId"]
    assert secret.startswith("arn:"), f"secret named by {secret!r}, not by its ARN"
    return [IamRequest(f"secretsmanager:{call.operation}", secret, call=call)]


def _lambda(call: Call) -> list[IamRequest]:
    name = call.params["FunctionName"]
    resource = name if name.startswith("arn:") else _arn("lambda", f"function:{name}")
    action = "lambda:InvokeFunction" if call.operation == "Invoke" else f"lambda:{call.operation}"
    return [IamRequest(action, resource, call=call)]


_CONNECTION_METHODS = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}


def _connections(call: Call) -> list[IamRequest]:
    """`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` →
    `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/@connections/{id}`."""
    parts = urlsplit(call.endpoint)
    api_id = parts.hostname.split(".")[0]
    stage = parts.path.strip("/")
    method = _CONNECTION_METHODS[call.operation]
    resource = _arn("execute-api", f"{api_id}/{stage}/{method}/@connections/{call.params['ConnectionId']}")
    return [IamRequest("execute-api:ManageConnections", resource, call=call)]


_SERVICES = {
    "dynamodb": _dynamodb,
    "kms": _kms,
    "secretsmanager": _secretsmanager,
    "lambda": _lambda,
    "apigatewaymanagementapi": _connections,
}


def iam_requests(call: Call) -> list[IamRequest]:
    mapper = _SERVICES.get(call.service)
    if mapper is None:
        raise AssertionError(
            f"{call.function} calls {call.service}.{call.operation}: teach tests/deploy/aws_calls.py "
            "its IAM action and resource, and grant it in scripts/access.py"
        )
    return mapper(call)
