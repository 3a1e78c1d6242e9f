"""The key vault (DESIGN §2 provider_keys, §3 /api/keys): KMS-encrypted, bound to its user
and provider by the encryption context, and never shown again after it is stored.

moto's KMS enforces the encryption context and the key id on Decrypt, so the binding is
tested for real, not mocked.
"""
from __future__ import annotations

import json
import logging

import boto3
import pytest

from chalicelib import aws_clients, config, keys, user_providers
from chalicelib.tables import ProviderKeyModel

SECRET = "sk-proj-Zq8rT4vW1xY7uI3oP9aS6dF2gH5jK0lC"
OTHER_SECRET = "sk-ant-api03-Mn4Bv8Cx2Zl6Kj0Hg5Fd9Sa3Qw7Er1Ty"
VLLM = {"kind": "openai", "base_url": "http://8.8.8.8:8000/v1", "models": [{"id": "llama-3"}]}


@pytest.fixture(autouse=True)
def _kms(kms):
    """Every test here uses the app's KMS key (made by the `aws` fixture)."""


@pytest.fixture
def seen():
    """Every response body of a test, to assert the secret was never in any of them."""
    return []


def call(api, seen, method, path, body=None):
    status, data = api.call(method, path, body)
    seen.append(json.dumps(data))
    return status, data


def by_key(data) -> dict:
    return {k["provider_key"]: k for k in data["keys"]}


def raw_item(user_id: str, provider_key: str) -> dict:
    """The item as DynamoDB holds it, bypassing the model."""
    answer = boto3.client("dynamodb").get_item(
        TableName=config.table_name("provider_keys"),
        Key={"user_id": {"S": user_id}, "provider_key": {"S": provider_key}},
    )
    return answer.get("Item", {})


# --- round trip ----------------------------------------------------------------------------


def test_put_then_get_shows_last4_never_the_key(alice, seen):
    status, data = call(alice, seen, "PUT", "/api/keys", {"provider_key": "openai", "value": SECRET})
    assert status == 200
    assert data == {
        "status": "ok",
        "key": {"provider_key": "openai", "has_user_key": True, "last4": SECRET[-4:]},
    }

    status, data = call(alice, seen, "GET", "/api/keys")
    assert status == 200 and data["next_cursor"] is None
    listed = by_key(data)
    assert list(listed) == ["openai", "anthropic", "gemini"]
    assert listed["openai"] == {"provider_key": "openai", "has_user_key": True, "last4": SECRET[-4:]}
    assert listed["anthropic"] == {"provider_key": "anthropic", "has_user_key": False, "last4": None}

    assert not any(SECRET in body for body in seen)
    item = raw_item(alice.id, "openai")
    assert set(item) == {"user_id", "provider_key", "ciphertext", "last4", "updated_at"}
    assert SECRET not in repr(item)
    assert SECRET.encode() not in item["ciphertext"]["B"]
    assert item["updated_at"]["S"].endswith("Z")


def test_get_api_key_decrypts(alice):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    assert keys.get_api_key(alice.id, "openai") == SECRET
    assert keys.get_api_key(alice.id, "anthropic") is None


def test_put_replaces_the_key(alice):
    alice.put("/api/keys", {"provider_key": "anthropic", "value": SECRET})
    status, data = alice.put("/api/keys", {"provider_key": "anthropic", "value": OTHER_SECRET})
    assert status == 200 and data["key"]["last4"] == OTHER_SECRET[-4:]
    assert keys.get_api_key(alice.id, "anthropic") == OTHER_SECRET


def test_short_keys_show_no_last4(alice):
    status, data = alice.put("/api/keys", {"provider_key": "gemini", "value": "abc1234"})
    assert status == 200
    assert data["key"] == {"provider_key": "gemini", "has_user_key": True, "last4": None}
    assert by_key(alice.get("/api/keys")[1])["gemini"]["last4"] is None
    assert keys.get_api_key(alice.id, "gemini") == "abc1234"


def test_the_key_is_not_logged(alice, caplog):
    caplog.set_level(logging.DEBUG, logger="benchmark-scheduler")
    caplog.set_level(logging.INFO)
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET + " x"})
    keys.get_api_key(alice.id, "openai")
    assert SECRET not in caplog.text


# --- which providers --------------------------------------------------------------------------


def test_keys_cover_demo_and_own_providers(alice, monkeypatch):
    monkeypatch.setenv("DEMO_PROVIDER_URL", "http://127.0.0.1:8503/v1")
    assert alice.put("/api/providers/myvllm", VLLM)[0] == 200
    status, data = alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})
    assert status == 200
    listed = by_key(alice.get("/api/keys")[1])
    assert list(listed) == ["openai", "anthropic", "gemini", "demo", "myvllm"]
    assert listed["myvllm"]["has_user_key"] is True
    assert listed["demo"]["has_user_key"] is False
    assert keys.get_api_key(alice.id, "myvllm") == SECRET


