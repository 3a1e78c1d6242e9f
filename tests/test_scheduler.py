"""The heart of the seed: due schedules → tick → jobs → runner → history (DESIGN §2, §4).

Lambda is the `lambda_invokes` fixture (invokes recorded, then delivered to the runner);
providers are loopback servers speaking their wire formats; time is an injected clock.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from chalicelib import clock as app_clock
from chalicelib import jobs, runner, schedules, tables, tick
from chalicelib.tables import JobModel, ProviderModel, RunModel, ScheduleModel, SlotModel
from tests.recording import counting_dynamodb_calls


@pytest.fixture(autouse=True)
def loopback_providers(monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the providers are on loopback
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "5")


def add_provider(user_id: str, key: str, kind: str, server, models: list[str]) -> None:
    ProviderModel(
        user_id, key, kind=kind, base_url=server.base_url_for(kind),
        models=[{"id": m, "input_cost_per_mtok": 1.0, "output_cost_per_mtok": 2.0} for m in models],
        updated_at=app_clock.now_iso(),
    ).save()


def make_schedule(user_id: str, models: list[str], *, interval_hours: int = 1, name: str = "nightly") -> str:
    body = schedules.ScheduleCreate(
        name=name, models=models, prompt="Say hello.", max_tokens=32, temperature=0.0,
        interval_hours=interval_hours,
    )
    return schedules.create(user_id, body)["id"]


def schedule(user_id: str, schedule_id: str) -> ScheduleModel:
    return ScheduleModel.get(user_id, schedule_id, consistent_read=True)


def runs_of(user_id: str) -> list[RunModel]:
    return list(RunModel.query(user_id))


@pytest.fixture
def user(clock, aws, provider_server):
    user_id = "u-" + "a" * 30
    add_provider(user_id, "fake", "openai", provider_server, ["t", "err-500", "slow1", "long"])
    add_provider(user_id, "anth", "anthropic", provider_server, ["t"])
    add_provider(user_id, "gem", "gemini", provider_server, ["t"])
    from devstack.fake_providers import Behaviour

    provider_server.set_behaviour("slow1", Behaviour(ttft_s=0.05, itl_s=0.01, tokens=30))
    provider_server.set_behaviour("long", Behaviour(ttft_s=0.05, itl_s=0.25, tokens=1000))  # max_tokens 32: 8 s
    return user_id


# --- the seed end to end --------------------------------------------------------------------


def test_a_due_schedule_runs_once_and_lands_in_history_with_the_seeds_metadata(
    user, clock, lambda_invokes, recorded_events
):
    schedule_id = make_schedule(user, ["fake/t", "anth/t", "gem/t"], name="Nightly trio")
    assert tick.run().claimed == []  # not due yet
    clock.advance(hours=1)

    report = tick.run()

    assert len(report.claimed) == 1 and report.dispatched == 1
    assert lambda_invokes.payloads == [{"job_id": report.claimed[0]}]
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "done"
    [run] = runs_of(user)
    assert run.metadata == {
        "source": "schedule", "schedule_id": schedule_id, "schedule_name": "Nightly trio",
        "job_id": report.claimed[0],
    }
    assert run.source == "schedule" and run.context_tiers == [0]
    assert [r["model"] for r in run.results] == ["fake/t", "anth/t", "gem/t"]
    assert all(r["success"] and r["runs"] == 1 and r["context_tokens"] == 0 for r in run.results)
    assert all(r["cost_known"] and r["cost"] > 0 for r in run.results)
    after = schedule(user, schedule_id)
    assert after.last_run == app_clock.now_iso()
    assert after.next_run == "2026-11-30T11:00:00.000000Z"  # phase kept: 09:00 + 2 intervals
    assert after.last_result == {"run_id": run.run_id, "status": "ok", "models": [
        {"model": r["model"], "success": True, "error_type": None, "ttft_ms": r["ttft_ms"],
         "output_speed_tps": r["output_speed_tps"]} for r in run.results]}
    job = JobModel.get(report.claimed[0])
    assert job.status == "done" and job.result_ref == run.run_id
    types = [m["type"] for m in recorded_events.messages(user_id=user)]
    assert types[0] == "job_created" and types[1] == "job_started"
    assert types[2] == "benchmark_init" and types[-1] == "job_completed"
    assert types.count("benchmark_result") == 3
    assert all(m["job_id"] == job.job_id for m in recorded_events.messages(user_id=user))


def test_trigger_answers_at_once_and_rephases_the_schedule(user, clock, client, lambda_invokes):
    from tests.conftest import Api

    api = Api(client, token=_token(user))
    schedule_id = make_schedule(user, ["fake/t"], interval_hours=6)
    clock.advance(hours=2)

    status, data = api.post(f"/api/schedules/{schedule_id}/trigger")

    assert status == 200
    assert data == {"status": "ok", "message": "Benchmark triggered", "job_id": data["job_id"]}
    assert runs_of(user) == []  # answered before running anything
    assert lambda_invokes.job_ids == [data["job_id"]]
    lambda_invokes.run_pending()
    [run] = runs_of(user)
    assert run.metadata["trigger"] == "manual" and run.metadata["source"] == "schedule"
    after = schedule(user, schedule_id)
    assert after.last_run == "2026-11-30T11:00:00.000000Z"
    assert after.next_run == "2026-11-30T17:00:00.000000Z"  # finish + interval


def test_trigger_of_another_users_schedule_is_404(user, client, lambda_invokes):
    from tests.conftest import Api

    schedule_id = make_schedule(user, ["fake/t"])
    other = Api(client, token=_token("u-" + "b" * 30))
    status, data = other.post(f"/api/schedules/{schedule_id}/trigger")
    assert status == 404 and data["detail"] == {"schedule_id": schedule_id}
    assert lambda_invokes.payloads == []


def _token(user_id: str) -> str:
    """A token for the fixture's user, who is stored as a user (a token of a user who does
    not exist is refused)."""
    from chalicelib import auth
    from chalicelib.tables import UserModel

    UserModel(user_id, email=f"{user_id}@example.com", role="user", created_at=app_clock.now_iso()).save()
    return auth.issue_token(auth.User(user_id, f"{user_id}@example.com", "user"))


# --- exactly once ---------------------------------------------------------------------------


def test_four_ticks_racing_over_80_due_schedules_make_exactly_80_jobs(user, clock, lambda_invokes):
    created = {make_schedule(user, ["fake/t"]) for _ in range(80)}
    clock.advance(hours=1, seconds=1)
    barrier = threading.Barrier(4)
    reports = []

    def one_tick():
        barrier.wait()
        reports.append(tick.run())

    threads = [threading.Thread(target=one_tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [job_id for report in reports for job_id in report.claimed]
    assert len(claimed) == len(set(claimed)) == 80
    assert len(lambda_invokes.payloads) == 80
    assert sorted(lambda_invokes.job_ids) == sorted(claimed)
    jobs_made = list(JobModel.scan())
    assert len(jobs_made) == 80
    assert {j.schedule_id for j in jobs_made} == created
    assert set(lambda_invokes.function_names) == {"benchmark-scheduler-test-runner"}


def test_a_retried_tick_changes_nothing(user, clock, lambda_invokes):
    make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    first = tick.run(clock())
    again = tick.run(clock())
    assert len(first.claimed) == 1 and again.claimed == [] and again.dispatched == 0
    assert JobModel.count() == 1 and len(lambda_invokes.payloads) == 1


def test_a_tick_that_saw_an_old_due_time_cannot_claim_it_again(user, clock):
    schedule_id = make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    [due] = tick.find_due(clock())
    assert tick.claim(due, clock()) is not None
    assert tick.claim(due, clock()) is None  # the same due time, seen by a slower tick
    assert schedule(user, schedule_id).next_run == "2026-11-30T11:00:00.000000Z"


def test_a_duplicate_runner_delivery_changes_nothing(user, clock, lambda_invokes):
    make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    first = runner.handle({"job_id": job_id})
    second = runner.handle({"job_id": job_id})
    assert first["status"] == "done" and second == {"status": "skipped", "job_id": job_id}
    assert len(runs_of(user)) == 1
    assert SlotModel.get(user).active == 0


@pytest.mark.parametrize(
    "event, outcome",
    [({}, "ignored"), ({"job_id": 5}, "ignored"), ({"job_id": ""}, "ignored"), ([], "ignored"),
     ("x", "ignored"), ({"job_id": "nope"}, "skipped")],
)
def test_the_runner_ignores_malformed_or_unknown_payloads(aws, event, outcome):
    assert runner.handle(event)["status"] == outcome


def test_disabled_schedules_never_run(user, clock, lambda_invokes):
    schedule_id = make_schedule(user, ["fake/t"])
    schedules.update(user, schedule_id, schedules.ScheduleUpdate(enabled=False))
    clock.advance(hours=30)
    assert tick.run().claimed == []
    assert lambda_invokes.payloads == [] and JobModel.count() == 0


def test_five_missed_intervals_make_one_run_and_keep_the_phase(user, clock, lambda_invokes):
    schedule_id = make_schedule(user, ["fake/t"], interval_hours=2)  # due 11:00
    clock.advance(hours=12, minutes=30)  # 21:30: due times 11, 13, 15, 17, 19, 21 all passed
    assert len(tick.run().claimed) == 1
    assert schedule(user, schedule_id).next_run == "2026-11-30T23:00:00.000000Z"
    assert tick.run().claimed == []
    lambda_invokes.run_pending()
    assert len(runs_of(user)) == 1


@pytest.mark.parametrize("change", ["delete", "disable"])
def test_a_job_whose_schedule_went_away_ends_cancelled_and_saves_nothing(
    user, clock, lambda_invokes, recorded_events, change
):
    schedule_id = make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    if change == "delete":
        schedules.delete(user, schedule_id)
    else:
        schedules.update(user, schedule_id, schedules.ScheduleUpdate(enabled=False))
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "cancelled"
    job = JobModel.get(job_id)
    word = {"delete": "deleted", "disable": "disabled"}[change]
    assert job.status == "cancelled" and job.error_msg == f"Schedule was {word} before the run started"
    assert runs_of(user) == [] and SlotModel.get(user).active == 0
    assert recorded_events.messages("job_cancelled", user_id=user) == [{"type": "job_cancelled", "job_id": job_id}]


# --- keeping up, whatever one user does ------------------------------------------------------


class LambdaTime:
    """A tick's remaining Lambda time that only work uses up: 8 ms per DynamoDB request
    (of the kind named, or any), counted one after another although the tick sends them in
    parallel (pessimistic). No test here depends on the machine's speed."""

    def __init__(self, calls, start_ms: int = 60_000, per_request_ms: int = 8, kind: str | None = None):
        self.calls, self.start_ms, self.per_request_ms, self.kind = calls, start_ms, per_request_ms, kind

    def __call__(self) -> int:
        spent = self.calls.by_name[self.kind] if self.kind else self.calls.total
        return self.start_ms - self.per_request_ms * spent


