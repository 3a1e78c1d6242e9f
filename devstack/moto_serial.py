"""Every place the dev stack and the tests reach into moto's internals, and why.

1. One request at a time. moto's DynamoDB backend is not thread-safe: two threads'
   conditional writes on one item can both succeed (seen: 8 threads doing
   `SET active = active + 1 IF active < 2` reached 3), and an item can briefly be seen
   without an attribute. Real DynamoDB serializes the writes to an item, so the app's
   invariants rest on that. One lock around moto's request handler models it: race tests
   then fail only for the app's reasons, never for moto's.
2. Transactions that cost what DynamoDB's cost. To be able to roll back, moto deep-copies
   every table a TransactWriteItems touches, whole, before applying it: a transaction costs
   O(table size), so tests slow down as they write and the dev stack slows down as its
   history grows. Under the lock of (1) it is enough to remember the few items the
   transaction names and put them back if it is cancelled, which is what this does.
3. The dev stack's journal (devstack/state.py, devstack/journal.py). Under the same lock,
   after a state-changing request succeeds, the images of the items it changed (read back
   from moto, so exactly what was acknowledged) and table/TTL changes are handed to the
   recorder; outside the lock the answer waits until they are on disk. Reads wait too,
   for whatever they may have seen, so no answer shows a change a crash could still undo.
   PartiQL writes and table restores/imports change items this hook cannot name: while
   a journal is attached they are refused (400), never acknowledged and then lost.
   Changes of the JWT secret's value (Secrets Manager) are journaled the same way.
4. The KMS key's id and material: moto has no API to choose either (no custom key id, no
   ImportKeyMaterial), so a restored key is created through the API and then given the
   saved id and material here.
5. Loading a saved state: items go straight into moto's tables (100,000 items through
   BatchWriteItem would take minutes; this takes seconds).
6. The server: moto's WSGI application, behind the stack's own middleware (SigV4 check, no
   CORS: devstack/sigv4.py), on werkzeug's threaded server.

The tests' fixture and the dev stack both call `serialize_dynamodb()`; this is the only copy
of these shims.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import threading
from typing import Any, Callable, Iterator, Protocol

log = logging.getLogger("devstack.moto")
_LOCK = threading.RLock()
_INSTALLED = False
ACCOUNT = "123456789012"  # moto's default account: every ARN of the stack names it


class Recorder(Protocol):
    """Where acknowledged changes go (devstack.state.Durable)."""

    def record(self, records: list[dict[str, Any]]) -> int: ...

    @property
    def last(self) -> int: ...

    def wait(self, sequence: int) -> None: ...


_recorder: Recorder | None = None
_secret_name: str | None = None
_secret_value: str | None = None  # the watched secret's value as last recorded


def serialize_dynamodb() -> None:
    """Install the shims (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        _serialize_requests()
        _roll_back_items_not_tables()
        _journal_secret_changes()
        _INSTALLED = True


def journal_to(recorder: Recorder | None, secret: tuple[str, str] | None = None) -> None:
    """Send every acknowledged change to `recorder` from now on, and every new value of the
    secret `secret` = (name, current value); None stops it."""
    global _recorder, _secret_name, _secret_value
    serialize_dynamodb()
    with _LOCK:
        _recorder = recorder
        _secret_name, _secret_value = secret if secret is not None else (None, None)


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """No moto DynamoDB request runs meanwhile (a compaction holds it)."""
    with _LOCK:
        yield


# --- 1 and 3: one request at a time, journaled -----------------------------------------------

_ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_TABLE_WRITES = {"CreateTable", "UpdateTable", "DeleteTable", "UpdateTimeToLive"}
_UNNAMED_WRITES = {"RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable"}
_JSON = "application/x-amz-json-1.0"


def _serialize_requests() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self, *args, **kwargs):
        recorder = _recorder
        with _LOCK:
            if recorder is not None and _changes_unnamed_items(self):
                return _error(400, "ValidationException", "The dev stack journals item writes by key "
                              "(PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems); "
                              "PartiQL writes and table restores would not survive a restart")
            answer = original(self, *args, **kwargs)
            if recorder is None:
                return answer
            try:
                records = _changes(self) if answer[0] == 200 else []
                sequence = recorder.record(records) if records else recorder.last
            except Exception as err:  # the journal failed: not acknowledged
                log.exception("journal: cannot record a change")
                return _error(500, "InternalServerError", f"dev stack journal: {err}")
        try:
            recorder.wait(sequence)
        except Exception as err:  # the journal cannot be written: not acknowledged
            return _error(500, "InternalServerError", f"dev stack journal: {err}")
        return answer

    DynamoHandler.call_action = call_action


def _error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str], str]:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message})
    return status, {"Content-Type": _JSON}, body


def _action(handler: Any) -> str:
    return handler._get_action() or ""


