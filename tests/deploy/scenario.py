"""Every Lambda function of the app at work, as Lambda calls it, under moto.

`exercise(...)` drives each function through its entry point in `app.py` with the event
AWS would send: every REST route of the API handler (taken from the app's route table, so
a new route must get a sample here or the run fails), the tick with due schedules and lost
jobs, the runner on a job (its key decrypted, its results streamed from a loopback
provider, the next queued job started), and the three WebSocket handlers (including the
connection-limit heal that asks API Gateway whether a connection is gone). Every function
that posts to clients also meets a connection API Gateway answers 410 Gone for, so its
clean-up path runs too.

Each function runs with the environment the packaged template gives it (`env_of`), so the
calls it makes name the tables, key, secret and runner the template wires.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.awsrequest import AWSResponse

from tests.deploy.aws_calls import Recorder

API_ID = "wsapi12345"
WS_STAGE = "api"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
ENDPOINT = f"https://{DOMAIN}/{WS_STAGE}"
PROVIDER = "myprov"


class LambdaContext:
    """What the app reads of Lambda's context object."""

    def __init__(self, function: str) -> None:
        self.function_name = function
        self.aws_request_id = uuid.uuid4().hex

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


@dataclass
class State:
    token: str = ""
    user_id: str = ""
    schedule_id: str = ""
    job_ids: list[str] = field(default_factory=list)
    run_id: str = ""
    provider_url: str = ""
    live_connection: str = ""
    gone: set[str] = field(default_factory=set)
    alert_id: str = ""
    ticket: str = ""
    benchmark_job: str = ""


# (method, path) → (path parameters, body), in the order they run. DELETEs come last.
RouteSample = tuple[Callable[[State], dict[str, str]], Callable[[State], Any]]


def _none(state: State) -> dict[str, str]:
    return {}


