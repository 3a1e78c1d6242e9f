"""The DynamoDB tables (one PynamoDB model each) and `create_tables()`.

Table names are resolved from the environment each time PynamoDB asks (`Meta.table_name` is
a descriptor), so one process can point at moto, the dev stack or AWS without re-importing.
Which endpoint is used is botocore's business: `AWS_ENDPOINT_URL[_DYNAMODB]`, region and
credentials come from the standard AWS environment.
"""
from __future__ import annotations

import json
import threading
from typing import Any, cast

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection, TableConnection
from pynamodb.exceptions import TableError
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
)
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import config


class _TableName:
    """`Meta.table_name` that reads its env var when PynamoDB reads it."""

    def __init__(self, table: str):
        self.table = table

    def __get__(self, instance: object, owner: type) -> str:
        return config.table_name(self.table)


class _Meta:
    """What every table's `Meta` shares; each adds its `table_name`."""

    billing_mode = "PAY_PER_REQUEST"
    max_pool_connections = 64  # the tick claims and the notifier posts from thread pools


def _strings(**options: Any) -> ListAttribute[str]:
    """A list of strings. (PynamoDB types `of=` as the element's attribute class, so a
    `ListAttribute(of=UnicodeAttribute)` would read as a list of attributes.)"""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **options))


def _numbers(**options: Any) -> ListAttribute[float]:
    return cast("ListAttribute[float]", ListAttribute(of=NumberAttribute, **options))


class CompactJSONAttribute(JSONAttribute):
    """JSON stored as UTF-8 without ASCII escapes or spaces. Against DynamoDB's 400 KB item
    limit a non-ASCII character then costs its 2–4 bytes, not a 6-byte `\\uXXXX`. A lone
    surrogate (JSON text may carry one) has no UTF-8 form and stays escaped, which JSON
    reads back as the same string. Reads accept both forms."""

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Table(Model):
    """Every model of the app talks through ONE PynamoDB Connection (one botocore client).

    PynamoDB gives each model its own Connection, and each its own botocore session and
    client: ~100 ms apiece here, paid on every cold start for every table a function
    touches (the runner touches seven). Sharing one also shares its pool of connections.
    """

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        shared = _shared_connection()
        if table.connection is not shared:
            try:
                shared.get_meta_table(table.table_name)
            except TableError:  # the first model of this table (two share `jobs`)
                shared.add_meta_table(table.connection.get_meta_table(table.table_name))
            table.connection = shared
        return table


# --- users -------------------------------------------------------------------------------


class UsersByEmail(GlobalSecondaryIndex):
    class Meta:
        index_name = "email"
        projection = AllProjection()

    email = UnicodeAttribute(hash_key=True)


class UserModel(_Table):
    """A user, or a claim item (`user_id` = `email#<email>` / `admin#`) that makes a value
    unique: DynamoDB has no unique secondary keys, a conditional put of a claim does."""

    class Meta(_Meta):
        table_name = _TableName("users")

    user_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(null=True)  # set on real users only: the GSI stays sparse
    password_hash = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    owner_user_id = UnicodeAttribute(null=True)  # on claim items: whose claim it is
    by_email = UsersByEmail()
    # Tokens carry the version they were issued under (absent: 0); a logout adds one, so
    # every token issued before it stops working.
    token_version = NumberAttribute(null=True)
    # What the user has created, counted in the same transaction as each create and delete
    # (`chalicelib.quotas`), so a cap is a condition, not a count read before the write.
    schedule_count = NumberAttribute(null=True)
    provider_count = NumberAttribute(null=True)
    alert_rule_count = NumberAttribute(null=True)


# --- provider keys and user-defined providers ---------------------------------------------


class ProviderKeyModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("provider_keys")

    user_id = UnicodeAttribute(hash_key=True)
    provider_key = UnicodeAttribute(range_key=True)
    ciphertext = BinaryAttribute(legacy_encoding=False)
    last4 = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class ProviderModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("providers")

    user_id = UnicodeAttribute(hash_key=True)
    provider_key = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    base_url = UnicodeAttribute()
    models = JSONAttribute()  # [{id, input_cost_per_mtok?, output_cost_per_mtok?}]
    updated_at = UnicodeAttribute()


