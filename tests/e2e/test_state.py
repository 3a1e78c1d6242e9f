"""What the dev stack keeps: the journal of acknowledged changes, the snapshot, recovery, the
KMS key and the JWT secret.

In-process: moto runs as `fresh_moto()` sessions, and a "restart" is a second session, empty
as a new `make run` finds it, loaded from what the first one left on disk. The requests are
real DynamoDB API calls through botocore, into moto's request handler where the journal
hook sits, as in the running stack.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import stat
import threading
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib import aws_clients
from devstack import journal, moto_serial, state
from tests.conftest import fresh_moto

REGION = "us-east-1"
TABLE = "devstack-test-things"  # a table the app does not create: restored from its definition


def dynamodb() -> Any:
    return boto3.client("dynamodb", config=Config(retries={"max_attempts": 1}))


def create_things_table() -> None:
    dynamodb().create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "color", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_color",
            "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )


def dump() -> dict[str, list[str]]:
    """Every item of every table, as sorted JSON strings per table."""
    client = dynamodb()
    tables = {}
    for name in client.list_tables()["TableNames"]:
        items = []
        for page in client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
            items += [json.dumps(state.to_json_item(item), sort_keys=True) for item in page["Items"]]
        tables[name] = sorted(items)
    return tables


@contextlib.contextmanager
def journaled(directory: Path, app_tables: bool = False) -> Iterator[state.Durable]:
    """A stack's moto (with the app's tables when `app_tables`: they cost a second per
    session), then every change journaled into `directory`."""
    from chalicelib import tables

    with fresh_moto():
        aws_clients.reset()
        if app_tables:
            tables.create_tables()
        kept = state.recover(directory).state
        state.load_into_moto(kept, REGION, set())
        state.refresh_tables(kept, REGION)
        durable = state.Durable(directory, kept)
        moto_serial.journal_to(durable)
        try:
            yield durable
        finally:
            moto_serial.journal_to(None)
            durable.close()
    aws_clients.reset()


def restarted(directory: Path, app_tables: bool = False) -> dict[str, list[str]]:
    """What a new stack holds after recovering `directory` (a dump)."""
    from chalicelib import tables

    recovery = state.recover(directory)
    with fresh_moto():
        if app_tables:
            tables.create_tables()
        state.load_into_moto(recovery.state, REGION, set())
        return dump()


def thing(pk: str, sk: int, **attributes: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, **attributes}


def journal_frames(directory: Path) -> int:
    return len(journal.read(directory / state.JOURNAL).frames)


# --- the journal: what was acknowledged comes back, exactly ------------------------------------


def test_every_kind_of_acknowledged_write_comes_back_as_the_exact_item(tmp_path):
    with journaled(tmp_path, app_tables=True):
        client = dynamodb()
        create_things_table()
        client.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires", "Enabled": True})
        binary = {"B": b"\x00\xff\x10"}
        client.put_item(TableName=TABLE, Item=thing("a", 1, color={"S": "red"}, blob=binary, blobs={"BS": [b"\x01", b"\x02"]},
                                                     nested={"M": {"deep": {"L": [binary, {"N": "1.50"}]}}}))
        client.put_item(TableName=TABLE, Item=thing("a", 2, color={"S": "blue"}))
        client.update_item(TableName=TABLE, Key=thing("a", 2), UpdateExpression="SET n = :one, color = :c",
                           ExpressionAttributeValues={":one": {"N": "1"}, ":c": {"S": "green"}})
        client.delete_item(TableName=TABLE, Key=thing("a", 1))
        client.batch_write_item(RequestItems={TABLE: [
            *({"PutRequest": {"Item": thing("b", n, color={"S": "red"})}} for n in range(20)),
            {"DeleteRequest": {"Key": thing("a", 2)}},
        ]})
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": thing("c", 1), "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": TABLE, "Key": thing("b", 0), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": TABLE, "Key": thing("b", 1)}},
            {"ConditionCheck": {"TableName": TABLE, "Key": thing("b", 2), "ConditionExpression": "attribute_exists(pk)"}},
        ])
        client.put_item(TableName="benchmark-scheduler-test-users", Item={"user_id": {"S": "u1"}, "email": {"S": "a@example.com"}})
        before = dump()

    after = restarted(tmp_path, app_tables=True)

    assert after == before
    assert len(after[TABLE]) == 20  # b0, b2..b19 and c1
    with fresh_moto():  # the restored table has its index and TTL back
        state.load_into_moto(state.recover(tmp_path).state, REGION, set())
        reds = dynamodb().query(TableName=TABLE, IndexName="by_color", KeyConditionExpression="color = :c",
                                ExpressionAttributeValues={":c": {"S": "red"}})["Items"]
        assert len(reds) == 19  # b0, b2..b19
        ttl = dynamodb().describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires"


def test_writes_that_fail_are_not_journaled(tmp_path):
    with journaled(tmp_path):
        client = dynamodb()
        create_things_table()
        client.put_item(TableName=TABLE, Item=thing("a", 1, v={"N": "1"}))
        frames = journal_frames(tmp_path)
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.put_item(TableName=TABLE, Item=thing("a", 1, v={"N": "2"}), ConditionExpression="attribute_not_exists(pk)")
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": TABLE, "Item": thing("a", 2)}},
                {"ConditionCheck": {"TableName": TABLE, "Key": thing("zz", 9), "ConditionExpression": "attribute_exists(pk)"}},
            ])
        assert journal_frames(tmp_path) == frames

    assert [json.loads(item)["v"] for item in restarted(tmp_path)[TABLE]] == [{"N": "1"}]


def test_a_table_deleted_while_running_stays_deleted(tmp_path):
    with journaled(tmp_path):
        create_things_table()
        dynamodb().put_item(TableName=TABLE, Item=thing("a", 1))
        dynamodb().delete_table(TableName=TABLE)

    assert TABLE not in restarted(tmp_path)


def test_partiql_writes_are_refused_rather_than_lost(tmp_path):
    with journaled(tmp_path):
        client = dynamodb()
        create_things_table()
        with pytest.raises(ClientError) as refused:
            client.execute_statement(Statement=f"INSERT INTO \"{TABLE}\" VALUE {{'pk': 'x', 'sk': 1}}")
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert client.execute_statement(Statement=f'SELECT * FROM "{TABLE}"')["Items"] == []


def test_a_write_the_journal_cannot_store_is_never_acknowledged(tmp_path, monkeypatch):
    with journaled(tmp_path):
        client = dynamodb()
        create_things_table()

        def disk_full(fd: int) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patched:
            patched.setattr(journal.os, "fdatasync", disk_full)
            with pytest.raises(ClientError) as failed:
                client.put_item(TableName=TABLE, Item=thing("a", 1))
            assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            # from then on nothing is answered: not even a read that could show the lost write
            with pytest.raises(ClientError):
                client.get_item(TableName=TABLE, Key=thing("a", 1))

    # Like a DynamoDB 500, the write may or may not have happened; the next start works.
    assert len(restarted(tmp_path)[TABLE]) <= 1


def test_a_new_value_of_the_jwt_secret_is_journaled(tmp_path):
    with journaled(tmp_path) as durable:
        arn, value = state.ensure_jwt_secret(None, "test")
        durable.state.jwt_secret = value
        moto_serial.journal_to(durable, secret=(arn, value))
        boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="rotated-by-hand")

    assert state.recover(tmp_path).state.jwt_secret == "rotated-by-hand"


# --- torn and damaged journals ---------------------------------------------------------------------


def _journal_of_three_puts(directory: Path) -> tuple[bytes, list[int], list[dict[str, list[str]]]]:
    """The journal bytes, the offset where each frame ends (0 first), and the dump after
    each prefix of frames."""
    dumps = []
    with journaled(directory):
        create_things_table()
        dumps.append(dump())
        for n in range(3):
            dynamodb().put_item(TableName=TABLE, Item=thing("a", n, text={"S": "é" * n}))
            dumps.append(dump())
    data = (directory / state.JOURNAL).read_bytes()
    ends, offset = [0], 0
    while offset < len(data):
        length, _ = journal.HEADER.unpack_from(data, offset)
        offset += journal.HEADER.size + length
        ends.append(offset)
    return data, ends, dumps


def test_a_journal_cut_at_any_byte_keeps_every_whole_record_and_drops_the_rest(tmp_path):
    source = tmp_path / "source"
    data, ends, dumps = _journal_of_three_puts(source)
    assert len(ends) == 5  # the table, then three puts
    def keys_of(items: Any) -> list[str]:
        return sorted(state.canonical_key({"pk": i["pk"], "sk": i["sk"]}) for i in items)

    items_after = [keys_of(json.loads(i) for i in d.get(TABLE, [])) for d in [dumps[0], *dumps]]
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    shutil.copy(source / state.SNAPSHOT, cut_dir / state.SNAPSHOT)

    for cut in range(len(data) + 1):
        (cut_dir / state.JOURNAL).write_bytes(data[:cut])
        recovery = state.recover(cut_dir)  # never raises

        whole = max(i for i, end in enumerate(ends) if end <= cut)
        assert recovery.frames == whole, cut
        assert recovery.dropped_bytes == cut - ends[whole], cut
        kept = recovery.state.tables.get(TABLE)
        assert keys_of(kept.items.values() if kept else []) == items_after[whole], cut


def test_a_torn_journal_is_emptied_by_the_next_start(tmp_path):
    data, ends, _ = _journal_of_three_puts(tmp_path)
    (tmp_path / state.JOURNAL).write_bytes(data[: ends[-1] - 3])

    with journaled(tmp_path) as durable:
        assert (tmp_path / state.JOURNAL).stat().st_size == 0
        assert len(durable.state.tables[TABLE].items) == 2


def test_a_record_whose_checksum_fails_is_dropped(tmp_path):
    data, ends, _ = _journal_of_three_puts(tmp_path)
    damaged = bytearray(data)
    damaged[ends[-1] - 2] ^= 0x01  # inside the last record's payload
    (tmp_path / state.JOURNAL).write_bytes(bytes(damaged))

    recovery = state.recover(tmp_path)

    assert recovery.frames == 3 and recovery.dropped_bytes == ends[-1] - ends[-2]


def test_replaying_a_journal_onto_a_snapshot_that_holds_it_changes_nothing(tmp_path):
    """A crash between a compaction's rename and its truncation."""
    with journaled(tmp_path) as durable:
        create_things_table()
        for n in range(5):
            dynamodb().put_item(TableName=TABLE, Item=thing("a", n))
        dynamodb().delete_item(TableName=TABLE, Key=thing("a", 0))
        before = dump()
        state.write_snapshot(tmp_path, durable.state)  # the snapshot, without the truncation
    assert journal_frames(tmp_path) > 0

    assert restarted(tmp_path) == before