def seed_overdue_queued(user_id: str, count: int, now) -> None:
    """`count` queued jobs whose dispatch grace ran out long ago (the reviewer's setup)."""
    created = now - timedelta(hours=1)
    with JobModel.batch_write() as batch:
        for i in range(count):
            job_id = f"{i:032x}"
            batch.save(JobModel(
                job_id, user_id=user_id, job_type="benchmark", status="queued", params={},
                created_at=app_clock.iso(created + timedelta(microseconds=i)), queued_user=user_id,
                live_user=user_id, active_shard=jobs.rules.shard_of(job_id), counts_waiting=True,
                lease_until=app_clock.iso(created + timedelta(minutes=2)),
            ))
    SlotModel(user_id).update(actions=[SlotModel.queued.add(count), SlotModel.waiting.add(count)])


def test_thousands_of_queued_jobs_of_one_user_do_not_stall_another_users_schedules(user, clock, lambda_invokes):
    hog = "u-" + "h" * 30
    due = {make_schedule(user, ["fake/t"]) for _ in range(30)}
    clock.advance(hours=1)
    running = jobs.submit("benchmark", hog, {})
    assert jobs.start(running.job_id) is not None  # holds the hog's only slot, alive
    seed_overdue_queued(hog, 2_000, clock())
    lambda_invokes.payloads.clear()

    with counting_dynamodb_calls() as calls:
        report = tick.run(remaining_ms=LambdaTime(calls))

    assert len(report.claimed) == 30 and report.dispatched == 30 and report.left_due == 0
    assert {JobModel.get(job_id).schedule_id for job_id in report.claimed} == due
    assert sorted(lambda_invokes.job_ids) == sorted(report.claimed)  # none of the hog's 2,000
    assert report.redispatched == 0 and "UpdateItem" not in calls.by_name
    assert calls.total < 100  # the hog's queue costs index reads, not a request per job


