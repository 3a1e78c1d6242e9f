"""Alert rules: validation, CRUD, the webhook secret, and a test delivery on demand.

A rule watches one model (or every model, `"*"`) of one of the user's schedules (or of
all of them) for a condition (`alert_rules`); `alert_eval` judges it after each
scheduled run. At most `ALERT_MAX_RULES` (100) rules per user, kept by a counter item
updated in the same transaction as the rule's put or delete (never counted by a query,
which two concurrent creates would both pass).

Each rule has a webhook signing secret, made here, shown once in the create answer and
stored only as KMS ciphertext under the encryption context `{user_id, alert_id}`: copied
onto another rule or user it does not decrypt.
"""
from __future__ import annotations

import dataclasses
import re
import secrets
import time
import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, StringConstraints
from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist

from chalicelib import alert_delivery, catalog, clock, config, keys, quotas, schedules, user_providers, webhooks, writes
from chalicelib.alert_rules import Condition, from_stored
from chalicelib.catalog import ProviderInfo
from chalicelib.errors import ApiError, NotFound, TooManyRequests, Unprocessable, invalid
from chalicelib.tables import AlertModel

ANY_MODEL = "*"
SECRET_PREFIX = "whsec_"
_ALERT_ID = re.compile(r"[0-9a-f]{32}")  # what `create` makes; anything else is unknown

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
ScheduleId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=user_providers.MAX_URL_CHARS)]
WebhookFormat = Literal["json", "slack"]


def test_cooldown_s() -> int:
    return config.int_setting("ALERT_TEST_COOLDOWN_S", 10)


class AlertCreate(BaseModel):
    """`POST /api/alerts`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name
    schedule_id: ScheduleId | None = None  # None: every schedule of the user
    model: ModelName = ANY_MODEL
    condition: Condition
    webhook_url: WebhookUrl | None = None
    webhook_format: WebhookFormat = "json"
    enabled: bool = True


class AlertUpdate(BaseModel):
    """`PUT /api/alerts/{id}`: any subset. `schedule_id` and `webhook_url` may be set to
    null (every schedule; no webhook); any other null is refused like a wrong type."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name = None  # type: ignore[assignment]
    schedule_id: ScheduleId | None = None
    model: ModelName = None  # type: ignore[assignment]
    condition: Condition = None  # type: ignore[assignment]
    webhook_url: WebhookUrl | None = None
    webhook_format: WebhookFormat = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]


class AlertsQuery(BaseModel):
    """`GET /api/alerts?schedule_id=`: the rules of that schedule only (rules for every
    schedule have `schedule_id: null` and are listed without the parameter)."""

    model_config = ConfigDict(extra="forbid")

    schedule_id: ScheduleId | None = None


# --- CRUD -----------------------------------------------------------------------------------


def create(user_id: str, body: AlertCreate) -> tuple[dict[str, Any], str]:
    """The new rule's public view and its webhook secret (the only time it is shown)."""
    _check_target(user_id, body.schedule_id, body.model)
    if body.webhook_url is not None:
        _check_webhook(body.webhook_url)
    alert_id = uuid.uuid4().hex
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = clock.now_iso()
    item = AlertModel(
        user_id,
        alert_id,
        name=body.name,
        schedule_id=body.schedule_id,
        model=body.model,
        condition=body.condition.stored(),
        webhook_url=body.webhook_url,
        webhook_format=body.webhook_format,
        enabled=body.enabled,
        secret=keys.seal(secret, _secret_context(user_id, alert_id)),
        state={},
        created_at=now,
        updated_at=now,
    )
    tx = writes.Tx().put("rule", item, AlertModel.alert_id.does_not_exist())
    if quotas.ALERT_RULES.take(tx, user_id).commit():
        raise quotas.ALERT_RULES.exceeded()
    return to_public(item), secret


def rules_of(user_id: str) -> list[AlertModel]:
    """Every rule of the user, newest first (consistent: a rule saved just now counts)."""
    items = AlertModel.query(user_id, consistent_read=True)
    return sorted(items, key=lambda item: item.created_at, reverse=True)