@pytest.mark.parametrize("provider_key", ["mistral", "demo", "myvllm", "OpenAI"])
def test_unknown_provider_is_422_naming_it(alice, bob, provider_key, seen):
    # demo exists only where the stack provides it; myvllm is bob's, not alice's
    bob.put("/api/providers/myvllm", VLLM)
    status, data = call(alice, seen, "PUT", "/api/keys", {"provider_key": provider_key, "value": SECRET})
    assert status == 422
    assert data["detail"][0]["field"] == "provider_key"
    assert provider_key in data["error"]
    assert not any(SECRET in body for body in seen)
    assert raw_item(alice.id, provider_key) == {}


def test_a_key_is_not_saved_for_a_provider_deleted_meanwhile(alice, monkeypatch):
    """put_key reads the provider list, then delete_provider wins the race: no orphan key."""
    from chalicelib import user_providers
    from chalicelib.catalog import ModelInfo, ProviderInfo

    ghost = ProviderInfo("myvllm", "openai", "http://8.8.8.8/v1", (ModelInfo("llama-3"),), builtin=False)
    real = user_providers.providers_for
    monkeypatch.setattr(user_providers, "providers_for", lambda user_id: {**real(user_id), "myvllm": ghost})
    status, data = alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})
    assert status == 422 and data["detail"][0]["field"] == "provider_key"
    assert raw_item(alice.id, "myvllm") == {}


# --- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        " " + SECRET,
        SECRET + "\n",
        SECRET + " ",
        SECRET[:10] + " " + SECRET[10:],
        SECRET[:10] + "\t" + SECRET[10:],
        SECRET[:10] + "\x00" + SECRET[10:],
        SECRET[:10] + "\x7f" + SECRET[10:],
        SECRET[:10] + "\u200b" + SECRET[10:],
        SECRET[:10] + "\u00e9" + SECRET[10:],
        "k" * 4097,
        123,
        None,
        ["sk"],
    ],
)
def test_bad_values_are_422_and_not_echoed(alice, value, seen):
    status, data = call(alice, seen, "PUT", "/api/keys", {"provider_key": "openai", "value": value})
    assert status == 422, data
    assert data["detail"][0]["field"] == "value"
    if isinstance(value, str) and value:
        assert not any(value.strip() in body or SECRET in body for body in seen)
    assert raw_item(alice.id, "openai") == {}


def test_longest_value_is_accepted(alice):
    assert alice.put("/api/keys", {"provider_key": "openai", "value": "k" * 4096})[0] == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"value": SECRET}, "provider_key"),
        ({"provider_key": "openai"}, "value"),
        ({"provider_key": "openai", "value": SECRET, "extra": 1}, "extra"),
        ({"provider_key": 1, "value": SECRET}, "provider_key"),
    ],
)
def test_body_shape_is_validated(alice, body, field, seen):
    status, data = call(alice, seen, "PUT", "/api/keys", body)
    assert status == 422 and data["detail"][0]["field"] == field
    assert not any(SECRET in b for b in seen)


def test_put_key_validates_direct_calls_too(aws):
    from chalicelib.errors import Unprocessable

    with pytest.raises(Unprocessable):
        keys.put_key("u1", "openai", "has space")
    with pytest.raises(Unprocessable):
        keys.put_key("u1", "nope", SECRET)


# --- delete and isolation ---------------------------------------------------------------------


def test_delete_then_404(alice):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    assert alice.delete("/api/keys/openai") == (200, {"status": "ok"})
    assert by_key(alice.get("/api/keys")[1])["openai"]["has_user_key"] is False
    assert keys.get_api_key(alice.id, "openai") is None
    status, data = alice.delete("/api/keys/openai")
    assert status == 404 and data["detail"] == {"provider_key": "openai"}


def test_delete_of_a_never_stored_or_unknown_key_is_404(alice):
    assert alice.delete("/api/keys/anthropic")[0] == 404
    assert alice.delete("/api/keys/nope")[0] == 404


def test_another_user_cannot_see_or_delete(alice, bob, seen):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    status, data = call(bob, seen, "GET", "/api/keys")
    assert by_key(data)["openai"] == {"provider_key": "openai", "has_user_key": False, "last4": None}
    assert bob.delete("/api/keys/openai")[0] == 404
    assert keys.get_api_key(bob.id, "openai") is None
    assert keys.get_api_key(alice.id, "openai") == SECRET


def test_anonymous_is_refused(anonymous):
    assert anonymous.get("/api/keys")[0] == 401
    assert anonymous.put("/api/keys", {"provider_key": "openai", "value": SECRET})[0] == 401
    assert anonymous.delete("/api/keys/openai")[0] == 401


# --- encryption-context binding ---------------------------------------------------------------


def _copy(item: ProviderKeyModel, user_id: str, provider_key: str) -> None:
    ProviderKeyModel(
        user_id, provider_key,
        ciphertext=item.ciphertext, last4=item.last4, updated_at=item.updated_at,
    ).save()


def test_ciphertext_copied_to_another_user_does_not_decrypt(alice, bob):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    _copy(ProviderKeyModel.get(alice.id, "openai"), bob.id, "openai")
    with pytest.raises(keys.KeyVaultError) as err:
        keys.get_api_key(bob.id, "openai")
    assert SECRET not in str(err.value) and "openai" in str(err.value)


