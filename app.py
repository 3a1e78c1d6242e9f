"""Benchmark Scheduler: the Chalice app. Wiring only — parse, call chalicelib, shape.

Every Lambda of the app imports this module, so it imports only what the REST API needs;
the runner's HTTP clients load in the runner.
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable

from chalice import Chalice, Rate, Response
from chalice.app import Request

from chalicelib import (
    alert_events,
    alerts,
    auth,
    benchmarks,
    dispatch,
    export,
    history,
    jobs,
    keys,
    logs,
    metrics,
    notify,
    path_ids,
    payloads,
    schedules,
    stats,
    tickets,
    ui_assets,
    user_providers,
    websocket,
)
from chalicelib.errors import ApiError

app = Chalice(app_name="benchmark-scheduler")
logs.configure()
# Chalice 1.34 still marks WebSocket handlers experimental: without this opt-in, loading the
# app (`chalice package`, `chalice local`, the dev stack) fails with ExperimentalFeatureError.
app.experimental_feature_flags.update(["WEBSOCKETS"])
# Job events reach the user's browser tabs through API Gateway's `@connections` API.
notify.use(websocket.notifier)

# Bodies are parsed by `payloads`, whatever the client says the type is: a curl without
# `-H content-type` still gets a JSON answer, and bad JSON gets the app's error envelope.
_ANY_CONTENT = ["*/*"]


# --- plumbing: auth and the error envelope -------------------------------------------------


def route(path: str, *, public: bool = False, chosen: frozenset[str] = frozenset(), **options: Any) -> Callable:
    """`app.route` that authenticates the caller (unless `public`) and answers `ApiError`
    as `{error, detail}`. `chosen`: path ids the client picks for what it creates (a bad
    one is a 422, not a 404: see `path_ids`).

    The JWT is verified here, in the route's own Lambda, not by an API Gateway authorizer:
    a refused token is then the same 401 `{error}` under API Gateway, `chalice local` and
    `chalice.test.Client` (an authorizer's refusal is a 500 in the last two), and no
    separate authorizer function pays a cold start.

    Order: the token's signature (no I/O), then the path's ids (`path_ids`: an id that
    cannot exist is a 404 before any table is read), then the user item."""

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                claims = None if public else auth.verify_token(
                    auth.bearer_token(request().headers.get("authorization"))
                )
                path_ids.check(kwargs, chosen=chosen)
                if claims is not None:
                    _claims.set(claims)
                    _caller.set(auth.user_of(claims))
                return view(*args, **kwargs)
            except ApiError as err:
                return Response(body=err.body(), status_code=err.status, headers=err.headers)

        options.setdefault("content_types", _ANY_CONTENT)
        return app.route(path, **options)(guarded)

    return register


@app.middleware("http")
def error_envelope(event, get_response):
    """Chalice's own errors (405, 415, unhandled 500) in the app's `{error}` envelope."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        response.body = {"error": body.get("Message", "Error"), "detail": {"code": body["Code"]}}
    return response


_caller: ContextVar[auth.User] = ContextVar("caller")
_claims: ContextVar[dict[str, Any]] = ContextVar("claims")


def caller() -> auth.User:
    """The authenticated caller of the current request (set by `route`)."""
    return _caller.get()


def user_id() -> str:
    return caller().id


def token_claims() -> dict[str, Any]:
    """The verified claims of the current request's token (set by `route`)."""
    return _claims.get()


def request() -> Request:
    """The request being answered (Chalice sets it before calling a view)."""
    current = app.current_request
    assert current is not None, "called outside a request"
    return current


def source_ip() -> str | None:
    """The address the request came from, as API Gateway (or `chalice local`) saw it."""
    identity = (request().context or {}).get("identity") or {}
    address = identity.get("sourceIp")
    return address if isinstance(address, str) and address else None


def body() -> bytes:
    raw = request().raw_body
    return raw.encode() if isinstance(raw, str) else raw


def ok(**fields: Any) -> dict[str, Any]:
    return {"status": "ok", **fields}


# --- auth ------------------------------------------------------------------------------------


@route("/api/auth/register", methods=["POST"], public=True)
def register():
    data = payloads.parse(auth.Registration, body())
    user, token = auth.register(data.email, data.password)
    return {"user": user.public(), "access_token": token, "token_type": "bearer"}


@route("/api/auth/login", methods=["POST"], public=True)
def login():
    data = payloads.parse(auth.Credentials, body())
    token = auth.login(data.email, data.password, source_ip())
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": int(auth.TOKEN_TTL.total_seconds()),
    }


