"""What one scheduled run costs: DynamoDB requests and request units, Lambda GB-seconds,
and what 100,000 hourly schedules would cost a month.

One schedule of 3 models (one each on an OpenAI-, Anthropic- and Gemini-format endpoint,
served on loopback by `devstack.fake_providers`, each streaming for ~30 s, so the run takes
~30 s) is claimed by the tick and run by the runner, with the app's real notifier (its
user has no WebSocket open: each event still looks the connections up). Every DynamoDB
request is counted, and billed the way DynamoDB on-demand bills it, from the items as moto
holds them just before and after each write:
- writes: 1 WRU per KB of the larger of the old and new item (2 in a transaction, condition
  checks included), plus, per global secondary index whose entry appears, disappears or
  changes (a key change is a delete and a put), 1 WRU per KB of the entry (+100 bytes);
- reads: 1 RRU per 4 KB strongly consistent, 0.5 eventually consistent (every GSI read),
  summed over what a Query reads, at least 0.5 per request.
A failed condition is billed like the write it refused.

GB-seconds: the runner's duration × its memory (`.chalice/config.json`), plus the tick's
per-claim share × the tick's memory: its time for `TICK_CLAIMS` claims with bench/tick.py's
simulated AWS latency, on `bench/lambda_clock.py`'s clock (a one-vCPU Lambda's time: moto's
work and this machine's other load left out).

Before/after: run this same script on the commit before the change (it uses only APIs both
have) — `git worktree add /tmp/before d91f475 && cp bench/run_cost.py /tmp/before/bench/ &&
(cd /tmp/before && python bench/run_cost.py)`. The figures it printed there are kept below
as BEFORE and printed next to this code's.

Run: `python bench/run_cost.py` (~2 min: two 30 s runs).
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from moto_env import ROOT, isolate

isolate(
    JWT_SECRET="bench-secret-that-is-long-enough-for-hs256",
    ALLOW_PRIVATE_ENDPOINTS="true",  # the fake providers are on loopback
    DISPATCH_GRACE_SECONDS="3600",
)

from moto import mock_aws  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
USER = "u" + "0" * 31
MODEL_SECONDS = 30.0
TICK_CLAIMS = int(os.environ.get("TICK_CLAIMS", "300"))
DDB_MS, INVOKE_MS = 8.0, 25.0  # as bench/tick.py

# us-east-1 list prices (DynamoDB on-demand since its November 2024 reduction; Lambda arm64).
PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
PRICE_GB_S_ARM = 0.0000133334
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
SCHEDULES, RUNS_PER_MONTH_EACH = 100_000, 24 * 30

# Printed by this script at d91f475 (the scheduler before this change), on the same machine.
BEFORE: dict[str, Any] | None = {
    "requests": {
        "benchmark_runs PutItem": 1,
        "connections Query": 10,
        "jobs GetItem": 1,
        "jobs UpdateItem": 13,
        "jobs+schedules TransactWriteItems": 1,
        "jobs+slots TransactWriteItems": 2,
        "provider_keys GetItem": 3,
        "providers Query": 1,
        "schedules GetItem": 1,
        "schedules UpdateItem": 1,
        "tick:jobs Query": 4,
        "tick:schedules Query": 16,
    },
    "wru": {
        "benchmark_runs PutItem": 2,
        "jobs UpdateItem": 65,
        "jobs+schedules TransactWriteItems": 9,
        "jobs+slots TransactWriteItems": 15,
        "schedules UpdateItem": 1,
    },
    "rru": {
        "connections Query": 5.0,
        "jobs GetItem": 1,
        "provider_keys GetItem": 3,
        "providers Query": 0.5,
        "schedules GetItem": 1,
        "tick:jobs Query": 2.0,
        "tick:schedules Query": 8.0,
    },
    "runner_seconds": 30.31,
    "requests_total": 34,
    "wru_total": 92,
    "rru_total": 10.5,
    "tick_requests": 20,
    "tick_rru": 10.0,
    "tick_seconds_per_claim": 0.0056,
    "gb_s": 30.32,
}


# --- billing -------------------------------------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (DynamoDB JSON)."""
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(raw) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    return sum(len(str(v).encode()) for v in raw)  # sets


def item_size(attributes: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + value_size(v) for k, v in (attributes or {}).items())


def units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


