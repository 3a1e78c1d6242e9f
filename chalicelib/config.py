"""Settings, read from the environment each time they are used.

Nothing here runs at import: Lambda containers, `chalice local`, the dev stack and the tests
all set the environment at different moments, and `import app` must stay cheap.
"""
from __future__ import annotations

import os

TABLE_ENV = {
    "users": "USERS_TABLE",
    "provider_keys": "KEYS_TABLE",
    "providers": "PROVIDERS_TABLE",
    "schedules": "SCHEDULES_TABLE",
    "jobs": "JOBS_TABLE",
    "slots": "SLOTS_TABLE",
    "benchmark_runs": "RUNS_TABLE",
    "connections": "CONNECTIONS_TABLE",
    "alerts": "ALERTS_TABLE",
    "alert_events": "ALERT_EVENTS_TABLE",
    "login_failures": "LOGIN_FAILURES_TABLE",
    "ws_tickets": "WS_TICKETS_TABLE",
}


def stage() -> str:
    return os.environ.get("STAGE", "dev")


def table_name(table: str) -> str:
    """The table's name: its env var, else `benchmark-scheduler-<stage>-<table>`."""
    explicit = os.environ.get(TABLE_ENV[table])
    return explicit or f"benchmark-scheduler-{stage()}-{table}"


def int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def float_setting(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def due_shards() -> int:
    return int_setting("DUE_SHARDS", 16)


def default_max_concurrent() -> int:
    return int_setting("DEFAULT_MAX_CONCURRENT", 1)


def runner_function_name() -> str:
    return os.environ.get("RUNNER_FUNCTION_NAME", f"benchmark-scheduler-{stage()}-runner")


def kms_key_id() -> str:
    return os.environ.get("KMS_KEY_ID", "alias/benchmark-scheduler")


def allow_private_endpoints() -> bool:
    return os.environ.get("ALLOW_PRIVATE_ENDPOINTS", "").lower() == "true"


def admin_emails() -> frozenset[str] | None:
    """`ADMIN_EMAILS` (comma-separated, case-insensitive): the users who are admins.
    None when unset or empty: then the first user to register is the admin."""
    raw = os.environ.get("ADMIN_EMAILS", "")
    emails = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    return emails or None
