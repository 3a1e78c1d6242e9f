"""The history API: newest first, filters (source, status, model, schedule, time range), opaque
cursors, run status and current schedule names, and isolation."""
from __future__ import annotations

import json

import pytest

from chalicelib import history
from tests.runs import failure, result, run_at


def new_run(user_id: str, n: int, source: str = "schedule", minute: int = 0) -> history.NewRun:
    return history.NewRun(
        user_id=user_id, job_id=f"{n:032x}", started_at=f"2026-11-30T10:{minute:02d}:{n:02d}.000000Z",
        prompt="p", max_tokens=8, temperature=0.5,
        results=[{"model": "demo/fast", "success": True, "ttft_ms": 100.0}],
        metadata={"source": source, "schedule_id": "s1", "schedule_name": "S", "job_id": f"{n:032x}"},
        source=source,
    )


def save(user_id: str, n: int, source: str = "schedule", minute: int = 0) -> str:
    return history.save(new_run(user_id, n, source, minute))


def test_history_lists_newest_first_with_results(alice):
    ids = [save(alice.id, n) for n in range(3)]
    status, data = alice.get("/api/history")
    assert status == 200
    assert [run["id"] for run in data["runs"]] == ids[::-1]
    assert data["next_cursor"] is None
    run = data["runs"][0]
    assert run["results"][0]["ttft_ms"] == 100.0
    assert run["metadata"]["source"] == "schedule" and run["context_tiers"] == [0]


def test_source_filter(alice):
    scheduled = [save(alice.id, n, "schedule") for n in range(0, 6, 2)]
    manual = [save(alice.id, n, "manual") for n in range(1, 6, 2)]
    assert [r["id"] for r in alice.get("/api/history?source=schedule")[1]["runs"]] == scheduled[::-1]
    assert [r["id"] for r in alice.get("/api/history?source=manual")[1]["runs"]] == manual[::-1]


