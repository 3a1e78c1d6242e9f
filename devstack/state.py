"""What the dev stack keeps across restarts, crashes included: every table, the KMS key, the
JWT secret.

moto keeps everything in memory, so the stack keeps, under `.devstack/` (`--state-dir`):

- `snapshot.json`: the whole state at the last compaction, one JSON document: per table
  (by its name) the key attribute names, the table's definition (CreateTable's
  parameters), its TTL setting and every item in DynamoDB JSON (the AWS CLI's form: binary
  values as base64 strings); the KMS key (id and 256-bit material) and the JWT secret.
  Written atomically (devstack/durable.py), so it is always whole.
- `journal`: every change acknowledged since that snapshot (devstack/journal.py), as the
  resulting item images, not the requests: a replay re-evaluates no condition and reads no
  clock, so it reproduces exactly the items that were acknowledged.

At start: snapshot + journal (a torn last frame dropped) → one `State`; the tables are
loaded into moto; then compaction writes that state as the new snapshot and empties the
journal. A clean stop compacts too. A `state.json` left by an older stack (saved on clean
stops only) is read once when there is no snapshot, then renamed `state.json.imported`.

Why the KMS key material: a ciphertext from moto's KMS names its key id and is sealed with
that key's material; a new moto key has a new id and new material, so without it no stored
API key would decrypt after a restart. The files hold key material next to the ciphertexts
it protects: they are mode 0600 under the git-ignored `.devstack/`, which only the developer
reads (README, "Trust boundary").
"""
from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator

from devstack import durable, journal

log = logging.getLogger("devstack.state")

FORMAT = "benchmark-scheduler-devstack-snapshot/1"
LEGACY_FORMAT = "benchmark-scheduler-devstack-state/1"
SNAPSHOT = "snapshot.json"
JOURNAL = "journal"
LEGACY = "state.json"
JWT_SECRET_NAME = "benchmark-scheduler-{stage}-jwt-secret"
KMS_DESCRIPTION = "benchmark-scheduler dev stack key vault key"


class StateError(Exception):
    """The saved state exists but cannot be used: the stack refuses to start rather than
    overwrite it with an empty state."""


# --- the state --------------------------------------------------------------------------------


def canonical_key(key: dict[str, Any]) -> str:
    """One string per item key, whatever the attribute order or number spelling
    (`{"N": "1.0"}` and `{"N": "1"}` name the same item, as in DynamoDB). Key attributes
    are S, N or B, so each is one (type, scalar) pair."""
    parts = []
    for name in sorted(key):
        [(kind, value)] = key[name].items()
        if kind == "N":
            try:
                value = str(Decimal(value).normalize())
            except (InvalidOperation, TypeError):
                pass
        parts.append(f"{name}\x1f{kind}\x1f{value}")
    return "\x1e".join(parts)


@dataclass
class Table:
    key: list[str] = field(default_factory=list)  # key attribute names, sorted
    definition: dict[str, Any] | None = None  # CreateTable's parameters, without TableName
    ttl: dict[str, Any] | None = None  # {"AttributeName", "TimeToLiveStatus"}
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # canonical key → image

    def add(self, image: dict[str, Any]) -> None:
        """Put an image whose key names are known (snapshot, legacy file)."""
        self.items[canonical_key({name: image[name] for name in self.key})] = image


@dataclass
class State:
    tables: dict[str, Table] = field(default_factory=dict)
    kms: dict[str, str] | None = None  # {"key_id", "key_material" (base64)}
    jwt_secret: str | None = None

    def item_count(self) -> int:
        return sum(len(table.items) for table in self.tables.values())

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one journal record in. Records are images, so folding one twice (a crash
        between a compaction's rename and its truncation) changes nothing."""
        op = record.get("op")
        if op == "item":
            table = self.tables.get(record["table"])
            if table is None:
                table = self.tables[record["table"]] = Table(key=sorted(record["key"]))
            name = canonical_key(record["key"])
            if record.get("image") is None:
                table.items.pop(name, None)
            else:
                table.items[name] = record["image"]
        elif op == "table":
            if record.get("definition") is None:
                self.tables.pop(record["table"], None)
            else:
                table = self.tables.setdefault(record["table"], Table())
                table.definition = record["definition"]
                table.key = key_names(record["definition"])
        elif op == "ttl":
            self.tables.setdefault(record["table"], Table()).ttl = record.get("ttl")
        elif op == "kms":
            self.kms = record["kms"]
        elif op == "secret":
            self.jwt_secret = record["value"]
        else:
            raise StateError(f"unknown journal record {op!r}")

    def to_document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kms": self.kms,
            "jwt_secret": self.jwt_secret,
            "tables": {
                name: {
                    "key": table.key,
                    "definition": table.definition,
                    "ttl": table.ttl,
                    "items": list(table.items.values()),
                }
                for name, table in self.tables.items()
            },
        }

    @classmethod
    def from_document(cls, doc: Any, path: Path) -> State:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StateError(f"{path} is not a dev stack snapshot ({FORMAT}); move it away to start empty")
        loaded = cls(kms=doc.get("kms"), jwt_secret=doc.get("jwt_secret"))
        tables = doc.get("tables")
        if not isinstance(tables, dict):
            raise StateError(f"{path}: 'tables' must map table names to tables")
        for name, saved in tables.items():
            try:
                table = Table(key=list(saved["key"]), definition=saved.get("definition"), ttl=saved.get("ttl"))
                for image in saved["items"]:
                    table.add(image)
            except (KeyError, TypeError) as err:
                raise StateError(f"{path}: table {name!r} is malformed ({err!r})") from None
            loaded.tables[name] = table
        return loaded