# --- schedules -----------------------------------------------------------------------------


class DueIndex(GlobalSecondaryIndex):
    """Sparse: only enabled schedules carry `due_shard`, so the tick reads due ones only.

    It projects `interval_hours`: with the keys, all the tick needs to claim a due schedule."""

    class Meta:
        index_name = "due"
        projection = IncludeProjection(["interval_hours"])

    due_shard = NumberAttribute(hash_key=True)
    next_run = UnicodeAttribute(range_key=True)


class ScheduleModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("schedules")

    user_id = UnicodeAttribute(hash_key=True)
    schedule_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    prompt = UnicodeAttribute()
    models = _strings()
    max_tokens = NumberAttribute()
    temperature = NumberAttribute()
    interval_hours = NumberAttribute()
    enabled = BooleanAttribute()
    last_run = UnicodeAttribute(null=True)
    last_result = CompactJSONAttribute(null=True)  # schedules.last_result: the last run at a glance
    next_run = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    due_shard = NumberAttribute(null=True)
    due = DueIndex()


# --- jobs and slots ------------------------------------------------------------------------


# The job fields a client sees (`jobs.to_public`), besides the keys every index carries
# (`job_id`, and `user_id`/`live_user` + `created_at`). The `user` and `live` indexes project
# these and nothing else: a job's `params` (a benchmark's prompt: up to 50,000 characters)
# would make every list read, and every write of a job, cost its size again per index.
PUBLIC_JOB_FIELDS = [
    "job_type",
    "status",
    "progress_pct",
    "progress_detail",
    "schedule_id",
    "result_ref",
    "error_msg",
    "started_at",
    "completed_at",
]


class JobsByUser(GlobalSecondaryIndex):
    class Meta:
        index_name = "user"
        projection = IncludeProjection(PUBLIC_JOB_FIELDS)

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class QueuedJobs(GlobalSecondaryIndex):
    """Sparse: `queued_user` is set only while a job is queued (FIFO per user)."""

    class Meta:
        index_name = "queued"
        projection = KeysOnlyProjection()

    queued_user = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class LiveJobs(GlobalSecondaryIndex):
    """Sparse: `live_user` is set only while a job is pending, queued or running, so a
    client's `sync` reads the user's live jobs without filtering their whole history."""

    class Meta:
        index_name = "live"
        projection = IncludeProjection(PUBLIC_JOB_FIELDS)

    live_user = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ActiveJobs(GlobalSecondaryIndex):
    """Sparse: `active_shard` is set only while a job holds a lease the tick must watch.

    It projects what the reaper decides on (status, owner, timeout), so the tick reads no
    job item to triage thousands of overdue ones; every change it then makes is conditioned
    on the item itself."""

    class Meta:
        index_name = "active"
        projection = IncludeProjection(["status", "user_id", "timeout_at"])

    active_shard = NumberAttribute(hash_key=True)
    lease_until = UnicodeAttribute(range_key=True)


class JobModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("jobs")

    job_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    job_type = UnicodeAttribute()
    status = UnicodeAttribute()
    params = JSONAttribute(null=True)
    progress_pct = NumberAttribute(default=0)
    progress_detail = UnicodeAttribute(null=True)
    schedule_id = UnicodeAttribute(null=True)
    result_ref = UnicodeAttribute(null=True)
    error_msg = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    completed_at = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)
    timeout_at = UnicodeAttribute(null=True)
    cancel_requested = BooleanAttribute(null=True)
    queued_user = UnicodeAttribute(null=True)
    live_user = UnicodeAttribute(null=True)
    active_shard = NumberAttribute(null=True)
    # Counted in the slot's `waiting` while pending/queued (jobs submitted through the API).
    counts_waiting = BooleanAttribute(null=True)
    # Set when the job ends: DynamoDB deletes finished jobs after JOB_TTL_DAYS.
    expires_at = TTLAttribute(null=True)
    by_user = JobsByUser()
    queued = QueuedJobs()
    live = LiveJobs()
    active = ActiveJobs()


