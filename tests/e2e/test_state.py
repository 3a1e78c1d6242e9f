"""The dev stack's state file: tables, the KMS key and the JWT secret across a "restart".

A restart is modelled in-process by two `fresh_moto()` sessions one after the other: moto's
backends start empty in the second, exactly as in a new `make run`.
"""
from __future__ import annotations

import json
import stat

import boto3
import pytest

from chalicelib import aws_clients
from devstack import state
from tests.conftest import fresh_moto


def _fresh_tables() -> None:
    from chalicelib import tables

    tables.create_tables()


def test_a_stored_api_key_still_decrypts_after_a_restart(monkeypatch):
    from chalicelib import keys

    with fresh_moto():
        saved = state.ensure_kms_key(None)
        monkeypatch.setenv("KMS_KEY_ID", saved["key_id"])
        aws_clients.reset()
        blob = keys._encrypt("user-1", "openai", "sk-live-secret-1234")
    with fresh_moto():  # a new moto: no keys at all
        restored = state.ensure_kms_key(saved)
        aws_clients.reset()
        assert restored == saved
        assert keys._decrypt("user-1", "openai", blob) == "sk-live-secret-1234"
        # The encryption context still binds it to its user and provider.
        with pytest.raises(keys.KeyVaultError):
            keys._decrypt("user-2", "openai", blob)
    aws_clients.reset()


def test_without_the_saved_key_old_ciphertexts_do_not_decrypt(monkeypatch):
    """Why the state keeps the key material at all."""
    from chalicelib import keys

    with fresh_moto():
        first = state.ensure_kms_key(None)
        monkeypatch.setenv("KMS_KEY_ID", first["key_id"])
        aws_clients.reset()
        blob = keys._encrypt("user-1", "openai", "sk-live-secret-1234")
    with fresh_moto():
        monkeypatch.setenv("KMS_KEY_ID", state.ensure_kms_key(None)["key_id"])
        aws_clients.reset()
        with pytest.raises(keys.KeyVaultError):
            keys._decrypt("user-1", "openai", blob)
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


def test_every_item_of_every_table_round_trips_through_the_file(tmp_path):
    from chalicelib.tables import ProviderKeyModel, ScheduleModel, UserModel

    path = tmp_path / "nested" / "state.json"
    with fresh_moto():
        _fresh_tables()
        UserModel("u1", email="a@example.com", role="admin", created_at="2026-01-01T00:00:00Z").save()
        ProviderKeyModel("u1", "openai", ciphertext=b"\x00\xffbinary", last4="1234", updated_at="x").save()
        for number in range(60):  # more than one BatchWriteItem
            ScheduleModel(
                "u1", f"s{number:02d}", name="n", prompt="p", models=["demo/fast"], max_tokens=512,
                temperature=0.7, interval_hours=1, enabled=True, next_run="2026-01-01T00:00:00Z",
                created_at="x", updated_at="x", due_shard=number % 16,
            ).save()
        before = state.dump_tables()
        state.write(path, state.State(tables=before, kms={"key_id": "k", "key_material": "m"}, jwt_secret="s"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    loaded = state.read(path)
    assert loaded.item_count() == 62 and loaded.jwt_secret == "s"
    with fresh_moto():
        _fresh_tables()
        assert state.load_tables(loaded.tables) == 62
        after = state.dump_tables()
        assert ProviderKeyModel.get("u1", "openai").ciphertext == b"\x00\xffbinary"
        # The sparse `due` index is rebuilt from the loaded items.
        assert len(list(ScheduleModel.due.query(3))) == 4
    key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
    assert {t: sorted(map(key, items)) for t, items in after.items()} == {
        t: sorted(map(key, items)) for t, items in before.items()
    }


def test_a_missing_file_is_a_first_start_and_a_bad_one_stops_the_start(tmp_path):
    assert state.read(tmp_path / "absent.json") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(state.StateError, match="not valid JSON"):
        state.read(broken)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"tables": {}}))
    with pytest.raises(state.StateError, match="not a dev stack state file"):
        state.read(foreign)