def key_names(definition: dict[str, Any]) -> list[str]:
    return sorted(entry["AttributeName"] for entry in definition.get("KeySchema", []))


# --- recovery: snapshot + journal (+ an older stack's state.json) ------------------------------


@dataclass
class Recovery:
    state: State
    frames: int = 0  # journal frames replayed
    dropped_bytes: int = 0  # a torn tail, dropped
    legacy: dict[str, Any] | None = None  # an older stack's state.json, to adopt once tables exist
    from_snapshot: bool = False  # a snapshot was read

    @property
    def snapshot_is_current(self) -> bool:
        """The snapshot holds everything recovered and the journal is empty."""
        return self.from_snapshot and not (self.frames or self.dropped_bytes)


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: building a state of N items allocates
    millions of objects, and each collection would walk all those already kept, which
    makes loading quadratic (100,000 items: minutes instead of seconds)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def recover(directory: Path) -> Recovery:
    """The state as it was acknowledged: the snapshot with the journal folded in."""
    with bulk():
        return _recover(directory)


def _recover(directory: Path) -> Recovery:
    snapshot = directory / SNAPSHOT
    state = _read_json(snapshot, State.from_document)
    state_read = state is not None
    legacy = None
    if state is None:
        state = State()
        legacy = _read_json(directory / LEGACY, _legacy_document)
    replay = journal.read(directory / JOURNAL)
    for record in replay.records():
        state.apply(record)
    if replay.dropped_bytes:
        log.warning("journal: dropped a torn last record (%d bytes): it was never acknowledged", replay.dropped_bytes)
    return Recovery(state, len(replay.frames), replay.dropped_bytes, legacy, from_snapshot=legacy is None and state_read)


def _read_json(path: Path, parse: Callable[[Any, Path], Any]) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err}") from None
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise StateError(f"{path} is not valid JSON ({err}); move it away to start empty") from None
    return parse(doc, path)


def _legacy_document(doc: Any, path: Path) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != LEGACY_FORMAT:
        raise StateError(f"{path} is not a dev stack state file ({LEGACY_FORMAT}); move it away to start empty")
    tables = doc.get("tables") or {}
    if not isinstance(tables, dict) or not all(isinstance(v, list) for v in tables.values()):
        raise StateError(f"{path}: 'tables' must map table names to lists of items")
    return doc


def adopt_legacy(state: State, legacy: dict[str, Any], table_name: Callable[[str], str],
                 key_of: Callable[[str], list[str]]) -> int:
    """Put an older stack's saved items (keyed by logical table name: `users`, …) into
    `state`; the number of items. `key_of(name)` gives a table's key attribute names."""
    from chalicelib import config

    count = 0
    for logical, items in legacy["tables"].items():
        if logical not in config.TABLE_ENV:
            raise StateError(f"the state file names an unknown table {logical!r}")
        name = table_name(logical)
        table = state.tables.setdefault(name, Table())
        table.key = sorted(key_of(name))
        for image in items:
            table.add(image)
            count += 1
    state.kms = state.kms or legacy.get("kms")
    state.jwt_secret = state.jwt_secret or legacy.get("jwt_secret")
    return count


def retire_legacy(directory: Path) -> None:
    """Once its content is in a snapshot, an older stack's state.json is not read again."""
    path = directory / LEGACY
    if path.exists():
        path.replace(path.with_name(LEGACY + ".imported"))
        durable.fsync_directory(directory)