def _changes_unnamed_items(handler: Any) -> bool:
    """A write whose changed items the hook could not name (checked before it runs)."""
    action = _action(handler)
    if action in _UNNAMED_WRITES:
        return True
    if action not in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
        return False
    body = json.loads(handler.body or "{}") if isinstance(handler.body, (str, bytes)) else handler.body
    statements = [body.get("Statement", "")]
    statements += [entry.get("Statement", "") for entry in body.get("Statements", [])]
    statements += [entry.get("Statement", "") for entry in body.get("TransactStatements", [])]
    return any(s and not s.lstrip().upper().startswith("SELECT") for s in statements)


def _changes(handler: Any) -> list[dict[str, Any]]:
    """The journal records of a request that succeeded: item images and table changes."""
    from devstack.state import to_json_item

    action = _action(handler)
    body = handler.body
    backend = handler.dynamodb_backend
    if action in _TABLE_WRITES:
        return [_table_record(backend, action, body["TableName"])]
    if action not in _ITEM_WRITES:
        return []
    keys: list[tuple[str, dict[str, Any]]] = []
    if action == "PutItem":
        keys.append((body["TableName"], _key_of(backend, body["TableName"], body["Item"])))
    elif action in ("UpdateItem", "DeleteItem"):
        keys.append((body["TableName"], body["Key"]))
    elif action == "BatchWriteItem":
        for table, requests in body["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    keys.append((table, _key_of(backend, table, request["PutRequest"]["Item"])))
                else:
                    keys.append((table, request["DeleteRequest"]["Key"]))
    else:  # TransactWriteItems
        for entry in body["TransactItems"]:
            kind, op = next(iter(entry.items()))
            if kind == "Put":
                keys.append((op["TableName"], _key_of(backend, op["TableName"], op["Item"])))
            elif kind in ("Update", "Delete"):
                keys.append((op["TableName"], op["Key"]))
    records = []
    for table_ref, key in keys:
        table = backend.get_table(table_ref)
        item = backend.get_item(table.name, key)
        records.append({
            "op": "item",
            "table": table.name,
            "key": to_json_item(key),
            "image": to_json_item(item.to_json()["Attributes"]) if item is not None else None,
        })
    return records


def _key_of(backend: Any, table_ref: str, item: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_table(table_ref)
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {name: item[name] for name in names}


def _table_record(backend: Any, action: str, table_ref: str) -> dict[str, Any]:
    if action == "DeleteTable":
        name = table_ref.rsplit("/", 1)[-1] if table_ref.startswith("arn:") else table_ref
        return {"op": "table", "table": name, "definition": None}
    table = backend.get_table(table_ref)
    if action == "UpdateTimeToLive":
        return {"op": "ttl", "table": table.name, "ttl": _ttl(table)}
    return {"op": "table", "table": table.name, "definition": create_parameters(table.describe()["TableDescription"])}


def _ttl(table: Any) -> dict[str, Any] | None:
    ttl = dict(table.ttl or {})
    return ttl if ttl.get("AttributeName") else None


def create_parameters(description: dict[str, Any]) -> dict[str, Any]:
    """CreateTable's parameters (without TableName) for a table as DescribeTable shows it."""
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"

    def throughput(source: dict[str, Any]) -> dict[str, Any]:
        units = source.get("ProvisionedThroughput") or {}
        return {"ProvisionedThroughput": {
            "ReadCapacityUnits": max(1, int(units.get("ReadCapacityUnits") or 1)),
            "WriteCapacityUnits": max(1, int(units.get("WriteCapacityUnits") or 1)),
        }} if provisioned else {}

    params: dict[str, Any] = {
        "AttributeDefinitions": description["AttributeDefinitions"],
        "KeySchema": description["KeySchema"],
        "BillingMode": billing,
        **throughput(description),
    }
    gsis = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"], **throughput(i)}
        for i in description.get("GlobalSecondaryIndexes") or []
    ]
    lsis = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in description.get("LocalSecondaryIndexes") or []
    ]
    if gsis:
        params["GlobalSecondaryIndexes"] = gsis
    if lsis:
        params["LocalSecondaryIndexes"] = lsis
    stream = description.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        params["StreamSpecification"] = stream
    return params


def _journal_secret_changes() -> None:
    """After a call that can change a secret's value, journal the watched secret's value
    if it is not the one recorded."""
    from moto.secretsmanager.responses import SecretsManagerResponse

    original = SecretsManagerResponse.call_action

    @functools.wraps(original)
    def call_action(self, *args, **kwargs):
        global _secret_value
        answer = original(self, *args, **kwargs)
        recorder, name = _recorder, _secret_name
        if recorder is None or name is None or answer[0] != 200:
            return answer
        with _LOCK:
            try:
                value = self.backend.get_secret_value(name, None, None).get("SecretString")
            except Exception:  # deleted or unreadable: the next start creates it again
                return answer
            if value == _secret_value:
                return answer
            _secret_value = value
            sequence = recorder.record([{"op": "secret", "value": value}])
        recorder.wait(sequence)
        return answer

    SecretsManagerResponse.call_action = call_action


# --- 2: roll back items, not tables ------------------------------------------------------------


