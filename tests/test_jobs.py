"""The job registry, one behaviour at a time (single thread; races are in test_jobs_races)."""
from __future__ import annotations

import pytest
from pynamodb.attributes import TTLAttribute

from chalicelib import jobs, notify, payloads, writes
from chalicelib.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from chalicelib import clock as app_clock
from chalicelib.jobs import reaper
from chalicelib.tables import CancelSignalModel, JobModel, SlotModel, UserModel
from tests.items import slot, status_of
from tests.recording import counting_dynamodb_calls

U1, U2 = "user-1", "user-2"


def submit(user_id=U1, **kw):
    return jobs.submit("benchmark", user_id, {"schedule_id": "s1"}, **kw)


def running_job(user_id=U1, **kw):
    job = submit(user_id, **kw)
    assert jobs.start(job.job_id) is not None
    return job


def types(recorder, job_id=None):
    return [m["type"] for m in recorder.messages() if job_id is None or m["job_id"] == job_id]


# --- submit ---------------------------------------------------------------------------------


def test_submit_makes_a_pending_job_and_announces_it(events, clock):
    job = submit(schedule_id="s1")
    stored = JobModel.get(job.job_id)
    assert stored.status == "pending" and stored.user_id == U1 and stored.params == {"schedule_id": "s1"}
    assert stored.created_at == "2026-11-30T09:00:00.000000Z"
    assert events.messages() == [
        {
            "type": "job_created",
            "job_id": job.job_id,
            "job_type": "benchmark",
            "status": "pending",
            "progress_detail": None,
            "created_at": "2026-11-30T09:00:00.000000Z",
        }
    ]


def test_submit_at_the_limit_makes_a_queued_job(events):
    running_job()
    job = submit()
    assert status_of(job.job_id) == "queued"
    assert events.messages("job_created")[-1]["status"] == "queued"
    assert slot(U1)["queued"] == 1


def test_a_duplicate_job_id_is_reported_not_overwritten(events):
    submit(job_id="same")
    with pytest.raises(jobs.DuplicateJob):
        jobs.submit("other", U2, {}, job_id="same")
    stored = JobModel.get("same")
    assert stored.user_id == U1 and stored.job_type == "benchmark"
    assert len(events.messages("job_created")) == 1


def test_a_built_job_put_as_new_is_created_once(events):
    job = jobs.build_job("benchmark", U1, {}, job_id="tick-job", schedule_id="s1")
    assert writes.Tx().put("job", job, jobs.NEW_JOB).commit() == {}
    jobs.announce_created(job)
    again = jobs.build_job("benchmark", U1, {}, job_id="tick-job", schedule_id="s1")
    assert set(writes.Tx().put("job", again, jobs.NEW_JOB).commit()) == {"job"}
    assert status_of("tick-job") == "pending" and types(events) == ["job_created"]


# --- the waiting cap --------------------------------------------------------------------------


def test_submit_beyond_the_waiting_cap_is_429_naming_the_limit(events, monkeypatch):
    monkeypatch.setenv("MAX_WAITING_JOBS_PER_USER", "3")
    accepted = [submit() for _ in range(3)]
    with pytest.raises(TooManyRequests) as caught:
        submit()
    assert caught.value.status == 429
    assert caught.value.body() == {"error": "Too many waiting jobs (at most 3 per user)", "detail": {"limit": 3}}
    assert JobModel.count() == 3 and len(events.messages("job_created")) == 3
    assert slot(U1)["waiting"] == 3 and all(JobModel.get(j.job_id).counts_waiting for j in accepted)
    assert submit(U2).status == "pending"  # another user is not affected


def test_the_waiting_cap_defaults_to_20_queued_jobs_included(events):
    running_job()  # the limit (1) is reached: what follows is queued
    made = [submit() for _ in range(20)]
    assert {j.status for j in made} == {"queued"}
    with pytest.raises(TooManyRequests) as caught:
        submit()
    assert caught.value.detail == {"limit": 20}
    assert slot(U1) == {"user_id": U1, "active": 1, "queued": 20, "waiting": 20}


