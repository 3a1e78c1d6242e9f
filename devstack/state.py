"""What survives a restart of the dev stack: every table, the KMS key, the JWT secret.

moto keeps everything in memory, so the stack writes one JSON file when it stops
(`.devstack/state.json`; `--state`/`DEVSTACK_STATE` to move it) and reads it back when it
starts. The file holds:

- `tables`: every item of every table, read with paginated `Scan`s, in DynamoDB JSON (the
  AWS CLI's form: binary values as base64 strings), keyed by the table's logical name
  (`users`, `schedules`, … as in `chalicelib.config.TABLE_ENV`), so a renamed stage or
  table env var still finds its items. Loaded with `BatchWriteItem` after the tables exist.
- `kms`: the id and the 256-bit material of the stack's KMS key. A ciphertext from moto's
  KMS names its key id and is sealed (AES-GCM) with that key's material; a new moto key has
  a new id and new material, so without this no stored API key would decrypt after a
  restart. moto has no API to choose either (no custom key id, no ImportKeyMaterial), so
  the stack creates the key through the KMS API and then gives moto's in-memory key object
  the saved id and material — the one place the stack reaches into moto's internals, and
  it checks itself with an encrypt/decrypt round trip.
- `jwt_secret`: the value of the Secrets Manager secret the app signs tokens with, so a
  token issued before a restart still verifies after it.

The file therefore holds the key material next to the ciphertexts it protects (the
local stack's secrets are not secrets); it is written with mode 0600 under the git-ignored
`.devstack/`, atomically (temp file + rename), so a crash mid-write keeps the old file.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FORMAT = "benchmark-scheduler-devstack-state/1"
BATCH = 25  # BatchWriteItem's limit
JWT_SECRET_NAME = "benchmark-scheduler-{stage}-jwt-secret"
# WebSocket connections die with the stack: saving them would only bring back dead sockets
# that count against their users' five-connection limit.
EPHEMERAL_TABLES = frozenset({"connections"})
KMS_DESCRIPTION = "benchmark-scheduler dev stack key vault key"


class StateError(Exception):
    """The state file exists but cannot be used: the stack refuses to start rather than
    overwrite it with an empty state at the next stop."""


@dataclass
class State:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kms: dict[str, str] | None = None  # {"key_id", "key_material" (base64)}
    jwt_secret: str | None = None

    def item_count(self) -> int:
        return sum(len(items) for items in self.tables.values())


# --- the file -----------------------------------------------------------------------------


def read(path: Path) -> State | None:
    """The saved state, None when there is no file; `StateError` when it is unreadable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err}") from None
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise StateError(f"{path} is not valid JSON ({err}); move it away to start empty") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"{path} is not a dev stack state file ({FORMAT}); move it away to start empty")
    tables = doc.get("tables") or {}
    if not isinstance(tables, dict) or not all(isinstance(v, list) for v in tables.values()):
        raise StateError(f"{path}: 'tables' must map table names to lists of items")
    return State(tables=tables, kms=doc.get("kms"), jwt_secret=doc.get("jwt_secret"))


def write(path: Path, state: State) -> None:
    """Write atomically: a temp file in the same directory, fsync, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kms": state.kms,
        "jwt_secret": state.jwt_secret,
        "tables": state.tables,
    }
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- tables ---------------------------------------------------------------------------------


def _dynamodb() -> Any:
    import boto3

    return boto3.client("dynamodb")


def dump_tables() -> dict[str, list[dict[str, Any]]]:
    """Every item of every table of the app, by logical table name (paginated scans)."""
    from chalicelib import config

    client = _dynamodb()
    paginator = client.get_paginator("scan")
    dumped: dict[str, list[dict[str, Any]]] = {}
    for logical in config.TABLE_ENV:
        if logical in EPHEMERAL_TABLES:
            continue
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(TableName=config.table_name(logical), ConsistentRead=True):
            items.extend(to_json_item(item) for item in page.get("Items", []))
        dumped[logical] = items
    return dumped


def load_tables(tables: dict[str, list[dict[str, Any]]]) -> int:
    """Put every saved item back (the tables must exist); the number of items written."""
    from chalicelib import config

    client = _dynamodb()
    written = 0
    for logical, items in tables.items():
        if logical not in config.TABLE_ENV:
            raise StateError(f"the state file names an unknown table {logical!r}")
        name = config.table_name(logical)
        for start in range(0, len(items), BATCH):
            requests = [{"PutRequest": {"Item": from_json_item(item)}} for item in items[start:start + BATCH]]
            _batch_write(client, name, requests)
            written += len(requests)
    return written


def _batch_write(client: Any, table: str, requests: list[dict[str, Any]]) -> None:
    """BatchWriteItem until nothing is left unprocessed (DynamoDB may return some)."""
    pending = {table: requests}
    for _ in range(20):
        answer = client.batch_write_item(RequestItems=pending)
        pending = answer.get("UnprocessedItems") or {}
        if not pending:
            return
    raise StateError(f"could not write every saved item of {table}")


def to_json_item(value: Any) -> Any:
    """botocore's item (bytes for B/BS) → JSON-safe DynamoDB JSON (base64 strings)."""
    if isinstance(value, dict):
        converted = {}
        for key, inner in value.items():
            if key == "B" and isinstance(inner, (bytes, bytearray)):
                converted[key] = base64.b64encode(inner).decode("ascii")
            elif key == "BS" and isinstance(inner, list):
                converted[key] = [base64.b64encode(b).decode("ascii") for b in inner]
            else:
                converted[key] = to_json_item(inner)
        return converted
    if isinstance(value, list):
        return [to_json_item(inner) for inner in value]
    return value


