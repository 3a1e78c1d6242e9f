"""A user's own provider endpoints (the `providers` table) and the endpoint (SSRF) rule.

A user provider is a wire format (`kind`), a `base_url` and the models it serves, with
optional prices. Its key lives in the user's namespace next to the built-ins, which it can
never shadow. Because the runner will POST to `base_url` from inside our network, an
endpoint is vetted by `check_endpoint` (see there) before it is stored.

A stored API key belongs to the endpoint it was given for (`keys` binds it to the
`base_url` by the KMS encryption context): a `put_provider` that moves `base_url` deletes
the key in the same transaction and says so, so whoever holds a user's token cannot point
the provider elsewhere and have the runner send the key there.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Annotated, Any, Callable, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib import catalog, clock, config, paging, quotas, writes
from chalicelib.catalog import ModelInfo, ProviderInfo
from chalicelib.errors import Conflict, NotFound, Unprocessable, invalid
from chalicelib.tables import ProviderKeyModel, ProviderModel

PROVIDER_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PROVIDER_KEY_RULE = "must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit"
ProviderKey = Annotated[str, StringConstraints(pattern=PROVIDER_KEY_PATTERN)]

MAX_URL_CHARS = 2048
MAX_PRICE_PER_MTOK = 10_000
_ATTEMPTS = 4  # a put that keeps losing races with other writes of the provider gives up

Price = Annotated[float | None, Field(ge=0, le=MAX_PRICE_PER_MTOK, allow_inf_nan=False)]


class ModelBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    id: str
    input_cost_per_mtok: Price = None
    output_cost_per_mtok: Price = None

    @field_validator("id")
    @classmethod
    def _catalog_id(cls, value: str) -> str:
        # fullmatch: the catalog pattern ends in `$`, which `match` lets pass before a "\n".
        if not catalog.MODEL_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "must be 1-200 characters: letters, digits and . _ : @ + - /, "
                "starting with a letter or digit"
            )
        return value


class ProviderBody(BaseModel):
    """`PUT /api/providers/{provider_key}` body: the studio's shape, strictly typed."""

    model_config = ConfigDict(strict=True, extra="forbid")

    kind: Literal["openai", "anthropic", "gemini"]
    base_url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]
    models: Annotated[list[ModelBody], Field(min_length=1)]

    @field_validator("models", mode="before")
    @classmethod
    def _at_most_the_cap(cls, models: Any) -> Any:
        # before: a list over the cap is refused before each model is validated
        limit = quotas.max_models_per_provider()
        if isinstance(models, list) and len(models) > limit:
            raise PydanticCustomError(
                "too_long", "at most {max_length} models per provider", {"max_length": limit}
            )
        return models

    @field_validator("models")
    @classmethod
    def _unique_ids(cls, models: list[ModelBody]) -> list[ModelBody]:
        seen: set[str] = set()
        for model in models:
            if model.id in seen:
                raise ValueError(f"duplicate model id {model.id!r}")
            seen.add(model.id)
        return models


# --- CRUD -----------------------------------------------------------------------------------


def load(user_id: str) -> list[ProviderInfo]:
    """The user's own providers, sorted by key."""
    return [_info(item) for item in ProviderModel.query(user_id)]


def providers_for(user_id: str) -> dict[str, ProviderInfo]:
    """Every provider the user can use, by key: the built-ins, then their own (which can
    never shadow a built-in: `put_provider` refuses those keys)."""
    found = {p.key: p for p in catalog.builtin_providers()}
    for provider in load(user_id):
        found.setdefault(provider.key, provider)
    return found


class ListQuery(paging.PageQuery):
    """`?limit=&cursor=` of `GET /api/providers` and `GET /api/keys` (one entry per
    provider in both; default: all of them)."""

    KEY = re.compile(PROVIDER_KEY_PATTERN.strip("^$"))

    @classmethod
    def most(cls) -> int:
        return len(catalog.builtin_providers()) + quotas.PROVIDERS.limit()


