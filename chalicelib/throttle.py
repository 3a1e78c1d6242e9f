"""Failed-login throttling: per account and per source, stored in DynamoDB.

Each counted thing (an account, by its email; a source, by its IP) has an item in the
`login_failures` table: `failures` within a window that each failure extends
(`LOGIN_FAILURE_WINDOW_S`, default 1 h of quiet resets the count), and `locked_until`.
From the `max_failures`-th failure on, each failure locks the key for
`LOGIN_LOCKOUT_BASE_S · 2^(failures − max_failures)` seconds, at most `LOGIN_LOCKOUT_MAX_S`.
While a key is locked every login that names it is refused with 429 and `Retry-After`
before the password is looked at, so the right password does not get through either, and
refused attempts do not count (they verified nothing).

Every change is a conditional write (no read-then-write): a failure inside the window is
`ADD failures 1 IF window open`, the first one after it `SET failures = 1 IF window over`,
and a lock only ever extends (`SET locked_until IF later than the current one`), so
concurrent failures count each once and the longest lock wins. Items carry a TTL so the
table empties itself.

Keys hold a hash of the email or address, never the value: the table is a log of attempts,
not of who tried.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib import clock, config, writes
from chalicelib.errors import TooManyRequests
from chalicelib.tables import LoginFailuresModel

_ATTEMPTS = 4  # a count that keeps losing its condition race gives up (the failure is lost)


@dataclass(frozen=True)
class Policy:
    """How many failures a key may have before each further one locks it."""

    max_failures: int

    def lock_for(self, failures: int) -> timedelta | None:
        if failures < self.max_failures:
            return None
        base = config.float_setting("LOGIN_LOCKOUT_BASE_S", 1.0)
        longest = config.float_setting("LOGIN_LOCKOUT_MAX_S", 900.0)
        exponent = min(failures - self.max_failures, 62)
        return timedelta(seconds=min(base * 2**exponent, longest))


def account_policy() -> Policy:
    return Policy(config.int_setting("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5))


def source_policy() -> Policy:
    return Policy(config.int_setting("LOGIN_MAX_FAILURES_PER_SOURCE", 20))


def account_key(email: str) -> str:
    return "a#" + _digest(email)


def source_key(address: str) -> str:
    return "s#" + _digest(address)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def check(keys: list[str]) -> set[str]:
    """Raise `TooManyRequests` (with `Retry-After`) while any of `keys` is locked; else
    answer the keys that have failures on record (one consistent BatchGetItem)."""
    now = clock.now()
    found = list(LoginFailuresModel.batch_get(keys, consistent_read=True))
    locks = [clock.parse(item.locked_until) for item in found if item.locked_until]
    latest = max(locks, default=None)
    if latest is not None and latest > now:
        wait = max(1, math.ceil((latest - now).total_seconds()))
        raise TooManyRequests(
            f"Too many failed logins: try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    return {item.throttle_key for item in found}


def failed(key: str, policy: Policy) -> None:
    """Count one failure of `key`; from `policy.max_failures` on, lock it."""
    now = clock.now()
    count = _count(key, now)
    if count is None:
        return
    duration = policy.lock_for(count)
    if duration is not None:
        until = now + duration
        writes.update_if(
            LoginFailuresModel(key),
            [LoginFailuresModel.locked_until.set(clock.iso(until)), _expiry(now)],
            _lock_extends(until),
        )


def clear(key: str) -> None:
    """Forget `key`'s failures (the account's right password, once not locked)."""
    LoginFailuresModel(key).delete()


def _count(key: str, now: datetime) -> int | None:
    """The key's failures within the window, this one included."""
    window_until = now + timedelta(seconds=config.float_setting("LOGIN_FAILURE_WINDOW_S", 3600.0))
    window = [LoginFailuresModel.window_until.set(clock.iso(window_until)), _expiry(now)]
    item = LoginFailuresModel(key)
    for _ in range(_ATTEMPTS):
        if writes.update_if(item, [LoginFailuresModel.failures.add(1), *window], _window_open(now)):
            return int(item.failures)
        if writes.update_if(item, [LoginFailuresModel.failures.set(1), *window], _window_over(now)):
            return 1
    return None


# The rules of the counter, each stated once.


def _window_open(now: datetime) -> Condition:
    return LoginFailuresModel.window_until > clock.iso(now)


def _window_over(now: datetime) -> Condition:
    return LoginFailuresModel.window_until.does_not_exist() | (LoginFailuresModel.window_until <= clock.iso(now))


def _lock_extends(until: datetime) -> Condition:
    return LoginFailuresModel.locked_until.does_not_exist() | (LoginFailuresModel.locked_until < clock.iso(until))


def _expiry(now: datetime) -> Action:
    """DynamoDB may delete the item once neither its window nor its lock can matter."""
    longest = config.float_setting("LOGIN_FAILURE_WINDOW_S", 3600.0) + config.float_setting(
        "LOGIN_LOCKOUT_MAX_S", 900.0
    )
    return LoginFailuresModel.ttl.set(now + timedelta(seconds=longest, hours=1))