def list_for(user_id: str, query: AlertsQuery) -> list[dict[str, Any]]:
    rules = rules_of(user_id)
    if query.schedule_id is not None:
        rules = [rule for rule in rules if rule.schedule_id == query.schedule_id]
    return [to_public(rule) for rule in rules]


def get(user_id: str, alert_id: str) -> AlertModel:
    """The caller's rule; another user's id is exactly as unknown as a missing one."""
    if not _ALERT_ID.fullmatch(alert_id):
        raise _not_found(alert_id)
    try:
        return AlertModel.get(user_id, alert_id, consistent_read=True)
    except DoesNotExist:
        raise _not_found(alert_id) from None


def update(user_id: str, alert_id: str, body: AlertUpdate) -> dict[str, Any]:
    """Change any subset. A new target or condition starts the rule over: its state is
    cleared, so the next run judges it afresh (and notifies if it fires then)."""
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise invalid("body", "nothing to update: send at least one field")
    if "schedule_id" in changes or "model" in changes:
        current = get(user_id, alert_id)
        _check_target(
            user_id,
            changes.get("schedule_id", current.schedule_id),
            changes.get("model", current.model),
        )
    if changes.get("webhook_url") is not None:
        _check_webhook(changes["webhook_url"])
    if "condition" in changes:
        changes["condition"] = body.condition.stored()
    actions = [
        getattr(AlertModel, name).remove() if value is None else getattr(AlertModel, name).set(value)
        for name, value in changes.items()
    ]
    if {"schedule_id", "model", "condition"} & set(changes):
        actions.append(AlertModel.state.set({}))
    actions.append(AlertModel.updated_at.set(clock.now_iso()))
    item = AlertModel(user_id, alert_id)
    if not _ALERT_ID.fullmatch(alert_id) or not writes.update_if(item, actions, _EXISTS):
        raise _not_found(alert_id)
    return to_public(item)


def delete(user_id: str, alert_id: str) -> None:
    """Delete the rule and count it out, in one transaction. Its past events stay in the
    history until they expire."""
    if not _ALERT_ID.fullmatch(alert_id):
        raise _not_found(alert_id)
    tx = writes.Tx().delete("rule", AlertModel(user_id, alert_id), _EXISTS)
    if quotas.ALERT_RULES.give_back(tx, user_id).commit():
        raise _not_found(alert_id)


def forget_schedule(user_id: str, schedule_id: str) -> int:
    """Delete the rules that watch a deleted schedule (they could never fire again, and
    would still count toward the user's limit); how many were deleted."""
    gone = 0
    for rule in rules_of(user_id):
        if rule.schedule_id != schedule_id:
            continue
        try:
            delete(user_id, rule.alert_id)
            gone += 1
        except NotFound:
            pass  # deleted meanwhile: by the user, or a concurrent delete of the schedule
    return gone


