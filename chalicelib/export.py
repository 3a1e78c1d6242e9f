"""History export (`GET /api/history/export`): one row per result, as CSV or JSON Lines,
oldest run first, in pages.

Every answer is a complete file (CSV: a BOM and the header row on each), cut at a run
boundary when the next run would pass `MAX_ROWS` rows or the byte budget; `X-Next-Cursor`
then names where the next answer starts. The budget is counted as the body weighs inside
Lambda's response (`response_size`), so a full page stays below Lambda's 6 MB limit whatever
the text holds. What one answer may read is bounded too (`EXPORT_MAX_READ` runs): a rare
`source` filter answers a short page with a cursor instead of reading on.

CSV follows RFC 4180: comma-separated, fields holding a comma, quote, CR or LF quoted with
quotes doubled, CRLF line ends, UTF-8. A UTF-8 BOM starts each CSV answer so spreadsheet
programs read it as UTF-8 (Python: open it with `encoding="utf-8-sig"`). Text cells that
a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) are
prefixed with `'`; numbers are written as numbers (a negative number is not a formula).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from chalicelib import clock, config, history, response_size
from chalicelib.tables import RunModel

MAX_ROWS = 50_000

RUN_COLUMNS = ("run_id", "time", "source", "schedule_id", "schedule_name", "trigger")
RESULT_COLUMNS = (
    "provider", "model", "model_id", "run", "runs", "context_tokens",
    "ttft_ms", "ttfo_ms", "total_time_s", "output_tokens", "input_tokens",
    "tokens_per_second", "input_tokens_per_second", "output_speed_tps",
    "itl_ms", "itl_p50_ms", "itl_p99_ms", "cost", "cost_known", "usage_reported",
    "success", "error_type", "error",
)
COLUMNS = RUN_COLUMNS + RESULT_COLUMNS

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BOM = "\ufeff"


def max_bytes() -> int:
    """The body budget of one answer (Lambda's limit is 6 MB for the whole response)."""
    return config.int_setting("EXPORT_MAX_BYTES", 5_000_000)


def max_read() -> int:
    return config.int_setting("EXPORT_MAX_READ", 2000)


class ExportQuery(history.TimeRange):
    """`GET /api/history/export?format=csv|jsonl&since=&until=&source=&schedule_id=&cursor=`."""

    format: Literal["csv", "jsonl"] = "csv"
    source: history.Source | None = None
    schedule_id: history.ScheduleId | None = None
    cursor: history.Cursor = None


@dataclass(frozen=True)
class ExportPage:
    body: str
    rows: int
    format: str
    next_cursor: str | None

    def headers(self) -> dict[str, str]:
        content_type = "text/csv; charset=utf-8" if self.format == "csv" else "application/x-ndjson; charset=utf-8"
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="benchmark-history-{stamp}.{self.format}"',
        }
        if self.next_cursor:
            headers["X-Next-Cursor"] = self.next_cursor
        return headers


def export(user_id: str, query: ExportQuery) -> ExportPage:
    if query.schedule_id:
        history.require_schedule(user_id, query.schedule_id)
    scan = history.RunScan(
        user_id,
        history.RunFilter(since=query.since, until=query.until, schedule_id=query.schedule_id, source=query.source),
        after=history.cursor_run_id(query.cursor) if query.cursor else None,
        newest_first=False,
        max_read=max_read(),
        attributes=["user_id", "run_id", "created_at", "source", "metadata", "results"],  # not the prompt
    )
    render = _csv if query.format == "csv" else _jsonl
    parts = [_BOM + render([list(COLUMNS)])] if query.format == "csv" else []
    size, rows, budget = sum(map(response_size.text_bytes, parts)), 0, max_bytes()
    last: str | None = None
    cut = False
    for run in scan:
        records = [row_values(run, result) for result in run.results or []]
        chunk = render(records)
        chunk_size = response_size.text_bytes(chunk)
        if last is not None and (rows + len(records) > MAX_ROWS or size + chunk_size > budget):
            cut = True
            break
        parts.append(chunk)
        size, rows, last = size + chunk_size, rows + len(records), run.run_id
    resume = last if cut else scan.resume_after
    return ExportPage(
        body="".join(parts),
        rows=rows,
        format=query.format,
        next_cursor=history.encode_cursor(resume) if resume else None,
    )


def row_values(run: RunModel, result: dict[str, Any]) -> list[Any]:
    """One result as a row of `COLUMNS` (native values; the format renders them)."""
    metadata = run.metadata or {}
    head = [
        run.run_id, run.created_at, run.source, metadata.get("schedule_id"),
        metadata.get("schedule_name"), metadata.get("trigger"),
    ]
    return head + [result.get(column) for column in RESULT_COLUMNS]


def _csv(rows: Iterable[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _jsonl(rows: Iterable[list[Any]]) -> str:
    return "".join(
        json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False, separators=(",", ":")) + "\n"
        for row in rows
    )
