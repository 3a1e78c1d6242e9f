"""The registry under threads racing, as Lambdas race in production (DESIGN §2 invariants).

moto runs serialized by `devstack.moto_serial` (one request at a time, as DynamoDB applies
writes to an item), so any failure here is the registry's, not moto's. Run them in a loop:
`.venv/bin/python -m pytest tests/test_jobs_races.py --count 20 -q`.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib import jobs
from chalicelib.errors import Conflict, TooManyRequests
from chalicelib.tables import JobModel, UserModel
from tests.items import slot, status_of

USER = "racer"


def allow(user_id: str, limit: int) -> None:
    UserModel(user_id, email=f"{user_id}@example.com", role="user", created_at="x").save()
    jobs.set_limit(user_id, limit)


def in_threads(n: int, fn, *args) -> list:
    """Run fn(i, *args) in n threads released together by a barrier; re-raise any error."""
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        return fn(i, *args)

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(call, i) for i in range(n)]]


class Observer:
    """Counts the jobs runners believe they run: +1 after a successful start, -1 just before
    finish, so it can only under-count, and the slot item as stored at the same moments."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.max_running: dict[str, int] = {}
        self.max_active: dict[str, int] = {}

    def started(self, user_id: str) -> None:
        with self.lock:
            self.running[user_id] = self.running.get(user_id, 0) + 1
            self.max_running[user_id] = max(self.max_running.get(user_id, 0), self.running[user_id])
        active = slot(user_id).get("active", 0)
        with self.lock:
            self.max_active[user_id] = max(self.max_active.get(user_id, 0), active)

    def finishing(self, user_id: str) -> None:
        with self.lock:
            self.running[user_id] -= 1


def run_lifecycles(total: int, threads: int, users: list[str]) -> tuple[Observer, list[str]]:
    """Each thread: submit a job, start it, and like the runner keep starting the next
    queued job that finish hands back, until the tickets run out."""
    observer = Observer()
    tickets = iter(range(total))
    ticket_lock = threading.Lock()
    created: list[str] = []

    def run(job) -> JobModel | None:
        observer.started(job.user_id)
        jobs.progress(job.job_id, 50, "half way")
        observer.finishing(job.user_id)
        return jobs.finish(job.job_id, "done", result_ref=f"run-{job.job_id}")

    def worker(_i: int) -> None:
        while True:
            with ticket_lock:
                ticket = next(tickets, None)
            if ticket is None:
                return
            job = jobs.submit("benchmark", users[ticket % len(users)], {"n": ticket})
            with ticket_lock:
                created.append(job.job_id)
            current = jobs.start(job.job_id)
            while current is not None:
                nxt = run(current)
                current = jobs.start(nxt.job_id) if nxt is not None else None

    in_threads(threads, worker)
    return observer, created


def test_eight_threads_80_jobs_never_exceed_the_limit_and_all_end(events, monkeypatch):
    monkeypatch.setenv("MAX_WAITING_JOBS_PER_USER", "80")  # threads queue jobs faster than 2 run
    allow(USER, 2)
    observer, created = run_lifecycles(80, 8, [USER])
    assert len(created) == 80
    assert max(observer.max_running.values()) <= 2
    assert observer.max_active[USER] == 2  # the limit was reached (the test is not vacuous) ...
    assert {status_of(job_id) for job_id in created} == {"done"}  # ... and nobody was stranded
    assert slot(USER)["active"] == 0 and slot(USER)["queued"] == 0 and slot(USER)["waiting"] == 0
    assert len(events.messages("job_completed")) == 80


def test_users_racing_do_not_block_each_other(events):
    users = [f"racer-{i}" for i in range(4)]
    for user in users:
        allow(user, 1)
    observer, created = run_lifecycles(48, 8, users)
    assert all(observer.max_active[user] == 1 for user in users)
    assert {status_of(job_id) for job_id in created} == {"done"}
    assert all(slot(user)["active"] == 0 for user in users)


def test_a_duplicate_finish_releases_the_slot_once(events):
    allow(USER, 2)
    a, b = (jobs.submit("benchmark", USER, {}) for _ in range(2))
    jobs.start(a.job_id), jobs.start(b.job_id)
    results = in_threads(6, lambda _i: jobs.finish(a.job_id, "done", result_ref="r"))
    assert results == [None] * 6
    assert slot(USER)["active"] == 1  # b still holds its slot; a's was released once
    assert len(events.messages("job_completed")) == 1
    assert status_of(a.job_id) == "done" and status_of(b.job_id) == "running"


