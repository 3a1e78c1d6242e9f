"""Job registry benchmark against moto: jobs/s through submit → start → finish, and the
DynamoDB requests one job lifecycle costs.

Requests are counted by a botocore `before-call.dynamodb` hook on the one client every table
and transaction talks through (`chalicelib.tables`), so retries inside botocore would not
hide a call the code makes. Target: ≤ 4 per job.

Rows:
- `own user`: each thread submits, starts and finishes jobs for its own user (limit 1):
  the uncontended lifecycle the budget is about.
- `one user, limit 2`: all threads share one user, so jobs queue and `finish` hands the
  next queued job to the caller, which starts it (what the runner does).

moto answers in-process and `devstack.moto_serial` runs one request at a time (DynamoDB's
per-item serialization), so raw moto throughput does not grow with threads. The `+ms`
columns add the latency a DynamoDB request has on AWS (`BENCH_DDB_MS`, default 8 ms) by
sleeping in a botocore hook outside that lock: that is where threads pay off. Each row
starts from empty tables.

Run from the repo root: `.venv/bin/python bench/registry.py` (`BENCH_JOBS`, default 160).
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from moto_env import isolate

# The shared-user rows queue jobs faster than two can run: measure the registry, not the cap.
isolate(MAX_WAITING_JOBS_PER_USER="1000000")

from moto import mock_aws  # noqa: E402

from chalicelib import jobs, notify, tables  # noqa: E402
from chalicelib.tables import UserModel  # noqa: E402
from devstack.moto_serial import serialize_dynamodb  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "160"))
DDB_MS = float(os.environ.get("BENCH_DDB_MS", "8"))


class Meter:
    """DynamoDB API calls by operation, and optional simulated AWS latency per call."""

    def __init__(self, latency_ms: float) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.latency_s = latency_ms / 1000

    def __call__(self, model=None, **_) -> None:
        with self.lock:
            self.calls[model.name] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def install(self) -> list:
        client = tables._shared_connection().client  # every table's and transaction's
        client.meta.events.register("before-call.dynamodb", self)
        return [client]


def lifecycle(job_type: str, user_id: str, n: int) -> int:
    """submit → start → finish, then start whatever finish hands back (like the runner);
    returns how many jobs this call ran to the end."""
    job = jobs.submit(job_type, user_id, {"n": n})
    ran = 0
    current = jobs.start(job.job_id)
    while current is not None:
        following = jobs.finish(current.job_id, jobs.DONE, result_ref=f"run-{n}")
        ran += 1
        current = jobs.start(following.job_id) if following is not None else None
    return ran


def run_row(threads: int, shared_user: bool, latency_ms: float) -> dict:
    with mock_aws():
        tables.create_tables()
        users = ["shared"] if shared_user else [f"user-{i}" for i in range(threads)]
        if shared_user:
            UserModel("shared", email="shared@example.com", role="user", created_at="x").save()
            jobs.set_limit("shared", 2)
        meter = Meter(latency_ms)
        clients = meter.install()
        tickets = iter(range(JOBS))
        lock = threading.Lock()

        def worker(index: int) -> int:
            ran = 0
            while True:
                with lock:
                    n = next(tickets, None)
                if n is None:
                    return ran
                ran += lifecycle("benchmark", users[index % len(users)], n)

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            ran = sum(pool.map(worker, range(threads)))
        elapsed = time.perf_counter() - started
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", meter)
        assert ran == JOBS, f"only {ran} of {JOBS} jobs ran to the end"
        total = sum(meter.calls.values())
        return {
            "jobs_per_s": JOBS / elapsed,
            "per_job": total / JOBS,
            "calls": {op: count / JOBS for op, count in sorted(meter.calls.items())},
        }


def main() -> None:
    serialize_dynamodb()
    notify.use(notify.LoggingNotifier())  # measure the registry, not a notifier
    print(f"job registry on moto: {JOBS} jobs per row, submit → start → finish")
    print(f"{'threads':>7}  {'users':<17} {'jobs/s':>7} {f'+{DDB_MS:g}ms':>8}  {'req/job':>7}  per job")
    for shared in (False, True):
        for threads in (1, 4, 8):
            raw = run_row(threads, shared, 0)
            slow = run_row(threads, shared, DDB_MS)
            breakdown = ", ".join(f"{op} {n:.2f}" for op, n in raw["calls"].items())
            print(
                f"{threads:>7}  {'one user, limit 2' if shared else 'own user':<17} "
                f"{raw['jobs_per_s']:>7.1f} {slow['jobs_per_s']:>8.1f}  {raw['per_job']:>7.2f}  {breakdown}"
            )


if __name__ == "__main__":
    main()
