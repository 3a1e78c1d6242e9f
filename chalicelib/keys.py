"""The key vault: a user's API key per provider, encrypted with KMS, never shown again.

Each key is encrypted under `config.kms_key_id()` with the encryption context
`{"user_id": ..., "provider_key": ..., "endpoint": <the provider's base_url>}` (a built-in's
fixed URL). KMS refuses to decrypt with any other context, so a ciphertext copied (by a
bug, a restore or a malicious table edit) onto another user's or another provider's item
does not decrypt, and neither does a key whose provider now points elsewhere: a key only
ever serves the user, provider and endpoint it was stored for. (`user_providers.put_provider`
deletes the key when `base_url` moves; the context holds even if an item is edited behind
the API's back.) The table holds the ciphertext, `last4` (to recognise the key) and
`updated_at`; the plaintext is never stored, logged, returned or put in an error.

`get_api_key` is the only way back to the plaintext, for the runner.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pynamodb.exceptions import DoesNotExist

from chalicelib import aws_clients, clock, config, payloads, user_providers, writes
from chalicelib.errors import Conflict, NotFound, Unprocessable, invalid
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


# The vault's encryption context keys: the KMS policies must allow exactly these
# (`kms:EncryptionContextKeys`), or every Encrypt and Decrypt of a stored key is refused.
CONTEXT_KEYS = ("user_id", "provider_key", "endpoint")


def _context(user_id: str, provider_key: str, endpoint: str) -> dict[str, str]:
    return dict(zip(CONTEXT_KEYS, (user_id, provider_key, endpoint)))


def _encrypt(user_id: str, provider_key: str, endpoint: str, value: str) -> bytes:
    return seal(value, _context(user_id, provider_key, endpoint))


def _decrypt(user_id: str, provider_key: str, endpoint: str, ciphertext: bytes) -> str:
    return unseal(ciphertext, _context(user_id, provider_key, endpoint), f"Stored key for provider {provider_key!r}")


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
        ciphertext=_encrypt(user_id, body.provider_key, provider.base_url, body.value),
        last4=_last4(body.value),
        updated_at=clock.now_iso(),
    )
    if provider.builtin:
        item.save()
    else:
        _save_if_provider_still_at(item, provider.base_url)
    return _public(body.provider_key, item)


def delete_key(user_id: str, provider_key: str) -> None:
    """Forget the user's key for a provider; 404 when none is stored."""
    if not writes.delete_if(ProviderKeyModel(user_id, provider_key), _STORED):
        raise NotFound("No key stored for this provider", {"provider_key": provider_key})


def list_keys(user_id: str, query: user_providers.ListQuery) -> dict[str, Any]:
    """`{keys, next_cursor}`: one entry per provider the user can use (built-ins, demo,
    their own), key or not, in the order of `GET /api/providers`.

    Keys left behind for a provider the user can no longer use are not listed.
    """
    stored = {item.provider_key: item for item in ProviderKeyModel.query(user_id)}
    providers = list(user_providers.providers_for(user_id).values())
    page, next_cursor = user_providers.page_of(providers, query, lambda p: _public(p.key, stored.get(p.key)))
    return {"keys": page, "next_cursor": next_cursor}


def get_api_key(user_id: str, provider_key: str, base_url: str | None = None) -> str | None:
    """The user's plaintext key for the provider, or None when they stored none (or have
    no such provider any more).

    `base_url`: where the caller will send the key (the runner's target). The key
    decrypts only for the endpoint it was stored for; without `base_url`, the provider's
    current one is read. For the runner only; the caller must keep the key out of logs,
    errors and results. Raises `KeyVaultError` when a stored key does not decrypt (see
    there why that is not None).
    """
    try:
        # Consistent: a benchmark triggered right after a PUT uses the new key.
        item = ProviderKeyModel.get(user_id, provider_key, consistent_read=True)
    except DoesNotExist:
        return None
    endpoint = base_url or user_providers.base_url_of(user_id, provider_key)
    if endpoint is None:
        return None
    return _decrypt(user_id, provider_key, endpoint, item.ciphertext)


def _save_if_provider_still_at(item: ProviderKeyModel, base_url: str) -> None:
    """Save a key for a user provider only while that provider exists and still points
    where the key was encrypted for.

    One transaction with a condition on the provider item: a `delete_provider` or a
    `base_url` change racing this put cannot leave a key behind (a read-then-write could).
    """
    failed = (
        writes.Tx()
        .check("provider", ProviderModel, item.user_id, ProviderModel.base_url == base_url, item.provider_key)
        .put("key", item)
        .commit()
    )
    if not failed:
        return
    if user_providers.base_url_of(item.user_id, item.provider_key) is None:
        raise _unknown(item.provider_key)
    raise Conflict(
        "The provider's base_url changed while the key was being stored: store it again",
        {"field": "provider_key", "provider_key": item.provider_key},
    )


# The rules of the vault's writes.
_STORED = ProviderKeyModel.provider_key.exists()


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
