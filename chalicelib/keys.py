"""The key vault: a user's API key per provider, encrypted with KMS, never shown again.

Each key is encrypted under `config.kms_key_id()` with the encryption context
`{"user_id": ..., "provider_key": ...}`. KMS refuses to decrypt with any other context, so a
ciphertext copied (by a bug, a restore or a malicious table edit) onto another user's or
another provider's item does not decrypt: a key only ever serves the user and provider it
was stored for. The table holds the ciphertext, `last4` (to recognise the key) and
`updated_at`; the plaintext is never stored, logged, returned or put in an error.

`get_api_key` is the only way back to the plaintext, for the runner.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pynamodb.exceptions import DoesNotExist

from chalicelib import aws_clients, clock, config, payloads, user_providers, writes
from chalicelib.errors import NotFound, Unprocessable, invalid
from chalicelib.tables import ProviderKeyModel, ProviderModel

MAX_KEY_CHARS = 4096
# A shorter key gets no `last4`: four characters of a six-character key are most of it.
MIN_CHARS_FOR_LAST4 = 8


class KeyVaultError(Exception):
    """A stored key exists but cannot be decrypted (copied item, changed KMS key...).

    Raised, not answered with None: None means "no user key" and lets the caller fall back
    to another key, which would hide tampering. The message never holds the key.
    """


class KeyPut(BaseModel):
    """`PUT /api/keys` body. Validation messages never echo the value (payloads drops inputs)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    # Checked against the user's providers by `put_key`, which names an unknown one.
    provider_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: str

    @field_validator("value")
    @classmethod
    def _plausible_key(cls, value: str) -> str:
        # Whitespace and control characters are paste accidents (a trailing newline) or
        # header injection; no provider issues keys containing them.
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_KEY_CHARS:
            raise ValueError(f"must be at most {MAX_KEY_CHARS} characters")
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError("must not contain whitespace or control characters")
        if not value.isascii():
            # It travels in an HTTP header, which httpx encodes as ASCII: refuse it now
            # rather than fail every benchmark later.
            raise ValueError("must be ASCII")
        return value


# --- KMS ------------------------------------------------------------------------------------

def kms_client() -> Any:
    return aws_clients.client("kms")


def _context(user_id: str, provider_key: str) -> dict[str, str]:
    return {"user_id": user_id, "provider_key": provider_key}


def _encrypt(user_id: str, provider_key: str, value: str) -> bytes:
    return seal(value, _context(user_id, provider_key))


def _decrypt(user_id: str, provider_key: str, ciphertext: bytes) -> str:
    return unseal(ciphertext, _context(user_id, provider_key), f"Stored key for provider {provider_key!r}")


def seal(value: str, context: dict[str, str]) -> bytes:
    """`value` encrypted under the app's KMS key, decryptable only with the same `context`
    (the vault's keys and the alerts' webhook secrets both name their owner in it)."""
    answer = kms_client().encrypt(
        KeyId=config.kms_key_id(),
        Plaintext=value.encode("utf-8"),
        EncryptionContext=context,
    )
    return answer["CiphertextBlob"]


def unseal(ciphertext: bytes, context: dict[str, str], what: str) -> str:
    """The plaintext `seal` encrypted with this `context`; `KeyVaultError` naming `what`
    when KMS refuses (another context, another key, a damaged ciphertext)."""
    from botocore.exceptions import ClientError

    try:
        answer = kms_client().decrypt(
            CiphertextBlob=ciphertext,
            KeyId=config.kms_key_id(),  # refuse ciphertexts made under any other key
            EncryptionContext=context,
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        raise KeyVaultError(f"{what} cannot be decrypted ({code})") from None
    return answer["Plaintext"].decode("utf-8")


# --- the vault ------------------------------------------------------------------------------


def put_key(user_id: str, provider_key: str, value: str) -> dict[str, Any]:
    """Store (or replace) the user's key for a provider they can use; answer its public view.

    Validates again (not only at the route) so that no caller can store a bad key.
    """
    body = payloads.validate(KeyPut, {"provider_key": provider_key, "value": value})
    provider = user_providers.providers_for(user_id).get(body.provider_key)
    if provider is None:
        raise _unknown(body.provider_key)
    item = ProviderKeyModel(
        user_id,
        body.provider_key,
        ciphertext=_encrypt(user_id, body.provider_key, body.value),
        last4=_last4(body.value),
        updated_at=clock.now_iso(),
    )
    if provider.builtin:
        item.save()
    else:
        _save_if_provider_exists(item)
    return _public(body.provider_key, item)


def delete_key(user_id: str, provider_key: str) -> None:
    """Forget the user's key for a provider; 404 when none is stored."""
    if not writes.delete_if(ProviderKeyModel(user_id, provider_key), _STORED):
        raise NotFound("No key stored for this provider", {"provider_key": provider_key})


def list_keys(user_id: str) -> list[dict[str, Any]]:
    """One entry per provider the user can use (built-ins, demo, their own), key or not.

    Keys left behind for a provider the user can no longer use are not listed.
    """
    stored = {item.provider_key: item for item in ProviderKeyModel.query(user_id)}
    return [_public(key, stored.get(key)) for key in user_providers.providers_for(user_id)]


def get_api_key(user_id: str, provider_key: str) -> str | None:
    """The user's plaintext key for the provider, or None when they stored none.

    For the runner only; the caller must keep it out of logs, errors and results. Raises
    `KeyVaultError` when a stored key does not decrypt (see there why that is not None).
    """
    try:
        # Consistent: a benchmark triggered right after a PUT uses the new key.
        item = ProviderKeyModel.get(user_id, provider_key, consistent_read=True)
    except DoesNotExist:
        return None
    return _decrypt(user_id, provider_key, item.ciphertext)


def _save_if_provider_exists(item: ProviderKeyModel) -> None:
    """Save a key for a user provider only while that provider exists.

    One transaction with a condition on the provider item: a `delete_provider` racing this
    put cannot leave a key behind for a deleted provider (a read-then-write could).
    """
    failed = (
        writes.Tx()
        .check("provider", ProviderModel, item.user_id, _PROVIDER_EXISTS, item.provider_key)
        .put("key", item)
        .commit()
    )
    if failed:
        raise _unknown(item.provider_key)


# The rules of the vault's writes.
_STORED = ProviderKeyModel.provider_key.exists()
_PROVIDER_EXISTS = ProviderModel.provider_key.exists()


def _unknown(provider_key: str) -> Unprocessable:
    return invalid("provider_key", f"unknown provider {provider_key!r}", provider_key=provider_key)


def _last4(value: str) -> str:
    return value[-4:] if len(value) >= MIN_CHARS_FOR_LAST4 else ""


def _public(provider_key: str, item: ProviderKeyModel | None) -> dict[str, Any]:
    return {
        "provider_key": provider_key,
        "has_user_key": item is not None,
        "last4": (item.last4 or None) if item is not None else None,
    }
