"""Observability (DESIGN §7a): every log line of a job names it, and the app's metrics leave
as CloudWatch Embedded Metric Format lines on stdout (no API call).

Lambda's JSON log format writes each extra attribute of a record as a JSON field of its
own, so a record carrying `job_id`/`user_id`/`schedule_id` is a line CloudWatch can filter
on; these tests read the records themselves.
"""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import clock as app_clock
from chalicelib import jobs, logs, metrics, runner, schedules, tick, websocket
from chalicelib.connections import Connection
from chalicelib.tables import JobModel, ProviderModel, ScheduleModel

NAMESPACE = "benchmark-scheduler-test"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)


@pytest.fixture
def collected():
    logs.configure()
    handler, root = Collect(), logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def emitted(monkeypatch, capsys):
    """The EMF documents written to stdout, by metric name → value (one dict per line)."""
    monkeypatch.setenv(metrics.NAMESPACE_SETTING, NAMESPACE)

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"_aws"')]

    return read


def _ids(record: logging.LogRecord) -> dict:
    return {k: getattr(record, k, None) for k in logs.CONTEXT_FIELDS}


@pytest.fixture
def user(aws, clock, provider_server, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    user_id = "u-" + "b" * 30
    ProviderModel(user_id, "fake", kind="openai", base_url=provider_server.base_url_for("openai"),
                  models=[{"id": "t"}, {"id": "u"}], updated_at=app_clock.now_iso()).save()
    return user_id


def _job(user_id: str) -> tuple[str, str]:
    body = schedules.ScheduleCreate(name="o11y", models=["fake/t", "fake/u"], prompt="Hi.", max_tokens=8,
                                    temperature=0.0, interval_hours=1)
    schedule_id = schedules.create(user_id, body)["id"]
    job = jobs.submit(schedules.JOB_TYPE, user_id, {"schedule_id": schedule_id, "trigger": "manual"},
                      schedule_id=schedule_id)
    return job.job_id, schedule_id


class _Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000


# --- logs ----------------------------------------------------------------------------------


def test_every_line_of_a_runner_job_carries_its_job_user_and_schedule_ids(user, collected, events, monkeypatch):
    import app

    job_id, schedule_id = _job(user)
    original = runner.run_model

    def run_model_logging(*args, **kwargs):  # a line from the provider worker thread
        logging.getLogger("chalicelib.providers.engine").info("streaming %s", args[0].name)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_model", run_model_logging)
    collected.records.clear()
    assert app.runner({"job_id": job_id}, _Context())["status"] == "done"

    ours = [r for r in collected.records if r.name.startswith("chalicelib")]
    streaming = [r for r in ours if r.getMessage().startswith("streaming")]
    assert len(streaming) == 2 and all(r.threadName != threading.current_thread().name for r in streaming)
    assert ours and all(_ids(r) == {"job_id": job_id, "user_id": user, "schedule_id": schedule_id} for r in ours), [
        (r.getMessage(), _ids(r)) for r in ours if _ids(r)["user_id"] is None
    ]
    with logs.context(job_id="other"):
        pass
    logging.getLogger("chalicelib.tick").info("after the job")
    assert _ids(collected.records[-1]) == {"job_id": None, "user_id": None, "schedule_id": None}


def test_the_ticks_lines_about_a_schedule_carry_its_ids(user, clock, collected, events, monkeypatch):
    schedule_id = schedules.create(user, schedules.ScheduleCreate(
        name="t", models=["fake/t"], prompt="Hi.", max_tokens=8, temperature=0.0, interval_hours=1,
    ))["id"]
    clock.advance(hours=1)

    def refuse(*_args, **_kwargs):
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(tick, "claim", refuse)
    collected.records.clear()
    tick.run()
    (failure,) = [r for r in collected.records if "claiming schedule" in r.getMessage()]
    assert failure.schedule_id == schedule_id and failure.user_id == user
    due = ScheduleModel.get(user, schedule_id).next_run  # unchanged: the claim failed
    assert failure.job_id == tick.job_id_for(schedule_id, due)


def test_concurrent_jobs_never_lend_their_ids_to_a_line_outside_them(collected):
    """One job at a time (a Lambda container): its worker threads' lines carry its ids.
    Several at once (the dev stack): a line outside any of them carries none."""
    log = logging.getLogger("chalicelib.test")
    with logs.context(job_id="j1", user_id="u1"):
        with ThreadPoolExecutor(1) as pool:
            pool.submit(log.info, "worker of the only job").result()
    assert _ids(collected.records[-1])["job_id"] == "j1"

    inside, release = threading.Barrier(3), threading.Event()

    def job(job_id: str) -> None:
        with logs.context(job_id=job_id):
            inside.wait()
            release.wait()
            log.info("in %s", job_id)

    threads = [threading.Thread(target=job, args=(j,)) for j in ("j2", "j3")]
    for thread in threads:
        thread.start()
    inside.wait()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(log.info, "outside both").result()
    release.set()
    for thread in threads:
        thread.join()
    by_message = {r.getMessage(): _ids(r)["job_id"] for r in collected.records}
    assert by_message["outside both"] is None
    assert by_message["in j2"] == "j2" and by_message["in j3"] == "j3"


# --- metrics -------------------------------------------------------------------------------


def test_a_metric_is_one_emf_document_on_stdout(emitted):
    metrics.emit({metrics.DUE: 3, metrics.TICK_LAG: 1.5})
    (document,) = emitted()
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_700_000_000_000
    (directive,) = meta["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [[]]
    assert directive["Metrics"] == [{"Name": "Due", "Unit": "Count"}, {"Name": "TickLagSeconds", "Unit": "Seconds"}]
    assert document["Due"] == 3 and document["TickLagSeconds"] == 1.5


def test_without_a_namespace_no_metric_is_written(monkeypatch, capsys):
    monkeypatch.delenv(metrics.NAMESPACE_SETTING, raising=False)
    metrics.count(metrics.DUE)
    assert capsys.readouterr().out == ""


def test_a_tick_reports_due_claimed_dispatched_and_its_lag(user, clock, events, lambda_invokes, emitted):
    schedules.create(user, schedules.ScheduleCreate(
        name="t", models=["fake/t"], prompt="Hi.", max_tokens=8, temperature=0.0, interval_hours=1,
    ))
    clock.advance(hours=1, seconds=90)  # due an hour after creation: 90 s late
    emitted()
    tick.run()
    (document,) = [d for d in emitted() if metrics.TICK_RUNS in d]
    assert {k: document[k] for k in ("TickRuns", "Due", "Claimed", "Dispatched", "Redispatched")} == {
        "TickRuns": 1, "Due": 1, "Claimed": 1, "Dispatched": 1, "Redispatched": 0,
    }
    assert document["TickLagSeconds"] == 90


def test_each_job_end_is_counted_once_by_how_it_ended(user, clock, events, emitted, lambda_invokes):
    import app

    done_job, _ = _job(user)
    app.runner({"job_id": done_job}, _Context())
    app.runner({"job_id": done_job}, _Context())  # a duplicate delivery ends nothing
    cancelled = jobs.submit(schedules.JOB_TYPE, user, {"schedule_id": "s"}, schedule_id="s")
    jobs.cancel(cancelled.job_id, user)
    lost = jobs.submit(schedules.JOB_TYPE, user, {"schedule_id": "s"}, schedule_id="s")
    assert jobs.start(lost.job_id) is not None
    clock.advance(minutes=5)  # past its lease, before its timeout: its runner is gone
    jobs.reap()
    assert JobModel.get(lost.job_id).status == "interrupted"

    documents = emitted()
    ended = [name for d in documents for name in d if name.startswith("Jobs")]
    assert sorted(ended) == ["JobsCancelled", "JobsDone", "JobsInterrupted"]
    durations = [d[metrics.RUNNER_DURATION] for d in documents if metrics.RUNNER_DURATION in d]
    assert len(durations) == 2 and all(d >= 0 for d in durations)


def test_a_failed_websocket_post_is_counted_and_a_gone_one_is_not(aws, emitted, monkeypatch):
    from botocore.exceptions import ClientError

    class Failing:
        def __init__(self, code: str) -> None:
            self.code = code

        def post_to_connection(self, **_):
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "PostToConnection")

    connection = Connection("c1", "u1", "https://abc.execute-api.us-east-1.amazonaws.com/api")
    monkeypatch.setattr(websocket, "management_client", lambda endpoint: Failing("LimitExceededException"))
    assert websocket.post(connection, {"type": "pong"}) == websocket.FAILED
    monkeypatch.setattr(websocket, "management_client", lambda endpoint: Failing("GoneException"))
    assert websocket.post(connection, {"type": "pong"}) == websocket.GONE
    assert [list(d)[1:] for d in emitted()] == [[metrics.WEBSOCKET_POST_FAILURES]]