def test_a_compaction_writes_a_whole_private_snapshot_and_empties_the_journal(tmp_path):
    with journaled(tmp_path) as durable:
        create_things_table()
        dynamodb().put_item(TableName=TABLE, Item=thing("a", 1))
        with moto_serial.exclusive():
            durable.compact()
        assert (tmp_path / state.JOURNAL).stat().st_size == 0
        dynamodb().put_item(TableName=TABLE, Item=thing("a", 2))  # journaled after it
        before = dump()

    assert stat.S_IMODE((tmp_path / state.SNAPSHOT).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / state.JOURNAL).stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.JOURNAL, state.SNAPSHOT]  # no temp file
    assert restarted(tmp_path) == before


# --- group commit ----------------------------------------------------------------------------------


def test_writers_waiting_during_an_fsync_share_the_next_one(tmp_path, monkeypatch):
    real_fdatasync = journal.os.fdatasync
    calls: list[int] = []
    release = threading.Event()

    def slow_fdatasync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            release.wait(10)
        real_fdatasync(fd)

    monkeypatch.setattr(journal.os, "fdatasync", slow_fdatasync)
    log = journal.Journal(tmp_path / "journal")
    first = log.append([{"n": 0}])
    rest = [log.append([{"n": n}]) for n in range(1, 50)]
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (log.wait(rest[-1]), done.set()))
    waiter.start()

    assert not done.wait(0.2)  # not durable while the fsync in progress has not returned
    release.set()
    waiter.join(10)
    log.wait(first)
    log.close()

    assert done.is_set()
    assert len(calls) <= 2  # 50 appends, at most two fsyncs
    assert [frame[0]["n"] for frame in journal.read(tmp_path / "journal").frames] == list(range(50))


