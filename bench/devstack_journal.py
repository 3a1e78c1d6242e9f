"""The dev stack's journal: what it costs a write, and what it costs a start.

1. Single-item write throughput (PutItem through botocore, signed, into the stack's moto
   server on loopback) with the journal attached (every answer waits for its fsync) and
   without it, one writer and four; the journal must keep one writer within 2x.
2. Start time of `python -m devstack` (to the REST API answering) with 100,000 saved runs
   in the journal (a crash before any compaction), then again from the snapshot its stop
   wrote, and with an empty state; plus the in-process recovery steps for the 100,000.

Run from the repository root: `.venv/bin/python bench/devstack_journal.py`
(`BENCH_ITEMS=20000` for a quicker start figure; `BENCH_WRITES=500` per writer).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = int(os.environ.get("BENCH_ITEMS", "100000"))
WRITES = int(os.environ.get("BENCH_WRITES", "1000"))
TABLE = "benchmark-scheduler-local-schedules"
RUNS_TABLE = "benchmark-scheduler-local-benchmark_runs"
REGION = "us-east-1"


# --- 1. write throughput ------------------------------------------------------------------------


def write_throughput() -> None:
    import boto3

    from devstack import moto_serial, sigv4, state
    from devstack.stack import free_port

    credentials = sigv4.generate()
    os.environ.update(AWS_ACCESS_KEY_ID=credentials.access_key, AWS_SECRET_ACCESS_KEY=credentials.secret_key,
                      AWS_DEFAULT_REGION=REGION)
    moto_serial.serialize_dynamodb()
    server = moto_serial.serve("127.0.0.1", free_port(), sigv4.signed_only(credentials))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    client = boto3.client("dynamodb", endpoint_url=url)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "schedule_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"},
                              {"AttributeName": "schedule_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def run(label: str, writers: int) -> float:
        clients = [boto3.client("dynamodb", endpoint_url=url) for _ in range(writers)]

        def write(number: int) -> None:
            for i in range(WRITES):
                clients[number].put_item(TableName=TABLE, Item=schedule_item(f"{label}-{number}", i))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return writers * WRITES / (time.perf_counter() - started)

    print(f"Single-item PutItem, {WRITES} per writer, signed, moto server on loopback:")
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for writers in (1, 4):
            results[("off", writers)] = run(f"plain{writers}", writers)
            durable = state.Durable(Path(directory), state.State())
            moto_serial.journal_to(durable)
            results[("on", writers)] = run(f"journal{writers}", writers)
            moto_serial.journal_to(None)
            durable.close()
            print(f"  {writers} writer(s): {results[('off', writers)]:7.1f} writes/s without the journal, "
                  f"{results[('on', writers)]:7.1f} with it (fsync per answer; "
                  f"{results[('off', writers)] / results[('on', writers)]:.2f}x slower)")
    ratio = results[("off", 1)] / results[("on", 1)]
    print(f"  target: one writer within 2x -> {'met' if ratio <= 2 else 'NOT met'} ({ratio:.2f}x)")
    server.shutdown()


def schedule_item(user: str, number: int) -> dict:
    """A schedule as the app stores it (about 450 bytes)."""
    return {
        "user_id": {"S": user},
        "schedule_id": {"S": f"{number:032x}"},
        "name": {"S": f"Nightly speed check {number}"},
        "prompt": {"S": "Explain quantum computing in one paragraph. " * 3},
        "models": {"L": [{"S": "demo/fast"}, {"S": "demo/slow"}]},
        "max_tokens": {"N": "512"},
        "temperature": {"N": "0.7"},
        "interval_hours": {"N": "24"},
        "enabled": {"BOOL": True},
        "next_run": {"S": "2099-12-01T09:00:00.000000Z"},  # never due while the bench runs
        "created_at": {"S": "2026-11-30T09:00:00.000000Z"},
        "updated_at": {"S": "2026-11-30T09:00:00.000000Z"},
        "due_shard": {"N": str(number % 16)},
    }


# --- 2. start time ----------------------------------------------------------------------------------


def journal_of(directory: Path, count: int) -> None:
    """`count` benchmark runs (the history: what grows in a dev stack) in the journal, one
    frame each (as that many writes would leave them), and no snapshot: a stack killed
    before its first compaction."""
    from devstack import journal

    directory.mkdir(parents=True)
    with open(directory / "journal", "wb") as out:
        for number in range(count):
            item = run_item(f"user-{number % 1000}", number)
            key = {"user_id": item["user_id"], "run_id": item["run_id"]}
            out.write(journal.encode([{"op": "item", "table": RUNS_TABLE, "key": key, "image": item}]))


def run_item(user: str, number: int) -> dict:
    """A saved scheduled run of one model, as the app stores it (about 1.2 KB)."""
    result = {
        "provider": "demo", "model": "demo/fast", "model_id": "fast", "run": 1, "runs": 1, "context_tokens": 0,
        "ttft_ms": 101.3, "ttfo_ms": 101.3, "total_time_s": 1.12, "output_tokens": 100, "input_tokens": 12,
        "tokens_per_second": 89.3, "input_tokens_per_second": 118.5, "output_speed_tps": 98.0, "itl_ms": 10.2,
        "itl_p50_ms": 10.0, "itl_p99_ms": 12.9, "cost": 0.0, "cost_known": True, "usage_reported": True,
        "success": True, "error_type": None, "error": None,
    }
    metadata = {"source": "schedule", "schedule_id": f"{number % 50:032x}", "schedule_name": "Nightly speed check",
                "job_id": f"{number:032x}"}
    created = f"2026-11-{1 + number % 28:02d}T09:{number % 60:02d}:00.000000Z"
    return {
        "user_id": {"S": user},
        "run_id": {"S": f"{created}-{number:032x}"},
        "created_at": {"S": created},
        "source": {"S": "schedule"},
        "prompt": {"S": "Explain quantum computing in one paragraph."},
        "context_tiers": {"L": [{"N": "0"}]},
        "max_tokens": {"N": "512"},
        "temperature": {"N": "0.7"},
        "results": {"S": json.dumps([result])},
        "metadata": {"S": json.dumps(metadata)},
    }


def start_stop(directory: Path) -> tuple[float, float]:
    """(seconds until the REST API answers, seconds until a SIGTERM stop is complete)."""
    from devstack.stack import free_port

    rest = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(REST_PORT=str(rest), WS_PORT=str(free_port()), DEVSTACK_STATE_DIR=str(directory), PYTHONUNBUFFERED="1")
    log = directory.parent / f"{directory.name}.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the stack exited:\n{log.read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{rest}/api/schedules", timeout=2)
            except urllib.error.HTTPError:
                if "local stack is up" in log.read_text():
                    break
            except OSError:
                pass
            time.sleep(0.02)
        up = time.monotonic() - started
        stopping = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(120)
        return up, time.monotonic() - stopping
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def recovery_steps(directory: Path) -> None:
    """The in-process cost of the steps a start spends on the 100,000 items."""
    from devstack import state

    started = time.perf_counter()
    recovery = state.recover(directory)
    read = time.perf_counter() - started
    started = time.perf_counter()
    state.write_snapshot(directory, recovery.state)
    written = time.perf_counter() - started
    size = (directory / state.SNAPSHOT).stat().st_size
    print(f"  in-process: read + fold the journal {read:.2f} s; write the snapshot ({size / 1e6:.0f} MB) {written:.2f} s")


def start_times() -> None:
    with tempfile.TemporaryDirectory() as root:
        journaled = Path(root) / "journaled"
        journal_of(journaled, ITEMS)
        size = (journaled / "journal").stat().st_size
        print(f"\nStart of `python -m devstack` to REST answering ({ITEMS:,} saved runs, journal {size / 1e6:.0f} MB):")
        empty_up, empty_down = start_stop(Path(root) / "empty")
        print(f"  empty state:                 start {empty_up:5.2f} s, stop {empty_down:.2f} s")
        up, down = start_stop(journaled)
        print(f"  {ITEMS:,} items in the journal: start {up:5.2f} s, stop {down:.2f} s (replay, load, compaction)")
        up, down = start_stop(journaled)
        print(f"  the same from its snapshot:  start {up:5.2f} s, stop {down:.2f} s")
        replay = Path(root) / "replay"
        journal_of(replay, ITEMS)
        recovery_steps(replay)


if __name__ == "__main__":
    write_throughput()
    start_times()
