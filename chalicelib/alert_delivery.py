"""One alert event on its way out: to the user's WebSocket connections, then the webhook.

The event is one flat message, the same everywhere: the WebSocket message, the JSON
webhook body and the stored history entry carry `type` (`alert_fired`, `alert_resolved`,
or `alert_test`), `event_id`, `occurred_at`, `alert_id`, `name`, `model`, `metric`,
`value`, `threshold`, `baseline`, `run_id`, `schedule_id`, `condition` and `detail`.
It holds the rule's and the run's figures only: never a provider key, a token or the
webhook's secret (a failure's `detail` is the result's error, which the engine scrubbed
of the key). A Slack-format webhook gets `{"text": ...}` built from the same fields.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from chalicelib import notify, webhooks

FIRED, RESOLVED, TEST = "alert_fired", "alert_resolved", "alert_test"

FIELDS = (
    "type", "event_id", "occurred_at", "alert_id", "name", "model", "metric", "value",
    "threshold", "baseline", "run_id", "schedule_id", "condition", "detail",
)


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str  # json | slack
    secret: str


@dataclass(frozen=True)
class Delivery:
    outcome: Literal["delivered", "failed", "websocket_only"]
    detail: str

    @property
    def recorded(self) -> str:
        """How the events history shows it: `delivered`, `failed: <why>`, `websocket_only`."""
        return f"failed: {self.detail}" if self.outcome == "failed" else self.outcome


def deliver(
    user_id: str,
    event: Mapping[str, Any],
    webhook: Webhook | None,
    deadline: float,
    policy: webhooks.Policy | None = None,
) -> Delivery:
    """Send `event` to the user's open connections (best effort, never raises) and, when
    the rule has one, to its webhook, within `deadline` (`time.monotonic()`)."""
    notify.send_to_user(user_id, dict(event))
    if webhook is None:
        return Delivery("websocket_only", "no webhook_url: sent to your open WebSocket connections only")
    outcome = webhooks.post(
        webhook.url, body(event, webhook.format), secret=webhook.secret,
        event_id=str(event["event_id"]), deadline=deadline, policy=policy,
    )
    return Delivery("delivered" if outcome.delivered else "failed", outcome.detail)


def body(event: Mapping[str, Any], webhook_format: str) -> bytes:
    """The exact bytes POSTed (and signed)."""
    doc: dict[str, Any] = {"text": slack_text(event)} if webhook_format == "slack" else dict(event)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def slack_text(event: Mapping[str, Any]) -> str:
    """One line for a Slack-compatible incoming webhook (mrkdwn; the user's text escaped)."""
    name, model = _escape(event.get("name")), _escape(event.get("model"))
    kind = (event.get("condition") or {}).get("kind")
    if event["type"] == TEST:
        return f":bell: Test delivery of alert *{name}* (model {model}): this webhook works."
    mark, verb = (":rotating_light:", "fired") if event["type"] == FIRED else (":white_check_mark:", "resolved")
    if kind == "failure":
        what = (f"failed ({_escape(event.get('value'))}): {_escape(event.get('detail') or '')}".rstrip(": ")
                if event["type"] == FIRED else "succeeded again")
    else:
        what = f"{event.get('metric')} = {_figure(event.get('value'))} ({_why(event)})"
    run = f" · run {event['run_id']}" if event.get("run_id") else ""
    return f"{mark} Alert *{name}* {verb}: {model} {what}{run}"


def _why(event: Mapping[str, Any]) -> str:
    condition = event.get("condition") or {}
    if condition.get("kind") == "threshold":
        return f"alert when {condition.get('op')} {_figure(condition.get('value'))}"
    return (f"median of the last {condition.get('baseline_runs')} runs {_figure(event.get('baseline'))}, "
            f"alert when {condition.get('percent')} % worse")


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _escape(value: Any) -> str:
    """Slack reads `<...>` as links and mentions and `&` as entities: user text must not."""
    return str(value if value is not None else "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