def test_cursor_pages_through_everything_once(alice):
    ids = [save(alice.id, n, "schedule" if n % 3 else "manual") for n in range(25)]
    seen, cursor = [], None
    while True:
        path = "/api/history?limit=4&source=schedule" + (f"&cursor={cursor}" if cursor else "")
        status, data = alice.get(path)
        assert status == 200 and len(data["runs"]) <= 4
        seen += [r["id"] for r in data["runs"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    expected = [rid for n, rid in enumerate(ids) if n % 3][::-1]
    assert seen == expected


@pytest.mark.parametrize(
    "query,status,field",
    [
        ("limit=0", 422, "limit"),
        ("limit=101", 422, "limit"),
        ("limit=ten", 422, "limit"),
        ("source=cron", 422, "source"),
        ("cursor=%%%", 422, "cursor"),
        ("cursor=eyJyIjogMX0", 422, "cursor"),
        ("color=red", 422, "color"),
    ],
)
def test_bad_queries_name_the_parameter(alice, query, status, field):
    code, data = alice.get(f"/api/history?{query}")
    assert code == status and data["detail"][0]["field"] == field
    assert data["error"].startswith(f"Invalid query parameter '{field}'")


def test_a_bad_limit_answers_alike_in_jobs_and_history(alice):
    jobs_answer = alice.get("/api/jobs?limit=ten")
    history_answer = alice.get("/api/history?limit=ten")
    assert jobs_answer == history_answer
    assert jobs_answer[0] == 422 and jobs_answer[1]["detail"][0]["field"] == "limit"


def test_get_and_delete_a_run(alice):
    run_id = save(alice.id, 1)
    status, data = alice.get(f"/api/history/{run_id}")
    assert status == 200 and data["id"] == run_id
    assert alice.delete(f"/api/history/{run_id}") == (200, {"status": "ok"})
    assert alice.get(f"/api/history/{run_id}")[0] == 404
    assert alice.delete(f"/api/history/{run_id}")[0] == 404


def test_another_users_run_is_404_and_their_cursor_shows_only_your_runs(alice, bob):
    run_id = save(alice.id, 1)
    save(alice.id, 2)
    assert bob.get(f"/api/history/{run_id}") == (404, {"error": "Run not found", "detail": {"run_id": run_id}})
    assert bob.delete(f"/api/history/{run_id}")[0] == 404
    assert bob.get("/api/history")[1] == {"runs": [], "next_cursor": None}
    cursor = alice.get("/api/history?limit=1")[1]["next_cursor"]
    assert bob.get(f"/api/history?cursor={cursor}")[1]["runs"] == []
    assert alice.get(f"/api/history/{run_id}")[0] == 200


def test_two_saves_of_a_jobs_run_seconds_apart_keep_one(aws, clock):
    first = history.save(new_run("u1", 7))
    clock.advance(seconds=2)
    second = history.save(new_run("u1", 7))
    assert first == second
    assert len(history.list_runs("u1", history.HistoryQuery())["runs"]) == 1


# --- finding runs: filters, status, current schedule names ------------------------------------

def hour(h: int, minute: int = 0) -> str:
    return f"2026-11-30T{h:02d}:{minute:02d}:00.000000Z"


def ids(api, query: str = "") -> list[str]:
    status, data = api.get(f"/api/history?{query}")
    assert status == 200, data
    return [run["id"] for run in data["runs"]]


def make_schedule(api, name: str = "Nightly") -> str:
    status, data = api.post("/api/schedules", {"name": name, "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    assert status == 200, data
    return data["id"]


def test_each_run_carries_its_status(alice):
    run_at(alice.id, hour(1), results=[result("a"), result("b")])
    run_at(alice.id, hour(2), results=[result("a"), failure("b")])
    run_at(alice.id, hour(3), results=[failure("a")])
    runs = alice.get("/api/history")[1]["runs"]
    assert [r["status"] for r in runs] == ["failed", "partial", "ok"]
    assert runs[1]["summary"]["b"]["successes"] == 0 and runs[1]["summary"]["a"]["n"] == 1


@pytest.mark.parametrize("wanted", ["ok", "partial", "failed"])
def test_status_filter(alice, wanted):
    made = {
        "ok": run_at(alice.id, hour(1), results=[result()]),
        "partial": run_at(alice.id, hour(2), results=[result("a"), failure("b")]),
        "failed": run_at(alice.id, hour(3), results=[failure()]),
    }
    assert ids(alice, f"status={wanted}") == [made[wanted]]


def test_model_filter_matches_whole_model_names(alice):
    both = run_at(alice.id, hour(1), results=[result("demo/fast"), result("demo/slow")])
    slow = run_at(alice.id, hour(2), results=[result("demo/slow")])
    assert ids(alice, "model=demo/fast") == [both]
    assert ids(alice, "model=demo/slow") == [slow, both]
    assert ids(alice, "model=demo") == []  # not a substring match


def test_since_is_inclusive_and_until_exclusive(alice):
    at = {h: run_at(alice.id, hour(h)) for h in range(1, 6)}
    assert ids(alice, "since=2026-11-30T02:00:00Z&until=2026-11-30T04:00:00Z") == [at[3], at[2]]
    assert ids(alice, "since=2026-11-30T04:00:00Z") == [at[5], at[4]]
    assert ids(alice, "until=2026-11-30T02:00:00Z") == [at[1]]
    assert ids(alice, "since=2026-11-30T03:00:00%2B01:00") == [at[5], at[4], at[3], at[2]]  # 02:00Z
    assert ids(alice, "since=2026-11-30") == [at[h] for h in (5, 4, 3, 2, 1)]
    assert ids(alice, "until=2026-11-30") == []


def test_a_time_range_pages_with_cursors_and_stays_inside_the_range(alice):
    made = [run_at(alice.id, hour(h, m)) for h in range(0, 10) for m in (0, 30)]
    expected = [r for r in made if "20261130T020000" <= r < "20261130T070000"][::-1]
    seen, cursor = [], None
    while True:
        query = "since=2026-11-30T02:00:00Z&until=2026-11-30T07:00:00Z&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, data = alice.get(f"/api/history?{query}")
        seen += [r["id"] for r in data["runs"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(expected) == 10


def test_schedule_filter_reads_that_schedules_runs(alice):
    first, second = make_schedule(alice, "First"), make_schedule(alice, "Second")
    mine = [run_at(alice.id, hour(h), schedule_id=first) for h in (1, 3)]
    run_at(alice.id, hour(2), schedule_id=second)
    run_at(alice.id, hour(4))  # manual
    assert ids(alice, f"schedule_id={first}") == mine[::-1]
    assert ids(alice, f"schedule_id={first}&since=2026-11-30T02:00:00Z") == [mine[1]]


def test_another_users_schedule_id_is_404_in_history(alice, bob):
    schedule_id = make_schedule(alice)
    run_at(alice.id, hour(1), schedule_id=schedule_id)
    status, data = bob.get(f"/api/history?schedule_id={schedule_id}")
    assert (status, data) == (404, {"error": "Schedule not found", "detail": {"schedule_id": schedule_id}})
    assert bob.get("/api/history?schedule_id=0123456789abcdef")[0] == 404


def test_a_deleted_schedules_runs_stay_findable_and_lose_their_current_name(alice):
    schedule_id = make_schedule(alice, "Old name")
    run_id = run_at(alice.id, hour(1), schedule_id=schedule_id, schedule_name="Old name")
    assert alice.put(f"/api/schedules/{schedule_id}", {"name": "New name"})[0] == 200

    [run] = alice.get("/api/history")[1]["runs"]
    assert run["metadata"]["schedule_name"] == "Old name" and run["current_schedule_name"] == "New name"
    assert alice.get(f"/api/history/{run_id}")[1]["current_schedule_name"] == "New name"

    assert alice.delete(f"/api/schedules/{schedule_id}")[0] == 200
    status, data = alice.get(f"/api/history?schedule_id={schedule_id}")
    assert status == 200 and [r["id"] for r in data["runs"]] == [run_id]
    assert data["runs"][0]["current_schedule_name"] is None
    assert data["runs"][0]["metadata"]["schedule_name"] == "Old name"


def test_manual_runs_have_no_current_schedule_name(alice):
    run_at(alice.id, hour(1))
    [run] = alice.get("/api/history")[1]["runs"]
    assert run["source"] == "manual" and run["current_schedule_name"] is None


def test_a_rare_filter_answers_short_pages_with_a_cursor_and_misses_nothing(alice, monkeypatch):
    monkeypatch.setenv("HISTORY_MAX_READ", "5")
    made = [run_at(alice.id, hour(h % 24, h // 24), results=[result("demo/rare" if h % 7 == 0 else "demo/fast")])
            for h in range(30)]
    rare = [run_id for h, run_id in enumerate(made) if h % 7 == 0]
    seen, cursor, answers = [], None, 0
    while True:
        status, data = alice.get("/api/history?model=demo/rare&limit=20" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(data["runs"]) <= 5
        answers += 1
        seen += [r["id"] for r in data["runs"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen, reverse=True) == seen and sorted(seen) == sorted(rare)
    assert answers >= 6  # 30 runs at 5 read per answer


@pytest.mark.parametrize(
    "query, field",
    [
        ("since=yesterday", "since"),
        ("since=2026-11-30T09:00:00", "since"),  # no time zone
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=1969-12-31T00:00:00Z", "since"),
        ("since=2026-11-30T10:00:00Z&until=2026-11-30T09:00:00Z", "until"),
        ("since=2026-11-30T10:00:00Z&until=2026-11-30T10:00:00Z", "until"),
        ("status=broken", "status"),
        ("schedule_id=../x", "schedule_id"),
        ("model=" + "m" * 201, "model"),
    ],
)
def test_bad_filters_name_the_parameter(alice, query, field):
    status, data = alice.get(f"/api/history?{query}")
    assert status == 422 and data["detail"][0]["field"] == field, data


def test_pages_stay_within_the_byte_budget_and_a_heavy_run_still_comes_alone(alice, monkeypatch):
    monkeypatch.setenv("HISTORY_MAX_BYTES", "2500")
    light = [run_at(alice.id, hour(h)) for h in range(6)]
    heavy = run_at(alice.id, hour(7), results=[failure(f"m{i}", error="é" * 300) for i in range(10)])
    seen, cursor, pages = [], None, []
    while True:
        status, data = alice.get("/api/history?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        pages.append(data["runs"])
        seen += [r["id"] for r in data["runs"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == [heavy] + light[::-1]
    assert [r["id"] for r in pages[0]] == [heavy]  # heavier than the budget alone: still served
    for page in pages[1:]:
        # each run as Lambda's response holds it: Chalice's JSON, escaped once more
        assert sum(len(json.dumps(json.dumps(r, separators=(",", ":")))) - 2 for r in page) <= 2500
    assert len(pages) > 2


def _largest_run(user_id: str, prompt: str) -> history.NewRun:
    """What the limits allow at most: 20 models of 200-character names × 10 runs, each a
    failure with the longest error message the engine keeps (failures carry the most text)."""
    from chalicelib import benchmarks
    from chalicelib.providers import ModelTarget
    from chalicelib.providers.engine import failure_record

    results = []
    for m in range(20):
        name = f"p{m:02d}/" + "m" * 196
        target = ModelTarget(provider_key=f"p{m:02d}", kind="openai", base_url="https://example.com/v1",
                             model=name.split("/", 1)[1], name=name)
        for n in range(1, benchmarks.MAX_RUNS + 1):
            results.append({**failure_record(target, "bad_response", "é" * 10_000), "run": n, "runs": benchmarks.MAX_RUNS})
    return history.NewRun(
        user_id=user_id, job_id="f" * 32, started_at="2026-11-30T10:00:00.000000Z", prompt=prompt,
        max_tokens=128_000, temperature=0.5, results=results,
        metadata={"source": "manual", "job_id": "f" * 32, "runs": 10, "warmup": True}, source="manual",
    )


def test_the_largest_run_the_limits_allow_fits_in_one_dynamodb_item(alice):
    from chalicelib.schedules import PROMPT_MAX_BYTES

    prompt = "😀" * (PROMPT_MAX_BYTES // 4)  # 4 bytes each: the byte bound, under the 50,000 characters
    run_id = history.save(_largest_run(alice.id, prompt))
    status, run = alice.get(f"/api/history/{run_id}")
    assert status == 200 and len(run["results"]) == 200 and run["prompt"] == prompt


def test_error_texts_are_kept_whole_unless_the_run_would_pass_the_item_limit(alice):
    """What a provider writes (its error text) is the only thing shortened, and only when
    the run would not fit: a run of ordinary size keeps every word."""
    from chalicelib.providers import ModelTarget
    from chalicelib.providers.engine import failure_record

    target = ModelTarget(provider_key="p", kind="openai", base_url="https://example.com/v1", model="m", name="p/m")
    small = history.NewRun(
        user_id=alice.id, job_id="e" * 32, started_at="2026-11-30T10:00:00.000000Z", prompt="p",
        max_tokens=8, temperature=0.5, results=[failure_record(target, "bad_response", "é" * 10_000)],
        metadata={"source": "manual", "job_id": "e" * 32}, source="manual",
    )
    whole = alice.get(f"/api/history/{history.save(small)}")[1]["results"][0]["error"]
    assert whole == small.results[0]["error"] and len(whole) > 300  # the engine's own cut, kept

    largest = _largest_run(alice.id, "😀" * 25_000)
    saved = alice.get(f"/api/history/{history.save(largest)}")[1]["results"]
    assert all(r["error"].startswith("[bad_response] éé") and len(r["error"]) < len(whole) for r in saved)
    assert [(r["model"], r["run"], r["error_type"]) for r in saved] == [
        (r["model"], r["run"], r["error_type"]) for r in largest.results]