def test_leaving_pending_or_queued_gives_the_place_back_once(events, monkeypatch):
    monkeypatch.setenv("MAX_WAITING_JOBS_PER_USER", "3")
    started, cancelled_pending = submit(), submit()
    assert jobs.start(started.job_id) is not None  # pending → running
    queued = submit()  # the limit is reached: queued
    assert queued.status == "queued" and slot(U1)["waiting"] == 2  # the started one left
    jobs.cancel(cancelled_pending.job_id, U1)  # pending → cancelled
    jobs.cancel(queued.job_id, U1)  # queued → cancelled
    assert slot(U1)["waiting"] == 0
    jobs.finish(started.job_id, "done")  # a running job never counted
    assert slot(U1) == {"user_id": U1, "active": 0, "queued": 0, "waiting": 0}
    assert len([submit() for _ in range(3)]) == 3


def test_the_ticks_jobs_do_not_count_and_are_never_refused(events, monkeypatch):
    """A schedule's due run is never dropped for the cap: the tick puts its jobs without it."""
    monkeypatch.setenv("MAX_WAITING_JOBS_PER_USER", "1")
    submit()
    for i in range(3):
        job = jobs.build_job("benchmark", U1, {}, job_id=f"tick-{i}", schedule_id="s1")
        assert writes.Tx().put("job", job, jobs.NEW_JOB).commit() == {}
    assert jobs.start("tick-0") is not None and jobs.start("tick-1") is None  # queued, not counted
    assert slot(U1) == {"user_id": U1, "active": 1, "queued": 1, "waiting": 1}
    with pytest.raises(TooManyRequests):
        submit()


# --- start ----------------------------------------------------------------------------------


def test_start_runs_a_pending_job_and_takes_a_slot(events, clock):
    job = submit()
    started = jobs.start(job.job_id)
    assert started.status == "running" and started.params == {"schedule_id": "s1"}
    stored = JobModel.get(job.job_id)
    assert stored.started_at == "2026-11-30T09:00:00.000000Z"
    assert stored.timeout_at == "2026-11-30T09:15:00.000000Z"  # + JOB_TIMEOUT_SECONDS (900)
    assert stored.lease_until == "2026-11-30T09:03:00.000000Z"  # + JOB_LEASE_SECONDS (180)
    assert slot(U1)["active"] == 1
    assert types(events, job.job_id) == ["job_created", "job_started"]


def test_start_without_a_free_slot_queues_the_job(events):
    running_job()
    job = submit(U1)  # queued at submit already
    other = jobs.build_job("benchmark", U1, {}, job_id="pending-one")
    # the tick's way: pending whatever the slot says
    assert writes.Tx().put("job", other, jobs.NEW_JOB).commit() == {}
    assert jobs.start(job.job_id) is None and status_of(job.job_id) == "queued"
    assert jobs.start("pending-one") is None and status_of("pending-one") == "queued"
    assert JobModel.get("pending-one").queued_user == U1
    # both queued; only the submitted one counts against the waiting cap
    assert slot(U1) == {"user_id": U1, "active": 1, "queued": 2, "waiting": 1}


def test_start_of_a_job_in_any_other_status_has_no_effect(events):
    job = running_job()
    assert jobs.start(job.job_id) is None  # a duplicate delivery
    jobs.finish(job.job_id, "done")
    assert jobs.start(job.job_id) is None
    assert jobs.start("no-such-job") is None
    assert status_of(job.job_id) == "done" and slot(U1)["active"] == 0


def test_the_limit_defaults_from_the_environment(events, monkeypatch):
    monkeypatch.setenv("DEFAULT_MAX_CONCURRENT", "3")
    started = [jobs.start(submit().job_id) for _ in range(4)]
    assert [j is not None for j in started] == [True, True, True, False]


def test_users_do_not_block_each_other(events):
    running_job(U1)
    assert submit(U1).status == "queued"
    other = submit(U2)
    assert other.status == "pending" and jobs.start(other.job_id) is not None
    assert slot(U1)["active"] == 1 and slot(U2)["active"] == 1


# --- progress and finish --------------------------------------------------------------------