def test_finish_racing_reap_releases_the_slot_once(events, clock, monkeypatch):
    monkeypatch.setenv("JOB_TIMEOUT_SECONDS", "86400")  # the keeper outlives 10 rounds
    allow(USER, 2)
    keeper = jobs.submit("benchmark", USER, {})
    jobs.start(keeper.job_id)
    for round_ in range(10):
        job = jobs.submit("benchmark", USER, {})
        jobs.start(job.job_id)
        clock.advance(seconds=181)  # the job's lease ran out: the reaper may take it
        jobs.heartbeat(keeper.job_id)  # the keeper's runner is alive

        def act(i):
            return jobs.finish(job.job_id, "done") if i == 0 else jobs.reap(clock())

        in_threads(2, act)
        ended = status_of(job.job_id)  # a race: either may win, and the event says which
        told = {"done": ["job_completed"], "interrupted": ["job_failed"]}[ended]
        ends = [m for m in events.messages() if m["job_id"] == job.job_id and m["type"] != "job_started"]
        assert [m["type"] for m in ends][1:] == told
        assert slot(USER)["active"] == 1, round_  # only the keeper
    assert status_of(keeper.job_id) == "running"


def test_a_renewal_racing_the_reaper_either_wins_or_learns_it_lost(events, clock):
    allow(USER, 20)
    for _ in range(10):
        job = jobs.submit("benchmark", USER, {})
        jobs.start(job.job_id)
        clock.advance(seconds=181)
        stop, _ = in_threads(2, lambda i: jobs.heartbeat(job.job_id) if i == 0 else jobs.reap(clock()))
        interrupted = status_of(job.job_id) == "interrupted"
        assert stop is interrupted  # the runner is told to stop exactly when it was reaped
        running = sum(status_of(j.job_id) == "running" for j in jobs.list_jobs(USER, jobs.JobsQuery(limit=100)))
        assert slot(USER)["active"] == running


def test_start_twice_at_once_runs_the_job_once(events):
    for _ in range(5):
        job = jobs.submit("benchmark", USER, {})
        results = in_threads(8, lambda _i: jobs.start(job.job_id))
        assert sum(r is not None for r in results) == 1
        assert slot(USER)["active"] == 1
        assert len(events.messages("job_started")) == 1
        jobs.finish(job.job_id, "done")
        events.clear()


def test_cancel_racing_start_leaves_a_consistent_job(events):
    for _ in range(10):
        job = jobs.submit("benchmark", USER, {})
        started, _ = in_threads(2, lambda i: jobs.start(job.job_id) if i == 0 else jobs.cancel(job.job_id, USER))
        stored = JobModel.get(job.job_id, consistent_read=True)
        if started is None:
            assert stored.status == "cancelled" and slot(USER).get("active", 0) == 0
        else:
            assert stored.status == "running" and stored.cancel_requested
            assert jobs.progress(job.job_id, 1, "x") is True
            jobs.finish(job.job_id, "cancelled")
        assert slot(USER).get("active", 0) == 0 and slot(USER)["waiting"] == 0


def run_chain(job_id: str) -> None:
    """What a runner does with a job: start it, finish it, start what finish hands out."""
    current = jobs.start(job_id)
    while current is not None:
        following = jobs.finish(current.job_id, "done")
        current = jobs.start(following.job_id) if following is not None else None


def test_sixty_racing_submits_get_exactly_the_cap_and_the_count_ends_exact(events):
    allow(USER, 2)

    def submit(i: int) -> str | None:
        try:
            return jobs.submit("benchmark", USER, {"n": i}).job_id
        except TooManyRequests:
            return None

    results = in_threads(60, submit)
    accepted = [job_id for job_id in results if job_id]
    assert len(accepted) == 20 and results.count(None) == 40
    assert JobModel.count() == 20 and slot(USER)["waiting"] == 20

    def leave(i: int) -> None:
        """Every job leaves pending/queued at once: starts (with their hand-offs) race cancels."""
        if i % 3 == 0:
            with contextlib.suppress(Conflict):  # a hand-off may have run it already
                jobs.cancel(accepted[i], USER)
        else:
            run_chain(accepted[i])

    in_threads(20, leave)
    while True:  # what a cancelled hand-off left waiting, started the way the sweep would
        left = jobs.list_jobs(USER, jobs.JobsQuery(status=["pending", "queued"], limit=100))
        if not left:
            break
        for job in left:
            run_chain(job.job_id)
    assert {status_of(job_id) for job_id in accepted} <= {"done", "cancelled"}
    assert slot(USER) == {"user_id": USER, "active": 0, "limit": 2, "queued": 0, "waiting": 0}
    assert None not in [submit(i) for i in range(20)]  # the whole cap is free again