def test_a_tick_out_of_time_leaves_the_rest_due_and_the_next_tick_claims_it(user, clock, lambda_invokes, monkeypatch):
    monkeypatch.setattr(tick, "MAX_PARALLEL", 4)
    for _ in range(40):
        make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    with counting_dynamodb_calls() as calls:
        # the margin (TICK_DEADLINE_MARGIN_S, 10 s) is reached after 15 claims
        first = tick.run(remaining_ms=LambdaTime(calls, start_ms=10_000 + 8 * 15, kind="TransactWriteItems"))
    assert 15 <= len(first.claimed) <= 15 + tick.MAX_PARALLEL  # what was in flight completes
    assert first.dispatched == len(first.claimed) == first.due - first.left_due  # read, not tried
    assert first.due <= 40  # reading stops too: the unread stay due
    clock.advance(minutes=1)
    second = tick.run()
    assert sorted(first.claimed + second.claimed) == sorted(lambda_invokes.job_ids)
    assert len(set(lambda_invokes.job_ids)) == 40 == JobModel.count()


def test_each_job_is_dispatched_as_soon_as_it_is_claimed(user, clock, lambda_invokes, monkeypatch):
    monkeypatch.setattr(tick, "MAX_PARALLEL", 1)
    for _ in range(3):
        make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    invoked_before_claim: list[int] = []

    def claim_seen(**_):
        invoked_before_claim.append(len(lambda_invokes.payloads))

    client = tables._shared_connection().client
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", claim_seen)
    try:
        assert len(tick.run().claimed) == 3
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", claim_seen)
    assert invoked_before_claim == [0, 1, 2]  # not [0, 0, 0]: no waiting for the other claims