def test_progress_stores_and_reports_no_cancel_leaving_the_lease_to_the_watch(events, clock):
    job = running_job()
    clock.advance(seconds=100)
    assert jobs.progress(job.job_id, 40, "model 2 of 5") is False
    stored = JobModel.get(job.job_id)
    assert (stored.progress_pct, stored.progress_detail) == (40, "model 2 of 5")
    assert stored.lease_until == "2026-11-30T09:03:00.000000Z"  # as start set it
    assert events.messages("job_progress") == [
        {"type": "job_progress", "job_id": job.job_id, "progress_pct": 40, "progress_detail": "model 2 of 5"}
    ]


def test_progress_or_heartbeat_of_a_job_not_running_says_stop(events):
    job = submit()
    assert jobs.progress(job.job_id, 10, "x") is True
    assert jobs.heartbeat(job.job_id) is True
    assert JobModel.get(job.job_id).progress_pct == 0 and not events.messages("job_progress")


def test_heartbeat_only_renews_the_lease(events, clock):
    job = running_job()
    clock.advance(seconds=60)
    assert jobs.heartbeat(job.job_id) is False
    stored = JobModel.get(job.job_id)
    assert stored.lease_until == "2026-11-30T09:04:00.000000Z" and stored.progress_detail is None
    assert not events.messages("job_progress")


def test_the_lease_never_runs_past_the_timeout(events, clock, monkeypatch):
    job = running_job()
    clock.advance(seconds=800)
    jobs.heartbeat(job.job_id)
    assert JobModel.get(job.job_id).lease_until == "2026-11-30T09:15:00.000000Z"
    # also when renewed by a process that does not remember starting it
    monkeypatch.setattr(jobs.lifecycle, "_owners", jobs.lifecycle._Owners())
    clock.advance(seconds=50)
    jobs.heartbeat(job.job_id)
    assert JobModel.get(job.job_id).lease_until == "2026-11-30T09:15:00.000000Z"


@pytest.mark.parametrize(
    "status, kwargs, event",
    [
        ("done", {"result_ref": "run-1"}, {"type": "job_completed", "result_ref": "run-1"}),
        ("failed", {"error": "boom"}, {"type": "job_failed", "error": "boom"}),
        ("interrupted", {}, {"type": "job_failed", "error": "Job interrupted"}),
        ("cancelled", {}, {"type": "job_cancelled"}),
    ],
)
def test_finish_ends_the_job_frees_the_slot_and_tells(events, clock, status, kwargs, event):
    job = running_job()
    clock.advance(seconds=30)
    assert jobs.finish(job.job_id, status, **kwargs) is None
    stored = JobModel.get(job.job_id)
    assert stored.status == status and stored.completed_at == "2026-11-30T09:00:30.000000Z"
    assert stored.active_shard is None and stored.lease_until is None  # out of the sparse GSI
    assert stored.result_ref == kwargs.get("result_ref")
    assert stored.error_msg == event.get("error")
    assert slot(U1)["active"] == 0
    assert events.messages()[-1] == {**event, "job_id": job.job_id}


def test_finish_returns_the_next_queued_job_oldest_first(events, clock):
    first = running_job()
    waiting = []
    for _ in range(3):
        clock.advance(seconds=1)
        waiting.append(submit().job_id)
    nxt = jobs.finish(first.job_id, "done")
    assert nxt.job_id == waiting[0] and nxt.user_id == U1


def test_finish_of_a_job_not_running_is_refused_and_changes_nothing(events):
    job = submit()
    assert jobs.finish(job.job_id, "done") is None
    assert status_of(job.job_id) == "pending" and slot(U1) == {"user_id": U1, "active": 0, "waiting": 1}
    assert jobs.finish("no-such-job", "failed") is None
    assert types(events) == ["job_created"]


def test_finish_refuses_a_status_a_job_never_moves_to(events):
    job = running_job()
    for status in ("pending", "queued", "running", "bogus"):
        with pytest.raises(jobs.InvalidTransition):
            jobs.finish(job.job_id, status)
    assert status_of(job.job_id) == "running"


@pytest.mark.parametrize("current, to", [("done", "running"), ("queued", "done"), ("pending", "interrupted"), ("cancelled", "queued")])
def test_the_transition_table_refuses_moves_design_does_not_allow(current, to):
    with pytest.raises(jobs.InvalidTransition):
        jobs.rules.leaving(current, to)