def from_json_item(value: Any) -> Any:
    """The inverse of `to_json_item`: base64 strings under B/BS back to bytes."""
    if isinstance(value, dict):
        converted = {}
        for key, inner in value.items():
            if key == "B" and isinstance(inner, str):
                converted[key] = base64.b64decode(inner)
            elif key == "BS" and isinstance(inner, list) and all(isinstance(b, str) for b in inner):
                converted[key] = [base64.b64decode(b) for b in inner]
            else:
                converted[key] = from_json_item(inner)
        return converted
    if isinstance(value, list):
        return [from_json_item(inner) for inner in value]
    return value


# --- KMS --------------------------------------------------------------------------------------


def ensure_kms_key(saved: dict[str, str] | None) -> dict[str, str]:
    """The stack's KMS key in moto: created through the KMS API, then (when `saved`) given
    the saved id and material so earlier ciphertexts decrypt. Returns what to save."""
    import boto3

    kms = boto3.client("kms")
    created = kms.create_key(Description=KMS_DESCRIPTION, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    key = _moto_key(created["Arn"], created["KeyId"])
    if saved:
        _rekey(created["Arn"], key, saved["key_id"], base64.b64decode(saved["key_material"]))
    _check_round_trip(kms, key.id)
    return {"key_id": key.id, "key_material": base64.b64encode(key.key_material).decode("ascii")}


def _moto_backend(arn: str) -> Any:
    from moto.kms.models import kms_backends

    _, _, _, region, account, _ = arn.split(":", 5)
    return kms_backends[account][region]


def _moto_key(arn: str, key_id: str) -> Any:
    try:
        return _moto_backend(arn).keys[key_id]
    except (KeyError, ImportError, ValueError) as err:
        raise StateError(f"cannot reach moto's KMS key {key_id} in-process ({err!r})") from None


def _rekey(arn: str, key: Any, key_id: str, material: bytes) -> None:
    """Move moto's key object to the saved id and give it the saved material."""
    if len(material) != 32:
        raise StateError("the saved KMS key material is not 256 bits")
    keys = _moto_backend(arn).keys
    keys.pop(key.id)
    key.arn = key.arn.replace(key.id, key_id)
    key.id = key_id
    key.key_material = material
    keys[key_id] = key


def _check_round_trip(kms: Any, key_id: str) -> None:
    """Fail at start, not at the first decrypt, if moto's internals ever change shape."""
    probe = secrets.token_bytes(16)
    context = {"devstack": "probe"}
    try:
        blob = kms.encrypt(KeyId=key_id, Plaintext=probe, EncryptionContext=context)["CiphertextBlob"]
        back = kms.decrypt(CiphertextBlob=blob, KeyId=key_id, EncryptionContext=context)["Plaintext"]
    except Exception as err:
        raise StateError(f"the restored KMS key does not work ({err})") from None
    if back != probe:
        raise StateError("the restored KMS key does not decrypt what it encrypts")


# --- the JWT secret -----------------------------------------------------------------------------


def ensure_jwt_secret(saved: str | None, stage: str) -> tuple[str, str]:
    """Create the app's JWT signing secret in Secrets Manager (the deployed code path:
    `JWT_SECRET_ARN`); the saved value when there is one. Returns (ARN, value)."""
    import boto3

    value = saved or secrets.token_urlsafe(48)
    answer = boto3.client("secretsmanager").create_secret(
        Name=JWT_SECRET_NAME.format(stage=stage),
        SecretString=value,
        Description="benchmark-scheduler dev stack: HS256 key of the access tokens",
    )
    return answer["ARN"], value