def test_announcing_is_off_the_claim_path_and_dropped_when_time_runs_out(user, clock, lambda_invokes):
    from chalicelib import notify

    class Stuck:
        """A notifier that hangs (a slow WebSocket endpoint) until the test is done."""

        def __init__(self) -> None:
            self.release = threading.Event()

        def send_to_user(self, user_id, message):
            self.release.wait(30)

    stuck = Stuck()
    previous = notify.use(stuck)
    for _ in range(6):
        make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    asked = iter(range(1_000_000))
    try:
        report = tick.run(remaining_ms=lambda: 60_000 - 500 * next(asked))  # 0.5 s per look
    finally:
        stuck.release.set()
        notify.use(previous)
    assert len(report.claimed) == 6 and report.dispatched == 6
    assert report.announced == 0  # every job_created was stuck; none held up a claim


def test_the_tick_function_passes_its_remaining_time_in(user, clock, lambda_invokes):
    from app import tick as tick_function

    class Context:
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 9_000  # below the 10 s margin: nothing new may start

    made = [make_schedule(user, ["fake/t"]) for _ in range(3)]
    clock.advance(hours=1)
    event = {"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "1", "time": "2026-11-30T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}
    summary = tick_function(event, Context())
    assert summary["claimed"] == summary["due"] == 0 and lambda_invokes.payloads == []
    assert len(tick.find_due(clock())) == len(made)  # all still due, for the next tick


def test_triggers_beyond_the_waiting_cap_answer_429_naming_the_limit(user, client, lambda_invokes, monkeypatch):
    from tests.conftest import Api

    monkeypatch.setenv("MAX_WAITING_JOBS_PER_USER", "3")
    api = Api(client, token=_token(user))
    schedule_id = make_schedule(user, ["fake/t"])
    answers = [api.post(f"/api/schedules/{schedule_id}/trigger") for _ in range(4)]
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert answers[-1][1] == {"error": "Too many waiting jobs (at most 3 per user)", "detail": {"limit": 3}}
    assert len(lambda_invokes.payloads) == 3 and JobModel.count() == 3


# --- failures -------------------------------------------------------------------------------


class LambdaDied(BaseException):
    """What a killed Lambda looks like from inside: nothing after this line runs."""


