"""The running job's watch (jobs/watch.py): how soon a cancel reaches a runner, and what
watching costs, with the production periods. Time is simulated: the watch's `wait` is
driven by the test, so no test sleeps and none depends on the machine's speed."""
from __future__ import annotations

from typing import Callable

import pytest

from chalicelib import jobs
from chalicelib.jobs import rules
from chalicelib.jobs.watch import Watch
from tests.recording import counting_dynamodb_calls

USER = "watched"


class SimulatedTime:
    """The watch's `wait(seconds)`: time moves by what the watch asks for, and `at(t, fn)`
    runs `fn` once time has passed `t` (i.e. while the watch waits). Stops after `until`."""

    def __init__(self, until: float):
        self.now = 0.0
        self.until = until
        self.asked: list[float] = []
        self._actions: list[tuple[float, Callable[[], None]]] = []
        self.noticed_at: float | None = None
        self.watch: Watch | None = None

    def at(self, moment: float, action: Callable[[], None]) -> None:
        self._actions.append((moment, action))

    def __call__(self, seconds: float) -> bool:
        if self.watch is not None and self.watch.cancelled and self.noticed_at is None:
            self.noticed_at = self.now  # the poll that just ran saw it
        self.asked.append(seconds)
        self.now += seconds
        for moment, action in [a for a in self._actions if a[0] <= self.now]:
            self._actions.remove((moment, action))
            action()
        return self.now > self.until


def watched(job_id: str, time: SimulatedTime) -> Watch:
    watch = Watch(job_id, deadline=None, wait=time)
    time.watch = watch
    return watch


def running_job() -> str:
    job = jobs.submit("benchmark", USER, {})
    assert jobs.start(job.job_id) is not None
    return job.job_id


def test_the_production_periods_poll_every_2_s_and_renew_every_30_s(monkeypatch):
    for name in ("RUNNER_POLL_SECONDS", "JOB_LEASE_RENEW_SECONDS", "JOB_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert rules.cancel_poll_seconds() == 2.0 <= 3.0  # the documented bound on cancel latency
    assert rules.lease_renew_seconds() == 30.0 and rules.lease_seconds() == 180


@pytest.mark.parametrize("cancel_at", [0.1, 7.3, 29.95, 30.5, 61.0])
def test_a_cancel_reaches_the_watch_within_one_poll_period(events, cancel_at):
    job_id = running_job()
    time = SimulatedTime(until=90)
    watch = watched(job_id, time)
    time.at(cancel_at, lambda: jobs.cancel(job_id, USER))
    watch.watch()
    assert watch.cancelled and watch.should_stop()
    assert set(time.asked) == {rules.cancel_poll_seconds()}
    assert cancel_at < time.noticed_at <= cancel_at + rules.cancel_poll_seconds()


def test_watching_a_minute_costs_two_lease_writes_and_small_reads(events):
    job_id = running_job()
    time = SimulatedTime(until=60)
    watch = watched(job_id, time)
    with counting_dynamodb_calls() as calls:
        watch.watch()
    assert not watch.cancelled
    assert dict(calls.by_name) == {"UpdateItem": 2, "GetItem": 28}  # at 30 and 60 s; polls between


def test_a_job_reaped_or_ended_elsewhere_stops_its_runner_at_the_next_renewal(events):
    job_id = running_job()
    time = SimulatedTime(until=90)
    watch = watched(job_id, time)
    time.at(10, lambda: jobs.finish(job_id, "interrupted"))  # e.g. the reaper's
    watch.watch()
    assert watch.cancelled and time.noticed_at == 30.0


def test_a_lease_renewal_period_longer_than_a_third_of_the_lease_is_held_to_it(monkeypatch):
    monkeypatch.setenv("JOB_LEASE_SECONDS", "60")
    monkeypatch.setenv("JOB_LEASE_RENEW_SECONDS", "45")
    assert rules.lease_renew_seconds() == 20.0
