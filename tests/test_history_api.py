"""The history API: newest first, source filter, opaque cursors, and isolation."""
from __future__ import annotations

import pytest

from chalicelib import history


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
