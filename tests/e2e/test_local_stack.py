"""End to end: the running local stack (`python -m devstack`), driven as a user drives it.

Only HTTP (httpx) and a real WebSocket client (`websockets`) — no import of the app. The
flows are the seed's curl session on the demo provider: register and log in, create, list,
disable, delete and trigger a schedule; watch the triggered job's events on the WebSocket;
read it back from history with the seed's metadata; then stop the stack (Ctrl-C), make a
schedule due by editing `next_run` in the saved snapshot — a schedule's interval is at
least an hour, and the snapshot is the one honest handle a user has on time — start it
again, and check that everything survived and that the tick (every second here) runs the
due schedule by itself.
"""
from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct-horse-battery"
RUN_TIMEOUT_S = 30.0


def seed_body(name: str, models: list[str] | None = None) -> dict[str, Any]:
    """The seed's schedule body, on the demo provider."""
    return {
        "name": name,
        "models": models or ["demo/fast"],
        "prompt": "Explain quantum computing in one paragraph.",
        "max_tokens": 512,
        "temperature": 0.7,
        "interval_hours": 1,
    }


class User:
    """One registered user's HTTP session (a fresh email per test keeps tests apart)."""

    def __init__(self, stack: Any, email: str | None = None, password: str = PASSWORD):
        self.stack = stack
        self.email = email or f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        self.password = password
        self.http = httpx.Client(base_url=stack.rest_url, timeout=15)
        answer = self.http.post("/api/auth/register", json={"email": self.email, "password": password})
        assert answer.status_code == 200, answer.text
        self.registration = answer.json()
        self.token: str = self.registration["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=body, headers=self.headers())

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.call(method, path, body)
        assert answer.status_code == 200, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.ok("POST", "/api/schedules", body)["schedule"]

    def wait_for_job(self, job_id: str, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.ok("GET", f"/api/jobs/{job_id}")
            if job["status"] in ("done", "failed", "cancelled", "interrupted"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.2)

    def socket(self):
        return connect(f"{self.stack.ws_url}?token={self.token}", open_timeout=10)


def events_of(ws: Any, job_id: str, timeout_s: float = RUN_TIMEOUT_S) -> list[dict[str, Any]]:
    """The job's events as they arrive, up to and including its terminal one."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no terminal event for {job_id}; got {[e['type'] for e in seen]}"
        event = json.loads(ws.recv(timeout=left))
        if event.get("job_id") != job_id:
            continue
        seen.append(event)
        if event["type"] in ("job_completed", "job_failed", "job_cancelled"):
            return seen


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


# --- the API a user meets first -----------------------------------------------------------


def test_the_demo_provider_is_listed_with_its_models(local_stack):
    user = User(local_stack)
    providers = {p["provider_key"]: p for p in user.ok("GET", "/api/providers")["providers"]}
    assert {"openai", "anthropic", "gemini", "demo"} <= set(providers)
    assert [m["id"] for m in providers["demo"]["models"]] == ["fast", "slow"]
    assert providers["demo"]["base_url"].startswith("http://127.0.0.1:")


def test_register_login_and_refusals(local_stack):
    user = User(local_stack)
    assert user.registration["user"]["email"] == user.email
    assert user.registration["token_type"] == "bearer"
    http = user.http

    login = http.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["expires_in"] > 0
    fresh = login.json()["access_token"]
    assert http.get("/api/schedules", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200

    assert http.post("/api/auth/login", json={"email": user.email, "password": "wrong-password"}).status_code == 401
    assert http.post("/api/auth/register", json={"email": user.email, "password": PASSWORD}).status_code == 409
    for header in ("Bearer not-a-token", "Basic dXNlcjpwYXNz", "", f"Bearer {fresh}x"):
        refused = http.get("/api/schedules", headers={"Authorization": header})
        assert refused.status_code == 401, header  # chalice local's server: no 500
        assert set(refused.json()) == {"error"}


def test_the_seed_curl_flows(local_stack):
    """create, list, disable, enable, trigger, delete — the seed's session, on demo/fast."""
    user = User(local_stack)
    created = user.ok("POST", "/api/schedules", seed_body("Daily demo check"))
    assert created["status"] == "ok"
    schedule = created["schedule"]
    assert created["id"] == schedule["id"]
    assert schedule["models"] == schedule["models_json"] == ["demo/fast"]
    assert schedule["enabled"] is True and schedule["last_run"] is None
    assert schedule["interval_hours"] == 1 and schedule["max_tokens"] == 512

    listed = user.ok("GET", "/api/schedules")["schedules"]
    assert [s["id"] for s in listed] == [schedule["id"]]

    disabled = user.ok("PUT", f"/api/schedules/{schedule['id']}", {"enabled": False})
    assert disabled["schedule"]["enabled"] is False
    assert user.ok("GET", "/api/schedules")["schedules"][0]["enabled"] is False

    # A disabled schedule can still be run by hand (the seed's trigger ignores `enabled`).
    triggered = user.ok("POST", f"/api/schedules/{schedule['id']}/trigger")
    assert triggered["status"] == "ok" and triggered["message"] == "Benchmark triggered"
    job = user.wait_for_job(triggered["job_id"])
    assert job["status"] == "done", job
    assert job["schedule_id"] == schedule["id"] and job["result_ref"]

    assert user.ok("DELETE", f"/api/schedules/{schedule['id']}") == {"status": "ok"}
    assert user.ok("GET", "/api/schedules")["schedules"] == []
    assert user.call("DELETE", f"/api/schedules/{schedule['id']}").status_code == 404
    assert user.call("POST", f"/api/schedules/{schedule['id']}/trigger").status_code == 404


def test_a_triggered_run_streams_its_events_and_lands_in_history(local_stack):
    user = User(local_stack)
    schedule = user.create(seed_body("Watched run", ["demo/fast", "demo/slow"]))
    with user.socket() as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
        job_id = user.ok("POST", f"/api/schedules/{schedule['id']}/trigger")["job_id"]
        events = events_of(ws, job_id)

    kinds = [e["type"] for e in events]
    order = ["job_created", "job_started", "benchmark_init", "benchmark_result", "job_completed"]
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions), kinds
    assert kinds.count("benchmark_result") == 2
    init = events[kinds.index("benchmark_init")]["data"]
    assert init == {"targets": ["demo/fast", "demo/slow"], "runs": 1, "context_tiers": [0], "max_tokens": 512}
    results = {e["data"]["model"]: e["data"] for e in events if e["type"] == "benchmark_result"}
    assert all(r["success"] and r["output_tokens"] > 0 and r["ttft_ms"] > 0 for r in results.values())
    # The demo models' known speeds: slow has a 600 ms time to first token, fast 100 ms.
    assert results["demo/slow"]["ttft_ms"] > results["demo/fast"]["ttft_ms"]
    run_id = events[-1]["result_ref"]

    runs = user.ok("GET", "/api/history?source=schedule")["runs"]
    assert [r["id"] for r in runs] == [run_id]
    assert runs[0]["metadata"] == {
        "source": "schedule",
        "schedule_id": schedule["id"],
        "schedule_name": "Watched run",
        "job_id": job_id,
        "trigger": "manual",
    }
    detail = user.ok("GET", f"/api/history/{run_id}")
    assert [r["model"] for r in detail["results"]] == ["demo/fast", "demo/slow"]
    after = user.ok("GET", "/api/schedules")["schedules"][0]
    assert after["last_run"] is not None


def test_the_websocket_refuses_a_bad_token(local_stack):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{local_stack.ws_url}?token=not-a-token", open_timeout=10)
    assert refused.value.response.status_code == 401


# --- restart: what survives, and a schedule that falls due ---------------------------------


def _set_next_run(state_dir, schedule_id: str, moment: datetime) -> None:
    """Edit the saved snapshot as a user could: the schedule's `next_run`, in DynamoDB JSON
    (a clean stop leaves everything in the snapshot and the journal empty)."""
    path = state_dir / "snapshot.json"
    assert (state_dir / "journal").stat().st_size == 0
    doc = json.loads(path.read_text())
    [table] = [t for name, t in doc["tables"].items() if name.endswith("-schedules")]
    items = [i for i in table["items"] if i["schedule_id"]["S"] == schedule_id]
    assert len(items) == 1, "the schedule is not in the saved state"
    assert items[0]["next_run"]["S"] > datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    items[0]["next_run"] = {"S": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    path.write_text(json.dumps(doc))


def test_restart_keeps_everything_and_a_due_schedule_runs_by_itself(local_stack):
    user = User(local_stack)
    key = user.ok("PUT", "/api/keys", {"provider_key": "openai", "value": "sk-e2e-test-key-7f3a"})
    assert key["key"]["last4"] == "7f3a"
    schedule = user.create(seed_body("Hourly demo check"))
    idle = user.create({**seed_body("Disabled one"), "interval_hours": 24})
    user.ok("PUT", f"/api/schedules/{idle['id']}", {"enabled": False})
    manual_job = user.ok("POST", f"/api/schedules/{schedule['id']}/trigger")["job_id"]
    assert user.wait_for_job(manual_job)["status"] == "done"

    # Ctrl-C: a clean exit that frees its ports and compacts the state into the snapshot.
    try:
        assert local_stack.stop(signal.SIGINT) == 0
        assert port_is_free(local_stack.rest_port) and port_is_free(local_stack.ws_port)
        _set_next_run(local_stack.state_dir, schedule["id"], datetime.now(timezone.utc) - timedelta(minutes=2))
    finally:
        local_stack.start()  # whatever failed, later tests get a running stack

    # The old token still verifies (the JWT secret survived), and so does the password.
    schedules = {s["id"]: s for s in user.ok("GET", "/api/schedules")["schedules"]}
    assert set(schedules) == {schedule["id"], idle["id"]}
    assert schedules[idle["id"]]["enabled"] is False
    login = user.http.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    keys = {k["provider_key"]: k for k in user.ok("GET", "/api/keys")["keys"]}
    assert keys["openai"]["has_user_key"] is True and keys["openai"]["last4"] == "7f3a"
    assert user.ok("GET", f"/api/jobs/{manual_job}")["status"] == "done"

    # The tick (every second) finds the schedule due and runs it, on its own.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = user.ok("GET", "/api/history?source=schedule")["runs"]
        scheduled = [r for r in runs if "trigger" not in r["metadata"]]
        if scheduled:
            break
        assert time.monotonic() < deadline, f"the due schedule did not run; history: {runs}"
        time.sleep(0.5)
    assert len(runs) == 2  # the manual run from before the restart is still there
    metadata = scheduled[0]["metadata"]
    assert {k: metadata[k] for k in ("source", "schedule_id", "schedule_name")} == {
        "source": "schedule",
        "schedule_id": schedule["id"],
        "schedule_name": "Hourly demo check",
    }
    assert scheduled[0]["results"][0]["success"] is True
    job = user.wait_for_job(metadata["job_id"])
    assert job["status"] == "done"

    # Claimed once, on its phase: next_run moved into the future, last_run was stamped.
    after = {s["id"]: s for s in user.ok("GET", "/api/schedules")["schedules"]}[schedule["id"]]
    assert after["next_run"] > datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert after["last_run"] is not None
    time.sleep(2)  # two more ticks: still exactly one scheduled run
    runs = user.ok("GET", "/api/history?source=schedule")["runs"]
    assert len([r for r in runs if "trigger" not in r["metadata"]]) == 1
