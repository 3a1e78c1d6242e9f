"""`GET /api/stats`: per-model summaries and bucketed series against hand-computed values,
defaults, limits, isolation, and what it reads from DynamoDB."""
from __future__ import annotations

import pytest

from tests.recording import counting_dynamodb_calls
from tests.runs import at, failure, result, run_at

NULL_POINT_TIMINGS = {
    f"{metric}_{p}": None
    for metric in ("ttft_ms", "output_speed_tps", "itl_p99_ms", "cost")
    for p in ("p10", "p50", "p90")
} | {"ttft_ms_p99": None}


@pytest.fixture
def user(alice, clock):  # now: 2026-11-30T09:00Z
    return alice


def stats(api, query: str = "") -> dict:
    status, data = api.get(f"/api/stats?{query}")
    assert status == 200, data
    return data


def test_summary_and_series_match_hand_computed_percentiles(user):
    run_at(user.id, at(30, 6, 0), results=[result("a", ttft=100, speed=10, itl_p99=5)])
    run_at(user.id, at(30, 6, 30), results=[result("a", ttft=200, speed=20, itl_p99=6)])
    run_at(user.id, at(30, 7, 10), results=[result("a", ttft=300, speed=30, itl_p99=7)])
    run_at(user.id, at(30, 8, 0), results=[result("a", ttft=400, speed=40, itl_p99=8)])
    run_at(user.id, at(30, 8, 20), results=[failure("a"), failure("b", provider="other")])

    data = stats(user, "since=2026-11-30T06:00:00Z&until=2026-11-30T09:00:00Z")

    assert data["since"] == "2026-11-30T06:00:00.000000Z" and data["until"] == "2026-11-30T09:00:00.000000Z"
    assert data["bucket"] == "hour"  # a 3-hour range
    a, b = data["models"]
    assert (a["model"], a["provider"], b["model"], b["provider"]) == ("a", "demo", "b", "other")
    assert a["summary"] == {
        "n": 5,
        "success_rate": 0.8,
        # ttft [100, 200, 300, 400]: rank (n-1)q/100 → p50 1.5, p90 2.7, p99 2.97
        "ttft_ms": {"p50": 250.0, "p90": 370.0, "p99": 397.0, "min": 100.0, "max": 400.0},
        # speed [10, 20, 30, 40]: p10 rank 0.3 → 13
        "output_speed_tps": {"p10": 13.0, "p50": 25.0, "p90": 37.0},
        "itl_p99_ms": {"p50": 6.5},
        "cost_total": 0.004,
    }
    assert a["series"] == [
        {"t": "2026-11-30T06:00:00.000000Z", "n": 2, "failures": 0, "success_rate": 1.0,
         "ttft_ms_p10": 110.0, "ttft_ms_p50": 150.0, "ttft_ms_p90": 190.0, "ttft_ms_p99": 199.0,
         "output_speed_tps_p10": 11.0, "output_speed_tps_p50": 15.0, "output_speed_tps_p90": 19.0,
         "itl_p99_ms_p10": 5.1, "itl_p99_ms_p50": 5.5, "itl_p99_ms_p90": 5.9,
         "cost_p10": 0.001, "cost_p50": 0.001, "cost_p90": 0.001, "cost_total": 0.002},
        {"t": "2026-11-30T07:00:00.000000Z", "n": 1, "failures": 0, "success_rate": 1.0,
         "ttft_ms_p10": 300.0, "ttft_ms_p50": 300.0, "ttft_ms_p90": 300.0, "ttft_ms_p99": 300.0,
         "output_speed_tps_p10": 30.0, "output_speed_tps_p50": 30.0, "output_speed_tps_p90": 30.0,
         "itl_p99_ms_p10": 7.0, "itl_p99_ms_p50": 7.0, "itl_p99_ms_p90": 7.0,
         "cost_p10": 0.001, "cost_p50": 0.001, "cost_p90": 0.001, "cost_total": 0.001},
        {"t": "2026-11-30T08:00:00.000000Z", "n": 2, "failures": 1, "success_rate": 0.5,
         "ttft_ms_p10": 400.0, "ttft_ms_p50": 400.0, "ttft_ms_p90": 400.0, "ttft_ms_p99": 400.0,
         "output_speed_tps_p10": 40.0, "output_speed_tps_p50": 40.0, "output_speed_tps_p90": 40.0,
         "itl_p99_ms_p10": 8.0, "itl_p99_ms_p50": 8.0, "itl_p99_ms_p90": 8.0,
         "cost_p10": 0.001, "cost_p50": 0.001, "cost_p90": 0.001, "cost_total": 0.001},
    ]
    assert b["summary"] == {
        "n": 1, "success_rate": 0.0,
        "ttft_ms": {"p50": None, "p90": None, "p99": None, "min": None, "max": None},
        "output_speed_tps": {"p10": None, "p50": None, "p90": None},
        "itl_p99_ms": {"p50": None},
        "cost_total": 0.0,
    }
    assert b["series"] == [{"t": "2026-11-30T08:00:00.000000Z", "n": 1, "failures": 1, "success_rate": 0.0,
                            **NULL_POINT_TIMINGS, "cost_total": 0.0}]