def test_ciphertext_copied_to_another_provider_does_not_decrypt(alice):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    _copy(ProviderKeyModel.get(alice.id, "openai"), alice.id, "anthropic")
    with pytest.raises(keys.KeyVaultError):
        keys.get_api_key(alice.id, "anthropic")
    assert keys.get_api_key(alice.id, "openai") == SECRET  # the original still works


def test_ciphertext_of_another_kms_key_does_not_decrypt(alice, monkeypatch):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    monkeypatch.setenv("KMS_KEY_ID", boto3.client("kms").create_key()["KeyMetadata"]["KeyId"])
    with pytest.raises(keys.KeyVaultError):
        keys.get_api_key(alice.id, "openai")


def test_the_encryption_context_is_user_provider_and_endpoint(alice, kms):
    alice.put("/api/keys", {"provider_key": "openai", "value": SECRET})
    blob = ProviderKeyModel.get(alice.id, "openai").ciphertext
    context = {"user_id": alice.id, "provider_key": "openai", "endpoint": "https://api.openai.com/v1"}
    plain = boto3.client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
    assert plain == SECRET.encode()
    for wrong in ({**context, "endpoint": "https://evil.example.com/v1"},
                  {"user_id": alice.id, "provider_key": "openai"}):
        with pytest.raises(boto3.client("kms").exceptions.InvalidCiphertextException):
            boto3.client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=wrong)


# --- a key belongs to its endpoint ------------------------------------------------------------


@pytest.fixture
def dns(monkeypatch):
    """Two public-looking names for the provider's endpoint, and no real DNS."""
    import socket

    table = {"vllm.example.com": "93.184.216.34", "evil.example.com": "104.18.32.7"}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


OWN = {"kind": "openai", "base_url": "https://vllm.example.com/v1", "models": [{"id": "llama-3"}]}


def test_moving_base_url_removes_the_stored_key_and_says_so(alice, dns):
    alice.put("/api/providers/myvllm", OWN)
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})

    status, data = alice.put("/api/providers/myvllm", {**OWN, "base_url": "https://evil.example.com/v1"})

    assert status == 200
    assert data["key_removed"] is True
    assert "removed" in data["message"] and "base_url" in data["message"]
    assert raw_item(alice.id, "myvllm") == {}
    assert by_key(alice.get("/api/keys")[1])["myvllm"]["has_user_key"] is False
    assert keys.get_api_key(alice.id, "myvllm") is None


def test_moving_base_url_without_a_stored_key_removes_nothing(alice, dns):
    alice.put("/api/providers/myvllm", OWN)
    status, data = alice.put("/api/providers/myvllm", {**OWN, "base_url": "https://evil.example.com/v1"})
    assert (status, data["key_removed"]) == (200, False) and "message" not in data


def test_changing_anything_but_base_url_keeps_the_key(alice, dns):
    alice.put("/api/providers/myvllm", OWN)
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})
    status, data = alice.put("/api/providers/myvllm", {**OWN, "models": [{"id": "llama-4"}]})
    assert (status, data["key_removed"]) == (200, False)
    assert keys.get_api_key(alice.id, "myvllm") == SECRET


def test_a_key_whose_provider_was_moved_behind_the_apis_back_does_not_decrypt(alice, dns):
    from chalicelib.tables import ProviderModel

    alice.put("/api/providers/myvllm", OWN)
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})
    ProviderModel(alice.id, "myvllm").update(actions=[ProviderModel.base_url.set("https://evil.example.com/v1")])

    with pytest.raises(keys.KeyVaultError):
        keys.get_api_key(alice.id, "myvllm")
    with pytest.raises(keys.KeyVaultError):
        keys.get_api_key(alice.id, "myvllm", "https://evil.example.com/v1")
    assert keys.get_api_key(alice.id, "myvllm", OWN["base_url"]) == SECRET


def test_a_key_is_not_saved_for_an_endpoint_changed_meanwhile(alice, dns, monkeypatch):
    """put_key read the provider at one URL, then a PUT moved it: the key is not stored."""
    from chalicelib import user_providers
    from chalicelib.catalog import ModelInfo, ProviderInfo

    alice.put("/api/providers/myvllm", {**OWN, "base_url": "https://evil.example.com/v1"})
    stale = ProviderInfo("myvllm", "openai", OWN["base_url"], (ModelInfo("llama-3"),), builtin=False)
    real = user_providers.providers_for
    monkeypatch.setattr(user_providers, "providers_for", lambda user_id: {**real(user_id), "myvllm": stale})

    status, data = alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})

    assert status == 409 and data["detail"]["field"] == "provider_key"
    assert raw_item(alice.id, "myvllm") == {}


# --- import cost ----------------------------------------------------------------------------


def test_no_kms_client_exists_until_used(aws):
    aws_clients.reset()
    keys.list_keys("u1", user_providers.ListQuery())  # listing never needs KMS
    assert ("kms", None) not in aws_clients._clients