# --- snapshot files ----------------------------------------------------------------------------------


def test_an_older_stacks_state_json_is_read_once(tmp_path):
    from chalicelib import config, tables

    legacy = {
        "format": state.LEGACY_FORMAT,
        "kms": None,
        "jwt_secret": "old-secret",
        "tables": {"users": [{"user_id": {"S": "u1"}, "email": {"S": "a@example.com"}}]},
    }
    (tmp_path / state.LEGACY).write_text(json.dumps(legacy))
    recovery = state.recover(tmp_path)
    with fresh_moto():
        tables.create_tables()
        key_of = lambda name: state.key_names(moto_serial.tables(REGION)[name][0])  # noqa: E731
        assert state.adopt_legacy(recovery.state, recovery.legacy, config.table_name, key_of) == 1
        state.load_into_moto(recovery.state, REGION, set())
        state.refresh_tables(recovery.state, REGION)
        state.Durable(tmp_path, recovery.state).close()
        state.retire_legacy(tmp_path)
        users = dump()["benchmark-scheduler-test-users"]

    assert [json.loads(u)["email"] for u in users] == [{"S": "a@example.com"}]
    assert not (tmp_path / state.LEGACY).exists() and (tmp_path / "state.json.imported").exists()
    again = state.recover(tmp_path)
    assert again.legacy is None and again.state.jwt_secret == "old-secret"