def test_finish_works_in_a_process_that_did_not_start_the_job(events, monkeypatch):
    job = running_job()
    monkeypatch.setattr(jobs.lifecycle, "_owners", jobs.lifecycle._Owners())
    jobs.finish(job.job_id, "done")
    assert status_of(job.job_id) == "done" and slot(U1)["active"] == 0


def test_a_stale_memory_of_the_owner_is_corrected_by_the_condition(events):
    job = running_job(U2)
    stale = JobModel(job.job_id, user_id=U1, timeout_at=None)
    jobs.lifecycle._owners.remember(stale)
    jobs.finish(job.job_id, "done")
    assert slot(U2)["active"] == 0 and slot(U1) == {}


# --- queue ----------------------------------------------------------------------------------


def test_the_queue_is_fifo_per_user(events, clock):
    current = running_job()
    waiting = []
    for _ in range(4):
        clock.advance(seconds=1)
        job = submit()
        assert jobs.start(job.job_id) is None  # its runner finds no slot
        waiting.append(job.job_id)
    order = []
    while current is not None:
        nxt = jobs.finish(current.job_id, "done")
        if nxt is None:
            break
        order.append(nxt.job_id)
        current = jobs.start(nxt.job_id)
    assert order == waiting
    assert slot(U1) == {"user_id": U1, "active": 0, "queued": 0, "waiting": 0}


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_pending_job_at_once(events):
    job = submit()
    jobs.cancel(job.job_id, U1)
    assert status_of(job.job_id) == "cancelled"
    assert events.messages()[-1] == {"type": "job_cancelled", "job_id": job.job_id}
    assert jobs.start(job.job_id) is None  # a late runner does nothing


def test_cancel_a_queued_job_at_once_and_leave_the_queue(events):
    running_job()
    job = submit()
    jobs.cancel(job.job_id, U1)
    assert status_of(job.job_id) == "cancelled" and JobModel.get(job.job_id).queued_user is None
    assert slot(U1)["queued"] == 0 and slot(U1)["active"] == 1
    assert types(events, job.job_id) == ["job_created", "job_cancelled"]


def test_cancel_a_running_job_asks_the_runner(events):
    job = running_job()
    jobs.cancel(job.job_id, U1)
    assert status_of(job.job_id) == "running" and JobModel.get(job.job_id).cancel_requested
    assert jobs.progress(job.job_id, 50, "half") is True  # the runner sees it ...
    jobs.finish(job.job_id, "cancelled")  # ... and stops
    assert status_of(job.job_id) == "cancelled" and slot(U1)["active"] == 0
    assert types(events, job.job_id)[-1] == "job_cancelled"


@pytest.mark.parametrize("status", ["done", "failed", "cancelled", "interrupted"])
def test_cancel_a_finished_job_is_a_conflict_naming_its_status(events, status):
    job = running_job()
    jobs.finish(job.job_id, status)
    with pytest.raises(Conflict) as caught:
        jobs.cancel(job.job_id, U1)
    assert status in caught.value.error and caught.value.detail["status"] == status


def test_cancel_another_users_or_an_unknown_job_is_not_found(events):
    job = submit(U1)
    with pytest.raises(NotFound):
        jobs.cancel(job.job_id, U2)
    with pytest.raises(NotFound):
        jobs.cancel("no-such-job", U1)
    assert status_of(job.job_id) == "pending"


# --- reap -----------------------------------------------------------------------------------


def redispatched(now, **kwargs) -> list[str]:
    """What one sweep hands back to a runner (dispatch recorded, not sent)."""
    sent: list[str] = []
    report = jobs.reap(now, dispatch=sent.append, **kwargs)
    assert sorted(sent) == sorted(report.redispatched)  # sent in parallel: in any order
    return report.redispatched


def test_an_expired_lease_interrupts_the_job_frees_the_slot_and_tells(events, clock):
    job = running_job()
    clock.advance(seconds=181)
    report = jobs.reap(clock())
    assert (report.interrupted, report.redispatched) == (1, [])
    stored = JobModel.get(job.job_id)
    assert stored.status == "interrupted" and "lease" in stored.error_msg
    assert stored.active_shard is None
    assert slot(U1)["active"] == 0
    assert events.messages()[-1] == {"type": "job_failed", "job_id": job.job_id, "error": stored.error_msg}
    assert jobs.finish(job.job_id, "done") is None  # the late runner changes nothing
    assert slot(U1)["active"] == 0


