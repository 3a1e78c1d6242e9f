"""Evaluation (issue 15, item 2): each condition kind against a sequence of results fires
once, stays quiet while firing and resolves once; regression baselines; exactly-once
notifications under duplicate and concurrent evaluations and a duplicate runner; the
`alert_fired` WebSocket event; and a runner that alerts can never fail."""
from __future__ import annotations

import threading

import pytest

from chalicelib import alert_eval, alerts, history
from chalicelib.alert_rules import Condition
from chalicelib.tables import AlertEventModel
from tests.alerting import result, save_run

USER = "u-" + "b" * 30
SCHEDULE = "a" * 32
OTHER_SCHEDULE = "c" * 32


@pytest.fixture
def user(aws, clock, recorded_events):
    return USER


def make_rule(condition: dict, *, model: str = "*", schedule_id: str | None = None, name: str = "r",
              user_id: str = USER) -> str:
    """A rule stored as the API stores it (the schedule check is the API's concern)."""
    body = alerts.AlertCreate(name=name, model=model, condition=Condition.model_validate(condition))
    alert, _secret = alerts.create(user_id, body)
    if schedule_id is not None:
        from chalicelib.tables import AlertModel

        AlertModel(user_id, alert["id"]).update(actions=[AlertModel.schedule_id.set(schedule_id)])
    return alert["id"]


def run_and_judge(clock, results: list[dict], *, schedule_id: str = SCHEDULE, source: str = "schedule") -> list[str]:
    """Save a run, evaluate it, answer the types of the events sent."""
    run = save_run(clock, USER, schedule_id, results, source=source)
    return [sent.event["type"] for sent in alert_eval.evaluate(USER, run)]


def state_of(alert_id: str) -> dict:
    return alerts.to_public(alerts.get(USER, alert_id))["state"]


def stored_events(user_id: str = USER) -> list[dict]:
    return [item.event for item in AlertEventModel.query(user_id, consistent_read=True)]


FIRED, RESOLVED = "alert_fired", "alert_resolved"


# --- each kind: fire once, stay quiet, resolve once -------------------------------------------