def to_public(item: AlertModel) -> dict[str, Any]:
    state = item.state.as_dict() if isinstance(item.state, MapAttribute) else dict(item.state or {})
    return {
        "id": item.alert_id,
        "name": item.name,
        "schedule_id": item.schedule_id,
        "model": item.model,
        "condition": item.condition,
        "webhook_url": item.webhook_url,
        "webhook_format": item.webhook_format,
        "enabled": bool(item.enabled),
        "state": dict(sorted(state.items())),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


# --- the webhook ------------------------------------------------------------------------------


def webhook_of(item: AlertModel) -> alert_delivery.Webhook | None:
    """Where the rule's events go besides the WebSocket, with the secret they are signed
    with (decrypted here, for the delivery only); None without a webhook."""
    if not item.webhook_url:
        return None
    assert item.secret is not None
    secret = keys.unseal(
        item.secret, _secret_context(item.user_id, item.alert_id), f"Webhook secret of alert {item.alert_id}"
    )
    return alert_delivery.Webhook(item.webhook_url, item.webhook_format, secret)


def send_test(user_id: str, alert_id: str) -> alert_delivery.Delivery:
    """Send an `alert_test` event now, one attempt (the caller waits for it), and answer
    how it went. At most one per rule every `ALERT_TEST_COOLDOWN_S` (10): the API must not
    be a way to make the service hammer a URL."""
    item = get(user_id, alert_id)
    now = clock.now()
    if not writes.update_if(
        AlertModel(user_id, alert_id),
        [AlertModel.last_test_at.set(clock.iso(now))],
        _EXISTS & (AlertModel.last_test_at.does_not_exist()
                   | (AlertModel.last_test_at <= clock.iso(now - timedelta(seconds=test_cooldown_s())))),
    ):
        raise TooManyRequests(
            f"A test was sent less than {test_cooldown_s()} s ago (ALERT_TEST_COOLDOWN_S)",
            {"limit": {"cooldown_s": test_cooldown_s()}},
            headers={"Retry-After": str(test_cooldown_s())},
        )
    condition = from_stored(item.condition)
    event = {
        "type": alert_delivery.TEST,
        "event_id": uuid.uuid4().hex,
        "occurred_at": clock.iso(now),
        "alert_id": item.alert_id,
        "name": item.name,
        "model": item.model,
        "metric": condition.metric or condition.kind,
        "value": None,
        "threshold": condition.value,
        "baseline": None,
        "run_id": None,
        "schedule_id": item.schedule_id,
        "condition": item.condition,
        "detail": "A test delivery: nothing has fired.",
    }
    once = dataclasses.replace(webhooks.Policy.from_settings(), retries=0)
    try:
        webhook = webhook_of(item)
    except keys.KeyVaultError:
        return alert_delivery.Delivery("failed", "the webhook secret cannot be read: delete and re-create the rule")
    return alert_delivery.deliver(user_id, event, webhook, time.monotonic() + once.timeout_s, once)


# --- checks -----------------------------------------------------------------------------------


def _check_target(user_id: str, schedule_id: str | None, model: str) -> None:
    """The schedule must be the caller's (404 otherwise, like any unknown id); the model
    must be one it runs, or, for every schedule, a model the catalog knows."""
    if schedule_id is None and model == ANY_MODEL:
        return
    providers = user_providers.providers_for(user_id)
    if schedule_id is not None:
        schedule = schedules.get(user_id, schedule_id)
        runs = {model_key(name, providers) for name in schedule.models}
        if model != ANY_MODEL and model not in schedule.models and model_key(model, providers) not in runs:
            raise invalid("model", f"{model!r} is not one of the schedule's models", model=model[:100])
        return
    try:
        catalog.resolve(model, providers)
    except Unprocessable as err:
        message = err.detail[0]["message"] if isinstance(err.detail, list) and err.detail else str(err)
        raise invalid("model", message, model=model[:100]) from None


def model_key(name: str, providers: Mapping[str, ProviderInfo]) -> str:
    """`provider/model` for a model name (`gpt-4o` → `openai/gpt-4o`), as a result's
    `provider` and `model_id` say it; the name itself when it no longer resolves (its
    provider deleted since). Rules and results are matched on it."""
    try:
        target = catalog.resolve(name, providers)
    except Unprocessable:
        return name
    return f"{target.provider_key}/{target.model}"


def _check_webhook(url: str) -> None:
    try:
        webhooks.check_url(url)
    except webhooks.WebhookRefused as err:
        raise invalid("webhook_url", err.reason) from None


# A webhook secret is sealed under its user and rule (the KMS policies name these keys).
SECRET_CONTEXT_KEYS = ("user_id", "alert_id")


def _secret_context(user_id: str, alert_id: str) -> dict[str, str]:
    return dict(zip(SECRET_CONTEXT_KEYS, (user_id, alert_id)))


# The rules of the rules' writes.
_EXISTS = AlertModel.alert_id.exists()


def _not_found(alert_id: str) -> ApiError:
    return NotFound("Alert not found", {"alert_id": alert_id[:100]})