def _roll_back_items_not_tables() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            saved = _snapshot(self, transact_items)
            # moto's own whole-table backup becomes a reference (no copy) for this call.
            Table.__deepcopy__ = lambda table, memo: table  # type: ignore[method-assign]
            try:
                return original(self, transact_items)
            except Exception:
                _restore(self, saved)
                raise
            finally:
                del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict, Any]]:
    """(table, key, a copy of the item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op = next(iter(entry.values()))
            table_name = op["TableName"]
            table = backend.get_table(table_name)
            key = op.get("Key") or {
                name: op["Item"][name]
                for name in (table.hash_key_attr, table.range_key_attr)
                if name is not None
            }
            current = backend.get_item(table_name, key)
        except Exception:
            continue  # a malformed entry: moto rejects it before changing anything
        saved.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    return saved


def _restore(backend: Any, saved: list[tuple[str, dict, Any]]) -> None:
    for table_name, key, attributes in reversed(saved):
        if attributes is None:
            if backend.get_item(table_name, key) is not None:
                backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, attributes)


# --- 4: the KMS key ------------------------------------------------------------------------------


def _kms_keys(arn: str) -> dict[str, Any]:
    from moto.kms.models import kms_backends

    _, _, _, region, account, _ = arn.split(":", 5)
    return kms_backends[account][region].keys


def rekey_kms(created_arn: str, key_id: str, material: bytes) -> str:
    """Give the key just created (`created_arn`) the saved id and material; its new id."""
    keys = _kms_keys(created_arn)
    key = keys.pop(created_arn.rsplit("/", 1)[-1])
    key.arn = key.arn.replace(key.id, key_id)
    key.id = key_id
    key.key_material = material
    keys[key_id] = key
    return key_id


def kms_key_material(arn: str, key_id: str) -> bytes:
    """The 256-bit material of the key `key_id` (in the account and region of `arn`)."""
    return bytes(_kms_keys(arn)[key_id].key_material)


# --- 5: loading a saved state ----------------------------------------------------------------------


def _dynamodb_backend(region: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT][region]


def tables(region: str) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every table moto holds: name → (CreateTable parameters, TTL setting)."""
    backend = _dynamodb_backend(region)
    with _LOCK:
        return {
            name: (create_parameters(table.describe()["TableDescription"]), _ttl(table))
            for name, table in backend.tables.items()
        }


def load_items(region: str, table_name: str, images: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Put kept images (DynamoDB JSON, binary values as base64 text) into an existing
    table as they are: no condition, no validation (they passed it when first written), no
    stream record. moto's own put re-measures the whole item for every attribute it adds
    (hundreds of microseconds an item); this builds the item the way moto's own copy does,
    in moto's own representation: top-level B/BS values as bytes, nested ones as the base64
    text moto keeps them as. The number of items."""
    import base64

    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    backend = _dynamodb_backend(region)
    count = 0
    with _LOCK:
        table = backend.get_table(table_name)
        hash_name, range_name = table.hash_key_attr, table.range_key_attr
        for image in images:
            item = Item.__new__(Item)
            item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
            for name, value in image.items():
                if "B" in value:
                    value = {"B": base64.b64decode(value["B"])}
                elif "BS" in value:
                    value = {"BS": [base64.b64decode(b) for b in value["BS"]]}
                dict.__setitem__(item.attrs, name, _typed(DynamoType, value))
            item.hash_key = item.attrs[hash_name]
            item.range_key = item.attrs[range_name] if range_name else None
            if range_name:
                table.items[item.hash_key][item.range_key] = item
            else:
                table.items[item.hash_key] = item
            count += 1
    return count


def _typed(cls: Any, value: dict[str, Any]) -> Any:
    """`DynamoType(value)`, without its per-call list copies (a third of a load's time)."""
    [(kind, inner)] = value.items()
    typed = cls.__new__(cls)
    typed.type = kind
    if kind == "L":
        inner = [_typed(cls, v) for v in inner]
    elif kind == "M":
        inner = {k: _typed(cls, v) for k, v in inner.items()}
    typed.value = inner
    return typed


# --- 6: the server ---------------------------------------------------------------------------------


def serve(host: str, port: int, middleware: Callable[[Any], Any]) -> Any:
    """moto's WSGI application wrapped by `middleware`, on werkzeug's threaded server
    (not started: call `serve_forever` in a thread, `shutdown` to stop).

    A request the middleware verified was signed for DynamoDB, KMS or Secrets Manager goes
    straight to that service's application: moto's own dispatcher would otherwise look the
    service up again on every request (a few ms of directory listings each)."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from devstack.sigv4 import SERVICE

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    dispatcher = DomainDispatcherApplication(create_backend_app)
    services: dict[str, Any] = {}
    services_lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        service = environ.get(SERVICE)
        if service not in _SERVICES:
            return dispatcher(environ, start_response)
        with services_lock:
            app = services.get(service) or services.setdefault(service, create_backend_app(service))
        return app(environ, start_response)

    return make_server(host, port, middleware(application), threaded=True, request_handler=MotoRequestHandler)


_SERVICES = {"dynamodb", "kms", "secretsmanager"}  # the services the stack serves