def test_a_threshold_fires_once_stays_quiet_and_resolves_once(user, clock, recorded_events):
    alert_id = make_rule({"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300})
    sequence = [200.0, 900.0, 950.0, 301.0, 100.0, 120.0, 800.0]

    sent = [run_and_judge(clock, [result("demo/slow", ttft_ms=ttft)]) for ttft in sequence]

    assert sent == [[], [FIRED], [], [], [RESOLVED], [], [FIRED]]
    assert state_of(alert_id) == {"demo/slow": "firing"}
    live = recorded_events.messages(user_id=USER)
    assert [m["type"] for m in live] == [FIRED, RESOLVED, FIRED]
    assert [m["value"] for m in live] == [900.0, 100.0, 800.0]
    assert len(stored_events()) == 3


def test_a_below_threshold_on_a_speed(user, clock):
    make_rule({"kind": "threshold", "metric": "output_speed_tps", "op": "below", "value": 50})
    sent = [run_and_judge(clock, [result("m/x", output_speed_tps=tps)]) for tps in (80.0, 20.0, 10.0, 60.0)]
    assert sent == [[], [FIRED], [], [RESOLVED]]


def test_a_threshold_has_no_verdict_on_a_failed_result_or_an_unknown_cost(user, clock):
    alert_id = make_rule({"kind": "threshold", "metric": "cost", "op": "above", "value": 0.01})
    assert run_and_judge(clock, [result("m/x", cost=0.5)]) == [FIRED]
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == []
    assert run_and_judge(clock, [result("m/x", cost=0.0, cost_known=False)]) == []
    assert state_of(alert_id) == {"m/x": "firing"}
    assert run_and_judge(clock, [result("m/x", cost=0.001)]) == [RESOLVED]


def test_a_failure_rule_fires_on_the_first_failure_and_resolves_on_the_first_success(user, clock, recorded_events):
    make_rule({"kind": "failure"})
    outcomes = ["ok", "rate_limited", "http_500", "ok", "ok", "timeout"]

    sent = [
        run_and_judge(clock, [result("m/x", ttft_ms=10.0) if o == "ok" else result("m/x", error_type=o)])
        for o in outcomes
    ]

    assert sent == [[], [FIRED], [], [RESOLVED], [], [FIRED]]
    fired = recorded_events.messages(FIRED, user_id=USER)[0]
    assert fired["metric"] == "failure" and fired["value"] == "rate_limited"
    assert fired["detail"] == "[rate_limited] it broke"


def test_a_model_the_runner_never_ran_says_nothing_about_the_model(user, clock):
    alert_id = make_rule({"kind": "failure"})
    assert run_and_judge(clock, [result("m/x", error_type="deadline")]) == []
    assert run_and_judge(clock, [result("m/x", error_type="cancelled")]) == []
    assert state_of(alert_id) == {}


# --- regression --------------------------------------------------------------------------------


REGRESSION = {"kind": "regression", "metric": "ttft_ms", "percent": 50, "baseline_runs": 3}


def test_a_regression_waits_for_its_baseline_then_fires_and_resolves_once(user, clock, recorded_events):
    make_rule(REGRESSION)
    sequence = [1000.0, 100.0, 100.0, 140.0, 200.0, 220.0, 150.0]

    sent = [run_and_judge(clock, [result("m/x", ttft_ms=ttft)]) for ttft in sequence]

    # 1000 and the two 100s: fewer than 3 earlier results. 140 vs median(100,100,1000)=100:
    # not 50 % worse. 200 vs median(140,100,100)=100: fires. 220 vs median(200,140,100)=140:
    # still more than 50 % worse (> 210), quiet. 150 vs median(220,200,140)=200: resolves.
    assert sent == [[], [], [], [], [FIRED], [], [RESOLVED]]
    fired, resolved = recorded_events.messages(user_id=USER)
    assert (fired["value"], fired["baseline"]) == (200.0, 100.0)
    assert (resolved["value"], resolved["baseline"]) == (150.0, 200.0)
    assert fired["threshold"] is None


def test_failures_are_not_part_of_a_baseline(user, clock):
    make_rule(REGRESSION)
    for figures in ({"ttft_ms": 100.0}, {"error_type": "http_500"}, {"ttft_ms": 100.0}, {"error_type": "timeout"}):
        assert run_and_judge(clock, [result("m/x", **figures)]) == []
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == []  # two successes: no baseline
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == [FIRED]  # 100, 100, 1000 → median 100


def test_a_baseline_comes_from_the_same_schedules_scheduled_runs_only(user, clock):
    make_rule(REGRESSION)
    for _ in range(3):
        run_and_judge(clock, [result("m/x", ttft_ms=100.0)], schedule_id=OTHER_SCHEDULE)
        run_and_judge(clock, [result("m/x", ttft_ms=100.0)], source="manual")
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == []
    for _ in range(2):
        run_and_judge(clock, [result("m/x", ttft_ms=100.0)])
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == [FIRED]


def test_a_speed_regresses_by_falling(user, clock):
    make_rule({"kind": "regression", "metric": "tokens_per_second", "percent": 20, "baseline_runs": 3})
    sent = [run_and_judge(clock, [result("m/x", tokens_per_second=tps)]) for tps in (100.0, 100.0, 100.0, 85.0, 70.0, 99.0)]
    assert sent == [[], [], [], [], [FIRED], [RESOLVED]]


def test_a_baseline_reads_a_bounded_number_of_earlier_runs(user, clock, monkeypatch):
    make_rule(REGRESSION)
    for _ in range(3):
        run_and_judge(clock, [result("m/x", ttft_ms=100.0)])
    for _ in range(3):
        run_and_judge(clock, [result("other/y", ttft_ms=100.0)])
    monkeypatch.setenv("ALERT_BASELINE_MAX_RUNS", "3")
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == []  # the 3 runs read hold no m/x
    monkeypatch.setenv("ALERT_BASELINE_MAX_RUNS", "7")
    assert run_and_judge(clock, [result("m/x", ttft_ms=1000.0)]) == [FIRED]


# --- what a rule covers ------------------------------------------------------------------------


def test_every_model_of_a_star_rule_has_its_own_state(user, clock):
    alert_id = make_rule({"kind": "failure"})
    assert run_and_judge(clock, [result("openai/gpt-4.1", ttft_ms=1.0), result("m/y", error_type="http_500")]) == [FIRED]
    assert run_and_judge(clock, [result("openai/gpt-4.1", error_type="auth_failed"), result("m/y", error_type="x")]) == [FIRED]
    assert state_of(alert_id) == {"m/y": "firing", "openai/gpt-4.1": "firing"}


def test_a_rule_watches_its_model_by_schedule_name_or_provider_and_id(user, clock):
    make_rule({"kind": "failure"}, model="openai/gpt-4o", name="by provider")
    make_rule({"kind": "failure"}, model="gpt-4o", name="by name")
    make_rule({"kind": "failure"}, model="gpt-4o-mini", name="another model")
    make_rule({"kind": "failure"}, model="openai/gpt-4.1", name="named the other way")
    bare = result("gpt-4o", error_type="http_500") | {"provider": "openai", "model_id": "gpt-4o"}
    full = result("openai/gpt-4.1", error_type="http_500")
    run = save_run(clock, USER, SCHEDULE, [bare, full])
    assert sorted(s.event["name"] for s in alert_eval.evaluate(USER, run)) == [
        "by name", "by provider", "named the other way",
    ]
    make_rule({"kind": "failure"}, model="gpt-4.1", name="bare id of a full name")
    full_again = save_run(clock, USER, SCHEDULE, [bare, full])
    assert [s.event["name"] for s in alert_eval.evaluate(USER, full_again)] == ["bare id of a full name"]


def test_rules_of_another_schedule_disabled_rules_and_on_demand_runs_stay_quiet(user, clock):
    make_rule({"kind": "failure"}, schedule_id=OTHER_SCHEDULE)
    off = make_rule({"kind": "failure"})
    alerts.update(USER, off, alerts.AlertUpdate(enabled=False))
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == []
    make_rule({"kind": "failure"})
    assert run_and_judge(clock, [result("m/x", error_type="http_500")], source="manual") == []
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == [FIRED]


def test_another_users_rules_never_judge_my_runs(user, clock):
    make_rule({"kind": "failure"}, user_id="u-someone-else")
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == []


# --- exactly once ----------------------------------------------------------------------------


def test_evaluating_a_run_twice_sends_nothing_the_second_time(user, clock, recorded_events):
    make_rule({"kind": "failure"})
    run = save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500")])

    assert [s.event["type"] for s in alert_eval.evaluate(USER, run)] == [FIRED]
    assert alert_eval.evaluate(USER, run) == []
    assert len(recorded_events.messages(FIRED)) == 1 and len(stored_events()) == 1


def test_a_late_duplicate_after_the_state_moved_on_sends_nothing(user, clock, recorded_events):
    alert_id = make_rule({"kind": "failure"})
    failed = save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500")])
    alert_eval.evaluate(USER, failed)
    alert_eval.evaluate(USER, save_run(clock, USER, SCHEDULE, [result("m/x", ttft_ms=1.0)]))
    assert state_of(alert_id) == {"m/x": "ok"}

    assert alert_eval.evaluate(USER, failed) == []  # its event exists: the transaction cannot apply

    assert state_of(alert_id) == {"m/x": "ok"}
    assert [m["type"] for m in recorded_events.messages(user_id=USER)] == [FIRED, RESOLVED]


def test_concurrent_evaluations_of_one_run_send_each_event_once(user, clock, recorded_events):
    for number in range(3):
        make_rule({"kind": "failure"}, name=f"rule {number}")
    run = save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500"), result("m/y", error_type="timeout")])
    start = threading.Barrier(8)
    sent: list[list] = []

    def evaluate() -> None:
        start.wait()
        sent.append(alert_eval.evaluate(USER, run))

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(len(s) for s in sent) == 6  # 3 rules x 2 models, each sent by one evaluation
    assert len(recorded_events.messages(FIRED, user_id=USER)) == 6
    assert len({e["event_id"] for e in stored_events()}) == len(stored_events()) == 6


def test_two_runs_judged_at_once_move_the_state_once(user, clock, recorded_events):
    alert_id = make_rule({"kind": "failure"})
    runs = [save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500")]) for _ in range(6)]
    start = threading.Barrier(len(runs))

    def evaluate(run) -> None:
        start.wait()
        alert_eval.evaluate(USER, run)

    threads = [threading.Thread(target=evaluate, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(recorded_events.messages(FIRED, user_id=USER)) == 1
    assert len(stored_events()) == 1 and state_of(alert_id) == {"m/x": "firing"}


# --- WebSocket -------------------------------------------------------------------------------


def test_alert_fired_reaches_the_users_connections_with_the_rule_and_run(user, clock, recorded_events, monkeypatch):
    monkeypatch.setenv("DEMO_PROVIDER_URL", "http://127.0.0.1:9/v1")  # the local stack's demo models
    alert_id = make_rule({"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300},
                         model="demo/slow", name="slow start")
    run = save_run(clock, USER, SCHEDULE, [result("demo/slow", ttft_ms=612.5), result("demo/fast", ttft_ms=900.0)])

    [sent] = alert_eval.evaluate(USER, run)

    [(to, message)] = recorded_events.sent
    assert to == USER
    assert message == {
        "type": "alert_fired", "event_id": alert_eval.event_id(alert_id, "demo/slow", run["id"]),
        "occurred_at": message["occurred_at"], "alert_id": alert_id, "name": "slow start", "model": "demo/slow",
        "metric": "ttft_ms", "value": 612.5, "threshold": 300.0, "baseline": None, "run_id": run["id"],
        "schedule_id": SCHEDULE,
        "condition": {"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300.0},
        "detail": None,
    }
    assert sent.delivery == "websocket_only"
    [stored] = AlertEventModel.query(USER, consistent_read=True)
    assert stored.delivery == "websocket_only" and stored.alert_id == alert_id


def test_a_budget_spent_before_judging_leaves_the_state_for_the_next_run(user, clock, monkeypatch):
    alert_id = make_rule({"kind": "failure"})
    monkeypatch.setenv("ALERT_DELIVERY_BUDGET_S", "0")
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == []
    assert state_of(alert_id) == {}
    monkeypatch.delenv("ALERT_DELIVERY_BUDGET_S")
    assert run_and_judge(clock, [result("m/x", error_type="http_500")]) == [FIRED]


def test_a_webhook_secret_that_no_longer_decrypts_still_tells_the_websocket(user, clock, recorded_events):
    from chalicelib.tables import AlertModel

    make_rule({"kind": "failure"}, name="fine")
    broken = make_rule({"kind": "failure"}, name="broken")
    AlertModel(USER, broken).update(actions=[AlertModel.webhook_url.set("https://8.8.8.8/hook"),
                                             AlertModel.secret.set(b"not a ciphertext")])

    sent = {s.event["name"]: s.delivery for s in alert_eval.evaluate(
        USER, save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500")]))}

    assert sent["fine"] == "websocket_only"
    assert sent["broken"].startswith("failed: the webhook secret cannot be read")
    assert sorted(m["name"] for m in recorded_events.messages(FIRED, user_id=USER)) == ["broken", "fine"]


# --- never fails the runner ----------------------------------------------------------------------


def test_a_broken_evaluation_is_logged_never_raised(user, clock, monkeypatch, caplog):
    make_rule({"kind": "failure"})

    def broken(_user_id):
        raise RuntimeError("table gone")

    monkeypatch.setattr(alerts, "rules_of", broken)
    run = save_run(clock, USER, SCHEDULE, [result("m/x", error_type="http_500")])
    assert alert_eval.evaluate(USER, run) == []
    assert "evaluating run" in caplog.text and "table gone" in caplog.text


# --- through the runner ----------------------------------------------------------------------


@pytest.fixture
def fake_user(user, provider_server, monkeypatch):
    from chalicelib import clock as app_clock
    from chalicelib.tables import ProviderModel

    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the provider is on loopback
    ProviderModel(USER, "fake", kind="openai", base_url=provider_server.base_url_for("openai"),
                  models=[{"id": "t"}, {"id": "err-500"}], updated_at=app_clock.now_iso()).save()
    return USER


def test_a_scheduled_run_alerts_once_even_when_its_runner_is_delivered_twice(fake_user, clock, lambda_invokes,
                                                                            recorded_events):
    from chalicelib import schedules, tick

    schedule_id = schedules.create(USER, schedules.ScheduleCreate(
        name="n", models=["fake/t", "fake/err-500"], prompt="hi", max_tokens=16, temperature=0.0, interval_hours=1,
    ))["id"]
    make_rule({"kind": "failure"}, schedule_id=schedule_id)
    clock.advance(hours=1)
    [job_id] = tick.run().claimed
    lambda_invokes.payloads.append({"job_id": job_id})  # Lambda delivers the event twice

    outcomes = lambda_invokes.run_pending()

    assert [o["status"] for o in outcomes] == ["done", "skipped"]
    [fired] = recorded_events.messages(FIRED, user_id=USER)
    assert fired["model"] == "fake/err-500" and fired["value"] == "http_500"
    assert fired["run_id"] == outcomes[0]["result_ref"] and fired["schedule_id"] == schedule_id
    [run] = history.list_runs(USER, history.HistoryQuery())["runs"]
    assert alert_eval.evaluate(USER, run) == []  # and a re-evaluation of the saved run sends nothing


def test_a_failing_alert_evaluation_leaves_the_job_done(fake_user, clock, lambda_invokes, monkeypatch):
    from chalicelib import schedules, tick

    schedules.create(USER, schedules.ScheduleCreate(
        name="n", models=["fake/t"], prompt="hi", max_tokens=16, temperature=0.0, interval_hours=1,
    ))
    monkeypatch.setattr(alert_eval, "_evaluate", lambda *a: 1 / 0)
    clock.advance(hours=1)
    tick.run()
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "done"