def test_every_run_of_a_benchmark_counts_as_one_result(user):
    runs = [result("a", ttft=t, run=i + 1, runs=3) for i, t in enumerate((10, 20, 60))]
    run_at(user.id, at(30, 8), results=runs)
    [a] = stats(user)["models"]
    assert a["summary"]["n"] == 3 and a["summary"]["ttft_ms"]["p50"] == 20.0


def test_defaults_are_the_last_seven_days_by_day(user):
    run_at(user.id, at(23, 8, 59))  # just before the default range
    inside = [at(23, 9, 0), at(29, 12), at(29, 13), at(30, 8, 59)]
    for when in inside:
        run_at(user.id, when)
    data = stats(user)
    assert (data["since"], data["until"], data["bucket"]) == (
        "2026-11-23T09:00:00.000000Z", "2026-11-30T09:00:00.000000Z", "day")
    [model] = data["models"]
    assert model["summary"]["n"] == 4
    assert [(p["t"], p["n"]) for p in model["series"]] == [
        ("2026-11-23T00:00:00.000000Z", 1), ("2026-11-29T00:00:00.000000Z", 2), ("2026-11-30T00:00:00.000000Z", 1)]


def test_bucket_run_gives_one_point_per_run_with_its_id(user):
    first = run_at(user.id, at(30, 6, 0), results=[result("a", ttft=100), result("a", ttft=300)])
    second = run_at(user.id, at(30, 6, 20), results=[result("a", ttft=200), failure("a")])
    [a] = stats(user, "since=2026-11-30T06:00:00Z&bucket=run")["models"]
    assert [(p["t"], p["run_id"], p["n"], p["failures"], p["ttft_ms_p50"]) for p in a["series"]] == [
        ("2026-11-30T06:00:00.000000Z", first, 2, 0, 200.0),
        ("2026-11-30T06:20:00.000000Z", second, 2, 1, 200.0),
    ]
    assert "run_id" not in stats(user, "since=2026-11-30T06:00:00Z&bucket=hour")["models"][0]["series"][0]


@pytest.mark.parametrize(
    "query, bucket",
    [
        ("since=2026-11-27T09:00:00Z", "hour"),             # 3 days up to now
        ("since=2026-11-27T08:59:59Z", "day"),              # a second more
        ("since=2026-11-20T00:00:00Z&bucket=hour", "hour"),  # asked for
        ("since=2026-11-30T08:00:00Z&bucket=day", "day"),
        ("until=2026-11-01T00:00:00Z", "day"),              # 7 days before until
    ],
)
def test_the_bucket_follows_the_range_unless_asked(user, query, bucket):
    assert stats(user, query)["bucket"] == bucket


def test_since_alone_runs_to_now_and_until_alone_looks_back_seven_days(user):
    data = stats(user, "until=2026-11-10T12:00:00Z")
    assert (data["since"], data["until"]) == ("2026-11-03T12:00:00.000000Z", "2026-11-10T12:00:00.000000Z")
    data = stats(user, "since=2026-11-29T00:00:00Z")
    assert data["until"] == "2026-11-30T09:00:00.000000Z"


def test_a_run_at_since_is_in_and_one_at_until_is_out(user):
    run_at(user.id, at(30, 6), results=[result("a", ttft=1)])
    run_at(user.id, at(30, 7), results=[result("a", ttft=2)])
    [a] = stats(user, "since=2026-11-30T06:00:00Z&until=2026-11-30T07:00:00Z")["models"]
    assert a["summary"]["n"] == 1 and a["summary"]["ttft_ms"]["max"] == 1.0


def test_an_empty_range_has_no_models(user):
    run_at(user.id, at(1, 6))
    data = stats(user, "since=2026-11-29T00:00:00Z")
    assert data["models"] == [] and data["bucket"] == "hour"


def test_model_filter(user):
    run_at(user.id, at(30, 6), results=[result("a"), result("b")])
    run_at(user.id, at(30, 7), results=[result("b")])
    [only] = stats(user, "model=b")["models"]
    assert only["model"] == "b" and only["summary"]["n"] == 2
    assert stats(user, "model=c")["models"] == []