def write_snapshot(directory: Path, state: State) -> None:
    data = json.dumps(state.to_document(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    durable.write_atomic(directory / SNAPSHOT, data)


# --- moto ---------------------------------------------------------------------------------------


def load_into_moto(state: State, region: str, ephemeral: set[str]) -> int:
    """Put the kept tables into moto (after the app created its own): a table the app does
    not create is created from its kept definition, TTL settings are applied, items are
    loaded as they are. Items of `ephemeral` tables are forgotten. The number of items."""
    import boto3

    from devstack import moto_serial

    client = None
    present = moto_serial.tables(region)
    count = 0
    for name, table in state.tables.items():
        if name not in present:
            if table.definition is None:
                log.warning("kept table %s has no definition and the app does not create it: "
                            "its %d items are kept but not loaded", name, len(table.items))
                continue
            client = client or boto3.client("dynamodb")
            client.create_table(TableName=name, **table.definition)
        if table.ttl and table.ttl != (present.get(name) or (None, None))[1]:
            client = client or boto3.client("dynamodb")
            client.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": table.ttl["AttributeName"],
                "Enabled": table.ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"),
            })
        if name in ephemeral:
            table.items.clear()
            continue
        with bulk():
            count += moto_serial.load_items(region, name, table.items.values())
    return count


def refresh_tables(state: State, region: str) -> None:
    """Take every table's definition, key and TTL from moto as it now holds them (the
    app's own tables as its code defines them)."""
    from devstack import moto_serial

    for name, (definition, ttl) in moto_serial.tables(region).items():
        table = state.tables.setdefault(name, Table())
        table.definition, table.key, table.ttl = definition, key_names(definition), ttl


# --- the live state: snapshot + open journal ---------------------------------------------------


class Durable:
    """The state while the stack runs: every change moto acknowledges is folded into
    `state` and appended to the journal (moto_serial's hook calls `record` under moto's
    request lock, then `wait` before the answer leaves); `compact` rewrites the snapshot.
    """

    def __init__(self, directory: Path, state: State, compact: bool = True) -> None:
        """`compact=False` when the snapshot already holds `state` and the journal is empty
        (a start after a clean stop): rewriting 100,000 items costs seconds."""
        self.directory = directory
        self.state = state
        if compact:
            write_snapshot(directory, state)
        self._journal = journal.Journal(directory / JOURNAL)
        if compact:
            self._journal.truncate()

    def record(self, records: list[dict[str, Any]]) -> int:
        for record in records:
            self.state.apply(record)
        return self._journal.append(records)

    @property
    def last(self) -> int:
        return self._journal.last

    def wait(self, sequence: int) -> None:
        self._journal.wait(sequence)

    def compact(self) -> None:
        """Snapshot then truncate. The caller holds moto's request lock (no record can
        land between the two); a crash between them only replays images onto a snapshot
        that already holds them."""
        self._journal.wait(self._journal.last)
        write_snapshot(self.directory, self.state)
        self._journal.truncate()

    def close(self) -> None:
        self._journal.close()


# --- items on disk ------------------------------------------------------------------------------


def to_json_item(value: Any) -> Any:
    """moto's or botocore's item (bytes for B/BS) → JSON-safe DynamoDB JSON (base64 strings)."""
    if isinstance(value, dict):
        converted = {}
        for key, inner in value.items():
            if key == "B" and isinstance(inner, (bytes, bytearray)):
                converted[key] = base64.b64encode(inner).decode("ascii")
            elif key == "BS" and isinstance(inner, list):
                converted[key] = [_b64(b) for b in inner]
            else:
                converted[key] = to_json_item(inner)
        return converted
    if isinstance(value, list):
        return [to_json_item(inner) for inner in value]
    return value


def _b64(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else value


# --- the KMS key and the JWT secret ---------------------------------------------------------------


def ensure_kms_key(saved: dict[str, str] | None) -> dict[str, str]:
    """The stack's KMS key in moto: created through the KMS API, then (when `saved`) given
    the saved id and material so earlier ciphertexts decrypt. Returns what to keep."""
    import boto3

    from devstack import moto_serial

    kms = boto3.client("kms")
    created = kms.create_key(Description=KMS_DESCRIPTION, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    if saved:
        material = base64.b64decode(saved["key_material"])
        if len(material) != 32:
            raise StateError("the saved KMS key material is not 256 bits")
        key_id = moto_serial.rekey_kms(created["Arn"], saved["key_id"], material)
    else:
        key_id = created["KeyId"]
    _check_round_trip(kms, key_id)
    material = moto_serial.kms_key_material(created["Arn"], key_id)
    return {"key_id": key_id, "key_material": base64.b64encode(material).decode("ascii")}


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