def test_a_runner_that_dies_mid_run_is_interrupted_by_the_next_tick(user, clock, lambda_invokes, recorded_events, monkeypatch):
    make_schedule(user, ["fake/t", "anth/t"])
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    original = runner._run_one
    calls = []

    def die_after_first(*args, **kwargs):
        if calls:
            raise LambdaDied()
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_one", die_after_first)
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "60")
    with pytest.raises(LambdaDied):
        lambda_invokes.run_pending()
    assert JobModel.get(job_id).status == "running" and SlotModel.get(user).active == 1

    clock.advance(minutes=1)
    tick.run()
    assert JobModel.get(job_id).status == "running"  # the lease still holds
    clock.advance(minutes=5)
    tick.run()
    job = JobModel.get(job_id)
    assert job.status == "interrupted"
    assert SlotModel.get(user).active == 0
    assert recorded_events.messages("job_failed", user_id=user)[-1]["job_id"] == job_id
    assert runs_of(user) == []


def test_two_triggers_with_limit_one_run_one_after_the_other(user, clock, lambda_invokes):
    from chalicelib import dispatch

    schedule_id = make_schedule(user, ["fake/t"])
    first = dispatch.trigger(user, schedule_id)
    second = dispatch.trigger(user, schedule_id)
    assert JobModel.get(first).status == "pending"
    assert JobModel.get(second).status == "pending"  # nothing runs yet: the slot has room

    # Both invokes arrive while the first still runs: deliver the second mid-run.
    results = {}
    original = runner._run_one

    def second_arrives_mid_run(*args, **kwargs):
        if "second" not in results:
            results["second"] = runner.handle({"job_id": second})
        return original(*args, **kwargs)

    import unittest.mock as mock

    with mock.patch.object(runner, "_run_one", second_arrives_mid_run):
        outcome = runner.handle({"job_id": first})
    assert outcome["status"] == "done"
    assert results["second"] == {"status": "skipped", "job_id": second}
    assert JobModel.get(second).status == "queued"  # no slot while the first ran
    # finishing the first dispatched the queued second
    assert second in lambda_invokes.job_ids
    lambda_invokes.run_pending()
    assert JobModel.get(second).status == "done"
    assert len(runs_of(user)) == 2 and SlotModel.get(user).active == 0


def test_cancel_mid_stream_stops_the_stream_and_saves_nothing(user, clock, lambda_invokes, provider_server):
    """With the production poll period (RUNNER_POLL_SECONDS, 2 s; the bound itself is
    proven with simulated time in test_jobs_watch)."""
    from devstack.fake_providers import Behaviour

    provider_server.set_behaviour("endless", Behaviour(ttft_s=0.05, itl_s=0.02, tokens=100_000))  # 33 min
    add_provider(user, "slowpoke", "openai", provider_server, ["endless"])
    make_schedule(user, ["slowpoke/endless"])
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    outcome = {}
    streaming = len(provider_server.requests)
    worker = threading.Thread(target=lambda: outcome.update(lambda_invokes.run_pending()[0]))
    worker.start()
    _wait_until(lambda: len(provider_server.requests) > streaming)  # the stream is under way
    jobs.cancel(job_id, user)
    worker.join(timeout=60)  # a guard against a hang, not a measurement
    assert not worker.is_alive()
    assert outcome["status"] == "cancelled"
    assert JobModel.get(job_id).status == "cancelled"
    assert runs_of(user) == [] and SlotModel.get(user).active == 0


def test_one_provider_failing_does_not_stop_the_others(user, clock, lambda_invokes):
    schedule_id = make_schedule(user, ["fake/err-500", "anth/t", "gem/t"])
    clock.advance(hours=1)
    tick.run()
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "done"
    [run] = runs_of(user)
    by_model = {r["model"]: r for r in run.results}
    assert by_model["fake/err-500"]["success"] is False
    assert by_model["fake/err-500"]["error_type"] == "http_500"
    assert by_model["anth/t"]["success"] and by_model["gem/t"]["success"]
    # The schedule says so at a glance: partial, which model failed and why, no figures for it.
    glance = schedule(user, schedule_id).last_result
    assert glance["run_id"] == run.run_id and glance["status"] == "partial"
    assert glance["models"][0] == {"model": "fake/err-500", "success": False, "error_type": "http_500",
                                   "ttft_ms": None, "output_speed_tps": None}
    assert [m["success"] for m in glance["models"][1:]] == [True, True]