def test_a_renewed_lease_keeps_the_job(events, clock):
    job = running_job()
    for _ in range(4):
        clock.advance(seconds=100)
        jobs.heartbeat(job.job_id)
        assert redispatched(clock()) == []
    assert status_of(job.job_id) == "running"


def test_running_past_the_timeout_fails_it(events, clock):
    job = running_job()
    for _ in range(9):
        clock.advance(seconds=100)
        jobs.heartbeat(job.job_id)
        jobs.reap(clock())
    assert status_of(job.job_id) == "running"  # 900 s: not yet
    clock.advance(seconds=1)
    jobs.reap(clock())
    stored = JobModel.get(job.job_id)
    assert (stored.status, stored.error_msg) == ("failed", "Timeout exceeded")
    assert events.messages()[-1] == {"type": "job_failed", "job_id": job.job_id, "error": "Timeout exceeded"}
    assert slot(U1)["active"] == 0


def test_a_renewal_the_reaper_did_not_see_wins(events, clock):
    job = running_job()
    clock.advance(seconds=181)
    [seen] = list(JobModel.active.query(JobModel.get(job.job_id).active_shard))  # the reaper's view ...
    jobs.heartbeat(job.job_id)  # ... then the runner renews ...
    assert reaper._end_running(seen, clock()) is False  # ... so the reaper's write is refused
    assert status_of(job.job_id) == "running" and slot(U1)["active"] == 1


def test_a_lost_dispatch_is_returned_once_per_grace_period(events, clock):
    job = submit()
    clock.advance(seconds=119)
    assert redispatched(clock()) == []
    clock.advance(seconds=2)
    assert redispatched(clock()) == [job.job_id]
    assert redispatched(clock()) == []  # not again at the next tick ...
    clock.advance(seconds=121)
    assert redispatched(clock()) == [job.job_id]  # ... but after another grace
    assert status_of(job.job_id) == "pending"


def test_the_dispatch_grace_comes_from_the_environment(events, clock, monkeypatch):
    monkeypatch.setenv("DISPATCH_GRACE_SECONDS", "10")
    job = submit()
    clock.advance(seconds=11)
    assert redispatched(clock()) == [job.job_id]


def test_a_queued_job_whose_wake_up_was_lost_is_returned(events, clock):
    first = running_job()
    job = submit()
    # the finish that should have handed it out "happened" in a crashed runner:
    jobs.finish(first.job_id, "done")
    clock.advance(seconds=121)
    assert redispatched(clock()) == [job.job_id]
    assert jobs.start(job.job_id) is not None


def test_overdue_queued_jobs_of_a_user_at_their_limit_are_left_alone(events, clock):
    """Their user's running job will hand the oldest out when it finishes: a dispatch now
    would only find no room, so the sweep spends neither a write nor an invoke on them."""
    running = running_job()
    waiting = []
    for _ in range(3):
        clock.advance(seconds=1)
        waiting.append(submit().job_id)
    clock.advance(seconds=121)  # the queued jobs are overdue; the running one renews
    jobs.heartbeat(running.job_id)
    leases = {job_id: JobModel.get(job_id).lease_until for job_id in waiting}
    with counting_dynamodb_calls() as calls:
        assert redispatched(clock()) == []
    assert {job_id: JobModel.get(job_id).lease_until for job_id in waiting} == leases
    assert "UpdateItem" not in calls.by_name and "TransactWriteItems" not in calls.by_name
    jobs.finish(running.job_id, "done")  # ... a wake-up lost on the way:
    assert redispatched(clock()) == waiting[:1]  # one slot of room: the oldest, only


def test_reaping_a_job_hands_out_its_users_next_queued_job(events, clock):
    running_job()
    clock.advance(seconds=100)
    waiting = submit()  # queued; looked at again at 09:03:40 if nobody hands it out
    clock.advance(seconds=81)  # 09:03:01: the first lease ran out, the queued job is not lost
    assert redispatched(clock()) == [waiting.job_id]
    assert JobModel.get(waiting.job_id).lease_until == "2026-11-30T09:03:40.000000Z"


