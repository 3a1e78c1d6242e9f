"""`GET /api/stats` benchmark against moto: what one answer reads from DynamoDB, and how long
the Lambda spends on it.

1. 30 days of an hourly schedule of 10 models (720 runs, 7,200 results) for one user, plus
   as many manual runs of another user: stats over the 30 days (all runs, and by
   schedule_id), over 1 day, and the history export of the 30 days.
2. The README's figure: 1 day of a 20-model hourly schedule.

Each request goes through the app as API Gateway would send it (`chalice.test.Client`:
authentication, parsing, the answer's JSON). Items read are DynamoDB's `ScannedCount` (what
a Query is billed on); read units are computed from the whole items' sizes as DynamoDB bills
an eventually consistent Query (0.5 per 4 KB of the page's items, rounded up per page; a
projection does not lower it).

Time: moto is slow at large items (it re-parses every attribute of every item it returns:
~85 % of the wall time here), which no Lambda pays, so the figure is the app's own time in
the Lambda — the request's wall time less the time spent inside moto's DynamoDB handler
(botocore parsing the pages, the app's work and the JSON answer are in it) — plus
`BENCH_DDB_MS` (default 8) per DynamoDB request for AWS's round trips. The wall time with
moto is printed too.

Run: `python bench/stats.py`.
"""
from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for name, value in {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "STAGE": "bench", "JWT_SECRET": "bench-secret-that-is-long-enough-for-hs256",
}.items():
    os.environ[name] = value
for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[name]

from moto import mock_aws  # noqa: E402

from chalicelib import auth, clock, history, tables  # noqa: E402
from chalicelib.tables import UserModel  # noqa: E402
from devstack.moto_serial import serialize_dynamodb  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DDB_MS = float(os.environ.get("BENCH_DDB_MS", "8"))
REPEATS = 5
PROMPT = "Explain quantum computing in one paragraph."