def page_of(
    providers: list[ProviderInfo], query: ListQuery, entry: Callable[[ProviderInfo], dict[str, Any]]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `entry(provider)` over `providers` in `providers_for` order (built-ins,
    then the user's own by key), continuing after the cursor's provider even if it has
    been deleted since."""
    after = query.after()
    if after is not None:
        builtin = [p.key for p in providers if p.builtin]
        if after in builtin:
            providers = providers[builtin.index(after) + 1 :]
        else:
            providers = [p for p in providers if not p.builtin and p.key > after]
    return paging.take((entry(p) for p in providers), query.size(), lambda e: e["provider_key"])


def list_providers(user_id: str, query: ListQuery) -> dict[str, Any]:
    """`{providers, next_cursor}`: built-ins first (with `demo` where the stack provides
    it), then the user's own."""
    page, next_cursor = page_of(list(providers_for(user_id).values()), query, ProviderInfo.public)
    return {"providers": page, "next_cursor": next_cursor}


def base_url_of(user_id: str, provider_key: str) -> str | None:
    """Where the user's provider `provider_key` is (a built-in's fixed URL); None if the
    user has no such provider. Strongly consistent: it decides where a key may go."""
    builtin = next((p for p in catalog.builtin_providers() if p.key == provider_key), None)
    if builtin is not None:
        return builtin.base_url
    found = _get(user_id, provider_key)
    return found.base_url if found is not None else None


def put_provider(user_id: str, provider_key: str, body: ProviderBody) -> dict[str, Any]:
    """Create or replace one of the user's providers: `{provider, key_removed[, message]}`.

    A create takes one of the user's `quotas.PROVIDERS`. A replace is conditional on the
    `base_url` it read; when it moves `base_url`, the stored key is deleted in the same
    transaction (conditional on the key being there or not, as read, so `key_removed` is
    exact).
    """
    _check_provider_key(provider_key)
    check_endpoint(body.base_url)
    item = ProviderModel(
        user_id,
        provider_key,
        kind=body.kind,
        base_url=body.base_url,
        models=[m.model_dump() for m in body.models],
        updated_at=clock.now_iso(),
    )
    for _ in range(_ATTEMPTS):
        existing = _get(user_id, provider_key)
        if existing is None:
            failed = quotas.PROVIDERS.take(writes.Tx().put("provider", item, _NEW), user_id).commit()
            if not failed:
                return _answer(item, key_removed=False)
            if "provider" not in failed:
                raise quotas.PROVIDERS.exceeded()
            continue  # created meanwhile: replace it
        tx = writes.Tx().put("provider", item, _at(existing.base_url))
        had_key = existing.base_url != body.base_url and _key_stored(user_id, provider_key)
        if existing.base_url != body.base_url:
            tx.delete("key", ProviderKeyModel(user_id, provider_key), _KEY_STORED if had_key else _NO_KEY)
        if not tx.commit():
            return _answer(item, key_removed=had_key)
    raise Conflict("The provider is being changed by another request: try again", {"provider_key": provider_key})


def delete_provider(user_id: str, provider_key: str) -> None:
    """Delete one of the user's providers and the key stored for it, in one transaction
    that also gives back its place in the user's `quotas.PROVIDERS`.

    The key goes too: it was given for that endpoint, and a provider re-created later under
    the same name (maybe at another URL) must not silently inherit it. 404 when the user has
    no such provider (built-ins and other users' providers included).
    """
    tx = (
        writes.Tx()
        .delete("provider", ProviderModel(user_id, provider_key), _EXISTS)
        .delete("key", ProviderKeyModel(user_id, provider_key))
    )
    if quotas.PROVIDERS.give_back(tx, user_id).commit():
        raise NotFound("Provider not found", {"provider_key": provider_key})


def _get(user_id: str, provider_key: str) -> ProviderModel | None:
    try:
        return ProviderModel.get(user_id, provider_key, consistent_read=True)
    except DoesNotExist:
        return None


def _key_stored(user_id: str, provider_key: str) -> bool:
    try:
        ProviderKeyModel.get(user_id, provider_key, consistent_read=True, attributes_to_get=["user_id"])
    except DoesNotExist:
        return False
    return True


def _answer(item: ProviderModel, *, key_removed: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"provider": _info(item).public(), "key_removed": key_removed}
    if key_removed:
        answer["message"] = (
            "The stored API key of this provider was removed: it was given for the previous "
            "base_url. Store the key again if it belongs to the new endpoint."
        )
    return answer


# The rules of the providers' writes, each stated once.
_EXISTS = ProviderModel.provider_key.exists()
_NEW = ProviderModel.provider_key.does_not_exist()
_KEY_STORED = ProviderKeyModel.provider_key.exists()
_NO_KEY = ProviderKeyModel.provider_key.does_not_exist()


def _at(base_url: str) -> Condition:
    """The provider still points where the writer read it pointing."""
    return ProviderModel.base_url == base_url


def _check_provider_key(provider_key: str) -> None:
    if not isinstance(provider_key, str) or not re.fullmatch(PROVIDER_KEY_PATTERN, provider_key):
        raise invalid("provider_key", PROVIDER_KEY_RULE, provider_key=str(provider_key)[:100])
    if provider_key in catalog.BUILTIN_KEYS:
        raise Conflict(
            f"Provider key {provider_key!r} belongs to a built-in provider",
            {"field": "provider_key", "provider_key": provider_key},
        )


def _info(item: ProviderModel) -> ProviderInfo:
    models = tuple(
        ModelInfo(m["id"], m.get("input_cost_per_mtok"), m.get("output_cost_per_mtok"))
        for m in item.models or []
    )
    return ProviderInfo(item.provider_key, item.kind, item.base_url, models, builtin=False)


# --- the endpoint rule ----------------------------------------------------------------------


class EndpointRefused(Unprocessable):
    """A `base_url` the service will not call: 422 naming `base_url` and why."""

    def __init__(self, reason: str):
        super().__init__(f"Invalid field 'base_url': {reason}", [{"field": "base_url", "message": reason}])
        self.reason = reason


# Names that are local or a cloud metadata service whatever DNS says about them.
_LOCAL_NAMES = frozenset(
    {"localhost", "metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
)


def check_endpoint(url: str) -> list[str]:
    """Refuse a base_url the service must not call; answer the addresses vetted.

    Always: http(s) only, a host, no credentials (`user:pass@`), no query or fragment (the
    engine appends paths to the URL), printable ASCII only (no IDN or percent tricks that
    decode to another host), no backslash (browsers and WHATWG read it as `/`).

    Unless `ALLOW_PRIVATE_ENDPOINTS=true` (the local stack's setting; then [] is answered): the
    host must not be, nor resolve to, a loopback, private (RFC 1918, fc00::/7, CGNAT),
    link-local (169.254/16 with the 169.254.169.254 metadata service, fe80::/10),
    unspecified, multicast, reserved or otherwise non-global address, including IPv4
    addresses embedded in IPv6 (mapped, 6to4, NAT64, Teredo) and the integer forms of
    IPv4 the resolver accepts (`2130706433`, `0x7f000001`, `0177.1`). Literal addresses are
    checked without DNS; a name is resolved with `socket.getaddrinfo` and refused if ANY of
    its addresses is refused, or if it does not resolve.

    A check at save time is not enough: DNS can answer differently later (rebinding). The
    runner must call `check_endpoint` again right before each request, and ideally connect
    to one of the addresses this returns rather than resolving the name a second time.
    """
    parts = _split(url)
    if config.allow_private_endpoints():
        return []
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [str(address) for address in _vet_host(host, port)]


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise EndpointRefused("must be a non-empty string")
    if len(url) > MAX_URL_CHARS:
        raise EndpointRefused(f"must be at most {MAX_URL_CHARS} characters")
    if not url.isascii() or any(not ch.isprintable() or ch.isspace() for ch in url):
        raise EndpointRefused(
            "must be printable ASCII without spaces (write a host name in its xn-- form)"
        )
    if "\\" in url:
        raise EndpointRefused("must not contain a backslash")
    try:
        parts = urlsplit(url)
    except ValueError as err:  # "Invalid IPv6 URL"
        raise EndpointRefused(f"is not a valid URL ({err})") from None
    if parts.scheme not in ("http", "https"):
        raise EndpointRefused("scheme must be http or https")
    if "@" in parts.netloc:
        raise EndpointRefused("must not contain credentials (user:password@)")
    if "%" in parts.netloc:
        raise EndpointRefused("host must not be percent-encoded")
    if "#" in url:
        raise EndpointRefused("must not have a fragment (#...)")
    if "?" in url:
        raise EndpointRefused("must not have a query string (paths are appended to it)")
    if not parts.hostname:
        raise EndpointRefused("must name a host")
    try:
        port = parts.port
    except ValueError:
        raise EndpointRefused("port must be a number from 1 to 65535") from None
    if port == 0:
        raise EndpointRefused("port must be a number from 1 to 65535")
    return parts


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _vet_host(host: str, port: int) -> list[Address]:
    name = host.rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise EndpointRefused(f"host {host!r} is a local or metadata host name")
    literal = literal_ip(name)
    if literal is not None:
        reason = refusal(literal)
        if reason:
            raise EndpointRefused(f"host {host!r} is {reason}")
        return [literal]
    addresses = _resolve(name, port)
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise EndpointRefused(f"host {host!r} resolves to {address}, {reason}")
    return addresses


def _resolve(name: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise EndpointRefused(f"cannot resolve host {name!r}") from None
    found: list[Address] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise EndpointRefused(f"host {name!r} resolves to an unusable address") from None
        if address not in found:
            found.append(address)
    if not found:
        raise EndpointRefused(f"cannot resolve host {name!r}")
    return found


def literal_ip(host: str) -> Address | None:
    """The address a host names without DNS, in any form the resolver accepts; else None.

    Besides dotted quads and IPv6, glibc's `inet_aton` (which `getaddrinfo` uses) reads
    1-4 dot-separated parts in decimal, octal (leading 0) or hex (0x), the last part filling
    the remaining bytes: `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`. A host whose last
    label is numeric but is no valid address is refused outright (WHATWG does the same).
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise EndpointRefused(f"host {host!r} is not a valid IPv6 address")
    labels = host.split(".")
    if _ipv4_number(labels[-1]) is None:
        return None  # a name
    parsed = [_ipv4_number(label) for label in labels]
    numbers = [n for n in parsed if n is not None]
    if len(numbers) > 4 or len(numbers) < len(parsed):
        raise EndpointRefused(f"host {host!r} is not a valid IPv4 address")
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise EndpointRefused(f"host {host!r} is not a valid IPv4 address")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return ipaddress.IPv4Address(value)


_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _ipv4_number(label: str) -> int | None:
    if _HEX.fullmatch(label):
        return int(label[2:] or "0", 16)
    if _OCTAL.fullmatch(label):
        return int(label, 8)
    if _DECIMAL.fullmatch(label):
        return int(label)
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refusal(address: Address) -> str | None:
    """Why the service must not connect to `address` ("a loopback address"...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded)
            if reason:
                return f"{reason} (IPv4 {embedded} inside IPv6)"
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives there)"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None