@route("/api/auth/logout", methods=["POST"])
def logout():
    """Revokes every token of the caller (all their sessions) and closes their WebSockets."""
    auth.logout(user_id())
    return ok(connections_closed=websocket.close_user(user_id()))


@route("/api/ws-ticket", methods=["POST"])
def ws_ticket():
    """A one-time ticket for `?ticket=` at the WebSocket handshake (keeps the JWT out of URLs)."""
    ticket = tickets.issue(caller(), auth.expiry_of(token_claims()))
    return {"ticket": ticket, "expires_in": int(tickets.TTL.total_seconds())}


# --- schedules -------------------------------------------------------------------------------


@route("/api/schedules", methods=["GET"])
def list_schedules():
    query = payloads.query(schedules.ListQuery, request().query_params)
    return schedules.list_for(user_id(), query)


@route("/api/schedules", methods=["POST"])
def create_schedule():
    schedule = schedules.create(user_id(), payloads.parse(schedules.ScheduleCreate, body()))
    return ok(id=schedule["id"], schedule=schedule)


@route("/api/schedules/{schedule_id}", methods=["PUT"])
def update_schedule(schedule_id):
    changes = payloads.parse(schedules.ScheduleUpdate, body())
    return ok(schedule=schedules.update(user_id(), schedule_id, changes))


@route("/api/schedules/{schedule_id}", methods=["DELETE"])
def delete_schedule(schedule_id):
    schedules.delete(user_id(), schedule_id)
    alerts.forget_schedule(user_id(), schedule_id)  # its rules watch nothing any more
    return ok()


@route("/api/schedules/{schedule_id}/trigger", methods=["POST"])
def trigger_schedule(schedule_id):
    job_id = dispatch.trigger(user_id(), schedule_id)
    return ok(message="Benchmark triggered", job_id=job_id)


# --- keys and providers ----------------------------------------------------------------------


@route("/api/keys", methods=["GET"])
def list_keys():
    query = payloads.query(user_providers.ListQuery, request().query_params)
    return keys.list_keys(user_id(), query)


@route("/api/keys", methods=["PUT"])
def put_key():
    data = payloads.parse(keys.KeyPut, body())
    return ok(key=keys.put_key(user_id(), data.provider_key, data.value))


@route("/api/keys/{provider_key}", methods=["DELETE"])
def delete_key(provider_key):
    keys.delete_key(user_id(), provider_key)
    return ok()


@route("/api/providers", methods=["GET"])
def list_providers():
    query = payloads.query(user_providers.ListQuery, request().query_params)
    return user_providers.list_providers(user_id(), query)


@route("/api/providers/{provider_key}", methods=["PUT"], chosen=frozenset({"provider_key"}))
def put_provider(provider_key):
    data = payloads.parse(user_providers.ProviderBody, body())
    return ok(**user_providers.put_provider(user_id(), provider_key, data))


@route("/api/providers/{provider_key}", methods=["DELETE"])
def delete_provider(provider_key):
    user_providers.delete_provider(user_id(), provider_key)
    return ok()


# --- jobs ------------------------------------------------------------------------------------


@route("/api/jobs", methods=["GET"])
def list_jobs():
    query = payloads.query(jobs.JobsQuery, request().query_params)
    return {"jobs": [jobs.to_public(job) for job in jobs.list_jobs(user_id(), query)]}


@route("/api/jobs/{job_id}", methods=["GET"])
def get_job(job_id):
    return jobs.to_public(jobs.get_job(job_id, user_id()))


@route("/api/jobs/{job_id}/cancel", methods=["POST"])
def cancel_job(job_id):
    jobs.cancel(job_id, user_id())
    return ok()


@route("/api/admin/users/{target_user_id}/limits", methods=["PUT"])
def set_user_limits(target_user_id):
    auth.require_admin(user_id())
    data = payloads.parse(jobs.LimitsUpdate, body())
    return ok(**jobs.set_limit(target_user_id, data.max_concurrent))


