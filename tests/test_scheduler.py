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
from chalicelib import jobs, runner, schedules, tick
from chalicelib.tables import JobModel, ProviderModel, RunModel, ScheduleModel, SlotModel


@pytest.fixture(autouse=True)
def fast_runner(monkeypatch):
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
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
    provider_server.set_behaviour("long", Behaviour(ttft_s=0.05, itl_s=0.02, tokens=1000))
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


def test_four_ticks_racing_over_200_due_schedules_make_exactly_200_jobs(user, clock, lambda_invokes):
    created = {make_schedule(user, ["fake/t"]) for _ in range(200)}
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
    assert len(claimed) == len(set(claimed)) == 200
    assert len(lambda_invokes.payloads) == 200
    assert sorted(lambda_invokes.job_ids) == sorted(claimed)
    jobs_made = list(JobModel.scan())
    assert len(jobs_made) == 200
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


@pytest.mark.parametrize("event", [{}, {"job_id": 5}, {"job_id": ""}, [], "x", {"job_id": "nope"}])
def test_the_runner_ignores_malformed_or_unknown_payloads(aws, event):
    assert runner.handle(event)["status"] in ("ignored", "skipped")


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
    assert job.status == "cancelled" and ("deleted" in job.error_msg or "disabled" in job.error_msg)
    assert runs_of(user) == [] and SlotModel.get(user).active == 0
    assert recorded_events.messages("job_cancelled", user_id=user) == [{"type": "job_cancelled", "job_id": job_id}]


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
    assert JobModel.get(second).status in ("pending", "queued")

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
    make_schedule(user, ["fake/long"])  # 1,000 tokens at 20 ms: 20 s if not stopped
    clock.advance(hours=1)
    job_id = tick.run().claimed[0]
    outcome = {}
    started = time.monotonic()
    worker = threading.Thread(target=lambda: outcome.update(lambda_invokes.run_pending()[0]))
    worker.start()
    _wait_until(lambda: JobModel.get(job_id).status == "running")
    time.sleep(0.3)  # let the stream get going
    jobs.cancel(job_id, user)
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert time.monotonic() - started < 10
    assert outcome["status"] == "cancelled"
    assert JobModel.get(job_id).status == "cancelled"
    assert runs_of(user) == [] and SlotModel.get(user).active == 0


def test_one_provider_failing_does_not_stop_the_others(user, clock, lambda_invokes):
    make_schedule(user, ["fake/err-500", "anth/t", "gem/t"])
    clock.advance(hours=1)
    tick.run()
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "done"
    [run] = runs_of(user)
    by_model = {r["model"]: r for r in run.results}
    assert by_model["fake/err-500"]["success"] is False
    assert by_model["fake/err-500"]["error_type"] == "http_500"
    assert by_model["anth/t"]["success"] and by_model["gem/t"]["success"]


def test_providers_run_in_parallel_and_one_providers_models_in_sequence(user, clock, lambda_invokes, provider_server):
    make_schedule(user, ["fake/slow1", "fake/t", "anth/t"])
    clock.advance(hours=1)
    tick.run()
    before = len(provider_server.requests)
    lambda_invokes.run_pending()
    seen = provider_server.requests[before:]  # in order of arrival
    fake = [i for i, r in enumerate(seen) if "/openai/" in r.path]
    anth = [i for i, r in enumerate(seen) if "/anthropic/" in r.path]
    assert [seen[i].body["model"] for i in fake] == ["slow1", "t"]
    assert anth[0] < fake[1]  # anthropic did not wait for openai's models


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
