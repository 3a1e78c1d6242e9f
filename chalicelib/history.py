"""The user's benchmark history (`benchmark_runs`): saving a run, finding runs, reading,
deleting.

A run belongs to the job that ran it, and its id derives from that job alone: the moment
the job started (fixed once, when it moved to running) and the job id. So the table's sort
key orders runs by time ("newest first" is a backwards query, a time range a key
condition), and a runner that saves twice, seconds apart, writes one run: the put is
conditional on the id being new.

Finding runs is `RunScan`: the caller's runs in a time range, through the table (key
`user_id`) or, for one schedule, its sparse `schedule` index (key `<user_id>#<schedule_id>`),
never a scan and never another user's partition. Other filters (source, status, model) are
DynamoDB filter expressions on attributes written with the run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Iterator, Literal, Sequence

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib import clock, config, cursors, response_size, schedules, summaries, writes
from chalicelib.errors import NotFound
from chalicelib.tables import RunModel

MAX_LIMIT = 100
_RUN_ID = re.compile(r"^[0-9TZ.:-]{1,40}-[0-9a-f]{1,64}$")
_PAGE = 100  # items per Query page when filters may skip many
# DynamoDB refuses an item over 400 KB. The bounds (a prompt ≤ 100,000 bytes, 20 models ×
# 10 runs) keep a run under it except for error texts, which a provider writes: those are
# shortened, longest first allowed, until the item fits (`_fitted`); figures never are.
_ITEM_BUDGET = 380_000
_ERROR_CUTS = (120, 40)


def max_read() -> int:
    """Runs one `GET /api/history` answer may read (DynamoDB bills items evaluated, not
    returned): a rare filter answers a short page with a cursor instead of reading on."""
    return config.int_setting("HISTORY_MAX_READ", 1000)


def max_bytes() -> int:
    """What one page of runs may weigh in Lambda's response (limit 6 MB): a benchmark of 20
    models × 10 runs holds 200 results, so 100 such runs would not fit."""
    return config.int_setting("HISTORY_MAX_BYTES", 4_000_000)


@dataclass(frozen=True)
class NewRun:
    user_id: str
    job_id: str
    started_at: str  # the job's `started_at`: the run's time
    prompt: str
    max_tokens: int
    temperature: float
    results: list[dict[str, Any]]
    metadata: dict[str, Any]
    source: str = "schedule"
    schedule_id: str | None = None  # set for scheduled runs (ticked or triggered)


def run_id_for(started_at: str, job_id: str) -> str:
    return f"{_compact(started_at)}-{job_id}"


def _compact(iso: str) -> str:
    return iso.replace("-", "").replace(":", "")


def _schedule_key(user_id: str, schedule_id: str) -> str:
    return f"{user_id}#{schedule_id}"


def save(run: NewRun) -> str:
    """Store the run once (a second save of the job's run changes nothing); its id, which
    is the job's `result_ref`. Status, model names and per-model summary are written with
    it, so readers filter and summarize without re-deriving them."""
    run_id = run_id_for(run.started_at, run.job_id)
    summary = summaries.run_summary(run.results)
    models = list(dict.fromkeys(str(r["model"]) for r in run.results)) or None
    fixed = len(run.prompt.encode("utf-8", "surrogatepass")) + _stored_bytes(summary, run.metadata, models)
    item = RunModel(
        run.user_id,
        run_id,
        created_at=run.started_at,
        source=run.source,
        prompt=run.prompt,
        context_tiers=[0],
        max_tokens=run.max_tokens,
        temperature=run.temperature,
        results=_fitted(run.results, _ITEM_BUDGET - fixed),
        metadata=run.metadata,
        status=summaries.run_status(run.results),
        schedule_id=run.schedule_id,
        schedule_key=_schedule_key(run.user_id, run.schedule_id) if run.schedule_id else None,
        models=models,
        summary=summary,
    )
    writes.put_if(item, RunModel.run_id.does_not_exist())  # False: saved before, kept as is
    return run_id


def _stored_bytes(*values: Any) -> int:
    """The bytes `values` take as the run item stores them (its JSON form)."""
    attribute = RunModel.results
    return sum(len((attribute.serialize(value) or "").encode("utf-8")) for value in values)


def _fitted(results: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """`results` within `budget` bytes: as they are when they fit, else with each `error`
    cut to fewer characters (`_ERROR_CUTS`), which is all a provider can make long."""
    fitted = results
    for cut in _ERROR_CUTS:
        if _stored_bytes(fitted) <= budget:
            break
        fitted = [_short_error(result, cut) for result in results]
    return fitted


def _short_error(result: dict[str, Any], cut: int) -> dict[str, Any]:
    error = result.get("error")
    if not isinstance(error, str) or len(error) <= cut:
        return result
    return {**result, "error": error[: cut - 1] + "…"}


# --- query parameters shared by the history, stats and export routes -----------------------


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 time with a zone (`2026-11-30T09:00:00Z`, `...+02:00`) or a date
    (midnight UTC), as an aware UTC datetime. A time without a zone is refused rather than
    guessed."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO-8601 time such as 2026-11-30T09:00:00Z")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 time such as 2026-11-30T09:00:00Z") from None
    if moment.tzinfo is None:
        if len(text) != 10:  # a bare date means that day in UTC; a bare time is ambiguous
            raise ValueError("needs a time zone: end it with Z for UTC")
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range") from None
    if moment.year < 1970:  # run ids are fixed-width times from 1970 on; so are bounds
        raise ValueError("must be 1970 or later")
    return moment


Instant = Annotated[datetime | None, BeforeValidator(parse_instant)]
ScheduleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ModelFilter = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Source = Literal["schedule", "manual"]


class TimeRange(BaseModel):
    """`since` (inclusive) and `until` (exclusive) of a query; unknown parameters refused."""

    model_config = ConfigDict(extra="forbid")

    since: Instant = None
    until: Instant = None

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise ValueError("must be later than since")
        return value


def _readable_cursor(value: str | None) -> str | None:
    if value is not None:
        cursor_run_id(value)
    return value


Cursor = Annotated[str | None, BeforeValidator(_readable_cursor)]


# --- finding runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    """Which of the user's runs: a time range [since, until), one schedule, and attribute
    filters (each None: any)."""

    since: datetime | None = None
    until: datetime | None = None
    schedule_id: str | None = None
    source: str | None = None
    status: str | None = None
    model: str | None = None

    def condition(self) -> Condition | None:
        parts: list[Condition] = []
        if self.source:
            parts.append(RunModel.source == self.source)
        if self.status:
            parts.append(RunModel.status == self.status)
        if self.model:
            parts.append(RunModel.models.contains(self.model))
        combined: Condition | None = None
        for part in parts:
            combined = part if combined is None else combined & part
        return combined


class RunScan:
    """The user's runs that pass `where`, in time order, read page by page with the time
    range as the key condition.

    `after`: continue after this run id (a cursor), exclusive. `max_read` bounds the items
    DynamoDB evaluates (and bills) for one answer: when it is reached with more to read,
    iteration ends and `resume_after` names the last run evaluated. `read` counts items
    evaluated so far. `attributes` projects the items (None: whole items)."""

    def __init__(
        self,
        user_id: str,
        where: RunFilter,
        *,
        after: str | None = None,
        newest_first: bool = True,
        max_read: int | None = None,
        page_size: int | None = None,
        attributes: Sequence[str] | None = None,
    ):
        self.user_id = user_id
        self.where = where
        self.after = after
        self.newest_first = newest_first
        self.max_read = max_read
        self.page_size = page_size
        self.attributes = list(attributes) if attributes else None
        self.read = 0
        self.resume_after: str | None = None

    def __iter__(self) -> Iterator[RunModel]:
        bounds = self._bounds()
        if bounds is False:
            return
        options: dict[str, Any] = {
            "filter_condition": self.where.condition(),
            "scan_index_forward": not self.newest_first,
            "page_size": self.page_size,
            "attributes_to_get": self.attributes,
        }
        if self.where.schedule_id:
            key = _schedule_key(self.user_id, self.where.schedule_id)
            query = RunModel.by_schedule.query(key, bounds, **options)
        else:
            query = RunModel.query(self.user_id, bounds, **options)
        pages = query.page_iter
        while True:
            if self.max_read is not None:
                pages.page_size = min(self.page_size or _PAGE, self.max_read - self.read)
            try:
                page = next(pages)
            except StopIteration:
                return
            self.read += int(page.get("ScannedCount", 0))
            for raw in page.get("Items", []):
                run = RunModel.from_raw_data(raw)
                if run.run_id != self.after:
                    yield run
            last = page.get("LastEvaluatedKey")
            if last is None:
                return
            if self.max_read is not None and self.read >= self.max_read:
                self.resume_after = last["run_id"]["S"]
                return

    def _bounds(self) -> Condition | None | Literal[False]:
        """The run id key condition: [since, until) and after the cursor; None for no
        bound; False when the range is empty. Bounds are compact times without a job
        suffix, so a run starting exactly at `since` is in and one at `until` is out.
        The cursor's own run is inside the bound and skipped while reading."""
        low = _compact(clock.iso(self.where.since)) if self.where.since else None
        high = _compact(clock.iso(self.where.until)) if self.where.until else None
        if self.after and self.newest_first:
            high = self.after if high is None else min(high, self.after)
        elif self.after:
            low = self.after if low is None else max(low, self.after)
        if low is not None and high is not None:
            return RunModel.run_id.between(low, high) if low <= high else False
        if low is not None:
            return RunModel.run_id >= low
        if high is not None:
            return RunModel.run_id <= high
        return None


def require_schedule(user_id: str, schedule_id: str) -> None:
    """404 unless the caller has this schedule, or had it (a deleted schedule's runs stay
    in history). Another user's schedule id is exactly as unknown as a made-up one: both
    lookups are keyed by the caller."""
    try:
        schedules.get(user_id, schedule_id)
        return
    except NotFound as missing:
        runs = RunModel.by_schedule.query(_schedule_key(user_id, schedule_id), limit=1)
        if next(iter(runs), None) is None:
            raise missing from None


# --- GET /api/history ------------------------------------------------------------------------


class HistoryQuery(TimeRange):
    """`GET /api/history?source=&schedule_id=&model=&status=&since=&until=&limit=&cursor=`."""

    source: Source | None = None
    schedule_id: ScheduleId | None = None
    model: ModelFilter | None = None
    status: Literal["ok", "partial", "failed"] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 20
    cursor: Cursor = None


def list_runs(user_id: str, query: HistoryQuery) -> dict[str, Any]:
    """Newest first, `limit` at most; `next_cursor` continues it. A page may hold fewer
    than `limit` runs with a cursor: when the filters skipped `max_read()` runs (even none
    then), or when one more run would pass `max_bytes()` (at least one run then)."""
    if query.schedule_id:
        require_schedule(user_id, query.schedule_id)
    where = RunFilter(
        since=query.since, until=query.until, schedule_id=query.schedule_id,
        source=query.source, status=query.status, model=query.model,
    )
    filtered = where.condition() is not None
    scan = RunScan(
        user_id,
        where,
        after=cursor_run_id(query.cursor) if query.cursor else None,
        max_read=max_read(),
        page_size=_PAGE if filtered else query.limit + 1,  # one more tells whether more exist
    )
    runs: list[tuple[RunModel, dict[str, Any]]] = []
    size, budget, more = 0, max_bytes(), False
    for run in scan:
        public = to_public(run)
        weight = response_size.json_bytes(public)
        if len(runs) == query.limit or (runs and size + weight > budget):
            more = True
            break
        runs.append((run, public))
        size += weight
    if more:
        next_cursor: str | None = encode_cursor(runs[-1][0].run_id)
    else:
        next_cursor = encode_cursor(scan.resume_after) if scan.resume_after else None
    names = schedules.names_of(user_id, filter(None, (_scheduled_id(run) for run, _ in runs)))
    for run, public in runs:
        public["current_schedule_name"] = names.get(_scheduled_id(run) or "")
    return {"runs": [public for _, public in runs], "next_cursor": next_cursor}


def get(user_id: str, run_id: str) -> dict[str, Any]:
    try:
        run = RunModel.get(user_id, run_id)
    except DoesNotExist:
        raise _not_found(run_id) from None
    schedule_id = _scheduled_id(run)
    names = schedules.names_of(user_id, [schedule_id]) if schedule_id else {}
    return to_public(run, names.get(schedule_id or ""))


def delete(user_id: str, run_id: str) -> None:
    if not writes.delete_if(RunModel(user_id, run_id), RunModel.run_id.exists()):
        raise _not_found(run_id)


def to_public(run: RunModel, current_schedule_name: str | None = None) -> dict[str, Any]:
    """A run as clients see it. `current_schedule_name` is the schedule's name now (None:
    deleted, or not a scheduled run), next to `metadata.schedule_name`, its name then."""
    results = run.results or []
    return {
        "id": run.run_id,
        "created_at": run.created_at,
        "source": run.source,
        "status": run.status or summaries.run_status(results),
        "prompt": run.prompt,
        "context_tiers": [int(t) for t in run.context_tiers or [0]],
        "max_tokens": int(run.max_tokens),
        "temperature": float(run.temperature),
        "results": results,
        "summary": run.summary if run.summary is not None else summaries.run_summary(results),
        "metadata": run.metadata,
        "current_schedule_name": current_schedule_name,
    }


def _scheduled_id(run: RunModel) -> str | None:
    """The schedule of a scheduled run (its metadata names it), else None."""
    metadata = run.metadata or {}
    schedule_id = metadata.get("schedule_id") if metadata.get("source") == "schedule" else None
    return schedule_id if isinstance(schedule_id, str) else None


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(run_id: str) -> str:
    return cursors.encode(run_id)


def cursor_run_id(cursor: str) -> str:
    """The run id a cursor holds (`ValueError` for anything this API did not give out)."""
    return cursors.decode(cursor, _RUN_ID)


def _not_found(run_id: str) -> NotFound:
    return NotFound("Run not found", {"run_id": run_id})
