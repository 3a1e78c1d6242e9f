"""Users, passwords and JWTs.

Email uniqueness and "the first user is admin" are claims: items in the users table put with
`attribute_not_exists` in the same transaction as the user, so two concurrent registrations
cannot both win (DynamoDB has no unique secondary keys; a conditional put is the rule).

Tokens are HS256 JWTs with the user's token version (`ver`): `logout` adds one to the
version stored on the user item, which `user_of` reads on every request anyway, so every
token issued before the logout is refused from then on.

Who is admin: the emails of `ADMIN_EMAILS` (a user registering or logging in with one is
admin); only where that setting is empty (the local stack) the first user to register.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pynamodb.exceptions import DoesNotExist

from chalicelib import clock, config, throttle, writes
from chalicelib.errors import Conflict, Forbidden, NotFound, Unauthorized
from chalicelib.tables import UserModel

TOKEN_TTL = timedelta(hours=24)
JWT_ALGORITHM = "HS256"

# scrypt, N=2^14, r=8, p=1: memory-hard (16 MiB), ~50 ms here; parameters stored with the hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1

# The claim items' keys. User ids are uuid4 hex, so they never collide with these.
_EMAIL_CLAIM = "email#{}"
_ADMIN_CLAIM = "admin#"

# The claim's condition: the rule that makes each claim unique, stated once.
_UNCLAIMED = UserModel.user_id.does_not_exist()
# An update of a user applies to a user item only (never creating one, never a claim item).
_A_USER = UserModel.email.exists()


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Credentials(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    email: str = Field(max_length=254)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("email")
    @classmethod
    def _normalized_email(cls, value: str) -> str:
        value = value.strip().lower()
        if not _EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value


class Registration(Credentials):
    """New passwords only: login still accepts whatever was accepted when it was set."""

    password: str = Field(min_length=8, max_length=1024)

    @field_validator("password")
    @classmethod
    def _plausible_password(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be only whitespace")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            # Tabs, newlines, NUL, DEL and the C1 controls: invisible when typed, mangled by
            # terminals and forms, and never part of a password anyone can type again.
            raise ValueError("must not contain control characters")
        return value


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: str
    token_version: int = 0

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "role": self.role}


# --- passwords -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "scrypt${}${}${}${}${}".format(
        _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _b64(salt), _b64(digest)
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(actual, _unb64(digest))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# A hash to verify against when the email is unknown, so that a login's timing does not
# tell which emails are registered.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + _b64(b"\0" * 32)


# --- registration and login ------------------------------------------------------------


def register(email: str, password: str) -> tuple[User, str]:
    """Create the user and return it with a fresh access token.

    Admin when `ADMIN_EMAILS` names the email or, where it is empty, when first."""
    user_id = uuid.uuid4().hex
    password_hash = hash_password(password)
    named = config.admin_emails()
    if named is not None:
        role = "admin" if email in named else "user"
        put = _put_user(user_id, email, password_hash, role=role)
    # Most registrations are not the first: skip the admin attempt once the claim exists.
    elif not _claim_exists(_ADMIN_CLAIM) and _put_user(
        user_id, email, password_hash, role="admin", first_admin=True
    ):
        role, put = "admin", True
    else:
        role, put = "user", _put_user(user_id, email, password_hash, role="user")
    if not put:
        raise Conflict("Email already registered", {"field": "email"})
    user = User(user_id, email, role)
    return user, issue_token(user)


def _put_user(
    user_id: str, email: str, password_hash: str, role: str, *, first_admin: bool = False
) -> bool:
    """One transaction: the user, its email claim and (for the first admin) the admin claim.

    Returns False when the email is taken or, for the first admin, when someone else was.
    """
    now = clock.now_iso()
    user = UserModel(
        user_id, email=email, password_hash=password_hash, role=role, created_at=now
    )
    email_claim = UserModel(_EMAIL_CLAIM.format(email), owner_user_id=user_id, created_at=now)
    tx = writes.Tx().put("user", user, _UNCLAIMED).put("email", email_claim, _UNCLAIMED)
    if first_admin:
        tx.put("admin", UserModel(_ADMIN_CLAIM, owner_user_id=user_id), _UNCLAIMED)
    failed = tx.commit()
    if "email" in failed:
        raise Conflict("Email already registered", {"field": "email"})
    return not failed


def _claim_exists(key: str) -> bool:
    try:
        UserModel.get(key, consistent_read=True, attributes_to_get=["user_id"])
    except DoesNotExist:
        return False
    return True


def login(email: str, password: str, source_ip: str | None = None) -> str:
    """A fresh token, or 401 without saying whether the email or the password was wrong.

    Throttled (`throttle`): per account and per source address, an unknown email exactly
    like a known one; 429 while either is locked, whatever the password."""
    account = throttle.account_key(email)
    source = throttle.source_key(source_ip) if source_ip else None
    on_record = throttle.check([account] + ([source] if source else []))
    user = _user_by_email(email)
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    if not verify_password(password, stored) or user is None:
        throttle.failed(account, throttle.account_policy())
        if source:
            throttle.failed(source, throttle.source_policy())
        raise Unauthorized("Invalid email or password")
    if account in on_record:
        throttle.clear(account)
    role = user.role or "user"
    named = config.admin_emails()
    if named is not None and email in named and role != "admin":
        _promote(user.user_id)
        role = "admin"
    return issue_token(_user(user, role=role))


def _promote(user_id: str) -> None:
    """Make the user admin (their email was named in `ADMIN_EMAILS` after they registered)."""
    writes.update_if(UserModel(user_id), [UserModel.role.set("admin")], _A_USER)


def _user_by_email(email: str) -> UserModel | None:
    """Read through the email claim (strongly consistent), not the eventually consistent GSI,
    so a user can log in the moment registration answered."""
    try:
        claim = UserModel.get(_EMAIL_CLAIM.format(email), consistent_read=True)
        return UserModel.get(claim.owner_user_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_user(user_id: str) -> User:
    try:
        item = UserModel.get(user_id)
    except DoesNotExist:
        raise NotFound("User not found", {"user_id": user_id}) from None
    if item.email is None:  # a claim item, not a user
        raise NotFound("User not found", {"user_id": user_id})
    return _user(item)


def _user(item: UserModel, *, role: str | None = None) -> User:
    return User(
        item.user_id, item.email or "", role or item.role or "user", int(item.token_version or 0)
    )


def logout(user_id: str) -> None:
    """Revoke every token of the user issued until now (their next request is a 401)."""
    writes.update_if(UserModel(user_id), [UserModel.token_version.add(1)], _A_USER)


def require_admin(user_id: str) -> None:
    """Check the role in the table, not the token: a demoted admin's token must not work."""
    try:
        role = get_user(user_id).role
    except NotFound:
        role = None
    if role != "admin":
        raise Forbidden("Admin role required")