class CancelSignalModel(_Table):
    """A running job's cancel request as a small item of its own in the jobs table
    (`job_id` = `cancel#<job id>`), which the runner polls every few seconds.

    Polling the job item instead would cost its size per read (a benchmark's prompt is up
    to 50,000 characters). `cancel#` never starts a job id (hex), and the item carries none
    of the indexes' keys, so no index and no job read ever sees it; `expires_at` (the
    table's TTL attribute) removes it."""

    class Meta(_Meta):
        table_name = _TableName("jobs")

    job_id = UnicodeAttribute(hash_key=True)
    expires_at = TTLAttribute(null=True)


class SlotModel(_Table):
    """Per-user concurrency: `active` running jobs out of `limit` (absent: the default),
    and `waiting`: the user's pending/queued jobs submitted through the API (capped)."""

    class Meta(_Meta):
        table_name = _TableName("slots")

    user_id = UnicodeAttribute(hash_key=True)
    active = NumberAttribute(default=0)
    limit = NumberAttribute(null=True)
    queued = NumberAttribute(null=True)  # jobs in status queued: lets finish skip a query
    waiting = NumberAttribute(null=True)


# --- history -------------------------------------------------------------------------------


class RunsBySchedule(GlobalSecondaryIndex):
    """Sparse: only scheduled runs carry `schedule_key` = `<user_id>#<schedule_id>`, so one
    schedule's runs in a time range are one Query. The user id in the key means a query can
    only ever reach the caller's own runs, whatever schedule id a client sends."""

    class Meta:
        index_name = "schedule"
        projection = AllProjection()

    schedule_key = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)


class RunModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("benchmark_runs")

    user_id = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)  # created_at + suffix: sorts by time
    created_at = UnicodeAttribute()
    source = UnicodeAttribute()  # "schedule" | "manual"
    prompt = UnicodeAttribute()
    context_tiers = _numbers()
    max_tokens = NumberAttribute()
    temperature = NumberAttribute()
    results = CompactJSONAttribute()
    metadata = CompactJSONAttribute()
    # Written with the run so readers filter and index without parsing `results`.
    status = UnicodeAttribute(null=True)  # "ok" | "partial" | "failed"
    schedule_id = UnicodeAttribute(null=True)
    schedule_key = UnicodeAttribute(null=True)
    models = _strings(null=True)  # the model names of `results`, for `contains` filters
    summary = CompactJSONAttribute(null=True)  # {model: {n, successes, p50/p90s, cost_total, cost_known}}
    by_schedule = RunsBySchedule()


# --- WebSocket connections -----------------------------------------------------------------


class ConnectionsByUser(GlobalSecondaryIndex):
    class Meta:
        index_name = "user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)


class ConnectionModel(_Table):
    class Meta(_Meta):
        table_name = _TableName("connections")

    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    endpoint = UnicodeAttribute(null=True)
    connected_at = UnicodeAttribute(null=True)
    # On a per-user counter item. (Not `count`: that would hide PynamoDB's `Model.count`.)
    open_count = NumberAttribute(null=True, attr_name="count")
    ttl = TTLAttribute(null=True)
    by_user = ConnectionsByUser()


# --- alerts --------------------------------------------------------------------------------


class AlertModel(_Table):
    """A user's alert rule (counted on the user item: `quotas.ALERT_RULES`).

    `state` maps each model the rule has judged to "ok" or "firing"; a change is a
    conditional update on the state seen, so a transition happens once."""

    class Meta(_Meta):
        table_name = _TableName("alerts")

    user_id = UnicodeAttribute(hash_key=True)
    alert_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    schedule_id = UnicodeAttribute(null=True)  # None: every schedule of the user
    model = UnicodeAttribute()  # "*" or a model name
    condition = JSONAttribute()
    webhook_url = UnicodeAttribute(null=True)
    webhook_format = UnicodeAttribute()
    enabled = BooleanAttribute()
    secret = BinaryAttribute(null=True, legacy_encoding=False)  # KMS ciphertext
    state = MapAttribute[str, str](default=dict)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    last_test_at = UnicodeAttribute(null=True)