def test_an_unusable_snapshot_stops_the_start(tmp_path):
    assert state.recover(tmp_path).state.item_count() == 0  # nothing yet: a first start
    (tmp_path / state.SNAPSHOT).write_text("{not json")
    with pytest.raises(state.StateError, match="not valid JSON"):
        state.recover(tmp_path)
    (tmp_path / state.SNAPSHOT).write_text(json.dumps({"tables": {}}))
    with pytest.raises(state.StateError, match="not a dev stack snapshot"):
        state.recover(tmp_path)


# --- the KMS key and the JWT secret ---------------------------------------------------------------------


OPENAI = "https://api.openai.com/v1"  # a stored key is bound to its endpoint too


def test_a_stored_api_key_still_decrypts_after_a_restart(monkeypatch):
    from chalicelib import keys

    with fresh_moto():
        saved = state.ensure_kms_key(None)
        monkeypatch.setenv("KMS_KEY_ID", saved["key_id"])
        aws_clients.reset()
        blob = keys._encrypt("user-1", "openai", OPENAI, "sk-live-secret-1234")
    with fresh_moto():  # a new moto: no keys at all
        restored = state.ensure_kms_key(saved)
        aws_clients.reset()
        assert restored == saved
        assert keys._decrypt("user-1", "openai", OPENAI, blob) == "sk-live-secret-1234"
        # The encryption context still binds it to its user and provider.
        with pytest.raises(keys.KeyVaultError):
            keys._decrypt("user-2", "openai", OPENAI, blob)
    aws_clients.reset()


def test_without_the_saved_key_old_ciphertexts_do_not_decrypt(monkeypatch):
    """Why the state keeps the key material at all."""
    from chalicelib import keys

    with fresh_moto():
        first = state.ensure_kms_key(None)
        monkeypatch.setenv("KMS_KEY_ID", first["key_id"])
        aws_clients.reset()
        blob = keys._encrypt("user-1", "openai", OPENAI, "sk-live-secret-1234")
    with fresh_moto():
        monkeypatch.setenv("KMS_KEY_ID", state.ensure_kms_key(None)["key_id"])
        aws_clients.reset()
        with pytest.raises(keys.KeyVaultError):
            keys._decrypt("user-1", "openai", OPENAI, blob)
    aws_clients.reset()


def test_the_jwt_secret_keeps_its_value():
    with fresh_moto():
        arn, value = state.ensure_jwt_secret(None, "local")
        assert len(value) >= 32
        assert boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == value
    with fresh_moto():
        arn, again = state.ensure_jwt_secret(value, "local")
        assert again == value
        assert boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == value
