"""Judging a saved run against the user's alert rules, and notifying the changes.

The runner calls `evaluate(user_id, run)` right after it saved a run. For each enabled
rule that covers the run's schedule, and each model of the run the rule watches, the
condition gives a verdict (`alert_rules.judge`) and the rule's state for that model
(`ok`, or `firing`) is compared with it. Only a change is notified: `alert_fired` when a
rule starts firing, `alert_resolved` when it stops; a rule that stays firing is quiet.

Exactly once, under retries and races: a change is ONE transaction holding
- the state update, conditional on the state this evaluation saw, and
- the event's put, conditional on its key being new; the key derives from rule, model and
  run (`<run id>#<hash>`), so evaluating the same run twice, concurrently or a day later
  after the state moved on, cannot store or send its event again.
Only the evaluation whose transaction applied sends the event. (A process that dies
between that commit and the send leaves the event `pending` in the history, unsent:
at most once, never twice.)

Bounded: every delivery of one evaluation runs in parallel and all must end within
`ALERT_DELIVERY_BUDGET_S` (15; each attempt 5 s, see `webhooks`); what is left is
recorded as failed. Nothing here raises into the runner: a failure is logged, and the
job's own result is already saved.

Only scheduled runs are judged (`source: "schedule"`, a schedule's manual trigger
included); on-demand benchmarks are not, and are not part of any baseline.
"""
from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pynamodb.attributes import MapAttribute
from pynamodb.expressions.operand import Path

from chalicelib import alert_delivery, alert_events, alerts, clock, config, user_providers, writes
from chalicelib.alert_rules import Condition, Verdict, from_stored, judge, metric_value
from chalicelib.tables import AlertModel, RunModel

log = logging.getLogger(__name__)

FIRING, OK = "firing", "ok"
SCHEDULED = "schedule"
MAX_PARALLEL_DELIVERIES = 8


def delivery_budget_s() -> float:
    return config.float_setting("ALERT_DELIVERY_BUDGET_S", 15.0)


def baseline_max_runs() -> int:
    """How many earlier runs a regression's baseline may read (a schedule's other runs and
    other schedules' runs included), however few of them hold the model's results."""
    return config.int_setting("ALERT_BASELINE_MAX_RUNS", 200)


@dataclass(frozen=True)
class _Check:
    rule: AlertModel
    condition: Condition
    result: Mapping[str, Any]

    @property
    def model(self) -> str:
        return str(self.result["model"])


@dataclass(frozen=True)
class Sent:
    """An event this evaluation sent, and how its delivery went."""

    event: dict[str, Any]
    delivery: str


def evaluate(user_id: str, run: Mapping[str, Any]) -> list[Sent]:
    """Judge `run` (as `history` answers it: `id`, `source`, `results`, `metadata`) and
    notify every state change; answers what was sent. Never raises."""
    try:
        return _evaluate(user_id, run, time.monotonic() + delivery_budget_s())
    except Exception:  # noqa: BLE001 - alerts must never fail the job that saved the run
        log.exception("alerts: evaluating run %s of user %s failed", run.get("id"), user_id)
        return []


def _evaluate(user_id: str, run: Mapping[str, Any], deadline: float) -> list[Sent]:
    if run.get("source") != SCHEDULED:
        return []
    run_id = str(run["id"])
    schedule_id = (run.get("metadata") or {}).get("schedule_id")
    results = [r for r in run.get("results") or [] if isinstance(r, Mapping) and isinstance(r.get("model"), str)]
    rules = [r for r in alerts.rules_of(user_id) if r.enabled and r.schedule_id in (None, schedule_id)]
    keys = _model_keys(user_id, rules)
    checks = [
        _Check(rule, from_stored(rule.condition), result)
        for rule in rules
        for result in results
        if watches(rule.model, keys.get(rule.model), result)
    ]
    if not checks:
        return []
    baselines = _baselines(user_id, run_id, schedule_id, checks)
    changes: list[tuple[AlertModel, dict[str, Any]]] = []
    for check in checks:
        if time.monotonic() >= deadline:  # left as they are: the next run sees them again
            log.warning("alerts: run %s: the budget ran out before every rule was judged", run_id)
            break
        metric = check.condition.metric or ""
        verdict = judge(check.condition, check.result, baselines.get((check.model, metric), ()))
        if verdict is None:
            continue
        was_firing = _state(check.rule).get(check.model) == FIRING
        if verdict.firing == was_firing:
            continue
        event = _event(check, verdict, run_id, schedule_id)
        if _change_state(user_id, check, was_firing, event):
            changes.append((check.rule, event))
    return _deliver_all(user_id, changes, deadline)