@pytest.fixture
def served(monkeypatch):
    """(provider kind, model, handling began, response fully written) for every request the
    fake providers answer: the interval each request occupied at the provider."""
    from devstack import fake_providers

    intervals: list[tuple[str, str, float, float]] = []
    current = threading.local()
    record, do_post = fake_providers._Server.record, fake_providers._Handler.do_POST

    def remember(server, request):
        current.request = request
        record(server, request)

    def timed(handler):
        current.request, began = None, time.monotonic()
        try:
            do_post(handler)
        finally:
            request = current.request
            if request is not None:
                model = request.body.get("model") or request.path.rsplit("/models/", 1)[-1].split(":")[0]
                intervals.append((request.kind, model, began, time.monotonic()))

    monkeypatch.setattr(fake_providers._Server, "record", remember)
    monkeypatch.setattr(fake_providers._Handler, "do_POST", timed)
    return intervals


def test_providers_run_in_parallel_and_one_providers_models_in_sequence(user, clock, lambda_invokes, provider_server, served):
    from devstack.fake_providers import Behaviour

    provider_server.set_behaviour("slow2", Behaviour(ttft_s=0.3, itl_s=0.01, tokens=50))  # ~0.8 s
    add_provider(user, "fake", "openai", provider_server, ["slow2", "t", "slow1"])
    make_schedule(user, ["fake/slow2", "fake/t", "fake/slow1", "anth/t", "gem/t"])
    clock.advance(hours=1)
    tick.run()
    lambda_invokes.run_pending()
    openai = sorted((began, ended, model) for kind, model, began, ended in served if kind == "openai")
    assert [model for _b, _e, model in openai] == ["slow2", "t", "slow1"]  # the schedule's order
    for (_b, ended, _m), (began, _e, _n) in zip(openai, openai[1:]):
        assert ended <= began  # each request was over at the provider before the next one came
    others = [(began, ended) for kind, _m, began, ended in served if kind != "openai"]
    assert len(others) == 2
    first_ended = openai[0][1]
    assert all(began < first_ended for began, _e in others)  # they did not wait for openai's


def test_builtin_models_without_a_key_fail_clearly_without_a_request(user, clock, lambda_invokes):
    make_schedule(user, ["gpt-4o-mini", "fake/t"])
    clock.advance(hours=1)
    tick.run()
    lambda_invokes.run_pending()
    [run] = runs_of(user)
    gpt = run.results[0]
    assert gpt["success"] is False and gpt["error_type"] == "auth_failed"
    assert "No API key" in gpt["error"]


def test_the_runner_stops_before_the_lambda_deadline(user, clock, lambda_invokes, monkeypatch):
    monkeypatch.setenv("RUNNER_DEADLINE_MARGIN_S", "0")
    make_schedule(user, ["fake/long", "fake/t"])
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    deadline = time.monotonic() + 1.0
    [outcome] = lambda_invokes.run_pending(remaining_ms=lambda: int((deadline - time.monotonic()) * 1000))
    assert outcome["status"] == "failed"
    assert "Lambda deadline" in outcome["error"]
    job = JobModel.get(job_id)
    assert job.status == "failed" and "2 of 2 models did not finish" in job.error_msg
    [run] = runs_of(user)
    assert [r["error_type"] for r in run.results] == ["deadline", "deadline"]
    assert SlotModel.get(user).active == 0


def _wait_until(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_next_on_phase_is_the_first_due_time_after_now():
    base = app_clock.parse("2026-11-30T09:00:00.000000Z")
    assert schedules.next_on_phase(base, 2, base) == base + timedelta(hours=2)
    assert schedules.next_on_phase(base, 2, base + timedelta(hours=1)) == base + timedelta(hours=2)
    assert schedules.next_on_phase(base, 2, base + timedelta(hours=2)) == base + timedelta(hours=4)
    assert schedules.next_on_phase(base, 2, base + timedelta(hours=9, minutes=59)) == base + timedelta(hours=10)


def test_a_key_that_no_longer_decrypts_fails_its_models_without_running_keyless(
    user, clock, lambda_invokes, monkeypatch, provider_server
):
    from chalicelib import keys

    def broken(user_id, provider_key):
        raise keys.KeyVaultError("Stored key could not be decrypted")

    monkeypatch.setattr(keys, "get_api_key", broken)
    make_schedule(user, ["fake/t"])
    clock.advance(hours=1)
    tick.run()
    before = len(provider_server.requests)
    lambda_invokes.run_pending()
    [run] = runs_of(user)
    assert run.results[0]["error_type"] == "auth_failed"
    assert "could not be decrypted" in run.results[0]["error"]
    assert len(provider_server.requests) == before