# --- history ---------------------------------------------------------------------------------


@route("/api/history", methods=["GET"])
def list_history():
    query = payloads.query(history.HistoryQuery, request().query_params)
    return history.list_runs(user_id(), query)


@route("/api/history/export", methods=["GET"])
def export_history():
    page = export.export(user_id(), payloads.query(export.ExportQuery, request().query_params))
    headers: dict[str, str | list[str]] = {**page.headers()}
    return Response(body=page.body, status_code=200, headers=headers)


@route("/api/history/{run_id}", methods=["GET"])
def get_history_run(run_id):
    return history.get(user_id(), run_id)


@route("/api/history/{run_id}", methods=["DELETE"])
def delete_history_run(run_id):
    history.delete(user_id(), run_id)
    return ok()


# --- benchmarks on demand and statistics ------------------------------------------------------


@route("/api/benchmarks", methods=["POST"])
def create_benchmark():
    job_id = benchmarks.submit(user_id(), payloads.parse(benchmarks.BenchmarkCreate, body()))
    return ok(job_id=job_id)


@route("/api/stats", methods=["GET"])
def get_stats():
    return stats.stats(user_id(), payloads.query(stats.StatsQuery, request().query_params))


# --- alerts ----------------------------------------------------------------------------------


@route("/api/alerts", methods=["GET"])
def list_alerts():
    query = payloads.query(alerts.AlertsQuery, request().query_params)
    return {"alerts": alerts.list_for(user_id(), query)}


@route("/api/alerts", methods=["POST"])
def create_alert():
    alert, secret = alerts.create(user_id(), payloads.parse(alerts.AlertCreate, body()))
    return ok(id=alert["id"], alert=alert, secret=secret)


@route("/api/alerts/events", methods=["GET"])
def list_alert_events():
    query = payloads.query(alert_events.EventsQuery, request().query_params)
    return alert_events.list_events(user_id(), query)


@route("/api/alerts/{alert_id}", methods=["PUT"])
def update_alert(alert_id):
    changes = payloads.parse(alerts.AlertUpdate, body())
    return ok(alert=alerts.update(user_id(), alert_id, changes))


@route("/api/alerts/{alert_id}", methods=["DELETE"])
def delete_alert(alert_id):
    alerts.delete(user_id(), alert_id)
    return ok()


@route("/api/alerts/{alert_id}/test", methods=["POST"])
def test_alert(alert_id):
    delivery = alerts.send_test(user_id(), alert_id)
    return ok(delivery={"outcome": delivery.outcome, "detail": delivery.detail})


# --- tick and runner -------------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES), name="tick")
def tick(event):
    from chalicelib import tick as scheduler

    # The Lambda's remaining time bounds the tick's work (None where there is no context).
    remaining_ms = getattr(event.context, "get_remaining_time_in_millis", None)
    return scheduler.run(remaining_ms=remaining_ms).summary()


@app.lambda_function(name="runner")
def runner(event, context):
    from chalicelib import runner as benchmark  # httpx and the provider clients load here only

    job_id = event.get("job_id") if isinstance(event, dict) else None
    with logs.context(job_id=job_id), metrics.timed(metrics.RUNNER_DURATION):
        return benchmark.handle(event, context.get_remaining_time_in_millis)


# --- websocket -------------------------------------------------------------------------------

@app.on_ws_connect()
def ws_connect(event):
    """A non-2xx answer makes API Gateway refuse the upgrade (401 bad token, 429 limit)."""
    try:
        websocket.connect(event.to_dict())
    except ApiError as err:
        return Response(body=err.body(), status_code=err.status)
    return {"statusCode": 200}


@app.on_ws_message()
def ws_message(event):
    websocket.receive(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event):
    websocket.disconnect(event.to_dict())


# --- ui --------------------------------------------------------------------------------------


def _page(served: tuple[str, dict[str, str]]) -> Response:
    text, headers = served
    response_headers: dict[str, str | list[str]] = {**headers}
    return Response(body=text, status_code=200, headers=response_headers)


@route("/", methods=["GET"], public=True)
def ui_index():
    return _page(ui_assets.index())


@route("/ui/{name}", methods=["GET"], public=True)
def ui_asset(name):
    return _page(ui_assets.serve(name))
