"""A job's life: submit → start → progress/heartbeat → finish, and cancel.

Every change is one conditional write (or one TransactWriteItems when the slot item must
change with the job), conditioned on the status the writer saw (`rules.leaving`). When a
condition fails nothing was applied, and the caller learns it from the return value:
`start` → None, `finish` → None (and no event), `progress` → True ("stop"). A runner acts
only on a job its own `start` moved to running.

Request budget of one uncontended lifecycle (DESIGN §2, measured by bench/registry.py):
submit = 1 TransactWriteItems (put + the slot's waiting count, under room and the cap);
start = 1 GetItem (the runner needs the job's owner and params anyway) + 1
TransactWriteItems (which also gives the waiting place back); finish = 1
TransactWriteItems whose slot update carries `NOTHING_QUEUED`, so the `queued` GSI is
queried only when that condition says somebody waits.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib import clock, writes
from chalicelib.errors import Conflict, NotFound, TooManyRequests
from chalicelib.jobs import events, rules
from chalicelib.tables import CancelSignalModel, JobModel, SlotModel

_ATTEMPTS = 8  # rounds of "read, try the conditional write" before giving up on a hot item
_MAX_ERROR_CHARS = 2000


class DuplicateJob(Conflict):
    """A job with this id exists already; it was left as it was."""


def too_many_waiting(cap: int) -> TooManyRequests:
    return TooManyRequests(f"Too many waiting jobs (at most {cap} per user)", {"limit": cap})


# --- what this process remembers about the jobs it runs ----------------------------------


class _Owners:
    """job_id → (user_id, timeout_at) for jobs this process started.

    The runner calls start, progress and finish in one process; remembering the owner saves
    finish a GetItem (the slot's key is the user id), and the timeout lets progress cap the
    lease without reading it. A job's owner never changes; a stale entry can only come from
    reused ids, and finish's condition `user_id = :owner` catches that (then it reads).
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def remember(self, job: JobModel) -> None:
        with self._lock:
            self._entries[job.job_id] = (job.user_id, job.timeout_at)
            self._entries.move_to_end(job.job_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, job_id: str) -> tuple[str, str | None] | None:
        with self._lock:
            return self._entries.get(job_id)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._entries.pop(job_id, None)


_owners = _Owners()


def read(job_id: str) -> JobModel | None:
    """The job as it is now (strongly consistent), or None."""
    try:
        return JobModel.get(job_id, consistent_read=True)
    except DoesNotExist:
        return None


# --- creating -------------------------------------------------------------------------------


def build_job(
    job_type: str,
    user_id: str,
    params: dict[str, Any] | None,
    *,
    job_id: str | None = None,
    schedule_id: str | None = None,
) -> JobModel:
    """A new pending job, not saved: the tick puts it (`rules.IS_NEW`) in the transaction
    that claims its schedule.

    It carries `active_shard` and `lease_until` = the time the tick looks at it again if no
    runner has started it by then (its dispatch was lost)."""
    now = clock.now()
    job_id = job_id or uuid.uuid4().hex
    return JobModel(
        job_id,
        user_id=user_id,
        job_type=job_type,
        status=rules.PENDING,
        params=params,
        progress_pct=0,
        schedule_id=schedule_id,
        created_at=clock.iso(now),
        live_user=user_id,
        active_shard=rules.shard_of(job_id),
        lease_until=clock.iso(rules.redispatch_at(now)),
    )


def announce_created(job: JobModel) -> None:
    """Tell the user's clients; call it after the transaction holding the job committed."""
    events.created(job)


def submit(
    job_type: str,
    user_id: str,
    params: dict[str, Any] | None,
    *,
    job_id: str | None = None,
    schedule_id: str | None = None,
) -> JobModel:
    """Create a job: pending, or queued when the user is at their limit. Raises
    `DuplicateJob` when the id exists (nothing is overwritten), and `TooManyRequests` (429)
    when the user already has `MAX_WAITING_JOBS_PER_USER` pending/queued jobs of their own.

    One transaction: the put, and the slot's `waiting + 1` under "room to run now and below
    the cap". Only when that fails for want of room (the slot as it was tells which) is the
    job put as queued, with `queued + 1, waiting + 1` under the cap alone (2nd request).
    The cap is a condition, so racing submits get exactly `cap` through; `counts_waiting`
    on the job makes the one transition that takes it out of pending/queued give it back.
    """
    job = build_job(job_type, user_id, params, job_id=job_id, schedule_id=schedule_id)
    job.counts_waiting = True
    cap = rules.max_waiting_per_user()
    failed = (
        writes.Tx()
        .put("job", job, rules.IS_NEW)
        .update(
            "slot",
            SlotModel(user_id),
            [SlotModel.waiting.add(1)],
            rules.slot_has_room() & rules.waiting_below(cap),
            return_old=True,
        )
        .commit()
    )
    if "job" in failed:
        raise DuplicateJob("Job already exists", {"job_id": job.job_id})
    if "slot" in failed:
        seen = _from_raw_slot(failed["slot"].raw_item)
        if seen is not None and (seen.waiting or 0) >= cap:
            raise too_many_waiting(cap)
        job.status = rules.QUEUED
        job.queued_user = user_id
        failed = (
            writes.Tx()
            .put("job", job, rules.IS_NEW)
            .update(
                "slot",
                SlotModel(user_id),
                [SlotModel.queued.add(1), SlotModel.waiting.add(1)],
                rules.waiting_below(cap),
            )
            .commit()
        )
        if "job" in failed:
            raise DuplicateJob("Job already exists", {"job_id": job.job_id})
        if "slot" in failed:
            raise too_many_waiting(cap)
    announce_created(job)
    return job


def _from_raw_slot(raw_item: dict | None) -> SlotModel | None:
    return SlotModel.from_raw_data(raw_item) if raw_item else None


# --- starting -------------------------------------------------------------------------------


def start(job_id: str) -> JobModel | None:
    """pending|queued → running, taking a slot in the same transaction; returns the job
    (with its params) when THIS call moved it, so the caller runs it.

    None otherwise: the job is unknown or not waiting (a duplicate or late delivery: no
    effect), or the user has no free slot (the job is, or becomes, queued; a later finish
    hands it out, or the reaper returns it for re-dispatch)."""
    for _ in range(_ATTEMPTS):
        job = read(job_id)
        if job is None or job.status not in (rules.PENDING, rules.QUEUED):
            return None
        failed = _take_slot(job, clock.now())
        if not failed:
            _owners.remember(job)
            events.started(job.user_id, job.job_id)
            return job
        if "job" in failed:
            continue  # it moved under us (another start, a cancel): look again
        if job.status == rules.QUEUED:
            return None  # still no room: it keeps its place in the queue
        if _enqueue(job, clock.now()):
            return None
        # the slot freed up meanwhile (or the job moved): try again
    return None


def _take_slot(job: JobModel, now: datetime) -> dict:
    seen = job.status
    timeout = rules.timeout_at(now)
    lease = rules.lease_until(now, timeout)
    slot_actions: list[Action] = [SlotModel.active.add(1), *_leaving_waiting(job)]
    failed = (
        writes.Tx()
        .update(
            "job",
            job,
            [
                JobModel.status.set(rules.RUNNING),
                JobModel.started_at.set(clock.iso(now)),
                JobModel.timeout_at.set(clock.iso(timeout)),
                JobModel.lease_until.set(clock.iso(lease)),
                JobModel.queued_user.remove(),
            ],
            rules.leaving(seen, rules.RUNNING),
        )
        .update("slot", SlotModel(job.user_id), slot_actions, rules.slot_has_room())
        .commit()
    )
    if not failed:
        job.status = rules.RUNNING
        job.started_at = clock.iso(now)
        job.timeout_at = clock.iso(timeout)
        job.lease_until = clock.iso(lease)
        job.queued_user = None
    return failed


def _enqueue(job: JobModel, now: datetime) -> bool:
    """pending → queued, only while the slot is still full (else the caller retries start:
    no job may wait in the queue while its user has room and nobody will wake it)."""
    lease = clock.iso(rules.redispatch_at(now))
    failed = (
        writes.Tx()
        .update(
            "job",
            job,
            [
                JobModel.status.set(rules.QUEUED),
                JobModel.queued_user.set(job.user_id),
                JobModel.lease_until.set(lease),
            ],
            rules.leaving(rules.PENDING, rules.QUEUED),
        )
        .update("slot", SlotModel(job.user_id), [SlotModel.queued.add(1)], rules.slot_is_full())
        .commit()
    )
    if failed:
        return False
    job.status, job.queued_user, job.lease_until = rules.QUEUED, job.user_id, lease
    return True


# --- while running --------------------------------------------------------------------------


def progress(job_id: str, pct: float, detail: str | None) -> bool:
    """Store progress (one UpdateItem conditioned on running); emits job_progress. Returns
    True when the runner should stop: cancellation was requested, or the job is no longer
    running (reaped, cancelled, finished elsewhere).

    It leaves the lease alone: the runner's watch renews it on its own period, and a lease
    change is a key change of the `active` index entry (two more index writes)."""
    pct = min(100, max(0, pct))
    shown = JobModel.progress_detail.set(detail) if detail is not None else JobModel.progress_detail.remove()
    job = JobModel(job_id)
    if not _update_if_running(job, [JobModel.progress_pct.set(pct), shown]):
        return True
    events.progress(job.user_id, job_id, pct, detail)
    return bool(job.cancel_requested)


def heartbeat(job_id: str) -> bool:
    """Renew the lease (every `JOB_LEASE_RENEW_SECONDS` while the job runs). Same answer as
    `progress`."""
    now = clock.now()
    known = _owners.get(job_id)
    timeout = clock.parse(known[1]) if known and known[1] else None
    job = JobModel(job_id)
    if not _update_if_running(job, [JobModel.lease_until.set(clock.iso(rules.lease_until(now, timeout)))]):
        return True
    cap = job.timeout_at
    if timeout is None and cap and job.lease_until and job.lease_until > cap:
        # Renewed by a process that did not start the job: cap the lease at the timeout.
        if not _update_if_running(job, [JobModel.lease_until.set(cap)]):
            return True
    _owners.remember(job)
    return bool(job.cancel_requested)


def cancel_requested(job_id: str) -> bool:
    """Whether the job's owner asked to cancel it: the runner's frequent poll. One strongly
    consistent GetItem of the small signal item (1 read unit), never of the job item."""
    try:
        CancelSignalModel.get(_signal_key(job_id), consistent_read=True)
    except DoesNotExist:
        return False
    return True


def _signal_key(job_id: str) -> str:
    return f"cancel#{job_id}"


def _update_if_running(job: JobModel, actions: list[Action]) -> bool:
    """One UpdateItem (ReturnValues ALL_NEW into `job`); False when the job is not running."""
    return writes.update_if(job, actions, rules.IS_RUNNING)


# --- ending ---------------------------------------------------------------------------------


def ending_actions(
    status: str, now: datetime, *, result_ref: str | None = None, error: str | None = None
) -> list[Action]:
    """The writes that make a job terminal. They also drop it from the sparse `active`,
    `queued` and `live` GSIs, which therefore only ever hold live jobs."""
    actions: list[Action] = [
        JobModel.status.set(status),
        JobModel.completed_at.set(clock.iso(now)),
        JobModel.active_shard.remove(),
        JobModel.lease_until.remove(),
        JobModel.queued_user.remove(),
        JobModel.live_user.remove(),
    ]
    if result_ref is not None:
        actions.append(JobModel.result_ref.set(result_ref))
    if error is not None:
        actions.append(JobModel.error_msg.set(error[:_MAX_ERROR_CHARS]))
    if status == rules.DONE:
        actions.append(JobModel.progress_pct.set(100))
    actions.append(JobModel.expires_at.set(now + timedelta(days=rules.ttl_days())))
    return actions


def finish(
    job_id: str, status: str, *, result_ref: str | None = None, error: str | None = None
) -> JobModel | None:
    """running → done|failed|cancelled|interrupted, releasing the slot in the same
    transaction; emits job_completed / job_failed / job_cancelled.

    Only the first of a duplicate finish, or of finish racing the reaper, passes the
    `running` condition, so the slot is released once and the event sent once; the others
    change nothing. Returns the user's oldest queued job (a keys-only view: job_id,
    user_id, created_at) for the caller to `start`, or None."""
    rules.leaving(rules.RUNNING, status)  # refuses a status finish never sets
    if error is None and status in (rules.FAILED, rules.INTERRUPTED):
        error = "Job interrupted" if status == rules.INTERRUPTED else "Job failed"
    known = _owners.get(job_id)
    user_id = known[0] if known else None
    if user_id is None:
        job = read(job_id)
        if job is None or job.status != rules.RUNNING:
            return None
        user_id = job.user_id
    now = clock.now()
    anyone_queued = False
    for _ in range(_ATTEMPTS):
        failed = (
            writes.Tx()
            .update(
                "job",
                JobModel(job_id),
                ending_actions(status, now, result_ref=result_ref, error=error),
                rules.leaving(rules.RUNNING, status) & rules.owned_by(user_id),
                return_old=True,
            )
            .update(
                "slot",
                SlotModel(user_id),
                [SlotModel.active.add(-1)],
                None if anyone_queued else rules.NOTHING_QUEUED,
            )
            .commit()
        )
        if not failed:
            break
        if "job" in failed:
            current = _from_raw(failed["job"].raw_item)
            if current is not None and current.status == rules.RUNNING and current.user_id != user_id:
                user_id = current.user_id  # a stale memory of the owner: use the item's
                continue
            return None  # not running: a duplicate finish, or the reaper came first
        anyone_queued = True  # only the probe failed: somebody waits; release anyway
    else:
        raise RuntimeError(f"finish({job_id}) kept conflicting")
    _owners.forget(job_id)
    events.ended(user_id, job_id, status, result_ref=result_ref, error=error)
    return next_queued(user_id) if anyone_queued else None


def _from_raw(raw_item: dict | None) -> JobModel | None:
    return JobModel.from_raw_data(raw_item) if raw_item else None


def next_queued(user_id: str) -> JobModel | None:
    """The user's oldest queued job, from the keys-only `queued` GSI (one Query)."""
    heads = queue_heads(user_id, 1)
    return heads[0] if heads else None


def queue_heads(user_id: str, count: int) -> list[JobModel]:
    """The user's `count` oldest queued jobs (keys-only views: job_id, user_id, created_at)."""
    return [
        JobModel(key.job_id, user_id=user_id, status=rules.QUEUED, created_at=key.created_at, queued_user=user_id)
        for key in JobModel.queued.query(user_id, scan_index_forward=True, limit=count)
    ]


# --- cancelling -----------------------------------------------------------------------------


def cancel(job_id: str, user_id: str) -> JobModel:
    """pending/queued → cancelled at once (job_cancelled); running → `cancel_requested`,
    which the runner's watch polls (`cancel_requested()`) and answers with finish(cancelled).

    `NotFound` for an unknown job or another user's (the same answer: ids are not
    probed); `Conflict` naming the status for a job that already ended."""
    for _ in range(_ATTEMPTS):
        job = read(job_id)
        if job is None or job.user_id != user_id:
            raise NotFound("Job not found", {"job_id": job_id})
        if job.status in rules.TERMINAL_STATUSES:
            raise Conflict(
                f"Job is already {job.status}", {"job_id": job_id, "status": job.status}
            )
        if job.status == rules.RUNNING:
            if _request_cancel(job, clock.now()):
                return job
            continue
        if _cancel_waiting(job, clock.now()):
            events.ended(user_id, job_id, rules.CANCELLED, result_ref=None, error=None)
            return job
    raise Conflict("Job kept changing while being cancelled; try again", {"job_id": job_id})


def _request_cancel(job: JobModel, now: datetime) -> bool:
    """Flag the running job and put its signal item, in one transaction (a job that ended
    meanwhile gets neither). The signal outlives any run and then expires."""
    signal = CancelSignalModel(_signal_key(job.job_id), expires_at=now + timedelta(days=1))
    failed = (
        writes.Tx()
        .update("job", job, [JobModel.cancel_requested.set(True)], rules.IS_RUNNING)
        .put("signal", signal)
        .commit()
    )
    if failed:
        return False
    job.cancel_requested = True
    return True


def _cancel_waiting(job: JobModel, now: datetime) -> bool:
    seen = job.status
    tx = writes.Tx().update(
        "job", job, ending_actions(rules.CANCELLED, now), rules.leaving(seen, rules.CANCELLED)
    )
    slot_actions = _leaving_waiting(job)
    if slot_actions:
        tx.update("slot", SlotModel(job.user_id), slot_actions)
    if tx.commit():
        return False
    job.status, job.completed_at = rules.CANCELLED, clock.iso(now)
    job.active_shard = job.lease_until = job.queued_user = job.live_user = None
    return True


def _leaving_waiting(job: JobModel) -> list[Action]:
    """The slot's side of a job leaving pending/queued as `job` was seen: out of the queue
    count if queued, and back under the waiting cap if it counted. Applied in the same
    transaction as the job's move (conditioned on the status seen), so exactly once."""
    actions: list[Action] = []
    if job.status == rules.QUEUED:
        actions.append(SlotModel.queued.add(-1))
    if job.counts_waiting:
        actions.append(SlotModel.waiting.add(-1))
    return actions
