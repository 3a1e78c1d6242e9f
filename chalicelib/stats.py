"""Statistics over time (`GET /api/stats`): per model, a summary of a time range and a
series of time buckets.

It reads only the caller's runs inside the range, through the table's sort key (run ids
start with the run's start time) or one schedule's index: the cost grows with the runs in
the range, not with the user's history. Both what one answer may read and what it may weigh
are bounded (`STATS_MAX_RUNS`, `STATS_MAX_BYTES`); past them the answer is a 422 saying how
to narrow the question, never a partial answer that looks complete.

Percentiles: `chalicelib.percentiles` (linear interpolation, NumPy's default). Counting:
`chalicelib.summaries` (failed results count in `n`, `failures` and `success_rate`, not in
timing or cost percentiles).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from chalicelib import clock, config, history, response_size
from chalicelib.errors import invalid
from chalicelib.summaries import Sample

MAX_RANGE = timedelta(days=90)
DEFAULT_RANGE = timedelta(days=7)
HOURLY_UP_TO = timedelta(days=3)  # the default bucket: hour up to 3 days, else day
_PAGE = 1000  # DynamoDB caps a page at 1 MB anyway


def max_runs() -> int:
    """Runs one answer may read."""
    return config.int_setting("STATS_MAX_RUNS", 5000)


def max_bytes() -> int:
    """What one answer may weigh in Lambda's response (limit 6 MB). A series point weighs
    ~400 bytes: 20 models × 90 days by day is ~0.7 MB, 20 models × 14 days by hour ~2.6 MB."""
    return config.int_setting("STATS_MAX_BYTES", 5_000_000)


class StatsQuery(history.TimeRange):
    """`GET /api/stats?schedule_id=&model=&since=&until=&bucket=hour|day|run`."""

    schedule_id: history.ScheduleId | None = None
    model: history.ModelFilter | None = None
    bucket: Literal["hour", "day", "run"] | None = None


def stats(user_id: str, query: StatsQuery) -> dict[str, Any]:
    since, until = _range(query)
    bucket = query.bucket or ("hour" if until - since <= HOURLY_UP_TO else "day")
    if query.schedule_id:
        history.require_schedule(user_id, query.schedule_id)
    scan = history.RunScan(
        user_id,
        history.RunFilter(since=since, until=until, schedule_id=query.schedule_id, model=query.model),
        newest_first=False,
        max_read=max_runs() + 1,  # one more than allowed tells that the range holds more
        page_size=_PAGE,
        attributes=["user_id", "run_id", "created_at", "results"],
    )
    overall: dict[str, Sample] = {}
    buckets: dict[str, dict[datetime, Sample]] = {}
    providers: dict[str, Any] = {}
    run_ids: dict[datetime, str] = {}  # bucket=run: each point's run
    for run in scan:
        start = _bucket_start(clock.parse(run.created_at), bucket)
        if bucket == "run":
            run_ids[start] = run.run_id
        for result in run.results or []:
            model = str(result.get("model"))
            if query.model and model != query.model:
                continue
            overall.setdefault(model, Sample()).add(result)
            buckets.setdefault(model, {}).setdefault(start, Sample()).add(result)
            providers[model] = result.get("provider")  # runs are read oldest first: the latest wins
    if scan.read > max_runs():
        raise invalid(
            "since",
            f"the range holds more than {max_runs()} runs: narrow since/until or pick a schedule_id",
            parameter=True,
            limit={"max_runs": max_runs()},
        )
    answer = {
        "since": clock.iso(since),
        "until": clock.iso(until),
        "bucket": bucket,
        "models": [
            {
                "model": model,
                "provider": providers[model],
                "summary": _summary(overall[model]),
                "series": [_point(start, sample, run_ids.get(start)) for start, sample in sorted(buckets[model].items())],
            }
            for model in sorted(overall)
        ],
    }
    weight = response_size.json_bytes(answer)
    if weight > max_bytes():
        raise invalid(
            "since",
            f"the answer would weigh {weight / 1e6:.1f} MB, more than an answer may ({max_bytes() / 1e6:.1f} MB): "
            "narrow since/until, use bucket=day, or ask for one model",
            parameter=True,
            limit={"max_bytes": max_bytes()},
        )
    return answer


def _range(query: StatsQuery) -> tuple[datetime, datetime]:
    """[since, until): the last 7 days by default; at most `MAX_RANGE`."""
    until = query.until or clock.now()
    since = query.since or until - DEFAULT_RANGE
    if since >= until:
        raise invalid("since", "must be earlier than until (which defaults to now)", parameter=True)
    if until - since > MAX_RANGE:
        raise invalid(
            "since", f"the range is longer than {MAX_RANGE.days} days", parameter=True,
            limit={"max_days": MAX_RANGE.days},
        )
    return since, until


def _bucket_start(moment: datetime, bucket: str) -> datetime:
    """The point a result counts in: its hour, its day, or (`run`) its run's own start."""
    if bucket == "run":
        return moment
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if bucket == "hour" else hour.replace(hour=0)


def _summary(sample: Sample) -> dict[str, Any]:
    return {
        "n": sample.n,
        "success_rate": sample.success_rate(),
        "ttft_ms": {**sample.percentiles("ttft_ms", (50, 90, 99)), **sample.extremes("ttft_ms")},
        "output_speed_tps": sample.percentiles("output_speed_tps", (10, 50, 90)),
        "itl_p99_ms": sample.percentiles("itl_p99_ms", (50,)),
        "cost_total": sample.total_cost(),
    }


def _point(start: datetime, sample: Sample, run_id: str | None = None) -> dict[str, Any]:
    """One bucket: `t` its start (and its `run_id` when the bucket is a run); a timing field
    is None when no result in it succeeded."""
    ttft = sample.percentiles("ttft_ms", (10, 50, 90, 99))
    speed = sample.percentiles("output_speed_tps", (10, 50, 90))
    itl = sample.percentiles("itl_p99_ms", (10, 50, 90))
    return {
        "t": clock.iso(start),
        "n": sample.n,
        "failures": sample.failures,
        "success_rate": sample.success_rate(),
        **{f"ttft_ms_{name}": value for name, value in ttft.items()},
        **{f"output_speed_tps_{name}": value for name, value in speed.items()},
        **{f"itl_p99_ms_{name}": value for name, value in itl.items()},
        **{f"cost_{name}": value for name, value in sample.percentiles("cost", (10, 50, 90)).items()},
        "cost_total": sample.total_cost(),
        **({"run_id": run_id} if run_id else {}),
    }