class AlertEventsByAlert(GlobalSecondaryIndex):
    """One rule's events, newest first (`event_key` starts with the run id, which sorts by time)."""

    class Meta:
        index_name = "alert"
        projection = AllProjection()

    alert_id = UnicodeAttribute(hash_key=True)
    event_key = UnicodeAttribute(range_key=True)


class AlertEventModel(_Table):
    """One notification: a rule started firing or resolved for a model, on a run.

    `event_key` = `<run id>#<event id>` with the event id a hash of rule, model and run:
    the same transition evaluated twice has the same key, and its put is conditional."""

    class Meta(_Meta):
        table_name = _TableName("alert_events")

    user_id = UnicodeAttribute(hash_key=True)
    event_key = UnicodeAttribute(range_key=True)
    alert_id = UnicodeAttribute()
    event = JSONAttribute()  # the payload sent (see chalicelib/alert_delivery.py)
    delivery = UnicodeAttribute()  # pending | delivered | failed: <reason> | websocket_only
    expires_at = TTLAttribute(null=True)
    by_alert = AlertEventsByAlert()


# --- login throttling ----------------------------------------------------------------------


class LoginFailuresModel(_Table):
    """Failed logins of one account or one source (`chalicelib.throttle`), kept until quiet."""

    class Meta(_Meta):
        table_name = _TableName("login_failures")

    throttle_key = UnicodeAttribute(hash_key=True)  # a#<hash of the email> | s#<hash of the IP>
    failures = NumberAttribute(default=0)
    window_until = UnicodeAttribute(null=True)  # failures count until this moment
    locked_until = UnicodeAttribute(null=True)  # refused, right password or not, until then
    ttl = TTLAttribute(null=True)


# --- WebSocket tickets ---------------------------------------------------------------------


class TicketModel(_Table):
    """A one-time WebSocket ticket (`chalicelib.tickets`), or a user's count of tickets
    issued in one minute (`ticket_hash` = `rate#<user>#<minute>`, with `issued`)."""

    class Meta(_Meta):
        table_name = _TableName("ws_tickets")

    ticket_hash = UnicodeAttribute(hash_key=True)  # sha256 of the ticket: never the ticket
    user_id = UnicodeAttribute(null=True)
    token_version = NumberAttribute(null=True)  # of the token that asked for it
    token_expires_at = UnicodeAttribute(null=True)  # the connection ends with that token
    expires_at = UnicodeAttribute(null=True)
    issued = NumberAttribute(null=True)  # on a rate item
    ttl = TTLAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    UserModel,
    ProviderKeyModel,
    ProviderModel,
    ScheduleModel,
    JobModel,
    SlotModel,
    RunModel,
    ConnectionModel,
    AlertModel,
    AlertEventModel,
    LoginFailuresModel,
    TicketModel,
)

TTL_ATTRIBUTES: dict[type[Model], str] = {
    ConnectionModel: "ttl",
    JobModel: "expires_at",
    AlertEventModel: "expires_at",
    LoginFailuresModel: "ttl",
    TicketModel: "ttl",
}


def create_tables() -> list[str]:
    """Create every missing table (idempotent, safe to race); returns the names created."""
    created = []
    for model in ALL_MODELS:
        if model.exists():
            continue
        try:
            model.create_table(wait=True)
        except TableError as err:
            if "ResourceInUseException" not in str(err.cause or err):
                raise
            continue
        if model in TTL_ATTRIBUTES:
            model.update_ttl(ignore_update_ttl_errors=True)
        created.append(model.Meta.table_name)
    return created


def transact_write() -> TransactWrite:
    """A TransactWrite on a shared connection (a new botocore client per call costs ~20 ms)."""
    return TransactWrite(connection=_shared_connection())


_connection: Connection | None = None
_connection_lock = threading.Lock()


def _shared_connection() -> Connection:
    global _connection
    with _connection_lock:
        if _connection is None:
            _connection = Connection(max_pool_connections=64)
        return _connection