def watches(rule_model: str, rule_key: str | None, result: Mapping[str, Any]) -> bool:
    """A rule watches every model (`*`), or one: by the name the schedule gives it, or by
    its `provider/model` key (`gpt-4o` and `openai/gpt-4o` are one model)."""
    if rule_model in (alerts.ANY_MODEL, result.get("model")):
        return True
    return rule_key is not None and rule_key == f"{result.get('provider')}/{result.get('model_id')}"


def _model_keys(user_id: str, rules: Sequence[AlertModel]) -> dict[str, str]:
    """Each rule's model as `provider/model` (the user's providers are read only if a rule
    names a model)."""
    named = {rule.model for rule in rules if rule.model != alerts.ANY_MODEL}
    if not named:
        return {}
    providers = user_providers.providers_for(user_id)
    return {name: alerts.model_key(name, providers) for name in named}


def event_id(alert_id: str, model: str, run_id: str) -> str:
    return hashlib.sha256(f"{alert_id}\n{model}\n{run_id}".encode()).hexdigest()[:32]


def _state(rule: AlertModel) -> dict[str, str]:
    state = rule.state
    return state.as_dict() if isinstance(state, MapAttribute) else dict(state or {})


def _event(check: _Check, verdict: Verdict, run_id: str, schedule_id: str | None) -> dict[str, Any]:
    rule = check.rule
    return {
        "type": alert_delivery.FIRED if verdict.firing else alert_delivery.RESOLVED,
        "event_id": event_id(rule.alert_id, check.model, run_id),
        "occurred_at": clock.now_iso(),
        "alert_id": rule.alert_id,
        "name": rule.name,
        "model": check.model,
        "metric": verdict.metric,
        "value": verdict.value,
        "threshold": verdict.threshold,
        "baseline": verdict.baseline,
        "run_id": run_id,
        "schedule_id": schedule_id,
        "condition": check.condition.stored(),
        "detail": verdict.detail,
    }


def _change_state(user_id: str, check: _Check, was_firing: bool, event: dict[str, Any]) -> bool:
    """Move the rule's state for the model and store the event, both or neither; False
    when another evaluation got there first (the state moved, or the event exists)."""
    state = Path(AlertModel.state)[check.model]  # the model's entry in the map
    seen = (state == FIRING) if was_firing else (state.does_not_exist() | (state == OK))
    failed = (
        writes.Tx()
        .update(
            "state",
            AlertModel(user_id, check.rule.alert_id),
            [state.set(OK if was_firing else FIRING)],
            AlertModel.alert_id.exists() & seen,
        )
        .put("event", alert_events.new_item(user_id, event), alert_events.NEW)
        .commit()
    )
    if failed:
        log.info("alerts: %s of rule %s on %s already handled (%s)", event["type"], check.rule.alert_id,
                 check.model, ", ".join(sorted(failed)))
    return not failed


# --- baselines ----------------------------------------------------------------------------