# --- tokens ----------------------------------------------------------------------------


def issue_token(user: User) -> str:
    import jwt

    now = clock.now()
    claims = {
        "sub": user.id,
        "role": user.role,
        "ver": user.token_version,
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_TTL).timestamp()),
    }
    return jwt.encode(claims, jwt_secret(), algorithm=JWT_ALGORITHM)


def verify_token(token: str) -> dict[str, Any]:
    """The token's claims, or `Unauthorized` for any token we did not sign or that expired.

    Only HS256 is accepted: `alg: none` and algorithm-confusion tokens are refused by PyJWT.
    """
    import jwt

    try:
        claims = jwt.decode(
            token,
            jwt_secret(),
            algorithms=[JWT_ALGORITHM],
            # Expiry is checked below against the app's (injectable) clock.
            options={"require": ["exp", "iat", "sub"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        raise Unauthorized("Invalid or expired token") from None
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not subject or not isinstance(expires, int):
        raise Unauthorized("Invalid or expired token")
    if expires <= clock.now().timestamp():
        raise Unauthorized("Invalid or expired token")
    return claims


def expiry_of(claims: dict[str, Any]) -> datetime:
    """When a verified token expires."""
    return datetime.fromtimestamp(claims["exp"], tz=timezone.utc)


def user_of(claims: dict[str, Any]) -> User:
    """The user a verified token names; `Unauthorized` when they no longer exist or the
    token was issued before their last logout (its `ver` is not theirs; absent: 0)."""
    try:
        item = UserModel.get(claims["sub"], consistent_read=True)
    except DoesNotExist:
        raise Unauthorized("Invalid or expired token") from None
    if item.email is None:  # a claim item's key can never be a token's subject
        raise Unauthorized("Invalid or expired token")
    user = _user(item)
    version = claims.get("ver", 0)
    if type(version) is not int or version != user.token_version:
        raise Unauthorized("Invalid or expired token")
    return user


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        raise Unauthorized("Missing bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token")
    return token.strip()


_secret_cache: dict[str, str] = {}


def jwt_secret() -> str:
    """`JWT_SECRET`, or the Secrets Manager secret named by `JWT_SECRET_ARN`, fetched once
    per container (a Lambda container serves many requests; the secret does not change)."""
    explicit = os.environ.get("JWT_SECRET")
    if explicit:
        return explicit
    arn = os.environ.get("JWT_SECRET_ARN")
    if not arn:
        raise RuntimeError("JWT_SECRET or JWT_SECRET_ARN must be set")
    if arn not in _secret_cache:
        import boto3

        value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        _secret_cache[arn] = value
    return _secret_cache[arn]