def test_the_sweep_reads_index_entries_and_slots_never_a_scan_or_a_job(events, clock):
    for i in range(5):
        running_job(f"{U1}{i}")
    clock.advance(seconds=100)
    submit(f"{U1}0")  # queued behind the first user's running job, not overdue
    clock.advance(seconds=81)
    with counting_dynamodb_calls() as calls:
        report = jobs.reap(clock())
    assert report.interrupted == 5
    assert dict(calls.by_name) == {
        "Query": jobs.rules.active_shards() + 1,  # every shard, and the queue of the one who waits
        "BatchGetItem": 1,  # the five users' slots
        "TransactWriteItems": 5,  # each reaped job with its slot
    }


def test_at_most_the_cap_is_redispatched_per_sweep_oldest_first(events, clock, monkeypatch):
    monkeypatch.setenv("REAPER_MAX_REDISPATCH", "7")
    lost = []
    for i in range(20):
        clock.advance(seconds=1)
        lost.append(submit(f"user-{i}").job_id)
    clock.advance(seconds=121)
    first = redispatched(clock())
    assert first == lost[:7]
    assert redispatched(clock()) == lost[7:14]
    assert redispatched(clock()) == lost[14:]


def test_the_sweep_starts_nothing_once_out_of_time(events, clock):
    running = running_job()
    submit(U2)
    clock.advance(seconds=181)
    report = jobs.reap(clock(), dispatch=lambda _: True, out_of_time=lambda: True)
    assert (report.interrupted, report.redispatched) == (0, [])
    assert status_of(running.job_id) == "running"  # the next sweep's


# --- finished jobs expire --------------------------------------------------------------------


def test_every_way_a_job_ends_sets_its_expiry_30_days_on(events, clock):
    done = running_job()
    clock.advance(seconds=10)
    jobs.finish(done.job_id, "done")
    cancelled = submit()
    jobs.cancel(cancelled.job_id, U1)
    reaped = running_job(U2)
    clock.advance(seconds=181)
    jobs.reap(clock())
    for job_id, ended in ((done.job_id, "09:00:10"), (cancelled.job_id, "09:00:10"), (reaped.job_id, "09:03:11")):
        stored = JobModel.get(job_id)
        assert stored.completed_at == f"2026-11-30T{ended}.000000Z"
        assert app_clock.iso(stored.expires_at) == f"2026-12-30T{ended}.000000Z"


def test_a_live_job_never_expires_and_the_days_are_a_setting(events, clock, monkeypatch):
    monkeypatch.setenv("JOB_TTL_DAYS", "7")
    job = running_job()
    assert JobModel.get(job.job_id).expires_at is None
    jobs.finish(job.job_id, "failed", error="x")
    assert app_clock.iso(JobModel.get(job.job_id).expires_at) == "2026-12-07T09:00:00.000000Z"