class Meter:
    """DynamoDB requests, items read, read units, and the time spent inside moto."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.lock = threading.Lock()
        self.sizes = sizes  # run_id → the whole item's size
        self.reset()

    def reset(self) -> None:
        self.requests = self.items_read = 0
        self.read_units = 0.0
        self.moto_s = 0.0

    def before(self, **_) -> None:
        with self.lock:
            self.requests += 1

    def after(self, parsed, model=None, **_) -> None:
        if model.name != "Query":
            return
        size = sum(self.sizes.get(item["run_id"]["S"], item_bytes(item)) for item in parsed.get("Items", []))
        with self.lock:
            self.items_read += parsed.get("ScannedCount", 0)
            self.read_units += 0.5 * max(1, math.ceil(size / 4096))

    def time_moto(self) -> None:
        """Wrap moto's DynamoDB request handler to add up the time spent in it."""
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        meter = self

        def call_action(handler, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(handler, *args, **kwargs)
            finally:
                meter.moto_s += time.perf_counter() - started

        DynamoHandler.call_action = call_action


def item_bytes(item: dict) -> int:
    """An item's size by DynamoDB's rules (names + values; numbers ~ digits / 2 + 1)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_bytes(v) for k, v in inner.items())
    return len(json.dumps(inner))


def result(model: str, rng: random.Random) -> dict:
    """A result record shaped as the engine writes it (2 % of them failures)."""
    base = {"provider": model.split("/")[0], "model": model, "model_id": model.split("/")[1],
            "run": 1, "runs": 1, "context_tokens": 0}
    if rng.random() < 0.02:
        return {**base, "ttft_ms": None, "ttfo_ms": None, "total_time_s": 0.4123, "output_tokens": 0,
                "input_tokens": 0, "tokens_per_second": None, "input_tokens_per_second": None,
                "output_speed_tps": None, "itl_ms": None, "itl_p50_ms": None, "itl_p99_ms": None,
                "usage_reported": False, "cost": 0.0, "cost_known": False, "success": False,
                "error_type": "rate_limited", "error": "[rate_limited] Rate limit reached, try again in 20s"}
    ttft = rng.uniform(150, 900)
    speed = rng.uniform(40, 160)
    out = rng.randint(300, 512)
    total = ttft / 1000 + out / speed
    return {**base, "ttft_ms": round(ttft, 2), "ttfo_ms": round(ttft, 2), "total_time_s": round(total, 4),
            "output_tokens": out, "input_tokens": 14, "tokens_per_second": round(out / total, 2),
            "input_tokens_per_second": round(14 / ttft * 1000, 2), "output_speed_tps": round(speed, 2),
            "itl_ms": round(1000 / speed, 2), "itl_p50_ms": round(900 / speed, 2),
            "itl_p99_ms": round(3000 / speed, 2), "usage_reported": True,
            "cost": round(14 * 2.5e-6 + out * 1e-5, 8), "cost_known": True, "success": True,
            "error_type": None, "error": None}


def seed(user_id: str, models: int, hours: int, schedule_id: str | None) -> None:
    rng = random.Random(f"{user_id}{models}")
    names = [f"{['openai', 'anthropic', 'gemini'][i % 3]}/model-{i:02d}" for i in range(models)]
    for h in range(hours):
        started = clock.iso(NOW - timedelta(hours=hours - h) + timedelta(seconds=3))
        job_id = f"{h:08x}{zlib.crc32(user_id.encode()):08x}".ljust(32, "0")
        metadata = ({"source": "schedule", "schedule_id": schedule_id, "schedule_name": "Hourly speed",
                     "job_id": job_id} if schedule_id else {"source": "manual", "job_id": job_id})
        history.save(history.NewRun(
            user_id=user_id, job_id=job_id, started_at=started, prompt=PROMPT, max_tokens=512,
            temperature=0.7, results=[result(name, rng) for name in names], metadata=metadata,
            source=metadata["source"], schedule_id=schedule_id,
        ))


def token_for(user_id: str) -> str:
    UserModel(user_id, email=f"{user_id}@example.com", role="user", created_at=clock.iso(NOW)).save()
    return auth.issue_token(auth.User(user_id, f"{user_id}@example.com", "user"))


def measure(client, token: str, path: str, meter: Meter) -> dict:
    """Median figures of `REPEATS` identical requests."""
    headers = {"Authorization": f"Bearer {token}"}
    walls, apps, answer = [], [], None
    for _ in range(REPEATS):
        meter.reset()
        started = time.perf_counter()
        answer = client.http.get(path, headers=headers)
        wall = time.perf_counter() - started
        assert answer.status_code == 200, answer.body[:300]
        walls.append(wall)
        apps.append(wall - meter.moto_s + meter.requests * DDB_MS / 1000)
    return {"requests": meter.requests, "items": meter.items_read, "rcu": meter.read_units,
            "lambda_ms": statistics.median(apps) * 1000, "wall_ms": statistics.median(walls) * 1000,
            "bytes": len(answer.body)}


def report(label: str, figures: dict) -> None:
    print(f"  {label:<46} items read {figures['items']:>4,}  read units {figures['rcu']:>6.1f}  "
          f"requests {figures['requests']:>2}  Lambda {figures['lambda_ms']:>5.0f} ms "
          f"(wall with moto {figures['wall_ms']:>5.0f} ms)  answer {figures['bytes'] / 1024:>5.0f} KB")


def item_sizes(user_id: str) -> dict[str, int]:
    """The user's run items' whole sizes, by run id (read before metering starts)."""
    from chalicelib.tables import RunModel

    return {item["run_id"]["S"]: item_bytes(item) for page in RunModel.query(user_id).page_iter
            for item in page["Items"]}


def main() -> None:
    serialize_dynamodb()
    clock.use(lambda: NOW)
    from chalice.test import Client

    from app import app
    from chalicelib.tables import ScheduleModel

    with mock_aws():
        tables.create_tables()
        started = time.perf_counter()
        seed("bench-user-a", models=10, hours=720, schedule_id="hourly10")
        seed("bench-user-b", models=10, hours=720, schedule_id=None)  # another user's runs: never read
        seed("bench-user-c", models=20, hours=24, schedule_id="hourly20")
        for user_id, schedule_id in (("bench-user-a", "hourly10"), ("bench-user-c", "hourly20")):
            ScheduleModel(user_id, schedule_id, name="Hourly speed", prompt=PROMPT, models=["x"], max_tokens=512,
                          temperature=0.7, interval_hours=1, enabled=False, next_run=clock.iso(NOW),
                          created_at=clock.iso(NOW), updated_at=clock.iso(NOW)).save()
        token_a, token_c = token_for("bench-user-a"), token_for("bench-user-c")
        ten, twenty = item_sizes("bench-user-a"), item_sizes("bench-user-c")
        print(f"seeded 1,464 runs (15,360 results) in {time.perf_counter() - started:.0f} s; a run item weighs "
              f"{statistics.median(ten.values()) / 1024:.1f} KB with 10 models, "
              f"{statistics.median(twenty.values()) / 1024:.1f} KB with 20")
        sizes = {**ten, **twenty}
        meter = Meter(sizes)
        meter.time_moto()
        hooks = tables._shared_connection().client.meta.events
        hooks.register("before-call.dynamodb", meter.before)
        hooks.register("after-call.dynamodb", meter.after)
        since30 = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        since1 = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with Client(app, stage_name="bench") as client:
            print(f"1. 30 days of hourly runs of 10 models (720 runs, 7,200 results); +{DDB_MS:g} ms per DynamoDB request")
            report("/api/stats, 30 days (bucket=day)", measure(client, token_a, f"/api/stats?since={since30}", meter))
            report("/api/stats, 30 days, schedule_id",
                   measure(client, token_a, f"/api/stats?since={since30}&schedule_id=hourly10", meter))
            report("/api/stats, 30 days, one model, bucket=hour",
                   measure(client, token_a, f"/api/stats?since={since30}&model=openai/model-00&bucket=hour", meter))
            report("/api/stats, 1 day (bucket=hour)", measure(client, token_a, f"/api/stats?since={since1}", meter))
            report("/api/history/export, 30 days (CSV, one page)",
                   measure(client, token_a, f"/api/history/export?since={since30}", meter))
            print("2. 1 day of a 20-model hourly schedule (24 runs, 480 results)")
            report("/api/stats, 1 day, schedule_id",
                   measure(client, token_c, f"/api/stats?since={since1}&schedule_id=hourly20", meter))
    clock.use(None)


if __name__ == "__main__":
    main()