def test_schedule_filter_and_a_deleted_schedule(user):
    status, data = user.post("/api/schedules", {"name": "S", "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    schedule_id = data["id"]
    run_at(user.id, at(30, 6), results=[result("a", ttft=1)], schedule_id=schedule_id)
    run_at(user.id, at(30, 7), results=[result("a", ttft=2)])  # manual
    [a] = stats(user, f"schedule_id={schedule_id}")["models"]
    assert a["summary"]["n"] == 1 and a["summary"]["ttft_ms"]["max"] == 1.0

    assert user.delete(f"/api/schedules/{schedule_id}")[0] == 200
    [a] = stats(user, f"schedule_id={schedule_id}")["models"]  # its runs are still history
    assert a["summary"]["n"] == 1


def test_another_users_schedule_is_404_and_their_runs_never_count(user, bob):
    status, data = user.post("/api/schedules", {"name": "S", "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    schedule_id = data["id"]
    run_at(user.id, at(30, 6), schedule_id=schedule_id)
    status, data = bob.get(f"/api/stats?schedule_id={schedule_id}")
    assert (status, data) == (404, {"error": "Schedule not found", "detail": {"schedule_id": schedule_id}})
    assert stats(bob)["models"] == []


def test_it_reads_only_the_runs_in_range(user):
    for day in range(1, 29):  # 28 days of older runs, 2 a day
        run_at(user.id, at(day, 6))
        run_at(user.id, at(day, 18))
    inside = [run_at(user.id, at(30, h)) for h in (1, 2, 3)]
    with counting_dynamodb_calls() as calls:
        data = stats(user, "since=2026-11-30T00:00:00Z")
    assert data["models"][0]["summary"]["n"] == len(inside)
    assert calls.items_read == 3 + 1  # the three runs, and the caller's user item (authentication)


def test_it_reads_one_schedules_runs_through_its_index(user):
    status, data = user.post("/api/schedules", {"name": "S", "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    schedule_id = data["id"]
    for h in range(8):
        run_at(user.id, at(30, h))  # manual runs in the same range
    run_at(user.id, at(30, 4, 30), schedule_id=schedule_id)
    with counting_dynamodb_calls() as calls:
        data = stats(user, f"schedule_id={schedule_id}&since=2026-11-30T00:00:00Z")
    assert data["models"][0]["summary"]["n"] == 1
    assert calls.items_read == 1 + 1 + 1  # the run, the schedule (404 check), the caller


def test_more_runs_than_allowed_in_range_is_a_422_naming_the_limit(user, monkeypatch):
    monkeypatch.setenv("STATS_MAX_RUNS", "3")
    for h in range(3):
        run_at(user.id, at(30, h))
    assert stats(user, "since=2026-11-30T00:00:00Z")["models"][0]["summary"]["n"] == 3
    run_at(user.id, at(30, 5))
    status, data = user.get("/api/stats?since=2026-11-30T00:00:00Z")
    assert status == 422 and data["detail"][0]["field"] == "since"
    assert data["detail"][0]["limit"] == {"max_runs": 3}


def test_an_answer_too_heavy_for_lambda_is_a_422_saying_how_to_narrow_it(user, monkeypatch):
    monkeypatch.setenv("STATS_MAX_BYTES", "1500")
    for h in range(4):
        run_at(user.id, at(30, h))
    status, data = user.get("/api/stats?since=2026-11-30T00:00:00Z")  # 4 hourly points
    assert status == 422 and data["detail"][0]["field"] == "since"
    assert data["detail"][0]["limit"] == {"max_bytes": 1500} and "bucket=day" in data["error"]
    assert stats(user, "since=2026-11-30T00:00:00Z&bucket=day")["models"][0]["summary"]["n"] == 4


def test_a_point_weighs_what_the_documented_sizes_assume():
    """20 models × 14 days by hour must fit the default budget (README, stats.max_bytes)."""
    from datetime import datetime, timezone

    from chalicelib import response_size, stats as app_stats
    from chalicelib.summaries import Sample

    sample = Sample()
    for ttft in (1234.56, 2345.67, 3456.78):
        sample.add(result("m", ttft=ttft, speed=123.45, itl_p99=45.67, cost=0.01234567))
    point = app_stats._point(datetime(2026, 11, 30, tzinfo=timezone.utc), sample)
    assert response_size.json_bytes(point) * 20 * 14 * 24 < app_stats.max_bytes()


@pytest.mark.parametrize(
    "query, field",
    [
        ("since=2026-08-01T00:00:00Z", "since"),                         # 121 days
        ("since=2026-01-01T00:00:00Z&until=2026-04-02T00:00:00Z", "since"),  # 91 days
        ("since=2026-12-01T00:00:00Z", "since"),                         # after now (the default until)
        ("since=2026-11-30T08:00:00Z&until=2026-11-30T07:00:00Z", "until"),
        ("since=last-week", "since"),
        ("until=2026-11-30T09:00", "until"),
        ("bucket=week", "bucket"),
        ("schedule_id=a%23b", "schedule_id"),
        ("format=csv", "format"),
    ],
)
def test_bad_parameters_are_422s_naming_them(user, query, field):
    status, data = user.get(f"/api/stats?{query}")
    assert status == 422 and data["detail"][0]["field"] == field, data


def test_ninety_days_is_allowed(user):
    assert stats(user, "since=2026-09-01T09:00:00Z")["bucket"] == "day"


def test_stats_need_a_token(anonymous):
    assert anonymous.get("/api/stats")[0] == 401