def test_the_jobs_table_expires_items_by_expires_at_and_runs_never_expire(aws):
    import boto3

    from chalicelib import tables
    from chalicelib.tables import RunModel

    described = boto3.client("dynamodb").describe_time_to_live(TableName=JobModel.Meta.table_name)
    assert described["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    assert RunModel not in tables.TTL_ATTRIBUTES
    assert not any(isinstance(a, TTLAttribute) for a in RunModel.get_attributes().values())


# --- cancel signal and index projections -------------------------------------------------------


def test_a_cancel_is_seen_by_one_read_of_a_small_item(events):
    job, other = running_job(), running_job(U2)
    assert jobs.cancel_requested(job.job_id) is False
    jobs.cancel(job.job_id, U1)
    with counting_dynamodb_calls() as calls:
        assert jobs.cancel_requested(job.job_id) is True
        assert jobs.cancel_requested(other.job_id) is False
    assert dict(calls.by_name) == {"GetItem": 2}
    signal = CancelSignalModel.get(f"cancel#{job.job_id}")
    assert set(signal.attribute_values) == {"job_id", "expires_at"}  # a few dozen bytes


def test_the_cancel_signal_is_no_job_to_anyone(events):
    job = running_job()
    jobs.cancel(job.job_id, U1)
    with pytest.raises(NotFound):
        jobs.get_job(f"cancel#{job.job_id}", U1)
    assert [j.job_id for j in jobs.list_jobs(U1, query(limit=100))] == [job.job_id]
    assert [j["id"] for j in jobs.active_and_recent(U1)["active_jobs"]] == [job.job_id]
    with pytest.raises(NotFound):
        jobs.cancel(f"cancel#{job.job_id}", U1)


def test_lists_read_every_public_field_from_the_indexes_and_no_params(events, clock, monkeypatch):
    monkeypatch.setenv("DEFAULT_MAX_CONCURRENT", "5")
    big = {"prompt": "x" * 50_000}  # a benchmark's params: not what a list shows
    ended = jobs.start(jobs.submit("benchmark", U1, big, schedule_id="s1").job_id)
    jobs.progress(ended.job_id, 50, "half")
    jobs.finish(ended.job_id, "failed", error="boom", result_ref="r1")
    clock.advance(seconds=1)
    live = jobs.start(jobs.submit("benchmark", U1, big).job_id)
    jobs.progress(live.job_id, 30, "a third")
    listed = jobs.list_jobs(U1, query(limit=100)) + jobs.list_jobs(U1, query(status="running"))
    assert [j.job_id for j in listed] == [live.job_id, ended.job_id, live.job_id]
    assert [j.params for j in listed] == [None, None, None]  # not projected into the indexes
    for job in listed:
        assert jobs.to_public(job) == jobs.to_public(JobModel.get(job.job_id))
    sync = jobs.active_and_recent(U1)
    assert sync["active_jobs"] == [jobs.to_public(JobModel.get(live.job_id))]
    assert sync["recent_jobs"] == [jobs.to_public(JobModel.get(ended.job_id))]


# --- budget ---------------------------------------------------------------------------------


def test_a_lifecycle_costs_at_most_4_dynamodb_requests(events):
    with counting_dynamodb_calls() as calls:
        job = submit()
        jobs.start(job.job_id)
        jobs.finish(job.job_id, "done", result_ref="r")
    assert calls.total <= 4, calls.by_name


# --- reading --------------------------------------------------------------------------------


def test_get_job_is_for_its_owner_only(events):
    job = submit(U1)
    assert jobs.get_job(job.job_id, U1).job_id == job.job_id
    with pytest.raises(NotFound):
        jobs.get_job(job.job_id, U2)


def test_to_public_has_the_design_shape(events):
    public = jobs.to_public(submit(schedule_id="s9"))
    assert set(public) == {
        "id", "job_type", "status", "progress_pct", "progress_detail", "schedule_id",
        "result_ref", "error_msg", "created_at", "started_at", "completed_at",
    }
    assert public["schedule_id"] == "s9" and public["status"] == "pending"


def test_list_jobs_newest_first_filtered_and_limited(events, clock, monkeypatch):
    monkeypatch.setenv("DEFAULT_MAX_CONCURRENT", "20")
    ids = []
    for i in range(30):
        clock.advance(seconds=1)
        job = submit()
        ids.append(job.job_id)
        if i % 3 == 0:
            jobs.start(job.job_id)
    submit(U2)
    assert [j.job_id for j in jobs.list_jobs(U1, query(limit=100))] == ids[::-1]
    running = [j.job_id for j in jobs.list_jobs(U1, query(status="running", limit=4))]
    assert running == [ids[i] for i in (27, 24, 21, 18)]
    assert len(jobs.list_jobs(U1, query(status="running,pending", limit=100))) == 30
    ended = [j.job_id for j in jobs.list_jobs(U1, query(status="done,running", limit=100))]
    assert ended == [ids[i] for i in range(27, -1, -3)]


def query(**params) -> jobs.JobsQuery:
    return payloads.query(jobs.JobsQuery, {k: str(v) for k, v in params.items()})


def test_live_statuses_are_listed_from_the_live_index_only(events, monkeypatch):
    live, user = JobModel.live.query, JobModel.by_user.query
    read: list[str] = []
    monkeypatch.setattr(JobModel.live, "query", lambda *a, **k: read.append("live") or live(*a, **k))
    monkeypatch.setattr(JobModel.by_user, "query", lambda *a, **k: read.append("user") or user(*a, **k))
    job = submit()
    assert [j.job_id for j in jobs.list_jobs(U1, query(status="pending,queued"))] == [job.job_id]
    assert read == ["live"]


@pytest.mark.parametrize("params, field", [({"status": "runing"}, "status"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"), ({"stat": "x"}, "stat")])
def test_list_jobs_refuses_bad_arguments_naming_them(params, field):
    with pytest.raises(Unprocessable) as caught:
        query(**params)
    assert caught.value.detail[0]["field"] == field


def test_active_and_recent_for_sync(events, clock, monkeypatch):
    monkeypatch.setenv("DEFAULT_MAX_CONCURRENT", "20")
    old_running = running_job()
    ended = []
    for _ in range(12):
        clock.advance(seconds=1)
        job = running_job()
        jobs.finish(job.job_id, "done")
        ended.append(job.job_id)
    clock.advance(seconds=1)
    fresh = submit()
    sync = jobs.active_and_recent(U1)
    assert [j["id"] for j in sync["active_jobs"]] == [fresh.job_id, old_running.job_id]
    assert [j["id"] for j in sync["recent_jobs"]] == ended[::-1][:10]


def test_sync_reads_the_same_whatever_the_users_history(events, clock):
    """Live jobs come from the sparse `live` index: 600 finished jobs cost `sync` nothing."""
    with JobModel.batch_write() as batch:
        for i in range(600):
            batch.save(JobModel(
                f"old{i:05d}", user_id=U1, job_type="t", status="done",
                created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000Z",
            ))
    clock.advance(seconds=1)
    live = submit()
    with counting_dynamodb_calls() as calls:
        sync = jobs.active_and_recent(U1)
    assert [j["id"] for j in sync["active_jobs"]] == [live.job_id]
    assert len(sync["recent_jobs"]) == 10
    assert calls.total == 2  # one query of `live`, one page of the newest jobs


# --- limits ---------------------------------------------------------------------------------


def make_user(user_id):
    UserModel(user_id, email=f"{user_id}@example.com", role="user", created_at="x").save()


def test_set_limit_lets_more_run(events):
    make_user(U1)
    assert jobs.set_limit(U1, 3) == {"user_id": U1, "max_concurrent": 3}
    assert [jobs.start(submit().job_id) is not None for _ in range(4)] == [True, True, True, False]


def test_lowering_the_limit_stops_new_starts_until_enough_finish(events):
    make_user(U1)
    jobs.set_limit(U1, 2)
    a, b = running_job(), running_job()
    jobs.set_limit(U1, 1)
    c = submit()
    assert jobs.start(c.job_id) is None
    jobs.finish(a.job_id, "done")
    assert jobs.start(c.job_id) is None  # still 1 running, limit 1
    nxt = jobs.finish(b.job_id, "done")
    assert nxt.job_id == c.job_id and jobs.start(c.job_id) is not None


@pytest.mark.parametrize("value", [0, 21, True, "3", 2.5])
def test_limits_refuse_values_outside_1_to_20(value):
    with pytest.raises(Unprocessable) as caught:
        payloads.validate(jobs.LimitsUpdate, {"max_concurrent": value})
    assert caught.value.detail[0]["field"] == "max_concurrent"


def test_set_limit_of_an_unknown_user_is_not_found(events):
    with pytest.raises(NotFound):
        jobs.set_limit("nobody", 2)
    assert SlotModel.count() == 0


# --- events ---------------------------------------------------------------------------------


class Broken:
    def send_to_user(self, user_id, message):
        raise RuntimeError("socket gone")


def test_a_failing_notifier_never_fails_the_registry(events):
    notify.use(Broken())
    job = submit()
    assert jobs.start(job.job_id) is not None
    assert jobs.progress(job.job_id, 5, "x") is False
    jobs.finish(job.job_id, "done")
    assert status_of(job.job_id) == "done"


def test_a_whole_lifecycle_sends_the_design_events_in_order(events):
    job = running_job()
    jobs.progress(job.job_id, 50, "half")
    jobs.finish(job.job_id, "done", result_ref="run-9")
    assert types(events) == ["job_created", "job_started", "job_progress", "job_completed"]
    assert all(user == U1 for user, _ in events.sent)
