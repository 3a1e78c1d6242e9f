"""`GET /api/history/export`: CSV read back with Python's `csv` module (RFC 4180 quoting,
CRLF, BOM, formula-safe cells), JSON Lines, paging by rows and by bytes, filters, isolation."""
from __future__ import annotations

import csv
import io
import json

import pytest

from chalicelib import export
from tests.runs import at, failure, result, run_at


@pytest.fixture
def user(alice, clock):
    return alice


def download(api, query: str = ""):
    """(status, headers, body bytes) of one export answer."""
    response = api.client.http.request("GET", f"/api/history/export?{query}", headers=api.headers())
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.body


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def every_page(api, query: str) -> tuple[list[bytes], list[str | None]]:
    """Follow X-Next-Cursor to the end: each answer's body and cursor."""
    bodies, cursors, cursor = [], [], None
    while True:
        status, headers, body = download(api, query + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        bodies.append(body)
        cursor = headers.get("x-next-cursor")
        cursors.append(cursor)
        if cursor is None:
            return bodies, cursors


def test_csv_is_rfc4180_and_opens_with_the_csv_module(user):
    tricky = 'Line one, with a comma\nand "quotes"\r\nand a new line'
    run_id = run_at(user.id, at(30, 6), schedule_id="sched1", schedule_name='=HYPERLINK("http://evil")',
                    trigger="manual",
                    results=[result("demo/fast", ttft=120.5, cost=0.00012), failure("demo/slow", error=tricky)])

    status, headers, body = download(user, "format=csv")

    assert status == 200
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"].startswith('attachment; filename="benchmark-history-')
    assert headers["content-disposition"].endswith('.csv"')
    assert "x-next-cursor" not in headers
    assert body.startswith("\ufeff".encode()) and body.endswith(b"\r\n")
    assert body.decode("utf-8-sig").startswith(",".join(export.COLUMNS) + "\r\n")
    header, fast, slow = csv_rows(body)
    assert tuple(header) == export.COLUMNS
    fast, slow = dict(zip(header, fast)), dict(zip(header, slow))
    assert fast["run_id"] == run_id and fast["time"] == "2026-11-30T06:00:00.000000Z"
    assert (fast["source"], fast["schedule_id"], fast["trigger"]) == ("schedule", "sched1", "manual")
    assert fast["schedule_name"] == "'=HYPERLINK(\"http://evil\")"  # formula-safe
    assert (fast["model"], fast["provider"], fast["run"], fast["runs"]) == ("demo/fast", "demo", "1", "1")
    assert fast["ttft_ms"] == "120.5" and fast["cost"] == "0.00012" and fast["success"] == "true"
    assert fast["error"] == "" and fast["error_type"] == ""
    assert slow["error"] == tricky  # comma, quotes, CR and LF survive the round trip
    assert slow["success"] == "false" and slow["ttft_ms"] == ""


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_cells_a_spreadsheet_would_run_are_prefixed(user, value):
    run_at(user.id, at(30, 6), schedule_id="s", schedule_name=value)
    [_, row] = csv_rows(download(user)[2])
    assert row[export.COLUMNS.index("schedule_name")] == "'" + value


def test_numbers_are_never_prefixed(user):
    run_at(user.id, at(30, 6), results=[result("demo/fast", ttft=-1.5)])  # not a real TTFT: a number
    [_, row] = csv_rows(download(user)[2])
    assert row[export.COLUMNS.index("ttft_ms")] == "-1.5"


def test_jsonl_has_one_object_per_result_with_native_values(user):
    run_id = run_at(user.id, at(30, 6), results=[result("a", ttft=10), failure("b", error="é, \"x\"\n")])
    status, headers, body = download(user, "format=jsonl")
    assert status == 200 and headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert headers["content-disposition"].endswith('.jsonl"')
    lines = body.decode("utf-8").splitlines()
    first, second = (json.loads(line) for line in lines)
    assert list(first) == list(export.COLUMNS)
    assert first["run_id"] == run_id and first["ttft_ms"] == 10 and first["success"] is True
    assert second["error"] == "é, \"x\"\n" and second["ttft_ms"] is None
    assert first["schedule_id"] is None and first["source"] == "manual"


def test_rows_are_oldest_first_and_filtered_by_time_source_and_schedule(user):
    status, data = user.post("/api/schedules", {"name": "S", "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    schedule_id = data["id"]
    scheduled = [run_at(user.id, at(30, h), schedule_id=schedule_id) for h in (1, 3)]
    manual = [run_at(user.id, at(30, h)) for h in (2, 4)]

    def run_ids(query: str) -> list[str]:
        return [row[0] for row in csv_rows(download(user, query)[2])[1:]]

    assert run_ids("") == [scheduled[0], manual[0], scheduled[1], manual[1]]
    assert run_ids("source=manual") == manual
    assert run_ids(f"schedule_id={schedule_id}") == scheduled
    assert run_ids("since=2026-11-30T02:00:00Z&until=2026-11-30T04:00:00Z") == [manual[0], scheduled[1]]


def test_pages_follow_the_cursor_and_cover_every_row_once(user, monkeypatch):
    monkeypatch.setattr(export, "MAX_ROWS", 5)
    made = [run_at(user.id, at(30, h), results=[result("a"), result("b")]) for h in range(7)]

    bodies, cursors = every_page(user, "format=csv")

    assert len(bodies) == 4 and cursors[-1] is None and all(cursors[:-1])
    pages = [csv_rows(body) for body in bodies]
    assert all(tuple(page[0]) == export.COLUMNS for page in pages)  # each answer is a whole file
    assert all(len(page) - 1 <= 5 for page in pages)
    rows = [(row[0], row[export.COLUMNS.index("model")]) for page in pages for row in page[1:]]
    assert rows == [(run_id, model) for run_id in made for model in ("a", "b")]


def test_a_page_stays_within_the_byte_budget_as_lambda_will_encode_it(user, monkeypatch):
    """Non-ASCII text weighs up to 6 bytes a character once JSON-escaped in Lambda's
    response: the budget counts that, not the UTF-8 length."""
    monkeypatch.setenv("EXPORT_MAX_BYTES", "6000")
    note = "日本語のエラー" * 20  # 140 characters, 420 bytes of UTF-8, 840 bytes escaped
    made = [run_at(user.id, at(30, h), results=[failure("a", error=note)] * 2) for h in range(12)]

    bodies, cursors = every_page(user, "format=jsonl")

    assert len(bodies) > 1
    for body in bodies:
        assert len(json.dumps(body.decode("utf-8"))) - 2 <= 6000  # as Lambda's JSON document holds it
    run_ids = [json.loads(line)["run_id"] for body in bodies for line in body.decode().splitlines()]
    assert run_ids == [run_id for run_id in made for _ in range(2)]


def test_a_rare_source_reads_a_bounded_number_of_runs_per_answer(user, monkeypatch):
    monkeypatch.setenv("EXPORT_MAX_READ", "4")
    made = [run_at(user.id, at(30, h), schedule_id=None if h % 5 else "s") for h in range(20)]
    bodies, cursors = every_page(user, "source=schedule")
    assert len(bodies) >= 5  # 20 runs, 4 read per answer
    rows = [row[0] for body in bodies for row in csv_rows(body)[1:]]
    assert rows == [made[h] for h in range(0, 20, 5)]


def test_an_export_never_holds_another_users_rows(user, bob):
    status, data = user.post("/api/schedules", {"name": "S", "models": ["gpt-4o"], "prompt": "p", "interval_hours": 1})
    schedule_id = data["id"]
    run_at(user.id, at(30, 1), schedule_id=schedule_id)
    run_at(user.id, at(30, 2))
    bobs = run_at(bob.id, at(30, 3))

    assert [row[0] for row in csv_rows(download(bob)[2])[1:]] == [bobs]
    status, _, body = download(bob, f"schedule_id={schedule_id}")
    assert status == 404 and json.loads(body)["detail"] == {"schedule_id": schedule_id}


def test_a_cursor_only_pages_through_the_callers_own_rows(user, bob, monkeypatch):
    monkeypatch.setattr(export, "MAX_ROWS", 1)
    run_at(user.id, at(30, 1))
    run_at(user.id, at(30, 2))
    cursor = download(user)[1]["x-next-cursor"]
    bobs = run_at(bob.id, at(30, 5))
    assert [row[0] for row in csv_rows(download(bob, f"cursor={cursor}")[2])[1:]] == [bobs]


def test_an_empty_export_is_a_header_only_file(user):
    status, headers, body = download(user)
    assert status == 200 and csv_rows(body) == [list(export.COLUMNS)]
    assert download(user, "format=jsonl")[2] == b""


@pytest.mark.parametrize(
    "query, field",
    [
        ("format=xlsx", "format"),
        ("since=soon", "since"),
        ("since=2026-11-30T02:00:00Z&until=2026-11-30T01:00:00Z", "until"),
        ("source=api", "source"),
        ("cursor=abc", "cursor"),
        ("limit=5", "limit"),
    ],
)
def test_bad_parameters_are_422s_naming_them(user, query, field):
    status, _, body = download(user, query)
    data = json.loads(body)
    assert status == 422 and data["detail"][0]["field"] == field


def test_export_needs_a_token(anonymous):
    assert download(anonymous)[0] == 401