def _baselines(
    user_id: str, run_id: str, schedule_id: str | None, checks: Sequence[_Check]
) -> dict[tuple[str, str], list[float]]:
    """The previous successful values of each (model, metric) a regression needs, newest
    first, from the same schedule's earlier runs (another prompt or max_tokens would not
    compare); at most `baseline_runs` each, reading at most `ALERT_BASELINE_MAX_RUNS` runs."""
    wanted: dict[tuple[str, str], int] = {}
    for check in checks:
        if check.condition.kind == "regression" and check.condition.metric:
            key = (check.model, check.condition.metric)
            wanted[key] = max(wanted.get(key, 0), check.condition.baseline_runs)
    found: dict[tuple[str, str], list[float]] = {key: [] for key in wanted}
    if not wanted:
        return found
    earlier = RunModel.query(user_id, RunModel.run_id < run_id, scan_index_forward=False, page_size=25)
    for read, item in enumerate(earlier, 1):
        if item.source == SCHEDULED and (item.metadata or {}).get("schedule_id") == schedule_id:
            for result in item.results or []:
                for (model, metric), values in found.items():
                    if result.get("model") != model or len(values) >= wanted[(model, metric)]:
                        continue
                    value = metric_value(result, metric)
                    if value is not None:
                        values.append(value)
        if read >= baseline_max_runs() or all(len(v) >= wanted[k] for k, v in found.items()):
            break
    return found


# --- delivery -----------------------------------------------------------------------------


def _deliver_all(user_id: str, changes: list[tuple[AlertModel, dict[str, Any]]], deadline: float) -> list[Sent]:
    """Every event at once (each to the WebSocket, then its webhook), all within `deadline`;
    each outcome is recorded on the event."""
    if not changes:
        return []
    targets = {rule.alert_id: _webhook(rule) for rule, _event in changes}  # one secret decrypted per rule
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_DELIVERIES, len(changes)), thread_name_prefix="alert")
    futures = {
        pool.submit(_deliver_one, user_id, event, targets[rule.alert_id], deadline): event for rule, event in changes
    }
    done, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    sent = [Sent(futures[f], f.result()) for f in done]
    for future in late:  # only a hung DNS lookup or AWS call gets here: posts keep the deadline
        event = futures[future]
        _record(user_id, event, "failed: the delivery budget (ALERT_DELIVERY_BUDGET_S) ran out")
        sent.append(Sent(event, "failed: the delivery budget (ALERT_DELIVERY_BUDGET_S) ran out"))
    return sent


def _webhook(rule: AlertModel) -> alert_delivery.Webhook | None | str:
    """The rule's webhook, or why it cannot be used (a secret that no longer decrypts)."""
    try:
        return alerts.webhook_of(rule)
    except Exception as err:  # noqa: BLE001 - one rule's broken secret must not stop the others
        log.warning("alerts: the webhook secret of rule %s cannot be read", rule.alert_id, exc_info=True)
        return f"failed: the webhook secret cannot be read ({type(err).__name__})"


def _deliver_one(user_id: str, event: dict[str, Any], target: alert_delivery.Webhook | None | str, deadline: float) -> str:
    try:
        if isinstance(target, str):
            alert_delivery.deliver(user_id, event, None, deadline)  # the user's tabs still hear of it
            delivery = target
        else:
            delivery = alert_delivery.deliver(user_id, event, target, deadline).recorded
    except Exception as err:  # noqa: BLE001 - a delivery must not take the others down
        log.warning("alerts: delivering %s failed", event["event_id"], exc_info=True)
        delivery = f"failed: {type(err).__name__}"
    if delivery.startswith("failed"):
        log.warning("alerts: webhook of rule %s: %s", event["alert_id"], delivery)
    _record(user_id, event, delivery)
    return delivery


def _record(user_id: str, event: Mapping[str, Any], delivery: str) -> None:
    try:
        alert_events.record_delivery(user_id, alert_events.event_key(str(event["run_id"]), str(event["event_id"])), delivery)
    except Exception:  # noqa: BLE001 - the event was sent; only its history line is stale
        log.warning("alerts: recording the delivery of %s failed", event["event_id"], exc_info=True)