class Billing:
    """Counts DynamoDB requests and bills them, by (table, operation)."""

    def __init__(self) -> None:
        from moto.dynamodb.models import dynamodb_backends

        self.backend = dynamodb_backends["123456789012"]["us-east-1"]
        self.lock = threading.Lock()
        self.ticking = False
        self.requests: Counter[tuple[str, str]] = Counter()
        self.wru: Counter[tuple[str, str]] = Counter()
        self.rru: Counter[tuple[str, str]] = Counter()

    # which items a write touches: (table, key)
    def _targets(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict, str]]:
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(params["TableName"], params.get("Key") or self._key(params["TableName"], params["Item"]), operation)]
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                (kind, op), = entry.items()
                found.append((op["TableName"], op.get("Key") or self._key(op["TableName"], op["Item"]), kind))
            return found
        if operation == "BatchWriteItem":
            return [
                (table, (r.get("PutRequest") or {}).get("Item") and self._key(table, r["PutRequest"]["Item"])
                 or r["DeleteRequest"]["Key"], "batch")
                for table, requests in params["RequestItems"].items() for r in requests
            ]
        return []

    def _key(self, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
        table = self.backend.get_table(table_name)
        names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        return {n: item[n] for n in names}

    def _image(self, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self.backend.get_table(table_name)
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        try:
            item = table.get_item(hash_value, range_value)
        except Exception:
            return None
        return json.loads(json.dumps(item.to_json()["Attributes"])) if item else None

    def _index_entries(self, table_name: str, image: dict[str, Any] | None) -> dict[str, tuple[tuple, dict]]:
        """index name → (index key values, the entry's attributes), for the indexes holding it."""
        if image is None:
            return {}
        table = self.backend.get_table(table_name)
        table_keys = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        entries = {}
        for index in table.global_indexes:
            keys = [part["AttributeName"] for part in index.schema]
            if not all(k in image for k in keys):
                continue
            projection = index.projection or {}
            kind = projection.get("ProjectionType", "ALL")
            if kind == "ALL":
                names = set(image)
            else:
                names = set(keys) | set(table_keys) | set(projection.get("NonKeyAttributes") or [])
            entry = {n: image[n] for n in names if n in image}
            entries[index.name] = (tuple(json.dumps(image[k], sort_keys=True) for k in keys), entry)
        return entries

    def before(self, model=None, params=None, context=None, **_) -> None:
        operation = model.name
        targets = self._targets(operation, params)
        if targets:
            context["billing"] = [(t, k, kind, self._image(t, k)) for t, k, kind in targets]

    def after(self, model=None, parsed=None, context=None, **_) -> None:
        operation = model.name
        wru: Counter[str] = Counter()
        rru: Counter[str] = Counter()
        tables_of_request: set[str] = set()
        for table_name, key, kind, old in context.get("billing", []):
            new = self._image(table_name, key)
            tables_of_request.add(table_name)
            factor = 2 if operation == "TransactWriteItems" else 1
            wru[table_name] += factor * units(max(item_size(old), item_size(new)), 1024)
            if kind == "ConditionCheck":
                continue
            before, after = self._index_entries(table_name, old), self._index_entries(table_name, new)
            for index in set(before) | set(after):
                was, now = before.get(index), after.get(index)
                if was and now and was == now:
                    continue
                if was and now and was[0] != now[0]:
                    wru[table_name] += units(item_size(was[1]) + 100, 1024) + units(item_size(now[1]) + 100, 1024)
                else:
                    entry = (now or was)[1]
                    wru[table_name] += units(item_size(entry) + 100, 1024)
        if operation in ("GetItem",):
            table_name = context["billing_read"]
            consistent = context["billing_consistent"]
            rru[table_name] += (1 if consistent else 0.5) * units(item_size(parsed.get("Item")), 4096)
            tables_of_request.add(table_name)
        elif operation == "Query":
            table_name = context["billing_read"]
            consistent = context["billing_consistent"]
            size = sum(item_size(i) for i in parsed.get("Items", []))
            rru[table_name] += (1 if consistent else 0.5) * units(size, 4096)
            tables_of_request.add(table_name)
        elif operation == "BatchGetItem":
            for table_name, items in parsed.get("Responses", {}).items():
                consistent = context["billing_consistent"].get(table_name, False)
                rru[table_name] += sum((1 if consistent else 0.5) * units(item_size(i), 4096) for i in items)
                tables_of_request.add(table_name)
        label = "+".join(sorted(short(t) for t in tables_of_request)) or "?"
        if self.ticking and operation == "Query" and label != "connections":
            label = f"tick:{label}"  # the tick reading its indexes: once a minute, however many run
        with self.lock:
            self.requests[(label, operation)] += 1
            self.wru[(label, operation)] += sum(wru.values())
            self.rru[(label, operation)] += sum(rru.values())

    def note_read(self, model=None, params=None, context=None, **_) -> None:
        if model.name in ("GetItem", "Query"):
            context["billing_read"] = params["TableName"]
            context["billing_consistent"] = bool(params.get("ConsistentRead"))
        elif model.name == "BatchGetItem":
            context["billing_consistent"] = {t: bool(r.get("ConsistentRead")) for t, r in params["RequestItems"].items()}

    def reset(self) -> None:
        self.requests.clear()
        self.wru.clear()
        self.rru.clear()

    def install(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self.note_read)
        client.meta.events.register("before-parameter-build.dynamodb", self.before)
        client.meta.events.register("after-call.dynamodb", self.after)

    def uninstall(self, client: Any) -> None:
        client.meta.events.unregister("before-parameter-build.dynamodb", self.note_read)
        client.meta.events.unregister("before-parameter-build.dynamodb", self.before)
        client.meta.events.unregister("after-call.dynamodb", self.after)


def short(table_name: str) -> str:
    return table_name.removeprefix("benchmark-scheduler-bench-")


# --- the run -------------------------------------------------------------------------------


def lambda_memory_gb(function: str) -> float:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return config["lambda_functions"][function]["lambda_memory_size"] / 1024


def one_run() -> dict[str, Any]:
    from app import app  # noqa: F401  (plugs the WebSocket notifier in, as deployed)
    from chalicelib import aws_clients, clock, dispatch, runner, schedules, tables, tick
    from chalicelib.tables import ProviderModel
    from devstack.fake_providers import Behaviour, FakeProviderServer
    from devstack.moto_serial import serialize_dynamodb

    serialize_dynamodb()
    per_token = 0.05
    tokens = int((MODEL_SECONDS - 0.5) / per_token)
    with mock_aws(), FakeProviderServer() as server:
        tables.create_tables()
        for kind in ("openai", "anthropic", "gemini"):
            server.set_behaviour(f"{kind}-model", Behaviour(ttft_s=0.5, itl_s=per_token, tokens=tokens))
            ProviderModel(USER, f"my{kind}", kind=kind, base_url=server.base_url_for(kind),
                          models=[{"id": f"{kind}-model"}], updated_at=clock.iso(NOW)).save()
        clock.use(lambda: NOW)
        created = schedules.create(USER, schedules.ScheduleCreate(
            name="trio", models=[f"my{k}/{k}-model" for k in ("openai", "anthropic", "gemini")],
            prompt="Explain quantum computing in one paragraph.", max_tokens=1024, temperature=0.7,
            interval_hours=1,
        ))
        billing = Billing()
        billing.install(tables._shared_connection().client)
        payloads: list[dict] = []

        def invoked(params, **_):
            from botocore.awsrequest import AWSResponse

            payloads.append(json.loads(params["body"]))
            return AWSResponse("", 202, {}, None), {"StatusCode": 202}

        aws_clients.reset()
        dispatch.lambda_client().meta.events.register("before-call.lambda.Invoke", invoked)
        due = NOW + timedelta(hours=1, seconds=1)
        clock.use(lambda: due)
        billing.ticking = True
        report = tick.run(due)
        billing.ticking = False
        assert len(report.claimed) == 1 and payloads, report.summary()
        clock.use(None)
        began = time.perf_counter()
        outcome = runner.handle(payloads[0], lambda: int(900_000 - 1000 * (time.perf_counter() - began)))
        runner_seconds = time.perf_counter() - began
        assert outcome["status"] == "done", outcome
        billing.uninstall(tables._shared_connection().client)
        _ = created
        return {
            "requests": {f"{t} {op}": n for (t, op), n in sorted(billing.requests.items())},
            "wru": {f"{t} {op}": n for (t, op), n in sorted(billing.wru.items())},
            "rru": {f"{t} {op}": n for (t, op), n in sorted(billing.rru.items())},
            "runner_seconds": runner_seconds,
        }


def tick_seconds_per_claim() -> float:
    """The tick's time per claimed and dispatched job, with bench/tick.py's simulated latency."""
    from chalicelib import aws_clients, clock, dispatch, schedules, tables, tick
    from chalicelib.tables import ScheduleModel
    from lambda_clock import MOTO, LambdaClock

    MOTO.install()
    lambda_time = LambdaClock(parallel=tick.MAX_PARALLEL)
    with mock_aws():
        tables.create_tables()
        with ScheduleModel.batch_write() as batch:
            for i in range(TICK_CLAIMS):
                schedule_id = f"{i:032x}"
                batch.save(ScheduleModel(
                    f"user{i % 50}", schedule_id, name="s", prompt="p", models=["demo/fast"], max_tokens=16,
                    temperature=0.0, interval_hours=1, enabled=True, next_run=clock.iso(NOW),
                    created_at=clock.iso(NOW), updated_at=clock.iso(NOW), due_shard=schedules.due_shard(schedule_id),
                ))

        def slow_invoke(**_):
            from botocore.awsrequest import AWSResponse

            lambda_time.wait(INVOKE_MS)
            return AWSResponse("", 202, {}, None), {"StatusCode": 202}

        def slow_dynamodb(**_):
            lambda_time.wait(DDB_MS)

        aws_clients.reset()
        dispatch.lambda_client().meta.events.register("before-call.lambda.Invoke", slow_invoke)
        client = tables._shared_connection().client
        client.meta.events.register("before-call.dynamodb", slow_dynamodb)
        lambda_time.start()
        report = tick.run(NOW)
        elapsed = lambda_time.elapsed()
        client.meta.events.unregister("before-call.dynamodb", slow_dynamodb)
        assert len(report.claimed) == TICK_CLAIMS
        return elapsed / TICK_CLAIMS


def figures() -> dict[str, Any]:
    run = one_run()
    per_claim = tick_seconds_per_claim()
    runner_gb_s = run["runner_seconds"] * lambda_memory_gb("runner")
    tick_gb_s = per_claim * lambda_memory_gb("tick")

    def total(kind: str, per_tick: bool) -> float:
        return sum(n for name, n in run[kind].items() if name.startswith("tick:") == per_tick)

    return {
        **run,
        "requests_total": total("requests", False),
        "wru_total": total("wru", False),
        "rru_total": total("rru", False),
        "tick_requests": total("requests", True),
        "tick_rru": total("rru", True),
        "tick_seconds_per_claim": per_claim,
        "gb_s": runner_gb_s + tick_gb_s,
        "runner_gb_s": runner_gb_s,
        "tick_gb_s": tick_gb_s,
    }


def monthly(f: dict[str, Any]) -> dict[str, float]:
    runs = SCHEDULES * RUNS_PER_MONTH_EACH
    ticks = 60 * 24 * 30
    return {
        "runs": runs,
        "dynamodb_writes": runs * f["wru_total"] * PRICE_WRU,
        "dynamodb_reads": (runs * f["rru_total"] + ticks * f["tick_rru"]) * PRICE_RRU,
        "lambda_gb_s": runs * f["gb_s"] * PRICE_GB_S_ARM,
        "lambda_requests": runs * 2 * PRICE_LAMBDA_REQUEST,  # the runner's invoke and its share of ticks (~0)
    }


def show(label: str, f: dict[str, Any]) -> None:
    print(f"{label}: per run {f['requests_total']:g} DynamoDB requests, {f['wru_total']:g} WRU, "
          f"{f['rru_total']:g} RRU, {f['gb_s']:.2f} GB-s (runner {f['runner_seconds']:.1f} s × "
          f"{lambda_memory_gb('runner'):g} GB, tick {1000 * f['tick_seconds_per_claim']:.1f} ms × "
          f"{lambda_memory_gb('tick'):g} GB per claim); per tick {f['tick_requests']:g} requests, "
          f"{f['tick_rru']:g} RRU")
    by: dict[str, list[str]] = defaultdict(list)
    for name, n in f["requests"].items():
        wru, rru = f["wru"].get(name, 0), f["rru"].get(name, 0)
        by[name.split()[0]].append(f"{name.split()[1]} {n} ({wru:g} WRU, {rru:g} RRU)")
    for table, parts in sorted(by.items()):
        print(f"    {table:<22} {'; '.join(parts)}")
    cost = monthly(f)
    total = sum(v for k, v in cost.items() if k != "runs")
    print(f"  100,000 hourly schedules ({cost['runs'] / 1e6:.0f} M runs / 30 days): "
          f"DynamoDB writes ${cost['dynamodb_writes']:,.0f} + reads ${cost['dynamodb_reads']:,.0f}, "
          f"Lambda ${cost['lambda_gb_s']:,.0f} (GB-s) + ${cost['lambda_requests']:,.0f} (requests) "
          f"= ${total:,.0f} a month")


def main() -> None:
    after = figures()
    if os.environ.get("BENCH_JSON"):
        print(json.dumps(after, indent=1, default=str))
    if BEFORE is not None:
        show("before (d91f475)", BEFORE)
    show("this code", after)


if __name__ == "__main__":
    main()
