"""The alert rules API (issue 15, items 1 and 4): validation that names the field, another
user's ids answered like missing ones, the per-user limit kept by a DynamoDB condition,
and a webhook secret that is shown once and stored only as KMS ciphertext."""
from __future__ import annotations

import json
import threading

import boto3
import pytest

from chalicelib import alert_eval, alerts, config, keys
from chalicelib.alert_rules import Condition
from chalicelib.errors import NotFound
from chalicelib.tables import AlertModel, UserModel
from tests.alerting import Receiver, result, save_run

THRESHOLD = {"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300}
PUBLIC_HOOK = "https://8.8.8.8/hook"  # a literal public address: vetted without DNS, never called here


@pytest.fixture
def schedule_of(client):
    def make(api, models=("gpt-4o", "openai/gpt-4o-mini")) -> str:
        status, data = api.post("/api/schedules", {
            "name": "speed", "models": list(models), "prompt": "hi", "interval_hours": 1,
        })
        assert status == 200, data
        return data["id"]

    return make


def rule(**fields):
    return {"name": "slow first token", "model": "gpt-4o", "condition": THRESHOLD, **fields}


def test_a_rule_is_created_listed_and_its_secret_shown_only_in_the_create_answer(alice, schedule_of):
    schedule_id = schedule_of(alice)
    status, data = alice.post("/api/alerts", rule(schedule_id=schedule_id, webhook_url=PUBLIC_HOOK))

    assert status == 200, data
    secret = data["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    alert = data["alert"]
    assert data["id"] == alert["id"] and data["status"] == "ok"
    assert alert == {
        "id": alert["id"], "name": "slow first token", "schedule_id": schedule_id, "model": "gpt-4o",
        "condition": {"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300.0},
        "webhook_url": PUBLIC_HOOK, "webhook_format": "json", "enabled": True, "state": {},
        "created_at": alert["created_at"], "updated_at": alert["created_at"],
    }
    status, listed = alice.get("/api/alerts")
    assert status == 200 and listed == {"alerts": [alert]}
    _, updated = alice.put(f"/api/alerts/{alert['id']}", {"name": "renamed"})
    assert secret not in json.dumps(listed) + json.dumps(updated)
    stored = boto3.client("dynamodb").get_item(
        TableName=config.table_name("alerts"), Key={"user_id": {"S": alice.id}, "alert_id": {"S": alert["id"]}},
    )["Item"]
    assert secret.encode() not in stored["secret"]["B"] and secret not in repr(stored)
    assert alerts.webhook_of(alerts.get(alice.id, alert["id"])).secret == secret


def test_a_secret_copied_onto_another_rule_does_not_decrypt(alice):
    _, first = alice.post("/api/alerts", rule(webhook_url=PUBLIC_HOOK))
    _, second = alice.post("/api/alerts", rule(webhook_url=PUBLIC_HOOK))
    stolen = alerts.get(alice.id, first["id"]).secret
    target = alerts.get(alice.id, second["id"])
    target.secret = stolen
    with pytest.raises(keys.KeyVaultError):
        alerts.webhook_of(target)


def test_defaults_all_schedules_every_model_json_enabled(alice):
    status, data = alice.post("/api/alerts", {"name": "any failure", "condition": {"kind": "failure"}})
    assert status == 200, data
    assert {k: data["alert"][k] for k in ("schedule_id", "model", "webhook_url", "webhook_format", "enabled")} == {
        "schedule_id": None, "model": "*", "webhook_url": None, "webhook_format": "json", "enabled": True,
    }
    assert data["alert"]["condition"] == {"kind": "failure"}


def test_a_regression_gets_five_baseline_runs_unless_told(alice):
    _, data = alice.post("/api/alerts", rule(condition={"kind": "regression", "metric": "output_speed_tps", "percent": 30}))
    assert data["alert"]["condition"] == {
        "kind": "regression", "metric": "output_speed_tps", "percent": 30.0, "baseline_runs": 5,
    }


@pytest.mark.parametrize("condition, field", [
    ({"kind": "threshold", "metric": "latency", "op": "above", "value": 1}, "condition.metric"),
    ({"kind": "threshold", "metric": "ttft_ms", "op": "over", "value": 1}, "condition.op"),
    ({"kind": "threshold", "metric": "ttft_ms", "value": 1}, "condition.op"),
    ({"kind": "threshold", "metric": "ttft_ms", "op": "above"}, "condition.value"),
    ({"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": -1}, "condition.value"),
    ({"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": "300"}, "condition.value"),
    ({"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 1, "percent": 5}, "condition.percent"),
    ({"kind": "regression", "metric": "ttft_ms", "percent": 0}, "condition.percent"),
    ({"kind": "regression", "metric": "ttft_ms", "percent": 1001}, "condition.percent"),
    ({"kind": "regression", "metric": "ttft_ms", "percent": 10, "baseline_runs": 2}, "condition.baseline_runs"),
    ({"kind": "regression", "metric": "ttft_ms", "percent": 10, "baseline_runs": 51}, "condition.baseline_runs"),
    ({"kind": "regression", "metric": "tokens_per_second", "percent": 100}, "condition.percent"),
    ({"kind": "regression", "percent": 10}, "condition.metric"),
    ({"kind": "failure", "metric": "cost"}, "condition.metric"),
    ({"kind": "outage"}, "condition.kind"),
    ({"kind": "failure", "extra": 1}, "condition.extra"),
])
def test_a_bad_condition_is_a_422_naming_its_field(alice, condition, field):
    status, data = alice.post("/api/alerts", rule(condition=condition))
    assert status == 422, data
    assert data["detail"][0]["field"] == field
    assert field in data["error"]


@pytest.mark.parametrize("fields, field", [
    ({"name": "  "}, "name"),
    ({"name": "x" * 257}, "name"),
    ({"webhook_format": "teams"}, "webhook_format"),
    ({"enabled": "yes"}, "enabled"),
    ({"schedule_id": "../../etc"}, "schedule_id"),
    ({"model": ""}, "model"),
    ({"model": "nosuchprovider/x"}, "model"),
    ({"webhook_url": "x" * 3000}, "webhook_url"),
    ({"colour": "red"}, "colour"),
])
def test_bad_rule_fields_are_422s_naming_them(alice, fields, field):
    status, data = alice.post("/api/alerts", rule(**fields))
    assert status == 422, data
    assert data["detail"][0]["field"] == field


def test_the_schedule_must_be_the_callers_and_the_model_one_it_runs(alice, bob, schedule_of):
    bobs = schedule_of(bob)
    mine = schedule_of(alice)

    assert alice.post("/api/alerts", rule(schedule_id=bobs))[0] == 404
    assert alice.post("/api/alerts", rule(schedule_id="f" * 32))[0] == 404
    status, data = alice.post("/api/alerts", rule(schedule_id=mine, model="claude-sonnet-4-5"))
    assert status == 422 and data["detail"][0]["field"] == "model"
    assert alice.post("/api/alerts", rule(schedule_id=mine, model="*"))[0] == 200
    assert alice.post("/api/alerts", rule(schedule_id=mine, model="openai/gpt-4o"))[0] == 200  # its gpt-4o
    assert alice.post("/api/alerts", rule(schedule_id=mine, model="gpt-4o-mini"))[0] == 200  # its openai/gpt-4o-mini
    assert alice.post("/api/alerts", rule(schedule_id=mine, model="openai/gpt-5"))[0] == 422
    created = alice.post("/api/alerts", rule())[1]["alert"]
    assert alice.put(f"/api/alerts/{created['id']}", {"schedule_id": bobs})[0] == 404
    assert bob.get("/api/alerts")[1] == {"alerts": []}


@pytest.mark.parametrize("url, message", [
    ("http://8.8.8.8/hook", "https://"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("https://169.254.169.254/latest", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://2130706433/hook", "loopback"),
    ("https://localhost/hook", "local"),
    ("https://user:pw@8.8.8.8/hook", "credentials"),
    ("ftp://8.8.8.8/hook", "https://"),
])
def test_a_webhook_url_must_be_https_and_pass_the_endpoint_guard(alice, url, message):
    status, data = alice.post("/api/alerts", rule(webhook_url=url))
    assert status == 422, data
    assert data["detail"][0]["field"] == "webhook_url"
    assert message in data["detail"][0]["message"]


def test_http_on_loopback_is_allowed_only_where_private_endpoints_are(alice, monkeypatch):
    assert alice.post("/api/alerts", rule(webhook_url="http://127.0.0.1:9/hook"))[0] == 422
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    assert alice.post("/api/alerts", rule(webhook_url="http://127.0.0.1:9/hook"))[0] == 200


def test_another_users_rule_is_not_found_for_every_verb(alice, bob):
    _, data = alice.post("/api/alerts", rule())
    alert_id = data["id"]

    assert bob.put(f"/api/alerts/{alert_id}", {"name": "mine now"})[0] == 404
    assert bob.delete(f"/api/alerts/{alert_id}")[0] == 404
    assert bob.post(f"/api/alerts/{alert_id}/test")[0] == 404
    assert bob.get(f"/api/alerts/events?alert_id={alert_id}")[0] == 404
    assert alice.get("/api/alerts")[1]["alerts"][0]["name"] == "slow first token"
    for bad in ("x" * 2000, "%23rules", "rules"):
        assert alice.put(f"/api/alerts/{bad}", {"name": "n"})[0] == 404
        assert alice.delete(f"/api/alerts/{bad}")[0] == 404
    for call in (alerts.get, alerts.delete, alerts.send_test):
        with pytest.raises(NotFound):
            call(alice.id, "0" * 32)


def test_update_changes_any_subset_and_a_new_condition_starts_the_rule_over(alice, clock):
    _, data = alice.post("/api/alerts", rule(webhook_url=PUBLIC_HOOK))
    alert_id = data["id"]
    run = save_run(clock, alice.id, None, [result("gpt-4o", ttft_ms=900.0)])
    alert_eval.evaluate(alice.id, run)
    assert alice.get("/api/alerts")[1]["alerts"][0]["state"] == {"gpt-4o": "firing"}

    status, data = alice.put(f"/api/alerts/{alert_id}", {"enabled": False, "webhook_format": "slack"})
    assert status == 200 and data["alert"]["enabled"] is False and data["alert"]["webhook_format"] == "slack"
    assert data["alert"]["state"] == {"gpt-4o": "firing"}  # switching off keeps what it knows
    status, data = alice.put(f"/api/alerts/{alert_id}", {"condition": {"kind": "failure"}, "webhook_url": None})
    assert status == 200, data
    assert data["alert"]["condition"] == {"kind": "failure"} and data["alert"]["webhook_url"] is None
    assert data["alert"]["state"] == {}
    assert data["alert"]["updated_at"] >= data["alert"]["created_at"]


@pytest.mark.parametrize("body, field", [
    ({}, "body"),
    ({"name": None}, "name"),
    ({"enabled": None}, "enabled"),
    ({"condition": None}, "condition"),
    ({"condition": {"kind": "threshold"}}, "condition.metric"),
    ({"webhook_url": "http://8.8.8.8/x"}, "webhook_url"),
])
def test_a_bad_update_is_a_422_naming_its_field(alice, body, field):
    _, data = alice.post("/api/alerts", rule())
    status, answer = alice.put(f"/api/alerts/{data['id']}", body)
    assert status == 422, answer
    assert answer["detail"][0]["field"] == field


def test_delete_forgets_the_rule_once(alice):
    _, data = alice.post("/api/alerts", rule())
    assert alice.delete(f"/api/alerts/{data['id']}") == (200, {"status": "ok"})
    assert alice.delete(f"/api/alerts/{data['id']}")[0] == 404
    assert alice.put(f"/api/alerts/{data['id']}", {"name": "back?"})[0] == 404
    assert alice.get("/api/alerts")[1] == {"alerts": []}


def test_deleting_a_schedule_deletes_its_rules_and_gives_their_places_back(alice, schedule_of, monkeypatch):
    monkeypatch.setenv("ALERT_MAX_RULES", "3")
    doomed, kept = schedule_of(alice), schedule_of(alice)
    alice.post("/api/alerts", rule(schedule_id=doomed, name="doomed 1"))
    alice.post("/api/alerts", rule(schedule_id=doomed, name="doomed 2"))
    alice.post("/api/alerts", rule(schedule_id=kept, name="kept"))

    assert alice.delete(f"/api/schedules/{doomed}") == (200, {"status": "ok"})

    assert [a["name"] for a in alice.get("/api/alerts")[1]["alerts"]] == ["kept"]
    assert alice.post("/api/alerts", rule(name="everywhere"))[0] == 200
    assert alice.post("/api/alerts", rule(name="and another"))[0] == 200
    assert alice.post("/api/alerts", rule(name="one too many"))[0] == 422


def test_the_list_can_be_narrowed_to_one_schedule(alice, schedule_of):
    first, second = schedule_of(alice), schedule_of(alice)
    alice.post("/api/alerts", rule(schedule_id=first, name="first"))
    alice.post("/api/alerts", rule(schedule_id=second, name="second"))
    alice.post("/api/alerts", rule(name="everywhere"))

    _, data = alice.get(f"/api/alerts?schedule_id={second}")
    assert [a["name"] for a in data["alerts"]] == ["second"]
    assert [a["name"] for a in alice.get("/api/alerts")[1]["alerts"]] == ["everywhere", "second", "first"]
    assert alice.get("/api/alerts?schedule_id=nope")[0] == 422
    assert alice.get("/api/alerts?colour=red")[0] == 422


# --- the limit -------------------------------------------------------------------------------


def test_the_rule_limit_is_a_422_naming_it_and_a_delete_makes_room(alice, monkeypatch):
    monkeypatch.setenv("ALERT_MAX_RULES", "3")
    ids = [alice.post("/api/alerts", rule())[1]["id"] for _ in range(3)]

    status, data = alice.post("/api/alerts", rule())
    assert status == 422 and data["detail"][0]["field"] == "alert rules"
    assert data["detail"][0]["limit"] == {"max": 3} and "ALERT_MAX_RULES" in data["error"]
    alice.delete(f"/api/alerts/{ids[0]}")
    assert alice.post("/api/alerts", rule())[0] == 200
    assert len(alice.get("/api/alerts")[1]["alerts"]) == 3


def test_concurrent_creates_never_pass_the_limit(aws, monkeypatch):
    monkeypatch.setenv("ALERT_MAX_RULES", "5")
    body = alerts.AlertCreate(name="r", condition=Condition(kind="failure"))
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def create() -> None:
        start.wait()
        try:
            alerts.create("u-race", body)
            outcomes.append("created")
        except Exception as err:  # noqa: BLE001
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=create) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["Unprocessable"] * 7 + ["created"] * 5
    assert len(alerts.rules_of("u-race")) == 5
    assert UserModel.get("u-race", consistent_read=True).alert_rule_count == 5


# --- a test delivery ---------------------------------------------------------------------------


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the receiver is on loopback
    served = Receiver().start()
    yield served
    served.stop()


def test_a_test_delivery_is_sent_now_signed_and_answered(alice, receiver, recorded_events):
    _, data = alice.post("/api/alerts", rule(webhook_url=receiver.url))

    status, answer = alice.post(f"/api/alerts/{data['id']}/test")

    assert status == 200, answer
    assert answer == {"status": "ok", "delivery": {"outcome": "delivered", "detail": "HTTP 204"}}
    [got] = receiver.received
    assert got.json()["type"] == "alert_test" and got.json()["alert_id"] == data["id"]
    assert got.headers["X-Signature-256"].startswith("sha256=")
    [live] = recorded_events.messages("alert_test", user_id=alice.id)
    assert live["event_id"] == got.headers["X-Event-Id"]
    status, again = alice.post(f"/api/alerts/{data['id']}/test")
    assert status == 429 and "ALERT_TEST_COOLDOWN_S" in again["error"]
    assert len(receiver.received) == 1


def test_a_test_delivery_reports_a_failing_webhook_after_one_attempt(alice, receiver):
    receiver.answers = [500]
    _, data = alice.post("/api/alerts", rule(webhook_url=receiver.url))
    status, answer = alice.post(f"/api/alerts/{data['id']}/test")
    assert status == 200
    assert answer["delivery"] == {"outcome": "failed", "detail": "HTTP 500 after 1 attempt"}
    assert len(receiver.received) == 1


def test_a_test_delivery_with_a_secret_that_no_longer_decrypts_is_a_failed_delivery(alice, receiver):
    _, first = alice.post("/api/alerts", rule(webhook_url=receiver.url))
    _, second = alice.post("/api/alerts", rule(webhook_url=receiver.url))
    AlertModel(alice.id, second["id"]).update(actions=[AlertModel.secret.set(alerts.get(alice.id, first["id"]).secret)])

    status, answer = alice.post(f"/api/alerts/{second['id']}/test")

    assert status == 200 and answer["delivery"]["outcome"] == "failed"
    assert "secret cannot be read" in answer["delivery"]["detail"]
    assert receiver.received == []


def test_a_rule_without_webhook_tests_on_the_websocket_only(alice, recorded_events):
    _, data = alice.post("/api/alerts", rule())
    status, answer = alice.post(f"/api/alerts/{data['id']}/test")
    assert status == 200 and answer["delivery"]["outcome"] == "websocket_only"
    assert len(recorded_events.messages("alert_test", user_id=alice.id)) == 1


# --- the events history ------------------------------------------------------------------------


def test_events_are_listed_newest_first_by_page_and_by_rule(alice, bob, clock):
    _, slow = alice.post("/api/alerts", rule(name="slow"))
    _, broken = alice.post("/api/alerts", {"name": "broken", "model": "gpt-4o", "condition": {"kind": "failure"}})
    figures = [900.0, 100.0, 900.0]  # fired, resolved, fired: three events of `slow`
    for ttft in figures:
        alert_eval.evaluate(alice.id, save_run(clock, alice.id, None, [result("gpt-4o", ttft_ms=ttft)]))
    alert_eval.evaluate(alice.id, save_run(clock, alice.id, None, [result("gpt-4o", error_type="http_500")]))

    _, page = alice.get("/api/alerts/events?limit=3")
    assert [(e["name"], e["type"]) for e in page["events"]] == [
        ("broken", "alert_fired"), ("slow", "alert_fired"), ("slow", "alert_resolved"),
    ]
    first = page["events"][1]
    assert set(first) == {
        "id", "alert_id", "name", "type", "model", "metric", "value", "threshold", "baseline", "run_id",
        "schedule_id", "occurred_at", "condition", "detail", "delivery",
    }
    assert first["delivery"] == "websocket_only" and first["value"] == 900.0 and first["threshold"] == 300.0
    _, rest = alice.get(f"/api/alerts/events?limit=3&cursor={page['next_cursor']}")
    assert [(e["name"], e["type"]) for e in rest["events"]] == [("slow", "alert_fired")]
    assert rest["next_cursor"] is None
    _, only = alice.get(f"/api/alerts/events?alert_id={slow['id']}&limit=2")
    assert [e["type"] for e in only["events"]] == ["alert_fired", "alert_resolved"]
    _, more = alice.get(f"/api/alerts/events?alert_id={slow['id']}&limit=2&cursor={only['next_cursor']}")
    assert [e["type"] for e in more["events"]] == ["alert_fired"] and more["next_cursor"] is None
    assert bob.get("/api/alerts/events")[1] == {"events": [], "next_cursor": None}
    assert bob.get(f"/api/alerts/events?cursor={page['next_cursor']}")[1]["events"] == []
    assert broken["id"] != slow["id"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "cursor=garbage", "alert_id=zz", "colour=red"])
def test_bad_event_queries_are_422s(alice, query):
    status, data = alice.get(f"/api/alerts/events?{query}")
    assert status == 422, data