ROUTES_BEFORE_RUNS: dict[tuple[str, str], RouteSample] = {
    ("POST", "/api/auth/register"): (_none, lambda s: {"email": "admin@example.com", "password": "password123"}),
    ("POST", "/api/auth/login"): (_none, lambda s: {"email": "admin@example.com", "password": "password123"}),
    ("GET", "/"): (_none, lambda s: None),
    ("GET", "/ui/{name}"): (lambda s: {"name": "app.js"}, lambda s: None),
    ("PUT", "/api/providers/{provider_key}"): (
        lambda s: {"provider_key": PROVIDER},
        lambda s: {"kind": "openai", "base_url": s.provider_url, "models": [{"id": "t"}]},
    ),
    ("GET", "/api/providers"): (_none, lambda s: None),
    ("PUT", "/api/keys"): (_none, lambda s: {"provider_key": PROVIDER, "value": "sk-test-0123456789"}),
    ("GET", "/api/keys"): (_none, lambda s: None),
    ("POST", "/api/schedules"): (_none, lambda s: {
        "name": "iam", "models": [f"{PROVIDER}/t"], "prompt": "Say hello.", "max_tokens": 16,
        "temperature": 0.0, "interval_hours": 1,
    }),
    ("GET", "/api/schedules"): (_none, lambda s: None),
    ("PUT", "/api/schedules/{schedule_id}"): (lambda s: {"schedule_id": s.schedule_id}, lambda s: {"name": "iam 2"}),
    ("POST", "/api/schedules/{schedule_id}/trigger"): (lambda s: {"schedule_id": s.schedule_id}, lambda s: None),
    ("GET", "/api/jobs"): (_none, lambda s: None),
    ("GET", "/api/jobs/{job_id}"): (lambda s: {"job_id": s.job_ids[0]}, lambda s: None),
    ("PUT", "/api/admin/users/{target_user_id}/limits"): (
        lambda s: {"target_user_id": s.user_id}, lambda s: {"max_concurrent": 1}
    ),
    # A rule that fires on the first run (any TTFT is above 0): the runner judges it,
    # records an event and signs a delivery to a loopback webhook (private endpoints are
    # allowed in this test, as in the local stack); the test route signs one too.
    ("POST", "/api/alerts"): (_none, lambda s: {
        "name": "iam", "schedule_id": s.schedule_id, "model": "*", "webhook_url": s.provider_url + "/hook",
        "condition": {"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 0},
    }),
    ("GET", "/api/alerts"): (_none, lambda s: None),
    ("PUT", "/api/alerts/{alert_id}"): (lambda s: {"alert_id": s.alert_id}, lambda s: {"name": "iam 2"}),
    ("POST", "/api/alerts/{alert_id}/test"): (lambda s: {"alert_id": s.alert_id}, lambda s: None),
    ("POST", "/api/benchmarks"): (_none, lambda s: {"models": [f"{PROVIDER}/t"], "prompt": "Say hi.", "runs": 2}),
    ("POST", "/api/ws-ticket"): (_none, lambda s: None),
}
ROUTES_AFTER_RUNS: dict[tuple[str, str], RouteSample] = {
    ("GET", "/api/history"): (_none, lambda s: None),
    ("GET", "/api/history/export"): (_none, lambda s: None),
    ("GET", "/api/stats"): (lambda s: {}, lambda s: None),
    ("GET", "/api/alerts/events"): (_none, lambda s: None),
    ("GET", "/api/history/{run_id}"): (lambda s: {"run_id": s.run_id}, lambda s: None),
    ("POST", "/api/jobs/{job_id}/cancel"): (lambda s: {"job_id": s.job_ids[-1]}, lambda s: None),
    ("DELETE", "/api/history/{run_id}"): (lambda s: {"run_id": s.run_id}, lambda s: None),
    ("DELETE", "/api/keys/{provider_key}"): (lambda s: {"provider_key": PROVIDER}, lambda s: None),
    ("DELETE", "/api/providers/{provider_key}"): (lambda s: {"provider_key": PROVIDER}, lambda s: None),
    ("DELETE", "/api/alerts/{alert_id}"): (lambda s: {"alert_id": s.alert_id}, lambda s: None),
    ("DELETE", "/api/schedules/{schedule_id}"): (lambda s: {"schedule_id": s.schedule_id}, lambda s: None),
    # Last: it revokes the token (the scenario logs in again after it).
    ("POST", "/api/auth/logout"): (_none, lambda s: None),
}
LOGIN = ("POST", "/api/auth/login")


TRIGGER = ("POST", "/api/schedules/{schedule_id}/trigger")


def app_routes() -> set[tuple[str, str]]:
    import app

    return {(method, path) for path, methods in app.app.routes.items() for method in methods}


class Scenario:
    """Runs each function under `recorder.as_function(name)` with its template env."""

    def __init__(self, recorder: Recorder, env_of: Callable[[str], dict[str, str]], monkeypatch, clock,
                 provider_url: str) -> None:
        import app
        from chalice.test import Client

        self.app = app
        self.recorder = recorder
        self.env_of = env_of
        self.monkeypatch = monkeypatch
        self.clock = clock
        self.state = State(provider_url=provider_url)
        self.client = Client(app.app, stage_name="test")
        recorder.client_hooks.append(self._answer_gone)

    # --- plumbing -----------------------------------------------------------------------------

    def _as(self, function: str):
        for name, value in self.env_of(function).items():
            self.monkeypatch.setenv(name, value)
        return self.recorder.as_function(function)

    def _answer_gone(self, client: Any) -> None:
        """API Gateway's 410 for the connections in `state.gone` (moto never says Gone)."""

        def gone(params: dict[str, Any], model: Any, **_: Any):
            connection_id = params["url_path"].rsplit("/", 1)[-1]
            from urllib.parse import unquote

            if unquote(connection_id) in self.state.gone:
                error = {"Error": {"Code": "GoneException", "Message": "gone"}, "ResponseMetadata": {}}
                return AWSResponse(params["url"], 410, {}, None), error
            return None

        if client.meta.service_model.service_name == "apigatewaymanagementapi":
            client.meta.events.register("before-call.apigatewaymanagementapi", gone)

    def _a_gone_connection(self) -> None:
        """A connection of the user whose socket API Gateway no longer has (test setup)."""
        from chalicelib import connections

        connection_id = f"gone-{uuid.uuid4().hex[:8]}"
        with self.recorder.paused():
            connections.register(connection_id, self.state.user_id, ENDPOINT)
        self.state.gone.add(connection_id)

    def _route(self, method: str, path: str, sample: RouteSample) -> dict:
        params, body = sample
        url = path.format(**params(self.state))
        data = body(self.state)
        headers = {"content-type": "application/json"}
        if self.state.token:
            headers["authorization"] = f"Bearer {self.state.token}"
        response = self.client.http.request(
            method, url, headers=headers, body=b"" if data is None else json.dumps(data).encode()
        )
        assert response.status_code == 200, (method, url, response.status_code, response.body)
        try:
            return json.loads(response.body)
        except ValueError:  # the UI's pages
            return {}

    # --- the functions ----------------------------------------------------------------------

    def api(self, routes: dict[tuple[str, str], RouteSample]) -> None:
        with self._as("api_handler"):
            for (method, path), sample in routes.items():
                answer = self._route(method, path, sample)
                self._remember(method, path, answer)

    def failed_login(self) -> None:
        """A wrong password: the login throttle counts it (an UpdateItem per key)."""
        with self._as("api_handler"):
            body = json.dumps({"email": "admin@example.com", "password": "wrong-password"}).encode()
            response = self.client.http.request(
                "POST", "/api/auth/login", headers={"content-type": "application/json"}, body=body
            )
        assert response.status_code == 401, response.body

    def trigger(self) -> None:
        """One more job of the schedule, through the API."""
        self.api({TRIGGER: ROUTES_BEFORE_RUNS[TRIGGER]})

    def _remember(self, method: str, path: str, answer: dict) -> None:
        state = self.state
        if path == "/api/auth/register":
            state.token, state.user_id = answer["access_token"], answer["user"]["id"]
            self._a_gone_connection()
        elif path == "/api/auth/login":
            state.token = answer["access_token"]
        elif path == "/api/schedules" and method == "POST":
            state.schedule_id = answer["id"]
        elif path.endswith("/trigger"):
            state.job_ids.append(answer["job_id"])
        elif path == "/api/alerts" and method == "POST":
            state.alert_id = answer["id"]
        elif path == "/api/benchmarks":
            state.benchmark_job = answer["job_id"]
        elif path == "/api/ws-ticket":
            state.ticket = answer["ticket"]

    def ws_connect(self, connection_id: str, *, ticket: str | None = None) -> dict:
        from devstack.ws_gateway import ws_event

        query = f"ticket={ticket}" if ticket else f"token={self.state.token}"
        event = ws_event(
            "$connect", connection_id, domain_name=DOMAIN, stage=WS_STAGE, api_id=API_ID,
            headers=[("Host", DOMAIN), ("X-Forwarded-Proto", "https")], query=query,
        )
        with self._as("websocket_connect"):
            return self.app.ws_connect(event, LambdaContext("websocket_connect"))

    def ws_message(self, connection_id: str, body: dict) -> None:
        from devstack.ws_gateway import ws_event

        event = ws_event("$default", connection_id, domain_name=DOMAIN, stage=WS_STAGE, api_id=API_ID,
                         body=json.dumps(body))
        with self._as("websocket_message"):
            self.app.ws_message(event, LambdaContext("websocket_message"))

    def ws_disconnect(self, connection_id: str) -> None:
        from devstack.ws_gateway import ws_event

        event = ws_event("$disconnect", connection_id, domain_name=DOMAIN, stage=WS_STAGE, api_id=API_ID,
                         close_code=1000)
        with self._as("websocket_disconnect"):
            self.app.ws_disconnect(event, LambdaContext("websocket_disconnect"))

    def runner(self, job_id: str) -> dict:
        with self._as("runner"):
            return self.app.runner({"job_id": job_id}, LambdaContext("runner"))

    def tick(self) -> dict:
        event = {
            "version": "0", "id": uuid.uuid4().hex, "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-30T09:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {},
        }
        with self._as("tick"):
            return self.app.tick(event, LambdaContext("tick"))


def exercise(scenario: Scenario, lambda_invokes) -> None:
    """The whole run; each step's comment says which code path it is there for."""
    from chalicelib import jobs, schedules
    from chalicelib.tables import JobModel, SlotModel

    state, clock = scenario.state, scenario.clock
    missing = app_routes() - set(ROUTES_BEFORE_RUNS) - set(ROUTES_AFTER_RUNS)
    assert not missing, f"routes without a sample in tests/deploy/scenario.py: {sorted(missing)}"

    # A live connection first, so the API's job events have somewhere to go.
    scenario.api({k: v for k, v in ROUTES_BEFORE_RUNS.items() if k[1].startswith("/api/auth/")})
    scenario.failed_login()
    state.live_connection = "live-" + uuid.uuid4().hex[:8]
    assert scenario.ws_connect(state.live_connection)["statusCode"] == 200
    scenario.api({k: v for k, v in ROUTES_BEFORE_RUNS.items() if not k[1].startswith("/api/auth/")})
    # A second trigger: its runner finds the slot taken and queues the job.
    scenario.trigger()

    # The runner: the second job queues behind a running one; the first runs, saves its run,
    # and starts the queued one, which then runs too.
    first, second = state.job_ids[-2], state.job_ids[-1]
    SlotModel(state.user_id).update([SlotModel.active.set(1)])  # setup: a job of the user's runs
    assert scenario.runner(second)["status"] == "skipped"
    assert JobModel.get(second).status == "queued"
    SlotModel(state.user_id).update([SlotModel.active.set(0)])  # setup: ... and has finished
    scenario._a_gone_connection()
    invoked = len(lambda_invokes.job_ids)
    outcome = scenario.runner(first)
    assert outcome["status"] == "done", outcome
    state.run_id = outcome["result_ref"]
    assert lambda_invokes.job_ids[invoked:] == [second]  # the queued job's runner, invoked
    follow_up = scenario.runner(second)
    assert follow_up["status"] == "done", follow_up
    benchmark = scenario.runner(state.benchmark_job)  # an on-demand benchmark: 2 runs
    assert benchmark["status"] == "done", benchmark

    # WebSocket messages: ping, sync, cancel (of a pending job), from a live connection.
    scenario.trigger()
    scenario._a_gone_connection()
    for body in ({"type": "ping"}, {"type": "sync"}, {"type": "cancel", "job_id": state.job_ids[-1]}):
        scenario.ws_message(state.live_connection, body)
    scenario.ws_message("never-connected", {"type": "ping"})

    # The tick: one due schedule, one running job whose lease lapsed, one pending job whose
    # dispatch was lost; each is claimed, interrupted or re-dispatched, and announced.
    scenario.trigger()
    lost_pending = state.job_ids[-1]
    running = jobs.submit(schedules.JOB_TYPE, state.user_id, {"schedule_id": state.schedule_id},
                          schedule_id=state.schedule_id)
    assert jobs.start(running.job_id) is not None
    clock.advance(hours=2)  # connections expire after two hours: the user opens a new one
    scenario.ws_disconnect(state.live_connection)
    state.live_connection = "live-" + uuid.uuid4().hex[:8]
    scenario.api({("POST", "/api/auth/login"): ROUTES_BEFORE_RUNS[LOGIN]})  # the token expired too
    scenario.api({("POST", "/api/ws-ticket"): ROUTES_BEFORE_RUNS[("POST", "/api/ws-ticket")]})
    assert scenario.ws_connect(state.live_connection, ticket=state.ticket)["statusCode"] == 200
    scenario._a_gone_connection()
    summary = scenario.tick()
    assert summary["claimed"] == 1 and summary["redispatched"] >= 1, summary
    assert JobModel.get(running.job_id).status in ("interrupted", "failed")
    assert lost_pending in lambda_invokes.job_ids

    # The rest of the API: history, cancel, and every delete.
    scenario._a_gone_connection()
    scenario.trigger()
    scenario.api(ROUTES_AFTER_RUNS)
    scenario.api({LOGIN: ROUTES_BEFORE_RUNS[LOGIN]})  # logout revoked the token

    # The connection limit: five connections fill it; once they are settled, a sixth makes
    # $connect ask API Gateway (GetConnection) whether any of them is gone: one is, and its
    # place is freed; a seventh is refused.
    scenario.ws_disconnect(state.live_connection)
    extra = [f"extra-{i}" for i in range(5)]
    for connection_id in extra:
        assert scenario.ws_connect(connection_id)["statusCode"] == 200
    clock.advance(seconds=30)
    state.gone.add(extra[0])  # its socket is gone: the heal frees its place
    assert scenario.ws_connect("sixth")["statusCode"] == 200
    assert scenario.ws_connect("seventh")["statusCode"] == 429
    for connection_id in extra[1:] + ["sixth"]:
        scenario.ws_disconnect(connection_id)
